//! Bundles the server answers with: `searchset`, `history` and the responses to
//! `batch` / `transaction`.

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use oxehr_fhir::outcome::{operation_outcome, Issue, IssueCode};
use oxehr_records::{format_instant, BundleKind, EntryOutcome, SearchPage, StoredResource};

use crate::error::ApiError;
use crate::format::Rendering;

/// `W/"3"`.
pub fn etag(r: &StoredResource) -> String {
    format!("W/\"{}\"", r.version)
}

/// `Patient/123/_history/3`.
pub fn version_path(r: &StoredResource) -> String {
    format!("{}/{}/_history/{}", r.rtype, r.id, r.version)
}

/// A stored body as JSON, filtered as the rendering asks.
pub fn resource_value(r: &StoredResource, rendering: &Rendering) -> Option<Value> {
    let body = r.body.as_deref()?;
    let mut v: Value = serde_json::from_str(body).ok()?;
    rendering.filter(&mut v);
    Some(v)
}

pub fn link(relation: &str, url: &str) -> Value {
    json!({"relation": relation, "url": url})
}

/// A `searchset` Bundle: the page's matches, then what `_include`/`_revinclude` added,
/// then, if the search has something to say (ignored parameters, cut includes), an
/// OperationOutcome entry with `search.mode` `outcome`.
pub fn searchset(base: &str, page: &SearchPage, links: Vec<Value>, rendering: &Rendering) -> Value {
    let entry = |r: &StoredResource, mode: &str| {
        let mut e = Map::new();
        e.insert(
            "fullUrl".into(),
            json!(format!("{base}/{}/{}", r.rtype, r.id)),
        );
        if let Some(v) = resource_value(r, rendering) {
            e.insert("resource".into(), v);
        }
        e.insert("search".into(), json!({ "mode": mode }));
        Value::Object(e)
    };
    let mut entries: Vec<Value> = page.matches.iter().map(|r| entry(r, "match")).collect();
    entries.extend(page.included.iter().map(|r| entry(r, "include")));
    let mut notes: Vec<Issue> = page
        .ignored
        .iter()
        .map(|p| {
            Issue::warning(
                IssueCode::NotSupported,
                format!("unknown search parameter '{p}' was ignored"),
            )
        })
        .collect();
    if page.includes_truncated {
        notes.push(Issue::warning(
            IssueCode::TooCostly,
            format!(
                "_include/_revinclude added only the first {} resources",
                oxehr_records::MAX_INCLUDED
            ),
        ));
    }
    if !notes.is_empty() {
        entries.push(json!({
            "resource": operation_outcome(&notes),
            "search": {"mode": "outcome"},
        }));
    }
    let mut b = Map::new();
    b.insert("resourceType".into(), json!("Bundle"));
    b.insert("type".into(), json!("searchset"));
    if let Some(t) = page.total {
        b.insert("total".into(), json!(t));
    }
    b.insert("link".into(), Value::Array(links));
    if !entries.is_empty() {
        b.insert("entry".into(), Value::Array(entries));
    }
    Value::Object(b)
}

/// A `history` Bundle, newest first.
pub fn history(
    base: &str,
    versions: &[StoredResource],
    total: Option<u64>,
    links: Vec<Value>,
    rendering: &Rendering,
) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|r| {
            let mut e = Map::new();
            e.insert("fullUrl".into(), json!(format!("{base}/{}/{}", r.rtype, r.id)));
            if let Some(v) = resource_value(r, rendering) {
                e.insert("resource".into(), v);
            }
            let url = match r.method {
                oxehr_records::Method::Create => r.rtype.to_string(),
                _ => format!("{}/{}", r.rtype, r.id),
            };
            e.insert("request".into(), json!({"method": r.method.http_verb(), "url": url}));
            let status = match r.method {
                oxehr_records::Method::Create => "201 Created",
                oxehr_records::Method::Delete => "204 No Content",
                _ => "200 OK",
            };
            e.insert(
                "response".into(),
                json!({"status": status, "etag": etag(r), "lastModified": format_instant(r.last_updated)}),
            );
            Value::Object(e)
        })
        .collect();
    let mut b = Map::new();
    b.insert("resourceType".into(), json!("Bundle"));
    b.insert("type".into(), json!("history"));
    if let Some(total) = total {
        b.insert("total".into(), json!(total));
    }
    b.insert("link".into(), Value::Array(links));
    if !entries.is_empty() {
        b.insert("entry".into(), Value::Array(entries));
    }
    Value::Object(b)
}

/// The `batch-response` / `transaction-response` Bundle. Resources are included when
/// `with_resources` (Prefer: return=representation).
pub fn bundle_response(
    base: &str,
    kind: BundleKind,
    outcomes: Vec<EntryOutcome>,
    with_resources: bool,
    rendering: &Rendering,
) -> Value {
    let entries: Vec<Value> = outcomes
        .into_iter()
        .map(|o| {
            let written = |r: &StoredResource, status: &str| {
                let mut e = Map::new();
                e.insert("fullUrl".into(), json!(format!("{base}/{}/{}", r.rtype, r.id)));
                if with_resources {
                    if let Some(v) = resource_value(r, rendering) {
                        e.insert("resource".into(), v);
                    }
                }
                e.insert(
                    "response".into(),
                    json!({
                        "status": status,
                        "location": version_path(r),
                        "etag": etag(r),
                        "lastModified": format_instant(r.last_updated),
                    }),
                );
                Value::Object(e)
            };
            match o {
                EntryOutcome::Created(r) => written(&r, "201 Created"),
                EntryOutcome::Updated(r) | EntryOutcome::Existing(r) => written(&r, "200 OK"),
                EntryOutcome::Read(r) => {
                    let mut e = Map::new();
                    e.insert("fullUrl".into(), json!(format!("{base}/{}/{}", r.rtype, r.id)));
                    if let Some(v) = resource_value(&r, rendering) {
                        e.insert("resource".into(), v);
                    }
                    e.insert("response".into(), json!({"status": "200 OK", "etag": etag(&r), "lastModified": format_instant(r.last_updated)}));
                    Value::Object(e)
                }
                EntryOutcome::Deleted(_) => json!({"response": {"status": "204 No Content"}}),
                EntryOutcome::Searched(page) => {
                    let set = searchset(base, &page, vec![], rendering);
                    json!({"resource": set, "response": {"status": "200 OK"}})
                }
                EntryOutcome::Failed(err) => {
                    let api = ApiError::from(err);
                    json!({"response": {
                        "status": status_line(api.status),
                        "outcome": operation_outcome(&api.issues),
                    }})
                }
            }
        })
        .collect();
    let ty = match kind {
        BundleKind::Batch => "batch-response",
        BundleKind::Transaction => "transaction-response",
    };
    json!({"resourceType": "Bundle", "type": ty, "entry": entries})
}

fn status_line(s: StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}
