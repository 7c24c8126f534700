//! Who is calling: every FHIR request but `GET /metadata` carries a bearer access token
//! (`Authorization: Bearer …`), verified here (signature, algorithm, issuer, audience,
//! expiry) and checked against its account (it must exist and be enabled: disabling an
//! account stops its tokens at once) — or, for a backend service's token (`sub` =
//! `client:<id>`), its registered client — and against the revoked tokens
//! (`smart::token_is_current`). The verified caller is put in the request's
//! extensions for the handlers; what it may do is decided by `oxehr-records` with the
//! access policy.
//!
//! No credential: 401 with `WWW-Authenticate: Bearer` and an OperationOutcome (`login`).
//! A credential that fails: 401 too (`invalid_token`), saying why in general terms.
//! Tokens never appear in logs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use oxehr_auth::token::{self, SigningKey};
use oxehr_auth::{parse_scopes, Caller, Role};
use oxehr_fhir::IssueCode;

use crate::error::ApiError;
use crate::AppState;

/// How this server verifies its access tokens.
#[derive(Clone)]
pub struct AuthConfig {
    pub key: SigningKey,
    /// The issuer and audience tokens must name.
    pub issuer: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

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

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The caller a request's bearer token names, or the 401 to answer.
pub(crate) async fn caller_of(
    state: &AppState,
    authorization: Option<HeaderValue>,
    client: Option<String>,
) -> Result<Caller, Response> {
    let auth = &state.auth;
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
    let claims = token::verify(&auth.key, bearer, &auth.issuer, &auth.issuer, now_secs())
        .map_err(|e| unauthorized(&e.to_string(), Some("invalid_token")))?;
    let role = Role::parse(&claims.role).ok_or_else(|| {
        unauthorized(
            "the access token names an unknown role",
            Some("invalid_token"),
        )
    })?;
    let scopes = parse_scopes(&claims.scope).map_err(|_| {
        unauthorized(
            "the access token's scopes are malformed",
            Some("invalid_token"),
        )
    })?;
    // The account (or backend client) must still exist, be enabled and hold the
    // token's role, and the token must not be revoked.
    let store = state.records.store().clone();
    let c = claims.clone();
    let current = tokio::task::spawn_blocking(move || {
        let mut tx = store.read()?;
        crate::smart::token_is_current(tx.as_mut(), &c)
    })
    .await
    .map_err(|_| {
        ApiError::from(oxehr_records::RecordsError::Internal(
            "worker failed".into(),
        ))
        .into_response()
    })?
    .map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueCode::Timeout,
            "accounts are unavailable",
        )
        .into_response()
    })?;
    if !current {
        return Err(unauthorized(
            "the access token was revoked, or its account is disabled or no longer exists",
            Some("invalid_token"),
        ));
    }
    let mut caller = Caller::new(
        claims.sub,
        role,
        claims.org,
        claims.fhir_user,
        claims.patient,
        &scopes,
    );
    caller.client = client;
    Ok(caller)
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
        if let Some(id) = crate::smart::session::session_id(req.headers()) {
            let store = state.records.store().clone();
            let method = req.method().clone();
            let csrf_header = req.headers().contains_key("x-requested-with");
            let smart = state.config.smart.clone();
            let found = tokio::task::spawn_blocking(move || {
                crate::smart::session::session_caller(
                    &store,
                    &id,
                    &method,
                    csrf_header,
                    smart.clock.now(),
                    smart.session_idle_secs,
                )
            })
            .await;
            use crate::smart::session::Refused;
            return match found {
                Ok(Ok(mut caller)) => {
                    caller.client = client;
                    req.extensions_mut().insert(Arc::new(caller));
                    next.run(req).await
                }
                Ok(Err(Refused::Expired)) => unauthorized(
                    "the session has ended (idle too long, signed out, or the account is disabled); sign in again",
                    Some("invalid_token"),
                ),
                Ok(Err(Refused::NoCsrfHeader)) => ApiError::new(
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
    match caller_of(&state, authorization, client).await {
        Ok(caller) => {
            req.extensions_mut().insert(Arc::new(caller));
            next.run(req).await
        }
        Err(resp) => resp,
    }
}
