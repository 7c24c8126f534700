//! The header's people: the Patient (recordTarget), the care team (documentationOf/
//! serviceEvent/performer) and the visit the document is about (componentOf/
//! encompassingEncounter).

use serde_json::{json, Map, Value};

use super::bundle::Fact;
use super::dom::{self, at, child, children, is_null, N};
use super::values::{self, ids, When};
use super::Ctx;
use crate::error::CcdaError;
use crate::time;

/// A `name` (PN) as HumanName.
pub(crate) fn human_name(n: N<'_>) -> Option<Value> {
    if is_null(n) {
        return None;
    }
    let mut h = Map::new();
    if let Some(u) = n.attribute("use") {
        let u = match u.split_whitespace().next().unwrap_or("") {
            "L" => "official",
            "P" | "A" => "nickname",
            "ASGN" => "usual",
            _ => "",
        };
        if !u.is_empty() {
            h.insert("use".into(), json!(u));
        }
    }
    let parts = |name: &str| -> Vec<Value> {
        children(n, name)
            .map(dom::text)
            .filter(|t| !t.is_empty())
            .map(Value::String)
            .collect()
    };
    let family: Vec<Value> = parts("family");
    if let Some(f) = family.first() {
        h.insert("family".into(), f.clone());
    }
    for (el, key) in [
        ("given", "given"),
        ("prefix", "prefix"),
        ("suffix", "suffix"),
    ] {
        let p = parts(el);
        if !p.is_empty() {
            h.insert(key.into(), Value::Array(p));
        }
    }
    if h.get("family").is_none() && h.get("given").is_none() {
        let t = dom::text(n);
        if t.is_empty() {
            return None;
        }
        h.insert("text".into(), json!(t));
    }
    Some(Value::Object(h))
}

/// An `addr` (AD) as Address.
pub(crate) fn address(n: N<'_>) -> Option<Value> {
    if is_null(n) {
        return None;
    }
    let mut a = Map::new();
    if let Some(u) = n.attribute("use") {
        let u = match u.split_whitespace().next().unwrap_or("") {
            "HP" | "H" => "home",
            "WP" | "DIR" | "PUB" => "work",
            "TMP" => "temp",
            "OLD" | "BAD" => "old",
            _ => "",
        };
        if !u.is_empty() {
            a.insert("use".into(), json!(u));
        }
    }
    let lines: Vec<Value> = children(n, "streetAddressLine")
        .map(dom::text)
        .filter(|t| !t.is_empty())
        .map(Value::String)
        .collect();
    if !lines.is_empty() {
        a.insert("line".into(), Value::Array(lines));
    }
    for (el, key) in [
        ("city", "city"),
        ("state", "state"),
        ("postalCode", "postalCode"),
        ("country", "country"),
    ] {
        if let Some(t) = child(n, el).map(dom::text).filter(|t| !t.is_empty()) {
            a.insert(key.into(), json!(t));
        }
    }
    (a.len() > usize::from(a.contains_key("use"))).then_some(Value::Object(a))
}

/// A `telecom` (TEL) as ContactPoint.
pub(crate) fn contact_point(n: N<'_>) -> Option<Value> {
    let v = n.attribute("value").filter(|_| !is_null(n))?.trim();
    let (system, value) = if let Some(x) = v.strip_prefix("tel:") {
        ("phone", x)
    } else if let Some(x) = v.strip_prefix("mailto:") {
        ("email", x)
    } else if let Some(x) = v.strip_prefix("fax:") {
        ("fax", x)
    } else if v.starts_with("http") {
        ("url", v)
    } else {
        ("other", v)
    };
    if value.is_empty() {
        return None;
    }
    let mut c = json!({ "system": system, "value": value });
    let u = match n.attribute("use").and_then(|u| u.split_whitespace().next()) {
        Some("HP" | "H" | "HV") => "home",
        Some("WP" | "DIR" | "PUB") => "work",
        Some("MC" | "PG") => "mobile",
        Some("TMP") => "temp",
        _ => "",
    };
    if !u.is_empty() {
        c["use"] = json!(u);
    }
    Some(c)
}

