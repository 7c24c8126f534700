//! The RESTful interactions over real HTTP, on SQLite and on PostgreSQL.

mod common;

use common::{shared, without_id_meta, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

fn example(name: &str) -> Value {
    shared(&format!("fhir-examples/{name}"))
}

fn issue_codes(oo: &Value) -> Vec<String> {
    assert_eq!(
        oo["resourceType"], "OperationOutcome",
        "expected an OperationOutcome: {oo}"
    );
    oo["issue"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["code"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn create_then_read_returns_what_was_sent(s: &TestServer) {
    oxehr_testdata::require!();
    let patient = example("Patient-example.json");
    let (status, body, h) = s.post("Patient", &patient).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_string();
    assert_ne!(id, "example", "POST assigns a new id");
    assert_eq!(header(&h, "etag"), "W/\"1\"");
    assert_eq!(
        header(&h, "location"),
        s.url(&format!("Patient/{id}/_history/1"))
    );
    assert_eq!(body["meta"]["versionId"], "1");
    let (status, read, h) = s.get(&format!("Patient/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&h, "content-type"),
        "application/fhir+json; charset=utf-8"
    );
    assert_eq!(
        without_id_meta(&read).to_string(),
        without_id_meta(&patient).to_string(),
        "same content in the same order"
    );
    assert!(read["meta"]["lastUpdated"]
        .as_str()
        .is_some_and(|s| s.ends_with('Z')));
}

async fn update_makes_versions_and_vread_returns_each(s: &TestServer) {
    oxehr_testdata::require!();
    let mut obs = example("Observation-example.json");
    obs["id"] = json!("bp-1");
    let (status, _, h) = s.put("Observation/bp-1", &obs).await;
    assert_eq!(status, 201, "create-on-update answers 201");
    assert_eq!(header(&h, "etag"), "W/\"1\"");
    obs["status"] = json!("amended");
    let (status, body, h) = s.put("Observation/bp-1", &obs).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&h, "etag"), "W/\"2\"");
    let (_, v1, _) = s.get("Observation/bp-1/_history/1").await;
    let (_, v2, _) = s.get("Observation/bp-1/_history/2").await;
    assert_eq!(v1["status"], "final");
    assert_eq!(v2["status"], "amended");
    assert_eq!(v2["meta"]["versionId"], "2");
    let (status, _, _) = s.get("Observation/bp-1/_history/3").await;
    assert_eq!(status, 404);
}

async fn history_lists_versions_newest_first_with_since_and_count(s: &TestServer) {
    oxehr_testdata::require!();
    let mut p = example("Patient-example.json");
    p["id"] = json!("h1");
    for family in ["A", "B", "C"] {
        p["name"][0]["family"] = json!(family);
        let (status, _, _) = s.put("Patient/h1", &p).await;
        assert!(status == 200 || status == 201);
    }
    let (_, b, _) = s.get("Patient/h1/_history").await;
    assert_eq!(b["type"], "history");
    assert_eq!(b["total"], 3);
    let versions: Vec<&str> = b["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(versions, ["3", "2", "1"]);
    assert_eq!(b["entry"][2]["request"]["method"], "POST");
    assert_eq!(b["entry"][0]["request"]["method"], "PUT");
    // _count pages, with a next link that leads to the rest.
    let (_, b, _) = s.get("Patient/h1/_history?_count=2").await;
    assert_eq!(b["entry"].as_array().map(Vec::len), Some(2));
    let next = b["link"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("next link");
    let resp = s
        .client
        .get(next["url"].as_str().expect("url"))
        .send()
        .await
        .expect("next");
    let (_, b2, _) = common::split(resp).await;
    assert_eq!(b2["entry"][0]["resource"]["meta"]["versionId"], "1");
    // _since: only versions at or after the second one's lastUpdated.
    let (_, v2, _) = s.get("Patient/h1/_history/2").await;
    let since = v2["meta"]["lastUpdated"]
        .as_str()
        .expect("lastUpdated")
        .to_string();
    let (_, b, _) = s
        .get(&format!(
            "Patient/h1/_history?_since={}",
            since.replace('+', "%2B")
        ))
        .await;
    assert_eq!(b["total"], 2, "{b}");
    // type and system history include it.
    let (_, t, _) = s.get("Patient/_history").await;
    assert_eq!(t["total"], 3);
    let mut o = example("Organization-hl7.json");
    o["id"] = json!("o1");
    s.put("Organization/o1", &o).await;
    let (_, sys, _) = s.get("_history").await;
    assert_eq!(sys["total"], 4);
    assert_eq!(sys["entry"][0]["resource"]["resourceType"], "Organization");
}

async fn delete_makes_reads_answer_410_and_keeps_history(s: &TestServer) {
    oxehr_testdata::require!();
    let (_, created, _) = s.post("Patient", &example("Patient-example.json")).await;
    let id = created["id"].as_str().expect("id").to_string();
    let resp = s
        .client
        .delete(s.url(&format!("Patient/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 204);
    let (status, oo, _) = s.get(&format!("Patient/{id}")).await;
    assert_eq!(status, 410);
    assert_eq!(issue_codes(&oo), ["deleted"]);
    let (status, _, _) = s.get(&format!("Patient/{id}/_history/1")).await;
    assert_eq!(status, 200, "earlier versions stay readable");
    let (_, h, _) = s.get(&format!("Patient/{id}/_history")).await;
    assert_eq!(h["total"], 2);
    assert_eq!(h["entry"][0]["request"]["method"], "DELETE");
    assert!(h["entry"][0].get("resource").is_none());
    let (_, found, _) = s.get(&format!("Patient?_id={id}")).await;
    assert_eq!(
        found["total"], 0,
        "a deleted resource is not found by search"
    );
    let (status, _, _) = s.get("Patient/never-existed").await;
    assert_eq!(status, 404);
}

async fn update_with_stale_if_match_returns_412(s: &TestServer) {
    oxehr_testdata::require!();
    let mut p = example("Patient-example.json");
    p["id"] = json!("im1");
    s.put("Patient/im1", &p).await;
    p["active"] = json!(false);
    let (status, _, h) = s
        .send(Method::PUT, "Patient/im1", &p, &[("if-match", "W/\"1\"")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "etag"), "W/\"2\"");
    let (status, oo, _) = s
        .send(Method::PUT, "Patient/im1", &p, &[("if-match", "W/\"1\"")])
        .await;
    assert_eq!(status, 412);
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let (_, cur, _) = s.get("Patient/im1").await;
    assert_eq!(
        cur["meta"]["versionId"], "2",
        "the stale update wrote nothing"
    );
}

async fn conditional_create_does_not_duplicate(s: &TestServer) {
    oxehr_testdata::require!();
    let mut p = example("Patient-example.json");
    p["identifier"] = json!([{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "cc-777"}]);
    let cond = [(
        "if-none-exist",
        "identifier=urn:oid:1.2.36.146.595.217.0.1|cc-777",
    )];
    let (first, b1, _) = s.send(Method::POST, "Patient", &p, &cond).await;
    assert_eq!(first, 201, "{b1}");
    // Eight more at once: all find the first one.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = s.client.clone();
        let url = s.url("Patient");
        let body = serde_json::to_vec(&p).expect("json");
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("content-type", "application/fhir+json")
                .header(cond[0].0, cond[0].1)
                .body(body)
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join"), 200);
    }
    let (_, found, _) = s
        .get("Patient?identifier=urn:oid:1.2.36.146.595.217.0.1|cc-777")
        .await;
    assert_eq!(found["total"], 1);
}

/// 16 clients create the same patient at once with `If-None-Exist`, half by REST and
/// half as a transaction Bundle entry with `ifNoneExist`: one resource is made, every
/// other request answers with it (200), none fails.
async fn concurrent_conditional_creates_make_exactly_one(s: &TestServer) {
    oxehr_testdata::require!();
    let mut p = example("Patient-example.json");
    p["identifier"] = json!([{"system": "urn:test", "value": "race-1"}]);
    let condition = "identifier=urn:test|race-1";
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "fullUrl": "urn:uuid:5a0c1f52-0000-4000-8000-000000000016",
        "resource": p,
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": condition}}]});
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = s.client.clone();
        let (url, body, header) = if i % 2 == 0 {
            (
                s.url("Patient"),
                serde_json::to_vec(&p).expect("json"),
                Some(condition),
            )
        } else {
            (s.url(""), serde_json::to_vec(&bundle).expect("json"), None)
        };
        tasks.push(tokio::spawn(async move {
            let mut req = client
                .post(url)
                .header("content-type", "application/fhir+json")
                .body(body);
            if let Some(h) = header {
                req = req.header("if-none-exist", h);
            }
            let resp = req.send().await.expect("post");
            let st = resp.status().as_u16();
            let body: Value = resp.json().await.expect("json");
            // A transaction's own status is 200; the entry's says what happened.
            match body["resourceType"].as_str() {
                Some("Bundle") => {
                    assert_eq!(st, 200, "{body}");
                    let entry = body["entry"][0]["response"]["status"]
                        .as_str()
                        .expect("entry status")
                        .to_owned();
                    (
                        entry.starts_with("201"),
                        entry.starts_with("200") || entry.starts_with("201"),
                    )
                }
                _ => (st == 201, st == 200 || st == 201),
            }
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (made, ok) = t.await.expect("join");
        assert!(ok, "a request failed");
        created += usize::from(made);
    }
    assert_eq!(created, 1);
    let (_, found, _) = s.get("Patient?identifier=urn:test|race-1").await;
    assert_eq!(found["total"], 1);
}

async fn failing_transaction_stores_nothing(s: &TestServer) {
    oxehr_testdata::require!();
    let good = example("Patient-example.json");
    let mut bad = example("Observation-example.json");
    bad["status"] = json!("not-a-status");
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:7f2b7a3e-0000-4000-8000-000000000001", "resource": good, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Organization", "id": "tx-org", "name": "Org"}, "request": {"method": "PUT", "url": "Organization/tx-org"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
    ]});
    let (status, oo, _) = s.post("", &tx).await;
    assert_eq!(status, 400, "{oo}");
    let expr = oo["issue"][0]["expression"][0].as_str().unwrap_or("");
    assert!(
        expr.starts_with("Bundle.entry[2]"),
        "the failing entry is named: {oo}"
    );
    let (_, h, _) = s.get("_history").await;
    assert_eq!(h["total"], 0, "nothing stored");
    let (status, _, _) = s.get("Organization/tx-org").await;
    assert_eq!(status, 404);
}

async fn transaction_rewrites_references_and_answers_per_entry(s: &TestServer) {
    oxehr_testdata::require!();
    let mut patient = example("Patient-example.json");
    patient.as_object_mut().expect("obj").remove("id");
    let mut obs = example("Observation-example.json");
    obs["subject"] = json!({"reference": "urn:uuid:7f2b7a3e-0000-4000-8000-0000000000aa"});
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:7f2b7a3e-0000-4000-8000-0000000000bb", "resource": obs, "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "urn:uuid:7f2b7a3e-0000-4000-8000-0000000000aa", "resource": patient, "request": {"method": "POST", "url": "Patient"}},
    ]});
    let (status, resp, _) = s.post("", &tx).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["type"], "transaction-response");
    let entries = resp["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    for e in entries {
        assert_eq!(e["response"]["status"], "201 Created");
    }
    let patient_loc = entries[1]["response"]["location"]
        .as_str()
        .expect("location");
    let patient_ref = patient_loc.split("/_history").next().expect("ref");
    let obs_loc = entries[0]["response"]["location"]
        .as_str()
        .expect("location");
    let (_, stored, _) = s.get(obs_loc.split("/_history").next().expect("obs")).await;
    assert_eq!(stored["subject"]["reference"], patient_ref);
}

async fn conditional_update_and_delete_follow_matches(s: &TestServer) {
    oxehr_testdata::require!();
    let mut p = example("Patient-example.json");
    p.as_object_mut().expect("obj").remove("id");
    p["identifier"] = json!([{"system": "urn:test", "value": "cu-1"}]);
    let (status, created, _) = s.put("Patient?identifier=urn:test|cu-1", &p).await;
    assert_eq!(status, 201, "no match creates: {created}");
    let id = created["id"].as_str().expect("id").to_string();
    p["active"] = json!(false);
    let (status, updated, _) = s.put("Patient?identifier=urn:test|cu-1", &p).await;
    assert_eq!(status, 200);
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["meta"]["versionId"], "2");
    // A second match makes the condition ambiguous: 412.
    let (_, _, _) = s.post("Patient", &p).await;
    let (status, _, _) = s.put("Patient?identifier=urn:test|cu-1", &p).await;
    assert_eq!(status, 412);
    let resp = s
        .client
        .delete(s.url("Patient?identifier=urn:test|cu-1"))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 412);
    let resp = s
        .client
        .delete(s.url(&format!("Patient?_id={id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 204);
    let (status, _, _) = s.get(&format!("Patient/{id}")).await;
    assert_eq!(status, 410);
}

async fn json_patch_changes_one_element(s: &TestServer) {
    oxehr_testdata::require!();
    let mut p = example("Patient-example.json");
    p["id"] = json!("jp1");
    s.put("Patient/jp1", &p).await;
    let patch = json!([{"op": "replace", "path": "/gender", "value": "female"}]);
    let resp = s
        .client
        .patch(s.url("Patient/jp1"))
        .header("content-type", "application/json-patch+json")
        .body(patch.to_string())
        .send()
        .await
        .expect("patch");
    let (status, body, _) = common::split(resp).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["gender"], "female");
    assert_eq!(body["meta"]["versionId"], "2");
    let mut expected = without_id_meta(&p);
    expected["gender"] = json!("female");
    assert_eq!(without_id_meta(&body).to_string(), expected.to_string());
}

async fn bad_input_gets_a_clear_error_and_the_server_keeps_serving(s: &TestServer) {
    oxehr_testdata::require!();
    // Malformed JSON.
    let resp = s
        .client
        .post(s.url("Patient"))
        .header("content-type", "application/fhir+json")
        .body("{\"resourceType\": \"Patient\",")
        .send()
        .await
        .expect("post");
    let (status, oo, _) = common::split(resp).await;
    assert_eq!(status, 400);
    assert_eq!(issue_codes(&oo), ["structure"]);
    // Wrong resourceType for the URL.
    let (status, oo, _) = s
        .post("Observation", &example("Patient-example.json"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(oo["issue"][0]["expression"][0], "resourceType");
    // Id in the body differs from the URL.
    let (status, _, _) = s
        .put("Patient/other-id", &example("Patient-example.json"))
        .await;
    assert_eq!(status, 400);
    // Unknown type.
    let (status, oo, _) = s.post("Fish", &json!({"resourceType": "Fish"})).await;
    assert_eq!(status, 404);
    assert_eq!(issue_codes(&oo), ["not-supported"]);
    // Invalid content: an unknown element, located.
    let mut p = example("Patient-example.json");
    p["name"][0]["nickname"] = json!("x");
    let (status, oo, _) = s.post("Patient", &p).await;
    assert_eq!(status, 400);
    assert_eq!(
        oo["issue"][0]["expression"][0], "Patient.name[0].nickname",
        "{oo}"
    );
    // XML is refused with 406 / 415.
    let resp = s
        .client
        .get(s.url("metadata"))
        .header("accept", "application/fhir+xml")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 406);
    let resp = s
        .client
        .post(s.url("Patient"))
        .header("content-type", "application/fhir+xml")
        .body("<Patient/>")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 415);
    // Nothing of that was stored, and the server still serves.
    let (_, h, _) = s.get("_history").await;
    assert_eq!(h["total"], 0);
    let (status, cs, _) = s.get("metadata").await;
    assert_eq!(status, 200);
    assert_eq!(cs["resourceType"], "CapabilityStatement");
}

async fn prefer_return_shapes_the_answer(s: &TestServer) {
    oxehr_testdata::require!();
    let p = example("Patient-example.json");
    let (status, body, h) = s
        .send(Method::POST, "Patient", &p, &[("prefer", "return=minimal")])
        .await;
    assert_eq!(status, 201);
    assert_eq!(body, Value::Null);
    assert!(header(&h, "location").contains("/Patient/"));
    let (status, body, _) = s
        .send(
            Method::POST,
            "Patient",
            &p,
            &[("prefer", "return=OperationOutcome")],
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["resourceType"], "OperationOutcome");
}

async fn summary_and_elements_subset_the_resource(s: &TestServer) {
    oxehr_testdata::require!();
    let mut p = example("Patient-example.json");
    p["id"] = json!("sum1");
    s.put("Patient/sum1", &p).await;
    let (_, e, _) = s.get("Patient/sum1?_elements=gender,birthDate").await;
    let mut keys: Vec<&str> = e
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    // `_birthDate` holds birthDate's own extension (the example's birth time): part of
    // the element asked for.
    assert_eq!(
        keys,
        [
            "_birthDate",
            "birthDate",
            "gender",
            "id",
            "meta",
            "resourceType"
        ]
    );
    assert!(e["meta"]["tag"]
        .as_array()
        .expect("tags")
        .iter()
        .any(|t| t["code"] == "SUBSETTED"));
    // _summary=true keeps the elements the spec flags isSummary (Patient.name is, .contact is not).
    let (_, s1, _) = s.get("Patient/sum1?_summary=true").await;
    assert!(s1.get("name").is_some());
    assert!(s1.get("contact").is_none());
    assert!(s1.get("text").is_none());
    let (_, d, _) = s.get("Patient/sum1?_summary=data").await;
    assert!(d.get("text").is_none() && d.get("contact").is_some());
    let (_, c, _) = s.get("Patient?_summary=count").await;
    assert_eq!(c["total"], 1);
    assert!(c.get("entry").is_none());
}

async fn validate_accepts_examples_and_locates_errors(s: &TestServer) {
    oxehr_testdata::require!();
    let (status, oo, _) = s
        .post("Patient/$validate", &example("Patient-example.json"))
        .await;
    assert_eq!(status, 200, "{oo}");
    assert!(oo["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .all(|i| i["severity"] != "error"));
    let mut bad = example("Patient-example.json");
    bad["birthDate"] = json!("1974-13-25");
    let (status, oo, _) = s.post("Patient/$validate", &bad).await;
    assert_eq!(status, 400);
    assert_eq!(oo["issue"][0]["expression"][0], "Patient.birthDate");
    // A FHIRPath invariant of the definitions (obs-6: "dataAbsentReason SHALL only be
    // present if Observation.value[x] is not present"): $validate names it, and a create
    // or an update is refused for it, storing nothing.
    let mut obs = example("Observation-example.json");
    obs["dataAbsentReason"] = json!({"text": "not asked"});
    let (status, oo, _) = s.post("Observation/$validate", &obs).await;
    assert_eq!(status, 400, "{oo}");
    let errors: Vec<&Value> = oo["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .filter(|i| i["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{oo}");
    assert_eq!(errors[0]["code"], "invariant");
    assert_eq!(errors[0]["expression"][0], "Observation");
    assert!(errors[0]["diagnostics"]
        .as_str()
        .is_some_and(|d| d.starts_with("obs-6: ")));
    let (status, oo, _) = s.post("Observation", &obs).await;
    assert_eq!(status, 400, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "invariant");
    let (status, _, _) = s.put("Observation/example", &obs).await;
    assert_eq!(status, 400);
    let (_, h, _) = s.get("_history").await;
    assert_eq!(h["total"], 0, "$validate and refused writes store nothing");
}

async fn search_basics_and_lenient_handling(s: &TestServer) {
    oxehr_testdata::require!();
    let mut a = example("Patient-example.json");
    a["id"] = json!("sa");
    a["name"] = json!([{"family": "Müller", "given": ["Ann"]}]);
    a["birthDate"] = json!("1970-02-03");
    let mut b = a.clone();
    b["id"] = json!("sb");
    b["name"] = json!([{"family": "Smith", "given": ["Bob"]}]);
    b["birthDate"] = json!("1980-05-06");
    s.put("Patient/sa", &a).await;
    s.put("Patient/sb", &b).await;
    let ids = |b: &Value| -> Vec<String> {
        let mut v: Vec<String> = b["entry"]
            .as_array()
            .map(|es| {
                es.iter()
                    .filter(|e| e["search"]["mode"] == "match")
                    .map(|e| e["resource"]["id"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let (_, r, _) = s.get("Patient?family=muller").await;
    assert_eq!(ids(&r), ["sa"]);
    let (_, r, _) = s.get("Patient?birthdate=1980-05-06").await;
    assert_eq!(ids(&r), ["sb"]);
    let (_, r, _) = s.get("Patient?birthdate=1980").await;
    assert_eq!(ids(&r), ["sb"]);
    let (_, r, _) = s.get("Patient?gender=male").await;
    assert_eq!(ids(&r), ["sa", "sb"]);
    let (_, r, _) = s.get("Patient?_id=sa,sb&family=smith").await;
    assert_eq!(ids(&r), ["sb"]);
    let (status, oo, _) = s.get("Patient?nonsense=1").await;
    assert_eq!(status, 400);
    assert!(oo["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or("")
        .contains("nonsense"));
    let resp = s
        .client
        .get(s.url("Patient?nonsense=1&gender=male"))
        .header("prefer", "handling=lenient")
        .send()
        .await
        .expect("get");
    let (status, r, _) = common::split(resp).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&r), ["sa", "sb"]);
    // The ignored parameter is named in an OperationOutcome entry of the Bundle.
    let outcome = r["entry"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["search"]["mode"] == "outcome"))
        .expect("an outcome entry");
    assert!(outcome["resource"]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or("")
        .contains("nonsense"));
}

/// Paging by position: while other clients create, update and delete resources between
/// page requests, every resource that existed throughout and kept its sort value is
/// returned exactly once, in order; deleted ones are gone from later pages, and the
/// pages hold the current version (nothing cached).
async fn paging_stays_correct_while_others_write(s: &TestServer) {
    oxehr_testdata::require!();
    let family = |i: usize| format!("Pagetest{:02}", i * 2);
    let mut p = example("Patient-example.json");
    for i in 0..12 {
        p["id"] = json!(format!("pg{i}"));
        p["name"] = json!([{"family": family(i)}]);
        let (status, _, _) = s.put(&format!("Patient/pg{i}"), &p).await;
        assert!(status == 201 || status == 200, "put pg{i}: {status}");
    }
    let mut url = s.url("Patient?family=pagetest&_sort=family&_count=4");
    let mut seen: Vec<String> = Vec::new();
    let mut round = 0;
    loop {
        let resp = s.client.get(&url).send().await.expect("get");
        let (status, page, _) = common::split(resp).await;
        assert_eq!(status, 200, "{page}");
        for e in page["entry"].as_array().into_iter().flatten() {
            seen.push(
                e["resource"]["name"][0]["family"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
        }
        // Between pages: a new Patient sorting first (before the position) and one
        // sorting last, the last of the originals deleted, and pg5 renamed in place.
        if round == 0 {
            for (id, fam) in [("pgnew-a", "Pagetest00a"), ("pgnew-z", "Pagetest99")] {
                p["id"] = json!(id);
                p["name"] = json!([{"family": fam}]);
                s.put(&format!("Patient/{id}"), &p).await;
            }
            let (status, _, _) = s
                .send(reqwest::Method::DELETE, "Patient/pg11", &Value::Null, &[])
                .await;
            assert!(status == 200 || status == 204, "delete: {status}");
            p["id"] = json!("pg5");
            p["name"] = json!([{"family": family(5)}]);
            p["gender"] = json!("female");
            s.put("Patient/pg5", &p).await;
        }
        round += 1;
        let next = page["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
        match next {
            Some(n) => url = n,
            None => break,
        }
        assert!(round < 20, "paging does not end");
    }
    // Expected, from what was written: the originals but the deleted one, the new one
    // that sorts after the first page, not the one that sorts before it.
    let mut expected: Vec<String> = (0..11).map(family).collect();
    expected.push("Pagetest99".into());
    assert_eq!(seen, expected);
}

/// What the Synthea data cannot show: UCUM canonical comparison across units, `_list`
/// and `_source`.
async fn search_units_lists_and_sources(s: &TestServer) {
    let obs = |id: &str, value: f64, code: &str, source: &str| {
        json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "meta": {"source": source},
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "valueQuantity": {"value": value, "unit": code,
                "system": "http://unitsofmeasure.org", "code": code}
        })
    };
    for (id, v, unit, src) in [
        ("u1", 1000.0, "mg", "urn:lab:a"),
        ("u2", 1.5, "g", "urn:lab:b"),
        ("u3", 900.0, "mg", "urn:lab:a"),
    ] {
        let (status, body, _) = s
            .put(&format!("Observation/{id}"), &obs(id, v, unit, src))
            .await;
        assert!(status == 201 || status == 200, "{body}");
    }
    let list = json!({
        "resourceType": "List", "id": "l1", "status": "current", "mode": "working",
        "entry": [{"item": {"reference": "Observation/u1"}}, {"item": {"reference": "Observation/u2"}}]
    });
    s.put("List/l1", &list).await;
    let ids = |b: &Value| -> Vec<String> {
        let mut v: Vec<String> = b["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["resource"]["id"].as_str().unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    };
    // 1 g is [0.5, 1.5) g: 1000 mg is 1 g; 1.5 g is outside; 900 mg is 0.9 g.
    for (q, want) in [
        ("Observation?value-quantity=1||g", vec!["u1", "u3"]),
        (
            "Observation?value-quantity=1|http://unitsofmeasure.org|g",
            vec!["u1", "u3"],
        ),
        (
            "Observation?value-quantity=gt950|http://unitsofmeasure.org|mg",
            vec!["u1", "u2"],
        ),
        (
            "Observation?value-quantity=lt1000|http://unitsofmeasure.org|mg",
            vec!["u3"],
        ),
        ("Observation?_list=l1", vec!["u1", "u2"]),
        ("Observation?_source=urn:lab:a", vec!["u1", "u3"]),
    ] {
        let (status, b, _) = s.get(q).await;
        assert_eq!(status, 200, "{q}: {b}");
        assert_eq!(ids(&b), want, "{q}");
    }
}

on_both_backends!(
    create_then_read_returns_what_was_sent,
    update_makes_versions_and_vread_returns_each,
    history_lists_versions_newest_first_with_since_and_count,
    delete_makes_reads_answer_410_and_keeps_history,
    update_with_stale_if_match_returns_412,
    conditional_create_does_not_duplicate,
    concurrent_conditional_creates_make_exactly_one,
    failing_transaction_stores_nothing,
    transaction_rewrites_references_and_answers_per_entry,
    conditional_update_and_delete_follow_matches,
    json_patch_changes_one_element,
    bad_input_gets_a_clear_error_and_the_server_keeps_serving,
    prefer_return_shapes_the_answer,
    summary_and_elements_subset_the_resource,
    validate_accepts_examples_and_locates_errors,
    search_basics_and_lenient_handling,
    paging_stays_correct_while_others_write,
    search_units_lists_and_sources,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    oxehr_testdata::require!();
    let config = oxehr_api::ApiConfig {
        max_body_bytes: 1024,
        ..Default::default()
    };
    let s = common::start_with(common::Backend::Sqlite, config)
        .await
        .expect("server");
    let (status, oo, _) = s.post("Patient", &example("Patient-example.json")).await;
    assert_eq!(status, 413);
    assert_eq!(issue_codes(&oo), ["too-long"]);
    let (status, _, _) = s.get("metadata").await;
    assert_eq!(status, 200);
}

/// Every official R4 example is accepted by `$validate` over HTTP, except the ones the
/// validator's own corpus test lists with the spec's reason
/// (`crates/fhir/tests/validate_corpus.rs`); broken variants are rejected with the
/// location of what was broken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_accepts_every_official_example() {
    oxehr_testdata::require!();
    let s = common::start(common::Backend::Sqlite)
        .await
        .expect("server");
    let dir = oxehr_testdata::path("fhir-examples");
    let known_invalid = [
        "DeviceMetric-example.json",
        "DeviceUseStatement-example.json",
        "MedicationRequest-medrx0301.json",
        "Observation-clinical-gender.json",
        "Questionnaire-qs1.json",
    ];
    // `_package.json` is the package's manifest, not an example.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("_")
                .starts_with('_')
        })
        .collect();
    files.sort();
    let mut accepted = 0;
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
        let rt = v["resourceType"].as_str().expect("resourceType");
        let (status, oo, _) = s.post(&format!("{rt}/$validate"), &v).await;
        if known_invalid.contains(&name.as_str()) {
            assert_eq!(status, 400, "{name} is known to be invalid");
        } else {
            assert_eq!(status, 200, "{name}: {oo}");
            accepted += 1;
        }
    }
    assert_eq!(
        accepted + known_invalid.len(),
        files.len(),
        "every example file was checked"
    );
    // Broken variants: (mutation, expected location).
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut p = example("Patient-example.json");
                p["gender"] = json!("boy");
                p
            },
            "Patient.gender",
        ),
        (
            {
                let mut p = example("Patient-example.json");
                p["active"] = json!("yes");
                p
            },
            "Patient.active",
        ),
        (
            {
                let mut p = example("Patient-example.json");
                p["name"][1]["unknown"] = json!(1);
                p
            },
            "Patient.name[1].unknown",
        ),
        (
            {
                let mut o = example("Observation-example.json");
                o.as_object_mut().expect("obj").shift_remove("status");
                o
            },
            "Observation.status",
        ),
        (
            {
                let mut o = example("Observation-example.json");
                o["effectiveDateTime"] = json!("2021-02-30");
                o
            },
            "Observation.effective.ofType(dateTime)",
        ),
        (
            {
                let mut o = example("Observation-example.json");
                o["subject"] = json!({"reference": "Medication/x"});
                o
            },
            "Observation.subject",
        ),
    ];
    for (resource, location) in cases {
        let rt = resource["resourceType"].as_str().expect("type").to_string();
        let (status, oo, _) = s.post(&format!("{rt}/$validate"), &resource).await;
        assert_eq!(status, 400, "{location}: {oo}");
        let locations: Vec<String> = oo["issue"]
            .as_array()
            .expect("issues")
            .iter()
            .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect();
        assert!(
            locations.iter().any(|l| l.starts_with(location)),
            "{location} not in {locations:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_every_resource_type_and_what_works() {
    oxehr_testdata::require!();
    let s = common::start(common::Backend::Sqlite)
        .await
        .expect("server");
    let (status, cs, _) = s.get("metadata").await;
    assert_eq!(status, 200);
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let resources = cs["rest"][0]["resource"].as_array().expect("resources");
    // Every concrete resource type of profiles-resources.json (counted independently).
    let defs = shared("fhir-r4/profiles-resources.json");
    let expected = defs["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| {
            e["resource"]["resourceType"] == "StructureDefinition"
                && e["resource"]["kind"] == "resource"
                && e["resource"]["abstract"] == false
        })
        .count();
    assert_eq!(resources.len(), expected);
    let patient = resources
        .iter()
        .find(|r| r["type"] == "Patient")
        .expect("Patient");
    let interactions: Vec<&str> = patient["interaction"]
        .as_array()
        .expect("interactions")
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    for code in [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ] {
        assert!(interactions.contains(&code), "{code}");
    }
    assert!(patient["searchParam"]
        .as_array()
        .expect("params")
        .iter()
        .any(|p| p["name"] == "family" && p["type"] == "string"));
    let system: Vec<&str> = cs["rest"][0]["interaction"]
        .as_array()
        .expect("system")
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    assert_eq!(
        system,
        ["transaction", "batch", "history-system", "search-system"]
    );
}

/// GET entries of a transaction run after its writes and see them; a read that fails is
/// reported in its entry (the writes stand).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_reads_see_its_writes() {
    oxehr_testdata::require!();
    let s = common::start(common::Backend::Sqlite)
        .await
        .expect("server");
    let mut p = example("Patient-example.json");
    p["id"] = json!("txr");
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Patient/txr"}},
        {"request": {"method": "GET", "url": "Patient/missing"}},
        {"resource": p, "request": {"method": "PUT", "url": "Patient/txr"}},
    ]});
    let (status, resp, _) = s.post("", &tx).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["entry"][0]["response"]["status"], "200 OK");
    assert_eq!(resp["entry"][0]["resource"]["id"], "txr");
    assert_eq!(resp["entry"][1]["response"]["status"], "404 Not Found");
    assert_eq!(resp["entry"][2]["response"]["status"], "201 Created");
}
