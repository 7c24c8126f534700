//! The authorization endpoint of oxehr's SMART / OAuth 2.0 authorization server
//! (RFC 6749 §4.1 with PKCE, SMART standalone launch): the pages a person sees when an
//! app sends their browser to `GET /auth/authorize?…`. They sign in (user name,
//! password, and the authenticator code when the account has one), approve the scopes,
//! and the browser is redirected back to the app with a single-use code. The machine
//! endpoints (discovery, token, revocation, introspection) are the API's; the rules
//! (sign-in, the grant, the code) are `oxehr_auth::Identity`'s.
//!
//! There are no server-side sessions or cookies here. Each page carries a **handle**:
//! the request's parameters (and, on the consent page, who signed in and what they
//! grant), sealed with a key derived from the token signing key and valid for minutes.
//! A form is accepted only with a valid handle, so a forged cross-site POST cannot
//! approve anything, and a consent handle works once (its `jti` is recorded).
//!
//! Errors, as OAuth wants them: an error with the request goes back to the app
//! (`?error=…&state=…&iss=…`), except when the client or its redirect URI is unknown:
//! then an error page, and a redirect nowhere (RFC 6749 §4.1.2.1). No message carries a
//! password, code or verifier.
//!
//! The pages get the crate's headers, with one change: `form-action` also names the
//! app's redirect origin (and this endpoint's configured origin). Chromium and Safari
//! check `form-action` against the redirect that answers a form, and these forms end
//! in a redirect to the app ([`policy`]).

mod answers;
mod handle;
mod pages;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use oxehr_auth::identity::{
    Client, ClientRefusal, CodeRequest, SignInAttempt, SignInRefusal, SignedIn,
};
use oxehr_auth::oauth::{self, Params};

use crate::{chart, display, WebState};
use answers::{error_page, redirect, redirect_error};
use handle::{open, seal, Handle};
use pages::{consent_page, sign_in_page};

/// How long the sign-in page's handle is valid.
const LOGIN_HANDLE_SECS: u64 = 600;
/// How long the consent page's handle is valid.
const CONSENT_HANDLE_SECS: u64 = 300;
/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The authorization server's URLs this endpoint needs, from the FHIR base URL (the
/// endpoints sit beside `/fhir`, as the API's discovery document says).
pub(super) struct Urls {
    /// The FHIR base URL without a trailing slash: the `aud` apps must ask for, and the
    /// `iss` of authorization responses (RFC 9207).
    pub(super) fhir_base: String,
    /// This endpoint, absolute: the pages' form action.
    pub(super) authorize: String,
}

impl Urls {
    fn of(state: &WebState) -> Urls {
        let fhir_base = state.config.base_url.trim_end_matches('/').to_owned();
        let root = fhir_base.strip_suffix("/fhir").unwrap_or(&fhir_base);
        Urls {
            authorize: format!("{root}/auth/authorize"),
            fhir_base,
        }
    }
}

/// `GET /auth/authorize`: checks the request and shows the sign-in page.
pub async fn start(State(state): State<WebState>, req: Request) -> Response {
    let urls = Urls::of(&state);
    let q = match Params::parse(req.uri().query().unwrap_or("").as_bytes()) {
        Ok(q) => q,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, &why),
    };
    let (client_id, redirect_uri) = match (q.get("client_id"), q.get("redirect_uri")) {
        (Some(c), Some(r)) => (c.to_owned(), r.to_owned()),
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "client_id and redirect_uri are required",
            )
        }
    };
    let client = match known_client(&state, &client_id, &redirect_uri).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let app_state = q.get("state").map(str::to_owned);
    let back = |error: &str, why: &str| {
        redirect_error(
            &urls,
            &redirect_uri,
            app_state.as_deref(),
            error,
            why,
            StatusCode::FOUND,
        )
    };
    if q.get("response_type") != Some("code") {
        return back("unsupported_response_type", "response_type must be code");
    }
    match (q.get("code_challenge"), q.get("code_challenge_method")) {
        (Some(c), Some("S256")) if oauth::is_s256_challenge(c) => {}
        (Some(_), Some("S256")) => return back("invalid_request", "code_challenge is malformed"),
        _ => {
            return back(
                "invalid_request",
                "PKCE is required: code_challenge with code_challenge_method=S256",
            )
        }
    }
    let aud_ok = q.get("aud").is_some_and(|a| {
        let a = a.trim_end_matches('/');
        a == urls.fhir_base || a == state.identity.issuer()
    });
    if !aud_ok {
        return back("invalid_request", "aud must be this server's FHIR base URL");
    }
    let scope = q.get("scope").unwrap_or("");
    if oauth::parse_requested(scope).is_err() {
        return back("invalid_scope", "a requested scope is malformed");
    }
    let handle = Handle {
        kind: "login".into(),
        exp: state.identity.now() + LOGIN_HANDLE_SECS,
        jti: oxehr_auth::token::new_token_id(),
        client_id,
        redirect_uri,
        state: app_state,
        scope: scope.to_owned(),
        code_challenge: q.get("code_challenge").unwrap_or("").to_owned(),
        account: None,
        granted: None,
        patient: None,
    };
    match seal(&state, &handle) {
        Ok(sealed) => sign_in_page(&urls, &client, &handle, &sealed, "", None, StatusCode::OK),
        Err(resp) => *resp,
    }
}

