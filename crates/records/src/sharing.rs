//! Sharing: which organizations can see a patient's record and why, and the patient's
//! choice for each (a Consent), effective on the next request. The rule itself is the
//! access policy's (`oxehr_store::access`, kept in the `care` table): an organization
//! sees the record when it has a care relationship with the patient or an active Consent
//! of the patient permits it, and no active Consent of the patient denies it. This
//! module says it in words and writes the choices.
//!
//! One choice per organization: setting one withdraws (status `inactive`) every active
//! Consent of the patient that names the organization, and writes the new one, in one
//! transaction; "back to the default" only withdraws.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use oxehr_auth::Caller;
use oxehr_fhir::{ResourceId, ResourceType};

use crate::interactions::parse_body;
use crate::requests::reference_id;
use crate::{format_instant, now_micros, query, Records, RecordsError};

/// The most of each kind of record read to work out the reasons.
const MAX_READ: usize = 1000;

/// One organization on the sharing page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharingRow {
    /// The Organization's id.
    pub organization: String,
    pub name: String,
    /// Why it has a care relationship, in words ("12 visits, the last on 2024-03-01").
    pub reasons: Vec<String>,
    /// The patient's choice: `Some(true)` allowed, `Some(false)` denied, `None` none.
    pub choice: Option<bool>,
    /// Whether it can see the record now.
    pub sees: bool,
}

fn rtype(t: &str) -> Result<ResourceType, RecordsError> {
    ResourceType::parse(t).ok_or_else(|| RecordsError::Internal(format!("type {t}")))
}

/// A Consent of `patient` permitting (`allow`) or denying `org` access to the record.
pub fn consent(patient: &str, org: &str, allow: bool, now: &str) -> Value {
    json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                "code": "patient-privacy", "display": "Privacy Consent" }] },
        "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0",
                                    "display": "Patient Consent" }] }],
        "patient": { "reference": format!("Patient/{patient}") },
        "dateTime": now,
        "policyRule": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                     "code": if allow { "OPTIN" } else { "OPTOUT" } }] },
        "provision": {
            "type": if allow { "permit" } else { "deny" },
            "actor": [{
                "role": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                       "code": "IRCP", "display": "information recipient" }] },
                "reference": { "reference": format!("Organization/{org}") }
            }]
        }
    })
}

