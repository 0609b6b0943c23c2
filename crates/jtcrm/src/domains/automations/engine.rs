//! Event dispatch: claims unprocessed `domain_events` in id order, matches them to the company's
//! active automations (trigger, filters, loop depth, conditions) and starts runs whose actions run as
//! `automations.action` jobs; ends cadence enrolments on exit events. Also `execute` (manual runs).
//!
//! Scheduling: `automations.dispatch` is a chain of short jobs, about one per second (keyed by the
//! second they are due), each draining what is pending. A dispatch claims events with a conditional
//! `UPDATE … RETURNING` (`FOR UPDATE SKIP LOCKED` on PostgreSQL) in the same transaction that starts
//! the runs, so two dispatchers never process one event and a crash leaves it pending.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use jtcrm_types::FieldError;
use jtcrm_types::dto::automations::{
    ActionStatus, AutomationAction, Delay, EntityPreview, ExecuteRequest, ExecuteResponse,
    RunStatus, Trigger,
};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, TryInsertResult,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::business_hours::{self, Hours};
use super::conditions::{self, Changes};
use super::model::{automation, run, run_action};
use super::{MAX_DEPTH, Parsed, actions, batch, cadences, entity_type_of, templates};
use crate::domains::leads::model::lead;
use crate::domains::leads::search::{self, LeadQuery};
use crate::domains::pipelines::model::opportunity;
use crate::domains::tasks::model::task;
use crate::domains::{leads, pipelines, tasks};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::events::model as event;
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::jobs::{JobCtx, JobError, NewJob, Next, Periodic, enqueue, model as job};
use jtcrm_kernel::state::AppState;

pub const DISPATCH_KIND: &str = "automations.dispatch";
/// Events claimed per transaction.
const BATCH: u64 = 500;
/// A dispatch job stops draining after this long and hands over to the next one at once.
const BUDGET: StdDuration = StdDuration::from_secs(20);
/// Most entities one `execute` call may run on.
pub const MAX_EXECUTE: usize = 1000;
/// Most entities a dry run describes in detail.
const MAX_PREVIEWS: usize = 50;

/// About once a second; a link with work left over hands over to the next one at once.
pub const SCHEDULE: Periodic = Periodic::every(DISPATCH_KIND, 1);

/// Makes sure a dispatch link is due now, in the caller's transaction (when automations change).
/// An extra link merges with the running chain as soon as both pick the same second.
pub async fn ensure_scheduled_in<C: ConnectionTrait>(conn: &C) -> AppResult<()> {
    SCHEDULE.ensure_scheduled_in(conn).await
}

/// Handler of `automations.dispatch`.
pub async fn run(state: AppState, _job: JobCtx) -> Result<Next, JobError> {
    let started = Instant::now();
    let mut more = false;
    loop {
        let n = dispatch_once(&state).await?;
        if n < BATCH as usize {
            break;
        }
        if started.elapsed() > BUDGET {
            more = true;
            break;
        }
    }
    if rand::random_range(0..60u32) == 0 {
        prune(&state).await;
    }
    Ok(if more { Next::Now } else { Next::NextSlot })
}

/// Deletes this chain's finished links (one per second would otherwise pile up for the 14 days the
/// general cleanup keeps succeeded jobs).
async fn prune(state: &AppState) {
    use jtcrm_kernel::jobs::model as job;
    let before = Utc::now() - chrono::Duration::minutes(10);
    let res = async {
        let tx = state.begin().await?;
        job::Entity::delete_many()
            .filter(job::Column::Status.eq("succeeded"))
            .filter(job::Column::Kind.eq(DISPATCH_KIND))
            .filter(job::Column::FinishedAt.lt(before))
            .exec(&*tx)
            .await?;
        tx.commit().await?;
        Ok::<_, AppError>(())
    }
    .await;
    if let Err(e) = res {
        tracing::warn!(error = %e, "não foi possível limpar jobs de despacho antigos");
    }
}

