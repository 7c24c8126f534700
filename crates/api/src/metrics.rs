//! `GET /metrics` in the Prometheus text format (version 0.0.4): requests and their
//! latency by method and route, rate-limited requests, and whether the audit trail can
//! be written. Routes are the router's templates (`/fhir/{type}/{id}`), never the
//! request's own path or query, so a label holds no patient data and the series stay
//! few. Reading it needs a system administrator's (or backend service's) token: counts
//! by route still say how busy the record is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Series {
    /// Responses by status class: 1xx … 5xx.
    by_class: [u64; 5],
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's request metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(&'static str, String), Series>>,
    limited: std::sync::atomic::AtomicU64,
}

fn method_label(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        _ => "OTHER",
    }
}

impl Metrics {
    fn observe(&self, method: &'static str, route: &str, status: StatusCode, secs: f64) {
        let mut map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.entry((method, route.to_owned())).or_default();
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        s.by_class[class] += 1;
        s.count += 1;
        s.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// A request answered 429 by the rate limiter.
    pub(crate) fn limited(&self) {
        self.limited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The text exposition, with `gauges` of the record layer and the runtime.
    fn render(&self, audit_ok: bool, gauges: &[oxehr_records::Gauge]) -> String {
        let mut out = String::new();
        for g in gauges {
            let _ = writeln!(out, "# HELP {} {}", g.name, g.help);
            // A count that only grows is named `…_total` (Prometheus's convention).
            let kind = if g.name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(out, "# TYPE {} {kind}", g.name);
            let _ = writeln!(out, "{} {}", g.name, g.value);
        }
        let map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP oxehr_http_requests_total Requests answered, by method, route and status class.\n");
        out.push_str("# TYPE oxehr_http_requests_total counter\n");
        for ((m, r), s) in map.iter() {
            for (i, n) in s.by_class.iter().enumerate() {
                if *n > 0 {
                    let _ = writeln!(
                        out,
                        "oxehr_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{}xx\"}} {n}",
                        escape(r),
                        i + 1
                    );
                }
            }
        }
        out.push_str(
            "# HELP oxehr_http_request_duration_seconds Time to answer, by method and route.\n",
        );
        out.push_str("# TYPE oxehr_http_request_duration_seconds histogram\n");
        for ((m, r), s) in map.iter() {
            let labels = format!("method=\"{m}\",route=\"{}\"", escape(r));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "oxehr_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "oxehr_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "oxehr_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "oxehr_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out.push_str("# HELP oxehr_rate_limited_total Requests refused with 429 by the per-client rate limit.\n");
        out.push_str("# TYPE oxehr_rate_limited_total counter\n");
        let _ = writeln!(
            out,
            "oxehr_rate_limited_total {}",
            self.limited.load(std::sync::atomic::Ordering::Relaxed)
        );
        out.push_str(
            "# HELP oxehr_audit_writable Whether the audit trail can be written (0 stops reads).\n",
        );
        out.push_str("# TYPE oxehr_audit_writable gauge\n");
        let _ = writeln!(out, "oxehr_audit_writable {}", u8::from(audit_ok));
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Route layer: times each request and counts it under its route template.
pub(crate) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let resp = next.run(req).await;
    state.metrics.observe(
        method,
        &route,
        resp.status(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>, req: Request) -> Response {
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let caller = match crate::auth::caller_of(&state, authorization, None).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    if caller.role != oxehr_auth::Role::SystemAdmin {
        return crate::error::ApiError::new(
            StatusCode::FORBIDDEN,
            oxehr_fhir::IssueCode::Forbidden,
            "metrics are for system administrators and monitoring services",
        )
        .into_response();
    }
    let audit_ok = state.records.audit_writable();
    let mut gauges = match crate::interactions::blocking(&state.records, |r| Ok(r.gauges())).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let runtime = tokio::runtime::Handle::current().metrics();
    gauges.extend([
        oxehr_records::Gauge {
            name: "oxehr_runtime_workers",
            help: "Threads of the request runtime.",
            value: runtime.num_workers() as f64,
        },
        oxehr_records::Gauge {
            name: "oxehr_runtime_tasks",
            help: "Tasks alive on the request runtime (requests and connections in flight).",
            value: runtime.num_alive_tasks() as f64,
        },
        oxehr_records::Gauge {
            name: "oxehr_runtime_queue_depth",
            help: "Tasks waiting in the runtime's shared queue.",
            value: runtime.global_queue_depth() as f64,
        },
    ]);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(audit_ok, &gauges),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_count_and_bucket_by_route() {
        let m = Metrics::default();
        m.observe("GET", "/fhir/{type}/{id}", StatusCode::OK, 0.0015);
        m.observe("GET", "/fhir/{type}/{id}", StatusCode::NOT_FOUND, 0.3);
        m.limited();
        let gauge = oxehr_records::Gauge {
            name: "oxehr_test_gauge",
            help: "A gauge.",
            value: 2.5,
        };
        let count = oxehr_records::Gauge {
            name: "oxehr_test_things_total",
            help: "A count that only grows.",
            value: 7.0,
        };
        let text = m.render(true, &[gauge, count]);
        assert!(text.contains("# TYPE oxehr_test_gauge gauge\noxehr_test_gauge 2.5\n"));
        assert!(
            text.contains("# TYPE oxehr_test_things_total counter\noxehr_test_things_total 7\n")
        );
        assert!(text.contains("oxehr_http_requests_total{method=\"GET\",route=\"/fhir/{type}/{id}\",status=\"2xx\"} 1"));
        assert!(text.contains("oxehr_http_requests_total{method=\"GET\",route=\"/fhir/{type}/{id}\",status=\"4xx\"} 1"));
        // 0.0015 s is under 2 ms, 0.3 s under 0.5 s: cumulative buckets.
        assert!(text.contains("le=\"0.001\"} 0"));
        assert!(text.contains("le=\"0.002\"} 1"));
        assert!(text.contains("le=\"0.2\"} 1"));
        assert!(text.contains("le=\"0.5\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("oxehr_rate_limited_total 1"));
        assert!(text.contains("oxehr_audit_writable 1"));
    }
}
