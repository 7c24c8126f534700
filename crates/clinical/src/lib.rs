//! Clinical computations over one patient's FHIR resources: care gaps, risk scores and
//! quality measures. `records` loads the resources and writes the results through the one
//! write path; this crate only computes, and explains every number it gives (the inputs it
//! used and the rule or equation, with its citation).
//!
//! **Invariant**: pure — no I/O, no clock. "Today" is a parameter.

pub mod gaps;
pub mod measures;
pub mod record;
pub mod risk;

pub use record::{Code, Dated, Record};

/// An input a result used, as a person reads it: what it is (`Total cholesterol`), its
/// value with unit and date (`213 mg/dL on 12 Mar 2024`), and the resource it came from
/// (`Observation/123`), when it came from one (age and sex come from the Patient).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Input {
    pub name: String,
    pub value: String,
    pub source: Option<String>,
}

/// The resource types the rules and equations read. A write of any of them may change a
/// patient's gaps and scores; `records` marks the patient for working them out again.
pub const READS: &[&str] = &[
    "Patient",
    "Observation",
    "Condition",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
    "MedicationRequest",
];

/// The resource types the quality measures read (qualifying encounters, orders and
/// devices besides what the rules read).
pub const MEASURE_READS: &[&str] = &[
    "Patient",
    "Observation",
    "Condition",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
    "MedicationRequest",
    "Encounter",
    "ServiceRequest",
    "DeviceRequest",
];
