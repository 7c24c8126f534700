//! Handlers of the RESTful interactions, named as in the FHIR spec. Each decodes the
//! request, calls `oxehr-records` on a blocking thread and renders the answer.

use axum::body::Bytes;
use std::sync::Arc;

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use oxehr_auth::Caller;
use serde_json::Value;

use oxehr_fhir::outcome::operation_outcome;
use oxehr_fhir::{Issue, IssueCode, ResourceType, Severity, VersionId};
use oxehr_records::interrupt::{self, Interrupt};
use oxehr_records::{
    audit_view, now_micros, parse_instant, query, CompartmentScope, CompartmentSearch,
    HistoryRequest, HistoryScope, Records, RecordsError, StoredResource, WriteOutcome,
};
use oxehr_search::query::Query;

use crate::bundle::{self, etag, link, version_path};
use crate::error::ApiError;
pub(crate) use crate::extract::{rid, rtype};
use crate::extract::{Instance, TypeOf};
use crate::format::{bytes_response, check_content_type, fhir_json_response, Rendering, Summary};
use crate::AppState;

mod history;
mod search;

pub use history::{history_instance, history_system, history_type};
pub(crate) use search::search_url;
pub use search::{
    everything, search_compartment, search_system, search_system_post, search_type,
    search_type_post,
};

type ApiResult = Result<Response, ApiError>;

/// Runs a blocking record-layer call off the async executor, under an interrupt
/// (`oxehr_records::interrupt`): its statements stop when the record layer's statement
/// time limit passes, or as soon as this future is dropped — the client went away, or
/// the request timed out — so nothing goes on working for an answer nobody will read.
pub(crate) async fn blocking<T: Send + 'static>(
    records: &Records,
    f: impl FnOnce(Records) -> Result<T, RecordsError> + Send + 'static,
) -> Result<T, ApiError> {
    /// Stops the interrupt unless the call finished.
    struct StopOnDrop(Option<Arc<Interrupt>>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            if let Some(i) = self.0.take() {
                i.stop();
            }
        }
    }
    let r = records.clone();
    let interrupt = Interrupt::new(records.config().statement_timeout);
    let mut guard = StopOnDrop(Some(interrupt.clone()));
    let res = tokio::task::spawn_blocking(move || interrupt::scope(Some(interrupt), || f(r))).await;
    guard.0 = None;
    match res {
        Ok(res) => res.map_err(ApiError::from),
        Err(_) => Err(ApiError::from(RecordsError::Internal(
            "worker failed".into(),
        ))),
    }
}

/// A short record-layer call (a read by id: a few index lookups and an append to the
/// buffered read audit) run on the request's own thread when the store reads locally
/// ([`oxehr_store::Store::reads_locally`]: SQLite) and the read audit is buffered, under
/// the same statement time limit as [`blocking`]: there the hand-off to the blocking
/// pool and back cost more than the read itself (27% of a read's time in futex waits,
/// BENCHMARKS.md). Elsewhere (PostgreSQL, or reads that wait for their audit record to
/// be durable), as [`blocking`].
pub(crate) async fn quick<T: Send + 'static>(
    records: &Records,
    f: impl FnOnce(Records) -> Result<T, RecordsError> + Send + 'static,
) -> Result<T, ApiError> {
    if !records.store().reads_locally() || records.config().durable_read_audit {
        return blocking(records, f).await;
    }
    let interrupt = Interrupt::new(records.config().statement_timeout);
    interrupt::scope(Some(interrupt), || f(records.clone())).map_err(ApiError::from)
}

pub(crate) fn params(q: &Option<String>) -> Vec<(String, String)> {
    q.as_deref().map(query::decode_pairs).unwrap_or_default()
}

/// The parameter `name` of a Parameters resource, if any (the first).
pub(crate) fn parameter<'a>(p: &'a Value, name: &str) -> Option<&'a Value> {
    p.get("parameter").and_then(Value::as_array).and_then(|ps| {
        ps.iter()
            .find(|x| x.get("name").and_then(Value::as_str) == Some(name))
    })
}

