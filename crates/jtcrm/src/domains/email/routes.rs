//! `/api/emails…` (the company's sent and pending emails, the SMTP status) and
//! `/api/users/me/preferences` (the caller's daily digest opt-in).

use axum::Json;
use axum::extract::State;
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::email::{Email, EmailStatusInfo, UserPreferences, UserPreferencesInput};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::service::{self, EmailQuery};
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{ApiJson, ApiPath, ApiQuery, TenantCtx};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_emails))
        .routes(routes!(email_status))
        .routes(routes!(get_email))
        .routes(routes!(get_preferences, put_preferences))
}

/// The company's emails, newest first, filtered by lead, status and kind. Admins and managers see
/// all; other users see the emails of leads they can see and those sent to themselves.
#[utoipa::path(get, path = "/api/emails", tag = "email", security(("bearer" = [])), params(EmailQuery),
    responses((status = 200, body = Page<Email>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_emails(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<EmailQuery>,
) -> AppResult<Json<Page<Email>>> {
    Ok(Json(service::list(&state, &ctx, q).await?))
}

/// Whether this deployment sends email (`smtp_configured`), and the sender identity of the
/// caller's company. Without SMTP, emails are stored as `not_configured` and never sent.
#[utoipa::path(get, path = "/api/emails/status", tag = "email", security(("bearer" = [])),
    responses((status = 200, body = EmailStatusInfo),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn email_status(
    State(state): State<AppState>,
    ctx: TenantCtx,
) -> AppResult<Json<EmailStatusInfo>> {
    Ok(Json(service::status(&state, &ctx).await?))
}

/// One email with its body, status, attempts and last error.
#[utoipa::path(get, path = "/api/emails/{id}", tag = "email", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Email),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_email(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Email>> {
    Ok(Json(service::get(&state, &ctx, id).await?))
}

/// The caller's email preferences.
#[utoipa::path(get, path = "/api/users/me/preferences", tag = "email", security(("bearer" = [])),
    responses((status = 200, body = UserPreferences),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn get_preferences(
    State(state): State<AppState>,
    ctx: TenantCtx,
) -> AppResult<Json<UserPreferences>> {
    Ok(Json(service::get_preferences(&state, &ctx).await?))
}

/// Change the caller's email preferences: `daily_digest` sends, every morning at 07:00 in the
/// company's timezone, the list of the day's and overdue tasks (nothing on days without any).
#[utoipa::path(put, path = "/api/users/me/preferences", tag = "email", security(("bearer" = [])),
    request_body = UserPreferencesInput,
    responses((status = 200, body = UserPreferences),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_preferences(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiJson(input): ApiJson<UserPreferencesInput>,
) -> AppResult<Json<UserPreferences>> {
    Ok(Json(service::put_preferences(&state, &ctx, input).await?))
}
