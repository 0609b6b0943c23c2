//! The dashboards' figures (docs/dashboards.md defines each one). Every figure is an aggregate in
//! SQL over the records and histories the other domains write, read through their `stats`
//! modules; nothing here keeps its own copy of them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use jtcrm_types::dto::dashboards::{
    AppliedFilters, AutomationFigures, Availability, Change, Conversion, DashboardQuery,
    FunnelStage, Interval, KpiFigures, LeadFunnel, LostFigures, MoneyCount, OverviewFigures,
    ProposalFigures, QuotaAttainment, ReasonCount, Report, SalesFunnel, SellerPerformance, Series,
    SeriesMetric, SeriesPoint, SourceFunnel, StatsScope, TaskFigures, TeamPerformance, WonFigures,
};
use serde::Serialize;
use serde_json::Value as Json;
use uuid::Uuid;

use super::period::{self, Period};
use super::quotas;
use super::sql::{col, duration, durations, ints, is_pg, per_day, rate, round, rows};
use crate::domains::{automations, leads, pipelines, proposals, tasks, timeline, users};
use jtcrm_kernel::db::Db;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::visibility::sees_all;

/// Most ids `team` may list.
const MAX_TEAM: usize = 200;

/// A parsed and authorised dashboard request.
#[derive(Debug, Clone)]
pub struct Params {
    pub period: Period,
    pub compare: bool,
    pub csv: bool,
    pub owners: Option<Vec<Uuid>>,
    pub pipeline_id: Option<Uuid>,
    pub tenant_id: Uuid,
    pub now: DateTime<Utc>,
}

impl Params {
    pub fn scope(&self, p: &Period) -> StatsScope {
        StatsScope {
            tenant_id: self.tenant_id,
            start: p.start(),
            end: p.end(),
            owners: self.owners.clone(),
            pipeline_id: self.pipeline_id,
        }
    }

    pub fn filters(&self) -> AppliedFilters {
        AppliedFilters {
            pipeline_id: self.pipeline_id,
            owner_ids: self.owners.clone(),
        }
    }

    fn tz(&self) -> Tz {
        self.period.tz
    }
}

fn bad(field: &str, code: &str, msg: &str) -> AppError {
    AppError::field(field, code, msg)
}

fn parse_uuid(field: &str, v: &str) -> AppResult<Uuid> {
    Uuid::parse_str(v.trim()).map_err(|_| bad(field, "invalid_id", "Identificador inválido"))
}

