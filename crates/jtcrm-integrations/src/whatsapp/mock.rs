//! A faithful local mock of the WhatsApp Business Cloud API.
//!
//! `serve(listener, options)` spawns it on the current tokio runtime and returns a
//! [`MockWaHandle`]; point [`WaConfig::base_url`](super::WaConfig) at
//! [`base_url`](MockWaHandle::base_url). It serves `POST /{version}/{phone_number_id}/messages`:
//!
//! 1. `Authorization: Bearer <access_token>` or 401 with code 190;
//! 2. a known phone number id, or 400 code 100 (subcode 33);
//! 3. `messaging_product: "whatsapp"` and a digits-only `to`, or 400 code 100;
//! 4. a queued failure ([`MockWaHandle::fail_next_send`]) is answered as is;
//! 5. `text` (non-empty `text.body` of at most 4096 characters, else 100) and every other
//!    non-template type need the 24 h window: an inbound message from `to` less than
//!    `options.window` ago, else 400 code 131047 (or, with
//!    [`OutsideWindowMode::FailedStatus`], a 200 and then a `failed` status with 131047);
//! 6. `template` needs a configured (name, language), else 400 code 132001, and as many body
//!    parameters as the template has, else 400 code 132000;
//! 7. then answers `{"messaging_product","contacts":[{"input","wa_id"}],"messages":[{"id":"wamid.…"}]}`
//!    and pushes the recipient's scripted [`StatusScript`] (default sent → delivered → read) as
//!    signed webhooks to the webhook URL, `status_delay` apart, in order.
//!
//! Webhooks are serialised like Meta's (non-ASCII as `\uXXXX`, `/` as `\/`), signed over those
//! exact bytes with `X-Hub-Signature-256`, and retried (`webhook_attempts`) on a non-2xx answer.
//! [`MockWaHandle::inbound_text`] plays a customer's message (opening the window);
//! [`MockWaHandle::inbound_text_forged`] and [`MockWaHandle::post_raw`] send badly signed or
//! arbitrary bodies; [`MockWaHandle::subscribe`] performs Meta's GET verification handshake
//! against a receiver with the configured verify token.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::webhook::{SIGNATURE_HEADER, sign_body};

/// A template the mock knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockTemplate {
    pub name: String,
    pub language: String,
    /// Number of `{{n}}` parameters of its body.
    pub body_params: usize,
}

impl MockTemplate {
    pub fn new(name: impl Into<String>, language: impl Into<String>, body_params: usize) -> Self {
        MockTemplate {
            name: name.into(),
            language: language.into(),
            body_params,
        }
    }
}

/// How free text outside the window is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutsideWindowMode {
    /// 400 with code 131047 on the send itself (as in the integration facts).
    #[default]
    Synchronous,
    /// 200 with a wamid, then a `failed` status webhook carrying 131047 (as developers report the
    /// Cloud API doing).
    FailedStatus,
}

/// The statuses pushed for a message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StatusScript {
    /// sent → delivered → read.
    #[default]
    Read,
    /// sent → delivered.
    Delivered,
    /// sent only.
    Sent,
    /// failed, with one error.
    Failed {
        code: i64,
        title: String,
        details: String,
    },
    /// No status at all.
    Silent,
}

impl StatusScript {
    /// The usual "undeliverable" failure (131026).
    pub fn undeliverable() -> Self {
        StatusScript::Failed {
            code: 131026,
            title: "Message undeliverable".into(),
            details: "Message Undeliverable.".into(),
        }
    }
}

/// An error the next send answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockSendError {
    pub http_status: u16,
    pub code: i64,
    pub message: String,
}

/// Options of the mock.
#[derive(Debug, Clone)]
pub struct MockWaOptions {
    pub access_token: String,
    pub app_secret: String,
    pub verify_token: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    /// Where webhooks are POSTed (also set by [`MockWaHandle::subscribe`]).
    pub webhook_url: Option<String>,
    pub templates: Vec<MockTemplate>,
    /// Pause before each status webhook.
    pub status_delay: Duration,
    /// The customer-service window.
    pub window: Duration,
    pub outside_window: OutsideWindowMode,
    /// Attempts per webhook (retried on a non-2xx answer or a connection error).
    pub webhook_attempts: u32,
}

