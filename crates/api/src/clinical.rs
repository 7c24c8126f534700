//! Care gaps and risk scores over the FHIR API (the rules are `oxehr-clinical`'s, kept
//! current by `oxehr_records::clinical`):
//!
//! - `GET Patient/[id]/$care-gaps`: one patient's gaps, in the shape of the Da Vinci DEQM
//!   Gaps in Care Bundle (STU 5: a `document` Bundle with a Composition, LOINC 96315-7
//!   "Gaps in care report", one DetectedIssue per gap carrying the `gapStatus` modifier
//!   extension, code `CAREGAP`, and a GuidanceResponse as its evidence, since our gaps
//!   come from rules rather than eCQMs), inside a Parameters `return`. `status`
//!   (`open-gap`, `closed-gap`, repeatable) filters.
//! - `GET Patient/$care-gaps?rule=…`: the population worklist — the patients the caller
//!   looks after whose gap is open (or `status=closed`), earliest due first, paged with
//!   `_count` and the `next` link.
//! - `GET Patient/[id]/$risk-scores`: each score's outcome with its inputs, equation and
//!   citation, or the inputs it lacks.

use std::sync::Arc;

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use oxehr_auth::Caller;
use oxehr_records::clinical::{CareGap, Findings, Input, RiskScore};
use serde_json::{json, Value};

use crate::bundle::resource_value;
use crate::error::ApiError;
use crate::format::{fhir_json_response, Rendering};
use crate::interactions::{blocking, params, rid};
use crate::AppState;

const GAP_STATUS_EXT: &str =
    "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-gapStatus";
const GAP_STATUS_SYSTEM: &str = "http://hl7.org/fhir/us/davinci-deqm/CodeSystem/gaps-status";
/// Where oxehr's rules are named (`…/colorectal-cancer-screening`).
pub const RULE_BASE: &str = "https://oxehr.org/fhir/care-gap-rule/";
/// The day a gap falls due, on a DetectedIssue.
const DUE_EXT: &str = "https://oxehr.org/fhir/StructureDefinition/care-gap-due";

/// Worklist page size when `_count` is not given, and the largest.
const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 500;

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

fn only(q: &[(String, String)], allowed: &[&str]) -> Result<(), ApiError> {
    for (k, _) in q {
        if !allowed.contains(&k.as_str()) && !matches!(k.as_str(), "_format" | "_pretty") {
            return Err(ApiError::bad_request(format!("unknown parameter {k:?}")));
        }
    }
    Ok(())
}

/// `GET Patient/[id]/$care-gaps`.
pub async fn patient_care_gaps(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = params(&q);
    let rendering = Rendering::from_request(&q, &headers)?;
    only(&q, &["status"])?;
    let mut wanted = Vec::new();
    for (k, v) in &q {
        if k == "status" {
            for s in v.split(',') {
                match s {
                    "open-gap" => wanted.push("open"),
                    "closed-gap" => wanted.push("closed"),
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "status {other:?}: use open-gap or closed-gap"
                        )))
                    }
                }
            }
        }
    }
    let patient = rid(&id)?;
    let found = blocking(&state.records, move |rec| {
        rec.findings(&who, &patient, today())
    })
    .await?;
    let base = &state.config.base_url;
    let gaps: Vec<&CareGap> = found
        .gaps
        .iter()
        // DEQM has no status for "cannot tell": such gaps are left out here (the chart
        // shows them with what is missing).
        .filter(|g| g.status != "undetermined")
        .filter(|g| wanted.is_empty() || wanted.contains(&g.status.as_str()))
        .collect();
    let bundle = gaps_bundle(base, &found, &gaps);
    let out = json!({
        "resourceType": "Parameters",
        "parameter": [{ "name": "return", "resource": bundle }],
    });
    Ok(fhir_json_response(StatusCode::OK, &out, rendering.pretty))
}

fn day_of(f: &Findings) -> String {
    oxehr_records::clinical::format_day(f.today)
}

/// A DetectedIssue for one gap (DEQM Gaps In Care DetectedIssue), its evidence a
/// GuidanceResponse with the id given.
fn detected_issue(patient: &str, day: &str, g: &CareGap, guidance: &str) -> Value {
    let mut evidence = vec![json!({ "detail": [{ "reference": guidance }] })];
    let mut sources: Vec<&str> = g
        .evidence
        .iter()
        .filter_map(|i| i.source.as_deref())
        .chain(g.last_done_source.as_deref())
        .collect();
    sources.sort_unstable();
    sources.dedup();
    if !sources.is_empty() {
        evidence.push(json!({
            "detail": sources.iter().map(|s| json!({ "reference": s })).collect::<Vec<_>>()
        }));
    }
    let mut di = json!({
        "resourceType": "DetectedIssue",
        "modifierExtension": [{
            "url": GAP_STATUS_EXT,
            "valueCodeableConcept": { "coding": [{
                "system": GAP_STATUS_SYSTEM,
                "code": if g.status == "open" { "open-gap" } else { "closed-gap" },
                "display": if g.status == "open" { "Open Gap" } else { "Closed Gap" },
            }]},
        }],
        "status": "final",
        "code": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "CAREGAP",
            "display": "Care Gaps",
        }], "text": g.title },
        "patient": { "reference": format!("Patient/{patient}") },
        "identifiedDateTime": day,
        "detail": g.reason,
        "evidence": evidence,
    });
    if let Some(due) = &g.due {
        di["extension"] = json!([{ "url": DUE_EXT, "valueDate": due }]);
    }
    di
}

