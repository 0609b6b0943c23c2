//! Running the statistics other domains write (`<domain>::stats`): rows, single values, duration
//! statistics (median and p90 with PostgreSQL's `percentile_cont` semantics on both backends) and
//! per-hour counts bucketed into local days.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use jtcrm_types::dto::dashboards::{DurationStats, RawSql, percentile_cont};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, TryGetable, Value};

use jtcrm_kernel::error::{AppError, AppResult};

pub fn is_pg<C: ConnectionTrait>(db: &C) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

pub async fn rows<C: ConnectionTrait>(db: &C, raw: RawSql<Value>) -> AppResult<Vec<QueryResult>> {
    let (sql, values) = raw;
    Ok(db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            values,
        ))
        .await?)
}

pub fn col<T: TryGetable>(r: &QueryResult, i: usize) -> AppResult<T> {
    r.try_get_by_index(i)
        .map_err(|e| AppError::internal(anyhow::anyhow!("dashboard column {i}: {e:?}")))
}

/// The first row's integer columns (zeros when there is no row).
pub async fn ints<C: ConnectionTrait, const N: usize>(
    db: &C,
    raw: RawSql<Value>,
) -> AppResult<[i64; N]> {
    let mut out = [0i64; N];
    if let Some(r) = rows(db, raw).await?.first() {
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = col::<Option<i64>>(r, i)?.unwrap_or(0);
        }
    }
    Ok(out)
}

pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// `num / den` rounded to 4 places; `None` when `den` is 0.
pub fn rate(num: i64, den: i64) -> Option<f64> {
    (den != 0).then(|| round(num as f64 / den as f64, 4))
}

fn stats_of(mut v: Vec<f64>, unit: f64) -> DurationStats {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    DurationStats {
        count: n as i64,
        median: percentile_cont(&v, 0.5).map(|x| round(x / unit, 2)),
        p90: percentile_cont(&v, 0.9).map(|x| round(x / unit, 2)),
        average: (n > 0).then(|| round(v.iter().sum::<f64>() / n as f64 / unit, 2)),
    }
}

/// Duration statistics of `raw` (rows `(g, v)`: a group key and seconds) per group, in `unit`
/// seconds (86400: days). PostgreSQL computes them in SQL; SQLite returns the values.
pub async fn durations<C, K>(
    db: &C,
    raw: RawSql<Value>,
    unit: f64,
) -> AppResult<BTreeMap<K, DurationStats>>
where
    C: ConnectionTrait,
    K: TryGetable + Ord,
{
    let (inner, values) = raw;
    let mut out = BTreeMap::new();
    if is_pg(db) {
        let sql = format!(
            "SELECT q.g, COUNT(*), AVG(q.v), \
               percentile_cont(0.5) WITHIN GROUP (ORDER BY q.v), \
               percentile_cont(0.9) WITHIN GROUP (ORDER BY q.v) \
             FROM ({inner}) q GROUP BY q.g"
        );
        for r in rows(db, (sql, values)).await? {
            let count: i64 = col(&r, 1)?;
            let f = |i: usize| -> AppResult<Option<f64>> {
                Ok(col::<Option<f64>>(&r, i)?.map(|x| round(x / unit, 2)))
            };
            out.insert(
                col::<K>(&r, 0)?,
                DurationStats {
                    count,
                    average: f(2)?,
                    median: f(3)?,
                    p90: f(4)?,
                },
            );
        }
    } else {
        let mut groups: BTreeMap<K, Vec<f64>> = BTreeMap::new();
        for r in rows(db, (format!("SELECT q.g, q.v FROM ({inner}) q"), values)).await? {
            if let Some(v) = col::<Option<f64>>(&r, 1)? {
                groups.entry(col::<K>(&r, 0)?).or_default().push(v);
            }
        }
        for (k, v) in groups {
            out.insert(k, stats_of(v, unit));
        }
    }
    Ok(out)
}

/// The single group of [`durations`] (queries that select `0 AS g`).
pub async fn duration<C: ConnectionTrait>(
    db: &C,
    raw: RawSql<Value>,
    unit: f64,
) -> AppResult<DurationStats> {
    Ok(durations::<C, i32>(db, raw, unit)
        .await?
        .into_values()
        .next()
        .unwrap_or_default())
}

/// The UTC instant of an hour key `YYYY-MM-DD HH`.
pub fn hour_key(s: &str) -> AppResult<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(&format!("{s}:00"), "%Y-%m-%d %H:%M")
        .map(|t| t.and_utc())
        .map_err(|e| AppError::internal(anyhow::anyhow!("bad hour key {s:?}: {e}")))
}

/// Sums per local day of per-hour rows `(hour, n)` (the value in column `value_col`; the hour in
/// column `hour_col`).
pub async fn per_day<C: ConnectionTrait>(
    db: &C,
    raw: RawSql<Value>,
    tz: Tz,
    hour_col: usize,
    value_col: usize,
) -> AppResult<BTreeMap<NaiveDate, i64>> {
    let mut out = BTreeMap::new();
    for r in rows(db, raw).await? {
        let Some(h) = col::<Option<String>>(&r, hour_col)? else {
            continue;
        };
        let day = hour_key(&h)?.with_timezone(&tz).date_naive();
        *out.entry(day).or_insert(0) += col::<Option<i64>>(&r, value_col)?.unwrap_or(0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn duration_stats_in_days() {
        let d = 86400.0;
        let s = stats_of(vec![3.0 * d, 1.0 * d, 2.0 * d, 10.0 * d], d);
        assert_eq!(s.count, 4);
        assert_eq!(s.median, Some(2.5));
        assert_eq!(s.p90, Some(7.9));
        assert_eq!(s.average, Some(4.0));
        assert_eq!(stats_of(vec![], d), DurationStats::default());
    }

    #[test]
    fn rates() {
        assert_eq!(rate(1, 3), Some(0.3333));
        assert_eq!(rate(1, 0), None);
    }
}
