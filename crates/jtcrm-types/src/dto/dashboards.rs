//! Dashboards, reports and sales quotas (docs/dashboards.md has the exact definition of every
//! figure). Money in integer cents; rates are fractions `0..=1` rounded to 4 places and `null`
//! when their denominator is zero; durations in days or hours rounded to 2 places.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            pub fn parse(s: &str) -> Option<$name> { match s { $($s => Some($name::$variant),)+ _ => None } }
        }
    };
}

string_enum!(
    /// A named period, computed in the company's timezone.
    Preset {
        Today => "today", ThisWeek => "this_week", ThisMonth => "this_month",
        LastMonth => "last_month", Last30Days => "last_30_days", ThisQuarter => "this_quarter",
        ThisYear => "this_year",
    }
);

string_enum!(
    /// Bucket width of a time series (weeks start on Monday).
    Interval { Day => "day", Week => "week", Month => "month" }
);

string_enum!(
    /// What a time series counts.
    SeriesMetric { NewLeads => "new_leads", WonMrr => "won_mrr", Activities => "activities" }
);

/// The query parameters every dashboard endpoint accepts.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// `today`, `this_week`, `this_month` (default), `last_month`, `last_30_days`,
    /// `this_quarter`, `this_year`. Not together with `from`/`to`.
    pub period: Option<String>,
    /// First day (`YYYY-MM-DD`, company timezone), inclusive.
    pub from: Option<String>,
    /// Last day (`YYYY-MM-DD`, company timezone), inclusive.
    pub to: Option<String>,
    /// Pipeline (sales funnel: the default pipeline when absent).
    pub pipeline_id: Option<String>,
    /// A user id, or `me`.
    pub owner_id: Option<String>,
    /// Comma-separated user ids: the figures of that group of sellers.
    pub team: Option<String>,
    /// `previous_period` adds the previous period's figures and the change.
    pub compare: Option<String>,
    /// `json` (default) or `csv` (UTF-8 with BOM, `;`, decimal comma).
    pub format: Option<String>,
    /// Series only: `new_leads`, `won_mrr`, `activities`.
    pub metric: Option<String>,
    /// Series only: `day` (default), `week`, `month`.
    pub interval: Option<String>,
}

/// The period a report covers: `[start, end)` in UTC, and its days in the company's timezone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PeriodDto {
    pub preset: Option<Preset>,
    /// First day, inclusive (company timezone).
    pub from: NaiveDate,
    /// Last day, inclusive (company timezone).
    pub to: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub timezone: String,
}

/// The filters a report applied.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppliedFilters {
    pub pipeline_id: Option<Uuid>,
    /// The owners the figures are limited to; `null` = everyone.
    pub owner_ids: Option<Vec<Uuid>>,
}

/// A figure whose source does not exist yet in this installation (contracts, telephony).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Availability {
    pub value: i64,
    /// `false`: the module that produces it is not installed; `value` is 0.
    pub available: bool,
}

impl Availability {
    pub const UNAVAILABLE: Availability = Availability {
        value: 0,
        available: false,
    };
}

