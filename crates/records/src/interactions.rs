//! The instance and type interactions of the FHIR RESTful API, named as in the spec:
//! create, read, vread, update, patch, delete and history (search: `search.rs`).

use serde_json::Value;

use oxehr_fhir::{IssueCode, ResourceId, ResourceType, VersionId};
use oxehr_store::{HistoryQuery, HistoryScope, Method, StoredResource};

use crate::prepare::{new_id, Incoming};
use crate::query;
use crate::{time_fmt, Guard, Records, RecordsError};

/// The result of a successful write.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub resource: StoredResource,
    /// A new resource was created (201), rather than an existing one updated (200).
    pub created: bool,
    /// A conditional create matched an existing resource; nothing was written.
    pub existing: bool,
}

#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub entries: Vec<StoredResource>,
    pub total: u64,
}

impl Records {
    /// `create`, or conditional create with `If-None-Exist` (`if_none_exist` is the query
    /// part, `identifier=a|b`). The body's `id` is ignored, as the spec says.
    pub fn create(
        &self,
        rtype: &ResourceType,
        body: Value,
        if_none_exist: Option<&str>,
    ) -> Result<WriteOutcome, RecordsError> {
        let incoming = Incoming::new(body, Some(rtype))?;
        let condition = match if_none_exist {
            Some(q) => Some(query::parse_query_string(
                rtype,
                query::strip_type(q, rtype),
            )?),
            None => None,
        };
        self.with_retries(|| {
            let mut guards = Vec::new();
            if let Some(cond) = &condition {
                let matches = self.find(cond, 2)?;
                match matches.len() {
                    0 => guards.push(Guard {
                        query: cond.clone(),
                        ids: vec![],
                    }),
                    1 => {
                        return Ok(WriteOutcome {
                            resource: matches
                                .into_iter()
                                .next()
                                .ok_or_else(|| RecordsError::Internal("match vanished".into()))?,
                            created: false,
                            existing: true,
                        })
                    }
                    _ => return Err(multiple_matches()),
                }
            }
            let id = new_id();
            let v = self.prepare(
                incoming.clone(),
                &id,
                VersionId(1),
                Method::Create,
                time_fmt::now_micros(),
            )?;
            let resource = v.resource.clone();
            self.commit(guards, vec![v])?;
            Ok(WriteOutcome {
                resource,
                created: true,
                existing: false,
            })
        })
    }

    /// `update` by id, creating the resource when it does not exist (create-on-update).
    /// `if_match` is the version an `If-Match` header names.
    pub fn update(
        &self,
        rtype: &ResourceType,
        id: &ResourceId,
        body: Value,
        if_match: Option<VersionId>,
    ) -> Result<WriteOutcome, RecordsError> {
        let incoming = Incoming::new(body, Some(rtype))?;
        match incoming.body_id()? {
            Some(body_id) if &body_id == id => {}
            Some(_) => {
                return Err(RecordsError::invalid_at(
                    IssueCode::Invalid,
                    "the resource id does not match the id in the URL",
                    &format!("{rtype}.id"),
                ))
            }
            None => {
                return Err(RecordsError::invalid_at(
                    IssueCode::Required,
                    "an update needs the resource id in the body",
                    &format!("{rtype}.id"),
                ))
            }
        }
        self.with_retries(|| {
            self.update_once(incoming.clone(), id, if_match, Method::Update, vec![])
        })
    }

    fn update_once(
        &self,
        incoming: Incoming,
        id: &ResourceId,
        if_match: Option<VersionId>,
        method: Method,
        guards: Vec<Guard>,
    ) -> Result<WriteOutcome, RecordsError> {
        let rtype = incoming.rtype.clone();
        let current = self.reader()?.current(&rtype, id)?;
        check_if_match(if_match, current.as_ref())?;
        let (version, created) = match &current {
            None => (VersionId(1), true),
            Some(c) => (c.version.next(), c.is_deleted()),
        };
        let method = if current.is_none() {
            Method::Create
        } else {
            method
        };
        let v = self.prepare(incoming, id, version, method, time_fmt::now_micros())?;
        let resource = v.resource.clone();
        self.commit(guards, vec![v])?;
        Ok(WriteOutcome {
            resource,
            created,
            existing: false,
        })
    }

