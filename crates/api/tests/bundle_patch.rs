//! PATCH inside batch and transaction Bundles (FHIR R4 http.html#patch, "Patch using
//! Bundles": the entry's resource is a Binary holding a JSON Patch, `contentType`
//! `application/json-patch+json`, base64 `data`), on both backends: it changes the
//! resource as a PATCH on its URL does; a failing patch fails its transaction, storing
//! nothing, or only its entry in a batch; FHIRPath Patch is refused with a clear
//! OperationOutcome.

mod common;

use base64::Engine as _;
use common::TestServer;
use serde_json::{json, Value};

fn binary(patch: &Value) -> Value {
    json!({
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64::engine::general_purpose::STANDARD.encode(patch.to_string()),
    })
}

fn patch_entry(url: &str, patch: &Value) -> Value {
    json!({"resource": binary(patch), "request": {"method": "PATCH", "url": url}})
}

async fn patient(s: &TestServer, id: &str) -> Value {
    let p = json!({"resourceType": "Patient", "id": id, "active": false,
        "name": [{"family": "Okafor", "given": ["Ada"]}]});
    let (st, body, _) = s.put(&format!("Patient/{id}"), &p).await;
    assert!(st == 200 || st == 201, "{body}");
    body
}

async fn a_transaction_patches_alongside_its_other_entries(s: &TestServer) {
    patient(s, "bp1").await;
    let patch = json!([
        {"op": "test", "path": "/active", "value": false},
        {"op": "replace", "path": "/active", "value": true},
        {"op": "add", "path": "/gender", "value": "female"}
    ]);
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        patch_entry("Patient/bp1", &patch),
        {"fullUrl": "urn:uuid:0d6c5f1e-0000-4000-8000-00000000b001",
         "resource": {"resourceType": "Observation", "status": "final",
            "code": {"text": "weight"}, "subject": {"reference": "Patient/bp1"}},
         "request": {"method": "POST", "url": "Observation"}}
    ]});
    let (st, body, _) = s.post("", &tx).await;
    assert_eq!(st, 200, "{body}");
    assert!(
        body["entry"][0]["response"]["status"]
            .as_str()
            .unwrap_or("")
            .starts_with("200"),
        "{body}"
    );
    assert!(
        body["entry"][1]["response"]["status"]
            .as_str()
            .unwrap_or("")
            .starts_with("201"),
        "{body}"
    );
    let (_, read, _) = s.get("Patient/bp1").await;
    assert_eq!(read["active"], true);
    assert_eq!(read["gender"], "female");
    assert_eq!(read["name"][0]["family"], "Okafor");
    assert_eq!(read["meta"]["versionId"], "2");

    // A patch whose test fails fails the whole transaction: the Observation beside it
    // is not stored, the Patient keeps its version.
    let failing = json!([{"op": "test", "path": "/active", "value": false},
        {"op": "replace", "path": "/active", "value": false}]);
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        patch_entry("Patient/bp1", &failing),
        {"resource": {"resourceType": "Observation", "status": "final",
            "code": {"text": "not stored"}, "subject": {"reference": "Patient/bp1"}},
         "request": {"method": "POST", "url": "Observation"}}
    ]});
    let (st, oo, _) = s.post("", &tx).await;
    assert!((400..500).contains(&st), "{st} {oo}");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let (_, found, _) = s.get("Observation?subject=Patient/bp1").await;
    assert_eq!(found["total"], 1, "{found}");
    let (_, read, _) = s.get("Patient/bp1").await;
    assert_eq!(read["meta"]["versionId"], "2");
}

async fn a_batch_patch_fails_alone(s: &TestServer) {
    patient(s, "bp2").await;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        patch_entry("Patient/bp2", &json!([{"op": "replace", "path": "/active", "value": true}])),
        patch_entry("Patient/does-not-exist", &json!([{"op": "replace", "path": "/active", "value": true}])),
        {"resource": {"resourceType": "Parameters", "parameter": []},
         "request": {"method": "PATCH", "url": "Patient/bp2"}}
    ]});
    let (st, body, _) = s.post("", &batch).await;
    assert_eq!(st, 200, "{body}");
    let status = |i: usize| {
        body["entry"][i]["response"]["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert!(status(0).starts_with("200"), "{body}");
    assert!(status(1).starts_with("404"), "{body}");
    assert!(status(2).starts_with("400"), "{body}");
    let why = body["entry"][2]["response"]["outcome"]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(why.contains("FHIRPath Patch"), "{body}");
    let (_, read, _) = s.get("Patient/bp2").await;
    assert_eq!(read["active"], true);
}

on_both_backends!(
    a_transaction_patches_alongside_its_other_entries,
    a_batch_patch_fails_alone,
);
