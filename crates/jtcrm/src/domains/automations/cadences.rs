//! Cadences: an ordered list of steps (a delay, then a call/WhatsApp task for the owner, an email to
//! the lead or a generic task), enrolments per lead, and `automations.cadence_step`, the scheduled job
//! that runs one step inside business hours and schedules the next. Leads leave when converted, lost
//! or won (events), when they reply (`…/exit {"reason": "replied"}`) or by hand.

use chrono::{DateTime, Utc};
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::automations::{
    Cadence, CadenceChannel, CadenceInput, CadenceStep, EnrollResponse, Enrollment,
    EnrollmentStatus, ExitRequest, LeadIdsRequest, UnenrollResponse,
};
use jtcrm_types::dto::tasks::TaskInput;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, TryInsertResult,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::IntoParams;
use uuid::Uuid;

use super::actions::find_marked_event;
use super::actor_ctx;
use super::business_hours::{self, Hours};
use super::model::{cadence, enrollment};
use super::templates::{clip, render};
use crate::domains::leads::model::lead;
use crate::domains::tasks;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::events::{self, model as event};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Managers, Staff};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::jobs::{JobCtx, JobError, NewJob, enqueue};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;
use jtcrm_kernel::visibility;

pub const STEP_KIND: &str = "automations.cadence_step";
pub const MAX_STEPS: usize = 30;
pub const MAX_LEADS_PER_CALL: usize = 500;

// ---------- definitions ----------

fn parse_steps(v: &Value) -> Vec<CadenceStep> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

