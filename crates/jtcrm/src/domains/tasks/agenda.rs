//! Calendar arithmetic in the tenant's timezone: where "today", "tomorrow" and "this week" start
//! and end as UTC instants, correct across midnight and daylight-saving changes.

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

pub fn tz_of(name: &str) -> Tz {
    name.parse().unwrap_or(chrono_tz::America::Sao_Paulo)
}

/// The first instant of `date` in `tz`. When midnight does not exist (DST starting at 00:00, as
/// in Brazil until 2019) the day starts at the first valid local time after it.
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut t = NaiveTime::MIN;
    for _ in 0..(4 * 60) {
        match tz.from_local_datetime(&date.and_time(t)) {
            LocalResult::Single(x) => return x.with_timezone(&Utc),
            LocalResult::Ambiguous(a, _) => return a.with_timezone(&Utc),
            LocalResult::None => t += chrono::Duration::minutes(1),
        }
    }
    date.and_time(NaiveTime::MIN).and_utc()
}

/// `[start, end)` UTC ranges for the agenda filters, relative to `now`.
#[derive(Debug, Clone, Copy)]
pub struct Ranges {
    pub today: (DateTime<Utc>, DateTime<Utc>),
    pub tomorrow: (DateTime<Utc>, DateTime<Utc>),
    /// Monday to Sunday of the current week.
    pub this_week: (DateTime<Utc>, DateTime<Utc>),
}

pub fn ranges(tz: Tz, now: DateTime<Utc>) -> Ranges {
    let today = now.with_timezone(&tz).date_naive();
    let d = |n: u64| today.checked_add_days(Days::new(n)).unwrap_or(today);
    let monday = today
        .checked_sub_days(Days::new(u64::from(today.weekday().num_days_from_monday())))
        .unwrap_or(today);
    let next_monday = monday.checked_add_days(Days::new(7)).unwrap_or(monday);
    Ranges {
        today: (start_of_day(tz, today), start_of_day(tz, d(1))),
        tomorrow: (start_of_day(tz, d(1)), start_of_day(tz, d(2))),
        this_week: (start_of_day(tz, monday), start_of_day(tz, next_monday)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn sao_paulo_day_boundaries() {
        let tz = tz_of("America/Sao_Paulo");
        // 23:30 local on the 29th is 02:30 UTC on the 30th: still "today" = the 29th locally.
        let r = ranges(tz, utc("2026-11-30T02:30:00Z"));
        assert_eq!(r.today.0, utc("2026-11-29T03:00:00Z"));
        assert_eq!(r.today.1, utc("2026-11-30T03:00:00Z"));
        assert_eq!(r.tomorrow.1, utc("2026-12-01T03:00:00Z"));
        // 2026-11-29 is a Sunday: the week started on Monday the 23rd.
        assert_eq!(r.this_week.0, utc("2026-11-23T03:00:00Z"));
        assert_eq!(r.this_week.1, utc("2026-11-30T03:00:00Z"));
    }

    #[test]
    fn dst_start_at_midnight_2018() {
        // Brazil's DST began on 2018-11-04 at 00:00 (clocks jumped to 01:00, UTC-2).
        let tz = tz_of("America/Sao_Paulo");
        let day = NaiveDate::from_ymd_opt(2018, 11, 4).unwrap();
        assert_eq!(start_of_day(tz, day), utc("2018-11-04T03:00:00Z"));
        let r = ranges(tz, utc("2018-11-04T12:00:00Z"));
        // That day has 23 hours.
        assert_eq!(r.today.1 - r.today.0, chrono::Duration::hours(23));
        // DST ended on 2019-02-17 at 00:00 (back to 23:00 on the 16th): a 25-hour day.
        let r = ranges(tz, utc("2019-02-16T12:00:00Z"));
        assert_eq!(r.today.1 - r.today.0, chrono::Duration::hours(25));
    }

    #[test]
    fn other_zones() {
        let r = ranges(tz_of("America/Manaus"), utc("2026-11-29T03:30:00Z"));
        // 23:30 on the 28th in Manaus (UTC-4).
        assert_eq!(r.today.0, utc("2026-11-28T04:00:00Z"));
        assert_eq!(tz_of("nonsense"), chrono_tz::America::Sao_Paulo);
    }
}
