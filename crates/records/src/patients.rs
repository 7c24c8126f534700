//! One person, one record: finding the patients a description matches (`Patient/$match`)
//! and merging two records of one person (and undoing it).
//!
//! **Matching** scores candidates with `oxehr-matching`; the candidates come from a few
//! ordinary searches (its blocking keys) run as the caller, so a patient the caller may
//! not see is never a candidate, and the patients returned are in the audit trail as any
//! search's are.
//!
//! **Merge** follows FHIR R5's `$merge`: every resource of the source patient's record
//! is rewritten to reference the target, the source is marked inactive with a
//! `replaced-by` link to the target and the target gets a `replaces` link, all in one
//! transaction as the caller (whose access must reach every resource it rewrites), with a
//! Provenance (ISO 21089 lifecycle event `merge`) listing what was moved and naming the
//! source's version before the merge. Search, compartments, `$everything` and the chart
//! follow because the references now name the target. **Unmerge** reads that Provenance
//! and undoes it: the moved resources point at the source again, the source is restored
//! to its version before the merge and the target loses the link, with a Provenance
//! `unmerge`. Both are audited as writes, resource by resource.

use std::collections::HashMap;
use std::sync::Arc;

use oxehr_auth::Caller;
use oxehr_fhir::{IssueCode, ResourceId, ResourceType, VersionId};
use oxehr_matching::{Demographics, Grade, Match};
use serde_json::{json, Value};

use crate::{EntryOutcome, Records, RecordsError, StoredResource};

/// The most candidates one blocking search reads.
const CANDIDATES_PER_KEY: usize = 200;

/// The code system of the Provenance activities `merge` and `unmerge`.
pub const LIFECYCLE: &str = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle";

/// A patient a description matches.
#[derive(Debug, Clone)]
pub struct PatientMatch {
    pub patient: StoredResource,
    pub result: Match,
}

impl Records {
    /// `Patient/$match`: the patients `who` may see that `query` (a Patient resource)
    /// may describe, best first: at most `count`, graded `possible` or better (only
    /// `certain` ones with `only_certain`).
    pub fn match_patients(
        &self,
        who: &Caller,
        query: &Value,
        count: usize,
        only_certain: bool,
    ) -> Result<Vec<PatientMatch>, RecordsError> {
        let res = self.match_inner(who, query, count, only_certain);
        self.audited(who, "search", "Patient/$match".to_owned(), res)
    }

    fn match_inner(
        &self,
        who: &Caller,
        query: &Value,
        count: usize,
        only_certain: bool,
    ) -> Result<(Vec<PatientMatch>, Vec<String>), RecordsError> {
        if query.get("resourceType").and_then(Value::as_str) != Some("Patient") {
            return Err(RecordsError::invalid(
                IssueCode::Invalid,
                "$match needs a Patient resource",
            ));
        }
        let keys = oxehr_matching::candidate_queries(query);
        if keys.is_empty() {
            return Err(RecordsError::invalid(
                IssueCode::Required,
                "the Patient has nothing to match on: give an identifier, a name, a birth \
                 date, a phone or an email",
            ));
        }
        let wanted = Demographics::of(query);
        let mut seen: HashMap<String, PatientMatch> = HashMap::new();
        for (name, value) in keys {
            let q = crate::query::parse(&["Patient".to_owned()], &[(name, value)], false, None)?;
            for candidate in self.find(who, &q, CANDIDATES_PER_KEY)? {
                let key = candidate.id.as_str().to_owned();
                if seen.contains_key(&key) {
                    continue;
                }
                let Ok(body) = crate::interactions::parse_body(&candidate) else {
                    continue;
                };
                let result = oxehr_matching::compare_prepared(&wanted, &Demographics::of(&body));
                let keep = if only_certain {
                    result.grade == Grade::Certain
                } else {
                    result.grade != Grade::CertainlyNot
                };
                if keep {
                    seen.insert(
                        key,
                        PatientMatch {
                            patient: candidate,
                            result,
                        },
                    );
                }
            }
        }
        let mut out: Vec<PatientMatch> = seen.into_values().collect();
        out.sort_by(|a, b| {
            b.result
                .score
                .total_cmp(&a.result.score)
                .then_with(|| a.patient.id.as_str().cmp(b.patient.id.as_str()))
        });
        out.truncate(count);
        let patients = out
            .iter()
            .map(|m| m.patient.id.as_str().to_owned())
            .collect();
        Ok((out, patients))
    }

