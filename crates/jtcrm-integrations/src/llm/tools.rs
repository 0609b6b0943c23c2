//! The tool-call loop.

use serde_json::Value;

use super::{BoxFuture, ChatModel, ChatRequest, ChatResponse, LlmError, Message, ToolCall, Usage};

/// Executes the tools the model asks for.
pub trait ToolExecutor: Send + Sync {
    /// Runs tool `name` with its parsed `arguments`. `Err` carries a message for the model (it is
    /// sent back as the tool result, so the model can recover).
    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: &'a Value,
    ) -> BoxFuture<'a, Result<Value, String>>;
}

/// One tool call made during [`run_with_tools`], and what it gave.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallRecord {
    pub call: ToolCall,
    /// What was sent back: the executor's value, or the error (unknown tool, invalid argument
    /// JSON, or the executor's own `Err`).
    pub result: Result<Value, String>,
}

/// The outcome of [`run_with_tools`].
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRun {
    /// The last reply of the model. When `exhausted` it still carries unanswered `tool_calls`.
    pub response: ChatResponse,
    /// The conversation as it stands: the request's messages, every assistant tool-call turn and
    /// tool result, and the final assistant message (when it has content).
    pub messages: Vec<Message>,
    /// The usage of every round added up (rounds without usage count as 0).
    pub usage: Usage,
    /// The tool calls executed, in order.
    pub calls: Vec<ToolCallRecord>,
    /// Model calls made.
    pub model_calls: usize,
    /// True when the model still asked for tools after `max_rounds` rounds of tool execution.
    pub exhausted: bool,
}

/// Sends `request`, and while the reply has `tool_calls` (and fewer than `max_rounds` rounds of
/// tools were executed), appends the assistant message and one `tool` message per call, and
/// sends again. At most `max_rounds + 1` model calls.
///
/// Tool results are sent as the value's JSON text (a string value is sent as is); failures as
/// `{"error": "…"}`. A name not among `request.tools` (when it lists any) and arguments that are
/// not valid JSON are failures sent back to the model, not errors of this function. Model errors
/// end the loop with that error.
pub async fn run_with_tools(
    model: &dyn ChatModel,
    request: ChatRequest,
    tools: &dyn ToolExecutor,
    max_rounds: usize,
) -> Result<ToolRun, LlmError> {
    let mut request = request;
    let mut usage = Usage::default();
    let mut calls = Vec::new();
    let mut model_calls = 0;
    let mut rounds = 0;
    loop {
        let response = model.complete(request.clone()).await?;
        model_calls += 1;
        if let Some(u) = response.usage {
            usage += u;
        }
        if response.tool_calls.is_empty() || rounds >= max_rounds {
            let exhausted = !response.tool_calls.is_empty();
            let mut messages = request.messages;
            if exhausted {
                messages.push(Message::assistant_tool_calls(
                    response.content.clone(),
                    response.tool_calls.clone(),
                ));
            } else if let Some(content) = &response.content {
                messages.push(Message::assistant(content.clone()));
            }
            return Ok(ToolRun {
                response,
                messages,
                usage,
                calls,
                model_calls,
                exhausted,
            });
        }
        rounds += 1;
        request.messages.push(Message::assistant_tool_calls(
            response.content.clone(),
            response.tool_calls.clone(),
        ));
        for call in response.tool_calls {
            let known =
                request.tools.is_empty() || request.tools.iter().any(|t| t.name == call.name);
            let result = if !known {
                Err(format!("unknown tool {:?}", call.name))
            } else {
                match call.parsed_arguments() {
                    Ok(arguments) => tools.call(&call.name, &arguments).await,
                    Err(e) => Err(e),
                }
            };
            let content = match &result {
                Ok(Value::String(text)) => text.clone(),
                Ok(value) => value.to_string(),
                Err(message) => serde_json::json!({ "error": message }).to_string(),
            };
            tracing::debug!(tool = %call.name, ok = result.is_ok(), "tool call");
            request
                .messages
                .push(Message::tool(call.id.clone(), content));
            calls.push(ToolCallRecord { call, result });
        }
    }
}
