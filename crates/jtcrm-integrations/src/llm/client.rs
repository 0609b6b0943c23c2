//! [`OpenAiClient`]: the reqwest implementation of [`ChatModel`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::sse::{SseDecoder, StreamAssembler};
use super::{
    BoxFuture, ChatModel, ChatRequest, ChatResponse, FinishReason, LlmError, Message, StreamDelta,
    ToolCall, Usage,
};

/// How [`OpenAiClient`] retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// First backoff after a 5xx or network error; doubled at each further retry.
    pub initial_backoff: Duration,
    /// Cap of the exponential backoff (and the wait used on a 429 without `Retry-After`).
    pub max_backoff: Duration,
    /// The longest `Retry-After` that is waited for. A 429 asking for longer is returned at once
    /// as [`LlmError::RateLimited`] with the server's value, for the caller to reschedule.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }

    /// The backoff before retry number `retry` (1-based), with up to 25 % jitter subtracted.
    fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(16);
        let full = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = full.mul_f64(f64::from(nanos % 1000) / 4000.0);
        full.saturating_sub(jitter)
    }
}

/// Configuration of an [`OpenAiClient`].
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The API base. `http://host:11434/v1` and `http://host:11434` are the same: a base with no
    /// path gets `/v1` appended, a base with a path is used as given (see [`normalize_base_url`]).
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set (Ollama needs some value but ignores it).
    pub api_key: Option<String>,
    /// Per-request timeout (non-streaming: the whole exchange; streaming: until the headers,
    /// then between two reads of the body).
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Ask streams for a final usage chunk (`stream_options.include_usage`).
    pub stream_include_usage: bool,
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>, api_key: Option<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            api_key,
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            stream_include_usage: true,
        }
    }
}

/// Normalises an API base: trims trailing `/`, drops a trailing `/chat/completions`, and appends
/// `/v1` when the URL has no path at all. Returns the base without trailing slash.
pub fn normalize_base_url(base: &str) -> Result<String, LlmError> {
    let mut url = reqwest::Url::parse(base.trim())
        .map_err(|e| LlmError::BadRequest(format!("invalid LLM base URL {base:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(LlmError::BadRequest(format!(
            "LLM base URL must be http(s): {base:?}"
        )));
    }
    url.set_query(None);
    url.set_fragment(None);
    let mut path = url.path().trim_end_matches('/').to_string();
    if let Some(stripped) = path.strip_suffix("/chat/completions") {
        path = stripped.to_string();
    }
    if path.is_empty() {
        path = "/v1".to_string();
    }
    url.set_path(&path);
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Reads a wait from response headers: `retry-after-ms` (OpenAI) first, then `Retry-After` as
/// delta-seconds (integer or decimal) or an HTTP date (taken relative to `now`, never negative).
pub fn parse_retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(ms) = headers.get("retry-after-ms").and_then(|v| v.to_str().ok())
        && let Ok(ms) = ms.trim().parse::<f64>()
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let date = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

/// An OpenAI-compatible client over reqwest.
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    endpoint: String,
    config: OpenAiConfig,
}

