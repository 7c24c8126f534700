//! The kick-off parameters of `$export` (Bulk Data Access IG 2.0, "Query Parameters"),
//! checked once when the export is asked for, and kept with the job as JSON so that a
//! job runs the same after a restart.
//!
//! Supported: `_outputFormat` (`application/fhir+ndjson`, `application/ndjson`,
//! `ndjson`), `_type`, `_since`, `_typeFilter` (FHIR search queries per type, run by
//! the search engine every search uses), and `patient` (Patient and Group level). Any
//! other parameter, or an unsupported value, is refused (400), or with lenient handling
//! ignored and reported in the manifest's `error` file.

use oxehr_fhir::{IssueCode, ResourceType};
use serde_json::{json, Value};

use crate::{query, RecordsError};

/// The spellings of NDJSON the IG asks servers to accept.
pub const OUTPUT_FORMATS: [&str; 3] = ["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// Which data an export covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportLevel {
    /// `/$export`: every resource the caller may see.
    System,
    /// `/Patient/$export`: the records (Patient compartments) of every patient the
    /// caller may see.
    Patient,
    /// `/Group/{id}/$export`: the records of the Group's member Patients.
    Group(String),
}

impl ExportLevel {
    /// The operation's path below the FHIR base (`Group/g1/$export`).
    pub fn path(&self) -> String {
        match self {
            ExportLevel::System => "$export".into(),
            ExportLevel::Patient => "Patient/$export".into(),
            ExportLevel::Group(id) => format!("Group/{id}/$export"),
        }
    }
}

/// One `_typeFilter` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeFilter {
    pub rtype: String,
    /// The query part, still encoded (`category=laboratory`).
    pub query: String,
}

/// A checked export request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub level: ExportLevel,
    /// `_type`, in the order given; empty: every type the caller may read.
    pub types: Vec<String>,
    /// `_since` (microseconds): only resources changed after it; deleted ones listed.
    pub since: Option<i64>,
    pub type_filters: Vec<TypeFilter>,
    /// `patient` (ids): only these patients' records (Patient and Group level).
    pub patients: Vec<String>,
    /// The kick-off URL, as the manifest's `request` repeats it.
    pub request_url: String,
    /// What lenient handling ignored, in plain words.
    pub ignored: Vec<String>,
}

fn refuse(lenient: bool, ignored: &mut Vec<String>, why: String) -> Result<(), RecordsError> {
    if lenient {
        ignored.push(why);
        Ok(())
    } else {
        Err(RecordsError::invalid(IssueCode::NotSupported, why))
    }
}

/// Splits a `_typeFilter` value at the commas that start another `Type?` query (a
/// comma inside one query, between OR values, stays with it).
fn split_type_filters(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in value.split(',') {
        let starts_query = part
            .split_once('?')
            .is_some_and(|(t, _)| ResourceType::parse(t.trim()).is_some());
        match out.last_mut() {
            Some(last) if !starts_query => {
                last.push(',');
                last.push_str(part);
            }
            _ => out.push(part.to_owned()),
        }
    }
    out
}

