//! Business hours per company (default Monday–Friday 08:00–18:00 in the company's timezone) and
//! the time arithmetic of cadences and delays: the next open instant, N business hours later, N days
//! later at the same local time. Correct across weekends, holidays and daylight-saving changes.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Days, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use jtcrm_types::dto::automations::{BusinessHours, BusinessHoursInput, Delay};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use uuid::Uuid;

use super::model::business_hours as row;
use crate::domains::tasks::agenda;
use jtcrm_kernel::error::{AppResult, Validator};

pub const DEFAULT_START: u32 = 8 * 60;
pub const DEFAULT_END: u32 = 18 * 60;
const DAY_MINUTES: u32 = 24 * 60;
/// How far ahead we look for an open window before giving up (a year of holidays is absurd).
const MAX_DAYS_AHEAD: u32 = 400;

/// A company's business hours, resolved (timezone parsed).
#[derive(Debug, Clone, PartialEq)]
pub struct Hours {
    pub tz: Tz,
    /// Monday first.
    pub weekdays: [bool; 7],
    /// Minutes after local midnight; `start < end <= 1440`.
    pub start: u32,
    pub end: u32,
    pub holidays: BTreeSet<NaiveDate>,
}

impl Hours {
    pub fn default_in(tz: Tz) -> Self {
        Self {
            tz,
            weekdays: [true, true, true, true, true, false, false],
            start: DEFAULT_START,
            end: DEFAULT_END,
            holidays: BTreeSet::new(),
        }
    }

    /// Every minute of every day (for companies that work around the clock).
    pub fn always(tz: Tz) -> Self {
        Self {
            tz,
            weekdays: [true; 7],
            start: 0,
            end: DAY_MINUTES,
            holidays: BTreeSet::new(),
        }
    }

    fn is_open_day(&self, d: NaiveDate) -> bool {
        self.weekdays[d.weekday().num_days_from_monday() as usize] && !self.holidays.contains(&d)
    }

    /// The UTC instant of local `minutes` after midnight of `d`. A local time skipped by a DST
    /// change becomes the first valid minute after it; a repeated one its first occurrence.
    fn at(&self, d: NaiveDate, minutes: u32) -> DateTime<Utc> {
        let (date, minutes) = if minutes >= DAY_MINUTES {
            (
                d.checked_add_days(Days::new(1)).unwrap_or(d),
                minutes - DAY_MINUTES,
            )
        } else {
            (d, minutes)
        };
        let mut t = NaiveTime::MIN + Duration::minutes(i64::from(minutes));
        for _ in 0..(4 * 60) {
            match self.tz.from_local_datetime(&date.and_time(t)) {
                LocalResult::Single(x) => return x.with_timezone(&Utc),
                LocalResult::Ambiguous(a, _) => return a.with_timezone(&Utc),
                LocalResult::None => t += Duration::minutes(1),
            }
        }
        date.and_time(t).and_utc()
    }

    /// `[start, end)` of the window of local date `d`, if the day has one.
    pub fn window(&self, d: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.is_open_day(d)
            .then(|| (self.at(d, self.start), self.at(d, self.end)))
    }

    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    /// `t` itself if it is inside business hours, otherwise the start of the next window.
    pub fn next_open(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let mut d = self.local_date(t);
        for _ in 0..MAX_DAYS_AHEAD {
            if let Some((s, e)) = self.window(d) {
                if t < s {
                    return s;
                }
                if t < e {
                    return t;
                }
            }
            d = match d.checked_add_days(Days::new(1)) {
                Some(n) => n,
                None => return t,
            };
        }
        t
    }

    /// The instant `minutes` of business time after `t` (time outside the windows does not count).
    pub fn add_business_minutes(&self, t: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        let mut cur = self.next_open(t);
        let mut left = Duration::minutes(minutes.max(0));
        for _ in 0..(MAX_DAYS_AHEAD * 2) {
            let Some((_, end)) = self.window(self.local_date(cur)) else {
                return cur + left;
            };
            let avail = end - cur;
            if left <= avail {
                return cur + left;
            }
            left -= avail;
            let next = self.next_open(end);
            if next <= cur {
                return cur + left;
            }
            cur = next;
        }
        cur + left
    }

    /// The same local time `days` calendar days after `t`.
    pub fn add_days(&self, t: DateTime<Utc>, days: i64) -> DateTime<Utc> {
        let local = t.with_timezone(&self.tz);
        let date = local
            .date_naive()
            .checked_add_days(Days::new(days.max(0) as u64))
            .unwrap_or(local.date_naive());
        let minutes = local
            .time()
            .signed_duration_since(NaiveTime::MIN)
            .num_minutes();
        let secs = local
            .time()
            .signed_duration_since(NaiveTime::MIN)
            .num_seconds()
            % 60;
        self.at(date, minutes as u32) + Duration::seconds(secs)
    }

