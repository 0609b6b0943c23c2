//! Read-only queries other domains use (automations). They return `jtcrm-types` DTOs, never this
//! domain's entity models.

use std::collections::BTreeSet;

use jtcrm_types::dto::tasks::Task;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::model::task;
use super::to_dto;
use jtcrm_kernel::error::AppResult;

/// The task (deleted ones included, as the automations engine reads the subject of an event).
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<Option<Task>> {
    Ok(task::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .map(to_dto))
}

/// `(tenant_id, task)` of the live tasks among `tenants × ids` (platform scans).
pub async fn find_live_across<C: ConnectionTrait>(
    conn: &C,
    tenants: &BTreeSet<Uuid>,
    ids: &[Uuid],
) -> AppResult<Vec<(Uuid, Task)>> {
    Ok(task::Entity::find()
        .filter(task::Column::TenantId.is_in(tenants.iter().copied()))
        .filter(task::Column::Id.is_in(ids.iter().copied()))
        .filter(task::Column::DeletedAt.is_null())
        .all(conn)
        .await?
        .into_iter()
        .map(|m| (m.tenant_id, to_dto(m)))
        .collect())
}