/// A Parameters entry's value as text, from whichever `value[x]` it has (a reference's
/// `reference`).
pub(crate) fn parameter_text(name: &str, p: &Value) -> Result<String, ApiError> {
    let value = p.as_object().and_then(|o| {
        o.iter()
            .find(|(k, _)| k.starts_with("value"))
            .and_then(|(_, v)| match v {
                Value::String(s) => Some(s.clone()),
                Value::Object(r) => r
                    .get("reference")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                Value::Bool(b) => Some(b.to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    });
    value.ok_or_else(|| {
        ApiError::bad_request(format!(
            "the parameter '{name}' has no value this server reads"
        ))
    })
}

pub(crate) fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request has no body"));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            IssueCode::Structure,
            format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

/// A request body that must be FHIR JSON: its Content-Type checked, then parsed.
fn fhir_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    check_content_type(headers, &[])?;
    parse_json(body)
}

fn if_match(headers: &HeaderMap) -> Result<Option<VersionId>, ApiError> {
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        None => Ok(None),
        Some(v) => oxehr_records::parse_etag(v)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("If-Match must be an ETag such as W/\"3\"")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Return {
    Minimal,
    Representation,
    OperationOutcome,
}

fn prefer_return(headers: &HeaderMap) -> Return {
    let prefer = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    for part in prefer.split([',', ';']) {
        match part.trim() {
            "return=minimal" => return Return::Minimal,
            "return=OperationOutcome" => return Return::OperationOutcome,
            "return=representation" => return Return::Representation,
            _ => {}
        }
    }
    Return::Representation
}

fn lenient(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split([',', ';']).any(|p| p.trim() == "handling=lenient"))
}

/// HTTP-date of a microsecond instant (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(micros: i64) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp(micros.div_euclid(1_000_000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[dt.weekday().number_days_from_monday() as usize],
        dt.day(),
        MONTHS[usize::from(u8::from(dt.month())) - 1],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn set_header(resp: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// The answer to a read: the body with ETag and Last-Modified.
fn resource_response(r: &StoredResource, rendering: &Rendering, status: StatusCode) -> Response {
    let bytes = r
        .body
        .as_deref()
        .map(|b| rendering.render_body(b))
        .unwrap_or_default();
    let mut resp = bytes_response(status, bytes);
    set_header(&mut resp, header::ETAG, &etag(r));
    set_header(&mut resp, header::LAST_MODIFIED, &http_date(r.last_updated));
    resp
}

/// The answer to a write, shaped by `Prefer: return=…`.
fn write_response(
    state: &AppState,
    out: &WriteOutcome,
    headers: &HeaderMap,
    rendering: &Rendering,
) -> Response {
    let status = if out.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut resp = match prefer_return(headers) {
        Return::Representation => resource_response(&out.resource, rendering, status),
        Return::Minimal => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            *r.status_mut() = status;
            r
        }
        Return::OperationOutcome => {
            let issue = Issue {
                severity: Severity::Information,
                code: IssueCode::Informational,
                diagnostics: if out.existing {
                    "matched an existing resource"
                } else {
                    "stored"
                }
                .into(),
                expression: vec![],
            };
            fhir_json_response(status, &operation_outcome(&[issue]), rendering.pretty)
        }
    };
    set_header(&mut resp, header::ETAG, &etag(&out.resource));
    set_header(
        &mut resp,
        header::LAST_MODIFIED,
        &http_date(out.resource.last_updated),
    );
    set_header(
        &mut resp,
        header::LOCATION,
        &format!("{}/{}", state.config.base_url, version_path(&out.resource)),
    );
    resp
}

pub async fn metadata(State(state): State<AppState>, rendering: Rendering) -> ApiResult {
    Ok(fhir_json_response(
        StatusCode::OK,
        &state.capabilities,
        rendering.pretty,
    ))
}

pub async fn read(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    rendering: Rendering,
    Instance { rtype: rt, id }: Instance,
    headers: HeaderMap,
) -> ApiResult {
    let r = quick(&state.records, move |rec| rec.read(&who, &rt, &id)).await?;
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        if oxehr_records::parse_etag(inm) == Some(r.version) {
            return Ok(StatusCode::NOT_MODIFIED.into_response());
        }
    }
    Ok(resource_response(&r, &rendering, StatusCode::OK))
}

pub async fn vread(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    rendering: Rendering,
    Path((ty, id, vid)): Path<(String, String, String)>,
) -> ApiResult {
    let (rt, id) = (rtype(&ty)?, rid(&id)?);
    let v = VersionId::parse(&vid)
        .ok_or_else(|| ApiError::bad_request("the version id must be a positive integer"))?;
    let r = blocking(&state.records, move |rec| rec.vread(&who, &rt, &id, v)).await?;
    Ok(resource_response(&r, &rendering, StatusCode::OK))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    rendering: Rendering,
    TypeOf(rt): TypeOf,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let value = fhir_body(&headers, &body)?;
    let cond = headers
        .get("if-none-exist")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let out = blocking(&state.records, move |rec| {
        rec.create(&who, &rt, value, cond.as_deref())
    })
    .await?;
    let mut resp = write_response(&state, &out, &headers, &rendering);
    if out.existing {
        *resp.status_mut() = StatusCode::OK;
    }
    Ok(resp)
}

pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    rendering: Rendering,
    Instance { rtype: rt, id }: Instance,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let value = fhir_body(&headers, &body)?;
    let if_match = if_match(&headers)?;
    let out = blocking(&state.records, move |rec| {
        rec.update(&who, &rt, &id, value, if_match)
    })
    .await?;
    Ok(write_response(&state, &out, &headers, &rendering))
}

