//! The definitions' FHIRPath invariants against real material: the 722 official R4
//! examples and every Synthea record hold them (but for the examples listed, each
//! checked against the spec's words), none is left unevaluated, and official examples
//! broken the way a rule's own words forbid are refused for that rule, at that place.

use std::collections::BTreeMap;

use oxehr_fhirpath::invariants::{check, evaluation_errors};
use oxehr_testdata::{json_files, read_json as load};
use serde_json::{json, Value};

fn example(name: &str) -> Value {
    load(&oxehr_testdata::path("fhir-examples").join(name))
}

fn broken(v: &Value) -> Vec<String> {
    check(v)
        .into_iter()
        .map(|i| {
            let key = i
                .diagnostics
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            format!("{} {key}", i.expression.join(","))
        })
        .collect()
}

/// Official examples that break an invariant, with the spec's words for why.
const EXAMPLE_EXCEPTIONS: &[(&str, &str)] = &[];

#[test]
fn official_examples_hold_the_invariants_except_listed_errata() {
    oxehr_testdata::require!();
    // `_package.json` is the package manifest, not an example.
    let files: Vec<_> = json_files(&oxehr_testdata::path("fhir-examples"))
        .into_iter()
        .filter(|p| !p.ends_with("_package.json"))
        .collect();
    assert_eq!(files.len(), 722, "the official R4 examples");
    let mut failing = BTreeMap::new();
    let mut unevaluated = Vec::new();
    for p in &files {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let v = load(p);
        let b = broken(&v);
        if !b.is_empty() {
            failing.insert(name.to_string(), b);
        }
        for e in evaluation_errors(&v) {
            unevaluated.push(format!("{name}: {e}"));
        }
    }
    let unexpected: Vec<String> = failing
        .iter()
        .filter(|(n, _)| !EXAMPLE_EXCEPTIONS.iter().any(|(x, _)| x == n))
        .map(|(n, b)| format!("{n}: {}", b.join("; ")))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} examples break invariants:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    let now_valid: Vec<&str> = EXAMPLE_EXCEPTIONS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !failing.contains_key(*n))
        .collect();
    assert!(now_valid.is_empty(), "listed, but hold: {now_valid:?}");
    assert!(
        unevaluated.is_empty(),
        "{} invariants not evaluated:\n{}",
        unevaluated.len(),
        unevaluated.join("\n")
    );
}

#[test]
fn synthea_records_hold_the_invariants() {
    oxehr_testdata::require!();
    let mut failures = Vec::new();
    let mut count = 0;
    for sub in ["smart-on-fhir-r4", "synthea-v3"] {
        for p in json_files(&oxehr_testdata::path("synthea").join(sub)) {
            let bundle = load(&p);
            count += bundle
                .get("entry")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            // The bundle holds every entry: one walk checks them all.
            for b in broken(&bundle) {
                failures.push(format!("{}: {b}", p.display()));
            }
            for e in evaluation_errors(&bundle) {
                failures.push(format!("{}: not evaluated: {e}", p.display()));
            }
        }
    }
    assert!(count > 12_000, "resources checked: {count}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Each case: an official example that holds the rule, broken as the rule's own words
/// (the `human` of its definition, quoted) forbid; the rule and place expected.
#[test]
fn examples_broken_as_a_rule_forbids_are_refused_for_that_rule() {
    oxehr_testdata::require!();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            // obs-6: "dataAbsentReason SHALL only be present if Observation.value[x] is
            // not present".
            "Observation-example.json",
            json!({"dataAbsentReason": {"text": "not asked"}}),
            "Observation obs-6",
        ),
        (
            // qty-3: "If a code for the unit is present, the system SHALL also be
            // present".
            "Observation-example.json",
            json!({"valueQuantity": {"value": 185, "unit": "lbs", "code": "[lb_av]"}}),
            "Observation.value.ofType(Quantity) qty-3",
        ),
        (
            // obs-3: "Must have at least a low or a high or text".
            "Observation-example.json",
            json!({"referenceRange": [{"type": {"text": "normal"}}]}),
            "Observation.referenceRange[0] obs-3",
        ),
        (
            // con-4: "If condition is abated, then clinicalStatus must be either
            // inactive, resolved, or remission" (the example is active).
            "Condition-example.json",
            json!({"abatementDateTime": "2013-04-01"}),
            "Condition con-4",
        ),
        (
            // ait-1: "AllergyIntolerance.clinicalStatus SHALL be present if
            // verificationStatus is not entered-in-error".
            "AllergyIntolerance-example.json",
            json!({"clinicalStatus": null}),
            "AllergyIntolerance ait-1",
        ),
        (
            // pat-1: "SHALL at least contain a contact's details or a reference to an
            // organization".
            "Patient-example.json",
            json!({"contact": [{"relationship": [{"text": "next of kin"}]}]}),
            "Patient.contact[0] pat-1",
        ),
        (
            // per-1: "If present, start SHALL have a lower value than end", on a Period
            // inside a backbone element.
            "Patient-example.json",
            json!({"contact": [{"name": {"family": "du Marché"},
                "period": {"start": "2012", "end": "2011"}}]}),
            "Patient.contact[0].period per-1",
        ),
    ];
    for (file, change, expected) in cases {
        let mut v = example(file);
        assert!(broken(&v).is_empty(), "{file} holds its rules as published");
        let (Value::Object(obj), Value::Object(change)) = (&mut v, change) else {
            unreachable!("objects");
        };
        for (k, x) in change {
            if x.is_null() {
                obj.remove(&k);
            } else {
                obj.insert(k, x);
            }
        }
        assert_eq!(broken(&v), [expected], "{file}");
    }
}

#[test]
fn a_contained_resource_is_checked_as_a_resource() {
    oxehr_testdata::require!();
    let mut v = example("Observation-example.json");
    v["contained"] = json!([{"resourceType": "Observation", "id": "c1", "status": "final",
        "code": {"text": "x"}, "valueString": "a", "dataAbsentReason": {"text": "b"}}]);
    v["hasMember"] = json!([{"reference": "#c1"}]);
    assert_eq!(broken(&v), ["Observation.contained[0] obs-6"]);
}
