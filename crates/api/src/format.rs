//! Response formats: `_format` / `Accept`, `_pretty`, `_summary` and `_elements`.
//!
//! oxehr speaks FHIR JSON. A request that wants only XML or another format gets 406.
//! `_summary` and `_elements` filter each resource and mark the result `SUBSETTED`:
//! - `_summary=true` keeps the elements the core definitions flag `isSummary` (or
//!   require), at every level: a kept element's own children are filtered by their
//!   flags too (`Observation.component` keeps `code` and `value[x]`, drops
//!   `interpretation`); contained resources are kept whole. `text` keeps `text`, `id`,
//!   `meta` and the required elements; `data` drops `text`.
//! - `_elements` names elements by path: `name` keeps every name whole, `name.family`
//!   keeps only each name's family (R5's nested paths; R4 names only top-level ones,
//!   which are the same). A leading resource type (`Patient.name`) is allowed.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use oxehr_fhir::{Definitions, IssueCode};

use crate::error::ApiError;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    False,
    True,
    Text,
    Data,
    Count,
}

/// How to render resources in a response.
#[derive(Debug, Clone)]
pub struct Rendering {
    pub pretty: bool,
    pub summary: Summary,
    pub elements: Option<Vec<String>>,
}

impl Rendering {
    /// Reads `_format`, `_pretty`, `_summary`, `_elements` and the `Accept` header.
    pub fn from_request(
        params: &[(String, String)],
        headers: &HeaderMap,
    ) -> Result<Rendering, ApiError> {
        let mut r = Rendering {
            pretty: false,
            summary: Summary::False,
            elements: None,
        };
        let mut format = None;
        for (k, v) in params {
            match k.as_str() {
                "_format" => format = Some(v.clone()),
                "_pretty" => r.pretty = v == "true",
                "_summary" => {
                    r.summary = match v.as_str() {
                        "true" => Summary::True,
                        "false" => Summary::False,
                        "text" => Summary::Text,
                        "data" => Summary::Data,
                        "count" => Summary::Count,
                        _ => {
                            return Err(ApiError::bad_request(
                                "_summary must be true, false, text, data or count",
                            ))
                        }
                    }
                }
                "_elements" => {
                    r.elements = Some(
                        v.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect(),
                    )
                }
                _ => {}
            }
        }
        match format {
            Some(f) => {
                if !is_json_format(&f) {
                    return Err(not_acceptable());
                }
            }
            None => {
                if let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
                    if !accepts_json(accept) {
                        return Err(not_acceptable());
                    }
                }
            }
        }
        Ok(r)
    }

    pub fn is_plain(&self) -> bool {
        !self.pretty && self.summary == Summary::False && self.elements.is_none()
    }

    /// Applies `_summary` / `_elements` to one resource.
    pub fn filter(&self, resource: &mut Value) {
        let Value::Object(map) = resource else { return };
        let rtype = map
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(list) = &self.elements {
            let tree = element_tree(list, &rtype);
            let before = map.len();
            let mut changed = false;
            map.retain(|k, _| {
                matches!(k.as_str(), "resourceType" | "id" | "meta")
                    || tree.contains_key(k.strip_prefix('_').unwrap_or(k))
            });
            for (k, v) in map.iter_mut() {
                if let Some(sub) = tree.get(k.strip_prefix('_').unwrap_or(k)) {
                    changed |= keep_paths(v, sub);
                }
            }
            if map.len() != before || changed {
                mark_subsetted(map);
            }
            return;
        }
        if self.summary == Summary::True {
            let defs = Definitions::r4();
            for (k, v) in map.iter_mut() {
                if let Some(c) = defs.child(&rtype, k.strip_prefix('_').unwrap_or(k)) {
                    summarize(defs, c.context, v, 0);
                }
            }
        }
        let keep: Box<dyn Fn(&str) -> bool> = match self.summary {
            Summary::True => {
                let defs = Definitions::r4();
                let rt = rtype.clone();
                Box::new(move |k: &str| {
                    defs.child(&rt, k.strip_prefix('_').unwrap_or(k))
                        .is_some_and(|c| c.element.summary || c.element.min > 0)
                })
            }
            Summary::Text => {
                let defs = Definitions::r4();
                let rt = rtype.clone();
                Box::new(move |k: &str| {
                    k == "text" || defs.child(&rt, k).is_some_and(|c| c.element.min > 0)
                })
            }
            Summary::Data => Box::new(|k: &str| k != "text"),
            _ => return,
        };
        let before = map.len();
        map.retain(|k, _| k == "resourceType" || k == "id" || k == "meta" || keep(k));
        if map.len() != before || self.summary == Summary::True {
            mark_subsetted(map);
        }
    }

    /// Serializes a value as this rendering asks.
    pub fn to_bytes(&self, value: &Value) -> Vec<u8> {
        let out = if self.pretty {
            serde_json::to_vec_pretty(value)
        } else {
            serde_json::to_vec(value)
        };
        out.unwrap_or_default()
    }

    /// The bytes of a stored resource body rendered as asked; the stored bytes as they
    /// are when nothing needs changing.
    pub fn render_body(&self, body: &str) -> Vec<u8> {
        if self.is_plain() {
            return body.as_bytes().to_vec();
        }
        match serde_json::from_str::<Value>(body) {
            Ok(mut v) => {
                self.filter(&mut v);
                self.to_bytes(&v)
            }
            Err(_) => body.as_bytes().to_vec(),
        }
    }
}

