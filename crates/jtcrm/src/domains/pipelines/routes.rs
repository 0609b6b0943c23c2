//! `/api/pipelines…`: pipelines, stages, the board, opportunities and their moves; and
//! `POST /api/leads/{id}/convert`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::pipelines::{
    Board, ConvertLeadRequest, LostRequest, MoveRequest, Opportunity, OpportunityInput, Pipeline,
    PipelineInput, Stage, StageChange, StageInput, StageOrder,
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::board::{Anchor, BoardQuery};
use super::opportunities::{self, OppQuery, OppQueryDoc, Transition};
use super::service;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::{
    ApiJson, ApiPath, ApiQuery, IfMatch, JsonBytes, OptionalJson, TenantCtx, etag, parse_json,
};
use jtcrm_kernel::http::guard::{Authorized, Managers, Sellers};
use jtcrm_kernel::http::idempotency;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::WriteMode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pipelines, create_pipeline))
        .routes(routes!(get_pipeline, update_pipeline, delete_pipeline))
        .routes(routes!(pipeline_board))
        .routes(routes!(list_stages, create_stage, reorder_stages))
        .routes(routes!(update_stage, patch_stage, delete_stage))
        .routes(routes!(list_opportunities, create_opportunity))
        .routes(routes!(
            get_opportunity,
            replace_opportunity,
            patch_opportunity,
            delete_opportunity
        ))
        .routes(routes!(move_opportunity))
        .routes(routes!(win_opportunity))
        .routes(routes!(lose_opportunity))
        .routes(routes!(reopen_opportunity))
        .routes(routes!(opportunity_history))
        .routes(routes!(convert_lead))
}

/// Where an opportunity lives (`Location` of its creates).
const OPPORTUNITIES: &str = "/api/pipelines/opportunities";

// ---------- pipelines ----------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PipelineListQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

