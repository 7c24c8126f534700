//! Searches: type, system and compartment searches (GET and POST), `$everything`, and
//! the page links of a searchset.

use super::*;
use oxehr_fhir::url::encode_component;

fn page_url(
    base: &str,
    path: &str,
    params: &[(String, String)],
    count: usize,
    offset: usize,
) -> String {
    let mut parts: Vec<String> = params
        .iter()
        .filter(|(k, _)| k != "_count" && k != "_offset")
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect();
    parts.push(format!("_count={count}"));
    parts.push(format!("_offset={offset}"));
    format!("{base}/{path}?{}", parts.join("&"))
}

pub(crate) fn page_links(
    base: &str,
    path: &str,
    params: &[(String, String)],
    count: usize,
    offset: usize,
    page: &oxehr_records::HistoryPage,
) -> Vec<Value> {
    let mut links = vec![link("self", &page_url(base, path, params, count, offset))];
    if let Some(next) = page.next_offset {
        links.push(link("next", &page_url(base, path, params, count, next)));
    }
    if let Some(previous) = page.previous_offset {
        links.push(link(
            "previous",
            &page_url(base, path, params, count, previous),
        ));
    }
    links
}

/// What a search covers: one type, the whole system, or one type in a Patient's
/// compartment.
enum Scope {
    Type(String),
    System,
    Compartment {
        patient: String,
        rtype: String,
    },
    /// `Patient/[id]/$everything`: the patient's compartment, every type in it (or those
    /// `_type` names).
    Everything {
        patient: String,
    },
}

/// A search link: the request's parameters (without `_page`), plus `_page` if given.
pub(crate) fn search_url(
    base: &str,
    path: &str,
    params: &[(String, String)],
    page: Option<&str>,
) -> String {
    let mut parts: Vec<String> = params
        .iter()
        .filter(|(k, _)| k != "_page" && k != "_offset")
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect();
    if let Some(p) = page {
        parts.push(format!("_page={p}"));
    }
    let path = if path.is_empty() {
        base.to_string()
    } else {
        format!("{base}/{path}")
    };
    if parts.is_empty() {
        path
    } else {
        format!("{path}?{}", parts.join("&"))
    }
}

/// The types a `_type` parameter names (comma-separated, repeatable), each checked.
fn listed_types(pairs: &[(String, String)]) -> Result<Vec<ResourceType>, ApiError> {
    pairs
        .iter()
        .filter(|(k, _)| k == "_type")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(rtype)
        .collect()
}

/// A parsed search: of types (or the whole system), or of a patient's compartment.
enum Search {
    Types(Query),
    Compartment(CompartmentSearch),
}

impl Search {
    fn query(&self) -> &Query {
        match self {
            Search::Types(q) => q,
            Search::Compartment(s) => s.query(),
        }
    }
}

