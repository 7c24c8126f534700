//! Per-client rate limits over real HTTP: a client that has used its requests gets 429
//! with an OperationOutcome (`throttled`) and `Retry-After`; other clients keep their
//! own budget; an address whose credentials keep failing is refused before they are
//! checked; and the server keeps serving.

mod common;

use common::{client_with, Backend};
use oxehr_api::limits::RateLimit;
use serde_json::Value;

/// Three requests at once, then one every two seconds.
const LIMIT: RateLimit = RateLimit {
    per_second: 0.5,
    burst: 3.0,
};

async fn status_of(c: &reqwest::Client, url: &str) -> (u16, Option<u64>, Value) {
    let resp = c.get(url).send().await.expect("GET");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.parse().expect("Retry-After is whole seconds"));
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

/// A SQLite server limiting each client to [`LIMIT`].
async fn limited_server() -> common::TestServer {
    let config = oxehr_api::ApiConfig {
        rate_limit: Some(LIMIT),
        ..Default::default()
    };
    common::start_with(Backend::Sqlite, config)
        .await
        .expect("server")
}

fn issue_code(oo: &Value) -> &str {
    oo["issue"][0]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_limit_gets_429_with_retry_after() {
    let s = limited_server().await;
    let (st, _, _) = s
        .put(
            "Organization/org-1",
            &serde_json::json!({"resourceType": "Organization", "id": "org-1", "name": "Clinic"}),
        )
        .await;
    assert!(st == 200 || st == 201);
    let alice = common::add_account(&s, "alice", "clinician", Some("org-1"), None).await;
    let bob = common::add_account(&s, "bob", "clinician", Some("org-1"), None).await;
    let url = s.url("Patient?_count=1");
    for i in 0..3 {
        let (st, _, body) = status_of(&alice, &url).await;
        assert_eq!(st, 200, "request {i} of the burst: {body}");
    }
    let (st, retry, oo) = status_of(&alice, &url).await;
    assert_eq!(st, 429, "{oo}");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(issue_code(&oo), "throttled");
    // One request comes back every 2 s: at most 2 s to wait, at least 1 (whole seconds).
    let retry = retry.expect("Retry-After");
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Bob's budget is his own.
    let (st, _, body) = status_of(&bob, &url).await;
    assert_eq!(st, 200, "{body}");
    // After waiting as told, Alice is served again.
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    let (st, _, body) = status_of(&alice, &url).await;
    assert_eq!(st, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_credentials_are_refused_without_being_checked_once_over_the_limit() {
    let s = limited_server().await;
    let forger = client_with("not-a-token");
    let url = s.url("Patient");
    for i in 0..3 {
        let (st, _, oo) = status_of(&forger, &url).await;
        assert_eq!(st, 401, "failure {i}: {oo}");
    }
    let (st, retry, oo) = status_of(&forger, &url).await;
    assert_eq!(st, 429, "{oo}");
    assert_eq!(issue_code(&oo), "throttled");
    assert!(retry.is_some());
    // The public CapabilityStatement needs no credential and is not limited by them.
    let (st, _, _) = status_of(&reqwest::Client::new(), &s.url("metadata")).await;
    assert_eq!(st, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_limit_when_turned_off() {
    let config = oxehr_api::ApiConfig {
        rate_limit: None,
        ..Default::default()
    };
    let s = common::start_with(Backend::Sqlite, config)
        .await
        .expect("server");
    let url = s.url("Patient?_count=1");
    for i in 0..20 {
        let (st, _, body) = status_of(&s.client, &url).await;
        assert_eq!(st, 200, "request {i}: {body}");
    }
}

/// History is paged by offset; a page deeper than the maximum result window is refused
/// with `too-costly` (the bound is `records::MAX_HISTORY_OFFSET`), one at the bound is
/// served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_deeper_than_the_result_window_is_refused() {
    let s = common::start(Backend::Sqlite).await.expect("server");
    let max = oxehr_records::MAX_HISTORY_OFFSET;
    let (st, oo, _) = s.get(&format!("_history?_offset={}", max + 1)).await;
    assert_eq!(st, 400, "{oo}");
    assert_eq!(issue_code(&oo), "too-costly");
    assert!(
        oo["issue"][0]["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("_since")),
        "{oo}"
    );
    let (st, page, _) = s.get(&format!("_history?_offset={max}")).await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(page["type"], "history");
}
