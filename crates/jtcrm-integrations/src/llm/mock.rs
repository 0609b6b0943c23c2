//! A faithful local mock of an OpenAI-compatible chat completions server.
//!
//! `serve(listener, options)` spawns it on the current tokio runtime and returns a
//! [`MockLlmHandle`], whose [`base_url`](MockLlmHandle::base_url) (ending in `/v1`) is what an
//! [`OpenAiClient`](super::OpenAiClient) is pointed at. It serves `POST /v1/chat/completions`
//! (and `/chat/completions`) and `GET /v1/models`.
//!
//! Each request is recorded (arrival time, `Authorization`, JSON body, answered status), then,
//! after the configured latency:
//! 1. a configured key is checked (`401` in the configured error flavour);
//! 2. a pending rate limit ([`MockLlmHandle::rate_limit_next`]) answers `429` with `Retry-After`;
//! 3. the body is validated like OpenAI does (JSON, `model`, non-empty `messages`, roles, tool
//!    messages answering a preceding assistant `tool_calls`, every tool call answered, `arguments`
//!    a string, tools of type `function`); unknown fields are ignored;
//! 4. the next scripted [`MockTurn`] is answered, or, when the queue is empty, a deterministic
//!    default: after tool results `"Resultado: <tool contents joined by "; ">"`, otherwise
//!    `"eco: <last user message>"`.
//!
//! With `"stream": true` the answer is Server-Sent Events: a role chunk, the content in pieces of
//! `stream_chunk_chars` characters, each tool call's id and name then its argument string in
//! fragments, a chunk with `finish_reason`, a usage chunk (`choices: []`) when the request asked
//! `stream_options.include_usage`, and `data: [DONE]`. Every event is written in two halves
//! (split inside the JSON) `stream_frame_delay` apart, so clients must join lines across reads.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The error body shape the mock answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorFlavour {
    /// `{"error":{"message","type","param","code": string|null}}`
    #[default]
    OpenAi,
    /// `{"error":{"code": <integer status>,"message","type"}}`
    LlamaCpp,
}

/// Options of the mock.
#[derive(Debug, Clone)]
pub struct MockLlmOptions {
    /// When set, requests must carry `Authorization: Bearer <key>` (else 401).
    pub api_key: Option<String>,
    /// Wait before answering each request (changeable with [`MockLlmHandle::set_latency`]).
    pub latency: Duration,
    /// Flavour of the mock's own errors (401, 429, validation).
    pub error_flavour: ErrorFlavour,
    /// Characters per content piece and per argument fragment when streaming.
    pub stream_chunk_chars: usize,
    /// Pause between two written frames of a stream.
    pub stream_frame_delay: Duration,
    /// Whether answers carry `usage` (non-streamed) / may carry a usage chunk (streamed).
    pub include_usage: bool,
}

impl Default for MockLlmOptions {
    fn default() -> Self {
        MockLlmOptions {
            api_key: None,
            latency: Duration::ZERO,
            error_flavour: ErrorFlavour::OpenAi,
            stream_chunk_chars: 4,
            stream_frame_delay: Duration::from_millis(1),
            include_usage: true,
        }
    }
}

/// A tool call the mock will ask for. `arguments` is sent verbatim as the JSON **string** (so a
/// test can script invalid JSON too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockToolCall {
    pub name: String,
    pub arguments: String,
}

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockTurn {
    /// `finish_reason: "stop"` with this content.
    Text(String),
    /// `finish_reason: "tool_calls"`, `content: null` (or the given text), these calls.
    ToolCalls {
        content: Option<String>,
        calls: Vec<MockToolCall>,
    },
    /// `finish_reason: "length"`, content cut.
    Length(String),
    /// An error in the given flavour. For OpenAI, `code` is the string code (or null); for
    /// llama.cpp the integer code is the status.
    Error {
        status: u16,
        flavour: ErrorFlavour,
        message: String,
        code: Option<String>,
    },
    /// A raw answer (status, content type, body), for malformed-response tests.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
}

