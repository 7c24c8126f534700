//! Small hand-built records for the measures' unit tests.

use serde_json::{json, Value};
use time::macros::date;
use time::Date;

use crate::record::Record;

pub const SCT: &str = "http://snomed.info/sct";
pub const LOINC: &str = "http://loinc.org";
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

/// Calendar 2024, the performance period the specifications were written for.
pub const PERIOD: (Date, Date) = (date!(2024 - 01 - 01), date!(2024 - 12 - 31));

pub struct Fixture {
    pub patient: Value,
    pub resources: Vec<Value>,
}

impl Fixture {
    pub fn patient(birth_date: &str, gender: &str) -> Fixture {
        Fixture {
            patient: json!({"resourceType": "Patient", "id": "p",
                            "birthDate": birth_date, "gender": gender}),
            resources: Vec::new(),
        }
    }

    pub fn with(mut self, resource: Value) -> Fixture {
        self.resources.push(resource);
        self
    }

    pub fn record(&self) -> Record<'_> {
        Record::new(&self.patient, &self.resources)
    }
}

pub fn concept(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

/// A finished encounter of one type.
pub fn encounter(id: &str, system: &str, code: &str, class: &str, start: &str, end: &str) -> Value {
    json!({"resourceType": "Encounter", "id": id, "status": "finished",
           "class": {"code": class}, "type": [concept(system, code)],
           "period": {"start": start, "end": end}})
}

/// An office visit (CPT 99213) on one day.
pub fn office_visit(day: &str) -> Value {
    encounter(&format!("visit-{day}"), CPT, "99213", "AMB", day, day)
}

/// A condition with its onset and, if it ended, its abatement.
pub fn condition(id: &str, code: &str, onset: &str, abatement: Option<&str>) -> Value {
    let mut c = json!({"resourceType": "Condition", "id": id, "code": concept(SCT, code),
                       "onsetDateTime": onset,
                       "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                  if abatement.is_some() { "resolved" } else { "active" })});
    if let Some(a) = abatement {
        c["abatementDateTime"] = json!(a);
    }
    c
}

pub fn procedure(id: &str, system: &str, code: &str, day: &str) -> Value {
    json!({"resourceType": "Procedure", "id": id, "status": "completed",
           "code": concept(system, code), "performedDateTime": day})
}

/// A final observation with an optional `value[x]` (given as `{"valueQuantity": …}`).
pub fn observation(id: &str, system: &str, code: &str, day: &str, value: Option<Value>) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
                       "code": concept(system, code), "effectiveDateTime": day});
    if let Some(Value::Object(v)) = value {
        for (k, x) in v {
            o[k] = x;
        }
    }
    o
}

/// A blood pressure panel with systolic and diastolic components.
pub fn blood_pressure(id: &str, when: &str, systolic: f64, diastolic: f64) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": concept(LOINC, "85354-9"), "effectiveDateTime": when,
           "component": [
               {"code": concept(LOINC, "8480-6"), "valueQuantity": {"value": systolic, "code": "mm[Hg]"}},
               {"code": concept(LOINC, "8462-4"), "valueQuantity": {"value": diastolic, "code": "mm[Hg]"}}]})
}

/// A medication request for one RxNorm code.
pub fn medication_request(id: &str, code: &str, authored: &str, status: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "status": status, "intent": "order",
           "medicationCodeableConcept": concept(RXNORM, code), "authoredOn": authored})
}

/// A frailty diagnosis (Accidental fall, 217082002) on one day, resolved the same day.
pub fn frailty(day: &str) -> Value {
    condition("fall", "217082002", day, Some(day))
}

/// Donepezil 10 mg (a dementia medication) ordered on one day.
pub fn dementia_medication(day: &str) -> Value {
    medication_request("donepezil", "997223", day, "active")
}

pub fn hospice_procedure(day: &str) -> Value {
    procedure("hospice", SCT, "385763009", day)
}

pub fn palliative_encounter(day: &str) -> Value {
    encounter("palliative", SCT, "713281006", "AMB", day, day)
}

pub fn nursing_home(day: &str) -> Value {
    json!({"resourceType": "Observation", "id": "housing", "status": "final",
           "code": concept(LOINC, "71802-3"), "effectiveDateTime": day,
           "valueCodeableConcept": concept(SCT, "160734000")})
}
