//! The Observation a caller stores.

use oxehr_clinical::risk::{self, ascvd_10_year, cha2ds2_vasc, to_observation, Outcome, ScoreKind};
use oxehr_clinical::Record;
use serde_json::json;

use crate::ascvd::WHITE;
use crate::cha2ds2_vasc::af;
use crate::fhir::*;

#[test]
fn a_score_becomes_an_observation_derived_from_its_inputs() {
    let p = patient("male", 55, Some(WHITE));
    let mut resources = table_a_measurements();
    resources.push(never_smoker());
    resources.push(sct_condition("dm", "44054006"));
    let score = computed(ascvd_10_year(&Record::new(&p, &resources), ON));
    let obs = to_observation(&score, "Patient/p1", ON);

    assert_eq!(obs["resourceType"], "Observation");
    assert_eq!(obs["status"], "final");
    assert_eq!(obs["category"][0]["coding"][0]["code"], "survey");
    assert_eq!(
        obs["category"][0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/observation-category"
    );
    assert_eq!(obs["code"]["coding"][0]["system"], "http://loinc.org");
    assert_eq!(obs["code"]["coding"][0]["code"], "79423-0");
    assert_eq!(obs["subject"]["reference"], "Patient/p1");
    assert_eq!(obs["effectiveDateTime"], "2024-06-01");
    assert_eq!(obs["valueQuantity"]["system"], "http://unitsofmeasure.org");
    assert_eq!(obs["valueQuantity"]["code"], "%");
    // White man of Table A with diabetes: sum 60.6995 + 0.658 = 61.3575;
    // 1 − 0.9144^exp(0.1775) = 1 − 0.9144^1.194283 = 10.136%, stored as 10.1.
    assert_eq!(obs["valueQuantity"]["value"].as_f64(), Some(10.1));
    assert_eq!(
        obs["interpretation"][0]["text"],
        "Intermediate risk (7.5% to 19.9%)"
    );
    assert!(obs["method"]["text"]
        .as_str()
        .unwrap()
        .contains("pooled cohort"));
    let note = obs["note"][0]["text"].as_str().unwrap();
    assert!(note.contains(score.equation) && note.contains(score.citation));
    // The diabetes Condition is named in the note (derivedFrom cannot hold Conditions).
    assert!(note.contains("Condition/dm"), "{note}");

    let derived: Vec<&str> = obs["derivedFrom"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        derived,
        [
            "Observation/tc",
            "Observation/hdl",
            "Observation/bp",
            "Observation/smoke"
        ]
    );
    let from_inputs: Vec<&str> = score
        .inputs
        .iter()
        .filter_map(|i| i.source.as_deref())
        .filter(|s| s.starts_with("Observation/"))
        .collect();
    assert_eq!(derived, from_inputs);
}

#[test]
fn a_score_from_conditions_only_has_no_derived_from_and_an_integer_value() {
    let p = patient("female", 70, None);
    let resources = vec![af(), sct_condition("htn", "59621000")];
    let score = computed(cha2ds2_vasc(&Record::new(&p, &resources), ON));
    let obs = to_observation(&score, "Patient/p1", ON);
    assert!(obs.get("derivedFrom").is_none());
    assert_eq!(obs["valueQuantity"]["value"], json!(3));
    assert_eq!(obs["valueQuantity"]["code"], "{score}");
    assert_eq!(
        obs["code"]["coding"][0]["system"],
        "https://oxehr.org/fhir/CodeSystem/risk-score"
    );
}

#[test]
fn all_gives_every_score_in_order() {
    let p = patient("female", 70, None);
    let resources = vec![af()];
    let kinds: Vec<ScoreKind> = risk::all(&Record::new(&p, &resources), ON)
        .iter()
        .map(Outcome::kind)
        .collect();
    assert_eq!(
        kinds,
        [
            ScoreKind::Ascvd10Year,
            ScoreKind::Cha2ds2Vasc,
            ScoreKind::EgfrCkdEpi2021,
            ScoreKind::Bmi
        ]
    );
    let mut dead = patient("female", 70, None);
    dead["deceasedDateTime"] = json!("2024-01-01");
    for outcome in risk::all(&Record::new(&dead, &resources), ON) {
        assert!(
            matches!(outcome, Outcome::NotApplicable { .. }),
            "{outcome:?}"
        );
    }
}
