//! Allergies and Intolerances Section (entries required) 2.16.840.1.113883.10.20.22.2.6.1
//! → AllergyIntolerance.

use serde_json::{json, Value};

use super::bundle::Fact;
use super::dom::{at, child, children, has_template, N};
use super::values::{self, ids, When};
use super::{entries, Ctx};
use crate::error::CcdaError;

const CONCERN: &[&str] = &["2.16.840.1.113883.10.20.22.4.30"];
const ALLERGY_OBS: &[&str] = &["2.16.840.1.113883.10.20.22.4.7"];
const REACTION: &[&str] = &["2.16.840.1.113883.10.20.22.4.9"];
const SEVERITY: &[&str] = &["2.16.840.1.113883.10.20.22.4.8"];
const STATUS: &[&str] = &["2.16.840.1.113883.10.20.22.4.28"];

/// Each Allergy - Intolerance Observation (2.16.840.1.113883.10.20.22.4.7) inside an
/// Allergy Concern Act (2.16.840.1.113883.10.20.22.4.30) becomes an AllergyIntolerance,
/// after C-CDA on FHIR's "CF-allergies" mapping: participant/playingEntity/code → code
/// (a negated observation with no substance → SNOMED 716186003 "No known allergy"), the
/// observation's value → type and category, effectiveTime/low → onset, Reaction
/// Observations (4.9) → reaction.manifestation with their Severity (4.8).
pub(crate) fn allergies(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<usize, CcdaError> {
    let mut n = 0;
    for act in entries(s, CONCERN) {
        let act_status = child(act, "statusCode").and_then(|c| c.attribute("code"));
        for er in children(act, "entryRelationship") {
            let Some(obs) = child(er, "observation").filter(|o| has_template(*o, ALLERGY_OBS))
            else {
                continue;
            };
            allergy(obs, act_status, cx)?;
            n += 1;
        }
    }
    Ok(n)
}

fn related<'a>(obs: N<'a>, tpl: &'a [&'a str]) -> impl Iterator<Item = N<'a>> + 'a {
    children(obs, "entryRelationship")
        .filter_map(|e| child(e, "observation"))
        .filter(move |o| has_template(*o, tpl))
}

fn allergy(obs: N<'_>, act_status: Option<&str>, cx: &mut Ctx<'_, '_>) -> Result<(), CcdaError> {
    let negated = obs.attribute("negationInd") == Some("true");
    let substance = children(obs, "participant")
        .filter_map(|p| at(p, &["participantRole", "playingEntity", "code"]))
        .find_map(|c| values::concept(c, cx.refs));
    let code = match (&substance, negated) {
        (None, true) => Some(json!({ "coding": [{ "system": "http://snomed.info/sct",
            "code": "716186003", "display": "No known allergy (situation)" }] })),
        (s, _) => s.clone(),
    };
    let value_code = child(obs, "value").and_then(|v| v.attribute("code"));
    let (kind, category) = match value_code {
        Some("416098002") => (Some("allergy"), Some("medication")),
        Some("414285001") => (Some("allergy"), Some("food")),
        Some("419199007") => (Some("allergy"), None),
        Some("59037007") => (Some("intolerance"), Some("medication")),
        Some("235719002") => (Some("intolerance"), Some("food")),
        Some("419511003") => (None, Some("medication")),
        Some("418471000") => (None, Some("food")),
        Some("426232007") => (None, Some("environment")),
        _ => (None, None),
    };
    let status = related(obs, STATUS)
        .find_map(|o| child(o, "value").and_then(|v| v.attribute("code")))
        .map(|c| match c {
            "73425007" => "inactive",
            "413322009" => "resolved",
            _ => "active",
        });
    let when = values::effective(obs)?;
    let clinical = status.unwrap_or(match (act_status, when.as_ref().and_then(When::end)) {
        (_, Some(_)) => "resolved",
        (Some("completed"), _) => "resolved",
        (Some("suspended"), _) => "inactive",
        _ => "active",
    });
    let mut r = json!({
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": clinical }] },
        "verificationStatus": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            "code": if negated && substance.is_some() { "refuted" } else { "confirmed" } }] },
    });
    if let Some(k) = kind {
        r["type"] = json!(k);
    }
    if let Some(c) = category {
        r["category"] = json!([c]);
    }
    if let Some(c) = &code {
        r["code"] = c.clone();
    }
    r["patient"] = cx.subject();
    if let Some(s) = when.as_ref().and_then(When::start) {
        r["onsetDateTime"] = json!(s);
    }
    let reactions: Vec<Value> = related(obs, REACTION)
        .filter_map(|ro| {
            let m = child(ro, "value").and_then(|v| values::concept(v, cx.refs))?;
            let mut reaction = json!({ "manifestation": [m] });
            let sev = related(ro, SEVERITY)
                .find_map(|so| child(so, "value").and_then(|v| v.attribute("code")));
            if let Some(s) = sev.and_then(severity) {
                reaction["severity"] = json!(s);
            }
            Some(reaction)
        })
        .collect();
    if !reactions.is_empty() {
        r["reaction"] = Value::Array(reactions);
    }
    let fact = Fact {
        kind: "AllergyIntolerance".into(),
        code: code.as_ref().and_then(values::first_code),
        date: when.as_ref().and_then(When::start),
    };
    cx.add(r, ids(obs), fact);
    Ok(())
}

fn severity(code: &str) -> Option<&'static str> {
    match code {
        "255604002" => Some("mild"),
        "6736007" | "371923003" => Some("moderate"),
        "24484000" | "371924009" | "399166001" => Some("severe"),
        _ => None,
    }
}
