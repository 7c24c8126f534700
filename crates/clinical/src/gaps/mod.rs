//! Care gaps: what a patient is due for under published guidelines, each rule written as
//! data in its own TOML file (`crates/clinical/rules/*.toml`, embedded at build time), so a
//! clinician can read, cite and change a rule without reading Rust.
//!
//! [`evaluate`] gives one [`Gap`] per rule that applies to the patient (the childhood
//! schedule gives one per vaccine series). Rules that do not apply — outside the ages, the
//! other sex, no qualifying condition, excluded (a total colectomy, a bilateral
//! mastectomy), or a risk below the threshold — give nothing: there is no "not applicable"
//! gap. A dead patient has no gaps. Where a rule cannot be decided from the record and the
//! caller's inputs (no birth date, sex not male/female for a sex-specific rule, a statin rule
//! without the 10-year risk), the gap is [`GapStatus::Undetermined`] and says why: the
//! module never guesses.
//!
//! `due` is the date by which the action should be done: for an open gap, the date it fell
//! (or falls) due, `None` when it is due now with no date of its own (never done, or a
//! treatment); for a closed gap, the date it next falls due, `None` when nothing further
//! is scheduled (a completed series, an active treatment, a followed-up reading).
//!
//! **Invariant**: pure, like the crate. Risk scores are inputs ([`RiskInput`]): this module
//! does not compute them.
//!
//! # Rule file schema
//!
//! ```toml
//! id = "colorectal-cancer-screening"        # gap.rule
//! title = "Colorectal cancer screening"     # gap.title, plain words
//! citation = "US Preventive Services Task Force. ... JAMA. 2021;325(19):1965-1977."
//! url = "https://www.uspreventiveservicestaskforce.org/..."   # optional
//!
//! [applies]                                 # who the rule is for (all that are given)
//! age_years = [45, 75]                      # inclusive, whole years on `today`
//! age_months = [6, 1200]                    # inclusive, whole months (infants)
//! sex = "female"                            # Patient.gender
//! [[applies.requires]]                      # every one must hold (a diagnosis)
//! [[applies.any_of]]                        # at least one must hold (risk factors)
//!
//! [[exclusion]]                             # any one holding removes the rule
//!
//! [risk]                                    # a caller-computed score the rule needs
//! id = "ascvd-10y"                          # matched against RiskInput.id
//! name = "10-year cardiovascular risk"
//! at_least_percent = 10.0                   # below it the rule does not apply
//! ```
//!
//! A *criterion* (in `requires`, `any_of`, `exclusion`) is a code list with a name:
//!
//! ```toml
//! name = "colorectal cancer"                # plain words, shown as evidence
//! resource = ["Condition"]                  # Observation, Procedure, Immunization,
//!                                           # DiagnosticReport, MedicationRequest, Condition
//! value_set = "2.16.840.1.113883.3.464.1003.108.12.1001"   # VSAC OID, when one exists
//! when = "ever"                             # Conditions: "active" on the day (default) or "ever"
//! codes = [{ system = "snomed", code = "363406005", display = "Malignant tumor of colon" }]
//! latest = { above = 130.0, unit = "mg/dL" }   # optional test on the newest value:
//!                                           # above / below / at_least, or in_codes = [...]
//! ```
//!
//! Systems are `loinc`, `snomed`, `cvx`, `rxnorm`, `icd10cm`, `cpt` or a full URI. Then
//! exactly one body:
//!
//! * `[[satisfied_by]]` options, each a criterion-like code list (`name`, `resource`,
//!   `value_set`, `codes`) with either `every = "10 years"` (a test valid that long; the
//!   option lasting longest wins; `age_at_event = [30, 65]` counts a test only when done
//!   at those ages; `sooner_if = { at_least = 7.0, unit = "%", every = "3 months" }`
//!   shortens the interval when the newest value is that high) or `active = true` (a
//!   treatment: an active MedicationRequest). With a `[season]` (`starts = "08-01"`,
//!   `due_by = "10-31"`) the options take neither: one event in the current season closes
//!   the gap.
//! * `[follow_up]`: `reading` (plain name), `resource`, `[[follow_up.measure]]` (`name`,
//!   `unit`, `codes`, matched as an observation's code or a component's code), and
//!   `[[follow_up.tier]]` in order of urgency (`name`, `within = "1 month"`,
//!   `at_least = { systolic = 140, diastolic = 90 }` — any one measure at least its value,
//!   the day's readings averaged — and an optional `risk = { id, name, at_least_percent }`).
//!   The newest reading day decides: in a tier, the gap is open and due `within` after it;
//!   otherwise closed if an earlier day was in a tier, else no gap.
//! * `[[series]]`: `id`, `name`, `value_set`, `codes` (CVX), `until_months` (no longer
//!   given from that age), and `[[series.dose]]` with `due_months` (the end of the
//!   recommended age range) and `not_needed_if_all_doses_are = [codes]` (a dose a product's
//!   schedule leaves out, e.g. the third rotavirus dose after monovalent vaccine). Doses
//!   are counted, one a day, without checking minimum ages or intervals.
//!
//! Unknown keys, unknown systems, malformed intervals and a file with no or several bodies
//! are errors ([`RuleError`], category invalid) when the rules are loaded.