/// `UPDATE domain_events SET processed_at = now WHERE (tenant_id, id) IN (SELECT … WHERE
/// processed_at IS NULL ORDER BY id LIMIT n [FOR UPDATE SKIP LOCKED]) AND processed_at IS NULL`.
fn claim_query(
    postgres: bool,
    limit: u64,
    now: DateTime<Utc>,
) -> sea_orm::UpdateMany<event::Entity> {
    use event::Column as C;
    let mut pick = Query::select();
    pick.column(C::TenantId)
        .column(C::Id)
        .from(event::Entity)
        .and_where(Expr::col(C::ProcessedAt).is_null())
        .order_by(C::Id, Order::Asc)
        .limit(limit);
    if postgres {
        pick.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    event::Entity::update_many()
        .col_expr(C::ProcessedAt, Expr::value(now))
        .filter(Expr::tuple([Expr::col(C::TenantId), Expr::col(C::Id)]).in_subquery(pick))
        .filter(C::ProcessedAt.is_null())
}

/// Claims and processes one batch; returns how many events it claimed.
pub async fn dispatch_once(state: &AppState) -> AppResult<usize> {
    let postgres = jtcrm_kernel::db::is_postgres(&state.db);
    let tx = state.begin().await?;
    let mut events = claim_query(postgres, BATCH, Utc::now())
        .exec_with_returning(&*tx)
        .await?;
    if events.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    events.sort_by_key(|e| e.id);
    let n = events.len();
    match process(state, &*tx, &events).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(n)
        }
        Err(e) if e.code == jtcrm_types::ErrorCode::ServiceUnavailable => Err(e),
        Err(e) => {
            drop(tx);
            tracing::warn!(error = %e, source = ?e.source, "falha ao despachar um lote de eventos; despachando um a um");
            for ev in events {
                dispatch_single(state, ev.tenant_id, ev.id).await?;
            }
            Ok(n)
        }
    }
}

