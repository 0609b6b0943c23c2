//! Webhook pure functions: the GET handshake, the signature, and parsing of the POST body.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

/// The header carrying `sha256=<hex HMAC-SHA256(app_secret, raw body)>`.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// The GET handshake (`hub.mode`, `hub.verify_token`, `hub.challenge` query parameters): the
/// challenge to answer with 200 as plain text when the mode is `subscribe` and the token matches
/// `expected_token`; `None` otherwise (answer 403). An empty expected token never matches.
pub fn verify_subscription(
    mode: Option<&str>,
    verify_token: Option<&str>,
    challenge: Option<&str>,
    expected_token: &str,
) -> Option<String> {
    let (Some("subscribe"), Some(token), Some(challenge)) = (mode, verify_token, challenge) else {
        return None;
    };
    if expected_token.is_empty() || challenge.is_empty() {
        return None;
    }
    constant_time_eq(token.as_bytes(), expected_token.as_bytes()).then(|| challenge.to_string())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn mac(app_secret: &str) -> Option<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).ok()
}

/// `sha256=<lowercase hex>` of `raw_body` keyed with the app secret: the value of
/// [`SIGNATURE_HEADER`].
pub fn sign_body(app_secret: &str, raw_body: &[u8]) -> String {
    match mac(app_secret) {
        Some(mut mac) => {
            mac.update(raw_body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        None => String::new(),
    }
}

/// Checks [`SIGNATURE_HEADER`] against the **exact raw bytes** of the body (never a re-serialised
/// form: Meta escapes non-ASCII as `\uXXXX` and `/` as `\/`). Constant-time; hex of either case;
/// `false` without the `sha256=` prefix, with bad hex, or with an empty secret.
pub fn verify_signature(app_secret: &str, raw_body: &[u8], header: &str) -> bool {
    if app_secret.is_empty() {
        return false;
    }
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let Some(mut mac) = mac(app_secret) else {
        return false;
    };
    mac.update(raw_body);
    mac.verify_slice(&expected).is_ok()
}

/// Delivery state of a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageStatus {
    Sent,
    Delivered,
    Read,
    Failed,
    /// Any other value (e.g. `deleted`, `warning`).
    Other(String),
}

impl MessageStatus {
    fn from_wire(s: &str) -> Self {
        match s {
            "sent" => MessageStatus::Sent,
            "delivered" => MessageStatus::Delivered,
            "read" => MessageStatus::Read,
            "failed" => MessageStatus::Failed,
            other => MessageStatus::Other(other.to_string()),
        }
    }
}

/// One entry of a status's `errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    pub code: i64,
    pub title: Option<String>,
    pub message: Option<String>,
    /// `error_data.details`.
    pub details: Option<String>,
}

impl StatusError {
    /// 131047: the free text was refused because the 24 h window is closed (send a template).
    pub fn is_outside_window(&self) -> bool {
        self.code == 131047
    }
}

/// One event of a webhook POST.
#[derive(Debug, Clone, PartialEq)]
pub enum WaEvent {
    /// A text message from a customer (it opens or renews the 24 h window).
    InboundText {
        /// The business number it was sent to (`metadata.phone_number_id`): routes to the tenant.
        phone_number_id: String,
        /// Digits, no `+`.
        from_wa_id: String,
        profile_name: Option<String>,
        message_id: String,
        timestamp: DateTime<Utc>,
        body: String,
        /// `context.id`: the message this one replies to.
        context_message_id: Option<String>,
    },
    /// Any other inbound message type (`image`, `audio`, `interactive`, `button`, `location`,
    /// `reaction`, `unsupported` …), with the whole message object.
    InboundOther {
        phone_number_id: String,
        from_wa_id: String,
        profile_name: Option<String>,
        message_id: String,
        timestamp: DateTime<Utc>,
        kind: String,
        message: Value,
    },
    /// A delivery update of a message we sent.
    Status {
        phone_number_id: String,
        message_id: String,
        status: MessageStatus,
        timestamp: DateTime<Utc>,
        recipient_id: String,
        errors: Vec<StatusError>,
    },
}

/// Why a webhook body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook body is not JSON of the expected shape: {0}")]
    NotJson(String),
    #[error("webhook object is {0:?}, not \"whatsapp_business_account\"")]
    UnexpectedObject(String),
    #[error("webhook item malformed: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    value: Option<Value>,
}

#[derive(Deserialize)]
struct ChangeValue {
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    statuses: Vec<WireStatus>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    phone_number_id: Option<String>,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    from: String,
    id: String,
    timestamp: Value,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<WireText>,
    #[serde(default)]
    context: Option<WireContext>,
}

