//! Preparing a version for storage: the CPU work done before a write job starts —
//! checking the resource, setting `id` and `meta`, validation, index extraction and
//! serialization.

use serde_json::{Map, Value};

use oxehr_fhir::{IssueCode, ResourceId, ResourceType, VersionId};
use oxehr_store::{Method, NewVersion, StoredResource};

use crate::{time_fmt, Records, RecordsError};

/// A resource as received: checked to be an object of a known type.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub rtype: ResourceType,
    pub body: Map<String, Value>,
}

impl Incoming {
    /// Checks that `value` is a resource, of `expected` type when given.
    pub fn new(value: Value, expected: Option<&ResourceType>) -> Result<Incoming, RecordsError> {
        let Value::Object(body) = value else {
            return Err(RecordsError::invalid(
                IssueCode::Structure,
                "the body is not a JSON object",
            ));
        };
        let rtype = match body.get("resourceType") {
            Some(Value::String(name)) => ResourceType::parse(name).ok_or_else(|| {
                RecordsError::invalid_at(
                    IssueCode::NotSupported,
                    format!("unknown resource type '{name}'"),
                    "resourceType",
                )
            })?,
            _ => {
                return Err(RecordsError::invalid_at(
                    IssueCode::Required,
                    "the resource has no resourceType",
                    "resourceType",
                ))
            }
        };
        if let Some(expected) = expected {
            if &rtype != expected {
                return Err(RecordsError::invalid_at(
                    IssueCode::Invalid,
                    format!("resourceType '{rtype}' does not match the URL's type '{expected}'"),
                    "resourceType",
                ));
            }
        }
        Ok(Incoming { rtype, body })
    }

    /// The `id` the body carries, if any.
    pub fn body_id(&self) -> Result<Option<ResourceId>, RecordsError> {
        match self.body.get("id") {
            None => Ok(None),
            Some(Value::String(s)) => ResourceId::parse(s).map(Some).ok_or_else(|| {
                RecordsError::invalid_at(
                    IssueCode::Value,
                    "invalid resource id",
                    &format!("{}.id", self.rtype),
                )
            }),
            Some(_) => Err(RecordsError::invalid_at(
                IssueCode::Value,
                "id must be a string",
                &format!("{}.id", self.rtype),
            )),
        }
    }
}

/// A new server-assigned id: a UUID v7, so ids (and the store's keys) grow with time.
pub(crate) fn new_id() -> ResourceId {
    // A UUID always matches the id regex.
    ResourceId::parse(&uuid::Uuid::now_v7().to_string()).expect("a UUID is a valid FHIR id")
}

/// A resource's index entries and the Patients whose compartments hold it, as every
/// write stores them (and `oxehr reindex` stores them again).
pub(crate) fn index_of(
    rtype: &ResourceType,
    id: &ResourceId,
    value: &Value,
) -> Result<(Vec<oxehr_search::IndexEntry>, Vec<ResourceId>), RecordsError> {
    let extracted = oxehr_search::extract(value).map_err(|e| {
        RecordsError::invalid(
            IssueCode::Processing,
            format!("cannot index the resource: {e}"),
        )
    })?;
    let mut compartments: Vec<ResourceId> = extracted
        .patient_compartment
        .iter()
        .filter_map(|s| ResourceId::parse(s))
        .collect();
    if rtype.as_str() == "Patient" {
        compartments.push(id.clone());
    }
    compartments.sort();
    compartments.dedup();
    Ok((extracted.entries, compartments))
}

/// Validation of a resource's content against the R4 core definitions: the structure,
/// cardinality, value and binding rules of [`oxehr_fhir::validate`], then, where those
/// hold, the FHIRPath invariants of the definitions ([`oxehr_fhirpath::invariants`]).
/// Every write path and `$validate` use it.
pub fn validate(resource: &Value) -> Vec<oxehr_fhir::Issue> {
    let mut issues = oxehr_fhir::validate::validate(resource);
    if !issues.iter().any(oxehr_fhir::Issue::is_error) {
        issues.extend(oxehr_fhirpath::invariants::check(resource));
    }
    issues
}

impl Records {
    /// What a create of `resource` would be refused for in its content (the error
    /// issues of the checks `create` makes), without writing anything. A form uses it
    /// to show every refusal at once, where a transaction stops at the first entry.
    pub fn content_issues(&self, resource: &Value) -> Vec<oxehr_fhir::Issue> {
        let issues = if self.config.validate {
            validate(resource)
        } else {
            oxehr_fhir::validate::safety(resource)
        };
        issues.into_iter().filter(|i| i.is_error()).collect()
    }

    /// Builds the version to store: `resourceType`, `id` and `meta` (versionId,
    /// lastUpdated, keeping the client's profile/tag/security/source) first, then the rest
    /// of the body as sent; validates it; extracts its index entries and compartments.
    pub(crate) fn prepare(
        &self,
        incoming: Incoming,
        id: &ResourceId,
        version: VersionId,
        method: Method,
        now: i64,
    ) -> Result<NewVersion, RecordsError> {
        let Incoming { rtype, mut body } = incoming;
        let mut meta = match body.shift_remove("meta") {
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(RecordsError::invalid_at(
                    IssueCode::Structure,
                    "meta must be an object",
                    &format!("{rtype}.meta"),
                ))
            }
            None => Map::new(),
        };
        meta.shift_remove("versionId");
        meta.shift_remove("lastUpdated");
        let mut new_meta = Map::new();
        new_meta.insert("versionId".into(), Value::String(version.to_string()));
        new_meta.insert(
            "lastUpdated".into(),
            Value::String(time_fmt::format_instant(now)),
        );
        new_meta.extend(meta);
        body.shift_remove("resourceType");
        body.shift_remove("id");
        let mut out = Map::with_capacity(body.len() + 3);
        out.insert("resourceType".into(), Value::String(rtype.to_string()));
        out.insert("id".into(), Value::String(id.to_string()));
        out.insert("meta".into(), Value::Object(new_meta));
        out.extend(body);
        let value = Value::Object(out);

        // With validation off, the rules that protect the server and its readers still
        // hold (control characters, numbers the index cannot hold, active narratives).
        let issues = self.content_issues(&value);
        if !issues.is_empty() {
            return Err(RecordsError::Invalid(issues));
        }
        let (index, compartments) = index_of(&rtype, id, &value)?;
        let body = serde_json::to_string(&value)
            .map_err(|e| RecordsError::Internal(format!("serialization failed: {e}")))?;
        Ok(NewVersion {
            resource: StoredResource {
                rtype,
                id: id.clone(),
                version,
                last_updated: now,
                method,
                body: Some(body),
            },
            index,
            compartments,
        })
    }

    /// The version that records a delete.
    pub(crate) fn prepare_delete(
        rtype: &ResourceType,
        id: &ResourceId,
        version: VersionId,
        now: i64,
    ) -> NewVersion {
        NewVersion {
            resource: StoredResource {
                rtype: rtype.clone(),
                id: id.clone(),
                version,
                last_updated: now,
                method: Method::Delete,
                body: None,
            },
            index: Vec::new(),
            compartments: Vec::new(),
        }
    }
}
