//! The LLM client, tool loop and mock, over real HTTP on port 0.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use jtcrm_integrations::llm::mock::{self, ErrorFlavour, MockLlmHandle, MockLlmOptions, MockTurn};
use jtcrm_integrations::llm::{
    BoxFuture, ChatModel, ChatRequest, FinishReason, LlmError, Message, OpenAiClient, OpenAiConfig,
    RetryPolicy, Role, StreamDelta, ToolChoice, ToolExecutor, ToolSpec, run_with_tools,
};
use serde_json::{Value, json};

async fn start(options: MockLlmOptions) -> Result<MockLlmHandle> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(mock::serve(listener, options)?)
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
    }
}

fn client(base: &str, key: Option<&str>) -> Result<Arc<dyn ChatModel>> {
    let mut config = OpenAiConfig::new(base, key.map(str::to_string));
    config.timeout = Duration::from_secs(10);
    config.retry = fast_retry();
    Ok(Arc::new(OpenAiClient::new(config)?))
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(
        "qwen2.5:7b",
        vec![
            Message::system("Você é o atendente da JT Telecom."),
            Message::user(text),
        ],
    )
}

fn tools() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "buscar_cliente".into(),
        description: "Busca um cliente pelo CPF".into(),
        parameters: json!({"type": "object", "properties": {"cpf": {"type": "string"}}, "required": ["cpf"]}),
    }]
}

/// Answers `buscar_cliente` and records what it was called with.
#[derive(Default)]
struct Crm {
    seen: Mutex<Vec<(String, Value)>>,
}

impl ToolExecutor for Crm {
    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: &'a Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            if let Ok(mut seen) = self.seen.lock() {
                seen.push((name.to_string(), arguments.clone()));
            }
            match arguments.get("cpf").and_then(Value::as_str) {
                Some("52998224725") => Ok(json!({"nome": "Maria", "plano": "500 Mega"})),
                Some(_) => Err("cliente não encontrado".into()),
                None => Err("cpf ausente".into()),
            }
        })
    }
}

#[tokio::test]
async fn llm_plain_reply_with_key_and_base_without_v1() -> Result<()> {
    let mock = start(MockLlmOptions {
        api_key: Some("sk-test".into()),
        ..Default::default()
    })
    .await?;
    mock.push(MockTurn::text("Olá! Como posso ajudar?"));
    // The base without /v1 is normalised to /v1.
    let base = mock.base_url().trim_end_matches("/v1").to_string();
    let model = client(&base, Some("sk-test"))?;
    let mut request = ask("oi");
    request.temperature = Some(0.2);
    request.max_tokens = Some(100);
    let response = model.complete(request).await?;
    assert_eq!(response.content.as_deref(), Some("Olá! Como posso ajudar?"));
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert!(response.tool_calls.is_empty());
    let usage = response.usage.context("usage")?;
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(requests[0].body["model"], "qwen2.5:7b");
    assert_eq!(requests[0].body["max_tokens"], 100);
    assert!(
        requests[0].body.get("tools").is_none(),
        "no empty tools array is sent"
    );

    // Queue empty: the deterministic default echoes the last user message.
    let response = model.complete(ask("qual meu plano?")).await?;
    assert_eq!(response.content.as_deref(), Some("eco: qual meu plano?"));
    Ok(())
}

#[tokio::test]
async fn llm_usage_is_optional() -> Result<()> {
    let mock = start(MockLlmOptions {
        include_usage: false,
        ..Default::default()
    })
    .await?;
    let model = client(mock.base_url(), None)?;
    let response = model.complete(ask("oi")).await?;
    assert_eq!(response.usage, None);
    assert_eq!(response.content.as_deref(), Some("eco: oi"));
    Ok(())
}