/// The registered, enabled public client the request names, with its redirect URI
/// registered exactly; else the error page (never a redirect to an unchecked URI).
async fn known_client(
    state: &WebState,
    client_id: &str,
    redirect_uri: &str,
) -> Result<Client, Response> {
    let identity = state.identity.clone();
    let (id, uri) = (client_id.to_owned(), redirect_uri.to_owned());
    tokio::task::spawn_blocking(move || identity.authorization_client(&id, &uri))
        .await
        .map_err(|_| error_page(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
        .map_err(|refusal| {
            let status = match refusal {
                ClientRefusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                ClientRefusal::Unknown | ClientRefusal::RedirectNotRegistered => {
                    StatusCode::BAD_REQUEST
                }
            };
            error_page(status, &refusal.to_string())
        })
}

/// `POST /auth/authorize`: the sign-in form or the consent form.
pub async fn submit(State(state): State<WebState>, req: Request) -> Response {
    let urls = Urls::of(&state);
    let address = crate::peer(req.headers());
    let body = match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return error_page(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"),
    };
    let form = match Params::parse(&body) {
        Ok(f) => f,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, &why),
    };
    let sealed = form.get("handle").unwrap_or("");
    let Some(handle) = open(&state, "login", sealed).or_else(|| open(&state, "consent", sealed))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "this page has expired or was altered; start again from the app",
        );
    };
    // The client may have been disabled since the page was shown.
    let client = match known_client(&state, &handle.client_id, &handle.redirect_uri).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    match (handle.kind.as_str(), form.get("action")) {
        ("login", Some("login")) => sign_in(&state, &urls, &client, handle, &form, address).await,
        ("consent", Some("approve")) => approve(&state, &urls, handle).await,
        ("consent", Some("deny")) => redirect_error(
            &urls,
            &handle.redirect_uri,
            handle.state.as_deref(),
            "access_denied",
            "the user denied the request",
            StatusCode::SEE_OTHER,
        ),
        _ => error_page(StatusCode::BAD_REQUEST, "unexpected form"),
    }
}

