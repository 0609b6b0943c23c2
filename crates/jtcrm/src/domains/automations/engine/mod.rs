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
    QueryOrder, TryInsertResult,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::business_hours::{self, Hours};
use super::conditions::{self, Changes};
use super::model::{automation, run, run_action};
use super::{MAX_DEPTH, Parsed, actions, batch, cadences, entity_type_of, templates};
use crate::domains::leads::search::LeadQuery;
use crate::domains::{leads, pipelines, tasks};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::events::model as event;
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::jobs::{JobCtx, JobError, NewJob, Next, Periodic, enqueue, model as job};
use jtcrm_kernel::state::AppState;

mod manual;
mod runs;

pub use manual::*;
pub use runs::*;

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
                for l in leads::find_live_across(conn, &tenants, chunk).await? {
                    let key = (l.tenant_id, l.id);
                    out.insert(key, serde_json::to_value(l).unwrap_or_default());
                }
            }
            "task" => {
                for (tenant_id, t) in tasks::find_live_across(conn, &tenants, chunk).await? {
                    out.insert(
                        (tenant_id, t.id),
                        serde_json::to_value(t).unwrap_or_default(),
                    );
                }
            }
            "opportunity" => {
                for (tenant_id, o) in
                    pipelines::opportunities::find_live_across(conn, &tenants, chunk).await?
                {
                    out.insert(
                        (tenant_id, o.id),
                        serde_json::to_value(o).unwrap_or_default(),
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
        let rows = leads::live_keys_across(conn, &tenants, chunk).await?;
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