/// Patient from `recordTarget/patientRole` (US Realm Header, 2.16.840.1.113883.10.20.22.1.1;
/// C-CDA on FHIR "CDA recordTarget → FHIR Patient"). Race and ethnicity are not mapped.
pub(crate) fn patient(role: N<'_>) -> Result<Value, CcdaError> {
    let mut p = json!({ "resourceType": "Patient" });
    let idents: Vec<Value> = ids(role)
        .into_iter()
        .map(|(s, v)| json!({ "system": s, "value": v }))
        .collect();
    if !idents.is_empty() {
        p["identifier"] = Value::Array(idents);
    }
    let pat = child(role, "patient");
    if let Some(pat) = pat {
        let names: Vec<Value> = children(pat, "name").filter_map(human_name).collect();
        if !names.is_empty() {
            p["name"] = Value::Array(names);
        }
    }
    let tel: Vec<Value> = children(role, "telecom")
        .filter_map(contact_point)
        .collect();
    if !tel.is_empty() {
        p["telecom"] = Value::Array(tel);
    }
    if let Some(pat) = pat {
        if let Some(g) = child(pat, "administrativeGenderCode").and_then(|g| g.attribute("code")) {
            let g = match g {
                "M" => "male",
                "F" => "female",
                "UN" => "other",
                _ => "unknown",
            };
            p["gender"] = json!(g);
        }
        if let Some(b) = child(pat, "birthTime") {
            if let Some(v) = b.attribute("value").filter(|v| !v.is_empty()) {
                let d = time::to_fhir_date(v).ok_or_else(|| {
                    CcdaError::invalid(dom::location(b), "@value is not an HL7 TS")
                })?;
                p["birthDate"] = json!(d);
            }
        }
    }
    let addr: Vec<Value> = children(role, "addr").filter_map(address).collect();
    if !addr.is_empty() {
        p["address"] = Value::Array(addr);
    }
    Ok(p)
}

/// The name of a person or organization in an assignedEntity/assignedAuthor.
fn entity_display(e: N<'_>) -> Option<String> {
    let n = at(e, &["assignedPerson", "name"])
        .or_else(|| at(e, &["representedOrganization", "name"]))?;
    let t = dom::text(n);
    (!t.is_empty()).then_some(t)
}

/// CareTeam from `documentationOf/serviceEvent/performer` (US Realm Header; C-CDA on FHIR
/// keeps performers as practitioners: here they are logical references, identifier and
/// name, since the practitioner directory is not the document's to write).
pub(crate) fn care_team(root: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<(), CcdaError> {
    let mut members = Vec::new();
    let mut when = None;
    for doc_of in children(root, "documentationOf") {
        let Some(ev) = child(doc_of, "serviceEvent") else {
            continue;
        };
        if when.is_none() {
            when = values::when(child(ev, "effectiveTime"))?;
        }
        for perf in children(ev, "performer") {
            let Some(e) = child(perf, "assignedEntity") else {
                continue;
            };
            let mut member = Map::new();
            if let Some((s, v)) = ids(e).into_iter().next() {
                member.insert("identifier".into(), json!({ "system": s, "value": v }));
            }
            if let Some(d) = entity_display(e) {
                member.insert("display".into(), json!(d));
            }
            if member.is_empty() {
                continue;
            }
            let mut part = json!({ "member": Value::Object(member) });
            if let Some(role) = child(e, "code").and_then(|c| values::concept(c, cx.refs)) {
                part["role"] = json!([role]);
            }
            members.push(part);
        }
    }
    if members.is_empty() {
        return Ok(());
    }
    let mut r = json!({ "resourceType": "CareTeam", "status": "active",
        "subject": cx.subject(), "participant": members });
    if let Some(o) = cx.org_ref() {
        r["managingOrganization"] = json!([o]);
    }
    let start = when.as_ref().and_then(When::start);
    if let Some(w) = &when {
        r["period"] = w.period();
    }
    // The same team over the same period is the same fact, whichever document names it.
    let mut who: Vec<String> = members.iter().map(|m| m["member"].to_string()).collect();
    who.sort();
    let fact = Fact {
        kind: "CareTeam".into(),
        code: Some(("members".to_string(), who.join(","))),
        date: start,
    };
    cx.add(r, Vec::new(), fact);
    Ok(())
}

/// Encounter from `componentOf/encompassingEncounter` (US Realm Header; C-CDA on FHIR
/// "encompassingEncounter → Encounter").
pub(crate) fn encompassing_encounter(root: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<(), CcdaError> {
    let Some(enc) = at(root, &["componentOf", "encompassingEncounter"]) else {
        return Ok(());
    };
    super::procedures::encounter(enc, cx).map(|_| ())
}