pub async fn conditional_update(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    rendering: Rendering,
    TypeOf(rt): TypeOf,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let query = q.filter(|q| !q.is_empty()).ok_or_else(|| {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            IssueCode::NotSupported,
            "PUT on a type needs search parameters (conditional update) or an id",
        )
    })?;
    let value = fhir_body(&headers, &body)?;
    let if_match = if_match(&headers)?;
    let out = blocking(&state.records, move |rec| {
        rec.conditional_update(&who, &rt, &query, value, if_match)
    })
    .await?;
    Ok(write_response(&state, &out, &headers, &rendering))
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    rendering: Rendering,
    Instance { rtype: rt, id }: Instance,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json-patch+json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueCode::NotSupported,
            "PATCH takes a JSON Patch document (Content-Type: application/json-patch+json)",
        ));
    }
    let value = parse_json(&body)?;
    let if_match = if_match(&headers)?;
    let out = blocking(&state.records, move |rec| {
        rec.patch(&who, &rt, &id, value, if_match)
    })
    .await?;
    Ok(write_response(&state, &out, &headers, &rendering))
}

fn delete_response(deleted: Option<StoredResource>) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Some(d) = deleted {
        set_header(&mut resp, header::ETAG, &etag(&d));
    }
    resp
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Instance { rtype: rt, id }: Instance,
) -> ApiResult {
    let deleted = blocking(&state.records, move |rec| rec.delete(&who, &rt, &id)).await?;
    Ok(delete_response(deleted))
}

pub async fn conditional_delete(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    TypeOf(rt): TypeOf,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let query = q.filter(|q| !q.is_empty()).ok_or_else(|| {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            IssueCode::NotSupported,
            "DELETE on a type needs search parameters (conditional delete)",
        )
    })?;
    let deleted = blocking(&state.records, move |rec| {
        rec.conditional_delete(&who, &rt, &query)
    })
    .await?;
    Ok(delete_response(deleted))
}

/// `POST /` with a batch or transaction Bundle.
pub async fn batch_or_transaction(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    rendering: Rendering,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let value = fhir_body(&headers, &body)?;
    let (kind, outcomes) = blocking(&state.records, move |rec| rec.bundle(&who, value)).await?;
    let with_resources =
        prefer_return(&headers) == Return::Representation && headers.get("prefer").is_some();
    let b = bundle::bundle_response(
        &state.config.base_url,
        kind,
        outcomes,
        with_resources,
        &rendering,
    );
    Ok(fhir_json_response(StatusCode::OK, &b, rendering.pretty))
}

/// `$validate` on a type or an instance: the body is the resource, or a Parameters
/// resource with a `resource` parameter. The answer is an OperationOutcome: 200 when the
/// resource is valid, 400 listing the errors when not.
pub async fn validate(
    State(_state): State<AppState>,
    rendering: Rendering,
    Path(path): Path<Vec<String>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let rt = rtype(path.first().map(String::as_str).unwrap_or(""))?;
    check_content_type(&headers, &[])?;
    let mut value = parse_json(&body)?;
    if value.get("resourceType").and_then(Value::as_str) == Some("Parameters")
        && rt.as_str() != "Parameters"
    {
        let found = parameter(&value, "resource")
            .and_then(|p| p.get("resource"))
            .cloned();
        value = found.ok_or_else(|| {
            ApiError::bad_request("the Parameters resource has no 'resource' parameter")
        })?;
    }
    if value.get("resourceType").and_then(Value::as_str) != Some(rt.as_str()) {
        return Err(ApiError::bad_request(format!(
            "$validate on {rt} needs a {rt} resource"
        )));
    }
    let issues = tokio::task::spawn_blocking(move || oxehr_records::validate(&value))
        .await
        .map_err(|_| ApiError::from(RecordsError::Internal("validation worker failed".into())))?;
    let status = if issues.iter().any(Issue::is_error) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(fhir_json_response(
        status,
        &operation_outcome(&issues),
        rendering.pretty,
    ))
}

/// `POST Patient/[id]/$break-the-glass`: a clinician or nurse opens a record they
/// have no care relationship with, in an emergency. The body is a Parameters resource
/// with a `reason` (valueString); the access is granted for an hour, recorded in the
/// audit trail, and reported to the organization's administrators and in the patient's
/// access log. The answer is an OperationOutcome saying until when.
pub async fn break_the_glass(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    rendering: Rendering,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let id = rid(&id)?;
    let value = fhir_body(&headers, &body)?;
    let reason = parameter(&value, "reason")
        .and_then(|p| p.get("valueString"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::bad_request(
                "$break-the-glass needs a Parameters body with a 'reason' (valueString)",
            )
        })?;
    let until = blocking(&state.records, move |rec| {
        rec.break_the_glass(&who, &id, &reason)
    })
    .await?;
    let issue = Issue {
        severity: Severity::Information,
        code: IssueCode::Informational,
        diagnostics: format!(
            "access granted until {}; this access is recorded and reported",
            oxehr_records::format_instant(until)
        ),
        expression: Vec::new(),
    };
    Ok(fhir_json_response(
        StatusCode::OK,
        &operation_outcome(&[issue]),
        rendering.pretty,
    ))
}

/// Any other path or method under `/fhir`.
pub async fn not_found() -> ApiResult {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        IssueCode::NotSupported,
        "no such FHIR endpoint",
    ))
}

pub async fn method_not_allowed() -> ApiResult {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        IssueCode::NotSupported,
        "this method is not supported on this URL",
    ))
}
