//! Read-only statistics of tasks for the dashboards (docs/dashboards.md): SQL over this domain's
//! table, returned as text and values for the caller to run. Only live tasks count; the owner
//! filter applies to the assignee.

use chrono::{DateTime, Utc};
use jtcrm_types::dto::dashboards::{RawSql, SqlArgs, StatsScope};
use jtcrm_types::dto::tasks::TaskType;
use sea_orm::Value;

type Args = SqlArgs<Value>;

fn live(a: &mut Args, s: &StatsScope) -> String {
    let mut w = format!(
        "t.tenant_id = {} AND t.deleted_at IS NULL",
        a.p(s.tenant_id)
    );
    if let Some(o) = &s.owners {
        w.push_str(&format!(" AND t.assignee_id IN {}", a.list(o)));
    }
    w
}

/// One row `(due_today, overdue)` of the pending tasks: due in `[day_start, day_end)`, and due
/// before `now`.
pub fn due_and_overdue(
    pg: bool,
    s: &StatsScope,
    day_start: DateTime<Utc>,
    day_end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = live(&mut a, s);
    let (ds, de, n) = (a.p(day_start), a.p(day_end), a.p(now));
    (
        format!(
            "SELECT \
               CAST(COALESCE(SUM(CASE WHEN t.due_sort >= {ds} AND t.due_sort < {de} THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN t.due_sort < {n} THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM tasks t WHERE {w} AND t.status = 'pending' \
               AND (t.due_sort < {n} OR (t.due_sort >= {ds} AND t.due_sort < {de}))"
        ),
        a.values,
    )
}

/// Rows `(assignee_id, done_in_period, overdue_now)`.
pub fn done_and_overdue_by_assignee(pg: bool, s: &StatsScope, now: DateTime<Utc>) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = live(&mut a, s);
    let (st, en, n) = (a.p(s.start), a.p(s.end), a.p(now));
    (
        format!(
            "SELECT t.assignee_id, \
               CAST(COALESCE(SUM(CASE WHEN t.status = 'completed' AND t.completed_at >= {st} AND t.completed_at < {en} THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN t.status = 'pending' AND t.due_sort < {n} THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM tasks t WHERE {w} AND ((t.status = 'completed' AND t.completed_at >= {st} AND t.completed_at < {en}) \
               OR (t.status = 'pending' AND t.due_sort < {n})) GROUP BY t.assignee_id"
        ),
        a.values,
    )
}

/// Rows `(hour, count)` of the tasks completed in the period, per UTC hour.
pub fn completed_per_hour(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = live(&mut a, s);
    let h = a.hour_of("t.completed_at");
    (
        format!(
            "SELECT {h} AS h, COUNT(*) FROM tasks t WHERE {w} AND t.status = 'completed' \
               AND t.completed_at >= {} AND t.completed_at < {} GROUP BY {h}",
            a.p(s.start),
            a.p(s.end)
        ),
        a.values,
    )
}

/// A sub-query `(lead_id, first_at)`: the first completion of a contact task (the completions
/// that set the lead's `last_contacted_at`) of each lead, among the completions from `since` on
/// (the creation of the leads asked about: a lead's tasks are completed after it exists, so the
/// bound only skips rows that cannot matter).
pub fn first_contacts(a: &mut Args, tenant_id: uuid::Uuid, since: DateTime<Utc>) -> String {
    let kinds: Vec<String> = [
        TaskType::Call,
        TaskType::Email,
        TaskType::Meeting,
        TaskType::Whatsapp,
        TaskType::Visit,
        TaskType::FollowUp,
        TaskType::Other,
    ]
    .into_iter()
    .filter(|k| k.is_contact())
    .map(|k| k.as_str().to_string())
    .collect();
    format!(
        "SELECT t.lead_id, MIN(t.completed_at) AS first_at FROM tasks t \
         WHERE t.tenant_id = {} AND t.deleted_at IS NULL AND t.status = 'completed' \
           AND t.completed_at >= {} AND t.lead_id IS NOT NULL AND t.task_type IN {} \
         GROUP BY t.lead_id",
        a.p(tenant_id),
        a.p(since),
        a.list(&kinds)
    )
}
