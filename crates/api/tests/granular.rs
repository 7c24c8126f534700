//! SMART v2 granular scopes over HTTP, on both backends: a token whose scope on a type is
//! narrowed by a query (`patient/Observation.rs?category=…|laboratory`) reads and
//! searches only the resources matching it — matches, totals, pages, compartment
//! searches and `_revinclude` — answers 404 for a resource that does not match, and is
//! refused (403) wherever the narrowing is not carried (vread, history, several types,
//! writes). Two narrowed scopes grant what matches either.
//!
//! Expectations come from the fixture (each Observation's category and code, written
//! down here), filtered in the test, never from the server's answers.

mod common;

use std::collections::BTreeSet;

use common::{client_with, issue_token, TestServer};
use serde_json::{json, Value};

const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const LAB: &str = "laboratory";
const HEART_RATE: &str = "8867-4";
const GLUCOSE: &str = "2345-7";

/// (id, patient, category, LOINC code)
const OBSERVATIONS: &[(&str, &str, &str, &str)] = &[
    ("lab-glucose-1", "p1", LAB, GLUCOSE),
    ("lab-glucose-2", "p1", LAB, GLUCOSE),
    ("lab-pulse", "p1", LAB, HEART_RATE),
    ("vital-pulse", "p1", "vital-signs", HEART_RATE),
    ("vital-glucose", "p1", "vital-signs", GLUCOSE),
    ("social", "p1", "social-history", "72166-2"),
    ("other-lab", "p2", LAB, GLUCOSE),
];

fn observation(id: &str, patient: &str, category: &str, code: &str) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 70, "unit": "1", "system": "http://unitsofmeasure.org", "code": "1"}
    })
}

/// `Observation/id` of p1's observations passing `keep`.
fn expected(keep: impl Fn(&str, &str) -> bool) -> BTreeSet<String> {
    OBSERVATIONS
        .iter()
        .filter(|(_, patient, category, code)| *patient == "p1" && keep(category, code))
        .map(|(id, ..)| format!("Observation/{id}"))
        .collect()
}

async fn fixture(s: &TestServer) {
    for p in ["p1", "p2"] {
        let (st, body, _) = s
            .put(
                &format!("Patient/{p}"),
                &json!({"resourceType": "Patient", "id": p, "name": [{"family": p}]}),
            )
            .await;
        assert!(st == 200 || st == 201, "{st} {body}");
    }
    for (id, patient, category, code) in OBSERVATIONS {
        let (st, body, _) = s
            .put(
                &format!("Observation/{id}"),
                &observation(id, patient, category, code),
            )
            .await;
        assert!(st == 200 || st == 201, "{st} {body}");
    }
    common::add_account(s, "pat", "patient", None, Some("Patient/p1")).await;
}

struct App<'a> {
    s: &'a TestServer,
    http: reqwest::Client,
}

impl App<'_> {
    fn new<'a>(s: &'a TestServer, scope: &str) -> App<'a> {
        let token = issue_token(
            &s.key,
            "pat",
            "patient",
            scope,
            None,
            Some("Patient/p1"),
            Some("p1"),
        );
        App {
            s,
            http: client_with(&token),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        // A system search is `[base]?…`, without a slash.
        let url = if path.starts_with('?') {
            format!("{}{path}", self.s.base)
        } else {
            self.s.url(path)
        };
        let resp = self.http.get(url).send().await.expect("get");
        let (st, body, _) = common::split(resp).await;
        (st, body)
    }

    /// Every match of a search (following `next`), the first page's total, and the
    /// resources included on any page.
    async fn search(&self, path: &str) -> (BTreeSet<String>, Option<u64>, BTreeSet<String>) {
        let (mut matches, mut included, mut total) = (BTreeSet::new(), BTreeSet::new(), None);
        let mut next = Some(self.s.url(path));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            assert!(pages < 20, "{path}: too many pages");
            let resp = self.http.get(&url).send().await.expect("get");
            let (st, bundle, _) = common::split(resp).await;
            assert_eq!(st, 200, "{url}: {bundle}");
            if total.is_none() {
                total = bundle["total"].as_u64();
            }
            for e in bundle["entry"].as_array().cloned().unwrap_or_default() {
                let r = &e["resource"];
                let key = format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap_or("?"),
                    r["id"].as_str().unwrap_or("?")
                );
                if e["search"]["mode"] == "include" {
                    included.insert(key);
                } else {
                    assert!(matches.insert(key), "{path}: a match on two pages");
                }
            }
            next = bundle["link"].as_array().and_then(|links| {
                links
                    .iter()
                    .find(|l| l["relation"] == "next")
                    .and_then(|l| l["url"].as_str().map(str::to_owned))
            });
        }
        (matches, total, included)
    }
}

