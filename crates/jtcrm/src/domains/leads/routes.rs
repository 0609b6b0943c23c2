//! `/api/leads…`: CRUD, list and search, trash, assignment, score, duplicates and merge, custom
//! fields and scoring rules.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::leads::{
    AssignRequest, CustomFieldDef, CustomFieldInput, DuplicateGroup, Lead, LeadInput, MergeRequest,
    ScoreBreakdown, ScoringRule, ScoringRuleInput, StatusChange,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::search::{LeadQuery, LeadQueryDoc};
use super::{dedupe, fields, scoring, service};
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{
    AdminCtx, ApiJson, ApiPath, ApiQuery, IfMatch, JsonBytes, TenantCtx, etag, parse_json,
    query_bool, query_pairs,
};
use jtcrm_kernel::http::guard::{Authorized, Managers, Sellers, Staff};
use jtcrm_kernel::http::idempotency;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::WriteMode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_leads, create_lead))
        .routes(routes!(get_lead, replace_lead, patch_lead, delete_lead))
        .routes(routes!(restore_lead))
        .routes(routes!(assign_lead))
        .routes(routes!(lead_score))
        .routes(routes!(lead_status_history))
        .routes(routes!(list_duplicates))
        .routes(routes!(merge_leads))
        .routes(routes!(list_fields, create_field))
        .routes(routes!(update_field, delete_field))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(update_rule, delete_rule))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DuplicateParam {
    /// Create or save even if another lead has the same email, CNPJ or phone.
    pub allow_duplicate: Option<bool>,
}

fn allow_dup(raw: &Option<String>) -> AppResult<bool> {
    let pairs = query_pairs(raw.as_deref().unwrap_or(""))?;
    match pairs.iter().rev().find(|(k, _)| k == "allow_duplicate") {
        Some((k, v)) => query_bool(k, v),
        None => Ok(false),
    }
}

