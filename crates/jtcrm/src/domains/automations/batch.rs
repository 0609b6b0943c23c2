//! `automations.action_batch`: the `create_task` actions of many runs in one job and one
//! transaction.
//!
//! One job per action costs a claim, a handful of reads, two transactions and a completion per
//! action, which capped the engine near 200 actions/s (bench/RESULTS.md). When the dispatcher (or a
//! manual `execute`) starts runs whose first action is an immediate `create_task` on a lead, it
//! queues one batch job per tenant and up to [`MAX_BATCH`] runs instead. The batch job locks the
//! actions still `queued` (`FOR UPDATE`, so a second delivery of the job finds nothing to do),
//! creates all the tasks with their events, timeline and audit entries in multi-row INSERTs
//! (`tasks::service::create_many_in`), records every result and closes the finished runs — all in
//! one transaction: a task exists exactly when its action is recorded as succeeded.
//!
//! Whatever the batch cannot do as a whole — an action whose lead is gone, an inactive assignee, a
//! changed automation, a failure of the batch transaction — goes to the ordinary per-action job
//! (`automations.action`), which records the failure, retries or cancels exactly as before.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::Utc;
use jtcrm_types::dto::automations::{ActionStatus, AssigneeMode, AutomationAction};
use jtcrm_types::dto::tasks::TaskInput;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::actions;
use super::business_hours::{self, Hours};
use super::engine::{action_job, finalize_many, schedule_from};
use super::model::{automation, run, run_action};
use super::{Parsed, actor_ctx};
use crate::domains::{leads, tasks};
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::Staff;
use jtcrm_kernel::jobs::{JobCtx, JobError, NewJob, model as job};
use jtcrm_kernel::state::AppState;
use jtcrm_types::dto::leads::Lead;

pub const BATCH_KIND: &str = "automations.action_batch";
/// Most runs in one batch job.
pub const MAX_BATCH: usize = 200;

#[derive(Serialize, Deserialize)]
struct Item {
    run_id: Uuid,
    position: usize,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    items: Vec<Item>,
}

/// Whether action `a` of a run on an `entity_type` may go in a batch: a `create_task` on a lead
/// whose assignee needs no round-robin turn and whose texts need no `owner`/`company` lookups.
pub fn batchable(entity_type: &str, a: &AutomationAction) -> bool {
    entity_type == "lead"
        && matches!(a, AutomationAction::CreateTask { assignee, .. }
            if !matches!(assignee, Some(AssigneeMode::RoundRobin)))
        && !actions::uses_people(a)
}

/// The batch job for `items` (`(run id, position)` of runs of one tenant), due now.
pub fn batch_job(tenant_id: Uuid, items: &[(Uuid, usize)]) -> AppResult<job::ActiveModel> {
    let payload = Payload {
        items: items
            .iter()
            .map(|&(run_id, position)| Item { run_id, position })
            .collect(),
    };
    let mut job = NewJob::new(
        BATCH_KIND,
        serde_json::to_value(payload).unwrap_or_default(),
    )
    .tenant(tenant_id);
    if let Some((r, p)) = items.first() {
        job = job.idempotency_key(format!("{BATCH_KIND}:{r}:{p}"));
    }
    job.row()
}

/// Handler of `automations.action_batch`.
pub async fn run(state: AppState, job: JobCtx) -> Result<(), JobError> {
    let tenant_id = job
        .tenant_id
        .ok_or_else(|| JobError::permanent("automations.action_batch sem tenant_id"))?;
    let p: Payload = serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::permanent(format!("payload inválido: {e}")))?;
    if p.items.is_empty() {
        return Ok(());
    }
    match execute(&state, tenant_id, &p.items, job.attempt).await {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::warn!(%tenant_id, error = %e, source = ?e.source,
                "lote de ações não executado em conjunto; cada ação segue em seu próprio job");
            split(&state, tenant_id, &p.items).await?;
            Ok(())
        }
    }
}

/// Queues the ordinary per-action job of every item still queued.
async fn split(state: &AppState, tenant_id: Uuid, items: &[Item]) -> AppResult<()> {
    let run_ids: Vec<Uuid> = items.iter().map(|i| i.run_id).collect();
    let runs = load_runs(&state.db, tenant_id, &run_ids).await?;
    let tx = state.begin().await?;
    let queued = queued_actions(&*tx, tenant_id, items, false).await?;
    let jobs: Vec<job::ActiveModel> = items
        .iter()
        .filter(|i| queued.contains_key(&(i.run_id, i.position as i32)))
        .filter_map(|i| {
            runs.get(&i.run_id)
                .map(|r| action_job(r, i.position, Utc::now()))
        })
        .collect::<AppResult<_>>()?;
    insert_jobs(&*tx, jobs).await?;
    tx.commit().await?;
    jtcrm_kernel::jobs::wake_workers();
    Ok(())
}

