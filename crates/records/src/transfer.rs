//! Record transfer between FHIR servers: a patient's record (or part of it) leaves as one
//! transaction Bundle, and arrives filed on the patient the receiver already knows.
//!
//! **Sending** ([`Records::transfer_bundle`]): what `$everything` gives the sender, plus
//! the directory resources it references (organizations, practitioners, locations,
//! medications), each as a conditional create keyed on an identifier — its own for a
//! directory resource that has one (an NPI), otherwise the resource's address at the
//! source (`{base}/{Type}` and its id), added to it — so a resend creates nothing new.
//! References between them become the entries' `urn:uuid:` full URLs. The sender's own
//! Provenance and audit records stay home; the transfer is in the sender's audit trail.
//!
//! **Receiving** ([`Records::receive_record`]): stored like an inbound message or
//! document (`crate::exchange`), as the receiving caller, with a Provenance naming the
//! caller's organization (the sender, as the receiver knows it) and the transfer. The
//! patient is found by identifier among all patients; failing that, by demographic
//! matching when exactly one patient is a `certain` match; failing that, registered with
//! the sending organization. Never a duplicate of a patient the record can tell is them.

use std::collections::{BTreeSet, HashMap};

use oxehr_auth::Caller;
use oxehr_fhir::{Definitions, IssueCode, ResourceId, ResourceType};
use serde_json::{json, Value};

use crate::exchange::{PatientUpdate, Source};
use crate::{audit, EntryOutcome, Records, RecordsError};

/// Types outside the Patient compartment a record's resources reference and a transfer
/// carries along, so that the references resolve at the receiver.
const DIRECTORY: [&str; 5] = [
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "Medication",
];

/// Types a transfer leaves at home: the sender's own accounts of its work.
const NOT_SENT: [&str; 2] = ["Provenance", "AuditEvent"];

impl Records {
    /// `patient`'s record as `who` may see it (only `types`, when given, and the
    /// Patient), as a transaction Bundle another server can store; see the module doc.
    /// `source` is this server's base URL; `destination` is recorded in the audit trail.
    pub fn transfer_bundle(
        &self,
        who: &Caller,
        patient: &ResourceId,
        types: &[ResourceType],
        source: &str,
        destination: &str,
    ) -> Result<Value, RecordsError> {
        let (record, cut) = self.patient_record(who, patient, self.config.max_bundle_entries)?;
        if cut {
            return Err(RecordsError::invalid(
                IssueCode::TooCostly,
                format!(
                    "the record has more than {} resources, more than one transfer carries; \
                     send it by type (_type)",
                    self.config.max_bundle_entries
                ),
            ));
        }
        let subject = format!("Patient/{patient}");
        let wanted = |t: &str| types.is_empty() || types.iter().any(|x| x.as_str() == t);
        let mut resources: Vec<Value> = record
            .into_iter()
            .filter(|r| {
                let t = r["resourceType"].as_str().unwrap_or("");
                let key = format!("{t}/{}", r["id"].as_str().unwrap_or(""));
                if t == "Patient" {
                    key == subject
                } else {
                    !NOT_SENT.contains(&t) && wanted(t)
                }
            })
            .collect();
        if !resources.iter().any(|r| r["resourceType"] == "Patient") {
            // The compartment search gives the Patient to whoever may read the record.
            return Err(RecordsError::NotFound(subject));
        }
        // The Patient first: the receiver resolves the first Patient entry.
        resources.sort_by_key(|r| r["resourceType"] != "Patient");
        // The directory resources the record references, once each.
        let mut directory: BTreeSet<(String, String)> = BTreeSet::new();
        for r in &resources {
            collect_references(r, &mut directory);
        }
        for (t, id) in directory {
            let (Some(rt), Some(rid)) = (ResourceType::parse(&t), ResourceId::parse(&id)) else {
                continue;
            };
            match self.read(who, &rt, &rid) {
                Ok(found) => resources.push(crate::interactions::parse_body(&found)?),
                Err(
                    RecordsError::NotFound(_) | RecordsError::Gone(_) | RecordsError::Forbidden(_),
                ) => {}
                Err(e) => return Err(e),
            }
        }
        let full_urls: HashMap<String, String> = resources
            .iter()
            .map(|r| {
                (
                    format!(
                        "{}/{}",
                        r["resourceType"].as_str().unwrap_or(""),
                        r["id"].as_str().unwrap_or("")
                    ),
                    format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                )
            })
            .collect();
        let mut entries = Vec::with_capacity(resources.len());
        let mut shapes: HashMap<String, IdentifierShape> = HashMap::new();
        for mut r in resources {
            let t = r["resourceType"].as_str().unwrap_or("").to_owned();
            let id = r["id"].as_str().unwrap_or("").to_owned();
            let full_url = full_urls[&format!("{t}/{id}")].clone();
            let shape = *shapes
                .entry(t.clone())
                .or_insert_with(|| IdentifierShape::of(&t));
            let key = transfer_key(&mut r, &t, &id, source, shape);
            strip_local(&mut r);
            point_at(&mut r, &full_urls);
            let mut request = json!({ "method": "POST", "url": t });
            if let Some((system, value)) = key {
                request["ifNoneExist"] = json!(format!(
                    "identifier={}|{}",
                    oxehr_fhir::url::encode_component(&oxehr_search::escape_value(&system)),
                    oxehr_fhir::url::encode_component(&oxehr_search::escape_value(&value))
                ));
            }
            entries.push(json!({ "fullUrl": full_url, "resource": r, "request": request }));
        }
        let transfer_id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let mut rec = audit::record(
            who,
            "transfer",
            "success",
            Some(format!("{subject} to {destination}")),
            Some(patient.as_str().to_owned()),
        );
        rec.detail = Some(format!(
            "{} resources, transfer {transfer_id}",
            entries.len()
        ));
        self.auditor.record(vec![rec])?;
        Ok(json!({
            "resourceType": "Bundle",
            "type": "transaction",
            "identifier": { "system": "urn:ietf:rfc:3986", "value": transfer_id },
            "meta": { "source": source },
            "entry": entries,
        }))
    }

