//! Procedures Section (entries optional) 2.16.840.1.113883.10.20.22.2.7.1 → Procedure, and
//! Encounters Section (entries optional) 2.16.840.1.113883.10.20.22.2.22.1 → Encounter.

use serde_json::{json, Value};

use super::bundle::Fact;
use super::dom::{child, children, N};
use super::values::{self, ids, When};
use super::{entries, Ctx};
use crate::codes;
use crate::error::CcdaError;

/// Procedure Activity Procedure (4.14), Observation (4.13) and Act (4.12).
const PROCEDURE_ACTIVITIES: &[&str] = &[
    "2.16.840.1.113883.10.20.22.4.14",
    "2.16.840.1.113883.10.20.22.4.13",
    "2.16.840.1.113883.10.20.22.4.12",
];
const ENCOUNTER_ACTIVITY: &[&str] = &["2.16.840.1.113883.10.20.22.4.49"];
const ACT_CODE: &str = "2.16.840.1.113883.5.4";

/// Each Procedure Activity Procedure/Observation/Act (2.16.840.1.113883.10.20.22.4.14,
/// .13, .12) → Procedure (C-CDA on FHIR "CF-procedures"): code, statusCode → status,
/// effectiveTime → performed[x], targetSiteCode → bodySite.
pub(crate) fn procedures(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<usize, CcdaError> {
    let mut n = 0;
    for p in entries(s, PROCEDURE_ACTIVITIES) {
        let code = child(p, "code").and_then(|c| values::concept(c, cx.refs));
        let status = match child(p, "statusCode").and_then(|c| c.attribute("code")) {
            _ if p.attribute("negationInd") == Some("true") => "not-done",
            Some("completed") => "completed",
            Some("active") => "in-progress",
            Some("aborted") => "stopped",
            Some("cancelled") => "not-done",
            Some("new") => "preparation",
            Some("held" | "suspended") => "on-hold",
            Some("nullified") => "entered-in-error",
            _ => "unknown",
        };
        let mut r = json!({ "resourceType": "Procedure", "status": status });
        if let Some(c) = &code {
            r["code"] = c.clone();
        }
        r["subject"] = cx.subject();
        let when = values::effective(p)?;
        if let Some(w) = &when {
            w.put(&mut r, "performed");
        }
        if let Some(o) = cx.org_ref() {
            r["performer"] = json!([{ "actor": o }]);
        }
        let sites: Vec<Value> = children(p, "targetSiteCode")
            .filter_map(|c| values::concept(c, cx.refs))
            .collect();
        if !sites.is_empty() {
            r["bodySite"] = Value::Array(sites);
        }
        let fact = Fact {
            kind: "Procedure".into(),
            code: code.as_ref().and_then(values::first_code),
            date: when.as_ref().and_then(When::start),
        };
        cx.add(r, ids(p), fact);
        n += 1;
    }
    Ok(n)
}

/// Each Encounter Activity (2.16.840.1.113883.10.20.22.4.49) → Encounter.
pub(crate) fn encounters(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<usize, CcdaError> {
    let mut n = 0;
    for e in entries(s, ENCOUNTER_ACTIVITY) {
        encounter(e, cx)?;
        n += 1;
    }
    Ok(n)
}

/// An encounter (Encounter Activity 2.16.840.1.113883.10.20.22.4.49, or the header's
/// encompassingEncounter) → Encounter, after C-CDA on FHIR "CF-encounters": code →
/// type, a translation in ActCode (2.16.840.1.113883.5.4) → class (else the NullFlavor
/// UNK, since FHIR requires a class the document did not give), effectiveTime → period,
/// statusCode → status (a period with an end → finished).
pub(crate) fn encounter(e: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<String, CcdaError> {
    let code_el = child(e, "code");
    let code = code_el.and_then(|c| values::concept(c, cx.refs));
    let class = code_el
        .into_iter()
        .flat_map(|c| std::iter::once(c).chain(children(c, "translation")))
        .find(|c| c.attribute("codeSystem") == Some(ACT_CODE) && c.attribute("code").is_some())
        .map(|c| {
            let mut k =
                json!({ "system": codes::system_uri(ACT_CODE), "code": c.attribute("code") });
            if let Some(d) = c.attribute("displayName") {
                k["display"] = json!(d);
            }
            k
        })
        .unwrap_or_else(|| {
            json!({ "system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
                    "code": "UNK", "display": "unknown" })
        });
    let when = values::effective(e)?;
    let status = match child(e, "statusCode").and_then(|c| c.attribute("code")) {
        Some("completed") => "finished",
        Some("active") => "in-progress",
        Some("cancelled" | "aborted") => "cancelled",
        Some("nullified") => "entered-in-error",
        _ if when.as_ref().and_then(When::end).is_some() => "finished",
        _ => "unknown",
    };
    let mut r = json!({ "resourceType": "Encounter", "status": status, "class": class });
    if let Some(c) = &code {
        r["type"] = json!([c]);
    }
    r["subject"] = cx.subject();
    if let Some(w) = &when {
        r["period"] = w.period();
    }
    if let Some(o) = cx.org_ref() {
        r["serviceProvider"] = o;
    }
    let fact = Fact {
        kind: "Encounter".into(),
        code: code.as_ref().and_then(values::first_code),
        date: when.as_ref().and_then(When::start),
    };
    Ok(cx.add(r, ids(e), fact))
}
