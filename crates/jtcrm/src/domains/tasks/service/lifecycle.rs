//! A task's lifecycle after creation: complete (with outcome and an optional note), reschedule
//! (with its history) and reopen.

use super::*;

fn already_completed() -> AppError {
    AppError::new(ErrorCode::AlreadyCompleted, "A tarefa já foi concluída.")
}

pub async fn complete(
    state: &AppState,
    ctx: &Authorized<Staff>,
    id: Uuid,
    req: CompleteTaskRequest,
) -> AppResult<Task> {
    let mut v = Validator::new();
    let outcome = v.optional_text("outcome", req.outcome.as_deref(), 2000);
    let notes = v.optional_text("notes", req.notes.as_deref(), 20_000);
    v.finish()?;
    let txn = state.begin().await?;
    let cur = find_visible(&*txn, ctx, id).await?;
    can_act(ctx, &cur)?;
    if cur.status == TaskStatus::Completed.as_str() {
        return Err(already_completed());
    }
    if cur.status != TaskStatus::Pending.as_str() {
        return Err(AppError::new(
            ErrorCode::InvalidStateTransition,
            "A tarefa está cancelada; reabra-a para concluir.",
        )
        .with_context(json!({"status": cur.status})));
    }
    let now = Utc::now();
    let version = cur.version;
    let task_type = TaskType::parse(&cur.task_type).unwrap_or(TaskType::Other);
    let mut m = cur.into_active_model();
    m.status = Set(TaskStatus::Completed.as_str().into());
    m.completed_at = Set(Some(now));
    m.completed_by = Set(Some(ctx.user_id));
    m.outcome = Set(outcome.clone());
    m.updated_at = Set(now);
    m.version = Set(version + 1);
    // The version check makes a concurrent second completion fail instead of completing twice.
    let done = crate::domains::optimistic_update::<task::Entity, _>(
        &*txn,
        m,
        task::Column::Version,
        version,
    )
    .await
    .map_err(|e| {
        if e.code == ErrorCode::PreconditionFailed {
            already_completed()
        } else {
            e
        }
    })?;
    if task_type.is_contact()
        && let Some(lead_id) = done.lead_id
    {
        leads::touch_contacted(&*txn, ctx.tenant_id, lead_id, now).await?;
    }
    let summary = match &outcome {
        Some(o) => format!("Tarefa concluída: {} — {}", short(&done.title), short(o)),
        None => format!("Tarefa concluída: {}", short(&done.title)),
    };
    entry(&*txn, ctx, &done, kinds::TASK_COMPLETED, summary).await?;
    if let Some(n) = notes
        && (done.lead_id.is_some() || done.opportunity_id.is_some())
    {
        crate::domains::timeline::notes::insert(&*txn, ctx, done.lead_id, done.opportunity_id, &n)
            .await?;
    }
    emit(
        &*txn,
        ctx,
        &done,
        "task.completed",
        json!({"after": {"status": "completed", "outcome": outcome}}),
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "complete",
            "task",
            id,
            json!({"status": {"from": "pending", "to": "completed"}}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(to_dto(done))
}

pub async fn reschedule(
    state: &AppState,
    ctx: &Authorized<Staff>,
    id: Uuid,
    req: RescheduleRequest,
) -> AppResult<Task> {
    let mut v = Validator::new();
    let reason = v.optional_text("reason", req.reason.as_deref(), 500);
    if req.due_at.is_none() {
        v.add("due_at", "required", "Campo obrigatório");
    }
    v.finish()?;
    let Some(to) = req.due_at else {
        return Err(AppError::bad_request("due_at"));
    };
    let txn = state.begin().await?;
    let cur = find_visible(&*txn, ctx, id).await?;
    can_act(ctx, &cur)?;
    if cur.status != TaskStatus::Pending.as_str() {
        return Err(AppError::new(
            ErrorCode::InvalidStateTransition,
            "Só tarefas pendentes podem ser reagendadas.",
        )
        .with_context(json!({"status": cur.status})));
    }
    let from = cur.due_at;
    let now = Utc::now();
    reschedule::Entity::insert(reschedule::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        task_id: Set(id),
        from_due_at: Set(from),
        to_due_at: Set(to),
        reason: Set(reason.clone()),
        by_user: Set(Some(ctx.user_id)),
        created_at: Set(now),
    })
    .exec_without_returning(&*txn)
    .await?;
    let version = cur.version;
    let count = cur.reschedule_count;
    let remind_shift = cur.remind_at.zip(from).map(|(r, f)| to - (f - r));
    let mut m = cur.into_active_model();
    m.due_at = Set(Some(to));
    m.due_sort = Set(to);
    // A reminder keeps its distance to the due time.
    m.remind_at = Set(remind_shift);
    m.reminded_at = Set(None);
    m.overdue_emitted_at = Set(None);
    m.reschedule_count = Set(count + 1);
    m.updated_at = Set(now);
    m.version = Set(version + 1);
    let done = crate::domains::optimistic_update::<task::Entity, _>(
        &*txn,
        m,
        task::Column::Version,
        version,
    )
    .await?;
    let summary = format!(
        "Tarefa reagendada: {} para {}",
        short(&done.title),
        to.format("%d/%m/%Y %H:%M UTC")
    );
    entry(&*txn, ctx, &done, kinds::TASK_RESCHEDULED, summary).await?;
    emit(
        &*txn,
        ctx,
        &done,
        "task.rescheduled",
        json!({"before": {"due_at": from}, "after": {"due_at": to}, "reason": reason}),
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "reschedule",
            "task",
            id,
            json!({"due_at": {"from": from, "to": to}}),
        ),
    )
    .await?;
    txn.commit().await?;
    get(state, ctx, id).await
}

pub async fn reopen(state: &AppState, ctx: &Authorized<Staff>, id: Uuid) -> AppResult<Task> {
    let txn = state.begin().await?;
    let cur = find_visible(&*txn, ctx, id).await?;
    can_act(ctx, &cur)?;
    if cur.status == TaskStatus::Pending.as_str() {
        return Err(AppError::new(
            ErrorCode::InvalidStateTransition,
            "A tarefa já está pendente.",
        )
        .with_context(json!({"status": cur.status})));
    }
    let from = cur.status.clone();
    let version = cur.version;
    let mut m = cur.into_active_model();
    m.status = Set(TaskStatus::Pending.as_str().into());
    m.completed_at = Set(None);
    m.completed_by = Set(None);
    m.overdue_emitted_at = Set(None);
    m.updated_at = Set(Utc::now());
    m.version = Set(version + 1);
    let done = crate::domains::optimistic_update::<task::Entity, _>(
        &*txn,
        m,
        task::Column::Version,
        version,
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "reopen",
            "task",
            id,
            json!({"status": {"from": from, "to": "pending"}}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(to_dto(done))
}