impl MockTurn {
    pub fn text(text: impl Into<String>) -> Self {
        MockTurn::Text(text.into())
    }
    /// One tool call, `arguments` being the JSON string.
    pub fn tool_call(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        MockTurn::ToolCalls {
            content: None,
            calls: vec![MockToolCall {
                name: name.into(),
                arguments: arguments.into(),
            }],
        }
    }
    /// Several tool calls in one turn.
    pub fn tool_calls<N: Into<String>, A: Into<String>>(
        calls: impl IntoIterator<Item = (N, A)>,
    ) -> Self {
        MockTurn::ToolCalls {
            content: None,
            calls: calls
                .into_iter()
                .map(|(n, a)| MockToolCall {
                    name: n.into(),
                    arguments: a.into(),
                })
                .collect(),
        }
    }
    /// An OpenAI-flavoured error (`code` a string or null).
    pub fn openai_error(status: u16, message: impl Into<String>, code: Option<&str>) -> Self {
        MockTurn::Error {
            status,
            flavour: ErrorFlavour::OpenAi,
            message: message.into(),
            code: code.map(str::to_string),
        }
    }
    /// A llama.cpp-flavoured error (`code` the integer status).
    pub fn llama_error(status: u16, message: impl Into<String>) -> Self {
        MockTurn::Error {
            status,
            flavour: ErrorFlavour::LlamaCpp,
            message: message.into(),
            code: None,
        }
    }
}

/// A request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub received_at: Instant,
    pub path: String,
    pub authorization: Option<String>,
    /// The parsed JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
    /// The status the mock answered (0 while still being answered, or if the client went away).
    pub status: u16,
}

impl RecordedRequest {
    /// The `messages` of the body.
    pub fn messages(&self) -> Vec<Value> {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }
}

struct Inner {
    turns: VecDeque<MockTurn>,
    rate_limits: VecDeque<Option<String>>,
    latency: Duration,
    requests: Vec<RecordedRequest>,
}

struct Shared {
    options: MockLlmOptions,
    inner: Mutex<Inner>,
    counter: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The running mock. Dropping it stops the server.
pub struct MockLlmHandle {
    base_url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockLlmHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockLlmHandle {
    /// `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    /// Queues a scripted turn (answered in order, one per request that passes auth, rate limit
    /// and validation).
    pub fn push(&self, turn: MockTurn) {
        self.shared.lock().turns.push_back(turn);
    }
    /// Queues several scripted turns.
    pub fn push_all(&self, turns: impl IntoIterator<Item = MockTurn>) {
        self.shared.lock().turns.extend(turns);
    }
    /// The next `n` requests get `429`, with `Retry-After: <retry_after>` when given (delta
    /// seconds like `"1"`, or an HTTP date).
    pub fn rate_limit_next(&self, n: usize, retry_after: Option<&str>) {
        let mut inner = self.shared.lock();
        for _ in 0..n {
            inner.rate_limits.push_back(retry_after.map(str::to_string));
        }
    }
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }
    /// Scripted turns not answered yet.
    pub fn pending_turns(&self) -> usize {
        self.shared.lock().turns.len()
    }
    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }
    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }
}

/// Starts the mock on `listener` (bind port 0 for tests). Must be called within a tokio runtime.
pub fn serve(
    listener: tokio::net::TcpListener,
    options: MockLlmOptions,
) -> std::io::Result<MockLlmHandle> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            turns: VecDeque::new(),
            rate_limits: VecDeque::new(),
            latency: options.latency,
            requests: Vec::new(),
        }),
        options,
        counter: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/chat/completions", post(completions))
        .route("/v1/models", get(models))
        .fallback(not_found)
        .with_state(shared.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "LLM mock server stopped");
        }
    });
    Ok(MockLlmHandle {
        base_url: format!("http://{addr}/v1"),
        shared,
        task,
    })
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(denied) = check_auth(&shared, &headers) {
        return denied;
    }
    Json(json!({"object": "list", "data": [{"id": "mock-model", "object": "model", "owned_by": "jtcrm"}]}))
        .into_response()
}

async fn not_found(State(shared): State<Arc<Shared>>) -> Response {
    error_response(
        shared.options.error_flavour,
        404,
        "Not found",
        "invalid_request_error",
        None,
        None,
    )
}

use axum::Json;

