//! Quality measures over the FHIR API: `Measure/[id]/$evaluate-measure` (FHIR R4
//! `OperationDefinition/Measure-evaluate-measure`) for oxehr's eCQMs, `id` being the CMS
//! number (`CMS122`, `CMS165`, `CMS125`, `CMS130`).
//!
//! Parameters (GET query or POST Parameters): `periodStart`, `periodEnd` (dates, both
//! required), `reportType` (`subject`, `subject-list` or `population`; `subject` when a
//! subject is given, else `population`), `subject` (`Patient/ID`).
//!
//! The answer is a MeasureReport: `individual` for one subject, `subject-list` (each
//! population's count and a contained List of its patients), or `summary` (counts and
//! score). A population report over more than
//! [`MAX_SYNC_PATIENTS`](oxehr_records::measures::MAX_SYNC_PATIENTS) patients is a
//! background job: ask with `Prefer: respond-async`, get 202 and a `Content-Location` to
//! poll (202 with `X-Progress` while it runs, then 200 with the report). Jobs are held in
//! memory for an hour and only their requester may read them; a restart forgets them
//! (ask again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use oxehr_auth::Caller;
use oxehr_clinical::measures::{Counts, MeasureId, Membership};
use oxehr_fhir::IssueCode;
use oxehr_records::measures::{measure_by_id, PopulationResult, SubjectResult, MAX_SYNC_PATIENTS};
use oxehr_records::RecordsError;
use serde_json::{json, Value};
use time::Date;

use crate::error::ApiError;
use crate::format::{fhir_json_response, Rendering};
use crate::interactions::{blocking, parameter, params, parse_json, rid};
use crate::AppState;

/// Where oxehr's measures are named.
pub const MEASURE_BASE: &str = "https://oxehr.org/fhir/Measure/";
const POPULATION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/measure-population";
/// How long a finished job's report is kept.
const JOB_KEEP: Duration = Duration::from_secs(3600);
/// The most jobs kept at once (finished ones are dropped oldest first beyond it).
const MAX_JOBS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReportType {
    Subject,
    SubjectList,
    Population,
}

struct Job {
    owner: String,
    started: Instant,
    total: usize,
    done: Arc<std::sync::atomic::AtomicUsize>,
    result: Option<Result<Value, (StatusCode, String)>>,
}

fn jobs() -> &'static Mutex<HashMap<String, Job>> {
    static JOBS: OnceLock<Mutex<HashMap<String, Job>>> = OnceLock::new();
    JOBS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn parse_day(name: &str, v: &str) -> Result<Date, ApiError> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(v.get(..10).unwrap_or(v), &f)
        .map_err(|_| ApiError::bad_request(format!("{name} must be a date such as 2024-01-01")))
}

use oxehr_records::clinical::format_day as day;

struct Request {
    measure: MeasureId,
    period: (Date, Date),
    report: ReportType,
    subject: Option<oxehr_fhir::ResourceId>,
}

fn request(id: &str, pairs: &[(String, String)]) -> Result<Request, ApiError> {
    let measure = measure_by_id(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotFound,
            format!("no measure {id:?}: oxehr evaluates CMS122, CMS165, CMS125 and CMS130"),
        )
    })?;
    let get = |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    for (k, _) in pairs {
        if !matches!(
            k.as_str(),
            "periodStart" | "periodEnd" | "reportType" | "subject" | "_format" | "_pretty"
        ) {
            return Err(ApiError::bad_request(format!(
                "$evaluate-measure does not take {k:?}"
            )));
        }
    }
    let start = parse_day(
        "periodStart",
        get("periodStart").ok_or_else(|| ApiError::bad_request("periodStart is required"))?,
    )?;
    let end = parse_day(
        "periodEnd",
        get("periodEnd").ok_or_else(|| ApiError::bad_request("periodEnd is required"))?,
    )?;
    if end < start {
        return Err(ApiError::bad_request("periodEnd is before periodStart"));
    }
    let subject = match get("subject") {
        None => None,
        Some(s) => Some(rid(s.strip_prefix("Patient/").ok_or_else(|| {
            ApiError::bad_request("subject must be Patient/ID (groups are not supported)")
        })?)?),
    };
    let report = match get("reportType") {
        None if subject.is_some() => ReportType::Subject,
        None => ReportType::Population,
        Some("subject") => ReportType::Subject,
        Some("subject-list") => ReportType::SubjectList,
        Some("population") => ReportType::Population,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "reportType {o:?}: use subject, subject-list or population"
            )))
        }
    };
    if report == ReportType::Subject && subject.is_none() {
        return Err(ApiError::bad_request("reportType subject needs a subject"));
    }
    if report != ReportType::Subject && subject.is_some() {
        return Err(ApiError::bad_request(
            "a subject report is for one patient; leave subject out for a population",
        ));
    }
    Ok(Request {
        measure,
        period: (start, end),
        report,
        subject,
    })
}