pub fn to_dto(m: cadence::Model) -> Cadence {
    Cadence {
        steps: parse_steps(&m.steps),
        id: m.id,
        name: m.name,
        description: m.description,
        active: m.active,
        created_by: m.created_by,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

pub fn enrollment_dto(m: enrollment::Model, steps_total: i32) -> Enrollment {
    Enrollment {
        id: m.id,
        cadence_id: m.cadence_id,
        lead_id: m.lead_id,
        status: EnrollmentStatus::parse(&m.status).unwrap_or(EnrollmentStatus::Exited),
        current_step: m.current_step,
        steps_total,
        next_run_at: m.next_run_at,
        exit_reason: m.exit_reason,
        enrolled_by: m.enrolled_by,
        enrolled_at: m.created_at,
        finished_at: m.finished_at,
        history: serde_json::from_value(m.history).unwrap_or_default(),
    }
}

fn default_title(channel: CadenceChannel) -> &'static str {
    match channel {
        CadenceChannel::Call => "Ligar para {{lead.name}}",
        CadenceChannel::Whatsapp => "Enviar WhatsApp para {{lead.name}}",
        CadenceChannel::Email | CadenceChannel::Task => "Follow-up com {{lead.name}}",
    }
}

fn validate_steps(v: &mut Validator, steps: Option<Vec<CadenceStep>>) -> Vec<CadenceStep> {
    let steps = steps.unwrap_or_default();
    if steps.is_empty() {
        v.add("steps", "required", "Informe ao menos um passo");
    }
    if steps.len() > MAX_STEPS {
        v.add(
            "steps",
            "too_many",
            &format!("No máximo {MAX_STEPS} passos"),
        );
    }
    let mut out = Vec::with_capacity(steps.len());
    for (i, mut s) in steps.into_iter().enumerate() {
        let f = |n: &str| format!("steps[{i}].{n}");
        if let Some(d) = &s.delay {
            business_hours::validate_delay(v, &f("delay"), d);
        }
        let text = |v: &mut Validator, field: &str, t: &Option<String>, max: usize| {
            if let Some(t) = t {
                if t.chars().count() > max {
                    v.add(field, "too_long", &format!("Máximo de {max} caracteres"));
                }
                let unknown = super::templates::unknown_roots(t);
                if !unknown.is_empty() {
                    v.add(
                        field,
                        "unknown_placeholder",
                        &format!("Marcadores desconhecidos: {}", unknown.join(", ")),
                    );
                }
            }
        };
        text(v, &f("title"), &s.title, 500);
        text(v, &f("subject"), &s.subject, 300);
        text(v, &f("body"), &s.body, 20_000);
        match s.channel {
            None => v.add(
                &f("channel"),
                "required",
                "Use call, whatsapp, email ou task",
            ),
            Some(CadenceChannel::Email) => {
                for (name, val) in [("subject", &s.subject), ("body", &s.body)] {
                    if val.as_deref().is_none_or(|x| x.trim().is_empty()) {
                        v.add(&f(name), "required", "Campo obrigatório para e-mail");
                    }
                }
            }
            Some(c) => {
                if s.title.as_deref().is_none_or(|x| x.trim().is_empty()) {
                    s.title = Some(default_title(c).into());
                }
            }
        }
        out.push(s);
    }
    out
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<cadence::Model> {
    cadence::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .ok_or_else(AppError::not_found)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CadenceQuery {
    pub active: Option<bool>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// Every tenant user reads cadences (to enrol leads); newest first.
pub async fn list(state: &AppState, ctx: &TenantCtx, q: CadenceQuery) -> AppResult<Page<Cadence>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = cadence::Entity::find()
        .filter(cadence::Column::TenantId.eq(ctx.tenant_id))
        .filter(cadence::Column::DeletedAt.is_null());
    if let Some(a) = q.active {
        sel = sel.filter(cadence::Column::Active.eq(a));
    }
    let page = Keyset::desc([cadence::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, false)
        .await?;
    Ok(page.map(to_dto))
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Cadence> {
    Ok(to_dto(find(&state.db, ctx.tenant_id, id).await?))
}

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Managers>,
    input: CadenceInput,
) -> AppResult<Cadence> {
    let mut v = Validator::new();
    let name = v.required_text("name", input.name.as_deref(), 200);
    let description = v.optional_text("description", input.description.as_deref(), 5000);
    let steps = validate_steps(&mut v, input.steps);
    v.finish()?;
    let Some(name) = name else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let now = Utc::now();
    let txn = state.begin().await?;
    let m = cadence::Entity::insert(cadence::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        name: Set(name),
        description: Set(description),
        active: Set(input.active.unwrap_or(true)),
        steps: Set(serde_json::to_value(&steps).map_err(AppError::internal)?),
        created_by: Set(Some(ctx.user_id)),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    })
    .exec_with_returning(&*txn)
    .await?;
    let dto = to_dto(m);
    let snap = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "cadence",
            dto.id,
            audit::diff(&json!({}), &snap),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// `PUT`: replaces the definition. Enrolled leads keep their position (the index of their next
/// step); a lead past the new last step completes.
pub async fn update(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    if_match: Option<i32>,
    input: CadenceInput,
) -> AppResult<Cadence> {
    let mut v = Validator::new();
    let name = v.required_text("name", input.name.as_deref(), 200);
    let description = v.optional_text("description", input.description.as_deref(), 5000);
    let steps = validate_steps(&mut v, input.steps);
    v.finish()?;
    let Some(name) = name else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let txn = state.begin().await?;
    let cur = find(&*txn, ctx.tenant_id, id).await?;
    if if_match.is_some_and(|v| v != cur.version) {
        return Err(AppError::stale_version());
    }
    let before = serde_json::to_value(to_dto(cur.clone())).unwrap_or_default();
    let version = cur.version;
    let mut am = cur.into_active_model();
    am.name = Set(name);
    am.description = Set(description);
    am.active = Set(input.active.unwrap_or(true));
    am.steps = Set(serde_json::to_value(&steps).map_err(AppError::internal)?);
    am.updated_at = Set(Utc::now());
    am.version = Set(version + 1);
    let m = crate::domains::optimistic_update::<cadence::Entity, _>(
        &*txn,
        am,
        cadence::Column::Version,
        version,
    )
    .await?;
    let dto = to_dto(m);
    let after = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "update", "cadence", id, audit::diff(&before, &after)),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Soft delete; active enrolments end with reason `cadence_deleted`.
pub async fn delete(state: &AppState, ctx: &Authorized<Managers>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let cur = find(&*txn, ctx.tenant_id, id).await?;
    end_enrollments(
        &*txn,
        ctx.tenant_id,
        Some(id),
        None,
        None,
        "cadence_deleted",
    )
    .await?;
    store::soft_delete::<cadence::Entity>(txn, ctx, "cadence", cur, |am| {
        am.active = Set(false);
    })
    .await
}

// ---------- enrolments ----------

fn step_key(enrollment_id: Uuid, step: i32) -> String {
    format!("cadence:{enrollment_id}:{step}")
}

async fn enqueue_step<C: ConnectionTrait>(
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
async fn insert_enrollment<C: ConnectionTrait>(
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

async fn usable_cadence<C: ConnectionTrait>(
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

fn unique(ids: &[Uuid]) -> Vec<Uuid> {
    super::unique_ids(ids)
}

/// The leads of `ids` the caller may see, or `422 lead_ids` naming the others.
async fn visible_leads<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    ids: &[Uuid],
) -> AppResult<Vec<Uuid>> {
    let found: Vec<lead::Model> = lead::Entity::find()
        .filter(lead::Column::TenantId.eq(ctx.tenant_id))
        .filter(lead::Column::Id.is_in(ids.iter().copied()))
        .filter(lead::Column::DeletedAt.is_null())
        .all(conn)
        .await?;
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

fn lead_ids(req: LeadIdsRequest) -> AppResult<Vec<Uuid>> {
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
async fn end_enrollments<C: ConnectionTrait>(
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
    let ids = visible_leads(&*txn, ctx, &ids).await?;
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
        let mine = Query::select()
            .column(lead::Column::Id)
            .from(lead::Entity)
            .and_where(Expr::col(lead::Column::TenantId).eq(ctx.tenant_id))
            .and_where(Expr::col(lead::Column::OwnerId).eq(ctx.user_id))
            .take();
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
            "opportunity.won" => opps.push((ev.tenant_id, ev.entity_id, "won")),
            "opportunity.lost" => opps.push((ev.tenant_id, ev.entity_id, "lost")),
            _ => {}
        }
    }
    if !opps.is_empty() {
        use crate::domains::pipelines::model::opportunity;
        for (tenant_id, opp_id, reason) in opps {
            if let Some(lead_id) = opportunity::Entity::find_by_id((tenant_id, opp_id))
                .one(conn)
                .await?
                .and_then(|o| o.lead_id)
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

// ---------- the step job ----------

#[derive(Deserialize)]
struct StepPayload {
    enrollment_id: Uuid,
    step: i32,
}

/// Handler of `automations.cadence_step`.
pub async fn run_step(state: AppState, job: JobCtx) -> Result<(), JobError> {
    let tenant_id = job
        .tenant_id
        .ok_or_else(|| JobError::permanent("cadence_step sem tenant_id"))?;
    let p: StepPayload = serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::permanent(format!("payload inválido: {e}")))?;
    let Some(e) = enrollment::Entity::find_by_id((tenant_id, p.enrollment_id))
        .one(&state.db)
        .await?
    else {
        return Ok(());
    };
    if e.status != EnrollmentStatus::Active.as_str() || e.current_step != p.step {
        // Exited, completed, or this step already ran.
        return Ok(());
    }
    let end = |reason: &'static str| {
        let state = state.clone();
        async move {
            let tx = state.begin().await?;
            end_enrollments(&*tx, tenant_id, None, None, Some(p.enrollment_id), reason).await?;
            tx.commit().await?;
            Ok::<(), JobError>(())
        }
    };
    let Some(c) = cadence::Entity::find_by_id((tenant_id, e.cadence_id))
        .one(&state.db)
        .await?
        .filter(|c| c.deleted_at.is_none())
    else {
        return end("cadence_deleted").await;
    };
    let steps = parse_steps(&c.steps);
    let ctx = actor_ctx(&state, tenant_id, &[e.enrolled_by, c.created_by]).await?;
    let hours = business_hours::load(&state.db, tenant_id, &ctx.tenant.settings.timezone).await?;
    let now = Utc::now();
    let open = hours.next_open(now);
    if open > now + chrono::Duration::minutes(1) {
        // Due outside business hours (a late worker, changed hours): wait for the window.
        let tx = state.begin().await?;
        enrollment::Entity::update_many()
            .col_expr(enrollment::Column::NextRunAt, Expr::value(open))
            .filter(enrollment::Column::TenantId.eq(tenant_id))
            .filter(enrollment::Column::Id.eq(e.id))
            .exec(&*tx)
            .await?;
        let key = format!("{}:{}", step_key(e.id, p.step), open.timestamp());
        enqueue_step(&*tx, tenant_id, e.id, p.step, open, key).await?;
        tx.commit().await?;
        return Ok(());
    }
    let Some(l) = lead::Entity::find_by_id((tenant_id, e.lead_id))
        .one(&state.db)
        .await?
        .filter(|l| l.deleted_at.is_none())
    else {
        return end("lead_deleted").await;
    };
    match l.status.as_str() {
        "converted" => return end("converted").await,
        "lost" => return end("lost").await,
        _ => {}
    }
    let Some(step) = steps.get(p.step as usize).cloned() else {
        // The cadence was shortened: nothing left to do.
        return advance(
            &state,
            &e,
            &steps,
            &hours,
            p.step,
            None,
            json!({"skipped": true}),
        )
        .await;
    };
    let channel = step.channel.unwrap_or(CadenceChannel::Task);
    let mut cause = Map::new();
    cause.insert("cadence_id".into(), json!(c.id));
    cause.insert("cadence_enrollment_id".into(), json!(e.id));
    cause.insert("cadence_step".into(), json!(p.step));
    cause.insert("automation_depth".into(), json!(e.depth));
    let people = super::templates::mentions_people(&[
        step.title.as_deref(),
        step.subject.as_deref(),
        step.body.as_deref(),
    ]);
    let template =
        super::actions::load_subject(&state.db, tenant_id, (c.id, &c.name), "lead", l.id, people)
            .await?
            .template;
    if channel == CadenceChannel::Email {
        let email = match &l.email {
            Some(to) => Some(crate::domains::email::NewEmail {
                tenant_id,
                to: to.clone(),
                subject: clip(
                    render(step.subject.as_deref().unwrap_or(""), &template).trim(),
                    300,
                ),
                body_text: render(step.body.as_deref().unwrap_or(""), &template),
                lead_id: Some(l.id),
                user_id: None,
                kind: "cadence",
                idempotency_key: Some(step_key(e.id, p.step)),
                actor_id: None,
            }),
            None => None,
        };
        let result = if email.is_some() {
            json!({})
        } else {
            json!({"error": "O lead não tem e-mail; passo não enviado."})
        };
        return advance(&state, &e, &steps, &hours, p.step, email, result).await;
    }
    let existing = if job.attempt > 1 {
        find_marked_event(
            &state.db,
            tenant_id,
            "task.created",
            e.updated_at,
            ("cadence_enrollment_id", e.id),
            ("cadence_step", i64::from(p.step)),
        )
        .await?
    } else {
        None
    };
    let result = match existing {
        Some(task_id) => json!({"task_id": task_id, "recovered": true}),
        None => {
            let task_type = match channel {
                CadenceChannel::Call => "call",
                CadenceChannel::Whatsapp => "whatsapp",
                _ => "follow_up",
            };
            let mut title = clip(
                render(step.title.as_deref().unwrap_or(""), &template).trim(),
                200,
            );
            if title.is_empty() {
                title = clip(&render(default_title(channel), &template), 200);
            }
            // Due by the end of today's business hours.
            let due = hours
                .window(now.with_timezone(&hours.tz).date_naive())
                .map_or(now, |(_, end)| end);
            let input = TaskInput {
                title: Some(title),
                description: Some(
                    step.body
                        .as_deref()
                        .map(|b| clip(&render(b, &template), 20_000))
                        .filter(|b| !b.trim().is_empty()),
                ),
                task_type: Some(task_type.into()),
                priority: None,
                due_at: Some(Some(due)),
                remind_at: None,
                assignee_id: Some(l.owner_id.unwrap_or(ctx.user_id)),
                lead_id: Some(Some(l.id)),
                opportunity_id: None,
            };
            match events::CAUSE
                .scope(cause, async {
                    tasks::service::create(&state, &ctx.grant::<Staff>()?, input).await
                })
                .await
            {
                Ok(t) => json!({"task_id": t.id, "assignee_id": t.assignee_id}),
                Err(err)
                    if matches!(err.code.status(), 412 | 429 | 500..) && !job.is_last_attempt() =>
                {
                    return Err(err.into());
                }
                Err(err) => json!({"error": err.detail}),
            }
        }
    };
    advance(&state, &e, &steps, &hours, p.step, None, result).await
}

/// Records step `step` in the history and schedules the next one, or completes the enrolment —
/// only if it is still active at that step (a concurrent exit wins, and then nothing is sent).
async fn advance(
    state: &AppState,
    e: &enrollment::Model,
    steps: &[CadenceStep],
    hours: &Hours,
    step: i32,
    email: Option<crate::domains::email::NewEmail>,
    mut result: Value,
) -> Result<(), JobError> {
    let now = Utc::now();
    let tx = state.begin().await?;
    if let Some(mail) = email {
        let id = crate::domains::email::queue(&*tx, &state.settings, mail).await;
        match id {
            Ok(id) => result = json!({"email_id": id}),
            Err(err) if matches!(err.code.status(), 412 | 429 | 500..) => return Err(err.into()),
            Err(err) => result = json!({"error": err.detail}),
        }
    }
    let channel = steps
        .get(step as usize)
        .and_then(|s| s.channel)
        .map(|c| c.as_str());
    let mut history: Vec<Value> = serde_json::from_value(e.history.clone()).unwrap_or_default();
    history.push(json!({"step": step, "channel": channel, "at": now, "result": result}));
    let next = step + 1;
    let mut q = enrollment::Entity::update_many()
        .col_expr(
            enrollment::Column::History,
            Expr::value(Value::Array(history)),
        )
        .col_expr(enrollment::Column::CurrentStep, Expr::value(next))
        .col_expr(enrollment::Column::UpdatedAt, Expr::value(now));
    let next_at = steps
        .get(next as usize)
        .map(|s| hours.schedule(now, s.delay.as_ref()));
    match next_at {
        Some(at) => q = q.col_expr(enrollment::Column::NextRunAt, Expr::value(at)),
        None => {
            q = q
                .col_expr(
                    enrollment::Column::Status,
                    Expr::value(EnrollmentStatus::Completed.as_str()),
                )
                .col_expr(
                    enrollment::Column::ActiveLeadId,
                    Expr::value(Option::<Uuid>::None),
                )
                .col_expr(
                    enrollment::Column::NextRunAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .col_expr(enrollment::Column::FinishedAt, Expr::value(now));
        }
    }
    let changed = q
        .filter(enrollment::Column::TenantId.eq(e.tenant_id))
        .filter(enrollment::Column::Id.eq(e.id))
        .filter(enrollment::Column::Status.eq(EnrollmentStatus::Active.as_str()))
        .filter(enrollment::Column::CurrentStep.eq(step))
        .exec(&*tx)
        .await?
        .rows_affected;
    if changed == 0 {
        // Exited meanwhile: drop everything of this step.
        return Ok(());
    }
    if let Some(at) = next_at {
        enqueue_step(&*tx, e.tenant_id, e.id, next, at, step_key(e.id, next)).await?;
    }
    tx.commit().await?;
    Ok(())
}
