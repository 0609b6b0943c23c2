//! The job worker: claims due jobs with a lease, runs their handlers (bounded concurrency, timeout,
//! panic isolation), records the outcome, renews leases of running jobs and shuts down gracefully.
//!
//! Correctness rests on two rules: a claim is one atomic `UPDATE … RETURNING` (with `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, under the in-process write lock on SQLite), and every later write about a
//! job is conditional on `(locked_by, attempts)` still naming this claim, so a worker whose lease
//! expired can never overwrite the result of the worker that took the job over.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tracing::Instrument;
use uuid::Uuid;

use super::{JobCtx, JobError, Registry, model};
use crate::config::Settings;
use crate::error::AppResult;
use crate::state::AppState;

const QUEUED: &str = "queued";
const RUNNING: &str = "running";
const SUCCEEDED: &str = "succeeded";
const FAILED: &str = "failed";
const DEAD: &str = "dead";

/// `last_error` is shown in the API and kept in the table: bound it.
const MAX_ERROR_CHARS: usize = 2000;

/// Retry delays: `base · 2^(attempt-1)`, ±20 % jitter (so failures caused by one outage do not
/// retry in lockstep), never above `cap`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// Delay before the attempt after `attempt` (1-based) failed.
    pub fn delay(&self, attempt: i32) -> Duration {
        let exp = attempt.clamp(1, 31) - 1;
        let raw = self
            .base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.cap)
            .min(self.cap);
        let jitter: f64 = rand::rng().random_range(0.8..=1.2);
        raw.mul_f64(jitter).min(self.cap)
    }
}

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Written to `locked_by`; `None` = `{host}:{pid}:{random}`. Must be unique per running worker.
    pub worker_id: Option<String>,
    /// How often an idle worker looks for due jobs (enqueues in this process wake it at once).
    pub poll_interval: Duration,
    /// Jobs run at once by this worker.
    pub concurrency: usize,
    /// How long a claim is valid without renewal; the worker renews every lease/3.
    pub lease: Duration,
    /// A handler running longer is cancelled and its attempt counts as failed.
    pub job_timeout: Duration,
    /// On shutdown, how long in-flight jobs may take to finish.
    pub shutdown_grace: Duration,
    pub backoff: Backoff,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            worker_id: None,
            poll_interval: Duration::from_millis(500),
            concurrency: 4,
            lease: Duration::from_secs(60),
            job_timeout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(20),
            backoff: Backoff::default(),
        }
    }
}

impl WorkerOptions {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            poll_interval: Duration::from_millis(s.worker_poll_ms),
            concurrency: s.worker_concurrency,
            lease: Duration::from_secs(s.job_lease_secs),
            job_timeout: Duration::from_secs(s.job_timeout_secs),
            shutdown_grace: Duration::from_secs(s.worker_shutdown_secs),
            backoff: Backoff {
                base: Duration::from_millis(s.job_backoff_base_ms),
                cap: Duration::from_millis(s.job_backoff_cap_ms),
            },
            ..Self::default()
        }
    }

    /// Bounds that keep the loops sane whatever the configuration says.
    fn normalized(mut self) -> Self {
        self.poll_interval = self.poll_interval.max(Duration::from_millis(10));
        self.concurrency = self.concurrency.clamp(1, 1024);
        self.lease = self.lease.max(Duration::from_millis(300));
        self.job_timeout = self.job_timeout.max(Duration::from_millis(10));
        self
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "jtcrm".to_string());
    let host: String = host.chars().take(60).collect();
    let rand = Uuid::now_v7().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &rand[20..])
}

fn truncate(msg: &str) -> String {
    if msg.chars().count() <= MAX_ERROR_CHARS {
        msg.to_string()
    } else {
        let mut s: String = msg.chars().take(MAX_ERROR_CHARS - 1).collect();
        s.push('…');
        s
    }
}

// ---------- claim and completion (the only SQL of the worker) ----------

