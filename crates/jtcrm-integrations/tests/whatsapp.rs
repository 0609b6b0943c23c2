//! The WhatsApp client, webhook helpers and mock, over real HTTP on port 0, with a tiny receiver
//! built from the webhook helpers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use chrono::Utc;
use jtcrm_integrations::whatsapp::mock::{
    self, DeliveryKind, MockSendError, MockWaHandle, MockWaOptions, OutsideWindowMode, SentKind,
    StatusScript, fixtures,
};
use jtcrm_integrations::whatsapp::{
    Client, MessageStatus, SIGNATURE_HEADER, SendOutcome, TemplateFallback, WaConfig, WaError,
    WaEvent, WebhookError, e164_to_wa_id, parse_webhook, sign_body, verify_signature,
    verify_subscription, wa_id_to_e164,
};
use serde_json::json;

const CUSTOMER: &str = "5511987654321";

// ------------------------------------------------------------------------------------------------
// A tiny receiving side, made of the pure helpers.

#[derive(Clone)]
struct ReceiverState {
    app_secret: String,
    verify_token: String,
    events: Arc<Mutex<Vec<WaEvent>>>,
    rejected: Arc<Mutex<Vec<u16>>>,
}

struct Receiver {
    url: String,
    state: ReceiverState,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    fn events(&self) -> Vec<WaEvent> {
        self.state
            .events
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }
    fn rejected(&self) -> Vec<u16> {
        self.state
            .rejected
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }
    fn statuses_of(&self, message_id: &str) -> Vec<MessageStatus> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                WaEvent::Status {
                    message_id: id,
                    status,
                    ..
                } if id == message_id => Some(status),
                _ => None,
            })
            .collect()
    }
}

async fn handshake(
    State(s): State<ReceiverState>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    let get = |k: &str| q.get(k).map(String::as_str);
    match verify_subscription(
        get("hub.mode"),
        get("hub.verify_token"),
        get("hub.challenge"),
        &s.verify_token,
    ) {
        Some(challenge) => (StatusCode::OK, challenge),
        None => (StatusCode::FORBIDDEN, String::new()),
    }
}

async fn events(State(s): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let status = if !verify_signature(&s.app_secret, &body, signature) {
        StatusCode::UNAUTHORIZED
    } else {
        match parse_webhook(&body) {
            Ok(parsed) => {
                if let Ok(mut events) = s.events.lock() {
                    events.extend(parsed);
                }
                return StatusCode::OK;
            }
            Err(_) => StatusCode::BAD_REQUEST,
        }
    };
    if let Ok(mut rejected) = s.rejected.lock() {
        rejected.push(status.as_u16());
    }
    status
}

async fn receiver(app_secret: &str, verify_token: &str) -> Result<Receiver> {
    let state = ReceiverState {
        app_secret: app_secret.into(),
        verify_token: verify_token.into(),
        events: Arc::default(),
        rejected: Arc::default(),
    };
    let app = Router::new()
        .route("/webhook", get(handshake).post(events))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhook", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Receiver { url, state, task })
}

/// The mock, with a receiver subscribed through the GET handshake.
async fn setup(options: MockWaOptions) -> Result<(MockWaHandle, Receiver, Client)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mock = mock::serve(listener, options)?;
    let receiver = receiver(&mock.options().app_secret, &mock.options().verify_token).await?;
    mock.subscribe(&receiver.url)
        .await
        .map_err(|e| anyhow!(e))?;
    let mut config = WaConfig::new(
        mock.options().phone_number_id.clone(),
        mock.options().access_token.clone(),
    );
    config.base_url = mock.base_url().to_string();
    let client = Client::new(config)?;
    Ok((mock, receiver, client))
}

