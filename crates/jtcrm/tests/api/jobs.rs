//! The durable job queue: enqueue (outbox, idempotency), worker semantics (retries, dead jobs,
//! leases, exactly-once claims across workers, graceful shutdown), the daily cleanup job and the
//! `/api/jobs` endpoints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use jtcrm::AppState;
use jtcrm_kernel::jobs::worker::{Finished, claim, finish};
use jtcrm_kernel::jobs::{
    self, Backoff, JobCtx, JobError, NewJob, Registry, Worker, WorkerOptions, model,
};
use jtcrm_testkit::{TestApp, spawn_app_with};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// An app whose own worker is off, so each test drives its own workers and registry.
async fn app_without_worker() -> TestApp {
    spawn_app_with(|s| s.run_worker = false).await
}

/// An app whose in-process worker (the product registry) polls fast.
async fn app_with_worker() -> TestApp {
    spawn_app_with(|s| s.worker_poll_ms = 50).await
}

fn fast() -> WorkerOptions {
    WorkerOptions {
        poll_interval: Duration::from_millis(50),
        concurrency: 4,
        lease: Duration::from_secs(5),
        job_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(5),
        backoff: Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(200),
        },
        worker_id: None,
    }
}

async fn enqueue(state: &AppState, job: NewJob) -> Uuid {
    let tx = state.begin().await.unwrap();
    let id = jobs::enqueue(&*tx, job).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn load(state: &AppState, id: Uuid) -> model::Model {
    model::Entity::find_by_id(id)
        .one(&state.db)
        .await
        .unwrap()
        .unwrap()
}

/// Polls the job until `pred` holds; panics with its last state after `secs`.
async fn wait_for(
    state: &AppState,
    id: Uuid,
    secs: u64,
    pred: impl Fn(&model::Model) -> bool,
) -> model::Model {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let j = load(state, id).await;
        if pred(&j) {
            return j;
        }
        assert!(Instant::now() < deadline, "timed out; job is {j:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn status_is(s: &'static str) -> impl Fn(&model::Model) -> bool {
    move |j| j.status == s
}

/// A registry with one handler that counts its runs.
fn counting(kind: &'static str, runs: Arc<AtomicU64>) -> Registry {
    let mut r = Registry::new();
    r.register(kind, move |_s, _c| {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    r
}

#[tokio::test]
async fn enqueued_job_runs_once_with_its_payload() {
    let app = app_without_worker().await;
    type Seen = (Option<Uuid>, Value, i32, String);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let mut r = Registry::new();
    let s2 = seen.clone();
    r.register("test.echo", move |_s, c: JobCtx| {
        let seen = s2.clone();
        async move {
            seen.lock()
                .unwrap()
                .push((c.tenant_id, c.payload, c.attempt, c.kind));
            Ok(())
        }
    });
    let w = Worker::spawn(app.state.clone(), r, fast());
    let tenant = Uuid::now_v7();
    let id = enqueue(
        &app.state,
        NewJob::new("test.echo", json!({"lead_id": 42})).tenant(tenant),
    )
    .await;
    let j = wait_for(&app.state, id, 10, status_is("succeeded")).await;
    assert_eq!(j.attempts, 1);
    assert_eq!(j.max_attempts, jobs::DEFAULT_MAX_ATTEMPTS);
    assert!(j.finished_at.is_some());
    assert!(j.locked_by.is_none() && j.locked_until.is_none());
    assert!(j.last_error.is_none());
    w.shutdown().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![(
            Some(tenant),
            json!({"lead_id": 42}),
            1,
            "test.echo".to_string()
        )]
    );
}

#[tokio::test]
async fn enqueue_wakes_an_idle_worker_without_waiting_for_the_poll() {
    let app = app_without_worker().await;
    let runs = Arc::new(AtomicU64::new(0));
    let mut opts = fast();
    opts.poll_interval = Duration::from_secs(60);
    let w = Worker::spawn(app.state.clone(), counting("test.wake", runs.clone()), opts);
    // Let the worker go idle first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let started = Instant::now();
        // The transaction commits a moment after `enqueue` woke the worker.
        let tx = app.state.begin().await.unwrap();
        let id = jobs::enqueue(&*tx, NewJob::new("test.wake", json!({})))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        tx.commit().await.unwrap();
        wait_for(&app.state, id, 10, status_is("succeeded")).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    w.shutdown().await;
}

#[tokio::test]
async fn enqueue_is_part_of_the_callers_transaction() {
    let app = app_without_worker().await;
    let runs = Arc::new(AtomicU64::new(0));
    let w = Worker::spawn(
        app.state.clone(),
        counting("test.outbox", runs.clone()),
        fast(),
    );
    let tx = app.state.begin().await.unwrap();
    let id = jobs::enqueue(&*tx, NewJob::new("test.outbox", json!({})))
        .await
        .unwrap();
    drop(tx); // rolled back: the change and its job vanish together
    // A committed job of the same kind, enqueued after: once it ran, the worker has been through
    // the queue, and the rolled-back job was never there to run.
    let marker = enqueue(&app.state, NewJob::new("test.outbox", json!({}))).await;
    wait_for(&app.state, marker, 10, status_is("succeeded")).await;
    assert!(
        model::Entity::find_by_id(id)
            .one(&app.state.db)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1, "only the committed job ran");
    w.shutdown().await;
}

#[tokio::test]
async fn idempotency_key_dedupes_within_and_across_transactions() {
    let app = app_without_worker().await;
    let key = format!("test.dedupe:{}", Uuid::now_v7());
    let job = || NewJob::new("test.dedupe", json!({"n": 1})).idempotency_key(key.clone());
    let tx = app.state.begin().await.unwrap();
    let a = jobs::enqueue(&*tx, job()).await.unwrap();
    let b = jobs::enqueue(&*tx, job()).await.unwrap();
    assert_eq!(a, b);
    tx.commit().await.unwrap();
    // A later transaction gets the same id and stays usable afterwards (on PostgreSQL a failed
    // INSERT would have aborted it).
    let tx = app.state.begin().await.unwrap();
    let c = jobs::enqueue(&*tx, job()).await.unwrap();
    assert_eq!(a, c);
    let other = jobs::enqueue(&*tx, NewJob::new("test.dedupe", json!({"n": 2})))
        .await
        .unwrap();
    let other2 = jobs::enqueue(&*tx, NewJob::new("test.dedupe", json!({"n": 3})))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_ne!(other, other2, "jobs without a key never collide");
    let with_key = model::Entity::find()
        .filter(model::Column::IdempotencyKey.eq(key.as_str()))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(with_key, 1);
    let all = model::Entity::find()
        .filter(model::Column::Kind.eq("test.dedupe"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(all, 3);
    // Invalid jobs are programming errors: a 500, never a panic.
    let tx = app.state.begin().await.unwrap();
    let bad = jobs::enqueue(&*tx, NewJob::new("test.dedupe", json!({})).max_attempts(0)).await;
    assert_eq!(bad.unwrap_err().status().as_u16(), 500);
    let bad = jobs::enqueue(&*tx, NewJob::new("", json!({}))).await;
    assert!(bad.is_err());
    let bad = jobs::enqueue(
        &*tx,
        NewJob::new("test.dedupe", json!({})).idempotency_key("k".repeat(201)),
    )
    .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn retries_with_backoff_then_succeeds() {
    let app = app_without_worker().await;
    let times: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut r = Registry::new();
    let t2 = times.clone();
    r.register("test.flaky", move |_s, c: JobCtx| {
        let times = t2.clone();
        async move {
            times.lock().unwrap().push(Instant::now());
            if c.attempt < 3 {
                Err(JobError::retry(format!(
                    "destino fora do ar ({})",
                    c.attempt
                )))
            } else {
                Ok(())
            }
        }
    });
    let mut opts = fast();
    opts.backoff = Backoff {
        base: Duration::from_millis(300),
        cap: Duration::from_secs(5),
    };
    let w = Worker::spawn(app.state.clone(), r, opts);
    let id = enqueue(&app.state, NewJob::new("test.flaky", json!({}))).await;
    let failed = wait_for(&app.state, id, 10, status_is("failed")).await;
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.last_error.as_deref(), Some("destino fora do ar (1)"));
    assert!(failed.locked_by.is_none());
    let ahead = failed.run_at - failed.updated_at;
    assert!(
        ahead >= chrono::Duration::milliseconds(230)
            && ahead <= chrono::Duration::milliseconds(370),
        "first backoff {ahead:?}"
    );
    let done = wait_for(&app.state, id, 10, status_is("succeeded")).await;
    w.shutdown().await;
    assert_eq!(done.attempts, 3);
    // The last failure stays for diagnosis.
    assert_eq!(done.last_error.as_deref(), Some("destino fora do ar (2)"));
    let times = times.lock().unwrap().clone();
    assert_eq!(times.len(), 3);
    assert!(times[1] - times[0] >= Duration::from_millis(230));
    assert!(
        times[2] - times[1] >= Duration::from_millis(470),
        "second backoff doubles"
    );
}

#[tokio::test]
async fn exhausted_retries_go_dead_with_the_last_error() {
    let app = app_without_worker().await;
    let runs = Arc::new(AtomicU64::new(0));
    let mut r = Registry::new();
    let r2 = runs.clone();
    r.register("test.always_fails", move |_s, c: JobCtx| {
        let runs = r2.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Err(JobError::retry(format!("falha {}", c.attempt)))
        }
    });
    let ok_runs = Arc::new(AtomicU64::new(0));
    let ok2 = ok_runs.clone();
    r.register("test.ok", move |_s, _c| {
        let runs = ok2.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let w = Worker::spawn(app.state.clone(), r, fast());
    let id = enqueue(
        &app.state,
        NewJob::new("test.always_fails", json!({})).max_attempts(3),
    )
    .await;
    let dead = wait_for(&app.state, id, 10, status_is("dead")).await;
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error.as_deref(), Some("falha 3"));
    assert!(dead.finished_at.is_some() && dead.locked_by.is_none());
    // The worker keeps claiming after the job died: a later job runs, the dead one does not.
    let ok = enqueue(&app.state, NewJob::new("test.ok", json!({}))).await;
    wait_for(&app.state, ok, 10, status_is("succeeded")).await;
    assert_eq!(ok_runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "dead jobs are not run again"
    );
    w.shutdown().await;
}

#[tokio::test]
async fn permanent_errors_go_dead_at_once() {
    let app = app_without_worker().await;
    let runs = Arc::new(AtomicU64::new(0));
    let mut r = Registry::new();
    let r2 = runs.clone();
    r.register("test.permanent", move |_s, _c| {
        let runs = r2.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Err(JobError::permanent("CNPJ inexistente"))
        }
    });
    let w = Worker::spawn(app.state.clone(), r, fast());
    let id = enqueue(&app.state, NewJob::new("test.permanent", json!({}))).await;
    let dead = wait_for(&app.state, id, 10, status_is("dead")).await;
    w.shutdown().await;
    assert_eq!(dead.attempts, 1);
    assert_eq!(dead.last_error.as_deref(), Some("CNPJ inexistente"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn panics_timeouts_and_unknown_kinds_fail_without_stopping_the_worker() {
    let app = app_without_worker().await;
    let mut r = Registry::new();
    r.register("test.panics", |_s, _c| async move {
        let v: Vec<u8> = Vec::new();
        if v.is_empty() {
            panic!("índice fora do intervalo");
        }
        Ok(())
    });
    r.register("test.hangs", |_s, _c| async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    });
    let ok_runs = Arc::new(AtomicU64::new(0));
    let o2 = ok_runs.clone();
    r.register("test.ok", move |_s, _c| {
        let runs = o2.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let mut opts = fast();
    opts.job_timeout = Duration::from_millis(300);
    let w = Worker::spawn(app.state.clone(), r, opts);
    let panics = enqueue(
        &app.state,
        NewJob::new("test.panics", json!({})).max_attempts(1),
    )
    .await;
    let hangs = enqueue(
        &app.state,
        NewJob::new("test.hangs", json!({})).max_attempts(1),
    )
    .await;
    let unknown = enqueue(&app.state, NewJob::new("test.no_such_kind", json!({}))).await;
    let p = wait_for(&app.state, panics, 10, status_is("dead")).await;
    assert!(
        p.last_error.as_deref().unwrap().contains("pânico")
            && p.last_error
                .as_deref()
                .unwrap()
                .contains("índice fora do intervalo"),
        "{p:?}"
    );
    let h = wait_for(&app.state, hangs, 10, status_is("dead")).await;
    assert!(
        h.last_error.as_deref().unwrap().contains("tempo limite"),
        "{h:?}"
    );
    let u = wait_for(&app.state, unknown, 10, status_is("dead")).await;
    assert_eq!(u.attempts, 1, "unknown kinds are not retried");
    assert_eq!(
        u.last_error.as_deref(),
        Some("tipo de job desconhecido: test.no_such_kind")
    );
    let ok = enqueue(&app.state, NewJob::new("test.ok", json!({}))).await;
    wait_for(&app.state, ok, 10, status_is("succeeded")).await;
    assert_eq!(ok_runs.load(Ordering::SeqCst), 1);
    w.shutdown().await;
}

#[tokio::test]
async fn expired_lease_is_taken_over_exactly_once() {
    let app = app_without_worker().await;
    let id = enqueue(&app.state, NewJob::new("test.lease", json!({}))).await;
    // A worker claims the job and "crashes": it never finishes nor renews.
    let claimed = claim(&app.state, "crashed-worker", 10, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let stale = claimed.into_iter().next().unwrap();
    assert_eq!((stale.id, stale.attempts), (id, 1));
    assert_eq!(stale.status, "running");
    assert_eq!(stale.locked_by.as_deref(), Some("crashed-worker"));
    // While the lease holds, nobody else gets it.
    assert!(
        claim(&app.state, "other", 10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    let runs = Arc::new(AtomicU64::new(0));
    let ran_at = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut r = Registry::new();
    let (r2, at2) = (runs.clone(), ran_at.clone());
    r.register("test.lease", move |_s, _c| {
        let (runs, at) = (r2.clone(), at2.clone());
        async move {
            at.lock().unwrap().push(Utc::now());
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let w = Worker::spawn(app.state.clone(), r, fast());
    let done = wait_for(&app.state, id, 10, status_is("succeeded")).await;
    assert_eq!(done.attempts, 2);
    assert_eq!(
        done.last_error.as_deref(),
        Some("o worker parou durante a execução (lease expirou)")
    );
    // Taken over only once the crashed worker's lease had expired.
    let lease_end = stale.locked_until.expect("a claimed job has a lease");
    assert!(
        ran_at.lock().unwrap()[0] >= lease_end,
        "run before the lease expired"
    );
    // A later job of the same kind runs once: the taken-over job was not run a second time.
    let marker = enqueue(&app.state, NewJob::new("test.lease", json!({}))).await;
    wait_for(&app.state, marker, 10, status_is("succeeded")).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // The crashed worker wakes up late: its result is discarded.
    let late = finish(
        &app.state,
        "crashed-worker",
        &stale,
        &Err(JobError::permanent("tarde demais")),
        &Backoff::default(),
    )
    .await
    .unwrap();
    assert_eq!(late, Finished::LeaseLost);
    let after = load(&app.state, id).await;
    assert_eq!(after.status, "succeeded");
    w.shutdown().await;
}

#[tokio::test]
async fn a_job_that_kills_its_worker_on_the_last_attempt_goes_dead() {
    let app = app_without_worker().await;
    let id = enqueue(
        &app.state,
        NewJob::new("test.poison", json!({})).max_attempts(1),
    )
    .await;
    let claimed = claim(&app.state, "crashed-worker", 10, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let runs = Arc::new(AtomicU64::new(0));
    let w = Worker::spawn(
        app.state.clone(),
        counting("test.poison", runs.clone()),
        fast(),
    );
    let dead = wait_for(&app.state, id, 10, status_is("dead")).await;
    w.shutdown().await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert!(dead.last_error.unwrap().contains("última tentativa"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_run_each_of_200_jobs_exactly_once() {
    let app = app_without_worker().await;
    // A second state = a second process: its own pool (and, on SQLite, its own write lock).
    let other = jtcrm::app::build_state((*app.state.settings).clone())
        .await
        .unwrap();
    let runs: Arc<Mutex<HashMap<Uuid, u32>>> = Arc::default();
    let by_worker: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let registry = |name: &'static str| {
        let runs = runs.clone();
        let by_worker = by_worker.clone();
        let mut r = Registry::new();
        r.register("test.many", move |_s, c: JobCtx| {
            let runs = runs.clone();
            let by_worker = by_worker.clone();
            async move {
                *runs.lock().unwrap().entry(c.id).or_default() += 1;
                *by_worker.lock().unwrap().entry(name.into()).or_default() += 1;
                let n = c.payload["n"].as_u64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(n % 5)).await;
                Ok(())
            }
        });
        r
    };
    let a = Worker::spawn(app.state.clone(), registry("a"), fast());
    let b = Worker::spawn(other.clone(), registry("b"), fast());
    let mut ids = Vec::new();
    for chunk in 0..20u64 {
        let tx = app.state.begin().await.unwrap();
        for i in 0..10u64 {
            let n = chunk * 10 + i;
            ids.push(
                jobs::enqueue(&*tx, NewJob::new("test.many", json!({"n": n})))
                    .await
                    .unwrap(),
            );
        }
        tx.commit().await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = model::Entity::find()
            .filter(model::Column::Kind.eq("test.many"))
            .filter(model::Column::Status.eq("succeeded"))
            .count(&app.state.db)
            .await
            .unwrap();
        if done == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} of 200 jobs done");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.shutdown().await;
    b.shutdown().await;
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 200);
    for id in &ids {
        assert_eq!(
            runs.get(id),
            Some(&1),
            "job {id} ran {:?} times",
            runs.get(id)
        );
    }
    let retried = model::Entity::find()
        .filter(model::Column::Kind.eq("test.many"))
        .filter(model::Column::Attempts.ne(1))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(retried, 0);
    eprintln!("jobs per worker: {:?}", by_worker.lock().unwrap());
    other.db.clone().close().await.ok();
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_jobs_finish() {
    let app = app_without_worker().await;
    let finished = Arc::new(AtomicBool::new(false));
    let mut r = Registry::new();
    let f2 = finished.clone();
    r.register("test.slow", move |_s, _c| {
        let finished = f2.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            finished.store(true, Ordering::SeqCst);
            Ok(())
        }
    });
    let w = Worker::spawn(app.state.clone(), r, fast());
    let id = enqueue(&app.state, NewJob::new("test.slow", json!({}))).await;
    wait_for(&app.state, id, 10, status_is("running")).await;
    w.shutdown().await;
    assert!(finished.load(Ordering::SeqCst));
    assert_eq!(load(&app.state, id).await.status, "succeeded");
    // A stopped worker claims nothing more.
    // `shutdown` returned after the claim loop ended: nothing is left that could claim it.
    let later = enqueue(&app.state, NewJob::new("test.slow", json!({}))).await;
    assert_eq!(load(&app.state, later).await.status, "queued");
}

#[tokio::test]
async fn jobs_outliving_the_shutdown_grace_keep_their_lease_for_another_worker() {
    let app = app_without_worker().await;
    let completed_first = Arc::new(AtomicBool::new(false));
    let registry = || {
        let completed_first = completed_first.clone();
        let mut r = Registry::new();
        r.register("test.long", move |_s, c: JobCtx| {
            let completed_first = completed_first.clone();
            async move {
                if c.attempt == 1 {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    completed_first.store(true, Ordering::SeqCst);
                }
                Ok(())
            }
        });
        r
    };
    let mut opts = fast();
    opts.lease = Duration::from_secs(1);
    opts.shutdown_grace = Duration::from_millis(200);
    let w = Worker::spawn(app.state.clone(), registry(), opts.clone());
    let id = enqueue(&app.state, NewJob::new("test.long", json!({}))).await;
    wait_for(&app.state, id, 10, status_is("running")).await;
    let started = Instant::now();
    w.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let j = load(&app.state, id).await;
    assert_eq!(j.status, "running", "keeps its lease");
    assert!(j.locked_until.is_some());
    let w2 = Worker::spawn(app.state.clone(), registry(), opts);
    let done = wait_for(&app.state, id, 10, status_is("succeeded")).await;
    w2.shutdown().await;
    assert_eq!(done.attempts, 2);
    assert!(
        !completed_first.load(Ordering::SeqCst),
        "the first run was cancelled"
    );
}

#[tokio::test]
async fn heartbeat_extends_the_lease_and_reports_losing_it() {
    let app = app_without_worker().await;
    let observed: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut r = Registry::new();
    let o2 = observed.clone();
    r.register("test.heartbeat", move |s: AppState, c: JobCtx| {
        let observed = o2.clone();
        async move {
            let before = model::Entity::find_by_id(c.id)
                .one(&s.db)
                .await?
                .and_then(|j| j.locked_until);
            tokio::time::sleep(Duration::from_millis(50)).await;
            let first = c.heartbeat().await;
            let after = model::Entity::find_by_id(c.id)
                .one(&s.db)
                .await?
                .and_then(|j| j.locked_until);
            observed
                .lock()
                .unwrap()
                .push(format!("{:?} {}", first, after > before));
            // Someone else takes the job over.
            let tx = s.begin().await?;
            model::Entity::update_many()
                .col_expr(model::Column::LockedBy, Expr::value("intruder"))
                .filter(model::Column::Id.eq(c.id))
                .exec(&*tx)
                .await?;
            tx.commit().await?;
            let second = c.heartbeat().await;
            observed
                .lock()
                .unwrap()
                .push(format!("{}", second.is_err()));
            Ok(())
        }
    });
    let w = Worker::spawn(app.state.clone(), r, fast());
    let id = enqueue(&app.state, NewJob::new("test.heartbeat", json!({}))).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while observed.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // `shutdown` waits for the in-flight handler and its (refused) result to be recorded.
    w.shutdown().await;
    assert_eq!(
        observed.lock().unwrap().clone(),
        vec!["Ok(()) true".to_string(), "true".to_string()]
    );
    // The worker's success was not recorded over the intruder's claim.
    let j = load(&app.state, id).await;
    assert_eq!(j.status, "running");
    assert_eq!(j.locked_by.as_deref(), Some("intruder"));
}

#[tokio::test]
async fn daily_cleanup_deletes_old_rows_and_schedules_tomorrow() {
    use jtcrm_kernel::sessions::refresh_token as rt;
    let app = app_without_worker().await;
    let now = Utc::now();
    let token = |expires: chrono::DateTime<Utc>| rt::ActiveModel {
        id: Set(Uuid::now_v7()),
        token_hash: Set(Uuid::now_v7().simple().to_string()),
        family_id: Set(Uuid::now_v7()),
        user_id: Set(Uuid::now_v7()),
        tenant_id: Set(None),
        expires_at: Set(expires),
        used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(expires - chrono::Duration::days(30)),
    };
    let old_token = token(now - chrono::Duration::days(8));
    let recent_token = token(now - chrono::Duration::days(1));
    let (old_token_id, recent_token_id) = (
        old_token.id.clone().unwrap(),
        recent_token.id.clone().unwrap(),
    );
    rt::Entity::insert_many([old_token, recent_token])
        .exec(&app.state.db)
        .await
        .unwrap();
    let job_row = |status: &str, age_days: i64| {
        let at = now - chrono::Duration::days(age_days);
        model::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(None),
            kind: Set("test.old".into()),
            payload: Set(json!({})),
            status: Set(status.into()),
            attempts: Set(1),
            max_attempts: Set(8),
            run_at: Set(at),
            locked_by: Set(None),
            locked_until: Set(None),
            idempotency_key: Set(None),
            last_error: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            finished_at: Set(Some(at)),
        }
    };
    let old_ok = job_row("succeeded", 15);
    let recent_ok = job_row("succeeded", 2);
    let old_dead = job_row("dead", 30);
    let ids = [
        old_ok.id.clone().unwrap(),
        recent_ok.id.clone().unwrap(),
        old_dead.id.clone().unwrap(),
    ];
    model::Entity::insert_many([old_ok, recent_ok, old_dead])
        .exec(&app.state.db)
        .await
        .unwrap();

    // The product registry; the worker schedules the current links of its periodic chains on
    // start: the kernel's `system.cleanup` (jobs) and the auth domain's `auth.cleanup` (tokens).
    let w = Worker::spawn(app.state.clone(), jtcrm::app::registry(), fast());
    let sys = jobs::cleanup::SCHEDULE;
    let slot = sys.slot_of(now);
    let today_key = sys.key(slot);
    let auth = jtcrm::domains::auth::jobs::SCHEDULE;
    let auth_key = auth.key(auth.slot_of(now));
    let deadline = Instant::now() + Duration::from_secs(10);
    let today = loop {
        let j = model::Entity::find()
            .filter(model::Column::IdempotencyKey.eq(today_key.as_str()))
            .one(&app.state.db)
            .await
            .unwrap();
        let a = model::Entity::find()
            .filter(model::Column::IdempotencyKey.eq(auth_key.as_str()))
            .one(&app.state.db)
            .await
            .unwrap();
        if let (Some(j), Some(_)) = (
            j.filter(|j| j.status == "succeeded"),
            a.filter(|a| a.status == "succeeded"),
        ) {
            break j;
        }
        assert!(Instant::now() < deadline, "cleanup did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(today.kind, "system.cleanup");
    assert!(today.tenant_id.is_none());
    // A restart (or the hourly re-check) does not run it twice today.
    sys.ensure_scheduled(&app.state).await.unwrap();
    w.shutdown().await;
    let todays = model::Entity::find()
        .filter(model::Column::Kind.eq("system.cleanup"))
        .filter(model::Column::IdempotencyKey.eq(today_key.as_str()))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(todays, 1);

    assert!(
        rt::Entity::find_by_id(old_token_id)
            .one(&app.state.db)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        rt::Entity::find_by_id(recent_token_id)
            .one(&app.state.db)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        model::Entity::find_by_id(ids[0])
            .one(&app.state.db)
            .await
            .unwrap()
            .is_none()
    );
    for kept in &ids[1..] {
        assert!(
            model::Entity::find_by_id(*kept)
                .one(&app.state.db)
                .await
                .unwrap()
                .is_some()
        );
    }
    let next = model::Entity::find()
        .filter(model::Column::IdempotencyKey.eq(sys.key(slot + 1)))
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the next day's cleanup");
    assert_eq!(next.status, "queued");
    assert_eq!(next.run_at, sys.start_of(slot + 1));
    assert_eq!(
        next.run_at.time(),
        chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap()
    );
}

#[tokio::test]
async fn the_app_runs_its_worker_unless_disabled() {
    let app = app_with_worker().await;
    let id = enqueue(&app.state, NewJob::new("test.unknown", json!({}))).await;
    wait_for(&app.state, id, 10, status_is("dead")).await;

    // Without its worker the app leaves the job alone: a worker started here, which knows the
    // kind, is the one that runs it, at its first attempt (the app's own worker would have
    // claimed it first and sent it `dead` as an unknown kind).
    let off = app_without_worker().await;
    let id = enqueue(&off.state, NewJob::new("test.unknown", json!({}))).await;
    let runs = Arc::new(AtomicU64::new(0));
    let w = Worker::spawn(
        off.state.clone(),
        counting("test.unknown", runs.clone()),
        fast(),
    );
    let done = wait_for(&off.state, id, 10, status_is("succeeded")).await;
    assert_eq!(done.attempts, 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    w.shutdown().await;
}

// ---------- API ----------

#[tokio::test]
async fn admin_lists_reads_and_retries_its_dead_jobs() {
    let app = app_with_worker().await;
    let t = app.create_tenant().await;
    let tenant_id: Uuid = t.id.parse().unwrap();
    // No handler knows this kind, so the app's worker parks it as dead.
    let dead = enqueue(
        &app.state,
        NewJob::new("test.unknown", json!({"email": "cliente@exemplo.com.br"})).tenant(tenant_id),
    )
    .await;
    wait_for(&app.state, dead, 10, status_is("dead")).await;
    let later = enqueue(
        &app.state,
        NewJob::new("test.later", json!({}))
            .tenant(tenant_id)
            .run_at(Utc::now() + chrono::Duration::hours(1)),
    )
    .await;

    let r = app.get("/api/jobs", &t.admin_token).await;
    r.assert(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], later.to_string(), "newest first");
    let d = &items[1];
    assert_eq!(d["id"], dead.to_string());
    assert_eq!(d["status"], "dead");
    assert_eq!(d["kind"], "test.unknown");
    assert_eq!(d["tenant_id"], t.id);
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["max_attempts"], 8);
    assert!(d["last_error"].as_str().unwrap().contains("desconhecido"));
    assert!(d["finished_at"].is_string());
    assert!(d.get("payload").is_none() && !r.text.contains("cliente@exemplo"));

    let dead_only = app.get("/api/jobs?status=dead", &t.admin_token).await;
    assert_eq!(dead_only.body["items"].as_array().unwrap().len(), 1);
    let by_kind = app
        .get(
            "/api/jobs?kind=test.later&include_total=true",
            &t.admin_token,
        )
        .await;
    assert_eq!(by_kind.body["total"], 1);
    assert_eq!(by_kind.body["items"][0]["id"], later.to_string());
    let page1 = app.get("/api/jobs?limit=1", &t.admin_token).await;
    assert_eq!(page1.body["items"][0]["id"], later.to_string());
    let cursor = page1.body["next_cursor"].as_str().unwrap().to_string();
    let page2 = app
        .get(
            &format!("/api/jobs?limit=1&cursor={cursor}"),
            &t.admin_token,
        )
        .await;
    assert_eq!(page2.body["items"][0]["id"], dead.to_string());
    assert!(page2.body["next_cursor"].is_null());

    let one = app.get(&format!("/api/jobs/{dead}"), &t.admin_token).await;
    one.assert(200);
    assert_eq!(one.body["status"], "dead");

    // Only failed or dead jobs can be retried.
    app.post(
        &format!("/api/jobs/{later}/retry"),
        &t.admin_token,
        json!({}),
    )
    .await
    .assert_problem(409, "invalid_state_transition");
    let retried_at = Utc::now();
    let retried = app
        .send(
            jtcrm_testkit::reqwest::Method::POST,
            &format!("/api/jobs/{dead}/retry"),
            Some(&t.admin_token),
            None,
        )
        .await;
    retried.assert(200);
    assert_eq!(retried.body["status"], "queued");
    assert_eq!(retried.body["attempts"], 0);
    assert!(retried.body["finished_at"].is_null());
    let audit = app
        .get(
            &format!("/api/audit-logs?entity_type=job&entity_id={dead}"),
            &t.admin_token,
        )
        .await;
    let entry = &audit.body["items"][0];
    assert_eq!(entry["action"], "retry");
    assert_eq!(entry["actor_id"], t.admin_id);
    assert_eq!(entry["changes"]["status"]["from"], "dead");
    assert_eq!(entry["changes"]["status"]["to"], "queued");
    // Retried, it runs again (and, still unknown, dies again).
    let again = wait_for(&app.state, dead, 10, |j| {
        j.status == "dead" && j.finished_at.is_some_and(|f| f > retried_at)
    })
    .await;
    assert_eq!(again.attempts, 1);
}

#[tokio::test]
async fn jobs_are_isolated_per_tenant_and_reserved_to_admins() {
    let app = app_with_worker().await;
    let a = app.create_tenant().await;
    let b = app.create_tenant().await;
    let a_sales = app.create_user(&a, "sales").await;
    let a_id: Uuid = a.id.parse().unwrap();
    let job = enqueue(
        &app.state,
        NewJob::new("test.unknown", json!({})).tenant(a_id),
    )
    .await;
    wait_for(&app.state, job, 10, status_is("dead")).await;

    // Another tenant: 404, and absent from lists (even when asking for tenant A by id).
    app.get(&format!("/api/jobs/{job}"), &b.admin_token)
        .await
        .assert_problem(404, "not_found");
    app.post(&format!("/api/jobs/{job}/retry"), &b.admin_token, json!({}))
        .await
        .assert_problem(404, "not_found");
    for q in ["", "?status=dead", &format!("?tenant_id={}", a.id)] {
        let r = app.get(&format!("/api/jobs{q}"), &b.admin_token).await;
        r.assert(200);
        assert_eq!(r.body["items"], json!([]), "{q}: {}", r.text);
    }
    // Platform jobs (the daily cleanup) are not shown to tenants either.
    let mine = app.get("/api/jobs", &a.admin_token).await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 1);

    // Non-admins: 403; anonymous: 401.
    app.get("/api/jobs", &a_sales.token)
        .await
        .assert_problem(403, "forbidden");
    app.get(&format!("/api/jobs/{job}"), &a_sales.token)
        .await
        .assert_problem(403, "forbidden");
    app.post(&format!("/api/jobs/{job}/retry"), &a_sales.token, json!({}))
        .await
        .assert_problem(403, "forbidden");
    app.send(jtcrm_testkit::reqwest::Method::GET, "/api/jobs", None, None)
        .await
        .assert_problem(401, "unauthenticated");

    // The super-admin sees everything, platform jobs included, and can filter by tenant.
    let sa = app.superadmin_token().await;
    let all = app.get("/api/jobs?limit=200", &sa).await;
    all.assert(200);
    let items = all.body["items"].as_array().unwrap();
    assert!(items.iter().any(|j| j["id"] == job.to_string()));
    assert!(
        items
            .iter()
            .any(|j| j["kind"] == "system.cleanup" && j["tenant_id"].is_null())
    );
    let only_a = app.get(&format!("/api/jobs?tenant_id={}", a.id), &sa).await;
    let only_a = only_a.body["items"].as_array().unwrap();
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0]["id"], job.to_string());
    app.get(&format!("/api/jobs/{job}"), &sa).await.assert(200);
    let r = app
        .post(&format!("/api/jobs/{job}/retry"), &sa, json!({}))
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "queued");
}

#[tokio::test]
async fn bad_job_requests_get_clear_errors() {
    let app = app_without_worker().await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;
    app.get("/api/jobs/not-a-uuid", tok)
        .await
        .assert_problem(400, "invalid_id");
    app.post("/api/jobs/123/retry", tok, json!({}))
        .await
        .assert_problem(400, "invalid_id");
    app.get(&format!("/api/jobs/{}", Uuid::now_v7()), tok)
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("/api/jobs/{}/retry", Uuid::now_v7()),
        tok,
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    for (q, field) in [
        ("status=paused", "status"),
        ("cursor=!!!", "cursor"),
        ("cursor=bm90LWEtdXVpZA", "cursor"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("tenant_id=xyz", "tenant_id"),
    ] {
        let r = app.get(&format!("/api/jobs?{q}"), tok).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.error_fields(), vec![field.to_string()], "{q}: {}", r.text);
    }
    let long = "k".repeat(81);
    let r = app.get(&format!("/api/jobs?kind={long}"), tok).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["kind".to_string()]);
}

#[tokio::test]
async fn jobs_endpoints_are_documented() {
    let api = jtcrm::http::openapi();
    let paths = &api["paths"];
    for p in ["/api/jobs", "/api/jobs/{id}", "/api/jobs/{id}/retry"] {
        assert!(paths.get(p).is_some(), "{p} missing from OpenAPI");
    }
    let schemas = &api["components"]["schemas"];
    assert!(schemas.get("Job").is_some() && schemas.get("JobStatus").is_some());
}
