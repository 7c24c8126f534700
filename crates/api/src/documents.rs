//! C-CDA documents over the FHIR API: `POST [base]/$import-ccda` brings a document into
//! the record, `GET [base]/Patient/[id]/$ccda` writes the patient's record as a
//! Continuity of Care Document.
//!
//! Both are oxehr's own operations (FHIR defines none for C-CDA): the reading and
//! writing are `oxehr-ccda`'s, the storing and the access policy `oxehr-records`'s, as
//! for any write or `$everything`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use oxehr_auth::Caller;
use oxehr_fhir::{IssueCode, ResourceType};
use oxehr_records::{BundleKind, Document, RecordsError};
use serde_json::Value;

use crate::bundle;
use crate::error::ApiError;
use crate::format::{fhir_json_response, Rendering};
use crate::interactions::{blocking, parameter, params, parse_json, rid};
use crate::AppState;

/// The most resources one `$ccda` document is written from. A larger record is
/// refused (the document would leave part of the record out without saying so);
/// `$everything` pages through any size.
pub const MAX_CCDA_RESOURCES: usize = 20_000;

/// The media types a C-CDA document may be posted as.
const XML_TYPES: [&str; 3] = ["application/xml", "text/xml", "application/cda+xml"];

/// `POST [base]/$import-ccda`: the body is the document itself (`Content-Type:
/// application/xml`, `text/xml` or `application/cda+xml`; the organization it came from
/// in the `organization` query parameter), or a Parameters resource with `document`
/// (`valueAttachment` with base64 `data`, or `valueString`) and `organization`
/// (`valueReference` to an Organization). Without an organization, the document is
/// recorded as coming from the caller's own.
///
/// Every entry is stored under the caller's access policy in one transaction with a
/// Provenance naming the organization and the document; the answer is the
/// transaction-response Bundle. A document that cannot be read is refused with the
/// reason and stores nothing.
pub async fn import_ccda(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let pairs = params(&q);
    let rendering = Rendering::from_request(&pairs, &headers)?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let (xml, organization) = if media.as_deref().is_some_and(|m| XML_TYPES.contains(&m)) {
        let org = pairs
            .iter()
            .find(|(k, _)| k == "organization")
            .map(|(_, v)| v.clone());
        (body.to_vec(), org)
    } else {
        crate::format::check_content_type(&headers, &[])?;
        from_parameters(&parse_json(&body)?)?
    };
    if xml.is_empty() {
        return Err(ApiError::bad_request("the request has no document"));
    }
    let organization = organization.map(|o| org_id(&o)).transpose()?;
    let ctx = oxehr_ccda::ImportContext {
        organization: organization
            .clone()
            .or_else(|| who.organization.clone())
            .map(|o| format!("Organization/{o}")),
    };
    let imported = tokio::task::spawn_blocking(move || oxehr_ccda::import_bytes(&xml, &ctx))
        .await
        .map_err(|_| ApiError::from(RecordsError::Internal("import worker failed".into())))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                IssueCode::Invalid,
                format!("the document cannot be imported: {e}"),
            )
        })?;
    let kind = imported
        .document
        .type_code
        .as_ref()
        .map(|(_, display)| display.trim())
        .filter(|d| !d.is_empty());
    let document = Document {
        organization,
        identifier: imported.document.identifier(),
        title: match kind {
            Some(d) => format!("a document (C-CDA {d})"),
            None => "a document (C-CDA)".to_owned(),
        },
    };
    let outcomes = blocking(&state.records, move |rec| {
        rec.import_document(&who, &document, imported.bundle)
    })
    .await?;
    let b = bundle::bundle_response(
        &state.config.base_url,
        BundleKind::Transaction,
        outcomes,
        false,
        &rendering,
    );
    Ok(fhir_json_response(StatusCode::OK, &b, rendering.pretty))
}

/// The document and organization of a Parameters body.
fn from_parameters(p: &Value) -> Result<(Vec<u8>, Option<String>), ApiError> {
    if p.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(ApiError::bad_request(
            "$import-ccda takes the document as XML, or a Parameters resource with a 'document'",
        ));
    }
    let doc = parameter(p, "document").ok_or_else(|| {
        ApiError::bad_request("the Parameters resource has no 'document' parameter")
    })?;
    let xml = if let Some(s) = doc.get("valueString").and_then(Value::as_str) {
        s.as_bytes().to_vec()
    } else if let Some(data) = doc["valueAttachment"]["data"].as_str() {
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| ApiError::bad_request("the document's attachment data is not base64"))?
    } else {
        return Err(ApiError::bad_request(
            "'document' needs a valueAttachment with data, or a valueString",
        ));
    };
    let org = parameter(p, "organization")
        .and_then(|o| o["valueReference"]["reference"].as_str())
        .map(str::to_owned);
    Ok((xml, org))
}

/// An organization given as `Organization/ID` or `ID`.
fn org_id(s: &str) -> Result<String, ApiError> {
    let id = s.strip_prefix("Organization/").unwrap_or(s);
    oxehr_fhir::ResourceId::parse(id)
        .map(|_| id.to_owned())
        .ok_or_else(|| ApiError::bad_request("organization must be Organization/ID"))
}

/// `GET [base]/Patient/[id]/$ccda`: the patient's record as the caller may see it
/// (what `$everything` gives them), written as a C-CDA R2.1 Continuity of Care Document
/// (`application/xml`) authored by the caller's organization. Reading the record is
/// audited as any `$everything` is.
pub async fn export_ccda(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let patient_id = rid(&id)?;
    let (patient, resources, cut, organization) = blocking(&state.records, move |rec| {
        let patient_type = rtype("Patient")?;
        let patient = rec.read(&who, &patient_type, &patient_id)?;
        let patient = serde_json::from_str::<Value>(patient.body.as_deref().unwrap_or("null"))
            .map_err(|e| RecordsError::Internal(format!("stored body unreadable: {e}")))?;
        let (resources, cut) = rec.patient_record(&who, &patient_id, MAX_CCDA_RESOURCES)?;
        let organization = match who
            .organization
            .as_deref()
            .and_then(oxehr_fhir::ResourceId::parse)
        {
            Some(o) => rec
                .read(&who, &rtype("Organization")?, &o)
                .ok()
                .and_then(|r| serde_json::from_str::<Value>(r.body.as_deref()?).ok()),
            None => None,
        };
        Ok((patient, resources, cut, organization))
    })
    .await?;
    if cut {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            IssueCode::TooCostly,
            format!(
                "the record holds more than {MAX_CCDA_RESOURCES} resources, more than one \
                 document carries; use $everything or a Bulk Data export"
            ),
        ));
    }
    let ctx = oxehr_ccda::ExportContext {
        author_organization: organization,
        now: oxehr_records::format_instant(oxehr_records::now_micros()),
        document_id: uuid::Uuid::new_v4().to_string(),
    };
    let xml =
        tokio::task::spawn_blocking(move || oxehr_ccda::export_ccd(&patient, &resources, &ctx))
            .await
            .map_err(|_| ApiError::from(RecordsError::Internal("export worker failed".into())))?
            .map_err(|e| ApiError::from(RecordsError::Internal(format!("CCD export: {e}"))))?;
    let mut resp = (StatusCode::OK, xml).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    Ok(resp)
}

fn rtype(name: &str) -> Result<ResourceType, RecordsError> {
    ResourceType::parse(name).ok_or_else(|| RecordsError::Internal(format!("no type {name}")))
}
