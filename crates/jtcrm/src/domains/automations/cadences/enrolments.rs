//! Enrolments.

#[allow(unused_imports)]
use super::*;

pub(super) fn step_key(enrollment_id: Uuid, step: i32) -> String {
    format!("cadence:{enrollment_id}:{step}")
}

pub(super) async fn enqueue_step<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    enrollment_id: Uuid,
    step: i32,
    at: DateTime<Utc>,
    key: String,
) -> AppResult<()> {
    enqueue(
        conn,
        NewJob::new(
            STEP_KIND,
            json!({"enrollment_id": enrollment_id, "step": step}),
        )
        .tenant(tenant_id)
        .run_at(at)
        .idempotency_key(key),
    )
    .await?;
    Ok(())
}

/// Inserts an active enrolment and schedules its first step; `None` if the lead already has an
/// active enrolment in this cadence (the unique index decides, so concurrent enrolments cannot both
/// win).
pub(super) async fn insert_enrollment<C: ConnectionTrait>(
    conn: &C,
    c: &cadence::Model,
    steps: &[CadenceStep],
    hours: &Hours,
    lead_id: Uuid,
    depth: i32,
    enrolled_by: Option<Uuid>,
) -> AppResult<Option<enrollment::Model>> {
    let now = Utc::now();
    let next = hours.schedule(now, steps.first().and_then(|s| s.delay.as_ref()));
    let m = enrollment::Model {
        tenant_id: c.tenant_id,
        id: Uuid::now_v7(),
        cadence_id: c.id,
        lead_id,
        active_lead_id: Some(lead_id),
        status: EnrollmentStatus::Active.as_str().into(),
        current_step: 0,
        next_run_at: Some(next),
        exit_reason: None,
        history: json!([]),
        depth,
        enrolled_by,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    let res = enrollment::Entity::insert(m.clone().into_active_model())
        .on_conflict_do_nothing_on([
            enrollment::Column::TenantId,
            enrollment::Column::CadenceId,
            enrollment::Column::ActiveLeadId,
        ])
        .exec_without_returning(conn)
        .await?;
    if !matches!(res, TryInsertResult::Inserted(n) if n > 0) {
        return Ok(None);
    }
    enqueue_step(conn, c.tenant_id, m.id, 0, next, step_key(m.id, 0)).await?;
    Ok(Some(m))
}

pub(super) async fn usable_cadence<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<cadence::Model> {
    let c = find(conn, tenant_id, id).await?;
    if !c.active {
        return Err(AppError::new(
            ErrorCode::CadenceInactive,
            "A cadência está inativa e não aceita novas inscrições.",
        ));
    }
    Ok(c)
}

/// Enrols one lead (the `enroll_in_cadence` action). `None` when it is already enrolled.
pub async fn enroll_one<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    ctx: &TenantCtx,
    cadence_id: Uuid,
    lead_id: Uuid,
    depth: i32,
) -> AppResult<Option<Uuid>> {
    let c = usable_cadence(conn, ctx.tenant_id, cadence_id).await?;
    let existing = enrollment::Entity::find()
        .filter(enrollment::Column::TenantId.eq(ctx.tenant_id))
        .filter(enrollment::Column::CadenceId.eq(cadence_id))
        .filter(enrollment::Column::ActiveLeadId.eq(lead_id))
        .one(conn)
        .await?;
    if existing.is_some() {
        return Ok(None);
    }
    let hours =
        business_hours::load(&state.db, ctx.tenant_id, &ctx.tenant.settings.timezone).await?;
    let steps = parse_steps(&c.steps);
    Ok(
        insert_enrollment(conn, &c, &steps, &hours, lead_id, depth, Some(ctx.user_id))
            .await?
            .map(|e| e.id),
    )
}

pub(super) fn unique(ids: &[Uuid]) -> Vec<Uuid> {
    super::super::unique_ids(ids)
}

/// The leads of `ids` the caller may see, or `422 lead_ids` naming the others.
pub(super) async fn visible_leads<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    ids: &[Uuid],
) -> AppResult<Vec<Uuid>> {
    let found = leads::find_live_many(conn, ctx.tenant_id, ids.iter().copied()).await?;
    let ok: Vec<Uuid> = found
        .iter()
        .filter(|l| visibility::visible_to(ctx, l.owner_id))
        .map(|l| l.id)
        .collect();
    let missing: Vec<Uuid> = ids.iter().copied().filter(|i| !ok.contains(i)).collect();
    if !missing.is_empty() {
        return Err(
            AppError::field("lead_ids", "unknown_lead", "Lead inexistente")
                .with_context(json!({"lead_ids": missing})),
        );
    }
    Ok(ok)
}

pub(super) fn lead_ids(req: LeadIdsRequest) -> AppResult<Vec<Uuid>> {
    let ids = unique(&req.lead_ids.unwrap_or_default());
    if ids.is_empty() {
        return Err(AppError::field(
            "lead_ids",
            "required",
            "Informe ao menos um lead",
        ));
    }
    if ids.len() > MAX_LEADS_PER_CALL {
        return Err(AppError::field(
            "lead_ids",
            "too_many",
            &format!("No máximo {MAX_LEADS_PER_CALL} leads por chamada"),
        ));
    }
    Ok(ids)
}