/// Polls `f` every 10 ms for up to 5 s.
async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    for _ in 0..500 {
        if let Some(value) = f() {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("timed out waiting for {what}")
}

fn fallback() -> TemplateFallback {
    TemplateFallback {
        name: "retomar_atendimento".into(),
        language: "pt_BR".into(),
        body_params: vec!["Maria".into()],
    }
}

// ------------------------------------------------------------------------------------------------
// Pure helpers.

#[test]
fn whatsapp_signature_good_bad_tampered_and_prefix() {
    let options = MockWaOptions::default();
    let payload = fixtures::inbound_text_payload(
        &options,
        CUSTOMER,
        "José",
        "wamid.X",
        1_700_000_000,
        "Olá 👋 https://jt.com.br/x",
    );
    let raw = fixtures::meta_json(&payload);
    let text = String::from_utf8_lossy(&raw).to_string();
    assert!(
        text.contains("Jos\\u00e9")
            && text.contains("\\ud83d\\udc4b")
            && text.contains("https:\\/\\/"),
        "{text}"
    );
    let secret = &options.app_secret;
    let header = sign_body(secret, &raw);
    assert!(header.starts_with("sha256=") && header.len() == 7 + 64);

    assert!(verify_signature(secret, &raw, &header));
    assert!(verify_signature(
        secret,
        &raw,
        &header.to_uppercase().replace("SHA256=", "sha256=")
    ));
    assert!(verify_signature(secret, &raw, &format!(" {header} ")));
    assert!(
        !verify_signature(fixtures::WRONG_SECRET, &raw, &header),
        "wrong secret"
    );
    let mut tampered = raw.clone();
    if let Some(b) = tampered.iter_mut().rev().find(|b| b.is_ascii_digit()) {
        *b = if *b == b'9' { b'0' } else { *b + 1 };
    }
    assert!(
        !verify_signature(secret, &tampered, &header),
        "tampered body"
    );
    // The same JSON re-serialised (unescaped) is other bytes: only the raw body verifies.
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&raw).unwrap_or_default())
            .unwrap_or_default();
    assert_ne!(reserialised, raw);
    assert!(
        !verify_signature(secret, &reserialised, &header),
        "re-serialised body"
    );
    assert!(
        !verify_signature(secret, &raw, header.trim_start_matches("sha256=")),
        "missing prefix"
    );
    assert!(!verify_signature(
        secret,
        &raw,
        &header.replace("sha256=", "sha1=")
    ));
    assert!(!verify_signature(secret, &raw, "sha256=zz"));
    assert!(!verify_signature(secret, &raw, "sha256="));
    assert!(!verify_signature(secret, &raw, ""));
    assert!(
        !verify_signature("", &raw, &sign_body("", &raw)),
        "empty secret never verifies"
    );
}

#[test]
fn whatsapp_subscription_handshake_rules() {
    let ok = verify_subscription(Some("subscribe"), Some("tok"), Some("1158201444"), "tok");
    assert_eq!(ok.as_deref(), Some("1158201444"));
    assert_eq!(
        verify_subscription(Some("subscribe"), Some("other"), Some("1"), "tok"),
        None
    );
    assert_eq!(
        verify_subscription(Some("unsubscribe"), Some("tok"), Some("1"), "tok"),
        None
    );
    assert_eq!(
        verify_subscription(None, Some("tok"), Some("1"), "tok"),
        None
    );
    assert_eq!(
        verify_subscription(Some("subscribe"), None, Some("1"), "tok"),
        None
    );
    assert_eq!(
        verify_subscription(Some("subscribe"), Some("tok"), None, "tok"),
        None
    );
    assert_eq!(
        verify_subscription(Some("subscribe"), Some("tok"), Some(""), "tok"),
        None
    );
    assert_eq!(
        verify_subscription(Some("subscribe"), Some(""), Some("1"), ""),
        None,
        "empty expected token"
    );
}

