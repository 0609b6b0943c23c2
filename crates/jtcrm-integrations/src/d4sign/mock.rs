//! A faithful local D4Sign (REST API v1 subset) for tests, `jtcrm system-test` and local
//! trials. Start it with [`serve`] on any listener (port 0 in tests) and point a
//! [`super::Client`] at [`MockD4SignHandle::base_url`].
//!
//! What it does like the real service (see `docs/integrations/d4sign.md`):
//! - every `/api/v1` call needs `tokenAPI` (query or header) and `cryptKey` (query); missing or
//!   wrong → 401 `{"message":…}`; errors are JSON `{"message":…}`, 5xx `{"message":"Server
//!   error."}`;
//! - every value in a response is a string (`"statusId":"3"`, `"signed":"0"`);
//! - documents live in safes; upload (multipart, part `file` only) → status 1 then 2,
//!   `sendtosigner` → 3, all signed → 4, cancel/refusal → 6;
//! - `createlist`, `addinfo`, `sendtosigner`, `cancel`, `download` and `webhooks` bodies are
//!   accepted as JSON or form fields (`signers[0][email]=…` bracket notation too);
//! - `download` answers `{url,name}`; the url is a second, unauthenticated GET returning the
//!   uploaded bytes plus an appended PDF comment line (the "signature" marker);
//! - postbacks are form-encoded POSTs with a correct `Content-Hmac`, sent after
//!   [`MockOptions::webhook_delay`] and retried on non-2xx following
//!   [`MockOptions::webhook_retry_delays`]; optionally twice or out of order.
//!
//! The handle plays the human side: [`MockD4SignHandle::sign_as`],
//! [`MockD4SignHandle::refuse`], [`MockD4SignHandle::cancel`], and inspects the state.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::client::ClientConfig;
use super::signature::DocumentState;
use super::webhook::{HMAC_HEADER, Postback, PostbackKind, compute_hmac};

/// Which spelling `/safes` uses for the safe id (the real API has been seen with both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeIdKey {
    /// `uuid-safe` (as the public docs show).
    Dash,
    /// `uuid_safe` (as client code reads it).
    Underscore,
}

/// Behaviour knobs of the mock. `Default` is fast and well-behaved (tests override fields).
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Expected `tokenAPI`.
    pub token_api: String,
    /// Expected `cryptKey`.
    pub crypt_key: String,
    /// Key of the postbacks' `Content-Hmac`.
    pub webhook_secret: String,
    /// `(uuid, name)` of the account's safes.
    pub safes: Vec<(String, String)>,
    pub safe_id_key: SafeIdKey,
    /// How long an uploaded document stays "1 Processando" before "2 Aguardando
    /// Signatários" (zero: at once). While processing, `createlist` is refused.
    pub processing_time: Duration,
    /// Where postbacks go for documents without a webhook of their own (the account-level
    /// webhook configured in D4Sign's panel).
    pub default_webhook_url: Option<String>,
    /// Delay before the first delivery attempt of a postback.
    pub webhook_delay: Duration,
    /// Delays between retries of a postback the receiver answered non-2xx (or did not answer);
    /// its length bounds the retries. The real service uses 1h, 1h, 1h, 6h, 6h, 12h.
    pub webhook_retry_delays: Vec<Duration>,
    /// Timeout of one delivery attempt.
    pub webhook_timeout: Duration,
    /// Deliver every postback twice.
    pub duplicate_webhooks: bool,
    /// When the last signature finishes a document, send "1 Finished" before that signer's
    /// "4 Signed".
    pub out_of_order_webhooks: bool,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            token_api: "mock-token-api".into(),
            crypt_key: "mock-crypt-key".into(),
            webhook_secret: "mock-webhook-secret".into(),
            safes: vec![(
                "0b9c1f2e-6a57-4c1e-9d1e-5a0d4f3c2b10".into(),
                "Contratos".into(),
            )],
            safe_id_key: SafeIdKey::Dash,
            processing_time: Duration::ZERO,
            default_webhook_url: None,
            webhook_delay: Duration::from_millis(20),
            webhook_retry_delays: vec![Duration::from_millis(50); 6],
            webhook_timeout: Duration::from_secs(2),
            duplicate_webhooks: false,
            out_of_order_webhooks: false,
        }
    }
}

/// Why a handle action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MockError {
    #[error("no document {0}")]
    UnknownDocument(String),
    #[error("no signer {0} on the document")]
    UnknownSigner(String),
    #[error("signer {0} already signed")]
    AlreadySigned(String),
    #[error("document is {0}, not waiting for signatures")]
    WrongState(DocumentState),
}

