//! Server-Sent Events of a streamed chat completion: line splitting across network reads, and
//! assembly of `chat.completion.chunk` deltas into one [`ChatResponse`].

use serde::Deserialize;
use serde_json::Value;

use super::{ChatResponse, FinishReason, LlmError, StreamDelta, ToolCall, Usage};

/// Splits a byte stream into SSE events and returns the `data` of each complete event.
///
/// Follows the SSE rules: lines end in `\n` or `\r\n`; a blank line ends an event; `data:` lines
/// of one event are joined with `\n`; `:` comments and other fields (`event:`, `id:`) are ignored.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    buf: Vec<u8>,
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds bytes as they arrive; returns the data of the events they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, LlmError> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line)
                .map_err(|_| LlmError::InvalidResponse("stream line is not UTF-8".into()))?;
            self.line(&line, &mut events);
        }
        Ok(events)
    }

    /// The end of the byte stream: a last event without its blank line still counts.
    pub(crate) fn finish(&mut self) -> Result<Vec<String>, LlmError> {
        let mut events = Vec::new();
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8(rest)
                .map_err(|_| LlmError::InvalidResponse("stream line is not UTF-8".into()))?;
            let line = line.trim_end_matches('\r').to_string();
            self.line(&line, &mut events);
        }
        if let Some(data) = self.data.take() {
            events.push(data);
        }
        Ok(events)
    }

    fn line(&mut self, line: &str, events: &mut Vec<String>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                events.push(data);
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct WireChunk {
    #[serde(default)]
    choices: Option<Vec<WireChunkChoice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCallDelta {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct WireFunctionDelta {
    #[serde(default)]
    name: Option<String>,
    /// A string fragment; an object is tolerated (some servers send the arguments whole).
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Joins the deltas of one streamed completion.
#[derive(Debug, Default)]
pub(crate) struct StreamAssembler {
    content: Option<String>,
    calls: Vec<PartialCall>,
    finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
    model: Option<String>,
    done: bool,
}

impl StreamAssembler {
    /// Whether `data: [DONE]` was seen.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Whether a `finish_reason` was seen (a stream cut after it lost nothing but `[DONE]`).
    pub(crate) fn has_finished(&self) -> bool {
        self.finish_reason.is_some()
    }

    /// Handles the data of one event.
    pub(crate) fn on_data(
        &mut self,
        data: &str,
        on_delta: &mut (dyn FnMut(StreamDelta) + Send),
    ) -> Result<(), LlmError> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() || self.done {
            return Ok(());
        }
        let chunk: WireChunk = serde_json::from_str(data)
            .map_err(|e| LlmError::InvalidResponse(format!("stream chunk is not JSON: {e}")))?;
        if let Some(error) = chunk.error {
            // llama.cpp reports errors met after the headers as a data event.
            return Err(super::client::error_from_stream_event(&error));
        }
        if let Some(model) = chunk.model {
            self.model.get_or_insert(model);
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in chunk.choices.unwrap_or_default() {
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content
                    && !text.is_empty()
                {
                    self.content.get_or_insert_with(String::new).push_str(&text);
                    on_delta(StreamDelta::Content(text));
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    self.tool_call_delta(call, on_delta);
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(FinishReason::from_wire(&reason));
            }
        }
        Ok(())
    }

    fn tool_call_delta(
        &mut self,
        call: WireToolCallDelta,
        on_delta: &mut (dyn FnMut(StreamDelta) + Send),
    ) {
        let index = match call.index {
            Some(index) => index,
            // Without an index: a new id opens a new call, anything else continues the last one.
            None => match (&call.id, self.calls.last()) {
                (Some(id), Some(last)) if *id != last.id => self.calls.len(),
                (_, Some(_)) => self.calls.len() - 1,
                (_, None) => 0,
            },
        };
        if index > 1024 {
            return;
        }
        while self.calls.len() <= index {
            self.calls.push(PartialCall::default());
        }
        let slot = &mut self.calls[index];
        if let Some(id) = &call.id
            && !id.is_empty()
        {
            slot.id = id.clone();
        }
        let mut name = None;
        let mut arguments = String::new();
        if let Some(function) = call.function {
            if let Some(fragment) = function.name {
                // Deltas are incremental, but some servers repeat the whole name in every delta.
                if slot.name != fragment {
                    slot.name.push_str(&fragment);
                }
                name = Some(fragment);
            }
            match function.arguments {
                Some(Value::String(fragment)) => arguments = fragment,
                Some(Value::Null) | None => {}
                Some(other) => arguments = other.to_string(),
            }
            slot.arguments.push_str(&arguments);
        }
        on_delta(StreamDelta::ToolCall {
            index,
            id: call.id,
            name,
            arguments,
        });
    }

    /// The assembled response.
    pub(crate) fn finish(self) -> ChatResponse {
        let tool_calls = self
            .calls
            .into_iter()
            .enumerate()
            .filter(|(_, c)| !c.name.is_empty() || !c.arguments.is_empty())
            .map(|(i, c)| {
                let id = if c.id.is_empty() {
                    format!("jtcrm_call_{i}")
                } else {
                    c.id
                };
                ToolCall::from_raw(id, c.name, c.arguments)
            })
            .collect();
        ChatResponse {
            content: self.content,
            tool_calls,
            finish_reason: self.finish_reason,
            usage: self.usage,
            model: self.model,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads_and_crlf() {
        let mut d = SseDecoder::default();
        assert!(d.push(b"data: {\"a\"").unwrap().is_empty());
        assert!(d.push(b":1}\r").unwrap().is_empty());
        assert_eq!(
            d.push(b"\n\r\n: comment\n\ndata: x\ndata: y\n\n").unwrap(),
            vec!["{\"a\":1}", "x\ny"]
        );
        assert_eq!(d.push(b"data: [DONE]").unwrap(), Vec::<String>::new());
        assert_eq!(d.finish().unwrap(), vec!["[DONE]"]);
    }

    #[test]
    fn assembles_fragmented_tool_calls() {
        let mut a = StreamAssembler::default();
        let mut seen = Vec::new();
        let mut cb = |d: StreamDelta| seen.push(d);
        for data in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"find","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c2","function":{"name":"other","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"x\"}"}}]},"finish_reason":"tool_calls"}]}"#,
            "[DONE]",
        ] {
            a.on_data(data, &mut cb).unwrap();
        }
        assert!(a.is_done());
        let r = a.finish();
        assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0].arguments, serde_json::json!({"q": "x"}));
        assert_eq!(r.tool_calls[1].name, "other");
        assert_eq!(seen.len(), 4);
    }
}
