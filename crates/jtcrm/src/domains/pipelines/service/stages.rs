//! Stages of a pipeline: list, create, update (kind, probability, colour), reorder, and delete
//! (moving the stage's deals elsewhere first).

use super::*;

pub async fn list_stages(
    state: &AppState,
    ctx: &TenantCtx,
    pipeline_id: Uuid,
) -> AppResult<Vec<Stage>> {
    find_pipeline(&state.db, ctx.tenant_id, pipeline_id).await?;
    Ok(stages_of(&state.db, ctx.tenant_id, pipeline_id)
        .await?
        .iter()
        .map(stage_dto)
        .collect())
}

/// Writes `order` (stage ids) as positions 0..n.
async fn write_positions<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    stages: &[stage::Model],
    order: &[Uuid],
) -> AppResult<()> {
    let now = Utc::now();
    for (i, id) in order.iter().enumerate() {
        if stages.iter().any(|s| s.id == *id && s.position != i as i32) {
            stage::Entity::update_many()
                .col_expr(stage::Column::Position, Expr::val(i as i32))
                .col_expr(stage::Column::UpdatedAt, Expr::val(now))
                .filter(stage::Column::TenantId.eq(tenant_id))
                .filter(stage::Column::Id.eq(*id))
                .exec(conn)
                .await?;
        }
    }
    Ok(())
}

fn clamp_position(v: &mut Validator, p: Option<i32>, len: usize) -> usize {
    match p {
        None => len,
        Some(p) if p < 0 => {
            v.add("position", "out_of_range", "Posição a partir de 0");
            len
        }
        Some(p) => (p as usize).min(len),
    }
}