/// A signer as the mock stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockSigner {
    pub key: String,
    pub email: String,
    pub act: String,
    pub foreign: String,
    pub certificadoicpbr: String,
    pub assinatura_presencial: String,
    /// From `addinfo` `display_name`.
    pub name: String,
    /// From `addinfo` `documentation`.
    pub documentation: String,
    pub signed: bool,
    pub ip: String,
    pub date_signed: String,
    /// Whether `sendtosigner` managed to e-mail it (e-mails at a `.invalid` domain fail).
    pub email_sent: Option<bool>,
}

/// A document as the mock stores it.
#[derive(Debug, Clone)]
pub struct MockDocument {
    pub uuid: String,
    pub safe_id: String,
    pub name: String,
    pub bytes: Bytes,
    pub state: DocumentState,
    pub status_comment: String,
    pub who_canceled: String,
    pub signers: Vec<MockSigner>,
    pub webhook_url: Option<String>,
    /// The `message` of the last `sendtosigner`.
    pub message: Option<String>,
    ready_at: Instant,
}

impl MockDocument {
    fn refresh(&mut self) {
        if self.state == DocumentState::Processing && Instant::now() >= self.ready_at {
            self.state = DocumentState::WaitingSigners;
        }
    }
}

#[derive(Default)]
struct MockState {
    docs: Vec<MockDocument>,
    files: HashMap<String, String>,
    fail_next: u32,
    requests: usize,
    delivered: Vec<Postback>,
}

struct Delivery {
    url: String,
    postback: Postback,
    due: Instant,
}

struct Inner {
    opts: MockOptions,
    origin: String,
    state: Mutex<MockState>,
    http: reqwest::Client,
    deliveries: mpsc::UnboundedSender<Delivery>,
    attempts: AtomicUsize,
    delivered: AtomicUsize,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues the postbacks of `doc` (if it has a webhook), applying the duplicate option.
    fn enqueue(&self, doc: &MockDocument, kinds: Vec<PostbackKind>) {
        let Some(url) = doc
            .webhook_url
            .as_ref()
            .or(self.opts.default_webhook_url.as_ref())
        else {
            return;
        };
        let due = Instant::now() + self.opts.webhook_delay;
        for kind in kinds {
            let postback = Postback {
                uuid: doc.uuid.clone(),
                message: kind.default_message().to_string(),
                kind,
            };
            let copies = if self.opts.duplicate_webhooks { 2 } else { 1 };
            for _ in 0..copies {
                // A closed channel means the mock is shutting down: nothing left to deliver to.
                let _ = self.deliveries.send(Delivery {
                    url: url.clone(),
                    postback: postback.clone(),
                    due,
                });
            }
        }
    }
}

/// A running mock. Dropping it stops the server and the postback sender.
pub struct MockD4SignHandle {
    inner: Arc<Inner>,
    base_url: String,
    server: JoinHandle<()>,
    worker: JoinHandle<()>,
}

impl Drop for MockD4SignHandle {
    fn drop(&mut self) {
        self.server.abort();
        self.worker.abort();
    }
}

/// Starts the mock on `listener` (bind `127.0.0.1:0` in tests).
pub async fn serve(listener: TcpListener, opts: MockOptions) -> std::io::Result<MockD4SignHandle> {
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let origin = format!("http://{host}");
    let http = reqwest::Client::builder()
        .timeout(opts.webhook_timeout)
        .build()
        .map_err(std::io::Error::other)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let inner = Arc::new(Inner {
        opts,
        origin: origin.clone(),
        state: Mutex::new(MockState::default()),
        http,
        deliveries: tx,
        attempts: AtomicUsize::new(0),
        delivered: AtomicUsize::new(0),
    });

    let api = Router::new()
        .route("/safes", get(list_safes))
        .route("/documents", get(list_documents))
        .route("/documents/{id}", get(get_document))
        .route("/documents/{id}/list", get(get_document_list))
        .route("/documents/{id}/safe", get(list_safe_documents))
        .route("/documents/{id}/status", get(list_status_documents))
        .route("/documents/{id}/upload", post(upload))
        .route("/documents/{id}/createlist", post(create_list))
        .route("/documents/{id}/addinfo", post(add_info))
        .route("/documents/{id}/sendtosigner", post(send_to_signer))
        .route("/documents/{id}/cancel", post(cancel))
        .route("/documents/{id}/download", post(download))
        .route(
            "/documents/{id}/webhooks",
            post(add_webhook).get(list_webhooks),
        )
        .layer(middleware::from_fn_with_state(inner.clone(), auth))
        .layer(DefaultBodyLimit::max(40 * 1024 * 1024));
    let app = Router::new()
        .nest("/api/v1", api)
        .route("/files/{token}/{name}", get(get_file))
        .fallback(|| async { message(StatusCode::NOT_FOUND, "Endpoint not found.") })
        .with_state(inner.clone());

    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "d4sign mock server stopped");
        }
    });
    let worker = tokio::spawn(webhook_worker(inner.clone(), rx));
    Ok(MockD4SignHandle {
        inner,
        base_url: format!("{origin}/api/v1"),
        server,
        worker,
    })
}