/// List and search leads. Besides the parameters below, `cf.<key>=<value>` filters by a custom
/// field the company defined (e.g. `cf.segmento=provedor`; `422` for an undefined key).
#[utoipa::path(get, path = "/api/leads", tag = "leads", security(("bearer" = [])),
    params(LeadQueryDoc),
    responses((status = 200, body = Page<Lead>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_leads(
    State(state): State<AppState>,
    ctx: TenantCtx,
    RawQuery(raw): RawQuery,
) -> AppResult<Json<Page<Lead>>> {
    let defs = fields::list_defs(&state.db, ctx.tenant_id).await?;
    let q = LeadQuery::parse(raw.as_deref().unwrap_or(""), &ctx, &defs)?;
    Ok(Json(super::search::list(&state, &ctx, &q).await?))
}

/// Create a lead. Duplicates (same email, CNPJ or phone) answer `409 duplicate_lead` with the
/// existing id unless `?allow_duplicate=true`. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/leads", tag = "leads", security(("bearer" = [])),
    params(DuplicateParam, ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response")),
    request_body = LeadInput,
    responses((status = 201, body = Lead, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 402, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Duplicate (`context.existing_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_lead(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> AppResult<Response> {
    let input: LeadInput = parse_json(&body)?;
    let allow_duplicate = allow_dup(&raw)?;
    let idem = idempotency::from_headers(
        &headers,
        &format!("POST /api/leads?{}", raw.as_deref().unwrap_or("")),
        &body,
    )?;
    idempotency::created(
        &state,
        ctx.tenant_id,
        idem,
        "/api/leads",
        service::create(&state, &ctx, input, allow_duplicate),
    )
    .await
}

/// Get a lead.
#[utoipa::path(get, path = "/api/leads/{id}", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Lead), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_lead(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let l = service::get(&state, &ctx, id).await?;
    Ok((etag(l.version), Json(l)))
}

/// Replace a lead (absent optional fields are cleared).
#[utoipa::path(put, path = "/api/leads/{id}", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version"), DuplicateParam),
    request_body = LeadInput,
    responses((status = 200, body = Lead),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn replace_lead(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    RawQuery(raw): RawQuery,
    ApiJson(input): ApiJson<LeadInput>,
) -> AppResult<impl IntoResponse> {
    let l = service::update(
        &state,
        &ctx,
        id,
        if_match,
        input,
        WriteMode::Replace,
        allow_dup(&raw)?,
    )
    .await?;
    Ok((etag(l.version), Json(l)))
}

/// Change some fields of a lead (absent keys are kept, `null` clears).
#[utoipa::path(patch, path = "/api/leads/{id}", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version"), DuplicateParam),
    request_body = LeadInput,
    responses((status = 200, body = Lead),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn patch_lead(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    RawQuery(raw): RawQuery,
    ApiJson(input): ApiJson<LeadInput>,
) -> AppResult<impl IntoResponse> {
    let l = service::update(
        &state,
        &ctx,
        id,
        if_match,
        input,
        WriteMode::Patch,
        allow_dup(&raw)?,
    )
    .await?;
    Ok((etag(l.version), Json(l)))
}

/// Move a lead to the trash (soft delete).
#[utoipa::path(delete, path = "/api/leads/{id}", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_lead(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    service::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restore a lead from the trash.
#[utoipa::path(post, path = "/api/leads/{id}/restore", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Lead), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn restore_lead(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Lead>> {
    Ok(Json(service::restore(&state, &ctx, id).await?))
}

/// Reassign a lead (admins and managers); `owner_id: null` unassigns.
#[utoipa::path(post, path = "/api/leads/{id}/assign", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = AssignRequest,
    responses((status = 200, body = Lead), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn assign_lead(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> AppResult<Json<Lead>> {
    Ok(Json(service::assign(&state, &ctx, id, req.owner_id).await?))
}

/// The lead's score and which rules (and signals) produced it.
#[utoipa::path(get, path = "/api/leads/{id}/score", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ScoreBreakdown), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn lead_score(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<ScoreBreakdown>> {
    Ok(Json(service::score(&state, &ctx, id).await?))
}

/// The lead's status changes, oldest first.
#[utoipa::path(get, path = "/api/leads/{id}/status-history", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<StatusChange>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn lead_status_history(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Vec<StatusChange>>> {
    Ok(Json(service::status_history(&state, &ctx, id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DuplicatesQuery {
    /// Maximum groups per matching key (email, CNPJ, phone); default 50, max 200.
    pub limit: Option<u64>,
}

/// Groups of likely duplicates (same email, CNPJ or phone).
#[utoipa::path(get, path = "/api/leads/duplicates", tag = "leads", security(("bearer" = [])),
    params(DuplicatesQuery),
    responses((status = 200, body = Vec<DuplicateGroup>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_duplicates(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<DuplicatesQuery>,
) -> AppResult<Json<Vec<DuplicateGroup>>> {
    let limit = jtcrm_kernel::http::pagination::limit(q.limit)?;
    Ok(Json(dedupe::groups(&state, &ctx, limit).await?))
}

/// Merge duplicates into this lead (the survivor). Duplicates go to the trash with `merged_into`.
#[utoipa::path(post, path = "/api/leads/{id}/merge", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = MergeRequest,
    responses((status = 200, body = Lead), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn merge_leads(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<MergeRequest>,
) -> AppResult<Json<Lead>> {
    Ok(Json(dedupe::merge(&state, &ctx, id, req).await?))
}

/// Custom field definitions of the tenant.
#[utoipa::path(get, path = "/api/leads/fields", tag = "leads", security(("bearer" = [])),
    responses((status = 200, body = Vec<CustomFieldDef>)))]
pub async fn list_fields(
    State(state): State<AppState>,
    ctx: TenantCtx,
) -> AppResult<Json<Vec<CustomFieldDef>>> {
    Ok(Json(fields::list_defs(&state.db, ctx.tenant_id).await?))
}

/// Define a custom field (admins).
#[utoipa::path(post, path = "/api/leads/fields", tag = "leads", security(("bearer" = [])),
    request_body = CustomFieldInput,
    responses((status = 201, body = CustomFieldDef), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_field(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiJson(input): ApiJson<CustomFieldInput>,
) -> AppResult<impl IntoResponse> {
    let f = fields::create(&state, &ctx, input).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/leads/fields/{}", f.id))],
        Json(f),
    ))
}

/// Change a custom field's label, type, options or required flag (admins). The key is fixed.
#[utoipa::path(put, path = "/api/leads/fields/{id}", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = CustomFieldInput,
    responses((status = 200, body = CustomFieldDef), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_field(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<CustomFieldInput>,
) -> AppResult<Json<CustomFieldDef>> {
    Ok(Json(
        fields::update(&state, &ctx, id, if_match, input).await?,
    ))
}

/// Delete a custom field definition (admins). Stored values stay on the leads.
#[utoipa::path(delete, path = "/api/leads/fields/{id}", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_field(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    fields::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Scoring rules of the tenant.
#[utoipa::path(get, path = "/api/leads/scoring-rules", tag = "leads", security(("bearer" = [])),
    responses((status = 200, body = Vec<ScoringRule>)))]
pub async fn list_rules(
    State(state): State<AppState>,
    ctx: TenantCtx,
) -> AppResult<Json<Vec<ScoringRule>>> {
    Ok(Json(scoring::list_rules(&state.db, ctx.tenant_id).await?))
}

/// Add a scoring rule (admins and managers); existing leads are rescored in the background.
#[utoipa::path(post, path = "/api/leads/scoring-rules", tag = "leads", security(("bearer" = [])),
    request_body = ScoringRuleInput,
    responses((status = 201, body = ScoringRule), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_rule(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiJson(input): ApiJson<ScoringRuleInput>,
) -> AppResult<impl IntoResponse> {
    let r = scoring::create_rule(&state, &ctx, input).await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/leads/scoring-rules/{}", r.id),
        )],
        Json(r),
    ))
}

/// Change a scoring rule; existing leads are rescored in the background.
#[utoipa::path(put, path = "/api/leads/scoring-rules/{id}", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = ScoringRuleInput,
    responses((status = 200, body = ScoringRule), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_rule(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<ScoringRuleInput>,
) -> AppResult<Json<ScoringRule>> {
    Ok(Json(
        scoring::update_rule(&state, &ctx, id, if_match, input).await?,
    ))
}

/// Delete a scoring rule; existing leads are rescored in the background.
#[utoipa::path(delete, path = "/api/leads/scoring-rules/{id}", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_rule(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    scoring::delete_rule(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
