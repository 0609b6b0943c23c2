//! The scenario's HTTP client and its checks.

use super::*;

// ---------------------------------------------------------------------------------------------
// HTTP client and checks

/// Marks an error that `step` has already reported, so `run` does not print it twice.
#[derive(Debug)]
pub(super) struct StepFailed;

impl fmt::Display for StepFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("step failed")
    }
}

impl std::error::Error for StepFailed {}

/// A response that did not meet a check, kept whole so the report shows what the server said.
#[derive(Debug)]
pub(super) struct CheckFailed {
    pub(super) expected: String,
    pub(super) request: String,
    pub(super) status: StatusCode,
    pub(super) body: Value,
}

impl fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body =
            serde_json::to_string_pretty(&self.body).unwrap_or_else(|_| self.body.to_string());
        write!(
            f,
            "expected {}\n  request: {}\n  status:  {}\n  body:    {}",
            self.expected,
            self.request,
            self.status,
            body.replace('\n', "\n           ")
        )
    }
}

impl std::error::Error for CheckFailed {}

pub(super) enum Body<'a> {
    Empty,
    Json(Value),
    /// Sent as `application/json` unchecked, to exercise the server's parser.
    RawJson(&'a str),
    /// A prepared body with its content type (multipart uploads).
    Raw(String, Vec<u8>),
}

pub(super) struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) verbose: bool,
    /// Base URL of the SMTP sink's HTTP view (`--smtp-sink`), when the run has one.
    pub(super) smtp_sink: Option<String>,
    // Cells so steps can borrow the client shared while their closures also use it.
    pub(super) passed: Cell<usize>,
    pub(super) failed: Cell<usize>,
}

impl Client {
    pub(super) fn new(base: &str, verbose: bool) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("criando o cliente HTTP")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            verbose,
            smtp_sink: None,
            passed: Cell::new(0),
            failed: Cell::new(0),
        })
    }

    /// Runs one checked step: prints `✔ name` on success, or the failure with its response.
    pub(super) async fn step<T>(
        &self,
        name: &str,
        check: impl AsyncFnOnce() -> Result<T>,
    ) -> Result<T> {
        match check().await {
            Ok(value) => {
                self.passed.set(self.passed.get() + 1);
                println!("✔ {name}");
                Ok(value)
            }
            Err(e) => {
                self.failed.set(self.failed.get() + 1);
                println!("✘ {name}");
                println!("  {e:#}");
                Err(StepFailed.into())
            }
        }
    }

    pub(super) async fn get(&self, path: &str, token: Option<&str>) -> Result<Response> {
        self.send(Method::GET, path, token, Body::Empty).await
    }

    pub(super) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Result<Response> {
        self.send(Method::POST, path, token, Body::Json(body)).await
    }

    pub(super) async fn put(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Result<Response> {
        self.send(Method::PUT, path, token, Body::Json(body)).await
    }

    pub(super) async fn delete(&self, path: &str, token: Option<&str>) -> Result<Response> {
        self.send(Method::DELETE, path, token, Body::Empty).await
    }

    pub(super) async fn login(&self, email: &str, password: &str) -> Result<Response> {
        let body = json!({"email": email, "password": password});
        self.post("/api/auth/login", None, body).await
    }

    pub(super) async fn refresh(&self, refresh_token: &str) -> Result<Response> {
        let body = json!({"refresh_token": refresh_token});
        self.post("/api/auth/refresh", None, body).await
    }

    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body<'_>,
    ) -> Result<Response> {
        let request = format!("{method} {path}");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req = match body {
            Body::Empty => req,
            Body::Json(v) => req.json(&v),
            Body::RawJson(raw) => req
                .header(CONTENT_TYPE, "application/json")
                .body(raw.to_string()),
            Body::Raw(content_type, bytes) => req.header(CONTENT_TYPE, content_type).body(bytes),
        };
        let started = Instant::now();
        let res = req.send().await.with_context(|| request.clone())?;
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.with_context(|| request.clone())?;
        if self.verbose {
            println!(
                "    {request} → {} ({} ms)",
                status.as_u16(),
                started.elapsed().as_millis()
            );
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Response {
            request,
            status,
            headers,
            body,
        })
    }
}

pub(super) struct Response {
    /// `METHOD /path`, for failure reports.
    pub(super) request: String,
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    /// JSON when the body parses as JSON, otherwise the raw text; `Null` when empty.
    pub(super) body: Value,
}

impl Response {
    pub(super) fn fail(&self, expected: impl Into<String>) -> anyhow::Error {
        CheckFailed {
            expected: expected.into(),
            request: self.request.clone(),
            status: self.status,
            body: self.body.clone(),
        }
        .into()
    }

    pub(super) fn expect_status(&self, want: StatusCode) -> Result<()> {
        self.ensure(self.status == want, format!("status {want}"))
    }

    /// A problem+json error with the given status and stable `code`.
    pub(super) fn expect_problem(&self, want: StatusCode, code: &str) -> Result<()> {
        self.ensure(
            self.status == want && self.str("/code") == Some(code),
            format!("status {want} with code \"{code}\""),
        )
    }

    pub(super) fn expect_field_error(&self, field: &str) -> Result<()> {
        let fields = self
            .body
            .get("errors")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        self.ensure(
            fields.iter().any(|e| e["field"] == field),
            format!("an errors[] entry with field \"{field}\""),
        )
    }

    pub(super) fn ensure(&self, ok: bool, expected: impl Into<String>) -> Result<()> {
        if ok { Ok(()) } else { Err(self.fail(expected)) }
    }

    /// The string at a JSON pointer, e.g. `/user/role`.
    pub(super) fn str(&self, pointer: &str) -> Option<&str> {
        self.body.pointer(pointer).and_then(Value::as_str)
    }

    pub(super) fn string(&self, pointer: &str) -> Result<String> {
        self.str(pointer)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| self.fail(format!("a string at {pointer}")))
    }

    /// The string `field` of every element of `items` in a page.
    pub(super) fn item_strings(&self, field: &str) -> Vec<&str> {
        self.body
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| item.get(field).and_then(Value::as_str))
            .collect()
    }

    /// The tokens of a login or refresh answer.
    pub(super) fn session(&self) -> Result<Session> {
        Ok(Session {
            access: self.string("/access_token")?,
            refresh: self.string("/refresh_token")?,
        })
    }
}