impl MockD4SignHandle {
    /// API root to give the client, `http://127.0.0.1:PORT/api/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A client configuration with the right credentials for this mock.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(
            self.base_url.clone(),
            self.inner.opts.token_api.clone(),
            self.inner.opts.crypt_key.clone(),
        )
    }

    /// The options the mock runs with.
    pub fn options(&self) -> &MockOptions {
        &self.inner.opts
    }

    /// The first safe's id.
    pub fn safe_id(&self) -> &str {
        self.inner
            .opts
            .safes
            .first()
            .map(|(id, _)| id.as_str())
            .unwrap_or_default()
    }

    /// A snapshot of one document.
    pub fn document(&self, uuid: &str) -> Option<MockDocument> {
        let mut st = self.inner.lock();
        let doc = st.docs.iter_mut().find(|d| d.uuid == uuid)?;
        doc.refresh();
        Some(doc.clone())
    }

    /// Snapshots of every document, in upload order.
    pub fn documents(&self) -> Vec<MockDocument> {
        let mut st = self.inner.lock();
        st.docs.iter_mut().for_each(MockDocument::refresh);
        st.docs.clone()
    }

    /// The signer `email` signs `uuid`, as if they clicked in D4Sign. Queues "4 Signed" and,
    /// when it was the last signature, "1 Finished" (see
    /// [`MockOptions::out_of_order_webhooks`]).
    pub fn sign_as(&self, uuid: &str, email: &str) -> Result<(), MockError> {
        let mut st = self.inner.lock();
        let doc = waiting_doc(&mut st, uuid)?;
        let signer = doc
            .signers
            .iter_mut()
            .find(|s| s.email.eq_ignore_ascii_case(email))
            .ok_or_else(|| MockError::UnknownSigner(email.to_string()))?;
        if signer.signed {
            return Err(MockError::AlreadySigned(email.to_string()));
        }
        signer.signed = true;
        signer.ip = "127.0.0.1".into();
        signer.date_signed = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
        let signed = PostbackKind::Signed {
            email: signer.email.clone(),
        };
        let mut kinds = vec![signed];
        if doc.signers.iter().all(|s| s.signed) {
            doc.state = DocumentState::Finished;
            if self.inner.opts.out_of_order_webhooks {
                kinds.insert(0, PostbackKind::Finished);
            } else {
                kinds.push(PostbackKind::Finished);
            }
        }
        let doc = doc.clone();
        drop(st);
        self.inner.enqueue(&doc, kinds);
        Ok(())
    }

    /// The signer `email` refuses to sign: D4Sign cancels the document (status 6,
    /// `whoCanceled` = the signer, `statusComment` = the reason) and posts "3 Cancelled".
    pub fn refuse(&self, uuid: &str, email: &str, reason: &str) -> Result<(), MockError> {
        let mut st = self.inner.lock();
        let doc = waiting_doc(&mut st, uuid)?;
        if !doc
            .signers
            .iter()
            .any(|s| s.email.eq_ignore_ascii_case(email))
        {
            return Err(MockError::UnknownSigner(email.to_string()));
        }
        cancel_doc(doc, email, reason);
        let doc = doc.clone();
        drop(st);
        self.inner.enqueue(&doc, vec![PostbackKind::Cancelled]);
        Ok(())
    }

    /// The account owner cancels the document in D4Sign's web UI.
    pub fn cancel(&self, uuid: &str, comment: &str) -> Result<(), MockError> {
        let mut st = self.inner.lock();
        let doc = find_doc(&mut st, uuid).ok_or_else(|| MockError::UnknownDocument(uuid.into()))?;
        if matches!(
            doc.state,
            DocumentState::Finished | DocumentState::Archived | DocumentState::Cancelled
        ) {
            return Err(MockError::WrongState(doc.state));
        }
        cancel_doc(doc, "owner", comment);
        let doc = doc.clone();
        drop(st);
        self.inner.enqueue(&doc, vec![PostbackKind::Cancelled]);
        Ok(())
    }

    /// The next `n` authenticated API calls answer 500 `{"message":"Server error."}`.
    pub fn fail_next(&self, n: u32) {
        self.inner.lock().fail_next = n;
    }

    /// API calls received (authenticated or not; the file download excluded).
    pub fn requests(&self) -> usize {
        self.inner.lock().requests
    }

    /// Postbacks the receiver acknowledged with 2xx (duplicates count twice).
    pub fn webhooks_delivered(&self) -> usize {
        self.inner.delivered.load(Ordering::SeqCst)
    }

    /// Delivery attempts, successful or not.
    pub fn webhook_attempts(&self) -> usize {
        self.inner.attempts.load(Ordering::SeqCst)
    }

    /// The acknowledged postbacks, in delivery order.
    pub fn delivered_postbacks(&self) -> Vec<Postback> {
        self.inner.lock().delivered.clone()
    }
}

