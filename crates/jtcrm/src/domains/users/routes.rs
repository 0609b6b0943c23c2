//! `/api/users`: tenant user management.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::users::{CreateUserRequest, UpdateUserRequest, User};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::NewUserInput;
use super::service::{self, UserQuery};
use jtcrm_kernel::error::{AppResult, Validator};
use jtcrm_kernel::http::extract::{AdminCtx, ApiJson, ApiPath, ApiQuery, IfMatch, TenantCtx, etag};
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
}

/// List the tenant's users (admins and managers).
#[utoipa::path(get, path = "/api/users", tag = "users", security(("bearer" = [])),
    params(UserQuery),
    responses((status = 200, body = Page<User>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_users(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> AppResult<Json<Page<User>>> {
    Ok(Json(service::list(&state, &ctx, q).await?))
}

/// Create a user in the caller's tenant (admins). Counts against the plan's `max_users`.
#[utoipa::path(post, path = "/api/users", tag = "users", security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses((status = 201, body = User, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "Plan limit", body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email or extension taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_user(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> AppResult<impl IntoResponse> {
    let mut v = Validator::new();
    let new = super::validate_new_user(
        &mut v,
        "",
        NewUserInput {
            name: req.name.as_deref(),
            email: req.email.as_deref(),
            password: req.password.as_deref(),
            role: req.role.as_deref(),
            phone: req.phone.as_deref(),
            extension: req.extension.as_deref(),
        },
        None,
    );
    v.finish()?;
    let Some(new) = new else {
        return Err(jtcrm_kernel::error::AppError::bad_request(
            "Dados inválidos.",
        ));
    };
    let user = service::create(&state, &ctx, new).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/users/{}", user.id))],
        etag(user.version),
        Json(user),
    ))
}

/// Get a user (admins and managers: anyone in the tenant; others: themselves).
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = User),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_user(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let u = service::get(&state, &ctx, id).await?;
    Ok((etag(u.version), Json(u)))
}

/// Update a user. Admins may change anything; users may change their own name, email, phone,
/// extension and password (with `current_password`). Role, password and deactivation changes end
/// the user's sessions.
#[utoipa::path(put, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = UpdateUserRequest,
    responses((status = 200, body = User),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_user(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> AppResult<impl IntoResponse> {
    let u = service::update(&state, &ctx, id, if_match, req).await?;
    Ok((etag(u.version), Json(u)))
}

/// Delete (deactivate) a user. Admins only; frees the seat.
#[utoipa::path(delete, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_user(
    State(state): State<AppState>,
    ctx: AdminCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    service::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
