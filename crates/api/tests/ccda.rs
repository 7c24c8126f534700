//! C-CDA over the FHIR API, on both backends: `POST /fhir/$import-ccda` stores a real
//! document (the C-CDA R2.1 CCD sample) under the caller's access policy with a Provenance
//! naming the sending organization and the document, a second import adds nothing but
//! a Provenance, a bad document or request stores nothing; `GET
//! /fhir/Patient/{id}/$ccda` writes the record as a CCD only for those who may read it.
//!
//! Expected values are taken from the document's text (its id, the patient's MRN) and
//! from the server's own searches of what was stored, never from the importer.

mod common;

use base64::Engine;
use common::{add_account, Backend, TestServer};
use reqwest::Client;
use serde_json::{json, Value};

const DOC: &str = "ccda/ms-fhir-converter/C-CDA_R2-1_CCD.xml.ccda";
const REFERRAL: &str = "ccda/hl7-c-cda-examples/Referral_Note__Referral_Note.xml";
/// From the document: `ClinicalDocument/id` and the first `patientRole/id`.
const DOC_ROOT: &str = "urn:oid:2.16.840.1.113883.19.5.99999.1";
const DOC_EXT: &str = "TT988";
const MRN: &str = "urn:oid:2.16.840.1.113883.4.1|444222222";