#[test]
fn whatsapp_parse_inbound_statuses_and_others() -> Result<()> {
    let options = MockWaOptions::default();
    let raw = fixtures::meta_json(&fixtures::inbound_text_payload(
        &options,
        CUSTOMER,
        "José",
        "wamid.IN1",
        1_700_000_000,
        "Olá, sem sinal / lento",
    ));
    let events = parse_webhook(&raw)?;
    assert_eq!(events.len(), 1);
    match &events[0] {
        WaEvent::InboundText {
            phone_number_id,
            from_wa_id,
            profile_name,
            message_id,
            timestamp,
            body,
            context_message_id,
        } => {
            assert_eq!(phone_number_id, &options.phone_number_id);
            assert_eq!(from_wa_id, CUSTOMER);
            assert_eq!(profile_name.as_deref(), Some("José"));
            assert_eq!(message_id, "wamid.IN1");
            assert_eq!(timestamp.timestamp(), 1_700_000_000);
            assert_eq!(body, "Olá, sem sinal / lento");
            assert_eq!(context_message_id, &None);
        }
        other => bail!("unexpected {other:?}"),
    }
    assert_eq!(wa_id_to_e164(CUSTOMER).as_deref(), Some("+5511987654321"));
    assert_eq!(e164_to_wa_id("+5511987654321").as_deref(), Some(CUSTOMER));

    let errors = json!([{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
        "error_data": {"details": "Message Undeliverable."}}]);
    let raw = fixtures::meta_json(&fixtures::status_payload(
        &options,
        "wamid.OUT",
        CUSTOMER,
        "failed",
        1_700_000_100,
        Some(errors),
        "service",
    ));
    match parse_webhook(&raw)?.as_slice() {
        [
            WaEvent::Status {
                message_id,
                status: MessageStatus::Failed,
                recipient_id,
                errors,
                timestamp,
                ..
            },
        ] => {
            assert_eq!(message_id, "wamid.OUT");
            assert_eq!(recipient_id, CUSTOMER);
            assert_eq!(timestamp.timestamp(), 1_700_000_100);
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].code, 131026);
            assert_eq!(errors[0].details.as_deref(), Some("Message Undeliverable."));
            assert!(!errors[0].is_outside_window());
        }
        other => bail!("unexpected {other:?}"),
    }

    // Unknown fields, other change fields, several entries, non-text types, replies (context).
    let body = json!({
        "object": "whatsapp_business_account", "novo_campo": 1,
        "entry": [
            {"id": "1", "changes": [{"field": "message_template_status_update", "value": {"event": "APPROVED"}}]},
            {"id": "2", "time": 1, "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp", "metadata": {"display_phone_number": "55", "phone_number_id": "PN"},
                "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5521999998888", "user_id": "BR.1"}],
                "messages": [
                    {"from": "5521999998888", "id": "wamid.A", "timestamp": "1700000001", "type": "image",
                     "image": {"id": "MEDIA", "mime_type": "image/jpeg", "sha256": "x"}},
                    {"from": "5521999998888", "id": "wamid.B", "timestamp": "1700000002", "type": "text",
                     "text": {"body": "isso"}, "context": {"from": "55", "id": "wamid.OUT"}, "extra": [1]}
                ],
                "statuses": [{"id": "wamid.OUT", "status": "read", "timestamp": "1700000003", "recipient_id": "5521999998888", "biz_opaque_callback_data": "x"}]
            }}]}
        ]
    });
    let events = parse_webhook(body.to_string().as_bytes())?;
    ensure!(events.len() == 3, "{events:?}");
    assert!(
        matches!(&events[0], WaEvent::InboundOther { kind, profile_name: Some(name), .. } if kind == "image" && name == "Ana")
    );
    assert!(
        matches!(&events[1], WaEvent::InboundText { context_message_id: Some(id), .. } if id == "wamid.OUT")
    );
    assert!(
        matches!(&events[2], WaEvent::Status { status: MessageStatus::Read, phone_number_id, .. } if phone_number_id == "PN")
    );
    assert_eq!(
        parse_webhook(br#"{"object":"whatsapp_business_account","entry":[]}"#)?,
        vec![]
    );

    // Bad input: typed errors, never a panic.
    assert!(matches!(
        parse_webhook(b"not json"),
        Err(WebhookError::NotJson(_))
    ));
    assert!(parse_webhook(b"[]").is_err());
    assert!(parse_webhook(b"").is_err());
    assert!(parse_webhook(br#"{"object":"whatsapp_business_account","entry":{}}"#).is_err());
    assert!(matches!(
        parse_webhook(br#"{"object":"page","entry":[]}"#),
        Err(WebhookError::UnexpectedObject(_))
    ));
    assert!(matches!(
        parse_webhook(b"{}"),
        Err(WebhookError::UnexpectedObject(_))
    ));
    let bad_ts = fixtures::inbound_text_payload(&options, CUSTOMER, "x", "wamid.C", 0, "x")
        .to_string()
        .replace("\"timestamp\":\"0\"", "\"timestamp\":\"ontem\"");
    assert!(matches!(
        parse_webhook(bad_ts.as_bytes()),
        Err(WebhookError::Malformed(_))
    ));
    let no_from = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"messages":[{"id":"x","timestamp":"1","type":"text","text":{"body":"x"}}]}}]}]}"#;
    assert!(matches!(
        parse_webhook(no_from.as_bytes()),
        Err(WebhookError::Malformed(_))
    ));
    let no_text = no_from
        .replace(r#""id":"x""#, r#""from":"55","id":"x""#)
        .replace(r#","text":{"body":"x"}"#, "");
    assert!(matches!(
        parse_webhook(no_text.as_bytes()),
        Err(WebhookError::Malformed(_))
    ));
    let no_metadata = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[]}}]}]}"#;
    assert!(matches!(
        parse_webhook(no_metadata.as_bytes()),
        Err(WebhookError::Malformed(_))
    ));
    let value_not_object = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":7}]}]}"#;
    assert!(matches!(
        parse_webhook(value_not_object.as_bytes()),
        Err(WebhookError::Malformed(_))
    ));
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Over HTTP.