mod eval;
mod index;
mod rules;
mod words;

#[cfg(test)]
mod tests;

use serde::Serialize;
use time::Date;

pub use rules::{Rule, RuleError, RuleSet};

use crate::{Input, Record};

/// A risk score computed by the caller (for example by `risk`), passed in by id.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskInput<'a> {
    /// `ascvd-10y`.
    pub id: &'a str,
    pub value_percent: f64,
    /// What it was computed from, when the caller knows (`RiskAssessment/9`).
    pub source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapStatus {
    /// Due or overdue.
    Open,
    /// Met; `due` says when it next falls due.
    Closed,
    /// The rule applies, but the record and inputs cannot settle it; `reason` says what
    /// is missing.
    Undetermined,
}

/// One rule's verdict for one patient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    /// `colorectal-cancer-screening`; a series adds its own: `childhood-immunizations/dtap`.
    pub rule: String,
    /// `Colorectal cancer screening`.
    pub title: String,
    pub status: GapStatus,
    #[serde(serialize_with = "iso_date")]
    pub due: Option<Date>,
    /// The last time it was done, and the resource that says so (`Procedure/12`).
    #[serde(serialize_with = "iso_done")]
    pub last_done: Option<(Date, String)>,
    /// Plain words: "Due: last colonoscopy was 12 years ago (3 Mar 2014); repeat every
    /// 10 years."
    pub reason: String,
    /// What the decision used.
    pub evidence: Vec<Input>,
    pub citation: String,
}

/// The gaps of every rule in `rules` that applies to the patient on `today`, in rule
/// order. `risk` holds the caller's risk scores; a rule needing one that is absent is
/// [`GapStatus::Undetermined`].
pub fn evaluate(
    rules: &RuleSet,
    record: &Record<'_>,
    today: Date,
    risk: &[RiskInput<'_>],
) -> Vec<Gap> {
    if record.deceased_on(today) {
        return Vec::new();
    }
    let ctx = eval::Ctx {
        record,
        today,
        risk,
        index: index::Index::build(rules, record, today),
        patient: record.patient_reference(),
    };
    rules
        .rules
        .iter()
        .flat_map(|r| eval::rule(&ctx, r))
        .collect()
}

fn iso_date<S: serde::Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.to_string()),
        None => s.serialize_none(),
    }
}

fn iso_done<S: serde::Serializer>(d: &Option<(Date, String)>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    match d {
        Some((date, source)) => {
            let mut st = s.serialize_struct("LastDone", 2)?;
            st.serialize_field("date", &date.to_string())?;
            st.serialize_field("source", source)?;
            st.end()
        }
        None => s.serialize_none(),
    }
}
