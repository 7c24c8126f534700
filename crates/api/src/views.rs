//! SQL on FHIR v2's `$viewdefinition-run` over HTTP
//! (https://sql-on-fhir.org/ig/OperationDefinition-ViewDefinitionRun.html): a
//! ViewDefinition sent inline runs over the stored resources the caller may see, and
//! its rows stream back as they are made. What is read, under which access, and its
//! audit records are `oxehr_records::views`'; this module knows the HTTP conventions.
//!
//! Endpoints (all POST with a Parameters body; the first is the spec's R4 form, the
//! others its type-level form and the older drafts' name `$run`):
//! `/fhir/$viewdefinition-run`, `/fhir/ViewDefinition/$viewdefinition-run`,
//! `/fhir/ViewDefinition/$run`. ViewDefinition is not an R4 resource type, so none is
//! stored here: the instance level (`ViewDefinition/{id}/$viewdefinition-run`) and
//! `viewReference` answer 400.
//!
//! Parameters (in the body; the scalar ones also in the query string): `viewResource`
//! (required), `_format` (`ndjson` — the default —, `csv`, `json`, or their media types;
//! without it the `Accept` header chooses), `header` (CSV, default true), `patient` and
//! `group` (0..* each, references or ids: only those patients' records), `_since`
//! (resources changed after an instant), `_limit` (rows at most). `source` and
//! `resource` (data other than the server's) are not supported: 400.
//!
//! | answer | when |
//! |---|---|
//! | 200, `text/csv`, `application/x-ndjson` (or `application/fhir+ndjson` when asked so), `application/json` | rows, streamed |
//! | 400 + OperationOutcome | a definition that does not compile (the message says where and why), a bad or unsupported parameter, a view that fails on a resource before any row was sent |
//! | 403 | the caller may not read and search the view's type |
//!
//! A failure after the first bytes were sent (a client can only tell then) ends the
//! body early: the chunked encoding is not finished, so no client takes a cut answer for
//! a whole one. A run has no overall time limit: each statement reads one page, the
//! stream waits for a slow client without holding a database transaction, and a client
//! that goes away stops it.

use std::io::{self, Write};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use futures::StreamExt;
use oxehr_auth::Caller;
use oxehr_fhir::{IssueCode, ResourceId};
use oxehr_records::interrupt::{self, Interrupt};
use oxehr_records::views::{self, ViewFilter, ViewSink};
use oxehr_records::{query, RecordsError};
use oxehr_views::{Column, CsvWriter, NdjsonWriter};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::AppState;

type ApiResult = Result<Response, ApiError>;

/// Bytes gathered before they are sent as one chunk of the body.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for a slow client before the run waits too.
const CHUNKS_QUEUED: usize = 4;

/// The output formats of the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    /// NDJSON, named with this media type.
    Ndjson(&'static str),
    /// A JSON array of objects.
    Json,
}

impl Format {
    /// `_format`'s value: the spec's codes, or a media type.
    fn parse(s: &str) -> Result<Format, ApiError> {
        let s = s.split(';').next().unwrap_or("").trim();
        Ok(match s {
            "csv" | "text/csv" => Format::Csv,
            "ndjson" | "application/x-ndjson" | "application/ndjson" => {
                Format::Ndjson("application/x-ndjson")
            }
            "application/fhir+ndjson" => Format::Ndjson("application/fhir+ndjson"),
            "json" | "application/json" => Format::Json,
            "parquet" => return Err(unsupported(
                "_format: parquet is written by `oxehr view run --format parquet` (a build with the parquet feature), not over HTTP",
            )),
            other => {
                return Err(ApiError::bad_request(format!(
                    "_format: '{other}' is not one of ndjson, csv, json"
                )))
            }
        })
    }

    /// The format an `Accept` header asks for, if it names one.
    fn from_accept(headers: &HeaderMap) -> Option<Format> {
        let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
        accept
            .split(',')
            .find_map(|a| Format::parse(a).ok().filter(|_| !a.trim().is_empty()))
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson(t) => t,
            Format::Json => "application/json",
        }
    }
}

fn unsupported(why: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, IssueCode::NotSupported, why)
}

/// A parsed request.
#[derive(Debug)]
struct RunRequest {
    view: Value,
    format: Format,
    header: bool,
    filter: ViewFilter,
}

