//! Telephony: a provider-neutral [`Pabx`] trait, the JT Telecom cloud PABX client
//! ([`suite::SuiteClient`], the white-labelled "suite" API also sold as meupabxip, iFalei,
//! Baldussi and TotalPhone), the Brazilian dialling rule and number normaliser ([`dial`]), the
//! tolerant call-event parser ([`event`]) and a faithful local mock server ([`mock::MockPabx`]).
//!
//! The CRM holds one `Arc<dyn Pabx>` per tenant. Everything here is I/O-only and knows nothing of
//! tenants or the database: credentials, base URL, area code and time zone offset come in through
//! [`suite::SuiteConfig`]; typed values ([`CallRecord`], [`Extension`], [`CallEvent`]) or a typed
//! [`PabxError`] / [`ParseError`] come out.
//!
//! Facts about the API, its quirks, the dialling rule and what is still unknown are written in
//! `docs/integrations/pabx.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), jtcrm_integrations::pabx::PabxError> {
//! use std::sync::Arc;
//! use jtcrm_integrations::pabx::{CallFilter, Pabx, PageRequest, suite::{SuiteClient, SuiteConfig}};
//!
//! let config = SuiteConfig::new("https://emnuvem.meupabxip.com.br/suite/api", "usuario", "token", 11);
//! let pabx: Arc<dyn Pabx> = Arc::new(SuiteClient::new(config)?);
//! let call = pabx.click_to_call("1001", "+5511987654321").await?;
//! let filter = CallFilter { call_id: call.provider_call_id.clone(), ..CallFilter::default() };
//! let page = pabx.list_calls(&filter, PageRequest::first(100)).await?;
//! # let _ = page; Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod dial;
pub mod event;
pub mod mock;
pub mod suite;
pub mod wire;

pub use dial::{DialError, DialPlan, dial_string, normalise_number};
pub use event::ParseError;

/// A boxed, `Send` future: what the [`Pabx`] methods return so the trait stays object-safe
/// (`Arc<dyn Pabx>`) without an `async-trait` dependency.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// ---------------------------------------------------------------------------------------------
// The trait
// ---------------------------------------------------------------------------------------------

/// A cloud PABX as the CRM sees it. Object-safe: held as `Arc<dyn Pabx>` per tenant.
///
/// Implementations must not retry on their own: the caller decides, using
/// [`PabxError::is_retryable`] (a click-to-call must never be retried blindly, it would ring the
/// customer twice).
pub trait Pabx: Send + Sync {
    /// Short stable name of the provider, for logs and metrics (e.g. `"jt_suite"`).
    fn provider(&self) -> &'static str;

    /// Rings `extension` (its number, e.g. `"1001"`) and, once it answers, dials `e164_number`
    /// (`+5511987654321`); the implementation applies its dialling rule (see [`dial`]).
    fn click_to_call<'a>(
        &'a self,
        extension: &'a str,
        e164_number: &'a str,
    ) -> BoxFuture<'a, Result<CallRef, PabxError>>;

    /// One page of the call history (CDRs), filtered by period and/or call id.
    fn list_calls<'a>(
        &'a self,
        filter: &'a CallFilter,
        page: PageRequest,
    ) -> BoxFuture<'a, Result<Page<CallRecord>, PabxError>>;

    /// Every extension (ramal) of the account.
    fn list_extensions(&self) -> BoxFuture<'_, Result<Vec<Extension>, PabxError>>;

    /// Creates an extension and returns it with its provider id.
    fn create_extension<'a>(
        &'a self,
        spec: &'a ExtensionSpec,
    ) -> BoxFuture<'a, Result<Extension, PabxError>>;

    /// Replaces the editable fields of the extension `provider_id` with `spec`.
    fn update_extension<'a>(
        &'a self,
        provider_id: &'a str,
        spec: &'a ExtensionSpec,
    ) -> BoxFuture<'a, Result<Extension, PabxError>>;

    /// Deletes the extension `provider_id`.
    fn delete_extension<'a>(&'a self, provider_id: &'a str)
    -> BoxFuture<'a, Result<(), PabxError>>;

    /// Parses a call event pushed by the PABX to the CRM (headers and raw body bytes, exactly as
    /// received). Never panics, whatever the bytes.
    fn parse_event(&self, headers: &HeaderMap, body: &[u8]) -> Result<CallEvent, ParseError>;
}

// Compile-time proof that the trait stays object-safe.
const _: Option<&dyn Pabx> = None;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a PABX request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PabxError {
    /// The PABX refused the credentials (`http_response_code` 401/403 in the envelope, or the
    /// HTTP status itself). Not retryable: the tenant must fix its `usuario`/`token`.
    #[error("PABX refused the credentials: {0}")]
    Unauthorized(String),
    /// The PABX understood the request and refused it (unknown extension, invalid number, ...):
    /// the envelope's `mensagem`. Not retryable.
    #[error("PABX rejected the request: {0}")]
    Rejected(String),
    /// The request never got a usable answer: connection error, timeout, HTTP 5xx/408/429.
    /// Retryable (but see [`Pabx`] about click-to-call).
    #[error("PABX transport error: {0}")]
    Transport(String),
    /// The PABX answered something this client cannot read (not JSON, no envelope, ...).
    #[error("PABX answered an invalid response: {0}")]
    InvalidResponse(String),
    /// The caller's input was refused before anything was sent (not an E.164 number, empty
    /// extension, bad configuration, ...). Not retryable.
    #[error("invalid input for the PABX: {0}")]
    InvalidInput(String),
}

