//! Tolerant readers and writers of the suite API's value formats, shared by the client, the event
//! parser and the mock: numbers that arrive as strings or ints, `dd/mm/aaaa` dates in local time,
//! `HH:MM:SS` durations, `"0"/"1"` booleans, `link_gravacao` as a string or an array.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::Value;

/// Brasília time, UTC−03:00 all year since daylight saving time was abolished in 2019 (dates
/// before that, in summer, are one hour off; the PABX history is not expected to reach back).
pub fn sao_paulo_offset() -> FixedOffset {
    SAO_PAULO
}

const SAO_PAULO: FixedOffset = match FixedOffset::west_opt(3 * 3600) {
    Some(o) => o,
    None => panic!("UTC-03:00 is a valid offset"),
};

/// A string or a number as a trimmed, non-empty string. Integral floats are written without a
/// fraction (`1001.0` → `"1001"`); other floats, booleans, arrays and objects give `None`.
pub fn flex_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_owned())
        }
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Some(u.to_string())
            } else if let Some(i) = n.as_i64() {
                Some(i.to_string())
            } else {
                let f = n.as_f64()?;
                // Exact integers only: beyond 2^53 an f64 no longer holds every integer.
                (f.is_finite() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
                    .then(|| format!("{f:.0}"))
            }
        }
        _ => None,
    }
}

/// A non-negative integer given as a number or a numeric string (`"42"`, `" 42 "`, `42.0`).
pub fn flex_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            let f = n.as_f64()?;
            (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0)
                .then_some(f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Like [`flex_u64`], for values that must fit a `u16` (status and SIP codes).
pub fn flex_u16(v: &Value) -> Option<u16> {
    flex_u64(v).and_then(|n| u16::try_from(n).ok())
}

/// `"1"/"0"`, `1/0`, `true/false`, `"sim"/"nao"`, `"s"/"n"`, `"yes"/"no"`; anything else `None`.
pub fn flex_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_u64().map(|n| n != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "sim" | "s" | "yes" | "y" | "on" => Some(true),
            "0" | "false" | "nao" | "não" | "n" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Free text: a non-empty trimmed string; a number as a string; an array of texts joined by
/// newlines (some deployments split transcriptions by speaker); an object as compact JSON.
pub fn flex_text(v: &Value) -> Option<String> {
    match v {
        Value::Null | Value::Bool(_) => None,
        Value::String(_) | Value::Number(_) => flex_string(v),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(flex_text).collect();
            (!parts.is_empty()).then(|| parts.join("\n"))
        }
        Value::Object(m) if m.is_empty() => None,
        Value::Object(_) => Some(v.to_string()),
    }
}

/// Seconds from `"HH:MM:SS"` (hours may exceed 23), `"MM:SS"`, `"SS"`, with an optional
/// fractional part after `,` or `.` that is dropped (`"00:01:05,320"`). `None` when unreadable
/// or when a minute/second field is 60 or more.
pub fn parse_hms(s: &str) -> Option<u32> {
    let s = s.trim();
    let s = s.split([',', '.']).next().unwrap_or(s).trim();
    if s.is_empty() {
        return None;
    }
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let nums: Vec<u64> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    if nums.len() != parts.len() {
        return None;
    }
    let total = match nums.as_slice() {
        [s] => *s,
        [m, s] if *s < 60 => m * 60 + s,
        [h, m, s] if *m < 60 && *s < 60 => h * 3600 + m * 60 + s,
        _ => return None,
    };
    u32::try_from(total).ok()
}

/// Seconds from a JSON value: a number of seconds (a fraction is dropped), a numeric string, or an
/// `"HH:MM:SS"` string.
pub fn flex_seconds(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(u) => u32::try_from(u).ok(),
            None => n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < f64::from(u32::MAX))
                .map(|f| f.trunc() as u32),
        },
        Value::String(s) => parse_hms(s),
        _ => None,
    }
}

/// `"HH:MM:SS"` (at least two hour digits) for a number of seconds.
pub fn format_hms(secs: u32) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

const DATETIME_FORMATS: [&str; 5] = [
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
];

/// A local date/time as the PABX writes it, converted to UTC with `offset`:
/// `dd/mm/aaaa HH:MM:SS`, `dd/mm/aaaa HH:MM`, `dd/mm/aaaa` (midnight), `aaaa-mm-dd HH:MM:SS`,
/// `aaaa-mm-ddTHH:MM:SS`, `aaaa-mm-dd`; an RFC 3339 string with its own offset is honoured.
pub fn parse_local_datetime(s: &str, offset: FixedOffset) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    let naive = DATETIME_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| {
            ["%d/%m/%Y", "%Y-%m-%d"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
                .map(|d| d.and_time(NaiveTime::MIN))
        })?;
    local_to_utc(naive, offset)
}

