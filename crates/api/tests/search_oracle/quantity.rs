//! Quantity parameters (Observation.valueQuantity) with prefixes, implicit precision and the
//! unit forms `n`, `n|system|code`, `n||code`; and the composites `code-value-quantity`
//! (Observation.code with Observation.value) and `component-code-value-quantity` (a code
//! and a value of the same component). The data has no `number` parameter values
//! (RiskAssessment etc.): numbers are tested on the official examples.

use std::collections::BTreeSet;

use serde_json::Value;

use super::data::{at, Data};
use super::run::{Case, Expect};
use super::value::{decimals, num_text, number_ap, number_match};

const UCUM: &str = "http://unitsofmeasure.org";

/// A Quantity against `[number]`, `[number]|[system]|[code]` or `[number]||[code]` (the
/// prefix already split off); a quantity without a value matches nothing.
fn quantity_match(prefix: &str, q: &str, v: &Value) -> bool {
    let Some(t) = v["value"].as_f64() else {
        return false;
    };
    let mut parts = q.splitn(3, '|');
    let number = parts.next().unwrap_or("");
    let unit_ok = match (parts.next(), parts.next()) {
        (None, _) => true,
        (Some(""), Some(code)) => v["code"] == code || v["unit"] == code,
        (Some(system), Some(code)) => v["system"] == system && v["code"] == code,
        (Some(_), None) => false,
    };
    unit_ok && number_match(prefix, number, t)
}

fn value_quantity(d: &Data, prefix: &str, q: &str) -> BTreeSet<String> {
    d.select("Observation", |o| {
        at(o, "valueQuantity")
            .iter()
            .any(|v| quantity_match(prefix, q, v))
    })
}

fn has_code(cc: &Value, system: &str, code: &str) -> bool {
    at(cc, "coding")
        .iter()
        .any(|c| c["system"] == system && c["code"] == code)
}

fn quantities_of(d: &Data, loinc: &str) -> Vec<String> {
    d.of("Observation")
        .filter(|(_, o)| has_code(&o["code"], "http://loinc.org", loinc))
        .filter_map(|(_, o)| num_text(&o["valueQuantity"]["value"]))
        .collect()
}

