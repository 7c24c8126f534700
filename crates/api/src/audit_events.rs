//! The audit trail as FHIR AuditEvent resources, read-only: `GET AuditEvent` (search by
//! `patient`, `agent`, `date`, `action`, `subtype`, `_count`) and `GET AuditEvent/[id]`.
//! The resources are rendered from the hash-chained `audit_log` (their id is the
//! record's sequence number); who may see which records is decided by
//! `Records::audit_events`.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use oxehr_auth::Caller;
use oxehr_records::{format_instant, parse_instant, query, RecordsError};
use oxehr_store::audit::{AuditFilter, StoredAudit};

use crate::error::ApiError;
use crate::format::{fhir_json_response, Rendering};
use crate::AppState;

type ApiResult = Result<axum::response::Response, ApiError>;

/// The type whose instances are the audit trail.
pub const AUDIT_EVENT: &str = "AuditEvent";

/// 405 for any write of an AuditEvent: the trail is written by the server only.
pub fn refuse_write(ty: &str) -> Result<(), ApiError> {
    if ty == AUDIT_EVENT {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            oxehr_fhir::IssueCode::NotSupported,
            "AuditEvents are the server's audit trail: append-only, written by the server",
        ));
    }
    Ok(())
}

/// The fine-grained actions each AuditEvent `action` code (C, R, U, D, E) covers.
fn actions_of(code: &str) -> Option<&'static [&'static str]> {
    Some(match code {
        "C" => &["create"],
        "R" => &["read", "vread", "search", "history"],
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
        "resourceType": "AuditEvent",
        "id": a.seq.to_string(),
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

fn bad(why: impl Into<String>) -> ApiError {
    ApiError::bad_request(why)
}

/// `date` values: `ge2026-01-01`, `lt2026-12-02T10:00:00Z`, … (eq: the whole day or
/// instant range of the given precision is approximated by its start for ge/gt and the
/// next day for a plain date).
fn date_bound(v: &str, f: &mut AuditFilter) -> Result<(), ApiError> {
    let (prefix, value) = match v.get(..2) {
        Some(p @ ("ge" | "gt" | "le" | "lt" | "eq")) => (p, &v[2..]),
        _ => ("eq", v),
    };
    let (start, end) = if value.len() == 10 {
        let start = parse_instant(&format!("{value}T00:00:00Z"))
            .ok_or_else(|| bad("date must be YYYY-MM-DD or an instant"))?;
        (start, start + 86_400_000_000)
    } else {
        let t = parse_instant(value).ok_or_else(|| bad("date must be YYYY-MM-DD or an instant"))?;
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

/// `GET AuditEvent?…` (dispatched from the type-level search).
pub async fn search(
    state: AppState,
    who: Arc<Caller>,
    q: Option<String>,
    headers: HeaderMap,
) -> ApiResult {
    let pairs = q.as_deref().map(query::decode_pairs).unwrap_or_default();
    let rendering = Rendering::from_request(&pairs, &headers)?;
    let mut f = AuditFilter::default();
    let mut count = state.config.default_count;
    for (k, v) in &pairs {
        match k.as_str() {
            "patient" => f.patient = Some(v.trim_start_matches("Patient/").to_owned()),
            "agent" | "altid" => f.user = Some(v.to_lowercase()),
            "date" => date_bound(v, &mut f)?,
            "action" => {
                for code in v.split(',') {
                    let a = actions_of(code).ok_or_else(|| bad("action is one of C, R, U, D, E"))?;
                    f.actions.extend(a.iter().map(|s| s.to_string()));
                }
            }
            "subtype" => f.actions.extend(v.split(',').map(str::to_owned)),
            "_count" => {
                count = v
                    .parse::<usize>()
                    .map_err(|_| bad("_count must be a non-negative integer"))?
                    .min(state.config.max_count)
            }
            "_before" => f.before = Some(v.parse().map_err(|_| bad("_before must be a number"))?),
            "_format" | "_pretty" | "_summary" | "_elements" => {}
            other => {
                return Err(bad(format!(
                    "unknown search parameter '{other}' for AuditEvent (patient, agent, date, action, subtype, _count)"
                )))
            }
        }
    }
    let filter = f.clone();
    let records = state.records.clone();
    let found = tokio::task::spawn_blocking(move || records.audit_events(&who, filter, count + 1))
        .await
        .map_err(|_| ApiError::from(RecordsError::Internal("worker failed".into())))??;
    let more = found.len() > count;
    let page: Vec<&StoredAudit> = found.iter().take(count).collect();
    let base = &state.config.base_url;
    let self_query: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "_before")
        .map(|(k, v)| format!("{k}={}", crate::interactions::encode(v)))
        .collect();
    let mut links = vec![
        json!({"relation": "self", "url": format!("{base}/AuditEvent?{}", self_query.join("&"))}),
    ];
    if more {
        if let Some(last) = page.last() {
            let mut q = self_query.clone();
            q.push(format!("_before={}", last.seq));
            links.push(
                json!({"relation": "next", "url": format!("{base}/AuditEvent?{}", q.join("&"))}),
            );
        }
    }
    let entries: Vec<Value> = page
        .iter()
        .map(|a| {
            json!({
                "fullUrl": format!("{base}/AuditEvent/{}", a.seq),
                "resource": render(a),
                "search": {"mode": "match"}
            })
        })
        .collect();
    let bundle =
        json!({"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries});
    Ok(fhir_json_response(
        StatusCode::OK,
        &bundle,
        rendering.pretty,
    ))
}

/// `GET AuditEvent/[id]` (dispatched from read).
pub async fn read(
    state: AppState,
    who: Arc<Caller>,
    id: String,
    q: Option<String>,
    headers: HeaderMap,
) -> ApiResult {
    let pairs = q.as_deref().map(query::decode_pairs).unwrap_or_default();
    let rendering = Rendering::from_request(&pairs, &headers)?;
    let seq: i64 = id
        .parse()
        .map_err(|_| ApiError::from(RecordsError::NotFound(format!("AuditEvent/{id}"))))?;
    let filter = AuditFilter {
        before: seq.checked_add(1),
        ..AuditFilter::default()
    };
    let records = state.records.clone();
    let found = tokio::task::spawn_blocking(move || records.audit_events(&who, filter, 1))
        .await
        .map_err(|_| ApiError::from(RecordsError::Internal("worker failed".into())))??;
    match found.first() {
        Some(a) if a.seq == seq => Ok(fhir_json_response(
            StatusCode::OK,
            &render(a),
            rendering.pretty,
        )),
        _ => Err(ApiError::from(RecordsError::NotFound(format!(
            "AuditEvent/{id}"
        )))),
    }
}
