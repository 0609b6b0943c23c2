//! Update.

#[allow(unused_imports)]
use super::*;

pub async fn update(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    id: Uuid,
    if_match: Option<i32>,
    input: OpportunityInput,
    mode: WriteMode,
) -> AppResult<Opportunity> {
    let txn = state.begin().await?;
    let mut current = find_visible(&*txn, ctx, id, false).await?;
    if if_match.is_some_and(|v| v != current.version) {
        return Err(AppError::stale_version());
    }
    // A new stage or pipeline is a move: take the stage locks first, then re-read the deal.
    let target = match (input.stage_id, input.pipeline_id) {
        (Some(s), p) if s != current.stage_id || p.is_some_and(|p| p != current.pipeline_id) => {
            Some(target_stage(&*txn, ctx.tenant_id, p, Some(s)).await?)
        }
        (None, Some(p)) if p != current.pipeline_id => {
            Some(target_stage(&*txn, ctx.tenant_id, Some(p), None).await?)
        }
        _ => None,
    };
    let target = match target {
        Some(t) => {
            let rows = board::lock_stages(&*txn, ctx.tenant_id, &[current.stage_id, t.id]).await?;
            current = find_visible(&*txn, ctx, id, true).await?;
            if if_match.is_some_and(|v| v != current.version) {
                return Err(AppError::stale_version());
            }
            Some(board::locked(&rows, t.id, "stage_id")?)
        }
        None => None,
    };
    let from_stage =
        super::super::service::find_stage(&*txn, ctx.tenant_id, current.stage_id).await?;
    let to_stage = target.clone().unwrap_or_else(|| from_stage.clone());
    let existing = items_of(&*txn, ctx.tenant_id, id).await?;
    let before = serde_json::to_value(opportunity_dto(current.clone(), Some(existing.clone())))
        .unwrap_or_default();

    let mut v = Validator::new();
    let title = match (&input.title, mode) {
        (None, WriteMode::Patch) => Some(current.title.clone()),
        (Some(Some(t)), _) => v.required_text("title", Some(t), 200),
        _ => v.required_text("title", None, 200),
    };
    let cur_status = OpportunityStatus::parse(&current.status).unwrap_or(OpportunityStatus::Open);
    let status = if target.is_some() {
        status_for(stage_kind(&to_stage))
    } else {
        cur_status
    };
    if parse_status(&mut v, &input.status).is_some_and(|s| s != status) {
        return Err(status_change_refused());
    }
    // A deal that stays lost keeps its reason unless one is sent.
    let lost_reason = match &input.lost_reason {
        None if status == OpportunityStatus::Lost && cur_status == OpportunityStatus::Lost => {
            current.lost_reason.clone()
        }
        None | Some(None) => None,
        Some(Some(s)) => v.optional_text("lost_reason", Some(s), 500),
    };
    check_lost_reason(&mut v, status, &lost_reason, "lost_reason");
    let notes = mode.optional_text(
        &mut v,
        "notes",
        &input.notes,
        current.notes.as_ref(),
        20_000,
    );
    let lead_id = match input.lead_id {
        None if mode == WriteMode::Patch => current.lead_id,
        None => None,
        Some(l) => l,
    };
    if let Some(l) = lead_id
        && Some(l) != current.lead_id
    {
        leads::service::find_visible(&*txn, ctx, l, false)
            .await
            .map_err(|_| not_found_in_body("lead_id"))?;
    }
    let owner_id = match input.owner_id {
        None => current.owner_id,
        Some(o) => o,
    };
    let expected_close_date = match input.expected_close_date {
        None if mode == WriteMode::Patch => current.expected_close_date,
        None => None,
        Some(d) => d,
    };
    // Probability: an explicit value overrides the stage's, unless it merely echoes the current,
    // stage-given one (a fetched deal sent back).
    let prob_override = match input.probability {
        None if mode == WriteMode::Patch => current
            .probability_overridden
            .then_some(current.probability),
        None | Some(None) => None,
        Some(Some(p)) => probability(&mut v, Some(p))
            .filter(|p| current.probability_overridden || *p != current.probability),
    };
    let term_months = term(&mut v, input.term_months, current.term_months);
    let lines = match (&input.items, mode) {
        (Some(list), _) => resolve_lines(&*txn, ctx.tenant_id, &mut v, list, &existing).await?,
        (None, WriteMode::Patch) => existing.iter().map(Line::from_model).collect(),
        (None, _) => vec![],
    };
    let value_default = if existing.is_empty() {
        current.value_cents
    } else {
        0
    };
    let amounts = amounts(
        &mut v,
        &lines,
        term_months,
        input.value_cents,
        value_default,
    );
    v.finish()?;
    let Some(title) = title else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    check_owner(&*txn, ctx, owner_id, Some(current.owner_id)).await?;

    let now = Utc::now();
    let stage_changed = to_stage.id != current.stage_id;
    let position = if stage_changed {
        board::place(&*txn, ctx, to_stage.id, id, Anchor::Top).await?
    } else {
        current.position
    };
    let version = current.version;
    let from_entered = current.stage_entered_at;
    let mut am = current.clone().into_active_model();
    am.title_sort = Set(title_sort(&title));
    am.title = Set(title);
    am.lead_id = Set(lead_id);
    am.owner_id = Set(owner_id);
    am.pipeline_id = Set(to_stage.pipeline_id);
    am.stage_id = Set(to_stage.id);
    am.position = Set(position);
    am.status = Set(status.as_str().to_string());
    am.lost_reason = Set(lost_reason);
    am.expected_close_date = Set(expected_close_date);
    am.probability = Set(prob_override.unwrap_or(to_stage.probability));
    am.probability_overridden = Set(prob_override.is_some());
    am.term_months = Set(term_months);
    am.value_cents = Set(amounts.value);
    am.mrr_cents = Set(amounts.mrr);
    am.setup_cents = Set(amounts.setup);
    am.tcv_cents = Set(amounts.tcv);
    am.notes = Set(notes);
    if stage_changed {
        am.stage_entered_at = Set(now);
    }
    if status != cur_status {
        am.closed_at = Set((status != OpportunityStatus::Open).then_some(now));
    }
    am.updated_at = Set(now);
    am.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<opportunity::Entity, _>(
        &*txn,
        am,
        opportunity::Column::Version,
        version,
    )
    .await?;
    let items = if input.items.is_some() || mode == WriteMode::Replace {
        write_lines(&*txn, ctx.tenant_id, id, &lines, true).await?
    } else {
        existing
    };
    if stage_changed || status != cur_status {
        record_history(
            &*txn,
            ctx,
            &updated,
            Some((&from_stage, from_entered)),
            Some(cur_status.as_str()),
            &to_stage,
            event_for(cur_status, status),
            now,
        )
        .await?;
    }
    let dto = opportunity_dto(updated, Some(items));
    let after = serde_json::to_value(&dto).unwrap_or_default();
    let changes = audit::diff(&before, &after);
    emit_updated(&*txn, ctx, id, &changes).await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "update", "opportunity", id, changes),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// `opportunity.updated` with the changed fields, except those a stage or status event reports.
