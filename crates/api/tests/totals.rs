//! A search's `total` (FHIR R4 3.1.1.5.8, `_total`): exact up to
//! `EXACT_TOTAL_UP_TO` matches whatever was asked; above that, exact only when the
//! search asks `_total=accurate`, otherwise an estimate read from the index of the
//! search's driving condition (never below the matches); none with `_total=none`. On
//! both backends.

mod common;

use common::{Backend, TestServer};
use oxehr_records::EXACT_TOTAL_UP_TO;
use serde_json::{json, Value};

const CODE: &str = "http://loinc.org|8302-2";

/// Writes `coded` Observations with code `CODE`, the first `recent` of them dated 2020
/// and the others 2010, in one transaction.
async fn write(s: &TestServer, coded: usize, recent: usize) {
    let entries: Vec<Value> = (0..coded)
        .map(|i| {
            let year = if i < recent { 2020 } else { 2010 };
            json!({
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
                    "effectiveDateTime": format!("{year}-01-01"),
                },
                "request": {"method": "POST", "url": "Observation"},
            })
        })
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let (status, body, _) = s.post("", &bundle).await;
    assert_eq!(status, 200, "transaction: {body}");
}

async fn total(s: &TestServer, query: &str) -> Option<u64> {
    let (status, body, _) = s.get(&format!("Observation?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body["total"].as_u64()
}

async fn totals(backend: Backend) {
    let Some(s) = common::start(backend).await else {
        return;
    };
    let cap = EXACT_TOTAL_UP_TO as usize;
    // More Observations with the code than the cap, all but 50 of them recent, so that
    // the recent ones are also more than the cap.
    let (coded, recent) = (cap + 100, cap + 50);
    write(&s, coded, recent).await;
    let old = coded - recent;
    // Few matches: exact, whether the first page holds them all or not.
    assert_eq!(
        total(&s, &format!("code={CODE}&date=lt2015&_count=100")).await,
        Some(old as u64)
    );
    assert_eq!(
        total(&s, &format!("code={CODE}&date=lt2015&_count=10")).await,
        Some(old as u64)
    );
    // Many matches of one condition: the index rows are the matches.
    assert_eq!(
        total(&s, &format!("code={CODE}&_count=10")).await,
        Some(coded as u64)
    );
    // Many matches of two conditions: the code drives (a date range is less selective), so
    // the estimate counts every coded Observation; asked for, the exact number.
    assert_eq!(
        total(&s, &format!("code={CODE}&date=ge2015&_count=10")).await,
        Some(coded as u64),
        "the estimate of the code's rows"
    );
    assert_eq!(
        total(
            &s,
            &format!("code={CODE}&date=ge2015&_count=10&_total=estimate")
        )
        .await,
        Some(coded as u64)
    );
    assert_eq!(
        total(
            &s,
            &format!("code={CODE}&date=ge2015&_count=10&_total=accurate")
        )
        .await,
        Some(recent as u64)
    );
    assert_eq!(
        total(
            &s,
            &format!("code={CODE}&date=ge2015&_count=10&_total=none")
        )
        .await,
        None
    );
    // A later page is counted too.
    let (_, first, _) = s
        .get(&format!("Observation?code={CODE}&date=lt2015&_count=20"))
        .await;
    let next = first["link"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        .and_then(|l| l["url"].as_str())
        .expect("a next link");
    let resp = s.client.get(next).send().await.expect("next page");
    let (_, second, _) = common::split(resp).await;
    assert_eq!(second["total"].as_u64(), Some(old as u64), "a later page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_sqlite() {
    totals(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_postgres() {
    totals(Backend::Postgres).await;
}