/// Processes one event alone. An event whose processing keeps failing for a reason other than an
/// unavailable database is marked processed and logged, so it cannot block the queue; its row stays
/// (setting `processed_at` back to NULL replays it).
async fn dispatch_single(state: &AppState, tenant_id: Uuid, id: Uuid) -> AppResult<()> {
    let res = async {
        let tx = state.begin().await?;
        let evs = event::Entity::update_many()
            .col_expr(event::Column::ProcessedAt, Expr::value(Utc::now()))
            .filter(event::Column::TenantId.eq(tenant_id))
            .filter(event::Column::Id.eq(id))
            .filter(event::Column::ProcessedAt.is_null())
            .exec_with_returning(&*tx)
            .await?;
        process(state, &*tx, &evs).await?;
        tx.commit().await?;
        Ok::<_, AppError>(())
    }
    .await;
    match res {
        Ok(()) => Ok(()),
        Err(e) if e.code == jtcrm_types::ErrorCode::ServiceUnavailable => Err(e),
        Err(e) => {
            tracing::error!(%tenant_id, event_id = %id, error = %e, source = ?e.source,
                "evento não despachado: marcado como processado sem automações");
            let tx = state.begin().await?;
            event::Entity::update_many()
                .col_expr(event::Column::ProcessedAt, Expr::value(Utc::now()))
                .filter(event::Column::TenantId.eq(tenant_id))
                .filter(event::Column::Id.eq(id))
                .exec(&*tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }
    }
}

/// The automation depth an event carries (0 when a person caused it).
pub fn depth_of(data: &Value) -> i32 {
    data.get("automation_depth")
        .and_then(Value::as_i64)
        .map_or(0, |d| d.clamp(0, 1000) as i32)
}

fn filters_match(t: &Trigger, data: &Value) -> bool {
    t.filters.as_ref().is_none_or(|f| {
        f.iter().all(|(path, expected)| {
            let actual = templates::lookup(data, path).unwrap_or(&Value::Null);
            match expected {
                Value::Array(list) => list.iter().any(|e| conditions::loose_eq(actual, e)),
                e => conditions::loose_eq(actual, e),
            }
        })
    })
}

/// Snapshots (API JSON) of live entities by `(tenant_id, id)`. Deleted ones are absent.
pub async fn load_snapshots<C: ConnectionTrait>(
    conn: &C,
    entity_type: &str,
    keys: &[(Uuid, Uuid)],
) -> AppResult<HashMap<(Uuid, Uuid), Value>> {
    let mut out = HashMap::new();
    if keys.is_empty() {
        return Ok(out);
    }
    let tenants: BTreeSet<Uuid> = keys.iter().map(|k| k.0).collect();
    let ids: BTreeSet<Uuid> = keys.iter().map(|k| k.1).collect();
    for chunk in ids.into_iter().collect::<Vec<_>>().chunks(500) {
        match entity_type {
            "lead" => {
                for m in lead::Entity::find()
                    .filter(lead::Column::TenantId.is_in(tenants.iter().copied()))
                    .filter(lead::Column::Id.is_in(chunk.iter().copied()))
                    .filter(lead::Column::DeletedAt.is_null())
                    .all(conn)
                    .await?
                {
                    let key = (m.tenant_id, m.id);
                    out.insert(
                        key,
                        serde_json::to_value(leads::to_dto(m)).unwrap_or_default(),
                    );
                }
            }
            "task" => {
                for m in task::Entity::find()
                    .filter(task::Column::TenantId.is_in(tenants.iter().copied()))
                    .filter(task::Column::Id.is_in(chunk.iter().copied()))
                    .filter(task::Column::DeletedAt.is_null())
                    .all(conn)
                    .await?
                {
                    let key = (m.tenant_id, m.id);
                    out.insert(
                        key,
                        serde_json::to_value(tasks::to_dto(m)).unwrap_or_default(),
                    );
                }
            }
            "opportunity" => {
                for m in opportunity::Entity::find()
                    .filter(opportunity::Column::TenantId.is_in(tenants.iter().copied()))
                    .filter(opportunity::Column::Id.is_in(chunk.iter().copied()))
                    .filter(opportunity::Column::DeletedAt.is_null())
                    .all(conn)
                    .await?
                {
                    let key = (m.tenant_id, m.id);
                    out.insert(
                        key,
                        serde_json::to_value(pipelines::opportunity_dto(m, None))
                            .unwrap_or_default(),
                    );
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The live leads among `keys`, each with an empty snapshot (an existence check: one narrow query
/// per 500 instead of decoding whole rows).
async fn live_leads<C: ConnectionTrait>(
    conn: &C,
    keys: &[(Uuid, Uuid)],
) -> AppResult<HashMap<(Uuid, Uuid), Value>> {
    let mut out = HashMap::new();
    let tenants: BTreeSet<Uuid> = keys.iter().map(|k| k.0).collect();
    let ids: BTreeSet<Uuid> = keys.iter().map(|k| k.1).collect();
    for chunk in ids.into_iter().collect::<Vec<_>>().chunks(500) {
        let rows: Vec<(Uuid, Uuid)> = lead::Entity::find()
            .select_only()
            .column(lead::Column::TenantId)
            .column(lead::Column::Id)
            .filter(lead::Column::TenantId.is_in(tenants.iter().copied()))
            .filter(lead::Column::Id.is_in(chunk.iter().copied()))
            .filter(lead::Column::DeletedAt.is_null())
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(
            rows.into_iter()
                .map(|k| (k, Value::Object(Default::default()))),
        );
    }
    Ok(out)
}

/// The entity as the conditions see it: its current snapshot with the event's `after` values on
/// top (the state the event describes).
fn entity_at_event(snapshot: &Value, data: &Value) -> Value {
    let mut e = snapshot.clone();
    if let (Value::Object(target), Some(Value::Object(after))) = (&mut e, data.get("after")) {
        for (k, v) in after {
            target.insert(k.clone(), v.clone());
        }
    }
    e
}

fn needs_hours(actions: &[AutomationAction]) -> bool {
    actions.iter().any(|a| {
        matches!(
            a,
            AutomationAction::Wait {
                business_hours: Some(_),
                ..
            }
        )
    })
}

/// Business hours of a tenant, loaded once per batch.
async fn hours_for<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    cache: &mut HashMap<Uuid, Hours>,
    tenant_id: Uuid,
) -> AppResult<Hours> {
    if let Some(h) = cache.get(&tenant_id) {
        return Ok(h.clone());
    }
    let tz = state
        .tenants
        .get(&state.db, tenant_id)
        .await?
        .map(|t| t.settings.timezone)
        .unwrap_or_default();
    let h = business_hours::load(conn, tenant_id, &tz).await?;
    cache.insert(tenant_id, h.clone());
    Ok(h)
}

async fn process<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    events: &[event::Model],
) -> AppResult<()> {
    cadences::exit_on_events(conn, events).await?;
    let tenants: BTreeSet<Uuid> = events.iter().map(|e| e.tenant_id).collect();
    let types: BTreeSet<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let autos = automation::Entity::find()
        .filter(automation::Column::TenantId.is_in(tenants))
        .filter(automation::Column::TriggerEvent.is_in(types))
        .filter(automation::Column::Active.eq(true))
        .filter(automation::Column::DeletedAt.is_null())
        .order_by_asc(automation::Column::Id)
        .all(conn)
        .await?;
    if autos.is_empty() {
        return Ok(());
    }
    let mut by_trigger: HashMap<(Uuid, String), Vec<Parsed>> = HashMap::new();
    for a in autos {
        by_trigger
            .entry((a.tenant_id, a.trigger_event.clone()))
            .or_default()
            .push(Parsed::new(a));
    }
    let mut usable: HashMap<Uuid, bool> = HashMap::new();
    let mut candidates: Vec<(&event::Model, Vec<&Parsed>, i32)> = vec![];
    for ev in events {
        let Some(list) = by_trigger.get(&(ev.tenant_id, ev.event_type.clone())) else {
            continue;
        };
        let depth = depth_of(&ev.data);
        if depth >= MAX_DEPTH {
            metrics::counter!("jtcrm_automation_loop_stops_total").increment(1);
            tracing::info!(tenant_id = %ev.tenant_id, event_id = %ev.id, depth,
                "evento causado por automação no limite de profundidade: nenhuma automação disparada");
            continue;
        }
        let ok = match usable.get(&ev.tenant_id) {
            Some(ok) => *ok,
            None => {
                let ok = state
                    .tenants
                    .get(&state.db, ev.tenant_id)
                    .await?
                    .is_some_and(|t| t.status.is_usable());
                usable.insert(ev.tenant_id, ok);
                ok
            }
        };
        if !ok {
            continue;
        }
        let matched: Vec<&Parsed> = list
            .iter()
            .filter(|a| filters_match(&a.trigger, &ev.data))
            .collect();
        if !matched.is_empty() {
            candidates.push((ev, matched, depth));
        }
    }
    if candidates.is_empty() {
        return Ok(());
    }
    let mut snapshots: HashMap<(Uuid, Uuid), Value> = HashMap::new();
    for etype in ["lead", "task", "opportunity"] {
        let of_type = || candidates.iter().filter(|(ev, ..)| ev.entity_type == etype);
        let keys: Vec<(Uuid, Uuid)> = of_type()
            .map(|(ev, ..)| (ev.tenant_id, ev.entity_id))
            .collect();
        // Without conditions to evaluate, a lead's run only needs the lead to still exist.
        if etype == "lead"
            && !of_type().any(|(_, matched, _)| matched.iter().any(|a| a.conditions.is_some()))
        {
            snapshots.extend(live_leads(conn, &keys).await?);
        } else {
            snapshots.extend(load_snapshots(conn, etype, &keys).await?);
        }
    }
    let mut hours: HashMap<Uuid, Hours> = HashMap::new();
    let mut items: Vec<(NewRun<'_>, Hours)> = vec![];
    for (ev, matched, depth) in candidates {
        let Some(snap) = snapshots.get(&(ev.tenant_id, ev.entity_id)) else {
            continue;
        };
        let entity = entity_at_event(snap, &ev.data);
        for a in matched {
            if let Some(c) = &a.conditions
                && !conditions::evaluate(c, &entity, &Changes::Event(&ev.data))
            {
                continue;
            }
            let h = if needs_hours(&a.actions) {
                hours_for(state, conn, &mut hours, ev.tenant_id).await?
            } else {
                Hours::default_in(chrono_tz::America::Sao_Paulo)
            };
            items.push((
                NewRun {
                    automation: a,
                    event_id: Some(ev.id),
                    event_type: Some(&ev.event_type),
                    entity_type: &ev.entity_type,
                    entity_id: ev.entity_id,
                    depth: depth + 1,
                },
                h,
            ));
        }
    }
    if !items.is_empty() {
        start_runs(conn, &items).await?;
    }
    Ok(())
}

// ---------- runs ----------

pub struct NewRun<'a> {
    pub automation: &'a Parsed,
    pub event_id: Option<Uuid>,
    pub event_type: Option<&'a str>,
    pub entity_type: &'a str,
    pub entity_id: Uuid,
    pub depth: i32,
}

/// Where a run goes next from action `from`: the waits passed on the way (with the instant each
/// ends) and the next real action with its due time.
pub struct Plan {
    pub waits: Vec<(usize, DateTime<Utc>)>,
    pub next: Option<(usize, DateTime<Utc>)>,
}

pub fn plan(hours: &Hours, actions: &[AutomationAction], from: usize, now: DateTime<Utc>) -> Plan {
    let mut t = now;
    let mut waits = vec![];
    let mut p = from;
    while let Some(AutomationAction::Wait {
        minutes,
        hours: h,
        days,
        business_hours,
    }) = actions.get(p)
    {
        let d = Delay {
            minutes: *minutes,
            hours: *h,
            days: *days,
            business_hours: *business_hours,
        };
        t = hours.after(t, &d);
        waits.push((p, t));
        p += 1;
    }
    Plan {
        waits,
        next: (p < actions.len()).then_some((p, t)),
    }
}

/// The idempotency key of an action's job: `auto:{automation}:{event or run}:{position}`, so a
/// replayed event or a repeated scheduling creates no second job.
pub fn action_key(r: &run::Model, position: usize) -> String {
    format!(
        "auto:{}:{}:{}",
        r.automation_id,
        r.event_id.unwrap_or(r.id),
        position
    )
}

/// The job of action `position` of run `r`, due at `at`.
fn action_new_job(r: &run::Model, position: usize, at: DateTime<Utc>) -> NewJob {
    NewJob::new(
        actions::ACTION_KIND,
        json!({"run_id": r.id, "position": position}),
    )
    .tenant(r.tenant_id)
    .run_at(at)
    .idempotency_key(action_key(r, position))
}

async fn enqueue_action<C: ConnectionTrait>(
    conn: &C,
    r: &run::Model,
    position: usize,
    at: DateTime<Utc>,
) -> AppResult<()> {
    enqueue(conn, action_new_job(r, position, at)).await?;
    Ok(())
}

fn new_run_row(r: &NewRun<'_>, now: DateTime<Utc>) -> run::Model {
    let a = &r.automation.model;
    run::Model {
        tenant_id: a.tenant_id,
        id: Uuid::now_v7(),
        automation_id: a.id,
        automation_version: a.version,
        source: if r.event_id.is_some() {
            "event"
        } else {
            "manual"
        }
        .into(),
        event_id: r.event_id,
        event_type: r.event_type.map(str::to_string),
        entity_type: r.entity_type.to_string(),
        entity_id: r.entity_id,
        depth: r.depth,
        status: RunStatus::Running.as_str().into(),
        actions_total: r.automation.actions.len() as i32,
        created_at: now,
        finished_at: None,
    }
}

/// The row of the job of action `position` of run `r` (to enqueue many in one statement).
pub fn action_job(
    r: &run::Model,
    position: usize,
    at: DateTime<Utc>,
) -> AppResult<job::ActiveModel> {
    action_new_job(r, position, at).row()
}

/// Starts runs: their rows (at most one per automation and event: a replayed event gets `None`),
/// one row per action, and the job of each first action, in a few multi-row statements.
pub async fn start_runs<C: ConnectionTrait>(
    conn: &C,
    items: &[(NewRun<'_>, Hours)],
) -> AppResult<Vec<Option<Uuid>>> {
    const CHUNK: usize = 500;
    let now = Utc::now();
    let rows: Vec<run::Model> = items.iter().map(|(r, _)| new_run_row(r, now)).collect();
    let mut inserted: HashSet<Uuid> = HashSet::new();
    for chunk in rows.chunks(CHUNK) {
        let res = run::Entity::insert_many(chunk.iter().map(|m| m.clone().into_active_model()))
            .on_conflict_do_nothing_on([
                run::Column::TenantId,
                run::Column::AutomationId,
                run::Column::EventId,
            ])
            .exec_with_returning_keys(conn)
            .await?;
        if let TryInsertResult::Inserted(keys) = res {
            inserted.extend(keys.into_iter().map(|(_, id)| id));
        }
    }
    let mut action_rows = vec![];
    let mut jobs = vec![];
    let mut finished = vec![];
    let mut batched: HashMap<Uuid, Vec<(Uuid, usize)>> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for ((r, hours), row) in items.iter().zip(&rows) {
        if !inserted.contains(&row.id) {
            out.push(None);
            continue;
        }
        let p = plan(hours, &r.automation.actions, 0, now);
        for (i, act) in r.automation.actions.iter().enumerate() {
            let planned = p
                .waits
                .iter()
                .find(|(w, _)| *w == i)
                .map(|(_, t)| *t)
                .or_else(|| p.next.filter(|(n, _)| *n == i).map(|(_, t)| t));
            action_rows.push(run_action::ActiveModel {
                tenant_id: Set(row.tenant_id),
                run_id: Set(row.id),
                position: Set(i as i32),
                action_type: Set(act.action_type().as_str().into()),
                status: Set(if planned.is_some() {
                    ActionStatus::Queued
                } else {
                    ActionStatus::Pending
                }
                .as_str()
                .into()),
                run_at: Set(planned),
                attempts: Set(0),
                result: Set(None),
                error: Set(None),
                started_at: Set(None),
                finished_at: Set(None),
            });
        }
        match p.next {
            // An immediate create_task on a lead goes in a batch job (see `batch`).
            Some((pos, at))
                if at <= now
                    && p.waits.is_empty()
                    && batch::batchable(&row.entity_type, &r.automation.actions[pos]) =>
            {
                batched
                    .entry(row.tenant_id)
                    .or_default()
                    .push((row.id, pos));
            }
            Some((pos, at)) => jobs.push(action_job(row, pos, at)?),
            None => finished.push(row.clone()),
        }
        metrics::counter!("jtcrm_automation_runs_total", "source" => row.source.clone())
            .increment(1);
        out.push(Some(row.id));
    }
    for chunk in action_rows.chunks(CHUNK) {
        run_action::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    for (tenant_id, runs) in &batched {
        for chunk in runs.chunks(batch::MAX_BATCH) {
            jobs.push(batch::batch_job(*tenant_id, chunk)?);
        }
    }
    let any_job = !jobs.is_empty();
    for chunk in jobs.chunks(CHUNK) {
        job::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([job::Column::IdempotencyKey])
            .exec_without_returning(conn)
            .await?;
    }
    if any_job {
        jtcrm_kernel::jobs::wake_workers();
    }
    for row in &finished {
        finalize(conn, row, None).await?;
    }
    Ok(out)
}

/// Schedules the run from action `from` on: passes its waits, queues the next action, or
/// finishes the run when none is left.
pub async fn schedule_from<C: ConnectionTrait>(
    conn: &C,
    hours: &Hours,
    r: &run::Model,
    actions: &[AutomationAction],
    from: usize,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let p = plan(hours, actions, from, now);
    for (pos, until) in &p.waits {
        set_action(conn, r, *pos, ActionStatus::Queued, Some(*until)).await?;
    }
    match p.next {
        Some((pos, at)) => {
            set_action(conn, r, pos, ActionStatus::Queued, Some(at)).await?;
            enqueue_action(conn, r, pos, at).await
        }
        None => finalize(conn, r, None).await,
    }
}

async fn set_action<C: ConnectionTrait>(
    conn: &C,
    r: &run::Model,
    position: usize,
    status: ActionStatus,
    run_at: Option<DateTime<Utc>>,
) -> AppResult<()> {
    run_action::Entity::update_many()
        .col_expr(run_action::Column::Status, Expr::value(status.as_str()))
        .col_expr(run_action::Column::RunAt, Expr::value(run_at))
        .filter(run_action::Column::TenantId.eq(r.tenant_id))
        .filter(run_action::Column::RunId.eq(r.id))
        .filter(run_action::Column::Position.eq(position as i32))
        .exec(conn)
        .await?;
    Ok(())
}

/// Closes the run: with `status` when given (`stopped`, `cancelled`), else `failed` if any action
/// failed and `succeeded` otherwise.
pub async fn finalize<C: ConnectionTrait>(
    conn: &C,
    r: &run::Model,
    status: Option<RunStatus>,
) -> AppResult<()> {
    let Some(status) = status else {
        return finalize_many(conn, r.tenant_id, &[r.id]).await;
    };
    run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(status.as_str()))
        .col_expr(run::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(run::Column::TenantId.eq(r.tenant_id))
        .filter(run::Column::Id.eq(r.id))
        .filter(run::Column::Status.eq(RunStatus::Running.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Closes the running runs `ids` of a tenant, one statement per 500: `failed` if any of a run's
/// actions failed, else `succeeded`.
pub async fn finalize_many<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> AppResult<()> {
    for chunk in ids.chunks(500) {
        let failed = Query::select()
            .expr(Expr::val(1))
            .from(run_action::Entity)
            .and_where(
                Expr::col((run_action::Entity, run_action::Column::TenantId))
                    .equals((run::Entity, run::Column::TenantId)),
            )
            .and_where(
                Expr::col((run_action::Entity, run_action::Column::RunId))
                    .equals((run::Entity, run::Column::Id)),
            )
            .and_where(
                Expr::col((run_action::Entity, run_action::Column::Status))
                    .eq(ActionStatus::Failed.as_str()),
            )
            .take();
        run::Entity::update_many()
            .col_expr(
                run::Column::Status,
                Expr::case(Expr::exists(failed), RunStatus::Failed.as_str())
                    .finally(RunStatus::Succeeded.as_str())
                    .into(),
            )
            .col_expr(run::Column::FinishedAt, Expr::value(Utc::now()))
            .filter(run::Column::TenantId.eq(tenant_id))
            .filter(run::Column::Id.is_in(chunk.iter().copied()))
            .filter(run::Column::Status.eq(RunStatus::Running.as_str()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

// ---------- manual execution ----------

/// `POST /api/automations/{id}/execute`: runs the automation now on one entity or on the leads of a
/// filter (conditions are checked, `changed` ones are not: there is no change). A dry run only
/// describes what each action would do.
pub async fn execute(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    req: ExecuteRequest,
) -> AppResult<ExecuteResponse> {
    let p = Parsed::new(super::find(&state.db, ctx, id).await?);
    let etype = entity_type_of(&p.model.trigger_event).unwrap_or("lead");
    let dry_run = req.dry_run.unwrap_or(false);
    let ids: Vec<Uuid> = match (req.entity_id, &req.filter) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(AppError::validation(vec![FieldError::new(
                "entity_id",
                "required",
                "Informe entity_id ou filter (apenas um)",
            )]));
        }
        (Some(e), None) => vec![e],
        (None, Some(f)) => {
            if etype != "lead" {
                return Err(AppError::field(
                    "filter",
                    "not_supported",
                    "Filtros valem apenas para automações de leads; use entity_id",
                ));
            }
            let raw = super::filter_to_query(f)?;
            let defs = leads::fields::list_defs(&state.db, ctx.tenant_id).await?;
            let q = LeadQuery::parse(&raw, ctx, &defs).map_err(super::prefix_filter_errors)?;
            let ids: Vec<Uuid> = search::filtered(ctx, &q, state.db.get_database_backend())
                .select_only()
                .column(lead::Column::Id)
                .order_by_asc(lead::Column::Id)
                .limit(MAX_EXECUTE as u64 + 1)
                .into_tuple()
                .all(&state.db)
                .await?;
            if ids.len() > MAX_EXECUTE {
                return Err(AppError::field(
                    "filter",
                    "too_many",
                    &format!("O filtro encontra mais de {MAX_EXECUTE} leads; refine-o"),
                ));
            }
            ids
        }
    };
    let keys: Vec<(Uuid, Uuid)> = ids.iter().map(|i| (ctx.tenant_id, *i)).collect();
    let snaps = load_snapshots(&state.db, etype, &keys).await?;
    if let Some(e) = req.entity_id
        && !snaps.contains_key(&(ctx.tenant_id, e))
    {
        return Err(AppError::field(
            "entity_id",
            "unknown_entity",
            "Registro inexistente",
        ));
    }
    let mut met = vec![];
    let mut skipped = 0u64;
    for id in &ids {
        let Some(snap) = snaps.get(&(ctx.tenant_id, *id)) else {
            continue;
        };
        let ok = p
            .conditions
            .as_ref()
            .is_none_or(|c| conditions::evaluate(c, snap, &Changes::Manual));
        if ok {
            met.push(*id);
        } else {
            skipped += 1;
        }
    }
    let tz = ctx.tenant.settings.timezone.clone();
    let hours = business_hours::load(&state.db, ctx.tenant_id, &tz).await?;
    if dry_run {
        let mut previews = vec![];
        for id in ids
            .iter()
            .filter(|i| snaps.contains_key(&(ctx.tenant_id, **i)))
            .take(MAX_PREVIEWS)
        {
            let conditions_met = met.contains(id);
            let actions = if conditions_met {
                actions::preview(state, &p, etype, *id, &hours).await?
            } else {
                vec![]
            };
            previews.push(EntityPreview {
                entity_id: *id,
                conditions_met,
                actions,
            });
        }
        return Ok(ExecuteResponse {
            dry_run,
            matched: met.len() as u64,
            skipped,
            runs: vec![],
            previews: Some(previews),
        });
    }
    let items: Vec<(NewRun<'_>, Hours)> = met
        .iter()
        .map(|id| {
            (
                NewRun {
                    automation: &p,
                    event_id: None,
                    event_type: None,
                    entity_type: etype,
                    entity_id: *id,
                    depth: 1,
                },
                hours.clone(),
            )
        })
        .collect();
    let tx = state.begin().await?;
    let runs: Vec<Uuid> = start_runs(&*tx, &items)
        .await?
        .into_iter()
        .flatten()
        .collect();
    audit::record(
        &*tx,
        audit::Entry::tenant(
            ctx,
            "execute",
            "automation",
            id,
            json!({"runs": runs.len(), "skipped": skipped}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(ExecuteResponse {
        dry_run,
        matched: met.len() as u64,
        skipped,
        runs,
        previews: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sea_orm::{DbBackend, QueryTrait};

    #[test]
    fn claim_skips_locked_rows_on_postgres_only() {
        let now = Utc::now();
        let pg = claim_query(true, 7, now)
            .build(DbBackend::Postgres)
            .to_string();
        assert!(pg.contains("FOR UPDATE SKIP LOCKED"), "{pg}");
        assert!(
            pg.contains(r#"("tenant_id", "id") IN (SELECT "tenant_id", "id" FROM "domain_events""#),
            "{pg}"
        );
        assert!(pg.contains("LIMIT 7"), "{pg}");
        let lite = claim_query(false, 7, now)
            .build(DbBackend::Sqlite)
            .to_string();
        assert!(!lite.contains("FOR UPDATE"), "{lite}");
    }

    #[test]
    fn plan_accumulates_waits() {
        let h = Hours::always(chrono_tz::America::Sao_Paulo);
        let acts: Vec<AutomationAction> = serde_json::from_value(json!([
            {"type": "adjust_score", "points": 1},
            {"type": "wait", "hours": 2},
            {"type": "wait", "minutes": 30},
            {"type": "adjust_score", "points": 1}
        ]))
        .unwrap();
        let now = Utc::now();
        let p = plan(&h, &acts, 0, now);
        assert!(p.waits.is_empty());
        assert_eq!(p.next, Some((0, now)));
        let p = plan(&h, &acts, 1, now);
        assert_eq!(p.waits.len(), 2);
        assert_eq!(p.next, Some((3, now + chrono::Duration::minutes(150))));
        assert!(plan(&h, &acts, 4, now).next.is_none());
    }

    #[test]
    fn filters_and_depth() {
        let t: Trigger = serde_json::from_value(
            json!({"event": "lead.status_changed", "filters": {"after.status": ["qualified", "contacted"]}}),
        )
        .unwrap();
        assert!(filters_match(
            &t,
            &json!({"after": {"status": "qualified"}})
        ));
        assert!(!filters_match(&t, &json!({"after": {"status": "lost"}})));
        assert!(!filters_match(&t, &json!({})));
        assert_eq!(depth_of(&json!({"automation_depth": 2})), 2);
        assert_eq!(depth_of(&json!({})), 0);
    }
}
