//! Super-admin plan endpoints under `/api/super-admin/plans`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use jtcrm_types::Problem;
use jtcrm_types::dto::plans::{Plan, PlanInput};
use utoipa_axum::{router::OpenApiRouter, routes};

use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{ApiJson, ApiPath, IfMatch, SuperAdminCtx, etag};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(get_plan, update_plan))
}

/// List all plans.
#[utoipa::path(get, path = "/api/super-admin/plans", tag = "super-admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<Plan>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list_plans(
    State(state): State<AppState>,
    _sa: SuperAdminCtx,
) -> AppResult<Json<Vec<Plan>>> {
    Ok(Json(super::list(&state.db).await?))
}

/// Create a plan.
#[utoipa::path(post, path = "/api/super-admin/plans", tag = "super-admin", security(("bearer" = [])),
    request_body = PlanInput,
    responses((status = 201, body = Plan),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Code already used", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_plan(
    State(state): State<AppState>,
    sa: SuperAdminCtx,
    ApiJson(input): ApiJson<PlanInput>,
) -> AppResult<impl IntoResponse> {
    let plan = super::create(&state, sa.user_id, &sa.meta, input).await?;
    let location = format!("/api/super-admin/plans/{}", plan.code);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        etag(plan.version),
        Json(plan),
    ))
}

/// Get one plan.
#[utoipa::path(get, path = "/api/super-admin/plans/{code}", tag = "super-admin", security(("bearer" = [])),
    params(("code" = String, Path, description = "Plan code, e.g. `starter`")),
    responses((status = 200, body = Plan),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_plan(
    State(state): State<AppState>,
    _sa: SuperAdminCtx,
    ApiPath(code): ApiPath<String>,
) -> AppResult<impl IntoResponse> {
    let plan = super::get(&state.db, &code).await?;
    Ok((etag(plan.version), Json(plan)))
}

/// Update a plan's name, price, limits or features (any subset). Affects every tenant on the plan.
#[utoipa::path(put, path = "/api/super-admin/plans/{code}", tag = "super-admin", security(("bearer" = [])),
    params(("code" = String, Path, description = "Plan code"),
        ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = PlanInput,
    responses((status = 200, body = Plan),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_plan(
    State(state): State<AppState>,
    sa: SuperAdminCtx,
    ApiPath(code): ApiPath<String>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<PlanInput>,
) -> AppResult<impl IntoResponse> {
    let plan = super::update(&state, sa.user_id, &sa.meta, &code, if_match, input).await?;
    Ok((etag(plan.version), Json(plan)))
}