    /// The one patient (a record merged away stands for its survivor) that `query`
    /// matches with grade `certain`, among all patients; `None` when none or several do.
    pub(crate) fn certain_match(
        &self,
        query: &Value,
    ) -> Result<Option<StoredResource>, RecordsError> {
        if oxehr_matching::candidate_queries(query).is_empty() {
            return Ok(None);
        }
        let (found, _) = self.match_inner(&Caller::server(), query, 3, true)?;
        let mut people: Vec<StoredResource> = Vec::new();
        for m in found {
            let p = self.survivor(m.patient)?;
            if !people.iter().any(|x| x.id == p.id) {
                people.push(p);
            }
        }
        Ok(if people.len() == 1 {
            people.pop()
        } else {
            None
        })
    }

    /// Merges `source` into `target` (both Patient ids), as `who`: see the module doc.
    /// Returns the outcomes of the one transaction (the Provenance last).
    pub fn merge_patients(
        &self,
        who: &Caller,
        source: &ResourceId,
        target: &ResourceId,
    ) -> Result<Vec<EntryOutcome>, RecordsError> {
        self.merge_with(who, source, target, Arc::new(|_| Ok(())))
    }

    /// [`Records::merge_patients`], committing `also` in the same transaction (the
    /// merge message's row).
    pub(crate) fn merge_with(
        &self,
        who: &Caller,
        source: &ResourceId,
        target: &ResourceId,
        also: crate::Also,
    ) -> Result<Vec<EntryOutcome>, RecordsError> {
        if source == target {
            return Err(invalid("a patient cannot be merged into itself"));
        }
        let patient_type = patient_type()?;
        // Both must be readable by the caller: a patient the caller may not see gives
        // the answer a read gives.
        let src = self.read(who, &patient_type, source)?;
        let tgt = self.read(who, &patient_type, target)?;
        let mut src_body = crate::interactions::parse_body(&src)?;
        let mut tgt_body = crate::interactions::parse_body(&tgt)?;
        if replaced_by(&src_body).is_some() {
            return Err(RecordsError::Conflict(format!(
                "Patient/{source} has already been merged into another record"
            )));
        }
        if replaced_by(&tgt_body).is_some() {
            return Err(RecordsError::Conflict(format!(
                "Patient/{target} has been merged into another record; merge into that one"
            )));
        }
        let from = format!("Patient/{source}");
        let to = format!("Patient/{target}");
        // Every resource of the source's record, as the server sees it: the caller's
        // write of each is checked by the policy, so one the caller may not write stops
        // the whole merge.
        let (record, cut) =
            self.patient_record(&Caller::server(), source, self.config.max_bundle_entries)?;
        if cut {
            return Err(RecordsError::invalid(
                IssueCode::TooCostly,
                format!(
                    "Patient/{source}'s record has more than {} resources, more than one \
                     merge moves",
                    self.config.max_bundle_entries
                ),
            ));
        }
        let mut entries = Vec::new();
        let mut moved = Vec::new();
        for mut r in record {
            let (Some(rt), Some(id)) = (r["resourceType"].as_str(), r["id"].as_str()) else {
                continue;
            };
            if rt == "Patient" && (id == source.as_str() || id == target.as_str()) {
                continue;
            }
            let reference = format!("{rt}/{id}");
            if rewrite_references(&mut r, &from, &to) {
                entries.push(put(&reference, &r));
                moved.push(json!({ "reference": reference }));
            }
        }
        let before = format!("{from}/_history/{}", src.version);
        src_body["active"] = json!(false);
        add_link(&mut src_body, &to, "replaced-by");
        add_link(&mut tgt_body, &from, "replaces");
        entries.push(put(&from, &src_body));
        entries.push(put(&to, &tgt_body));
        let mut targets = vec![json!({ "reference": to }), json!({ "reference": from })];
        targets.extend(moved);
        entries.push(provenance(
            who,
            "merge",
            "Merge Record Lifecycle Event",
            targets,
            &before,
        ));
        self.transaction_with(
            who,
            json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries }),
            also,
        )
    }

    /// Undoes the last merge of `source` (a Patient id, the record merged away), as
    /// `who`: see the module doc.
    pub fn unmerge_patient(
        &self,
        who: &Caller,
        source: &ResourceId,
    ) -> Result<Vec<EntryOutcome>, RecordsError> {
        let patient_type = patient_type()?;
        let src = self.read(who, &patient_type, source)?;
        let src_body = crate::interactions::parse_body(&src)?;
        let Some(to) = replaced_by(&src_body) else {
            return Err(RecordsError::Conflict(format!(
                "Patient/{source} has not been merged into another record"
            )));
        };
        let from = format!("Patient/{source}");
        let target = to
            .strip_prefix("Patient/")
            .and_then(ResourceId::parse)
            .ok_or_else(|| RecordsError::Internal("a replaced-by link is not a Patient".into()))?;
        let tgt = self.read(who, &patient_type, &target)?;
        let mut tgt_body = crate::interactions::parse_body(&tgt)?;
        let merge = self.last_merge(&from)?.ok_or_else(|| {
            RecordsError::Conflict(format!(
                "no record of how Patient/{source} was merged: it cannot be undone"
            ))
        })?;
        // The source as it was before the merge.
        let before = merge["entity"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["what"]["reference"].as_str())
            .find_map(|r| r.strip_prefix(&format!("{from}/_history/")))
            .and_then(VersionId::parse)
            .ok_or_else(|| {
                RecordsError::Internal("a merge Provenance without its source".into())
            })?;
        let old = self.vread(&Caller::server(), &patient_type, source, before)?;
        let mut restored = crate::interactions::parse_body(&old)?;
        // Written over the current (merged) version.
        restored["meta"]["versionId"] = json!(src.version.to_string());
        let mut entries = Vec::new();
        let mut moved = Vec::new();
        for t in merge["target"].as_array().into_iter().flatten() {
            let Some(reference) = t["reference"].as_str() else {
                continue;
            };
            if reference == from || reference == to {
                continue;
            }
            let Some((rt, id)) = reference.split_once('/') else {
                continue;
            };
            let (Some(rt), Some(id)) = (ResourceType::parse(rt), ResourceId::parse(id)) else {
                continue;
            };
            let current = match self.read(&Caller::server(), &rt, &id) {
                Ok(c) => c,
                Err(RecordsError::NotFound(_) | RecordsError::Gone(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut body = crate::interactions::parse_body(&current)?;
            if rewrite_references(&mut body, &to, &from) {
                entries.push(put(reference, &body));
                moved.push(json!({ "reference": reference }));
            }
        }
        remove_link(&mut tgt_body, &from);
        entries.push(put(&from, &restored));
        entries.push(put(&to, &tgt_body));
        let mut targets = vec![json!({ "reference": from }), json!({ "reference": to })];
        targets.extend(moved);
        let merged_version = format!("{from}/_history/{}", src.version);
        entries.push(provenance(
            who,
            "unmerge",
            "Unmerge Record Lifecycle Event",
            targets,
            &merged_version,
        ));
        self.transaction_with(
            who,
            json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries }),
            Arc::new(|_| Ok(())),
        )
    }

    /// The latest Provenance of a merge of `source` (`Patient/ID`).
    fn last_merge(&self, source: &str) -> Result<Option<Value>, RecordsError> {
        let q = crate::query::parse(
            &["Provenance".to_owned()],
            &[
                ("target".to_owned(), source.to_owned()),
                ("_sort".to_owned(), "-_lastUpdated".to_owned()),
            ],
            false,
            None,
        )?;
        for p in self.find(&Caller::server(), &q, 100)? {
            let body = crate::interactions::parse_body(&p)?;
            let coding = &body["activity"]["coding"][0];
            let names_source = body["entity"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["what"]["reference"].as_str())
                .any(|r| r.starts_with(&format!("{source}/_history/")));
            if coding["system"] == LIFECYCLE && names_source {
                // The latest lifecycle event of this source: an unmerge means there is
                // nothing to undo.
                return Ok((coding["code"] == "merge").then_some(body));
            }
        }
        Ok(None)
    }
}

