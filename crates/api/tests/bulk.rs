//! Bulk Data export (`$export`) over real HTTP on both backends, after the checks of the
//! Inferno Bulk Data test kit (kick-off headers and parameters, status polling, the
//! manifest, the files and their access token, cancellation), plus: an export of Synthea
//! patients equals the store, read with SQL of the test's own; a clinician's export holds
//! only the records of their organization's patients; `_type`, `_typeFilter`, `_since`
//! with its deleted list; the per-account limit; expiry.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{issue_token, Backend, TestServer};
use oxehr_api::ApiConfig;
use oxehr_records::RecordsConfig;
use serde_json::{json, Value};

const ASYNC: (&str, &str) = ("prefer", "respond-async");
const FHIR_JSON: (&str, &str) = ("accept", "application/fhir+json");

async fn kickoff(
    s: &TestServer,
    client: &reqwest::Client,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = client.get(s.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    common::split(req.send().await.expect("kick-off")).await
}

/// Polls a status URL until it is not 202; checks the headers of each 202 on the way.
async fn poll(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let resp = client.get(url).send().await.expect("poll");
        let status = resp.status().as_u16();
        if status != 202 {
            let (status, body, headers) = common::split(resp).await;
            if status == 200 {
                let ct = headers["content-type"].to_str().unwrap_or("");
                assert!(ct.starts_with("application/json"), "{ct}");
            }
            return (status, body);
        }
        assert!(
            resp.headers().contains_key("x-progress"),
            "202 without X-Progress"
        );
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in seconds");
        assert!(retry >= 1);
        assert!(Instant::now() < deadline, "export did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs an export to completion and answers its status URL and manifest.
async fn export(s: &TestServer, client: &reqwest::Client, path: &str) -> (String, Value) {
    let (status, body, headers) = kickoff(s, client, path, &[ASYNC, FHIR_JSON]).await;
    assert_eq!(status, 202, "{path}: {body}");
    let url = headers["content-location"]
        .to_str()
        .expect("url")
        .to_owned();
    let (status, manifest) = poll(client, &url).await;
    assert_eq!(status, 200, "{path}: {manifest}");
    (url, manifest)
}

/// Every line of every output file: (type of the file, the resource).
async fn download(client: &reqwest::Client, manifest: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for f in manifest["output"].as_array().expect("output") {
        let resp = client
            .get(f["url"].as_str().expect("url"))
            .header("accept", "application/fhir+ndjson")
            .send()
            .await
            .expect("download");
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["content-type"], "application/fhir+ndjson");
        let text = resp.text().await.expect("text");
        let mut n = 0;
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).expect("each line is one JSON resource");
            assert_eq!(
                v["resourceType"], f["type"],
                "a line of another type in {f}"
            );
            out.push((f["type"].as_str().unwrap_or("").to_owned(), v));
            n += 1;
        }
        assert!(text.ends_with('\n'));
        assert_eq!(Some(n), f["count"].as_u64(), "count of {f}");
    }
    out
}

