//! A faithful local mock of the suite API, for tests, `jtcrm system-test` and a newcomer's local
//! trial.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use jtcrm_integrations::pabx::mock::{self, MockOutcome, MockPabxOptions};
//! use jtcrm_integrations::pabx::suite::SuiteClient;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let mock = mock::serve(listener, MockPabxOptions::default()).await;
//! mock.script_call("+5511987654321", MockOutcome::Busy);
//! let client = SuiteClient::new(mock.suite_config(11))?;
//! # Ok(()) }
//! ```
//!
//! What it does like the real API (as far as public clients show it):
//! - every endpoint under `/suite/api/` requires the `usuario` and `token` headers; missing ones
//!   get the envelope with `http_response_code` 401, wrong ones 403, both inside an HTTP 200;
//! - `POST /discar_numero` checks that `numero_ramal_origem` is an existing, unblocked extension
//!   (else envelope 404/400) and that `numero_destino` is digits, and returns `chamada_id`;
//! - the CDR appears in `GET /listar_historico_chamada` only after the CDR delay (default 2 s,
//!   [`MockPabxOptions::cdr_delay`], [`MockPabx::set_cdr_delay`], [`MockPabx::advance`]);
//! - the history paginates with `quantidade` (1..=1000, larger values are clamped, default 100)
//!   and `pos_registro_inicial` (0-based), reports `qtd_total_resultados`, filters by
//!   `chamada_id`, `data_inicial/hora_inicial/data_final/hora_final` (a continuous local period),
//!   `filtro_status_chamada` (0, 1, 2, 486), `numero_origem`, `numero_destino`, and only includes
//!   `transcricao`/`resumo` when `retorna_transcricao=sim`/`retorna_resumo=sim`;
//! - dates are `dd/mm/aaaa HH:MM:SS` local time, durations `HH:MM:SS`;
//! - types are deliberately mixed, deterministically by call index `i` (0-based order of
//!   creation): `chamada_id` and `sip_code` are ints for even `i` and strings for odd `i`;
//!   `link_gravacao` is a string for even `i` and an array for odd `i` (two recordings when
//!   `i % 4 == 1`), `""`/`[]` without a recording and `null` when `i % 4 == 3` has none;
//!   `qtd_total_resultados` is an int in the history and a string in `listar_ramais`;
//! - `sip_code` per outcome: 200 answered, 480 no answer, 486 busy, 404 failed, 487 canceled;
//! - recordings are served at `GET /gravacoes/<chamada_id>-<n>.wav` (no auth) as a 1 s silent
//!   8 kHz WAV;
//! - `listar_ramais?ramal_id=0`, `inserir_ramal` (POST), `alterar_ramal` (PUT or POST),
//!   `deletar_ramal` (DELETE or POST; id in the body or the query); bodies may be wrapped in
//!   `{"dados": ...}` or flat;
//! - optionally POSTs a call-end event to [`MockPabxOptions::event_url`] when a call ends (at
//!   creation: the mock's calls end at once), before the CDR is visible, as JSON, JSON with a
//!   trailing comma, or a form ([`EventFormat`]; see [`fixtures`]).
//!
//! Test controls: [`MockPabx::script_call`] (the next call to a number is answered after N s /
//! busy / not answered / fails / is canceled), [`MockPabx::push_inbound`], [`MockPabx::calls`],
//! [`MockPabx::fail_next`] (answer HTTP 5xx), [`MockPabx::set_latency`], [`MockPabx::requests`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Utc};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::dial::normalise_number;
use super::suite::SuiteConfig;
use super::wire::{self, flex_bool, flex_string};
use super::{Direction, Extension, ExtensionSpec, Outcome};

/// How a mocked call ends. Times are what the CDR reports; the mock does not wait them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MockOutcome {
    /// Answered after ringing `ring_s` seconds, then `talk_s` seconds of conversation.
    Answered { ring_s: u32, talk_s: u32 },
    /// Rang `ring_s` seconds, nobody answered (SIP 480).
    NoAnswer { ring_s: u32 },
    /// Busy (SIP 486).
    Busy,
    /// Could not be completed (SIP 404).
    Failed,
    /// The caller hung up after `ring_s` seconds of ringing (SIP 487).
    Canceled { ring_s: u32 },
}

impl MockOutcome {
    pub fn outcome(&self) -> Outcome {
        match self {
            MockOutcome::Answered { .. } => Outcome::Answered,
            MockOutcome::NoAnswer { .. } => Outcome::NoAnswer,
            MockOutcome::Busy => Outcome::Busy,
            MockOutcome::Failed => Outcome::Failed,
            MockOutcome::Canceled { .. } => Outcome::Canceled,
        }
    }

    pub fn ring_s(&self) -> u32 {
        match *self {
            MockOutcome::Answered { ring_s, .. }
            | MockOutcome::NoAnswer { ring_s }
            | MockOutcome::Canceled { ring_s } => ring_s,
            MockOutcome::Busy | MockOutcome::Failed => 0,
        }
    }

    pub fn talk_s(&self) -> u32 {
        match *self {
            MockOutcome::Answered { talk_s, .. } => talk_s,
            _ => 0,
        }
    }

    /// The `status` word of the CDR (the `filtro_status_chamada` labels).
    fn status_label(&self) -> &'static str {
        match self {
            MockOutcome::Answered { .. } => "Atendido",
            MockOutcome::NoAnswer { .. } | MockOutcome::Canceled { .. } => "Não atendido",
            MockOutcome::Busy => "Ocupado",
            MockOutcome::Failed => "Falha",
        }
    }

    /// The `filtro_status_chamada` code the call matches.
    fn status_code(&self) -> u16 {
        match self {
            MockOutcome::Answered { .. } => 1,
            MockOutcome::NoAnswer { .. } | MockOutcome::Canceled { .. } => 0,
            MockOutcome::Busy => 486,
            MockOutcome::Failed => 2,
        }
    }

    fn hangup_reason(&self, direction: Direction) -> &'static str {
        match (self, direction) {
            (MockOutcome::Answered { .. }, Direction::Inbound) => "Cliente desligou",
            (MockOutcome::Answered { .. }, _) => "Origem desligou",
            (MockOutcome::NoAnswer { .. }, _) => "Sem resposta",
            (MockOutcome::Busy, _) => "Destino ocupado",
            (MockOutcome::Failed, _) => "Número inexistente",
            (MockOutcome::Canceled { .. }, _) => "Cancelada pela origem",
        }
    }
}