pub async fn create_stage(
    state: &AppState,
    ctx: &Authorized<Managers>,
    pipeline_id: Uuid,
    input: StageInput,
) -> AppResult<Stage> {
    let mut v = Validator::new();
    let s = validate_stage(&mut v, "", &input, None);
    let txn = state.begin().await?;
    lock_pipeline(&*txn, ctx.tenant_id, pipeline_id).await?;
    let stages = stages_of(&*txn, ctx.tenant_id, pipeline_id).await?;
    let at = clamp_position(&mut v, input.position, stages.len());
    if stages.len() >= MAX_STAGES {
        v.add(
            "pipeline",
            "too_many_stages",
            "No máximo 30 etapas por pipeline",
        );
    }
    v.finish()?;
    let Some((name, probability, kind, color)) = s else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let now = Utc::now();
    let row = stage::Entity::insert(stage::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        pipeline_id: Set(pipeline_id),
        name: Set(name),
        position: Set(at as i32),
        probability: Set(probability),
        kind: Set(kind.as_str().to_string()),
        color: Set(color),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_with_returning(&*txn)
    .await?;
    let mut order: Vec<Uuid> = stages.iter().map(|s| s.id).collect();
    order.insert(at, row.id);
    write_positions(&*txn, ctx.tenant_id, &stages, &order).await?;
    let dto = stage_dto(&row);
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create_stage",
            "pipeline",
            pipeline_id,
            json!({"stage": serde_json::to_value(&dto).unwrap_or_default()}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Renames, recolours, changes the probability or kind of a stage, or moves it to `position`.
/// A new probability reaches every deal of the stage that does not override it. The kind of a
/// stage that holds deals cannot change (their status would no longer match it).
pub async fn update_stage(
    state: &AppState,
    ctx: &Authorized<Managers>,
    pipeline_id: Uuid,
    stage_id: Uuid,
    input: StageInput,
) -> AppResult<Stage> {
    let txn = state.begin().await?;
    lock_pipeline(&*txn, ctx.tenant_id, pipeline_id).await?;
    let stages = stages_of(&*txn, ctx.tenant_id, pipeline_id).await?;
    let Some(current) = stages.iter().find(|s| s.id == stage_id).cloned() else {
        return Err(AppError::not_found());
    };
    let mut v = Validator::new();
    let s = validate_stage(&mut v, "", &input, Some(&current));
    let at = input
        .position
        .map(|p| clamp_position(&mut v, Some(p), stages.len() - 1));
    v.finish()?;
    let Some((name, probability, kind, color)) = s else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let old_kind = stage_kind(&current);
    if kind != old_kind {
        let n = live_deals_in(&*txn, ctx.tenant_id, opportunity::Column::StageId, stage_id).await?;
        if n > 0 {
            return Err(AppError::new(
                ErrorCode::StageNotEmpty,
                format!("A etapa tem {n} oportunidade(s); mova-as antes de mudar o tipo."),
            )
            .with_context(json!({"field": "kind", "opportunities": n})));
        }
        if old_kind == StageKind::Open
            && stages
                .iter()
                .filter(|s| stage_kind(s) == StageKind::Open)
                .count()
                == 1
        {
            return Err(AppError::field(
                "kind",
                "last_open_stage",
                "O pipeline precisa de ao menos uma etapa aberta",
            ));
        }
    }
    let before = serde_json::to_value(stage_dto(&current)).unwrap_or_default();
    let mut am = current.clone().into_active_model();
    am.name = Set(name);
    am.probability = Set(probability);
    am.kind = Set(kind.as_str().to_string());
    am.color = Set(color);
    am.updated_at = Set(Utc::now());
    let mut updated = am.update(&*txn).await?;
    if probability != current.probability {
        opportunity::Entity::update_many()
            .col_expr(opportunity::Column::Probability, Expr::val(probability))
            .filter(opportunity::Column::TenantId.eq(ctx.tenant_id))
            .filter(opportunity::Column::StageId.eq(stage_id))
            .filter(opportunity::Column::ProbabilityOverridden.eq(false))
            .exec(&*txn)
            .await?;
    }
    if let Some(at) = at {
        let mut order: Vec<Uuid> = stages
            .iter()
            .map(|s| s.id)
            .filter(|i| *i != stage_id)
            .collect();
        order.insert(at, stage_id);
        write_positions(&*txn, ctx.tenant_id, &stages, &order).await?;
        updated.position = at as i32;
    }
    let dto = stage_dto(&updated);
    let after = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "update_stage",
            "pipeline",
            pipeline_id,
            json!({"stage_id": stage_id, "changes": audit::diff(&before, &after)}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Puts the stages in the order given (every stage id of the pipeline, once).
pub async fn reorder_stages(
    state: &AppState,
    ctx: &Authorized<Managers>,
    pipeline_id: Uuid,
    ids: Option<Vec<Uuid>>,
) -> AppResult<Vec<Stage>> {
    let Some(ids) = ids else {
        return Err(AppError::field(
            "stage_ids",
            "required",
            "Campo obrigatório",
        ));
    };
    let txn = state.begin().await?;
    lock_pipeline(&*txn, ctx.tenant_id, pipeline_id).await?;
    let stages = stages_of(&*txn, ctx.tenant_id, pipeline_id).await?;
    if ids.iter().any(|id| !stages.iter().any(|s| s.id == *id)) {
        return Err(not_found_in_body("stage_ids"));
    }
    let mut seen = std::collections::HashSet::new();
    if ids.len() != stages.len() || !ids.iter().all(|id| seen.insert(*id)) {
        return Err(AppError::field(
            "stage_ids",
            "not_a_permutation",
            "Informe cada etapa do pipeline exatamente uma vez",
        ));
    }
    let before: Vec<Uuid> = stages.iter().map(|s| s.id).collect();
    write_positions(&*txn, ctx.tenant_id, &stages, &ids).await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "reorder_stages",
            "pipeline",
            pipeline_id,
            json!({"stage_ids": {"from": before, "to": ids}}),
        ),
    )
    .await?;
    let out = stages_of(&*txn, ctx.tenant_id, pipeline_id).await?;
    txn.commit().await?;
    Ok(out.iter().map(stage_dto).collect())
}

/// Removes a stage. Its deals (if any) go to `move_to`, a stage of the same pipeline and kind,
/// after that stage's cards and in their current order, each with a history entry. The last open
/// stage of a pipeline cannot be removed.
pub async fn delete_stage(
    state: &AppState,
    ctx: &Authorized<Managers>,
    pipeline_id: Uuid,
    stage_id: Uuid,
    move_to: Option<Uuid>,
) -> AppResult<()> {
    let txn = state.begin().await?;
    lock_pipeline(&*txn, ctx.tenant_id, pipeline_id).await?;
    let stages = stages_of(&*txn, ctx.tenant_id, pipeline_id).await?;
    let Some(current) = stages.iter().find(|s| s.id == stage_id).cloned() else {
        return Err(AppError::not_found());
    };
    let kind = stage_kind(&current);
    if kind == StageKind::Open
        && stages
            .iter()
            .filter(|s| stage_kind(s) == StageKind::Open)
            .count()
            == 1
    {
        return Err(AppError::field(
            "stage_id",
            "last_open_stage",
            "O pipeline precisa de ao menos uma etapa aberta",
        ));
    }
    let live = live_deals_in(&*txn, ctx.tenant_id, opportunity::Column::StageId, stage_id).await?;
    let any = opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.eq(ctx.tenant_id))
        .filter(opportunity::Column::StageId.eq(stage_id))
        .count(&*txn)
        .await?;
    let target = match move_to {
        Some(t) => {
            let Some(target) = stages.iter().find(|s| s.id == t).cloned() else {
                // Another pipeline's stage is a 422; a stage that does not exist (for this tenant) a 404.
                find_stage_ref(&*txn, ctx.tenant_id, t, "move_to").await?;
                return Err(AppError::field(
                    "move_to",
                    "other_pipeline",
                    "A etapa de destino deve ser do mesmo pipeline",
                ));
            };
            if target.id == stage_id {
                return Err(AppError::field(
                    "move_to",
                    "same_stage",
                    "A etapa de destino deve ser outra",
                ));
            }
            if stage_kind(&target) != kind {
                return Err(AppError::field(
                    "move_to",
                    "kind_mismatch",
                    "A etapa de destino deve ser do mesmo tipo (aberta, ganha ou perdida)",
                ));
            }
            Some(target)
        }
        // A state conflict, not bad input: the same request succeeds once the stage is empty.
        None if live > 0 => {
            return Err(AppError::conflict(
                ErrorCode::StageNotEmpty,
                format!("A etapa tem {live} oportunidade(s): informe a etapa de destino (move_to)"),
            )
            .with_context(serde_json::json!({"field": "move_to", "opportunities": live})));
        }
        // Only deleted deals remain: they follow the first other stage of the same kind.
        None if any > 0 => stages
            .iter()
            .find(|s| s.id != stage_id && stage_kind(s) == kind)
            .or_else(|| stages.iter().find(|s| s.id != stage_id))
            .cloned(),
        None => None,
    };
    let mut moved = 0u64;
    if let Some(target) = &target
        && any > 0
    {
        board::lock_stages(&*txn, ctx.tenant_id, &[stage_id, target.id]).await?;
        moved = move_all(&*txn, ctx, &current, target).await?;
    }
    stage::Entity::delete_by_id((ctx.tenant_id, stage_id))
        .exec(&*txn)
        .await?;
    let order: Vec<Uuid> = stages
        .iter()
        .map(|s| s.id)
        .filter(|i| *i != stage_id)
        .collect();
    write_positions(&*txn, ctx.tenant_id, &stages, &order).await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "delete_stage", "pipeline", pipeline_id, json!({"stage": stage_dto(&current), "move_to": target.as_ref().map(|t| t.id), "moved": moved})),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Moves every deal of `from` (deleted ones too) after the cards of `to`, keeping their order;
/// writes a history entry for each live one. Returns how many live deals moved.
async fn move_all<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    from: &stage::Model,
    to: &stage::Model,
) -> AppResult<u64> {
    let t = ctx.tenant_id;
    let (from_min, _) = board::bounds(conn, t, from.id, false).await?;
    let (_, to_max) = board::bounds(conn, t, to.id, false).await?;
    let offset = match (from_min, to_max) {
        (Some(fmin), Some(tmax)) => tmax.saturating_add(board::GAP).saturating_sub(fmin),
        _ => 0,
    };
    let now = Utc::now();
    // Live deals first (their history needs the time spent in `from`).
    let live: Vec<(Uuid, chrono::DateTime<Utc>, String)> = opportunity::Entity::find()
        .select_only()
        .column(opportunity::Column::Id)
        .column(opportunity::Column::StageEnteredAt)
        .column(opportunity::Column::Status)
        .filter(opportunity::Column::TenantId.eq(t))
        .filter(opportunity::Column::StageId.eq(from.id))
        .filter(opportunity::Column::DeletedAt.is_null())
        .into_tuple()
        .all(conn)
        .await?;
    opportunity::Entity::update_many()
        .col_expr(opportunity::Column::StageId, Expr::val(to.id))
        .col_expr(
            opportunity::Column::Position,
            Expr::col(opportunity::Column::Position).add(offset),
        )
        .col_expr(opportunity::Column::StageEnteredAt, Expr::val(now))
        .filter(opportunity::Column::TenantId.eq(t))
        .filter(opportunity::Column::StageId.eq(from.id))
        .exec(conn)
        .await?;
    opportunity::Entity::update_many()
        .col_expr(opportunity::Column::Probability, Expr::val(to.probability))
        .filter(opportunity::Column::TenantId.eq(t))
        .filter(opportunity::Column::StageId.eq(to.id))
        .filter(opportunity::Column::ProbabilityOverridden.eq(false))
        .exec(conn)
        .await?;
    for chunk in live.chunks(500) {
        let rows: Vec<history::ActiveModel> = chunk
            .iter()
            .map(|(id, entered, status)| history::ActiveModel {
                tenant_id: Set(t),
                id: Set(Uuid::now_v7()),
                opportunity_id: Set(*id),
                pipeline_id: Set(to.pipeline_id),
                event: Set("stage_changed".into()),
                from_stage_id: Set(Some(from.id)),
                from_stage_name: Set(Some(from.name.clone())),
                to_stage_id: Set(to.id),
                to_stage_name: Set(to.name.clone()),
                from_status: Set(Some(status.clone())),
                to_status: Set(status.clone()),
                lost_reason: Set(None),
                seconds_in_from_stage: Set(Some(Ord::max((now - *entered).num_seconds(), 0))),
                actor_id: Set(Some(ctx.user_id)),
                created_at: Set(now),
            })
            .collect();
        history::Entity::insert_many(rows)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(live.len() as u64)
}