async fn search_with(
    state: AppState,
    who: Arc<Caller>,
    scope: Scope,
    pairs: Vec<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let rendering = Rendering::from_request(&pairs, &headers)?;
    let lenient = lenient(&headers);
    let base_url = Some(state.config.base_url.as_str());
    let (search, path) = match scope {
        Scope::Type(ty) => {
            rtype(&ty)?;
            let q = query::parse(std::slice::from_ref(&ty), &pairs, lenient, base_url)?;
            (Search::Types(q), ty)
        }
        Scope::System => {
            let types: Vec<String> = listed_types(&pairs)?
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect();
            // Without `_type` a system search covers every type: its parameters must
            // exist on all of them (`_id`, `_lastUpdated`, `_tag`, …), and no type
            // condition is needed.
            let every_type = types.is_empty();
            let parse_types: Vec<String> = if every_type {
                oxehr_fhir::Definitions::r4()
                    .resource_types()
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            } else {
                types
            };
            let mut q = query::parse(&parse_types, &pairs, lenient, base_url)?;
            if every_type {
                q.types.clear();
            }
            (Search::Types(q), String::new())
        }
        Scope::Everything { patient } => {
            let id = rid(&patient)?;
            let scope = CompartmentScope::Everything(listed_types(&pairs)?);
            let s = CompartmentSearch::parse(&id, &scope, &pairs, lenient, base_url)?;
            let path = format!("Patient/{patient}/$everything");
            (Search::Compartment(s), path)
        }
        Scope::Compartment { patient, rtype: ty } => {
            let rt = rtype(&ty)?;
            let id = rid(&patient)?;
            let scope = CompartmentScope::Type(rt);
            let s = CompartmentSearch::parse(&id, &scope, &pairs, lenient, base_url)?;
            let path = format!("Patient/{patient}/{ty}");
            (Search::Compartment(s), path)
        }
    };
    let limit = if rendering.summary == Summary::Count {
        0
    } else {
        search
            .query()
            .count
            .unwrap_or(state.config.default_count)
            .min(state.config.max_count)
    };
    let page = blocking(&state.records, move |rec| match &search {
        Search::Types(q) => rec.search(&who, q, limit),
        Search::Compartment(s) => rec.search_compartment(&who, s, limit),
    })
    .await?;
    let base = &state.config.base_url;
    let self_page = pairs
        .iter()
        .find(|(k, _)| k == "_page")
        .map(|(_, v)| v.as_str());
    let mut links = vec![link("self", &search_url(base, &path, &pairs, self_page))];
    if let Some(n) = &page.next {
        links.push(link("next", &search_url(base, &path, &pairs, Some(n))));
    }
    if let Some(p) = &page.previous {
        links.push(link("previous", &search_url(base, &path, &pairs, Some(p))));
    }
    let b = bundle::searchset(base, &page, links, &rendering);
    Ok(fhir_json_response(StatusCode::OK, &b, rendering.pretty))
}

/// Form-encoded parameters of a `POST …/_search` body, after any in the URL.
fn with_form(q: &Option<String>, body: &Bytes) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs = params(q);
    let form = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the form body is not UTF-8"))?;
    pairs.extend(query::decode_pairs(form));
    Ok(pairs)
}

pub async fn search_type(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path(ty): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    if audit_view::is_audit_event(&ty) {
        return crate::audit_events::search(state, who, params(&q), headers).await;
    }
    search_with(state, who, Scope::Type(ty), params(&q), headers).await
}

/// `POST [type]/_search` with form-encoded parameters (and any in the URL).
pub async fn search_type_post(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path(ty): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let pairs = with_form(&q, &body)?;
    if audit_view::is_audit_event(&ty) {
        return crate::audit_events::search(state, who, pairs, headers).await;
    }
    search_with(state, who, Scope::Type(ty), pairs, headers).await
}

/// `GET [base]?_type=…` (system search).
pub async fn search_system(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    search_with(state, who, Scope::System, params(&q), headers).await
}

/// `POST [base]/_search`.
pub async fn search_system_post(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let pairs = with_form(&q, &body)?;
    search_with(state, who, Scope::System, pairs, headers).await
}

/// `GET [base]/Patient/[id]/[type]?…` (compartment search).
pub async fn search_compartment(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path((compartment, id, ty)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    if compartment != "Patient" {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotSupported,
            "compartment search is supported for the Patient compartment",
        ));
    }
    if audit_view::is_audit_event(&ty) {
        // Who looked at this patient's record: the audit trail's `patient` search.
        let mut pairs = params(&q);
        pairs.push(("patient".into(), id));
        return crate::audit_events::search(state, who, pairs, headers).await;
    }
    let scope = Scope::Compartment {
        patient: id,
        rtype: ty,
    };
    search_with(state, who, scope, params(&q), headers).await
}

/// `GET Patient/[id]/$everything`: every resource in the patient's compartment that the
/// caller may see (the access policy applies as to any search), paged; `_type` limits
/// the types, `_count` the page size. Resources referenced from the record but outside
/// any compartment (Practitioner, Organization, Medication) are not added.
pub async fn everything(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    search_with(
        state,
        who,
        Scope::Everything { patient: id },
        params(&q),
        headers,
    )
    .await
}