#[derive(Deserialize)]
struct WireText {
    body: String,
}

#[derive(Deserialize)]
struct WireContext {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct WireStatus {
    id: String,
    status: String,
    timestamp: Value,
    recipient_id: String,
    #[serde(default)]
    errors: Vec<WireStatusError>,
}

#[derive(Deserialize)]
struct WireStatusError {
    code: Value,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<Value>,
}

/// Unix seconds, as the string Meta sends (a number is tolerated).
fn timestamp(v: &Value, what: &str) -> Result<DateTime<Utc>, WebhookError> {
    let secs = match v {
        Value::String(s) => s.trim().parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| {
            WebhookError::Malformed(format!("{what}: timestamp {v} is not Unix seconds"))
        })
}

/// Parses the raw body of a webhook POST into events, in order (per change: messages, then
/// statuses). Unknown fields are ignored and changes of other fields (e.g. template status
/// updates) skipped; an empty `entry` gives no events. Input that is not the WhatsApp envelope,
/// or an item missing what an event needs, is a [`WebhookError`] (never a panic).
pub fn parse_webhook(raw_body: &[u8]) -> Result<Vec<WaEvent>, WebhookError> {
    let envelope: Envelope =
        serde_json::from_slice(raw_body).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    match envelope.object.as_deref() {
        Some("whatsapp_business_account") => {}
        other => {
            return Err(WebhookError::UnexpectedObject(
                other.unwrap_or("").to_string(),
            ));
        }
    }
    let mut events = Vec::new();
    for (e, entry) in envelope.entry.into_iter().enumerate() {
        for (c, change) in entry.changes.into_iter().enumerate() {
            if change.field.as_deref() != Some("messages") {
                continue;
            }
            let at = format!("entry[{e}].changes[{c}]");
            let value: ChangeValue = serde_json::from_value(change.value.unwrap_or(Value::Null))
                .map_err(|err| WebhookError::Malformed(format!("{at}.value: {err}")))?;
            let phone_number_id =
                value
                    .metadata
                    .and_then(|m| m.phone_number_id)
                    .ok_or_else(|| {
                        WebhookError::Malformed(format!(
                            "{at}.value.metadata.phone_number_id missing"
                        ))
                    })?;
            for (m, raw) in value.messages.into_iter().enumerate() {
                let at = format!("{at}.value.messages[{m}]");
                let message: WireMessage = serde_json::from_value(raw.clone())
                    .map_err(|err| WebhookError::Malformed(format!("{at}: {err}")))?;
                let timestamp = timestamp(&message.timestamp, &at)?;
                let profile_name = value
                    .contacts
                    .iter()
                    .find(|c| c.wa_id.as_deref() == Some(message.from.as_str()))
                    .or(value.contacts.first())
                    .and_then(|c| c.profile.as_ref())
                    .and_then(|p| p.name.clone());
                if message.kind == "text" {
                    let text = message.text.ok_or_else(|| {
                        WebhookError::Malformed(format!("{at}: text message without text.body"))
                    })?;
                    events.push(WaEvent::InboundText {
                        phone_number_id: phone_number_id.clone(),
                        from_wa_id: message.from,
                        profile_name,
                        message_id: message.id,
                        timestamp,
                        body: text.body,
                        context_message_id: message.context.and_then(|c| c.id),
                    });
                } else {
                    events.push(WaEvent::InboundOther {
                        phone_number_id: phone_number_id.clone(),
                        from_wa_id: message.from,
                        profile_name,
                        message_id: message.id,
                        timestamp,
                        kind: message.kind,
                        message: raw,
                    });
                }
            }
            for (s, status) in value.statuses.into_iter().enumerate() {
                let at = format!("{at}.value.statuses[{s}]");
                let timestamp = timestamp(&status.timestamp, &at)?;
                let errors = status
                    .errors
                    .into_iter()
                    .map(|err| StatusError {
                        code: match &err.code {
                            Value::Number(n) => n.as_i64().unwrap_or(0),
                            Value::String(s) => s.parse().unwrap_or(0),
                            _ => 0,
                        },
                        title: err.title,
                        message: err.message,
                        details: err
                            .error_data
                            .as_ref()
                            .and_then(|d| d.get("details"))
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    })
                    .collect();
                events.push(WaEvent::Status {
                    phone_number_id: phone_number_id.clone(),
                    message_id: status.id,
                    status: MessageStatus::from_wire(&status.status),
                    timestamp,
                    recipient_id: status.recipient_id,
                    errors,
                });
            }
        }
    }
    Ok(events)
}