#[tokio::test]
async fn whatsapp_handshake_against_the_receiver() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mock = mock::serve(listener, MockWaOptions::default())?;
    let wrong = receiver(&mock.options().app_secret, "another-token").await?;
    assert!(mock.subscribe(&wrong.url).await.is_err());
    let (status, body, _) = mock
        .handshake(&wrong.url, "guess")
        .await
        .map_err(|e| anyhow!(e))?;
    assert_eq!((status, body.as_str()), (403, ""));
    // Without a verified URL there is nowhere to deliver.
    assert!(mock.inbound_text(CUSTOMER, "Maria", "oi").await.is_err());

    let right = receiver(&mock.options().app_secret, &mock.options().verify_token).await?;
    let (status, body, challenge) = mock
        .handshake(&right.url, &mock.options().verify_token)
        .await
        .map_err(|e| anyhow!(e))?;
    assert_eq!(status, 200);
    assert_eq!(body, challenge);
    mock.subscribe(&right.url).await.map_err(|e| anyhow!(e))?;
    let delivery = mock
        .inbound_text(CUSTOMER, "Maria", "oi")
        .await
        .map_err(|e| anyhow!(e))?;
    assert_eq!(delivery.status, Some(200));
    Ok(())
}

#[tokio::test]
async fn whatsapp_inbound_then_reply_inside_window_with_status_webhooks() -> Result<()> {
    let (mock, receiver, client) = setup(MockWaOptions::default()).await?;
    let inbound = mock
        .inbound_text(
            CUSTOMER,
            "Maria Conceição",
            "Minha internet caiu / sem sinal",
        )
        .await
        .map_err(|e| anyhow!(e))?;
    assert_eq!(inbound.status, Some(200));
    assert!(verify_signature(
        &mock.options().app_secret,
        &inbound.body,
        &inbound.signature
    ));
    let events = receiver.events();
    match events.as_slice() {
        [
            WaEvent::InboundText {
                from_wa_id,
                profile_name,
                body,
                message_id,
                ..
            },
        ] => {
            assert_eq!(from_wa_id, CUSTOMER);
            assert_eq!(profile_name.as_deref(), Some("Maria Conceição"));
            assert_eq!(body, "Minha internet caiu / sem sinal");
            assert_eq!(message_id, &inbound.message_id);
        }
        other => bail!("unexpected {other:?}"),
    }

    // The window is open: free text goes out (to an E.164 form of the same number).
    let sent = client
        .send_text("+55 11 98765-4321", "Olá Maria! Vou verificar sua conexão.")
        .await?;
    assert!(sent.message_id.starts_with("wamid."), "{}", sent.message_id);
    assert_eq!(sent.wa_id.as_deref(), Some(CUSTOMER));
    let statuses = wait_for("sent → delivered → read", || {
        let s = receiver.statuses_of(&sent.message_id);
        (s.len() == 3).then_some(s)
    })
    .await?;
    assert_eq!(
        statuses,
        vec![
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read
        ]
    );
    // The mock records a delivery after our receiver answered it: wait for the three records.
    let deliveries = wait_for("three status deliveries recorded", || {
        let d = mock.webhook_deliveries();
        let n = d
            .iter()
            .filter(|d| d.kind == DeliveryKind::Status && d.status.is_some())
            .count();
        (n >= 3).then_some(d)
    })
    .await?;
    let status_deliveries: Vec<_> = deliveries
        .iter()
        .filter(|d| d.kind == DeliveryKind::Status)
        .collect();
    assert_eq!(status_deliveries.len(), 3);
    for d in &status_deliveries {
        assert_eq!(d.status, Some(200));
        assert!(verify_signature(
            &mock.options().app_secret,
            &d.body,
            d.signature.as_deref().unwrap_or("")
        ));
    }
    assert!(receiver.rejected().is_empty());
    match mock.sent_messages().as_slice() {
        [m] => assert_eq!(
            m.kind,
            SentKind::Text {
                body: "Olá Maria! Vou verificar sua conexão.".into()
            }
        ),
        other => bail!("unexpected {other:?}"),
    }
    // The helper sends text too while the window is open.
    let outcome = client
        .send_text_or_template(CUSTOMER, "Mais alguma coisa?", &fallback())
        .await?;
    assert!(matches!(outcome, SendOutcome::Text(_)));
    Ok(())
}

