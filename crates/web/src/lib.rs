//! oxehr's pages for people: the clinician's chart now, the patient portal next.
//!
//! Server-rendered HTML (askama templates in `crates/web/templates/`), one small
//! hand-written stylesheet, no script needed and nothing fetched from elsewhere. Every
//! page reads and writes through `oxehr-records` as the signed-in person, under the same
//! access policy and audit as the FHIR API; sign-in and sessions are `oxehr-auth`'s. This
//! crate has no access rule of its own and never reaches the store.
//!
//! Every answer carries a strict Content-Security-Policy (no inline script or style, no
//! other origin), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and
//! `Cache-Control: no-store` for pages (they hold patient data).

pub mod csrf;
mod pages;

use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use pages::Page;

/// The policy of every page: only this origin's stylesheet, images and forms; no script
/// at all, no framing, no plugin.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../static/oxehr.css");

/// The pages' routes, to merge into the server's router.
pub fn router() -> Router {
    Router::new()
        .route("/", get(pages::sign_in_page))
        .route("/static/oxehr.css", get(stylesheet))
        .layer(middleware::from_fn(security_headers))
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
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
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
