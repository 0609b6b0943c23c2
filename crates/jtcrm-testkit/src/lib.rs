//! Test harness: spawns the real jtcrm app on 127.0.0.1:0 against a fresh database (a temp SQLite
//! file, or a new PostgreSQL database when `JTCRM_TEST_DATABASE_URL` is set) and offers fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod smtp_sink;

use std::path::PathBuf;

use jtcrm::{AppState, Application};
use jtcrm_kernel::config::{Secret, Settings};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

pub use reqwest;
pub use serde_json;

/// Deletes the per-test database when the test ends.
enum DbGuard {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        match self {
            DbGuard::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            DbGuard::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime; a fresh thread + runtime can block safely.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async move {
                        if let Ok(db) = Database::connect(&admin_url).await {
                            let _ = db
                                .execute_unprepared(&format!(
                                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                                ))
                                .await;
                            let _ = db.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub fn pg_url() -> Option<String> {
    std::env::var("JTCRM_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

pub fn redis_url() -> Option<String> {
    std::env::var("JTCRM_TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

fn with_database(url: &str, db: &str) -> String {
    // postgres://user@host:port/dbname?params → replace dbname
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host_part = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

async fn fresh_database() -> (String, DbGuard) {
    match pg_url() {
        Some(admin_url) => {
            let name = format!("jtcrm_t_{}", Uuid::now_v7().simple());
            let db = Database::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("JTCRM_TEST_DATABASE_URL is set but unreachable: {e}"));
            db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            db.close().await.ok();
            (
                with_database(&admin_url, &name),
                DbGuard::Postgres { admin_url, name },
            )
        }
        None => {
            let path =
                std::env::temp_dir().join(format!("jtcrm-test-{}.db", Uuid::now_v7().simple()));
            (
                format!("sqlite://{}", path.display()),
                DbGuard::Sqlite(path),
            )
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The server's state for the test's own use: on PostgreSQL its pool connects as the tables'
    /// owner, outside row-level security, so tests can prepare and inspect any tenant's rows (and
    /// kernel calls made from the test body, which runs in no database scope, behave as before).
    pub state: AppState,
    /// The server's own state (its pool runs as the application role, under row-level security
    /// on PostgreSQL): for tests of the scopes themselves (`tests/api/rls.rs`).
    pub server_state: AppState,
    pub superadmin_email: String,
    pub superadmin_password: String,
    shutdown: Option<oneshot::Sender<()>>,
    // Declared last so the server stops before its database is dropped.
    _db: DbGuard,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns an app; `tweak` adjusts the settings (e.g. rate limits, public signup).
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    jtcrm_kernel::telemetry::init_test_logging();
    let (db_url, guard) = fresh_database().await;
    let mut s = Settings::defaults();
    s.bind = "127.0.0.1:0".parse().unwrap();
    s.database_url = Secret::new(db_url);
    s.db_max_connections = 5;
    s.jwt_secret = Secret::new(format!("test-secret-{}-{}", Uuid::now_v7(), Uuid::now_v7()));
    s.data_dir = std::env::temp_dir();
    s.secrets_key = Secret::new(jtcrm_kernel::secrets::generate_key());
    // Cheap hashes keep the suite fast; production uses the OWASP argon2id parameters.
    s.argon2_memory_kib = 1024;
    s.argon2_iterations = 1;
    let sa_email = format!("root-{}@jtcrm.test", Uuid::now_v7().simple());
    let sa_password = "super-secret-1".to_string();
    s.superadmin_email = Some(sa_email.clone());
    s.superadmin_password = Some(Secret::new(sa_password.clone()));
    if let Some(r) = redis_url() {
        s.redis_url = Some(Secret::new(r));
        s.redis_key_prefix = format!("jtcrm-test:{}:", Uuid::now_v7().simple());
    }
    tweak(&mut s);
    let app = Application::build(s).await.expect("build app");
    let port = app.port();
    let server_state = app.state();
    let state = if jtcrm_kernel::db::is_postgres(&server_state.db) {
        let owner = jtcrm_kernel::db::connect(
            server_state.settings.database_url.expose(),
            5,
            jtcrm_kernel::db::Access::Owner,
        )
        .await
        .expect("owner connection");
        server_state.with_db(owner)
    } else {
        server_state.clone()
    };
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = app
            .run(async move {
                let _ = rx.await;
            })
            .await;
    });
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        server_state,
        superadmin_email: sa_email,
        superadmin_password: sa_password,
        shutdown: Some(tx),
        _db: guard,
    }
}

/// A response reduced to what tests assert on.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.text))
            .to_string()
    }
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Asserts the status, printing the body on failure.
    #[track_caller]
    pub fn assert(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }
    /// Asserts a problem+json error with the given status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> &Self {
        self.assert(status);
        assert_eq!(self.code(), code, "unexpected code; body: {}", self.text);
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json"),
            "content-type {ct}"
        );
        assert!(
            self.body["request_id"].is_string(),
            "problem without request_id: {}",
            self.text
        );
        self
    }
}

pub struct TestTenant {
    pub id: String,
    pub slug: String,
    pub admin_id: String,
    pub admin_email: String,
    pub admin_password: String,
    pub admin_token: String,
}

pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub token: String,
}

pub fn unique(prefix: &str) -> String {
    let id = Uuid::now_v7().simple().to_string();
    format!("{prefix}{}", &id[20..])
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self.client.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        Self::finish(rb).await
    }

