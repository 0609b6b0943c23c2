//! Deal arithmetic in integer BRL cents. The rule (docs/pipelines.md):
//!
//! - a line's discount applies to both its unit prices:
//!   `monthly_total = round_half_up(quantity × monthly_price × (10000 − discount_bp) / 10000)`,
//!   the same for `setup_total` (`discount_bp` = discount in hundredths of a percent);
//! - the deal adds the rounded lines: `mrr = Σ monthly_total`, `setup = Σ setup_total`;
//! - `tcv = mrr × term_months + setup` (no further rounding: all terms are whole cents);
//! - `weighted = round_half_up(value × probability / 100)`, and on the board
//!   `round_half_up(Σ value × probability / 100)` per stage.
//!
//! Intermediate products use `i128`; no float ever touches an amount. Amounts are non-negative, so
//! "half up" is "half away from zero".

/// Largest unit price of a line or product (R$ 100 milhões).
pub const MAX_UNIT_PRICE_CENTS: i64 = 10_000_000_000;
pub const MAX_QUANTITY: i32 = 100_000;
pub const MAX_TERM_MONTHS: i32 = 600;
pub const MAX_ITEMS: usize = 100;
/// Largest total contract value of one deal (R$ 1 bilhão), which keeps the board's SQL sums of
/// `value × probability` far inside 64 bits.
pub const MAX_DEAL_CENTS: i64 = 100_000_000_000;

/// `n / d` rounded half up, for `n ≥ 0`, `d > 0`.
pub fn div_round_half_up(n: i128, d: i128) -> i128 {
    (n + d / 2) / d
}

/// The total of `quantity` units at `unit_cents` with `discount_bp` off.
pub fn line_total(quantity: i32, unit_cents: i64, discount_bp: i32) -> i128 {
    let gross = i128::from(quantity) * i128::from(unit_cents);
    div_round_half_up(gross * i128::from(10_000 - discount_bp), 10_000)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub mrr_cents: i64,
    pub setup_cents: i64,
    pub tcv_cents: i64,
}

/// Deal totals from the lines' `(monthly_total, setup_total)`; `None` past [`MAX_DEAL_CENTS`].
pub fn deal_totals(lines: &[(i128, i128)], term_months: i32) -> Option<Totals> {
    let mrr: i128 = lines.iter().map(|l| l.0).sum();
    let setup: i128 = lines.iter().map(|l| l.1).sum();
    let tcv = mrr * i128::from(term_months) + setup;
    if tcv > i128::from(MAX_DEAL_CENTS) {
        return None;
    }
    Some(Totals {
        mrr_cents: i64::try_from(mrr).ok()?,
        setup_cents: i64::try_from(setup).ok()?,
        tcv_cents: i64::try_from(tcv).ok()?,
    })
}

/// `value × probability / 100`, rounded half up.
pub fn weighted(value_cents: i64, probability: i32) -> i64 {
    weighted_from_sum(i128::from(value_cents) * i128::from(probability))
}

/// A stage's weighted forecast from the SQL sum of `value × probability`.
pub fn weighted_from_sum(sum_value_x_probability: i128) -> i64 {
    i64::try_from(div_round_half_up(sum_value_x_probability.max(0), 100)).unwrap_or(i64::MAX)
}

/// A discount percentage (0–100, at most two decimals) as hundredths of a percent.
pub fn discount_bp(percent: f64) -> Option<i32> {
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return None;
    }
    let scaled = percent * 100.0;
    let bp = scaled.round();
    ((scaled - bp).abs() < 1e-6).then_some(bp as i32)
}

/// Hundredths of a percent back to a percentage for the API.
pub fn discount_percent(bp: i32) -> f64 {
    f64::from(bp) / 100.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn rounds_half_up_to_the_cent() {
        assert_eq!(div_round_half_up(5, 10), 1);
        assert_eq!(div_round_half_up(4, 10), 0);
        assert_eq!(div_round_half_up(15, 10), 2);
        assert_eq!(div_round_half_up(25, 10), 3, "half up, not half even");
        // 3 × R$ 99,99 with 12.5 % off = 262.47375 → R$ 262,47
        assert_eq!(line_total(3, 9_999, 1_250), 26_247);
        // 1 × R$ 0,05 with 50 % off = 2.5 cents → 3 cents
        assert_eq!(line_total(1, 5, 5_000), 3);
        // 1 × R$ 0,01 with 33.33 % off = 0.6667 cents → 1 cent
        assert_eq!(line_total(1, 1, 3_333), 1);
        assert_eq!(line_total(7, 1_000, 0), 7_000);
        assert_eq!(line_total(7, 1_000, 10_000), 0);
    }

    #[test]
    fn deal_adds_rounded_lines_and_multiplies_by_term() {
        // R$ 1.200/month × 24 + R$ 500 setup
        let t = deal_totals(&[(120_000, 50_000)], 24).unwrap();
        assert_eq!(t.mrr_cents, 120_000);
        assert_eq!(t.setup_cents, 50_000);
        assert_eq!(t.tcv_cents, 120_000 * 24 + 50_000);
        // Lines are rounded before they are added: 2 × 0.5 cent lines = 2 cents, not 1.
        let a = line_total(1, 1, 5_000);
        let t = deal_totals(&[(a, 0), (a, 0)], 1).unwrap();
        assert_eq!(t.mrr_cents, 2);
        assert!(deal_totals(&[(MAX_DEAL_CENTS as i128, 1)], 1).is_none());
    }

    #[test]
    fn weighted_and_discounts() {
        assert_eq!(weighted(1_001, 50), 501);
        assert_eq!(weighted(1_000, 0), 0);
        assert_eq!(weighted(999, 100), 999);
        assert_eq!(weighted_from_sum(150), 2);
        assert_eq!(discount_bp(12.5), Some(1_250));
        assert_eq!(discount_bp(0.01), Some(1));
        assert_eq!(discount_bp(33.33), Some(3_333));
        assert_eq!(discount_bp(100.0), Some(10_000));
        assert_eq!(discount_bp(12.345), None);
        assert_eq!(discount_bp(-1.0), None);
        assert_eq!(discount_bp(100.5), None);
        assert_eq!(discount_percent(1_250), 12.5);
    }
}