/// Shape of the call-end events the mock POSTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    /// Valid JSON, numbers as strings.
    Json,
    /// The same JSON with a trailing comma before the closing brace (invalid JSON, as some real
    /// templates produce).
    JsonTrailingComma,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// By call index: `i % 3` = 0 JSON, 1 JSON with a trailing comma, 2 form.
    Rotate,
}

/// Documented event fixtures, as a deployment's template sends them.
pub mod fixtures {
    /// A call-end event with a trailing comma (invalid JSON) and numbers as strings.
    pub const EVENT_TRAILING_COMMA: &str = r#"{"callid":"1000001","origem":"1001","destino":"021987654321","direcao":"saida","data":"05/03/2025 14:03:07","timestamp":"1741194187","duracao":"52","gravacao":"https://pabx.example/gravacoes/1000001-1.wav",}"#;
    /// A call-end event with ints, an `HH:MM:SS` duration and the recording as an array.
    pub const EVENT_INTS_AND_ARRAY: &str = r#"{"callid":1000002,"origem":11987654321,"destino":1002,"direcao":"entrada","data":"05/03/2025 14:05:00","timestamp":1741194300,"duracao":"00:01:05","gravacao":["https://pabx.example/gravacoes/1000002-1.wav",]}"#;
    /// A form-encoded call-end event of an unanswered call (no recording).
    pub const EVENT_FORM: &str = "callid=1000003&origem=1001&destino=011987654321&direcao=saida&data=05%2F03%2F2025+14%3A06%3A10&timestamp=1741194370&duracao=0&gravacao=";
}

/// Options of the mock.
#[derive(Debug, Clone)]
pub struct MockPabxOptions {
    pub usuario: String,
    pub token: String,
    /// How long after a call the CDR shows up in the history (default 2 s).
    pub cdr_delay: Duration,
    /// Initial extensions (default 1001 Recepção, 1002 Vendas, 1003 Suporte, DDD 11).
    pub extensions: Vec<ExtensionSpec>,
    /// The account's DDD: assumed for extensions without one, to match scripted numbers and to
    /// write inbound caller ids.
    pub area_code: u8,
    /// The PABX's local time (default UTC−03:00).
    pub utc_offset: FixedOffset,
    /// Outcome of calls nobody scripted (default answered after 5 s, 42 s of talk).
    pub default_outcome: MockOutcome,
    /// Where to POST call-end events (none by default).
    pub event_url: Option<String>,
    pub event_format: EventFormat,
}

impl Default for MockPabxOptions {
    fn default() -> Self {
        let ext = |n: &str, name: &str, group: &str| ExtensionSpec {
            group: Some(group.into()),
            area_code: Some(11),
            ..ExtensionSpec::new(n, name)
        };
        MockPabxOptions {
            usuario: "jtcrm".into(),
            token: "mock-token".into(),
            cdr_delay: Duration::from_secs(2),
            extensions: vec![
                ext("1001", "Recepção", "Atendimento"),
                ext("1002", "Vendas", "Comercial"),
                ext("1003", "Suporte", "Atendimento"),
            ],
            area_code: 11,
            utc_offset: wire::sao_paulo_offset(),
            default_outcome: MockOutcome::Answered {
                ring_s: 5,
                talk_s: 42,
            },
            event_url: None,
            event_format: EventFormat::Rotate,
        }
    }
}

/// A call as the mock stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockCall {
    pub id: u64,
    /// 0-based order of creation; decides the deterministic type mixing.
    pub index: usize,
    pub direction: Direction,
    /// `origem` as the CDR writes it.
    pub origem: String,
    /// `destino` as the CDR writes it (for click-to-call: what was dialled).
    pub destino: String,
    pub extension: String,
    pub outcome: MockOutcome,
    pub started_at: DateTime<Utc>,
    /// Recording paths, relative to the server root (`/gravacoes/<id>-<n>.wav`).
    pub recording_paths: Vec<String>,
    /// Whether the CDR is visible in the history yet.
    pub visible: bool,
}

/// An inbound call to inject with [`MockPabx::push_inbound`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundCall {
    /// The caller, preferably E.164; the CDR writes it in a rotating format.
    pub from: String,
    /// The extension number that rang.
    pub extension: String,
    pub outcome: MockOutcome,
}

/// A call-end event the mock tried to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEvent {
    pub call_id: u64,
    pub url: String,
    pub content_type: String,
    pub body: String,
    /// The receiver's HTTP status, or `None` when the POST failed (see `error`).
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// A request the mock received (after latency, before failure injection and auth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockRequest {
    pub method: String,
    /// Path under `/suite/api`, e.g. `/discar_numero`.
    pub path: String,
    pub query: String,
    pub body: String,
}

struct PendingEvent {
    url: String,
    format: EventFormat,
    offset: FixedOffset,
    origin: String,
}

struct StoredCall {
    call: MockCall,
    visible_at: Instant,
}

struct MockState {
    usuario: String,
    token: String,
    area_code: u8,
    utc_offset: FixedOffset,
    default_outcome: MockOutcome,
    event_url: Option<String>,
    event_format: EventFormat,
    cdr_delay: Duration,
    clock_offset: Duration,
    next_ramal_id: u64,
    extensions: Vec<Extension>,
    next_call_id: u64,
    calls: Vec<StoredCall>,
    scripts: HashMap<String, VecDeque<MockOutcome>>,
    failures: VecDeque<u16>,
    latency: Duration,
    events: Vec<SentEvent>,
    requests: Vec<MockRequest>,
    /// `http://host:port` of the server, for links in events (set by [`serve`]).
    origin: Option<String>,
}

impl MockState {
    fn now(&self) -> Instant {
        Instant::now() + self.clock_offset
    }