#[tokio::test]
async fn whatsapp_outside_window_falls_back_to_template() -> Result<()> {
    let (mock, receiver, client) = setup(MockWaOptions::default()).await?;
    // Never wrote: 131047.
    match client.send_text(CUSTOMER, "Oi, sua fatura venceu").await {
        Err(WaError::OutsideWindow(e)) => {
            assert_eq!(e.code, 131047);
            assert!(e.details.as_deref().unwrap_or("").contains("24 hours"));
            assert!(e.fbtrace_id.is_some());
        }
        other => bail!("expected OutsideWindow, got {other:?}"),
    }
    let outcome = client
        .send_text_or_template(CUSTOMER, "Oi, sua fatura venceu", &fallback())
        .await?;
    let SendOutcome::Template { sent, text_error } = outcome else {
        bail!("expected the template fallback, got {outcome:?}");
    };
    assert_eq!(text_error.code, 131047);
    match mock.sent_messages().as_slice() {
        [m] => {
            assert_eq!(m.message_id, sent.message_id);
            assert_eq!(
                m.kind,
                SentKind::Template {
                    name: "retomar_atendimento".into(),
                    language: "pt_BR".into(),
                    params: vec!["Maria".into()]
                }
            );
        }
        other => bail!("unexpected {other:?}"),
    }
    wait_for("template statuses", || {
        (receiver.statuses_of(&sent.message_id).len() == 3).then_some(())
    })
    .await?;

    // Wrote 25 h ago: the window has closed again.
    let other = "5521998887777";
    mock.set_last_inbound(other, Utc::now() - chrono::Duration::hours(25));
    assert!(matches!(
        client.send_text(other, "oi").await,
        Err(WaError::OutsideWindow(_))
    ));
    // Wrote 23 h ago: still open.
    mock.set_last_inbound(other, Utc::now() - chrono::Duration::hours(23));
    client.send_text(other, "oi").await?;
    Ok(())
}

#[tokio::test]
async fn whatsapp_template_errors() -> Result<()> {
    let (mock, _receiver, client) = setup(MockWaOptions::default()).await?;
    match client
        .send_template(CUSTOMER, "nao_existe", "pt_BR", &["x"])
        .await
    {
        Err(e @ WaError::TemplateNotFound(_)) => {
            assert_eq!(e.api().map(|a| a.code), Some(132001));
            assert!(!e.is_retryable());
        }
        other => bail!("expected TemplateNotFound, got {other:?}"),
    }
    // Right name, language without a translation.
    assert!(matches!(
        client
            .send_template(CUSTOMER, "retomar_atendimento", "en_US", &["x"])
            .await,
        Err(WaError::TemplateNotFound(_))
    ));
    // Wrong number of parameters.
    match client
        .send_template(CUSTOMER, "retomar_atendimento", "pt_BR", &[])
        .await
    {
        Err(WaError::Other(e)) => assert_eq!(e.code, 132000),
        other => bail!("expected Other(132000), got {other:?}"),
    }
    // A template without parameters needs no window.
    let sent = client
        .send_template(CUSTOMER, "hello_world", "en_US", &[])
        .await?;
    assert!(sent.message_id.starts_with("wamid."));
    assert_eq!(mock.sent_messages().len(), 1);
    Ok(())
}

