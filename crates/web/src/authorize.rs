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

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use oxehr_auth::identity::{
    Client, ClientRefusal, CodeRequest, SignInAttempt, SignInRefusal, SignedIn,
};
use oxehr_auth::oauth::{self, UserGrant};
use oxehr_auth::scope::{Context, Scope};

use crate::pages::{self, Page};
use crate::{chart, display, WebState};

/// How long the sign-in page's handle is valid.
const LOGIN_HANDLE_SECS: u64 = 600;
/// How long the consent page's handle is valid.
const CONSENT_HANDLE_SECS: u64 = 300;
/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The authorization server's URLs this endpoint needs, from the FHIR base URL (the
/// endpoints sit beside `/fhir`, as the API's discovery document says).
struct Urls {
    /// The FHIR base URL without a trailing slash: the `aud` apps must ask for, and the
    /// `iss` of authorization responses (RFC 9207).
    fhir_base: String,
    /// This endpoint, absolute: the pages' form action.
    authorize: String,
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

/// The authorization request, as validated, carried from page to page.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Handle {
    /// `login` or `consent`.
    kind: String,
    exp: u64,
    jti: String,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    /// The requested scopes.
    scope: String,
    code_challenge: String,
    /// Consent only: who signed in, what they grant, the patient in the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    granted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    patient: Option<String>,
}

/// A query or form's parameters. A parameter given twice is refused (RFC 6749 §3.1);
/// an empty value counts as absent.
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(bytes: &[u8]) -> Result<Params, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(bytes) {
            if pairs.iter().any(|(name, _)| *name == k) {
                return Err(format!("the parameter {k} is given more than once"));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// The handle sealed for a page, or the error page.
fn seal(state: &WebState, handle: &Handle) -> Result<String, Box<Response>> {
    state.identity.seal(&handle.kind, handle).map_err(|_| {
        Box::new(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
        ))
    })
}

/// The handle of a form, if it is genuine, of `kind`, and not expired.
fn open(state: &WebState, kind: &str, value: &str) -> Option<Handle> {
    let h: Handle = state.identity.unseal(kind, value)?;
    (h.kind == kind && h.exp > state.identity.now()).then_some(h)
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
    let page = Page::render(
        StatusCode::OK,
        &ConsentPage {
            account: &account.name,
            client_name: &client.name,
            scopes: scope_lines(&grant),
            patient: patient_name.as_deref(),
            action: &urls.authorize,
            handle: &sealed,
        },
    );
    form_page(page, urls, &consent.redirect_uri)
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

/// The patient's name for the consent page ("Alice Liddell (Patient/123)"), or their
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
        Ok(Ok(p)) if p["name"].as_array().is_some_and(|n| !n.is_empty()) => {
            format!("{} ({reference})", display::person_name(&p))
        }
        _ => reference,
    }
}

// ---- the pages ----

/// An app's sign-in page: the request's handle is posted back to `action`.
#[derive(Template)]
#[template(path = "authorize_sign_in.html")]
struct SignInPage<'a> {
    client_name: &'a str,
    action: &'a str,
    handle: &'a str,
    username: &'a str,
    message: Option<&'a str>,
}

/// The consent page: who signed in, what the app asks for in words, the patient.
#[derive(Template)]
#[template(path = "authorize_consent.html")]
struct ConsentPage<'a> {
    account: &'a str,
    client_name: &'a str,
    scopes: Vec<ScopeLine>,
    patient: Option<&'a str>,
    action: &'a str,
    handle: &'a str,
}

/// A granted scope, as the consent page lists it.
struct ScopeLine {
    token: String,
    /// The scope in words; empty when there are none for it.
    words: String,
}

fn scope_lines(grant: &UserGrant) -> Vec<ScopeLine> {
    grant
        .scopes
        .iter()
        .map(|token| ScopeLine {
            words: oxehr_auth::parse_scope(token)
                .map(|s| describe(&s))
                .unwrap_or_default(),
            token: token.clone(),
        })
        .collect()
}