    fn record_event(&mut self, event: SentEvent) {
        if self.events.len() >= LOG_CAP {
            self.events.drain(..LOG_CAP / 10);
        }
        self.events.push(event);
    }

    fn pending_event(&self) -> Option<PendingEvent> {
        self.event_url.clone().map(|url| PendingEvent {
            url,
            format: self.event_format,
            offset: self.utc_offset,
            origin: self.origin.clone().unwrap_or_default(),
        })
    }

    fn script_key(&self, number: &str, area_code: u8) -> String {
        normalise_number(number, Some(area_code))
            .unwrap_or_else(|| number.chars().filter(char::is_ascii_digit).collect())
    }

    fn insert_extension(&mut self, spec: &ExtensionSpec) -> Extension {
        let ext = Extension {
            provider_id: self.next_ramal_id.to_string(),
            number: spec.number.trim().to_owned(),
            name: spec.name.trim().to_owned(),
            group: spec.group.clone().filter(|g| !g.trim().is_empty()),
            area_code: spec.area_code,
            external_caller_id: spec
                .external_caller_id
                .clone()
                .filter(|c| !c.trim().is_empty()),
            record_calls: spec.record_calls,
            blocked: spec.blocked,
        };
        self.next_ramal_id += 1;
        self.extensions.push(ext.clone());
        ext
    }

    fn add_call(
        &mut self,
        direction: Direction,
        origem: String,
        destino: String,
        extension: String,
        outcome: MockOutcome,
    ) -> MockCall {
        let id = self.next_call_id;
        self.next_call_id += 1;
        let index = self.calls.len();
        let records = self
            .extensions
            .iter()
            .find(|e| e.number == extension)
            .is_none_or(|e| e.record_calls);
        let recordings = match outcome {
            MockOutcome::Answered { .. } if records => {
                if index % 4 == 1 {
                    2
                } else {
                    1
                }
            }
            _ => 0,
        };
        let call = MockCall {
            id,
            index,
            direction,
            origem,
            destino,
            extension,
            outcome,
            started_at: Utc::now(),
            recording_paths: (1..=recordings)
                .map(|n| format!("/gravacoes/{id}-{n}.wav"))
                .collect(),
            visible: self.cdr_delay.is_zero(),
        };
        self.calls.push(StoredCall {
            call: call.clone(),
            visible_at: self.now() + self.cdr_delay,
        });
        call
    }
}

struct Shared {
    state: Mutex<MockState>,
    http: reqwest::Client,
}

/// The mock PABX: shared state plus its axum [`Router`]. Cheap to clone.
#[derive(Clone)]
pub struct MockPabx {
    inner: Arc<Shared>,
}