fn find_doc<'a>(st: &'a mut MockState, uuid: &str) -> Option<&'a mut MockDocument> {
    let doc = st.docs.iter_mut().find(|d| d.uuid == uuid)?;
    doc.refresh();
    Some(doc)
}

fn waiting_doc<'a>(st: &'a mut MockState, uuid: &str) -> Result<&'a mut MockDocument, MockError> {
    let doc = find_doc(st, uuid).ok_or_else(|| MockError::UnknownDocument(uuid.into()))?;
    if doc.state != DocumentState::WaitingSignatures {
        return Err(MockError::WrongState(doc.state));
    }
    Ok(doc)
}

fn cancel_doc(doc: &mut MockDocument, who: &str, comment: &str) {
    doc.state = DocumentState::Cancelled;
    doc.who_canceled = who.to_string();
    doc.status_comment = comment.to_string();
}

// ---------------------------------------------------------------------------------------------
// Postback delivery
// ---------------------------------------------------------------------------------------------

async fn webhook_worker(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Delivery>) {
    while let Some(d) = rx.recv().await {
        tokio::time::sleep_until(d.due).await;
        if deliver(&inner, &d).await {
            continue;
        }
        // Retries run on their own, as the real service's hourly retries do: later postbacks
        // are not held back, so a retried one may arrive after newer ones.
        let inner = inner.clone();
        tokio::spawn(async move {
            for delay in inner.opts.webhook_retry_delays.clone() {
                tokio::time::sleep(delay).await;
                if deliver(&inner, &d).await {
                    return;
                }
            }
            tracing::debug!(url = %d.url, "d4sign mock gave up a postback");
        });
    }
}

async fn deliver(inner: &Inner, d: &Delivery) -> bool {
    inner.attempts.fetch_add(1, Ordering::SeqCst);
    let body = match serde_urlencoded::to_string(d.postback.to_fields()) {
        Ok(b) => b,
        Err(_) => return false,
    };
    let result = inner
        .http
        .post(&d.url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(
            HMAC_HEADER,
            compute_hmac(&inner.opts.webhook_secret, &d.postback.uuid),
        )
        .body(body)
        .send()
        .await;
    match result {
        Ok(resp) if resp.status().is_success() => {
            inner.delivered.fetch_add(1, Ordering::SeqCst);
            inner.lock().delivered.push(d.postback.clone());
            true
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

fn message(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({ "message": msg }))).into_response()
}

fn bad_request(msg: &str) -> Response {
    message(StatusCode::BAD_REQUEST, msg)
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

/// Credentials (query `tokenAPI`/`cryptKey`, or headers of the same names) and the 500
/// injection, in front of every `/api/v1` route.
async fn auth(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let (token, crypt) = credentials(&req);
    let fail = {
        let mut st = inner.lock();
        st.requests += 1;
        if st.fail_next > 0 && token.is_some() && crypt.is_some() {
            st.fail_next -= 1;
            true
        } else {
            false
        }
    };
    let (Some(token), Some(crypt)) = (token, crypt) else {
        return message(
            StatusCode::UNAUTHORIZED,
            "tokenAPI e cryptKey são obrigatórios.",
        );
    };
    if token != inner.opts.token_api || crypt != inner.opts.crypt_key {
        return message(StatusCode::UNAUTHORIZED, "tokenAPI ou cryptKey inválido.");
    }
    if fail {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Server error.");
    }
    next.run(req).await
}

/// `tokenAPI` and `cryptKey` from the query string, else from headers of the same names.
fn credentials(req: &Request) -> (Option<String>, Option<String>) {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(req.uri().query().unwrap_or_default()).unwrap_or_default();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                req.headers()
                    .get(name)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .filter(|v| !v.is_empty())
    };
    (param("tokenAPI"), param("cryptKey"))
}

/// A JSON, form-encoded (with PHP bracket notation) or empty body, as a JSON object.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, &'static str> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if ctype.starts_with("application/json") || (ctype.is_empty() && body.first() == Some(&b'{')) {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err("Invalid JSON body."),
        };
    }
    if ctype.starts_with("application/x-www-form-urlencoded") || ctype.is_empty() {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|_| "Invalid form body.")?;
        let mut root = Value::Object(Map::new());
        for (k, v) in pairs {
            insert_path(&mut root, &split_brackets(&k), Value::String(v));
        }
        let root = arrays_from_numeric_keys(root);
        return match root {
            Value::Object(m) => Ok(m),
            _ => Err("Invalid form body."),
        };
    }
    Err("Unsupported content type.")
}