async fn a_narrowed_scope_reads_and_searches_only_what_matches(s: &TestServer) {
    fixture(s).await;
    let labs = expected(|category, _| category == LAB);
    assert_eq!(labs.len(), 3, "the fixture has three of p1's lab results");
    let app = App::new(
        s,
        &format!("patient/Observation.rs?category={CATEGORY}|{LAB} patient/Patient.rs"),
    );

    // Searches: matches, total and every page hold only the lab results.
    for path in [
        "Observation",
        "Observation?_count=1",
        "Observation?patient=p1",
        "Patient/p1/Observation",
    ] {
        let (m, total, _) = app.search(path).await;
        assert_eq!(m, labs, "{path}");
        assert_eq!(total, Some(labs.len() as u64), "{path}");
    }
    // The caller's own parameters narrow further, never wider.
    let (m, total, _) = app.search("Observation?category=vital-signs").await;
    assert!(m.is_empty(), "{m:?}");
    assert_eq!(total, Some(0));
    let (m, _, _) = app
        .search(&format!("Observation?code=http://loinc.org|{HEART_RATE}"))
        .await;
    assert_eq!(m, expected(|c, code| c == LAB && code == HEART_RATE));
    let (m, _, _) = app.search("Observation?_id=vital-pulse,lab-pulse").await;
    assert_eq!(m, expected(|c, code| c == LAB && code == HEART_RATE));
    // _revinclude brings only the lab results.
    let (m, _, inc) = app
        .search("Patient?_id=p1&_revinclude=Observation:patient")
        .await;
    assert_eq!(m, BTreeSet::from(["Patient/p1".to_owned()]));
    assert_eq!(inc, labs);

    // Reads: a lab result is there; any other answers as one that does not exist.
    assert_eq!(app.get("Observation/lab-pulse").await.0, 200);
    let (st, body) = app.get("Observation/vital-pulse").await;
    assert_eq!(st, 404, "{body}");
    let (st_none, body_none) = app.get("Observation/no-such-thing").await;
    assert_eq!(st_none, 404);
    assert_eq!(
        body["issue"][0]["code"], body_none["issue"][0]["code"],
        "the same answer as for a resource that does not exist"
    );
    // Another patient's lab result stays another patient's.
    assert_ne!(app.get("Observation/other-lab").await.0, 200);

    // Where the narrowing is not carried: refused, not served whole.
    for path in [
        "Observation/lab-pulse/_history/1",
        "Observation/lab-pulse/_history",
        "Observation/_history",
        "?_type=Observation,Patient",
        "Patient/p1/$everything",
        "Condition",
    ] {
        let (st, body) = app.get(path).await;
        assert_eq!(st, 403, "{path}: {body}");
    }
    // A narrowed scope grants no writes, even one that would match.
    let resp = app
        .http
        .post(s.url("Observation"))
        .header("content-type", "application/fhir+json")
        .body(observation("new-lab", "p1", LAB, GLUCOSE).to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 403);
}

async fn two_narrowed_scopes_grant_what_matches_either(s: &TestServer) {
    fixture(s).await;
    let app = App::new(
        s,
        &format!(
            "patient/Observation.rs?category={CATEGORY}|{LAB} \
             patient/Observation.rs?code=http://loinc.org|{HEART_RATE}"
        ),
    );
    let either = expected(|category, code| category == LAB || code == HEART_RATE);
    assert_eq!(
        either.len(),
        4,
        "three lab results and the vital-sign pulse"
    );
    for path in ["Observation", "Observation?_count=2"] {
        let (m, total, _) = app.search(path).await;
        assert_eq!(m, either, "{path}");
        assert_eq!(total, Some(either.len() as u64), "{path}");
    }
    assert_eq!(app.get("Observation/vital-pulse").await.0, 200);
    assert_eq!(app.get("Observation/lab-glucose-1").await.0, 200);
    assert_eq!(app.get("Observation/vital-glucose").await.0, 404);
    assert_eq!(app.get("Observation/social").await.0, 404);

    // A scope on the whole type wins over the narrowed ones.
    let whole = App::new(
        s,
        &format!("patient/Observation.rs?category={CATEGORY}|{LAB} patient/Observation.rs"),
    );
    let (m, _, _) = whole.search("Observation").await;
    assert_eq!(m, expected(|_, _| true));
}

on_both_backends!(
    a_narrowed_scope_reads_and_searches_only_what_matches,
    two_narrowed_scopes_grant_what_matches_either
);
