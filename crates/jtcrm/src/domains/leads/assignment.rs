//! Automatic owner assignment of new leads: `none`, `fixed` (one user) or `round_robin` among the
//! tenant's active sales users. The rotation cursor is a tenant counter incremented in the lead's own
//! transaction, so concurrent creates each get the next user and the rotation stays fair.

use jtcrm_types::dto::Role;
use jtcrm_types::dto::tenants::AssignmentMode;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TryInsertResult,
};
use uuid::Uuid;

use crate::domains::tenants::model::counter;
use crate::domains::users::{self, user};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::tenancy::TenantSnapshot;

const RR_COUNTER: &str = "lead_round_robin";

/// The owner a new unowned lead gets under the tenant's assignment mode.
pub async fn pick_owner<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantSnapshot,
) -> AppResult<Option<Uuid>> {
    let cfg = &tenant.settings.lead_assignment;
    match cfg.mode {
        AssignmentMode::None => Ok(None),
        AssignmentMode::Fixed => match cfg.user_id {
            Some(u) if users::is_active_user(conn, tenant.id, u).await? => Ok(Some(u)),
            _ => Ok(None),
        },
        AssignmentMode::RoundRobin => round_robin(conn, tenant.id).await,
    }
}

/// [`pick_owner`] for `n` leads at once (the CSV import): the rotation advances by `n` in one
/// statement, and each lead gets the next seller in turn.
pub async fn pick_owners<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantSnapshot,
    n: usize,
) -> AppResult<Vec<Option<Uuid>>> {
    if tenant.settings.lead_assignment.mode != AssignmentMode::RoundRobin {
        return Ok(vec![pick_owner(conn, tenant).await?; n]);
    }
    let sellers = active_sellers(conn, tenant.id).await?;
    if sellers.is_empty() || n == 0 {
        return Ok(vec![None; n]);
    }
    let last = advance(conn, tenant.id, n as i64).await?;
    let first = last - n as i64 + 1;
    Ok((first..=last)
        .map(|v| {
            sellers
                .get(((v - 1).rem_euclid(sellers.len() as i64)) as usize)
                .copied()
        })
        .collect())
}

async fn active_sellers<C: ConnectionTrait>(conn: &C, tenant_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(user::Entity::find()
        .filter(user::Column::TenantId.eq(tenant_id))
        .filter(user::Column::Role.eq(Role::Sales.as_str()))
        .filter(user::Column::Active.eq(true))
        .filter(user::Column::DeletedAt.is_null())
        .order_by_asc(user::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect())
}

/// Advances the rotation counter by `n` and returns its new value. The UPDATE takes the row lock
/// (PostgreSQL) / the write lock (SQLite) until commit, so the values up to it are ours alone.
async fn advance<C: ConnectionTrait>(conn: &C, tenant_id: Uuid, n: i64) -> AppResult<i64> {
    // The first use creates the row. Two first uses at once: the loser's INSERT waits for the
    // winner's commit and does nothing, and its second UPDATE then counts after the winner's.
    for _ in 0..2 {
        let updated = counter::Entity::update_many()
            .col_expr(
                counter::Column::Count,
                Expr::col(counter::Column::Count).add(n),
            )
            .filter(counter::Column::TenantId.eq(tenant_id))
            .filter(counter::Column::Resource.eq(RR_COUNTER))
            .exec(conn)
            .await?
            .rows_affected;
        if updated == 1 {
            break;
        }
        let inserted = counter::Entity::insert(counter::ActiveModel {
            tenant_id: Set(tenant_id),
            resource: Set(RR_COUNTER.to_string()),
            count: Set(n),
        })
        .on_conflict_do_nothing()
        .exec(conn)
        .await?;
        if matches!(inserted, TryInsertResult::Inserted(_)) {
            break;
        }
    }
    counter::Entity::find_by_id((tenant_id, RR_COUNTER.to_string()))
        .one(conn)
        .await?
        .map(|c| c.count)
        .ok_or_else(|| AppError::internal_msg("round-robin counter missing"))
}

/// The next active `sales` user in the company's rotation (shared with automations).
pub async fn round_robin<C: ConnectionTrait>(conn: &C, tenant_id: Uuid) -> AppResult<Option<Uuid>> {
    let sellers = active_sellers(conn, tenant_id).await?;
    if sellers.is_empty() {
        return Ok(None);
    }
    let n = advance(conn, tenant_id, 1).await?;
    let idx = ((n - 1).rem_euclid(sellers.len() as i64)) as usize;
    Ok(sellers.get(idx).copied())
}
