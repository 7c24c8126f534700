//! Medications Section (entries required) 2.16.840.1.113883.10.20.22.2.1.1 →
//! MedicationStatement, and Immunizations Section (entries required)
//! 2.16.840.1.113883.10.20.22.2.2.1 → Immunization. Both read a substanceAdministration
//! whose consumable/manufacturedProduct/manufacturedMaterial/code names what was given.

use serde_json::json;

use super::bundle::Fact;
use super::dom::{at, child, N};
use super::values::{self, ids, When};
use super::{entries, Ctx};
use crate::error::CcdaError;

const MED_ACTIVITY: &[&str] = &["2.16.840.1.113883.10.20.22.4.16"];
const IMMUNIZATION_ACTIVITY: &[&str] = &["2.16.840.1.113883.10.20.22.4.52"];

fn material(sa: N<'_>) -> Option<N<'_>> {
    at(
        sa,
        &["consumable", "manufacturedProduct", "manufacturedMaterial"],
    )
}

/// Each Medication Activity (2.16.840.1.113883.10.20.22.4.16) becomes a
/// MedicationStatement (C-CDA on FHIR "CF-medications" maps it to MedicationRequest for
/// orders; a summary document reports what the patient takes, which is a statement):
/// statusCode → status (negationInd → not-taken, moodCode INT without status → intended),
/// the IVL_TS effectiveTime → effective[x], doseQuantity and routeCode → dosage.
pub(crate) fn medications(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<usize, CcdaError> {
    let mut n = 0;
    for sa in entries(s, MED_ACTIVITY) {
        let med = material(sa)
            .and_then(|m| child(m, "code"))
            .and_then(|c| values::concept(c, cx.refs));
        let status_code = child(sa, "statusCode").and_then(|c| c.attribute("code"));
        let status = if sa.attribute("negationInd") == Some("true") {
            "not-taken"
        } else {
            match status_code {
                Some("active") => "active",
                Some("completed") => "completed",
                Some("aborted" | "cancelled") => "stopped",
                Some("suspended" | "held") => "on-hold",
                Some("nullified") => "entered-in-error",
                Some("new") => "intended",
                _ if sa.attribute("moodCode") == Some("INT") => "intended",
                _ => "unknown",
            }
        };
        let mut r = json!({
            "resourceType": "MedicationStatement",
            "status": status,
            "medicationCodeableConcept": med.clone().unwrap_or_else(values::unknown),
            "subject": cx.subject(),
        });
        let when = values::effective(sa)?;
        if let Some(w) = &when {
            w.put(&mut r, "effective");
        }
        if let Some(o) = cx.org_ref() {
            r["informationSource"] = o;
        }
        let mut dosage = serde_json::Map::new();
        if let Some(t) = child(sa, "text").and_then(|t| cx.refs.original_text(t)) {
            dosage.insert("text".into(), json!(t));
        }
        if let Some(route) = child(sa, "routeCode").and_then(|c| values::concept(c, cx.refs)) {
            dosage.insert("route".into(), route);
        }
        if let Some(q) = child(sa, "doseQuantity")
            .map(values::quantity)
            .transpose()?
            .flatten()
        {
            dosage.insert("doseAndRate".into(), json!([{ "doseQuantity": q }]));
        }
        if !dosage.is_empty() {
            r["dosage"] = json!([dosage]);
        }
        let fact = Fact {
            kind: "MedicationStatement".into(),
            code: med.as_ref().and_then(values::first_code),
            date: when.as_ref().and_then(When::start),
        };
        cx.add(r, ids(sa), fact);
        n += 1;
    }
    Ok(n)
}

/// Each Immunization Activity (2.16.840.1.113883.10.20.22.4.52) becomes an Immunization
/// (C-CDA on FHIR "CF-immunizations"): negationInd → status not-done (else completed),
/// manufacturedMaterial/code (CVX) → vaccineCode, effectiveTime → occurrenceDateTime,
/// lotNumberText, doseQuantity, routeCode. With no date the occurrence is the string
/// "unknown": FHIR requires occurrence[x] and the document did not say.
pub(crate) fn immunizations(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<usize, CcdaError> {
    let mut n = 0;
    for sa in entries(s, IMMUNIZATION_ACTIVITY) {
        let mat = material(sa);
        let vaccine = mat
            .and_then(|m| child(m, "code"))
            .and_then(|c| values::concept(c, cx.refs));
        let negated = sa.attribute("negationInd") == Some("true");
        let status = match (
            negated,
            child(sa, "statusCode").and_then(|c| c.attribute("code")),
        ) {
            (true, _) => "not-done",
            (_, Some("nullified")) => "entered-in-error",
            _ => "completed",
        };
        let mut r = json!({
            "resourceType": "Immunization",
            "status": status,
            "vaccineCode": vaccine.clone().unwrap_or_else(values::unknown),
            "patient": cx.subject(),
        });
        let when = values::effective(sa)?;
        match when.as_ref().and_then(When::start) {
            Some(t) => r["occurrenceDateTime"] = json!(t),
            None => r["occurrenceString"] = json!("unknown"),
        }
        if let Some(lot) = mat
            .and_then(|m| child(m, "lotNumberText"))
            .map(super::dom::text)
        {
            if !lot.is_empty() {
                r["lotNumber"] = json!(lot);
            }
        }
        if let Some(route) = child(sa, "routeCode").and_then(|c| values::concept(c, cx.refs)) {
            r["route"] = route;
        }
        if let Some(q) = child(sa, "doseQuantity")
            .map(values::quantity)
            .transpose()?
            .flatten()
        {
            r["doseQuantity"] = q;
        }
        if let Some(o) = cx.org_ref() {
            r["performer"] = json!([{ "actor": o }]);
        }
        let fact = Fact {
            kind: "Immunization".into(),
            code: vaccine.as_ref().and_then(values::first_code),
            date: when.as_ref().and_then(When::start),
        };
        cx.add(r, ids(sa), fact);
        n += 1;
    }
    Ok(n)
}