    /// Conditional update (`PUT Patient?identifier=…`): no match creates, one match
    /// updates it, several are a precondition failure.
    pub fn conditional_update(
        &self,
        rtype: &ResourceType,
        query_string: &str,
        body: Value,
        if_match: Option<VersionId>,
    ) -> Result<WriteOutcome, RecordsError> {
        let incoming = Incoming::new(body, Some(rtype))?;
        let cond = query::parse_query_string(rtype, query_string)?;
        let body_id = incoming.body_id()?;
        self.with_retries(|| {
            let matches = self.find(&cond, 2)?;
            let ids: Vec<ResourceId> = matches.iter().map(|r| r.id.clone()).collect();
            let id = match ids.as_slice() {
                [] => body_id.clone().unwrap_or_else(new_id),
                [one] => {
                    if body_id.as_ref().is_some_and(|b| b != one) {
                        return Err(RecordsError::invalid_at(
                            IssueCode::Invalid,
                            "the resource id does not match the resource the condition found",
                            &format!("{rtype}.id"),
                        ));
                    }
                    one.clone()
                }
                _ => return Err(multiple_matches()),
            };
            let guard = Guard {
                query: cond.clone(),
                ids,
            };
            self.update_once(incoming.clone(), &id, if_match, Method::Update, vec![guard])
        })
    }

    /// JSON Patch (RFC 6902) of the current version.
    pub fn patch(
        &self,
        rtype: &ResourceType,
        id: &ResourceId,
        patch: Value,
        if_match: Option<VersionId>,
    ) -> Result<WriteOutcome, RecordsError> {
        let patch: json_patch::Patch = serde_json::from_value(patch).map_err(|e| {
            RecordsError::invalid(
                IssueCode::Invalid,
                format!("not a JSON Patch document: {e}"),
            )
        })?;
        self.with_retries(|| {
            let current = self.read(rtype, id)?;
            check_if_match(if_match, Some(&current))?;
            let mut doc = parse_body(&current)?;
            json_patch::patch(&mut doc, &patch).map_err(|e| {
                RecordsError::invalid(
                    IssueCode::Processing,
                    format!("the patch does not apply: {e}"),
                )
            })?;
            let incoming = Incoming::new(doc, Some(rtype))?;
            if incoming.body_id()?.as_ref() != Some(id) {
                return Err(RecordsError::invalid_at(
                    IssueCode::Invalid,
                    "a patch may not change the resource id",
                    &format!("{rtype}.id"),
                ));
            }
            // Stored as the version after the one patched; if another writer got in
            // between, the put conflicts and the patch is applied again to the new one.
            let v = self.prepare(
                incoming,
                id,
                current.version.next(),
                Method::Patch,
                time_fmt::now_micros(),
            )?;
            let resource = v.resource.clone();
            self.commit(vec![], vec![v])?;
            Ok(WriteOutcome {
                resource,
                created: false,
                existing: false,
            })
        })
    }

    /// `delete`: stores a deleted version. Deleting what does not exist or is already
    /// deleted succeeds and changes nothing (`None`).
    pub fn delete(
        &self,
        rtype: &ResourceType,
        id: &ResourceId,
    ) -> Result<Option<StoredResource>, RecordsError> {
        self.with_retries(|| self.delete_once(rtype, id, vec![]))
    }

