//! One person, one record, over the FHIR API: `POST Patient/$match` (FHIR R4), `POST
//! Patient/$merge` (the shape of FHIR R5's operation) and `POST Patient/$unmerge`
//! (oxehr's). The rules are `oxehr_records::patients`'s.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use oxehr_auth::Caller;
use oxehr_fhir::outcome::operation_outcome;
use oxehr_fhir::{Issue, IssueCode, ResourceId, Severity};
use oxehr_records::{EntryOutcome, RecordsError};
use serde_json::{json, Value};

use crate::bundle::resource_value;
use crate::error::ApiError;
use crate::format::{check_content_type, fhir_json_response, Rendering};
use crate::interactions::{blocking, parameter, params, parse_json};
use crate::AppState;

/// The most matches `$match` returns (its `count`, when larger, is lowered to this).
pub const MAX_MATCHES: usize = 100;

/// The extension FHIR defines for a match's grade on `Bundle.entry.search`.
const MATCH_GRADE: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";
/// oxehr's extension saying how each field compared (field, agreement, weight in bits).
const MATCH_EVIDENCE: &str = "https://oxehr.org/fhir/StructureDefinition/match-evidence";

fn parameters(headers: &HeaderMap, body: &Bytes, op: &str) -> Result<Value, ApiError> {
    check_content_type(headers, &[])?;
    let p = parse_json(body)?;
    if p.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(ApiError::bad_request(format!(
            "{op} takes a Parameters resource"
        )));
    }
    Ok(p)
}

/// `POST Patient/$match`: a Parameters resource with `resource` (the Patient to find),
/// optional `onlyCertainMatches` and `count`. The answer is a searchset Bundle of the
/// patients the caller may see, best first, each with its score, the FHIR `match-grade`
/// extension and, per field, whether it agreed.
pub async fn match_patients(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    rendering: Rendering,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = parameters(&headers, &body, "$match")?;
    let query = parameter(&p, "resource")
        .and_then(|r| r.get("resource"))
        .cloned()
        .ok_or_else(|| ApiError::bad_request("$match needs a 'resource' parameter (a Patient)"))?;
    let only_certain = match parameter(&p, "onlyCertainMatches") {
        None => false,
        Some(v) => v["valueBoolean"]
            .as_bool()
            .ok_or_else(|| ApiError::bad_request("'onlyCertainMatches' takes a valueBoolean"))?,
    };
    let count = match parameter(&p, "count") {
        None => MAX_MATCHES,
        Some(v) => v["valueInteger"]
            .as_u64()
            .filter(|c| *c > 0)
            .ok_or_else(|| ApiError::bad_request("'count' takes a positive valueInteger"))?
            as usize,
    }
    .min(MAX_MATCHES);
    let found = blocking(&state.records, move |rec| {
        rec.match_patients(&who, &query, count, only_certain)
    })
    .await?;
    let base = &state.config.base_url;
    let entries: Vec<Value> = found
        .iter()
        .map(|m| {
            let evidence: Vec<Value> = m
                .result
                .fields
                .iter()
                .map(|f| {
                    json!({ "url": MATCH_EVIDENCE, "extension": [
                        { "url": "field", "valueCode": f.field },
                        { "url": "agreement", "valueCode": f.outcome.code() },
                        { "url": "weight", "valueDecimal": (f.weight * 100.0).round() / 100.0 },
                    ]})
                })
                .collect();
            let mut ext = vec![json!({ "url": MATCH_GRADE, "valueCode": m.result.grade.code() })];
            ext.extend(evidence);
            json!({
                "fullUrl": format!("{base}/Patient/{}", m.patient.id),
                "resource": resource_value(&m.patient, &rendering),
                "search": {
                    "extension": ext,
                    "mode": "match",
                    "score": (m.result.score * 10_000.0).round() / 10_000.0,
                },
            })
        })
        .collect();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries,
    });
    Ok(fhir_json_response(
        StatusCode::OK,
        &bundle,
        rendering.pretty,
    ))
}

/// A Patient reference parameter (`valueReference` to `Patient/ID`).
fn patient_param(p: &Value, name: &str) -> Result<ResourceId, ApiError> {
    parameter(p, name)
        .and_then(|v| v["valueReference"]["reference"].as_str())
        .and_then(|r| r.strip_prefix("Patient/"))
        .and_then(ResourceId::parse)
        .ok_or_else(|| {
            ApiError::bad_request(format!("'{name}' must be a valueReference to Patient/ID"))
        })
}

