//! oxehr's pages for people: the clinician's chart now, the patient portal next.
//!
//! Server-rendered HTML (askama templates in `crates/web/templates/`), one small
//! hand-written stylesheet, no script needed and nothing fetched from elsewhere. Every
//! page reads and writes through `oxehr-records` as the signed-in person, under the same
//! access policy and audit as the FHIR API; sign-in and sessions are `oxehr-auth`'s
//! ([`oxehr_auth::Identity`]). This crate has no access rule of its own and never
//! reaches the store.
//!
//! - Every form carries a CSRF token ([`csrf`]) on top of the `SameSite=Strict` cookie.
//! - Searches are POSTed: no name, birth date or identifier is ever in a URL (a patient's
//!   id is, as in the FHIR API).
//! - Every answer carries a strict Content-Security-Policy (no script, no inline style,
//!   no other origin), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, and
//!   pages `Cache-Control: no-store` (they hold patient data). A handler may set a
//!   stricter or wider policy of its own: the authorization pages ([`authorize`]) let
//!   their forms end in a redirect to the app.

mod appointments;
mod authorize;
mod chart;
pub mod csrf;
pub mod display;
mod document;
mod findings;
mod forms;
mod inbox;
mod pages;
mod portal;
mod review;
mod schedule;
mod session;
mod trend;
mod worklist;

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use oxehr_auth::Identity;
use oxehr_records::Records;

pub use pages::Page;

/// The policy of every page: only this origin's stylesheet, images and forms; no script
/// at all, no framing, no plugin.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../static/oxehr.css");

/// Settings of the pages.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Mark cookies `Secure` (the server is reached over https).
    pub secure_cookies: bool,
    /// The server's public FHIR base URL (`http://127.0.0.1:8080/fhir`), the same as the
    /// API's: the `aud` apps ask for and the `iss` the authorization endpoint answers
    /// with; the endpoint is beside it (`…/auth/authorize`).
    pub base_url: String,
}

/// What every page shares.
#[derive(Clone)]
pub struct WebState {
    pub records: Records,
    pub identity: Arc<Identity>,
    pub config: Arc<WebConfig>,
}

/// The pages' routes, to merge into the server's router.
pub fn router(records: Records, identity: Arc<Identity>, config: WebConfig) -> Router {
    let state = WebState {
        records,
        identity,
        config: Arc::new(config),
    };
    Router::new()
        .route("/", get(pages::home))
        .route("/sign-in", post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/session-ended", get(session::ended))
        .route(
            "/patients",
            get(pages::patients).post(pages::patients_search),
        )
        .route("/patients/{id}", get(pages::chart_summary))
        .route(
            "/patients/{id}/break-the-glass",
            post(pages::break_the_glass),
        )
        .route("/patients/{id}/trend", get(pages::trend))
        .route(
            "/patients/{id}/add/{form}",
            get(pages::chart_form).post(pages::chart_form_submit),
        )
        .route("/patients/{id}/{section}", get(pages::chart_section))
        .route("/patients/{id}/{section}/{rid}", get(pages::chart_document))
        .route("/portal/{id}", get(pages::portal_summary))
        .route("/portal/{id}/home", get(portal::home))
        .route(
            "/portal/{id}/refills",
            get(portal::refills).post(portal::request_refill),
        )
        .route(
            "/portal/{id}/messages",
            get(portal::messages).post(portal::new_message),
        )
        .route(
            "/portal/{id}/messages/{root}",
            get(portal::thread).post(portal::reply),
        )
        .route("/portal/{id}/access-log", get(portal::access_log))
        .route(
            "/portal/{id}/proxies",
            get(portal::proxies).post(portal::set_proxy),
        )
        .route("/portal/{id}/download", get(portal::download))
        .route(
            "/portal/{id}/download/record.json",
            get(portal::download_json),
        )
        .route(
            "/portal/{id}/download/record.xml",
            get(portal::download_ccd),
        )
        .route("/portal/{id}/print", get(portal::print))
        .route(
            "/portal/{id}/sharing",
            get(portal::sharing).post(portal::set_sharing),
        )
        .route(
            "/portal/{id}/appointments",
            get(appointments::appointments).post(appointments::book),
        )
        .route(
            "/portal/{id}/appointments/{appointment}/cancel",
            post(appointments::cancel),
        )
        .route(
            "/portal/{id}/appointments/{appointment}/reschedule",
            get(appointments::choose_new_time).post(appointments::reschedule),
        )
        .route(
            "/inbox/appointments/{appointment}",
            post(appointments::answer),
        )
        .route("/portal/{id}/trend", get(pages::portal_trend))
        .route("/portal/{id}/{section}", get(pages::portal_section))
        .route("/portal/{id}/{section}/{rid}", get(pages::portal_document))
        .route(
            "/patients/{id}/messages/{root}",
            get(inbox::thread).post(inbox::reply),
        )
        .route("/patients/{id}/messages/{root}/assign", post(inbox::assign))
        .route("/inbox", get(inbox::inbox))
        .route("/inbox/refills/{task}", post(inbox::answer_refill))
        .route("/schedule", get(schedule::schedule))
        .route("/care-due", get(worklist::worklist))
        .route("/review", get(review::review))
        .route("/review/duplicates/{id}", post(review::decide))
        .route("/review/messages/{id}", post(review::message_decision))
        .route(
            "/auth/authorize",
            get(authorize::start).post(authorize::submit),
        )
        .route("/static/oxehr.css", get(stylesheet))
        .with_state(state)
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(peer_address))
}

/// The header that carries the client's address from [`peer_address`] to the pages
/// (for the audit trail). Whatever a request sends under this name is dropped first.
pub(crate) const PEER_HEADER: &str = "x-oxehr-peer-address";

/// The client's address, as [`peer_address`] put it on the request.
pub(crate) fn peer(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(PEER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Puts the connection's address where the pages read it, replacing any header of that
/// name the client sent (so it cannot be forged).
async fn peer_address(mut req: axum::extract::Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .and_then(|c| HeaderValue::from_str(&c.0.ip().to_string()).ok());
    let h = req.headers_mut();
    h.remove(PEER_HEADER);
    if let Some(p) = peer {
        h.insert(PEER_HEADER, p);
    }
    next.run(req).await
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn security_headers(req: axum::extract::Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
