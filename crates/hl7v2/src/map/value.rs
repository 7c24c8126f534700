//! OBX-5 values and OBX-7 reference ranges, following "HL7 Segment - FHIR R4_
//! OBX[Observation] - OBX.csv" and the data type tables "NM[Quantity]", "SN[Quantity]",
//! "SN[Range]", "SN[Ratio]", "CWE[CodeableConcept]" and "DTM[dateTime]".
//!
//! | OBX-2 | value[x] |
//! | --- | --- |
//! | NM | valueQuantity (OBX-6.1 as unit; UCUM system and code when OBX-6.3 is UCUM) |
//! | SN | valueQuantity (with comparator), valueRange (`1^-^5`), valueRatio (`1^:^2`, `1^/^2`), else valueString |
//! | CE, CWE, CNE | valueCodeableConcept |
//! | ST, TX, FT, ID, IS, RP, and others | valueString (repetitions joined by newlines) |
//! | DT, DTM, TS | valueDateTime |
//! | ED | no value (an attachment is not an Observation value in R4) |
//!
//! A non-numeric NM is a data type error (102).

use serde_json::{json, Value};

use super::Builder;
use crate::datatypes::{cwe_concept, nz, obj};
use crate::error::MapError;
use crate::parse::Segment;

/// v2-0078 abnormal flags that the "InterpretationCodes" concept map carries over
/// unchanged to v3-ObservationInterpretation.
pub(crate) const INTERPRETATION_CODES: &[&str] = &[
    "<", ">", "A", "AA", "B", "CAR", "D", "DET", "E", "EX", "EXP", "H", "HH", "HU", "I", "IE",
    "IND", "L", "LL", "LU", "MS", "N", "NCL", "ND", "NEG", "NR", "NS", "POS", "R", "RR", "S",
    "SDD", "SYN-R", "SYN-S", "U", "VS", "UNE",
];

/// An HL7 NM as a FHIR decimal (a JSON number kept exactly as written).
pub(crate) fn decimal(raw: &str) -> Option<Value> {
    let t = raw.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (t.contains('.') && frac.is_empty())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut text = String::new();
    if neg {
        text.push('-');
    }
    text.push_str(int);
    if !frac.is_empty() {
        text.push('.');
        text.push_str(frac);
    }
    serde_json::from_str::<Value>(&text).ok()
}

fn quantity(value: Value, unit: &str, ucum: bool, comparator: Option<&str>) -> Value {
    let unit = nz(unit);
    obj(vec![
        ("value", Some(value)),
        ("comparator", comparator.map(|c| json!(c))),
        ("unit", unit.map(|u| json!(u))),
        (
            "system",
            (ucum && unit.is_some()).then(|| json!("http://unitsofmeasure.org")),
        ),
        ("code", unit.filter(|_| ucum).map(|u| json!(u))),
    ])
    .unwrap_or_default()
}

