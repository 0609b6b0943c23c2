//! Report periods: presets and `from`/`to` days in the company's timezone, turned into `[start,
//! end)` UTC instants (correct across daylight-saving changes and month ends), and the previous
//! period for `compare=previous_period`.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use jtcrm_types::dto::dashboards::{PeriodDto, Preset};

use crate::domains::tasks::agenda::start_of_day;
use jtcrm_kernel::error::{AppError, AppResult};

/// Longest period a report may cover (days), so every query stays bounded.
pub const MAX_DAYS: i64 = 1100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub preset: Option<Preset>,
    pub from: NaiveDate,
    /// Inclusive.
    pub to: NaiveDate,
    pub tz: Tz,
}

impl Period {
    pub fn start(&self) -> DateTime<Utc> {
        start_of_day(self.tz, self.from)
    }

    pub fn end(&self) -> DateTime<Utc> {
        start_of_day(self.tz, next_day(self.to))
    }

    /// Calendar days in the period.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    pub fn dto(&self) -> PeriodDto {
        PeriodDto {
            preset: self.preset,
            from: self.from,
            to: self.to,
            start: self.start(),
            end: self.end(),
            timezone: self.tz.name().to_string(),
        }
    }

    /// The period before: the previous calendar day, week, month, quarter or year for those
    /// presets, otherwise the same number of days just before `from`.
    pub fn previous(&self) -> Period {
        let unit_months = match self.preset {
            Some(Preset::ThisMonth | Preset::LastMonth) => Some(1),
            Some(Preset::ThisQuarter) => Some(3),
            Some(Preset::ThisYear) => Some(12),
            _ => None,
        };
        let (from, to) = match unit_months {
            Some(m) => {
                let from = self
                    .from
                    .checked_sub_months(Months::new(m))
                    .unwrap_or(self.from);
                (from, prev_day(self.from))
            }
            None => {
                let n = self.days().unsigned_abs();
                let to = prev_day(self.from);
                let from = self
                    .from
                    .checked_sub_days(Days::new(n))
                    .unwrap_or(self.from);
                (from, to)
            }
        };
        Period {
            preset: None,
            from,
            to,
            tz: self.tz,
        }
    }
}

fn next_day(d: NaiveDate) -> NaiveDate {
    d.checked_add_days(Days::new(1)).unwrap_or(d)
}

fn prev_day(d: NaiveDate) -> NaiveDate {
    d.checked_sub_days(Days::new(1)).unwrap_or(d)
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn last_of_month(d: NaiveDate) -> NaiveDate {
    prev_day(
        first_of_month(d)
            .checked_add_months(Months::new(1))
            .unwrap_or(d),
    )
}

/// The days of `preset` around `today` (a local date).
pub fn preset_days(preset: Preset, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    match preset {
        Preset::Today => (today, today),
        Preset::ThisWeek => {
            let monday = today
                .checked_sub_days(Days::new(u64::from(today.weekday().num_days_from_monday())))
                .unwrap_or(today);
            (
                monday,
                monday.checked_add_days(Days::new(6)).unwrap_or(monday),
            )
        }
        Preset::ThisMonth => (first_of_month(today), last_of_month(today)),
        Preset::LastMonth => {
            let d = first_of_month(today)
                .checked_sub_months(Months::new(1))
                .unwrap_or(today);
            (d, last_of_month(d))
        }
        Preset::Last30Days => (
            today.checked_sub_days(Days::new(29)).unwrap_or(today),
            today,
        ),
        Preset::ThisQuarter => {
            let m0 = (today.month0() / 3) * 3;
            let from = NaiveDate::from_ymd_opt(today.year(), m0 + 1, 1).unwrap_or(today);
            let to = prev_day(from.checked_add_months(Months::new(3)).unwrap_or(from));
            (from, to)
        }
        Preset::ThisYear => (
            NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today),
            NaiveDate::from_ymd_opt(today.year(), 12, 31).unwrap_or(today),
        ),
    }
}

fn parse_day(field: &str, v: &str) -> AppResult<NaiveDate> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
        .map_err(|_| AppError::field(field, "invalid_date", "Use uma data no formato AAAA-MM-DD"))
}

