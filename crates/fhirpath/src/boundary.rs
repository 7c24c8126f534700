//! `lowBoundary([precision])` and `highBoundary([precision])` (FHIRPath 3.0 STU, the
//! functions of those names, added in 2.1; https://hl7.org/fhirpath/): the least and
//! greatest value a decimal, quantity, date, dateTime or time could have, given the
//! precision it was written with.
//!
//! Decimals are worked in exact integer arithmetic on their written digits (the f64 value
//! is only the carrier), so `1.587.lowBoundary()` is `1.58650000`, not a binary
//! approximation. The rounding follows the official test cases: for a non-negative value
//! the low boundary truncates and the high boundary rounds half up; a negative value's
//! low boundary is the negated high boundary of its magnitude, and the other way round.

use crate::item::{Decimal, Item};
use crate::temporal::{days_in_month, Kind, Precision, Temporal};

/// Largest precision (digits after the point) a decimal boundary can be asked for.
const MAX_DECIMAL_PRECISION: i64 = 28;

/// The boundary of one item; `None` (empty) for other types or an unsupported precision.
pub(crate) fn boundary<'a>(
    item: &Item<'a>,
    precision: Option<i64>,
    high: bool,
) -> Option<Item<'a>> {
    match item.to_system() {
        Item::Integer(i) => decimal(Decimal::from_int(i), precision, high).map(Item::Decimal),
        Item::Decimal(d) => decimal(d, precision, high).map(Item::Decimal),
        Item::Quantity { value, unit } => {
            decimal(value, precision, high).map(|value| Item::Quantity { value, unit })
        }
        Item::Date(t) => temporal(t, Kind::Date, precision, high).map(Item::Date),
        Item::DateTime(t) => temporal(t, Kind::DateTime, precision, high).map(Item::DateTime),
        Item::Time(t) => temporal(t, Kind::Time, precision, high).map(Item::Time),
        _ => None,
    }
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// The boundary of a decimal written with `d.scale` digits after the point.
fn decimal(d: Decimal, precision: Option<i64>, high: bool) -> Option<Decimal> {
    let p = precision.unwrap_or(8);
    if !(0..=MAX_DECIMAL_PRECISION).contains(&p) {
        return None;
    }
    let p = p as u32;
    let scale = u32::from(d.scale);
    // The written digits as an integer: 1.587 → 1587 at scale 3.
    let magnitude = (d.value.abs() * 10f64.powi(scale as i32)).round();
    if !magnitude.is_finite() || magnitude >= 1e30 {
        return None;
    }
    let m = magnitude as i128;
    let negative = d.value < 0.0;
    // A negative value's low boundary is the negated high boundary of its magnitude.
    let toward_high = high != negative;
    // Half a unit of the last written digit, at one more digit of scale.
    let half = if toward_high { m * 10 + 5 } else { m * 10 - 5 };
    let from = scale + 1;
    let r = if p >= from {
        half.checked_mul(pow10(p - from)?)?
    } else {
        let div = pow10(from - p)?;
        if toward_high {
            (half + div / 2) / div
        } else {
            half / div
        }
    };
    let value = r as f64 / 10f64.powi(p as i32);
    Some(Decimal {
        value: if negative { -value } else { value },
        scale: p as u8,
    })
}

/// The precision (in digits, as the spec counts them) a temporal boundary is asked for.
fn target(kind: Kind, precision: Option<i64>) -> Option<Precision> {
    Some(match (kind, precision) {
        (Kind::Date, None) | (Kind::Date | Kind::DateTime, Some(8)) => Precision::Day,
        (Kind::DateTime, None) | (Kind::DateTime, Some(17)) | (Kind::Time, None | Some(9)) => {
            Precision::Millisecond
        }
        (Kind::Date | Kind::DateTime, Some(4)) => Precision::Year,
        (Kind::Date | Kind::DateTime, Some(6)) => Precision::Month,
        (Kind::DateTime, Some(10)) | (Kind::Time, Some(2)) => Precision::Hour,
        (Kind::DateTime, Some(12)) | (Kind::Time, Some(4)) => Precision::Minute,
        (Kind::DateTime, Some(14)) | (Kind::Time, Some(6)) => Precision::Second,
        _ => return None,
    })
}