/// Reads the common parameters, checks the ids they name exist in the tenant (404 otherwise)
/// and applies visibility: sales and support users without team visibility get their own
/// figures, and `403` when they ask for someone else's.
pub async fn parse(state: &AppState, ctx: &TenantCtx, q: &DashboardQuery) -> AppResult<Params> {
    let tz = tasks::agenda::tz_of(&ctx.tenant.settings.timezone);
    let now = Utc::now();
    let period = period::resolve(
        tz,
        now,
        q.period.as_deref(),
        q.from.as_deref(),
        q.to.as_deref(),
    )?;
    let compare = match q.compare.as_deref().map(str::trim) {
        None => false,
        Some("previous_period") => true,
        Some(_) => {
            return Err(bad(
                "compare",
                "invalid_value",
                "Use compare=previous_period",
            ));
        }
    };
    let csv = match q.format.as_deref().map(str::trim) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(bad("format", "invalid_value", "Use format=json ou csv")),
    };
    let pipeline_id = q
        .pipeline_id
        .as_deref()
        .map(|v| parse_uuid("pipeline_id", v))
        .transpose()?;
    let mut owners: Option<Vec<Uuid>> = match q.owner_id.as_deref().map(str::trim) {
        None => None,
        Some("me") => Some(vec![ctx.user_id]),
        Some(v) => Some(vec![parse_uuid("owner_id", v)?]),
    };
    if let Some(team) = q.team.as_deref() {
        let mut ids = Vec::new();
        for part in team.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let id = if part == "me" {
                ctx.user_id
            } else {
                parse_uuid("team", part)?
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.is_empty() || ids.len() > MAX_TEAM {
            return Err(bad(
                "team",
                "invalid_value",
                "Informe de 1 a 200 ids de usuário separados por vírgula",
            ));
        }
        owners = Some(match owners {
            // Both: the owner, if in the team.
            Some(o) => o.into_iter().filter(|id| ids.contains(id)).collect(),
            None => ids,
        });
    }
    if !sees_all(ctx) {
        match &owners {
            Some(o) if o.iter().any(|id| *id != ctx.user_id) => {
                return Err(AppError::forbidden());
            }
            _ => owners = Some(vec![ctx.user_id]),
        }
    }
    let db = &state.db;
    let pg = is_pg(db);
    if let Some(o) = &owners {
        let others: Vec<Uuid> = o.iter().copied().filter(|id| *id != ctx.user_id).collect();
        if !others.is_empty() {
            let found = rows(db, users::stats::existing(pg, ctx.tenant_id, &others)).await?;
            if found.len() != others.len() {
                return Err(AppError::not_found());
            }
        }
    }
    if let Some(p) = pipeline_id
        && rows(db, pipelines::stats::pipeline(pg, ctx.tenant_id, Some(p)))
            .await?
            .is_empty()
    {
        return Err(AppError::not_found());
    }
    Ok(Params {
        period,
        compare,
        csv,
        owners,
        pipeline_id,
        tenant_id: ctx.tenant_id,
        now,
    })
}

// ---------- change against the previous period ----------

fn leaves(prefix: &str, v: &Json, out: &mut BTreeMap<String, f64>) {
    match v {
        Json::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, x, out);
            }
        }
        Json::Number(n) => {
            if let Some(f) = n.as_f64() {
                out.insert(prefix.to_string(), f);
            }
        }
        _ => {}
    }
}

/// Numeric leaves of a figures object by dotted path (arrays, booleans and nulls skipped).
pub fn numbers<T: Serialize>(t: &T) -> AppResult<BTreeMap<String, f64>> {
    let v = serde_json::to_value(t).map_err(AppError::internal)?;
    let mut out = BTreeMap::new();
    leaves("", &v, &mut out);
    Ok(out)
}

fn changes<T: Serialize>(cur: &T, prev: &T) -> AppResult<BTreeMap<String, Change>> {
    let (c, p) = (numbers(cur)?, numbers(prev)?);
    Ok(c.into_iter()
        .filter_map(|(k, v)| {
            let before = *p.get(&k)?;
            Some((
                k,
                Change {
                    absolute: round(v - before, 4),
                    relative: (before != 0.0).then(|| round((v - before) / before, 4)),
                },
            ))
        })
        .collect())
}

async fn report<T, F, Fut>(p: &Params, figures: F) -> AppResult<Report<T>>
where
    T: Serialize,
    F: Fn(Period) -> Fut,
    Fut: std::future::Future<Output = AppResult<T>>,
{
    let current = figures(p.period.clone()).await?;
    let (previous_period, previous, change) = if p.compare {
        let prev = p.period.previous();
        let fig = figures(prev.clone()).await?;
        let ch = changes(&current, &fig)?;
        (Some(prev.dto()), Some(fig), Some(ch))
    } else {
        (None, None, None)
    };
    Ok(Report {
        period: p.period.dto(),
        filters: p.filters(),
        current,
        previous_period,
        previous,
        change,
    })
}

// ---------- overview ----------

