//! The SMART App Launch 2.x / OAuth 2.0 authorization server's machine endpoints, built
//! into the FHIR server: discovery (`/.well-known/smart-configuration`), and the token,
//! revocation and introspection endpoints ([`token`]), including backend services'
//! `client_credentials` grant with a signed client assertion. The authorization
//! endpoint (`/auth/authorize`: the pages where a person signs in and consents) is the
//! web crate's, like every page; discovery advertises it beside these. A person signs
//! in to oxehr itself at `/` (`POST /sign-in`, `POST /sign-out`), also the web crate's.
//!
//! These routes sit outside the bearer-token middleware (they are how a token is
//! obtained). They parse HTTP and call `oxehr_auth::Identity` (the grants, revocation,
//! introspection).
//!
//! Errors, as OAuth wants them: RFC 6749 §5.2 JSON (`{"error": "invalid_grant",
//! "error_description": …}`), 400, or 401 for `invalid_client`, with `Cache-Control:
//! no-store`. No message carries a password, code, token or verifier.

mod token;

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use oxehr_auth::identity::GrantError;
use oxehr_auth::Identity;

use crate::AppState;

/// The URLs of the authorization server, derived from the FHIR base URL: the endpoints
/// live beside `/fhir` (`https://ehr.example/fhir` → `https://ehr.example/auth/token`).
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    /// The FHIR base URL, without a trailing slash; the `aud` apps must ask for, and
    /// the `iss` of authorization responses (RFC 9207).
    pub fhir_base: String,
    pub authorize: String,
    pub token: String,
    pub revoke: String,
    pub introspect: String,
}

impl Urls {
    pub(crate) fn new(base_url: &str) -> Urls {
        let fhir_base = base_url.trim_end_matches('/').to_owned();
        let root = fhir_base.strip_suffix("/fhir").unwrap_or(&fhir_base);
        Urls {
            authorize: format!("{root}/auth/authorize"),
            token: format!("{root}/auth/token"),
            revoke: format!("{root}/auth/revoke"),
            introspect: format!("{root}/auth/introspect"),
            fhir_base,
        }
    }
}

/// What the authorization server's handlers share.
#[derive(Clone)]
pub(crate) struct Smart {
    pub app: AppState,
    pub urls: Arc<Urls>,
}

impl Smart {
    pub fn identity(&self) -> &Identity {
        &self.app.identity
    }
}

/// The routes: discovery and `/auth/{token,revoke,introspect}`, outside the bearer-token
/// middleware.
pub(crate) fn router(app: AppState) -> Router {
    let state = Smart {
        urls: Arc::new(Urls::new(&app.config.base_url)),
        app,
    };
    Router::new()
        .route("/.well-known/smart-configuration", get(smart_configuration))
        .route(
            "/fhir/.well-known/smart-configuration",
            get(smart_configuration),
        )
        .route("/auth/token", post(token::token))
        .route("/auth/revoke", post(token::revoke))
        .route("/auth/introspect", post(token::introspect))
        .with_state(state)
}

/// `GET /.well-known/smart-configuration` (SMART App Launch 2.x §2.1).
async fn smart_configuration(axum::extract::State(s): axum::extract::State<Smart>) -> Response {
    let u = &s.urls;
    let body = json!({
        "issuer": u.fhir_base,
        "authorization_endpoint": u.authorize,
        "token_endpoint": u.token,
        "revocation_endpoint": u.revoke,
        "introspection_endpoint": u.introspect,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": [
            "launch/patient", "offline_access", "online_access",
            "patient/*.rs", "patient/*.cruds", "patient/*.read",
            "user/*.rs", "user/*.cruds", "user/*.read", "user/*.write",
            "system/*.rs", "system/*.cruds", "system/*.read",
            // Granular scopes (read and search of what matches; any search parameter of
            // the type may narrow a scope: docs/access.md). US Core's, as examples.
            "patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|encounter-diagnosis",
            "patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item",
            "patient/Condition.rs?category=http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern",
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|social-history",
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|survey",
        ],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-asymmetric",
            "context-standalone-patient",
            "permission-offline",
            "permission-online",
            "permission-patient",
            "permission-user",
            "permission-v1",
            "permission-v2",
        ],
    });
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

/// The `rest.security` of the CapabilityStatement: SMART on FHIR, with the endpoints in
/// the `oauth-uris` extension (clients that read them from `/metadata` rather than from
/// `.well-known`, such as the Python `fhirclient`).
pub(crate) fn capability_security(base_url: &str) -> Value {
    let u = Urls::new(base_url);
    json!({
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [
                {"url": "authorize", "valueUri": u.authorize},
                {"url": "token", "valueUri": u.token},
                {"url": "revoke", "valueUri": u.revoke},
                {"url": "introspect", "valueUri": u.introspect},
            ]
        }],
        "service": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR"
            }]
        }],
        "description": "SMART App Launch 2.0: authorization code with PKCE (S256) for apps, client_credentials with a signed assertion for backend services; see /.well-known/smart-configuration"
    })
}

/// An OAuth error answer (RFC 6749 §5.2).
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        let status = match error {
            "invalid_client" | "invalid_token" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }
}

impl From<GrantError> for OAuthError {
    fn from(e: GrantError) -> OAuthError {
        OAuthError::new(e.error, e.description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        no_store(self.status, body)
    }
}

/// A JSON answer that no cache may keep (tokens, RFC 6749 §5.1), readable by browser
/// apps on other origins.
pub(crate) fn no_store(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    set_no_store(resp.headers_mut());
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

pub(crate) fn set_no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Runs `f` on a blocking thread (storage, Argon2).
pub(crate) async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, OAuthError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| OAuthError::new("server_error", "internal error; see the server log"))
}
