//! Read-only statistics of leads for the dashboards (docs/dashboards.md): SQL over this domain's
//! tables, returned as text and values for the caller to run, never models. Only live leads
//! (`deleted_at IS NULL`) count.

use jtcrm_types::dto::dashboards::{RawSql, SqlArgs, StatsScope};
use sea_orm::Value;

type Args = SqlArgs<Value>;

/// `l.tenant_id = … AND l.deleted_at IS NULL` and the owner filter on `l.owner_id`.
fn live(a: &mut Args, s: &StatsScope) -> String {
    let mut w = format!(
        "l.tenant_id = {} AND l.deleted_at IS NULL",
        a.p(s.tenant_id)
    );
    if let Some(o) = &s.owners {
        w.push_str(&format!(" AND l.owner_id IN {}", a.list(o)));
    }
    w
}

fn created_in(a: &mut Args, s: &StatsScope) -> String {
    format!(
        "{} AND l.created_at >= {} AND l.created_at < {}",
        live(a, s),
        a.p(s.start),
        a.p(s.end)
    )
}

/// One row `(count)`: leads created in the period.
pub fn created_count(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = created_in(&mut a, s);
    (format!("SELECT COUNT(*) FROM leads l WHERE {w}"), a.values)
}

/// Rows `(source, leads, with_deal, won)` of the leads created in the period, where `with_deal`
/// and `won` are sub-queries of lead ids (`SELECT lead_id …`) written by `deals` with the same `SqlArgs`.
pub fn by_source(
    pg: bool,
    s: &StatsScope,
    deals: impl Fn(&mut Args, bool) -> String,
) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let with_deal = deals(&mut a, false);
    let won = deals(&mut a, true);
    let w = created_in(&mut a, s);
    (
        format!(
            "SELECT l.source, COUNT(*), \
               CAST(COALESCE(SUM(CASE WHEN l.id IN ({with_deal}) THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN l.id IN ({won}) THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM leads l WHERE {w} GROUP BY l.source ORDER BY l.source"
        ),
        a.values,
    )
}

/// Rows `(owner_id, owned, contacted)`: leads created in the period per owner, and per owner the
/// leads whose last contact falls in the period (whenever they were created).
pub fn owned_and_contacted(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let (st, en) = (a.p(s.start), a.p(s.end));
    let w = live(&mut a, s);
    (
        format!(
            "SELECT l.owner_id, \
               CAST(COALESCE(SUM(CASE WHEN l.created_at >= {st} AND l.created_at < {en} THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN l.last_contacted_at >= {st} AND l.last_contacted_at < {en} THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM leads l WHERE {w} AND l.owner_id IS NOT NULL \
               AND ((l.created_at >= {st} AND l.created_at < {en}) \
                 OR (l.last_contacted_at >= {st} AND l.last_contacted_at < {en})) \
             GROUP BY l.owner_id"
        ),
        a.values,
    )
}

/// Rows `(g, v)`: `g` is 0, `v` the seconds from creation to the first contact of each lead
/// created in the period that has one; `first` is a sub-query `(lead_id, first_at)` written with
/// the same `SqlArgs`.
pub fn first_contact_seconds(
    pg: bool,
    s: &StatsScope,
    first: impl FnOnce(&mut Args) -> String,
) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let f = first(&mut a);
    let w = created_in(&mut a, s);
    let secs = a.seconds_between("l.created_at", "f.first_at");
    (
        format!(
            "SELECT 0 AS g, {secs} AS v FROM leads l \
             JOIN ({f}) f ON f.lead_id = l.id WHERE {w}"
        ),
        a.values,
    )
}

/// Rows `(hour, count)`: leads created in the period per UTC hour.
pub fn created_per_hour(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = created_in(&mut a, s);
    let h = a.hour_of("l.created_at");
    (
        format!("SELECT {h} AS h, COUNT(*) FROM leads l WHERE {w} GROUP BY {h}"),
        a.values,
    )
}
