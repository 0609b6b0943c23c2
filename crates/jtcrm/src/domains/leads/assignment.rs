//! Automatic owner assignment of new leads: `none`, `fixed` (one user) or `round_robin` among the
//! tenant's active sales users. The rotation cursor is a tenant counter incremented in the lead's own
//! transaction, so concurrent creates each get the next user and the rotation stays fair.

use jtcrm_types::dto::Role;
use jtcrm_types::dto::tenants::AssignmentMode;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::domains::users;
use jtcrm_kernel::error::AppResult;
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
    users::service::active_with_role(conn, tenant_id, Role::Sales).await
}

async fn advance<C: ConnectionTrait>(conn: &C, tenant_id: Uuid, n: i64) -> AppResult<i64> {
    jtcrm_kernel::quota::advance(conn, tenant_id, RR_COUNTER, n).await
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
