//! The oracle's copy of what the server holds: every resource the test loaded, keyed by the
//! `Type/id` the server gave it, with references rewritten the way the transaction must
//! have rewritten them. Built from the bundles and the transaction responses only; the
//! server is never asked what it stored.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::common::TestServer;

pub struct Data {
    /// `Type/id` → the resource as the server must hold it (`id` is the server's).
    pub res: BTreeMap<String, Value>,
    /// The server base, e.g. `http://127.0.0.1:1234/fhir`.
    pub base: String,
}

impl Data {
    /// Every resource of one type.
    pub fn of<'a>(&'a self, ty: &str) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        let prefix = format!("{ty}/");
        self.res
            .range::<String, _>(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
    }

    /// The refs (`Type/id`) of the resources of `ty` for which `f` holds.
    pub fn select(&self, ty: &str, f: impl Fn(&Value) -> bool) -> BTreeSet<String> {
        self.of(ty)
            .filter(|(_, r)| f(r))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn all(&self, ty: &str) -> BTreeSet<String> {
        self.select(ty, |_| true)
    }

    pub fn count(&self, ty: &str) -> usize {
        self.of(ty).count()
    }

    /// `Type/id` for a literal reference to this server, else `None`.
    pub fn local(&self, reference: &str) -> Option<String> {
        let r = reference
            .strip_prefix(&self.base)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(reference);
        let r = r.split("/_history").next()?;
        let (ty, id) = r.split_once('/')?;
        if ty.is_empty() || id.is_empty() || id.contains('/') || r.contains(':') {
            return None;
        }
        Some(r.to_string())
    }

    /// The `Type/id`s the References at `path` of `r` point at.
    pub fn targets(&self, r: &Value, path: &str) -> Vec<String> {
        at(r, path)
            .into_iter()
            .filter_map(|v| v["reference"].as_str())
            .filter_map(|s| self.local(s))
            .collect()
    }

    /// The resources the References at `path` of `r` point at.
    pub fn follow<'a>(&'a self, r: &Value, path: &str) -> Vec<&'a Value> {
        self.targets(r, path)
            .into_iter()
            .filter_map(|t| self.res.get(&t))
            .collect()
    }
}

/// The values at a dotted path, with arrays flattened at every step (like FHIRPath).
pub fn at<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![v];
    for step in path.split('.').filter(|s| !s.is_empty()) {
        let mut next = Vec::new();
        for c in cur {
            match c.get(step) {
                Some(Value::Array(a)) => next.extend(a.iter()),
                Some(Value::Null) | None => {}
                Some(x) => next.push(x),
            }
        }
        cur = next;
    }
    cur
}

/// The strings at a dotted path.
pub fn strs<'a>(v: &'a Value, path: &str) -> Vec<&'a str> {
    at(v, path).into_iter().filter_map(Value::as_str).collect()
}

/// One string at a dotted path.
pub fn str1<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    strs(v, path).into_iter().next()
}

/// Replaces each `reference` found in `ids` (fullUrl → Type/id).
fn rewrite(v: &mut Value, ids: &HashMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match x {
                    Value::String(s) if k == "reference" => {
                        if let Some(to) = ids.get(s.as_str()) {
                            *s = to.clone();
                        }
                    }
                    _ => rewrite(x, ids),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, ids)),
        _ => {}
    }
}

fn conditional_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if k == "reference" && s.contains('?') => {
                        out.insert(s.clone());
                    }
                    _ => conditional_refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| conditional_refs(x, out)),
        _ => {}
    }
}

/// The time now as a FHIR instant (UTC, seconds).
pub fn now_instant() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    crate::search_oracle::value::format_instant(secs * 1000)
}

pub struct Loaded {
    pub data: Data,
    /// An instant before anything was loaded.
    pub before: String,
    /// An instant after the smart-on-fhir set and before the synthea-v3 set.
    pub between: String,
    /// The resources the synthea-v3 set created.
    pub v3: BTreeSet<String>,
}