impl ExportRequest {
    /// Checks the decoded kick-off parameters (`pairs`: a GET's query, or a POST's
    /// Parameters as name and value). `lenient`: `Prefer: handling=lenient`.
    pub fn parse(
        level: ExportLevel,
        pairs: &[(String, String)],
        lenient: bool,
        request_url: String,
    ) -> Result<ExportRequest, RecordsError> {
        let mut req = ExportRequest {
            level,
            types: Vec::new(),
            since: None,
            type_filters: Vec::new(),
            patients: Vec::new(),
            request_url,
            ignored: Vec::new(),
        };
        let mut ignored = Vec::new();
        for (name, value) in pairs {
            match name.as_str() {
                "_outputFormat" => {
                    if !OUTPUT_FORMATS.contains(&value.as_str()) {
                        refuse(
                            lenient,
                            &mut ignored,
                            format!(
                                "_outputFormat '{value}' is not supported: this server writes \
                                 application/fhir+ndjson"
                            ),
                        )?;
                    }
                }
                "_type" => {
                    for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        if ResourceType::parse(t).is_none() {
                            refuse(
                                lenient,
                                &mut ignored,
                                format!("_type: unknown resource type '{t}'"),
                            )?;
                        } else if crate::audit_view::is_audit_event(t) {
                            refuse(
                                lenient,
                                &mut ignored,
                                "_type: AuditEvent is the audit trail, not exported".into(),
                            )?;
                        } else if !req.types.iter().any(|x| x == t) {
                            req.types.push(t.to_owned());
                        }
                    }
                }
                "_since" => match crate::parse_instant(value) {
                    Some(t) => req.since = Some(t),
                    None => refuse(
                        lenient,
                        &mut ignored,
                        "_since must be an instant with a time zone (2024-01-31T12:00:00Z)".into(),
                    )?,
                },
                "_typeFilter" => {
                    for f in split_type_filters(value) {
                        match f.split_once('?') {
                            Some((t, q)) if ResourceType::parse(t.trim()).is_some() => {
                                req.type_filters.push(TypeFilter {
                                    rtype: t.trim().to_owned(),
                                    query: q.to_owned(),
                                })
                            }
                            _ => refuse(
                                lenient,
                                &mut ignored,
                                "_typeFilter must be Type?search-parameters".into(),
                            )?,
                        }
                    }
                }
                "patient" if req.level != ExportLevel::System => {
                    let id = value
                        .rsplit_once("Patient/")
                        .map_or(value.as_str(), |(_, id)| id);
                    if oxehr_fhir::ResourceId::parse(id).is_none() {
                        return Err(RecordsError::invalid(
                            IssueCode::Invalid,
                            "patient must be a reference to a Patient (Patient/123)",
                        ));
                    }
                    req.patients.push(id.to_owned());
                }
                other => refuse(
                    lenient,
                    &mut ignored,
                    format!("the $export parameter '{other}' is not supported"),
                )?,
            }
        }
        // Every filter must parse as a search of its type, and be a plain one.
        let mut kept = Vec::new();
        for f in std::mem::take(&mut req.type_filters) {
            if !req.types.is_empty() && !req.types.contains(&f.rtype) {
                refuse(
                    lenient,
                    &mut ignored,
                    format!("_typeFilter names {}, which _type does not list", f.rtype),
                )?;
                continue;
            }
            let q = query::parse(
                std::slice::from_ref(&f.rtype),
                &query::decode_pairs(&f.query),
                false,
                None,
            )?;
            if !q.include.is_empty() || !q.revinclude.is_empty() {
                refuse(
                    lenient,
                    &mut ignored,
                    "_typeFilter: _include and _revinclude are not supported".into(),
                )?;
                continue;
            }
            kept.push(f);
        }
        req.type_filters = kept;
        if req.level != ExportLevel::System {
            for t in &req.types {
                if t != "Patient" && !crate::bulk::in_patient_compartment(t) {
                    return Err(RecordsError::invalid(
                        IssueCode::Invalid,
                        format!("_type: {t} is not in the Patient compartment"),
                    ));
                }
            }
        }
        req.ignored = ignored;
        Ok(req)
    }

    pub fn to_json(&self) -> String {
        let (level, group) = match &self.level {
            ExportLevel::System => ("system", None),
            ExportLevel::Patient => ("patient", None),
            ExportLevel::Group(id) => ("group", Some(id.clone())),
        };
        json!({
            "level": level,
            "group": group,
            "types": self.types,
            "since": self.since,
            "typeFilters": self.type_filters.iter().map(|f| json!([f.rtype, f.query])).collect::<Vec<_>>(),
            "patients": self.patients,
            "request": self.request_url,
            "ignored": self.ignored,
        })
        .to_string()
    }

    pub fn from_json(s: &str) -> Option<ExportRequest> {
        let v: Value = serde_json::from_str(s).ok()?;
        let strings = |k: &str| -> Option<Vec<String>> {
            v.get(k)?
                .as_array()?
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect()
        };
        let level = match v.get("level")?.as_str()? {
            "system" => ExportLevel::System,
            "patient" => ExportLevel::Patient,
            "group" => ExportLevel::Group(v.get("group")?.as_str()?.to_owned()),
            _ => return None,
        };
        let type_filters = v
            .get("typeFilters")?
            .as_array()?
            .iter()
            .map(|f| {
                Some(TypeFilter {
                    rtype: f.get(0)?.as_str()?.to_owned(),
                    query: f.get(1)?.as_str()?.to_owned(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(ExportRequest {
            level,
            types: strings("types")?,
            since: v.get("since").and_then(Value::as_i64),
            type_filters,
            patients: strings("patients")?,
            request_url: v.get("request")?.as_str()?.to_owned(),
            ignored: strings("ignored")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_spelling_of_ndjson_is_accepted_and_others_refused() {
        for f in OUTPUT_FORMATS {
            let r = ExportRequest::parse(
                ExportLevel::System,
                &pairs(&[("_outputFormat", f)]),
                false,
                String::new(),
            );
            assert!(r.is_ok(), "{f}");
        }
        for f in ["application/fhir+json", "text/csv", ""] {
            let r = ExportRequest::parse(
                ExportLevel::System,
                &pairs(&[("_outputFormat", f)]),
                false,
                String::new(),
            );
            assert!(r.is_err(), "{f}");
            let lenient = ExportRequest::parse(
                ExportLevel::System,
                &pairs(&[("_outputFormat", f)]),
                true,
                String::new(),
            )
            .expect("lenient");
            assert_eq!(lenient.ignored.len(), 1, "{f}");
        }
    }

    #[test]
    fn type_filters_split_at_the_next_type_only() {
        assert_eq!(
            split_type_filters(
                "Observation?code=a,b&status=final,Condition?clinical-status=active"
            ),
            vec![
                "Observation?code=a,b&status=final".to_owned(),
                "Condition?clinical-status=active".to_owned()
            ]
        );
    }

    #[test]
    fn requests_round_trip_through_json() {
        let r = ExportRequest::parse(
            ExportLevel::Group("g1".into()),
            &pairs(&[
                ("_type", "Patient,Observation"),
                ("_since", "2024-01-02T03:04:05Z"),
                ("_typeFilter", "Observation?category=laboratory"),
                ("patient", "Patient/p1"),
            ]),
            false,
            "http://x/fhir/Group/g1/$export".into(),
        )
        .expect("parse");
        assert_eq!(r.since, Some(1_704_164_645_000_000));
        assert_eq!(ExportRequest::from_json(&r.to_json()), Some(r));
    }

    #[test]
    fn unknown_parameters_and_types_are_refused_unless_lenient() {
        for p in [
            ("_elements", "id"),
            ("_type", "NotAType"),
            ("_since", "yesterday"),
        ] {
            assert!(
                ExportRequest::parse(ExportLevel::System, &pairs(&[p]), false, String::new())
                    .is_err(),
                "{p:?}"
            );
        }
        assert!(ExportRequest::parse(
            ExportLevel::Patient,
            &pairs(&[("_type", "Organization")]),
            false,
            String::new()
        )
        .is_err());
    }
}