#[tokio::test]
async fn llm_tool_call_then_final_answer() -> Result<()> {
    let mock = start(MockLlmOptions::default()).await?;
    mock.push(MockTurn::tool_call(
        "buscar_cliente",
        r#"{"cpf": "52998224725"}"#,
    ));
    let model = client(mock.base_url(), Some("ollama"))?;
    let crm = Crm::default();
    let mut request = ask("meu CPF é 529.982.247-25");
    request.tools = tools();
    request.tool_choice = Some(ToolChoice::Auto);
    let run = run_with_tools(model.as_ref(), request, &crm, 4).await?;

    assert!(!run.exhausted);
    assert_eq!(run.model_calls, 2);
    assert_eq!(run.calls.len(), 1);
    assert_eq!(run.calls[0].call.name, "buscar_cliente");
    assert_eq!(run.calls[0].call.arguments, json!({"cpf": "52998224725"}));
    let content = run.response.content.clone().context("final content")?;
    assert!(content.starts_with("Resultado: "), "{content}");
    assert!(content.contains("500 Mega"));
    // Usage of both rounds is added up.
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert!(run.usage.total_tokens > 0);
    assert_eq!(run.messages.last().map(|m| m.role), Some(Role::Assistant));

    // The second request carries the assistant tool-call turn and the tool result.
    let first = &requests[0].body;
    assert_eq!(first["tools"][0]["type"], "function");
    assert_eq!(first["tools"][0]["function"]["name"], "buscar_cliente");
    assert_eq!(first["tool_choice"], "auto");
    let messages = requests[1].messages();
    assert_eq!(messages.len(), 4);
    let assistant = &messages[2];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["content"], Value::Null);
    let call = &assistant["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(
        call["function"]["arguments"], r#"{"cpf": "52998224725"}"#,
        "arguments go back as the exact string"
    );
    let tool = &messages[3];
    assert_eq!(tool["role"], "tool");
    assert_eq!(tool["tool_call_id"], call["id"]);
    let result: Value = serde_json::from_str(tool["content"].as_str().context("tool content")?)?;
    assert_eq!(result, json!({"nome": "Maria", "plano": "500 Mega"}));
    Ok(())
}