/// Claims up to `limit` due jobs for `worker_id`: `queued`/`failed` jobs whose `run_at` passed and
/// `running` jobs whose lease expired (their worker died). Each claim sets `status = running`,
/// the lease, and `attempts = attempts + 1`. Low level: [`Worker`] calls it; tools and tests may.
pub async fn claim(
    state: &AppState,
    worker_id: &str,
    limit: u64,
    lease: Duration,
) -> AppResult<Vec<model::Model>> {
    if limit == 0 {
        return Ok(vec![]);
    }
    let now = Utc::now();
    let query = claim_query(
        crate::db::is_postgres(&state.db),
        worker_id,
        limit,
        now,
        now + lease,
    );
    // SQLite serialises writers; `begin` takes the in-process write lock so concurrent claims and
    // request transactions queue instead of failing with SQLITE_BUSY. On PostgreSQL it is a plain
    // transaction.
    let tx = state.begin().await?;
    crate::db::relax_commit(&*tx).await?;
    let rows = query.exec_with_returning(&*tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// `UPDATE jobs SET … WHERE id IN (SELECT id … ORDER BY run_at LIMIT n [FOR UPDATE SKIP LOCKED])`.
fn claim_query(
    postgres: bool,
    worker_id: &str,
    limit: u64,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> sea_orm::UpdateMany<model::Entity> {
    use model::Column as C;
    let due = Condition::any()
        .add(
            Condition::all()
                .add(C::Status.is_in([QUEUED, FAILED]))
                .add(C::RunAt.lte(now)),
        )
        .add(
            Condition::all()
                .add(C::Status.eq(RUNNING))
                .add(C::LockedUntil.lt(now)),
        );
    let mut pick = Query::select();
    pick.column(C::Id)
        .from(model::Entity)
        .cond_where(due.clone())
        .order_by(C::RunAt, Order::Asc)
        .limit(limit);
    if postgres {
        // Concurrent workers skip each other's rows instead of waiting or double-claiming.
        pick.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    model::Entity::update_many()
        .col_expr(C::Status, Expr::value(RUNNING))
        .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
        .col_expr(C::LockedBy, Expr::value(worker_id))
        .col_expr(C::LockedUntil, Expr::value(until))
        .col_expr(C::UpdatedAt, Expr::value(now))
        // A reclaimed running job lost its worker mid-attempt: say so, since that attempt left no
        // error of its own.
        .col_expr(
            C::LastError,
            Expr::case(
                Expr::col(C::Status).eq(RUNNING),
                Expr::value("o worker parou durante a execução (lease expirou)"),
            )
            .finally(Expr::col(C::LastError))
            .into(),
        )
        .filter(C::Id.in_subquery(pick))
        // Re-checked on the locked rows, so a row changed since the subquery read it is skipped.
        .filter(due)
}

/// What [`finish`] recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Succeeded,
    /// `failed`, next attempt at `run_at`.
    Retrying {
        run_at: DateTime<Utc>,
    },
    Dead,
    /// The claim is no longer ours (lease expired and another worker took the job, or an admin
    /// changed it): nothing was written.
    LeaseLost,
}

/// Records the outcome of the claim `job` (as returned by [`claim`]) made by `worker_id`.
pub async fn finish(
    state: &AppState,
    worker_id: &str,
    job: &model::Model,
    result: &Result<(), JobError>,
    backoff: &Backoff,
) -> AppResult<Finished> {
    use model::Column as C;
    let now = Utc::now();
    let (mut am, finished) = match result {
        Ok(()) => (
            model::ActiveModel {
                status: Set(SUCCEEDED.into()),
                finished_at: Set(Some(now)),
                ..Default::default()
            },
            Finished::Succeeded,
        ),
        Err(JobError::Retry(msg)) if job.attempts < job.max_attempts => {
            let run_at = now + backoff.delay(job.attempts);
            (
                model::ActiveModel {
                    status: Set(FAILED.into()),
                    run_at: Set(run_at),
                    last_error: Set(Some(truncate(msg))),
                    ..Default::default()
                },
                Finished::Retrying { run_at },
            )
        }
        Err(e) => (
            model::ActiveModel {
                status: Set(DEAD.into()),
                finished_at: Set(Some(now)),
                last_error: Set(Some(truncate(e.message()))),
                ..Default::default()
            },
            Finished::Dead,
        ),
    };
    am.locked_by = Set(None);
    am.locked_until = Set(None);
    am.updated_at = Set(now);
    let tx = state.begin().await?;
    crate::db::relax_commit(&*tx).await?;
    let res = model::Entity::update_many()
        .set(am)
        .filter(C::Id.eq(job.id))
        .filter(C::Status.eq(RUNNING))
        .filter(C::LockedBy.eq(worker_id))
        .filter(C::Attempts.eq(job.attempts))
        .exec(&*tx)
        .await?;
    tx.commit().await?;
    Ok(if res.rows_affected == 0 {
        Finished::LeaseLost
    } else {
        finished
    })
}

/// Extends the leases of `ids` still held by `worker_id`.
async fn renew(
    state: &AppState,
    worker_id: &str,
    ids: Vec<Uuid>,
    attempt: Option<i32>,
    lease: Duration,
) -> AppResult<u64> {
    use model::Column as C;
    if ids.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let mut q = model::Entity::update_many()
        .col_expr(C::LockedUntil, Expr::value(now + lease))
        .filter(C::Id.is_in(ids))
        .filter(C::Status.eq(RUNNING))
        .filter(C::LockedBy.eq(worker_id));
    if let Some(a) = attempt {
        q = q.filter(C::Attempts.eq(a));
    }
    let tx = state.begin().await?;
    crate::db::relax_commit(&*tx).await?;
    let res = q.exec(&*tx).await?;
    tx.commit().await?;
    Ok(res.rows_affected)
}

/// What a [`JobCtx`] needs to renew its own lease.
#[derive(Clone)]
pub(crate) struct Lease {
    state: AppState,
    worker_id: Arc<str>,
    duration: Duration,
}

impl Lease {
    pub(crate) fn duration(&self) -> Duration {
        self.duration
    }

    pub(crate) async fn renew(&self, id: Uuid, attempt: i32) -> Result<(), JobError> {
        // Bounded wait for the SQLite write lock: a handler holding a transaction while calling
        // heartbeat would otherwise wait for itself forever.
        let wait = self.duration / 2;
        let renewed = tokio::time::timeout(
            wait,
            renew(
                &self.state,
                &self.worker_id,
                vec![id],
                Some(attempt),
                self.duration,
            ),
        )
        .await
        .map_err(|_| JobError::retry("não foi possível renovar o lease a tempo"))?
        .map_err(|e| JobError::retry(format!("falha ao renovar o lease: {}", e.detail)))?;
        if renewed == 0 {
            return Err(JobError::retry(
                "o lease deste job foi perdido; outro worker pode tê-lo assumido",
            ));
        }
        Ok(())
    }
}

// ---------- the worker ----------

pub struct Worker;

/// A running worker. [`WorkerHandle::shutdown`] stops it gracefully; dropping the handle does the
/// same in the background.
pub struct WorkerHandle {
    id: Arc<str>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops claiming, waits up to the shutdown grace for in-flight jobs, then returns. Jobs that
    /// did not finish are cancelled and keep their lease, so another worker retries them once it
    /// expires.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(worker_id = %self.id, error = %e, "worker task failed");
        }
    }
}

struct Runner {
    state: AppState,
    registry: Registry,
    opts: WorkerOptions,
    id: Arc<str>,
    /// Ids of the jobs this worker is running, whose leases it renews.
    inflight: Mutex<HashSet<Uuid>>,
}

/// Removes a job from the in-flight set however its task ends (including cancellation).
struct InflightGuard<'a> {
    runner: &'a Runner,
    id: Uuid,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.runner
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// Cancels the handler task when the job's task is dropped (timeout, shutdown abort).
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Worker {
    pub fn spawn(state: AppState, registry: Registry, opts: WorkerOptions) -> WorkerHandle {
        let opts = opts.normalized();
        let id: Arc<str> = Arc::from(
            opts.worker_id
                .clone()
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.chars().take(120).collect::<String>())
                .unwrap_or_else(default_worker_id),
        );
        let runner = Arc::new(Runner {
            state,
            registry,
            opts,
            id: id.clone(),
            inflight: Mutex::new(HashSet::new()),
        });
        let (stop, stop_rx) = watch::channel(false);
        // The worker's own work (claims, leases, outcomes, periodic chains) is the platform path
        // (db.rs): it spans every tenant.
        let task = tokio::spawn(crate::db::platform(runner.main_loop(stop_rx)));
        WorkerHandle { id, stop, task }
    }
}

