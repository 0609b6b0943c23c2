//! The durable job queue (docs/design.md, "Jobs and events"), the base of the "nothing is lost" promise: side effects are
//! enqueued in the same transaction as the change that causes them (outbox), then a worker claims
//! them with a lease, runs their handler at least once, retries with exponential backoff and parks
//! exhausted jobs as `dead`, visible and retryable through `/api/jobs`. See docs/jobs.md.
//!
//! Producers call [`enqueue`] with their transaction. Each domain registers its handlers and its
//! periodic chains into a [`Registry`] through its own `register` function; `jtcrm::app` assembles
//! the product's registry. The worker knows no domain.

pub mod cleanup;
pub mod model;
pub mod periodic;
pub mod worker;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jtcrm_types::dto::jobs::{Job, JobStatus};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    TryInsertResult,
};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub use periodic::{Next, Periodic};
pub use worker::{Backoff, Worker, WorkerHandle, WorkerOptions};

/// Attempts before a job goes `dead` when the producer does not say otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;
/// Upper bound of `max_attempts`, so a typo cannot keep a job retrying for years.
pub const MAX_ATTEMPTS_LIMIT: i32 = 100;
pub const MAX_KIND_LEN: usize = 80;
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

/// A job to enqueue. `kind` names the handler in the [`Registry`]; `payload` is what the handler
/// needs to find its work (prefer ids over copies of personal data).
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The tenant the job works for; `None` for platform jobs.
    pub tenant_id: Option<Uuid>,
    pub kind: &'static str,
    pub payload: Value,
    /// Not before this instant; `None` = now.
    pub run_at: Option<DateTime<Utc>>,
    /// Deduplicates producers: a second job with the same key is not created while the first
    /// exists (succeeded jobs are deleted after 14 days, which frees their keys). Keys are global,
    /// so prefix them with the kind and include the tenant, e.g. `lead.created:{tenant}:{lead}`.
    pub idempotency_key: Option<String>,
    /// `None` = [`DEFAULT_MAX_ATTEMPTS`].
    pub max_attempts: Option<i32>,
}

impl NewJob {
    pub fn new(kind: &'static str, payload: Value) -> Self {
        Self {
            tenant_id: None,
            kind,
            payload,
            run_at: None,
            idempotency_key: None,
            max_attempts: None,
        }
    }

    pub fn tenant(mut self, tenant_id: Uuid) -> Self {
        self.tenant_id = Some(tenant_id);
        self
    }

    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// The `jobs` row this job becomes (`queued`), for producers that insert many jobs in one
    /// statement; [`enqueue`] inserts one. Invalid jobs are programming errors, not user input:
    /// they answer 500 and log why.
    pub fn row(self) -> AppResult<model::ActiveModel> {
        let job = self;
        if job.kind.is_empty() || job.kind.len() > MAX_KIND_LEN {
            return Err(AppError::internal(anyhow::anyhow!(
                "job kind {:?} must have 1..={MAX_KIND_LEN} bytes",
                job.kind
            )));
        }
        let max_attempts = job.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
            return Err(AppError::internal(anyhow::anyhow!(
                "job {}: max_attempts {max_attempts} outside 1..={MAX_ATTEMPTS_LIMIT}",
                job.kind
            )));
        }
        if let Some(k) = &job.idempotency_key
            && (k.is_empty() || k.chars().count() > MAX_IDEMPOTENCY_KEY_LEN)
        {
            return Err(AppError::internal(anyhow::anyhow!(
                "job {}: idempotency key must have 1..={MAX_IDEMPOTENCY_KEY_LEN} characters",
                job.kind
            )));
        }
        let now = Utc::now();
        Ok(model::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(job.tenant_id),
            kind: Set(job.kind.to_string()),
            payload: Set(job.payload),
            status: Set(JobStatus::Queued.as_str().to_string()),
            attempts: Set(0),
            max_attempts: Set(max_attempts),
            run_at: Set(job.run_at.unwrap_or(now)),
            locked_by: Set(None),
            locked_until: Set(None),
            idempotency_key: Set(job.idempotency_key),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            finished_at: Set(None),
        })
    }
}

// Wakes the workers of this process when something was enqueued, so a job does not wait for the
// next poll. A process-wide channel rather than a field of `AppState` keeps producers free of any
// state; a spurious wake (another app in the same test process) only costs one indexed query.
static WAKE: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

/// Tells this process's workers to look for due jobs now. [`enqueue`] calls it; call it again
/// after committing a long transaction that enqueued jobs if latency matters.
pub fn wake_workers() {
    WAKE.send_modify(|n| *n = n.wrapping_add(1));
}

pub(crate) fn subscribe_wake() -> watch::Receiver<u64> {
    WAKE.subscribe()
}

/// Enqueues `job` on `conn`, normally the caller's transaction, so the job exists if and only if
/// the change that caused it commits (outbox). With an idempotency key already in the table, no
/// row is added and the existing job's id is returned.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, job: NewJob) -> AppResult<Uuid> {
    let key = job.idempotency_key.clone();
    let kind = job.kind;
    let row = job.row()?;
    let id = row.id.clone().unwrap();
    match &key {
        None => {
            model::Entity::insert(row)
                .exec_without_returning(conn)
                .await?;
        }
        Some(key) => {
            // ON CONFLICT DO NOTHING rather than catching the unique violation: on PostgreSQL a
            // failed INSERT aborts the caller's whole transaction.
            let res = model::Entity::insert(row)
                .on_conflict_do_nothing_on([model::Column::IdempotencyKey])
                .exec_without_returning(conn)
                .await?;
            if !matches!(res, TryInsertResult::Inserted(n) if n > 0) {
                let existing: Option<Uuid> = model::Entity::find()
                    .select_only()
                    .column(model::Column::Id)
                    .filter(model::Column::IdempotencyKey.eq(key.as_str()))
                    .into_tuple()
                    .one(conn)
                    .await?;
                return existing.ok_or_else(|| {
                    // Only if the holder of the key was deleted between the two statements.
                    AppError::internal(anyhow::anyhow!(
                        "job {kind}: idempotency key conflict without a holder"
                    ))
                });
            }
        }
    }
    wake_workers();
    Ok(id)
}

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Transient (network, 5xx, lock): retried after an exponential backoff until `max_attempts`.
    Retry(String),
    /// Will never succeed (bad payload, record gone, 4xx): straight to `dead`.
    Permanent(String),
}