/// `POST Patient/$merge`: Parameters `source-patient` and `target-patient`
/// (valueReference). Moves the source's record to the target in one transaction; the
/// answer is a Parameters resource with an `outcome` saying how many resources moved
/// and the target as `result`.
pub async fn merge(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = parameters(&headers, &body, "$merge")?;
    let (source, target) = (
        patient_param(&p, "source-patient")?,
        patient_param(&p, "target-patient")?,
    );
    let (s, t) = (source.clone(), target.clone());
    let outcomes = blocking(&state.records, move |rec| rec.merge_patients(&who, &s, &t)).await?;
    let moved = outcomes.len().saturating_sub(3);
    answer(
        &outcomes,
        &target,
        format!("Patient/{source} was merged into Patient/{target}; {moved} resources moved"),
    )
}

/// `POST Patient/$unmerge`: Parameters `source-patient` (the record merged away).
/// Undoes its last merge; the answer is as `$merge`'s, with the restored source as
/// `result`.
pub async fn unmerge(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = parameters(&headers, &body, "$unmerge")?;
    let source = patient_param(&p, "source-patient")?;
    let s = source.clone();
    let outcomes = blocking(&state.records, move |rec| rec.unmerge_patient(&who, &s)).await?;
    let moved = outcomes.len().saturating_sub(3);
    answer(
        &outcomes,
        &source,
        format!("the merge of Patient/{source} was undone; {moved} resources moved back"),
    )
}

fn answer(
    outcomes: &[EntryOutcome],
    result: &ResourceId,
    said: String,
) -> Result<Response, ApiError> {
    let patient = outcomes
        .iter()
        .find_map(|o| match o {
            EntryOutcome::Updated(r) if r.rtype.as_str() == "Patient" && &r.id == result => r
                .body
                .as_deref()
                .and_then(|b| serde_json::from_str::<Value>(b).ok()),
            _ => None,
        })
        .ok_or_else(|| ApiError::from(RecordsError::Internal("merge result missing".into())))?;
    let issue = Issue {
        severity: Severity::Information,
        code: IssueCode::Informational,
        diagnostics: said,
        expression: Vec::new(),
    };
    let body = json!({
        "resourceType": "Parameters",
        "parameter": [
            { "name": "outcome", "resource": operation_outcome(&[issue]) },
            { "name": "result", "resource": patient },
        ],
    });
    Ok(fhir_json_response(StatusCode::OK, &body, false))
}

/// `GET Patient/[id]/$transfer-bundle`: the patient's record as the caller may see it
/// (only `_type`'s types, when given), as a transaction Bundle another FHIR server can
/// store (`Patient/$receive` on an oxehr server; the base URL on any other), a resend
/// of which creates nothing new. `destination` (optional) names where it goes, for the
/// audit trail. This server never connects to another on a caller's behalf: the
/// caller (or `oxehr transfer`) sends the Bundle.
pub async fn transfer_bundle(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pairs = params(&q);
    let rendering = Rendering::from_request(&pairs, &headers)?;
    let patient = crate::interactions::rid(&id)?;
    let mut types = Vec::new();
    for (k, v) in &pairs {
        if k == "_type" {
            for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                types.push(
                    oxehr_fhir::ResourceType::parse(t).ok_or_else(|| ApiError::unknown_type(t))?,
                );
            }
        }
    }
    let destination = pairs
        .iter()
        .find(|(k, _)| k == "destination")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "(not named)".to_owned());
    let base = state.config.base_url.clone();
    let bundle = blocking(&state.records, move |rec| {
        rec.transfer_bundle(&who, &patient, &types, &base, &destination)
    })
    .await?;
    Ok(fhir_json_response(
        StatusCode::OK,
        &bundle,
        rendering.pretty,
    ))
}

/// `POST Patient/$receive`: a transferred record (a transaction Bundle, as
/// `$transfer-bundle` makes) stored as the caller, filed on the patient this record
/// already has (by identifier, or one certain demographic match), with a Provenance
/// naming the caller's organization and the transfer. The answer is the
/// transaction-response Bundle.
pub async fn receive(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    rendering: Rendering,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_content_type(&headers, &[])?;
    let bundle = parse_json(&body)?;
    let outcomes = blocking(&state.records, move |rec| rec.receive_record(&who, bundle)).await?;
    let b = crate::bundle::bundle_response(
        &state.config.base_url,
        oxehr_records::BundleKind::Transaction,
        outcomes,
        false,
        &rendering,
    );
    Ok(fhir_json_response(StatusCode::OK, &b, rendering.pretty))
}