impl MockPabx {
    pub fn new(opts: MockPabxOptions) -> Self {
        let mut state = MockState {
            usuario: opts.usuario,
            token: opts.token,
            area_code: opts.area_code,
            utc_offset: opts.utc_offset,
            default_outcome: opts.default_outcome,
            event_url: opts.event_url,
            event_format: opts.event_format,
            cdr_delay: opts.cdr_delay,
            clock_offset: Duration::ZERO,
            next_ramal_id: 1,
            extensions: Vec::new(),
            next_call_id: 1_000_001,
            calls: Vec::new(),
            scripts: HashMap::new(),
            failures: VecDeque::new(),
            latency: Duration::ZERO,
            events: Vec::new(),
            requests: Vec::new(),
            origin: None,
        };
        for spec in &opts.extensions {
            state.insert_extension(spec);
        }
        MockPabx {
            inner: Arc::new(Shared {
                state: Mutex::new(state),
                http: reqwest::Client::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MockState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The routes: the API under `/suite/api/…` and the recordings under `/gravacoes/…`.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/discar_numero", post(discar_numero))
            .route("/listar_historico_chamada", get(listar_historico))
            .route("/listar_chamadas_online", get(listar_online))
            .route("/listar_ramais", get(listar_ramais))
            .route("/inserir_ramal", post(inserir_ramal))
            .route("/alterar_ramal", post(alterar_ramal).put(alterar_ramal))
            .route("/deletar_ramal", post(deletar_ramal).delete(deletar_ramal))
            .fallback(unknown_endpoint)
            .layer(middleware::from_fn_with_state(self.clone(), api_gate))
            .with_state(self.clone());
        Router::new()
            .nest("/suite/api", api)
            .route("/gravacoes/{file}", get(gravacao))
            .with_state(self.clone())
    }

    // ---- seeding and inspection ---------------------------------------------------------------

    /// Adds an extension; returns it with its `ramal_id`.
    pub fn add_extension(&self, spec: ExtensionSpec) -> Extension {
        self.lock().insert_extension(&spec)
    }

    pub fn extensions(&self) -> Vec<Extension> {
        self.lock().extensions.clone()
    }

    /// The next call to `number` (E.164 or as dialled) ends with `outcome`. Several scripts for
    /// one number are used in order.
    pub fn script_call(&self, number: &str, outcome: MockOutcome) {
        let mut s = self.lock();
        let key = s.script_key(number, s.area_code);
        s.scripts.entry(key).or_default().push_back(outcome);
    }

    /// Injects an inbound call from `call.from` to `call.extension`; returns its `chamada_id`.
    /// Its CDR follows the CDR delay like any other, and a call-end event is sent when
    /// configured.
    pub fn push_inbound(&self, call: InboundCall) -> String {
        let (stored, event) = {
            let mut s = self.lock();
            let index = s.calls.len();
            let origem = inbound_caller_id(&call.from, index, s.area_code);
            let stored = s.add_call(
                Direction::Inbound,
                origem,
                call.extension.trim().to_owned(),
                call.extension.trim().to_owned(),
                call.outcome,
            );
            let event = s.pending_event();
            (stored, event)
        };
        self.send_event(&stored, event);
        stored.id.to_string()
    }

    /// Every call, visible or not, in creation order.
    pub fn calls(&self) -> Vec<MockCall> {
        let s = self.lock();
        let now = s.now();
        s.calls
            .iter()
            .map(|c| MockCall {
                visible: c.visible_at <= now,
                ..c.call.clone()
            })
            .collect()
    }

    /// Moves the mock's clock forward: CDRs due within `by` become visible. Call timestamps are
    /// not affected.
    pub fn advance(&self, by: Duration) {
        let mut s = self.lock();
        s.clock_offset += by;
    }

    /// Makes every pending CDR visible now.
    pub fn release_all(&self) {
        let mut s = self.lock();
        let now = s.now();
        for c in &mut s.calls {
            c.visible_at = c.visible_at.min(now);
        }
    }

    /// The CDR delay of calls made from now on.
    pub fn set_cdr_delay(&self, delay: Duration) {
        self.lock().cdr_delay = delay;
    }

    pub fn cdr_delay(&self) -> Duration {
        self.lock().cdr_delay
    }

    /// The next `n` API requests get HTTP `status` with a plain-text body (no envelope).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock().failures.extend(std::iter::repeat_n(status, n));
    }

    /// Delay before answering every API request (to test timeouts).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn set_event_url(&self, url: Option<String>) {
        self.lock().event_url = url;
    }

    pub fn set_event_format(&self, format: EventFormat) {
        self.lock().event_format = format;
    }

    /// Events sent so far (an entry is added when the POST completes or fails).
    pub fn events_sent(&self) -> Vec<SentEvent> {
        self.lock().events.clone()
    }

    /// API requests received so far.
    pub fn requests(&self) -> Vec<MockRequest> {
        self.lock().requests.clone()
    }

    pub fn credentials(&self) -> (String, String) {
        let s = self.lock();
        (s.usuario.clone(), s.token.clone())
    }

    /// Sets the origin (`http://host:port`) used in the recording links of events; [`serve`]
    /// sets it.
    pub fn set_origin(&self, origin: impl Into<String>) {
        self.lock().origin = Some(origin.into());
    }

    fn send_event(&self, call: &MockCall, event: Option<PendingEvent>) {
        let Some(PendingEvent {
            url,
            format,
            offset,
            origin,
        }) = event
        else {
            return;
        };
        let (content_type, body) = render_event(call, format, offset, &origin);
        let this = self.clone();
        let call_id = call.id;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            this.lock().record_event(SentEvent {
                call_id,
                url,
                content_type: content_type.to_owned(),
                body,
                status: None,
                error: Some("no Tokio runtime to send the event from".into()),
            });
            return;
        };
        runtime.spawn(async move {
            let result = this
                .inner
                .http
                .post(&url)
                .header(header::CONTENT_TYPE, content_type)
                .body(body.clone())
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            let (status, error) = match result {
                Ok(resp) => (Some(resp.status().as_u16()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            this.lock().record_event(SentEvent {
                call_id,
                url,
                content_type: content_type.to_owned(),
                body,
                status,
                error,
            });
        });
    }
}

/// The caller id of an inbound call as the CDR writes it, rotating by index between
/// `11987654321`, `011987654321`, `+5511987654321` and `5511987654321`.
fn inbound_caller_id(from: &str, index: usize, area_code: u8) -> String {
    let Some(e164) = normalise_number(from, Some(area_code)) else {
        return from.trim().to_owned();
    };
    let Some(national) = e164.strip_prefix("+55") else {
        return e164;
    };
    match index % 4 {
        0 => national.to_owned(),
        1 => format!("0{national}"),
        2 => e164.clone(),
        _ => format!("55{national}"),
    }
}

/// The content type and body of a call-end event for `call` in `format`; recording links are
/// prefixed with `origin` (`http://host:port`, may be empty).
pub fn render_event(
    call: &MockCall,
    format: EventFormat,
    offset: FixedOffset,
    origin: &str,
) -> (&'static str, String) {
    let format = match format {
        EventFormat::Rotate => match call.index % 3 {
            0 => EventFormat::Json,
            1 => EventFormat::JsonTrailingComma,
            _ => EventFormat::Form,
        },
        f => f,
    };
    let gravacao = call
        .recording_paths
        .first()
        .map(|p| format!("{origin}{p}"))
        .unwrap_or_default();
    let direcao = match call.direction {
        Direction::Inbound => "entrada",
        Direction::Outbound => "saida",
        Direction::Internal => "interna",
    };
    let fields: [(&str, String); 8] = [
        ("callid", call.id.to_string()),
        ("origem", call.origem.clone()),
        ("destino", call.destino.clone()),
        ("direcao", direcao.into()),
        ("data", wire::format_datetime(call.started_at, offset)),
        ("timestamp", call.started_at.timestamp().to_string()),
        (
            "duracao",
            (call.outcome.ring_s() + call.outcome.talk_s()).to_string(),
        ),
        ("gravacao", gravacao),
    ];
    match format {
        EventFormat::Form => (
            "application/x-www-form-urlencoded",
            serde_urlencoded::to_string(fields).unwrap_or_default(),
        ),
        _ => {
            let mut body = String::from("{");
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(&Value::from(*k).to_string());
                body.push(':');
                body.push_str(&Value::from(v.as_str()).to_string());
            }
            if format == EventFormat::JsonTrailingComma {
                body.push(',');
            }
            body.push('}');
            ("application/json", body)
        }
    }
}

/// A served mock: the [`MockPabx`] (through `Deref`), its address and base URL. The server stops
/// when the handle is dropped.
pub struct MockPabxHandle {
    pabx: MockPabx,
    addr: SocketAddr,
    base_url: String,
    task: JoinHandle<()>,
}

impl MockPabxHandle {
    /// `http://127.0.0.1:<port>/suite/api`, what a [`SuiteConfig`] takes as `base_url`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pabx(&self) -> &MockPabx {
        &self.pabx
    }

    /// A client configuration for this mock with the right credentials and the given DDD.
    pub fn suite_config(&self, area_code: u8) -> SuiteConfig {
        let (usuario, token) = self.pabx.credentials();
        SuiteConfig::new(self.base_url.clone(), usuario, token, area_code)
    }

    /// Recording URLs of a call as the history reports them.
    pub fn recording_urls(&self, call: &MockCall) -> Vec<String> {
        call.recording_paths
            .iter()
            .map(|p| format!("{}{p}", self.origin()))
            .collect()
    }

    /// Stops the server.
    pub fn shutdown(self) {
        self.task.abort();
    }
}

impl Deref for MockPabxHandle {
    type Target = MockPabx;

