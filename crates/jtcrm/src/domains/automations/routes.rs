//! `/api/automations…`: automations with their run log and manual execution, cadences with their
//! enrolments, and the company's business hours.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::automations::{
    Automation, AutomationInput, AutomationRun, BusinessHours, BusinessHoursInput, Cadence,
    CadenceInput, EnrollResponse, Enrollment, ExecuteRequest, ExecuteResponse, ExitRequest,
    LeadIdsRequest, UnenrollResponse,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::cadences::{self, CadenceQuery, EnrollmentQuery};
use super::{AutomationQuery, RunQuery, business_hours, engine};
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{
    ApiJson, ApiPath, ApiQuery, IfMatch, OptionalJson, TenantCtx, etag,
};
use jtcrm_kernel::http::guard::{Authorized, Managers, Staff};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_automations, create_automation))
        .routes(routes!(get_business_hours, put_business_hours))
        .routes(routes!(list_cadences, create_cadence))
        .routes(routes!(get_cadence, update_cadence, delete_cadence))
        .routes(routes!(enroll))
        .routes(routes!(unenroll))
        .routes(routes!(list_enrollments))
        .routes(routes!(exit_enrollment))
        .routes(routes!(
            get_automation,
            update_automation,
            delete_automation
        ))
        .routes(routes!(execute_automation))
        .routes(routes!(automation_runs))
}

// ---------- automations ----------