    /// `t` after `delay`: `minutes`/`hours` as elapsed time, `days` at the same local time,
    /// `business_hours` counted inside the windows.
    pub fn after(&self, t: DateTime<Utc>, delay: &Delay) -> DateTime<Utc> {
        if let Some(bh) = delay.business_hours {
            return self.add_business_minutes(t, bh.saturating_mul(60));
        }
        if let Some(d) = delay.days {
            return self.add_days(t, d);
        }
        let minutes = delay.minutes.unwrap_or(0) + delay.hours.unwrap_or(0).saturating_mul(60);
        t + Duration::minutes(minutes.max(0))
    }

    /// When a cadence step delayed by `delay` after `t` runs: never outside business hours.
    pub fn schedule(&self, t: DateTime<Utc>, delay: Option<&Delay>) -> DateTime<Utc> {
        let at = delay.map_or(t, |d| self.after(t, d));
        self.next_open(at)
    }
}

/// Checks a delay: exactly one unit, within bounds. `field` names it in errors.
pub fn validate_delay(v: &mut Validator, field: &str, d: &Delay) {
    let set = [d.minutes, d.hours, d.days, d.business_hours]
        .iter()
        .filter(|x| x.is_some())
        .count();
    if set != 1 {
        v.add(
            field,
            "invalid_delay",
            "Informe exatamente uma unidade: minutes, hours, days ou business_hours",
        );
        return;
    }
    let (value, max, unit) = match (d.minutes, d.hours, d.days, d.business_hours) {
        (Some(m), ..) => (m, 60 * 24 * 365, "minutes"),
        (_, Some(h), ..) => (h, 24 * 365, "hours"),
        (_, _, Some(dd), _) => (dd, 365, "days"),
        (.., Some(b)) => (b, 24 * 365, "business_hours"),
        _ => (0, 0, ""),
    };
    if !(0..=max).contains(&value) {
        v.add(
            &format!("{field}.{unit}"),
            "out_of_range",
            &format!("Use um valor entre 0 e {max}"),
        );
    }
}

fn hhmm(m: u32) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// The stored configuration of a tenant, or the default. `tenant_tz` is the company's timezone.
pub async fn load<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    tenant_tz: &str,
) -> AppResult<Hours> {
    let Some(r) = row::Entity::find_by_id(tenant_id).one(conn).await? else {
        return Ok(Hours::default_in(agenda::tz_of(tenant_tz)));
    };
    Ok(from_row(&r, tenant_tz))
}

fn from_row(r: &row::Model, tenant_tz: &str) -> Hours {
    let mut weekdays = [false; 7];
    for d in serde_json::from_value::<Vec<u8>>(r.weekdays.clone()).unwrap_or_default() {
        if (1..=7).contains(&d) {
            weekdays[usize::from(d - 1)] = true;
        }
    }
    Hours {
        tz: agenda::tz_of(r.timezone.as_deref().unwrap_or(tenant_tz)),
        weekdays,
        start: r.start_minute.clamp(0, DAY_MINUTES as i32) as u32,
        end: r.end_minute.clamp(0, DAY_MINUTES as i32) as u32,
        holidays: serde_json::from_value(r.holidays.clone()).unwrap_or_default(),
    }
}

pub fn to_dto(h: &Hours, explicit_tz: Option<&str>) -> BusinessHours {
    BusinessHours {
        timezone: explicit_tz
            .map(str::to_string)
            .unwrap_or_else(|| h.tz.name().to_string()),
        weekdays: (1..=7u8)
            .filter(|d| h.weekdays[usize::from(d - 1)])
            .collect(),
        start: hhmm(h.start),
        end: hhmm(h.end),
        holidays: h.holidays.iter().copied().collect(),
    }
}

/// `GET /api/automations/business-hours`.
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    tenant_tz: &str,
) -> AppResult<BusinessHours> {
    let h = load(conn, tenant_id, tenant_tz).await?;
    Ok(to_dto(&h, None))
}

