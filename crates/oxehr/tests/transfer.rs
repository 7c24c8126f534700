//! Record transfer between two oxehr servers, as operators run them: a Synthea
//! patient's record, imported at practice A, is sent with `oxehr transfer` to practice
//! B, which already registered the same person under its own number. It arrives
//! complete, on B's existing patient (no duplicate), every resource with a Provenance
//! naming A; a resend adds no resource; both audit trails hold the transfer.
//!
//! Expected values come from the Synthea bundle and from what the test created at B.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{oxehr, shared, user_cmd, Server};
use serde_json::{json, Value};

const SYNTHEA: &str =
    "synthea/smart-on-fhir-r4/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json";
/// Types of the bundle outside the Patient compartment (FHIR R4
/// CompartmentDefinition/patient lists neither).
const OUTSIDE: [&str; 2] = ["Organization", "Practitioner"];

fn get(client: &reqwest::blocking::Client, url: &str) -> Value {
    let resp = client.get(url).send().expect("GET");
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.json().expect("json")
}

/// Every page of a search.
fn all(client: &reqwest::blocking::Client, url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(url.to_owned());
    while let Some(u) = next.take() {
        let b = get(client, &u);
        out.extend(
            b["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["resource"].clone()),
        );
        next = b["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str())
            .map(str::to_owned);
    }
    out
}

/// Resource count by type, Provenance left out.
fn by_type(resources: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in resources {
        let t = r["resourceType"].as_str().unwrap_or("").to_owned();
        if t != "Provenance" {
            *m.entry(t).or_insert(0) += 1;
        }
    }
    m
}

fn token_for(storage: &[&str], user: &str) -> String {
    let out = oxehr()
        .args(["token", "issue", "--user", user])
        .args(storage)
        .env("OXEHR_LOG", "warn")
        .output()
        .expect("token issue");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn transfer(data_a: &str, base_a: &str, patient: &str, to: &str, token: &str) -> String {
    let out = oxehr()
        .args([
            "transfer",
            "--patient",
            patient,
            "--to",
            to,
            "--token",
            token,
            "--base-url",
            base_a,
            "--data",
            data_a,
        ])
        .env("OXEHR_LOG", "warn")
        .output()
        .expect("oxehr transfer");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn a_record_sent_to_another_oxehr_arrives_complete_on_the_patient_it_knows() {
    oxehr_testdata::require!();
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let data_a = dir_a.path().to_str().expect("path").to_owned();
    let data_b = dir_b.path().to_str().expect("path").to_owned();
    let a = Server::start(&["--data", &data_a]);
    let b = Server::start(&["--data", &data_b]);

    // Practice A: the Synthea patient's whole record.
    let bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(shared(SYNTHEA)).expect("bundle"))
            .expect("json");
    let resp = a.client.post(&a.base).json(&bundle).send().expect("POST");
    assert!(resp.status().is_success(), "{}", resp.status());
    let person = bundle["entry"][0]["resource"].clone();
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for e in bundle["entry"].as_array().expect("entries") {
        let t = e["resource"]["resourceType"].as_str().unwrap_or("");
        if !OUTSIDE.contains(&t) {
            *sent.entry(t.to_owned()).or_insert(0) += 1;
        }
    }
    let family = person["name"][0]["family"].as_str().expect("family");
    let at_a = all(&a.client, &format!("{}/Patient?family={family}", a.base));
    assert_eq!(at_a.len(), 1);
    let patient_a = at_a[0]["id"].as_str().expect("id").to_owned();

    // Practice B knows A as an organization and has an account for it, and already
    // registered the same person under B's own number, with one visit of its own.
    let org = json!({"resourceType": "Organization", "id": "practice-a", "name": "Practice A"});
    let resp = b
        .client
        .put(format!("{}/Organization/practice-a", b.base))
        .json(&org)
        .send()
        .expect("PUT");
    assert!(resp.status().is_success());
    let (ok, text) = user_cmd(
        &["--data", &data_b],
        &[
            "add",
            "practice-a-sender",
            "--role",
            "clinician",
            "--organization",
            "practice-a",
            "--password-stdin",
        ],
        "sender password 1\n",
    );
    assert!(ok, "{text}");
    let token = token_for(&["--data", &data_b], "practice-a-sender");
    let local = json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.999", "value": "B-77"}],
        "name": [{"family": family, "given": person["name"][0]["given"].clone()}],
        "birthDate": person["birthDate"].clone(),
        "gender": person["gender"].clone(),
        "address": person["address"].clone(),
        "managingOrganization": {"reference": "Organization/practice-a"},
    });
    let resp = b
        .client
        .post(format!("{}/Patient", b.base))
        .json(&local)
        .send()
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 201);
    let patient_b = resp.json::<Value>().expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let visit = json!({"resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": format!("Patient/{patient_b}")}});
    let resp = b
        .client
        .post(format!("{}/Encounter", b.base))
        .json(&visit)
        .send()
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 201);

    // Sent.
    let out = transfer(&data_a, &a.base, &patient_a, &b.base, &token);
    assert!(out.contains("sent"), "{out}");

    // At B: one patient of that name (B's own), holding its own visit and everything A
    // had, each entry with a Provenance naming A.
    let people = all(&b.client, &format!("{}/Patient?family={family}", b.base));
    assert_eq!(people.len(), 1, "a duplicate patient was made");
    assert_eq!(people[0]["id"], patient_b.as_str());
    let record = all(
        &b.client,
        &format!("{}/Patient/{patient_b}/$everything?_count=500", b.base),
    );
    let mut expected = sent.clone();
    *expected.entry("Encounter".into()).or_insert(0) += 1;
    assert_eq!(by_type(&record), expected);
    let provenance: Vec<&Value> = record
        .iter()
        .filter(|r| r["resourceType"] == "Provenance")
        .collect();
    assert_eq!(provenance.len(), 1);
    assert_eq!(
        provenance[0]["agent"][0]["who"]["reference"],
        "Organization/practice-a"
    );
    let targets: BTreeSet<String> = provenance[0]["target"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["reference"].as_str().map(str::to_owned))
        .collect();
    for r in &record {
        let key = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or("")
        );
        let own_visit = r["resourceType"] == "Encounter" && r["identifier"].as_array().is_none();
        if r["resourceType"] != "Provenance" && !own_visit {
            assert!(targets.contains(&key), "{key} has no source");
        }
    }

    // Sent again: nothing new but the Provenance of the second arrival.
    let out = transfer(&data_a, &a.base, &patient_a, &b.base, &token);
    assert!(out.contains(" 1 new there"), "{out}");
    let again = all(
        &b.client,
        &format!("{}/Patient/{patient_b}/$everything?_count=500", b.base),
    );
    assert_eq!(by_type(&again), expected);

    // Both audit trails: A's records the transfer, B's the writes by A's account.
    let sent_audit = all(
        &a.client,
        &format!(
            "{}/AuditEvent?patient=Patient/{patient_a}&subtype=transfer",
            a.base
        ),
    );
    assert_eq!(sent_audit.len(), 2, "one audit record per transfer");
    let received = all(
        &b.client,
        &format!(
            "{}/AuditEvent?patient=Patient/{patient_b}&subtype=create",
            b.base
        ),
    );
    assert!(
        received
            .iter()
            .any(|e| e["agent"][0]["who"]["display"] == "practice-a-sender"
                || e.to_string().contains("practice-a-sender")),
        "B's audit trail does not name the sender"
    );
}