async fn overview_of(db: &Db, p: &Params, period: &Period) -> AppResult<OverviewFigures> {
    let pg = is_pg(db);
    let s = p.scope(period);
    let [new_leads] = ints::<_, 1>(db, leads::stats::created_count(pg, &s)).await?;
    let [n, mrr, tcv] = ints::<_, 3>(db, pipelines::stats::open_totals(pg, &s)).await?;
    let [wc, wm, wt, ws] = ints::<_, 4>(db, pipelines::stats::closed(pg, &s, "won")).await?;
    let [lc, lm, lt, _] = ints::<_, 4>(db, pipelines::stats::closed(pg, &s, "lost")).await?;
    let mut top_reasons = Vec::new();
    for r in rows(db, pipelines::stats::lost_reasons(pg, &s)).await? {
        top_reasons.push(ReasonCount {
            reason: col(&r, 0)?,
            count: col(&r, 1)?,
        });
    }
    let today = tasks::agenda::ranges(p.tz(), p.now).today;
    let [due_today, overdue] = ints::<_, 2>(
        db,
        tasks::stats::due_and_overdue(pg, &s, today.0, today.1, p.now),
    )
    .await?;
    let [sent, viewed, accepted] = ints::<_, 3>(db, proposals::stats::funnel(pg, &s)).await?;
    Ok(OverviewFigures {
        new_leads,
        open_opportunities: MoneyCount {
            count: n,
            mrr_cents: mrr,
            tcv_cents: tcv,
        },
        won: WonFigures {
            count: wc,
            mrr_cents: wm,
            tcv_cents: wt,
            setup_cents: ws,
        },
        lost: LostFigures {
            count: lc,
            mrr_cents: lm,
            tcv_cents: lt,
            top_reasons,
        },
        tasks: TaskFigures { due_today, overdue },
        calls_today: Availability::UNAVAILABLE,
        proposals: ProposalFigures {
            available: true,
            sent,
            viewed,
            accepted,
        },
    })
}

pub async fn overview(state: &AppState, p: &Params) -> AppResult<Report<OverviewFigures>> {
    let db = &state.db;
    report(p, |period| async move { overview_of(db, p, &period).await }).await
}

// ---------- KPIs ----------

/// Activities (tasks completed + notes written) per local day, per user.
async fn activities_per_day(
    db: &Db,
    s: &StatsScope,
    tz: Tz,
) -> AppResult<BTreeMap<NaiveDate, i64>> {
    let pg = is_pg(db);
    let mut days = per_day(db, tasks::stats::completed_per_hour(pg, s), tz, 0, 1).await?;
    for (d, n) in per_day(db, timeline::stats::notes_per_author_hour(pg, s), tz, 1, 2).await? {
        *days.entry(d).or_insert(0) += n;
    }
    Ok(days)
}

async fn lead_funnels(db: &Db, s: &StatsScope) -> AppResult<(LeadFunnel, Vec<SourceFunnel>)> {
    let pg = is_pg(db);
    let raw = leads::stats::by_source(pg, s, |a, won| {
        pipelines::stats::lead_ids_with_deal(a, s, won)
    });
    let mut total = (0, 0, 0);
    let mut by_source = Vec::new();
    for r in rows(db, raw).await? {
        let (n, d, w): (i64, i64, i64) = (col(&r, 1)?, col(&r, 2)?, col(&r, 3)?);
        total = (total.0 + n, total.1 + d, total.2 + w);
        by_source.push(SourceFunnel {
            source: col(&r, 0)?,
            funnel: lead_funnel(n, d, w),
        });
    }
    Ok((lead_funnel(total.0, total.1, total.2), by_source))
}

fn lead_funnel(leads: i64, with_opportunity: i64, won: i64) -> LeadFunnel {
    LeadFunnel {
        leads,
        with_opportunity,
        won,
        lead_to_opportunity: rate(with_opportunity, leads),
        opportunity_to_won: rate(won, with_opportunity),
        lead_to_won: rate(won, leads),
    }
}