fn stopped(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow()
}

impl Runner {
    fn inflight_ids(&self) -> Vec<Uuid> {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect()
    }

    async fn main_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let o = &self.opts;
        tracing::info!(worker_id = %self.id, concurrency = o.concurrency,
            poll_ms = o.poll_interval.as_millis() as u64, lease_s = o.lease.as_secs(), "worker iniciado");
        let schedules = self.registry.schedules().to_vec();
        let renewer = tokio::spawn(crate::db::platform(self.clone().renew_loop()));
        let mut wake = super::subscribe_wake();
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut reseed = tokio::time::interval(Duration::from_secs(3600));
        reseed.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // After a wake, re-poll quickly a few times: the enqueuing transaction may commit a moment
        // after it woke us (PostgreSQL does not show uncommitted rows to the claim).
        let mut quick_rechecks: u32 = 0;
        let mut claim_failures: u32 = 0;
        loop {
            if stopped(&stop) {
                break;
            }
            while let Some(r) = tasks.try_join_next() {
                log_task_end(&self.id, r);
            }
            let free = o.concurrency.saturating_sub(tasks.len());
            let mut delay = o.poll_interval;
            if free > 0 {
                match claim(&self.state, &self.id, free as u64, o.lease).await {
                    Ok(jobs) => {
                        claim_failures = 0;
                        if jobs.is_empty() && quick_rechecks > 0 {
                            let step = 20u64 << (4 - Ord::min(quick_rechecks, 4));
                            delay = Duration::from_millis(step).min(o.poll_interval);
                            quick_rechecks -= 1;
                        }
                        for job in jobs {
                            self.start(&mut tasks, job);
                        }
                    }
                    Err(e) => {
                        claim_failures = claim_failures.saturating_add(1);
                        tracing::warn!(worker_id = %self.id, error = %e, source = ?e.source,
                            "falha ao buscar jobs; tentando novamente");
                        delay = o
                            .poll_interval
                            .saturating_mul(1 << Ord::min(claim_failures, 6))
                            .min(Duration::from_secs(30));
                    }
                }
            }
            tokio::select! {
                r = stop.changed() => {
                    // A dropped handle means nobody can stop us any more: stop now.
                    if r.is_err() { break; }
                }
                r = wake.changed() => {
                    if r.is_ok() { quick_rechecks = 4; }
                }
                Some(r) = tasks.join_next(), if !tasks.is_empty() => log_task_end(&self.id, r),
                _ = reseed.tick(), if !schedules.is_empty() => {
                    // Self-healing chains: the current link is created if the previous one died.
                    for p in &schedules {
                        if let Err(e) = p.ensure_scheduled(&self.state).await {
                            tracing::warn!(error = %e, kind = p.kind, "não foi possível agendar o job periódico");
                        }
                    }
                }
                _ = tokio::time::sleep(delay) => {}
            }
        }
        self.drain(tasks).await;
        renewer.abort();
        tracing::info!(worker_id = %self.id, "worker parado");
    }

    async fn drain(&self, mut tasks: JoinSet<()>) {
        if tasks.is_empty() {
            return;
        }
        tracing::info!(worker_id = %self.id, jobs = tasks.len(), "aguardando jobs em andamento");
        let deadline = tokio::time::sleep(self.opts.shutdown_grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = tasks.join_next() => match r {
                    Some(r) => log_task_end(&self.id, r),
                    None => return,
                },
                _ = &mut deadline => {
                    tracing::warn!(worker_id = %self.id, jobs = tasks.len(),
                        "jobs não terminaram no prazo de desligamento; serão retomados quando o lease expirar");
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    return;
                }
            }
        }
    }

    async fn renew_loop(self: Arc<Self>) {
        let every = (self.opts.lease / 3).max(Duration::from_millis(100));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let ids = self.inflight_ids();
            if ids.is_empty() {
                continue;
            }
            if let Err(e) = renew(&self.state, &self.id, ids, None, self.opts.lease).await {
                tracing::warn!(worker_id = %self.id, error = %e, "falha ao renovar leases");
            }
        }
    }

    fn start(self: &Arc<Self>, tasks: &mut JoinSet<()>, job: model::Model) {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.id);
        let span = tracing::info_span!("job", job_id = %job.id, kind = %job.kind,
            tenant_id = ?job.tenant_id, attempt = job.attempts);
        let runner = self.clone();
        tasks.spawn(crate::db::platform(async move { runner.execute(job).await }).instrument(span));
    }

    async fn execute(&self, job: model::Model) {
        let _guard = InflightGuard {
            runner: self,
            id: job.id,
        };
        let started = std::time::Instant::now();
        let result = if job.attempts > job.max_attempts {
            // Reclaimed after its worker died on the last allowed attempt: a job that kills its
            // worker must not be retried forever.
            Err(JobError::permanent(
                "o worker parou durante a última tentativa (lease expirou)",
            ))
        } else {
            match self.registry.get(&job.kind) {
                None => Err(JobError::permanent(format!(
                    "tipo de job desconhecido: {}",
                    job.kind
                ))),
                Some(handler) => self.invoke(handler, &job).await,
            }
        };
        if let Err(e) = &result {
            tracing::warn!(error = %e, "job falhou");
        }
        // The outcome must reach the database, or the job runs again after its lease: retry a
        // transient write failure a few times before giving up to the lease.
        let mut wait = Duration::from_millis(200);
        for attempt in 1..=4 {
            match finish(&self.state, &self.id, &job, &result, &self.opts.backoff).await {
                Ok(f) => {
                    let outcome = match f {
                        Finished::Succeeded => "succeeded",
                        Finished::Retrying { .. } => "failed",
                        Finished::Dead => "dead",
                        Finished::LeaseLost => "lease_lost",
                    };
                    let labels = [("kind", job.kind.clone()), ("outcome", outcome.to_string())];
                    metrics::counter!("jtcrm_jobs_total", &labels).increment(1);
                    metrics::histogram!("jtcrm_job_duration_seconds", &labels)
                        .record(started.elapsed().as_secs_f64());
                    if f == Finished::LeaseLost {
                        tracing::warn!(
                            "lease perdido antes de registrar o resultado; resultado descartado"
                        );
                    } else {
                        tracing::debug!(outcome, "job concluído");
                    }
                    return;
                }
                Err(e) if attempt < 4 => {
                    tracing::warn!(error = %e, "falha ao registrar resultado do job; tentando de novo");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    tracing::error!(error = %e, source = ?e.source,
                        "resultado do job não registrado; será executado de novo quando o lease expirar");
                }
            }
        }
    }

    async fn invoke(&self, handler: super::Handler, job: &model::Model) -> Result<(), JobError> {
        let ctx = JobCtx {
            id: job.id,
            tenant_id: job.tenant_id,
            kind: job.kind.clone(),
            payload: job.payload.clone(),
            attempt: job.attempts,
            max_attempts: job.max_attempts,
            lease: Lease {
                state: self.state.clone(),
                worker_id: self.id.clone(),
                duration: self.opts.lease,
            },
        };
        let state = self.state.clone();
        // A separate task isolates panics (reported as a JoinError) from the worker.
        // A tenant's job runs on the tenant path (its queries see that tenant's rows only); a
        // platform job (no tenant: periodic chains, cross-tenant sweeps) on the platform path.
        let tenant_id = ctx.tenant_id;
        let run = async move {
            match tenant_id {
                Some(t) => crate::db::tenant(t, handler(state, ctx)).await,
                None => crate::db::platform(handler(state, ctx)).await,
            }
        };
        let handle = tokio::spawn(run.in_current_span());
        let _abort = AbortOnDrop(handle.abort_handle());
        match tokio::time::timeout(self.opts.job_timeout, handle).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) if e.is_panic() => {
                let p = e.into_panic();
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "sem mensagem".into());
                Err(JobError::retry(format!("o job entrou em pânico: {msg}")))
            }
            Ok(Err(_)) => Err(JobError::retry("o job foi cancelado")),
            Err(_) => Err(JobError::retry(format!(
                "tempo limite de execução excedido ({} s)",
                self.opts.job_timeout.as_secs_f64()
            ))),
        }
    }
}