/// `PUT /api/automations/business-hours`: absent fields keep their current value.
pub async fn put<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    tenant_tz: &str,
    input: &BusinessHoursInput,
) -> AppResult<BusinessHours> {
    let existing = row::Entity::find_by_id(tenant_id).one(conn).await?;
    let cur = match &existing {
        Some(r) => from_row(r, tenant_tz),
        None => Hours::default_in(agenda::tz_of(tenant_tz)),
    };
    let mut v = Validator::new();
    let timezone = match input.timezone.as_deref().map(str::trim) {
        None => existing.as_ref().and_then(|r| r.timezone.clone()),
        Some("") => None,
        Some(tz) => {
            if tz.parse::<Tz>().is_err() {
                v.add(
                    "timezone",
                    "invalid_timezone",
                    "Fuso horário IANA inválido (ex.: America/Sao_Paulo)",
                );
            }
            Some(tz.to_string())
        }
    };
    let weekdays: Vec<u8> = match &input.weekdays {
        None => (1..=7u8)
            .filter(|d| cur.weekdays[usize::from(d - 1)])
            .collect(),
        Some(list) => {
            if list.is_empty() {
                v.add(
                    "weekdays",
                    "required",
                    "Informe ao menos um dia (1 = segunda … 7 = domingo)",
                );
            }
            if list.iter().any(|d| !(1..=7).contains(d)) {
                v.add(
                    "weekdays",
                    "invalid_value",
                    "Dias de 1 (segunda) a 7 (domingo)",
                );
            }
            let mut l: Vec<u8> = list.clone();
            l.sort_unstable();
            l.dedup();
            l
        }
    };
    let mut minute = |field: &str, s: &Option<String>, current: u32| match s {
        None => Some(current),
        Some(s) => {
            let m = parse_hhmm(s);
            if m.is_none() {
                v.add(field, "invalid_time", "Use HH:MM (00:00 a 24:00)");
            }
            m
        }
    };
    let start = minute("start", &input.start, cur.start);
    let end = minute("end", &input.end, cur.end);
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        v.add(
            "end",
            "before_start",
            "O fim do expediente deve ser depois do início",
        );
    }
    let holidays: BTreeSet<NaiveDate> = match &input.holidays {
        None => cur.holidays.clone(),
        Some(h) => {
            if h.len() > 366 {
                v.add("holidays", "too_many", "No máximo 366 feriados");
            }
            h.iter().copied().collect()
        }
    };
    v.finish()?;
    let (start, end) = (start.unwrap_or(DEFAULT_START), end.unwrap_or(DEFAULT_END));
    let am = row::ActiveModel {
        tenant_id: Set(tenant_id),
        timezone: Set(timezone.clone()),
        weekdays: Set(serde_json::json!(weekdays)),
        start_minute: Set(start as i32),
        end_minute: Set(end as i32),
        holidays: Set(serde_json::json!(holidays)),
        updated_at: Set(Utc::now()),
        version: Set(existing.as_ref().map_or(1, |r| r.version + 1)),
    };
    // An upsert: two first saves at once both succeed (the last one wins).
    let saved = row::Entity::insert(am)
        .on_conflict(
            OnConflict::column(row::Column::TenantId)
                .update_columns([
                    row::Column::Timezone,
                    row::Column::Weekdays,
                    row::Column::StartMinute,
                    row::Column::EndMinute,
                    row::Column::Holidays,
                    row::Column::UpdatedAt,
                    row::Column::Version,
                ])
                .to_owned(),
        )
        .exec_with_returning(conn)
        .await?;
    Ok(to_dto(&from_row(&saved, tenant_tz), None))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sp() -> Hours {
        Hours::default_in(chrono_tz::America::Sao_Paulo)
    }

    #[test]
    fn nothing_at_3am_or_on_sunday() {
        let h = sp();
        // Tuesday 2026-12-01 03:00 in São Paulo (UTC-3) → 08:00 the same day.
        assert_eq!(
            h.next_open(utc("2026-12-01T06:00:00Z")),
            utc("2026-12-01T11:00:00Z")
        );
        // Inside the window: unchanged.
        assert_eq!(
            h.next_open(utc("2026-12-01T13:15:00Z")),
            utc("2026-12-01T13:15:00Z")
        );
        // Saturday 10:00 and Sunday 10:00 → Monday 08:00.
        assert_eq!(
            h.next_open(utc("2026-12-05T13:00:00Z")),
            utc("2026-12-07T11:00:00Z")
        );
        assert_eq!(
            h.next_open(utc("2026-12-06T13:00:00Z")),
            utc("2026-12-07T11:00:00Z")
        );
        // Friday 18:00 is closed (end exclusive) → Monday.
        assert_eq!(
            h.next_open(utc("2026-12-04T21:00:00Z")),
            utc("2026-12-07T11:00:00Z")
        );
    }

    #[test]
    fn business_hours_across_a_weekend() {
        let h = sp();
        // Friday 17:00 + 2 business hours = Monday 09:00.
        assert_eq!(
            h.add_business_minutes(utc("2026-12-04T20:00:00Z"), 120),
            utc("2026-12-07T12:00:00Z")
        );
        // Friday 17:00 + 1 h = 18:00 the same day (the end of the window is reachable).
        assert_eq!(
            h.add_business_minutes(utc("2026-12-04T20:00:00Z"), 60),
            utc("2026-12-04T21:00:00Z")
        );
        // 12 business hours from Thursday 08:00: 10 h Thursday + 2 h Friday.
        assert_eq!(
            h.add_business_minutes(utc("2026-12-03T11:00:00Z"), 12 * 60),
            utc("2026-12-04T13:00:00Z")
        );
        // Sunday night + 1 h = Monday 09:00.
        assert_eq!(
            h.add_business_minutes(utc("2026-12-06T23:00:00Z"), 60),
            utc("2026-12-07T12:00:00Z")
        );
    }

    #[test]
    fn holidays_are_closed() {
        let mut h = sp();
        h.holidays
            .insert(NaiveDate::from_ymd_opt(2026, 12, 25).unwrap());
        // Thursday 24th 17:00 + 2 h: Friday 25th is a holiday → Monday 28th 09:00.
        assert_eq!(
            h.add_business_minutes(utc("2026-12-24T20:00:00Z"), 120),
            utc("2026-12-28T12:00:00Z")
        );
    }

    #[test]
    fn across_the_2018_dst_change_in_sao_paulo() {
        let h = sp();
        // DST began on Sunday 2018-11-04 at 00:00 (UTC-3 → UTC-2). Friday 2nd 17:00 (-03) + 2 h
        // of business = Monday 5th 09:00, now at -02.
        assert_eq!(
            h.add_business_minutes(utc("2018-11-02T20:00:00Z"), 120),
            utc("2018-11-05T11:00:00Z")
        );
        // Thursday 1st 10:00 (-03) + 4 days = Monday 5th 10:00 local (-02).
        assert_eq!(
            h.add_days(utc("2018-11-01T13:00:00Z"), 4),
            utc("2018-11-05T12:00:00Z")
        );
        // DST ended on 2019-02-17 00:00 (back to 23:00 on the 16th): Saturday 16th 23:30 happened
        // twice; the next window is Monday 18th 08:00 at -03.
        assert_eq!(
            h.next_open(utc("2019-02-17T01:30:00Z")),
            utc("2019-02-18T11:00:00Z")
        );
    }

    #[test]
    fn around_the_clock_counts_real_time_across_a_dst_gap() {
        let h = Hours::always(chrono_tz::America::New_York);
        // 2026-03-08 02:00 EST jumps to 03:00 EDT: 00:30 EST (05:30Z) + 3 h = 08:30Z = 04:30 EDT.
        assert_eq!(
            h.add_business_minutes(utc("2026-03-08T05:30:00Z"), 180),
            utc("2026-03-08T08:30:00Z")
        );
        // The same local time one day later: 02:30 does not exist on the 8th, so 03:00 EDT.
        assert_eq!(
            h.add_days(utc("2026-03-07T07:30:00Z"), 1),
            utc("2026-03-08T07:00:00Z")
        );
        // 01:00 EST stays 01:00 EST.
        assert_eq!(
            h.add_days(utc("2026-03-07T06:00:00Z"), 1),
            utc("2026-03-08T06:00:00Z")
        );
    }

    #[test]
    fn schedule_applies_delay_then_business_hours() {
        let h = sp();
        // Friday 16:00 + 2 days = Sunday 16:00 → Monday 08:00.
        let d = Delay {
            days: Some(2),
            ..Delay::default()
        };
        assert_eq!(
            h.schedule(utc("2026-12-04T19:00:00Z"), Some(&d)),
            utc("2026-12-07T11:00:00Z")
        );
        // No delay at 03:00 on Wednesday → 08:00.
        assert_eq!(
            h.schedule(utc("2026-12-02T06:00:00Z"), None),
            utc("2026-12-02T11:00:00Z")
        );
        let d = Delay {
            hours: Some(1),
            ..Delay::default()
        };
        assert_eq!(
            h.after(utc("2026-12-05T13:00:00Z"), &d),
            utc("2026-12-05T14:00:00Z")
        );
    }

    #[test]
    fn hhmm_parsing() {
        assert_eq!(parse_hhmm("08:00"), Some(480));
        assert_eq!(parse_hhmm("24:00"), Some(1440));
        assert_eq!(parse_hhmm("24:01"), None);
        assert_eq!(parse_hhmm("8:00"), None);
        assert_eq!(parse_hhmm("12:60"), None);
        assert_eq!(hhmm(1080), "18:00");
    }

    #[test]
    fn delays_are_validated() {
        let mut v = Validator::new();
        validate_delay(&mut v, "d", &Delay::default());
        validate_delay(
            &mut v,
            "d",
            &Delay {
                days: Some(1),
                hours: Some(1),
                ..Delay::default()
            },
        );
        validate_delay(
            &mut v,
            "d",
            &Delay {
                days: Some(-1),
                ..Delay::default()
            },
        );
        validate_delay(
            &mut v,
            "d",
            &Delay {
                business_hours: Some(8),
                ..Delay::default()
            },
        );
        let f: Vec<_> = v.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(f, vec!["d", "d", "d.days"]);
    }
}