impl Default for MockWaOptions {
    fn default() -> Self {
        MockWaOptions {
            access_token: "EAAG-mock-token".into(),
            app_secret: "mock-app-secret".into(),
            verify_token: "mock-verify-token".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "551140028922".into(),
            waba_id: "102290129340398".into(),
            webhook_url: None,
            templates: vec![
                MockTemplate::new("retomar_atendimento", "pt_BR", 1),
                MockTemplate::new("hello_world", "en_US", 0),
            ],
            status_delay: Duration::from_millis(5),
            window: Duration::from_secs(24 * 3600),
            outside_window: OutsideWindowMode::Synchronous,
            webhook_attempts: 3,
        }
    }
}

/// What a message the mock accepted was.
#[derive(Debug, Clone, PartialEq)]
pub enum SentKind {
    Text {
        body: String,
    },
    Template {
        name: String,
        language: String,
        params: Vec<String>,
    },
    Other {
        kind: String,
        body: Value,
    },
}

/// A message the mock accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct MockSentMessage {
    pub message_id: String,
    pub to: String,
    pub kind: SentKind,
    pub at: DateTime<Utc>,
}

/// What a webhook POST carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryKind {
    Inbound,
    Status,
    /// Signed with a wrong secret, or an arbitrary body ([`MockWaHandle::post_raw`]).
    Forged,
}

/// A webhook POST the mock made.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    pub kind: DeliveryKind,
    pub body: Vec<u8>,
    pub signature: Option<String>,
    pub attempts: u32,
    /// The receiver's last answer (`None`: could not connect).
    pub status: Option<u16>,
}

/// The result of [`MockWaHandle::inbound_text`].
#[derive(Debug, Clone)]
pub struct InboundDelivery {
    pub message_id: String,
    pub body: Vec<u8>,
    pub signature: String,
    /// The receiver's answer (`None`: could not connect).
    pub status: Option<u16>,
}

struct Inner {
    webhook_url: Option<String>,
    last_inbound: HashMap<String, DateTime<Utc>>,
    scripts: HashMap<String, StatusScript>,
    failures: VecDeque<MockSendError>,
    sent: Vec<MockSentMessage>,
    deliveries: Vec<WebhookDelivery>,
    send_requests: usize,
}

struct Shared {
    options: MockWaOptions,
    inner: Mutex<Inner>,
    counter: AtomicU64,
    http: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn wamid(&self, wa_id: &str) -> String {
        let n = self.next();
        let raw = format!(
            "HBgN{wa_id}FQIAERgS{n:016X}{:08X}",
            Utc::now().timestamp_subsec_nanos()
        );
        format!(
            "wamid.{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The running mock. Dropping it stops the server (status webhooks already scheduled may still
/// be sent).
pub struct MockWaHandle {
    base_url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockWaHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the mock on `listener` (bind port 0 for tests). Must be called within a tokio runtime.
pub fn serve(
    listener: tokio::net::TcpListener,
    options: MockWaOptions,
) -> std::io::Result<MockWaHandle> {
    let addr = listener.local_addr()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(std::io::Error::other)?;
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            webhook_url: options.webhook_url.clone(),
            last_inbound: HashMap::new(),
            scripts: HashMap::new(),
            failures: VecDeque::new(),
            sent: Vec::new(),
            deliveries: Vec::new(),
            send_requests: 0,
        }),
        options,
        counter: AtomicU64::new(0),
        http,
    });
    let app = Router::new()
        .route("/{version}/{phone_number_id}/messages", post(send))
        .fallback(unknown_path)
        .with_state(shared.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "WhatsApp mock server stopped");
        }
    });
    Ok(MockWaHandle {
        base_url: format!("http://{addr}"),
        shared,
        task,
    })
}