fn shared_text(path: &str) -> String {
    let p = oxehr_testdata::path(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

async fn put(s: &TestServer, v: Value) {
    let path = format!(
        "{}/{}",
        v["resourceType"].as_str().expect("type"),
        v["id"].as_str().expect("id")
    );
    let (status, body, _) = s.put(&path, &v).await;
    assert!(status == 200 || status == 201, "{path}: {status} {body}");
}

async fn import(
    s: &TestServer,
    who: &Client,
    xml: &str,
    organization: Option<&str>,
) -> (u16, Value) {
    let mut url = s.url("$import-ccda");
    if let Some(o) = organization {
        url.push_str(&format!("?organization={o}"));
    }
    let resp = who
        .post(url)
        .header("content-type", "application/xml")
        .body(xml.to_owned())
        .send()
        .await
        .expect("POST");
    let (status, body, _) = common::split(resp).await;
    (status, body)
}

async fn get(s: &TestServer, who: &Client, path: &str) -> (u16, Value) {
    let (status, body, _) = common::split(who.get(s.url(path)).send().await.expect("GET")).await;
    (status, body)
}

/// Every resource of the patient's record as the administrator sees it (`Type/id`).
async fn record(s: &TestServer, patient: &str) -> Vec<String> {
    let mut out: Vec<String> =
        common::all_pages(s, &format!("Patient/{patient}/$everything?_count=500"))
            .await
            .iter()
            .map(common::key_of)
            .collect();
    out.sort();
    out
}

fn created(response: &Value) -> Vec<String> {
    response["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["response"]["status"]
                .as_str()
                .unwrap_or("")
                .starts_with("201")
        })
        .filter_map(|e| e["response"]["location"].as_str())
        .map(|l| l.split("/_history").next().unwrap_or(l).to_owned())
        .map(|l| {
            let parts: Vec<&str> = l.rsplitn(3, '/').collect();
            format!("{}/{}", parts[1], parts[0])
        })
        .collect()
}

async fn import_and_export(backend: Backend) {
    let Some(s) = common::start(backend).await else {
        return;
    };
    for (id, name) in [
        ("org-a", "Practice A"),
        ("org-b", "Practice B"),
        ("org-lab", "Riverside Hospital"),
    ] {
        put(
            &s,
            json!({"resourceType": "Organization", "id": id, "name": name}),
        )
        .await;
    }
    put(&s, json!({"resourceType": "Patient", "id": "pat-1", "managingOrganization": {"reference": "Organization/org-a"}})).await;
    let doc_a = add_account(&s, "ccda-doc-a", "clinician", Some("org-a"), None).await;
    let doc_b = add_account(&s, "ccda-doc-b", "clinician", Some("org-b"), None).await;
    let patient = add_account(&s, "ccda-pat", "patient", None, Some("Patient/pat-1")).await;
    let xml = shared_text(DOC);

    // Refused before anything is stored: a patient, an organization not in the
    // directory, a document that is not C-CDA.
    let (st, b) = import(&s, &patient, &xml, Some("Organization/org-lab")).await;
    assert_eq!(st, 403, "{b}");
    let (st, b) = import(&s, &doc_a, &xml, Some("Organization/nowhere")).await;
    assert_eq!(st, 400, "{b}");
    assert!(b["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or("")
        .contains("not in the directory"));
    let (st, b) = import(&s, &doc_a, "<html><body>hello</body></html>", None).await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(b["resourceType"], "OperationOutcome");
    let (_, found) = get(&s, &s.client, &format!("Patient?identifier={MRN}")).await;
    assert_eq!(found["total"], 0, "a refused import stored the patient");

    // The import.
    let (st, first) = import(&s, &doc_a, &xml, Some("Organization/org-lab")).await;
    assert_eq!(st, 200, "{first}");
    assert_eq!(first["type"], "transaction-response");
    let new = created(&first);
    // The patient was new to the record: registered with the importing practice, which
    // now sees them.
    let (_, found) = get(&s, &doc_a, &format!("Patient?identifier={MRN}")).await;
    assert_eq!(found["total"], 1, "{found}");
    let pid = found["entry"][0]["resource"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        found["entry"][0]["resource"]["managingOrganization"]["reference"],
        "Organization/org-a"
    );
    assert!(new.contains(&format!("Patient/{pid}")), "{new:?}");
    let conditions = new.iter().filter(|r| r.starts_with("Condition/")).count();
    assert!(
        conditions > 0,
        "the CCD's problems were not stored: {new:?}"
    );

    // One Provenance: from the hospital, naming the document, targeting every entry.
    let provenances: Vec<&String> = new
        .iter()
        .filter(|r| r.starts_with("Provenance/"))
        .collect();
    assert_eq!(provenances.len(), 1, "{new:?}");
    let (_, prov) = get(&s, &doc_a, provenances[0]).await;
    assert_eq!(prov["agent"][0]["who"]["reference"], "Organization/org-lab");
    let what = &prov["entity"][0]["what"];
    assert_eq!(what["identifier"]["system"], DOC_ROOT);
    assert_eq!(what["identifier"]["value"], DOC_EXT);
    assert!(what["display"].as_str().unwrap_or("").contains("C-CDA"));
    let targets: Vec<String> = prov["target"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["reference"].as_str())
        .map(str::to_owned)
        .collect();
    for r in new.iter().filter(|r| !r.starts_with("Provenance/")) {
        assert!(targets.contains(r), "{r} has no Provenance: {targets:?}");
    }

    // The same document again adds nothing to the record but a Provenance.
    let before = record(&s, &pid).await;
    let (st, second) = import(&s, &doc_a, &xml, Some("Organization/org-lab")).await;
    assert_eq!(st, 200, "{second}");
    let again = created(&second);
    assert!(
        again.len() == 1 && again[0].starts_with("Provenance/"),
        "a second import created {again:?}"
    );
    let after = record(&s, &pid).await;
    assert_eq!(after.len(), before.len() + 1);

    // The Parameters form, with the document as a base64 attachment, from the caller's
    // own organization when none is named.
    let referral = shared_text(REFERRAL);
    let params = json!({"resourceType": "Parameters", "parameter": [{
        "name": "document",
        "valueAttachment": {
            "contentType": "application/xml",
            "data": base64::engine::general_purpose::STANDARD.encode(referral.as_bytes()),
        },
    }]});
    let resp = doc_a
        .post(s.url("$import-ccda"))
        .header("content-type", "application/fhir+json")
        .json(&params)
        .send()
        .await
        .expect("POST");
    let (st, b, _) = common::split(resp).await;
    assert_eq!(st, 200, "{b}");
    let prov = created(&b)
        .into_iter()
        .find(|r| r.starts_with("Provenance/"))
        .expect("provenance");
    let (_, prov) = get(&s, &doc_a, &prov).await;
    assert_eq!(prov["agent"][0]["who"]["reference"], "Organization/org-a");

    // $ccda: the practice that cares for the patient gets the document; it names the
    // patient and carries every problem code the record holds for them.
    let resp = doc_a
        .get(s.url(&format!("Patient/{pid}/$ccda")))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .starts_with("application/xml"));
    let out = resp.text().await.expect("text");
    assert!(out.contains("<ClinicalDocument"));
    assert!(
        out.contains("extension=\"444222222\""),
        "the MRN is missing"
    );
    assert!(
        out.contains("Practice A"),
        "the author organization is missing"
    );
    let (_, conds) = get(&s, &doc_a, &format!("Condition?patient={pid}&_count=200")).await;
    let codes: Vec<String> = conds["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| {
            e["resource"]["code"]["coding"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect();
    assert!(!codes.is_empty());
    for c in &codes {
        assert!(
            out.contains(&format!("code=\"{c}\"")),
            "problem {c} missing"
        );
    }

    // Another practice, with no care relationship, gets what a read of the patient
    // gives it, and no document.
    let (read_status, _) = get(&s, &doc_b, &format!("Patient/{pid}")).await;
    assert!(read_status == 403 || read_status == 404);
    let resp = doc_b
        .get(s.url(&format!("Patient/{pid}/$ccda")))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), read_status);
    let body = resp.text().await.expect("text");
    assert!(!body.contains("444222222"));
    // Nor may it import into a record it does not see: the document names the same
    // patient, whom the import finds, and the write is refused; nothing is stored.
    let before_b = record(&s, &pid).await;
    let (st, b) = import(&s, &doc_b, &xml, Some("Organization/org-lab")).await;
    assert_eq!(st, 403, "{b}");
    assert_eq!(record(&s, &pid).await, before_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_export_on_sqlite() {
    oxehr_testdata::require!();
    import_and_export(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_export_on_postgres() {
    oxehr_testdata::require!();
    import_and_export(Backend::Postgres).await;
}

/// A document for a person the record knows under another number registers a new
/// patient, and the pair goes on the likely-duplicates list (for staff who see both,
/// never for others); merging it from the list leaves one record.
async fn arrival_lists_a_likely_duplicate(backend: Backend) {
    let Some(s) = common::start(backend).await else {
        return;
    };
    for id in ["org-a", "org-b"] {
        put(
            &s,
            json!({"resourceType": "Organization", "id": id, "name": id}),
        )
        .await;
    }
    let doc_a = add_account(&s, "dup-doc-a", "clinician", Some("org-a"), None).await;
    let xml = shared_text(DOC);
    // The person as the practice registered them earlier: the document's patient, under
    // the practice's own number instead of the document's.
    let (st, first) = import(&s, &doc_a, &xml, None).await;
    assert_eq!(st, 200, "{first}");
    let (_, found) = get(&s, &s.client, &format!("Patient?identifier={MRN}")).await;
    let mut known = found["entry"][0]["resource"].clone();
    let known_id = known["id"].as_str().expect("id").to_owned();
    known["identifier"] = json!([{"system": "urn:oid:2.16.840.1.113883.3.999", "value": "A-1"}]);
    let (status, b, _) = s.put(&format!("Patient/{known_id}"), &known).await;
    assert_eq!(status, 200, "{b}");
    let list = |who: oxehr_records::Caller| {
        let r = s.records.clone();
        async move {
            tokio::task::spawn_blocking(move || r.duplicates(&who, 50).expect("list"))
                .await
                .expect("join")
        }
    };
    assert!(list(oxehr_records::Caller::server()).await.is_empty());

    // The same document arrives again: its number is unknown now, so a new patient.
    let (st, second) = import(&s, &doc_a, &xml, None).await;
    assert_eq!(st, 200, "{second}");
    let new_id = created(&second)
        .into_iter()
        .find_map(|r| r.strip_prefix("Patient/").map(str::to_owned))
        .expect("a new patient");
    let pairs = list(oxehr_records::Caller::server()).await;
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(
        (pairs[0].patient.as_str(), pairs[0].other.as_str()),
        (new_id.as_str(), known_id.as_str())
    );
    assert_eq!(pairs[0].grade, "certain");
    // Staff of a practice that sees neither patient are not shown the pair.
    let outsider = oxehr_records::Caller {
        user: "dup-outsider".into(),
        role: oxehr_auth::Role::Clinician,
        organization: Some("org-b".into()),
        ..oxehr_records::Caller::server()
    };
    assert!(list(outsider.clone()).await.is_empty());
    let r = s.records.clone();
    let id = pairs[0].id.clone();
    let refused = tokio::task::spawn_blocking(move || {
        r.decide_duplicate(&outsider, &id, oxehr_records::Decision::Merge)
    })
    .await
    .expect("join");
    assert!(refused.is_err());

    // Merged from the list: one active record, the list empty.
    let r = s.records.clone();
    let id = pairs[0].id.clone();
    tokio::task::spawn_blocking(move || {
        r.decide_duplicate(
            &oxehr_records::Caller::server(),
            &id,
            oxehr_records::Decision::Merge,
        )
    })
    .await
    .expect("join")
    .expect("merge");
    assert!(list(oxehr_records::Caller::server()).await.is_empty());
    let (_, merged) = get(&s, &s.client, &format!("Patient/{new_id}")).await;
    assert_eq!(merged["link"][0]["type"], "replaced-by");
    assert_eq!(
        merged["link"][0]["other"]["reference"],
        format!("Patient/{known_id}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrival_lists_a_likely_duplicate_on_sqlite() {
    oxehr_testdata::require!();
    arrival_lists_a_likely_duplicate(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrival_lists_a_likely_duplicate_on_postgres() {
    oxehr_testdata::require!();
    arrival_lists_a_likely_duplicate(Backend::Postgres).await;
}
