//! [`Client`]: sends messages through the Cloud API.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{WaApiError, WaError, e164_to_wa_id};

/// Configuration of a [`Client`].
#[derive(Debug, Clone)]
pub struct WaConfig {
    /// Default `https://graph.facebook.com` (a mock's base URL in tests).
    pub base_url: String,
    /// Graph API version, default `v21.0` (`21.0` is accepted too).
    pub api_version: String,
    /// The business phone number's id (not the phone number itself).
    pub phone_number_id: String,
    /// System-user or temporary access token, sent as `Authorization: Bearer`.
    pub access_token: String,
    pub timeout: Duration,
}

impl WaConfig {
    pub fn new(phone_number_id: impl Into<String>, access_token: impl Into<String>) -> Self {
        WaConfig {
            base_url: "https://graph.facebook.com".into(),
            api_version: "v21.0".into(),
            phone_number_id: phone_number_id.into(),
            access_token: access_token.into(),
            timeout: Duration::from_secs(20),
        }
    }
}

/// What the API answered to a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// `wamid.…`: the id the status webhooks refer to.
    pub message_id: String,
    /// `contacts[0].wa_id`: the WhatsApp id the number resolved to (may differ from the input,
    /// e.g. a Brazilian mobile without its ninth digit).
    pub wa_id: Option<String>,
}

/// The template [`Client::send_text_or_template`] falls back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFallback {
    pub name: String,
    /// e.g. `pt_BR`.
    pub language: String,
    pub body_params: Vec<String>,
}

/// Which message [`Client::send_text_or_template`] sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The free text went out.
    Text(Sent),
    /// The window was closed (131047); the template went out instead.
    Template { sent: Sent, text_error: WaApiError },
}

/// A Cloud API client for one business phone number.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: String,
    config: WaConfig,
}

#[derive(Deserialize)]
struct WireSent {
    #[serde(default)]
    messages: Vec<WireId>,
    #[serde(default)]
    contacts: Vec<WireContact>,
}

#[derive(Deserialize)]
struct WireId {
    id: String,
}

#[derive(Deserialize)]
struct WireContact {
    #[serde(default)]
    wa_id: Option<String>,
}

#[derive(Deserialize)]
struct WireErrorEnvelope {
    error: WireError,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    error_subcode: Option<Value>,
    #[serde(default)]
    error_data: Option<Value>,
    #[serde(default)]
    error_user_msg: Option<String>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

fn int_of(v: &Option<Value>) -> Option<i64> {
    match v {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

/// Parses a Graph API error body; `None` when it is not one.
pub(crate) fn parse_api_error(http_status: u16, body: &str) -> Option<WaApiError> {
    let envelope: WireErrorEnvelope = serde_json::from_str(body).ok()?;
    let e = envelope.error;
    let details = match &e.error_data {
        Some(Value::Object(data)) => data
            .get("details")
            .and_then(Value::as_str)
            .map(str::to_string),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
    .or(e.error_user_msg);
    Some(WaApiError {
        http_status,
        code: int_of(&e.code).unwrap_or(0),
        subcode: int_of(&e.error_subcode),
        message: e.message.unwrap_or_default(),
        kind: e.kind,
        details,
        fbtrace_id: e.fbtrace_id,
    })
}

fn local_invalid(message: String) -> WaError {
    WaError::InvalidParameter(Box::new(WaApiError {
        http_status: 0,
        code: 100,
        message,
        kind: Some("local".into()),
        ..Default::default()
    }))
}

impl Client {
    pub fn new(config: WaConfig) -> Result<Self, WaError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| WaError::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self::with_http(http, config))
    }

    /// With a caller-provided reqwest client (its own timeout applies).
    pub fn with_http(http: reqwest::Client, config: WaConfig) -> Self {
        let version = config.api_version.trim().trim_start_matches('v');
        let endpoint = format!(
            "{}/v{}/{}/messages",
            config.base_url.trim_end_matches('/'),
            version,
            config.phone_number_id
        );
        Client {
            http,
            endpoint,
            config,
        }
    }

    /// `{base}/v{N}/{phone_number_id}/messages`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Free text (only inside the 24 h window). `to` is a `wa_id` or an E.164 number.
    pub async fn send_text(&self, to: &str, body: &str) -> Result<Sent, WaError> {
        let to = recipient(to)?;
        if body.trim().is_empty() {
            return Err(local_invalid("text body is empty".into()));
        }
        if body.chars().count() > 4096 {
            return Err(local_invalid(
                "text body is longer than 4096 characters".into(),
            ));
        }
        self.post(json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": false, "body": body},
        }))
        .await
    }

