//! One person, one record, on both backends: `Patient/$match` finds a Synthea patient
//! from a second, slightly different registration of them, with its grade and the
//! fields that agreed, and never a patient the caller may not see; `Patient/$merge`
//! moves the second record into the first so that search and `$everything` give the
//! person's whole record, and `Patient/$unmerge` puts everything back.
//!
//! The expected records are computed from the Synthea bundle and from what the test
//! itself created, never from the server's matching or merging.

mod common;

use std::collections::BTreeSet;

use common::{add_account, Backend, TestServer};
use serde_json::{json, Value};

const SYNTHEA: &str =
    "synthea/smart-on-fhir-r4/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json";
/// Types of the bundle outside the Patient compartment (FHIR R4
/// CompartmentDefinition/patient lists neither).
const OUTSIDE: [&str; 2] = ["Organization", "Practitioner"];

fn location_key(l: &str) -> String {
    let l = l.split("/_history").next().unwrap_or(l);
    let parts: Vec<&str> = l.rsplitn(3, '/').collect();
    format!("{}/{}", parts[1], parts[0])
}

/// `$everything` of a patient as the administrator sees it: `Type/id`, Provenance left
/// out (the merge's own records).
async fn everything(s: &TestServer, patient: &str) -> BTreeSet<String> {
    common::all_pages(s, &format!("Patient/{patient}/$everything?_count=500"))
        .await
        .iter()
        .filter(|r| r["resourceType"] != "Provenance")
        .map(common::key_of)
        .collect()
}

async fn total(s: &TestServer, query: &str) -> u64 {
    let (status, b, _) = s.get(&format!("{query}&_summary=count")).await;
    assert_eq!(status, 200, "{b}");
    b["total"].as_u64().expect("total")
}

fn parameters(pairs: &[(&str, Value)]) -> Value {
    json!({"resourceType": "Parameters", "parameter": pairs.iter().map(|(n, v)| {
        let mut p = v.clone();
        p["name"] = json!(n);
        p
    }).collect::<Vec<_>>()})
}

fn reference(r: &str) -> Value {
    json!({"valueReference": {"reference": r}})
}