/// `Type/id` or `id` → `id`, checked.
fn id_of(name: &str, rtype: &str, value: &str) -> Result<String, ApiError> {
    let id = match value.split_once('/') {
        Some((t, id)) if t == rtype => id,
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "{name}: '{value}' is not a reference to a {rtype}"
            )))
        }
        None => value,
    };
    ResourceId::parse(id)
        .map(|i| i.as_str().to_owned())
        .ok_or_else(|| ApiError::bad_request(format!("{name}: '{value}' is not a valid id")))
}

impl RunRequest {
    fn parse(
        query_string: Option<&str>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<RunRequest, ApiError> {
        let mut view = None;
        let mut pairs: Vec<(String, String)> =
            query_string.map(query::decode_pairs).unwrap_or_default();
        if !body.is_empty() {
            crate::format::check_content_type(headers, &[])?;
            let params: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
            if params.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
                return Err(ApiError::bad_request(
                    "the body of $viewdefinition-run must be a Parameters resource",
                ));
            }
            for p in params
                .get("parameter")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = p
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::bad_request("a parameter without a name"))?;
                if name == "viewResource" {
                    if view.is_some() {
                        return Err(ApiError::bad_request("viewResource: given twice"));
                    }
                    view = Some(p.get("resource").cloned().ok_or_else(|| {
                        ApiError::bad_request("viewResource: the ViewDefinition goes in 'resource'")
                    })?);
                } else if name == "resource" {
                    return Err(unsupported(
                        "resource: this server runs views over the data it stores only",
                    ));
                } else {
                    pairs.push((
                        name.to_owned(),
                        crate::interactions::parameter_text(name, p)?,
                    ));
                }
            }
        }
        let view = view.ok_or_else(|| {
            if pairs.iter().any(|(k, _)| k == "viewReference") {
                unsupported(
                    "viewReference: ViewDefinitions are not stored here (not an R4 resource type); send it inline as viewResource",
                )
            } else {
                ApiError::bad_request("viewResource: required, the ViewDefinition to run")
            }
        })?;
        let mut format = None;
        let mut header = true;
        let mut filter = ViewFilter::default();
        for (k, v) in &pairs {
            match k.as_str() {
                "_format" => format = Some(Format::parse(v)?),
                "header" => {
                    header = match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(ApiError::bad_request("header: true or false")),
                    }
                }
                "patient" => filter.patients.push(id_of(k, "Patient", v)?),
                "group" => filter.groups.push(id_of(k, "Group", v)?),
                "_since" => {
                    filter.since = Some(oxehr_records::parse_instant(v).ok_or_else(|| {
                        ApiError::bad_request(
                            "_since: an instant with a time zone (2024-01-31T00:00:00Z)",
                        )
                    })?)
                }
                "_limit" => {
                    filter.limit = Some(v.parse::<u64>().map_err(|_| {
                        ApiError::bad_request("_limit: a whole number of rows, 0 or more")
                    })?)
                }
                "viewReference" => {
                    return Err(unsupported(
                        "viewReference: ViewDefinitions are not stored here; send it inline as viewResource",
                    ))
                }
                "source" => {
                    return Err(unsupported(
                        "source: this server runs views over the data it stores only",
                    ))
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown parameter '{other}' of $viewdefinition-run"
                    )))
                }
            }
        }
        let format = format
            .or_else(|| Format::from_accept(headers))
            .unwrap_or(Format::Ndjson("application/x-ndjson"));
        Ok(RunRequest {
            view,
            format,
            header,
            filter,
        })
    }
}

/// What the run sends the response body.
enum Msg {
    Data(Bytes),
    /// The run is over; the error, if it failed.
    Done(Option<RecordsError>),
}

