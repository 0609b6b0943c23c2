//! Read-only statistics of notes for the dashboards (docs/dashboards.md): SQL text and values.

use jtcrm_types::dto::dashboards::{RawSql, SqlArgs, StatsScope};
use sea_orm::Value;

/// Rows `(author_id, hour, count)` of the live notes written in the period, per author and UTC
/// hour (the owner filter applies to the author).
pub fn notes_per_author_hour(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = SqlArgs::<Value>::new(pg);
    let mut w = format!(
        "n.tenant_id = {} AND n.deleted_at IS NULL AND n.created_at >= {} AND n.created_at < {}",
        a.p(s.tenant_id),
        a.p(s.start),
        a.p(s.end)
    );
    if let Some(o) = &s.owners {
        w.push_str(&format!(" AND n.author_id IN {}", a.list(o)));
    }
    let h = a.hour_of("n.created_at");
    (
        format!(
            "SELECT n.author_id, {h} AS h, COUNT(*) FROM notes n WHERE {w} GROUP BY n.author_id, {h}"
        ),
        a.values,
    )
}
