//! OpenAI-compatible chat completions with tool calls (OpenAI, Ollama, llama-server, vLLM …).
//!
//! - [`ChatModel`]: the provider-neutral trait the CRM holds as `Arc<dyn ChatModel>`.
//! - [`OpenAiClient`]: the reqwest implementation (`POST {base}/chat/completions`), with
//!   per-request timeout, retries on 429 honouring `Retry-After`, and on 5xx/network errors with
//!   exponential backoff.
//! - [`run_with_tools`]: the tool-call loop (assistant message → tool messages → again).
//! - [`mock`]: a faithful local mock server of the API (scripted turns, streaming, both error
//!   flavours, 401, 429 with `Retry-After`, latency, request recording).
//!
//! Facts, quirks and policies are written in `docs/integrations/llm.md`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod client;
pub mod mock;
mod sse;
mod tools;

pub use client::{OpenAiClient, OpenAiConfig, RetryPolicy, normalize_base_url, parse_retry_after};
pub use tools::{ToolCallRecord, ToolExecutor, ToolRun, run_with_tools};

/// A boxed, `Send` future: what the object-safe traits of this module return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who wrote a message of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    /// The wire name (`"system"`, `"user"`, `"assistant"`, `"tool"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One message of the conversation. `tool_calls` is only meaningful on assistant messages and
/// `tool_call_id` only on tool messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    fn plain(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::plain(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::plain(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::plain(Role::Assistant, content)
    }
    /// The assistant turn that asked for tools (appended before the tool results).
    pub fn assistant_tool_calls(content: Option<String>, tool_calls: Vec<ToolCall>) -> Self {
        Message {
            role: Role::Assistant,
            content,
            tool_calls,
            tool_call_id: None,
        }
    }
    /// A tool result answering the call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: Role::Tool,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: Some(tool_call_id.into()),
        }
    }
}

/// A function call asked for by the model.
///
/// On the wire `arguments` is a JSON **string**; `arguments` holds it parsed and `raw_arguments`
/// the exact string (sent back verbatim in the assistant message of the tool loop). When the
/// string is not valid JSON, `arguments` is `Value::Null` and [`ToolCall::parsed_arguments`]
/// says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: Value,
    pub raw_arguments: String,
}

impl ToolCall {
    /// A call built from already-parsed arguments.
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: Value) -> Self {
        let raw_arguments = arguments.to_string();
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments,
            raw_arguments,
        }
    }

    /// A call built from the wire's argument string. An empty string means `{}` (some servers
    /// send `""` for functions without parameters).
    pub fn from_raw(
        id: impl Into<String>,
        name: impl Into<String>,
        raw_arguments: impl Into<String>,
    ) -> Self {
        let raw_arguments = raw_arguments.into();
        let arguments = parse_arguments(&raw_arguments).unwrap_or(Value::Null);
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments,
            raw_arguments,
        }
    }

    /// The arguments parsed from `raw_arguments`, or the JSON error.
    pub fn parsed_arguments(&self) -> Result<Value, String> {
        parse_arguments(&self.raw_arguments)
    }
}

fn parse_arguments(raw: &str) -> Result<Value, String> {
    if raw.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_str(raw).map_err(|e| format!("arguments are not valid JSON: {e}"))
}

/// A function the model may call. `parameters` is a JSON Schema object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// `tool_choice`: `"auto"`, `"none"`, `"required"` or one named function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Function(String),
}

impl ToolChoice {
    /// The wire value.
    pub fn to_wire(&self) -> Value {
        match self {
            ToolChoice::Auto => Value::from("auto"),
            ToolChoice::None => Value::from("none"),
            ToolChoice::Required => Value::from("required"),
            ToolChoice::Function(name) => {
                serde_json::json!({"type": "function", "function": {"name": name}})
            }
        }
    }
}

/// A chat completion request (provider-neutral).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

impl ChatRequest {
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        ChatRequest {
            model: model.into(),
            messages,
            ..Default::default()
        }
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    /// Any other value a server sends (e.g. the legacy `function_call`).
    Other(String),
}

impl FinishReason {
    pub fn from_wire(s: &str) -> Self {
        match s {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "tool_calls" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(s) => s,
        }
    }
}

/// Token counts. Missing counts read as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub total_tokens: u32,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(rhs.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(rhs.completion_tokens);
        self.total_tokens = self.total_tokens.saturating_add(rhs.total_tokens);
    }
}

/// The first choice of a completion.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatResponse {
    /// `null` on the wire (e.g. on a tool-call turn) reads as `None`.
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    /// `None` when the server sent none.
    pub finish_reason: Option<FinishReason>,
    /// `None` when the server sent none (it is optional, and absent from most streams).
    pub usage: Option<Usage>,
    /// The model that answered, as the server named it.
    pub model: Option<String>,
}

/// One increment of a streamed completion, handed to the caller's callback as it arrives.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamDelta {
    /// A piece of the assistant's text.
    Content(String),
    /// A piece of tool call number `index`: `id` and `name` usually come in its first delta, then
    /// the argument string in fragments.
    ToolCall {
        index: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
}

/// Errors of a chat completion.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// 401 (or 403): bad or missing key.
    #[error("unauthorized: the LLM server rejected the API key")]
    Unauthorized,
    /// 429 after the retries were spent, or with a `Retry-After` beyond the configured cap.
    #[error("rate limited (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// Any other 4xx: the request is wrong (unknown model, bad schema, context too long …).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 5xx, network error or timeout, after the retries were spent.
    #[error("LLM server unavailable: {0}")]
    Unavailable(String),
    /// A 2xx answer that could not be understood.
    #[error("invalid response from the LLM server: {0}")]
    InvalidResponse(String),
}

impl LlmError {
    /// Whether trying again later may succeed (rate limits and unavailability).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LlmError::RateLimited { .. } | LlmError::Unavailable(_)
        )
    }
}

/// A chat model: what the CRM holds, as `Arc<dyn ChatModel>`.
pub trait ChatModel: Send + Sync {
    /// One completion (non-streaming).
    fn complete(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse, LlmError>>;

    /// One streamed completion: `on_delta` is called for each increment as it arrives, and the
    /// assembled response is returned at the end (tool-call arguments joined and parsed).
    ///
    /// The default implementation calls [`ChatModel::complete`] and reports the whole answer as
    /// deltas at once (for models that cannot stream).
    fn complete_stream<'a>(
        &'a self,
        request: ChatRequest,
        on_delta: &'a mut (dyn FnMut(StreamDelta) + Send),
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            let response = self.complete(request).await?;
            if let Some(content) = &response.content {
                on_delta(StreamDelta::Content(content.clone()));
            }
            for (index, call) in response.tool_calls.iter().enumerate() {
                on_delta(StreamDelta::ToolCall {
                    index,
                    id: Some(call.id.clone()),
                    name: Some(call.name.clone()),
                    arguments: call.raw_arguments.clone(),
                });
            }
            Ok(response)
        })
    }
}
