//! Notes and the timeline over HTTP: `/api/leads/{id}/notes`, `/api/notes/{id}`,
//! `/api/pipelines/opportunities/{id}/notes` and the feeds `/api/leads/{id}/timeline` and
//! `/api/pipelines/opportunities/{id}/timeline`. (Documented under the `tasks` tag, as before.)

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::tasks::{Note, NoteInput};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::notes;
use crate::domains::leads;
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{ApiJson, ApiPath, ApiQuery, IfMatch, TenantCtx};
use jtcrm_kernel::http::guard::{Authorized, Staff};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::timeline::{Subject, TimelineEntry, TimelineQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_lead_note))
        .routes(routes!(update_note, delete_note))
        .routes(routes!(lead_timeline))
        .routes(routes!(create_opportunity_note))
        .routes(routes!(opportunity_timeline))
}

/// Add a note (Markdown) to a lead.
#[utoipa::path(post, path = "/api/leads/{id}/notes", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = NoteInput,
    responses((status = 201, body = Note), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_lead_note(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<NoteInput>,
) -> AppResult<impl IntoResponse> {
    let n = notes::create_on_lead(&state, &ctx, id, input).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/notes/{}", n.id))],
        Json(n),
    ))
}

/// Edit a note (its author or an admin).
#[utoipa::path(put, path = "/api/notes/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = NoteInput,
    responses((status = 200, body = Note), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update_note(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<NoteInput>,
) -> AppResult<Json<Note>> {
    Ok(Json(
        notes::update(&state, &ctx, id, if_match, input).await?,
    ))
}

/// Delete a note (its author or an admin).
#[utoipa::path(delete, path = "/api/notes/{id}", tag = "tasks", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_note(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    notes::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The lead's timeline, newest first: notes, tasks, status changes, and its opportunities' entries.
#[utoipa::path(get, path = "/api/leads/{id}/timeline", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path), TimelineQuery),
    responses((status = 200, body = Page<TimelineEntry>), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn lead_timeline(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<TimelineQuery>,
) -> AppResult<Json<Page<TimelineEntry>>> {
    leads::service::find_visible(&state.db, &ctx, id, true).await?;
    Ok(Json(
        jtcrm_kernel::timeline::feed(&state.db, ctx.tenant_id, Subject::Lead(id), &q).await?,
    ))
}

/// Add a note (Markdown) to an opportunity; it also shows in its lead's timeline.
#[utoipa::path(post, path = "/api/pipelines/opportunities/{id}/notes", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = NoteInput,
    responses((status = 201, body = Note), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_opportunity_note(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<NoteInput>,
) -> AppResult<impl IntoResponse> {
    let n = notes::create_on_opportunity(&state, &ctx, id, input).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/notes/{}", n.id))],
        Json(n),
    ))
}

/// The opportunity's timeline, newest first: stage changes, won/lost, notes, tasks.
#[utoipa::path(get, path = "/api/pipelines/opportunities/{id}/timeline", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path), TimelineQuery),
    responses((status = 200, body = Page<TimelineEntry>), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn opportunity_timeline(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<TimelineQuery>,
) -> AppResult<Json<Page<TimelineEntry>>> {
    crate::domains::pipelines::opportunities::find_visible(&state.db, &ctx, id, false).await?;
    Ok(Json(
        jtcrm_kernel::timeline::feed(&state.db, ctx.tenant_id, Subject::Opportunity(id), &q)
            .await?,
    ))
}