fn keys(lines: &[(String, Value)]) -> BTreeSet<(String, String, String)> {
    lines
        .iter()
        .map(|(_, r)| {
            (
                r["resourceType"].as_str().unwrap_or("").to_owned(),
                r["id"].as_str().unwrap_or("").to_owned(),
                r["meta"]["versionId"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn load_synthea(s: &TestServer) {
    for p in common::synthea_files("synthea-v3") {
        let bundle: Value =
            serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
        let (status, body, _) = s.post("", &bundle).await;
        assert_eq!(status, 200, "{}: {body}", p.display());
    }
}

/// The current resources of the store, read with a statement of the test's own.
async fn store_keys(s: &TestServer) -> BTreeSet<(String, String, String)> {
    let store = s.records.store().clone();
    tokio::task::spawn_blocking(move || {
        let mut tx = store.read().expect("read");
        let deleted = match tx.dialect() {
            oxehr_store::sql::Dialect::Sqlite => "0",
            oxehr_store::sql::Dialect::Postgres => "FALSE",
        };
        tx.query(
            &format!(
                "SELECT rtype, id, version FROM resource WHERE deleted = {deleted} \
                 AND rtype <> 'AuditEvent'"
            ),
            &[],
        )
        .expect("query")
        .into_iter()
        .map(|row| {
            let text = |v: &oxehr_store::search::SqlValue| match v {
                oxehr_store::search::SqlValue::Text(t) => t.clone(),
                oxehr_store::search::SqlValue::Int(i) => i.to_string(),
                other => format!("{other:?}"),
            };
            (text(&row[0]), text(&row[1]), text(&row[2]))
        })
        .collect()
    })
    .await
    .expect("join")
}

/// A kick-off path, its headers, and the status it must get.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16);

async fn kickoff_headers_and_parameters_are_checked(s: &TestServer) {
    let cases: &[Case] = &[
        ("$export", &[FHIR_JSON], 400),
        ("Patient/$export", &[FHIR_JSON], 400),
        ("$export", &[ASYNC, ("accept", "application/xml")], 400),
        (
            "$export?_outputFormat=application/fhir%2Bjson",
            &[ASYNC, FHIR_JSON],
            400,
        ),
        ("$export?_outputFormat=text/csv", &[ASYNC], 400),
        ("$export?_type=NotAType", &[ASYNC], 400),
        ("$export?_since=yesterday", &[ASYNC], 400),
        ("$export?_elements=id", &[ASYNC], 400),
        (
            "$export?_typeFilter=Observation%3Fnot-a-param%3D1",
            &[ASYNC],
            400,
        ),
        ("Patient/$export?_type=Organization", &[ASYNC], 400),
        ("Group/nope/$export", &[ASYNC], 404),
        (
            "$export?_outputFormat=application/fhir%2Bndjson",
            &[ASYNC, FHIR_JSON],
            202,
        ),
        ("$export?_outputFormat=application/ndjson", &[ASYNC], 202),
        ("$export?_outputFormat=ndjson", &[ASYNC], 202),
        (
            "$export?_elements=id",
            &[ASYNC, ("prefer", "handling=lenient")],
            202,
        ),
    ];
    // Several accepted exports in a row: allow them.
    for (path, headers, want) in cases {
        let (status, body, h) = kickoff(s, &s.client, path, headers).await;
        assert_eq!(status, *want, "{path} {headers:?}: {body}");
        if status == 202 {
            let url = h["content-location"].to_str().expect("content-location");
            assert!(url.starts_with(&s.url("bulk-status/")), "{url}");
            let (st, m) = poll(&s.client, url).await;
            assert_eq!(st, 200, "{m}");
        } else {
            assert_eq!(body["resourceType"], "OperationOutcome", "{path}");
        }
    }
    // The lenient one reports what it ignored in its error file.
    let (status, body, h) = kickoff(
        s,
        &s.client,
        "$export?_elements=id&_type=Patient",
        &[ASYNC, ("prefer", "handling=lenient")],
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (_, m) = poll(&s.client, h["content-location"].to_str().expect("url")).await;
    let errors = m["error"].as_array().expect("error");
    assert_eq!(errors.len(), 1, "{m}");
    let text = s
        .client
        .get(errors[0]["url"].as_str().expect("url"))
        .send()
        .await
        .expect("error file")
        .text()
        .await
        .expect("text");
    let oo: Value = serde_json::from_str(text.lines().next().expect("a line")).expect("json");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert!(oo["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or("")
        .contains("_elements"));
    // POST with a Parameters body.
    let resp = s
        .client
        .post(s.url("$export"))
        .header("prefer", "respond-async")
        .header("content-type", "application/fhir+json")
        .body(
            json!({"resourceType": "Parameters", "parameter": [
                {"name": "_outputFormat", "valueString": "application/fhir+ndjson"},
                {"name": "_type", "valueString": "Patient"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 202);
    let url = resp.headers()["content-location"]
        .to_str()
        .expect("url")
        .to_owned();
    let (st, m) = poll(&s.client, &url).await;
    assert_eq!(st, 200);
    assert!(m["output"]
        .as_array()
        .expect("output")
        .iter()
        .all(|f| f["type"] == "Patient"));
}

async fn synthea_export_equals_the_store(s: &TestServer) {
    oxehr_testdata::require!();
    load_synthea(s).await;
    let (url, manifest) = export(s, &s.client, "$export").await;
    // The manifest's fields.
    assert_eq!(manifest["requiresAccessToken"], true);
    assert_eq!(manifest["request"], s.url("$export"));
    let tt = manifest["transactionTime"]
        .as_str()
        .expect("transactionTime");
    assert!(oxehr_records::parse_instant(tt).is_some(), "{tt}");
    assert_eq!(manifest["error"], json!([]));
    // A file without a token is refused; with the token it is NDJSON of its type.
    let first = manifest["output"][0]["url"].as_str().expect("url");
    let resp = s.anonymous.get(first).send().await.expect("anonymous");
    assert_eq!(resp.status().as_u16(), 401);
    let lines = download(&s.client, &manifest).await;
    let exported = keys(&lines);
    assert_eq!(exported.len(), lines.len(), "a resource written twice");
    let stored = store_keys(s).await;
    assert!(stored.len() > 1000, "{}", stored.len());
    assert_eq!(exported, stored);
    // Another account sees neither the job nor its files (404, not 403).
    let other = common::client_with(&issue_token(
        &s.key,
        "test-admin",
        "system-admin",
        "system/*.rs",
        None,
        None,
        None,
    ));
    assert_eq!(
        other.get(&url).send().await.expect("own").status().as_u16(),
        200
    );
    let stranger = issue_token(
        &s.key,
        "someone-else",
        "system-admin",
        "system/*.rs",
        None,
        None,
        None,
    );
    let stranger = common::client_with(&stranger);
    // The stranger's account does not exist: 401. Make it exist first.
    add_account(s, "someone-else", oxehr_auth::Role::SystemAdmin, None).await;
    assert_eq!(
        stranger
            .get(&url)
            .send()
            .await
            .expect("s")
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        stranger
            .get(first)
            .send()
            .await
            .expect("s")
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        stranger
            .delete(&url)
            .send()
            .await
            .expect("s")
            .status()
            .as_u16(),
        404
    );
    // Delete removes the job and its files; a second delete is 404.
    assert_eq!(
        s.client
            .delete(&url)
            .send()
            .await
            .expect("d")
            .status()
            .as_u16(),
        202
    );
    assert_eq!(
        s.client
            .get(&url)
            .send()
            .await
            .expect("g")
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        s.client
            .get(first)
            .send()
            .await
            .expect("g")
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        s.client
            .delete(&url)
            .send()
            .await
            .expect("d")
            .status()
            .as_u16(),
        404
    );
    let job = url.rsplit('/').next().expect("id");
    assert!(!s.records.export_dir().join(job).exists());
    // The kick-off and every download are in the audit trail.
    let (_, audit, _) = s
        .get("AuditEvent?subtype=export,export-download&_count=100")
        .await;
    let actions: Vec<String> = audit["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            e["resource"]["subtype"][0]["code"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(actions.iter().any(|a| a == "export"), "{actions:?}");
    assert!(
        actions.iter().any(|a| a == "export-download"),
        "{actions:?}"
    );
}

async fn add_account(s: &TestServer, name: &str, role: oxehr_auth::Role, org: Option<&str>) {
    let store = s.records.store().clone();
    let (name, org) = (name.to_owned(), org.map(str::to_owned));
    tokio::task::spawn_blocking(move || {
        oxehr_auth::accounts::add(
            &store,
            oxehr_auth::accounts::NewAccount {
                name,
                role,
                organization: org,
                person: None,
                password: "a-long-enough-password".into(),
                mfa_required: Some(false),
            },
        )
    })
    .await
    .expect("join")
    .expect("account");
}

/// Two organizations, each with patients and their observations.
async fn two_practices(s: &TestServer) {
    for org in ["org-a", "org-b"] {
        let (st, b, _) = s
            .put(
                &format!("Organization/{org}"),
                &json!({"resourceType": "Organization", "id": org, "name": org}),
            )
            .await;
        assert!(st == 200 || st == 201, "{b}");
    }
    for (p, org) in [("pa1", "org-a"), ("pa2", "org-a"), ("pb1", "org-b")] {
        let (st, b, _) = s
            .put(
                &format!("Patient/{p}"),
                &json!({"resourceType": "Patient", "id": p,
                        "managingOrganization": {"reference": format!("Organization/{org}")}}),
            )
            .await;
        assert!(st == 200 || st == 201, "{b}");
        for code in ["8867-4", "8310-5"] {
            let (st, b, _) = s
                .post(
                    "Observation",
                    &json!({"resourceType": "Observation", "status": "final",
                        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                        "subject": {"reference": format!("Patient/{p}")}}),
                )
                .await;
            assert_eq!(st, 201, "{b}");
        }
    }
}

fn patients_of(lines: &[(String, Value)]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|(_, r)| match r["resourceType"].as_str() {
            Some("Patient") => r["id"].as_str().map(str::to_owned),
            _ => r["subject"]["reference"]
                .as_str()
                .and_then(|x| x.strip_prefix("Patient/"))
                .map(str::to_owned),
        })
        .collect()
}

async fn a_clinicians_export_holds_only_their_patients(s: &TestServer) {
    two_practices(s).await;
    add_account(s, "dr-a", oxehr_auth::Role::Clinician, Some("org-a")).await;
    let token = issue_token(
        &s.key,
        "dr-a",
        "clinician",
        "user/*.rs",
        Some("org-a"),
        None,
        None,
    );
    let dr = common::client_with(&token);
    for path in ["$export", "Patient/$export"] {
        let (_, manifest) = export(s, &dr, path).await;
        let lines = download(&dr, &manifest).await;
        let want: BTreeSet<String> = ["pa1", "pa2"].iter().map(|p| (*p).to_owned()).collect();
        assert_eq!(patients_of(&lines), want, "{path}");
        let observations = lines.iter().filter(|(t, _)| t == "Observation").count();
        assert_eq!(observations, 4, "{path}");
    }
    // The administrator's Patient-level export holds all three.
    let (_, manifest) = export(s, &s.client, "Patient/$export").await;
    let lines = download(&s.client, &manifest).await;
    assert_eq!(patients_of(&lines).len(), 3);
    assert!(
        lines.iter().all(|(t, _)| t != "Organization"),
        "Patient level: records only"
    );
    // A Group of pa1 and pb1: the clinician gets pa1's record only.
    let (st, b, _) = s
        .put(
            "Group/g1",
            &json!({"resourceType": "Group", "id": "g1", "type": "person", "actual": true,
                "member": [{"entity": {"reference": "Patient/pa1"}},
                           {"entity": {"reference": "Patient/pb1"}}]}),
        )
        .await;
    assert!(st == 200 || st == 201, "{b}");
    let (_, manifest) = export(s, &s.client, "Group/g1/$export").await;
    let lines = download(&s.client, &manifest).await;
    let want: BTreeSet<String> = ["pa1", "pb1"].iter().map(|p| (*p).to_owned()).collect();
    assert_eq!(patients_of(&lines), want);
    // The Group itself is in pb1's record, which the clinician may not see: refused
    // as a read of it would be. A Group of their own patient exports that record.
    let (status, body, _) = kickoff(s, &dr, "Group/g1/$export", &[ASYNC]).await;
    assert_eq!(status, 403, "{body}");
    let (st, b, _) = s
        .put(
            "Group/g2",
            &json!({"resourceType": "Group", "id": "g2", "type": "person", "actual": true,
                "member": [{"entity": {"reference": "Patient/pa1"}}]}),
        )
        .await;
    assert!(st == 200 || st == 201, "{b}");
    let (_, manifest) = export(s, &dr, "Group/g2/$export").await;
    let lines = download(&dr, &manifest).await;
    let want: BTreeSet<String> = ["pa1".to_owned()].into_iter().collect();
    assert_eq!(patients_of(&lines), want);
}

async fn type_filter_since_and_deleted(s: &TestServer) {
    two_practices(s).await;
    let (_, manifest) = export(
        s,
        &s.client,
        "$export?_type=Observation&_typeFilter=Observation%3Fcode%3D8867-4",
    )
    .await;
    let lines = download(&s.client, &manifest).await;
    assert_eq!(lines.len(), 3, "one heart rate per patient");
    assert!(lines
        .iter()
        .all(|(_, r)| r["code"]["coding"][0]["code"] == "8867-4"));
    let since = manifest["transactionTime"].as_str().expect("tt").to_owned();
    tokio::time::sleep(Duration::from_millis(5)).await;
    // After it: one new Observation, one deleted.
    let obs = lines[0].1["id"].as_str().expect("id").to_owned();
    let resp = s
        .client
        .delete(s.url(&format!("Observation/{obs}")))
        .send()
        .await
        .expect("delete");
    assert!(resp.status().is_success());
    let (st, created, _) = s
        .post(
            "Observation",
            &json!({"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": "Patient/pa1"}}),
        )
        .await;
    assert_eq!(st, 201);
    let path = format!(
        "$export?_type=Observation&_since={}",
        since.replace('+', "%2B")
    );
    let (_, manifest) = export(s, &s.client, &path).await;
    let lines = download(&s.client, &manifest).await;
    let ids: Vec<&str> = lines.iter().filter_map(|(_, r)| r["id"].as_str()).collect();
    assert_eq!(ids, vec![created["id"].as_str().expect("id")]);
    let deleted = manifest["deleted"].as_array().expect("deleted list");
    assert_eq!(deleted.len(), 1, "{manifest}");
    assert_eq!(deleted[0]["type"], "Bundle");
    let text = s
        .client
        .get(deleted[0]["url"].as_str().expect("url"))
        .send()
        .await
        .expect("deleted file")
        .text()
        .await
        .expect("text");
    let bundles: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(bundles.len(), 1);
    assert_eq!(bundles[0]["type"], "transaction");
    assert_eq!(bundles[0]["entry"][0]["request"]["method"], "DELETE");
    assert_eq!(
        bundles[0]["entry"][0]["request"]["url"],
        format!("Observation/{obs}")
    );
}

on_both_backends!(
    kickoff_headers_and_parameters_are_checked,
    synthea_export_equals_the_store,
    a_clinicians_export_holds_only_their_patients,
    type_filter_since_and_deleted,
);

fn with_bulk(bulk: oxehr_records::bulk::BulkConfig) -> RecordsConfig {
    RecordsConfig {
        bulk,
        ..RecordsConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_the_limit_gets_429_with_retry_after() {
    let config = with_bulk(oxehr_records::bulk::BulkConfig {
        max_jobs_per_caller: 0,
        ..Default::default()
    });
    let s = common::start_with_records(Backend::Sqlite, ApiConfig::default(), config)
        .await
        .expect("server");
    let (status, body, headers) = kickoff(&s, &s.client, "$export", &[ASYNC]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["issue"][0]["code"], "throttled");
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_exports_are_removed() {
    let dir = tempfile::tempdir().expect("dir");
    let config = with_bulk(oxehr_records::bulk::BulkConfig {
        expiry: Duration::from_secs(1),
        dir: Some(dir.path().to_owned()),
        ..Default::default()
    });
    let s = common::start_with_records(Backend::Sqlite, ApiConfig::default(), config)
        .await
        .expect("server");
    let (url, manifest) = export(&s, &s.client, "$export").await;
    let job = url.rsplit('/').next().expect("id").to_owned();
    assert!(dir.path().join(&job).exists());
    let deadline = Instant::now() + Duration::from_secs(30);
    while dir.path().join(&job).exists() {
        assert!(Instant::now() < deadline, "files not removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        s.client
            .get(&url)
            .send()
            .await
            .expect("g")
            .status()
            .as_u16(),
        404
    );
    let _ = manifest;
}

#[tokio::test]
async fn the_capability_statement_lists_the_export_operations() {
    let s = common::start(Backend::Sqlite).await.expect("server");
    let (_, cs, _) = s.get("metadata").await;
    let names: Vec<&str> = cs["rest"][0]["operation"]
        .as_array()
        .expect("operations")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, vec!["export", "patient-export", "group-export"]);
}