impl PabxError {
    /// Whether trying the same request again later may succeed (only [`PabxError::Transport`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, PabxError::Transport(_))
    }

    /// Stable machine-readable code, for logs, metrics and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            PabxError::Unauthorized(_) => "pabx_unauthorized",
            PabxError::Rejected(_) => "pabx_rejected",
            PabxError::Transport(_) => "pabx_transport",
            PabxError::InvalidResponse(_) => "pabx_invalid_response",
            PabxError::InvalidInput(_) => "pabx_invalid_input",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

/// What a click-to-call returns: the provider's call id when it gives one (the suite API does
/// not always), to find the CDR later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRef {
    pub provider_call_id: Option<String>,
}

/// Direction of a call as seen from the tenant's PABX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From an outside number to the PABX (an extension, a queue, an IVR).
    Inbound,
    /// From an extension to an outside number.
    Outbound,
    /// Between two extensions.
    Internal,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Someone answered (SIP 200).
    Answered,
    /// It rang and nobody answered (SIP 480 Temporarily Unavailable, 408 Request Timeout).
    NoAnswer,
    /// The callee was busy or declined (SIP 486 Busy Here, 600 Busy Everywhere, 603 Decline).
    Busy,
    /// The call could not be completed (SIP 404 Not Found and any other final failure).
    Failed,
    /// The caller gave up before an answer (SIP 487 Request Terminated).
    Canceled,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Answered,
        Outcome::NoAnswer,
        Outcome::Busy,
        Outcome::Failed,
        Outcome::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::NoAnswer => "no_answer",
            Outcome::Busy => "busy",
            Outcome::Failed => "failed",
            Outcome::Canceled => "canceled",
        }
    }

    /// Maps a final SIP response code; `None` for provisional (1xx) or nonsense codes.
    pub fn from_sip_code(code: u16) -> Option<Outcome> {
        match code {
            200..=299 => Some(Outcome::Answered),
            486 | 600 | 603 => Some(Outcome::Busy),
            480 | 408 => Some(Outcome::NoAnswer),
            487 => Some(Outcome::Canceled),
            300..=699 => Some(Outcome::Failed),
            _ => None,
        }
    }

    /// The representative SIP code of the outcome (what the mock reports): 200, 480, 486, 404,
    /// 487.
    pub fn sip_code(self) -> u16 {
        match self {
            Outcome::Answered => 200,
            Outcome::NoAnswer => 480,
            Outcome::Busy => 486,
            Outcome::Failed => 404,
            Outcome::Canceled => 487,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A number as the PABX wrote it, and its E.164 form when it is a phone number (an extension
/// such as `"1001"` has none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartyNumber {
    pub raw: String,
    pub e164: Option<String>,
}

/// One call detail record from the PABX history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub provider_call_id: String,
    /// When the call started, converted to UTC from the PABX's local `dd/mm/aaaa HH:MM:SS`.
    /// `None` when the record carries no readable date.
    pub started_at: Option<DateTime<Utc>>,
    pub direction: Direction,
    pub from: PartyNumber,
    pub to: PartyNumber,
    /// The extension number involved (caller for outbound, callee for inbound).
    pub extension: Option<String>,
    /// The operator/agent as the PABX names them (`operador`).
    pub operator: Option<String>,
    /// The customer name the PABX knows (`cliente_nome`).
    pub contact_name: Option<String>,
    pub outcome: Outcome,
    pub sip_code: Option<u16>,
    /// Total duration, ringing included (`duracao`).
    pub duration_s: u32,
    /// Conversation time (`duracao_real`).
    pub talk_s: u32,
    /// Time waiting in queues (`tempo_espera_total_filas`).
    pub wait_s: u32,
    /// Zero, one or more recording URLs (`link_gravacao`, a string or an array).
    pub recording_urls: Vec<String>,
    pub transcription: Option<String>,
    pub summary: Option<String>,
    /// Why the call was hung up, as the PABX words it (`motivo_deligamento`, sic).
    pub hangup_reason: Option<String>,
}

/// Which calls to list. Every field is optional; the empty filter lists whatever the PABX lists
/// by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Calls that started at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Calls that started before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only this call.
    pub call_id: Option<String>,
}

/// Offset pagination: `offset` records skipped, at most `limit` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub offset: u64,
    pub limit: u32,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        PageRequest { offset: 0, limit }
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The offset this page starts at.
    pub offset: u64,
    /// Total number of matching records, when the provider reports it.
    pub total: Option<u64>,
    /// Where the next page starts, or `None` when this was the last one.
    pub next_offset: Option<u64>,
}

