//! `/api/jobs`: a tenant admin sees and retries its tenant's jobs; the super-admin sees all jobs,
//! platform jobs included. Another tenant's job is `404`. Payloads are never returned.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use chrono::Utc;
use jtcrm_types::dto::jobs::{Job, JobStatus};
use jtcrm_types::dto::{Page, Role};
use jtcrm_types::{ErrorCode, Problem};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::{AdminCtx, ApiPath, ApiQuery, Auth, RequestMeta};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::jobs::{MAX_KIND_LEN, model, to_dto, wake_workers};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(retry_job))
}

/// Whose jobs the caller may see: one tenant's (its admins) or all (the super-admin).
pub struct JobScope {
    /// `None` for the super-admin.
    pub tenant_id: Option<Uuid>,
    pub actor_id: Uuid,
    pub meta: RequestMeta,
}

impl FromRequestParts<AppState> for JobScope {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        if auth.role == Role::SuperAdmin {
            // Every tenant's jobs: the platform path (jtcrm_kernel::db).
            jtcrm_kernel::db::enter_platform();
            return Ok(JobScope {
                tenant_id: None,
                actor_id: auth.claims.sub,
                meta: auth.meta,
            });
        }
        let ctx = AdminCtx::from_request_parts(parts, state)
            .await?
            .into_inner();
        Ok(JobScope {
            tenant_id: Some(ctx.tenant_id),
            actor_id: ctx.user_id,
            meta: ctx.meta,
        })
    }
}

impl JobScope {
    fn select(&self) -> sea_orm::Select<model::Entity> {
        let sel = model::Entity::find();
        match self.tenant_id {
            Some(t) => sel.filter(model::Column::TenantId.eq(t)),
            None => sel,
        }
    }

    async fn find<C: ConnectionTrait>(&self, conn: &C, id: Uuid) -> AppResult<model::Model> {
        self.select()
            .filter(model::Column::Id.eq(id))
            .one(conn)
            .await?
            .ok_or_else(AppError::not_found)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    pub status: Option<JobStatus>,
    /// Exact kind, e.g. `system.cleanup`.
    pub kind: Option<String>,
    /// Restrict to one tenant (meaningful for the super-admin; a tenant admin only ever sees its own).
    pub tenant_id: Option<Uuid>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

/// List jobs, newest first.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs", security(("bearer" = [])),
    params(JobQuery),
    responses(
        (status = 200, description = "Jobs", body = Page<Job>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    ))]
pub async fn list_jobs(
    State(state): State<AppState>,
    scope: JobScope,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> AppResult<Json<Page<Job>>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = scope.select();
    if let Some(t) = q.tenant_id {
        sel = sel.filter(model::Column::TenantId.eq(t));
    }
    if let Some(s) = q.status {
        sel = sel.filter(model::Column::Status.eq(s.as_str()));
    }
    if let Some(k) = q.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        if k.len() > MAX_KIND_LEN {
            return Err(AppError::field(
                "kind",
                "too_long",
                &format!("Máximo de {MAX_KIND_LEN} caracteres"),
            ));
        }
        sel = sel.filter(model::Column::Kind.eq(k));
    }
    let page = Keyset::desc([model::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    Ok(Json(page.map(to_dto)))
}

/// Get a job.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Job),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_job(
    State(state): State<AppState>,
    scope: JobScope,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Job>> {
    Ok(Json(to_dto(scope.find(&state.db, id).await?)))
}

/// Retry a `failed` or `dead` job now: back to `queued` with `attempts = 0` and `run_at = now`.
/// The retry is recorded in the audit log.
#[utoipa::path(post, path = "/api/jobs/{id}/retry", tag = "jobs", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The job, queued again", body = Job),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not failed or dead", body = Problem, content_type = "application/problem+json")))]
pub async fn retry_job(
    State(state): State<AppState>,
    scope: JobScope,
    ApiPath(id): ApiPath<Uuid>,
) -> AppResult<Json<Job>> {
    use model::Column as C;
    let retryable = [JobStatus::Failed.as_str(), JobStatus::Dead.as_str()];
    let not_retryable = |status: &str| {
        AppError::conflict(
            ErrorCode::InvalidStateTransition,
            "Só é possível reenviar jobs com falha (failed) ou mortos (dead).",
        )
        .with_context(json!({"status": status}))
    };
    let tx = state.begin().await?;
    let current = scope.find(&*tx, id).await?;
    if !retryable.contains(&current.status.as_str()) {
        return Err(not_retryable(&current.status));
    }
    let now = Utc::now();
    // Conditional on the status, so a worker claiming the job concurrently (PostgreSQL) wins
    // cleanly and the caller gets 409 instead of resetting a running job.
    let updated = model::Entity::update_many()
        .set(model::ActiveModel {
            status: Set(JobStatus::Queued.as_str().into()),
            attempts: Set(0),
            run_at: Set(now),
            locked_by: Set(None),
            locked_until: Set(None),
            finished_at: Set(None),
            updated_at: Set(now),
            ..Default::default()
        })
        .filter(C::Id.eq(id))
        .filter(C::Status.is_in(retryable))
        .exec_with_returning(&*tx)
        .await?;
    let Some(job) = updated.into_iter().next() else {
        return Err(not_retryable("running"));
    };
    audit::record(
        &*tx,
        audit::Entry {
            tenant_id: job.tenant_id,
            actor_id: Some(scope.actor_id),
            action: "retry",
            entity_type: "job",
            entity_id: id.to_string(),
            changes: json!({
                "status": {"from": current.status, "to": job.status},
                "attempts": {"from": current.attempts, "to": job.attempts},
            }),
            meta: &scope.meta,
        },
    )
    .await?;
    tx.commit().await?;
    wake_workers();
    Ok(Json(to_dto(job)))
}
