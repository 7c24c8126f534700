//! What every instance and type interaction checks before it reaches the record, over
//! HTTP: the resource type (404 when the server has no such type), the id (400 when it
//! is not a FHIR id: `[A-Za-z0-9\-\.]{1,64}`, FHIR R4 §2.1.0.3 "id"), and the requested
//! format (406 for XML, which oxehr does not speak). Each answer is an OperationOutcome
//! saying which, and nothing is written.

mod common;

use common::{Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

fn diagnostics(b: &Value) -> String {
    assert_eq!(b["resourceType"], "OperationOutcome", "{b}");
    b["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn every_interaction_checks_type_id_and_format_first(s: &TestServer) {
    let patient = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Ng"}]});
    s.put_resource(&patient).await;
    // 65 characters: one more than an id may have.
    let long = "a".repeat(65);
    let cases: Vec<(Method, String, u16, &str)> = vec![
        (
            Method::GET,
            "Shoe/p1".into(),
            404,
            "unknown resource type 'Shoe'",
        ),
        (
            Method::PUT,
            "Shoe/p1".into(),
            404,
            "unknown resource type 'Shoe'",
        ),
        (
            Method::PATCH,
            "Shoe/p1".into(),
            404,
            "unknown resource type 'Shoe'",
        ),
        (
            Method::DELETE,
            "Shoe/p1".into(),
            404,
            "unknown resource type 'Shoe'",
        ),
        (
            Method::POST,
            "Shoe".into(),
            404,
            "unknown resource type 'Shoe'",
        ),
        (
            Method::DELETE,
            "Shoe?name=x".into(),
            404,
            "unknown resource type 'Shoe'",
        ),
        (
            Method::GET,
            "Shoe/p1/_history".into(),
            404,
            "unknown resource type 'Shoe'",
        ),
        (
            Method::GET,
            "Shoe/_history".into(),
            404,
            "unknown resource type 'Shoe'",
        ),
        (
            Method::GET,
            format!("Patient/{long}"),
            400,
            "not a valid FHIR id",
        ),
        (
            Method::PUT,
            "Patient/p_1".into(),
            400,
            "not a valid FHIR id",
        ),
        (
            Method::DELETE,
            "Patient/p%201".into(),
            400,
            "not a valid FHIR id",
        ),
        (
            Method::GET,
            format!("Patient/{long}/_history"),
            400,
            "not a valid FHIR id",
        ),
        (Method::GET, "Patient/p1?_format=xml".into(), 406, "JSON"),
        (Method::PUT, "Patient/p1?_format=xml".into(), 406, "JSON"),
        (Method::POST, "Patient?_format=xml".into(), 406, "JSON"),
        (Method::GET, "metadata?_format=xml".into(), 406, "JSON"),
    ];
    for (method, path, status, says) in cases {
        let (st, b, _) = s.send(method.clone(), &path, &patient, &[]).await;
        assert_eq!(st, status, "{method} {path}: {b}");
        let d = diagnostics(&b);
        assert!(d.contains(says), "{method} {path}: {d}");
    }
    // Nothing was written: p1 is still at version 1, and no Patient was created.
    let (st, b, _) = s.get("Patient/p1").await;
    assert_eq!((st, b["meta"]["versionId"].as_str()), (200, Some("1")));
    let (_, b, _) = s.get("Patient?_summary=count").await;
    assert_eq!(b["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_interaction_checks_type_id_and_format_first_sqlite() {
    let s = common::start(Backend::Sqlite).await.expect("sqlite server");
    every_interaction_checks_type_id_and_format_first(&s).await;
}