fn log_task_end(worker_id: &str, r: Result<(), tokio::task::JoinError>) {
    if let Err(e) = r
        && !e.is_cancelled()
    {
        tracing::error!(%worker_id, error = %e, "tarefa de job terminou com erro");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_cap() {
        let b = Backoff::default();
        for _ in 0..200 {
            let d1 = b.delay(1).as_secs_f64();
            assert!((1.6..=2.4).contains(&d1), "{d1}");
            let d3 = b.delay(3).as_secs_f64();
            assert!((6.4..=9.6).contains(&d3), "{d3}");
            assert!(b.delay(12) <= b.cap);
            assert!(b.delay(12).as_secs_f64() >= 0.8 * 3600.0);
            assert!(b.delay(1000) <= b.cap);
            assert!(b.delay(0) <= Duration::from_secs_f64(2.4));
            assert!(b.delay(-5) <= Duration::from_secs_f64(2.4));
        }
    }

    #[test]
    fn claim_skips_locked_rows_on_postgres_only() {
        use sea_orm::{DbBackend, QueryTrait};
        let now = Utc::now();
        let pg = claim_query(true, "w1", 4, now, now)
            .build(DbBackend::Postgres)
            .to_string();
        assert!(pg.contains("FOR UPDATE SKIP LOCKED"), "{pg}");
        assert!(pg.contains(r#""id" IN (SELECT "id" FROM "jobs""#), "{pg}");
        assert!(pg.contains("LIMIT 4"), "{pg}");
        let lite = claim_query(false, "w1", 4, now, now)
            .build(DbBackend::Sqlite)
            .to_string();
        assert!(!lite.contains("FOR UPDATE"), "{lite}");
        assert!(lite.contains(r#""attempts" = "attempts" + 1"#), "{lite}");
    }

    #[test]
    fn errors_are_truncated() {
        let long = "x".repeat(5000);
        assert_eq!(truncate(&long).chars().count(), MAX_ERROR_CHARS);
        assert_eq!(truncate("curto"), "curto");
    }

    #[test]
    fn status_constants_match_the_dto() {
        use jtcrm_types::dto::jobs::JobStatus;
        assert_eq!(QUEUED, JobStatus::Queued.as_str());
        assert_eq!(RUNNING, JobStatus::Running.as_str());
        assert_eq!(SUCCEEDED, JobStatus::Succeeded.as_str());
        assert_eq!(FAILED, JobStatus::Failed.as_str());
        assert_eq!(DEAD, JobStatus::Dead.as_str());
    }
}
