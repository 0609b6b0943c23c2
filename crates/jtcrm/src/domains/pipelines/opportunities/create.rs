//! Create.

#[allow(unused_imports)]
use super::*;

/// The stage a new deal goes to: `stage_id`, else the first open stage of `pipeline_id`, else of
/// the default pipeline.
pub(super) async fn target_stage<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    pipeline_id: Option<Uuid>,
    stage_id: Option<Uuid>,
) -> AppResult<stage::Model> {
    if let Some(s) = stage_id {
        let st = find_stage_ref(conn, tenant_id, s, "stage_id").await?;
        if let Some(p) = pipeline_id
            && p != st.pipeline_id
        {
            find_pipeline(conn, tenant_id, p)
                .await
                .map_err(|_| not_found_in_body("pipeline_id"))?;
            return Err(AppError::field(
                "stage_id",
                "other_pipeline",
                "A etapa não pertence ao pipeline informado",
            ));
        }
        return Ok(st);
    }
    let p = match pipeline_id {
        Some(p) => find_pipeline(conn, tenant_id, p)
            .await
            .map_err(|_| not_found_in_body("pipeline_id"))?,
        None => default_pipeline(conn, tenant_id).await?.ok_or_else(|| {
            AppError::field(
                "pipeline_id",
                "required",
                "A empresa não tem pipeline: crie um ou informe pipeline_id",
            )
        })?,
    };
    let stages = stages_of(conn, tenant_id, p.id).await?;
    first_open(&stages).cloned().ok_or_else(|| {
        AppError::field(
            "pipeline_id",
            "no_open_stage",
            "O pipeline não tem etapa aberta",
        )
    })
}

pub(super) async fn check_owner<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    owner: Option<Uuid>,
    current: Option<Option<Uuid>>,
) -> AppResult<()> {
    // A new deal belongs to its creator unless a manager says otherwise; an existing one keeps
    // its owner unless a manager changes it.
    let changed = match current {
        None => owner != Some(ctx.user_id),
        Some(cur) => owner != cur,
    };
    if !changed {
        return Ok(());
    }
    if !can_reassign(ctx) {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "Apenas gestores atribuem oportunidades a outros usuários.",
        ));
    }
    users::check_active_owner(conn, ctx.tenant_id, owner).await
}

pub(super) fn parse_status(v: &mut Validator, s: &Option<String>) -> Option<OpportunityStatus> {
    let s = s.as_deref()?;
    let st = OpportunityStatus::parse(s.trim());
    if st.is_none() {
        v.add("status", "invalid_status", "Use open, won ou lost");
    }
    st
}

pub(super) fn status_change_refused() -> AppError {
    AppError::field(
        "status",
        "use_actions",
        "Mude o status por /move, /won, /lost ou /reopen",
    )
}

/// Everything a new deal needs, validated.
pub(super) struct NewDeal {
    pub(super) title: String,
    pub(super) lead_id: Option<Uuid>,
    pub(super) owner_id: Option<Uuid>,
    pub(super) stage: stage::Model,
    pub(super) lost_reason: Option<String>,
    pub(super) expected_close_date: Option<NaiveDate>,
    pub(super) probability: Option<i32>,
    pub(super) term_months: i32,
    pub(super) amounts: Amounts,
    pub(super) lines: Vec<Line>,
    pub(super) notes: Option<String>,
}

/// Inserts a deal at the top of its stage (under the stage's lock) with its lines and its first
/// history entry.
pub(super) async fn insert_deal<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    d: NewDeal,
) -> AppResult<(opportunity::Model, Vec<item::Model>)> {
    let id = Uuid::now_v7();
    let rows = board::lock_stages(conn, ctx.tenant_id, &[d.stage.id]).await?;
    let stage = board::locked(&rows, d.stage.id, "stage_id")?;
    let position = board::place(conn, ctx, stage.id, id, Anchor::Top).await?;
    let d = NewDeal { stage, ..d };
    let status = status_for(stage_kind(&d.stage));
    let now = Utc::now();
    let m = opportunity::Entity::insert(opportunity::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(id),
        pipeline_id: Set(d.stage.pipeline_id),
        stage_id: Set(d.stage.id),
        lead_id: Set(d.lead_id),
        owner_id: Set(d.owner_id),
        title_sort: Set(title_sort(&d.title)),
        title: Set(d.title),
        status: Set(status.as_str().to_string()),
        lost_reason: Set(if status == OpportunityStatus::Lost {
            d.lost_reason
        } else {
            None
        }),
        expected_close_date: Set(d.expected_close_date),
        probability: Set(d.probability.unwrap_or(d.stage.probability)),
        probability_overridden: Set(d.probability.is_some()),
        term_months: Set(d.term_months),
        value_cents: Set(d.amounts.value),
        mrr_cents: Set(d.amounts.mrr),
        setup_cents: Set(d.amounts.setup),
        tcv_cents: Set(d.amounts.tcv),
        position: Set(position),
        notes: Set(d.notes),
        stage_entered_at: Set(now),
        closed_at: Set((status != OpportunityStatus::Open).then_some(now)),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    })
    .exec_with_returning(conn)
    .await?;
    let items = write_lines(conn, ctx.tenant_id, id, &d.lines, false).await?;
    record_history(
        conn,
        ctx,
        &m,
        None,
        None,
        &d.stage,
        StageEvent::Created,
        now,
    )
    .await?;
    Ok((m, items))
}

