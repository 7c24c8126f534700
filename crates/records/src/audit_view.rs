//! The audit trail as FHIR `AuditEvent` resources: the one way any path reads it, and the
//! rule that no path writes it.
//!
//! AuditEvents are the server's trail, written by the server only: every write of the
//! type (create, update, patch, delete, conditional ones, Bundle entries, whoever asks)
//! is refused as not allowed, here and again inside the write job
//! ([`crate::policy::check_writes`]). Reads — `read`, `vread`, a search by GET or POST, a
//! Bundle's GET entry, a compartment search — render records of the hash-chained
//! `audit_log` (their id is the record's sequence number), under
//! [`Records::audit_events`]' rule of who sees which records. A search of stored
//! resources never includes the type.
//!
//! Search parameters: `patient`, `agent` (the user name; `altid` too), `date` (`ge`,
//! `gt`, `le`, `lt`, `eq` on a day or an instant), `action` (C, R, U, D, E), `subtype`
//! (oxehr's action names), `_count`, and `_page` (the paging position the `next` link
//! carries: the last record's sequence number).
//!
//! [`verify`] checks the trail itself: the hash chain of the log and its head
//! (`oxehr audit verify`).

use serde_json::{json, Value};

use oxehr_auth::Caller;
use oxehr_fhir::{IssueCode, ResourceId, ResourceType, VersionId};
use oxehr_store::{Method, Store, StoredResource};

pub use oxehr_store::access::BREAK_THE_GLASS;
pub use oxehr_store::audit::{AuditFilter, AuditRecord, Head, StoredAudit, Verification};

use crate::search::SearchPage;
use crate::{format_instant, parse_instant, Records, RecordsError};

/// The type whose instances are the audit trail.
pub const AUDIT_EVENT: &str = "AuditEvent";

/// Checks that no record of the audit log was altered, removed or reordered: its hash
/// chain and its head, read in one snapshot of `store`. Needs no [`Records`] (nothing is
/// appended, so no auditor runs): the operator's check runs against the database alone.
pub fn verify(store: &dyn Store) -> Result<Verification, RecordsError> {
    let mut read = store.read()?;
    Ok(oxehr_store::audit::verify(read.as_mut())?)
}

/// Whether `rtype` is the audit trail's type.
pub fn is_audit_event(rtype: &str) -> bool {
    rtype == AUDIT_EVENT
}

/// Not allowed for any caller: AuditEvents are written by the server only.
pub(crate) fn refuse_write(rtype: &str) -> Result<(), RecordsError> {
    if is_audit_event(rtype) {
        return Err(RecordsError::NotAllowed(
            "AuditEvents are the server's audit trail: written by the server only".into(),
        ));
    }
    Ok(())
}

/// The fine-grained actions each AuditEvent `action` code (C, R, U, D, E) covers.
fn actions_of(code: &str) -> Option<&'static [&'static str]> {
    Some(match code {
        "C" => &["create"],
        "R" => &["read", "vread", "search", "history", "view-run"],
        "U" => &["update", "patch"],
        "D" => &["delete"],
        "E" => &["break-the-glass", "login", "login-failed", "import"],
        _ => return None,
    })
}

fn action_code(action: &str) -> &'static str {
    for code in ["C", "R", "U", "D"] {
        if actions_of(code).is_some_and(|a| a.contains(&action)) {
            return code;
        }
    }
    "E"
}

/// One record as an AuditEvent.
pub fn render(a: &StoredAudit) -> Value {
    let r = &a.record;
    let mut agents = vec![json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "humanuser", "display": "human user"}]},
        "who": {"identifier": {"system": "urn:oxehr:user", "value": r.user.clone().unwrap_or_default()}},
        "role": r.role.as_ref().map(|role| json!([{"text": role}])).unwrap_or(Value::Null),
        "requestor": true,
        "network": r.client.as_ref().map(|c| json!({"address": c, "type": "2"})).unwrap_or(Value::Null),
    })];
    if let Some(org) = &r.organization {
        agents.push(json!({
            "who": {"reference": format!("Organization/{org}")},
            "requestor": false
        }));
    }
    for agent in &mut agents {
        if let Value::Object(m) = agent {
            m.retain(|_, v| !v.is_null());
        }
    }
    let mut entities = Vec::new();
    if let Some(p) = &r.patient {
        entities.push(json!({
            "what": {"reference": format!("Patient/{p}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}
        }));
    }
    if let Some(res) = &r.resource {
        entities.push(json!({"what": {"display": res}}));
    }
    let mut event = json!({
        "resourceType": AUDIT_EVENT,
        "id": a.seq.to_string(),
        "meta": {"versionId": "1", "lastUpdated": format_instant(r.time)},
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "urn:oxehr:audit-action", "code": r.action}],
        "action": action_code(&r.action),
        "recorded": format_instant(r.time),
        "outcome": if r.outcome == "success" { "0" } else { "4" },
        "outcomeDesc": r.outcome,
        "agent": agents,
        "source": {"observer": {"display": "oxehr"}},
    });
    if !entities.is_empty() {
        event["entity"] = Value::Array(entities);
    }
    if r.action == "break-the-glass" {
        event["purposeOfEvent"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "BTG", "display": "break the glass"}]}]);
        if let Some(reason) = &r.detail {
            event["outcomeDesc"] = json!(format!("success; reason: {reason}"));
        }
    }
    event
}

