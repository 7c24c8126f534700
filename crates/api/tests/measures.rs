//! `Measure/[id]/$evaluate-measure` over the stored Synthea patients, on both backends.
//!
//! The expected populations are worked out by the test from the bundles as sent
//! (`oxehr_clinical::measures::evaluate` over each bundle's own resources — the rules
//! themselves are checked against an independent reading of the specifications in
//! `crates/clinical/tests/measures_synthea.rs`); what this test checks is the record
//! layer's part: that the stored records give the same populations as the bundles, that
//! the subject lists name exactly those patients, that a background job gives the same
//! report, and that the population follows the access policy.

mod common;

use std::collections::BTreeMap;

use common::{add_account, Backend, TestServer};
use oxehr_clinical::measures::{self, MeasureId};
use oxehr_clinical::Record;
use serde_json::{json, Value};
use time::macros::date;

const PERIOD: (time::Date, time::Date) = (date!(2019 - 01 - 01), date!(2019 - 12 - 31));
const QUERY: &str = "periodStart=2019-01-01&periodEnd=2019-12-31";
const POPS: [&str; 4] = [
    "initial-population",
    "denominator",
    "denominator-exclusion",
    "numerator",
];

/// Loads every Synthea patient; returns, per patient (family name + birth date, which
/// tell the 94 apart), their bundle's resources.
async fn load(s: &TestServer) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for dir in ["synthea-v3", "smart-on-fhir-r4"] {
        for p in common::synthea_files(dir) {
            let bundle: Value =
                serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
            let (status, body, _) = s.post("", &bundle).await;
            assert_eq!(status, 200, "{}: {body}", p.display());
            let resources: Vec<Value> = bundle["entry"]
                .as_array()
                .expect("entries")
                .iter()
                .map(|e| e["resource"].clone())
                .collect();
            if let Some(patient) = resources.iter().find(|r| r["resourceType"] == "Patient") {
                out.insert(person_key(patient), resources);
            }
        }
    }
    out
}

fn person_key(p: &Value) -> String {
    format!(
        "{}|{}",
        p["name"][0]["family"].as_str().unwrap_or(""),
        p["birthDate"].as_str().unwrap_or("")
    )
}

/// Where each patient of the bundles falls: population code → person keys.
fn expected(
    m: MeasureId,
    bundles: &BTreeMap<String, Vec<Value>>,
) -> BTreeMap<&'static str, Vec<String>> {
    let mut out: BTreeMap<&'static str, Vec<String>> =
        POPS.iter().map(|p| (*p, Vec::new())).collect();
    for (key, resources) in bundles {
        let patient = resources
            .iter()
            .find(|r| r["resourceType"] == "Patient")
            .expect("patient");
        let r = measures::evaluate(m, &Record::new(patient, resources), PERIOD);
        for (code, member) in [
            ("initial-population", r.initial_population),
            ("denominator", r.denominator),
            ("denominator-exclusion", r.denominator_exclusion),
            ("numerator", r.numerator),
        ] {
            if member {
                out.get_mut(code).expect("code").push(key.clone());
            }
        }
    }
    out
}

fn count(report: &Value, code: &str) -> u64 {
    report["group"][0]["population"]
        .as_array()
        .expect("populations")
        .iter()
        .find(|p| p["code"]["coding"][0]["code"] == code)
        .and_then(|p| p["count"].as_u64())
        .unwrap_or_else(|| panic!("no {code} in {report}"))
}

