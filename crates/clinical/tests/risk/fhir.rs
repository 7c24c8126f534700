//! FHIR resources for the cases, and small assertions.

use oxehr_clinical::risk::{Outcome, Score};
use serde_json::{json, Value};
use time::macros::date;
use time::Date;

/// The date every case is scored on.
pub const ON: Date = date!(2024 - 06 - 01);

const OMB: &str = "urn:oid:2.16.840.1.113883.6.238";

/// A Patient aged `age` on [`ON`] (born 15 January, before ON's 1 June).
pub fn patient(gender: &str, age: i32, race: Option<(&str, &str)>) -> Value {
    let mut p = json!({
        "resourceType": "Patient", "id": "p1", "gender": gender,
        "birthDate": format!("{}-01-15", 2024 - age),
    });
    if let Some((code, display)) = race {
        p["extension"] = json!([{
            "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
            "extension": [
                {"url": "ombCategory", "valueCoding": {"system": OMB, "code": code, "display": display}},
                {"url": "text", "valueString": display}
            ]
        }]);
    }
    p
}

pub fn loinc(code: &str) -> Value {
    json!({"coding": [{"system": "http://loinc.org", "code": code}]})
}

pub fn snomed(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]})
}

pub fn quantity(id: &str, code: &str, value: f64, unit: &str, when: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": loinc(code),
           "effectiveDateTime": when,
           "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
}

/// A blood pressure panel carrying systolic as a component, as Synthea writes it.
pub fn blood_pressure(id: &str, systolic: f64, when: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": loinc("85354-9"),
           "effectiveDateTime": when,
           "component": [
             {"code": loinc("8480-6"), "valueQuantity": {"value": systolic, "unit": "mm[Hg]", "code": "mm[Hg]"}},
             {"code": loinc("8462-4"), "valueQuantity": {"value": 80, "unit": "mm[Hg]", "code": "mm[Hg]"}}]})
}

pub fn smoking(id: &str, code: &str, display: &str, when: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": loinc("72166-2"),
           "effectiveDateTime": when, "valueCodeableConcept": snomed(code, display)})
}

pub fn never_smoker() -> Value {
    smoking("smoke", "266919005", "Never smoker", "2024-05-01")
}

pub fn current_smoker() -> Value {
    smoking(
        "smoke",
        "449868002",
        "Current every day smoker",
        "2024-05-01",
    )
}

pub fn condition(id: &str, system: &str, code: &str, onset: &str) -> Value {
    json!({"resourceType": "Condition", "id": id,
           "clinicalStatus": {"coding": [{"code": "active"}]},
           "code": {"coding": [{"system": system, "code": code, "display": id}]},
           "onsetDateTime": onset})
}

pub fn sct_condition(id: &str, code: &str) -> Value {
    condition(id, "http://snomed.info/sct", code, "2015-03-01")
}

pub fn icd_condition(id: &str, code: &str) -> Value {
    condition(id, "http://hl7.org/fhir/sid/icd-10-cm", code, "2015-03-01")
}

pub fn medication(id: &str, rxnorm: &str, display: &str, status: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "status": status, "intent": "order",
           "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                     "code": rxnorm, "display": display}], "text": display},
           "authoredOn": "2023-01-10"})
}

/// The labs and vitals of Table A's example person: total cholesterol 213 mg/dL, HDL
/// 50 mg/dL, systolic 120 mm Hg.
pub fn table_a_measurements() -> Vec<Value> {
    vec![
        quantity("tc", "2093-3", 213.0, "mg/dL", "2024-05-01"),
        quantity("hdl", "2085-9", 50.0, "mg/dL", "2024-05-01"),
        blood_pressure("bp", 120.0, "2024-05-01"),
    ]
}

pub fn computed(outcome: Outcome) -> Score {
    match outcome {
        Outcome::Computed(s) => s,
        other => panic!("expected a computed score, got {other:?}"),
    }
}

pub fn close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: got {actual}, expected {expected} ± {tolerance}"
    );
}