async fn kpis_of(db: &Db, p: &Params, period: &Period) -> AppResult<KpiFigures> {
    let pg = is_pg(db);
    let s = p.scope(period);
    let [wc, wm, wt, _] = ints::<_, 4>(db, pipelines::stats::closed(pg, &s, "won")).await?;
    let [lc, _, lt, _] = ints::<_, 4>(db, pipelines::stats::closed(pg, &s, "lost")).await?;
    let avg = |sum: i64| (wc > 0).then(|| (sum as f64 / wc as f64).round() as i64);
    let sales_cycle_days = duration(db, pipelines::stats::cycle_seconds(pg, &s), 86400.0).await?;
    let (leads_funnel, _) = lead_funnels(db, &s).await?;
    let first = leads::stats::first_contact_seconds(pg, &s, |a| {
        tasks::stats::first_contacts(a, s.tenant_id, s.start)
    });
    let time_to_first_contact_hours = duration(db, first, 3600.0).await?;
    let activities: i64 = activities_per_day(db, &s, period.tz).await?.values().sum();
    let sellers = match &s.owners {
        Some(o) => o.len() as i64,
        None => rows(db, users::stats::active_users(pg, s.tenant_id, None))
            .await?
            .iter()
            .map(|r| col::<String>(r, 2))
            .collect::<AppResult<Vec<_>>>()?
            .iter()
            .filter(|role| role.as_str() == "sales")
            .count() as i64,
    };
    let [runs, succeeded, actions] = ints::<_, 3>(db, automations::stats::runs(pg, &s)).await?;
    let days = period.days();
    Ok(KpiFigures {
        won_count: wc,
        lost_count: lc,
        win_rate_count: rate(wc, wc + lc),
        win_rate_value: rate(wt, wt + lt),
        average_deal_mrr_cents: avg(wm),
        average_deal_tcv_cents: avg(wt),
        sales_cycle_days,
        new_mrr_cents: wm,
        churned_mrr_cents: Availability::UNAVAILABLE,
        net_new_mrr_cents: wm - Availability::UNAVAILABLE.value,
        lead_to_opportunity: Conversion {
            from: leads_funnel.leads,
            to: leads_funnel.with_opportunity,
            rate: leads_funnel.lead_to_opportunity,
        },
        time_to_first_contact_hours,
        activities,
        sellers,
        activities_per_seller_per_day: (sellers > 0 && days > 0)
            .then(|| round(activities as f64 / sellers as f64 / days as f64, 2)),
        automations: AutomationFigures {
            runs,
            succeeded,
            success_rate: rate(succeeded, runs),
            actions,
            actions_per_day: (days > 0).then(|| round(actions as f64 / days as f64, 2)),
        },
    })
}

pub async fn kpis(state: &AppState, p: &Params) -> AppResult<Report<KpiFigures>> {
    let db = &state.db;
    report(p, |period| async move { kpis_of(db, p, &period).await }).await
}

// ---------- sales funnel ----------

