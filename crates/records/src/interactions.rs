//! The instance and type interactions of the FHIR RESTful API, named as in the spec:
//! create, read, vread, update, patch, delete and history (search: `search.rs`).

use serde_json::Value;

use oxehr_fhir::{IssueCode, ResourceId, ResourceType, VersionId};
use oxehr_store::{HistoryQuery, HistoryScope, Method, StoredResource};

use oxehr_auth::scope::Perm;
use oxehr_auth::Caller;

use crate::patch::apply_patch;
use crate::prepare::{new_id, Incoming};
use crate::query;
use crate::{audit, audit_view, policy};
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

/// What a `history` interaction asks for: the versions of `scope`, newest first, one page
/// of them. Whose versions the caller sees is the record layer's rule, not the request's.
#[derive(Debug, Clone)]
pub struct HistoryRequest {
    pub scope: HistoryScope,
    /// Only versions with `last_updated >= since` (microseconds; `_since`).
    pub since: Option<i64>,
    /// Only versions with `last_updated <= at` (microseconds): a snapshot bound that
    /// keeps later pages stable while others write.
    pub at: Option<i64>,
    /// Versions per page.
    pub count: usize,
    /// Versions skipped before the page (from a page's `next_offset`/`previous_offset`).
    pub offset: usize,
}

#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub entries: Vec<StoredResource>,
    /// The total to show the caller (`None` when the caller may not see every record).
    pub reported_total: Option<u64>,
    /// The `offset` of the next page, when there is one.
    pub next_offset: Option<usize>,
    /// The `offset` of the previous page (only for a caller who sees every record: for
    /// the others offsets count versions they do not see).
    pub previous_offset: Option<usize>,
}

impl Records {
    /// `create`, or conditional create with `If-None-Exist` (`if_none_exist` is the query
    /// part, `identifier=a|b`). The body's `id` is ignored, as the spec says.
    pub fn create(
        &self,
        who: &Caller,
        rtype: &ResourceType,
        body: Value,
        if_none_exist: Option<&str>,
    ) -> Result<WriteOutcome, RecordsError> {
        audit_view::refuse_write(rtype.as_str())?;
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
                let matches = self.find(who, cond, 2)?;
                match matches.len() {
                    0 => guards.push(Guard {
                        query: cond.clone(),
                        ids: vec![],
                    }),
                    1 => {
                        let resource = matches
                            .into_iter()
                            .next()
                            .ok_or_else(|| RecordsError::Internal("match vanished".into()))?;
                        self.check_read(who, &resource)?;
                        return Ok(WriteOutcome {
                            resource,
                            created: false,
                            existing: true,
                        });
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
            self.commit(who, guards, vec![v])?;
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
        who: &Caller,
        rtype: &ResourceType,
        id: &ResourceId,
        body: Value,
        if_match: Option<VersionId>,
    ) -> Result<WriteOutcome, RecordsError> {
        audit_view::refuse_write(rtype.as_str())?;
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
            self.update_once(who, incoming.clone(), id, if_match, Method::Update, vec![])
        })
    }

    fn update_once(
        &self,
        who: &Caller,
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
        self.commit(who, guards, vec![v])?;
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
        who: &Caller,
        rtype: &ResourceType,
        query_string: &str,
        body: Value,
        if_match: Option<VersionId>,
    ) -> Result<WriteOutcome, RecordsError> {
        audit_view::refuse_write(rtype.as_str())?;
        let incoming = Incoming::new(body, Some(rtype))?;
        let cond = query::parse_query_string(rtype, query_string)?;
        let body_id = incoming.body_id()?;
        self.with_retries(|| {
            let matches = self.find(who, &cond, 2)?;
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
            self.update_once(
                who,
                incoming.clone(),
                &id,
                if_match,
                Method::Update,
                vec![guard],
            )
        })
    }

