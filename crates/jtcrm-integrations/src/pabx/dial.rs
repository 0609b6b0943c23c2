//! The Brazilian dialling rule (E.164 → what an extension dials) and the tolerant normaliser
//! (whatever the PABX writes → E.164).
//!
//! Brazilian numbers are validated with [`jtcrm_types::br::Phone`] (the 67 assigned DDDs,
//! landlines `[2-5]` + 7 digits, mobiles `9` + 8 digits), so the rules stay in one place.

use jtcrm_types::br::Phone;

/// Why a number cannot be dialled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// Not `+` followed by 7 to 15 digits.
    #[error("not an E.164 number: {0:?}")]
    NotE164(String),
    /// A `+55` number that is not a valid Brazilian landline, mobile or 0800-style number.
    #[error("not a valid Brazilian number: {0:?}")]
    InvalidBrazilianNumber(String),
    /// The tenant's/extension's own DDD is not one of the 67 assigned area codes.
    #[error("invalid own area code (DDD): {0}")]
    InvalidAreaCode(u8),
    /// A carrier selection code (CSP) must have two digits, 10 to 99.
    #[error("invalid carrier selection code (CSP): {0}")]
    InvalidCsp(u8),
}

/// Whether `ddd` is one of the 67 assigned Brazilian area codes.
pub fn is_valid_area_code(ddd: u8) -> bool {
    // A landline with that DDD is valid exactly when the DDD is: reuse the one DDD table.
    (11..=99).contains(&ddd) && Phone::parse(&format!("{ddd}23456789")).is_ok()
}

/// Non-geographic national prefixes (0300, 0500, 0800, 0900 + 7 digits), stored in E.164 as
/// `+55` + `800xxxxxxx`.
fn is_non_geographic(national: &str) -> bool {
    national.len() == 10
        && national.bytes().all(|b| b.is_ascii_digit())
        && matches!(&national[..3], "300" | "303" | "500" | "800" | "900")
}

/// The dialling context of one extension: its own DDD and, optionally, the carrier selection
/// code (CSP) used for long distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialPlan {
    area_code: u8,
    csp: Option<u8>,
}

impl DialPlan {
    /// A plan for an extension whose own DDD is `area_code`, without CSP.
    pub fn new(area_code: u8) -> Result<Self, DialError> {
        if !is_valid_area_code(area_code) {
            return Err(DialError::InvalidAreaCode(area_code));
        }
        Ok(DialPlan {
            area_code,
            csp: None,
        })
    }

    /// Adds a carrier selection code (e.g. 15 Vivo/Telefônica, 21 Claro/Embratel, 41 TIM).
    pub fn with_csp(mut self, csp: u8) -> Result<Self, DialError> {
        if !(10..=99).contains(&csp) {
            return Err(DialError::InvalidCsp(csp));
        }
        self.csp = Some(csp);
        Ok(self)
    }

    pub fn area_code(&self) -> u8 {
        self.area_code
    }

    pub fn csp(&self) -> Option<u8> {
        self.csp
    }