/// The organizations a Consent's provisions permit and deny (top level and one level
/// down, as the access rule reads them).
fn provisions(c: &Value) -> (Vec<String>, Vec<String>) {
    let (mut permit, mut deny) = (Vec::new(), Vec::new());
    let top = &c["provision"];
    let nested = top["provision"].as_array().cloned().unwrap_or_default();
    for p in std::iter::once(top).chain(nested.iter()) {
        let orgs = p["actor"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| reference_id(&x["reference"], "Organization"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        match p["type"].as_str() {
            Some("permit") => permit.extend(orgs),
            Some("deny") => deny.extend(orgs),
            _ => {}
        }
    }
    (permit, deny)
}

impl Records {
    fn bodies(
        &self,
        who: &Caller,
        t: &str,
        pairs: &[(&str, String)],
    ) -> Result<Vec<Value>, RecordsError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .chain([("_count".to_owned(), MAX_READ.to_string())])
            .collect();
        let q = query::parse(&[t.to_owned()], &pairs, false, None)?;
        self.search(who, &q, MAX_READ)?
            .matches
            .iter()
            .map(parse_body)
            .collect()
    }

    /// The organizations that can see `patient`'s record or have a reason to, with why,
    /// the patient's choice and whether they see it now; by name. Read as `who`.
    pub fn sharing(&self, who: &Caller, patient: &str) -> Result<Vec<SharingRow>, RecordsError> {
        let pid = ResourceId::parse(patient)
            .ok_or_else(|| RecordsError::NotFound(format!("Patient/{patient}")))?;
        let p = parse_body(&self.read(who, &rtype("Patient")?, &pid)?)?;
        let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(o) = reference_id(&p["managingOrganization"], "Organization") {
            reasons
                .entry(o.to_owned())
                .or_default()
                .push("Keeps your record (your registered practice)".to_owned());
        }
        // Visits, by organization: how many and the last.
        let mut visits: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for e in self.bodies(who, "Encounter", &[("patient", patient.to_owned())])? {
            if let Some(o) = reference_id(&e["serviceProvider"], "Organization") {
                let v = visits.entry(o.to_owned()).or_insert((0, String::new()));
                v.0 += 1;
                let start = e["period"]["start"].as_str().unwrap_or_default();
                if start > v.1.as_str() {
                    v.1 = start.chars().take(10).collect();
                }
            }
        }
        for (o, (n, last)) in visits {
            let text = match (n, last.is_empty()) {
                (1, true) => "1 visit".to_owned(),
                (1, false) => format!("1 visit, on {last}"),
                (n, true) => format!("{n} visits"),
                (n, false) => format!("{n} visits, the last on {last}"),
            };
            reasons.entry(o).or_default().push(text);
        }
        for e in self.bodies(who, "EpisodeOfCare", &[("patient", patient.to_owned())])? {
            if let Some(o) = reference_id(&e["managingOrganization"], "Organization") {
                reasons
                    .entry(o.to_owned())
                    .or_default()
                    .push("An episode of care".to_owned());
            }
        }
        for s in self.bodies(who, "ServiceRequest", &[("patient", patient.to_owned())])? {
            let mut orgs: BTreeSet<String> = BTreeSet::new();
            for r in s["performer"].as_array().into_iter().flatten() {
                if let Some(o) = reference_id(r, "Organization") {
                    orgs.insert(o.to_owned());
                }
            }
            if let Some(o) = reference_id(&s["requester"], "Organization") {
                orgs.insert(o.to_owned());
            }
            for o in orgs {
                reasons
                    .entry(o)
                    .or_default()
                    .push("A referral or order".to_owned());
            }
        }
        for r in reasons.values_mut() {
            r.dedup();
        }
        // The patient's active choices (deny wins, as in the access rule).
        let mut choices: BTreeMap<String, bool> = BTreeMap::new();
        for c in self.bodies(
            who,
            "Consent",
            &[
                ("patient", patient.to_owned()),
                ("status", "active".to_owned()),
            ],
        )? {
            let (permit, deny) = provisions(&c);
            for o in permit {
                choices.entry(o).or_insert(true);
            }
            for o in deny {
                choices.insert(o, false);
            }
        }
        let sees: BTreeSet<String> = {
            let mut reader = self.reader()?;
            oxehr_store::care::orgs_caring_for(&mut *reader, patient, MAX_READ)?
                .into_iter()
                .collect()
        };
        let orgs: BTreeSet<String> = reasons
            .keys()
            .chain(choices.keys())
            .chain(sees.iter())
            .cloned()
            .collect();
        let org_type = rtype("Organization")?;
        let mut out = Vec::new();
        for o in orgs {
            let name = match ResourceId::parse(&o).map(|id| self.read(who, &org_type, &id)) {
                Some(Ok(r)) => parse_body(&r)?["name"]
                    .as_str()
                    .unwrap_or("(an organization with no name)")
                    .to_owned(),
                _ => "(an organization no longer on record)".to_owned(),
            };
            out.push(SharingRow {
                reasons: reasons.remove(&o).unwrap_or_default(),
                choice: choices.get(&o).copied(),
                sees: sees.contains(&o),
                name,
                organization: o,
            });
        }
        out.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then(a.organization.cmp(&b.organization))
        });
        Ok(out)
    }

    /// Sets the patient's choice for organization `org`: allow (`Some(true)`), deny
    /// (`Some(false)`) or none (`None`: back to the default, care relationships). Written
    /// as `who` (the patient, a proxy, or staff recording it) in one transaction; the
    /// next request of the organization's staff follows it.
    pub fn set_sharing(
        &self,
        who: &Caller,
        patient: &str,
        org: &str,
        allow: Option<bool>,
    ) -> Result<(), RecordsError> {
        let oid = ResourceId::parse(org)
            .ok_or_else(|| RecordsError::NotFound(format!("Organization/{org}")))?;
        // The organization must exist (a typo must not become a Consent).
        self.read(who, &rtype("Organization")?, &oid)?;
        let mut entries = Vec::new();
        for c in self.bodies(
            who,
            "Consent",
            &[
                ("patient", patient.to_owned()),
                ("status", "active".to_owned()),
            ],
        )? {
            let (permit, deny) = provisions(&c);
            if !permit.iter().chain(deny.iter()).any(|o| o == org) {
                continue;
            }
            let Some(id) = c["id"].as_str().map(str::to_owned) else {
                continue;
            };
            let version = c["meta"]["versionId"].as_str().unwrap_or("1").to_owned();
            let mut withdrawn = c.clone();
            withdrawn["status"] = json!("inactive");
            entries.push(json!({
                "resource": withdrawn,
                "request": { "method": "PUT", "url": format!("Consent/{id}"),
                             "ifMatch": format!("W/\"{version}\"") }
            }));
        }
        if let Some(allow) = allow {
            entries.push(json!({
                "resource": consent(patient, org, allow, &format_instant(now_micros())),
                "request": { "method": "POST", "url": "Consent" }
            }));
        }
        if entries.is_empty() {
            return Ok(());
        }
        self.bundle(
            who,
            json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries }),
        )?;
        Ok(())
    }
}