    /// JSON Patch (RFC 6902) of the current version.
    pub fn patch(
        &self,
        who: &Caller,
        rtype: &ResourceType,
        id: &ResourceId,
        patch: Value,
        if_match: Option<VersionId>,
    ) -> Result<WriteOutcome, RecordsError> {
        audit_view::refuse_write(rtype.as_str())?;
        let patch = crate::patch::parse_patch(patch)?;
        self.patch_parsed(who, rtype, id, &patch, if_match)
    }

    /// [`patch`](Self::patch) with the patch already checked (a Bundle entry's).
    pub(crate) fn patch_parsed(
        &self,
        who: &Caller,
        rtype: &ResourceType,
        id: &ResourceId,
        patch: &json_patch::Patch,
        if_match: Option<VersionId>,
    ) -> Result<WriteOutcome, RecordsError> {
        self.with_retries(|| {
            let current = self.current(rtype, id)?;
            // Before the patch meets the stored body: its `test` operations (and its
            // errors) would otherwise tell a caller what a resource it may not read holds.
            self.check_may_patch(who, &current)?;
            check_if_match(if_match, Some(&current))?;
            let mut doc = parse_body(&current)?;
            apply_patch(&mut doc, patch, self.config.max_resource_bytes)?;
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
            self.commit(who, vec![], vec![v])?;
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
        who: &Caller,
        rtype: &ResourceType,
        id: &ResourceId,
    ) -> Result<Option<StoredResource>, RecordsError> {
        audit_view::refuse_write(rtype.as_str())?;
        self.with_retries(|| self.delete_once(who, rtype, id, vec![]))
    }

    fn delete_once(
        &self,
        who: &Caller,
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
                self.commit(who, guards, vec![v])?;
                Ok(Some(resource))
            }
            // Nothing to delete; still only for a caller who may delete this type.
            _ => {
                policy::check_type(who, rtype.as_str(), Perm::Delete)?;
                Ok(None)
            }
        }
    }

    /// Conditional delete of the one resource the query matches (several: 412).
    pub fn conditional_delete(
        &self,
        who: &Caller,
        rtype: &ResourceType,
        query_string: &str,
    ) -> Result<Option<StoredResource>, RecordsError> {
        audit_view::refuse_write(rtype.as_str())?;
        let cond = query::parse_query_string(rtype, query_string)?;
        self.with_retries(|| {
            let matches = self.find(who, &cond, 2)?;
            match matches.as_slice() {
                [] => {
                    policy::check_type(who, rtype.as_str(), Perm::Delete)?;
                    Ok(None)
                }
                [one] => {
                    let guard = Guard {
                        query: cond.clone(),
                        ids: vec![one.id.clone()],
                    };
                    self.delete_once(who, rtype, &one.id, vec![guard])
                }
                _ => Err(multiple_matches()),
            }
        })
    }

    /// `read`: the current version; `Gone` when it is deleted.
    pub fn read(
        &self,
        who: &Caller,
        rtype: &ResourceType,
        id: &ResourceId,
    ) -> Result<StoredResource, RecordsError> {
        if audit_view::is_audit_event(rtype.as_str()) {
            return self.audit_event_read(who, id);
        }
        let res = (|| {
            let narrowing = policy::scope_filters(who, rtype.as_str(), Perm::Read)?;
            let mut reader = self.reader()?;
            let access = self.access(who, &mut *reader)?;
            match reader.current(rtype, id)? {
                None => Err(RecordsError::NotFound(format!("{rtype}/{id}"))),
                Some(r) => {
                    let patients = self.check_visible_current(&access, &mut *reader, &r)?;
                    // Outside the scopes that narrow the type: absent, as a search
                    // leaves it out (a deleted one has nothing left to match).
                    if !narrowing.is_empty()
                        && policy::passing(
                            &mut *reader,
                            &access,
                            rtype.as_str(),
                            &[id.as_str()],
                            &narrowing,
                        )?
                        .is_empty()
                    {
                        return Err(RecordsError::NotFound(format!("{rtype}/{id}")));
                    }
                    if r.is_deleted() {
                        Err(RecordsError::Gone(format!("{rtype}/{id}")))
                    } else {
                        Ok((r, patients))
                    }
                }
            }
        })();
        self.audited(who, "read", format!("{rtype}/{id}"), res)
    }

