//! Lead conversion.

#[allow(unused_imports)]
use super::*;

/// Creates a deal from a lead in the pipeline's first open stage and marks the lead `converted`, in
/// one transaction. A lead converts once (`409`).
pub async fn convert_lead(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    lead_id: Uuid,
    req: ConvertLeadRequest,
) -> AppResult<Uncommitted<Opportunity>> {
    let mut v = Validator::new();
    let title_in = v.optional_text("title", req.title.as_deref(), 200);
    let notes = v.optional_text("notes", req.notes.as_deref(), 20_000);
    let term_months = term(&mut v, req.term_months, DEFAULT_TERM_MONTHS);
    let scorer = leads::service::load_scorer(&state.db, ctx).await?;
    let txn = state.begin().await?;
    let lead = leads::service::find_visible(&*txn, ctx, lead_id, false).await?;
    if lead.status == LeadStatus::Converted.as_str() {
        return Err(already_converted(&*txn, ctx, lead_id).await);
    }
    let stage = target_stage(&*txn, ctx.tenant_id, req.pipeline_id, None).await?;
    let lines = resolve_lines(
        &*txn,
        ctx.tenant_id,
        &mut v,
        req.items.as_deref().unwrap_or(&[]),
        &[],
    )
    .await?;
    let amounts = amounts(&mut v, &lines, term_months, req.value_cents, 0);
    v.finish()?;
    let title = title_in.unwrap_or_else(|| {
        lead.company
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| lead.name.clone())
    });
    let owner_id = lead.owner_id.or(Some(ctx.user_id));
    let (m, items) = insert_deal(
        &*txn,
        ctx,
        NewDeal {
            title,
            lead_id: Some(lead_id),
            owner_id,
            stage,
            lost_reason: None,
            expected_close_date: req.expected_close_date,
            probability: None,
            term_months,
            amounts,
            lines,
            notes,
        },
    )
    .await?;
    let mut draft = LeadDraft::from_model(&lead);
    let old_status = draft.status;
    draft.status = LeadStatus::Converted;
    if let Err(e) = leads::service::save_draft(&*txn, ctx, lead, &draft, &scorer).await {
        // A concurrent conversion updated the lead first.
        return Err(if e.code == ErrorCode::PreconditionFailed {
            drop(txn);
            already_converted(&state.db, ctx, lead_id).await
        } else {
            e
        });
    }
    let opp_id = m.id;
    events::emit(
        &*txn,
        emit_event(
            ctx,
            "lead.converted",
            "lead",
            lead_id,
            json!({"before": {"status": old_status.as_str()},
                   "after": {"status": "converted", "opportunity_id": opp_id}}),
        ),
    )
    .await?;
    timeline::record(
        &*txn,
        timeline::NewEntry {
            tenant_id: ctx.tenant_id,
            lead_id: Some(lead_id),
            opportunity_id: Some(opp_id),
            kind: timeline::kinds::LEAD_CONVERTED,
            actor_id: Some(ctx.user_id),
            summary: format!("Lead convertido em oportunidade: {}", m.title),
            data: json!({"opportunity_id": opp_id, "stage_id": m.stage_id, "value_cents": m.value_cents}),
            reference: None,
        },
    )
    .await?;
    let dto = opportunity_dto(m, Some(items));
    let body = serde_json::to_value(&dto).map_err(AppError::internal)?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "opportunity",
            opp_id,
            audit::diff(&json!({}), &body),
        ),
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "convert",
            "lead",
            lead_id,
            json!({
                "status": {"from": old_status.as_str(), "to": "converted"},
                "opportunity_id": {"from": null, "to": opp_id}
            }),
        ),
    )
    .await?;
    Ok(Uncommitted::new(txn, dto))
}

pub(super) async fn already_converted<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    lead_id: Uuid,
) -> AppError {
    let existing: Option<Uuid> = opportunity::Entity::find()
        .select_only()
        .column(opportunity::Column::Id)
        .filter(opportunity::Column::TenantId.eq(ctx.tenant_id))
        .filter(opportunity::Column::LeadId.eq(lead_id))
        .order_by_asc(opportunity::Column::Id)
        .into_tuple()
        .one(conn)
        .await
        .ok()
        .flatten();
    AppError::new(ErrorCode::AlreadyConverted, "Este lead já foi convertido.")
        .with_context(json!({"opportunity_id": existing}))
}
