//! History: of an instance, a type and the whole system, paged by offset within a
//! fixed window.

use super::search::page_links;
use super::*;

async fn history_with(
    state: AppState,
    who: Arc<Caller>,
    scope: HistoryScope,
    path: String,
    q: Option<String>,
    headers: HeaderMap,
) -> ApiResult {
    let pairs = params(&q);
    let rendering = Rendering::from_request(&pairs, &headers)?;
    let mut count = state.config.default_count;
    let mut offset = 0;
    let mut since = None;
    let mut at = None;
    for (k, v) in &pairs {
        match k.as_str() {
            "_count" => {
                count = v
                    .parse()
                    .map_err(|_| ApiError::bad_request("_count must be a non-negative integer"))?
            }
            "_offset" => {
                offset = v
                    .parse()
                    .map_err(|_| ApiError::bad_request("_offset must be a non-negative integer"))?
            }
            "_since" => {
                since = Some(parse_instant(v).ok_or_else(|| {
                    ApiError::bad_request("_since must be an instant such as 2024-01-01T00:00:00Z")
                })?)
            }
            // Our own snapshot bound that keeps later pages stable while others write.
            "_before" => {
                at = Some(
                    v.parse::<i64>()
                        .map_err(|_| ApiError::bad_request("_before is not valid"))?,
                )
            }
            _ => {}
        }
    }
    let count = count.min(state.config.max_count);
    let at = at.unwrap_or_else(now_micros);
    let q = HistoryRequest {
        scope,
        since,
        at: Some(at),
        count,
        offset,
    };
    let page = blocking(&state.records, move |rec| rec.history(&who, &q)).await?;
    let mut link_params: Vec<(String, String)> =
        pairs.into_iter().filter(|(k, _)| k != "_before").collect();
    link_params.push(("_before".into(), at.to_string()));
    let links = page_links(
        &state.config.base_url,
        &path,
        &link_params,
        count,
        offset,
        &page,
    );
    let b = bundle::history(
        &state.config.base_url,
        &page.entries,
        page.reported_total,
        links,
        &rendering,
    );
    Ok(fhir_json_response(StatusCode::OK, &b, rendering.pretty))
}

pub async fn history_instance(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    Instance { rtype: rt, id }: Instance,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let path = format!("{rt}/{id}/_history");
    history_with(state, who, HistoryScope::Instance(rt, id), path, q, headers).await
}

pub async fn history_type(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    TypeOf(rt): TypeOf,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let path = format!("{rt}/_history");
    history_with(state, who, HistoryScope::Type(rt), path, q, headers).await
}

pub async fn history_system(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Caller>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    history_with(
        state,
        who,
        HistoryScope::System,
        "_history".into(),
        q,
        headers,
    )
    .await
}