fn guidance_response(patient: &str, day: &str, g: &CareGap) -> Value {
    json!({
        "resourceType": "GuidanceResponse",
        "moduleUri": format!("{RULE_BASE}{}", g.rule),
        "status": "success",
        "subject": { "reference": format!("Patient/{patient}") },
        "occurrenceDateTime": day,
        "reasonCode": [{ "text": g.title }],
        "note": [{ "text": g.reason }, { "text": format!("Source: {}", g.citation) }],
    })
}

fn gaps_bundle(base: &str, f: &Findings, gaps: &[&CareGap]) -> Value {
    let day = day_of(f);
    let patient_url = format!("{base}/Patient/{}", f.patient);
    let mut entries = Vec::new();
    let mut sections = Vec::new();
    let mut resources = Vec::new();
    for g in gaps {
        let di_id = uuid::Uuid::new_v4().to_string();
        let gr_id = uuid::Uuid::new_v4().to_string();
        let mut di = detected_issue(&f.patient, &day, g, &format!("urn:uuid:{gr_id}"));
        di["id"] = json!(di_id);
        let mut gr = guidance_response(&f.patient, &day, g);
        gr["id"] = json!(gr_id);
        sections.push(json!({
            "title": g.title,
            "focus": { "reference": format!("urn:uuid:{di_id}") },
            "entry": [{ "reference": format!("urn:uuid:{di_id}") }],
        }));
        resources.push((format!("urn:uuid:{di_id}"), di));
        resources.push((format!("urn:uuid:{gr_id}"), gr));
    }
    let composition_id = uuid::Uuid::new_v4().to_string();
    let mut composition = json!({
        "resourceType": "Composition",
        "id": composition_id,
        "status": "final",
        "type": { "coding": [{
            "system": "http://loinc.org", "code": "96315-7", "display": "Gaps in care report",
        }]},
        "subject": { "reference": format!("Patient/{}", f.patient) },
        "date": day,
        "author": [{ "display": "oxehr care-gap rules" }],
        "title": "Gaps in care",
    });
    if !sections.is_empty() {
        composition["section"] = json!(sections);
    }
    entries
        .push(json!({ "fullUrl": format!("urn:uuid:{composition_id}"), "resource": composition }));
    entries.push(json!({ "fullUrl": patient_url, "resource": f.patient_resource }));
    for (url, r) in resources {
        entries.push(json!({ "fullUrl": url, "resource": r }));
    }
    json!({
        "resourceType": "Bundle",
        "identifier": { "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", uuid::Uuid::new_v4()) },
        "type": "document",
        "timestamp": oxehr_records::format_instant(oxehr_records::now_micros()),
        "entry": entries,
    })
}

/// `GET Patient/$care-gaps?rule=…[&status=open|closed][&_count=N]`: the worklist.
pub async fn worklist(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = params(&q);
    let rendering = Rendering::from_request(&q, &headers)?;
    only(&q, &["rule", "status", "_count", "cursor"])?;
    let get = |name: &str| q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let rule = get("rule").ok_or_else(|| {
        let names: Vec<String> = oxehr_records::clinical::rule_titles()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        ApiError::bad_request(format!(
            "a worklist needs 'rule', one of: {}",
            names.join(", ")
        ))
    })?;
    let status = get("status").unwrap_or_else(|| "open".into());
    let count = match get("_count") {
        None => DEFAULT_COUNT,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| ApiError::bad_request("_count must be a positive number"))?
            .min(MAX_COUNT),
    };
    let cursor = get("cursor");
    let (rule2, status2) = (rule.clone(), status.clone());
    let (page, patients) = blocking(&state.records, move |rec| {
        let page = rec.worklist(&who, &rule2, &status2, cursor.as_deref(), count, today())?;
        // The names on the list: one search, audited per patient like any other.
        let ids: Vec<String> = page.rows.iter().map(|r| r.patient.clone()).collect();
        let patients = rec.patients_named(&who, &ids)?;
        Ok((page, patients))
    })
    .await?;
    let base = &state.config.base_url;
    let day = oxehr_records::clinical::format_day(today());
    let mut entries = Vec::new();
    for row in &page.rows {
        let mut di = detected_issue(
            &row.patient,
            &day,
            &row.gap,
            &format!("{RULE_BASE}{}", row.gap.rule),
        );
        // The evidence's GuidanceResponse is the patient's own $care-gaps.
        di["evidence"][0]["detail"][0] =
            json!({ "reference": format!("Patient/{}/$care-gaps", row.patient) });
        entries.push(json!({ "resource": di, "search": { "mode": "match" } }));
    }
    for p in &patients {
        entries.push(json!({
            "fullUrl": format!("{base}/Patient/{}", p.id),
            "resource": resource_value(p, &rendering),
            "search": { "mode": "include" },
        }));
    }
    let mut links = vec![json!({
        "relation": "self",
        "url": format!("{base}/Patient/$care-gaps?rule={rule}&status={status}&_count={count}"),
    })];
    if let Some(next) = &page.next {
        links.push(json!({
            "relation": "next",
            "url": format!(
                "{base}/Patient/$care-gaps?rule={rule}&status={status}&_count={count}&cursor={}",
                oxehr_fhir::url::encode_component(next)
            ),
        }));
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": entries,
    });
    if page.pending > 0 {
        let warning = oxehr_fhir::outcome::operation_outcome(&[oxehr_fhir::Issue::warning(
            oxehr_fhir::IssueCode::Informational,
            format!(
                "{} patients' care gaps are still being worked out; ask again shortly",
                page.pending
            ),
        )]);
        if let Some(e) = bundle["entry"].as_array_mut() {
            e.push(json!({ "resource": warning, "search": { "mode": "outcome" } }));
        }
    }
    Ok(fhir_json_response(
        StatusCode::OK,
        &bundle,
        rendering.pretty,
    ))
}