/// The pairs of a POST's Parameters body.
fn body_pairs(headers: &HeaderMap, body: &Bytes) -> Result<Vec<(String, String)>, ApiError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    crate::format::check_content_type(headers, &[])?;
    let p = parse_json(body)?;
    if p["resourceType"] != "Parameters" {
        return Err(ApiError::bad_request(
            "$evaluate-measure takes a Parameters resource",
        ));
    }
    let mut out = Vec::new();
    for name in ["periodStart", "periodEnd", "reportType", "subject"] {
        if let Some(v) = parameter(&p, name) {
            out.push((
                name.to_owned(),
                crate::interactions::parameter_text(name, v)?,
            ));
        }
    }
    Ok(out)
}

fn population(code: &str, display: &str, count: usize) -> Value {
    json!({
        "code": { "coding": [{ "system": POPULATION_SYSTEM, "code": code, "display": display }] },
        "count": count,
    })
}

const POPULATIONS: [(&str, &str); 4] = [
    ("initial-population", "Initial Population"),
    ("denominator", "Denominator"),
    ("denominator-exclusion", "Denominator Exclusion"),
    ("numerator", "Numerator"),
];

fn member_of(m: &Membership, code: &str) -> bool {
    match code {
        "initial-population" => m.initial_population,
        "denominator" => m.denominator,
        "denominator-exclusion" => m.denominator_exclusion,
        _ => m.numerator,
    }
}

fn count_of(c: &Counts, code: &str) -> usize {
    match code {
        "initial-population" => c.initial_population,
        "denominator" => c.denominator,
        "denominator-exclusion" => c.denominator_exclusion,
        _ => c.numerator,
    }
}

fn report_base(measure: MeasureId, period: (Date, Date), kind: &str) -> Value {
    json!({
        "resourceType": "MeasureReport",
        "id": uuid::Uuid::new_v4().to_string(),
        "status": "complete",
        "type": kind,
        "measure": format!("{MEASURE_BASE}{}", measure.version()),
        "date": oxehr_records::format_instant(oxehr_records::now_micros()),
        "period": { "start": day(period.0), "end": day(period.1) },
        "improvementNotation": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
            "code": measure.improvement_notation(),
        }]},
    })
}

fn individual(measure: MeasureId, period: (Date, Date), r: &SubjectResult) -> Value {
    let mut report = report_base(measure, period, "individual");
    report["subject"] = json!({ "reference": format!("Patient/{}", r.patient) });
    let pops: Vec<Value> = POPULATIONS
        .iter()
        .map(|(c, d)| population(c, d, usize::from(member_of(&r.membership, c))))
        .collect();
    report["group"] = json!([{ "population": pops }]);
    let mut evaluated: Vec<&str> = r
        .membership
        .evidence
        .iter()
        .filter_map(|i| i.source.as_deref())
        .collect();
    evaluated.sort_unstable();
    evaluated.dedup();
    if !evaluated.is_empty() {
        report["evaluatedResource"] = json!(evaluated
            .iter()
            .map(|s| json!({ "reference": s }))
            .collect::<Vec<_>>());
    }
    // Why, in words: what decided each population.
    let why: Vec<String> = r
        .membership
        .evidence
        .iter()
        .map(|i| format!("{}: {}", i.name, i.value))
        .collect();
    if !why.is_empty() {
        report["extension"] = json!([{
            "url": "https://oxehr.org/fhir/StructureDefinition/measure-evidence",
            "valueString": why.join("; "),
        }]);
    }
    report
}

fn population_report(p: &PopulationResult, list: bool) -> Value {
    let mut report = report_base(
        p.measure,
        p.period,
        if list { "subject-list" } else { "summary" },
    );
    let mut contained = Vec::new();
    let pops: Vec<Value> = POPULATIONS
        .iter()
        .map(|(code, display)| {
            let mut pop = population(code, display, count_of(&p.counts, code));
            if list {
                let id = format!("{code}-list");
                let entries: Vec<Value> = p
                    .subjects
                    .iter()
                    .filter(|s| member_of(&s.membership, code))
                    .map(|s| json!({ "item": { "reference": format!("Patient/{}", s.patient) } }))
                    .collect();
                let mut l = json!({
                    "resourceType": "List", "id": id, "status": "current", "mode": "snapshot",
                    "title": format!("{display} of {}", p.measure.id()),
                });
                if !entries.is_empty() {
                    l["entry"] = json!(entries);
                }
                contained.push(l);
                pop["subjectResults"] = json!({ "reference": format!("#{id}") });
            }
            pop
        })
        .collect();
    let mut group = json!({ "population": pops });
    if let Some(s) = p.score {
        group["measureScore"] = json!({ "value": (s * 10_000.0).round() / 10_000.0 });
    }
    report["group"] = json!([group]);
    if !contained.is_empty() {
        report["contained"] = json!(contained);
    }
    report
}