    fn deref(&self) -> &MockPabx {
        &self.pabx
    }
}

impl Drop for MockPabxHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves a new mock on `listener` (bind `127.0.0.1:0` for a free port) until the handle is
/// dropped.
pub async fn serve(listener: TcpListener, opts: MockPabxOptions) -> MockPabxHandle {
    let pabx = MockPabx::new(opts);
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    pabx.set_origin(format!("http://{addr}"));
    let router = pabx.router();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "mock PABX server stopped");
        }
    });
    MockPabxHandle {
        pabx,
        addr,
        base_url: format!("http://{addr}/suite/api"),
        task,
    }
}

// -------------------------------------------------------------------------------------------------
// HTTP side
// -------------------------------------------------------------------------------------------------

const MAX_BODY: usize = 1 << 20;

/// The request and event logs keep at most this many entries (the oldest tenth is dropped).
const LOG_CAP: usize = 10_000;

fn envelope(code: u16, mensagem: &str, dados: Value, total: Value) -> Response {
    let returned = dados.as_array().map(Vec::len).unwrap_or(0);
    axum::Json(json!({
        "http_response_code": code,
        "mensagem": mensagem,
        "qtd_total_resultados": total,
        "qtd_resultados_retornados": returned,
        "dados": dados,
    }))
    .into_response()
}

fn envelope_error(code: u16, mensagem: &str) -> Response {
    envelope(code, mensagem, json!([]), json!(0))
}

/// An envelope error not yet turned into a response (keeps `Result`s small).
struct Fail {
    code: u16,
    mensagem: String,
}

impl Fail {
    fn new(code: u16, mensagem: &str) -> Self {
        Fail {
            code,
            mensagem: mensagem.to_owned(),
        }
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        envelope_error(self.code, &self.mensagem)
    }
}

/// Logging, latency, failure injection and authentication of every API request.
async fn api_gate(State(m): State<MockPabx>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let latency = {
        let mut s = m.lock();
        if s.requests.len() >= LOG_CAP {
            s.requests.drain(..LOG_CAP / 10);
        }
        s.requests.push(MockRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
        s.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (failure, credentials) = {
        let mut s = m.lock();
        (s.failures.pop_front(), (s.usuario.clone(), s.token.clone()))
    };
    if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            status,
            "<html><body><h1>Internal Server Error</h1></body></html>",
        )
            .into_response();
    }
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    match (header("usuario"), header("token")) {
        (Some(u), Some(t)) if u == credentials.0 && t == credentials.1 => {}
        (None, _) | (_, None) => {
            return envelope_error(
                401,
                "Autenticação obrigatória: informe os cabeçalhos usuario e token",
            );
        }
        _ => return envelope_error(403, "Usuário ou token inválido"),
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn unknown_endpoint() -> Response {
    (StatusCode::NOT_FOUND, "Endpoint não encontrado").into_response()
}

/// The request's `dados` object (or the flat body), or an envelope error.
fn body_dados(bytes: &Bytes) -> Result<Map<String, Value>, Fail> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| Fail::new(400, "JSON inválido no corpo da requisição"))?;
    match value {
        Value::Object(mut m) => match m.remove("dados") {
            Some(Value::Object(d)) => Ok(d),
            Some(_) => Err(Fail::new(400, "Campo dados inválido")),
            None => Ok(m),
        },
        _ => Err(Fail::new(
            400,
            "Corpo da requisição deve ser um objeto JSON",
        )),
    }
}

async fn discar_numero(State(m): State<MockPabx>, bytes: Bytes) -> Response {
    let dados = match body_dados(&bytes) {
        Ok(d) => d,
        Err(fail) => return fail.into_response(),
    };
    let Some(ramal) = dados.get("numero_ramal_origem").and_then(flex_string) else {
        return envelope_error(400, "Parâmetro numero_ramal_origem obrigatório");
    };
    let Some(destino) = dados.get("numero_destino").and_then(flex_string) else {
        return envelope_error(400, "Parâmetro numero_destino obrigatório");
    };
    if !(3..=20).contains(&destino.len()) || !destino.bytes().all(|b| b.is_ascii_digit()) {
        return envelope_error(400, "Número de destino inválido");
    }
    let (call, event) = {
        let mut s = m.lock();
        let Some(ext) = s.extensions.iter().find(|e| e.number == ramal).cloned() else {
            return envelope_error(404, &format!("Ramal de origem {ramal} não encontrado"));
        };
        if ext.blocked {
            return envelope_error(400, &format!("Ramal {ramal} bloqueado"));
        }
        let area = ext.area_code.unwrap_or(s.area_code);
        let key = s.script_key(&destino, area);
        let outcome = s
            .scripts
            .get_mut(&key)
            .and_then(VecDeque::pop_front)
            .unwrap_or(s.default_outcome);
        let call = s.add_call(Direction::Outbound, ramal.clone(), destino, ramal, outcome);
        let event = s.pending_event();
        (call, event)
    };
    m.send_event(&call, event);
    let chamada_id = if call.index % 2 == 0 {
        Value::from(call.id)
    } else {
        Value::from(call.id.to_string())
    };
    axum::Json(json!({
        "http_response_code": 200,
        "mensagem": "Chamada originada com sucesso",
        "chamada_id": chamada_id,
        "qtd_total_resultados": 0,
        "qtd_resultados_retornados": 0,
        "dados": [],
    }))
    .into_response()
}

fn origin_from_headers(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn parse_date_param(q: &HashMap<String, String>, key: &str) -> Result<Option<NaiveDate>, Fail> {
    match q.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%d/%m/%Y")
            .map(Some)
            .map_err(|_| Fail::new(400, &format!("Parâmetro {key} inválido: use dd/mm/aaaa"))),
    }
}

fn parse_time_param(q: &HashMap<String, String>, key: &str) -> Result<Option<NaiveTime>, Fail> {
    match q.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => NaiveTime::parse_from_str(v, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(v, "%H:%M:%S"))
            .map(Some)
            .map_err(|_| Fail::new(400, &format!("Parâmetro {key} inválido: use HH:MM"))),
    }
}