/// A rendered record as a stored resource (version 1: records never change).
fn as_resource(a: &StoredAudit) -> Result<StoredResource, RecordsError> {
    Ok(StoredResource {
        rtype: ResourceType::parse(AUDIT_EVENT)
            .ok_or_else(|| RecordsError::Internal("AuditEvent type".into()))?,
        id: ResourceId::parse(&a.seq.to_string())
            .ok_or_else(|| RecordsError::Internal("audit sequence as an id".into()))?,
        version: VersionId(1),
        last_updated: a.record.time,
        method: Method::Create,
        body: Some(render(a).to_string()),
    })
}

fn bad(why: impl Into<String>) -> RecordsError {
    RecordsError::invalid(IssueCode::Invalid, why)
}

/// `date` values: `ge2026-01-01`, `lt2026-12-02T10:00:00Z`, … (a plain date is its whole
/// day; an instant is that microsecond).
fn date_bound(v: &str, f: &mut AuditFilter) -> Result<(), RecordsError> {
    let (prefix, value) = match v.get(..2) {
        Some(p @ ("ge" | "gt" | "le" | "lt" | "eq")) => (p, &v[2..]),
        _ => ("eq", v),
    };
    let malformed = || bad("date must be YYYY-MM-DD or an instant");
    let (start, end) = if value.len() == 10 {
        let start = parse_instant(&format!("{value}T00:00:00Z")).ok_or_else(malformed)?;
        (start, start + 86_400_000_000)
    } else {
        let t = parse_instant(value).ok_or_else(malformed)?;
        (t, t + 1)
    };
    match prefix {
        "ge" => f.since = Some(start),
        "gt" => f.since = Some(end),
        "lt" => f.until = Some(start),
        "le" => f.until = Some(end),
        _ => {
            f.since = Some(start);
            f.until = Some(end);
        }
    }
    Ok(())
}

/// A search of the audit trail, parsed.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub filter: AuditFilter,
    /// `_count`, if given.
    pub count: Option<usize>,
}

/// Parses the parameters of an AuditEvent search; the same rules for characters,
/// lengths and counts as any search ([`oxehr_search::query::check_pairs`]).
pub fn parse(pairs: &[(String, String)]) -> Result<AuditQuery, RecordsError> {
    oxehr_search::query::check_pairs(pairs).map_err(crate::query::query_error)?;
    let mut q = AuditQuery::default();
    let f = &mut q.filter;
    for (k, v) in pairs {
        match k.as_str() {
            "patient" => f.patient = Some(v.trim_start_matches("Patient/").to_owned()),
            "agent" | "altid" => f.user = Some(v.to_lowercase()),
            "date" => date_bound(v, f)?,
            "action" => {
                for code in v.split(',') {
                    let a = actions_of(code).ok_or_else(|| bad("action is one of C, R, U, D, E"))?;
                    f.actions.extend(a.iter().map(|s| s.to_string()));
                }
            }
            "subtype" => f.actions.extend(v.split(',').map(str::to_owned)),
            "_count" => {
                q.count = Some(
                    v.parse::<usize>()
                        .map_err(|_| bad("_count must be a non-negative integer"))?,
                )
            }
            "_page" => {
                f.before = Some(v.parse().map_err(|_| bad("_page is not a position of this search"))?)
            }
            "_format" | "_pretty" | "_summary" | "_elements" => {}
            other => {
                return Err(RecordsError::invalid(
                    IssueCode::NotSupported,
                    format!(
                        "unknown search parameter '{other}' for AuditEvent (patient, agent, date, action, subtype, _count)"
                    ),
                ))
            }
        }
    }
    Ok(q)
}

impl Records {
    /// One page of the audit trail (at most `limit` records, newest first) as
    /// AuditEvents; `next` is the `_page` position of the next page.
    pub fn audit_event_search(
        &self,
        who: &Caller,
        q: &AuditQuery,
        limit: usize,
    ) -> Result<SearchPage, RecordsError> {
        let found = self.audit_events(who, q.filter.clone(), limit + 1)?;
        let more = found.len() > limit;
        let page: Vec<&StoredAudit> = found.iter().take(limit).collect();
        let next = if more {
            page.last().map(|a| a.seq.to_string())
        } else {
            None
        };
        Ok(SearchPage {
            matches: page
                .into_iter()
                .map(as_resource)
                .collect::<Result<_, _>>()?,
            included: Vec::new(),
            total: None,
            next,
            previous: None,
            ignored: Vec::new(),
            includes_truncated: false,
        })
    }

    /// `AuditEvent/[id]`: one record, if the caller may see it.
    pub(crate) fn audit_event_read(
        &self,
        who: &Caller,
        id: &ResourceId,
    ) -> Result<StoredResource, RecordsError> {
        let not_found = || RecordsError::NotFound(format!("{AUDIT_EVENT}/{id}"));
        let seq: i64 = id.as_str().parse().map_err(|_| not_found())?;
        let filter = AuditFilter {
            before: seq.checked_add(1),
            ..AuditFilter::default()
        };
        match self.audit_events(who, filter, 1)?.first() {
            Some(a) if a.seq == seq => as_resource(a),
            _ => Err(not_found()),
        }
    }
}