/// `signers[0][email]` → `["signers", "0", "email"]`.
fn split_brackets(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (head, rest) = key.split_once('[').unwrap_or((key, ""));
    parts.push(head.to_string());
    if !rest.is_empty() {
        for seg in format!("[{rest}").split('[').skip(1) {
            parts.push(seg.trim_end_matches(']').to_string());
        }
    }
    parts
}

fn insert_path(node: &mut Value, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let Value::Object(map) = node else {
        return;
    };
    let key = if first.is_empty() {
        map.len().to_string()
    } else {
        first.clone()
    };
    if rest.is_empty() {
        map.entry(key).or_insert(value);
    } else {
        let child = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
        insert_path(child, rest, value);
    }
}

fn arrays_from_numeric_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let numeric = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            let converted: Vec<(String, Value)> = map
                .into_iter()
                .map(|(k, v)| (k, arrays_from_numeric_keys(v)))
                .collect();
            if numeric {
                let mut items = converted;
                items.sort_by_key(|(k, _)| k.parse::<usize>().unwrap_or(usize::MAX));
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(converted.into_iter().collect())
            }
        }
        other => other,
    }
}

/// A body field as a string (strings, numbers and booleans accepted).
fn field(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        _ => None,
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn doc_json(doc: &MockDocument, safe_name: &str) -> Value {
    let ext = doc
        .name
        .rsplit_once('.')
        .map(|(_, e)| format!(".{}", e.to_ascii_lowercase()))
        .unwrap_or_default();
    json!({
        "uuidDoc": doc.uuid,
        "nameDoc": doc.name,
        "type": ext,
        "size": doc.bytes.len().to_string(),
        "pages": "1",
        "uuidSafe": doc.safe_id,
        "safeName": safe_name,
        "statusId": doc.state.status_id().to_string(),
        "statusName": doc.state.status_name(),
        "statusComment": doc.status_comment,
        "whoCanceled": doc.who_canceled,
    })
}

fn signer_json(s: &MockSigner) -> Value {
    json!({
        "key_signer": s.key,
        "user_name": s.name,
        "user_document": s.documentation,
        "email": s.email,
        "act": s.act,
        "foreign": s.foreign,
        "certificadoicpbr": s.certificadoicpbr,
        "assinatura_presencial": s.assinatura_presencial,
        "signed": if s.signed { "1" } else { "0" },
        "sign_info": {
            "ip": s.ip,
            "date_signed": s.date_signed,
            "geolocation": "",
        },
        "email_sent_status": match s.email_sent {
            Some(true) => "sent",
            Some(false) => "not sent",
            None => "",
        },
    })
}

fn safe_name(inner: &Inner, safe_id: &str) -> String {
    inner
        .opts
        .safes
        .iter()
        .find(|(id, _)| id == safe_id)
        .map(|(_, n)| n.clone())
        .unwrap_or_default()
}

fn not_found_doc() -> Response {
    message(StatusCode::NOT_FOUND, "Document not found.")
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

async fn list_safes(State(inner): State<Arc<Inner>>) -> Response {
    let key = match inner.opts.safe_id_key {
        SafeIdKey::Dash => "uuid-safe",
        SafeIdKey::Underscore => "uuid_safe",
    };
    let safes: Vec<Value> = inner
        .opts
        .safes
        .iter()
        .map(|(id, name)| json!({ key: id, "name-safe": name }))
        .collect();
    ok(Value::Array(safes))
}

fn docs_where(inner: &Inner, pred: impl Fn(&MockDocument) -> bool, page: usize) -> Response {
    let mut st = inner.lock();
    st.docs.iter_mut().for_each(MockDocument::refresh);
    let items: Vec<Value> = st
        .docs
        .iter()
        .filter(|d| pred(d))
        .skip(page.saturating_sub(1) * 500)
        .take(500)
        .map(|d| doc_json(d, &safe_name(inner, &d.safe_id)))
        .collect();
    ok(Value::Array(items))
}

#[derive(serde::Deserialize)]
struct PageQuery {
    pg: Option<String>,
}

fn page_of(q: &PageQuery) -> usize {
    q.pg.as_deref()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(1)
        .max(1)
}

async fn list_documents(State(inner): State<Arc<Inner>>, Query(q): Query<PageQuery>) -> Response {
    docs_where(&inner, |_| true, page_of(&q))
}

async fn list_safe_documents(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    if !inner.opts.safes.iter().any(|(s, _)| *s == id) {
        return bad_request("Safe not found.");
    }
    docs_where(&inner, |d| d.safe_id == id, page_of(&q))
}

async fn list_status_documents(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(state) = DocumentState::from_status_id(&id) else {
        return bad_request("Invalid statusId.");
    };
    docs_where(&inner, |d| d.state == state, page_of(&q))
}

async fn get_document(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let mut st = inner.lock();
    let Some(doc) = find_doc(&mut st, &id) else {
        return not_found_doc();
    };
    ok(json!([doc_json(doc, &safe_name(&inner, &doc.safe_id))]))
}

async fn get_document_list(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let mut st = inner.lock();
    let Some(doc) = find_doc(&mut st, &id) else {
        return not_found_doc();
    };
    let mut v = doc_json(doc, &safe_name(&inner, &doc.safe_id));
    v["list"] = Value::Array(doc.signers.iter().map(signer_json).collect());
    ok(json!([v]))
}

const UPLOAD_EXTENSIONS: [&str; 7] = ["pdf", "doc", "docx", "jpg", "jpeg", "png", "bmp"];

async fn upload(
    State(inner): State<Arc<Inner>>,
    Path(safe_id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if !inner.opts.safes.iter().any(|(s, _)| *s == safe_id) {
        return bad_request("Safe not found.");
    }
    let Ok(mut multipart) = multipart else {
        return bad_request("The upload must be multipart/form-data with a file field.");
    };
    let mut file: Option<(String, Bytes)> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(f)) => {
                if f.name() != Some("file") {
                    continue;
                }
                let name = f.file_name().unwrap_or_default().to_string();
                match f.bytes().await {
                    Ok(b) => file = Some((name, b)),
                    Err(_) => return bad_request("Invalid multipart body."),
                }
            }
            Ok(None) => break,
            Err(_) => return bad_request("Invalid multipart body."),
        }
    }
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return bad_request("Field file is required.");
    };
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if !UPLOAD_EXTENSIONS.contains(&ext.as_str()) {
        return bad_request("File type not allowed.");
    }
    if ext == "pdf" && !bytes.starts_with(b"%PDF") {
        return bad_request("Invalid PDF file.");
    }
    let uuid = new_id();
    let doc = MockDocument {
        uuid: uuid.clone(),
        safe_id,
        name,
        bytes,
        state: DocumentState::Processing,
        status_comment: String::new(),
        who_canceled: String::new(),
        signers: Vec::new(),
        webhook_url: None,
        message: None,
        ready_at: Instant::now() + inner.opts.processing_time,
    };
    let mut doc = doc;
    doc.refresh();
    inner.lock().docs.push(doc);
    ok(json!({ "message": "success", "uuid": uuid }))
}

