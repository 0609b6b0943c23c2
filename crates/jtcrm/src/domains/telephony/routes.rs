//! `/api/telephony/…`: extensions, click-to-call, calls, recordings and caller lookup. Every
//! route needs the plan's `telephony` feature (`403 feature_not_in_plan`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::telephony::{
    Call, CallerLookup, ClickToCallRequest, Extension, ExtensionInput, ExtensionSync,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::calls::{self, CallQuery};
use super::extensions::{self, ExtensionQuery};
use super::{jobs, recordings, require_feature};
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{
    ApiJson, ApiPath, ApiQuery, IfMatch, JsonBytes, TenantCtx, etag, parse_json,
};
use jtcrm_kernel::http::guard::{Admins, Authorized, Staff};
use jtcrm_kernel::http::idempotency::{self, Uncommitted};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_extensions, create_extension))
        .routes(routes!(get_extension, update_extension, delete_extension))
        .routes(routes!(sync_extensions))
        .routes(routes!(click_to_call))
        .routes(routes!(list_calls))
        .routes(routes!(get_call))
        .routes(routes!(get_recording))
        .routes(routes!(lookup))
}

/// The company's PABX extensions, by number.
#[utoipa::path(get, path = "/api/telephony/extensions", tag = "telephony", security(("bearer" = [])),
    params(ExtensionQuery),
    responses((status = 200, body = Page<Extension>),
        (status = 403, description = "Plan without telephony", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_extensions(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<ExtensionQuery>,
) -> AppResult<Json<Page<Extension>>> {
    require_feature(&ctx)?;
    Ok(Json(extensions::list(&state, &ctx, q).await?))
}

/// Create an extension on the PABX and map it to a user (admins). Counts against the plan's
/// `max_extensions`. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/telephony/extensions", tag = "telephony", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response")),
    request_body = ExtensionInput,
    responses((status = 201, body = Extension, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "max_extensions reached", body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Number or user taken; PABX not configured", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or refused by the PABX", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PABX unavailable", body = Problem, content_type = "application/problem+json")))]
pub async fn create_extension(
    State(state): State<AppState>,
    ctx: Authorized<Admins>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> AppResult<Response> {
    require_feature(&ctx)?;
    let input: ExtensionInput = parse_json(&body)?;
    let idem = idempotency::from_headers(&headers, "POST /api/telephony/extensions", &body)?;
    let work = extensions::create(&state, &ctx, input);
    idempotency::created(
        &state,
        ctx.tenant_id,
        idem,
        "/api/telephony/extensions",
        work,
    )
    .await
}

/// One extension.
#[utoipa::path(get, path = "/api/telephony/extensions/{id}", tag = "telephony", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Extension),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_extension(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    require_feature(&ctx)?;
    let e = extensions::get(&state, &ctx, id).await?;
    Ok((etag(e.version), Json(e)))
}

/// Change an extension (admins): on the PABX, then in the CRM. `user_id` maps it to a user
/// (`null` unmaps).
#[utoipa::path(put, path = "/api/telephony/extensions/{id}", tag = "telephony", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = ExtensionInput,
    responses((status = 200, body = Extension),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn update_extension(
    State(state): State<AppState>,
    ctx: Authorized<Admins>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<ExtensionInput>,
) -> AppResult<impl IntoResponse> {
    require_feature(&ctx)?;
    let e = extensions::update(&state, &ctx, id, if_match, input).await?;
    Ok((etag(e.version), Json(e)))
}

/// Delete an extension (admins), on the PABX and in the CRM.
#[utoipa::path(delete, path = "/api/telephony/extensions/{id}", tag = "telephony", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_extension(
    State(state): State<AppState>,
    ctx: Authorized<Admins>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    require_feature(&ctx)?;
    extensions::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sync now (admins): imports the extensions created on the PABX directly, updates changed ones,
/// removes the ones deleted there. Also runs hourly.
#[utoipa::path(post, path = "/api/telephony/extensions/sync", tag = "telephony", security(("bearer" = [])),
    responses((status = 200, body = ExtensionSync),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn sync_extensions(
    State(state): State<AppState>,
    ctx: Authorized<Admins>,
) -> AppResult<Json<ExtensionSync>> {
    require_feature(&ctx)?;
    Ok(Json(jobs::sync_now(&state, ctx.tenant_id).await?))
}

/// Click-to-call: rings the caller's extension (or `extension`), then dials the lead's phone
/// (`lead_id`, a lead the caller sees) or `phone`. The call is logged at once as `dialing`; the
/// PABX's events and call history complete it. Send an `Idempotency-Key`: a retry with the same
/// key answers the first call instead of ringing the customer twice.
#[utoipa::path(post, path = "/api/telephony/call", tag = "telephony", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response (and place no second call)")),
    request_body = ClickToCallRequest,
    responses((status = 201, body = Call, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "PABX not configured", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, no extension, or refused by the PABX", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PABX unavailable", body = Problem, content_type = "application/problem+json")))]
pub async fn click_to_call(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> AppResult<Response> {
    require_feature(&ctx)?;
    let req: ClickToCallRequest = parse_json(&body)?;
    let idem = idempotency::from_headers(&headers, "POST /api/telephony/call", &body)?;
    let work = async {
        let c = calls::click_to_call(&state, &ctx, req).await?;
        Ok(Uncommitted::new(state.begin().await?, c))
    };
    idempotency::created(&state, ctx.tenant_id, idem, "/api/telephony/calls", work).await
}

/// The call log, newest first: filters by user, lead, direction, outcome, status and period.
/// Sales and support users see the calls of their extension and of their leads.
#[utoipa::path(get, path = "/api/telephony/calls", tag = "telephony", security(("bearer" = [])),
    params(CallQuery),
    responses((status = 200, body = Page<Call>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_calls(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<CallQuery>,
) -> AppResult<Json<Page<Call>>> {
    require_feature(&ctx)?;
    Ok(Json(calls::list(&state, &ctx, q).await?))
}

/// One call, with its recordings and the PABX's transcription and summary.
#[utoipa::path(get, path = "/api/telephony/calls/{id}", tag = "telephony", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Call),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_call(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    require_feature(&ctx)?;
    let c = calls::get(&state, &ctx, id).await?;
    Ok((etag(c.version), Json(c)))
}

/// The audio of a call's recording (copied into the CRM's storage), for users who see the call.
#[utoipa::path(get, path = "/api/telephony/calls/{id}/recordings/{position}", tag = "telephony", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("position" = i32, Path, description = "1-based")),
    responses((status = 200, description = "The audio", content_type = "audio/wav", body = Vec<u8>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call or recording, not copied yet or deleted after the retention period", body = Problem, content_type = "application/problem+json")))]
pub async fn get_recording(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath((id, position)): ApiPath<(Uuid, i32)>,
) -> AppResult<Response> {
    require_feature(&ctx)?;
    recordings::stream(&state, &ctx, id, position).await
}

/// Query parameters of `GET /api/telephony/lookup`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// The caller's number, in any Brazilian format or E.164.
    pub number: String,
}

/// Caller identification (screen pop): the leads the caller sees whose phone is this number;
/// none offers a new lead (source `inbound_call`).
#[utoipa::path(get, path = "/api/telephony/lookup", tag = "telephony", security(("bearer" = [])),
    params(LookupQuery),
    responses((status = 200, body = CallerLookup),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn lookup(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<LookupQuery>,
) -> AppResult<Json<CallerLookup>> {
    require_feature(&ctx)?;
    Ok(Json(calls::lookup(&state, &ctx, &q.number).await?))
}