/// Checks the sign-in form with the identity service (throttle and audit included);
/// the account, or the message and status to show.
async fn verify_sign_in(
    state: &WebState,
    form: &Params,
    address: Option<String>,
    client: &Client,
) -> Result<SignedIn, (String, StatusCode)> {
    let identity = state.identity.clone();
    let name = form.get("username").unwrap_or("").to_owned();
    let password = form.get("password").unwrap_or("").to_owned();
    let code = form.get("totp").unwrap_or("").to_owned();
    let via = format!("client {}", client.client_id);
    let signed = tokio::task::spawn_blocking(move || {
        identity.sign_in(&SignInAttempt {
            user_name: &name,
            password: &password,
            totp: &code,
            client_address: address.as_deref(),
            via: &via,
        })
    })
    .await
    .unwrap_or(Err(SignInRefusal::Unavailable));
    signed.map_err(|refusal| match refusal {
        SignInRefusal::Throttled { wait_secs } => (
            format!("Too many failed sign-ins. Try again in {wait_secs} seconds."),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        SignInRefusal::Wrong => (
            "Wrong user name, password or authenticator code.".to_owned(),
            StatusCode::UNAUTHORIZED,
        ),
        SignInRefusal::MfaNotEnrolled => (
            "This account must enrol an authenticator before it can sign in to apps; ask your administrator.".to_owned(),
            StatusCode::FORBIDDEN,
        ),
        SignInRefusal::Unavailable => (
            "Sign-in is unavailable right now; try again.".to_owned(),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    })
}

/// The sign-in form was posted: the consent page, the sign-in page again with why, or
/// back to the app when nothing can be granted.
async fn sign_in(
    state: &WebState,
    urls: &Urls,
    client: &Client,
    handle: Handle,
    form: &Params,
    address: Option<String>,
) -> Response {
    let username = form.get("username").unwrap_or("");
    let again = |message: &str, status: StatusCode| match seal(state, &handle) {
        Ok(sealed) => sign_in_page(
            urls,
            client,
            &handle,
            &sealed,
            username,
            Some(message),
            status,
        ),
        Err(resp) => *resp,
    };
    let account = match verify_sign_in(state, form, address, client).await {
        Ok(a) => a,
        Err((message, status)) => return again(&message, status),
    };
    let Some(role) = account.role else {
        return again(
            "This account cannot sign in to apps.",
            StatusCode::FORBIDDEN,
        );
    };
    let grant = client.user_grant(role, &handle.scope);
    if !grant.grants_resources() {
        return redirect_error(
            urls,
            &handle.redirect_uri,
            handle.state.as_deref(),
            "invalid_scope",
            "none of the requested scopes can be granted to this account",
            StatusCode::SEE_OTHER,
        );
    }
    // A patient's token always carries their own id: it is what their access rests on.
    let patient = account.patient.clone();
    let patient_name = match &patient {
        Some(id) => Some(patient_display(state, &account, id).await),
        None => None,
    };
    let consent = Handle {
        kind: "consent".into(),
        exp: state.identity.now() + CONSENT_HANDLE_SECS,
        jti: oxehr_auth::token::new_token_id(),
        account: Some(account.name.clone()),
        granted: Some(grant.scope()),
        patient,
        ..handle
    };
    let sealed = match seal(state, &consent) {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    consent_page(
        urls,
        &account.name,
        client,
        &grant,
        patient_name.as_deref(),
        &consent,
        &sealed,
    )
}

/// The consent was given: a single-use code bound to the client, redirect URI, PKCE
/// challenge, account and grant, and the redirect back to the app.
async fn approve(state: &WebState, urls: &Urls, handle: Handle) -> Response {
    let request = CodeRequest {
        consent_id: handle.jti.clone(),
        consent_expires: handle.exp,
        client_id: handle.client_id.clone(),
        redirect_uri: handle.redirect_uri.clone(),
        code_challenge: handle.code_challenge.clone(),
        account: handle.account.clone().unwrap_or_default(),
        scope: handle.granted.clone().unwrap_or_default(),
        patient: handle.patient.clone(),
    };
    let identity = state.identity.clone();
    let code = match tokio::task::spawn_blocking(move || identity.issue_code(&request)).await {
        Ok(Ok(Some(code))) => code,
        Ok(Ok(None)) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "this consent was already given; start again from the app",
            )
        }
        _ => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage is unavailable; try again",
            )
        }
    };
    let mut params = vec![("code", code.as_str())];
    if let Some(st) = handle.state.as_deref() {
        params.push(("state", st));
    }
    params.push(("iss", urls.fhir_base.as_str()));
    redirect(&handle.redirect_uri, &params, StatusCode::SEE_OTHER)
}

/// The patient for the consent page ("Alice Liddell, born 4 May 1852"), or their
/// reference when it cannot be read. Read through `records` as the signed-in account,
/// so under its access and in the audit trail like any read.
async fn patient_display(state: &WebState, account: &SignedIn, id: &str) -> String {
    let reference = format!("Patient/{id}");
    let Some(caller) = account.caller() else {
        return reference;
    };
    let (records, id) = (state.records.clone(), id.to_owned());
    let read = tokio::task::spawn_blocking(move || chart::patient(&records, &caller, &id)).await;
    match read {
        // The name, and the birth date that tells two of the same name apart: words a
        // person knows their record by, rather than its id.
        Ok(Ok(p)) if p["name"].as_array().is_some_and(|n| !n.is_empty()) => {
            match p["birthDate"].as_str() {
                Some(born) => format!("{}, born {}", display::person_name(&p), display::date(born)),
                None => display::person_name(&p),
            }
        }
        _ => reference,
    }
}