pub(super) async fn emit_updated<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    id: Uuid,
    changes: &Value,
) -> AppResult<()> {
    const OWN_EVENTS: &[&str] = &[
        "stage_id",
        "pipeline_id",
        "status",
        "lost_reason",
        "position",
        "stage_entered_at",
        "closed_at",
    ];
    let (mut before, mut after) = (serde_json::Map::new(), serde_json::Map::new());
    if let Value::Object(m) = changes {
        for (k, v) in m.iter().filter(|(k, _)| !OWN_EVENTS.contains(&k.as_str())) {
            before.insert(k.clone(), v.get("from").cloned().unwrap_or(Value::Null));
            after.insert(k.clone(), v.get("to").cloned().unwrap_or(Value::Null));
        }
    }
    if after.is_empty() {
        return Ok(());
    }
    events::emit(
        conn,
        emit_event(
            ctx,
            "opportunity.updated",
            "opportunity",
            id,
            json!({"before": before, "after": after}),
        ),
    )
    .await?;
    Ok(())
}

pub(super) fn event_for(from: OpportunityStatus, to: OpportunityStatus) -> StageEvent {
    if from == to {
        return StageEvent::StageChanged;
    }
    match to {
        OpportunityStatus::Won => StageEvent::Won,
        OpportunityStatus::Lost => StageEvent::Lost,
        OpportunityStatus::Open => StageEvent::Reopened,
    }
}

/// Soft delete: the deal leaves lists and the board; its history stays.
pub async fn delete(state: &AppState, ctx: &Authorized<Sellers>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id, false).await?;
    store::soft_delete::<opportunity::Entity>(txn, ctx, "opportunity", current, |_| {}).await
}