async fn insert_jobs<C: ConnectionTrait>(conn: &C, jobs: Vec<job::ActiveModel>) -> AppResult<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    job::Entity::insert_many(jobs)
        .on_conflict_do_nothing_on([job::Column::IdempotencyKey])
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

async fn load_runs<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, run::Model>> {
    Ok(run::Entity::find()
        .filter(run::Column::TenantId.eq(tenant_id))
        .filter(run::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect())
}

/// The items' action rows still `queued`, by `(run, position)`. With `lock`, the rows are locked
/// (`FOR UPDATE`) until the caller's transaction ends: on PostgreSQL a concurrent delivery of the
/// same batch waits on them and then, re-checking `status`, finds them recorded; SQLite
/// serialises the two write transactions.
async fn queued_actions<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    items: &[Item],
    lock: bool,
) -> AppResult<HashMap<(Uuid, i32), run_action::Model>> {
    let runs: BTreeSet<Uuid> = items.iter().map(|i| i.run_id).collect();
    let wanted: HashSet<(Uuid, i32)> = items
        .iter()
        .map(|i| (i.run_id, i.position as i32))
        .collect();
    let mut q = run_action::Entity::find()
        .filter(run_action::Column::TenantId.eq(tenant_id))
        .filter(run_action::Column::RunId.is_in(runs))
        // No `position IN (…)`: PostgreSQL then ranges on (tenant, position) and filters the run
        // ids over every action of the tenant; the pairs are matched below.
        .filter(run_action::Column::Status.eq(ActionStatus::Queued.as_str()));
    if lock {
        q = q.lock_exclusive();
    }
    let rows = q.all(conn).await?;
    Ok(rows
        .into_iter()
        .filter(|r| wanted.contains(&(r.run_id, r.position)))
        .map(|r| ((r.run_id, r.position), r))
        .collect())
}

/// One action of the batch, ready to run.
struct Ready<'a> {
    run: &'a run::Model,
    auto: &'a Parsed,
    position: usize,
    row: run_action::Model,
}

/// A batched action with the task it creates and the cause its event and audit entry carry.
type Planned<'a> = (Ready<'a>, (TaskInput, Map<String, Value>));