impl OpenAiClient {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| LlmError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        Self::with_http(http, config)
    }

    /// With a caller-provided reqwest client (shared connection pool).
    pub fn with_http(http: reqwest::Client, config: OpenAiConfig) -> Result<Self, LlmError> {
        let endpoint = format!("{}/chat/completions", normalize_base_url(&config.base_url)?);
        Ok(OpenAiClient {
            http,
            endpoint,
            config,
        })
    }

    /// The URL posted to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Value {
        let wire = WireRequest {
            model: &request.model,
            messages: request.messages.iter().map(WireMessage::from).collect(),
            tools: request
                .tools
                .iter()
                .map(|t| WireTool {
                    kind: "function",
                    function: WireFunctionSpec {
                        name: &t.name,
                        description: &t.description,
                        parameters: &t.parameters,
                    },
                })
                .collect(),
            tool_choice: request.tool_choice.as_ref().map(|c| c.to_wire()),
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            stream,
            stream_options: (stream && self.config.stream_include_usage)
                .then(|| serde_json::json!({"include_usage": true})),
        };
        serde_json::to_value(&wire).unwrap_or(Value::Null)
    }

    /// Sends with retries; returns the first 2xx response.
    async fn send(&self, body: &Value, stream: bool) -> Result<reqwest::Response, LlmError> {
        let policy = &self.config.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut builder = self.http.post(&self.endpoint).json(body);
            if let Some(key) = &self.config.api_key {
                builder = builder.bearer_auth(key);
            }
            let result = if stream {
                builder = builder.header(reqwest::header::ACCEPT, "text/event-stream");
                match tokio::time::timeout(self.config.timeout, builder.send()).await {
                    Ok(r) => r.map_err(network_error),
                    Err(_) => Err(LlmError::Unavailable(format!(
                        "timed out after {:?} waiting for the response",
                        self.config.timeout
                    ))),
                }
            } else {
                builder
                    .timeout(self.config.timeout)
                    .send()
                    .await
                    .map_err(network_error)
            };
            let (error, wait) = match result {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = parse_retry_after(response.headers(), Utc::now());
                    let text = read_text(response, self.config.timeout).await;
                    let error = error_from_status(status, &text, retry_after);
                    let wait = match &error {
                        LlmError::RateLimited {
                            retry_after: Some(after),
                        } => {
                            if *after > policy.max_retry_after {
                                return Err(error);
                            }
                            *after
                        }
                        LlmError::RateLimited { retry_after: None } | LlmError::Unavailable(_) => {
                            policy.backoff(attempt)
                        }
                        _ => return Err(error),
                    };
                    (error, wait)
                }
                Err(error) => {
                    let wait = policy.backoff(attempt);
                    (error, wait)
                }
            };
            tracing::debug!(attempt, error = %error, ?wait, "LLM request failed");
            if attempt >= policy.max_attempts {
                return Err(error);
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn complete_inner(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let body = self.body(&request, false);
        let response = self.send(&body, false).await?;
        let text = response
            .text()
            .await
            .map_err(|e| LlmError::Unavailable(format!("reading the response: {e}")))?;
        parse_completion(&text)
    }

    async fn stream_inner(
        &self,
        request: ChatRequest,
        on_delta: &mut (dyn FnMut(StreamDelta) + Send),
    ) -> Result<ChatResponse, LlmError> {
        let body = self.body(&request, true);
        let mut response = self.send(&body, true).await?;
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            // A server that ignored `stream:true` answers with a plain completion.
            // (A body that is neither is an invalid response.)
            let text = read_text(response, self.config.timeout).await;
            let parsed = parse_completion(&text)?;
            return ChatModel::complete_stream(&Replay(parsed), request, on_delta).await;
        }
        let mut decoder = SseDecoder::default();
        let mut assembler = StreamAssembler::default();
        loop {
            let chunk = tokio::time::timeout(self.config.timeout, response.chunk())
                .await
                .map_err(|_| {
                    LlmError::Unavailable(format!(
                        "stream idle for more than {:?}",
                        self.config.timeout
                    ))
                })?
                .map_err(|e| LlmError::Unavailable(format!("stream interrupted: {e}")))?;
            let events = match &chunk {
                Some(bytes) => decoder.push(bytes)?,
                None => decoder.finish()?,
            };
            for data in events {
                assembler.on_data(&data, on_delta)?;
            }
            if assembler.is_done() || chunk.is_none() {
                break;
            }
        }
        if !assembler.is_done() && !assembler.has_finished() {
            return Err(LlmError::Unavailable(
                "stream ended before data: [DONE]".into(),
            ));
        }
        Ok(assembler.finish())
    }
}

/// Replays an already-received response through the default `complete_stream`.
struct Replay(ChatResponse);

impl ChatModel for Replay {
    fn complete(&self, _request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, LlmError>> {
        let response = self.0.clone();
        Box::pin(async move { Ok(response) })
    }
}

impl ChatModel for OpenAiClient {
    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, LlmError>> {
        Box::pin(self.complete_inner(request))
    }

    fn complete_stream<'a>(
        &'a self,
        request: ChatRequest,
        on_delta: &'a mut (dyn FnMut(StreamDelta) + Send),
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(self.stream_inner(request, on_delta))
    }
}

fn network_error(e: reqwest::Error) -> LlmError {
    if e.is_timeout() {
        LlmError::Unavailable(format!("timed out: {e}"))
    } else {
        LlmError::Unavailable(format!("network error: {e}"))
    }
}

