//! One pass over a record that files every resource under the rule groups its codes belong
//! to, so evaluating a rule costs the events it matches, not resources × codes.
//!
//! The filters follow `record.rs` (which this module does not change): observations and
//! reports that are entered-in-error, cancelled, preliminary or registered are left out;
//! procedures and immunizations count when completed; a condition is active on the day when
//! recorded by then, not abated by then, not inactive/resolved/remission, and not refuted
//! or entered-in-error. Beyond `record.rs`, a MedicationRequest coded by
//! `medicationReference` is read through the Medication it points at (`Medication/ID`,
//! `urn:uuid:ID` or a contained `#ID`), as Synthea writes them.

use std::collections::HashMap;

use serde_json::Value;
use time::Date;

use super::rules::{GroupId, ResourceKind, RuleSet};
use crate::record::{date_of, effective_date, Quantity, Record};

/// A resource (or an observation's component) matching a group, on its date.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event<'a> {
    pub date: Date,
    pub resource: &'a Value,
    /// The `valueQuantity` of the observation, or of the matching component.
    pub quantity: Option<Quantity<'a>>,
    /// Conditions: active on the day; medication requests: status `active`; else true.
    pub active: bool,
}

pub(crate) struct Index<'a> {
    groups: Vec<Vec<Event<'a>>>,
}

