//! Web sessions, for people using oxehr in a browser (the chart and the portal): sign in
//! at `/auth/login` (user name, password, authenticator code when the account has one;
//! the same checks, throttle and audit as the authorization endpoint) and the browser
//! holds a session cookie that FHIR requests may carry instead of a bearer token. A
//! session ends after it has been idle for the configured time (default 15 minutes), at
//! `POST /auth/logout`, or when the account is disabled (`oxehr_auth::identity::session`).
//!
//! The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure` when the server's
//! base URL is `https`. A FHIR request authenticated by the cookie that is not a GET or
//! HEAD must also carry `X-Requested-With` (which a cross-site form cannot send), so a
//! forged cross-site request cannot write.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::authorize::verify_sign_in;
use super::{blocking, client_address, html, pages, parse_form, Smart};

use oxehr_auth::identity::{cookie_value, set_cookie, SESSION_COOKIE};

/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;

fn login_form(message: Option<&str>, status: StatusCode) -> Response {
    html(status, pages::session_sign_in(message))
}

/// `GET /auth/login`.
pub(crate) async fn page() -> Response {
    login_form(None, StatusCode::OK)
}

/// The session id a request's cookie carries.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<String> {
    cookie_value(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        SESSION_COOKIE,
    )
}

fn cookie(s: &Smart, value: &str, max_age: Option<u64>) -> HeaderValue {
    let secure = s.urls.fhir_base.starts_with("https://");
    HeaderValue::from_str(&set_cookie(SESSION_COOKIE, value, secure, max_age))
        .unwrap_or_else(|_| HeaderValue::from_static("oxehr_session=; Max-Age=0"))
}

/// `POST /auth/login`: checks the form and starts a session.
pub(crate) async fn login(State(s): State<Smart>, req: Request) -> Response {
    let address = client_address(&req);
    let body = match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return login_form(
                Some("The form is too large."),
                StatusCode::PAYLOAD_TOO_LARGE,
            )
        }
    };
    let Ok(form) = parse_form(&body) else {
        return login_form(Some("The form could not be read."), StatusCode::BAD_REQUEST);
    };
    let account = match verify_sign_in(&s, &form, address, "web session").await {
        Ok(a) => a,
        Err((message, status)) => return login_form(Some(&message), status),
    };
    let identity = s.identity().clone();
    let name = account.name.clone();
    let started = blocking(move || identity.start_session(&account)).await;
    let Ok(Ok(id)) = started else {
        return login_form(
            Some("Sign-in is unavailable right now; try again."),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    };
    let idle_minutes = s.identity().config().session_idle_secs / 60;
    let mut resp = html(StatusCode::OK, pages::signed_in(&name, idle_minutes));
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie(&s, &id, None));
    resp
}

/// `POST /auth/logout`: ends the session the cookie names.
pub(crate) async fn logout(State(s): State<Smart>, req: Request) -> Response {
    if let Some(id) = session_id(req.headers()) {
        let identity = s.identity().clone();
        let _ = blocking(move || identity.end_session(&id)).await;
    }
    let mut resp = html(StatusCode::OK, pages::signed_out());
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie(&s, "", Some(0)));
    resp
}
