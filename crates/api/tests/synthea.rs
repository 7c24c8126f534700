//! Every Synthea bundle in ../shared/data/synthea imports through `POST /fhir` and every
//! resource reads back equal to what was sent, apart from `id`/`meta` and the references
//! the transaction rewrote (checked independently: each `urn:uuid:` reference must point
//! at the location the response gave that entry; each conditional reference at a resource
//! that has the identifier it asked for).

mod common;

use std::collections::HashMap;

use common::{without_id_meta, TestServer};
use serde_json::Value;

fn bundles(dir: &str) -> Vec<(String, Value)> {
    common::synthea_files(dir)
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            (
                p.display().to_string(),
                serde_json::from_str(&text).expect("json"),
            )
        })
        .collect()
}

/// Replaces references as the server must have: fullUrl → Type/id.
fn expected(resource: &Value, ids: &HashMap<String, String>) -> Value {
    match resource {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("reference", Value::String(r)) => (
                        k.clone(),
                        Value::String(ids.get(r).cloned().unwrap_or_else(|| r.clone())),
                    ),
                    _ => (k.clone(), expected(v, ids)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| expected(v, ids)).collect()),
        other => other.clone(),
    }
}

/// Checks conditional references (`Type?identifier=s|v`) in `sent` against `stored`.
async fn check_conditional_refs(
    s: &TestServer,
    sent: &Value,
    stored: &mut Value,
    cache: &mut HashMap<String, String>,
) {
    match (sent, stored) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if let (Some(Value::String(want)), true) = (Some(v), k == "reference") {
                    if let Some((ty, q)) = want.split_once('?') {
                        let got = b
                            .get("reference")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        assert!(
                            got.starts_with(&format!("{ty}/")),
                            "conditional reference {want} resolved to {got}"
                        );
                        if !cache.contains_key(&got) {
                            let (status, target, _) = s.get(&got).await;
                            assert_eq!(status, 200);
                            let ident = q.strip_prefix("identifier=").expect("identifier query");
                            let (system, value) = ident.split_once('|').expect("system|value");
                            let has = target["identifier"].as_array().is_some_and(|ids| {
                                ids.iter()
                                    .any(|i| i["system"] == system && i["value"] == value)
                            });
                            assert!(has, "{got} lacks identifier {ident}");
                            cache.insert(got.clone(), want.clone());
                        }
                        // Put the sent form back so the rest compares equal.
                        b.insert("reference".into(), Value::String(want.clone()));
                        continue;
                    }
                }
                if let Some(bv) = b.get_mut(k) {
                    Box::pin(check_conditional_refs(s, v, bv, cache)).await;
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (x, y) in a.iter().zip(b.iter_mut()) {
                Box::pin(check_conditional_refs(s, x, y, cache)).await;
            }
        }
        _ => {}
    }
}

async fn import_and_read_back(s: &TestServer, dir: &str) -> usize {
    let mut checked = 0;
    let mut cond_cache = HashMap::new();
    for (name, bundle) in bundles(dir) {
        let (status, resp, _) = s.post("", &bundle).await;
        assert_eq!(status, 200, "{name}: {resp}");
        let sent = bundle["entry"].as_array().expect("entries");
        let got = resp["entry"].as_array().expect("response entries");
        assert_eq!(sent.len(), got.len(), "{name}");
        let mut ids = HashMap::new();
        for (e, r) in sent.iter().zip(got) {
            let st = r["response"]["status"].as_str().unwrap_or("");
            assert!(
                st.starts_with("201") || st.starts_with("200"),
                "{name}: entry answered {st}: {r}"
            );
            let loc = r["response"]["location"].as_str().expect("location");
            let reference = loc.split("/_history").next().expect("ref").to_string();
            if let Some(fu) = e["fullUrl"].as_str() {
                ids.insert(fu.to_string(), reference);
            }
        }
        for (e, r) in sent.iter().zip(got) {
            let reference = r["response"]["location"]
                .as_str()
                .expect("location")
                .split("/_history")
                .next()
                .expect("ref")
                .to_string();
            let (status, mut stored, _) = s.get(&reference).await;
            assert_eq!(status, 200, "{name}: {reference}");
            let want = expected(&e["resource"], &ids);
            check_conditional_refs(s, &want, &mut stored, &mut cond_cache).await;
            if r["response"]["status"]
                .as_str()
                .unwrap_or("")
                .starts_with("201")
            {
                assert_eq!(
                    without_id_meta(&stored).to_string(),
                    without_id_meta(&want).to_string(),
                    "{name}: {reference} differs from what was sent"
                );
            }
            checked += 1;
        }
    }
    checked
}

async fn synthea_bundles_import_and_read_back(s: &TestServer) {
    oxehr_testdata::require!();
    let n = import_and_read_back(s, "smart-on-fhir-r4").await;
    // 89 patients plus the hospital file: 12,738 resources (shared/data/README.md).
    assert_eq!(n, 12_738);
    let n = import_and_read_back(s, "synthea-v3").await;
    assert!(n > 0);
    let (_, patients, _) = s.get("Patient?_summary=count").await;
    assert_eq!(patients["total"], 89 + 5);
}

on_both_backends!(synthea_bundles_import_and_read_back);