fn inputs_part(inputs: &[Input]) -> Vec<Value> {
    inputs
        .iter()
        .map(|i| {
            let mut part = vec![
                json!({ "name": "name", "valueString": i.name }),
                json!({ "name": "value", "valueString": i.value }),
            ];
            if let Some(s) = &i.source {
                part.push(json!({ "name": "source", "valueReference": { "reference": s } }));
            }
            json!({ "name": "input", "part": part })
        })
        .collect()
}

fn score_parameter(s: &RiskScore) -> Value {
    let mut part = vec![
        json!({ "name": "id", "valueCode": s.id }),
        json!({ "name": "title", "valueString": s.title }),
        json!({ "name": "status", "valueCode": s.status }),
    ];
    if let Some(v) = s.value {
        part.push(json!({ "name": "value", "valueDecimal": v }));
    }
    if let Some(d) = &s.display {
        part.push(json!({ "name": "display", "valueString": d }));
    }
    if let Some(i) = &s.interpretation {
        part.push(json!({ "name": "interpretation", "valueString": i }));
    }
    for m in &s.missing {
        part.push(json!({ "name": "missing", "valueString": m }));
    }
    if let Some(r) = &s.reason {
        part.push(json!({ "name": "reason", "valueString": r }));
    }
    part.extend(inputs_part(&s.inputs));
    if let Some(e) = &s.equation {
        part.push(json!({ "name": "equation", "valueString": e }));
    }
    if let Some(c) = &s.citation {
        part.push(json!({ "name": "citation", "valueString": c }));
    }
    if let Some(o) = &s.observation {
        part.push(json!({ "name": "observation", "valueReference": { "reference": o } }));
    }
    json!({ "name": "score", "part": part })
}

/// `GET Patient/[id]/$risk-scores`.
pub async fn patient_risk_scores(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = params(&q);
    let rendering = Rendering::from_request(&q, &headers)?;
    only(&q, &[])?;
    let patient = rid(&id)?;
    let found = blocking(&state.records, move |rec| {
        rec.findings(&who, &patient, today())
    })
    .await?;
    let out = json!({
        "resourceType": "Parameters",
        "parameter": found.scores.iter().map(score_parameter).collect::<Vec<_>>(),
    });
    Ok(fhir_json_response(StatusCode::OK, &out, rendering.pretty))
}

/// `GET Observation/$lastn`: the most recent `max` Observations of each code for one
/// subject (the rules are `oxehr_records::lastn`'s), as a searchset Bundle.
pub async fn lastn(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pairs = params(&q);
    let rendering = Rendering::from_request(&pairs, &headers)?;
    let search: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty"))
        .cloned()
        .collect();
    let base = state.config.base_url.clone();
    let base2 = base.clone();
    let found = blocking(&state.records, move |rec| {
        rec.lastn(&who, &search, Some(&base2))
    })
    .await?;
    let page = oxehr_records::SearchPage {
        total: Some(found.len() as u64),
        matches: found,
        included: Vec::new(),
        next: None,
        previous: None,
        ignored: Vec::new(),
        includes_truncated: false,
    };
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", oxehr_fhir::url::encode_component(v)))
        .collect();
    let links = vec![json!({
        "relation": "self",
        "url": format!("{base}/Observation/$lastn?{}", query.join("&")),
    })];
    let b = crate::bundle::searchset(&base, &page, links, &rendering);
    Ok(fhir_json_response(StatusCode::OK, &b, rendering.pretty))
}
