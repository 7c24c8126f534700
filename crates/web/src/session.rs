//! Who is signed in: the session cookie (the same `oxehr_session` the FHIR API accepts),
//! checked by `oxehr_auth::Identity` on every request, and the sign-in and sign-out
//! forms. A session that has ended (idle too long, signed out elsewhere, the account
//! disabled) sends the browser to "your session ended", never to a page with data.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use oxehr_auth::identity::{
    set_cookie as cookie_text, SessionRefusal, SignInAttempt, SignInRefusal,
};
use oxehr_auth::Caller;

use crate::pages::{self, Page};
use crate::{csrf, WebState};

/// The session cookie (shared with the FHIR API's cookie sessions).
pub use oxehr_auth::identity::SESSION_COOKIE as COOKIE;
/// Largest form body a page accepts.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// A signed-in person, for one request.
#[derive(Debug, Clone)]
pub struct Signed {
    pub caller: Arc<Caller>,
    /// The token every form of this session carries.
    pub csrf: String,
}

/// A cookie's value from the request's headers.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    oxehr_auth::identity::cookie_value(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        name,
    )
}

pub(crate) fn set_cookie(
    state: &WebState,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    HeaderValue::from_str(&cookie_text(
        name,
        value,
        state.config.secure_cookies,
        max_age,
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("oxehr_session=; Max-Age=0; Path=/"))
}

/// Where a request without a live session goes: the sign-in page when it carried no
/// session, "your session ended" when it carried one that ended.
pub enum NotSignedIn {
    Anonymous,
    Ended,
    /// A form without this session's token: from another site, or an old page.
    BadForm,
    Unavailable,
}

impl IntoResponse for NotSignedIn {
    fn into_response(self) -> Response {
        match self {
            NotSignedIn::Anonymous => Redirect::to("/").into_response(),
            NotSignedIn::Ended => {
                let mut r = Redirect::to("/session-ended").into_response();
                r.headers_mut().insert(
                    header::SET_COOKIE,
                    HeaderValue::from_static(
                        "oxehr_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
                    ),
                );
                r
            }
            NotSignedIn::BadForm => pages::message(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "Nothing was done. Go back, reload the page and try again.",
            )
            .into_response(),
            NotSignedIn::Unavailable => pages::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "oxehr cannot check your session right now. Try again in a moment.",
            )
            .into_response(),
        }
    }
}

/// The signed-in person of a request. `form_token`: for a form post, the token it
/// carried (checked against the session before anything else happens).
pub async fn signed_in(
    state: &WebState,
    headers: &HeaderMap,
    form_token: Option<Option<&str>>,
) -> Result<Signed, NotSignedIn> {
    let Some(id) = cookie_value(headers, COOKIE) else {
        return Err(NotSignedIn::Anonymous);
    };
    let post = form_token.is_some();
    if let Some(sent) = form_token {
        if !csrf::session_token_matches(&id, sent) {
            // A form from elsewhere, or an old page: nothing is done.
            return Err(NotSignedIn::BadForm);
        }
    }
    let identity = state.identity.clone();
    let sid = id.clone();
    let found = tokio::task::spawn_blocking(move || {
        identity.identify_session(&sid, if post { "POST" } else { "GET" }, true)
    })
    .await;
    match found {
        Ok(Ok(mut caller)) => {
            // The connection's address, for the audit trail ([`crate::peer_address`]).
            caller.client = crate::peer(headers);
            Ok(Signed {
                caller: Arc::new(caller),
                csrf: csrf::session_token(&id),
            })
        }
        Ok(Err(SessionRefusal::Expired)) => Err(NotSignedIn::Ended),
        Ok(Err(_)) | Err(_) => Err(NotSignedIn::Unavailable),
    }
}

/// A form body's fields (`application/x-www-form-urlencoded`), bounded.
pub async fn read_form(req: Request) -> Result<(HeaderMap, Vec<(String, String)>), Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            pages::message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form was too large to read.",
            )
            .into_response()
        })?;
    let fields = form_urlencoded::parse(&bytes).into_owned().collect();
    Ok((parts.headers, fields))
}

/// The first value of a form field.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn sign_in_again(state: &WebState, username: &str, message: &str, status: StatusCode) -> Response {
    pages::sign_in(state, status, username, Some(message))
}

/// `POST /sign-in`.
pub async fn sign_in(State(state): State<WebState>, req: Request) -> Response {
    let (headers, fields) = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let address = crate::peer(&headers);
    let username = field(&fields, "username").unwrap_or("").to_owned();
    if !csrf::double_submit_matches(
        cookie_value(&headers, csrf::COOKIE).as_deref(),
        field(&fields, csrf::FIELD),
    ) {
        return sign_in_again(
            &state,
            &username,
            "This sign-in form has expired. Please sign in again.",
            StatusCode::FORBIDDEN,
        );
    }
    let password = field(&fields, "password").unwrap_or("").to_owned();
    let totp = field(&fields, "totp").unwrap_or("").to_owned();
    let identity = state.identity.clone();
    let name = username.clone();
    let result = tokio::task::spawn_blocking(move || {
        let signed = identity.sign_in(&SignInAttempt {
            user_name: &name,
            password: &password,
            totp: &totp,
            client_address: address.as_deref(),
            via: "web session",
        })?;
        let id = identity
            .start_session(&signed)
            .map_err(|_| SignInRefusal::Unavailable)?;
        Ok::<_, SignInRefusal>(id)
    })
    .await
    .unwrap_or(Err(SignInRefusal::Unavailable));
    match result {
        Ok(id) => {
            let mut r = Redirect::to("/").into_response();
            r.headers_mut()
                .append(header::SET_COOKIE, set_cookie(&state, COOKIE, &id, None));
            r.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&state, csrf::COOKIE, "", Some(0)),
            );
            r
        }
        Err(SignInRefusal::Wrong) => sign_in_again(
            &state,
            &username,
            "The user name, password or authenticator code is not right.",
            StatusCode::UNAUTHORIZED,
        ),
        Err(SignInRefusal::Throttled { wait_secs }) => sign_in_again(
            &state,
            &username,
            &format!(
                "Too many failed sign-ins. Try again in {} minute(s).",
                wait_secs.div_ceil(60).max(1)
            ),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(SignInRefusal::MfaNotEnrolled) => sign_in_again(
            &state,
            &username,
            "Your account must set up an authenticator app before it can sign in. Ask your administrator.",
            StatusCode::FORBIDDEN,
        ),
        Err(SignInRefusal::Unavailable) => sign_in_again(
            &state,
            &username,
            "Sign-in is unavailable right now. Try again in a moment.",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    }
}

/// `POST /sign-out`.
pub async fn sign_out(State(state): State<WebState>, req: Request) -> Response {
    let (headers, fields) = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Some(id) = cookie_value(&headers, COOKIE) {
        if csrf::session_token_matches(&id, field(&fields, csrf::FIELD)) {
            let identity = state.identity.clone();
            let _ = tokio::task::spawn_blocking(move || identity.end_session(&id)).await;
        }
    }
    let mut r = Redirect::to("/").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&state, COOKIE, "", Some(0)));
    r
}

/// `GET /session-ended`.
pub async fn ended() -> Page {
    pages::message(
        StatusCode::OK,
        "Your session ended",
        "You were signed out because the page was not used for a while, or you signed out elsewhere. Nothing you had not saved was kept.",
    )
}
