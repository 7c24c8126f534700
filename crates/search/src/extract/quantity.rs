//! Number and quantity parameters: the value with the implicit range of its precision
//! (`100` → [99.5, 100.5)), and for quantities the unit and a UCUM-canonical form for the
//! common units of mass, length, time and volume.

use serde_json::{Map, Value};

use super::Input;
use crate::index::IndexValue;

const UCUM: &str = "http://unitsofmeasure.org";

/// `(value, low, high)` of a decimal written as `text`.
pub fn number_range(text: &str) -> Option<(f64, f64, f64)> {
    let value: f64 = text.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let exp: i32 = text
        .split_once(['e', 'E'])
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let scale = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32) - exp;
    let half = 0.5 * 10f64.powi(-scale);
    Some((value, value - half, value + half))
}

/// The UCUM unit `code` in its base unit: (factor, base code). A small table, not UCUM.
pub fn canonical_unit(code: &str) -> Option<(f64, &'static str)> {
    Some(match code {
        "g" => (1.0, "g"),
        "kg" => (1e3, "g"),
        "mg" => (1e-3, "g"),
        "ug" => (1e-6, "g"),
        "ng" => (1e-9, "g"),
        "[lb_av]" => (453.592_37, "g"),
        "[oz_av]" => (28.349_523_125, "g"),
        "m" => (1.0, "m"),
        "km" => (1e3, "m"),
        "cm" => (1e-2, "m"),
        "mm" => (1e-3, "m"),
        "um" => (1e-6, "m"),
        "[in_i]" => (0.0254, "m"),
        "[ft_i]" => (0.3048, "m"),
        "s" => (1.0, "s"),
        "ms" => (1e-3, "s"),
        "min" => (60.0, "s"),
        "h" => (3600.0, "s"),
        "d" => (86_400.0, "s"),
        "wk" => (604_800.0, "s"),
        "L" | "l" => (1.0, "L"),
        "dL" => (1e-1, "L"),
        "mL" | "ml" => (1e-3, "L"),
        "uL" => (1e-6, "L"),
        _ => return None,
    })
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

pub(super) fn number(v: &Input<'_>, out: &mut Vec<IndexValue>) {
    if let Some((value, low, high)) = text_of(v.json).as_deref().and_then(number_range) {
        out.push(IndexValue::Number { value, low, high });
    }
}

fn str_of(o: &Map<String, Value>, k: &str) -> Option<String> {
    o.get(k).and_then(Value::as_str).map(str::to_string)
}

pub(super) fn quantity(v: &Input<'_>, out: &mut Vec<IndexValue>) {
    let Value::Object(o) = v.json else {
        // A plain number searched as a quantity has no unit.
        if let Some((value, low, high)) = text_of(v.json).as_deref().and_then(number_range) {
            out.push(IndexValue::Quantity {
                value,
                low,
                high,
                system: None,
                code: None,
                unit: None,
                canonical_value: None,
                canonical_code: None,
            });
        }
        return;
    };
    let Some((value, low, high)) = o
        .get("value")
        .and_then(text_of)
        .as_deref()
        .and_then(number_range)
    else {
        return;
    };
    let (system, code) = if v.ty == Some("Money") {
        (
            Some("urn:iso:std:iso:4217".to_string()),
            str_of(o, "currency"),
        )
    } else {
        (str_of(o, "system"), str_of(o, "code"))
    };
    let canonical = match (system.as_deref(), code.as_deref()) {
        (Some(UCUM), Some(c)) => canonical_unit(c),
        _ => None,
    };
    out.push(IndexValue::Quantity {
        value,
        low,
        high,
        system,
        code,
        unit: str_of(o, "unit"),
        canonical_value: canonical.map(|(f, _)| value * f),
        canonical_code: canonical.map(|(_, c)| c.to_string()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_gives_the_implicit_range() {
        for (text, low, high) in [
            ("100", 99.5, 100.5),
            ("100.0", 99.95, 100.05),
            ("0.25", 0.245, 0.255),
            // Exponent form: precision is the significant digits of the mantissa.
            ("1e2", 50.0, 150.0),
        ] {
            let (_, l, h) = number_range(text).expect("number");
            assert!(
                (l - low).abs() < 1e-9 && (h - high).abs() < 1e-9,
                "{text}: {l} {h}"
            );
        }
    }

    #[test]
    fn common_units_have_canonical_forms() {
        for (code, factor, base) in [
            ("mg", 1e-3, "g"),
            ("kg", 1e3, "g"),
            ("[lb_av]", 453.59237, "g"),
            ("cm", 0.01, "m"),
            ("[in_i]", 0.0254, "m"),
            ("min", 60.0, "s"),
            ("mL", 0.001, "L"),
        ] {
            let (f, b) = canonical_unit(code).expect(code);
            assert!((f - factor).abs() < 1e-12 && b == base, "{code}");
        }
        assert!(canonical_unit("mm[Hg]").is_none());
    }
}
