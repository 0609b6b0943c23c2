//! Plan-limit counters per tenant (`tenant_counters`). A reservation is one conditional UPDATE, so
//! concurrent creates can never pass the limit, and it rolls back with the transaction it joins.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::model::counter;
use jtcrm_kernel::error::{AppError, AppResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Users,
    Leads,
    Pipelines,
    Extensions,
    Automations,
}

impl Resource {
    pub const ALL: [Resource; 5] = [
        Resource::Users,
        Resource::Leads,
        Resource::Pipelines,
        Resource::Extensions,
        Resource::Automations,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Resource::Users => "users",
            Resource::Leads => "leads",
            Resource::Pipelines => "pipelines",
            Resource::Extensions => "extensions",
            Resource::Automations => "automations",
        }
    }

    /// Name of the plan limit, as reported in `plan_limit_exceeded` errors.
    pub fn limit_name(self) -> &'static str {
        match self {
            Resource::Users => "max_users",
            Resource::Leads => "max_leads",
            Resource::Pipelines => "max_pipelines",
            Resource::Extensions => "max_extensions",
            Resource::Automations => "max_automations",
        }
    }
}

/// Creates the counter rows of a new tenant (idempotent).
pub async fn init<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    initial: &[(Resource, i64)],
) -> AppResult<()> {
    for r in Resource::ALL {
        let count = initial
            .iter()
            .find(|(k, _)| *k == r)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        let row = counter::ActiveModel {
            tenant_id: Set(tenant_id),
            resource: Set(r.key().to_string()),
            count: Set(count),
        };
        counter::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Takes `n` units of `resource`, or fails with `402 plan_limit_exceeded` when that would pass `max`.
pub async fn reserve<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    resource: Resource,
    n: i64,
    max: Option<i64>,
) -> AppResult<()> {
    let mut upd = counter::Entity::update_many()
        .col_expr(
            counter::Column::Count,
            Expr::col(counter::Column::Count).add(n),
        )
        .filter(counter::Column::TenantId.eq(tenant_id))
        .filter(counter::Column::Resource.eq(resource.key()));
    if let Some(max) = max {
        upd = upd.filter(counter::Column::Count.lte(max - n));
    }
    if upd.exec(conn).await?.rows_affected == 1 {
        return Ok(());
    }
    let exists = counter::Entity::find_by_id((tenant_id, resource.key().to_string()))
        .one(conn)
        .await?
        .is_some();
    if exists {
        return Err(AppError::plan_limit(
            resource.limit_name(),
            max.unwrap_or(0),
        ));
    }
    // Tenants created before this resource existed get their row lazily, counted from zero.
    init(conn, tenant_id, &[]).await?;
    Box::pin(reserve(conn, tenant_id, resource, n, max)).await
}

/// Gives back `n` units (deletes, deactivations). Never goes below zero.
pub async fn release<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    resource: Resource,
    n: i64,
) -> AppResult<()> {
    counter::Entity::update_many()
        .col_expr(
            counter::Column::Count,
            Expr::col(counter::Column::Count).sub(n),
        )
        .filter(counter::Column::TenantId.eq(tenant_id))
        .filter(counter::Column::Resource.eq(resource.key()))
        .filter(counter::Column::Count.gte(n))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn counts<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
) -> AppResult<Vec<(String, i64)>> {
    let rows = counter::Entity::find()
        .filter(counter::Column::TenantId.eq(tenant_id))
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.resource, r.count)).collect())
}