async fn match_merge_unmerge(backend: Backend) {
    let Some(s) = common::start(backend).await else {
        return;
    };
    // The first registration: a Synthea patient's whole record.
    let bundle = common::shared(SYNTHEA);
    let (status, resp, _) = s.post("", &bundle).await;
    assert_eq!(status, 200, "{resp}");
    let mut first: BTreeSet<String> = BTreeSet::new();
    let mut a = String::new();
    for (sent, got) in bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .zip(resp["entry"].as_array().expect("response"))
    {
        let key = location_key(got["response"]["location"].as_str().expect("location"));
        let t = sent["resource"]["resourceType"].as_str().unwrap_or("");
        if t == "Patient" {
            a = key.trim_start_matches("Patient/").to_owned();
        }
        if !OUTSIDE.contains(&t) {
            first.insert(key);
        }
    }
    let person = bundle["entry"][0]["resource"].clone();
    let observations_a = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .count() as u64;
    assert_eq!(everything(&s, &a).await, first);

    // A second registration of the same person at another practice: a new number, a
    // typo in the family name, the same birth date, sex and address; three results and
    // a problem recorded against it.
    let mut dup = json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "B-2041"}],
        "name": [{"family": "Kreigre", "given": person["name"][0]["given"].clone()}],
        "birthDate": person["birthDate"].clone(),
        "gender": person["gender"].clone(),
        "address": person["address"].clone(),
        "active": true,
    });
    let (status, created, _) = s.post("Patient", &dup).await;
    assert_eq!(status, 201, "{created}");
    let b = created["id"].as_str().expect("id").to_owned();
    dup["id"] = json!(b);
    let mut second: BTreeSet<String> = BTreeSet::from([format!("Patient/{b}")]);
    for i in 0..3 {
        let (status, o, _) = s
            .post(
                "Observation",
                &json!({"resourceType": "Observation", "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "valueQuantity": {"value": 70 + i, "unit": "/min"},
                    "subject": {"reference": format!("Patient/{b}")}}),
            )
            .await;
        assert_eq!(status, 201, "{o}");
        second.insert(format!("Observation/{}", o["id"].as_str().expect("id")));
    }
    let (status, c, _) = s
        .post(
            "Condition",
            &json!({"resourceType": "Condition",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
                "subject": {"reference": format!("Patient/{b}")}}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    second.insert(format!("Condition/{}", c["id"].as_str().expect("id")));
    assert_eq!(everything(&s, &b).await, second);

    // $match with the second registration finds the first, graded, with the fields
    // that agreed.
    let query = parameters(&[("resource", json!({"resource": dup.clone()}))]);
    let (status, found, _) = s.post("Patient/$match", &query).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["type"], "searchset");
    let hit = found["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["resource"]["id"] == a.as_str())
        .unwrap_or_else(|| panic!("the first registration was not found: {found}"));
    let ext = hit["search"]["extension"].as_array().expect("extensions");
    let grade = ext
        .iter()
        .find(|x| x["url"] == "http://hl7.org/fhir/StructureDefinition/match-grade")
        .and_then(|x| x["valueCode"].as_str())
        .expect("grade");
    assert!(grade == "certain" || grade == "probable", "{grade}");
    assert_eq!(hit["search"]["mode"], "match");
    let agreed = |field: &str| {
        ext.iter().any(|x| {
            x["extension"][0]["valueCode"] == field && x["extension"][1]["valueCode"] == "agree"
        })
    };
    assert!(agreed("birthDate") && agreed("gender") && agreed("address"));
    // Someone else (another name and birth date) is not this person.
    let stranger = parameters(&[(
        "resource",
        json!({"resource": {"resourceType": "Patient",
            "name": [{"family": "Oyelaran", "given": ["Funmi"]}], "birthDate": "1950-03-14"}}),
    )]);
    let (_, none, _) = s.post("Patient/$match", &stranger).await;
    assert!(
        !none["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["resource"]["id"] == a.as_str()),
        "{none}"
    );
    // A clinician of a practice that sees neither registration finds nobody, and
    // cannot merge them.
    put_org(&s, "org-z").await;
    let outsider = add_account(&s, "match-outsider", "clinician", Some("org-z"), None).await;
    let resp = outsider
        .post(s.url("Patient/$match"))
        .json(&query)
        .send()
        .await
        .expect("POST");
    let (status, none, _) = common::split(resp).await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["total"], 0, "{none}");
    let merge = parameters(&[
        ("source-patient", reference(&format!("Patient/{b}"))),
        ("target-patient", reference(&format!("Patient/{a}"))),
    ]);
    let resp = outsider
        .post(s.url("Patient/$merge"))
        .json(&merge)
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    assert!(status == 403 || status == 404, "{status}");
    assert_eq!(everything(&s, &b).await, second);

    // Merge: search and $everything of the first registration give the whole record;
    // the second is inactive and points to the first.
    let (status, merged, _) = s.post("Patient/$merge", &merge).await;
    assert_eq!(status, 200, "{merged}");
    let whole: BTreeSet<String> = first.union(&second).cloned().collect();
    assert_eq!(everything(&s, &a).await, whole);
    assert_eq!(
        total(&s, &format!("Observation?patient={a}")).await,
        observations_a + 3
    );
    assert_eq!(total(&s, &format!("Observation?patient={b}")).await, 0);
    assert_eq!(
        total(&s, &format!("Condition?subject=Patient/{a}")).await,
        2
    );
    let (_, pb, _) = s.get(&format!("Patient/{b}")).await;
    assert_eq!(pb["active"], false);
    assert_eq!(pb["link"][0]["type"], "replaced-by");
    assert_eq!(pb["link"][0]["other"]["reference"], format!("Patient/{a}"));
    let (_, pa, _) = s.get(&format!("Patient/{a}")).await;
    assert_eq!(pa["link"][0]["type"], "replaces");
    // A record merged away cannot be merged again.
    let (status, again, _) = s.post("Patient/$merge", &merge).await;
    assert_eq!(status, 409, "{again}");

    // Unmerge: both records are as they were.
    let unmerge = parameters(&[("source-patient", reference(&format!("Patient/{b}")))]);
    let (status, undone, _) = s.post("Patient/$unmerge", &unmerge).await;
    assert_eq!(status, 200, "{undone}");
    assert_eq!(everything(&s, &a).await, first);
    assert_eq!(everything(&s, &b).await, second);
    assert_eq!(
        total(&s, &format!("Observation?patient={a}")).await,
        observations_a
    );
    assert_eq!(total(&s, &format!("Observation?patient={b}")).await, 3);
    let (_, pb, _) = s.get(&format!("Patient/{b}")).await;
    assert_eq!(pb["active"], true);
    assert!(pb.get("link").is_none(), "{pb}");
    let (_, pa, _) = s.get(&format!("Patient/{a}")).await;
    assert!(pa.get("link").is_none(), "{pa}");
    // Nothing left to undo.
    let (status, _, _) = s.post("Patient/$unmerge", &unmerge).await;
    assert_eq!(status, 409);
}

async fn put_org(s: &TestServer, id: &str) {
    let (status, b, _) = s
        .put(
            &format!("Organization/{id}"),
            &json!({"resourceType": "Organization", "id": id, "name": id}),
        )
        .await;
    assert!(status == 200 || status == 201, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_merge_unmerge_on_sqlite() {
    oxehr_testdata::require!();
    match_merge_unmerge(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_merge_unmerge_on_postgres() {
    oxehr_testdata::require!();
    match_merge_unmerge(Backend::Postgres).await;
}

/// `$transfer-bundle` gives the record as a transaction of conditional creates (no
/// server ids, every reference to a sent resource a `urn:uuid:` entry), only the types
/// asked for beside the Patient, and nothing to a caller who may not read the patient.
async fn transfer_bundle_shape(backend: Backend) {
    let Some(s) = common::start(backend).await else {
        return;
    };
    let bundle = common::shared(SYNTHEA);
    let (status, resp, _) = s.post("", &bundle).await;
    assert_eq!(status, 200, "{resp}");
    let pid = resp["entry"][0]["response"]["location"]
        .as_str()
        .map(location_key)
        .and_then(|k| k.strip_prefix("Patient/").map(str::to_owned))
        .expect("patient");
    let observations = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .count();
    let (status, t, _) = s
        .get(&format!(
            "Patient/{pid}/$transfer-bundle?_type=Observation&destination=https://b.example/fhir"
        ))
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["type"], "transaction");
    let entries = t["entry"].as_array().expect("entries");
    let count = |ty: &str| {
        entries
            .iter()
            .filter(|e| e["resource"]["resourceType"] == ty)
            .count()
    };
    assert_eq!(count("Patient"), 1);
    assert_eq!(count("Observation"), observations);
    assert_eq!(count("Condition"), 0, "only the types asked for");
    let full_urls: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e["fullUrl"].as_str())
        .collect();
    for e in entries {
        assert!(
            e["resource"].get("id").is_none(),
            "a server id was sent: {e}"
        );
        assert_eq!(e["request"]["method"], "POST");
        let t = e["resource"]["resourceType"].as_str().unwrap_or("");
        if t == "Observation" {
            assert!(e["request"]["ifNoneExist"]
                .as_str()
                .is_some_and(|c| c.starts_with("identifier=")));
            let subject = e["resource"]["subject"]["reference"].as_str().unwrap_or("");
            assert!(
                full_urls.contains(subject),
                "the subject is not the sent Patient: {subject}"
            );
        }
    }
    // A clinician of a practice with no care relationship gets no record.
    put_org(&s, "org-far").await;
    let far = add_account(&s, "transfer-far", "clinician", Some("org-far"), None).await;
    let resp = far
        .get(s.url(&format!("Patient/{pid}/$transfer-bundle")))
        .send()
        .await
        .expect("GET");
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("text");
    assert!(status == 403 || status == 404, "{status}");
    assert!(!body.contains("\"Observation\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_bundle_shape_on_sqlite() {
    oxehr_testdata::require!();
    transfer_bundle_shape(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_bundle_shape_on_postgres() {
    oxehr_testdata::require!();
    transfer_bundle_shape(Backend::Postgres).await;
}