/// The boundary of a date, dateTime or time: the missing components filled with their
/// least (or greatest) values; a dateTime without a zone takes the earliest (+14:00) or
/// latest (-12:00) zone once it has a time.
fn temporal(t: Temporal, kind: Kind, precision: Option<i64>, high: bool) -> Option<Temporal> {
    let to = target(kind, precision)?;
    let mut out = t;
    // An hour alone (`T08`) is not a FHIR time: it stands for `08:00`.
    let from = if t.precision == Precision::Hour {
        out.minute = 0;
        Precision::Minute
    } else {
        t.precision
    };
    let fill = |p: Precision| from < p && p <= to;
    if fill(Precision::Month) {
        out.month = if high { 12 } else { 1 };
    }
    if fill(Precision::Day) {
        out.day = if high {
            days_in_month(out.year, out.month)
        } else {
            1
        };
    }
    if fill(Precision::Hour) {
        out.hour = if high { 23 } else { 0 };
    }
    if fill(Precision::Minute) {
        out.minute = if high { 59 } else { 0 };
    }
    if fill(Precision::Second) {
        out.second = if high { 59 } else { 0 };
    }
    if to == Precision::Millisecond {
        if from < Precision::Millisecond {
            out.micros = if high { 999_000 } else { 0 };
        }
        out.frac_digits = out.frac_digits.max(3);
    } else {
        out.micros = 0;
        out.frac_digits = 0;
    }
    out.precision = to;
    if kind == Kind::DateTime && to >= Precision::Hour && out.tz.is_none() {
        out.tz = Some(if high { -12 * 60 } else { 14 * 60 });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Expr;
    use serde_json::json;

    /// `(expression, expected text)`; expected values worked by hand from the rules in
    /// the module doc, not from this code.
    #[test]
    fn boundaries_of_decimals_dates_and_times() {
        let cases = [
            ("1.0.lowBoundary()", "0.95000000"),
            ("1.0.highBoundary(2)", "1.05"),
            ("2.35.lowBoundary(1)", "2.3"),
            ("2.35.highBoundary(1)", "2.4"),
            ("(-2.35).lowBoundary(3)", "-2.355"),
            ("(-2.35).highBoundary(3)", "-2.345"),
            ("7.highBoundary(0)", "8"),
            ("5 'mg'.lowBoundary(2)", "4.50 'mg'"),
            ("@1970-06.lowBoundary()", "1970-06-01"),
            ("@1970-06.highBoundary()", "1970-06-30"),
            ("@2024-02.highBoundary()", "2024-02-29"),
            (
                "@2010-10-10T.lowBoundary()",
                "2010-10-10T00:00:00.000+14:00",
            ),
            (
                "@2010-10-10T.highBoundary()",
                "2010-10-10T23:59:59.999-12:00",
            ),
            (
                "@2010-10-10T10:15Z.highBoundary(14)",
                "2010-10-10T10:15:59Z",
            ),
            ("@2010-10-10T10:15:30.lowBoundary(6)", "2010-10"),
            ("@T12:34:00.lowBoundary()", "12:34:00.000"),
            ("@T12:34:00.highBoundary()", "12:34:00.999"),
        ];
        let root = json!({});
        for (src, expected) in cases {
            let out = Expr::parse(src)
                .and_then(|e| e.evaluate(&root))
                .unwrap_or_else(|e| panic!("{src}: {e}"));
            let texts: Vec<String> = out.iter().filter_map(Item::to_text).collect();
            assert_eq!(texts, vec![expected.to_string()], "{src}");
        }
    }

    #[test]
    fn unsupported_precisions_give_empty() {
        let root = json!({});
        for src in [
            "1.5.lowBoundary(-1)",
            "1.5.highBoundary(29)",
            "@2014.lowBoundary(7)",
            "@T10:30.highBoundary(8)",
            "'text'.lowBoundary()",
        ] {
            let out = Expr::parse(src).and_then(|e| e.evaluate(&root));
            assert!(out.is_ok_and(|o| o.is_empty()), "{src}");
        }
    }
}