/// A local date (`dd/mm/aaaa`) and a separate time (`HH:MM:SS` or `HH:MM`).
pub fn parse_local_date_and_time(
    date: &str,
    time: &str,
    offset: FixedOffset,
) -> Option<DateTime<Utc>> {
    let d = NaiveDate::parse_from_str(date.trim(), "%d/%m/%Y")
        .or_else(|_| NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d"))
        .ok()?;
    let t = NaiveTime::parse_from_str(time.trim(), "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(time.trim(), "%H:%M"))
        .ok()?;
    local_to_utc(d.and_time(t), offset)
}

fn local_to_utc(naive: NaiveDateTime, offset: FixedOffset) -> Option<DateTime<Utc>> {
    offset
        .from_local_datetime(&naive)
        .single()
        .map(|dt| dt.with_timezone(&Utc))
}

/// Unix seconds (or milliseconds, when the value is too large to be seconds) to UTC.
pub fn from_unix(v: &Value) -> Option<DateTime<Utc>> {
    let n = i64::try_from(flex_u64(v)?).ok()?;
    if n > 100_000_000_000 {
        DateTime::from_timestamp_millis(n)
    } else {
        DateTime::from_timestamp(n, 0)
    }
}

/// `dd/mm/aaaa` of `at` in local time.
pub fn format_date(at: DateTime<Utc>, offset: FixedOffset) -> String {
    at.with_timezone(&offset).format("%d/%m/%Y").to_string()
}

/// `HH:MM` of `at` in local time.
pub fn format_hm(at: DateTime<Utc>, offset: FixedOffset) -> String {
    at.with_timezone(&offset).format("%H:%M").to_string()
}

/// `dd/mm/aaaa HH:MM:SS` of `at` in local time.
pub fn format_datetime(at: DateTime<Utc>, offset: FixedOffset) -> String {
    at.with_timezone(&offset)
        .format("%d/%m/%Y %H:%M:%S")
        .to_string()
}

/// Recording URLs from `link_gravacao` / `gravacao`: a string, an array of strings, `""`,
/// `null`, `false` or missing. Blank entries are dropped; a string holding several URLs
/// separated by commas, semicolons or whitespace is split.
pub fn recording_urls(v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    let mut push_str = |s: &str| {
        for part in s.split([',', ';', ' ', '\n', '\t']) {
            let part = part.trim();
            if !part.is_empty() && !out.iter().any(|u| u == part) {
                out.push(part.to_owned());
            }
        }
    };
    match v {
        Some(Value::String(s)) => push_str(s),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => push_str(s),
                    // Some deployments may wrap each link: {"url": "..."} / {"link": "..."}.
                    Value::Object(m) => {
                        if let Some(Value::String(s)) = ["url", "link", "link_gravacao", "gravacao"]
                            .iter()
                            .find_map(|k| m.get(*k))
                        {
                            push_str(s);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    out
}

/// The first present, non-null value among `keys` in `obj`, trying the keys as given and then
/// ASCII-case-insensitively.
pub fn field<'a>(obj: &'a serde_json::Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .find_map(|k| obj.get(*k).filter(|v| !v.is_null()))
        .or_else(|| {
            obj.iter()
                .find(|(k, v)| !v.is_null() && keys.iter().any(|want| k.eq_ignore_ascii_case(want)))
                .map(|(_, v)| v)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_numbers() {
        assert_eq!(flex_string(&json!("  12 ")).as_deref(), Some("12"));
        assert_eq!(flex_string(&json!(12)).as_deref(), Some("12"));
        assert_eq!(flex_string(&json!(-12)).as_deref(), Some("-12"));
        assert_eq!(flex_string(&json!(1001.0)).as_deref(), Some("1001"));
        assert_eq!(flex_string(&json!(1.5)), None);
        assert_eq!(flex_string(&json!(1e30)), None);
        assert_eq!(flex_string(&json!("")), None);
        assert_eq!(flex_string(&json!(null)), None);
        assert_eq!(flex_string(&json!([1])), None);
        assert_eq!(flex_u64(&json!("486")), Some(486));
        assert_eq!(flex_u64(&json!(486)), Some(486));
        assert_eq!(flex_u64(&json!(-1)), None);
        assert_eq!(flex_u64(&json!("x")), None);
        assert_eq!(flex_u16(&json!(70000)), None);
        assert_eq!(flex_bool(&json!("1")), Some(true));
        assert_eq!(flex_bool(&json!("0")), Some(false));
        assert_eq!(flex_bool(&json!(1)), Some(true));
        assert_eq!(flex_bool(&json!("sim")), Some(true));
        assert_eq!(flex_bool(&json!("talvez")), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_hms("00:01:05"), Some(65));
        assert_eq!(parse_hms("1:01:05"), Some(3665));
        assert_eq!(parse_hms("125:00:00"), Some(450_000));
        assert_eq!(parse_hms("01:05"), Some(65));
        assert_eq!(parse_hms("65"), Some(65));
        assert_eq!(parse_hms(" 00:00:07,250 "), Some(7));
        assert_eq!(parse_hms("00:00:07.9"), Some(7));
        assert_eq!(parse_hms("00:60:00"), None);
        assert_eq!(parse_hms("00:00:60"), None);
        assert_eq!(parse_hms("1:2:3:4"), None);
        assert_eq!(parse_hms("aa:bb:cc"), None);
        assert_eq!(parse_hms(""), None);
        assert_eq!(parse_hms("::"), None);
        assert_eq!(parse_hms("-1"), None);
        assert_eq!(parse_hms("99999999999"), None);
        assert_eq!(parse_hms("999999999:00:00"), None);
        assert_eq!(flex_seconds(&json!(42)), Some(42));
        assert_eq!(flex_seconds(&json!("42")), Some(42));
        assert_eq!(flex_seconds(&json!("00:00:42")), Some(42));
        assert_eq!(flex_seconds(&json!(true)), None);
        assert_eq!(flex_seconds(&json!(65.7)), Some(65));
        assert_eq!(flex_seconds(&json!(-1.0)), None);
        assert_eq!(flex_seconds(&json!(1e300)), None);
        assert_eq!(format_hms(3665), "01:01:05");
        assert_eq!(format_hms(0), "00:00:00");
        assert_eq!(format_hms(360_000), "100:00:00");
    }

    #[test]
    fn dates() {
        let sp = sao_paulo_offset();
        let want = DateTime::parse_from_rfc3339("2025-03-05T17:03:07Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_local_datetime("05/03/2025 14:03:07", sp), Some(want));
        assert_eq!(parse_local_datetime("2025-03-05 14:03:07", sp), Some(want));
        assert_eq!(parse_local_datetime("2025-03-05T14:03:07", sp), Some(want));
        assert_eq!(
            parse_local_datetime("2025-03-05T14:03:07-03:00", sp),
            Some(want)
        );
        assert_eq!(
            parse_local_date_and_time("05/03/2025", "14:03:07", sp),
            Some(want)
        );
        assert_eq!(
            parse_local_datetime("05/03/2025", sp),
            Some(
                DateTime::parse_from_rfc3339("2025-03-05T03:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc)
            )
        );
        assert_eq!(parse_local_datetime("31/02/2025 10:00:00", sp), None);
        assert_eq!(parse_local_datetime("05/03/2025 25:00:00", sp), None);
        assert_eq!(parse_local_datetime("ontem", sp), None);
        assert_eq!(parse_local_datetime("", sp), None);
        assert_eq!(format_datetime(want, sp), "05/03/2025 14:03:07");
        assert_eq!(format_date(want, sp), "05/03/2025");
        assert_eq!(format_hm(want, sp), "14:03");
        assert_eq!(from_unix(&json!(1_741_194_187)), Some(want));
        assert_eq!(from_unix(&json!("1741194187000")), Some(want));
        assert_eq!(from_unix(&json!("x")), None);
        assert_eq!(from_unix(&json!(u64::MAX)), None);
    }

    #[test]
    fn recordings() {
        assert_eq!(
            recording_urls(Some(&json!("http://a/1.wav"))),
            vec!["http://a/1.wav"]
        );
        assert_eq!(
            recording_urls(Some(&json!(["http://a/1.wav", "", "http://a/2.wav"]))),
            vec!["http://a/1.wav", "http://a/2.wav"]
        );
        assert_eq!(
            recording_urls(Some(&json!("http://a/1.wav, http://a/2.wav"))),
            vec!["http://a/1.wav", "http://a/2.wav"]
        );
        assert_eq!(
            recording_urls(Some(&json!([{"url": "http://a/3.wav"}]))),
            vec!["http://a/3.wav"]
        );
        assert!(recording_urls(Some(&json!(""))).is_empty());
        assert!(recording_urls(Some(&json!([]))).is_empty());
        assert!(recording_urls(Some(&json!(null))).is_empty());
        assert!(recording_urls(Some(&json!(false))).is_empty());
        assert!(recording_urls(None).is_empty());
    }

    #[test]
    fn texts_and_fields() {
        assert_eq!(flex_text(&json!(["a", "b"])).as_deref(), Some("a\nb"));
        assert_eq!(flex_text(&json!("  ")), None);
        assert_eq!(flex_text(&json!({})), None);
        assert_eq!(flex_text(&json!({"k": 1})).as_deref(), Some("{\"k\":1}"));
        let obj = json!({"CallId": 5, "origem": null, "from": "x"});
        let obj = obj.as_object().unwrap();
        assert_eq!(field(obj, &["callid"]), Some(&json!(5)));
        assert_eq!(field(obj, &["origem", "from"]), Some(&json!("x")));
        assert_eq!(field(obj, &["nada"]), None);
    }
}