fn parse_count_param(q: &HashMap<String, String>, key: &str, default: u64) -> Result<u64, Fail> {
    match q.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| Fail::new(400, &format!("Parâmetro {key} inválido"))),
    }
}

fn yes(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key)
        .map(|v| flex_bool(&Value::from(v.as_str())).unwrap_or(false))
        .unwrap_or(false)
}

struct HistoryQuery {
    call_id: Option<String>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    status: Option<u16>,
    origem: Option<String>,
    destino: Option<String>,
    limit: usize,
    offset: usize,
    transcription: bool,
    summary: bool,
}

fn history_query(
    q: &HashMap<String, String>,
    offset_tz: FixedOffset,
) -> Result<HistoryQuery, Fail> {
    let local = |d: NaiveDate, t: NaiveTime| {
        d.and_time(t)
            .and_local_timezone(offset_tz)
            .single()
            .map(|dt| dt.with_timezone(&Utc))
    };
    let start = match parse_date_param(q, "data_inicial")? {
        Some(d) => {
            let t = parse_time_param(q, "hora_inicial")?.unwrap_or(NaiveTime::MIN);
            local(d, t)
        }
        None => None,
    };
    let end = match parse_date_param(q, "data_final")? {
        Some(d) => {
            let t = parse_time_param(q, "hora_final")?
                .unwrap_or_else(|| NaiveTime::from_hms_opt(23, 59, 0).unwrap_or(NaiveTime::MIN));
            // The final minute is inclusive.
            local(d, t).map(|e| e + chrono::Duration::seconds(59))
        }
        None => None,
    };
    let status = match q
        .get("filtro_status_chamada")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(v) => match v.parse::<u16>() {
            Ok(c @ (0 | 1 | 2 | 486)) => Some(c),
            _ => {
                return Err(Fail::new(400, "Parâmetro filtro_status_chamada inválido"));
            }
        },
    };
    let limit = parse_count_param(q, "quantidade", 100)?.clamp(1, 1000);
    let offset = parse_count_param(q, "pos_registro_inicial", 0)?;
    let digits = |key: &str| {
        q.get(key)
            .map(|v| v.chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|v| !v.is_empty())
    };
    Ok(HistoryQuery {
        call_id: q
            .get("chamada_id")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty()),
        start,
        end,
        status,
        origem: digits("numero_origem"),
        destino: digits("numero_destino"),
        limit: usize::try_from(limit).unwrap_or(1000),
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
        transcription: yes(q, "retorna_transcricao"),
        summary: yes(q, "retorna_resumo"),
    })
}

async fn listar_historico(
    State(m): State<MockPabx>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let origin = origin_from_headers(&headers);
    let s = m.lock();
    let hq = match history_query(&q, s.utc_offset) {
        Ok(hq) => hq,
        Err(fail) => return fail.into_response(),
    };
    let now = s.now();
    let matching: Vec<&StoredCall> = s
        .calls
        .iter()
        .filter(|c| c.visible_at <= now)
        .filter(|c| {
            hq.call_id
                .as_deref()
                .is_none_or(|id| id == c.call.id.to_string())
        })
        .filter(|c| hq.start.is_none_or(|st| c.call.started_at >= st))
        .filter(|c| hq.end.is_none_or(|e| c.call.started_at <= e))
        .filter(|c| {
            hq.status
                .is_none_or(|st| c.call.outcome.status_code() == st)
        })
        .filter(|c| {
            hq.origem
                .as_deref()
                .is_none_or(|o| c.call.origem.contains(o))
        })
        .filter(|c| {
            hq.destino
                .as_deref()
                .is_none_or(|d| c.call.destino.contains(d))
        })
        .collect();
    let total = matching.len();
    let dados: Vec<Value> = matching
        .into_iter()
        .skip(hq.offset)
        .take(hq.limit)
        .map(|c| cdr_json(&c.call, &s, &origin, hq.transcription, hq.summary))
        .collect();
    envelope(200, "Sucesso", Value::Array(dados), json!(total))
}

fn cdr_json(
    call: &MockCall,
    s: &MockState,
    origin: &str,
    transcription: bool,
    summary: bool,
) -> Value {
    let i = call.index;
    let (ring, talk) = (call.outcome.ring_s(), call.outcome.talk_s());
    let operator = s
        .extensions
        .iter()
        .find(|e| e.number == call.extension)
        .map(|e| e.name.clone())
        .unwrap_or_default();
    let urls: Vec<Value> = call
        .recording_paths
        .iter()
        .map(|p| Value::from(format!("{origin}{p}")))
        .collect();
    let link_gravacao = match (urls.first(), i.is_multiple_of(2)) {
        (Some(first), true) => first.clone(),
        (Some(_), false) => Value::Array(urls),
        (None, _) if i % 4 == 3 => Value::Null,
        (None, true) => Value::from(""),
        (None, false) => json!([]),
    };
    let sip = call.outcome.outcome().sip_code();
    let mut r = json!({
        "chamada_id": if i.is_multiple_of(2) { Value::from(call.id) } else { Value::from(call.id.to_string()) },
        "data": wire::format_datetime(call.started_at, s.utc_offset),
        "cliente_nome": "",
        "origem": call.origem,
        "destino": call.destino,
        "operador": operator,
        "status": call.outcome.status_label(),
        "sip_code": if i.is_multiple_of(2) { Value::from(sip) } else { Value::from(sip.to_string()) },
        "duracao": wire::format_hms(ring + talk),
        "duracao_real": wire::format_hms(talk),
        "tempo_espera_total_filas": wire::format_hms(if call.direction == Direction::Inbound { ring } else { 0 }),
        "tempo_operador_total_filas": wire::format_hms(talk),
        "motivo_deligamento": call.outcome.hangup_reason(call.direction),
        "link_gravacao": link_gravacao,
    });
    let answered = matches!(call.outcome, MockOutcome::Answered { .. });
    if let Some(obj) = r.as_object_mut() {
        if transcription {
            let text = if answered {
                "Operador: Olá, aqui é da JT Telecom, tudo bem? Cliente: Tudo, pode falar."
                    .to_owned()
            } else {
                String::new()
            };
            obj.insert("transcricao".into(), Value::from(text));
        }
        if summary {
            let text = if answered {
                format!("Cliente atendeu; conversa de {talk} s.")
            } else {
                String::new()
            };
            obj.insert("resumo".into(), Value::from(text));
        }
    }
    r
}