impl MockWaHandle {
    /// `http://127.0.0.1:<port>` (the client adds `/v21.0/{id}/messages`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    pub fn options(&self) -> &MockWaOptions {
        &self.shared.options
    }
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.shared.lock().webhook_url = url;
    }
    /// The statuses pushed for messages to `wa_id` from now on.
    pub fn script_statuses(&self, wa_id: &str, script: StatusScript) {
        self.shared.lock().scripts.insert(wa_id.to_string(), script);
    }
    /// The next send (after auth and path checks) answers with this error.
    pub fn fail_next_send(&self, error: MockSendError) {
        self.shared.lock().failures.push_back(error);
    }
    /// Sets when `wa_id` last wrote (e.g. 25 h ago to close its window).
    pub fn set_last_inbound(&self, wa_id: &str, at: DateTime<Utc>) {
        self.shared
            .lock()
            .last_inbound
            .insert(wa_id.to_string(), at);
    }
    /// Messages accepted so far.
    pub fn sent_messages(&self) -> Vec<MockSentMessage> {
        self.shared.lock().sent.clone()
    }
    /// Send requests received (accepted or not).
    pub fn send_requests(&self) -> usize {
        self.shared.lock().send_requests
    }
    /// Webhook POSTs made so far (statuses are sent in the background: poll).
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.lock().deliveries.clone()
    }

    /// A customer `from` (a `wa_id`, digits only) writes `body`: opens the window and POSTs the
    /// signed webhook; returns once the receiver answered.
    pub async fn inbound_text(
        &self,
        from: &str,
        profile_name: &str,
        body: &str,
    ) -> Result<InboundDelivery, String> {
        let url = self.webhook_url()?;
        let now = Utc::now();
        self.set_last_inbound(from, now);
        let message_id = self.shared.wamid(from);
        let payload = fixtures::inbound_text_payload(
            &self.shared.options,
            from,
            profile_name,
            &message_id,
            now.timestamp(),
            body,
        );
        let raw = fixtures::meta_json(&payload);
        let signature = sign_body(&self.shared.options.app_secret, &raw);
        let status = deliver(
            &self.shared,
            &url,
            DeliveryKind::Inbound,
            raw.clone(),
            Some(signature.clone()),
        )
        .await;
        Ok(InboundDelivery {
            message_id,
            body: raw,
            signature,
            status,
        })
    }

    /// The same webhook signed with a wrong secret (the window is not opened); one attempt.
    pub async fn inbound_text_forged(
        &self,
        from: &str,
        profile_name: &str,
        body: &str,
    ) -> Result<InboundDelivery, String> {
        let url = self.webhook_url()?;
        let message_id = self.shared.wamid(from);
        let payload = fixtures::inbound_text_payload(
            &self.shared.options,
            from,
            profile_name,
            &message_id,
            Utc::now().timestamp(),
            body,
        );
        let raw = fixtures::meta_json(&payload);
        let signature = sign_body(fixtures::WRONG_SECRET, &raw);
        let status = post_once(&self.shared, &url, &raw, Some(&signature)).await;
        record(
            &self.shared,
            DeliveryKind::Forged,
            raw.clone(),
            Some(signature.clone()),
            1,
            status,
        );
        Ok(InboundDelivery {
            message_id,
            body: raw,
            signature,
            status,
        })
    }

    /// POSTs arbitrary bytes with an arbitrary signature header (or none); one attempt.
    pub async fn post_raw(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<Option<u16>, String> {
        let url = self.webhook_url()?;
        let status = post_once(&self.shared, &url, body, signature).await;
        record(
            &self.shared,
            DeliveryKind::Forged,
            body.to_vec(),
            signature.map(str::to_string),
            1,
            status,
        );
        Ok(status)
    }

    /// Meta's GET verification: `?hub.mode=subscribe&hub.challenge=<n>&hub.verify_token=<token>`
    /// to `callback_url`; returns the receiver's status and body.
    pub async fn handshake(
        &self,
        callback_url: &str,
        verify_token: &str,
    ) -> Result<(u16, String, String), String> {
        let challenge = format!("{}", 1_000_000_000 + self.shared.next() * 7919);
        let response = self
            .shared
            .http
            .get(callback_url)
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.challenge", challenge.as_str()),
                ("hub.verify_token", verify_token),
            ])
            .send()
            .await
            .map_err(|e| format!("handshake GET failed: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| format!("handshake body: {e}"))?;
        Ok((status, body, challenge))
    }

    /// The dashboard's "verify and save": the handshake with the configured verify token; on a 200
    /// echoing the challenge, `callback_url` becomes the webhook URL.
    pub async fn subscribe(&self, callback_url: &str) -> Result<(), String> {
        let token = self.shared.options.verify_token.clone();
        let (status, body, challenge) = self.handshake(callback_url, &token).await?;
        if status == 200 && body == challenge {
            self.set_webhook_url(Some(callback_url.to_string()));
            Ok(())
        } else {
            Err(format!(
                "the callback URL could not be verified: HTTP {status}, body {body:?}"
            ))
        }
    }

    fn webhook_url(&self) -> Result<String, String> {
        self.shared
            .lock()
            .webhook_url
            .clone()
            .ok_or_else(|| "no webhook URL configured".to_string())
    }
}