fn wants_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "respond-async")
}

/// `GET|POST Measure/[id]/$evaluate-measure`.
pub async fn evaluate(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut pairs = params(&q);
    let rendering = Rendering::from_request(&pairs, &headers)?;
    pairs.extend(body_pairs(&headers, &body)?);
    let req = request(&id, &pairs)?;
    let (measure, period) = (req.measure, req.period);
    if let (ReportType::Subject, Some(subject)) = (req.report, req.subject.clone()) {
        let r = blocking(&state.records, move |rec| {
            rec.evaluate_measure_for(&who, measure, period, &subject)
        })
        .await?;
        return Ok(fhir_json_response(
            StatusCode::OK,
            &individual(measure, period, &r),
            rendering.pretty,
        ));
    }
    let list = req.report == ReportType::SubjectList;
    let who2 = who.clone();
    let patients = blocking(&state.records, move |rec| rec.measure_population(&who2)).await?;
    let asynchronous = wants_async(&headers);
    if !asynchronous && patients.len() > MAX_SYNC_PATIENTS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            IssueCode::TooCostly,
            format!(
                "the population holds {} patients, more than {MAX_SYNC_PATIENTS} one request \
                 evaluates; ask with Prefer: respond-async",
                patients.len()
            ),
        ));
    }
    if !asynchronous {
        let r = blocking(&state.records, move |rec| {
            rec.evaluate_measure_population(&who, measure, period, &patients, &|_| {})
        })
        .await?;
        return Ok(fhir_json_response(
            StatusCode::OK,
            &population_report(&r, list),
            rendering.pretty,
        ));
    }
    // A background job.
    let job_id = uuid::Uuid::new_v4().simple().to_string();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let mut all = jobs().lock().map_err(|_| internal())?;
        all.retain(|_, j| j.result.is_none() || j.started.elapsed() < JOB_KEEP);
        let running = all.values().filter(|j| j.result.is_none()).count();
        if running >= 4 {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                IssueCode::Throttled,
                "four measure jobs are running; try again when one finishes",
            ));
        }
        while all.len() >= MAX_JOBS {
            let oldest = all
                .iter()
                .filter(|(_, j)| j.result.is_some())
                .min_by_key(|(_, j)| j.started)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    all.remove(&k);
                }
                None => break,
            }
        }
        all.insert(
            job_id.clone(),
            Job {
                owner: who.user.clone(),
                started: Instant::now(),
                total: patients.len(),
                done: done.clone(),
                result: None,
            },
        );
    }
    let records = state.records.clone();
    let jid = job_id.clone();
    tokio::task::spawn_blocking(move || {
        let tick = |n: usize| done.store(n, std::sync::atomic::Ordering::Relaxed);
        let result = records
            .evaluate_measure_population(&who, measure, period, &patients, &tick)
            .map(|r| population_report(&r, list))
            .map_err(|e: RecordsError| {
                let e = ApiError::from(e);
                let msg = e
                    .issues
                    .first()
                    .map(|i| i.diagnostics.clone())
                    .unwrap_or_default();
                (e.status, msg)
            });
        if let Ok(mut all) = jobs().lock() {
            if let Some(j) = all.get_mut(&jid) {
                j.result = Some(result);
            }
        }
    });
    let mut resp = StatusCode::ACCEPTED.into_response();
    let url = format!("{}/measure-status/{job_id}", state.config.base_url);
    if let Ok(v) = HeaderValue::from_str(&url) {
        resp.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    Ok(resp)
}

fn internal() -> ApiError {
    ApiError::from(RecordsError::Internal("measure jobs unavailable".into()))
}

/// `GET measure-status/[job]`: 202 with `X-Progress` while the job runs, then the
/// report. Only the requester sees their job; anyone else gets 404.
pub async fn status(
    Extension(who): Extension<Arc<Caller>>,
    rendering: Rendering,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    let all = jobs().lock().map_err(|_| internal())?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, IssueCode::NotFound, "no such job");
    let j = all.get(&job).ok_or_else(not_found)?;
    if j.owner != who.user {
        return Err(not_found());
    }
    match &j.result {
        None => {
            let done = j.done.load(std::sync::atomic::Ordering::Relaxed);
            let mut resp = StatusCode::ACCEPTED.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("{done} of {} patients", j.total)) {
                resp.headers_mut().insert("x-progress", v);
            }
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            Ok(resp)
        }
        Some(Ok(report)) => Ok(fhir_json_response(StatusCode::OK, report, rendering.pretty)),
        Some(Err((status, msg))) => Err(ApiError::new(*status, IssueCode::Processing, msg.clone())),
    }
}
