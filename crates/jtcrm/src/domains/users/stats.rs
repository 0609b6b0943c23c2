//! Read-only user lists for the dashboards: SQL text and values.

use jtcrm_types::dto::dashboards::{RawSql, SqlArgs};
use sea_orm::Value;
use uuid::Uuid;

/// Rows `(id, name, role)` of the active users of the tenant (among `only` when given), by name.
pub fn active_users(pg: bool, tenant_id: Uuid, only: Option<&[Uuid]>) -> RawSql<Value> {
    let mut a = SqlArgs::<Value>::new(pg);
    let mut w = format!(
        "u.tenant_id = {} AND u.active AND u.deleted_at IS NULL",
        a.p(tenant_id)
    );
    if let Some(o) = only {
        w.push_str(&format!(" AND u.id IN {}", a.list(o)));
    }
    (
        format!("SELECT u.id, u.name, u.role FROM users u WHERE {w} ORDER BY u.name, u.id"),
        a.values,
    )
}

/// Rows `(id)`: users of the tenant among `ids` (any state), to tell a known user from an unknown
/// id in filters.
pub fn existing(pg: bool, tenant_id: Uuid, ids: &[Uuid]) -> RawSql<Value> {
    let mut a = SqlArgs::<Value>::new(pg);
    (
        format!(
            "SELECT u.id FROM users u WHERE u.tenant_id = {} AND u.id IN {}",
            a.p(tenant_id),
            a.list(ids)
        ),
        a.values,
    )
}
