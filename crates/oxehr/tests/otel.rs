//! OpenTelemetry traces (`--features otel`): `oxehr serve --otel-endpoint URL` sends each
//! request's span over OTLP/HTTP to a collector, here a small HTTP server of the test's
//! own that keeps what it is sent (protobuf `ExportTraceServiceRequest`s, whose strings
//! are their UTF-8 bytes). The spans carry the service name, the span name, the method
//! and the path; a search's query (which may hold a patient's name) is never in them. A
//! request that carries a W3C `traceparent` header gives a span in the caller's trace,
//! whose parent is the caller's span.
//!
//! Run with `cargo test -p oxehr --features otel --test otel` (`.ci/run` does).
#![cfg(feature = "otel")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{admin_token, client_with, Server};

/// Each request the collector received: its request line and body.
type Bodies = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Answers every POST with 200 and an empty `ExportTraceServiceResponse`, keeping the
/// request bodies.
fn collector() -> (String, Bodies) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let bodies: Bodies = Arc::default();
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let kept = kept.clone();
            std::thread::spawn(move || serve_connection(stream, &kept));
        }
    });
    (url, bodies)
}

fn serve_connection(stream: TcpStream, kept: &Bodies) {
    let mut out = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut request_line = None;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if request_line.is_none() {
                request_line = Some(line.to_owned());
                continue;
            }
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("length");
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        kept.lock()
            .expect("lock")
            .push((request_line.unwrap_or_default(), body));
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn request_spans_reach_the_collector_without_query_values() {
    let (url, bodies) = collector();
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().to_str().expect("path").to_owned();
    let token = admin_token(&["--data", &dir]);
    let server = Server::serve(&["--data", &dir, "--otel-endpoint", &url]);
    let client = client_with(&token);
    let base = server.base.clone();
    for path in [
        "metadata",
        "Patient?name=Zebulon",
        "Patient/no-such-patient",
    ] {
        let status = client
            .get(format!("{base}/{path}"))
            .send()
            .expect("request")
            .status();
        assert!(
            status.as_u16() == 200 || status.as_u16() == 404,
            "{path}: {status}"
        );
    }
    // The example of W3C Trace Context §3.2 (version 00, sampled): this request's span
    // belongs to that trace, as a child of that span.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let status = client
        .get(format!("{base}/Patient/traced-request"))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .expect("request")
        .status();
    assert_eq!(status.as_u16(), 404);
    // Batches leave every second.
    let deadline = Instant::now() + Duration::from_secs(20);
    let everything = loop {
        let all: Vec<u8> = bodies
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|(_, body)| body.clone())
            .collect();
        if contains(&all, "/fhir/Patient/traced-request") || Instant::now() > deadline {
            break all;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for (line, _) in bodies.lock().expect("lock").iter() {
        assert!(line.starts_with("POST /v1/traces "), "{line}");
    }
    for expected in [
        "oxehr",          // service.name
        "request",        // the span
        "GET",            // its method
        "/fhir/metadata", // and paths
        "/fhir/Patient",
        "/fhir/Patient/no-such-patient",
    ] {
        assert!(
            contains(&everything, expected),
            "no {expected:?} in {} bytes of traces",
            everything.len()
        );
    }
    // Span.trace_id and Span.parent_span_id are raw bytes in the protobuf.
    let bytes = |hex: &str| -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    };
    for (what, id) in [("trace id", trace_id), ("parent span id", parent_id)] {
        let id = bytes(id);
        assert!(
            everything.windows(id.len()).any(|w| w == id.as_slice()),
            "the caller's {what} is not in the traces"
        );
    }
    assert!(
        !contains(&everything, "Zebulon"),
        "a query value was exported"
    );
    assert!(!contains(&everything, &token), "a token was exported");
}
