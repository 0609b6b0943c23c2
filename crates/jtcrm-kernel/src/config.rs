//! Runtime settings: defaults < environment (the spec's variable names) < CLI flags.
//! Secrets are wrapped so they never reach logs through `Debug`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

/// A string that prints as `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub env: Environment,
    pub bind: SocketAddr,
    /// `sqlite://data/jtcrm.db` by default; `postgres://…` in production.
    pub database_url: Secret,
    pub db_max_connections: u32,
    /// `JTCRM_DB_RLS` (default on): on PostgreSQL, pooled connections switch to the application
    /// role (`SET ROLE jtcrm_app`, subject to row-level security) and carry the request's scope
    /// (docs/tenancy.md). `off` is for measuring RLS's cost only (bench/rls.sh): the server then
    /// runs as the connecting role, which bypasses RLS when it owns the tables.
    pub db_rls: bool,
    pub data_dir: PathBuf,
    pub jwt_secret: Secret,
    /// `JTCRM_SECRETS_KEY`: the AES-256-GCM key of secrets at rest (see `secrets`).
    pub secrets_key: Secret,
    /// `JTCRM_SECRETS_OLD_KEYS`: previous keys, comma-separated, still accepted for reading.
    pub secrets_old_keys: Vec<Secret>,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key, so several deployments (or test runs) can share one Redis.
    pub redis_key_prefix: String,
    pub superadmin_email: Option<String>,
    pub superadmin_password: Option<Secret>,
    pub public_signup: bool,
    pub base_domain: Option<String>,
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    /// Failed logins per account within `login_window_secs` before `429`.
    pub login_max_failures_per_account: u64,
    /// Login attempts per IP within `login_window_secs` before `429`.
    pub login_max_attempts_per_ip: u64,
    pub login_window_secs: u64,
    pub trust_proxy_headers: bool,
    pub json_logs: bool,
    pub log_level: String,
    /// Seconds a tenant's status/plan snapshot may be served from the in-process cache.
    pub tenant_cache_ttl_secs: u64,
    /// Argon2 memory cost in KiB (OWASP minimum for argon2id is 19 MiB).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// Lets automation webhooks reach loopback addresses (`JTCRM_WEBHOOK_ALLOW_LOOPBACK`), for
    /// local receivers in tests and development. Private ranges are always refused.
    pub webhook_allow_loopback: bool,
    /// Run the job worker inside `serve` (`JTCRM_RUN_WORKER`); `jtcrm worker` runs it alone.
    pub run_worker: bool,
    /// Idle poll interval of the job worker in ms (`JTCRM_WORKER_POLL_MS`).
    pub worker_poll_ms: u64,
    /// Jobs one worker runs at once (`JTCRM_WORKER_CONCURRENCY`).
    pub worker_concurrency: usize,
    /// Seconds a claimed job stays leased without renewal (`JTCRM_JOB_LEASE_SECS`).
    pub job_lease_secs: u64,
    /// Seconds a job handler may run before it is cancelled (`JTCRM_JOB_TIMEOUT_SECS`).
    pub job_timeout_secs: u64,
    /// Seconds the worker waits for in-flight jobs on shutdown (`JTCRM_WORKER_SHUTDOWN_SECS`).
    pub worker_shutdown_secs: u64,
    /// First retry delay of a failed job in ms, doubled per attempt (`JTCRM_JOB_BACKOFF_BASE_MS`).
    pub job_backoff_base_ms: u64,
    /// Longest retry delay of a failed job in ms (`JTCRM_JOB_BACKOFF_CAP_MS`).
    pub job_backoff_cap_ms: u64,
    /// SMTP relay host (`SMTP_SERVER`). `None`: email is not configured, emails are stored with
    /// status `not_configured` and never sent.
    pub smtp_server: Option<String>,
    /// `SMTP_PORT`: 587 (STARTTLS when offered), 465 (implicit TLS), 25/1025 (plain allowed).
    pub smtp_port: u16,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    /// Envelope and `From` address (`SMTP_FROM`); `None` = `no-reply@<BASE_DOMAIN or localhost>`.
    pub smtp_from: Option<String>,
    /// Connect and per-command timeout (`SMTP_TIMEOUT_SECS`).
    pub smtp_timeout_secs: u64,
    /// `SMTP_TLS`: `auto` (default: implicit TLS on 465, otherwise STARTTLS when the server offers
    /// it), `starttls` (required), `tls` (implicit), `none` (plain, trusted local relays only).
    pub smtp_tls: SmtpTls,
    /// `JTCRM_S3_ENDPOINT`: base URL of an S3-compatible object store (path-style requests,
    /// `{endpoint}/{bucket}/{key}`). When set, tenant files (PDFs, evidence, logos) are stored
    /// there; `None`: under `<data dir>/files`. See docs/files.md.
    pub s3_endpoint: Option<String>,
    /// `JTCRM_S3_BUCKET` (required with the endpoint).
    pub s3_bucket: Option<String>,
    /// `JTCRM_S3_REGION`: the signing region (default `us-east-1`).
    pub s3_region: String,
    /// `JTCRM_S3_ACCESS_KEY_ID` (required with the endpoint).
    pub s3_access_key_id: Option<String>,
    /// `JTCRM_S3_SECRET_ACCESS_KEY` (required with the endpoint).
    pub s3_secret_access_key: Option<Secret>,
}