async fn execute(state: &AppState, tenant_id: Uuid, items: &[Item], attempt: i32) -> AppResult<()> {
    let run_ids: Vec<Uuid> = items.iter().map(|i| i.run_id).collect();
    let runs = load_runs(&state.db, tenant_id, &run_ids).await?;
    let auto_ids: BTreeSet<Uuid> = runs.values().map(|r| r.automation_id).collect();
    let autos: HashMap<Uuid, Parsed> = automation::Entity::find()
        .filter(automation::Column::TenantId.eq(tenant_id))
        .filter(automation::Column::Id.is_in(auto_ids))
        .all(&state.db)
        .await?
        .into_iter()
        .filter(|a| a.deleted_at.is_none() && a.active)
        .map(|a| (a.id, Parsed::new(a)))
        .collect();
    // The actor of each automation (its author while active, else an admin), as the per-action
    // job resolves it.
    let mut actors: HashMap<Option<Uuid>, TenantCtx> = HashMap::new();
    for a in autos.values() {
        if let std::collections::hash_map::Entry::Vacant(e) = actors.entry(a.model.created_by) {
            e.insert(actor_ctx(state, tenant_id, &[a.model.created_by]).await?);
        }
    }
    let tenant_tz = actors
        .values()
        .next()
        .map(|c| c.tenant.settings.timezone.clone())
        .unwrap_or_default();
    let hours = if autos.values().any(|a| actions::wants_hours(&a.actions, 0)) {
        business_hours::load(&state.db, tenant_id, &tenant_tz).await?
    } else {
        Hours::default_in(chrono_tz::America::Sao_Paulo)
    };

    let tx = state.begin().await?;
    let mut claimed = queued_actions(&*tx, tenant_id, items, true).await?;
    let mut ready: Vec<Ready<'_>> = vec![];
    let mut single: Vec<(&run::Model, usize)> = vec![];
    for it in items {
        let Some(row) = claimed.remove(&(it.run_id, it.position as i32)) else {
            continue; // recorded by an earlier delivery
        };
        let Some(r) = runs.get(&it.run_id).filter(|r| r.status == "running") else {
            continue;
        };
        match autos
            .get(&r.automation_id)
            .filter(|a| a.model.version == r.automation_version)
        {
            Some(a)
                if a.actions
                    .get(it.position)
                    .is_some_and(|act| batchable(&r.entity_type, act)) =>
            {
                ready.push(Ready {
                    run: r,
                    auto: a,
                    position: it.position,
                    row,
                });
            }
            _ => single.push((r, it.position)),
        }
    }
    let lead_ids: BTreeSet<Uuid> = ready.iter().map(|x| x.run.entity_id).collect();
    let leads: HashMap<Uuid, Lead> = leads::find_live_many(&*tx, tenant_id, lead_ids)
        .await?
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    // Per actor: the tasks to create, and the actions they record.
    let mut plans: HashMap<Option<Uuid>, Vec<Planned<'_>>> = HashMap::new();
    let mut assignees: Vec<Uuid> = vec![];
    for x in ready {
        let Some(
            action @ AutomationAction::CreateTask {
                assignee, user_id, ..
            },
        ) = x.auto.actions.get(x.position)
        else {
            single.push((x.run, x.position));
            continue;
        };
        let (Some(l), Some(ctx)) = (
            leads.get(&x.run.entity_id),
            actors.get(&x.auto.model.created_by),
        ) else {
            single.push((x.run, x.position));
            continue;
        };
        let assignee_id = match assignee.unwrap_or(AssigneeMode::Owner) {
            AssigneeMode::Owner => l.owner_id.unwrap_or(ctx.user_id),
            AssigneeMode::User => match user_id {
                Some(u) => *u,
                None => {
                    single.push((x.run, x.position));
                    continue;
                }
            },
            AssigneeMode::RoundRobin => {
                single.push((x.run, x.position));
                continue;
            }
        };
        let template = actions::lead_template(l, (x.auto.model.id, &x.auto.model.name));
        let Some(input) = actions::task_input(
            action,
            &template,
            &hours,
            &x.auto.model.name,
            assignee_id,
            l.id,
        ) else {
            single.push((x.run, x.position));
            continue;
        };
        let cause = actions::cause_of(x.run, x.position);
        assignees.push(assignee_id);
        plans
            .entry(x.auto.model.created_by)
            .or_default()
            .push((x, (input, cause)));
    }
    // Inactive assignees make the whole group fail in `create_many_in`: send their actions to the
    // per-action job, which records the failure.
    assignees.sort();
    assignees.dedup();
    let active = crate::domains::users::active_users_among(&*tx, tenant_id, &assignees).await?;
    let now = Utc::now();
    let mut results: Vec<run_action::ActiveModel> = vec![];
    let mut done_runs: Vec<(&run::Model, &Parsed, usize)> = vec![];
    for (actor, group) in plans {
        let ctx = &actors[&actor];
        let (ok, rest): (Vec<_>, Vec<_>) = group
            .into_iter()
            .partition(|(_, (input, _))| input.assignee_id.is_some_and(|a| active.contains(&a)));
        single.extend(rest.iter().map(|(x, _)| (x.run, x.position)));
        if ok.is_empty() {
            continue;
        }
        let (readies, inputs): (Vec<_>, Vec<_>) = ok.into_iter().unzip();
        let created = tasks::service::create_many_in(&*tx, &ctx.grant::<Staff>()?, inputs).await?;
        for (x, t) in readies.into_iter().zip(created) {
            let mut am = x.row.clone().into_active_model();
            am.status = Set(ActionStatus::Succeeded.as_str().into());
            am.result = Set(Some(
                json!({"task_id": t.id, "assignee_id": t.assignee_id, "due_at": t.due_at}),
            ));
            am.error = Set(None);
            am.attempts = Set(attempt);
            am.started_at = Set(Some(now));
            am.finished_at = Set(Some(now));
            results.push(am);
            done_runs.push((x.run, x.auto, x.position));
        }
    }
    record_results(&*tx, results).await?;
    // Runs with nothing after this action close in one statement; the others go on as usual.
    let mut closing: Vec<Uuid> = vec![];
    for (r, a, pos) in &done_runs {
        metrics::counter!("jtcrm_automation_actions_total", "outcome" => "succeeded").increment(1);
        if pos + 1 >= a.actions.len() {
            closing.push(r.id);
        } else {
            schedule_from(&*tx, &hours, r, &a.actions, pos + 1, now).await?;
        }
    }
    finalize_many(&*tx, tenant_id, &closing).await?;
    let jobs: Vec<job::ActiveModel> = single
        .iter()
        .map(|(r, pos)| action_job(r, *pos, now))
        .collect::<AppResult<_>>()?;
    let any_single = !jobs.is_empty();
    insert_jobs(&*tx, jobs).await?;
    tx.commit().await?;
    if any_single {
        jtcrm_kernel::jobs::wake_workers();
    }
    Ok(())
}

/// Writes the action rows' results (an upsert on their primary key: one statement per chunk).
async fn record_results<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<run_action::ActiveModel>,
) -> AppResult<()> {
    for chunk in rows.chunks(500) {
        run_action::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    run_action::Column::TenantId,
                    run_action::Column::RunId,
                    run_action::Column::Position,
                ])
                .update_columns([
                    run_action::Column::Status,
                    run_action::Column::Result,
                    run_action::Column::Error,
                    run_action::Column::Attempts,
                    run_action::Column::StartedAt,
                    run_action::Column::FinishedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}
