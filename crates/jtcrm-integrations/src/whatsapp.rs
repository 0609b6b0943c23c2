//! WhatsApp Business Cloud API.
//!
//! - [`Client`]: `send_text`, `send_template`, and `send_text_or_template` (free text, falling
//!   back to a template when the 24 h customer-service window is closed).
//! - Webhook pure functions: [`verify_subscription`] (the GET handshake), [`verify_signature`]
//!   (`X-Hub-Signature-256` over the exact raw body), [`parse_webhook`] (→ [`WaEvent`]s).
//! - [`wa_id_to_e164`] / [`e164_to_wa_id`], and [`br_ninth_digit_variants`] for matching
//!   Brazilian mobiles whose `wa_id` lacks the ninth digit.
//! - [`mock`]: a faithful local mock of the Cloud API (auth, 24 h window, templates, status
//!   webhooks, signed inbound messages, the GET handshake).
//!
//! Facts, quirks and policies are written in `docs/integrations/whatsapp.md`.

mod client;
pub mod mock;
mod webhook;

pub use client::{Client, SendOutcome, Sent, TemplateFallback, WaConfig};
pub use webhook::{
    MessageStatus, SIGNATURE_HEADER, StatusError, WaEvent, WebhookError, parse_webhook, sign_body,
    verify_signature, verify_subscription,
};

/// The `error` object of a Graph API error answer, with the HTTP status it came with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WaApiError {
    /// HTTP status of the answer (0 for an error raised locally, before sending).
    pub http_status: u16,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
    /// `type`, e.g. `OAuthException`.
    pub kind: Option<String>,
    /// `error_data.details`: the human explanation (e.g. why a template failed).
    pub details: Option<String>,
    pub fbtrace_id: Option<String>,
}

impl std::fmt::Display for WaApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code {}: {}", self.code, self.message)?;
        if let Some(details) = &self.details {
            write!(f, " ({details})")?;
        }
        Ok(())
    }
}

/// Errors of the Cloud API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaError {
    /// 131047: more than 24 h since the customer's last message; only a template may be sent.
    #[error("outside the 24 h window: {0}")]
    OutsideWindow(Box<WaApiError>),
    /// 130429 (throughput), 131056 (pair rate limit), 4 and 80007 (app / WABA call limits).
    #[error("rate limited: {0}")]
    RateLimited(Box<WaApiError>),
    /// 190: the access token expired or is invalid.
    #[error("access token expired or invalid: {0}")]
    TokenExpired(Box<WaApiError>),
    /// 100: invalid parameter (also raised locally for an invalid recipient or empty body).
    #[error("invalid parameter: {0}")]
    InvalidParameter(Box<WaApiError>),
    /// 132001: template name does not exist in the translation (name or language wrong).
    #[error("template not found: {0}")]
    TemplateNotFound(Box<WaApiError>),
    /// Any other API error; `code` and `message` are in the detail.
    #[error("WhatsApp API error {0}")]
    Other(Box<WaApiError>),
    /// Network error, timeout, or an answer that is not the Graph API's.
    #[error("WhatsApp transport error: {0}")]
    Transport(String),
}

impl WaError {
    /// Maps an API error by its code.
    pub fn from_api(error: WaApiError) -> Self {
        let error = Box::new(error);
        match error.code {
            131047 => WaError::OutsideWindow(error),
            130429 | 131056 | 4 | 80007 => WaError::RateLimited(error),
            190 => WaError::TokenExpired(error),
            100 => WaError::InvalidParameter(error),
            132001 => WaError::TemplateNotFound(error),
            _ => WaError::Other(error),
        }
    }

    /// The API error, unless this is a transport error.
    pub fn api(&self) -> Option<&WaApiError> {
        match self {
            WaError::OutsideWindow(e)
            | WaError::RateLimited(e)
            | WaError::TokenExpired(e)
            | WaError::InvalidParameter(e)
            | WaError::TemplateNotFound(e)
            | WaError::Other(e) => Some(e),
            WaError::Transport(_) => None,
        }
    }

    /// Whether sending again later may succeed: rate limits, transport errors, 5xx answers and
    /// the API's temporary codes (1, 2, 131000, 131016).
    pub fn is_retryable(&self) -> bool {
        match self {
            WaError::RateLimited(_) | WaError::Transport(_) => true,
            WaError::Other(e) => e.http_status >= 500 || matches!(e.code, 1 | 2 | 131000 | 131016),
            _ => false,
        }
    }
}

/// `5511987654321` → `+5511987654321`. `None` unless 8 to 15 digits not starting with 0.
pub fn wa_id_to_e164(wa_id: &str) -> Option<String> {
    valid_digits(wa_id).then(|| format!("+{wa_id}"))
}

/// `+55 (11) 98765-4321` or `+5511987654321` → `5511987654321`. Spaces, dots, dashes and
/// parentheses are dropped and one leading `+` is allowed; `None` for anything else, or unless
/// 8 to 15 digits remain, not starting with 0 (a national number with trunk `0` is refused:
/// this takes international numbers only).
pub fn e164_to_wa_id(phone: &str) -> Option<String> {
    let trimmed = phone.trim();
    let rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    valid_digits(&digits).then_some(digits)
}

