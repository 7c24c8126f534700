//! Logs, and with the `otel` feature OpenTelemetry traces: each request's span (method,
//! path and request id, as the log has them; never the query, which may carry search
//! values such as names) is exported over OTLP/HTTP to `--otel-endpoint`, batched every
//! second. The exporter runs on a thread of its own; a collector that is down costs
//! dropped spans, never a request. A request that carries a W3C `traceparent` header
//! (and `tracestate`) continues its caller's trace: its span is a child of the caller's
//! ([`request_span_hook`]).

use anyhow::{bail, Result};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

/// What must outlive the program's work: the trace exporter, flushed by
/// [`Telemetry::shutdown`].
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still waiting, then stops the exporter.
    pub fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(p) = self.provider {
            if let Err(e) = p.shutdown() {
                eprintln!("oxehr: flushing traces: {e}");
            }
        }
    }
}

/// Logs to standard error as `format` (`text` or `json`), filtered by `OXEHR_LOG`; and
/// traces to `otel_endpoint` (a collector's OTLP/HTTP base URL) when given.
pub fn init(format: &str, otel_endpoint: Option<&str>) -> Result<Telemetry> {
    let filter = EnvFilter::try_from_env("OXEHR_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let mut layers: Vec<Boxed> = vec![match format {
        "text" => fmt.boxed(),
        "json" => fmt.json().boxed(),
        other => bail!("unknown log format '{other}' (use text or json)"),
    }];
    let telemetry = traces(otel_endpoint, &mut layers)?;
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .init();
    Ok(telemetry)
}

#[cfg(not(feature = "otel"))]
fn traces(endpoint: Option<&str>, _: &mut Vec<Boxed>) -> Result<Telemetry> {
    if endpoint.is_some() {
        bail!(
            "this oxehr was built without OpenTelemetry; build it with \
             `cargo build --release -p oxehr --features otel` to use --otel-endpoint"
        );
    }
    Ok(Telemetry {})
}

#[cfg(feature = "otel")]
fn traces(endpoint: Option<&str>, layers: &mut Vec<Boxed>) -> Result<Telemetry> {
    use anyhow::Context;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};

    let Some(base) = endpoint else {
        return Ok(Telemetry { provider: None });
    };
    let base = base.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--otel-endpoint must be an http:// or https:// URL (a collector's OTLP/HTTP port, usually 4318)");
    }
    let url = if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()
        .context("the OpenTelemetry exporter")?;
    let batches = BatchConfigBuilder::default()
        .with_scheduled_delay(std::time::Duration::from_secs(1))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(exporter)
                .with_batch_config(batches)
                .build(),
        )
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("oxehr")
                .build(),
        )
        .build();
    let tracer = provider.tracer("oxehr");
    layers.push(
        tracing_opentelemetry::layer::<Registry>()
            .with_tracer(tracer)
            .boxed(),
    );
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// What the API calls with each request's span: in a build with the `otel` feature,
/// the span's parent becomes the caller's span named by the request's `traceparent`
/// header (W3C Trace Context, read by OpenTelemetry's own propagator); a header that
/// is absent or malformed leaves the span a root. `None` without the feature.
pub fn request_span_hook() -> Option<oxehr_api::RequestSpanHook> {
    #[cfg(feature = "otel")]
    return Some(continue_trace);
    #[cfg(not(feature = "otel"))]
    None
}

#[cfg(feature = "otel")]
fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    struct Headers<'a>(&'a axum::http::HeaderMap);
    impl opentelemetry::propagation::Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent =
        opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&Headers(headers));
    // A span the exporter does not record (no --otel-endpoint) has nothing to set.
    let _ = span.set_parent(parent);
}