impl JobError {
    pub fn retry(msg: impl Into<String>) -> Self {
        JobError::Retry(msg.into())
    }
    pub fn permanent(msg: impl Into<String>) -> Self {
        JobError::Permanent(msg.into())
    }
    pub fn message(&self) -> &str {
        match self {
            JobError::Retry(m) | JobError::Permanent(m) => m,
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Retry(m) => write!(f, "retry: {m}"),
            JobError::Permanent(m) => write!(f, "permanent: {m}"),
        }
    }
}

impl std::error::Error for JobError {}

/// Server-side failures, rate limits and stale versions are transient; any other client error
/// (not found, validation, conflict, forbidden) will fail the same way on every attempt.
impl From<AppError> for JobError {
    fn from(e: AppError) -> Self {
        let msg = match &e.source {
            Some(src) => format!("{}: {src:#}", e.detail),
            None => e.detail.clone(),
        };
        match e.code.status() {
            412 | 429 | 500.. => JobError::Retry(msg),
            _ => JobError::Permanent(msg),
        }
    }
}

impl From<sea_orm::DbErr> for JobError {
    fn from(e: sea_orm::DbErr) -> Self {
        JobError::Retry(format!("erro de banco de dados: {e}"))
    }
}

/// A claimed job as its handler sees it.
#[derive(Clone)]
pub struct JobCtx {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub kind: String,
    pub payload: Value,
    /// 1 on the first attempt.
    pub attempt: i32,
    pub max_attempts: i32,
    lease: worker::Lease,
}

impl fmt::Debug for JobCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The payload may hold personal data: keep it out of logs.
        f.debug_struct("JobCtx")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("kind", &self.kind)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl JobCtx {
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// Extends this job's lease by the worker's lease duration. The worker already renews leases
    /// of running jobs every lease/3; call this from long loops to learn early that the lease was
    /// lost (`Err`: another worker may own the job now, so stop). On SQLite, do not call it while
    /// holding a write transaction (`state.begin()`): it needs the same in-process write lock.
    pub async fn heartbeat(&self) -> Result<(), JobError> {
        self.lease.renew(self.id, self.attempt).await
    }

    /// The worker's lease duration.
    pub fn lease(&self) -> Duration {
        self.lease.duration()
    }
}

/// A job handler: gets the state and the claimed job, returns `Ok` or how it failed.
pub type Handler = Arc<
    dyn Fn(AppState, JobCtx) -> Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>
        + Send
        + Sync,
>;

/// Job kinds and their handlers, and the periodic chains the worker keeps alive.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Handler>,
    schedules: Vec<Periodic>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an async fn (or closure returning a future) for `kind`, replacing any previous one.
    pub fn register<F, Fut>(&mut self, kind: &str, f: F) -> &mut Self
    where
        F: Fn(AppState, JobCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |state, ctx| Box::pin(f(state, ctx)));
        self.handlers.insert(kind.to_string(), handler);
        self
    }

    /// Registers an already boxed handler.
    pub fn register_handler(&mut self, kind: &str, handler: Handler) -> &mut Self {
        self.handlers.insert(kind.to_string(), handler);
        self
    }

    /// Registers a periodic chain: `f` runs once per slot of `p`; after a successful run the next
    /// link is enqueued (see [`periodic`]), and the worker re-creates the current link on start
    /// and hourly if the chain broke.
    pub fn periodic<F, Fut>(&mut self, p: Periodic, f: F) -> &mut Self
    where
        F: Fn(AppState, JobCtx) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = Result<Next, JobError>> + Send + 'static,
    {
        self.schedules.retain(|s| s.kind != p.kind);
        self.schedules.push(p);
        self.register(p.kind, move |state, ctx| {
            let f = f.clone();
            p.run_link(state, ctx, f)
        })
    }

    pub fn get(&self, kind: &str) -> Option<Handler> {
        self.handlers.get(kind).cloned()
    }

    pub fn contains(&self, kind: &str) -> bool {
        self.handlers.contains_key(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// The periodic chains registered with [`Registry::periodic`].
    pub fn schedules(&self) -> &[Periodic] {
        &self.schedules
    }
}

/// The kernel's own jobs (the daily cleanup of finished jobs).
pub fn register(r: &mut Registry) {
    r.periodic(cleanup::SCHEDULE, cleanup::run);
}

pub fn to_dto(m: model::Model) -> Job {
    Job {
        id: m.id,
        tenant_id: m.tenant_id,
        kind: m.kind,
        // Statuses are written only by this module; an unknown one would be a corrupted row.
        status: JobStatus::parse(&m.status).unwrap_or(JobStatus::Dead),
        attempts: m.attempts,
        max_attempts: m.max_attempts,
        run_at: m.run_at,
        last_error: m.last_error,
        created_at: m.created_at,
        updated_at: m.updated_at,
        finished_at: m.finished_at,
    }
}
