//! FHIR R4 REST over HTTP (axum), on `/fhir`.
//!
//! Only this crate knows HTTP: status codes, ETags, `Prefer`, `_format`. Every
//! interaction calls `oxehr-records`, on a blocking thread, and renders its answer.
//!
//! Errors map once, here, from the record layer's categories:
//!
//! | category            | status | OperationOutcome issue code |
//! |---------------------|--------|-----------------------------|
//! | invalid             | 400    | from the validator (structure, value, required, …) |
//! | not found           | 404    | not-found                   |
//! | gone (deleted)      | 410    | deleted                     |
//! | conflict            | 409    | conflict                    |
//! | precondition failed | 412    | processing                  |
//! | forbidden           | 403    | forbidden                   |
//! | not allowed         | 405    | not-supported (writes of AuditEvent) |
//! | unsupported         | 400 / 404 (unknown type) / 406 / 415 | not-supported |
//! | busy                | 503    | timeout                     |
//! | internal            | 500    | exception                   |
//! | body too large      | 413    | too-long                    |

mod audit_events;
mod auth;
mod bulk;
mod bundle;
mod capabilities;
mod clinical;
mod documents;
mod error;
mod extract;
mod format;
mod interactions;
pub mod limits;
mod measures;
mod metrics;
mod patients;
mod routes;
mod smart;
mod views;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use oxehr_records::Records;

pub use error::ApiError;
pub use routes::router;

/// Settings of the FHIR REST adapter.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The FHIR base URL clients see (`http://127.0.0.1:8080/fhir`), used in `Location`,
    /// `fullUrl` and links.
    pub base_url: String,
    /// Largest request body accepted, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Requests taking longer are answered 503.
    pub request_timeout: Duration,
    /// Default and largest page sizes of search and history.
    pub default_count: usize,
    pub max_count: usize,
    /// Requests each client may make (`limits`): by account once authenticated, by
    /// address while its credentials fail. `None`: no limit.
    pub rate_limit: Option<limits::RateLimit>,
    /// Called with each request's span as it is made, and the request's headers: the
    /// server's OpenTelemetry build uses it to continue a caller's trace
    /// (`traceparent`). A plain function, so this crate depends on no tracing exporter.
    pub on_request_span: Option<RequestSpanHook>,
}

/// See [`ApiConfig::on_request_span`].
pub type RequestSpanHook = fn(&tracing::Span, &http::HeaderMap);

/// Requests per second each client may make by default, with a burst of twice that:
/// far above what a person's pages or an interface send, low enough that one runaway
/// script cannot take the server's capacity (tens of thousands of reads a second) from
/// the rest.
pub const DEFAULT_RATE_LIMIT: u32 = 1000;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            base_url: "http://127.0.0.1:8080/fhir".into(),
            max_body_bytes: 64 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            default_count: 50,
            max_count: 1000,
            rate_limit: Some(limits::RateLimit::per_second(DEFAULT_RATE_LIMIT)),
            on_request_span: None,
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

/// Every handler reads the parts through the state; a clone (one per request, by the
/// extractors) is one reference count.
impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What the handlers share.
#[derive(Debug)]
pub struct AppParts {
    pub records: Records,
    pub config: Arc<ApiConfig>,
    /// The CapabilityStatement, built once when the router is made.
    pub capabilities: Arc<serde_json::Value>,
    /// Who is calling: sign-in, sessions, bearer tokens, the OAuth grants (with the
    /// rules of the authorization server at `/auth/*`).
    pub identity: oxehr_auth::Identity,
    /// The per-client buckets, when requests are limited.
    pub limiter: Option<Arc<limits::RateLimiter>>,
    /// Request counts and latencies for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
}

/// Serves `router` on an already-bound listener until `shutdown` completes (tests bind
/// port 0; no fixed ports, no sleeps).
pub async fn run(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