async fn listar_online() -> Response {
    envelope(200, "Sucesso", json!([]), json!(0))
}

fn extension_json(e: &Extension) -> Value {
    let flag = |b: bool| if b { "1" } else { "0" };
    json!({
        "ramal_id": e.provider_id.parse::<u64>().map(Value::from).unwrap_or_else(|_| Value::from(e.provider_id.clone())),
        "numero": e.number,
        "nome": e.name,
        "grupo_ramais": e.group.clone().unwrap_or_default(),
        "codigo_area": e.area_code.map(|d| d.to_string()).unwrap_or_default(),
        "caller_id_externo": e.external_caller_id.clone().unwrap_or_default(),
        "gravar_chamadas": flag(e.record_calls),
        "bloquear_ramal": flag(e.blocked),
    })
}

async fn listar_ramais(
    State(m): State<MockPabx>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = m.lock();
    let id = q.get("ramal_id").map(|v| v.trim()).unwrap_or("0");
    let dados: Vec<Value> = s
        .extensions
        .iter()
        .filter(|e| id.is_empty() || id == "0" || e.provider_id == id)
        .map(extension_json)
        .collect();
    let total = dados.len();
    envelope(
        200,
        "Sucesso",
        Value::Array(dados),
        Value::from(total.to_string()),
    )
}

/// Applies the fields present in `dados` to `ext`; an error message for invalid values.
fn apply_extension_fields(ext: &mut Extension, dados: &Map<String, Value>) -> Result<(), String> {
    if let Some(v) = dados.get("numero") {
        let n = flex_string(v).unwrap_or_default();
        if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err("Número do ramal inválido".into());
        }
        ext.number = n;
    }
    if let Some(v) = dados.get("nome") {
        ext.name = flex_string(v).unwrap_or_default();
    }
    if let Some(v) = dados.get("grupo_ramais") {
        ext.group = flex_string(v);
    }
    if let Some(v) = dados.get("codigo_area") {
        ext.area_code = match flex_string(v) {
            None => None,
            Some(s) => match s.parse::<u8>() {
                Ok(d) if super::dial::is_valid_area_code(d) => Some(d),
                _ => return Err("Código de área inválido".into()),
            },
        };
    }
    if let Some(v) = dados.get("caller_id_externo") {
        ext.external_caller_id = flex_string(v);
    }
    if let Some(v) = dados.get("gravar_chamadas") {
        ext.record_calls = flex_bool(v).ok_or("gravar_chamadas deve ser 0 ou 1")?;
    }
    if let Some(v) = dados.get("bloquear_ramal") {
        ext.blocked = flex_bool(v).ok_or("bloquear_ramal deve ser 0 ou 1")?;
    }
    Ok(())
}

async fn inserir_ramal(State(m): State<MockPabx>, bytes: Bytes) -> Response {
    let dados = match body_dados(&bytes) {
        Ok(d) => d,
        Err(fail) => return fail.into_response(),
    };
    if dados.get("numero").and_then(flex_string).is_none() {
        return envelope_error(400, "Parâmetro numero obrigatório");
    }
    let mut s = m.lock();
    let mut ext = Extension {
        provider_id: String::new(),
        number: String::new(),
        name: String::new(),
        group: None,
        area_code: None,
        external_caller_id: None,
        record_calls: false,
        blocked: false,
    };
    if let Err(msg) = apply_extension_fields(&mut ext, &dados) {
        return envelope_error(400, &msg);
    }
    if s.extensions.iter().any(|e| e.number == ext.number) {
        return envelope_error(409, &format!("Ramal {} já existe", ext.number));
    }
    let ext = s.insert_extension(&ExtensionSpec::from(&ext));
    let mut resp = json!({
        "http_response_code": 200,
        "mensagem": "Ramal inserido com sucesso",
        "ramal_id": ext.provider_id.parse::<u64>().unwrap_or(0),
        "qtd_total_resultados": 1,
        "qtd_resultados_retornados": 1,
        "dados": [extension_json(&ext)],
    });
    // Every other insert answers without `dados`, only the id, like terser deployments.
    if s.extensions.len().is_multiple_of(2)
        && let Some(obj) = resp.as_object_mut()
    {
        obj.insert("dados".into(), json!([]));
        obj.insert("qtd_resultados_retornados".into(), json!(0));
    }
    axum::Json(resp).into_response()
}

