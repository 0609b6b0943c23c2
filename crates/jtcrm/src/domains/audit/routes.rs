//! `GET /api/audit-logs`: a tenant admin reads its tenant's log; the super-admin reads everyone's.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use jtcrm_types::dto::audit::AuditLog;
use jtcrm_types::dto::{Page, Role};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use jtcrm_kernel::audit::{model, to_dto};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::{AdminCtx, ApiQuery, Auth};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit_logs))
}

/// Whose log the caller may read: one tenant's (admin) or all (super-admin).
pub enum AuditScope {
    Tenant(Uuid),
    Platform,
}

impl FromRequestParts<AppState> for AuditScope {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        if auth.role == Role::SuperAdmin {
            // Every tenant's entries: the platform path (jtcrm_kernel::db).
            jtcrm_kernel::db::enter_platform();
            return Ok(AuditScope::Platform);
        }
        let ctx = AdminCtx::from_request_parts(parts, state).await?;
        Ok(AuditScope::Tenant(ctx.tenant_id))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// e.g. `user`, `tenant`, `plan`.
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor_id: Option<Uuid>,
    pub action: Option<String>,
    /// Only for the super-admin: restrict to one tenant.
    pub tenant_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

/// List audit log entries, newest first.
#[utoipa::path(get, path = "/api/audit-logs", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "Entries", body = Page<AuditLog>),
        (status = 401, body = jtcrm_types::Problem, content_type = "application/problem+json"),
        (status = 403, body = jtcrm_types::Problem, content_type = "application/problem+json"),
        (status = 422, body = jtcrm_types::Problem, content_type = "application/problem+json")
    ))]
pub async fn list_audit_logs(
    State(state): State<AppState>,
    scope: AuditScope,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> AppResult<Json<Page<AuditLog>>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = model::Entity::find();
    match scope {
        AuditScope::Tenant(t) => sel = sel.filter(model::Column::TenantId.eq(t)),
        AuditScope::Platform => {
            if let Some(t) = q.tenant_id {
                sel = sel.filter(model::Column::TenantId.eq(t));
            }
        }
    }
    if let Some(v) = &q.entity_type {
        sel = sel.filter(model::Column::EntityType.eq(v.as_str()));
    }
    if let Some(v) = &q.entity_id {
        sel = sel.filter(model::Column::EntityId.eq(v.as_str()));
    }
    if let Some(v) = q.actor_id {
        sel = sel.filter(model::Column::ActorId.eq(v));
    }
    if let Some(v) = &q.action {
        sel = sel.filter(model::Column::Action.eq(v.as_str()));
    }
    if let Some(v) = q.from {
        sel = sel.filter(model::Column::CreatedAt.gte(v));
    }
    if let Some(v) = q.to {
        sel = sel.filter(model::Column::CreatedAt.lt(v));
    }
    let page = Keyset::desc([model::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    Ok(Json(page.map(to_dto)))
}