    pub async fn finish(rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("request");
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    /// A raw request builder for unusual bodies and headers.
    pub fn raw(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(token), Some(body)).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(Method::DELETE, path, Some(token), None).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    pub async fn token_for(&self, email: &str, password: &str) -> String {
        let r = self.login(email, password).await;
        r.assert(200);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn superadmin_token(&self) -> String {
        self.token_for(
            &self.superadmin_email.clone(),
            &self.superadmin_password.clone(),
        )
        .await
    }

    pub async fn create_tenant(&self) -> TestTenant {
        self.create_tenant_on("starter").await
    }

    /// A fresh tenant on `plan` with a logged-in admin.
    pub async fn create_tenant_on(&self, plan: &str) -> TestTenant {
        let sa = self.superadmin_token().await;
        let slug = unique("t-");
        let admin_email = format!("admin@{slug}.test.com.br");
        let admin_password = "admin-pass-1".to_string();
        let r = self
            .post(
                "/api/super-admin/tenants",
                &sa,
                json!({
                    "name": format!("Provedor {slug}"), "slug": slug, "email": format!("contato@{slug}.com.br"),
                    "cnpj": "11.222.333/0001-81", "subscription_plan": plan,
                    "admin": {"name": "Admin", "email": admin_email, "password": admin_password}
                }),
            )
            .await;
        r.assert(201);
        let id = r.id();
        let login = self.login(&admin_email, &admin_password).await;
        login.assert(200);
        TestTenant {
            id,
            slug,
            admin_id: login.body["user"]["id"].as_str().unwrap().to_string(),
            admin_token: login.body["access_token"].as_str().unwrap().to_string(),
            admin_email,
            admin_password,
        }
    }

    /// A user with `role` in `tenant`, logged in.
    pub async fn create_user(&self, tenant: &TestTenant, role: &str) -> TestUser {
        let email = format!("{}@{}.test.com.br", unique(role), tenant.slug);
        let password = "user-pass-1".to_string();
        let r = self
            .post(
                "/api/users",
                &tenant.admin_token,
                json!({"name": format!("User {role}"), "email": email, "password": password, "role": role}),
            )
            .await;
        r.assert(201);
        let id = r.id();
        let token = self.token_for(&email, &password).await;
        TestUser {
            id,
            email,
            password,
            token,
        }
    }
}

impl TestApp {
    /// Waits until no job of `kinds` is `queued`, `running` or `failed` (waiting for a retry),
    /// whatever its `run_at`: the observable state after which a test may check exact counts of
    /// what those jobs do ("nothing else happened") instead of sleeping a fixed time. Panics after
    /// `timeout_secs`.
    pub async fn wait_jobs_settled(&self, kinds: &[&str], timeout_secs: u64) {
        use jtcrm_kernel::jobs::model as job;
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout_secs);
        loop {
            let pending = job::Entity::find()
                .filter(job::Column::Kind.is_in(kinds.iter().copied()))
                .filter(job::Column::Status.is_in(["queued", "running", "failed"]))
                .count(&self.state.db)
                .await
                .unwrap_or(u64::MAX);
            if pending == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{pending} job(s) of {kinds:?} still pending after {timeout_secs}s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
}