    fn delete_once(
        &self,
        rtype: &ResourceType,
        id: &ResourceId,
        guards: Vec<Guard>,
    ) -> Result<Option<StoredResource>, RecordsError> {
        let current = self.reader()?.current(rtype, id)?;
        match current {
            Some(c) if !c.is_deleted() => {
                let v =
                    Records::prepare_delete(rtype, id, c.version.next(), time_fmt::now_micros());
                let resource = v.resource.clone();
                self.commit(guards, vec![v])?;
                Ok(Some(resource))
            }
            _ => Ok(None),
        }
    }

    /// Conditional delete of the one resource the query matches (several: 412).
    pub fn conditional_delete(
        &self,
        rtype: &ResourceType,
        query_string: &str,
    ) -> Result<Option<StoredResource>, RecordsError> {
        let cond = query::parse_query_string(rtype, query_string)?;
        self.with_retries(|| {
            let matches = self.find(&cond, 2)?;
            match matches.as_slice() {
                [] => Ok(None),
                [one] => {
                    let guard = Guard {
                        query: cond.clone(),
                        ids: vec![one.id.clone()],
                    };
                    self.delete_once(rtype, &one.id, vec![guard])
                }
                _ => Err(multiple_matches()),
            }
        })
    }

    /// `read`: the current version; `Gone` when it is deleted.
    pub fn read(
        &self,
        rtype: &ResourceType,
        id: &ResourceId,
    ) -> Result<StoredResource, RecordsError> {
        match self.store.read_current(rtype, id)? {
            None => Err(RecordsError::NotFound(format!("{rtype}/{id}"))),
            Some(r) if r.is_deleted() => Err(RecordsError::Gone(format!("{rtype}/{id}"))),
            Some(r) => Ok(r),
        }
    }

    /// `vread`: one version; `Gone` when that version is a delete.
    pub fn vread(
        &self,
        rtype: &ResourceType,
        id: &ResourceId,
        version: VersionId,
    ) -> Result<StoredResource, RecordsError> {
        match self.store.read_version(rtype, id, version)? {
            None => Err(RecordsError::NotFound(format!(
                "{rtype}/{id}/_history/{version}"
            ))),
            Some(r) if r.is_deleted() => Err(RecordsError::Gone(format!(
                "{rtype}/{id}/_history/{version}"
            ))),
            Some(r) => Ok(r),
        }
    }

    /// `history` of an instance, a type or the whole system, newest first.
    pub fn history(&self, q: &HistoryQuery) -> Result<HistoryPage, RecordsError> {
        let mut reader = self.reader()?;
        if let HistoryScope::Instance(rtype, id) = &q.scope {
            if reader.current(rtype, id)?.is_none() {
                return Err(RecordsError::NotFound(format!("{rtype}/{id}")));
            }
        }
        let entries = reader.history(q)?;
        let total = reader.history_count(q)?;
        Ok(HistoryPage { entries, total })
    }
}

/// A stored body as JSON.
pub(crate) fn parse_body(r: &StoredResource) -> Result<Value, RecordsError> {
    let body = r
        .body
        .as_deref()
        .ok_or_else(|| RecordsError::Gone(format!("{}/{}", r.rtype, r.id)))?;
    serde_json::from_str(body)
        .map_err(|e| RecordsError::Internal(format!("stored body unreadable: {e}")))
}

fn check_if_match(
    if_match: Option<VersionId>,
    current: Option<&StoredResource>,
) -> Result<(), RecordsError> {
    match (if_match, current) {
        (None, _) => Ok(()),
        (Some(v), Some(c)) if c.version == v && !c.is_deleted() => Ok(()),
        (Some(v), Some(c)) => Err(RecordsError::PreconditionFailed(format!(
            "If-Match names version {v} but the current version is {}",
            c.version
        ))),
        (Some(v), None) => Err(RecordsError::PreconditionFailed(format!(
            "If-Match names version {v} but the resource does not exist"
        ))),
    }
}

fn multiple_matches() -> RecordsError {
    RecordsError::PreconditionFailed("the condition matches more than one resource".into())
}
