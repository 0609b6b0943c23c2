//! `/api/auth/*`: login, refresh, logout, me and register.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use jtcrm_types::dto::auth::{
    LoginRequest, LogoutRequest, MeResponse, RefreshRequest, RegisterRequest, TokenResponse,
};
use jtcrm_types::dto::users::User;
use jtcrm_types::{ErrorCode, Problem};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::service;
use crate::domains::users::NewUserInput;
use crate::domains::{tenants, users};
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::{
    AdminCtx, AnyCaller, ApiJson, Auth, OptionalJson, PlatformScope, RequestMeta, bearer,
    requested_slug,
};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(register))
}

/// The tenant slug named by `X-Tenant-Slug` or the subdomain, if any.
pub struct RequestedSlug(pub Option<String>);

impl FromRequestParts<AppState> for RequestedSlug {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Ok(RequestedSlug(requested_slug(parts, state)))
    }
}

/// Log in with email and password. Throttled per account and per IP.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse),
        (status = 401, description = "Wrong email or password (same answer for both)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Tenant suspended", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts; see Retry-After", body = Problem, content_type = "application/problem+json")))]
pub async fn login(
    _: PlatformScope,
    State(state): State<AppState>,
    meta: RequestMeta,
    RequestedSlug(slug): RequestedSlug,
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Json<TokenResponse>> {
    Ok(Json(service::login(&state, &meta, slug, req).await?))
}

/// Exchange a refresh token for a new pair. Each refresh token works once; reusing one revokes its
/// whole family.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn refresh(
    _: PlatformScope,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> AppResult<Json<TokenResponse>> {
    Ok(Json(service::refresh(&state, req.refresh_token).await?))
}

/// Log out: revokes the session's refresh family and denylists the access token.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    request_body(content = Option<LogoutRequest>),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn logout(
    State(state): State<AppState>,
    caller: AnyCaller,
    OptionalJson(body): OptionalJson<LogoutRequest>,
) -> AppResult<StatusCode> {
    service::logout(&state, &caller.auth, body.and_then(|b| b.refresh_token)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The current user (and its company).
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn me(State(state): State<AppState>, caller: AnyCaller) -> AppResult<Json<MeResponse>> {
    Ok(Json(service::me(&state, &caller.auth).await?))
}

/// Register a user. With a bearer token: a tenant admin creates a user in its own tenant
/// (`name`, `email`, `password`, `role`). Anonymous, when public signup is enabled: creates a `trial`
/// company (`company_name`, `name`, `email`, `password`) and returns tokens for its new admin.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", security((), ("bearer" = [])), request_body = RegisterRequest,
    responses(
        (status = 201, description = "User created by an admin (a `User`), or a new trial company (a `TokenResponse`)", body = User),
        (status = 402, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or public signup disabled", body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn register(
    State(state): State<AppState>,
    meta: RequestMeta,
    parts: RegisterCaller,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> AppResult<axum::response::Response> {
    match parts {
        RegisterCaller::Tenant(ctx) => {
            let mut v = Validator::new();
            let new = users::validate_new_user(
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
                return Err(AppError::bad_request("Dados inválidos."));
            };
            let user = users::service::create(&state, &ctx, new).await?;
            let loc = format!("/api/users/{}", user.id);
            Ok((StatusCode::CREATED, [(header::LOCATION, loc)], Json(user)).into_response())
        }
        RegisterCaller::SuperAdmin => Err(AppError::new(
            ErrorCode::Forbidden,
            "O super-admin cria empresas em /api/super-admin/tenants.",
        )),
        RegisterCaller::Anonymous => {
            if !state.settings.public_signup {
                return Err(AppError::new(
                    ErrorCode::SignupDisabled,
                    "O cadastro público está desabilitado. Peça acesso ao administrador da sua empresa.",
                ));
            }
            let mut v = Validator::new();
            let company = v.required_text("company_name", req.company_name.as_deref(), 200);
            let new = users::validate_new_user(
                &mut v,
                "",
                NewUserInput {
                    name: req.name.as_deref(),
                    email: req.email.as_deref(),
                    password: req.password.as_deref(),
                    role: None,
                    phone: req.phone.as_deref(),
                    extension: None,
                },
                Some(jtcrm_types::dto::Role::Admin),
            );
            v.finish()?;
            let (Some(company), Some(new)) = (company, new) else {
                return Err(AppError::bad_request("Dados inválidos."));
            };
            let password = new.password.clone();
            let email = new.email.clone();
            tenants::signup(&state, &meta, company, new).await?;
            let tokens = service::login(
                &state,
                &meta,
                None,
                LoginRequest {
                    email: Some(email),
                    password: Some(password),
                },
            )
            .await?;
            Ok((StatusCode::CREATED, Json(tokens)).into_response())
        }
    }
}

/// Who is calling `register`: decided by the presence of a bearer token.
pub enum RegisterCaller {
    Anonymous,
    SuperAdmin,
    /// A tenant admin; other tenant roles are refused (`403`).
    Tenant(Box<AdminCtx>),
}

impl FromRequestParts<AppState> for RegisterCaller {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if bearer(parts).is_none() {
            // Public sign-up creates a tenant: platform work (jtcrm_kernel::db).
            jtcrm_kernel::db::enter_platform();
            return Ok(RegisterCaller::Anonymous);
        }
        let auth = Auth::from_request_parts(parts, state).await?;
        if auth.claims.tenant_id.is_none() {
            jtcrm_kernel::db::enter_platform();
            return Ok(RegisterCaller::SuperAdmin);
        }
        let ctx = AdminCtx::from_request_parts(parts, state).await?;
        Ok(RegisterCaller::Tenant(Box::new(ctx)))
    }
}
