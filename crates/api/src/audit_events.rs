//! `GET`/`POST AuditEvent?…` and `Patient/[id]/AuditEvent`: the audit trail's searches
//! rendered as searchsets. What the trail holds, who sees it and the rule that nobody
//! writes it are `oxehr_records::audit_view`'s; reads by id go through `Records::read`
//! like any other.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};

use oxehr_auth::Caller;
use oxehr_records::audit_view;

use crate::bundle;
use crate::error::ApiError;
use crate::format::{fhir_json_response, Rendering};
use crate::interactions::{blocking, search_url};
use crate::AppState;

/// A search of the audit trail with the request's (decoded) parameters.
pub async fn search(
    state: AppState,
    who: Arc<Caller>,
    pairs: Vec<(String, String)>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    let rendering = Rendering::from_request(&pairs, &headers)?;
    let q = audit_view::parse(&pairs)?;
    let count = q
        .count
        .unwrap_or(state.config.default_count)
        .min(state.config.max_count);
    let page = blocking(&state.records, move |rec| {
        rec.audit_event_search(&who, &q, count)
    })
    .await?;
    let base = &state.config.base_url;
    let path = audit_view::AUDIT_EVENT;
    let self_page = pairs
        .iter()
        .find(|(k, _)| k == "_page")
        .map(|(_, v)| v.as_str());
    let mut links = vec![bundle::link(
        "self",
        &search_url(base, path, &pairs, self_page),
    )];
    if let Some(n) = &page.next {
        links.push(bundle::link(
            "next",
            &search_url(base, path, &pairs, Some(n)),
        ));
    }
    let b = bundle::searchset(base, &page, links, &rendering);
    Ok(fhir_json_response(StatusCode::OK, &b, rendering.pretty))
}