/// Nested `_elements` paths as a tree: `name.family,name.given,identifier` →
/// {name: {family, given}, identifier (whole)}. A path that ends at an element keeps it
/// whole, which wins over paths into it.
#[derive(Debug, Default, Clone)]
struct Paths {
    whole: bool,
    children: std::collections::BTreeMap<String, Paths>,
}

fn element_tree(list: &[String], rtype: &str) -> std::collections::BTreeMap<String, Paths> {
    let mut root = Paths::default();
    for path in list {
        let path = path
            .strip_prefix(rtype)
            .and_then(|p| p.strip_prefix('.'))
            .unwrap_or(path);
        let mut parts = path.split('.').filter(|p| !p.is_empty()).peekable();
        let mut node = &mut root;
        while let Some(p) = parts.next() {
            node = node.children.entry(p.to_owned()).or_default();
            if parts.peek().is_none() {
                node.whole = true;
            }
        }
    }
    root.children
}

/// Keeps, in `v` (an element, or a list of them), only the children `sub` names;
/// true when something was dropped.
fn keep_paths(v: &mut Value, sub: &Paths) -> bool {
    if sub.whole || sub.children.is_empty() {
        return false;
    }
    match v {
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| keep_paths(item, sub) | changed),
        Value::Object(obj) => {
            let before = obj.len();
            obj.retain(|k, _| sub.children.contains_key(k.strip_prefix('_').unwrap_or(k)));
            let mut changed = obj.len() != before;
            for (k, child) in obj.iter_mut() {
                if let Some(s) = sub.children.get(k.strip_prefix('_').unwrap_or(k)) {
                    changed |= keep_paths(child, s);
                }
            }
            changed
        }
        _ => false,
    }
}

/// How deep `_summary=true` filters nested elements (FHIR content nests far less).
const MAX_SUMMARY_DEPTH: usize = 32;

/// Keeps, in `v` (the value of an element whose children are defined at `context`), the
/// children flagged `isSummary` or required, and so on down. Contained resources (and
/// anything the definitions do not describe) are left whole.
fn summarize(defs: &Definitions, context: &str, v: &mut Value, depth: usize) {
    if depth >= MAX_SUMMARY_DEPTH || context == "Resource" {
        return;
    }
    match v {
        Value::Array(items) => {
            for item in items {
                summarize(defs, context, item, depth + 1);
            }
        }
        Value::Object(obj) => {
            obj.retain(|k, _| {
                let name = k.strip_prefix('_').unwrap_or(k);
                // Leave what the definitions do not know about this context alone.
                match defs.child(context, name) {
                    Some(c) => c.element.summary || c.element.min > 0,
                    None => defs.child(context, "id").is_none(),
                }
            });
            for (k, child) in obj.iter_mut() {
                if let Some(c) = defs.child(context, k.strip_prefix('_').unwrap_or(k)) {
                    summarize(defs, c.context, child, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn mark_subsetted(map: &mut Map<String, Value>) {
    let meta = map.entry("meta").or_insert_with(|| json!({}));
    if let Value::Object(meta) = meta {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Value::Array(tags) = tags {
            tags.push(json!({
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "SUBSETTED"
            }));
        }
    }
}

fn is_json_format(f: &str) -> bool {
    let f = f.split(';').next().unwrap_or("").trim();
    matches!(
        f,
        "json" | "application/json" | "application/fhir+json" | "application/json+fhir"
    )
}

fn accepts_json(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let t = part.split(';').next().unwrap_or("").trim();
        t.is_empty() || t == "*/*" || t == "application/*" || is_json_format(t)
    })
}

fn not_acceptable() -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        IssueCode::NotSupported,
        "oxehr answers in FHIR JSON only (application/fhir+json)",
    )
}

/// Checks a request body's Content-Type: FHIR JSON (or `extra`, e.g. JSON Patch).
pub fn check_content_type(headers: &HeaderMap, extra: &[&str]) -> Result<(), ApiError> {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let t = ct.split(';').next().unwrap_or("").trim();
    if is_json_format(t) || extra.contains(&t) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueCode::NotSupported,
            format!("Content-Type '{t}' is not supported; send application/fhir+json"),
        ))
    }
}

/// A FHIR JSON response with `value` as body.
pub fn fhir_json_response(status: StatusCode, value: &Value, pretty: bool) -> Response {
    let bytes = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    bytes_response(status, bytes.unwrap_or_default())
}

pub fn bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    resp
}
