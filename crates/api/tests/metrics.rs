//! `GET /metrics`: Prometheus text with requests by method, route template and status
//! class and their latency; only for a system administrator; no request's own path,
//! id or query in it.

mod common;

use common::{Backend, TestServer};

async fn text(c: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = c.get(url).send().await.expect("get");
    (resp.status().as_u16(), resp.text().await.expect("text"))
}

async fn metrics_count_routes_for_administrators_only(s: &TestServer) {
    let root = s.base.trim_end_matches("/fhir").to_owned();
    let url = format!("{root}/metrics");
    s.get("Patient?name=Secretname").await;
    s.get("Patient?name=Secretname").await;
    let (st, _, _) = s.get("Patient/not-there-7").await;
    assert_eq!(st, 404);

    assert_eq!(text(&s.anonymous, &url).await.0, 401);
    let (st, body) = text(&s.client, &url).await;
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains(
            r#"oxehr_http_requests_total{method="GET",route="/fhir/{type}",status="2xx"} 2"#
        ),
        "{body}"
    );
    assert!(
        body.contains(
            r#"oxehr_http_requests_total{method="GET",route="/fhir/{type}/{id}",status="4xx"} 1"#
        ),
        "{body}"
    );
    assert!(body.contains(
        r#"oxehr_http_request_duration_seconds_count{method="GET",route="/fhir/{type}"} 2"#
    ));
    assert!(body.contains("oxehr_audit_writable 1"));
    // Templates only: nothing a request carried.
    assert!(
        !body.contains("Secretname") && !body.contains("not-there-7"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_may_not_read_metrics() {
    let s = common::start(Backend::Sqlite).await.expect("server");
    let (st, _, _) = s
        .put(
            "Organization/org-m",
            &serde_json::json!({"resourceType": "Organization", "id": "org-m", "name": "Clinic"}),
        )
        .await;
    assert!(st == 200 || st == 201);
    let clinician = common::add_account(&s, "dr-m", "clinician", Some("org-m"), None).await;
    let root = s.base.trim_end_matches("/fhir").to_owned();
    assert_eq!(text(&clinician, &format!("{root}/metrics")).await.0, 403);
}

on_both_backends!(metrics_count_routes_for_administrators_only);