const REQUIRED_SIGNER_FIELDS: [&str; 5] = [
    "email",
    "act",
    "foreign",
    "certificadoicpbr",
    "assinatura_presencial",
];

async fn create_list(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_body(&headers, &body) {
        Ok(b) => b,
        Err(m) => return bad_request(m),
    };
    let signers = match body.get("signers") {
        Some(Value::Array(items)) => items.clone(),
        // A form field holding the JSON list.
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => items,
            _ => return bad_request("Invalid signers."),
        },
        _ => return bad_request("Field signers is required."),
    };
    if signers.is_empty() {
        return bad_request("Field signers is required.");
    }
    let mut parsed = Vec::new();
    for s in &signers {
        let Some(m) = s.as_object() else {
            return bad_request("Invalid signers.");
        };
        for f in REQUIRED_SIGNER_FIELDS {
            if field(m, f).filter(|v| !v.is_empty()).is_none() {
                return bad_request(&format!("Field {f} is required."));
            }
        }
        let email = field(m, "email").unwrap_or_default();
        if !email.contains('@') || email.contains(char::is_whitespace) {
            return bad_request("Invalid e-mail.");
        }
        let act = field(m, "act").unwrap_or_default();
        if !matches!(act.parse::<u8>(), Ok(1..=13)) {
            return bad_request("Invalid act.");
        }
        parsed.push(m.clone());
    }

    let mut st = inner.lock();
    let Some(doc) = find_doc(&mut st, &id) else {
        return not_found_doc();
    };
    match doc.state {
        DocumentState::WaitingSigners | DocumentState::WaitingSignatures => {}
        DocumentState::Processing => return bad_request("Document is still being processed."),
        _ => return bad_request("Document does not accept signers in its current status."),
    }
    let mut out = Vec::new();
    for m in parsed {
        let email = field(&m, "email").unwrap_or_default();
        let existing = doc
            .signers
            .iter()
            .find(|s| s.email.eq_ignore_ascii_case(&email));
        let (signer, status) = match existing {
            Some(s) => (s.clone(), "already exists"),
            None => {
                let s = MockSigner {
                    key: new_id(),
                    email,
                    act: field(&m, "act").unwrap_or_default(),
                    foreign: field(&m, "foreign").unwrap_or_default(),
                    certificadoicpbr: field(&m, "certificadoicpbr").unwrap_or_default(),
                    assinatura_presencial: field(&m, "assinatura_presencial").unwrap_or_default(),
                    name: String::new(),
                    documentation: String::new(),
                    signed: false,
                    ip: String::new(),
                    date_signed: String::new(),
                    email_sent: None,
                };
                doc.signers.push(s.clone());
                (s, "created")
            }
        };
        let mut v = json!({
            "key_signer": signer.key,
            "email": signer.email,
            "act": signer.act,
            "foreign": signer.foreign,
            "certificadoicpbr": signer.certificadoicpbr,
            "assinatura_presencial": signer.assinatura_presencial,
            "status": status,
        });
        for extra in [
            "docauth",
            "docauthandselfie",
            "embed_methodauth",
            "upload_obs",
        ] {
            v[extra] = json!(field(&m, extra).unwrap_or_default());
        }
        out.push(v);
    }
    ok(json!({ "message": out }))
}