    /// What the extension must dial to reach `e164`. See [`dial_string`] for the rule.
    pub fn dial_string(&self, e164: &str) -> Result<String, DialError> {
        let s = e164.trim();
        let digits = s
            .strip_prefix('+')
            .filter(|d| (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| DialError::NotE164(e164.to_owned()))?;
        if digits.starts_with('0') {
            return Err(DialError::NotE164(e164.to_owned()));
        }
        let csp = self.csp.map(|c| c.to_string()).unwrap_or_default();
        let Some(national) = digits.strip_prefix("55") else {
            // International: exit code 00 (+ CSP when configured) + country code + number.
            return Ok(format!("00{csp}{digits}"));
        };
        if is_non_geographic(national) {
            // 0800 & co. are dialled with the trunk 0 and never take a CSP.
            return Ok(format!("0{national}"));
        }
        if national.starts_with('0') {
            // E.164 never carries the trunk prefix.
            return Err(DialError::InvalidBrazilianNumber(e164.to_owned()));
        }
        let phone =
            Phone::parse(s).map_err(|_| DialError::InvalidBrazilianNumber(e164.to_owned()))?;
        let national = phone.national_digits();
        let (ddd, subscriber) = national.split_at(2);
        if phone.ddd() == self.area_code {
            Ok(subscriber.to_owned())
        } else {
            Ok(format!("0{csp}{ddd}{subscriber}"))
        }
    }

    /// [`normalise_number`] with this plan's DDD as the default area code.
    pub fn normalise(&self, raw: &str) -> Option<String> {
        normalise_number(raw, Some(self.area_code))
    }
}

/// The dialling rule: turns an E.164 number into the digits an extension whose own DDD is
/// `own_area_code` must dial, as JT Telecom suite clients do.
///
/// 1. Brazilian numbers (`+55` + DDD + 8-digit landline or 9-digit mobile) lose the `+55`.
/// 2. Same DDD as the extension: a **local** call, the DDD is dropped too:
///    `+5511987654321` from DDD 11 → `987654321`.
/// 3. Another DDD: **long distance**, trunk `0` + DDD + number:
///    `+5521987654321` from DDD 11 → `021987654321`; with a carrier selection code (CSP)
///    configured, `0` + CSP + DDD + number: CSP 15 → `01521987654321`.
/// 4. Non-geographic numbers (`+55800…`, 0300/0500/0900) are dialled `0` + number, no CSP.
/// 5. **International** (any other country code): `00` + country + number
///    (`+14155550100` → `0014155550100`), or `00` + CSP + country + number with a CSP.
///
/// Mobiles and landlines follow the same rule (the ninth digit is part of the number). Errors:
/// input not `+` + 7..15 digits, an invalid Brazilian number (bad DDD, 8-digit mobile, ...), an
/// invalid own DDD or CSP.
pub fn dial_string(e164: &str, own_area_code: u8, csp: Option<u8>) -> Result<String, DialError> {
    let mut plan = DialPlan::new(own_area_code)?;
    if let Some(csp) = csp {
        plan = plan.with_csp(csp)?;
    }
    plan.dial_string(e164)
}

/// Best-effort conversion of a number as a PABX writes it (CDR `origem`/`destino`, event
/// fields, caller ids) to E.164, or `None` when it is not a phone number (an extension like
/// `"1001"`, `"anonymous"`, a short code, garbage).
///
/// Accepted, masks (`()-./` and spaces) ignored:
/// - `+5511987654321`, `5511987654321` (country code with or without `+`);
/// - `11987654321`, `1134567890` (DDD + number);
/// - `011987654321` (trunk 0 + DDD + number) and `01511987654321` (trunk 0 + CSP + DDD +
///   number, the CSP is dropped);
/// - `987654321`, `34567890` (number without DDD) when `default_area_code` is given;
/// - `08001234567` → `+558001234567` (0300/0500/0800/0900);
/// - international `+14155550100` or `0014155550100` → `+14155550100` (an international number
///   dialled with a CSP, `00` + CSP + country, cannot be told apart and is read as is).
///
/// Brazilian numbers must pass [`Phone::parse`] (valid DDD, landline `[2-5]…`, mobile `9…`).
pub fn normalise_number(raw: &str, default_area_code: Option<u8>) -> Option<String> {
    let trimmed = raw.trim();
    let (plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !(c == ' ' || c == '(' || c == ')' || c == '-' || c == '.' || c == '/') {
            return None;
        }
    }
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let brazil = |national_or_full: &str| {
        Phone::parse(national_or_full)
            .ok()
            .map(|p| p.as_str().to_owned())
    };
    let international = |d: &str| -> Option<String> {
        if let Some(national) = d.strip_prefix("55") {
            if is_non_geographic(national) {
                return Some(format!("+{d}"));
            }
            return brazil(&format!("+{d}"));
        }
        ((7..=15).contains(&d.len()) && !d.starts_with('0')).then(|| format!("+{d}"))
    };
    if plus {
        return international(&digits);
    }
    if let Some(intl) = digits.strip_prefix("00") {
        return international(intl);
    }
    if let Some(national) = digits.strip_prefix('0') {
        if is_non_geographic(national) {
            return Some(format!("+55{national}"));
        }
        return match digits.len() {
            // 0 + DDD + landline / mobile.
            11 | 12 => brazil(&digits),
            // 0 + CSP + DDD + landline / mobile.
            13 | 14 => brazil(&digits[3..]),
            _ => None,
        };
    }
    match digits.len() {
        12 | 13 if digits.starts_with("55") => brazil(&format!("+{digits}")),
        10 | 11 => brazil(&digits),
        8 | 9 => default_area_code
            .filter(|ddd| is_valid_area_code(*ddd))
            .and_then(|ddd| brazil(&format!("{ddd}{digits}"))),
        _ => None,
    }
}

/// The extension number hidden in a PABX party string, when the string is not a phone number:
/// `"1001"`, `"grupolr-1001"`, `"SIP/1001"` → `"1001"`. Extensions have 2 to 6 digits.
pub fn extension_of(raw: &str, default_area_code: Option<u8>) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() || normalise_number(s, default_area_code).is_some() {
        return None;
    }
    let tail_start = s
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_digit())
        .last()
        .map(|(i, _)| i)?;
    let (prefix, tail) = s.split_at(tail_start);
    let prefix_ok = prefix.is_empty()
        || (prefix.ends_with(['-', '/', '_', ':'])
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_' | ':')));
    ((2..=6).contains(&tail.len()) && prefix_ok).then(|| tail.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn area_codes() {
        for ddd in [11, 19, 21, 27, 31, 41, 55, 61, 71, 79, 81, 91, 99] {
            assert!(is_valid_area_code(ddd), "{ddd}");
        }
        for ddd in [
            0, 1, 10, 20, 23, 25, 26, 29, 30, 36, 39, 40, 50, 52, 56, 60, 70, 72, 76, 78, 80, 90,
            100, 255,
        ] {
            assert!(!is_valid_area_code(ddd), "{ddd}");
        }
    }

    #[test]
    fn extension_detection() {
        assert_eq!(extension_of("1001", Some(11)).as_deref(), Some("1001"));
        assert_eq!(extension_of("grupolr-1001", None).as_deref(), Some("1001"));
        assert_eq!(extension_of("SIP/2002", None).as_deref(), Some("2002"));
        assert_eq!(extension_of(" 42 ", None).as_deref(), Some("42"));
        assert_eq!(extension_of("11987654321", None), None);
        assert_eq!(extension_of("987654321", Some(11)), None);
        assert_eq!(extension_of("anonymous", None), None);
        assert_eq!(extension_of("", None), None);
        assert_eq!(extension_of("1", None), None);
        assert_eq!(extension_of("a b-1001", None), None);
    }
}
