//! The token endpoint (RFC 6749 §3.2), token revocation (RFC 7009) and introspection
//! (RFC 7662), over HTTP: the form is read and checked here, the grants are
//! `oxehr_auth::Identity::{token, revoke, introspect}` (see `oxehr_auth::identity::grants`
//! for what each grant checks and commits).

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use oxehr_auth::identity::{RevokeRequest, TokenRequest};
use oxehr_auth::oauth::Params as Form;

use super::{blocking, no_store, OAuthError, Smart};

/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

type Answer = Result<Value, OAuthError>;

/// Reads the form body of a token, revocation or introspection request.
async fn read_form(req: Request) -> Result<Form, OAuthError> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::new(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let body = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|_| OAuthError::new("invalid_request", "the body is too large"))?;
    Form::parse(&body).map_err(|why| OAuthError::new("invalid_request", why))
}

fn answer(result: Answer) -> Response {
    match result {
        Ok(body) => no_store(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
}

fn param(form: &Form, name: &str) -> Option<String> {
    form.get(name).map(str::to_owned)
}

/// `POST /auth/token`.
pub(crate) async fn token(State(s): State<Smart>, req: Request) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION) {
        // client_secret_basic: this server registers no client secrets.
        return OAuthError::new(
            "invalid_client",
            "client secrets are not supported: public clients send client_id, backend services a client_assertion",
        )
        .into_response();
    }
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let request = TokenRequest {
        grant_type: param(&form, "grant_type"),
        client_id: param(&form, "client_id"),
        code: param(&form, "code"),
        redirect_uri: param(&form, "redirect_uri"),
        code_verifier: param(&form, "code_verifier"),
        refresh_token: param(&form, "refresh_token"),
        scope: param(&form, "scope"),
        client_assertion_type: param(&form, "client_assertion_type"),
        client_assertion: param(&form, "client_assertion"),
    };
    let identity = s.identity().clone();
    let endpoint = s.urls.token.clone();
    let result = blocking(move || identity.token(&request, &endpoint)).await;
    answer(result.and_then(|r| r.map_err(OAuthError::from)))
}

/// `POST /auth/revoke` (RFC 7009). Unknown, expired or malformed tokens answer 200 as
/// well (§2.2).
pub(crate) async fn revoke(State(s): State<Smart>, req: Request) -> Response {
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let request = RevokeRequest {
        token: param(&form, "token"),
        client_id: param(&form, "client_id"),
        client_assertion_type: param(&form, "client_assertion_type"),
        client_assertion: param(&form, "client_assertion"),
    };
    let identity = s.identity().clone();
    let endpoint = s.urls.token.clone();
    let result = blocking(move || identity.revoke(&request, &endpoint)).await;
    answer(result.and_then(|r| r.map(|()| json!({})).map_err(OAuthError::from)))
}

/// `POST /auth/introspect` (RFC 7662). The caller authenticates with a bearer access
/// token of its own; what it may see of the token is the identity service's rule.
pub(crate) async fn introspect(State(s): State<Smart>, req: Request) -> Response {
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let caller = match crate::auth::caller_of(&s.app, authorization, None).await {
        Ok(c) => c,
        Err(_) => {
            let mut resp =
                OAuthError::new("invalid_token", "introspection needs a valid bearer token")
                    .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"oxehr\""),
            );
            return resp;
        }
    };
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let Some(value) = param(&form, "token") else {
        return OAuthError::new("invalid_request", "token is required").into_response();
    };
    let identity = s.identity().clone();
    let result = blocking(move || identity.introspect(&caller, &value)).await;
    answer(result.and_then(|r| r.map_err(OAuthError::from)))
}