    /// An approved template, with its body `{{1}}`, `{{2}}`, … parameters as text.
    pub async fn send_template(
        &self,
        to: &str,
        name: &str,
        language: &str,
        body_params: &[&str],
    ) -> Result<Sent, WaError> {
        let to = recipient(to)?;
        let mut template = json!({"name": name, "language": {"code": language}});
        if !body_params.is_empty() {
            let parameters: Vec<Value> = body_params
                .iter()
                .map(|p| json!({"type": "text", "text": p}))
                .collect();
            template["components"] = json!([{"type": "body", "parameters": parameters}]);
        }
        self.post(json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": template,
        }))
        .await
    }

    /// Sends free text; when the API says the window is closed (131047), sends `fallback`.
    ///
    /// Only the synchronous 131047 is handled here. When the API accepts the text and later
    /// reports the failure in a `failed` status webhook (see the docs), the caller reacts to
    /// [`super::StatusError::is_outside_window`].
    pub async fn send_text_or_template(
        &self,
        to: &str,
        body: &str,
        fallback: &TemplateFallback,
    ) -> Result<SendOutcome, WaError> {
        match self.send_text(to, body).await {
            Ok(sent) => Ok(SendOutcome::Text(sent)),
            Err(WaError::OutsideWindow(text_error)) => {
                let params: Vec<&str> = fallback.body_params.iter().map(String::as_str).collect();
                let sent = self
                    .send_template(to, &fallback.name, &fallback.language, &params)
                    .await?;
                Ok(SendOutcome::Template {
                    sent,
                    text_error: *text_error,
                })
            }
            Err(other) => Err(other),
        }
    }

    async fn post(&self, body: Value) -> Result<Sent, WaError> {
        let response = self
            .http
            .post(&self.endpoint)
            .bearer_auth(&self.config.access_token)
            .json(&body)
            .send()
            .await
            .map_err(|e| WaError::Transport(format!("sending to the Cloud API: {e}")))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| WaError::Transport(format!("reading the Cloud API answer: {e}")))?;
        if (200..300).contains(&status) {
            let sent: WireSent = serde_json::from_str(&text)
                .map_err(|e| WaError::Transport(format!("unexpected Cloud API answer: {e}")))?;
            let message_id = sent
                .messages
                .into_iter()
                .next()
                .map(|m| m.id)
                .ok_or_else(|| WaError::Transport("Cloud API answer has no message id".into()))?;
            let wa_id = sent.contacts.into_iter().next().and_then(|c| c.wa_id);
            return Ok(Sent { message_id, wa_id });
        }
        match parse_api_error(status, &text) {
            Some(error) => {
                tracing::debug!(status, code = error.code, message = %error.message, "WhatsApp send failed");
                Err(WaError::from_api(error))
            }
            None => {
                let snippet: String = text.chars().take(200).collect();
                if status >= 500 {
                    Err(WaError::Transport(format!("HTTP {status}: {snippet}")))
                } else {
                    Err(WaError::Other(Box::new(WaApiError {
                        http_status: status,
                        message: snippet,
                        ..Default::default()
                    })))
                }
            }
        }
    }
}

fn recipient(to: &str) -> Result<String, WaError> {
    e164_to_wa_id(to).ok_or_else(|| {
        local_invalid(format!(
            "invalid recipient {to:?}: expected a wa_id or E.164 number"
        ))
    })
}
