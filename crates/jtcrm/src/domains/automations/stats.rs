//! Read-only statistics of automation runs for the dashboards (docs/dashboards.md): SQL text and
//! values. Automations act for the company, so no owner filter applies.

use jtcrm_types::dto::dashboards::{RawSql, SqlArgs, StatsScope};
use sea_orm::Value;

/// One row `(runs, succeeded, actions)`: runs started in the period, those that succeeded, and
/// the actions that succeeded in the period.
pub fn runs(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = SqlArgs::<Value>::new(pg);
    let (t, st, en) = (a.p(s.tenant_id), a.p(s.start), a.p(s.end));
    (
        format!(
            "SELECT \
               (SELECT COUNT(*) FROM automation_runs r WHERE r.tenant_id = {t} AND r.created_at >= {st} AND r.created_at < {en}), \
               (SELECT COUNT(*) FROM automation_runs r WHERE r.tenant_id = {t} AND r.created_at >= {st} AND r.created_at < {en} AND r.status = 'succeeded'), \
               (SELECT COUNT(*) FROM automation_run_actions x WHERE x.tenant_id = {t} AND x.status = 'succeeded' AND x.finished_at >= {st} AND x.finished_at < {en})"
        ),
        a.values,
    )
}