/// Change of a numeric figure against the previous period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    /// Current − previous.
    pub absolute: f64,
    /// (current − previous) / previous; `null` when the previous value is 0.
    pub relative: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MoneyCount {
    pub count: i64,
    pub mrr_cents: i64,
    pub tcv_cents: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WonFigures {
    pub count: i64,
    pub mrr_cents: i64,
    pub tcv_cents: i64,
    pub setup_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReasonCount {
    /// The lost reason as typed (`null`: none given).
    pub reason: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LostFigures {
    pub count: i64,
    pub mrr_cents: i64,
    pub tcv_cents: i64,
    /// Up to 5 reasons, most frequent first.
    pub top_reasons: Vec<ReasonCount>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskFigures {
    /// Open tasks due today (company timezone), at the time of the request.
    pub due_today: i64,
    /// Open tasks whose due time has passed, at the time of the request.
    pub overdue: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProposalFigures {
    pub available: bool,
    pub sent: i64,
    pub viewed: i64,
    pub accepted: i64,
}

/// `GET /api/dashboard/overview` figures of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OverviewFigures {
    pub new_leads: i64,
    /// Open deals now (not period-bound).
    pub open_opportunities: MoneyCount,
    pub won: WonFigures,
    pub lost: LostFigures,
    pub tasks: TaskFigures,
    pub calls_today: Availability,
    pub proposals: ProposalFigures,
}

/// Median, p90 and mean of a duration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DurationStats {
    /// How many values the statistics are over.
    pub count: i64,
    pub median: Option<f64>,
    pub p90: Option<f64>,
    pub average: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Conversion {
    pub from: i64,
    pub to: i64,
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutomationFigures {
    pub runs: i64,
    pub succeeded: i64,
    pub success_rate: Option<f64>,
    pub actions: i64,
    pub actions_per_day: Option<f64>,
}

/// `GET /api/dashboard/kpis` figures of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KpiFigures {
    pub won_count: i64,
    pub lost_count: i64,
    /// won / (won + lost), deals closed in the period.
    pub win_rate_count: Option<f64>,
    /// won TCV / (won TCV + lost TCV).
    pub win_rate_value: Option<f64>,
    pub average_deal_mrr_cents: Option<i64>,
    pub average_deal_tcv_cents: Option<i64>,
    /// Days from creation to win of the deals won in the period.
    pub sales_cycle_days: DurationStats,
    pub new_mrr_cents: i64,
    /// MRR of contracts cancelled in the period (contracts module not installed: 0).
    pub churned_mrr_cents: Availability,
    pub net_new_mrr_cents: i64,
    /// Leads created in the period → those with a deal.
    pub lead_to_opportunity: Conversion,
    /// Hours from creation to the first completed contact task, leads created in the period.
    pub time_to_first_contact_hours: DurationStats,
    pub activities: i64,
    pub sellers: i64,
    pub activities_per_seller_per_day: Option<f64>,
    pub automations: AutomationFigures,
}

/// One report body: the period's figures, and with `compare=previous_period` the previous
/// period's and the change of every number.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Report<T> {
    pub period: PeriodDto,
    pub filters: AppliedFilters,
    pub current: T,
    pub previous_period: Option<PeriodDto>,
    pub previous: Option<T>,
    /// Dotted path of each number (`won.mrr_cents`) → its change.
    pub change: Option<BTreeMap<String, Change>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FunnelStage {
    pub stage_id: Uuid,
    pub name: String,
    pub position: i32,
    pub kind: String,
    pub probability: i32,
    /// Live deals now in the stage.
    pub cards: i64,
    pub value_cents: i64,
    pub mrr_cents: i64,
    /// Σ value × probability / 100.
    pub weighted_cents: i64,
    /// Deals created in the period that reached this stage or a later one; `null` for lost
    /// stages.
    pub reached: Option<i64>,
    /// reached(next open/won stage) / reached(this stage).
    pub conversion_to_next: Option<f64>,
    /// Days spent in this stage by the deals that left it in the period.
    pub days_in_stage: DurationStats,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeadFunnel {
    pub leads: i64,
    pub with_opportunity: i64,
    pub won: i64,
    pub lead_to_opportunity: Option<f64>,
    pub opportunity_to_won: Option<f64>,
    pub lead_to_won: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceFunnel {
    pub source: String,
    #[serde(flatten)]
    pub funnel: LeadFunnel,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SalesFunnel {
    pub period: PeriodDto,
    pub filters: AppliedFilters,
    pub pipeline_id: Uuid,
    pub pipeline_name: String,
    pub stages: Vec<FunnelStage>,
    /// Leads created in the period (any pipeline).
    pub leads: LeadFunnel,
    pub by_source: Vec<SourceFunnel>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuotaAttainment {
    /// The period's share of the monthly quotas (cents); `null`: no MRR quota.
    pub mrr_target_cents: Option<i64>,
    pub deals_target: Option<f64>,
    pub mrr_attainment: Option<f64>,
    pub deals_attainment: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SellerPerformance {
    pub user_id: Uuid,
    pub name: String,
    pub role: String,
    pub leads_owned: i64,
    pub leads_contacted: i64,
    pub tasks_done: i64,
    pub tasks_overdue: i64,
    pub calls: i64,
    pub talk_time_seconds: i64,
    pub calls_available: bool,
    pub deals_won: i64,
    pub deals_lost: i64,
    pub new_mrr_cents: i64,
    pub quota: QuotaAttainment,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TeamPerformance {
    pub period: PeriodDto,
    pub filters: AppliedFilters,
    pub users: Vec<SellerPerformance>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SeriesPoint {
    /// First day of the bucket (company timezone).
    pub start: NaiveDate,
    pub value: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Series {
    pub period: PeriodDto,
    pub filters: AppliedFilters,
    pub metric: SeriesMetric,
    pub interval: Interval,
    pub points: Vec<SeriesPoint>,
}

/// One seller's monthly quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "0193a1b2-0000-7000-8000-000000000003", "mrr_cents": 1500000, "deals": 10}))]
pub struct Quota {
    pub user_id: Uuid,
    /// New MRR to win in the month (cents).
    pub mrr_cents: Option<i64>,
    /// Deals to win in the month.
    pub deals: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuotaMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub items: Vec<Quota>,
}

/// `PUT /api/quotas`: replaces the month's quotas of the users listed (a user with both targets
/// `null` has its quota removed).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"month": "2026-12", "items": [{"user_id": "0193a1b2-0000-7000-8000-000000000003", "mrr_cents": 1500000, "deals": 10}]}))]
pub struct QuotaInput {
    pub month: Option<String>,
    pub items: Option<Vec<QuotaItemInput>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct QuotaItemInput {
    pub user_id: Option<Uuid>,
    pub mrr_cents: Option<i64>,
    pub deals: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuotaQuery {
    /// `YYYY-MM` (default: the current month in the company's timezone).
    pub month: Option<String>,
}

/// What the statistics of other domains are limited to: `[start, end)` in UTC, the owners
/// (`None`: everyone) and the pipeline.
#[derive(Debug, Clone)]
pub struct StatsScope {
    pub tenant_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub owners: Option<Vec<Uuid>>,
    pub pipeline_id: Option<Uuid>,
}

/// Parameters of a raw SQL statement for either backend: [`SqlArgs::p`] pushes a value and
/// returns its placeholder (`$n` on PostgreSQL, `?n` on SQLite), so the text is written once.
#[derive(Debug, Clone)]
pub struct SqlArgs<V> {
    pub pg: bool,
    pub values: Vec<V>,
}

impl<V> SqlArgs<V> {
    pub fn new(pg: bool) -> Self {
        SqlArgs {
            pg,
            values: Vec::new(),
        }
    }

    /// The placeholder of `v`.
    pub fn p(&mut self, v: impl Into<V>) -> String {
        self.values.push(v.into());
        // Numbered on both backends (`?n` on SQLite), so a placeholder may be used twice.
        if self.pg {
            format!("${}", self.values.len())
        } else {
            format!("?{}", self.values.len())
        }
    }

    /// `(p1, p2, …)` of `items`; `(NULL)` when empty (matches nothing).
    pub fn list<T: Clone + Into<V>>(&mut self, items: &[T]) -> String {
        if items.is_empty() {
            return "(NULL)".to_string();
        }
        let ps: Vec<String> = items.iter().map(|i| self.p(i.clone())).collect();
        format!("({})", ps.join(", "))
    }

    /// Seconds from timestamp `a` to timestamp `b` (SQL expressions), as a double.
    pub fn seconds_between(&self, a: &str, b: &str) -> String {
        if self.pg {
            format!("CAST(EXTRACT(EPOCH FROM ({b} - {a})) AS DOUBLE PRECISION)")
        } else {
            format!("((julianday({b}) - julianday({a})) * 86400.0)")
        }
    }

    /// The UTC hour a timestamp falls in, as text `YYYY-MM-DD HH` (SQLite) or a timestamp
    /// (PostgreSQL): the grain of time series, bucketed into local days by the caller.
    pub fn hour_of(&self, ts: &str) -> String {
        if self.pg {
            format!("to_char({ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')")
        } else {
            format!("strftime('%Y-%m-%d %H', {ts})")
        }
    }
}

/// A statement for the dashboards to run: SQL text and its values.
pub type RawSql<V> = (String, Vec<V>);

/// Linear-interpolation percentile of sorted values (PostgreSQL's `percentile_cont`).
pub fn percentile_cont(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = p * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let a = *sorted.get(lo)?;
    let b = *sorted.get(hi)?;
    Some(a + (b - a) * (rank - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_postgres() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_cont(&v, 0.5), Some(2.5));
        assert!((percentile_cont(&v, 0.9).unwrap_or(0.0) - 3.7).abs() < 1e-9);
        assert_eq!(percentile_cont(&[5.0], 0.9), Some(5.0));
        assert_eq!(percentile_cont(&[], 0.5), None);
    }
}