/// How the SMTP connection is secured (`SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Port 465: implicit TLS; any other port: STARTTLS when the server offers it.
    Auto,
    /// STARTTLS required: refuses to send in clear text.
    StartTls,
    /// Implicit TLS from the first byte (SMTPS).
    Tls,
    /// Clear text only.
    None,
}

impl Settings {
    /// True when `SMTP_SERVER` is set.
    pub fn smtp_configured(&self) -> bool {
        self.smtp_server.is_some()
    }

    /// The envelope and `From` address: `SMTP_FROM`, else `no-reply@<BASE_DOMAIN or localhost>`.
    pub fn smtp_from_address(&self) -> String {
        match &self.smtp_from {
            Some(f) => f.clone(),
            None => format!(
                "no-reply@{}",
                self.base_domain.as_deref().unwrap_or("localhost")
            ),
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn env_parse<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: fmt::Display,
{
    match env(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<T>()
            .map_err(|e| anyhow::anyhow!("{name}={v:?} inválido: {e}")),
    }
}

fn env_bool(name: &str, default: bool) -> anyhow::Result<bool> {
    match env(name).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(v) => bail!("{name}={v:?} inválido: use true ou false"),
    }
}

impl Settings {
    /// Settings for a development run with nothing configured; the base of `from_env`.
    pub fn defaults() -> Self {
        Self {
            env: Environment::Development,
            bind: SocketAddr::from(([0, 0, 0, 0], 5000)),
            database_url: Secret::new("sqlite://data/jtcrm.db"),
            db_max_connections: 16,
            db_rls: true,
            data_dir: PathBuf::from("data"),
            jwt_secret: Secret::default(),
            secrets_key: Secret::default(),
            secrets_old_keys: Vec::new(),
            access_token_ttl_secs: 24 * 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            redis_url: None,
            redis_key_prefix: "jtcrm:".into(),
            superadmin_email: None,
            superadmin_password: None,
            public_signup: false,
            base_domain: None,
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            login_max_failures_per_account: 5,
            login_max_attempts_per_ip: 30,
            login_window_secs: 900,
            trust_proxy_headers: false,
            json_logs: false,
            log_level: "info".into(),
            tenant_cache_ttl_secs: 5,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            webhook_allow_loopback: false,
            run_worker: true,
            worker_poll_ms: 500,
            worker_concurrency: 4,
            job_lease_secs: 60,
            job_timeout_secs: 600,
            worker_shutdown_secs: 20,
            job_backoff_base_ms: 2000,
            job_backoff_cap_ms: 3_600_000,
            smtp_server: None,
            smtp_port: 587,
            smtp_username: None,
            smtp_password: None,
            smtp_from: None,
            smtp_timeout_secs: 30,
            smtp_tls: SmtpTls::Auto,
            s3_endpoint: None,
            s3_bucket: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
        }
    }

    /// Reads the environment. Does not resolve the JWT secret: call `finalize` for that.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut s = Self::defaults();
        if let Some(e) = env("JTCRM_ENV") {
            s.env = match e.as_str() {
                "production" | "prod" => Environment::Production,
                "development" | "dev" | "test" => Environment::Development,
                other => bail!("JTCRM_ENV={other:?} inválido: use development ou production"),
            };
        }
        if let Some(port) = env("PORT") {
            let port: u16 = port
                .parse()
                .with_context(|| format!("PORT={port:?} inválida"))?;
            s.bind.set_port(port);
        }
        if let Some(url) = env("DATABASE_URL") {
            s.database_url = Secret::new(url);
        }
        s.db_max_connections = env_parse("JTCRM_DB_MAX_CONNECTIONS", s.db_max_connections)?;
        s.db_rls = env_bool("JTCRM_DB_RLS", true)?;
        if let Some(dir) = env("JTCRM_DATA_DIR") {
            s.data_dir = PathBuf::from(dir);
        }
        if let Some(secret) = env("JWT_SECRET_KEY") {
            s.jwt_secret = Secret::new(secret);
        }
        if let Some(key) = env("JTCRM_SECRETS_KEY") {
            crate::secrets::parse_key(&key).context("JTCRM_SECRETS_KEY inválida")?;
            s.secrets_key = Secret::new(key);
        }
        if let Some(keys) = env("JTCRM_SECRETS_OLD_KEYS") {
            for k in keys.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                crate::secrets::parse_key(k).context("JTCRM_SECRETS_OLD_KEYS inválida")?;
                s.secrets_old_keys.push(Secret::new(k.to_string()));
            }
        }
        let hours: f64 = env_parse("JWT_ACCESS_TOKEN_EXPIRES", 24.0)?;
        if !(hours > 0.0 && hours <= 24.0 * 30.0) {
            bail!("JWT_ACCESS_TOKEN_EXPIRES deve estar entre 0 e 720 horas");
        }
        s.access_token_ttl_secs = (hours * 3600.0).round() as i64;
        let refresh_days: i64 = env_parse("JWT_REFRESH_TOKEN_EXPIRES_DAYS", 30)?;
        s.refresh_token_ttl_secs = refresh_days * 24 * 3600;
        s.redis_url = env("REDIS_URL").map(Secret::new);
        if let Some(p) = env("REDIS_KEY_PREFIX") {
            s.redis_key_prefix = p;
        }
        s.superadmin_email = env("JTCRM_SUPERADMIN_EMAIL");
        s.superadmin_password = env("JTCRM_SUPERADMIN_PASSWORD").map(Secret::new);
        s.public_signup = env_bool("JTCRM_PUBLIC_SIGNUP", false)?;
        s.base_domain = env("BASE_DOMAIN");
        s.max_body_bytes = env_parse("JTCRM_MAX_BODY_BYTES", s.max_body_bytes)?;
        s.request_timeout_secs = env_parse("JTCRM_REQUEST_TIMEOUT_SECS", s.request_timeout_secs)?;
        s.login_max_failures_per_account =
            env_parse("JTCRM_LOGIN_MAX_FAILURES", s.login_max_failures_per_account)?;
        s.login_max_attempts_per_ip =
            env_parse("JTCRM_LOGIN_MAX_PER_IP", s.login_max_attempts_per_ip)?;
        s.login_window_secs = env_parse("JTCRM_LOGIN_WINDOW_SECS", s.login_window_secs)?;
        s.trust_proxy_headers = env_bool("JTCRM_TRUST_PROXY_HEADERS", false)?;
        s.json_logs = env_bool("JTCRM_JSON_LOGS", false)?;
        if let Some(l) = env("LOG_LEVEL") {
            s.log_level = l.to_lowercase();
        }
        s.tenant_cache_ttl_secs =
            env_parse("JTCRM_TENANT_CACHE_TTL_SECS", s.tenant_cache_ttl_secs)?;
        s.webhook_allow_loopback = env_bool("JTCRM_WEBHOOK_ALLOW_LOOPBACK", false)?;
        s.run_worker = env_bool("JTCRM_RUN_WORKER", s.run_worker)?;
        s.worker_poll_ms = env_parse("JTCRM_WORKER_POLL_MS", s.worker_poll_ms)?;
        s.worker_concurrency = env_parse("JTCRM_WORKER_CONCURRENCY", s.worker_concurrency)?;
        s.job_lease_secs = env_parse("JTCRM_JOB_LEASE_SECS", s.job_lease_secs)?;
        s.job_timeout_secs = env_parse("JTCRM_JOB_TIMEOUT_SECS", s.job_timeout_secs)?;
        s.worker_shutdown_secs = env_parse("JTCRM_WORKER_SHUTDOWN_SECS", s.worker_shutdown_secs)?;
        s.job_backoff_base_ms = env_parse("JTCRM_JOB_BACKOFF_BASE_MS", s.job_backoff_base_ms)?;
        s.job_backoff_cap_ms = env_parse("JTCRM_JOB_BACKOFF_CAP_MS", s.job_backoff_cap_ms)?;
        if s.job_backoff_base_ms == 0 || s.job_backoff_cap_ms < s.job_backoff_base_ms {
            bail!("JTCRM_JOB_BACKOFF_BASE_MS deve ser ≥ 1 e JTCRM_JOB_BACKOFF_CAP_MS ≥ a base");
        }
        s.smtp_server = env("SMTP_SERVER");
        s.smtp_port = env_parse("SMTP_PORT", s.smtp_port)?;
        s.smtp_username = env("SMTP_USERNAME");
        s.smtp_password = env("SMTP_PASSWORD").map(Secret::new);
        s.smtp_from = env("SMTP_FROM");
        s.smtp_timeout_secs = env_parse("SMTP_TIMEOUT_SECS", s.smtp_timeout_secs)?;
        s.smtp_tls = match env("SMTP_TLS").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("auto") => SmtpTls::Auto,
            Some("starttls" | "required") => SmtpTls::StartTls,
            Some("tls" | "ssl" | "smtps" | "wrapper") => SmtpTls::Tls,
            Some("none" | "plain" | "off") => SmtpTls::None,
            Some(v) => bail!("SMTP_TLS={v:?} inválido: use auto, starttls, tls ou none"),
        };
        if s.smtp_port == 0 || s.smtp_timeout_secs == 0 {
            bail!("SMTP_PORT e SMTP_TIMEOUT_SECS devem ser ≥ 1");
        }
        if let Some(from) = &s.smtp_from
            && !is_plausible_address(from)
        {
            bail!("SMTP_FROM={from:?} não é um endereço de e-mail válido");
        }
        s.s3_endpoint = env("JTCRM_S3_ENDPOINT");
        s.s3_bucket = env("JTCRM_S3_BUCKET");
        if let Some(r) = env("JTCRM_S3_REGION") {
            s.s3_region = r;
        }
        s.s3_access_key_id = env("JTCRM_S3_ACCESS_KEY_ID");
        s.s3_secret_access_key = env("JTCRM_S3_SECRET_ACCESS_KEY").map(Secret::new);
        if s.s3_endpoint.is_some()
            && (s.s3_bucket.is_none()
                || s.s3_access_key_id.is_none()
                || s.s3_secret_access_key.is_none())
        {
            bail!(
                "JTCRM_S3_ENDPOINT exige JTCRM_S3_BUCKET, JTCRM_S3_ACCESS_KEY_ID e \
                 JTCRM_S3_SECRET_ACCESS_KEY"
            );
        }
        if s.worker_poll_ms < 10
            || s.worker_concurrency == 0
            || s.job_lease_secs == 0
            || s.job_timeout_secs == 0
        {
            bail!(
                "JTCRM_WORKER_POLL_MS deve ser ≥ 10; JTCRM_WORKER_CONCURRENCY, JTCRM_JOB_LEASE_SECS e \
                 JTCRM_JOB_TIMEOUT_SECS devem ser ≥ 1"
            );
        }
        Ok(s)
    }

    pub fn is_production(&self) -> bool {
        self.env == Environment::Production
    }

    /// Resolves the JWT secret. Production refuses a missing or short one; development generates a
    /// random secret once and keeps it in the data directory so tokens survive restarts.
    pub fn finalize(&mut self) -> anyhow::Result<()> {
        self.finalize_secrets_key()?;
        if self.jwt_secret.expose().len() >= 32 {
            return Ok(());
        }
        if self.is_production() {
            bail!(
                "JWT_SECRET_KEY ausente ou com menos de 32 bytes: em produção (JTCRM_ENV=production) \
                 defina um segredo aleatório forte"
            );
        }
        if !self.jwt_secret.expose().is_empty() {
            bail!("JWT_SECRET_KEY deve ter pelo menos 32 bytes");
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("não foi possível criar {}", self.data_dir.display()))?;
        let path = self.data_dir.join("jwt_secret");
        let secret = match std::fs::read_to_string(&path) {
            Ok(s) if s.trim().len() >= 32 => s.trim().to_string(),
            _ => {
                let s = crate::security::random_token(48);
                std::fs::write(&path, &s)
                    .with_context(|| format!("gravando {}", path.display()))?;
                s
            }
        };
        self.jwt_secret = Secret::new(secret);
        Ok(())
    }

    /// Resolves the key of secrets at rest like the JWT secret: required in production,
    /// generated once and kept in the data directory in development.
    fn finalize_secrets_key(&mut self) -> anyhow::Result<()> {
        if !self.secrets_key.expose().is_empty() {
            return Ok(());
        }
        if self.is_production() {
            bail!(
                "JTCRM_SECRETS_KEY ausente: em produção defina uma chave de 32 bytes em base64 \
                 (por exemplo: openssl rand -base64 32)"
            );
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("não foi possível criar {}", self.data_dir.display()))?;
        let path = self.data_dir.join("secrets_key");
        let key = match std::fs::read_to_string(&path) {
            Ok(s) if crate::secrets::parse_key(&s).is_ok() => s.trim().to_string(),
            _ => {
                let k = crate::secrets::generate_key();
                std::fs::write(&path, &k)
                    .with_context(|| format!("gravando {}", path.display()))?;
                k
            }
        };
        self.secrets_key = Secret::new(key);
        Ok(())
    }

    /// The secrets box of these settings (after [`Settings::finalize`]).
    pub fn secret_box(&self) -> anyhow::Result<crate::secrets::SecretBox> {
        let current = crate::secrets::parse_key(self.secrets_key.expose())
            .context("JTCRM_SECRETS_KEY inválida")?;
        let old = self
            .secrets_old_keys
            .iter()
            .map(|k| crate::secrets::parse_key(k.expose()))
            .collect::<anyhow::Result<Vec<_>>>()
            .context("JTCRM_SECRETS_OLD_KEYS inválida")?;
        Ok(crate::secrets::SecretBox::new(&current, &old))
    }
}

/// A light syntax check of an e-mail address for settings (`local@domain`, no spaces). The e-mail
/// domain parses the address fully before sending.
fn is_plausible_address(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}