/// OBX-5 as `(value[x] key, value)`; `None` when empty.
pub(crate) fn obx_value(
    b: &Builder<'_>,
    obx: &Segment,
) -> Result<Option<(&'static str, Value)>, MapError> {
    let Some(rep) = obx.reps(5).iter().find(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let unit = obx.comp(6, 1);
    let ucum = obx.comp(6, 3).eq_ignore_ascii_case("UCUM");
    let kind = obx.text(2).trim().to_ascii_uppercase();
    Ok(match kind.as_str() {
        "NM" => {
            let v = decimal(rep.comp(1))
                .ok_or_else(|| MapError::bad_type(&b.loc(obx, 5), "number (NM)"))?;
            Some(("valueQuantity", quantity(v, unit, ucum, None)))
        }
        "SN" => Some(structured_numeric(
            rep.comp(1),
            rep.comp(2),
            rep.comp(3),
            rep.comp(4),
            unit,
            ucum,
        )),
        "CE" | "CWE" | "CNE" => cwe_concept(rep).map(|c| ("valueCodeableConcept", c)),
        "DT" | "DTM" | "TS" => b
            .datetime_text(obx, 5, rep.comp(1))?
            .map(|d| ("valueDateTime", json!(d))),
        "ED" => None,
        _ => {
            let lines: Vec<String> = obx
                .reps(5)
                .iter()
                .map(|r| {
                    r.components()
                        .iter()
                        .map(|c| c.sub(1))
                        .filter(|c| !c.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            nz(&lines.join("\n")).map(|t| ("valueString", json!(t)))
        }
    })
}

/// SN (comparator, num1, separator, num2) → Quantity, Range, Ratio or string.
fn structured_numeric(
    comparator: &str,
    num1: &str,
    separator: &str,
    num2: &str,
    unit: &str,
    ucum: bool,
) -> (&'static str, Value) {
    let comparator = comparator.trim();
    let (n1, n2) = (decimal(num1), decimal(num2));
    match (separator.trim(), n1, n2) {
        ("", Some(v), None) if matches!(comparator, "" | "=") => {
            ("valueQuantity", quantity(v, unit, ucum, None))
        }
        ("", Some(v), None) if matches!(comparator, "<" | "<=" | ">" | ">=") => {
            ("valueQuantity", quantity(v, unit, ucum, Some(comparator)))
        }
        ("-", Some(low), Some(high)) if comparator.is_empty() => (
            "valueRange",
            json!({"low": quantity(low, unit, ucum, None), "high": quantity(high, unit, ucum, None)}),
        ),
        (":" | "/", Some(num), Some(den)) if comparator.is_empty() => (
            "valueRatio",
            json!({"numerator": quantity(num, unit, ucum, None), "denominator": {"value": den}}),
        ),
        _ => {
            let text: String = [comparator, num1, separator, num2].concat();
            ("valueString", json!(text.trim()))
        }
    }
}

/// OBX-7 → referenceRange: `3.5-5.0` and `3.5 to 5.0` give low/high, `<5` or `<=5`
/// high, `>10` or `>=10` low (in OBX-6 units); anything else is kept as text.
pub(crate) fn reference_range(raw: &str, unit: &str) -> Option<Value> {
    let t = nz(raw)?;
    let q = |v: Value| {
        obj(vec![
            ("value", Some(v)),
            ("unit", nz(unit).map(|u| json!(u))),
        ])
    };
    if let Some(rest) = t.strip_prefix("<=").or_else(|| t.strip_prefix('<')) {
        if let Some(v) = decimal(rest) {
            return obj(vec![("high", q(v))]);
        }
    }
    if let Some(rest) = t.strip_prefix(">=").or_else(|| t.strip_prefix('>')) {
        if let Some(v) = decimal(rest) {
            return obj(vec![("low", q(v))]);
        }
    }
    let split = t.split_once(" to ").or_else(|| {
        t.get(1..)
            .and_then(|tail| tail.find('-'))
            .map(|i| (&t[..=i], &t[i + 2..]))
    });
    if let Some((lo, hi)) = split {
        if let (Some(lo), Some(hi)) = (decimal(lo), decimal(hi)) {
            return obj(vec![("low", q(lo)), ("high", q(hi))]);
        }
    }
    Some(json!({"text": t}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_ranges() {
        let cases = [
            (
                "3.5-5.0",
                json!({"low": {"value": 3.5, "unit": "g"}, "high": {"value": 5.0, "unit": "g"}}),
            ),
            (
                "4.3 to 6.2",
                json!({"low": {"value": 4.3, "unit": "g"}, "high": {"value": 6.2, "unit": "g"}}),
            ),
            ("<5", json!({"high": {"value": 5, "unit": "g"}})),
            (">=10", json!({"low": {"value": 10, "unit": "g"}})),
            (
                "-5--1",
                json!({"low": {"value": -5, "unit": "g"}, "high": {"value": -1, "unit": "g"}}),
            ),
            ("70_105", json!({"text": "70_105"})),
            ("negative", json!({"text": "negative"})),
        ];
        for (raw, want) in cases {
            let got = reference_range(raw, "g").expect("range");
            assert_eq!(got.to_string(), want.to_string(), "{raw}");
        }
        assert_eq!(reference_range("", "g"), None);
    }

    #[test]
    fn decimals_keep_their_digits() {
        let cases = [
            ("4.06", Some("4.06")),
            ("+007", Some("7")),
            (".5", Some("0.5")),
            ("5.0", Some("5.0")),
            ("1e5", None),
            ("x", None),
            ("", None),
            ("5.", None),
        ];
        for (raw, want) in cases {
            assert_eq!(
                decimal(raw).map(|v| v.to_string()).as_deref(),
                want,
                "{raw}"
            );
        }
    }

    #[test]
    fn structured_numerics() {
        assert_eq!(
            structured_numeric("", "182", "", "", "mg/dl", false).0,
            "valueQuantity"
        );
        let (k, v) = structured_numeric("<", "5", "", "", "", false);
        assert_eq!((k, v["comparator"].as_str()), ("valueQuantity", Some("<")));
        assert_eq!(
            structured_numeric("", "1", "-", "5", "", false).0,
            "valueRange"
        );
        assert_eq!(
            structured_numeric("", "1", ":", "128", "", false).0,
            "valueRatio"
        );
        assert_eq!(
            structured_numeric("", "2", "+", "", "", false).0,
            "valueString"
        );
    }
}