async fn measures_over_synthea(backend: Backend) {
    let Some(s) = common::start(backend).await else {
        return;
    };
    let bundles = load(&s).await;
    assert_eq!(bundles.len(), 94, "the Synthea folders hold 94 patients");
    // Stored id → person key.
    let stored = common::all_pages(&s, "Patient?_count=500").await;
    let key_of: BTreeMap<String, String> = stored
        .iter()
        .map(|p| (p["id"].as_str().unwrap_or("").to_owned(), person_key(p)))
        .collect();

    let mut exercised = 0;
    for m in MeasureId::all() {
        let want = expected(m, &bundles);
        if !want["initial-population"].is_empty() {
            exercised += 1;
        }
        // Summary: the counts.
        let (st, report, _) = s
            .get(&format!("Measure/{}/$evaluate-measure?{QUERY}", m.id()))
            .await;
        assert_eq!(st, 200, "{report}");
        assert_eq!(report["type"], "summary");
        for code in POPS {
            assert_eq!(
                count(&report, code),
                want[code].len() as u64,
                "{} {code}",
                m.id()
            );
        }
        // Subject list: each population's patients.
        let (st, report, _) = s
            .get(&format!(
                "Measure/{}/$evaluate-measure?{QUERY}&reportType=subject-list",
                m.id()
            ))
            .await;
        assert_eq!(st, 200, "{report}");
        assert_eq!(report["type"], "subject-list");
        for code in POPS {
            let list_ref = report["group"][0]["population"]
                .as_array()
                .expect("populations")
                .iter()
                .find(|p| p["code"]["coding"][0]["code"] == code)
                .and_then(|p| p["subjectResults"]["reference"].as_str())
                .expect("subjectResults")
                .trim_start_matches('#')
                .to_owned();
            let list = report["contained"]
                .as_array()
                .expect("contained")
                .iter()
                .find(|l| l["id"] == list_ref.as_str())
                .expect("list");
            let mut got: Vec<String> = list["entry"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .map(|e| {
                            let id = e["item"]["reference"]
                                .as_str()
                                .unwrap_or("")
                                .trim_start_matches("Patient/");
                            key_of.get(id).cloned().unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default();
            got.sort();
            assert_eq!(got, want[code], "{} {code}", m.id());
        }
    }
    assert!(
        exercised >= 3,
        "the data exercised only {exercised} measures"
    );

    // One patient: an individual report agreeing with the bundle.
    let want = expected(MeasureId::Cms130, &bundles);
    let someone = want["numerator"]
        .first()
        .expect("a CMS130 numerator patient")
        .clone();
    let pid = key_of
        .iter()
        .find(|(_, k)| **k == someone)
        .map(|(id, _)| id.clone())
        .expect("stored");
    let (st, report, _) = s
        .get(&format!(
            "Measure/CMS130/$evaluate-measure?{QUERY}&subject=Patient/{pid}"
        ))
        .await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["type"], "individual");
    assert_eq!(report["subject"]["reference"], format!("Patient/{pid}"));
    assert_eq!(count(&report, "numerator"), 1);
    assert!(report["evaluatedResource"]
        .as_array()
        .is_some_and(|e| !e.is_empty()));

    // The same report as a background job; only its requester may read it.
    let resp = s
        .client
        .get(s.url(&format!("Measure/CMS130/$evaluate-measure?{QUERY}")))
        .header("prefer", "respond-async")
        .send()
        .await
        .expect("kick-off");
    assert_eq!(resp.status().as_u16(), 202);
    let location = resp
        .headers()
        .get("content-location")
        .and_then(|v| v.to_str().ok())
        .expect("content-location")
        .to_owned();
    let other = add_account(&s, "measure-other", "system-admin", None, None).await;
    let resp = other.get(&location).send().await.expect("poll");
    assert_eq!(resp.status().as_u16(), 404, "another account read the job");
    let mut report = Value::Null;
    for _ in 0..600 {
        let resp = s.client.get(&location).send().await.expect("poll");
        if resp.status().as_u16() == 200 {
            report = resp.json().await.expect("json");
            break;
        }
        assert_eq!(resp.status().as_u16(), 202);
        assert!(resp.headers().get("x-progress").is_some());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for code in POPS {
        assert_eq!(
            count(&report, code),
            want[code].len() as u64,
            "async {code}"
        );
    }

    // The access policy: a practice with no patients in its care counts nobody; a
    // patient may not ask for a population, only for themselves.
    let (st, _, _) = s
        .put("Organization/empty-practice", &json!({"resourceType": "Organization", "id": "empty-practice", "name": "Empty Practice"}))
        .await;
    assert!(st == 200 || st == 201);
    let doc = add_account(&s, "measure-doc", "clinician", Some("empty-practice"), None).await;
    let resp = doc
        .get(s.url(&format!("Measure/CMS130/$evaluate-measure?{QUERY}")))
        .send()
        .await
        .expect("get");
    let (st, report, _) = common::split(resp).await;
    assert_eq!(st, 200, "{report}");
    for code in POPS {
        assert_eq!(count(&report, code), 0, "{code}");
    }
    let me = add_account(
        &s,
        "measure-pat",
        "patient",
        None,
        Some(&format!("Patient/{pid}")),
    )
    .await;
    let resp = me
        .get(s.url(&format!("Measure/CMS130/$evaluate-measure?{QUERY}")))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 403);
    let resp = me
        .get(s.url(&format!(
            "Measure/CMS130/$evaluate-measure?{QUERY}&subject=Patient/{pid}"
        )))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 200);

    // Bad requests.
    for bad in [
        "Measure/CMS999/$evaluate-measure?periodStart=2019-01-01&periodEnd=2019-12-31".to_owned(),
        "Measure/CMS130/$evaluate-measure?periodStart=2019-01-01".to_owned(),
        "Measure/CMS130/$evaluate-measure?periodStart=2019-12-31&periodEnd=2019-01-01".to_owned(),
        format!("Measure/CMS130/$evaluate-measure?{QUERY}&reportType=everything"),
        format!("Measure/CMS130/$evaluate-measure?{QUERY}&subject=Group/1"),
    ] {
        let (st, b, _) = s.get(&bad).await;
        assert!(st == 400 || st == 404, "{bad}: {st} {b}");
        assert_eq!(b["resourceType"], "OperationOutcome");
    }
}

#[tokio::test]
async fn measures_over_synthea_sqlite() {
    oxehr_testdata::require!();
    measures_over_synthea(Backend::Sqlite).await;
}

#[tokio::test]
async fn measures_over_synthea_postgres() {
    oxehr_testdata::require!();
    measures_over_synthea(Backend::Postgres).await;
}
