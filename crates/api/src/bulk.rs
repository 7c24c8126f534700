//! Bulk Data export over HTTP (FHIR Bulk Data Access IG 2.0): the kick-off at system
//! (`/fhir/$export`), Patient (`/fhir/Patient/$export`) and Group
//! (`/fhir/Group/{id}/$export`) level, by GET with query parameters or POST with a
//! Parameters body; the status URL (`/fhir/bulk-status/{job}`: GET polls, DELETE
//! cancels); and the files (`/fhir/bulk-files/{job}/{file}`, `application/fhir+ndjson`).
//! What an export holds and who may see it is `oxehr_records::bulk`'s; this module knows
//! only the HTTP conventions.
//!
//! | answer | when |
//! |---|---|
//! | 202 + `Content-Location` | kick-off accepted |
//! | 400 | no `Prefer: respond-async`; `Accept` other than FHIR JSON; an unsupported parameter or `_outputFormat` (unless `Prefer: handling=lenient`) |
//! | 429 + `Retry-After` | the caller already has as many unfinished exports as allowed |
//! | 202 + `X-Progress`, `Retry-After` | status of a job still running |
//! | 200 + manifest | status of a complete job |
//! | 500 + OperationOutcome | status of a failed job |
//! | 404 | a job or file that is not the caller's, expired, cancelled, or never was |

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use oxehr_fhir::outcome::operation_outcome;
use oxehr_fhir::{Issue, IssueCode, Severity};
use oxehr_records::bulk::{ExportLevel, ExportRequest, ExportStatus, Kickoff, Manifest};
use oxehr_records::{query, Caller};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::format::fhir_json_response;
use crate::interactions::blocking;
use crate::AppState;

type ApiResult = Result<Response, ApiError>;

/// The media type of export files.
pub const NDJSON: &str = "application/fhir+ndjson";

fn prefer(headers: &HeaderMap) -> String {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase()
}

/// The parameters of a POST kick-off: each Parameters entry's name and value, the
/// value from whichever `value[x]` it has (a reference's `reference`).
fn parameters(body: &Bytes) -> Result<Vec<(String, String)>, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request("the body of a POST $export must be a Parameters resource")
    })?;
    if v.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(ApiError::bad_request(
            "the body of a POST $export must be a Parameters resource",
        ));
    }
    let mut out = Vec::new();
    for p in v
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("a parameter without a name"))?;
        let value = crate::interactions::parameter_text(name, p)?;
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

async fn kickoff(
    state: AppState,
    who: Arc<Caller>,
    level: ExportLevel,
    method: Method,
    query_string: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let prefer = prefer(&headers);
    if !prefer.split(',').any(|p| p.trim() == "respond-async") {
        return Err(ApiError::bad_request(
            "$export runs in the background: send Prefer: respond-async",
        ));
    }
    let lenient = prefer.contains("handling=lenient");
    if let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        let ok = accept.split(',').any(|a| {
            let a = a.split(';').next().unwrap_or("").trim();
            matches!(a, "application/fhir+json" | "application/json" | "*/*")
        });
        if !ok {
            return Err(ApiError::bad_request(
                "$export answers in FHIR JSON: send Accept: application/fhir+json",
            ));
        }
    }
    let mut pairs = query_string
        .as_deref()
        .map(query::decode_pairs)
        .unwrap_or_default();
    if method == Method::POST && !body.is_empty() {
        crate::format::check_content_type(&headers, &[])?;
        pairs.extend(parameters(&body)?);
    }
    let base = &state.config.base_url;
    let mut request_url = format!("{base}/{}", level.path());
    if let Some(q) = query_string.as_deref().filter(|q| !q.is_empty()) {
        request_url.push('?');
        request_url.push_str(q);
    }
    let req = ExportRequest::parse(level, &pairs, lenient, request_url)?;
    let kick = blocking(&state.records, move |rec| rec.export_kickoff(&who, req)).await?;
    match kick {
        Kickoff::Accepted(id) => {
            let status_url = format!("{base}/bulk-status/{id}");
            let outcome = operation_outcome(&[Issue {
                severity: Severity::Information,
                code: IssueCode::Informational,
                diagnostics: format!("export accepted; poll {status_url}"),
                expression: Vec::new(),
            }]);
            let mut resp = fhir_json_response(StatusCode::ACCEPTED, &outcome, false);
            if let Ok(v) = HeaderValue::from_str(&status_url) {
                resp.headers_mut().insert(header::CONTENT_LOCATION, v);
            }
            Ok(resp)
        }
        Kickoff::TooMany { retry_after } => {
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                IssueCode::Throttled,
                "too many exports of this account are still running; try again later",
            )
            .into_response();
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
            Ok(resp)
        }
    }
}