pub async fn funnel(state: &AppState, p: &Params) -> AppResult<SalesFunnel> {
    let db = &state.db;
    let pg = is_pg(db);
    let found = rows(
        db,
        pipelines::stats::pipeline(pg, p.tenant_id, p.pipeline_id),
    )
    .await?;
    let row = found.first().ok_or_else(AppError::not_found)?;
    let (pipeline_id, pipeline_name): (Uuid, String) = (col(row, 0)?, col(row, 1)?);
    let mut s = p.scope(&p.period);
    s.pipeline_id = Some(pipeline_id);

    let mut totals: HashMap<Uuid, [i64; 4]> = HashMap::new();
    for r in rows(db, pipelines::stats::stage_totals(pg, &s)).await? {
        totals.insert(
            col(&r, 0)?,
            [
                col::<Option<i64>>(&r, 1)?.unwrap_or(0),
                col::<Option<i64>>(&r, 2)?.unwrap_or(0),
                col::<Option<i64>>(&r, 3)?.unwrap_or(0),
                col::<Option<i64>>(&r, 4)?.unwrap_or(0),
            ],
        );
    }
    let mut furthest: Vec<(i32, i64)> = Vec::new();
    for r in rows(db, pipelines::stats::furthest_stage(pg, &s)).await? {
        furthest.push((col(&r, 0)?, col(&r, 1)?));
    }
    let mut in_stage =
        durations::<_, Uuid>(db, pipelines::stats::stage_seconds(pg, &s), 86400.0).await?;

    let mut stages = Vec::new();
    for r in rows(db, pipelines::stats::stages(pg, p.tenant_id, pipeline_id)).await? {
        let id: Uuid = col(&r, 0)?;
        let position: i32 = col(&r, 2)?;
        let kind: String = col(&r, 3)?;
        let [cards, value, mrr, weighted_x100] = totals.get(&id).copied().unwrap_or_default();
        let reached = (kind != "lost").then(|| {
            furthest
                .iter()
                .filter(|(m, _)| *m >= position)
                .map(|(_, n)| n)
                .sum::<i64>()
        });
        stages.push(FunnelStage {
            stage_id: id,
            name: col(&r, 1)?,
            position,
            kind,
            probability: col(&r, 4)?,
            cards,
            value_cents: value,
            mrr_cents: mrr,
            weighted_cents: (weighted_x100 as f64 / 100.0).round() as i64,
            reached,
            conversion_to_next: None,
            days_in_stage: in_stage.remove(&id).unwrap_or_default(),
        });
    }
    // Conversion to the next stage that is not a lost stage.
    let reached: Vec<Option<i64>> = stages.iter().map(|st| st.reached).collect();
    for (i, st) in stages.iter_mut().enumerate() {
        let Some(here) = st.reached else { continue };
        if let Some(next) = reached.iter().skip(i + 1).flatten().next() {
            st.conversion_to_next = rate(*next, here);
        }
    }
    let (leads, by_source) = lead_funnels(db, &s).await?;
    Ok(SalesFunnel {
        period: p.period.dto(),
        filters: AppliedFilters {
            pipeline_id: Some(pipeline_id),
            owner_ids: p.owners.clone(),
        },
        pipeline_id,
        pipeline_name,
        stages,
        leads,
        by_source,
    })
}

// ---------- team performance ----------

pub async fn team(state: &AppState, p: &Params) -> AppResult<TeamPerformance> {
    let db = &state.db;
    let pg = is_pg(db);
    let s = p.scope(&p.period);
    let mut by_user: BTreeMap<Uuid, SellerPerformance> = BTreeMap::new();
    let mut order = Vec::new();
    for r in rows(
        db,
        users::stats::active_users(pg, p.tenant_id, p.owners.as_deref()),
    )
    .await?
    {
        let id: Uuid = col(&r, 0)?;
        order.push(id);
        by_user.insert(
            id,
            SellerPerformance {
                user_id: id,
                name: col(&r, 1)?,
                role: col(&r, 2)?,
                ..Default::default()
            },
        );
    }
    for r in rows(db, leads::stats::owned_and_contacted(pg, &s)).await? {
        if let Some(u) = by_user.get_mut(&col::<Uuid>(&r, 0)?) {
            u.leads_owned = col(&r, 1)?;
            u.leads_contacted = col(&r, 2)?;
        }
    }
    for r in rows(
        db,
        tasks::stats::done_and_overdue_by_assignee(pg, &s, p.now),
    )
    .await?
    {
        if let Some(u) = by_user.get_mut(&col::<Uuid>(&r, 0)?) {
            u.tasks_done = col(&r, 1)?;
            u.tasks_overdue = col(&r, 2)?;
        }
    }
    for r in rows(db, pipelines::stats::closed_by_owner(pg, &s)).await? {
        if let Some(u) = by_user.get_mut(&col::<Uuid>(&r, 0)?) {
            u.deals_won = col(&r, 1)?;
            u.deals_lost = col(&r, 2)?;
            u.new_mrr_cents = col(&r, 3)?;
        }
    }
    let targets = quotas::targets(db, p.tenant_id, &p.period, &order).await?;
    for (id, u) in by_user.iter_mut() {
        let (mrr_t, deals_t) = targets.get(id).copied().unwrap_or((None, None));
        u.quota = QuotaAttainment {
            mrr_target_cents: mrr_t.map(|x| x.round() as i64),
            deals_target: deals_t.map(|x| round(x, 2)),
            mrr_attainment: mrr_t
                .filter(|t| *t > 0.0)
                .map(|t| round(u.new_mrr_cents as f64 / t, 4)),
            deals_attainment: deals_t
                .filter(|t| *t > 0.0)
                .map(|t| round(u.deals_won as f64 / t, 4)),
        };
    }
    Ok(TeamPerformance {
        period: p.period.dto(),
        filters: p.filters(),
        users: order.iter().filter_map(|id| by_user.remove(id)).collect(),
    })
}