async fn read_text(response: reqwest::Response, timeout: Duration) -> String {
    match tokio::time::timeout(timeout, response.text()).await {
        Ok(Ok(text)) => text,
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The `error` object of both flavours: OpenAI (`code` a string or null, `param`) and llama.cpp
/// (`code` an integer). vLLM puts the same fields at the top level.
#[derive(Debug, Default, Deserialize)]
struct WireErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    param: Option<Value>,
    #[serde(default)]
    code: Option<Value>,
}

impl WireErrorBody {
    fn code_str(&self) -> Option<String> {
        match &self.code {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        let mut text = self.message.clone().unwrap_or_else(|| "no message".into());
        let mut extra = Vec::new();
        if let Some(kind) = &self.kind {
            extra.push(format!("type {kind}"));
        }
        if let Some(code) = self.code_str() {
            extra.push(format!("code {code}"));
        }
        if let Some(Value::String(param)) = &self.param {
            extra.push(format!("param {param}"));
        }
        if !extra.is_empty() {
            text = format!("{text} ({})", extra.join(", "));
        }
        text
    }
}

fn parse_error_body(text: &str) -> WireErrorBody {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        let snippet: String = text.chars().take(300).collect();
        return WireErrorBody {
            message: Some(snippet),
            ..Default::default()
        };
    };
    match value.get("error") {
        Some(Value::String(message)) => WireErrorBody {
            message: Some(message.clone()),
            ..Default::default()
        },
        Some(obj @ Value::Object(_)) => serde_json::from_value(obj.clone()).unwrap_or_default(),
        _ => serde_json::from_value(value).unwrap_or_default(),
    }
}

/// Maps a non-2xx status and body to an error.
pub(crate) fn error_from_status(
    status: StatusCode,
    text: &str,
    retry_after: Option<Duration>,
) -> LlmError {
    let body = parse_error_body(text);
    let message = format!("HTTP {}: {}", status.as_u16(), body.describe());
    match status.as_u16() {
        401 | 403 => LlmError::Unauthorized,
        429 => {
            let quota = [body.code_str(), body.kind.clone()]
                .into_iter()
                .flatten()
                .any(|s| s == "insufficient_quota");
            if quota {
                // OpenAI's "out of credit" is a 429 too, but waiting does not help.
                LlmError::BadRequest(message)
            } else {
                LlmError::RateLimited { retry_after }
            }
        }
        408 | 500..=599 => LlmError::Unavailable(message),
        _ => LlmError::BadRequest(message),
    }
}

/// An `error` object met inside a stream.
pub(crate) fn error_from_stream_event(error: &Value) -> LlmError {
    let body: WireErrorBody = match error {
        Value::String(message) => WireErrorBody {
            message: Some(message.clone()),
            ..Default::default()
        },
        other => serde_json::from_value(other.clone()).unwrap_or_default(),
    };
    let status = match &body.code {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    }
    .and_then(|code| StatusCode::from_u16(code).ok());
    match status {
        Some(status) if status.is_client_error() || status.is_server_error() => error_from_status(
            status,
            &serde_json::json!({ "error": error }).to_string(),
            None,
        ),
        _ => LlmError::Unavailable(format!("error in stream: {}", body.describe())),
    }
}

// ---------------------------------------------------------------------------------------------
// Wire shapes

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<Value>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    /// `null` on an assistant tool-call turn without text; omitted on other messages without.
    #[serde(skip_serializing_if = "ContentField::is_absent")]
    content: ContentField<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

enum ContentField<'a> {
    Text(&'a str),
    Null,
    Absent,
}

impl ContentField<'_> {
    fn is_absent(&self) -> bool {
        matches!(self, ContentField::Absent)
    }
}

impl Serialize for ContentField<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ContentField::Text(t) => s.serialize_str(t),
            ContentField::Null | ContentField::Absent => s.serialize_none(),
        }
    }
}

impl<'a> From<&'a Message> for WireMessage<'a> {
    fn from(m: &'a Message) -> Self {
        let content = match (&m.content, m.tool_calls.is_empty()) {
            (Some(text), _) => ContentField::Text(text),
            (None, false) => ContentField::Null,
            // A tool message must carry a string.
            (None, true) if m.role == super::Role::Tool => ContentField::Text(""),
            (None, true) => ContentField::Absent,
        };
        WireMessage {
            role: m.role.as_str(),
            content,
            tool_calls: m
                .tool_calls
                .iter()
                .map(|c| WireToolCallOut {
                    id: &c.id,
                    kind: "function",
                    function: WireFunctionOut {
                        name: &c.name,
                        arguments: &c.raw_arguments,
                    },
                })
                .collect(),
            tool_call_id: m.tool_call_id.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct WireToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionOut<'a>,
}

#[derive(Serialize)]
struct WireFunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionSpec<'a>,
}

#[derive(Serialize)]
struct WireFunctionSpec<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

#[derive(Deserialize)]
struct WireCompletion {
    #[serde(default)]
    choices: Option<Vec<WireChoice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: Option<WireResponseMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireResponseMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCallIn>>,
}

#[derive(Deserialize)]
struct WireToolCallIn {
    #[serde(default)]
    id: Option<String>,
    function: WireFunctionIn,
}

#[derive(Deserialize)]
struct WireFunctionIn {
    name: String,
    /// A JSON string per the spec; an already-parsed object is tolerated.
    #[serde(default)]
    arguments: Option<Value>,
}