    /// Stores a transferred record (a transaction Bundle whose first Patient entry is
    /// the patient) as `who`, filed on the patient the record already has; see the
    /// module doc. Staff of an organization and system administrators receive.
    pub fn receive_record(
        &self,
        who: &Caller,
        bundle: Value,
    ) -> Result<Vec<EntryOutcome>, RecordsError> {
        crate::exchange::only_staff_or_admin(
            who,
            "records are received by a practice's staff or its systems",
        )?;
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle")
            || bundle.get("type").and_then(Value::as_str) != Some("transaction")
        {
            return Err(RecordsError::invalid(
                IssueCode::Invalid,
                "a transferred record is a transaction Bundle",
            ));
        }
        let has_patient = bundle["entry"].as_array().is_some_and(|es| {
            es.iter()
                .any(|e| e["resource"]["resourceType"] == "Patient")
        });
        if !has_patient {
            return Err(RecordsError::invalid(
                IssueCode::Required,
                "a transferred record names its patient (a Patient entry)",
            ));
        }
        let organization = who.organization.clone().ok_or_else(|| {
            RecordsError::invalid(
                IssueCode::Required,
                "the sender must be an account of an organization",
            )
        })?;
        let (system, value) = match bundle["identifier"]["value"].as_str() {
            Some(v) => (
                bundle["identifier"]["system"]
                    .as_str()
                    .unwrap_or("urn:ietf:rfc:3986")
                    .to_owned(),
                v.to_owned(),
            ),
            None => (
                "urn:ietf:rfc:3986".to_owned(),
                format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            ),
        };
        let source = Source {
            organization,
            system,
            value,
            title: match bundle["meta"]["source"].as_str() {
                Some(s) => format!("a record transfer from {s}"),
                None => "a record transfer".to_owned(),
            },
        };
        let bundle = self.with_provenance(
            bundle,
            PatientUpdate::Match,
            who.organization.as_deref(),
            &source,
        )?;
        let outcomes = self.transaction_with(who, bundle, std::sync::Arc::new(|_| Ok(())))?;
        self.note_duplicates(&outcomes);
        Ok(outcomes)
    }
}

/// Adds each `Type/id` reference to a directory type in `v` to `out`.
fn collect_references(v: &Value, out: &mut BTreeSet<(String, String)>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if let (true, Some(s)) = (k == "reference", x.as_str()) {
                    if let Some((t, id)) = s.split_once('/') {
                        if DIRECTORY.contains(&t) && !id.contains('/') {
                            out.insert((t.to_owned(), id.to_owned()));
                        }
                    }
                } else {
                    collect_references(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_references(x, out)),
        _ => {}
    }
}

/// Whether a type has an `identifier` element the search can match on (and whether it
/// repeats): worked out once per type from the definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdentifierShape {
    None,
    Searchable { is_array: bool },
}