pub(crate) fn patient_type() -> Result<ResourceType, RecordsError> {
    ResourceType::parse("Patient").ok_or_else(|| RecordsError::Internal("no Patient type".into()))
}

fn invalid(what: &str) -> RecordsError {
    RecordsError::invalid(IssueCode::Invalid, what)
}

/// The Patient a record's `replaced-by` link names (`Patient/ID`), if any.
pub fn replaced_by(patient: &Value) -> Option<String> {
    patient["link"]
        .as_array()?
        .iter()
        .find(|l| l["type"] == "replaced-by")
        .and_then(|l| l["other"]["reference"].as_str())
        .map(str::to_owned)
}

fn add_link(patient: &mut Value, other: &str, kind: &str) {
    let link = json!({ "other": { "reference": other }, "type": kind });
    match patient.get_mut("link").and_then(Value::as_array_mut) {
        Some(links) => {
            if !links.iter().any(|l| l["other"]["reference"] == other) {
                links.push(link);
            }
        }
        None => patient["link"] = json!([link]),
    }
}

fn remove_link(patient: &mut Value, other: &str) {
    if let Some(links) = patient.get_mut("link").and_then(Value::as_array_mut) {
        links.retain(|l| l["other"]["reference"] != other);
        if links.is_empty() {
            if let Some(o) = patient.as_object_mut() {
                o.remove("link");
            }
        }
    }
}