/// A `Write` that hands the body to the response in chunks of about [`CHUNK`] bytes,
/// waiting while the client is [`CHUNKS_QUEUED`] chunks behind.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<Msg>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK + 4096),
        ));
        self.tx
            .blocking_send(Msg::Data(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The rows, written in the asked format.
enum RowWriter {
    Csv(CsvWriter<ChunkWriter>),
    Ndjson(NdjsonWriter<ChunkWriter>),
    /// `[`, then rows separated by commas, then `]`.
    Json {
        w: NdjsonWriter<ChunkWriter>,
        first: bool,
    },
}

fn gone(e: io::Error) -> RecordsError {
    RecordsError::Busy(format!("the answer could not be sent: {e}"))
}

impl RowWriter {
    fn new(
        format: Format,
        header: bool,
        columns: &[Column],
        mut out: ChunkWriter,
    ) -> io::Result<RowWriter> {
        Ok(match format {
            Format::Csv if header => RowWriter::Csv(CsvWriter::new(out, columns)?),
            Format::Csv => RowWriter::Csv(CsvWriter::without_header(out)),
            Format::Ndjson(_) => RowWriter::Ndjson(NdjsonWriter::new(out, columns)),
            Format::Json => {
                out.write_all(b"[")?;
                RowWriter::Json {
                    w: NdjsonWriter::new(out, columns),
                    first: true,
                }
            }
        })
    }

    /// Ends the body and sends what is left.
    fn finish(self) -> io::Result<()> {
        let mut out = match self {
            RowWriter::Csv(w) => w.into_inner(),
            RowWriter::Ndjson(w) => w.into_inner(),
            RowWriter::Json { w, .. } => {
                let mut out = w.into_inner();
                out.write_all(b"]\n")?;
                out
            }
        };
        out.flush()
    }
}

impl ViewSink for RowWriter {
    fn row(&mut self, row: Vec<Value>) -> Result<(), RecordsError> {
        match self {
            RowWriter::Csv(w) => w.write_row(&row),
            RowWriter::Ndjson(w) => w.write_row(&row),
            RowWriter::Json { w, first } => {
                if !*first {
                    w.get_mut().write_all(b",").map_err(gone)?;
                }
                *first = false;
                w.write_row(&row)
            }
        }
        .map_err(gone)
    }
}

/// Stops the run's statements when the response (or the request) is dropped.
struct StopOnDrop(Arc<Interrupt>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// `POST /fhir/$viewdefinition-run`, `POST /fhir/ViewDefinition/$viewdefinition-run`
/// and `POST /fhir/ViewDefinition/$run`.
pub async fn run(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let req = RunRequest::parse(q.as_deref(), &headers, &body)?;
    let view = views::compile(&req.view)?;
    let format = req.format;
    let (tx, mut rx) = mpsc::channel::<Msg>(CHUNKS_QUEUED);
    // No deadline: a run takes as long as its rows do; dropping the answer stops it.
    let stop = StopOnDrop(Interrupt::new(None));
    let int = stop.0.clone();
    let records = state.records.clone();
    tokio::task::spawn_blocking(move || {
        interrupt::scope(Some(int), || {
            let out = ChunkWriter {
                buf: Vec::with_capacity(CHUNK + 4096),
                tx: tx.clone(),
            };
            let result = RowWriter::new(format, req.header, view.columns(), out)
                .map_err(gone)
                .and_then(|mut w| {
                    records.run_view(&who, &view, &req.filter, &mut w)?;
                    w.finish().map_err(gone)
                });
            let _ = tx.blocking_send(Msg::Done(result.err()));
        })
    });
    // Before the first chunk, a failure is an error answer; after it, a cut body.
    let first = match rx.recv().await {
        Some(Msg::Data(b)) => b,
        Some(Msg::Done(Some(e))) => return Err(e.into()),
        Some(Msg::Done(None)) => Bytes::new(),
        None => {
            return Err(RecordsError::Internal("the view run stopped".into()).into());
        }
    };
    let rest = futures::stream::unfold((rx, stop, false), |(mut rx, stop, over)| async move {
        if over {
            return None;
        }
        match rx.recv().await {
            Some(Msg::Data(b)) => Some((Ok(b), (rx, stop, false))),
            Some(Msg::Done(None)) | None => None,
            Some(Msg::Done(Some(e))) => {
                tracing::warn!(error = %e, "a view run failed after its answer started");
                Some((Err(io::Error::other(e.to_string())), (rx, stop, true)))
            }
        }
    });
    let stream = futures::stream::once(async move { Ok::<Bytes, io::Error>(first) }).chain(rest);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(resp)
}

/// `GET|POST /fhir/ViewDefinition/{id}/$viewdefinition-run` (and `$run`): no
/// ViewDefinition is stored here.
pub async fn run_stored() -> ApiResult {
    Err(unsupported(
        "ViewDefinitions are not stored here (not an R4 resource type); POST the definition inline as viewResource to /ViewDefinition/$viewdefinition-run",
    ))
}