/// A scope in words, for the consent page.
fn describe(scope: &Scope) -> String {
    match scope {
        Scope::Resource(r) => {
            let p = r.permissions;
            let verbs: Vec<&str> = [
                (p.create, "create"),
                (p.read, "read"),
                (p.update, "update"),
                (p.delete, "delete"),
                (p.search, "search"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, v)| *v)
            .collect();
            let what = match &r.resource_type {
                Some(t) => format!("{t} resources"),
                None => "all kinds of data".to_owned(),
            };
            let whose = match r.context {
                Context::Patient => "in your record",
                Context::User => "you have access to",
                Context::System => "on this server",
            };
            let only = if r.query.is_empty() {
                String::new()
            } else {
                format!(", only those with {}", narrowing_in_words(&r.query))
            };
            format!("{} {what} {whose}{only}", verbs.join(", "))
        }
        Scope::LaunchPatient => "know whose record is open".into(),
        Scope::OfflineAccess => "keep access after you sign out, until you revoke it".into(),
        Scope::OnlineAccess => "keep access for a few hours without asking again".into(),
        _ => String::new(),
    }
}

/// A scope's query in words: `category=http://…|laboratory&code=…|8867-4` reads
/// "category laboratory and code 8867-4" (the codes without their systems, alternatives
/// joined by "or").
fn narrowing_in_words(query: &[(String, String)]) -> String {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .iter()
        .map(|(name, value)| {
            let name = decode(name);
            let name = name.split(':').next().unwrap_or_default();
            let values: Vec<String> = decode(value)
                .split(',')
                .map(|v| v.rsplit('|').next().unwrap_or(v).to_owned())
                .collect();
            format!("{} {}", name.trim_start_matches('_'), values.join(" or "))
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

fn sign_in_page(
    urls: &Urls,
    client: &Client,
    handle: &Handle,
    sealed: &str,
    username: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let page = Page::render(
        status,
        &SignInPage {
            client_name: &client.name,
            action: &urls.authorize,
            handle: sealed,
            username,
            message,
        },
    );
    form_page(page, urls, &handle.redirect_uri)
}

/// A page whose form may end in a redirect to the app: not cached, and with the policy
/// that lets that redirect through.
fn form_page(page: Page, urls: &Urls, redirect_uri: &str) -> Response {
    let mut resp = page.into_response();
    let h = resp.headers_mut();
    set_no_store(h);
    if let Ok(v) = HeaderValue::from_str(&policy(&urls.authorize, redirect_uri)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// The crate's Content-Security-Policy with `form-action` widened to the origin of this
/// endpoint's configured URL (the form's action, in case the browser reached the page
/// by another name for the server) and of the app's redirect URI: Chromium and Safari
/// apply `form-action` to the redirects that answer a form submission too
/// (w3c/webappsec-csp#8), and these forms end in a redirect to the app. The origin
/// comes from the redirect URI of this request, already checked against the client's
/// registration. A URI with no expressible origin (an IPv6 literal, which CSP's host
/// grammar lacks) adds nothing.
fn policy(authorize: &str, redirect_uri: &str) -> String {
    let mut sources = vec!["'self'".to_owned()];
    for uri in [authorize, redirect_uri] {
        if let Some(s) = csp_source(uri).filter(|s| !sources.contains(s)) {
            sources.push(s);
        }
    }
    crate::CONTENT_SECURITY_POLICY.replacen(
        "form-action 'self'",
        &format!("form-action {}", sources.join(" ")),
        1,
    )
}

/// A URI's origin as a CSP source expression: `scheme://host[:port]` for a URI with an
/// authority, `scheme:` for a private-use scheme (`com.example.app:/callback`, RFC
/// 8252 §7.1). `None` for anything else, or anything with a character that could end
/// the expression or the directive.
fn csp_source(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'));
    if !scheme_ok {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let Some(after) = rest.strip_prefix("//") else {
        // A scheme alone would allow every http(s) URL: only for private-use schemes.
        return (!matches!(scheme.as_str(), "http" | "https")).then(|| format!("{scheme}:"));
    };
    let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (host_ok && port_ok).then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

// ---- answers ----

fn set_no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// `redirect_uri` with `params` added to its query.
fn redirect(redirect_uri: &str, params: &[(&str, &str)], status: StatusCode) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{sep}{}", query.finish());
    let Ok(location) = HeaderValue::from_str(&location) else {
        return error_page(StatusCode::BAD_REQUEST, "the redirect URI is unusable");
    };
    let mut resp = status.into_response();
    resp.headers_mut().insert(header::LOCATION, location);
    set_no_store(resp.headers_mut());
    resp
}

/// An error sent back to the app (RFC 6749 §4.1.2.1), with `state` and `iss`.
fn redirect_error(
    urls: &Urls,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
    status: StatusCode,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(st) = state {
        params.push(("state", st));
    }
    params.push(("iss", urls.fhir_base.as_str()));
    redirect(redirect_uri, &params, status)
}

/// The page of an authorization request that cannot go on (it redirects nowhere).
fn error_page(status: StatusCode, message: &str) -> Response {
    let mut resp = pages::message(status, "Cannot continue", message).into_response();
    set_no_store(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_the_registered_query() {
        let cases = [
            (
                "https://app.example/cb",
                "https://app.example/cb?code=a%2Bb&state=s+1",
            ),
            (
                "https://app.example/cb?x=1",
                "https://app.example/cb?x=1&code=a%2Bb&state=s+1",
            ),
        ];
        for (uri, expected) in cases {
            let r = redirect(uri, &[("code", "a+b"), ("state", "s 1")], StatusCode::FOUND);
            assert_eq!(r.headers()[header::LOCATION], expected);
        }
    }

    #[test]
    fn form_action_names_the_redirect_origin() {
        let cases = [
            ("https://app.example/cb?x=1", Some("https://app.example")),
            (
                "https://App.Example:8443/cb",
                Some("https://app.example:8443"),
            ),
            ("http://127.0.0.1:9/callback", Some("http://127.0.0.1:9")),
            ("http://localhost/cb", Some("http://localhost")),
            ("com.example.app:/callback", Some("com.example.app:")),
            // CSP's host grammar has no IPv6 literal.
            ("http://[::1]:8000/cb", None),
            // Nothing that could end the source or the directive.
            ("https://a.example;script-src/cb", None),
            ("https://a.example,b/cb", None),
            ("https://user@a.example/cb", None),
            ("https://a.example:80x/cb", None),
            // A bare http(s) scheme would allow every site.
            ("https:/cb", None),
            ("not a uri", None),
        ];
        for (uri, expected) in cases {
            assert_eq!(csp_source(uri).as_deref(), expected, "{uri}");
        }
        let p = policy(
            "http://127.0.0.1:8080/auth/authorize",
            "https://app.example/cb",
        );
        assert!(
            p.contains(
                "; form-action 'self' http://127.0.0.1:8080 https://app.example; frame-ancestors 'none';"
            ),
            "{p}"
        );
        assert!(
            p.starts_with("default-src 'none'; style-src 'self';"),
            "{p}"
        );
        let p = policy("/auth/authorize", "http://[::1]/cb");
        assert_eq!(p, crate::CONTENT_SECURITY_POLICY);
    }

    #[test]
    fn scopes_read_in_plain_words() {
        let cases = [
            (
                "patient/*.read",
                "read, search all kinds of data in your record",
            ),
            (
                "patient/Observation.rs",
                "read, search Observation resources in your record",
            ),
            (
                "user/Patient.cruds",
                "create, read, update, delete, search Patient resources you have access to",
            ),
            (
                "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
                "read, search Observation resources in your record, only those with category laboratory",
            ),
            (
                "patient/Observation.rs?category=vital-signs,social-history&code%3Atext=blood%20pressure",
                "read, search Observation resources in your record, only those with category \
                 vital-signs or social-history and code blood pressure",
            ),
            ("launch/patient", "know whose record is open"),
            (
                "offline_access",
                "keep access after you sign out, until you revoke it",
            ),
            (
                "online_access",
                "keep access for a few hours without asking again",
            ),
        ];
        for (token, words) in cases {
            let scope = oxehr_auth::parse_scope(token).expect(token);
            assert_eq!(describe(&scope), words, "{token}");
        }
    }

    #[test]
    fn the_consent_page_escapes_what_it_shows() {
        let html = ConsentPage {
            account: "alice",
            client_name: "<script>alert(1)</script>",
            scopes: vec![ScopeLine {
                token: "patient/*.read".into(),
                words: "read, search all kinds of data in your record".into(),
            }],
            patient: Some("Bobby\" onmouseover=\"x (Patient/1)"),
            action: "http://127.0.0.1:8080/auth/authorize",
            handle: "abc.def",
        }
        .render()
        .expect("render");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("\" onmouseover"), "{html}");
        assert!(html.contains("read, search all kinds of data in your record"));
        assert!(html.contains("<code>patient/*.read</code>"), "{html}");
        assert!(
            html.contains(r#"<form method="post" action="http://127.0.0.1:8080/auth/authorize">"#),
            "{html}"
        );
        assert!(html.contains(r#"name="handle" value="abc.def""#), "{html}");
        assert!(html.contains(r#"value="approve""#) && html.contains(r#"value="deny""#));
        // No chart navigation and no sign-out form on the authorization pages.
        assert!(
            !html.contains("/sign-out") && !html.contains("/patients"),
            "{html}"
        );
    }
}
