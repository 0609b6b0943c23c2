//! Read-only statistics of deals for the dashboards (docs/dashboards.md): SQL over this domain's
//! tables, returned as text and values for the caller to run, never models. Only live deals
//! (`deleted_at IS NULL`) count; "won/lost in the period" is the deal's current status with its
//! `closed_at` in the period (a reopened deal leaves the figures until it closes again).

use jtcrm_types::dto::dashboards::{RawSql, SqlArgs, StatsScope};
use sea_orm::Value;
use uuid::Uuid;

type Args = SqlArgs<Value>;

/// Live deals of the tenant, with the owner and pipeline filters, on alias `o`.
fn live(a: &mut Args, s: &StatsScope) -> String {
    let mut w = format!(
        "o.tenant_id = {} AND o.deleted_at IS NULL",
        a.p(s.tenant_id)
    );
    if let Some(o) = &s.owners {
        w.push_str(&format!(" AND o.owner_id IN {}", a.list(o)));
    }
    if let Some(p) = s.pipeline_id {
        w.push_str(&format!(" AND o.pipeline_id = {}", a.p(p)));
    }
    w
}

fn closed_in(a: &mut Args, s: &StatsScope, status: &str) -> String {
    format!(
        "{} AND o.status = {} AND o.closed_at >= {} AND o.closed_at < {}",
        live(a, s),
        a.p(status),
        a.p(s.start),
        a.p(s.end)
    )
}

/// One row `(count, mrr, tcv)` of the open deals now, from the board's per-stage totals (kept
/// exact by triggers, migration 8).
pub fn open_totals(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let mut w = format!("t.tenant_id = {} AND st.kind = 'open'", a.p(s.tenant_id));
    if let Some(o) = &s.owners {
        w.push_str(&format!(" AND t.owner_key IN {}", a.list(o)));
    }
    if let Some(p) = s.pipeline_id {
        w.push_str(&format!(" AND t.pipeline_id = {}", a.p(p)));
    }
    (
        format!(
            "SELECT CAST(COALESCE(SUM(t.n), 0) AS BIGINT), CAST(COALESCE(SUM(t.mrr_cents), 0) AS BIGINT), \
               CAST(COALESCE(SUM(t.tcv_cents), 0) AS BIGINT) \
             FROM pipeline_stage_totals t \
             JOIN pipeline_stages st ON st.tenant_id = t.tenant_id AND st.id = t.stage_id WHERE {w}"
        ),
        a.values,
    )
}

/// One row `(count, mrr, tcv, setup)` of the deals `status` (`won`/`lost`) closed in the period.
pub fn closed(pg: bool, s: &StatsScope, status: &str) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = closed_in(&mut a, s, status);
    (
        format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(o.mrr_cents), 0) AS BIGINT), \
               CAST(COALESCE(SUM(o.tcv_cents), 0) AS BIGINT), CAST(COALESCE(SUM(o.setup_cents), 0) AS BIGINT) \
             FROM opportunities o WHERE {w}"
        ),
        a.values,
    )
}

/// Rows `(reason, count)`: the 5 most frequent lost reasons of the period.
pub fn lost_reasons(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = closed_in(&mut a, s, "lost");
    (
        format!(
            "SELECT o.lost_reason, COUNT(*) AS n FROM opportunities o WHERE {w} \
             GROUP BY o.lost_reason ORDER BY n DESC, o.lost_reason LIMIT 5"
        ),
        a.values,
    )
}

/// Rows `(owner_id, won, lost, won_mrr)` of the deals closed in the period, per owner.
pub fn closed_by_owner(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = live(&mut a, s);
    let (st, en) = (a.p(s.start), a.p(s.end));
    (
        format!(
            "SELECT o.owner_id, \
               CAST(COALESCE(SUM(CASE WHEN o.status = 'won' THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN o.status = 'lost' THEN 1 ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN o.status = 'won' THEN o.mrr_cents ELSE 0 END), 0) AS BIGINT) \
             FROM opportunities o WHERE {w} AND o.owner_id IS NOT NULL AND o.status IN ('won', 'lost') \
               AND o.closed_at >= {st} AND o.closed_at < {en} GROUP BY o.owner_id"
        ),
        a.values,
    )
}

/// Rows `(0, seconds)`: creation to win of each deal won in the period.
pub fn cycle_seconds(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = closed_in(&mut a, s, "won");
    let secs = a.seconds_between("o.created_at", "o.closed_at");
    (
        format!("SELECT 0 AS g, {secs} AS v FROM opportunities o WHERE {w}"),
        a.values,
    )
}

/// A sub-query `SELECT o.lead_id …` of the leads that have a live deal (`won`: a won deal), with
/// the pipeline filter (not the owner's: the lead's owner is the one filtered).
pub fn lead_ids_with_deal(a: &mut Args, s: &StatsScope, won: bool) -> String {
    let mut w = format!(
        "o.tenant_id = {} AND o.deleted_at IS NULL AND o.lead_id IS NOT NULL",
        a.p(s.tenant_id)
    );
    if won {
        w.push_str(" AND o.status = 'won'");
    }
    if let Some(p) = s.pipeline_id {
        w.push_str(&format!(" AND o.pipeline_id = {}", a.p(p)));
    }
    format!("SELECT o.lead_id FROM opportunities o WHERE {w}")
}

