//! Runs.

#[allow(unused_imports)]
use super::*;

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
pub(super) fn action_new_job(r: &run::Model, position: usize, at: DateTime<Utc>) -> NewJob {
    NewJob::new(
        actions::ACTION_KIND,
        json!({"run_id": r.id, "position": position}),
    )
    .tenant(r.tenant_id)
    .run_at(at)
    .idempotency_key(action_key(r, position))
}

pub(super) async fn enqueue_action<C: ConnectionTrait>(
    conn: &C,
    r: &run::Model,
    position: usize,
    at: DateTime<Utc>,
) -> AppResult<()> {
    enqueue(conn, action_new_job(r, position, at)).await?;
    Ok(())
}

pub(super) fn new_run_row(r: &NewRun<'_>, now: DateTime<Utc>) -> run::Model {
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

pub(super) async fn set_action<C: ConnectionTrait>(
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