async fn completions(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_at = Instant::now();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let (index, latency) = {
        let mut inner = shared.lock();
        inner.requests.push(RecordedRequest {
            received_at,
            path: uri.path().to_string(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: parsed.clone().unwrap_or(Value::Null),
            status: 0,
        });
        (inner.requests.len() - 1, inner.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = answer(&shared, &headers, parsed);
    if let Some(r) = shared.lock().requests.get_mut(index) {
        r.status = response.status().as_u16();
    }
    response
}

fn check_auth(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let key = shared.options.api_key.as_ref()?;
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if sent == Some(format!("Bearer {key}").as_str()) {
        return None;
    }
    let flavour = shared.options.error_flavour;
    Some(match flavour {
        ErrorFlavour::OpenAi => error_response(
            flavour,
            401,
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        ErrorFlavour::LlamaCpp => error_response(
            flavour,
            401,
            "Invalid API Key",
            "authentication_error",
            None,
            None,
        ),
    })
}

fn answer(shared: &Shared, headers: &HeaderMap, body: Option<Value>) -> Response {
    let flavour = shared.options.error_flavour;
    if let Some(denied) = check_auth(shared, headers) {
        return denied;
    }
    let limited = shared.lock().rate_limits.pop_front();
    if let Some(retry_after) = limited {
        let mut response = error_response(
            flavour,
            429,
            "Rate limit reached for requests. Please try again later.",
            "requests",
            None,
            Some("rate_limit_exceeded"),
        );
        if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let Some(body) = body else {
        return error_response(
            flavour,
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
            "invalid_request_error",
            None,
            None,
        );
    };
    if let Err((message, param)) = validate(&body) {
        return error_response(
            flavour,
            400,
            &message,
            "invalid_request_error",
            param.as_deref(),
            None,
        );
    }
    let turn = shared.lock().turns.pop_front();
    let turn = turn.unwrap_or_else(|| default_turn(&body));
    let (content, calls, finish) = match turn {
        MockTurn::Text(text) => (Some(text), Vec::new(), "stop"),
        MockTurn::Length(text) => (Some(text), Vec::new(), "length"),
        MockTurn::ToolCalls { content, calls } => (content, calls, "tool_calls"),
        MockTurn::Error {
            status,
            flavour,
            message,
            code,
        } => {
            let kind = if status >= 500 {
                "server_error"
            } else {
                "invalid_request_error"
            };
            return error_response(flavour, status, &message, kind, None, code.as_deref());
        }
        MockTurn::Raw {
            status,
            content_type,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
        }
    };
    let n = shared.counter.fetch_add(1, Ordering::Relaxed) + 1;
    let calls: Vec<(String, MockToolCall)> = calls
        .into_iter()
        .enumerate()
        .map(|(i, c)| (format!("call_mock_{n}_{i}"), c))
        .collect();
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-model")
        .to_string();
    let usage = shared
        .options
        .include_usage
        .then(|| usage_of(&body, content.as_deref(), &calls));
    let reply = Reply {
        id: format!("chatcmpl-mock-{n}"),
        model,
        content,
        calls,
        finish,
        usage,
    };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let want_usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        stream_response(&shared.options, reply, want_usage)
    } else {
        Json(reply.completion()).into_response()
    }
}

/// Checks the request like OpenAI does; `Err((message, param))`.
fn validate(body: &Value) -> Result<(), (String, Option<String>)> {
    if !body.get("model").is_some_and(Value::is_string) {
        return Err(("you must provide a model parameter".into(), None));
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err((
            "Missing required parameter: 'messages'.".into(),
            Some("messages".into()),
        ));
    };
    if messages.is_empty() {
        return Err((
            "[] is too short - 'messages'".into(),
            Some("messages".into()),
        ));
    }
    let mut open: Vec<String> = Vec::new();
    let mut open_since = 0;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let param = Some(format!("messages.[{i}].role"));
        match role {
            "system" | "developer" | "user" | "assistant" => {
                if !open.is_empty() {
                    return Err((
                        format!(
                            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                            open.join(", ")
                        ),
                        Some(format!("messages.[{open_since}].role")),
                    ));
                }
                if role == "assistant" {
                    for (j, call) in m
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        let id = call.get("id").and_then(Value::as_str);
                        let name = call.pointer("/function/name").and_then(Value::as_str);
                        let args = call.pointer("/function/arguments");
                        let (Some(id), Some(_)) = (id, name) else {
                            return Err((
                                format!(
                                    "Missing required parameter: 'messages[{i}].tool_calls[{j}].function.name' or 'id'."
                                ),
                                Some(format!("messages.[{i}].tool_calls.[{j}]")),
                            ));
                        };
                        if let Some(args) = args.filter(|a| !a.is_string()) {
                            return Err((
                                format!(
                                    "Invalid type for 'messages[{i}].tool_calls[{j}].function.arguments': expected a string, but got {} instead.",
                                    json_kind(args)
                                ),
                                Some(format!(
                                    "messages.[{i}].tool_calls.[{j}].function.arguments"
                                )),
                            ));
                        }
                        open.push(id.to_string());
                        open_since = i;
                    }
                }
            }
            "tool" => {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                match open.iter().position(|o| o == id) {
                    Some(p) => {
                        open.remove(p);
                    }
                    None => {
                        return Err((
                            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.".into(),
                            param,
                        ));
                    }
                }
                if !m.get("content").is_some_and(Value::is_string) {
                    return Err((
                        format!("Invalid type for 'messages[{i}].content': expected a string."),
                        Some(format!("messages.[{i}].content")),
                    ));
                }
            }
            other => {
                return Err((
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'."
                    ),
                    param,
                ));
            }
        }
    }
    for (i, tool) in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let ok = tool.get("type").and_then(Value::as_str) == Some("function")
            && tool.pointer("/function/name").is_some_and(Value::is_string);
        if !ok {
            return Err((
                format!(
                    "Invalid 'tools[{i}]': expected {{\"type\":\"function\",\"function\":{{\"name\",…}}}}."
                ),
                Some(format!("tools[{i}]")),
            ));
        }
    }
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::String(_) => "a string",
    }
}

