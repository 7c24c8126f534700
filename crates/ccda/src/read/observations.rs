//! Results Section (entries required) 2.16.840.1.113883.10.20.22.2.3.1, Vital Signs
//! Section (entries required) 2.16.840.1.113883.10.20.22.2.4.1 and Social History Section
//! 2.16.840.1.113883.10.20.22.2.17 → Observation (and DiagnosticReport for result
//! organizers).

use serde_json::{json, Value};

use super::bundle::Fact;
use super::dom::{child, children, has_template, N};
use super::values::{self, ids, When};
use super::{entries, Ctx};
use crate::error::CcdaError;

const RESULT_ORGANIZER: &[&str] = &["2.16.840.1.113883.10.20.22.4.1"];
const RESULT_OBS: &[&str] = &["2.16.840.1.113883.10.20.22.4.2"];
const VITALS_ORGANIZER: &[&str] = &["2.16.840.1.113883.10.20.22.4.26"];
const VITAL_OBS: &[&str] = &["2.16.840.1.113883.10.20.22.4.27"];

fn category(code: &str) -> Value {
    json!([{ "coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": code }] }])
}

fn status(n: N<'_>) -> &'static str {
    match child(n, "statusCode").and_then(|c| c.attribute("code")) {
        Some("completed") => "final",
        Some("active") => "preliminary",
        Some("aborted" | "cancelled") => "cancelled",
        Some("nullified") => "entered-in-error",
        _ => "unknown",
    }
}

/// One observation (Result Observation 4.2, Vital Sign Observation 4.27, or any Social
/// History observation) as an Observation, after C-CDA on FHIR "CF-results": code, value
/// (PQ → valueQuantity, CD → valueCodeableConcept, ST → valueString, …),
/// interpretationCode → interpretation, referenceRange/observationRange → referenceRange.
fn observation(o: N<'_>, cat: &str, cx: &mut Ctx<'_, '_>) -> Result<String, CcdaError> {
    let code = child(o, "code").and_then(|c| values::concept(c, cx.refs));
    let mut r = json!({
        "resourceType": "Observation",
        "status": status(o),
        "category": category(cat),
        "code": code.clone().unwrap_or_else(values::unknown),
        "subject": cx.subject(),
    });
    let when = values::effective(o)?;
    if let Some(w) = &when {
        w.put(&mut r, "effective");
    }
    if let Some(p) = cx.org_ref() {
        r["performer"] = json!([p]);
    }
    if let Some(v) = child(o, "value") {
        if let Some((k, v)) = values::value(v, cx.refs)? {
            r[k] = v;
        }
    }
    let interp: Vec<Value> = children(o, "interpretationCode")
        .filter_map(|c| values::concept(c, cx.refs))
        .collect();
    if !interp.is_empty() {
        r["interpretation"] = Value::Array(interp);
    }
    let mut ranges = Vec::new();
    for rr in children(o, "referenceRange") {
        let Some(or) = child(rr, "observationRange") else {
            continue;
        };
        let mut range = serde_json::Map::new();
        if let Some(v) = child(or, "value") {
            for end in ["low", "high"] {
                if let Some(q) = child(v, end).map(values::quantity).transpose()?.flatten() {
                    range.insert(end.into(), q);
                }
            }
        }
        if let Some(t) = child(or, "text").and_then(|t| cx.refs.original_text(t)) {
            range.insert("text".into(), json!(t));
        }
        if !range.is_empty() {
            ranges.push(Value::Object(range));
        }
    }
    if !ranges.is_empty() {
        r["referenceRange"] = Value::Array(ranges);
    }
    let fact = Fact {
        kind: format!("Observation:{cat}"),
        code: code.as_ref().and_then(values::first_code),
        date: when.as_ref().and_then(When::start),
    };
    Ok(cx.add(r, ids(o), fact))
}

fn components<'a>(org: N<'a>, tpl: &'a [&'a str]) -> impl Iterator<Item = N<'a>> + 'a {
    children(org, "component")
        .filter_map(|c| child(c, "observation"))
        .filter(move |o| has_template(*o, tpl))
}

/// Result Organizer (2.16.840.1.113883.10.20.22.4.1) → DiagnosticReport with its Result
/// Observations (2.16.840.1.113883.10.20.22.4.2) as `result`; a Result Observation
/// directly in an entry → Observation alone. Category laboratory.
pub(crate) fn results(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<usize, CcdaError> {
    let mut n = 0;
    for org in entries(s, RESULT_ORGANIZER) {
        let mut result_refs = Vec::new();
        let mut first_time = None;
        for o in components(org, RESULT_OBS) {
            if first_time.is_none() {
                first_time = values::effective(o)?.and_then(|w| w.start());
            }
            let url = observation(o, "laboratory", cx)?;
            result_refs.push(json!({ "reference": url }));
            n += 1;
        }
        let code = child(org, "code").and_then(|c| values::concept(c, cx.refs));
        let mut r = json!({
            "resourceType": "DiagnosticReport",
            "status": match status(org) { "preliminary" => "partial", s => s },
            "category": [{ "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB" }] }],
            "code": code.clone().unwrap_or_else(values::unknown),
            "subject": cx.subject(),
        });
        let when = values::effective(org)?;
        let start = when.as_ref().and_then(When::start).or(first_time);
        if let Some(w) = &when {
            w.put(&mut r, "effective");
        } else if let Some(t) = &start {
            r["effectiveDateTime"] = json!(t);
        }
        if let Some(p) = cx.org_ref() {
            r["performer"] = json!([p]);
        }
        if !result_refs.is_empty() {
            r["result"] = Value::Array(result_refs);
        }
        let fact = Fact {
            kind: "DiagnosticReport".into(),
            code: code.as_ref().and_then(values::first_code),
            date: start,
        };
        cx.add(r, ids(org), fact);
        n += 1;
    }
    for o in entries(s, RESULT_OBS) {
        observation(o, "laboratory", cx)?;
        n += 1;
    }
    Ok(n)
}

/// Vital Signs Organizer (2.16.840.1.113883.10.20.22.4.26) → its Vital Sign Observations
/// (2.16.840.1.113883.10.20.22.4.27) as Observations of category vital-signs (C-CDA on
/// FHIR "CF-vitals"; the organizer itself is not kept, FHIR vital signs stand alone).
pub(crate) fn vital_signs(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<usize, CcdaError> {
    let mut n = 0;
    for org in entries(s, VITALS_ORGANIZER) {
        for o in components(org, VITAL_OBS) {
            observation(o, "vital-signs", cx)?;
            n += 1;
        }
    }
    for o in entries(s, VITAL_OBS) {
        observation(o, "vital-signs", cx)?;
        n += 1;
    }
    Ok(n)
}

/// Every observation entry of the Social History Section (Smoking Status - Meaningful Use
/// 2.16.840.1.113883.10.20.22.4.78, Tobacco Use 4.85, Social History Observation 4.38,
/// …) → Observation of category social-history (C-CDA on FHIR "CF-social").
pub(crate) fn social_history(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<usize, CcdaError> {
    let mut n = 0;
    for e in children(s, "entry") {
        if let Some(o) = child(e, "observation") {
            observation(o, "social-history", cx)?;
            n += 1;
        }
    }
    Ok(n)
}