fn valid_digits(s: &str) -> bool {
    (8..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0')
}

/// The forms a Brazilian mobile may take as a `wa_id`: WhatsApp keeps some accounts created
/// before the ninth digit under the 8-digit number (`55 DD 8765-4321`), so an inbound `wa_id`
/// and the number in the CRM may differ by that `9`. Returns the input first, then the other
/// form when the input is a Brazilian mobile (`55` + DDD + `9` + 8 digits, or `55` + DDD + 8
/// digits starting 6–9); only the input otherwise.
pub fn br_ninth_digit_variants(wa_id: &str) -> Vec<String> {
    let mut variants = vec![wa_id.to_string()];
    if !wa_id.bytes().all(|b| b.is_ascii_digit()) || !wa_id.starts_with("55") {
        return variants;
    }
    let (ddd, subscriber) = (wa_id.get(2..4).unwrap_or(""), wa_id.get(4..).unwrap_or(""));
    if !valid_br_ddd(ddd) {
        return variants;
    }
    match subscriber.len() {
        9 if subscriber.starts_with('9') => variants.push(format!("55{ddd}{}", &subscriber[1..])),
        8 if matches!(subscriber.as_bytes()[0], b'6'..=b'9') => {
            variants.push(format!("55{ddd}9{subscriber}"))
        }
        _ => {}
    }
    variants
}

/// The 67 DDDs (libphonenumber's `(?:[14689][1-9]|2[12478]|3[1-578]|5[13-5]|7[13-579])`).
fn valid_br_ddd(ddd: &str) -> bool {
    let b = ddd.as_bytes();
    if b.len() != 2 {
        return false;
    }
    match (b[0], b[1]) {
        (b'1' | b'4' | b'6' | b'8' | b'9', b'1'..=b'9') => true,
        (b'2', d) => matches!(d, b'1' | b'2' | b'4' | b'7' | b'8'),
        (b'3', d) => matches!(d, b'1'..=b'5' | b'7' | b'8'),
        (b'5', d) => matches!(d, b'1' | b'3'..=b'5'),
        (b'7', d) => matches!(d, b'1' | b'3'..=b'5' | b'7' | b'9'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_conversions() {
        assert_eq!(
            wa_id_to_e164("5511987654321").as_deref(),
            Some("+5511987654321")
        );
        assert_eq!(wa_id_to_e164("+5511987654321"), None);
        assert_eq!(wa_id_to_e164("011987654321"), None);
        assert_eq!(
            e164_to_wa_id("+5511987654321").as_deref(),
            Some("5511987654321")
        );
        assert_eq!(
            e164_to_wa_id("+55 (11) 98765-4321").as_deref(),
            Some("5511987654321")
        );
        assert_eq!(
            e164_to_wa_id("5511987654321").as_deref(),
            Some("5511987654321")
        );
        assert_eq!(e164_to_wa_id("+55 11 9876x4321"), None);
        assert_eq!(e164_to_wa_id("++5511987654321"), None);
        assert_eq!(e164_to_wa_id("1234"), None);
        assert_eq!(e164_to_wa_id("+1234567890123456"), None);
        assert_eq!(e164_to_wa_id(""), None);
    }

    #[test]
    fn ninth_digit_variants() {
        assert_eq!(
            br_ninth_digit_variants("5511987654321"),
            vec!["5511987654321", "551187654321"]
        );
        assert_eq!(
            br_ninth_digit_variants("551187654321"),
            vec!["551187654321", "5511987654321"]
        );
        // Landline (starts 2–5), invalid DDD 20, other countries: no variant.
        assert_eq!(
            br_ninth_digit_variants("551133334444"),
            vec!["551133334444"]
        );
        assert_eq!(
            br_ninth_digit_variants("5520987654321"),
            vec!["5520987654321"]
        );
        assert_eq!(br_ninth_digit_variants("14155550123"), vec!["14155550123"]);
    }

    #[test]
    fn error_mapping() {
        let api = |code| WaApiError {
            code,
            http_status: 400,
            ..Default::default()
        };
        assert!(matches!(
            WaError::from_api(api(131047)),
            WaError::OutsideWindow(_)
        ));
        assert!(matches!(
            WaError::from_api(api(130429)),
            WaError::RateLimited(_)
        ));
        assert!(matches!(
            WaError::from_api(api(131056)),
            WaError::RateLimited(_)
        ));
        assert!(matches!(
            WaError::from_api(api(190)),
            WaError::TokenExpired(_)
        ));
        assert!(matches!(
            WaError::from_api(api(100)),
            WaError::InvalidParameter(_)
        ));
        assert!(matches!(
            WaError::from_api(api(132001)),
            WaError::TemplateNotFound(_)
        ));
        assert!(matches!(WaError::from_api(api(131026)), WaError::Other(_)));
        assert!(WaError::from_api(api(130429)).is_retryable());
        assert!(WaError::from_api(api(131000)).is_retryable());
        assert!(!WaError::from_api(api(131047)).is_retryable());
        assert!(!WaError::from_api(api(190)).is_retryable());
        assert!(WaError::Transport("x".into()).is_retryable());
    }
}