async fn add_info(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_body(&headers, &body) {
        Ok(b) => b,
        Err(m) => return bad_request(m),
    };
    let key = field(&body, "key_signer").unwrap_or_default();
    let email = field(&body, "email").unwrap_or_default();
    let mut st = inner.lock();
    let Some(doc) = find_doc(&mut st, &id) else {
        return not_found_doc();
    };
    let Some(signer) = doc
        .signers
        .iter_mut()
        .find(|s| s.key == key || (key.is_empty() && s.email.eq_ignore_ascii_case(&email)))
    else {
        return bad_request("Signer not found.");
    };
    if let Some(name) = field(&body, "display_name") {
        signer.name = name;
    }
    if let Some(doc_number) = field(&body, "documentation") {
        signer.documentation = doc_number;
    }
    ok(json!({ "message": "success" }))
}

async fn send_to_signer(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_body(&headers, &body) {
        Ok(b) => b,
        Err(m) => return bad_request(m),
    };
    for f in ["skip_email", "workflow"] {
        if let Some(v) = field(&body, f)
            && v != "0"
            && v != "1"
        {
            return bad_request(&format!("Invalid {f}."));
        }
    }
    let skip_email = field(&body, "skip_email").as_deref() == Some("1");
    let mut st = inner.lock();
    let Some(doc) = find_doc(&mut st, &id) else {
        return not_found_doc();
    };
    match doc.state {
        DocumentState::WaitingSigners | DocumentState::WaitingSignatures => {}
        DocumentState::Processing => return bad_request("Document is still being processed."),
        _ => return bad_request("Document cannot be sent in its current status."),
    }
    if doc.signers.is_empty() {
        return bad_request("Document has no signers.");
    }
    doc.state = DocumentState::WaitingSignatures;
    doc.message = field(&body, "message");
    let mut kinds = Vec::new();
    if !skip_email {
        for s in doc.signers.iter_mut().filter(|s| s.email_sent.is_none()) {
            let fails = s
                .email
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.to_ascii_lowercase().ends_with(".invalid"));
            s.email_sent = Some(!fails);
            if fails {
                kinds.push(PostbackKind::EmailNotSent {
                    email: s.email.clone(),
                });
            }
        }
    }
    let doc = doc.clone();
    drop(st);
    inner.enqueue(&doc, kinds);
    ok(json!({ "message": "File sent to successfully signing" }))
}