impl<T> Page<T> {
    /// Builds a page and works out `next_offset`: from the total when known, otherwise "a full
    /// page means there may be more".
    pub fn new(items: Vec<T>, offset: u64, limit: u32, total: Option<u64>) -> Self {
        let end = offset.saturating_add(items.len() as u64);
        let next_offset = if items.is_empty() {
            None
        } else {
            match total {
                Some(total) => (end < total).then_some(end),
                None => (items.len() as u64 >= u64::from(limit)).then_some(end),
            }
        };
        Page {
            items,
            offset,
            total,
            next_offset,
        }
    }

    /// The request for the next page, if any.
    pub fn next_request(&self, limit: u32) -> Option<PageRequest> {
        self.next_offset.map(|offset| PageRequest { offset, limit })
    }
}

// ---------------------------------------------------------------------------------------------
// Extensions
// ---------------------------------------------------------------------------------------------

/// An extension (ramal) of the PABX.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// The provider's id (`ramal_id`), used to update and delete.
    pub provider_id: String,
    /// What users dial (`numero`), e.g. `"1001"`.
    pub number: String,
    pub name: String,
    /// The extension group (`grupo_ramais`).
    pub group: Option<String>,
    /// The extension's own DDD (`codigo_area`), which decides local vs long distance.
    pub area_code: Option<u8>,
    /// The caller id shown to outside numbers (`caller_id_externo`).
    pub external_caller_id: Option<String>,
    pub record_calls: bool,
    pub blocked: bool,
}

/// The editable fields of an extension, to create or update one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionSpec {
    pub number: String,
    pub name: String,
    pub group: Option<String>,
    pub area_code: Option<u8>,
    pub external_caller_id: Option<String>,
    pub record_calls: bool,
    pub blocked: bool,
}

impl ExtensionSpec {
    /// An unblocked, recorded extension with no group, area code or caller id.
    pub fn new(number: impl Into<String>, name: impl Into<String>) -> Self {
        ExtensionSpec {
            number: number.into(),
            name: name.into(),
            group: None,
            area_code: None,
            external_caller_id: None,
            record_calls: true,
            blocked: false,
        }
    }
}

impl From<&Extension> for ExtensionSpec {
    fn from(e: &Extension) -> Self {
        ExtensionSpec {
            number: e.number.clone(),
            name: e.name.clone(),
            group: e.group.clone(),
            area_code: e.area_code,
            external_caller_id: e.external_caller_id.clone(),
            record_calls: e.record_calls,
            blocked: e.blocked,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// A call-end event pushed by the PABX. It is a hint, not the record: the CDR (with outcome,
/// SIP code, transcription) shows up in [`Pabx::list_calls`] some seconds later, so the CRM
/// should poll the history for `provider_call_id` after receiving one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEvent {
    pub provider_call_id: String,
    /// From `direcao` when present, otherwise inferred from which side is an extension.
    pub direction: Direction,
    pub from: Option<PartyNumber>,
    pub to: Option<PartyNumber>,
    pub extension: Option<String>,
    /// From `data` (local time) or, failing that, `timestamp` (Unix seconds).
    pub occurred_at: Option<DateTime<Utc>>,
    pub duration_s: Option<u32>,
    pub recording_urls: Vec<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sip_codes_map_to_outcomes() {
        assert_eq!(Outcome::from_sip_code(200), Some(Outcome::Answered));
        assert_eq!(Outcome::from_sip_code(486), Some(Outcome::Busy));
        assert_eq!(Outcome::from_sip_code(487), Some(Outcome::Canceled));
        assert_eq!(Outcome::from_sip_code(480), Some(Outcome::NoAnswer));
        assert_eq!(Outcome::from_sip_code(404), Some(Outcome::Failed));
        assert_eq!(Outcome::from_sip_code(503), Some(Outcome::Failed));
        assert_eq!(Outcome::from_sip_code(603), Some(Outcome::Busy));
        assert_eq!(Outcome::from_sip_code(180), None);
        assert_eq!(Outcome::from_sip_code(0), None);
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_sip_code(o.sip_code()), Some(o));
        }
    }

    #[test]
    fn page_next_offset() {
        let p = Page::new(vec![1, 2, 3], 0, 3, Some(7));
        assert_eq!(p.next_offset, Some(3));
        let p = Page::new(vec![7], 6, 3, Some(7));
        assert_eq!(p.next_offset, None);
        let p = Page::new(vec![1, 2, 3], 3, 3, None);
        assert_eq!(p.next_offset, Some(6));
        let p = Page::new(vec![1, 2], 3, 3, None);
        assert_eq!(p.next_offset, None);
        let p: Page<u8> = Page::new(vec![], 3, 3, Some(100));
        assert_eq!(p.next_offset, None);
    }

    #[test]
    fn only_transport_is_retryable() {
        assert!(PabxError::Transport("x".into()).is_retryable());
        assert!(!PabxError::Unauthorized("x".into()).is_retryable());
        assert!(!PabxError::Rejected("x".into()).is_retryable());
        assert!(!PabxError::InvalidResponse("x".into()).is_retryable());
        assert!(!PabxError::InvalidInput("x".into()).is_retryable());
    }
}