/// One row `(id, name)`: the pipeline `id`, or the default one (live pipelines only).
pub fn pipeline(pg: bool, tenant_id: Uuid, id: Option<Uuid>) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = match id {
        Some(id) => format!("p.tenant_id = {} AND p.id = {}", a.p(tenant_id), a.p(id)),
        None => format!("p.tenant_id = {} AND p.is_default", a.p(tenant_id)),
    };
    (
        format!(
            "SELECT p.id, p.name FROM pipelines p WHERE {w} AND p.deleted_at IS NULL \
             ORDER BY p.created_at LIMIT 1"
        ),
        a.values,
    )
}

/// Rows `(id, name, position, kind, probability)`: the stages of a pipeline in board order.
pub fn stages(pg: bool, tenant_id: Uuid, pipeline_id: Uuid) -> RawSql<Value> {
    let mut a = Args::new(pg);
    (
        format!(
            "SELECT st.id, st.name, st.position, st.kind, st.probability FROM pipeline_stages st \
             WHERE st.tenant_id = {} AND st.pipeline_id = {} ORDER BY st.position, st.id",
            a.p(tenant_id),
            a.p(pipeline_id)
        ),
        a.values,
    )
}

/// Rows `(stage_id, cards, value, mrr, value × probability)` of the live deals now in each stage
/// of the scope's pipeline, from the board's per-stage totals.
pub fn stage_totals(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let mut w = format!("t.tenant_id = {}", a.p(s.tenant_id));
    if let Some(p) = s.pipeline_id {
        w.push_str(&format!(" AND t.pipeline_id = {}", a.p(p)));
    }
    if let Some(o) = &s.owners {
        w.push_str(&format!(" AND t.owner_key IN {}", a.list(o)));
    }
    (
        format!(
            "SELECT t.stage_id, CAST(SUM(t.n) AS BIGINT), CAST(SUM(t.value_cents) AS BIGINT), \
               CAST(SUM(t.mrr_cents) AS BIGINT), CAST(SUM(t.weighted_x100) AS BIGINT) \
             FROM pipeline_stage_totals t WHERE {w} GROUP BY t.stage_id"
        ),
        a.values,
    )
}

/// Rows `(position, deals)`: of the deals created in the period in the scope's pipeline, how many
/// reached at most the stage at `position` (the furthest open or won stage they ever entered,
/// from the stage history).
pub fn furthest_stage(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = live(&mut a, s);
    let (st, en) = (a.p(s.start), a.p(s.end));
    (
        format!(
            "SELECT x.m, COUNT(*) FROM ( \
               SELECT h.opportunity_id, MAX(st.position) AS m \
               FROM opportunities o \
               JOIN opportunity_stage_history h ON h.tenant_id = o.tenant_id AND h.opportunity_id = o.id \
               JOIN pipeline_stages st ON st.tenant_id = h.tenant_id AND st.id = h.to_stage_id \
                 AND st.pipeline_id = o.pipeline_id \
               WHERE {w} AND o.created_at >= {st} AND o.created_at < {en} AND st.kind <> 'lost' \
               GROUP BY h.opportunity_id) x GROUP BY x.m"
        ),
        a.values,
    )
}

/// Rows `(stage_id, seconds)`: the time each live deal of the scope spent in a stage, for every
/// stage it left during the period (stage history `seconds_in_from_stage`).
pub fn stage_seconds(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = live(&mut a, s);
    let (st, en) = (a.p(s.start), a.p(s.end));
    (
        format!(
            "SELECT h.from_stage_id AS g, CAST(h.seconds_in_from_stage AS DOUBLE PRECISION) AS v \
             FROM opportunities o \
             JOIN opportunity_stage_history h ON h.tenant_id = o.tenant_id AND h.opportunity_id = o.id \
             WHERE {w} AND h.created_at >= {st} AND h.created_at < {en} \
               AND h.from_stage_id IS NOT NULL AND h.seconds_in_from_stage IS NOT NULL"
        ),
        a.values,
    )
}

/// Rows `(hour, mrr)`: MRR of the deals won in the period per UTC hour of their `closed_at`.
pub fn won_mrr_per_hour(pg: bool, s: &StatsScope) -> RawSql<Value> {
    let mut a = Args::new(pg);
    let w = closed_in(&mut a, s, "won");
    let h = a.hour_of("o.closed_at");
    (
        format!(
            "SELECT {h} AS h, CAST(COALESCE(SUM(o.mrr_cents), 0) AS BIGINT) FROM opportunities o \
             WHERE {w} GROUP BY {h}"
        ),
        a.values,
    )
}
