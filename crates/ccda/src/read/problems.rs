//! Problem Section (entries required) 2.16.840.1.113883.10.20.22.2.5.1 → Condition.

use serde_json::json;

use super::bundle::Fact;
use super::dom::{child, children, has_template, N};
use super::values::{self, ids, When};
use super::{entries, Ctx};
use crate::error::CcdaError;

const CONCERN: &[&str] = &["2.16.840.1.113883.10.20.22.4.3"];
const PROBLEM_OBS: &[&str] = &["2.16.840.1.113883.10.20.22.4.4"];
const PROBLEM_STATUS: &[&str] = &["2.16.840.1.113883.10.20.22.4.6"];

/// Each Problem Observation (2.16.840.1.113883.10.20.22.4.4) inside a Problem Concern Act
/// (2.16.840.1.113883.10.20.22.4.3) becomes one Condition, following C-CDA on FHIR's
/// "CF-problems" mapping: value → code, effectiveTime low/high → onset/abatement, the
/// concern's statusCode (or a resolved date) → clinicalStatus, negationInd → refuted.
pub(crate) fn problems(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<usize, CcdaError> {
    let mut n = 0;
    for act in entries(s, CONCERN) {
        let act_status = child(act, "statusCode").and_then(|c| c.attribute("code"));
        for er in children(act, "entryRelationship") {
            let Some(obs) = child(er, "observation").filter(|o| has_template(*o, PROBLEM_OBS))
            else {
                continue;
            };
            condition(obs, act_status, cx)?;
            n += 1;
        }
    }
    Ok(n)
}

fn condition(obs: N<'_>, act_status: Option<&str>, cx: &mut Ctx<'_, '_>) -> Result<(), CcdaError> {
    let mut r = json!({
        "resourceType": "Condition",
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "code": "problem-list-item", "display": "Problem List Item" }] }],
    });
    let code = child(obs, "value").and_then(|v| values::concept(v, cx.refs));
    let when = values::effective(obs)?;
    let resolved = when.as_ref().and_then(When::end).is_some();
    let status_obs = children(obs, "entryRelationship")
        .filter_map(|e| child(e, "observation"))
        .find(|o| has_template(*o, PROBLEM_STATUS))
        .and_then(|o| child(o, "value"))
        .and_then(|v| v.attribute("code"));
    let clinical = match (status_obs, resolved, act_status) {
        (Some("55561003"), _, _) => Some("active"),
        (Some("73425007"), _, _) => Some("inactive"),
        (Some("413322009"), _, _) => Some("resolved"),
        (_, true, _) => Some("resolved"),
        (_, _, Some("active")) => Some("active"),
        (_, _, Some("completed")) => Some("resolved"),
        (_, _, Some("suspended")) => Some("inactive"),
        _ => None,
    };
    if let Some(c) = clinical {
        r["clinicalStatus"] = json!({ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": c }] });
    }
    let negated = obs.attribute("negationInd") == Some("true");
    r["verificationStatus"] = json!({ "coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
        "code": if negated { "refuted" } else { "confirmed" } }] });
    if let Some(c) = &code {
        r["code"] = c.clone();
    }
    r["subject"] = cx.subject();
    if let Some(w) = &when {
        if let Some(s) = w.start() {
            r["onsetDateTime"] = json!(s);
        }
        if let Some(e) = w.end() {
            r["abatementDateTime"] = json!(e);
        }
    }
    if let Some(t) = child(obs, "author").and_then(|a| child(a, "time")) {
        if let Some(t) = values::ts(t)? {
            r["recordedDate"] = json!(t);
        }
    }
    let fact = Fact {
        kind: "Condition".into(),
        code: code.as_ref().and_then(values::first_code),
        date: when.as_ref().and_then(When::start),
    };
    cx.add(r, ids(obs), fact);
    Ok(())
}