/// `POST …/cadences/{id}/enroll`: all or nothing. A lead already active in the cadence → `409`.
pub async fn enroll(
    state: &AppState,
    ctx: &Authorized<Staff>,
    id: Uuid,
    req: LeadIdsRequest,
) -> AppResult<EnrollResponse> {
    let ids = lead_ids(req)?;
    let hours =
        business_hours::load(&state.db, ctx.tenant_id, &ctx.tenant.settings.timezone).await?;
    let txn = state.begin().await?;
    let c = usable_cadence(&*txn, ctx.tenant_id, id).await?;
    let ids = visible_leads(&*txn, ctx, &ids).await?;
    let steps = parse_steps(&c.steps);
    let already: Vec<Uuid> = enrollment::Entity::find()
        .select_only()
        .column(enrollment::Column::LeadId)
        .filter(enrollment::Column::TenantId.eq(ctx.tenant_id))
        .filter(enrollment::Column::CadenceId.eq(id))
        .filter(enrollment::Column::ActiveLeadId.is_in(ids.iter().copied()))
        .into_tuple()
        .all(&*txn)
        .await?;
    let conflict = |ids: Vec<Uuid>| {
        AppError::new(
            ErrorCode::AlreadyEnrolled,
            "Lead já inscrito (ativo) nesta cadência.",
        )
        .with_context(json!({"lead_ids": ids}))
    };
    if !already.is_empty() {
        return Err(conflict(already));
    }
    let mut out = vec![];
    for lead_id in ids {
        match insert_enrollment(&*txn, &c, &steps, &hours, lead_id, 0, Some(ctx.user_id)).await? {
            Some(e) => out.push(enrollment_dto(e, steps.len() as i32)),
            // Enrolled concurrently by someone else.
            None => return Err(conflict(vec![lead_id])),
        }
    }
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "enroll",
            "cadence",
            id,
            json!({"lead_ids": out.iter().map(|e| e.lead_id).collect::<Vec<_>>()}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(EnrollResponse { enrolled: out })
}

/// Ends active enrolments: of one cadence (or all), of some leads (or all).
pub(super) async fn end_enrollments<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    cadence_id: Option<Uuid>,
    lead_ids: Option<&[Uuid]>,
    only_id: Option<Uuid>,
    reason: &str,
) -> AppResult<u64> {
    let now = Utc::now();
    let mut q = enrollment::Entity::update_many()
        .col_expr(
            enrollment::Column::Status,
            Expr::value(EnrollmentStatus::Exited.as_str()),
        )
        .col_expr(enrollment::Column::ExitReason, Expr::value(reason))
        .col_expr(
            enrollment::Column::ActiveLeadId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(
            enrollment::Column::NextRunAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(enrollment::Column::FinishedAt, Expr::value(now))
        .col_expr(enrollment::Column::UpdatedAt, Expr::value(now))
        .filter(enrollment::Column::TenantId.eq(tenant_id))
        .filter(enrollment::Column::Status.eq(EnrollmentStatus::Active.as_str()));
    if let Some(c) = cadence_id {
        q = q.filter(enrollment::Column::CadenceId.eq(c));
    }
    if let Some(ids) = lead_ids {
        q = q.filter(enrollment::Column::ActiveLeadId.is_in(ids.iter().copied()));
    }
    if let Some(id) = only_id {
        q = q.filter(enrollment::Column::Id.eq(id));
    }
    Ok(q.exec(conn).await?.rows_affected)
}

/// `POST …/cadences/{id}/unenroll`: ends the active enrolments of the leads (reason `manual`).
pub async fn unenroll(
    state: &AppState,
    ctx: &Authorized<Staff>,
    id: Uuid,
    req: LeadIdsRequest,
) -> AppResult<UnenrollResponse> {
    let ids = lead_ids(req)?;
    let txn = state.begin().await?;
    find(&*txn, ctx.tenant_id, id).await?;
    // Idempotent: a lead that does not exist (or that the caller cannot see) is not enrolled, so
    // there is nothing to end for it; the count says how many enrolments ended.
    let found = leads::find_live_many(&*txn, ctx.tenant_id, ids.iter().copied()).await?;
    let ids: Vec<Uuid> = found
        .iter()
        .filter(|l| visibility::visible_to(ctx, l.owner_id))
        .map(|l| l.id)
        .collect();
    let n = end_enrollments(&*txn, ctx.tenant_id, Some(id), Some(&ids), None, "manual").await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "unenroll",
            "cadence",
            id,
            json!({"lead_ids": ids, "ended": n}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(UnenrollResponse { unenrolled: n })
}

/// `POST …/cadences/{id}/enrollments/{lead_id}/exit`: the lead replied (`replied`) or leaves by hand
/// (`manual`). No active enrolment → `404`.
pub async fn exit(
    state: &AppState,
    ctx: &Authorized<Staff>,
    id: Uuid,
    lead_id: Uuid,
    req: ExitRequest,
) -> AppResult<Enrollment> {
    let reason = req.reason.as_deref().map(str::trim).unwrap_or("manual");
    if !matches!(reason, "replied" | "manual") {
        return Err(AppError::field(
            "reason",
            "invalid_value",
            "Use replied ou manual",
        ));
    }
    let txn = state.begin().await?;
    let c = find(&*txn, ctx.tenant_id, id).await?;
    crate::domains::leads::service::find_visible(&*txn, ctx, lead_id, true).await?;
    let e = enrollment::Entity::find()
        .filter(enrollment::Column::TenantId.eq(ctx.tenant_id))
        .filter(enrollment::Column::CadenceId.eq(id))
        .filter(enrollment::Column::ActiveLeadId.eq(lead_id))
        .one(&*txn)
        .await?
        .ok_or_else(AppError::not_found)?;
    end_enrollments(&*txn, ctx.tenant_id, Some(id), None, Some(e.id), reason).await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "exit",
            "cadence",
            id,
            json!({"lead_id": lead_id, "reason": reason}),
        ),
    )
    .await?;
    let e = enrollment::Entity::find_by_id((ctx.tenant_id, e.id))
        .one(&*txn)
        .await?
        .ok_or_else(AppError::not_found)?;
    txn.commit().await?;
    Ok(enrollment_dto(e, parse_steps(&c.steps).len() as i32))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnrollmentQuery {
    pub status: Option<EnrollmentStatus>,
    pub lead_id: Option<Uuid>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// Enrolments of a cadence, newest first, with the current step and next run; sales and support
/// see those of the leads they can see.
pub async fn enrollments(
    state: &AppState,
    ctx: &TenantCtx,
    id: Uuid,
    q: EnrollmentQuery,
) -> AppResult<Page<Enrollment>> {
    let c = find(&state.db, ctx.tenant_id, id).await?;
    let total_steps = parse_steps(&c.steps).len() as i32;
    let limit = pagination::limit(q.limit)?;
    let mut sel = enrollment::Entity::find()
        .filter(enrollment::Column::TenantId.eq(ctx.tenant_id))
        .filter(enrollment::Column::CadenceId.eq(id));
    if let Some(s) = q.status {
        sel = sel.filter(enrollment::Column::Status.eq(s.as_str()));
    }
    if let Some(l) = q.lead_id {
        sel = sel.filter(enrollment::Column::LeadId.eq(l));
    }
    if !visibility::sees_all(ctx) {
        let mine = leads::owned_by(ctx.tenant_id, ctx.user_id);
        sel = sel.filter(enrollment::Column::LeadId.in_subquery(mine));
    }
    let page = Keyset::desc([enrollment::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, false)
        .await?;
    Ok(page.map(|r| enrollment_dto(r, total_steps)))
}

/// Exit events of a dispatch batch: a lead converted or lost, an opportunity won or lost (its lead
/// leaves every cadence).
pub async fn exit_on_events<C: ConnectionTrait>(
    conn: &C,
    events: &[event::Model],
) -> AppResult<()> {
    let mut exits: Vec<(Uuid, Uuid, String)> = vec![];
    let mut opps: Vec<(Uuid, Uuid, &str)> = vec![];
    for ev in events {
        match ev.event_type.as_str() {
            "lead.status_changed" => {
                let to = ev.data.pointer("/after/status").and_then(Value::as_str);
                if let Some(s @ ("converted" | "lost")) = to {
                    exits.push((ev.tenant_id, ev.entity_id, s.to_string()));
                }
            }
            "lead.converted" => exits.push((ev.tenant_id, ev.entity_id, "converted".into())),
            // The lead answered a call: the cadence's job is done.
            "call.answered" if ev.entity_type == "lead" => {
                exits.push((ev.tenant_id, ev.entity_id, "answered_call".into()))
            }
            "opportunity.won" => opps.push((ev.tenant_id, ev.entity_id, "won")),
            "opportunity.lost" => opps.push((ev.tenant_id, ev.entity_id, "lost")),
            // The customer said yes: no more prospecting touches.
            "proposal.accepted" => opps.push((ev.tenant_id, ev.entity_id, "proposal_accepted")),
            "contract.signed" => opps.push((ev.tenant_id, ev.entity_id, "contract_signed")),
            _ => {}
        }
    }
    if !opps.is_empty() {
        for (tenant_id, opp_id, reason) in opps {
            if let Some(lead_id) =
                pipelines::opportunities::lead_of(conn, tenant_id, opp_id).await?
            {
                exits.push((tenant_id, lead_id, reason.to_string()));
            }
        }
    }
    for (tenant_id, lead_id, reason) in exits {
        end_enrollments(conn, tenant_id, None, Some(&[lead_id]), None, &reason).await?;
    }
    Ok(())
}