/// The period of a request: a preset (default `this_month`) or `from` and `to` together.
pub fn resolve(
    tz: Tz,
    now: DateTime<Utc>,
    preset: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> AppResult<Period> {
    let today = now.with_timezone(&tz).date_naive();
    match (preset, from, to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(AppError::field(
            "period",
            "conflict",
            "Informe period ou from/to, não ambos",
        )),
        (Some(p), None, None) => {
            let preset = Preset::parse(p.trim()).ok_or_else(|| {
                AppError::field(
                    "period",
                    "invalid_value",
                    "Período inválido: use today, this_week, this_month, last_month, \
                     last_30_days, this_quarter ou this_year",
                )
            })?;
            let (from, to) = preset_days(preset, today);
            Ok(Period {
                preset: Some(preset),
                from,
                to,
                tz,
            })
        }
        (None, None, None) => {
            let (from, to) = preset_days(Preset::ThisMonth, today);
            Ok(Period {
                preset: Some(Preset::ThisMonth),
                from,
                to,
                tz,
            })
        }
        (None, Some(_), None) => Err(AppError::field("to", "required", "Informe também to")),
        (None, None, Some(_)) => Err(AppError::field("from", "required", "Informe também from")),
        (None, Some(f), Some(t)) => {
            let from = parse_day("from", f)?;
            let to = parse_day("to", t)?;
            if from > to {
                return Err(AppError::field(
                    "from",
                    "after_to",
                    "A data inicial é posterior à data final",
                ));
            }
            if (to - from).num_days() + 1 > MAX_DAYS {
                return Err(AppError::field(
                    "to",
                    "too_long",
                    "O período pode ter no máximo 1100 dias",
                ));
            }
            if from.year() < 2000 || to.year() > 2100 {
                return Err(AppError::field(
                    "from",
                    "out_of_range",
                    "Use datas entre 2000 e 2100",
                ));
            }
            Ok(Period {
                preset: None,
                from,
                to,
                tz,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domains::tasks::agenda::tz_of;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn presets_in_sao_paulo_near_midnight() {
        let tz = tz_of("America/Sao_Paulo");
        // 2027-01-01T02:30Z is still 2026-12-31 23:30 in São Paulo.
        let now = utc("2027-01-01T02:30:00Z");
        let p = resolve(tz, now, Some("this_month"), None, None).unwrap();
        assert_eq!((p.from, p.to), (d("2026-12-01"), d("2026-12-31")));
        assert_eq!(p.start(), utc("2026-12-01T03:00:00Z"));
        assert_eq!(p.end(), utc("2027-01-01T03:00:00Z"));
        let p = resolve(tz, now, Some("this_year"), None, None).unwrap();
        assert_eq!((p.from, p.to), (d("2026-01-01"), d("2026-12-31")));
        let p = resolve(tz, now, Some("today"), None, None).unwrap();
        assert_eq!(p.from, d("2026-12-31"));
        let p = resolve(tz, now, Some("last_month"), None, None).unwrap();
        assert_eq!((p.from, p.to), (d("2026-11-01"), d("2026-11-30")));
        let p = resolve(tz, now, Some("this_quarter"), None, None).unwrap();
        assert_eq!((p.from, p.to), (d("2026-10-01"), d("2026-12-31")));
        // 2026-12-31 is a Thursday.
        let p = resolve(tz, now, Some("this_week"), None, None).unwrap();
        assert_eq!((p.from, p.to), (d("2026-12-28"), d("2027-01-03")));
        let p = resolve(tz, now, Some("last_30_days"), None, None).unwrap();
        assert_eq!((p.from, p.to), (d("2026-12-02"), d("2026-12-31")));
        assert_eq!(p.days(), 30);
    }

    #[test]
    fn month_ends_and_previous_periods() {
        let tz = tz_of("America/Sao_Paulo");
        // March 31st: the previous month is February (28 days in 2027), not "March 3rd".
        let p = resolve(
            tz,
            utc("2027-03-31T15:00:00Z"),
            Some("this_month"),
            None,
            None,
        )
        .unwrap();
        let q = p.previous();
        assert_eq!((q.from, q.to), (d("2027-02-01"), d("2027-02-28")));
        let p = resolve(
            tz,
            utc("2028-03-10T15:00:00Z"),
            Some("last_month"),
            None,
            None,
        )
        .unwrap();
        assert_eq!((p.from, p.to), (d("2028-02-01"), d("2028-02-29")));
        let q = resolve(
            tz,
            utc("2027-05-10T15:00:00Z"),
            Some("this_quarter"),
            None,
            None,
        )
        .unwrap()
        .previous();
        assert_eq!((q.from, q.to), (d("2027-01-01"), d("2027-03-31")));
        let q = resolve(
            tz,
            utc("2027-05-10T15:00:00Z"),
            None,
            Some("2027-05-01"),
            Some("2027-05-10"),
        )
        .unwrap()
        .previous();
        assert_eq!((q.from, q.to), (d("2027-04-21"), d("2027-04-30")));
    }

    #[test]
    fn daylight_saving_days() {
        // New York: DST starts 2027-03-14 (a 23-hour day) and ends 2027-11-07 (25 hours).
        let tz = tz_of("America/New_York");
        let p = resolve(
            tz,
            utc("2027-03-20T12:00:00Z"),
            None,
            Some("2027-03-14"),
            Some("2027-03-14"),
        )
        .unwrap();
        assert_eq!(p.start(), utc("2027-03-14T05:00:00Z"));
        assert_eq!(p.end(), utc("2027-03-15T04:00:00Z"));
        let p = resolve(
            tz,
            utc("2027-11-20T12:00:00Z"),
            None,
            Some("2027-11-07"),
            Some("2027-11-07"),
        )
        .unwrap();
        assert_eq!(p.end() - p.start(), chrono::Duration::hours(25));
        // São Paulo 2018: DST began at midnight on 2018-11-04, so that day starts at 01:00 local.
        let tz = tz_of("America/Sao_Paulo");
        let p = resolve(
            tz,
            utc("2018-11-10T12:00:00Z"),
            None,
            Some("2018-11-04"),
            Some("2018-11-04"),
        )
        .unwrap();
        assert_eq!(p.start(), utc("2018-11-04T03:00:00Z"));
        assert_eq!(p.end(), utc("2018-11-05T02:00:00Z"));
    }

    #[test]
    fn bad_input() {
        let tz = tz_of("America/Sao_Paulo");
        let now = utc("2027-01-01T12:00:00Z");
        for (p, f, t) in [
            (Some("yesterday"), None, None),
            (Some("today"), Some("2027-01-01"), None),
            (None, Some("2027-01-02"), Some("2027-01-01")),
            (None, Some("2027-13-01"), Some("2027-12-01")),
            (None, Some("2027-01-01"), None),
            (None, None, Some("2027-01-01")),
            (None, Some("2020-01-01"), Some("2027-01-01")),
        ] {
            assert!(resolve(tz, now, p, f, t).is_err(), "{p:?} {f:?} {t:?}");
        }
    }
}
