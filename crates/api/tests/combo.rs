//! Observation's `combo-*` search parameters over HTTP, on both backends. Each is the
//! union of two others (`combo-code` is `code | component.code`), so the index keeps no
//! rows of its own: a search by it reads the parts' rows. These tests load a Synthea
//! patient (blood-pressure panels carry their readings as components; other vital signs
//! and labs as their own value) and check each search against what the test works out
//! from the bundle's JSON itself; then that no index row was written under a `combo-*`
//! key.

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use serde_json::Value;

const LOINC: &str = "http://loinc.org";
/// Systolic blood pressure: a component of Synthea's blood-pressure panels.
const SYSTOLIC: &str = "8480-6";
/// Body weight: an Observation's own code and value.
const WEIGHT: &str = "29463-7";

/// The hospital and practitioner files, then the first patient's bundle: every resource
/// of them, and what the server answered to each transaction.
async fn load(s: &TestServer) -> Vec<Value> {
    let files: Vec<_> = common::synthea_files("synthea-v3")
        .into_iter()
        .take(3)
        .collect();
    let mut resources = Vec::new();
    for p in files {
        let bundle: Value =
            serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
        let (status, body, _) = s.post("", &bundle).await;
        assert_eq!(status, 200, "{}: {body}", p.display());
        // The stored ids: the transaction's answer, in entry order.
        for (entry, answer) in bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .zip(body["entry"].as_array().expect("answers"))
        {
            let mut r = entry["resource"].clone();
            let location = answer["response"]["location"].as_str().unwrap_or_default();
            let id = location.split('/').nth(1).unwrap_or_default();
            r["id"] = Value::String(id.to_owned());
            resources.push(r);
        }
    }
    resources
}

fn has_code(concept: &Value, code: &str) -> bool {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["system"] == LOINC && c["code"] == code)
}

/// The (code, value) pairs an Observation carries: its own, and each component's.
fn pairs(o: &Value) -> Vec<(&Value, Option<f64>)> {
    let mut out = vec![(&o["code"], o["valueQuantity"]["value"].as_f64())];
    for c in o["component"].as_array().into_iter().flatten() {
        out.push((&c["code"], c["valueQuantity"]["value"].as_f64()));
    }
    out
}

/// `Observation/id` of the loaded Observations passing `keep`.
fn expected(resources: &[Value], keep: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    resources
        .iter()
        .filter(|r| r["resourceType"] == "Observation" && keep(r))
        .map(|r| format!("Observation/{}", r["id"].as_str().unwrap_or_default()))
        .collect()
}

async fn found(s: &TestServer, query: &str) -> BTreeSet<String> {
    common::all_pages(s, &format!("Observation?{query}&_count=500"))
        .await
        .iter()
        .map(common::key_of)
        .collect()
}

async fn combo_searches_match_the_observation_or_a_component(s: &TestServer) {
    let resources = load(s).await;
    let threshold = 130.5;

    let systolic = expected(&resources, |o| {
        pairs(o).iter().any(|(code, _)| has_code(code, SYSTOLIC))
    });
    let own_systolic = expected(&resources, |o| has_code(&o["code"], SYSTOLIC));
    assert!(
        systolic.len() >= 5 && own_systolic.is_empty(),
        "Synthea records systolic pressure only inside panels: {} / {}",
        systolic.len(),
        own_systolic.len()
    );
    assert_eq!(
        found(s, &format!("combo-code={LOINC}|{SYSTOLIC}")).await,
        systolic
    );
    assert_eq!(
        found(s, &format!("code={LOINC}|{SYSTOLIC}")).await,
        own_systolic
    );

    let weight = expected(&resources, |o| has_code(&o["code"], WEIGHT));
    assert!(weight.len() >= 5, "weights: {}", weight.len());
    assert_eq!(found(s, &format!("combo-code={WEIGHT}")).await, weight);
    assert_eq!(
        found(s, &format!("combo-code={SYSTOLIC},{WEIGHT}")).await,
        &systolic | &weight
    );

    // A value above the threshold, the Observation's own or a component's (no value
    // sits near the threshold, where a search's precision would matter).
    let values: Vec<f64> = resources
        .iter()
        .filter(|r| r["resourceType"] == "Observation")
        .flat_map(|o| pairs(o).into_iter().filter_map(|(_, v)| v))
        .collect();
    assert!(values.iter().all(|v| (v - threshold).abs() > 0.1));
    let high = expected(&resources, |o| {
        pairs(o)
            .iter()
            .any(|(_, v)| v.is_some_and(|v| v > threshold))
    });
    let high_systolic = expected(&resources, |o| {
        pairs(o)
            .iter()
            .any(|(code, v)| has_code(code, SYSTOLIC) && v.is_some_and(|v| v > threshold))
    });
    assert!(!high_systolic.is_empty() && high_systolic.len() < systolic.len());
    assert_eq!(
        found(s, &format!("combo-value-quantity=gt{threshold}")).await,
        high
    );
    assert_eq!(
        found(
            s,
            &format!("combo-code-value-quantity={LOINC}|{SYSTOLIC}$gt{threshold}")
        )
        .await,
        high_systolic
    );

    // :missing and :not read the parts as one parameter: an Observation lacks
    // combo-value-quantity when neither it nor a component has a Quantity.
    let no_quantity = expected(&resources, |o| {
        pairs(o).iter().all(|(_, v)| v.is_none())
            && o["valueSampledData"].is_null()
            && o["component"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|c| c["valueSampledData"].is_null())
    });
    assert!(!no_quantity.is_empty());
    assert_eq!(
        found(s, "combo-value-quantity:missing=true").await,
        no_quantity
    );
    let all = expected(&resources, |_| true);
    assert_eq!(
        found(s, &format!("combo-code:not={LOINC}|{SYSTOLIC}")).await,
        &all - &systolic
    );

    // Nothing is indexed under a union's own key.
    let unions = [
        "combo-code",
        "combo-code-value-concept",
        "combo-code-value-quantity",
        "combo-data-absent-reason",
        "combo-value-concept",
        "combo-value-quantity",
    ]
    .map(|c| ("Observation", c));
    let tables = ["idx_token", "idx_quantity", "idx_composite"];
    assert_eq!(common::index_rows(s, &tables, &unions).await, 0);
}

on_both_backends!(combo_searches_match_the_observation_or_a_component);
