//! Super-admin tenant endpoints (`/api/super-admin/tenants…`) and a tenant's view of itself
//! (`/api/tenant`).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::TenantStatus;
use jtcrm_types::dto::tenants::{
    CreateTenantRequest, SuspendRequest, Tenant, TenantUsage, UpdateTenantRequest,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::TenantQuery;
use jtcrm_kernel::error::{AppResult, Validator};
use jtcrm_kernel::http::extract::{
    AdminCtx, ApiJson, ApiPath, ApiQuery, IfMatch, OptionalJson, SuperAdminCtx, TenantCtx, etag,
};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, update_tenant))
        .routes(routes!(suspend_tenant))
        .routes(routes!(activate_tenant))
        .routes(routes!(tenant_usage))
        .routes(routes!(get_own_tenant, update_own_tenant))
        .routes(routes!(own_usage))
}

/// List tenants.
#[utoipa::path(get, path = "/api/super-admin/tenants", tag = "super-admin", security(("bearer" = [])),
    params(TenantQuery),
    responses((status = 200, body = Page<Tenant>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_tenants(
    State(state): State<AppState>,
    _sa: SuperAdminCtx,
    ApiQuery(q): ApiQuery<TenantQuery>,
) -> AppResult<Json<Page<Tenant>>> {
    Ok(Json(super::list(&state, q).await?))
}

/// Create a tenant and its first admin user.
#[utoipa::path(post, path = "/api/super-admin/tenants", tag = "super-admin", security(("bearer" = [])),
    request_body = CreateTenantRequest,
    responses((status = 201, body = Tenant, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Slug or admin email taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_tenant(
    State(state): State<AppState>,
    sa: SuperAdminCtx,
    ApiJson(req): ApiJson<CreateTenantRequest>,
) -> AppResult<impl IntoResponse> {
    let t = super::create(&state, sa.user_id, &sa.meta, req).await?;
    let loc = format!("/api/super-admin/tenants/{}", t.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, loc)],
        etag(t.version),
        Json(t),
    ))
}

/// Get a tenant.
#[utoipa::path(get, path = "/api/super-admin/tenants/{id}", tag = "super-admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Tenant), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_tenant(
    State(state): State<AppState>,
    _sa: SuperAdminCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let t = super::get(&state, id).await?;
    Ok((etag(t.version), Json(t)))
}

/// Update a tenant (any subset: name, slug, email, cnpj, subscription_plan, status, settings).
#[utoipa::path(put, path = "/api/super-admin/tenants/{id}", tag = "super-admin", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = UpdateTenantRequest,
    responses((status = 200, body = Tenant),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_tenant(
    State(state): State<AppState>,
    sa: SuperAdminCtx,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(req): ApiJson<UpdateTenantRequest>,
) -> AppResult<impl IntoResponse> {
    let t = super::update(&state, sa.user_id, &sa.meta, id, if_match, req, false).await?;
    Ok((etag(t.version), Json(t)))
}

/// Suspend a tenant: its users get `403 tenant_suspended` on every call; data is kept.
#[utoipa::path(post, path = "/api/super-admin/tenants/{id}/suspend", tag = "super-admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body(content = Option<SuspendRequest>, description = "Optional reason"),
    responses((status = 200, body = Tenant), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn suspend_tenant(
    State(state): State<AppState>,
    sa: SuperAdminCtx,
    ApiPath(id): ApiPath<Uuid>,
    OptionalJson(req): OptionalJson<SuspendRequest>,
) -> AppResult<Json<Tenant>> {
    let req = req.unwrap_or(SuspendRequest { reason: None });
    let mut v = Validator::new();
    let reason = v.optional_text("reason", req.reason.as_deref(), 500);
    v.finish()?;
    Ok(Json(
        super::set_status(
            &state,
            sa.user_id,
            &sa.meta,
            id,
            TenantStatus::Suspended,
            reason,
        )
        .await?,
    ))
}

/// Re-activate a suspended or cancelled tenant.
#[utoipa::path(post, path = "/api/super-admin/tenants/{id}/activate", tag = "super-admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Tenant), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn activate_tenant(
    State(state): State<AppState>,
    sa: SuperAdminCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Tenant>> {
    Ok(Json(
        super::set_status(&state, sa.user_id, &sa.meta, id, TenantStatus::Active, None).await?,
    ))
}

/// Usage of a tenant against each plan limit.
#[utoipa::path(get, path = "/api/super-admin/tenants/{id}/usage", tag = "super-admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TenantUsage), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_usage(
    State(state): State<AppState>,
    _sa: SuperAdminCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<TenantUsage>> {
    Ok(Json(super::usage(&state, id).await?))
}

/// The caller's own company.
#[utoipa::path(get, path = "/api/tenant", tag = "tenant", security(("bearer" = [])),
    responses((status = 200, body = Tenant), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn get_own_tenant(
    State(state): State<AppState>,
    ctx: TenantCtx,
) -> AppResult<impl IntoResponse> {
    let t = super::get(&state, ctx.tenant_id).await?;
    Ok((etag(t.version), Json(t)))
}

/// Update the caller's company name, contact email, CNPJ and settings (admins).
#[utoipa::path(put, path = "/api/tenant", tag = "tenant", security(("bearer" = [])),
    params(("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = UpdateTenantRequest,
    responses((status = 200, body = Tenant),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_own_tenant(
    State(state): State<AppState>,
    ctx: AdminCtx,
    IfMatch(if_match): IfMatch,
    ApiJson(req): ApiJson<UpdateTenantRequest>,
) -> AppResult<impl IntoResponse> {
    let t = super::update(
        &state,
        ctx.user_id,
        &ctx.meta,
        ctx.tenant_id,
        if_match,
        req,
        true,
    )
    .await?;
    Ok((etag(t.version), Json(t)))
}

/// The caller's company usage against its plan (admins).
#[utoipa::path(get, path = "/api/tenant/usage", tag = "tenant", security(("bearer" = [])),
    responses((status = 200, body = TenantUsage), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn own_usage(
    State(state): State<AppState>,
    ctx: AdminCtx,
) -> AppResult<Json<TenantUsage>> {
    Ok(Json(super::usage(&state, ctx.tenant_id).await?))
}
