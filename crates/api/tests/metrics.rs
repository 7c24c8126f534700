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

    // Gauges: the pool as configured, nothing waiting at rest, the audit trail caught up
    // with the searches above once its window has passed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, body) = text(&s.client, &url).await;
    let g = |name: &str| gauge(&body, name).unwrap_or_else(|| panic!("{name} in {body}"));
    assert_eq!(
        g("oxehr_runtime_workers"),
        2.0,
        "the test runtime's two workers"
    );
    assert!(g("oxehr_runtime_tasks") >= 1.0);
    assert_eq!(g("oxehr_audit_pending_records"), 0.0);
    let since = g("oxehr_audit_seconds_since_append");
    assert!((0.0..60.0).contains(&since), "{since}");
    assert_eq!(g("oxehr_export_jobs_queued"), 0.0);
    assert_eq!(g("oxehr_export_jobs_running"), 0.0);
    match s.records.backend_name() {
        "sqlite" => {
            let total = g("oxehr_store_read_connections");
            assert_eq!(
                total,
                oxehr_store_sqlite::SqliteConfig::default().readers as f64
            );
            assert!(g("oxehr_store_read_connections_idle") <= total);
            assert_eq!(g("oxehr_store_writes_in_flight"), 0.0);
        }
        _ => {
            let max = g("oxehr_store_connections_max");
            assert_eq!(
                max,
                oxehr_store_postgres::PostgresConfig::default().pool_size as f64
            );
            let open = g("oxehr_store_connections_open");
            assert!((1.0..=max).contains(&open), "{open}");
            assert!(g("oxehr_store_connections_idle") <= open);
        }
    }
}

/// The value of an unlabelled gauge in a text exposition.
fn gauge(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
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