async fn post_once(
    shared: &Shared,
    url: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Option<u16> {
    let mut request = shared
        .http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    request.send().await.ok().map(|r| r.status().as_u16())
}

fn record(
    shared: &Shared,
    kind: DeliveryKind,
    body: Vec<u8>,
    signature: Option<String>,
    attempts: u32,
    status: Option<u16>,
) {
    shared.lock().deliveries.push(WebhookDelivery {
        kind,
        body,
        signature,
        attempts,
        status,
    });
}

async fn deliver(
    shared: &Shared,
    url: &str,
    kind: DeliveryKind,
    body: Vec<u8>,
    signature: Option<String>,
) -> Option<u16> {
    let attempts = shared.options.webhook_attempts.max(1);
    let mut status = None;
    let mut made = 0;
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
        }
        made += 1;
        status = post_once(shared, url, &body, signature.as_deref()).await;
        if status.is_some_and(|s| (200..300).contains(&s)) {
            break;
        }
    }
    record(shared, kind, body, signature, made, status);
    status
}

fn graph_error(
    http_status: u16,
    code: i64,
    message: &str,
    subcode: Option<i64>,
    details: Option<&str>,
    trace: u64,
) -> Response {
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": format!("A{trace:010X}mock"),
    });
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    if let Some(details) = details {
        error["error_data"] = json!({"messaging_product": "whatsapp", "details": details});
    }
    let status = StatusCode::from_u16(http_status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(json!({ "error": error }))).into_response()
}

