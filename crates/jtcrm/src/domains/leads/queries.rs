//! Read-only queries other domains use (automations, e-mail, tasks). They return `jtcrm-types`
//! DTOs or ids, never this domain's entity models, so no other domain queries the leads tables.

use std::collections::{BTreeSet, HashMap};

use jtcrm_types::dto::leads::Lead;
use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::model::lead;
use super::to_dto;
use jtcrm_kernel::error::AppResult;

/// Whether the lead exists in the tenant (deleted ones included: links to a deleted lead stay valid).
pub async fn exists<C: ConnectionTrait>(conn: &C, tenant_id: Uuid, id: Uuid) -> AppResult<bool> {
    let found: Option<Uuid> = lead::Entity::find_by_id((tenant_id, id))
        .select_only()
        .column(lead::Column::Id)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(found.is_some())
}

/// The live (not deleted) lead.
pub async fn find_live<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> AppResult<Option<Lead>> {
    Ok(lead::Entity::find_by_id((tenant_id, id))
        .one(conn)
        .await?
        .filter(|l| l.deleted_at.is_none())
        .map(to_dto))
}

/// The live leads among `ids` of one tenant.
pub async fn find_live_many<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    ids: impl IntoIterator<Item = Uuid>,
) -> AppResult<Vec<Lead>> {
    Ok(lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant_id))
        .filter(lead::Column::Id.is_in(ids))
        .filter(lead::Column::DeletedAt.is_null())
        .all(conn)
        .await?
        .into_iter()
        .map(to_dto)
        .collect())
}

/// The live leads whose `(tenant_id, id)` is among `tenants × ids` (platform scans; the caller
/// matches each on its own tenant).
pub async fn find_live_across<C: ConnectionTrait>(
    conn: &C,
    tenants: &BTreeSet<Uuid>,
    ids: &[Uuid],
) -> AppResult<Vec<Lead>> {
    Ok(lead::Entity::find()
        .filter(lead::Column::TenantId.is_in(tenants.iter().copied()))
        .filter(lead::Column::Id.is_in(ids.iter().copied()))
        .filter(lead::Column::DeletedAt.is_null())
        .all(conn)
        .await?
        .into_iter()
        .map(to_dto)
        .collect())
}

/// `(tenant_id, id)` of the live leads among `tenants × ids` (an existence check: one narrow query).
pub async fn live_keys_across<C: ConnectionTrait>(
    conn: &C,
    tenants: &BTreeSet<Uuid>,
    ids: &[Uuid],
) -> AppResult<Vec<(Uuid, Uuid)>> {
    Ok(lead::Entity::find()
        .select_only()
        .column(lead::Column::TenantId)
        .column(lead::Column::Id)
        .filter(lead::Column::TenantId.is_in(tenants.iter().copied()))
        .filter(lead::Column::Id.is_in(ids.iter().copied()))
        .filter(lead::Column::DeletedAt.is_null())
        .into_tuple()
        .all(conn)
        .await?)
}

/// `id → (tenant_id, name)` of the leads among `ids` (any tenant; the caller checks the tenant).
pub async fn names_of<C: ConnectionTrait>(
    conn: &C,
    ids: impl IntoIterator<Item = Uuid>,
) -> AppResult<HashMap<Uuid, (Uuid, String)>> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(lead::Entity::find()
        .select_only()
        .column(lead::Column::Id)
        .column(lead::Column::TenantId)
        .column(lead::Column::Name)
        .filter(lead::Column::Id.is_in(ids))
        .into_tuple::<(Uuid, Uuid, String)>()
        .all(conn)
        .await?
        .into_iter()
        .map(|(id, t, name)| (id, (t, name)))
        .collect())
}

/// A sub-query of the ids of the tenant's leads owned by `user_id` (for `IN (…)` filters of
/// records that belong to a lead).
pub fn owned_by(tenant_id: Uuid, user_id: Uuid) -> SelectStatement {
    let mut q = Query::select();
    q.column(lead::Column::Id)
        .from(lead::Entity)
        .and_where(Expr::col(lead::Column::TenantId).eq(tenant_id))
        .and_where(Expr::col(lead::Column::OwnerId).eq(user_id));
    q
}

/// Records a contact with the lead at `at` (a completed call, e-mail, meeting… task): sets
/// `last_contacted_at` and bumps the version, in the caller's transaction.
pub async fn touch_contacted<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    lead::Entity::update_many()
        .col_expr(lead::Column::LastContactedAt, Expr::value(at))
        .col_expr(lead::Column::UpdatedAt, Expr::value(at))
        .col_expr(
            lead::Column::Version,
            Expr::col(lead::Column::Version).add(1),
        )
        .filter(lead::Column::TenantId.eq(tenant_id))
        .filter(lead::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The live leads of the tenant whose phone (E.164) is one of `phones`, newest first (caller
/// identification: a call matched to its lead by number), at most 20 × `phones.len()` rows. Uses
/// `ix_leads_phone`.
pub async fn live_by_phones<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    phones: &[String],
) -> AppResult<Vec<Lead>> {
    if phones.is_empty() {
        return Ok(vec![]);
    }
    Ok(lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant_id))
        .filter(lead::Column::Phone.is_in(phones.iter().cloned()))
        .filter(lead::Column::DeletedAt.is_null())
        .order_by_desc(lead::Column::CreatedAt)
        .order_by_desc(lead::Column::Id)
        .limit((phones.len() as u64).saturating_mul(20))
        .all(conn)
        .await?
        .into_iter()
        .map(to_dto)
        .collect())
}