#[tokio::test]
async fn llm_unknown_tool_and_invalid_arguments_go_back_as_errors() -> Result<()> {
    let mock = start(MockLlmOptions {
        error_flavour: ErrorFlavour::LlamaCpp,
        ..Default::default()
    })
    .await?;
    mock.push(MockTurn::tool_calls([
        ("apagar_banco", "{}"),
        ("buscar_cliente", r#"{"cpf": "5299"#),
        ("buscar_cliente", r#"{"cpf": "00000000000"}"#),
    ]));
    mock.push(MockTurn::text("Não consegui localizar o cadastro."));
    let model = client(mock.base_url(), None)?;
    let crm = Crm::default();
    let mut request = ask("oi");
    request.tools = tools();
    let run = run_with_tools(model.as_ref(), request, &crm, 2).await?;
    assert_eq!(
        run.response.content.as_deref(),
        Some("Não consegui localizar o cadastro.")
    );
    assert_eq!(run.calls.len(), 3);
    assert!(run.calls.iter().all(|c| c.result.is_err()));
    // Only the well-formed call to a known tool reached the executor.
    assert_eq!(crm.seen.lock().map_err(|_| anyhow!("poisoned"))?.len(), 1);
    let messages = mock.requests()[1].messages();
    let tool_contents: Vec<Value> = messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| serde_json::from_str(m["content"].as_str().unwrap_or("")).unwrap_or(Value::Null))
        .collect();
    assert_eq!(tool_contents.len(), 3);
    assert!(
        tool_contents[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("unknown tool")
    );
    assert!(
        tool_contents[1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON")
    );
    assert_eq!(tool_contents[2]["error"], "cliente não encontrado");
    Ok(())
}

#[tokio::test]
async fn llm_tool_loop_stops_after_max_rounds() -> Result<()> {
    let mock = start(MockLlmOptions::default()).await?;
    for _ in 0..3 {
        mock.push(MockTurn::tool_call(
            "buscar_cliente",
            r#"{"cpf":"52998224725"}"#,
        ));
    }
    let model = client(mock.base_url(), None)?;
    let mut request = ask("oi");
    request.tools = tools();
    let run = run_with_tools(model.as_ref(), request, &Crm::default(), 2).await?;
    assert!(run.exhausted);
    assert_eq!(run.model_calls, 3);
    assert_eq!(run.calls.len(), 2);
    assert_eq!(run.response.tool_calls.len(), 1);
    assert_eq!(mock.request_count(), 3);
    Ok(())
}

#[tokio::test]
async fn llm_streaming_content_and_fragmented_tool_calls() -> Result<()> {
    let mock = start(MockLlmOptions {
        stream_chunk_chars: 3,
        ..Default::default()
    })
    .await?;
    mock.push(MockTurn::text("Seu plano é de 500 Mega, ção ✓."));
    mock.push(MockTurn::tool_calls([
        ("buscar_cliente", r#"{"cpf":"52998224725","detalhes":true}"#),
        ("abrir_chamado", r#"{"motivo":"sem sinal","prioridade":2}"#),
    ]));
    let model = client(mock.base_url(), None)?;

    let mut pieces = Vec::new();
    let mut on_delta = |d: StreamDelta| {
        if let StreamDelta::Content(text) = d {
            pieces.push(text);
        }
    };
    let response = model
        .complete_stream(ask("meu plano?"), &mut on_delta)
        .await?;
    assert_eq!(
        response.content.as_deref(),
        Some("Seu plano é de 500 Mega, ção ✓.")
    );
    assert!(pieces.len() > 5, "content arrived in pieces: {pieces:?}");
    assert_eq!(pieces.concat(), "Seu plano é de 500 Mega, ção ✓.");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert!(
        response.usage.is_some(),
        "usage chunk requested with stream_options"
    );
    let body = &mock.requests()[0].body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);

    let mut fragments = 0;
    let mut on_delta = |d: StreamDelta| {
        if matches!(d, StreamDelta::ToolCall { .. }) {
            fragments += 1;
        }
    };
    let response = model
        .complete_stream(ask("sem sinal"), &mut on_delta)
        .await?;
    assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(response.content, None);
    assert_eq!(response.tool_calls.len(), 2);
    assert_eq!(response.tool_calls[0].name, "buscar_cliente");
    assert_eq!(
        response.tool_calls[0].arguments,
        json!({"cpf": "52998224725", "detalhes": true})
    );
    assert_eq!(response.tool_calls[1].name, "abrir_chamado");
    assert_eq!(
        response.tool_calls[1].arguments,
        json!({"motivo": "sem sinal", "prioridade": 2})
    );
    assert!(response.tool_calls[0].id.starts_with("call_"));
    assert_ne!(response.tool_calls[0].id, response.tool_calls[1].id);
    assert!(
        fragments > 10,
        "arguments arrived in fragments ({fragments})"
    );
    Ok(())
}

#[tokio::test]
async fn llm_rate_limited_then_success_honours_retry_after() -> Result<()> {
    let mock = start(MockLlmOptions::default()).await?;
    mock.rate_limit_next(1, Some("1"));
    let model = client(mock.base_url(), None)?;
    let response = model.complete(ask("oi")).await?;
    assert_eq!(response.content.as_deref(), Some("eco: oi"));
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].status, 429);
    assert_eq!(requests[1].status, 200);
    let gap = requests[1]
        .received_at
        .duration_since(requests[0].received_at);
    assert!(
        gap >= Duration::from_secs(1),
        "waited {gap:?}, Retry-After said 1 s"
    );
    Ok(())
}

#[tokio::test]
async fn llm_rate_limit_beyond_cap_or_attempts_is_returned() -> Result<()> {
    let mock = start(MockLlmOptions::default()).await?;
    // Longer than max_retry_after (5 s): returned at once with the server's value.
    mock.rate_limit_next(1, Some("120"));
    let model = client(mock.base_url(), None)?;
    let error = model
        .complete(ask("oi"))
        .await
        .err()
        .context("expected an error")?;
    assert_eq!(
        error,
        LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert!(error.is_retryable());
    assert_eq!(mock.request_count(), 1);

    // Without Retry-After: exponential backoff, then the last 429 is returned.
    mock.rate_limit_next(3, None);
    let error = model
        .complete(ask("oi"))
        .await
        .err()
        .context("expected an error")?;
    assert_eq!(error, LlmError::RateLimited { retry_after: None });
    assert_eq!(mock.request_count(), 4);
    Ok(())
}

#[tokio::test]
async fn llm_both_error_flavours() -> Result<()> {
    let mock = start(MockLlmOptions::default()).await?;
    let model = client(mock.base_url(), None)?;

    mock.push(MockTurn::openai_error(
        400,
        "This model's maximum context length is 8192 tokens.",
        Some("context_length_exceeded"),
    ));
    match model.complete(ask("oi")).await {
        Err(LlmError::BadRequest(message)) => {
            assert!(message.contains("maximum context length"), "{message}");
            assert!(message.contains("context_length_exceeded"), "{message}");
        }
        other => bail!("expected BadRequest, got {other:?}"),
    }
    mock.push(MockTurn::openai_error(
        404,
        "The model `gpt-9` does not exist",
        None,
    ));
    assert!(matches!(
        model.complete(ask("oi")).await,
        Err(LlmError::BadRequest(_))
    ));

    mock.push(MockTurn::llama_error(
        400,
        "tools param requires --jinja flag",
    ));
    match model.complete(ask("oi")).await {
        Err(e @ LlmError::BadRequest(_)) => {
            assert!(e.to_string().contains("--jinja"), "{e}");
            assert!(e.to_string().contains("code 400"), "{e}");
            assert!(!e.is_retryable());
        }
        other => bail!("expected BadRequest, got {other:?}"),
    }
    assert_eq!(mock.request_count(), 3, "4xx are not retried");

    // 5xx is retried, then reported as Unavailable.
    mock.push_all((0..3).map(|_| MockTurn::llama_error(503, "Loading model")));
    match model.complete(ask("oi")).await {
        Err(e @ LlmError::Unavailable(_)) => {
            assert!(e.is_retryable() && e.to_string().contains("Loading model"))
        }
        other => bail!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(mock.request_count(), 6);

    // A 5xx followed by success: recovered by the retry.
    mock.push(MockTurn::openai_error(500, "The server had an error", None));
    assert_eq!(
        model.complete(ask("oi")).await?.content.as_deref(),
        Some("eco: oi")
    );

    // The mock's own validation errors, in the llama.cpp flavour.
    let llama = start(MockLlmOptions {
        error_flavour: ErrorFlavour::LlamaCpp,
        ..Default::default()
    })
    .await?;
    let model = client(llama.base_url(), None)?;
    let mut request = ask("oi");
    request.messages.push(Message::tool("call_nope", "{}"));
    match model.complete(request).await {
        Err(LlmError::BadRequest(message)) => assert!(message.contains("role 'tool'"), "{message}"),
        other => bail!("expected BadRequest, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn llm_wrong_key_is_unauthorized_and_not_retried() -> Result<()> {
    for flavour in [ErrorFlavour::OpenAi, ErrorFlavour::LlamaCpp] {
        let mock = start(MockLlmOptions {
            api_key: Some("sk-right".into()),
            error_flavour: flavour,
            ..Default::default()
        })
        .await?;
        let model = client(mock.base_url(), Some("sk-wrong"))?;
        let error = model
            .complete(ask("oi"))
            .await
            .err()
            .context("expected an error")?;
        assert_eq!(error, LlmError::Unauthorized);
        assert!(!error.is_retryable());
        let missing = client(mock.base_url(), None)?;
        assert_eq!(
            missing.complete(ask("oi")).await.err(),
            Some(LlmError::Unauthorized)
        );
        assert_eq!(mock.request_count(), 2);
    }
    Ok(())
}

#[tokio::test]
async fn llm_timeout_is_unavailable() -> Result<()> {
    let mock = start(MockLlmOptions {
        latency: Duration::from_secs(5),
        ..Default::default()
    })
    .await?;
    let mut config = OpenAiConfig::new(mock.base_url(), None);
    config.timeout = Duration::from_millis(200);
    config.retry = RetryPolicy {
        max_attempts: 2,
        ..fast_retry()
    };
    let model = OpenAiClient::new(config)?;
    match model.complete(ask("oi")).await {
        Err(e @ LlmError::Unavailable(_)) => assert!(e.is_retryable()),
        other => bail!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(mock.request_count(), 2, "a timeout is retried");

    // Streaming: the wait for the headers is bounded too.
    let mut ignore = |_: StreamDelta| {};
    assert!(matches!(
        model.complete_stream(ask("oi"), &mut ignore).await,
        Err(LlmError::Unavailable(_))
    ));

    // Back to a fast server: the same client works.
    mock.set_latency(Duration::ZERO);
    assert_eq!(
        model.complete(ask("oi")).await?.content.as_deref(),
        Some("eco: oi")
    );
    Ok(())
}

#[tokio::test]
async fn llm_mock_ignores_unknown_fields_and_streams_errors_as_json() -> Result<()> {
    let mock = start(MockLlmOptions::default()).await?;
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&json!({
            "model": "m", "messages": [{"role": "user", "content": "x", "name": "maria"}],
            "response_format": {"type": "json_object"}, "seed": 7, "frobnicate": {"deep": [1, 2]},
        }))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "eco: x");

    // An error turn while streaming comes before the stream starts, as plain JSON.
    mock.push(MockTurn::openai_error(
        400,
        "Invalid schema for function 'x'",
        None,
    ));
    let model = client(mock.base_url(), None)?;
    let mut ignore = |_: StreamDelta| {};
    assert!(matches!(
        model.complete_stream(ask("oi"), &mut ignore).await,
        Err(LlmError::BadRequest(_))
    ));

    // A server that ignores `stream: true` and answers plain JSON is still understood.
    let plain = json!({"choices": [{"message": {"role": "assistant", "content": "sem stream"}, "finish_reason": "stop"}]});
    mock.push(MockTurn::Raw {
        status: 200,
        content_type: "application/json".into(),
        body: plain.to_string(),
    });
    let mut pieces = Vec::new();
    let mut collect = |d: StreamDelta| pieces.push(d);
    let mut request = ask("oi");
    request.tool_choice = Some(ToolChoice::Function("buscar_cliente".into()));
    request.tools = tools();
    let response = model.complete_stream(request, &mut collect).await?;
    assert_eq!(response.content.as_deref(), Some("sem stream"));
    assert_eq!(pieces, vec![StreamDelta::Content("sem stream".into())]);
    let sent = mock.requests().last().context("request")?.body.clone();
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "buscar_cliente"}})
    );

    // A 200 that is not a completion.
    mock.push(MockTurn::Raw {
        status: 200,
        content_type: "text/html".into(),
        body: "<html>proxy</html>".into(),
    });
    assert!(matches!(
        model.complete(ask("oi")).await,
        Err(LlmError::InvalidResponse(_))
    ));
    Ok(())
}
