//! Read-only queries other domains use (automations, cadences). They return `jtcrm-types` DTOs,
//! never this domain's entity models.

use std::collections::BTreeSet;

use jtcrm_types::dto::pipelines::Opportunity;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::super::model::opportunity;
use super::super::opportunity_dto;
use jtcrm_kernel::error::AppResult;

/// The opportunity without its items (deleted ones included).
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<Option<Opportunity>> {
    Ok(opportunity::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .map(|o| opportunity_dto(o, None)))
}

/// The lead of the opportunity, when it has one.
pub async fn lead_of<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<Option<Uuid>> {
    let found: Option<Option<Uuid>> = opportunity::Entity::find_by_id((tenant_id, id))
        .select_only()
        .column(opportunity::Column::LeadId)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(found.flatten())
}

/// The lead's most recently updated open opportunity.
pub async fn open_of_lead<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    lead_id: Uuid,
) -> AppResult<Option<Opportunity>> {
    Ok(opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.eq(tenant_id))
        .filter(opportunity::Column::LeadId.eq(lead_id))
        .filter(opportunity::Column::Status.eq("open"))
        .filter(opportunity::Column::DeletedAt.is_null())
        .order_by_desc(opportunity::Column::UpdatedAt)
        .one(conn)
        .await?
        .map(|o| opportunity_dto(o, None)))
}

/// `(tenant_id, opportunity)` of the live opportunities among `tenants × ids` (platform scans).
pub async fn find_live_across<C: ConnectionTrait>(
    conn: &C,
    tenants: &BTreeSet<Uuid>,
    ids: &[Uuid],
) -> AppResult<Vec<(Uuid, Opportunity)>> {
    Ok(opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.is_in(tenants.iter().copied()))
        .filter(opportunity::Column::Id.is_in(ids.iter().copied()))
        .filter(opportunity::Column::DeletedAt.is_null())
        .all(conn)
        .await?
        .into_iter()
        .map(|m| (m.tenant_id, opportunity_dto(m, None)))
        .collect())
}