/// Parses a non-streamed completion body.
pub(crate) fn parse_completion(text: &str) -> Result<ChatResponse, LlmError> {
    let wire: WireCompletion = serde_json::from_str(text).map_err(|e| {
        LlmError::InvalidResponse(format!("completion is not the expected JSON: {e}"))
    })?;
    let choice = wire
        .choices
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| LlmError::InvalidResponse("completion has no choices".into()))?;
    let message = choice
        .message
        .ok_or_else(|| LlmError::InvalidResponse("choice has no message".into()))?;
    let tool_calls = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, call)| {
            let id = call
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("jtcrm_call_{i}"));
            match call.function.arguments {
                Some(Value::String(raw)) => ToolCall::from_raw(id, call.function.name, raw),
                Some(Value::Null) | None => ToolCall::from_raw(id, call.function.name, ""),
                Some(value) => ToolCall::new(id, call.function.name, value),
            }
        })
        .collect();
    Ok(ChatResponse {
        content: message.content,
        tool_calls,
        finish_reason: choice.finish_reason.as_deref().map(FinishReason::from_wire),
        usage: wire.usage,
        model: wire.model,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base_url_normalisation() {
        for (input, expected) in [
            ("http://host:11434", "http://host:11434/v1"),
            ("http://host:11434/", "http://host:11434/v1"),
            ("http://host:11434/v1", "http://host:11434/v1"),
            ("http://host:11434/v1/", "http://host:11434/v1"),
            (
                "https://api.openai.com/v1/chat/completions",
                "https://api.openai.com/v1",
            ),
            (
                "https://api.groq.com/openai/v1",
                "https://api.groq.com/openai/v1",
            ),
        ] {
            assert_eq!(normalize_base_url(input).unwrap(), expected, "{input}");
        }
        assert!(normalize_base_url("ftp://x").is_err());
        assert!(normalize_base_url("not a url").is_err());
    }

    #[test]
    fn retry_after_forms() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(2)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:05 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(5)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:27:00 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&h, now), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&h, now), None);
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(
            parse_retry_after(&h, now),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn error_flavours() {
        let openai = r#"{"error":{"message":"Invalid 'messages'","type":"invalid_request_error","param":"messages","code":null}}"#;
        let llama =
            r#"{"error":{"code":400,"message":"bad tools","type":"invalid_request_error"}}"#;
        let vllm = r#"{"object":"error","message":"no model","type":"NotFoundError","param":null,"code":404}"#;
        match error_from_status(StatusCode::BAD_REQUEST, openai, None) {
            LlmError::BadRequest(m) => {
                assert!(m.contains("Invalid 'messages'") && m.contains("param messages"))
            }
            other => panic!("{other:?}"),
        }
        match error_from_status(StatusCode::BAD_REQUEST, llama, None) {
            LlmError::BadRequest(m) => assert!(m.contains("bad tools") && m.contains("code 400")),
            other => panic!("{other:?}"),
        }
        match error_from_status(StatusCode::NOT_FOUND, vllm, None) {
            LlmError::BadRequest(m) => assert!(m.contains("no model")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            error_from_status(StatusCode::UNAUTHORIZED, "", None),
            LlmError::Unauthorized
        );
        assert!(matches!(
            error_from_status(StatusCode::BAD_GATEWAY, "<html>", None),
            LlmError::Unavailable(_)
        ));
        let quota = r#"{"error":{"message":"quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert!(matches!(
            error_from_status(StatusCode::TOO_MANY_REQUESTS, quota, None),
            LlmError::BadRequest(_)
        ));
    }

    #[test]
    fn completion_parsing_tolerates_variants() {
        let body = r#"{"id":"x","object":"chat.completion","created":1,"model":"m","system_fingerprint":"f",
            "choices":[{"index":0,"logprobs":null,"message":{"role":"assistant","content":null,"refusal":null,
            "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},
                          {"type":"function","function":{"name":"g","arguments":{"b":2}}},
                          {"id":"call_3","type":"function","function":{"name":"h","arguments":"{oops"}}]},
            "finish_reason":"tool_calls"}]}"#;
        let r = parse_completion(body).unwrap();
        assert_eq!(r.content, None);
        assert_eq!(r.usage, None);
        assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(r.tool_calls[0].arguments, serde_json::json!({"a": 1}));
        assert_eq!(r.tool_calls[1].id, "jtcrm_call_1");
        assert_eq!(r.tool_calls[1].arguments, serde_json::json!({"b": 2}));
        assert!(r.tool_calls[2].parsed_arguments().is_err());
        assert!(parse_completion(r#"{"choices":[]}"#).is_err());
    }
}
