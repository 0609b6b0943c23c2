//! CRUD.

#[allow(unused_imports)]
use super::*;

/// A live automation of the caller's company, else `404`.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    id: Uuid,
) -> AppResult<automation::Model> {
    automation::Entity::find_by_id((ctx.tenant_id, id))
        .one(conn)
        .await?
        .filter(|a| a.deleted_at.is_none())
        .ok_or_else(AppError::not_found)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AutomationQuery {
    pub active: Option<bool>,
    /// Trigger event type, e.g. `lead.created`.
    pub event: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

/// Newest first.
pub async fn list(
    state: &AppState,
    ctx: &Authorized<Managers>,
    q: AutomationQuery,
) -> AppResult<Page<Automation>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = automation::Entity::find()
        .filter(automation::Column::TenantId.eq(ctx.tenant_id))
        .filter(automation::Column::DeletedAt.is_null());
    if let Some(a) = q.active {
        sel = sel.filter(automation::Column::Active.eq(a));
    }
    if let Some(e) = q.event.as_deref().filter(|e| !e.is_empty()) {
        if e.chars().count() > 60 {
            return Err(AppError::field(
                "event",
                "too_long",
                "Máximo de 60 caracteres",
            ));
        }
        sel = sel.filter(automation::Column::TriggerEvent.eq(e));
    }
    let page = Keyset::desc([automation::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    Ok(page.map(to_dto))
}

pub async fn get(state: &AppState, ctx: &Authorized<Managers>, id: Uuid) -> AppResult<Automation> {
    Ok(to_dto(find(&state.db, ctx, id).await?))
}

pub(super) fn store_json<T: serde::Serialize>(v: &T) -> AppResult<Value> {
    serde_json::to_value(v).map_err(AppError::internal)
}

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Managers>,
    input: AutomationInput,
) -> AppResult<Automation> {
    let txn = state.begin().await?;
    let d = validate_definition(&*txn, state, ctx, input, None).await?;
    quota::reserve(
        &*txn,
        ctx.tenant_id,
        Resource::Automations,
        1,
        ctx.tenant.limits.max_automations,
    )
    .await?;
    let now = Utc::now();
    let m = automation::Entity::insert(automation::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        name: Set(d.name),
        description: Set(d.description),
        active: Set(d.active),
        trigger_event: Set(d.event),
        trigger: Set(store_json(&d.trigger)?),
        conditions: Set(d.conditions.as_ref().map(store_json).transpose()?),
        actions: Set(store_json(&d.actions)?),
        stop_on_error: Set(d.stop_on_error),
        created_by: Set(Some(ctx.user_id)),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    })
    .exec_with_returning(&*txn)
    .await?;
    let dto = to_dto(m);
    let snapshot = store_json(&dto)?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "automation",
            dto.id,
            audit::diff(&json!({}), &snapshot),
        ),
    )
    .await?;
    engine::ensure_scheduled_in(&*txn).await?;
    txn.commit().await?;
    Ok(dto)
}

/// `PUT`: replaces the definition (absent optional fields take their defaults). Runs already
/// started keep going only if they do not reach an action after the change: a changed automation
/// cancels the remaining actions of its running runs.
pub async fn update(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    if_match: Option<i32>,
    input: AutomationInput,
) -> AppResult<Automation> {
    let txn = state.begin().await?;
    let cur = find(&*txn, ctx, id).await?;
    if if_match.is_some_and(|v| v != cur.version) {
        return Err(AppError::stale_version());
    }
    let existing = Parsed::new(cur.clone()).actions;
    let d = validate_definition(&*txn, state, ctx, input, Some(&existing)).await?;
    let before = store_json(&to_dto(cur.clone()))?;
    let version = cur.version;
    let mut am = cur.into_active_model();
    am.name = Set(d.name);
    am.description = Set(d.description);
    am.active = Set(d.active);
    am.trigger_event = Set(d.event);
    am.trigger = Set(store_json(&d.trigger)?);
    am.conditions = Set(d.conditions.as_ref().map(store_json).transpose()?);
    am.actions = Set(store_json(&d.actions)?);
    am.stop_on_error = Set(d.stop_on_error);
    am.updated_at = Set(Utc::now());
    am.version = Set(version + 1);
    let m = crate::domains::optimistic_update::<automation::Entity, _>(
        &*txn,
        am,
        automation::Column::Version,
        version,
    )
    .await?;
    let dto = to_dto(m);
    let after = store_json(&dto)?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "update",
            "automation",
            id,
            audit::diff(&before, &after),
        ),
    )
    .await?;
    engine::ensure_scheduled_in(&*txn).await?;
    txn.commit().await?;
    Ok(dto)
}

/// Soft delete: frees the plan slot; runs in progress skip their remaining actions.
pub async fn delete(state: &AppState, ctx: &Authorized<Managers>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let cur = find(&*txn, ctx, id).await?;
    quota::release(&*txn, ctx.tenant_id, Resource::Automations, 1).await?;
    store::soft_delete::<automation::Entity>(txn, ctx, "automation", cur, |am| {
        am.active = Set(false);
    })
    .await
}