fn ramal_id_of(dados: &Map<String, Value>, q: &HashMap<String, String>) -> Option<String> {
    dados.get("ramal_id").and_then(flex_string).or_else(|| {
        q.get("ramal_id")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

async fn alterar_ramal(
    State(m): State<MockPabx>,
    Query(q): Query<HashMap<String, String>>,
    bytes: Bytes,
) -> Response {
    let dados = match body_dados(&bytes) {
        Ok(d) => d,
        Err(fail) => return fail.into_response(),
    };
    let Some(id) = ramal_id_of(&dados, &q) else {
        return envelope_error(400, "Parâmetro ramal_id obrigatório");
    };
    let mut s = m.lock();
    let Some(pos) = s.extensions.iter().position(|e| e.provider_id == id) else {
        return envelope_error(404, &format!("Ramal {id} não encontrado"));
    };
    let mut ext = s.extensions[pos].clone();
    if let Err(msg) = apply_extension_fields(&mut ext, &dados) {
        return envelope_error(400, &msg);
    }
    if s.extensions
        .iter()
        .any(|e| e.number == ext.number && e.provider_id != id)
    {
        return envelope_error(409, &format!("Ramal {} já existe", ext.number));
    }
    s.extensions[pos] = ext.clone();
    envelope(
        200,
        "Ramal alterado com sucesso",
        json!([extension_json(&ext)]),
        json!(1),
    )
}

async fn deletar_ramal(
    State(m): State<MockPabx>,
    Query(q): Query<HashMap<String, String>>,
    bytes: Bytes,
) -> Response {
    let dados = match body_dados(&bytes) {
        Ok(d) => d,
        Err(fail) => return fail.into_response(),
    };
    let Some(id) = ramal_id_of(&dados, &q) else {
        return envelope_error(400, "Parâmetro ramal_id obrigatório");
    };
    let mut s = m.lock();
    let before = s.extensions.len();
    s.extensions.retain(|e| e.provider_id != id);
    if s.extensions.len() == before {
        return envelope_error(404, &format!("Ramal {id} não encontrado"));
    }
    envelope(200, "Ramal excluído com sucesso", json!([]), json!(0))
}

async fn gravacao(State(m): State<MockPabx>, Path(file): Path<String>) -> Response {
    let path = format!("/gravacoes/{file}");
    let exists = m
        .lock()
        .calls
        .iter()
        .any(|c| c.call.recording_paths.contains(&path));
    if !exists {
        return (StatusCode::NOT_FOUND, "Gravação não encontrada").into_response();
    }
    let mut resp = Body::from(silent_wav()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    resp
}

/// One second of silence, 8 kHz, 8-bit unsigned mono PCM: a valid 8044-byte WAV.
pub fn silent_wav() -> Vec<u8> {
    const RATE: u32 = 8000;
    let data_len = RATE;
    let mut w = Vec::with_capacity(44 + RATE as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVE");
    w.extend_from_slice(b"fmt ");
    w.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&RATE.to_le_bytes()); // sample rate
    w.extend_from_slice(&RATE.to_le_bytes()); // byte rate = rate × block align
    w.extend_from_slice(&1u16.to_le_bytes()); // block align
    w.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    w.resize(44 + RATE as usize, 0x80); // 8-bit PCM silence is 128
    w
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn events_without_a_runtime_are_logged_not_panicking() {
        let mock = MockPabx::new(MockPabxOptions {
            event_url: Some("http://127.0.0.1:9/hook".into()),
            ..MockPabxOptions::default()
        });
        let id = mock.push_inbound(InboundCall {
            from: "+5511987654321".into(),
            extension: "1001".into(),
            outcome: MockOutcome::Busy,
        });
        let sent = mock.events_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].call_id.to_string(), id);
        assert!(sent[0].error.is_some());
        assert!(!mock.calls()[0].visible);
        mock.release_all();
        assert!(mock.calls()[0].visible);
    }

    #[test]
    fn wav_header_is_valid() {
        let w = silent_wav();
        assert_eq!(w.len(), 8044);
        assert_eq!(&w[0..4], b"RIFF");
        assert_eq!(
            u32::from_le_bytes(w[4..8].try_into().unwrap()) as usize,
            w.len() - 8
        );
        assert_eq!(&w[8..16], b"WAVEfmt ");
        assert_eq!(&w[36..40], b"data");
        assert_eq!(
            u32::from_le_bytes(w[40..44].try_into().unwrap()) as usize,
            w.len() - 44
        );
    }

    #[test]
    fn inbound_caller_ids_rotate() {
        let f = |i| inbound_caller_id("+5511987654321", i, 11);
        assert_eq!(f(0), "11987654321");
        assert_eq!(f(1), "011987654321");
        assert_eq!(f(2), "+5511987654321");
        assert_eq!(f(3), "5511987654321");
        assert_eq!(inbound_caller_id("+14155550100", 0, 11), "+14155550100");
        assert_eq!(inbound_caller_id("anonymous", 0, 11), "anonymous");
        for i in 0..4 {
            assert_eq!(
                normalise_number(&f(i), Some(11)).as_deref(),
                Some("+5511987654321")
            );
        }
    }

    #[test]
    fn events_render_in_every_format() {
        let call = MockCall {
            id: 1_000_001,
            index: 0,
            direction: Direction::Outbound,
            origem: "1001".into(),
            destino: "021987654321".into(),
            extension: "1001".into(),
            outcome: MockOutcome::Answered {
                ring_s: 5,
                talk_s: 47,
            },
            started_at: DateTime::parse_from_rfc3339("2025-03-05T17:03:07Z")
                .unwrap()
                .with_timezone(&Utc),
            recording_paths: vec!["/gravacoes/1000001-1.wav".into()],
            visible: false,
        };
        let off = wire::sao_paulo_offset();
        let url = "http://127.0.0.1:9";
        let (ct, json_body) = render_event(&call, EventFormat::Json, off, url);
        assert_eq!(ct, "application/json");
        assert!(serde_json::from_str::<Value>(&json_body).is_ok());
        let (_, trailing) = render_event(&call, EventFormat::JsonTrailingComma, off, url);
        assert!(trailing.ends_with(",}"));
        assert!(serde_json::from_str::<Value>(&trailing).is_err());
        let (ct, form) = render_event(&call, EventFormat::Form, off, url);
        assert_eq!(ct, "application/x-www-form-urlencoded");
        assert!(form.starts_with("callid=1000001&"));
        let ctx = crate::pabx::event::EventContext::default();
        for (ct, body) in [
            ("application/json", json_body.as_str()),
            ("application/json", trailing.as_str()),
            ("application/x-www-form-urlencoded", form.as_str()),
            ("application/json", fixtures::EVENT_TRAILING_COMMA),
            ("application/json", fixtures::EVENT_INTS_AND_ARRAY),
            ("application/x-www-form-urlencoded", fixtures::EVENT_FORM),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            let e = crate::pabx::event::parse_call_event(&h, body.as_bytes(), &ctx)
                .unwrap_or_else(|e| panic!("{body}: {e}"));
            assert!(e.provider_call_id.starts_with("100000"));
        }
        let e = crate::pabx::event::parse_call_event(&HeaderMap::new(), json_body.as_bytes(), &ctx)
            .unwrap();
        assert_eq!(
            e.recording_urls,
            vec!["http://127.0.0.1:9/gravacoes/1000001-1.wav"]
        );
        assert_eq!(e.duration_s, Some(52));
        assert_eq!(e.occurred_at, Some(call.started_at));
    }
}