pub(super) fn title_sort(title: &str) -> String {
    jtcrm_types::br::fold_for_search(title)
        .chars()
        .take(200)
        .collect()
}

pub(super) fn check_lost_reason(
    v: &mut Validator,
    status: OpportunityStatus,
    reason: &Option<String>,
    field: &str,
) {
    match status {
        OpportunityStatus::Lost if reason.is_none() => {
            v.add(field, "required", "Informe o motivo da perda")
        }
        OpportunityStatus::Open | OpportunityStatus::Won if reason.is_some() => v.add(
            field,
            "not_allowed",
            "Motivo de perda só em oportunidades perdidas",
        ),
        _ => {}
    }
}

pub(super) fn term(v: &mut Validator, t: Option<i32>, default: i32) -> i32 {
    match t {
        None => default,
        Some(t) if (1..=money::MAX_TERM_MONTHS).contains(&t) => t,
        Some(_) => {
            v.add("term_months", "out_of_range", "Prazo de 1 a 600 meses");
            default
        }
    }
}

pub(super) fn probability(v: &mut Validator, p: Option<i32>) -> Option<i32> {
    match p {
        Some(p) if !(0..=100).contains(&p) => {
            v.add("probability", "out_of_range", "Probabilidade de 0 a 100");
            None
        }
        other => other,
    }
}

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    input: OpportunityInput,
) -> AppResult<Uncommitted<Opportunity>> {
    let mut v = Validator::new();
    let title = match &input.title {
        Some(Some(t)) => v.required_text("title", Some(t), 200),
        _ => v.required_text("title", None, 200),
    };
    let status_in = parse_status(&mut v, &input.status);
    let lost_reason =
        WriteMode::Create.optional_text(&mut v, "lost_reason", &input.lost_reason, None, 500);
    let notes = WriteMode::Create.optional_text(&mut v, "notes", &input.notes, None, 20_000);
    let prob = probability(&mut v, input.probability.flatten());
    let term_months = term(&mut v, input.term_months, DEFAULT_TERM_MONTHS);
    let owner_id = match input.owner_id {
        None => Some(ctx.user_id),
        Some(o) => o,
    };
    let txn = state.begin().await?;
    let stage = target_stage(&*txn, ctx.tenant_id, input.pipeline_id, input.stage_id).await?;
    let status = status_for(stage_kind(&stage));
    if status_in.is_some_and(|s| s != status) {
        return Err(status_change_refused());
    }
    check_lost_reason(&mut v, status, &lost_reason, "lost_reason");
    let lead_id = input.lead_id.flatten();
    if let Some(l) = lead_id {
        leads::service::find_visible(&*txn, ctx, l, false)
            .await
            .map_err(|_| not_found_in_body("lead_id"))?;
    }
    let lines = resolve_lines(
        &*txn,
        ctx.tenant_id,
        &mut v,
        input.items.as_deref().unwrap_or(&[]),
        &[],
    )
    .await?;
    let amounts = amounts(&mut v, &lines, term_months, input.value_cents, 0);
    v.finish()?;
    let Some(title) = title else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    check_owner(&*txn, ctx, owner_id, None).await?;
    let (m, items) = insert_deal(
        &*txn,
        ctx,
        NewDeal {
            title,
            lead_id,
            owner_id,
            stage,
            lost_reason,
            expected_close_date: input.expected_close_date.flatten(),
            probability: prob,
            term_months,
            amounts,
            lines,
            notes,
        },
    )
    .await?;
    let id = m.id;
    let dto = opportunity_dto(m, Some(items));
    let body = serde_json::to_value(&dto).map_err(AppError::internal)?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "opportunity",
            id,
            audit::diff(&json!({}), &body),
        ),
    )
    .await?;
    Ok(Uncommitted::new(txn, dto))
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Opportunity> {
    let m = find_visible(&state.db, ctx, id, false).await?;
    let items = items_of(&state.db, ctx.tenant_id, id).await?;
    Ok(opportunity_dto(m, Some(items)))
}