    /// Records the audit trail of a read: one record per patient on success, one
    /// `denied` record on a refusal; nothing for other errors or the server's own reads.
    pub(crate) fn audited<T>(
        &self,
        who: &Caller,
        action: &str,
        resource: String,
        res: Result<(T, Vec<String>), RecordsError>,
    ) -> Result<T, RecordsError> {
        if who.internal {
            return res.map(|(t, _)| t);
        }
        match res {
            Ok((t, patients)) => {
                self.auditor.record(audit::per_patient(
                    who,
                    action,
                    "success",
                    Some(resource),
                    patients,
                ))?;
                Ok(t)
            }
            Err(e) if audit::is_denial(&e) => {
                self.auditor.record(vec![audit::record(
                    who,
                    action,
                    "denied",
                    Some(resource),
                    None,
                )])?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The current version, not deleted, without the policy (for the write paths, whose
    /// commit applies it).
    fn current(
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

    /// 403 unless `who` may read `r` (a conditional create's match, returned to the
    /// caller: audited as a read).
    pub(crate) fn check_read(&self, who: &Caller, r: &StoredResource) -> Result<(), RecordsError> {
        let res = (|| {
            policy::check_type(who, r.rtype.as_str(), Perm::Read)?;
            let mut reader = self.reader()?;
            let access = self.access(who, &mut *reader)?;
            Ok(((), self.check_visible_current(&access, &mut *reader, r)?))
        })();
        self.audited(who, "read", format!("{}/{}", r.rtype, r.id), res)
    }

    /// `vread`: one version; `Gone` when that version is a delete.
    pub fn vread(
        &self,
        who: &Caller,
        rtype: &ResourceType,
        id: &ResourceId,
        version: VersionId,
    ) -> Result<StoredResource, RecordsError> {
        if audit_view::is_audit_event(rtype.as_str()) {
            // Audit records have one version.
            return match version {
                VersionId(1) => self.audit_event_read(who, id),
                _ => Err(RecordsError::NotFound(format!(
                    "{rtype}/{id}/_history/{version}"
                ))),
            };
        }
        let res = (|| {
            policy::check_type(who, rtype.as_str(), Perm::Read)?;
            let mut reader = self.reader()?;
            let access = self.access(who, &mut *reader)?;
            match reader.version(rtype, id, version)? {
                None => Err(RecordsError::NotFound(format!(
                    "{rtype}/{id}/_history/{version}"
                ))),
                Some(r) => {
                    let patients = self.check_visible(&access, &mut *reader, &r)?;
                    if r.is_deleted() {
                        Err(RecordsError::Gone(format!(
                            "{rtype}/{id}/_history/{version}"
                        )))
                    } else {
                        Ok((r, patients))
                    }
                }
            }
        })();
        self.audited(
            who,
            "vread",
            format!("{rtype}/{id}/_history/{version}"),
            res,
        )
    }

    /// `history` of an instance, a type or the whole system, newest first.
    ///
    /// A caller who may not see every record gets only the versions they may see, and
    /// no total at the type and system levels (it would count the others).
    pub fn history(
        &self,
        who: &Caller,
        request: &HistoryRequest,
    ) -> Result<HistoryPage, RecordsError> {
        if request.offset > crate::MAX_HISTORY_OFFSET {
            return Err(RecordsError::invalid(
                IssueCode::TooCostly,
                format!(
                    "a history page may start at most {} versions deep; narrow it with _since",
                    crate::MAX_HISTORY_OFFSET
                ),
            ));
        }
        // Every version to start with; `history_inner` narrows to the caller's.
        let q = &HistoryQuery {
            scope: request.scope.clone(),
            since: request.since,
            at: request.at,
            count: request.count,
            offset: request.offset,
            access: oxehr_store::access::Access::All,
        };
        let what = match &q.scope {
            HistoryScope::Instance(rtype, id) => format!("{rtype}/{id}/_history"),
            HistoryScope::Type(rtype) => format!("{rtype}/_history"),
            HistoryScope::System => "_history".to_owned(),
        };
        let res = self.history_inner(who, q);
        self.audited(who, "history", what, res)
    }

    fn history_inner(
        &self,
        who: &Caller,
        q: &HistoryQuery,
    ) -> Result<(HistoryPage, Vec<String>), RecordsError> {
        if let HistoryScope::Instance(rtype, _) | HistoryScope::Type(rtype) = &q.scope {
            if audit_view::is_audit_event(rtype.as_str()) {
                return Err(RecordsError::NotAllowed(
                    "the audit trail has no versions to list; search AuditEvent".into(),
                ));
            }
        }
        let mut reader = self.reader()?;
        let access = self.access(who, &mut *reader)?;
        match &q.scope {
            HistoryScope::Instance(rtype, id) => {
                policy::check_type(who, rtype.as_str(), Perm::Read)?;
                match reader.current(rtype, id)? {
                    None => return Err(RecordsError::NotFound(format!("{rtype}/{id}"))),
                    Some(c) => {
                        self.check_visible_current(&access, &mut *reader, &c)?;
                    }
                }
            }
            HistoryScope::Type(rtype) => policy::check_type(who, rtype.as_str(), Perm::Read)?,
            HistoryScope::System => policy::check_all_types(who, Perm::Read)?,
        }
        // An instance's history is listed whole when its current version is visible,
        // unless the adolescent rule may hide some of its versions from a proxy.
        let restricted = !access.is_all()
            && (!matches!(q.scope, HistoryScope::Instance(..))
                || access.hides_any_labelled()
                || access.denies_labels());
        if !restricted {
            let entries = reader.history(q)?;
            let total = reader.history_count(q)?;
            let mut patients = Vec::new();
            for e in &entries {
                patients.extend(self.check_visible(&access, &mut *reader, e)?);
            }
            patients.sort();
            patients.dedup();
            let end = q.offset.saturating_add(q.count);
            return Ok((
                HistoryPage {
                    entries,
                    reported_total: Some(total),
                    next_offset: (q.count > 0 && (end as u64) < total).then_some(end),
                    previous_offset: (q.offset > 0).then(|| q.offset.saturating_sub(q.count)),
                },
                patients,
            ));
        }
        // The versions this caller may see. The SQL leaves out resources whose current
        // compartments are hidden; a version whose own compartments differ (a delete, a
        // resource moved between records) is checked here. Pages are built from what is
        // kept, and `offset` counts the versions scanned, so a page is never short while
        // more follow and no empty page links onward.
        let sql_query = HistoryQuery {
            access: access.clone(),
            ..q.clone()
        };
        let mut kept = Vec::with_capacity(q.count);
        let mut patients = Vec::new();
        let mut scanned = q.offset;
        let mut chunk = q.count.saturating_add(1).clamp(1, 1000);
        let next_offset = loop {
            let rows = reader.history(&HistoryQuery {
                count: chunk,
                offset: scanned,
                ..sql_query.clone()
            })?;
            let fetched = rows.len();
            let mut next = None;
            for e in rows {
                scanned += 1;
                if !who.allows(e.rtype.as_str(), Perm::Read) {
                    continue;
                }
                match self.check_visible(&access, &mut *reader, &e) {
                    Ok(p) if kept.len() < q.count => {
                        patients.extend(p);
                        kept.push(e);
                    }
                    // One more visible version: the next page starts with it.
                    Ok(_) => {
                        next = Some(scanned - 1);
                        break;
                    }
                    // Not the caller's to see: a hidden record's, or (not found) one
                    // the adolescent rule hides from a proxy.
                    Err(RecordsError::Forbidden(_) | RecordsError::NotFound(_)) => {}
                    Err(err) => return Err(err),
                }
            }
            if next.is_some() || fetched < chunk {
                break next.filter(|_| q.count > 0);
            }
            chunk = chunk.saturating_mul(2).min(1000);
        };
        patients.sort();
        patients.dedup();
        Ok((
            HistoryPage {
                entries: kept,
                reported_total: None,
                next_offset,
                previous_offset: None,
            },
            patients,
        ))
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
