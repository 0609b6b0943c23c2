//! Per-tenant counters (`tenant_counters`): plan-limit usage and named sequences. A reservation is
//! one conditional UPDATE, so concurrent creates can never pass the limit, and it rolls back with the
//! transaction it joins. Every domain that creates a limited resource reserves here; the platform
//! (`tenants`) creates the rows and reports usage.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TryInsertResult,
};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// The `tenant_counters` table.
pub mod counter {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenant_counters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub resource: String,
        pub count: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

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

/// Units of `resource` in use (0 when the tenant has no row yet).
pub async fn used<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    resource: Resource,
) -> AppResult<i64> {
    Ok(
        counter::Entity::find_by_id((tenant_id, resource.key().to_string()))
            .one(conn)
            .await?
            .map(|c| c.count)
            .unwrap_or(0),
    )
}

/// Advances the named sequence `key` (not a plan resource, e.g. a round-robin rotation) by `n` and
/// returns its new value. The UPDATE takes the row lock (PostgreSQL) / the write lock (SQLite) until
/// commit, so the values up to it belong to the caller's transaction alone.
pub async fn advance<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    key: &str,
    n: i64,
) -> AppResult<i64> {
    // The first use creates the row. Two first uses at once: the loser's INSERT waits for the
    // winner's commit and does nothing, and its second UPDATE then counts after the winner's.
    for _ in 0..2 {
        let updated = counter::Entity::update_many()
            .col_expr(
                counter::Column::Count,
                Expr::col(counter::Column::Count).add(n),
            )
            .filter(counter::Column::TenantId.eq(tenant_id))
            .filter(counter::Column::Resource.eq(key))
            .exec(conn)
            .await?
            .rows_affected;
        if updated == 1 {
            break;
        }
        let inserted = counter::Entity::insert(counter::ActiveModel {
            tenant_id: Set(tenant_id),
            resource: Set(key.to_string()),
            count: Set(n),
        })
        .on_conflict_do_nothing()
        .exec(conn)
        .await?;
        if matches!(inserted, TryInsertResult::Inserted(_)) {
            break;
        }
    }
    counter::Entity::find_by_id((tenant_id, key.to_string()))
        .one(conn)
        .await?
        .map(|c| c.count)
        .ok_or_else(|| AppError::internal_msg("tenant counter missing"))
}