/// Automations of the company, newest first (admins and managers).
#[utoipa::path(get, path = "/api/automations", tag = "automations", security(("bearer" = [])),
    params(AutomationQuery),
    responses((status = 200, body = Page<Automation>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_automations(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiQuery(q): ApiQuery<AutomationQuery>,
) -> AppResult<Json<Page<Automation>>> {
    Ok(Json(super::list(&state, &ctx, q).await?))
}

/// Create an automation: a trigger (event + filters), conditions (`all`/`any`, including
/// `changed` from/to) and ordered actions. Counts against the plan's `max_automations` (`402`).
#[utoipa::path(post, path = "/api/automations", tag = "automations", security(("bearer" = [])),
    request_body = AutomationInput,
    responses((status = 201, body = Automation, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 402, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_automation(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiJson(input): ApiJson<AutomationInput>,
) -> AppResult<impl IntoResponse> {
    let a = super::create(&state, &ctx, input).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/automations/{}", a.id))],
        etag(a.version),
        Json(a),
    ))
}

/// One automation (webhook secrets are never returned).
#[utoipa::path(get, path = "/api/automations/{id}", tag = "automations", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Automation),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_automation(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let a = super::get(&state, &ctx, id).await?;
    Ok((etag(a.version), Json(a)))
}

/// Replace an automation's definition. Runs in progress cancel their remaining actions.
#[utoipa::path(put, path = "/api/automations/{id}", tag = "automations", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = AutomationInput,
    responses((status = 200, body = Automation),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_automation(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<AutomationInput>,
) -> AppResult<impl IntoResponse> {
    let a = super::update(&state, &ctx, id, if_match, input).await?;
    Ok((etag(a.version), Json(a)))
}

/// Delete an automation (its run log is kept; the plan slot is freed).
#[utoipa::path(delete, path = "/api/automations/{id}", tag = "automations", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_automation(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    super::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run the automation now on one entity (`entity_id`) or on the leads matching `filter` (the
/// `GET /api/leads` parameters, at most 1000 leads). `dry_run: true` describes what each action
/// would do and changes nothing.
#[utoipa::path(post, path = "/api/automations/{id}/execute", tag = "automations", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = ExecuteRequest,
    responses((status = 200, body = ExecuteResponse),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn execute_automation(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ExecuteRequest>,
) -> AppResult<Json<ExecuteResponse>> {
    Ok(Json(engine::execute(&state, &ctx, id, req).await?))
}

/// The run log: each run (newest first) with the status, result and error of every action.
#[utoipa::path(get, path = "/api/automations/{id}/runs", tag = "automations", security(("bearer" = [])),
    params(("id" = Uuid, Path), RunQuery),
    responses((status = 200, body = Page<AutomationRun>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn automation_runs(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<RunQuery>,
) -> AppResult<Json<Page<AutomationRun>>> {
    Ok(Json(super::runs(&state, &ctx, id, q).await?))
}

// ---------- business hours ----------

/// The company's business hours (default Monday–Friday 08:00–18:00 in its timezone): cadence
/// steps and `business_hours` delays only run inside them.
#[utoipa::path(get, path = "/api/automations/business-hours", tag = "automations", security(("bearer" = [])),
    responses((status = 200, body = BusinessHours)))]
pub async fn get_business_hours(
    State(state): State<AppState>,
    ctx: TenantCtx,
) -> AppResult<Json<BusinessHours>> {
    Ok(Json(
        business_hours::get(&state.db, ctx.tenant_id, &ctx.tenant.settings.timezone).await?,
    ))
}

/// Change the business hours (absent fields are kept; admins and managers).
#[utoipa::path(put, path = "/api/automations/business-hours", tag = "automations", security(("bearer" = [])),
    request_body = BusinessHoursInput,
    responses((status = 200, body = BusinessHours),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_business_hours(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiJson(input): ApiJson<BusinessHoursInput>,
) -> AppResult<Json<BusinessHours>> {
    let tx = state.begin().await?;
    let out =
        business_hours::put(&*tx, ctx.tenant_id, &ctx.tenant.settings.timezone, &input).await?;
    jtcrm_kernel::audit::record(
        &*tx,
        jtcrm_kernel::audit::Entry::tenant(
            &ctx,
            "update",
            "business_hours",
            ctx.tenant_id,
            serde_json::to_value(&out).unwrap_or_default(),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(out))
}

// ---------- cadences ----------

/// Cadences of the company, newest first (every user reads them).
#[utoipa::path(get, path = "/api/automations/cadences", tag = "automations", security(("bearer" = [])),
    params(CadenceQuery),
    responses((status = 200, body = Page<Cadence>),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_cadences(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<CadenceQuery>,
) -> AppResult<Json<Page<Cadence>>> {
    Ok(Json(cadences::list(&state, &ctx, q).await?))
}

/// Create a cadence: ordered steps, each a delay (`days` or `business_hours` after the previous
/// step) and a channel (`call`/`whatsapp` → task for the owner, `email` → email to the lead,
/// `task` → generic task). Admins and managers.
#[utoipa::path(post, path = "/api/automations/cadences", tag = "automations", security(("bearer" = [])),
    request_body = CadenceInput,
    responses((status = 201, body = Cadence, headers(("Location" = String))),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_cadence(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiJson(input): ApiJson<CadenceInput>,
) -> AppResult<impl IntoResponse> {
    let c = cadences::create(&state, &ctx, input).await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/automations/cadences/{}", c.id),
        )],
        etag(c.version),
        Json(c),
    ))
}

#[utoipa::path(get, path = "/api/automations/cadences/{id}", tag = "automations", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Cadence),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_cadence(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let c = cadences::get(&state, &ctx, id).await?;
    Ok((etag(c.version), Json(c)))
}

/// Replace a cadence (enrolled leads keep the index of their next step).
#[utoipa::path(put, path = "/api/automations/cadences/{id}", tag = "automations", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = CadenceInput,
    responses((status = 200, body = Cadence),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_cadence(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<CadenceInput>,
) -> AppResult<impl IntoResponse> {
    let c = cadences::update(&state, &ctx, id, if_match, input).await?;
    Ok((etag(c.version), Json(c)))
}

/// Delete a cadence; its active enrolments end (`cadence_deleted`).
#[utoipa::path(delete, path = "/api/automations/cadences/{id}", tag = "automations", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_cadence(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    cadences::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enrol leads (all or nothing). A lead already active in the cadence answers `409`; a lead of
/// another company or not visible to the caller `422`.
#[utoipa::path(post, path = "/api/automations/cadences/{id}/enroll", tag = "automations", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = LeadIdsRequest,
    responses((status = 200, body = EnrollResponse),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn enroll(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<LeadIdsRequest>,
) -> AppResult<Json<EnrollResponse>> {
    Ok(Json(cadences::enroll(&state, &ctx, id, req).await?))
}

/// End the active enrolments of these leads (reason `manual`). Idempotent: ids of leads that do
/// not exist, cannot be seen or are not enrolled end nothing (`unenrolled` counts what ended).
#[utoipa::path(post, path = "/api/automations/cadences/{id}/unenroll", tag = "automations", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = LeadIdsRequest,
    responses((status = 200, body = UnenrollResponse),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn unenroll(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<LeadIdsRequest>,
) -> AppResult<Json<UnenrollResponse>> {
    Ok(Json(cadences::unenroll(&state, &ctx, id, req).await?))
}

/// Enrolments with their current step and next run, newest first.
#[utoipa::path(get, path = "/api/automations/cadences/{id}/enrollments", tag = "automations", security(("bearer" = [])),
    params(("id" = Uuid, Path), EnrollmentQuery),
    responses((status = 200, body = Page<Enrollment>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_enrollments(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<EnrollmentQuery>,
) -> AppResult<Json<Page<Enrollment>>> {
    Ok(Json(cadences::enrollments(&state, &ctx, id, q).await?))
}

/// A lead leaves the cadence: `{"reason": "replied"}` when it answered (until inbound email and
/// WhatsApp events exist, the integration or the seller calls this), or `manual`.
#[utoipa::path(post, path = "/api/automations/cadences/{id}/enrollments/{lead_id}/exit", tag = "automations",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("lead_id" = Uuid, Path)), request_body = ExitRequest,
    responses((status = 200, body = Enrollment),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn exit_enrollment(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath((id, lead_id)): ApiPath<(Uuid, Uuid)>,
    OptionalJson(req): OptionalJson<ExitRequest>,
) -> AppResult<Json<Enrollment>> {
    Ok(Json(
        cadences::exit(&state, &ctx, id, lead_id, req.unwrap_or_default()).await?,
    ))
}