impl IdentifierShape {
    fn of(t: &str) -> IdentifierShape {
        let defs = Definitions::r4();
        let element = defs.element_at(&format!("{t}.identifier"));
        let searchable = defs
            .search_params()
            .iter()
            .any(|p| p.code == "identifier" && p.base.iter().any(|b| b == t));
        match element {
            Some(e) if searchable => IdentifierShape::Searchable {
                is_array: e.is_array(),
            },
            _ => IdentifierShape::None,
        }
    }
}

/// The identifier a transferred resource is created on (system, value), added to it
/// when it is its address at the source; `None` for a type without identifiers.
fn transfer_key(
    r: &mut Value,
    t: &str,
    id: &str,
    source: &str,
    shape: IdentifierShape,
) -> Option<(String, String)> {
    let IdentifierShape::Searchable { is_array } = shape else {
        return None;
    };
    if DIRECTORY.contains(&t) || t == "Patient" {
        // A directory resource's (or the patient's) own identifier finds the receiver's
        // copy.
        let own = r["identifier"].as_array().and_then(|ids| {
            ids.iter().find_map(|i| {
                Some((
                    i["system"].as_str()?.to_owned(),
                    i["value"].as_str()?.to_owned(),
                ))
            })
        });
        if own.is_some() {
            return own;
        }
    }
    let key = (
        format!("{}/{t}", source.trim_end_matches('/')),
        id.to_owned(),
    );
    let ident = json!({ "system": key.0, "value": key.1 });
    if is_array {
        match r.get_mut("identifier").and_then(Value::as_array_mut) {
            Some(ids) => ids.push(ident),
            None => r["identifier"] = json!([ident]),
        }
    } else if r.get("identifier").is_none() {
        r["identifier"] = ident;
    } else {
        return None;
    }
    Some(key)
}

/// The resource without what belongs to this server: its id, version and source.
/// Security labels and tags travel with it.
fn strip_local(r: &mut Value) {
    if let Some(o) = r.as_object_mut() {
        o.remove("id");
    }
    if let Some(meta) = r.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        meta.remove("source");
        if meta.is_empty() {
            if let Some(o) = r.as_object_mut() {
                o.remove("meta");
            }
        }
    }
}

/// Points each reference to a sent resource at its entry's full URL.
fn point_at(v: &mut Value, full_urls: &HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "reference" {
                    if let Some(u) = x.as_str().and_then(|s| full_urls.get(s)) {
                        *x = json!(u);
                    }
                } else {
                    point_at(x, full_urls);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| point_at(x, full_urls)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_keyed_on_its_address_at_the_source() {
        let mut obs = json!({ "resourceType": "Observation", "id": "o1", "status": "final" });
        let key = transfer_key(
            &mut obs,
            "Observation",
            "o1",
            "https://a.example/fhir/",
            IdentifierShape::of("Observation"),
        );
        assert_eq!(
            key,
            Some(("https://a.example/fhir/Observation".into(), "o1".into()))
        );
        assert_eq!(obs["identifier"][0]["value"], "o1");
        // A directory resource with an identifier keeps it as its key.
        let mut org = json!({ "resourceType": "Organization",
            "identifier": [{ "system": "http://hl7.org/fhir/sid/us-npi", "value": "123" }] });
        assert_eq!(
            transfer_key(
                &mut org,
                "Organization",
                "x",
                "https://a.example/fhir",
                IdentifierShape::of("Organization")
            ),
            Some(("http://hl7.org/fhir/sid/us-npi".into(), "123".into()))
        );
        assert_eq!(org["identifier"].as_array().map(Vec::len), Some(1));
        // Provenance has no identifier.
        let mut p = json!({ "resourceType": "Provenance" });
        assert_eq!(IdentifierShape::of("Provenance"), IdentifierShape::None);
        assert_eq!(
            transfer_key(
                &mut p,
                "Provenance",
                "p",
                "https://a",
                IdentifierShape::None
            ),
            None
        );
    }

    #[test]
    fn references_point_at_entries() {
        let urls = HashMap::from([("Patient/p".to_owned(), "urn:uuid:1".to_owned())]);
        let mut v = json!({ "subject": { "reference": "Patient/p" },
            "performer": [{ "reference": "Practitioner/q" }] });
        point_at(&mut v, &urls);
        assert_eq!(v["subject"]["reference"], "urn:uuid:1");
        assert_eq!(v["performer"][0]["reference"], "Practitioner/q");
    }
}
