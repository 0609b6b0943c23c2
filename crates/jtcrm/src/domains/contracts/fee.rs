//! Contract dates and the early-termination fee, in integer cents (see docs/contracts.md).

use chrono::{Datelike, Months, NaiveDate};

/// The last day of a term that starts on `start` and lasts `months` months.
pub fn end_date(start: NaiveDate, months: i32) -> NaiveDate {
    let m = u32::try_from(months.max(0)).unwrap_or(0);
    start
        .checked_add_months(Months::new(m))
        .and_then(|d| d.pred_opt())
        .unwrap_or(start)
}

/// Whole calendar months from `start` to `on`: the number of monthly anniversaries of `start`
/// reached by `on` (a month is elapsed on the same day-of-month of the next month; a start on the
/// 31st reaches its anniversary on the month's last day). `0` before `start`.
pub fn months_elapsed(start: NaiveDate, on: NaiveDate) -> i32 {
    if on <= start {
        return 0;
    }
    let mut n = (on.year() - start.year()) * 12 + on.month() as i32 - start.month() as i32;
    // The anniversary in `on`'s month (clamped to the month's last day).
    let anniversary = start
        .checked_add_months(Months::new(u32::try_from(n.max(0)).unwrap_or(0)))
        .unwrap_or(on);
    if on < anniversary {
        n -= 1;
    }
    n.max(0)
}

/// The fee: `round(mrr × months_left × percent / 100)` with half away from zero, never negative.
pub fn termination_fee(mrr_cents: i64, months_left: i32, percent: i32) -> i64 {
    let raw = i128::from(mrr_cents.max(0))
        * i128::from(months_left.max(0))
        * i128::from(percent.clamp(0, 100));
    let fee = (raw + 50) / 100;
    i64::try_from(fee).unwrap_or(i64::MAX)
}

/// Months still owed on `on` of a `term`-month contract started on `start`.
pub fn months_remaining(start: NaiveDate, term: i32, on: NaiveDate) -> i32 {
    (term - months_elapsed(start, on)).max(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn end_of_term() {
        assert_eq!(end_date(d(2027, 1, 1), 12), d(2027, 12, 31));
        assert_eq!(end_date(d(2027, 1, 31), 1), d(2027, 2, 27));
        assert_eq!(end_date(d(2027, 3, 15), 24), d(2029, 3, 14));
    }

    #[test]
    fn elapsed_months_count_anniversaries() {
        let s = d(2027, 1, 15);
        assert_eq!(months_elapsed(s, d(2027, 1, 15)), 0);
        assert_eq!(months_elapsed(s, d(2027, 2, 14)), 0);
        assert_eq!(months_elapsed(s, d(2027, 2, 15)), 1);
        assert_eq!(months_elapsed(s, d(2027, 12, 31)), 11);
        assert_eq!(months_elapsed(s, d(2028, 1, 15)), 12);
        assert_eq!(months_elapsed(s, d(2026, 12, 1)), 0);
        // A start on the 31st: February's anniversary is its last day.
        let e = d(2027, 1, 31);
        assert_eq!(months_elapsed(e, d(2027, 2, 27)), 0);
        assert_eq!(months_elapsed(e, d(2027, 2, 28)), 1);
        assert_eq!(months_elapsed(e, d(2027, 3, 30)), 1);
        assert_eq!(months_elapsed(e, d(2027, 3, 31)), 2);
    }

    #[test]
    fn fee_arithmetic() {
        // R$ 1.200,00/month, 24 months, cancelled after 5 full months: 19 left × 30 %.
        let start = d(2027, 1, 10);
        let left = months_remaining(start, 24, d(2027, 6, 20));
        assert_eq!(left, 19);
        assert_eq!(termination_fee(120_000, left, 30), 684_000);
        // Rounding half away from zero on odd cents: 333 × 1 × 50 % = 166.5 → 167.
        assert_eq!(termination_fee(333, 1, 50), 167);
        // After the term: nothing left, no fee.
        assert_eq!(months_remaining(start, 12, d(2028, 2, 1)), 0);
        assert_eq!(termination_fee(120_000, 0, 30), 0);
        assert_eq!(termination_fee(120_000, 10, 0), 0);
        assert_eq!(termination_fee(120_000, 10, 100), 1_200_000);
    }
}