pub fn cases(d: &Data) -> Vec<Case> {
    let mut out = Vec::new();
    let all_values: Vec<f64> = d
        .of("Observation")
        .filter_map(|(_, o)| o["valueQuantity"]["value"].as_f64())
        .collect();
    let integers: Vec<f64> = d
        .of("Observation")
        .filter_map(|(_, o)| num_text(&o["valueQuantity"]["value"]))
        .filter(|t| decimals(t) == 0)
        .filter_map(|t| t.parse().ok())
        .collect();

    // A body weight written with one decimal, with no value written less precisely near
    // it (where "equal within the precision" and "range contained" would disagree).
    let mut weights: Vec<String> = quantities_of(d, "29463-7")
        .into_iter()
        .filter(|t| decimals(t) == 1)
        .filter(|t| {
            let v: f64 = t.parse().unwrap_or(0.0);
            !integers.iter().any(|i| (i - v).abs() <= 1.0)
        })
        .collect();
    weights.sort_by(|a, b| {
        let (a, b): (f64, f64) = (a.parse().unwrap_or(0.0), b.parse().unwrap_or(0.0));
        a.total_cmp(&b)
    });
    let w = weights
        .get(weights.len() / 2)
        .expect("a weight with one decimal")
        .clone();

    out.push(Case::set(
        "quantity_implicit_precision_any_unit",
        format!("Observation?value-quantity={w}"),
        value_quantity(d, "eq", &w),
    ));
    out.push(Case::set(
        "quantity_system_and_code",
        format!("Observation?value-quantity={w}|{UCUM}|kg"),
        value_quantity(d, "eq", &format!("{w}|{UCUM}|kg")),
    ));
    out.push(Case::set(
        "quantity_code_without_system",
        format!("Observation?value-quantity={w}||kg"),
        value_quantity(d, "eq", &format!("{w}||kg")),
    ));
    for p in ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"] {
        let q = format!("{w}|{UCUM}|kg");
        out.push(Case::set(
            format!("quantity_prefix_{p}"),
            format!("Observation?value-quantity={p}{q}&_count=100"),
            value_quantity(d, p, &q),
        ));
    }
    let (mut must, mut may) = (BTreeSet::new(), BTreeSet::new());
    for (k, o) in d.of("Observation") {
        let v = &o["valueQuantity"];
        if v["code"] != "kg" || v["system"] != UCUM {
            continue;
        }
        if let Some(t) = v["value"].as_f64() {
            match number_ap(&w, t) {
                (true, _) => must.insert(k.clone()),
                (false, true) => may.insert(k.clone()),
                _ => false,
            };
        }
    }
    out.push(Case::new(
        "quantity_prefix_ap",
        format!("Observation?value-quantity=ap{w}|{UCUM}|kg&_count=100"),
        Expect::Fuzzy { must, may },
    ));

    // mg/dL around the median, as an integer.
    let mut mg: Vec<f64> = d
        .of("Observation")
        .filter(|(_, o)| o["valueQuantity"]["code"] == "mg/dL")
        .filter_map(|(_, o)| o["valueQuantity"]["value"].as_f64())
        .collect();
    mg.sort_by(f64::total_cmp);
    let m = format!("{}", mg[mg.len() / 2].floor() as i64);
    out.push(Case::set(
        "quantity_gt_with_system_and_code",
        format!("Observation?value-quantity=gt{m}|{UCUM}|mg/dL&_count=100"),
        value_quantity(d, "gt", &format!("{m}|{UCUM}|mg/dL")),
    ));
    out.push(Case::set(
        "quantity_lt_with_code_only",
        format!("Observation?value-quantity=lt{m}||mg/dL&_count=100"),
        value_quantity(d, "lt", &format!("{m}||mg/dL")),
    ));
    let mut sorted = all_values.clone();
    sorted.sort_by(f64::total_cmp);
    let big = format!("{}", sorted[sorted.len() * 97 / 100].ceil() as i64);
    out.push(Case::set(
        "quantity_gt_any_unit",
        format!("Observation?value-quantity=gt{big}&_count=100"),
        value_quantity(d, "gt", &big),
    ));

    // Composites.
    let composite = |code: &str, prefix: &str, q: &str| {
        d.select("Observation", |o| {
            has_code(&o["code"], "http://loinc.org", code)
                && at(o, "valueQuantity")
                    .iter()
                    .any(|v| quantity_match(prefix, q, v))
        })
    };
    let wi = format!("{}", w.parse::<f64>().unwrap_or(0.0).floor() as i64);
    out.push(Case::set(
        "composite_code_value_quantity",
        format!("Observation?code-value-quantity=http://loinc.org|29463-7$gt{wi}&_count=100"),
        composite("29463-7", "gt", &wi),
    ));
    out.push(Case::set(
        "composite_code_value_quantity_with_unit",
        format!(
            "Observation?code-value-quantity=http://loinc.org|29463-7$le{wi}|{UCUM}|kg&_count=100"
        ),
        composite("29463-7", "le", &format!("{wi}|{UCUM}|kg")),
    ));
    // The spec's example: systolic pressure is a component in this data, never the code.
    out.push(
        Case::set(
            "composite_spec_example_code_value_quantity",
            "Observation?code-value-quantity=http://loinc.org|8480-6$gt140",
            composite("8480-6", "gt", "140"),
        )
        .trivial(),
    );
    let component = |code: &str, prefix: &str, q: &str| {
        d.select("Observation", |o| {
            at(o, "component").iter().any(|c| {
                has_code(&c["code"], "http://loinc.org", code)
                    && at(c, "valueQuantity")
                        .iter()
                        .any(|v| quantity_match(prefix, q, v))
            })
        })
    };
    out.push(Case::set(
        "composite_component_code_value_quantity",
        "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt140&_count=100",
        component("8480-6", "gt", "140"),
    ));
    // Diastolic above a value most systolic ones exceed: the code and the value must come
    // from the same component.
    let mut dia: Vec<f64> = d
        .of("Observation")
        .flat_map(|(_, o)| at(o, "component"))
        .filter(|c| has_code(&c["code"], "http://loinc.org", "8462-4"))
        .filter_map(|c| c["valueQuantity"]["value"].as_f64())
        .collect();
    dia.sort_by(f64::total_cmp);
    let dx = format!("{}", dia[dia.len() * 4 / 5].floor() as i64);
    out.push(Case::set(
        "composite_component_pairs_code_and_value",
        format!(
            "Observation?component-code-value-quantity=http://loinc.org|8462-4$gt{dx}&_count=100"
        ),
        component("8462-4", "gt", &dx),
    ));
    out
}
