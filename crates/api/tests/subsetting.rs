//! `_summary=true` and `_elements` below the top level, on both backends. Expected
//! values come from the R4 definitions' `isSummary` flags as the spec publishes them
//! (Observation: `component` Σ, `component.code` Σ, `component.value[x]` Σ,
//! `component.interpretation` and `component.referenceRange` not; `referenceRange` not;
//! `Patient.contact` not; every HumanName element Σ) and from the paths asked for.

mod common;

use common::TestServer;
use serde_json::{json, Value};

fn blood_pressure() -> Value {
    let component = |code: &str, value: f64| {
        json!({
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
            "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N"}]}],
            "referenceRange": [{"text": "normal"}]
        })
    };
    json!({
        "resourceType": "Observation", "id": "bp-sub", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "effectiveDateTime": "2024-03-01T09:30:00Z",
        "referenceRange": [{"text": "adult"}],
        "note": [{"text": "seated"}],
        "component": [component("8480-6", 128.0), component("8462-4", 82.0)]
    })
}

/// An object's member names, sorted.
fn sorted_keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

async fn summary_filters_nested_elements(s: &TestServer) {
    let (st, _, _) = s.put("Observation/bp-sub", &blood_pressure()).await;
    assert!(st == 200 || st == 201);
    let (st, o, _) = s.get("Observation/bp-sub?_summary=true").await;
    assert_eq!(st, 200, "{o}");
    assert!(
        o.get("referenceRange").is_none() && o.get("note").is_none(),
        "{o}"
    );
    assert_eq!(o["effectiveDateTime"], "2024-03-01T09:30:00Z");
    let comps = o["component"].as_array().expect("components kept (Σ)");
    assert_eq!(comps.len(), 2);
    for c in comps {
        assert_eq!(sorted_keys(c), ["code", "valueQuantity"], "{c}");
    }
    assert_eq!(o["component"][0]["valueQuantity"]["value"], 128.0);
}

async fn elements_keep_the_paths_asked_for(s: &TestServer) {
    let (st, _, _) = s.put("Observation/bp-sub", &blood_pressure()).await;
    assert!(st == 200 || st == 201);
    let (st, o, _) = s
        .get("Observation/bp-sub?_elements=status,Observation.component.valueQuantity.value")
        .await;
    assert_eq!(st, 200, "{o}");
    assert_eq!(
        sorted_keys(&o),
        ["component", "id", "meta", "resourceType", "status"]
    );
    assert_eq!(
        o["component"],
        json!([{"valueQuantity": {"value": 128.0}}, {"valueQuantity": {"value": 82.0}}])
    );
    assert!(o["meta"]["tag"]
        .as_array()
        .expect("tags")
        .iter()
        .any(|t| t["code"] == "SUBSETTED"));
    // A whole element wins over a path into it.
    let (_, o, _) = s
        .get("Observation/bp-sub?_elements=component.code,component")
        .await;
    assert_eq!(o["component"], blood_pressure()["component"]);
}

on_both_backends!(
    summary_filters_nested_elements,
    elements_keep_the_paths_asked_for
);