async fn unknown_path(State(shared): State<Arc<Shared>>, uri: axum::http::Uri) -> Response {
    graph_error(
        400,
        2500,
        &format!("Unknown path components: {}", uri.path()),
        None,
        None,
        shared.next(),
    )
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.lock().send_requests += 1;
    let trace = shared.next();
    let options = &shared.options;
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.and_then(|a| a.strip_prefix("Bearer ")) {
        Some(token) if token == options.access_token => {}
        Some(_) => {
            return graph_error(
                401,
                190,
                "Error validating access token: Session has expired on Tuesday, 01-Jan-30 00:00:00 PST.",
                Some(463),
                None,
                trace,
            );
        }
        None => {
            return graph_error(
                401,
                190,
                "Invalid OAuth access token - Cannot parse access token",
                None,
                None,
                trace,
            );
        }
    }
    let version_ok = version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        });
    if !version_ok {
        return graph_error(
            400,
            2500,
            &format!("Unknown path components: /{version}"),
            None,
            None,
            trace,
        );
    }
    if phone_number_id != options.phone_number_id {
        return graph_error(
            400,
            100,
            &format!(
                "Unsupported post request. Object with ID '{phone_number_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
            ),
            Some(33),
            None,
            trace,
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(
            400,
            100,
            "(#100) Invalid parameter",
            None,
            Some("The request body is not JSON."),
            trace,
        );
    };
    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return graph_error(
            400,
            100,
            "(#100) The parameter messaging_product is required.",
            None,
            None,
            trace,
        );
    }
    let to = body
        .get("to")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('+')
        .to_string();
    if to.is_empty() || !to.bytes().all(|b| b.is_ascii_digit()) {
        return graph_error(
            400,
            100,
            "(#100) Invalid parameter",
            None,
            Some("Param to must be a phone number."),
            trace,
        );
    }
    let failure = shared.lock().failures.pop_front();
    if let Some(f) = failure {
        return graph_error(f.http_status, f.code, &f.message, None, None, trace);
    }
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("text")
        .to_string();
    let mut window_failed = false;
    let sent_kind = if kind == "template" {
        let name = body
            .pointer("/template/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let language = body
            .pointer("/template/language/code")
            .and_then(Value::as_str)
            .unwrap_or("");
        let params: Vec<String> = body
            .pointer("/template/components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c.get("type").and_then(Value::as_str) == Some("body"))
            .flat_map(|c| {
                c.get("parameters")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|p| {
                p.get("text")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        let Some(template) = options
            .templates
            .iter()
            .find(|t| t.name == name && t.language == language)
        else {
            return graph_error(
                404,
                132001,
                "(#132001) Template name does not exist in the translation",
                None,
                Some(&format!(
                    "template name ({name}) does not exist in {language}"
                )),
                trace,
            );
        };
        if template.body_params != params.len() {
            return graph_error(
                400,
                132000,
                "(#132000) Number of parameters does not match the expected number of params",
                None,
                Some(&format!(
                    "body: number of localizable_params ({}) does not match the expected number of params ({})",
                    params.len(),
                    template.body_params
                )),
                trace,
            );
        }
        SentKind::Template {
            name: name.to_string(),
            language: language.to_string(),
            params,
        }
    } else {
        let sent_kind = if kind == "text" {
            let text = body
                .pointer("/text/body")
                .and_then(Value::as_str)
                .unwrap_or("");
            if text.trim().is_empty() {
                return graph_error(
                    400,
                    100,
                    "(#100) Param text['body'] is required",
                    None,
                    None,
                    trace,
                );
            }
            if text.chars().count() > 4096 {
                return graph_error(
                    400,
                    100,
                    "(#100) Param text['body'] must be at most 4096 characters long.",
                    None,
                    None,
                    trace,
                );
            }
            SentKind::Text {
                body: text.to_string(),
            }
        } else {
            SentKind::Other {
                kind: kind.clone(),
                body: body.clone(),
            }
        };
        let open = shared.lock().last_inbound.get(&to).is_some_and(|at| {
            Utc::now()
                .signed_duration_since(*at)
                .to_std()
                .unwrap_or(Duration::ZERO)
                < options.window
        });
        if !open {
            match options.outside_window {
                OutsideWindowMode::Synchronous => {
                    return graph_error(
                        400,
                        131047,
                        "Re-engagement message",
                        None,
                        Some(OUTSIDE_WINDOW_DETAILS),
                        trace,
                    );
                }
                OutsideWindowMode::FailedStatus => window_failed = true,
            }
        }
        sent_kind
    };
    let message_id = shared.wamid(&to);
    let is_template = matches!(sent_kind, SentKind::Template { .. });
    let script = {
        let mut inner = shared.lock();
        inner.sent.push(MockSentMessage {
            message_id: message_id.clone(),
            to: to.clone(),
            kind: sent_kind,
            at: Utc::now(),
        });
        if window_failed {
            StatusScript::Failed {
                code: 131047,
                title: "Re-engagement message".into(),
                details: OUTSIDE_WINDOW_DETAILS.into(),
            }
        } else {
            inner.scripts.get(&to).cloned().unwrap_or_default()
        }
    };
    let task_shared = shared.clone();
    let (id, recipient) = (message_id.clone(), to.clone());
    tokio::spawn(
        async move { push_statuses(task_shared, id, recipient, script, is_template).await },
    );
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": body.get("to").cloned().unwrap_or(Value::Null), "wa_id": to}],
        "messages": [{"id": message_id}],
    }))
    .into_response()
}

const OUTSIDE_WINDOW_DETAILS: &str = "Message failed to send because more than 24 hours have passed since the customer last replied to this number.";

async fn push_statuses(
    shared: Arc<Shared>,
    message_id: String,
    recipient: String,
    script: StatusScript,
    is_template: bool,
) {
    let steps: Vec<(&str, Option<Value>)> = match &script {
        StatusScript::Read => vec![("sent", None), ("delivered", None), ("read", None)],
        StatusScript::Delivered => vec![("sent", None), ("delivered", None)],
        StatusScript::Sent => vec![("sent", None)],
        StatusScript::Silent => vec![],
        StatusScript::Failed {
            code,
            title,
            details,
        } => vec![(
            "failed",
            Some(
                json!([{"code": code, "title": title, "message": title, "error_data": {"details": details},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]),
            ),
        )],
    };
    let category = if is_template { "utility" } else { "service" };
    for (status, errors) in steps {
        tokio::time::sleep(shared.options.status_delay).await;
        let Some(url) = shared.lock().webhook_url.clone() else {
            return;
        };
        let payload = fixtures::status_payload(
            &shared.options,
            &message_id,
            &recipient,
            status,
            Utc::now().timestamp(),
            errors,
            category,
        );
        let raw = fixtures::meta_json(&payload);
        let signature = sign_body(&shared.options.app_secret, &raw);
        deliver(&shared, &url, DeliveryKind::Status, raw, Some(signature)).await;
    }
}

/// Webhook bodies shaped like Meta's, for tests of the receiving side.
pub mod fixtures {
    use serde_json::{Value, json};

    use super::MockWaOptions;

    /// A secret that is not the app secret (forged signatures).
    pub const WRONG_SECRET: &str = "not-the-app-secret";

    /// Serialises like Meta: compact, non-ASCII escaped as `\uXXXX` (surrogate pairs beyond the
    /// BMP) and `/` as `\/`. Re-serialising the parsed value gives different bytes, so a receiver
    /// that verifies anything but the raw body fails.
    pub fn meta_json(value: &Value) -> Vec<u8> {
        let compact = value.to_string();
        let mut out = String::with_capacity(compact.len() + 16);
        for c in compact.chars() {
            match c {
                '/' => out.push_str("\\/"),
                c if c.is_ascii() => out.push(c),
                c => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
        }
        out.into_bytes()
    }

    fn envelope(options: &MockWaOptions, value: Value) -> Value {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": options.waba_id,
                "changes": [{"value": value, "field": "messages"}],
            }],
        })
    }

    fn metadata(options: &MockWaOptions) -> Value {
        json!({"display_phone_number": options.display_phone_number, "phone_number_id": options.phone_number_id})
    }

    /// An inbound text message (`timestamp` as a string, `wa_id` without `+`).
    pub fn inbound_text_payload(
        options: &MockWaOptions,
        from: &str,
        profile_name: &str,
        message_id: &str,
        timestamp: i64,
        body: &str,
    ) -> Value {
        envelope(
            options,
            json!({
                "messaging_product": "whatsapp",
                "metadata": metadata(options),
                "contacts": [{"profile": {"name": profile_name}, "wa_id": from}],
                "messages": [{
                    "from": from,
                    "id": message_id,
                    "timestamp": timestamp.to_string(),
                    "text": {"body": body},
                    "type": "text",
                }],
            }),
        )
    }

    /// A status update; `errors` for `failed`.
    pub fn status_payload(
        options: &MockWaOptions,
        message_id: &str,
        recipient: &str,
        status: &str,
        timestamp: i64,
        errors: Option<Value>,
        category: &str,
    ) -> Value {
        let mut item = json!({
            "id": message_id,
            "status": status,
            "timestamp": timestamp.to_string(),
            "recipient_id": recipient,
        });
        if status == "sent" || status == "delivered" {
            item["conversation"] = json!({
                "id": format!("conv{}", &message_id.len()),
                "expiration_timestamp": (timestamp + 24 * 3600).to_string(),
                "origin": {"type": category},
            });
            item["pricing"] =
                json!({"billable": true, "pricing_model": "CBP", "category": category});
        }
        if let Some(errors) = errors {
            item["errors"] = errors;
        }
        envelope(
            options,
            json!({"messaging_product": "whatsapp", "metadata": metadata(options), "statuses": [item]}),
        )
    }
}
