//! The SMART App Launch 2.x / OAuth 2.0 authorization server, built into the FHIR
//! server: discovery (`/.well-known/smart-configuration`), the authorization code flow
//! with PKCE for apps a person signs in to ([`authorize`]: login and consent pages), and
//! the token, revocation and introspection endpoints ([`token`]), including backend
//! services' `client_credentials` grant with a signed client assertion.
//!
//! These routes sit outside the bearer-token middleware (they are how a token is
//! obtained). The rules (which scopes a grant gets, PKCE, assertions) are
//! `oxehr_auth::oauth`; the rows are `oxehr_store::oauth`.
//!
//! Errors, as OAuth wants them: the token, revocation and introspection endpoints answer
//! RFC 6749 §5.2 JSON (`{"error": "invalid_grant", "error_description": …}`), 400, or
//! 401 for `invalid_client`, with `Cache-Control: no-store`. The authorization endpoint
//! redirects errors back to the app (`?error=…&state=…`), except when the client or its
//! redirect URI is unknown: then it shows an error page and redirects nowhere
//! (RFC 6749 §4.1.2.1). No message carries a password, code, token or verifier.

mod authorize;
pub(crate) mod session;
mod token;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use oxehr_auth::token::Claims;
use oxehr_auth::{Throttle, ThrottlePolicy};
use oxehr_store::{ReadTx, StoreError};

use crate::AppState;

/// A clock in Unix seconds. The server uses the system's; tests move an adjustable one
/// forward to see codes expire and lock-outs pass without sleeping.
#[derive(Clone, Default)]
pub struct Clock {
    ahead: Option<Arc<AtomicU64>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ahead {
            None => f.write_str("Clock(system)"),
            Some(a) => write!(f, "Clock(system + {}s)", a.load(Ordering::Relaxed)),
        }
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { ahead: None }
    }

    /// The system clock plus the seconds in `ahead`, which the caller may increase.
    pub fn ahead_by(ahead: Arc<AtomicU64>) -> Clock {
        Clock { ahead: Some(ahead) }
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        system + self.ahead.as_ref().map_or(0, |a| a.load(Ordering::Relaxed))
    }
}

/// Settings of the authorization server.
#[derive(Debug, Clone)]
pub struct SmartConfig {
    /// Lifetime of an access token issued to an app a person signed in to (default 1 h).
    pub access_token_secs: u64,
    /// Lifetime of a backend service's access token (default 300 s, as SMART Backend
    /// Services recommends).
    pub backend_token_secs: u64,
    /// Lifetime of an authorization code (default 60 s).
    pub code_secs: u64,
    /// Lifetime of a refresh token granted with `offline_access` (default 30 days),
    /// renewed at each rotation.
    pub offline_refresh_secs: u64,
    /// Lifetime of a refresh token granted with `online_access` (default 8 h). There are
    /// no server-side sessions, so "while the user is online" is approximated by this.
    pub online_refresh_secs: u64,
    /// Lock-out after failed sign-ins, per user name and per client address.
    pub login_throttle: ThrottlePolicy,
    /// A web session ends after this many seconds without a request (default 900).
    pub session_idle_secs: u64,
    pub clock: Clock,
}

impl Default for SmartConfig {
    fn default() -> Self {
        SmartConfig {
            access_token_secs: 3600,
            backend_token_secs: 300,
            code_secs: 60,
            offline_refresh_secs: 30 * 86_400,
            online_refresh_secs: 8 * 3600,
            login_throttle: ThrottlePolicy::default(),
            session_idle_secs: 15 * 60,
            clock: Clock::system(),
        }
    }
}

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
    pub config: Arc<SmartConfig>,
    pub urls: Arc<Urls>,
    /// Failed sign-ins, in memory: a restart forgets them (acceptable for a lock-out
    /// measured in minutes; several servers each keep their own).
    pub throttle: Arc<Mutex<Throttle>>,
}

impl Smart {
    pub fn now(&self) -> u64 {
        self.config.clock.now()
    }

    pub fn store(&self) -> &Arc<dyn oxehr_store::Store> {
        self.app.records.store()
    }
}

/// The routes: discovery and `/auth/*`, outside the bearer-token middleware.
pub(crate) fn router(app: AppState) -> Router {
    let config = Arc::new(app.config.smart.clone());
    let state = Smart {
        urls: Arc::new(Urls::new(&app.config.base_url)),
        throttle: Arc::new(Mutex::new(Throttle::new(config.login_throttle))),
        config,
        app,
    };
    Router::new()
        .route("/.well-known/smart-configuration", get(smart_configuration))
        .route(
            "/fhir/.well-known/smart-configuration",
            get(smart_configuration),
        )
        .route(
            "/auth/authorize",
            get(authorize::start).post(authorize::submit),
        )
        .route("/auth/login", get(session::page).post(session::login))
        .route("/auth/logout", post(session::logout))
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

/// Whether an access token (already verified) still stands: its subject — an account,
/// or `client:<id>` for a backend service — exists, is enabled and holds the token's
/// role, and its `jti` is not revoked. Two indexed lookups in one snapshot; the bearer
/// middleware asks this on every request.
pub(crate) fn token_is_current<T: ReadTx + ?Sized>(
    tx: &mut T,
    claims: &Claims,
) -> Result<bool, StoreError> {
    let subject_ok = match claims.sub.strip_prefix("client:") {
        Some(id) => {
            claims.role == oxehr_auth::Role::SystemAdmin.code()
                && oxehr_store::oauth::get_client(tx, id)?
                    .is_some_and(|c| c.kind == "backend" && !c.disabled)
        }
        None => oxehr_store::accounts::get(tx, &claims.sub)?
            .is_some_and(|a| !a.disabled && a.role == claims.role),
    };
    Ok(subject_ok && !oxehr_store::oauth::is_access_revoked(tx, &claims.jti)?)
}

/// Parses an `application/x-www-form-urlencoded` body or query. A parameter given twice
/// is refused (RFC 6749 §3.1); empty values count as absent.
pub(crate) fn parse_form(bytes: &[u8]) -> Result<Form, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(bytes) {
        if pairs.iter().any(|(name, _)| *name == k) {
            return Err(format!("the parameter {k} is given more than once"));
        }
        pairs.push((k.into_owned(), v.into_owned()));
    }
    Ok(Form(pairs))
}

/// Form parameters by name.
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
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

    pub fn storage(e: StoreError) -> OAuthError {
        tracing::error!(error = %e, "authorization server storage failure");
        OAuthError::new(
            "temporarily_unavailable",
            "storage is unavailable; try again",
        )
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

/// Runs a write job that answers `R`, retrying a few times when a concurrent
/// transaction conflicts (PostgreSQL).
pub(crate) fn write<R: Send + 'static>(
    store: &Arc<dyn oxehr_store::Store>,
    job: impl Fn(&mut dyn oxehr_store::Tx) -> Result<R, StoreError> + Send + Sync + 'static,
) -> Result<R, StoreError> {
    let job = Arc::new(job);
    let mut attempts = 0;
    loop {
        let j = job.clone();
        let out = store.write(Box::new(move |tx| Ok(Box::new(j(tx)?))));
        match out {
            Err(StoreError::Conflict) if attempts < 3 => attempts += 1,
            Err(e) => return Err(e),
            Ok(any) => {
                return any
                    .downcast::<R>()
                    .map(|b| *b)
                    .map_err(|_| StoreError::Backend("unexpected job output".into()))
            }
        }
    }
}

/// The client's network address, for the sign-in throttle.
pub(crate) fn client_address(req: &axum::extract::Request) -> Option<String> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}