/// POSTs one bundle; returns the created `(Type/id, resource)` pairs with bundle-local
/// references rewritten, and the fullUrl → Type/id map.
async fn post_bundle(s: &TestServer, path: &std::path::Path) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(path).expect("read bundle");
    let bundle: Value = serde_json::from_str(&text).expect("bundle json");
    let (status, resp, _) = s.post("", &bundle).await;
    assert_eq!(status, 200, "{}: {resp}", path.display());
    let sent = bundle["entry"].as_array().expect("entries");
    let got = resp["entry"].as_array().expect("response entries");
    assert_eq!(sent.len(), got.len(), "{}", path.display());
    let mut ids = HashMap::new();
    let mut created = Vec::new();
    for (e, r) in sent.iter().zip(got) {
        let loc = r["response"]["location"].as_str().expect("location");
        let loc = loc
            .strip_prefix(&s.base)
            .unwrap_or(loc)
            .trim_start_matches('/');
        let reference = loc.split("/_history").next().expect("ref").to_string();
        if let Some(fu) = e["fullUrl"].as_str() {
            ids.insert(fu.to_string(), reference.clone());
        }
        // 200 answers an `ifNoneExist` that found an earlier resource: nothing new.
        if r["response"]["status"]
            .as_str()
            .unwrap_or("")
            .starts_with("201")
        {
            created.push((reference, e["resource"].clone()));
        }
    }
    for (reference, res) in created.iter_mut() {
        rewrite(res, &ids);
        let id = reference.split_once('/').expect("Type/id").1;
        res["id"] = Value::String(id.to_string());
    }
    created
}

/// Loads both Synthea sets once; the oracle's data comes from the bundles.
pub async fn load_synthea(s: &TestServer) -> Loaded {
    let before = now_instant();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut res = BTreeMap::new();
    for f in crate::common::synthea_files("smart-on-fhir-r4") {
        res.extend(post_bundle(s, &f).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let between = now_instant();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut v3 = BTreeSet::new();
    for f in crate::common::synthea_files("synthea-v3") {
        for (k, v) in post_bundle(s, &f).await {
            v3.insert(k.clone());
            res.insert(k, v);
        }
    }
    resolve_conditional(&mut res);
    Loaded {
        data: Data {
            res,
            base: s.base.clone(),
        },
        before,
        between,
        v3,
    }
}

/// Rewrites `Type?identifier=system|value` references to the one resource of that type
/// carrying the identifier (the transaction must have resolved them so, or failed).
fn resolve_conditional(res: &mut BTreeMap<String, Value>) {
    let mut wanted = BTreeSet::new();
    res.values().for_each(|r| conditional_refs(r, &mut wanted));
    let mut ids = HashMap::new();
    for want in wanted {
        let (ty, q) = want.split_once('?').expect("conditional");
        let ident = q.strip_prefix("identifier=").expect("identifier query");
        let (system, value) = ident.split_once('|').expect("system|value");
        let hits: Vec<&String> = res
            .iter()
            .filter(|(k, r)| {
                k.starts_with(&format!("{ty}/"))
                    && at(r, "identifier")
                        .iter()
                        .any(|i| i["system"] == system && i["value"] == value)
            })
            .map(|(k, _)| k)
            .collect();
        assert_eq!(hits.len(), 1, "{want} matches {hits:?}");
        ids.insert(want.clone(), hits[0].clone());
    }
    res.values_mut().for_each(|r| rewrite(r, &ids));
}

/// Loads the official examples with `PUT Type/id`; returns the accepted ones and the
/// names of those the server rejected as invalid (and any other failure, as an error).
pub async fn load_examples(s: &TestServer) -> (Data, Vec<String>, Vec<String>) {
    let root = oxehr_testdata::path("fhir-examples");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .expect("examples dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut res = BTreeMap::new();
    let mut invalid = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let text = std::fs::read_to_string(&f).expect("read example");
        let Ok(r) = serde_json::from_str::<Value>(&text) else {
            errors.push(format!("{name}: not JSON"));
            continue;
        };
        let (Some(ty), Some(id)) = (r["resourceType"].as_str(), r["id"].as_str()) else {
            continue;
        };
        // AuditEvent on this server is its own audit trail, written only by the server
        // (a PUT is 405): the examples of it are not loaded.
        if ty == "AuditEvent" {
            continue;
        }
        let reference = format!("{ty}/{id}");
        let (status, body, _) = s.put(&reference, &r).await;
        if status == 200 || status == 201 {
            res.insert(reference, r);
        } else if (400..500).contains(&status) && says_invalid(&body) {
            invalid.push(format!("{name} ({status})"));
        } else {
            errors.push(format!("{name}: {status} {body}"));
        }
    }
    (
        Data {
            res,
            base: s.base.clone(),
        },
        invalid,
        errors,
    )
}

/// An OperationOutcome whose issues are all `invalid` or one of its specializations.
fn says_invalid(body: &Value) -> bool {
    let issues = at(body, "issue");
    body["resourceType"] == "OperationOutcome"
        && !issues.is_empty()
        && issues.iter().any(|i| {
            matches!(
                i["code"].as_str(),
                Some("invalid" | "structure" | "required" | "value" | "invariant")
            )
        })
}