fn default_turn(body: &Value) -> MockTurn {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let trailing_tools: Vec<String> = messages
        .iter()
        .rev()
        .take_while(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
        .filter_map(|m| m.get("content").and_then(Value::as_str).map(str::to_string))
        .collect();
    if !trailing_tools.is_empty() {
        let joined: Vec<String> = trailing_tools.into_iter().rev().collect();
        return MockTurn::Text(format!("Resultado: {}", joined.join("; ")));
    }
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content").and_then(Value::as_str))
        .unwrap_or("");
    MockTurn::Text(format!("eco: {last_user}"))
}

fn words(s: &str) -> u32 {
    u32::try_from(s.split_whitespace().count()).unwrap_or(u32::MAX)
}

fn usage_of(body: &Value, content: Option<&str>, calls: &[(String, MockToolCall)]) -> Value {
    let prompt: u32 = body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            1 + m
                .get("content")
                .and_then(Value::as_str)
                .map(words)
                .unwrap_or(0)
        })
        .sum();
    let completion = 1
        + content.map(words).unwrap_or(0)
        + calls
            .iter()
            .map(|(_, c)| 1 + words(&c.arguments))
            .sum::<u32>();
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

struct Reply {
    id: String,
    model: String,
    content: Option<String>,
    calls: Vec<(String, MockToolCall)>,
    finish: &'static str,
    usage: Option<Value>,
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Reply {
    fn completion(&self) -> Value {
        let mut message = json!({"role": "assistant", "content": self.content, "refusal": null});
        if !self.calls.is_empty() {
            message["tool_calls"] = Value::Array(
                self.calls
                    .iter()
                    .map(|(id, c)| json!({"id": id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect(),
            );
        }
        let mut body = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": now_secs(),
            "model": self.model,
            "system_fingerprint": "fp_jtcrm_mock",
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": self.finish}],
        });
        if let Some(usage) = &self.usage {
            body["usage"] = usage.clone();
        }
        body
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": now_secs(),
            "model": self.model,
            "system_fingerprint": "fp_jtcrm_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    }

    fn events(&self, piece: usize, want_usage: bool) -> Vec<String> {
        let piece = piece.max(1);
        let mut events = vec![self.chunk(json!({"role": "assistant", "content": ""}), None)];
        if let Some(content) = &self.content {
            for part in split_chars(content, piece) {
                events.push(self.chunk(json!({"content": part}), None));
            }
        }
        for (index, (id, call)) in self.calls.iter().enumerate() {
            events.push(self.chunk(
                json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}}]}),
                None,
            ));
            for part in split_chars(&call.arguments, piece) {
                events.push(self.chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": part}}]}),
                    None,
                ));
            }
        }
        events.push(self.chunk(json!({}), Some(self.finish)));
        if want_usage && let Some(usage) = &self.usage {
            events.push(json!({
                "id": self.id, "object": "chat.completion.chunk", "created": now_secs(),
                "model": self.model, "choices": [], "usage": usage,
            }));
        }
        let mut lines: Vec<String> = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        lines.push("data: [DONE]\n\n".to_string());
        lines
    }
}

fn split_chars(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

fn stream_response(options: &MockLlmOptions, reply: Reply, want_usage: bool) -> Response {
    let mut frames: VecDeque<Bytes> = VecDeque::new();
    for event in reply.events(options.stream_chunk_chars, want_usage) {
        let mut mid = event.len() / 2;
        while !event.is_char_boundary(mid) {
            mid += 1;
        }
        frames.push_back(Bytes::from(event[..mid].to_string()));
        frames.push_back(Bytes::from(event[mid..].to_string()));
    }
    let delay = options.stream_frame_delay;
    let stream =
        futures_util::stream::unfold((frames, true), move |(mut frames, first)| async move {
            let frame = frames.pop_front()?;
            if !first && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Some((Ok::<Bytes, Infallible>(frame), (frames, false)))
        });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

fn error_response(
    flavour: ErrorFlavour,
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = match flavour {
        ErrorFlavour::OpenAi => {
            json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
        }
        ErrorFlavour::LlamaCpp => {
            json!({"error": {"code": status, "message": message, "type": kind}})
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}
