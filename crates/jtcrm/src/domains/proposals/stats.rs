//! Read-only statistics of proposals for the dashboards (docs/dashboards.md): SQL text and values.

use jtcrm_types::dto::dashboards::{RawSql, SqlArgs, StatsScope};
use sea_orm::Value;

/// One row `(sent, viewed, accepted)`: live proposals first sent, first viewed and accepted in
/// the period (owner filter on the proposal's owner, pipeline filter on its deal's pipeline is not
/// applied).
pub fn funnel(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = SqlArgs::<Value>::new(pg);
    let mut w = format!(
        "p.tenant_id = {} AND p.deleted_at IS NULL",
        a.p(s.tenant_id)
    );
    if let Some(o) = &s.owners {
        w.push_str(&format!(" AND p.owner_id IN {}", a.list(o)));
    }
    let (st, en) = (a.p(s.start), a.p(s.end));
    let within = |c: &str| format!("{c} >= {st} AND {c} < {en}");
    (
        format!(
            "SELECT \
               CAST(COALESCE(SUM(CASE WHEN {} THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN {} THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN p.status = 'accepted' AND {} THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM proposals p WHERE {w} AND ({} OR {} OR {})",
            within("p.sent_at"),
            within("p.viewed_at"),
            within("p.decided_at"),
            within("p.sent_at"),
            within("p.viewed_at"),
            within("p.decided_at"),
        ),
        a.values,
    )
}
