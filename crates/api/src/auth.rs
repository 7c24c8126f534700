//! Who is calling: every FHIR request but `GET /metadata` carries a bearer access token
//! (`Authorization: Bearer …`) or a browser's session cookie, which
//! `oxehr_auth::Identity` turns into a caller (`identify_bearer`: signature, algorithm,
//! issuer, audience, expiry, the account or backend client still enabled, not revoked;
//! `identify_session`). The verified caller is put in the request's extensions for the
//! handlers; what it may do is decided by `oxehr-records` with the access policy.
//!
//! The session cookie is the one a person gets by signing in to the pages (`/`, `POST
//! /sign-in`; the web crate's). A FHIR request authenticated by it that is not a GET or
//! HEAD must also carry `X-Requested-With` (which a cross-site form cannot send), so a
//! forged cross-site request cannot write.
//!
//! No credential: 401 with `WWW-Authenticate: Bearer` and an OperationOutcome (`login`).
//! A credential that fails: 401 too (`invalid_token`), saying why in general terms.
//! Tokens never appear in logs.
//!
//! Rate limits (`limits`) are applied here, once the caller is known: by account, or by
//! address for credentials that fail (429 with `Retry-After`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use oxehr_auth::identity::{cookie_value, BearerRefusal, SessionRefusal, SESSION_COOKIE};
use oxehr_auth::Caller;
use oxehr_fhir::IssueCode;

use crate::error::ApiError;
use crate::AppState;

fn unauthorized(why: &str, error: Option<&str>) -> Response {
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, IssueCode::Login, why).into_response();
    let challenge = match error {
        Some(e) => format!("Bearer realm=\"oxehr\", error=\"{e}\""),
        None => "Bearer realm=\"oxehr\"".to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// The caller a request's bearer token names, or the 401 to answer.
pub(crate) async fn caller_of(
    state: &AppState,
    authorization: Option<HeaderValue>,
    client: Option<String>,
) -> Result<Caller, Response> {
    let Some(value) = authorization else {
        return Err(unauthorized(
            "this request needs an access token (Authorization: Bearer …)",
            None,
        ));
    };
    let bearer = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(bearer) = bearer else {
        return Err(unauthorized(
            "the Authorization header must be 'Bearer <access token>'",
            Some("invalid_request"),
        ));
    };
    // A token found current a moment ago, or one that does not verify, is answered
    // here; otherwise the store is asked, on a thread that may block.
    let found = match state.identity.identify_bearer_fast(bearer) {
        Some(found) => found,
        None => {
            let identity = state.identity.clone();
            let token = bearer.to_owned();
            tokio::task::spawn_blocking(move || identity.identify_bearer(&token))
                .await
                .map_err(|_| {
                    ApiError::from(oxehr_records::RecordsError::Internal(
                        "worker failed".into(),
                    ))
                    .into_response()
                })?
        }
    };
    let mut caller = found.map_err(|refusal| match refusal {
        BearerRefusal::Unavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueCode::Timeout,
            "accounts are unavailable",
        )
        .into_response(),
        refused => unauthorized(&refused.to_string(), Some("invalid_token")),
    })?;
    caller.client = client;
    Ok(caller)
}

/// The session id a request's cookie carries.
fn session_id(headers: &HeaderMap) -> Option<String> {
    cookie_value(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        SESSION_COOKIE,
    )
}

/// Middleware: authenticates the request and hands its [`Caller`] to the handler.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // Exactly the base's `metadata` (nested routers see the path without `/fhir`):
    // `Patient/metadata` is a read like any other.
    if matches!(path, "/metadata" | "/fhir/metadata") && req.method() == axum::http::Method::GET {
        return next.run(req).await;
    }
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    // A browser's session cookie stands in for a token when no token is given.
    if authorization.is_none() {
        if let Some(id) = session_id(req.headers()) {
            let identity = state.identity.clone();
            let method = req.method().clone();
            let csrf_header = req.headers().contains_key("x-requested-with");
            let found = tokio::task::spawn_blocking(move || {
                identity.identify_session(&id, method.as_str(), csrf_header)
            })
            .await;
            return match found {
                Ok(Ok(mut caller)) => {
                    caller.client = client;
                    if let Some(resp) = over_limit(&state, &caller) {
                        return resp;
                    }
                    req.extensions_mut().insert(Arc::new(caller));
                    next.run(req).await
                }
                Ok(Err(SessionRefusal::Expired)) => unauthorized(
                    "the session has ended (idle too long, signed out, or the account is disabled); sign in again",
                    Some("invalid_token"),
                ),
                Ok(Err(SessionRefusal::NoCsrfHeader)) => ApiError::new(
                    StatusCode::FORBIDDEN,
                    IssueCode::Forbidden,
                    "a request that changes data with a session cookie must send X-Requested-With",
                )
                .into_response(),
                _ => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    IssueCode::Timeout,
                    "sessions are unavailable",
                )
                .into_response(),
            };
        }
    }
    // An address whose credentials keep failing is refused before they are checked.
    let failures = client.as_deref().map(|ip| format!("failed:{ip}"));
    if let (Some(limiter), Some(key)) = (&state.limiter, &failures) {
        if let Err(secs) = limiter.check(key, Instant::now()) {
            return throttled_counted(&state, secs);
        }
    }
    match caller_of(&state, authorization, client).await {
        Ok(caller) => {
            if let Some(resp) = over_limit(&state, &caller) {
                return resp;
            }
            req.extensions_mut().insert(Arc::new(caller));
            next.run(req).await
        }
        Err(resp) => {
            if let (Some(limiter), Some(key)) = (&state.limiter, &failures) {
                // Counted, not refused: this answer is the 401 already decided.
                let _ = limiter.take(key, Instant::now());
            }
            resp
        }
    }
}

/// The 429 to answer when the caller's account has used its requests (`limits`).
fn over_limit(state: &AppState, caller: &Caller) -> Option<Response> {
    let limiter = state.limiter.as_ref()?;
    limiter
        .take(&format!("user:{}", caller.user), Instant::now())
        .err()
        .map(|secs| throttled_counted(state, secs))
}

/// 429 with an OperationOutcome and `Retry-After` (`limits`), counted for `/metrics`.
fn throttled_counted(state: &AppState, secs: u64) -> Response {
    state.metrics.limited();
    throttled(secs)
}

/// 429 with an OperationOutcome and `Retry-After` (`limits`).
fn throttled(secs: u64) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        IssueCode::Throttled,
        format!("too many requests from this client; try again in {secs} s"),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}