/// `GET|POST /fhir/$export`.
pub async fn export_system(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    kickoff(state, who, ExportLevel::System, method, q, headers, body).await
}

/// `GET|POST /fhir/Patient/$export`.
pub async fn export_patient(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    kickoff(state, who, ExportLevel::Patient, method, q, headers, body).await
}

/// `GET|POST /fhir/Group/{id}/$export`.
pub async fn export_group(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path(id): Path<String>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    if oxehr_fhir::ResourceId::parse(&id).is_none() {
        return Err(ApiError::bad_request(
            "the id in the URL is not a valid FHIR id",
        ));
    }
    kickoff(state, who, ExportLevel::Group(id), method, q, headers, body).await
}

fn manifest_json(base: &str, m: &Manifest) -> Value {
    let files = |list: &[oxehr_records::bulk::ManifestFile]| -> Vec<Value> {
        list.iter()
            .map(|f| {
                json!({"type": f.rtype, "url": format!("{base}/bulk-files/{}/{}", m.job_id, f.file_id),
                       "count": f.count})
            })
            .collect()
    };
    let mut v = json!({
        "transactionTime": oxehr_records::format_instant(m.transaction_time),
        "request": m.request,
        "requiresAccessToken": true,
        "output": files(&m.output),
        "error": files(&m.error),
    });
    if !m.deleted.is_empty() {
        v["deleted"] = Value::Array(files(&m.deleted));
    }
    v["extension"] = json!({"expires": oxehr_records::format_instant(m.expires)});
    v
}

/// `GET /fhir/bulk-status/{job}`: 202 while it runs, the manifest when complete.
pub async fn status(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> ApiResult {
    let st = blocking(&state.records, move |rec| rec.export_status(&who, &id)).await?;
    match st {
        ExportStatus::InProgress {
            progress,
            retry_after,
        } => {
            let mut resp = StatusCode::ACCEPTED.into_response();
            if let Ok(v) = HeaderValue::from_str(&progress) {
                resp.headers_mut().insert("x-progress", v);
            }
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
            Ok(resp)
        }
        ExportStatus::Complete(m) => {
            let body =
                serde_json::to_vec(&manifest_json(&state.config.base_url, &m)).unwrap_or_default();
            let mut resp = Response::new(Body::from(body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        }
        ExportStatus::Failed(why) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueCode::Exception,
            why,
        )),
    }
}

/// `DELETE /fhir/bulk-status/{job}`: cancels the job and removes its files.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> ApiResult {
    blocking(&state.records, move |rec| rec.export_cancel(&who, &id)).await?;
    let outcome = operation_outcome(&[Issue {
        severity: Severity::Information,
        code: IssueCode::Informational,
        diagnostics: "the export is cancelled and its files removed".into(),
        expression: Vec::new(),
    }]);
    Ok(fhir_json_response(StatusCode::ACCEPTED, &outcome, false))
}

/// `GET /fhir/bulk-files/{job}/{file}`: one NDJSON file, streamed from disk.
pub async fn file(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path((job, file)): Path<(String, String)>,
) -> ApiResult {
    let f = blocking(&state.records, move |rec| {
        rec.export_file(&who, &job, &file)
    })
    .await?;
    let opened = std::fs::File::open(&f.path).map_err(|e| {
        tracing::error!(error = %e, "an export file listed in its job is missing");
        ApiError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotFound,
            "the file is no longer available",
        )
    })?;
    let len = opened.metadata().ok().map(|m| m.len());
    // Read in chunks on blocking threads: the file is never held in memory whole.
    let stream = futures::stream::unfold(Some(opened), |file| async move {
        let mut file = file?;
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut buf = vec![0u8; 256 * 1024];
            let n = file.read(&mut buf);
            (file, buf, n)
        })
        .await;
        match read {
            Ok((_, _, Ok(0))) => None,
            Ok((file, mut buf, Ok(n))) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), Some(file)))
            }
            Ok((_, _, Err(e))) => Some((Err(e), None)),
            Err(_) => Some((Err(std::io::Error::other("reading an export file")), None)),
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    if let Some(len) = len {
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(resp)
}

/// The operations and their documentation, for the CapabilityStatement.
pub fn capability_operations() -> Value {
    json!([
        {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
         "documentation": "Bulk Data export (system level) with Prefer: respond-async; _type, _since, _typeFilter, _outputFormat=application/fhir+ndjson. Files expire 24 hours (configurable) after the export completes; requiresAccessToken is true and only the account that asked may download them."},
        {"name": "patient-export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
         "documentation": "Patient/$export: the records of every patient the caller may see"},
        {"name": "group-export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
         "documentation": "Group/[id]/$export: the records of the Group's member Patients"}
    ])
}