/// List pipelines with their stages (creation order).
#[utoipa::path(get, path = "/api/pipelines", tag = "pipelines", security(("bearer" = [])),
    params(PipelineListQuery),
    responses((status = 200, body = Page<Pipeline>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_pipelines(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<PipelineListQuery>,
) -> AppResult<Json<Page<Pipeline>>> {
    Ok(Json(
        service::list(
            &state,
            &ctx,
            q.limit,
            q.cursor.as_deref(),
            q.include_total == Some(true),
        )
        .await?,
    ))
}

/// Create a pipeline (admins and managers), counted against the plan's `max_pipelines`. Without
/// `stages` it gets the default pt-BR stages. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/pipelines", tag = "pipelines", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response")),
    request_body = PipelineInput,
    responses((status = 201, body = Pipeline, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "`plan_limit_exceeded` (`max_pipelines`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_pipeline(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> AppResult<Response> {
    let input: PipelineInput = parse_json(&body)?;
    let idem = idempotency::from_headers(&headers, "POST /api/pipelines", &body)?;
    let work = service::create(&state, &ctx, input);
    idempotency::created(&state, ctx.tenant_id, idem, "/api/pipelines", work).await
}

/// Get a pipeline with its stages in order.
#[utoipa::path(get, path = "/api/pipelines/{id}", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Pipeline), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_pipeline(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let p = service::get(&state, &ctx, id).await?;
    Ok((etag(p.version), Json(p)))
}

/// Rename a pipeline or make it the default (admins and managers). Stages change through
/// `/api/pipelines/{id}/stages`.
#[utoipa::path(put, path = "/api/pipelines/{id}", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = PipelineInput,
    responses((status = 200, body = Pipeline),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_pipeline(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<PipelineInput>,
) -> AppResult<impl IntoResponse> {
    let p = service::update(&state, &ctx, id, if_match, input).await?;
    Ok((etag(p.version), Json(p)))
}

/// Delete a pipeline (admins and managers); refused with `409` while it holds opportunities.
#[utoipa::path(delete, path = "/api/pipelines/{id}", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_pipeline(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    service::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The Kanban board: per stage, the count and sums (value, MRR, TCV, weighted forecast) and the
/// first `limit` cards in order with a cursor for more
/// (`GET /api/pipelines/opportunities?stage_id=…&sort=position&cursor=…`).
#[utoipa::path(get, path = "/api/pipelines/{id}/board", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path), BoardQuery),
    responses((status = 200, body = Board),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn pipeline_board(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> AppResult<Json<Board>> {
    Ok(Json(super::board::board(&state, &ctx, id, q).await?))
}

// ---------- stages ----------

/// The stages of a pipeline, in order.
#[utoipa::path(get, path = "/api/pipelines/{id}/stages", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Stage>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list_stages(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Vec<Stage>>> {
    Ok(Json(service::list_stages(&state, &ctx, id).await?))
}

/// Add a stage at `position` (default: the end).
#[utoipa::path(post, path = "/api/pipelines/{id}/stages", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = StageInput,
    responses((status = 201, body = Stage),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_stage(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<StageInput>,
) -> AppResult<impl IntoResponse> {
    let s = service::create_stage(&state, &ctx, id, input).await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/pipelines/{id}/stages/{}", s.id),
        )],
        Json(s),
    ))
}

/// Reorder the stages: `stage_ids` lists every stage of the pipeline once, in the new order.
#[utoipa::path(put, path = "/api/pipelines/{id}/stages", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = StageOrder,
    responses((status = 200, body = Vec<Stage>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn reorder_stages(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<StageOrder>,
) -> AppResult<Json<Vec<Stage>>> {
    Ok(Json(
        service::reorder_stages(&state, &ctx, id, input.stage_ids).await?,
    ))
}

/// Change a stage (absent keys are kept): rename, recolour, probability (applied to the deals that
/// do not override it), kind (only while empty), `position` to move it.
#[utoipa::path(put, path = "/api/pipelines/{id}/stages/{stage_id}", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("stage_id" = Uuid, Path)), request_body = StageInput,
    responses((status = 200, body = Stage),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_stage(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath((id, stage_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(input): ApiJson<StageInput>,
) -> AppResult<Json<Stage>> {
    Ok(Json(
        service::update_stage(&state, &ctx, id, stage_id, input).await?,
    ))
}

/// Same as `PUT` (absent keys are kept).
#[utoipa::path(patch, path = "/api/pipelines/{id}/stages/{stage_id}", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("stage_id" = Uuid, Path)), request_body = StageInput,
    responses((status = 200, body = Stage),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn patch_stage(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath((id, stage_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(input): ApiJson<StageInput>,
) -> AppResult<Json<Stage>> {
    Ok(Json(
        service::update_stage(&state, &ctx, id, stage_id, input).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteStageQuery {
    /// Stage (same pipeline, same kind) that receives the stage's opportunities; required when it
    /// has any.
    pub move_to: Option<Uuid>,
}

/// Remove a stage; its opportunities move to `move_to`.
#[utoipa::path(delete, path = "/api/pipelines/{id}/stages/{stage_id}", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("stage_id" = Uuid, Path), DeleteStageQuery),
    responses((status = 204),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The stage holds deals and no `move_to` was given (`stage_not_empty`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`move_to` of another pipeline or kind, or the last open stage", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_stage(
    State(state): State<AppState>,
    ctx: Authorized<Managers>,
    ApiPath((id, stage_id)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(q): ApiQuery<DeleteStageQuery>,
) -> AppResult<StatusCode> {
    service::delete_stage(&state, &ctx, id, stage_id, q.move_to).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- opportunities ----------

/// List opportunities (lines omitted), filtered, sorted, keyset-paginated. Sellers see only their
/// own unless team visibility is on.
#[utoipa::path(get, path = "/api/pipelines/opportunities", tag = "pipelines", security(("bearer" = [])),
    params(OppQueryDoc),
    responses((status = 200, body = Page<Opportunity>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_opportunities(
    State(state): State<AppState>,
    ctx: TenantCtx,
    RawQuery(raw): RawQuery,
) -> AppResult<Json<Page<Opportunity>>> {
    let q = OppQuery::parse(raw.as_deref().unwrap_or(""), &ctx)?;
    Ok(Json(opportunities::list(&state, &ctx, &q).await?))
}

/// Create an opportunity (admins, managers, sales). Totals are computed from the lines in integer
/// cents (docs/pipelines.md). Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/pipelines/opportunities", tag = "pipelines", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response")),
    request_body = OpportunityInput,
    responses((status = 201, body = Opportunity, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A `pipeline_id`, `stage_id`, `lead_id` or `items[].product_id` not found", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_opportunity(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> AppResult<Response> {
    let input: OpportunityInput = parse_json(&body)?;
    let idem = idempotency::from_headers(&headers, "POST /api/pipelines/opportunities", &body)?;
    let work = opportunities::create(&state, &ctx, input);
    idempotency::created(&state, ctx.tenant_id, idem, OPPORTUNITIES, work).await
}

/// Get an opportunity with its lines.
#[utoipa::path(get, path = "/api/pipelines/opportunities/{id}", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Opportunity), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_opportunity(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let o = opportunities::get(&state, &ctx, id).await?;
    Ok((etag(o.version), Json(o)))
}

/// Replace an opportunity (absent optional fields are cleared, absent `items` removes the lines).
#[utoipa::path(put, path = "/api/pipelines/opportunities/{id}", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = OpportunityInput,
    responses((status = 200, body = Opportunity),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn replace_opportunity(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<OpportunityInput>,
) -> AppResult<impl IntoResponse> {
    let o = opportunities::update(&state, &ctx, id, if_match, input, WriteMode::Replace).await?;
    Ok((etag(o.version), Json(o)))
}

/// Change some fields of an opportunity (absent keys are kept, `null` clears).
#[utoipa::path(patch, path = "/api/pipelines/opportunities/{id}", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = OpportunityInput,
    responses((status = 200, body = Opportunity),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn patch_opportunity(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<OpportunityInput>,
) -> AppResult<impl IntoResponse> {
    let o = opportunities::update(&state, &ctx, id, if_match, input, WriteMode::Patch).await?;
    Ok((etag(o.version), Json(o)))
}

/// Delete an opportunity (soft).
#[utoipa::path(delete, path = "/api/pipelines/opportunities/{id}", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_opportunity(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    opportunities::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Move a card within or across stages (and pipelines). `before_id` puts it just above that card,
/// `after_id` just below; neither puts it at the top. Moving into a `won`/`lost` stage sets the
/// status (`lost_reason` required); into an `open` stage reopens it.
#[utoipa::path(post, path = "/api/pipelines/opportunities/{id}/move", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = MoveRequest,
    responses((status = 200, body = Opportunity),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn move_opportunity(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<MoveRequest>,
) -> AppResult<Json<Opportunity>> {
    let anchor = match (req.before_id, req.after_id) {
        (Some(b), _) => Anchor::Before(b),
        (None, Some(a)) => Anchor::After(a),
        (None, None) => Anchor::Top,
    };
    let lost_reason = req
        .lost_reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if lost_reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 500)
    {
        return Err(AppError::field(
            "lost_reason",
            "too_long",
            "Máximo de 500 caracteres",
        ));
    }
    let tr = Transition::Move {
        stage_id: req.stage_id,
        anchor,
        lost_reason,
    };
    Ok(Json(opportunities::transition(&state, &ctx, id, tr).await?))
}

/// Mark an opportunity won (moves it to the pipeline's first `won` stage, if it has one).
#[utoipa::path(post, path = "/api/pipelines/opportunities/{id}/won", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Opportunity),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already won", body = Problem, content_type = "application/problem+json")))]
pub async fn win_opportunity(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Opportunity>> {
    Ok(Json(
        opportunities::transition(&state, &ctx, id, Transition::Won).await?,
    ))
}

/// Mark an opportunity lost with a reason (moves it to the pipeline's first `lost` stage, if any).
#[utoipa::path(post, path = "/api/pipelines/opportunities/{id}/lost", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = LostRequest,
    responses((status = 200, body = Opportunity),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already lost", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn lose_opportunity(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<LostRequest>,
) -> AppResult<Json<Opportunity>> {
    let reason = match req.reason.as_deref().map(str::trim) {
        None | Some("") => {
            return Err(AppError::field(
                "reason",
                "required",
                "Informe o motivo da perda",
            ));
        }
        Some(r) if r.chars().count() > 500 => {
            return Err(AppError::field(
                "reason",
                "too_long",
                "Máximo de 500 caracteres",
            ));
        }
        Some(r) => r.to_string(),
    };
    Ok(Json(
        opportunities::transition(&state, &ctx, id, Transition::Lost(reason)).await?,
    ))
}

/// Reopen a won or lost opportunity (back to the open stage it was closed from).
#[utoipa::path(post, path = "/api/pipelines/opportunities/{id}/reopen", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Opportunity),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already open", body = Problem, content_type = "application/problem+json")))]
pub async fn reopen_opportunity(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Opportunity>> {
    Ok(Json(
        opportunities::transition(&state, &ctx, id, Transition::Reopen).await?,
    ))
}

/// Stage and status changes of an opportunity, oldest first, with the time spent in each stage.
#[utoipa::path(get, path = "/api/pipelines/opportunities/{id}/history", tag = "pipelines", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<StageChange>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn opportunity_history(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Vec<StageChange>>> {
    Ok(Json(opportunities::history(&state, &ctx, id).await?))
}

/// Convert a lead into an opportunity in the pipeline's first open stage (default pipeline unless
/// `pipeline_id`); the lead becomes `converted`. One transaction; a second conversion is `409`.
/// The body is optional. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/leads/{id}/convert", tag = "leads", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first response")),
    request_body(content = Option<ConvertLeadRequest>),
    responses((status = 201, body = Opportunity, headers(("Location" = String))),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already converted (`context.opportunity_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn convert_lead(
    State(state): State<AppState>,
    ctx: Authorized<Sellers>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    OptionalJson(raw): OptionalJson<Value>,
) -> AppResult<Response> {
    // Re-parsed through `parse_json` so that field errors are reported like everywhere else.
    let bytes = raw.as_ref().map(Value::to_string).unwrap_or_default();
    let req: ConvertLeadRequest = match raw {
        None => ConvertLeadRequest::default(),
        Some(_) => parse_json(bytes.as_bytes())?,
    };
    let idem = idempotency::from_headers(
        &headers,
        &format!("POST /api/leads/{id}/convert"),
        bytes.as_bytes(),
    )?;
    let work = opportunities::convert_lead(&state, &ctx, id, req);
    idempotency::created(&state, ctx.tenant_id, idem, OPPORTUNITIES, work).await
}
