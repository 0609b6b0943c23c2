//! `/api/integrations/{provider}…`: per-tenant integration settings (admins only).

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use jtcrm_types::Problem;
use jtcrm_types::dto::integrations::{
    IntegrationInput, IntegrationSettings, IntegrationTest, WebhookToken,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::service;
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{ApiJson, ApiPath, IfMatch, etag};
use jtcrm_kernel::http::guard::{Admins, Authorized};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_integration, put_integration))
        .routes(routes!(rotate_webhook_token))
        .routes(routes!(test_integration))
}

/// The settings of one integration (`pabx`). Secrets are never returned: each secret field says
/// whether it is configured, with its last two characters.
#[utoipa::path(get, path = "/api/integrations/{provider}", tag = "integrations", security(("bearer" = [])),
    params(("provider" = String, Path, description = "`pabx`")),
    responses((status = 200, body = IntegrationSettings),
        (status = 403, description = "Not an admin, or the plan lacks the feature", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown provider", body = Problem, content_type = "application/problem+json")))]
pub async fn get_integration(
    State(state): State<AppState>,
    ctx: Authorized<Admins>,
    ApiPath(provider): ApiPath<String>,
) -> AppResult<impl IntoResponse> {
    let p = service::parse_provider(&provider)?;
    service::require_feature(&ctx, p)?;
    let s = service::get(&state, &ctx, p).await?;
    Ok((etag(s.version), Json(s)))
}

/// Save the settings of one integration. `config` replaces the configuration (PABX: `base_url`,
/// `usuario`, `area_code`, `csp`, `callback_task`, `callback_sla_minutes`, `auto_create_leads`,
/// `recording_retention_days`, `answered_min_seconds`, `answered_points`, `inbound_points`);
/// `secrets` sets (`"…"`) or clears (`null`) secret fields (PABX: `token`), encrypted at rest.
/// Enabling requires the URL, the user and the token.
#[utoipa::path(put, path = "/api/integrations/{provider}", tag = "integrations", security(("bearer" = [])),
    params(("provider" = String, Path, description = "`pabx`"), ("If-Match" = Option<String>, Header, description = "Expected version (0 before the first save)")),
    request_body = IntegrationInput,
    responses((status = 200, body = IntegrationSettings),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_integration(
    State(state): State<AppState>,
    ctx: Authorized<Admins>,
    ApiPath(provider): ApiPath<String>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<IntegrationInput>,
) -> AppResult<impl IntoResponse> {
    let p = service::parse_provider(&provider)?;
    service::require_feature(&ctx, p)?;
    let s = service::put(&state, &ctx, p, if_match, input).await?;
    Ok((etag(s.version), Json(s)))
}

/// Create or rotate the webhook token: the answer carries the path to configure in the provider
/// (`/api/webhooks/{provider}/{token}`), shown only this once. The previous token stops working.
#[utoipa::path(post, path = "/api/integrations/{provider}/webhook-token", tag = "integrations", security(("bearer" = [])),
    params(("provider" = String, Path, description = "`pabx`")),
    responses((status = 200, body = WebhookToken),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn rotate_webhook_token(
    State(state): State<AppState>,
    ctx: Authorized<Admins>,
    ApiPath(provider): ApiPath<String>,
) -> AppResult<Json<WebhookToken>> {
    let p = service::parse_provider(&provider)?;
    service::require_feature(&ctx, p)?;
    Ok(Json(service::rotate_webhook_token(&state, &ctx, p).await?))
}

/// Test the saved settings against the provider (PABX: lists its extensions).
#[utoipa::path(post, path = "/api/integrations/{provider}/test", tag = "integrations", security(("bearer" = [])),
    params(("provider" = String, Path, description = "`pabx`")),
    responses((status = 200, body = IntegrationTest),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not configured", body = Problem, content_type = "application/problem+json")))]
pub async fn test_integration(
    State(state): State<AppState>,
    ctx: Authorized<Admins>,
    ApiPath(provider): ApiPath<String>,
) -> AppResult<Json<IntegrationTest>> {
    let p = service::parse_provider(&provider)?;
    service::require_feature(&ctx, p)?;
    Ok(Json(service::test(&state, &ctx, p).await?))
}