#[tokio::test]
async fn whatsapp_auth_phone_id_rate_limit_and_local_errors() -> Result<()> {
    let (mock, _receiver, _client) = setup(MockWaOptions::default()).await?;
    let mut config = WaConfig::new(mock.options().phone_number_id.clone(), "EAAG-expired");
    config.base_url = mock.base_url().to_string();
    match Client::new(config.clone())?
        .send_template(CUSTOMER, "hello_world", "en_US", &[])
        .await
    {
        Err(e @ WaError::TokenExpired(_)) => assert_eq!(e.api().map(|a| a.http_status), Some(401)),
        other => bail!("expected TokenExpired, got {other:?}"),
    }
    config.access_token = mock.options().access_token.clone();
    config.phone_number_id = "999".into();
    match Client::new(config.clone())?
        .send_template(CUSTOMER, "hello_world", "en_US", &[])
        .await
    {
        Err(WaError::InvalidParameter(e)) => assert_eq!(e.subcode, Some(33)),
        other => bail!("expected InvalidParameter, got {other:?}"),
    }
    config.phone_number_id = mock.options().phone_number_id.clone();
    config.api_version = "21.0".into();
    let client = Client::new(config)?;
    assert!(client.endpoint().ends_with(&format!(
        "/v21.0/{}/messages",
        mock.options().phone_number_id
    )));

    mock.fail_next_send(MockSendError {
        http_status: 429,
        code: 130429,
        message: "(#130429) Rate limit hit".into(),
    });
    match client
        .send_template(CUSTOMER, "hello_world", "en_US", &[])
        .await
    {
        Err(e @ WaError::RateLimited(_)) => assert!(e.is_retryable()),
        other => bail!("expected RateLimited, got {other:?}"),
    }
    mock.fail_next_send(MockSendError {
        http_status: 400,
        code: 131056,
        message: "(#131056) Pair rate limit hit".into(),
    });
    assert!(matches!(
        client
            .send_template(CUSTOMER, "hello_world", "en_US", &[])
            .await,
        Err(WaError::RateLimited(_))
    ));

    // Refused before sending.
    let before = mock.send_requests();
    assert!(matches!(
        client.send_text("abc", "oi").await,
        Err(WaError::InvalidParameter(_))
    ));
    assert!(matches!(
        client.send_text(CUSTOMER, "  ").await,
        Err(WaError::InvalidParameter(_))
    ));
    assert_eq!(mock.send_requests(), before);

    // Nothing listening: a transport error, retryable.
    let mut dead = WaConfig::new("1", "t");
    dead.base_url = "http://127.0.0.1:9".into();
    dead.timeout = Duration::from_secs(2);
    match Client::new(dead)?.send_text(CUSTOMER, "oi").await {
        Err(e @ WaError::Transport(_)) => assert!(e.is_retryable()),
        other => bail!("expected Transport, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn whatsapp_scripted_failed_status_and_failed_status_window_mode() -> Result<()> {
    let options = MockWaOptions {
        outside_window: OutsideWindowMode::FailedStatus,
        ..Default::default()
    };
    let (mock, receiver, client) = setup(options).await?;
    // Outside the window, this mode accepts the text and reports 131047 in a failed status.
    let sent = client.send_text(CUSTOMER, "oi").await?;
    let errors = wait_for("failed status", || {
        receiver.events().into_iter().find_map(|e| match e {
            WaEvent::Status {
                message_id,
                status: MessageStatus::Failed,
                errors,
                ..
            } if message_id == sent.message_id => Some(errors),
            _ => None,
        })
    })
    .await?;
    assert!(
        errors.first().is_some_and(|e| e.is_outside_window()),
        "{errors:?}"
    );

    // A number scripted as undeliverable.
    let unreachable = "5531988887777";
    mock.inbound_text(unreachable, "Zé", "oi")
        .await
        .map_err(|e| anyhow!(e))?;
    mock.script_statuses(unreachable, StatusScript::undeliverable());
    let sent = client.send_text(unreachable, "Olá!").await?;
    let errors = wait_for("undeliverable status", || {
        receiver.events().into_iter().find_map(|e| match e {
            WaEvent::Status {
                message_id,
                status: MessageStatus::Failed,
                errors,
                ..
            } if message_id == sent.message_id => Some(errors),
            _ => None,
        })
    })
    .await?;
    assert_eq!(errors.first().map(|e| e.code), Some(131026));
    assert_eq!(
        receiver.statuses_of(&sent.message_id),
        vec![MessageStatus::Failed]
    );
    Ok(())
}

#[tokio::test]
async fn whatsapp_forged_and_tampered_webhooks_are_rejected() -> Result<()> {
    let (mock, receiver, client) = setup(MockWaOptions::default()).await?;
    let forged = mock
        .inbound_text_forged(CUSTOMER, "Intruso", "me dá desconto")
        .await
        .map_err(|e| anyhow!(e))?;
    assert_eq!(forged.status, Some(401));
    // The receiver answered 401 before responding, so nothing was recorded by then.
    assert!(receiver.events().is_empty());
    // A forged message does not open the window.
    assert!(matches!(
        client.send_text(CUSTOMER, "oi").await,
        Err(WaError::OutsideWindow(_))
    ));

    let options = mock.options();
    let raw = fixtures::meta_json(&fixtures::inbound_text_payload(
        options,
        CUSTOMER,
        "Maria",
        "wamid.T",
        1_700_000_000,
        "valor: 100",
    ));
    let signature = sign_body(&options.app_secret, &raw);
    let tampered = String::from_utf8_lossy(&raw)
        .replace("100", "900")
        .into_bytes();
    assert_eq!(
        mock.post_raw(&tampered, Some(&signature))
            .await
            .map_err(|e| anyhow!(e))?,
        Some(401)
    );
    assert_eq!(
        mock.post_raw(&raw, None).await.map_err(|e| anyhow!(e))?,
        Some(401)
    );
    let bare = signature.trim_start_matches("sha256=").to_string();
    assert_eq!(
        mock.post_raw(&raw, Some(&bare))
            .await
            .map_err(|e| anyhow!(e))?,
        Some(401)
    );
    assert!(receiver.events().is_empty());
    // The genuine bytes and signature are accepted.
    assert_eq!(
        mock.post_raw(&raw, Some(&signature))
            .await
            .map_err(|e| anyhow!(e))?,
        Some(200)
    );
    assert_eq!(receiver.events().len(), 1);
    // Signed garbage is refused by the parser, not by the signature.
    let garbage = b"{\"object\":\"page\"}";
    assert_eq!(
        mock.post_raw(garbage, Some(&sign_body(&options.app_secret, garbage)))
            .await
            .map_err(|e| anyhow!(e))?,
        Some(400)
    );
    assert_eq!(receiver.rejected(), vec![401, 401, 401, 401, 400]);
    Ok(())
}

#[tokio::test]
async fn whatsapp_webhooks_are_retried_until_the_receiver_accepts() -> Result<()> {
    // A receiver whose secret is wrong answers 401 to every attempt: the mock retries.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mock = mock::serve(
        listener,
        MockWaOptions {
            webhook_attempts: 3,
            ..Default::default()
        },
    )?;
    let rx = receiver("a-rotated-secret", &mock.options().verify_token).await?;
    mock.subscribe(&rx.url).await.map_err(|e| anyhow!(e))?;
    let delivery = mock
        .inbound_text(CUSTOMER, "Maria", "oi")
        .await
        .map_err(|e| anyhow!(e))?;
    assert_eq!(delivery.status, Some(401));
    let recorded = mock.webhook_deliveries();
    let inbound = recorded
        .iter()
        .find(|d| d.kind == DeliveryKind::Inbound)
        .context("inbound delivery")?;
    assert_eq!(inbound.attempts, 3);
    assert_eq!(rx.rejected().len(), 3);
    Ok(())
}
