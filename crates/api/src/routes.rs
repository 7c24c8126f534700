//! The URL map of the FHIR REST API and the layers around it: body limit, timeout,
//! request ids, tracing, panic catching, and turning every non-FHIR error answer (from
//! those layers or the router) into an OperationOutcome.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use oxehr_fhir::IssueCode;
use oxehr_records::Records;

use crate::bulk;
use crate::error::ApiError;
use crate::format::FHIR_JSON;
use crate::interactions as i;
use crate::{ApiConfig, AppState};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application: FHIR on `/fhir`.
pub fn router(records: Records, config: ApiConfig, identity: oxehr_auth::Identity) -> Router {
    let date = oxehr_records::format_instant(oxehr_records::now_micros());
    let capabilities = crate::capabilities::capability_statement(
        &config.base_url,
        records.backend_name(),
        &date[..10],
    );
    let state = AppState::new(crate::AppParts {
        records,
        config: Arc::new(config.clone()),
        capabilities: Arc::new(capabilities),
        identity,
        limiter: config
            .rate_limit
            .map(|l| Arc::new(crate::limits::RateLimiter::new(l))),
        metrics: Arc::default(),
    });
    let fhir = Router::new()
        .route("/metadata", get(i::metadata))
        .route(
            "/",
            get(i::search_system)
                .post(i::batch_or_transaction)
                .fallback(i::method_not_allowed),
        )
        .route("/_search", post(i::search_system_post))
        .route("/$import-ccda", post(crate::documents::import_ccda))
        .route("/_history", get(i::history_system))
        .route(
            "/$export",
            get(bulk::export_system).post(bulk::export_system),
        )
        .route(
            "/Patient/$export",
            get(bulk::export_patient).post(bulk::export_patient),
        )
        .route(
            "/Group/{id}/$export",
            get(bulk::export_group).post(bulk::export_group),
        )
        .route("/$viewdefinition-run", post(crate::views::run))
        .route(
            "/ViewDefinition/$viewdefinition-run",
            post(crate::views::run),
        )
        .route("/ViewDefinition/$run", post(crate::views::run))
        .route(
            "/ViewDefinition/{id}/$viewdefinition-run",
            get(crate::views::run_stored).post(crate::views::run_stored),
        )
        .route(
            "/ViewDefinition/{id}/$run",
            get(crate::views::run_stored).post(crate::views::run_stored),
        )
        .route("/bulk-status/{job}", get(bulk::status).delete(bulk::cancel))
        .route("/bulk-files/{job}/{file}", get(bulk::file))
        .route(
            "/{type}",
            get(i::search_type)
                .post(i::create)
                .put(i::conditional_update)
                .delete(i::conditional_delete),
        )
        .route("/{type}/_search", post(i::search_type_post))
        .route("/{type}/_history", get(i::history_type))
        .route("/{type}/$validate", post(i::validate))
        .route(
            "/{type}/{id}",
            get(i::read)
                .put(i::update)
                .patch(i::patch)
                .delete(i::delete),
        )
        .route("/{type}/{id}/$validate", post(i::validate))
        .route("/Patient/{id}/$break-the-glass", post(i::break_the_glass))
        .route("/Patient/{id}/$everything", get(i::everything))
        .route("/Patient/{id}/$ccda", get(crate::documents::export_ccda))
        .route("/Patient/$match", post(crate::patients::match_patients))
        .route("/Patient/$care-gaps", get(crate::clinical::worklist))
        .route("/Observation/$lastn", get(crate::clinical::lastn))
        .route(
            "/Measure/{id}/$evaluate-measure",
            get(crate::measures::evaluate).post(crate::measures::evaluate),
        )
        .route("/measure-status/{job}", get(crate::measures::status))
        .route(
            "/Patient/{id}/$care-gaps",
            get(crate::clinical::patient_care_gaps),
        )
        .route(
            "/Patient/{id}/$risk-scores",
            get(crate::clinical::patient_risk_scores),
        )
        .route("/Patient/$merge", post(crate::patients::merge))
        .route("/Patient/$unmerge", post(crate::patients::unmerge))
        .route("/Patient/$receive", post(crate::patients::receive))
        .route(
            "/Patient/{id}/$transfer-bundle",
            get(crate::patients::transfer_bundle),
        )
        .route("/{type}/{id}/_history", get(i::history_instance))
        .route("/{type}/{id}/_history/{vid}", get(i::vread))
        .route("/{compartment}/{id}/{type}", get(i::search_compartment))
        .fallback(i::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .with_state(state.clone());
    // `POST /fhir/` (trailing slash) is the base URL too.
    let base_slash = Router::new()
        .route(
            "/fhir/",
            post(i::batch_or_transaction).fallback(i::method_not_allowed),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        .with_state(state.clone());
    let on_request_span = config.on_request_span;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).with_state(state.clone()))
        .route("/metrics", get(crate::metrics::metrics).with_state(state.clone()))
        .nest("/fhir", fhir)
        .merge(base_slash)
        .fallback(i::not_found)
        .layer(middleware::from_fn(fhir_errors))
        .merge(crate::smart::router(state))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, config.request_timeout))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, IssueCode::Exception, "internal error; see the server log")
                .into_response()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                .make_span_with(move |req: &Request| {
                // The path names types and ids; the query may carry search values
                // (names, birth dates) and is never logged.
                let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
                if let Some(hook) = on_request_span {
                    hook(&span, req.headers());
                }
                span
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Gives error answers that are not FHIR yet (413 from the body limit, 405 from the
/// router, 4xx from extractors) an OperationOutcome body.
async fn fhir_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_fhir = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == FHIR_JSON);
    if (status.is_client_error() || status.is_server_error()) && !is_fhir {
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => IssueCode::TooLong,
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND => IssueCode::NotSupported,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => IssueCode::Timeout,
            s if s.is_server_error() => IssueCode::Exception,
            _ => IssueCode::Invalid,
        };
        let why = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                "the request body is larger than this server accepts".to_string()
            }
            StatusCode::SERVICE_UNAVAILABLE => "the request took too long".to_string(),
            s => format!(
                "the request was refused ({})",
                s.canonical_reason().unwrap_or("error")
            ),
        };
        return ApiError::new(status, code, why).into_response();
    }
    resp
}

/// `GET /healthz`: the process is up and answering (liveness). No credential, no store.
async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        "ok\n",
    )
        .into_response()
}

/// `GET /readyz`: the store answers a read and the audit trail can be written
/// (readiness: a load balancer sends requests only while this is 200). 503 says which
/// failed, in general terms. No credential.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let records = state.records.clone();
    let ready = tokio::task::spawn_blocking(move || records.ready()).await;
    let (status, text) = match ready {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".to_owned()),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned()),
    };
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
