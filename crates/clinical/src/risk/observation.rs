//! A computed score as the FHIR R4 Observation the caller stores: status final, the
//! score's category and code, the patient, the date, the value as a UCUM quantity rounded
//! as displayed, the interpretation in words, `method` naming the equation, `derivedFrom`
//! the Observations used, and a `note` with every input, the equation and the citation —
//! so a reader of the stored Observation can redo the arithmetic.

use serde_json::{json, Map, Value};
use time::Date;

use super::{round_to, Score};

const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const UCUM: &str = "http://unitsofmeasure.org";

/// `score` as an Observation about `patient_ref` (`Patient/123`) effective on `on`.
pub fn to_observation(score: &Score, patient_ref: &str, on: Date) -> Value {
    let kind = score.kind;
    let code = kind.code();
    let decimals = kind.decimals();
    let value = if decimals == 0 {
        // Whole numbers are written as integers (`3`, not `3.0`).
        json!(score.value.round() as i64)
    } else {
        json!(round_to(score.value, decimals))
    };
    let inputs: Vec<String> = score
        .inputs
        .iter()
        .map(|i| match &i.source {
            Some(source) => format!("{}: {} ({source})", i.name, i.value),
            None => format!("{}: {}", i.name, i.value),
        })
        .collect();
    let note = format!(
        "{} = {}. Inputs: {}. Equation: {} Source: {}",
        kind.title(),
        score.display,
        inputs.join("; "),
        score.equation,
        score.citation
    );

    let mut obs = Map::new();
    obs.insert("resourceType".into(), json!("Observation"));
    obs.insert("status".into(), json!("final"));
    obs.insert(
        "category".into(),
        json!([{"coding": [{"system": OBSERVATION_CATEGORY, "code": kind.category()}]}]),
    );
    obs.insert(
        "code".into(),
        json!({
            "coding": [{"system": code.system, "code": code.code, "display": code.display}],
            "text": kind.title(),
        }),
    );
    obs.insert("subject".into(), json!({ "reference": patient_ref }));
    obs.insert("effectiveDateTime".into(), json!(on.to_string()));
    obs.insert(
        "valueQuantity".into(),
        json!({
            "value": value,
            "unit": kind.unit_words(),
            "system": UCUM,
            "code": score.unit,
        }),
    );
    if let Some(interpretation) = &score.interpretation {
        obs.insert("interpretation".into(), json!([{ "text": interpretation }]));
    }
    obs.insert("note".into(), json!([{ "text": note }]));
    obs.insert("method".into(), json!({ "text": kind.method() }));
    // FHIR forbids empty arrays: no Observation inputs, no derivedFrom.
    if !score.derived_from.is_empty() {
        let refs: Vec<Value> = score
            .derived_from
            .iter()
            .map(|r| json!({ "reference": r }))
            .collect();
        obs.insert("derivedFrom".into(), Value::Array(refs));
    }
    Value::Object(obs)
}