// ---------- time series ----------

/// The first day of the bucket `d` falls in.
pub fn bucket(interval: Interval, d: NaiveDate) -> NaiveDate {
    match interval {
        Interval::Day => d,
        Interval::Week => d
            .checked_sub_days(Days::new(u64::from(d.weekday().num_days_from_monday())))
            .unwrap_or(d),
        Interval::Month => d.with_day(1).unwrap_or(d),
    }
}

pub async fn series(state: &AppState, p: &Params, q: &DashboardQuery) -> AppResult<Series> {
    let metric = match q.metric.as_deref().map(str::trim) {
        None => return Err(bad("metric", "required", "Informe metric")),
        Some(m) => SeriesMetric::parse(m).ok_or_else(|| {
            bad(
                "metric",
                "invalid_value",
                "Use metric=new_leads, won_mrr ou activities",
            )
        })?,
    };
    let interval = match q.interval.as_deref().map(str::trim) {
        None => Interval::Day,
        Some(i) => Interval::parse(i).ok_or_else(|| {
            bad(
                "interval",
                "invalid_value",
                "Use interval=day, week ou month",
            )
        })?,
    };
    let db = &state.db;
    let pg = is_pg(db);
    let s = p.scope(&p.period);
    let tz = p.tz();
    let days = match metric {
        SeriesMetric::NewLeads => {
            per_day(db, leads::stats::created_per_hour(pg, &s), tz, 0, 1).await?
        }
        SeriesMetric::WonMrr => {
            per_day(db, pipelines::stats::won_mrr_per_hour(pg, &s), tz, 0, 1).await?
        }
        SeriesMetric::Activities => activities_per_day(db, &s, tz).await?,
    };
    // Every bucket of the period, empty ones as zeros.
    let mut buckets: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let mut d = p.period.from;
    while d <= p.period.to {
        buckets.insert(bucket(interval, d), 0);
        d = match d.checked_add_days(Days::new(1)) {
            Some(n) => n,
            None => break,
        };
    }
    for (day, n) in days {
        if day >= p.period.from && day <= p.period.to {
            *buckets.entry(bucket(interval, day)).or_insert(0) += n;
        }
    }
    Ok(Series {
        period: p.period.dto(),
        filters: p.filters(),
        metric,
        interval,
        points: buckets
            .into_iter()
            .map(|(start, value)| SeriesPoint { start, value })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        assert_eq!(bucket(Interval::Day, d), d);
        assert_eq!(
            bucket(Interval::Week, d),
            NaiveDate::from_ymd_opt(2026, 12, 28).unwrap()
        );
        assert_eq!(
            bucket(Interval::Month, d),
            NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
        );
    }

    #[test]
    fn change_of_every_number() {
        let a = serde_json::json!({"a": 3, "b": {"c": 1.5}, "s": "x", "l": [1]});
        let b = serde_json::json!({"a": 2, "b": {"c": 0}, "s": "y", "l": [2]});
        let ch = changes(&a, &b).unwrap();
        assert_eq!(ch.len(), 2);
        assert_eq!(ch["a"].absolute, 1.0);
        assert_eq!(ch["a"].relative, Some(0.5));
        assert_eq!(ch["b.c"].relative, None);
    }
}
