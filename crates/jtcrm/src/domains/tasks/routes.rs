//! `/api/tasks…`: the agenda, create/update/delete, complete, reschedule, reopen and the summary.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use jtcrm_types::Problem;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::tasks::{
    CompleteTaskRequest, RescheduleRequest, Task, TaskInput, TaskSummary,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::service::{self, TaskQuery};
use jtcrm_kernel::error::AppResult;
use jtcrm_kernel::http::extract::{
    ApiJson, ApiPath, ApiQuery, IfMatch, OptionalJson, TenantCtx, etag,
};
use jtcrm_kernel::http::guard::{Authorized, Staff};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(task_summary))
        .routes(routes!(get_task, replace_task, patch_task, delete_task))
        .routes(routes!(complete_task))
        .routes(routes!(reschedule_task))
        .routes(routes!(reopen_task))
}

/// The agenda: tasks filtered by assignee (`me`), status, type, priority, lead, opportunity and
/// `due` (`overdue`, `today`, `tomorrow`, `this_week`, `no_date` in the company's timezone), sorted
/// by due date then priority.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", security(("bearer" = [])), params(TaskQuery),
    responses((status = 200, body = Page<Task>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_tasks(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiQuery(q): ApiQuery<TaskQuery>,
) -> AppResult<Json<Page<Task>>> {
    Ok(Json(service::list(&state, &ctx, q).await?))
}

/// Create a task (assigned to the caller unless a manager names someone else).
#[utoipa::path(post, path = "/api/tasks", tag = "tasks", security(("bearer" = [])), request_body = TaskInput,
    responses((status = 201, body = Task, headers(("Location" = String))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_task(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiJson(input): ApiJson<TaskInput>,
) -> AppResult<impl IntoResponse> {
    let t = service::create(&state, &ctx, input).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/tasks/{}", t.id))],
        etag(t.version),
        Json(t),
    ))
}

/// Counts of the caller's agenda: overdue, today, this week and completed today.
#[utoipa::path(get, path = "/api/tasks/summary", tag = "tasks", security(("bearer" = [])),
    responses((status = 200, body = TaskSummary)))]
pub async fn task_summary(
    State(state): State<AppState>,
    ctx: TenantCtx,
) -> AppResult<Json<TaskSummary>> {
    Ok(Json(service::summary(&state, &ctx).await?))
}

/// A task with its reschedule history.
#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Task), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_task(
    State(state): State<AppState>,
    ctx: TenantCtx,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<impl IntoResponse> {
    let t = service::get(&state, &ctx, id).await?;
    Ok((etag(t.version), Json(t)))
}

/// Replace a task's fields (absent optional fields are cleared).
#[utoipa::path(put, path = "/api/tasks/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = TaskInput,
    responses((status = 200, body = Task), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn replace_task(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<TaskInput>,
) -> AppResult<impl IntoResponse> {
    let t = service::update(&state, &ctx, id, if_match, input, false).await?;
    Ok((etag(t.version), Json(t)))
}

/// Change some fields of a task.
#[utoipa::path(patch, path = "/api/tasks/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = TaskInput,
    responses((status = 200, body = Task), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn patch_task(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(if_match): IfMatch,
    ApiJson(input): ApiJson<TaskInput>,
) -> AppResult<impl IntoResponse> {
    let t = service::update(&state, &ctx, id, if_match, input, true).await?;
    Ok((etag(t.version), Json(t)))
}

/// Delete a task.
#[utoipa::path(delete, path = "/api/tasks/{id}", tag = "tasks", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_task(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<StatusCode> {
    service::delete(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Complete a task (once: a second completion answers 409). Call, email, WhatsApp and visit tasks
/// mark the lead as contacted.
#[utoipa::path(post, path = "/api/tasks/{id}/complete", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body(content = Option<CompleteTaskRequest>),
    responses((status = 200, body = Task), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn complete_task(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
    OptionalJson(req): OptionalJson<CompleteTaskRequest>,
) -> AppResult<Json<Task>> {
    Ok(Json(
        service::complete(&state, &ctx, id, req.unwrap_or_default()).await?,
    ))
}

/// Move a task's due time; every reschedule is kept and counted.
#[utoipa::path(post, path = "/api/tasks/{id}/reschedule", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = RescheduleRequest,
    responses((status = 200, body = Task), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn reschedule_task(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<RescheduleRequest>,
) -> AppResult<Json<Task>> {
    Ok(Json(service::reschedule(&state, &ctx, id, req).await?))
}

/// Reopen a completed or cancelled task.
#[utoipa::path(post, path = "/api/tasks/{id}/reopen", tag = "tasks", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Task), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn reopen_task(
    State(state): State<AppState>,
    ctx: Authorized<Staff>,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Task>> {
    Ok(Json(service::reopen(&state, &ctx, id).await?))
}