impl<'a> Index<'a> {
    pub fn build(rules: &RuleSet, record: &Record<'a>, today: Date) -> Index<'a> {
        let mut ix = Index {
            groups: vec![Vec::new(); rules.groups.len()],
        };
        let reads_requests = rules.kinds & ResourceKind::MedicationRequest.bit() != 0;
        let mut medications: HashMap<&'a str, &'a Value> = HashMap::new();
        let mut by_reference: Vec<(&'a Value, Date, bool, &'a str)> = Vec::new();
        // The groups this resource's codes fall in, with the component that matched.
        let mut hits: Vec<(GroupId, Option<&'a Value>)> = Vec::new();
        for r in record.resources {
            let Some(rt) = r.get("resourceType").and_then(Value::as_str) else {
                continue;
            };
            if rt == "Medication" && reads_requests {
                if let Some(id) = r.get("id").and_then(Value::as_str) {
                    medications.insert(id, r);
                }
                continue;
            }
            let Some(kind) = ResourceKind::from_type(rt) else {
                continue;
            };
            if rules.kinds & kind.bit() == 0 {
                continue;
            }
            // Codes first: most resources match no rule, and then nothing else is read.
            hits.clear();
            let field = match kind {
                ResourceKind::Immunization => "vaccineCode",
                ResourceKind::MedicationRequest => "medicationCodeableConcept",
                _ => "code",
            };
            matches(rules, kind, r.get(field), None, &mut hits);
            if kind == ResourceKind::Observation {
                for comp in r
                    .get("component")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    matches(rules, kind, comp.get("code"), Some(comp), &mut hits);
                }
            }
            let reference = (kind == ResourceKind::MedicationRequest && hits.is_empty())
                .then(|| {
                    r.get("medicationReference")
                        .and_then(|m| m.get("reference"))
                        .and_then(Value::as_str)
                })
                .flatten();
            if hits.is_empty() && reference.is_none() {
                continue;
            }
            let status = r.get("status").and_then(Value::as_str);
            let (date, active) = match kind {
                ResourceKind::Observation | ResourceKind::DiagnosticReport => {
                    if matches!(
                        status,
                        Some("entered-in-error" | "cancelled" | "preliminary" | "registered")
                    ) {
                        continue;
                    }
                    (effective_date(r).or_else(|| date_of(r, &["issued"])), true)
                }
                ResourceKind::Procedure => {
                    if status != Some("completed") {
                        continue;
                    }
                    let date = date_of(r, &["performedDateTime", "performedPeriod.start"]);
                    (date, true)
                }
                ResourceKind::Immunization => {
                    if status != Some("completed") {
                        continue;
                    }
                    (date_of(r, &["occurrenceDateTime"]), true)
                }
                ResourceKind::Condition => {
                    if matches!(
                        first_code(r, "verificationStatus"),
                        Some("refuted" | "entered-in-error")
                    ) {
                        continue;
                    }
                    let date = date_of(r, &["onsetDateTime", "onsetPeriod.start", "recordedDate"]);
                    (date, condition_active(r, today))
                }
                ResourceKind::MedicationRequest => {
                    if matches!(status, Some("entered-in-error" | "cancelled" | "draft")) {
                        continue;
                    }
                    (date_of(r, &["authoredOn"]), status == Some("active"))
                }
            };
            let Some(date) = date.filter(|d| *d <= today) else {
                continue;
            };
            if let Some(reference) = reference {
                by_reference.push((r, date, active, reference));
            }
            for &(g, comp) in &hits {
                ix.groups[g].push(Event {
                    date,
                    resource: r,
                    quantity: quantity_of(comp.unwrap_or(r).get("valueQuantity")),
                    active,
                });
            }
        }
        for (r, date, active, reference) in by_reference {
            let medication = if let Some(local) = reference.strip_prefix('#') {
                r.get("contained").and_then(Value::as_array).and_then(|c| {
                    c.iter()
                        .find(|m| m.get("id").and_then(Value::as_str) == Some(local))
                })
            } else {
                let id = reference
                    .strip_prefix("Medication/")
                    .or_else(|| reference.strip_prefix("urn:uuid:"))
                    .unwrap_or(reference);
                medications.get(id).copied()
            };
            let Some(m) = medication else { continue };
            hits.clear();
            matches(
                rules,
                ResourceKind::MedicationRequest,
                m.get("code"),
                None,
                &mut hits,
            );
            for &(g, _) in &hits {
                ix.groups[g].push(Event {
                    date,
                    resource: r,
                    quantity: None,
                    active,
                });
            }
        }
        ix
    }

    pub fn events(&self, group: GroupId) -> &[Event<'a>] {
        self.groups.get(group).map_or(&[], Vec::as_slice)
    }
}

/// Adds to `hits` every group that a coding of `concept` belongs to and that reads `kind`,
/// once per group (the first match wins: the resource's own code before its components).
fn matches<'a>(
    rules: &RuleSet,
    kind: ResourceKind,
    concept: Option<&'a Value>,
    component: Option<&'a Value>,
    hits: &mut Vec<(GroupId, Option<&'a Value>)>,
) {
    let Some(codings) = concept
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for c in codings {
        let (Some(system), Some(code)) = (
            c.get("system").and_then(Value::as_str),
            c.get("code").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Some(groups) = rules.codes.get(system).and_then(|m| m.get(code)) else {
            continue;
        };
        for &g in groups {
            if rules.groups[g].reads(kind) && !hits.iter().any(|(h, _)| *h == g) {
                hits.push((g, component));
            }
        }
    }
}

fn quantity_of(v: Option<&Value>) -> Option<Quantity<'_>> {
    let v = v?;
    let value = v.get("value")?.as_f64()?;
    let unit = v
        .get("code")
        .or_else(|| v.get("unit"))
        .and_then(Value::as_str);
    Some(Quantity { value, unit })
}

fn first_code<'v>(r: &'v Value, field: &str) -> Option<&'v str> {
    r.get(field)?
        .get("coding")?
        .as_array()?
        .first()?
        .get("code")?
        .as_str()
}

/// As `record.rs` decides it (its helper is private there).
fn condition_active(c: &Value, on: Date) -> bool {
    if let Some(abated) = date_of(c, &["abatementDateTime", "abatementPeriod.end"]) {
        return abated > on;
    }
    !matches!(
        first_code(c, "clinicalStatus"),
        Some("inactive" | "resolved" | "remission")
    )
}

/// Whether a coded value (`valueCodeableConcept`) carries any of `codes`.
pub(crate) fn coded_value_in(resource: &Value, codes: &[(String, String)]) -> bool {
    concept_in(resource, "valueCodeableConcept", codes)
}

/// Whether a concept (`vaccineCode`) carries any of `codes`.
pub(crate) fn concept_in(resource: &Value, field: &str, codes: &[(String, String)]) -> bool {
    resource
        .get(field)
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .is_some_and(|codings| {
            codings.iter().any(|c| {
                let system = c.get("system").and_then(Value::as_str);
                let code = c.get("code").and_then(Value::as_str);
                codes
                    .iter()
                    .any(|(s, k)| system == Some(s.as_str()) && code == Some(k.as_str()))
            })
        })
}