async fn cancel(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_body(&headers, &body) {
        Ok(b) => b,
        Err(m) => return bad_request(m),
    };
    let comment = field(&body, "comment").unwrap_or_default();
    let mut st = inner.lock();
    let Some(doc) = find_doc(&mut st, &id) else {
        return not_found_doc();
    };
    if matches!(
        doc.state,
        DocumentState::Finished | DocumentState::Archived | DocumentState::Cancelled
    ) {
        return bad_request("Document cannot be cancelled in its current status.");
    }
    cancel_doc(doc, "API", &comment);
    let doc = doc.clone();
    drop(st);
    inner.enqueue(&doc, vec![PostbackKind::Cancelled]);
    ok(json!({ "message": "Document successfully cancelled" }))
}

async fn download(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_body(&headers, &body) {
        Ok(b) => b,
        Err(m) => return bad_request(m),
    };
    let kind = field(&body, "type").unwrap_or_else(|| "pdf".into());
    if kind != "pdf" {
        return bad_request("The mock only serves type pdf.");
    }
    let mut st = inner.lock();
    let Some(doc) = find_doc(&mut st, &id) else {
        return not_found_doc();
    };
    let stem = doc
        .name
        .rsplit_once('.')
        .map(|(s, _)| s.to_string())
        .unwrap_or_else(|| doc.name.clone());
    let name = format!("{stem}.pdf");
    let token = new_id();
    st.files.insert(token.clone(), id);
    let encoded: String = url_segment(&name);
    ok(json!({
        "url": format!("{}/files/{token}/{encoded}", inner.origin),
        "name": name,
    }))
}

fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn get_file(
    State(inner): State<Arc<Inner>>,
    Path((token, _name)): Path<(String, String)>,
) -> Response {
    let mut st = inner.lock();
    let Some(uuid) = st.files.get(&token).cloned() else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let Some(doc) = find_doc(&mut st, &uuid) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let signed: Vec<&str> = doc
        .signers
        .iter()
        .filter(|s| s.signed)
        .map(|s| s.email.as_str())
        .collect();
    let mut out = doc.bytes.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(
        format!(
            "%D4Sign-mock {} status={} signed-by={}\n",
            doc.uuid,
            doc.state.status_name(),
            signed.join(",")
        )
        .as_bytes(),
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/pdf")],
        out,
    )
        .into_response()
}

async fn add_webhook(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_body(&headers, &body) {
        Ok(b) => b,
        Err(m) => return bad_request(m),
    };
    let Some(url) = field(&body, "url").filter(|u| reqwest::Url::parse(u).is_ok()) else {
        return bad_request("Field url is required.");
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return bad_request("Invalid url.");
    }
    let mut st = inner.lock();
    let Some(doc) = find_doc(&mut st, &id) else {
        return not_found_doc();
    };
    doc.webhook_url = Some(url);
    ok(json!({ "message": "Webhook successfully registered" }))
}

async fn list_webhooks(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let mut st = inner.lock();
    let Some(doc) = find_doc(&mut st, &id) else {
        return not_found_doc();
    };
    let list: Vec<Value> = doc
        .webhook_url
        .iter()
        .map(|u| json!({ "url": u }))
        .collect();
    ok(Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_bracket_form_fields_become_nested_json() {
        assert_eq!(
            split_brackets("signers[0][email]"),
            ["signers", "0", "email"]
        );
        assert_eq!(split_brackets("message"), ["message"]);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let body = b"signers[1][email]=b%40x&signers[0][email]=a%40x&signers[0][act]=1&url=u";
        let parsed = parse_body(&headers, body).map(Value::Object);
        assert_eq!(
            parsed,
            Ok(json!({
                "signers": [{"email": "a@x", "act": "1"}, {"email": "b@x"}],
                "url": "u",
            }))
        );
        assert_eq!(parse_body(&headers, b"   "), Ok(Map::new()));
    }
}