/// Points every `reference` to `from` (relative, or absolute ending in it) at `to`;
/// true when one changed.
fn rewrite_references(v: &mut Value, from: &str, to: &str) -> bool {
    match v {
        Value::Object(o) => {
            let mut changed = false;
            for (k, x) in o.iter_mut() {
                if k == "reference" {
                    if let Value::String(s) = x {
                        let suffix = format!("/{from}");
                        if s == from || s.ends_with(&suffix) {
                            *s = to.to_owned();
                            changed = true;
                        }
                    }
                } else {
                    changed |= rewrite_references(x, from, to);
                }
            }
            changed
        }
        Value::Array(a) => a
            .iter_mut()
            .fold(false, |c, x| rewrite_references(x, from, to) | c),
        _ => false,
    }
}

fn put(reference: &str, resource: &Value) -> Value {
    let mut entry = json!({
        "resource": resource,
        "request": { "method": "PUT", "url": reference },
    });
    if let Some(v) = resource["meta"]["versionId"].as_str() {
        // Optimistic: a version written meanwhile fails the merge rather than being
        // overwritten.
        entry["request"]["ifMatch"] = json!(format!("W/\"{v}\""));
    }
    entry
}

fn provenance(who: &Caller, code: &str, display: &str, targets: Vec<Value>, entity: &str) -> Value {
    let agent = match (&who.person, &who.organization) {
        (Some(p), _) => json!({ "reference": p, "display": who.user }),
        (None, Some(o)) => json!({ "reference": format!("Organization/{o}"), "display": who.user }),
        (None, None) => json!({ "display": who.user }),
    };
    json!({
        "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "resource": {
            "resourceType": "Provenance",
            "target": targets,
            "recorded": crate::time_fmt::format_instant(crate::time_fmt::now_micros()),
            "activity": { "coding": [{ "system": LIFECYCLE, "code": code, "display": display }] },
            "agent": [{
                "type": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "performer",
                    "display": "Performer",
                }]},
                "who": agent,
            }],
            "entity": [{ "role": "source", "what": { "reference": entity } }],
        },
        "request": { "method": "POST", "url": "Provenance" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_rewritten_relative_and_absolute_only_when_equal() {
        let mut v = json!({
            "subject": { "reference": "Patient/b" },
            "performer": [{ "reference": "https://x.example/fhir/Patient/b" }],
            "other": { "reference": "Patient/bb" },
            "note": [{ "text": "Patient/b" }],
        });
        assert!(rewrite_references(&mut v, "Patient/b", "Patient/a"));
        assert_eq!(v["subject"]["reference"], "Patient/a");
        assert_eq!(v["performer"][0]["reference"], "Patient/a");
        assert_eq!(v["other"]["reference"], "Patient/bb");
        assert_eq!(v["note"][0]["text"], "Patient/b");
        assert!(!rewrite_references(&mut v, "Patient/b", "Patient/a"));
    }

    #[test]
    fn links_are_added_once_and_removed() {
        let mut p = json!({ "resourceType": "Patient" });
        add_link(&mut p, "Patient/a", "replaced-by");
        add_link(&mut p, "Patient/a", "replaced-by");
        assert_eq!(p["link"].as_array().map(Vec::len), Some(1));
        assert_eq!(replaced_by(&p).as_deref(), Some("Patient/a"));
        remove_link(&mut p, "Patient/a");
        assert!(p.get("link").is_none());
        assert_eq!(replaced_by(&p), None);
    }
}
