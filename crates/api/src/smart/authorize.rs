//! The authorization endpoint (RFC 6749 §4.1 with PKCE, SMART standalone launch): the
//! app sends the person's browser to `GET /auth/authorize?…`; they sign in (user name,
//! password, and the authenticator code when the account has one), approve the scopes,
//! and the browser is redirected back with a single-use code.
//!
//! There are no server-side sessions or cookies. Each page carries a **handle**: the
//! request's parameters (and, on the consent page, who signed in and what they grant),
//! signed with a key derived from the token signing key and valid for minutes. A form
//! is accepted only with a valid handle, so a forged cross-site POST cannot approve
//! anything, and a consent handle works once (its `jti` is recorded). The pages are plain
//! HTML without JavaScript, not framable, not cached.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use oxehr_auth::identity::{
    Client, ClientRefusal, CodeRequest, SignInAttempt, SignInRefusal, SignedIn,
};
use oxehr_auth::oauth;
use oxehr_fhir::{ResourceId, ResourceType};

use super::{blocking, client_address, html, pages, parse_form, Form, Smart};

/// How long the sign-in page's handle is valid.
const LOGIN_HANDLE_SECS: u64 = 600;
/// How long the consent page's handle is valid.
const CONSENT_HANDLE_SECS: u64 = 300;
/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;

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

/// The handle sealed for a page, or the error page.
fn sign(s: &Smart, handle: &Handle) -> Result<String, Box<Response>> {
    s.identity().seal(&handle.kind, handle).map_err(|_| {
        Box::new(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
        ))
    })
}

/// The handle of a form, if it is genuine, of `kind`, and not expired.
fn open(s: &Smart, kind: &str, value: &str) -> Option<Handle> {
    let h: Handle = s.identity().unseal(kind, value)?;
    (h.kind == kind && h.exp > s.now()).then_some(h)
}

/// `GET /auth/authorize`: checks the request and shows the sign-in page.
pub(crate) async fn start(State(s): State<Smart>, req: Request) -> Response {
    let q = match parse_form(req.uri().query().unwrap_or("").as_bytes()) {
        Ok(q) => q,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, &why),
    };
    let client = match known_client(&s, &q).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let (Some(client_id), Some(redirect_uri)) = (q.get("client_id"), q.get("redirect_uri")) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "client_id and redirect_uri are required",
        );
    };
    let state = q.get("state").map(str::to_owned);
    let back = |error: &'static str, why: &str| {
        redirect_error(
            &s,
            redirect_uri,
            state.as_deref(),
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
        a == s.urls.fhir_base || a == s.identity().issuer()
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
        exp: s.now() + LOGIN_HANDLE_SECS,
        jti: oxehr_auth::token::new_token_id(),
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        state,
        scope: scope.to_owned(),
        code_challenge: q.get("code_challenge").unwrap_or("").to_owned(),
        account: None,
        granted: None,
        patient: None,
    };
    match sign(&s, &handle) {
        Ok(signed) => login_page(&s, &client, &signed, None, StatusCode::OK),
        Err(resp) => *resp,
    }
}

/// The registered, enabled public client the request names, with its redirect URI
/// registered exactly; else the error page (never a redirect to an unchecked URI).
async fn known_client(s: &Smart, q: &Form) -> Result<Client, Response> {
    let (Some(client_id), Some(redirect_uri)) = (q.get("client_id"), q.get("redirect_uri")) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "client_id and redirect_uri are required",
        ));
    };
    let identity = s.identity().clone();
    let (id, uri) = (client_id.to_owned(), redirect_uri.to_owned());
    blocking(move || identity.authorization_client(&id, &uri))
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
pub(crate) async fn submit(State(s): State<Smart>, req: Request) -> Response {
    let address = client_address(&req);
    let body = match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return error_page(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"),
    };
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, &why),
    };
    let sealed = form.get("handle").unwrap_or("");
    let Some(handle) = open(&s, "login", sealed).or_else(|| open(&s, "consent", sealed)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "this page has expired or was altered; start again from the app",
        );
    };
    // The client may have been disabled since the page was shown.
    let q = Form(vec![
        ("client_id".into(), handle.client_id.clone()),
        ("redirect_uri".into(), handle.redirect_uri.clone()),
    ]);
    let client = match known_client(&s, &q).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    match (handle.kind.as_str(), form.get("action")) {
        ("login", Some("login")) => login(&s, &client, handle, &form, address).await,
        ("consent", Some("approve")) => approve(&s, handle).await,
        ("consent", Some("deny")) => redirect_error(
            &s,
            &handle.redirect_uri,
            handle.state.as_deref(),
            "access_denied",
            "the user denied the request",
            StatusCode::SEE_OTHER,
        ),
        _ => error_page(StatusCode::BAD_REQUEST, "unexpected form"),
    }
}

/// Checks a sign-in form (user name, password, authenticator code) with the identity
/// service (throttle and audit included; `what`: for which app or session). The
/// account, or the message and status to show.
pub(crate) async fn verify_sign_in(
    s: &Smart,
    form: &Form,
    address: Option<String>,
    what: &str,
) -> Result<SignedIn, (String, StatusCode)> {
    let identity = s.identity().clone();
    let name = form.get("username").unwrap_or("").to_owned();
    let password = form.get("password").unwrap_or("").to_owned();
    let code = form.get("totp").unwrap_or("").to_owned();
    let via = what.to_owned();
    let signed = blocking(move || {
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

async fn login(
    s: &Smart,
    client: &Client,
    handle: Handle,
    form: &Form,
    address: Option<String>,
) -> Response {
    let again = |message: &str, status: StatusCode| match sign(s, &handle) {
        Ok(signed) => login_page(s, client, &signed, Some(message), status),
        Err(resp) => *resp,
    };
    let account =
        match verify_sign_in(s, form, address, &format!("client {}", client.client_id)).await {
            Ok(a) => a,
            Err((message, status)) => return again(&message, status),
        };
    let now = s.now();

    let Some(role) = account.role else {
        return again(
            "This account cannot sign in to apps.",
            StatusCode::FORBIDDEN,
        );
    };
    let grant = client.user_grant(role, &handle.scope);
    if !grant.grants_resources() {
        return redirect_error(
            s,
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
        Some(id) => Some(patient_display(s, &account, id).await),
        None => None,
    };
    let consent = Handle {
        kind: "consent".into(),
        exp: now + CONSENT_HANDLE_SECS,
        jti: oxehr_auth::token::new_token_id(),
        account: Some(account.name.clone()),
        granted: Some(grant.scope()),
        patient,
        ..handle
    };
    match sign(s, &consent) {
        Ok(signed) => html(
            StatusCode::OK,
            pages::consent(
                &account.name,
                &client.name,
                &grant,
                patient_name.as_deref(),
                &s.urls.authorize,
                &signed,
            ),
        ),
        Err(resp) => *resp,
    }
}

/// The consent was given: a single-use code bound to the client, redirect URI, PKCE
/// challenge, account and grant, and the redirect back to the app.
async fn approve(s: &Smart, handle: Handle) -> Response {
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
    let identity = s.identity().clone();
    let code = match blocking(move || identity.issue_code(&request)).await {
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
    params.push(("iss", s.urls.fhir_base.as_str()));
    redirect(&handle.redirect_uri, &params, StatusCode::SEE_OTHER)
}

/// The patient's name for the consent page, or their reference when it cannot be read.
/// Read through the record layer as the signed-in account (so under its access and
/// in the audit trail like any read).
async fn patient_display(s: &Smart, account: &SignedIn, id: &str) -> String {
    let reference = format!("Patient/{id}");
    let (Some(t), Some(rid), Some(caller)) = (
        ResourceType::parse("Patient"),
        ResourceId::parse(id),
        account.caller(),
    ) else {
        return reference;
    };
    let records = s.app.records.clone();
    let read = blocking(move || records.read(&caller, &t, &rid)).await;
    let body = match read {
        Ok(Ok(r)) => r.body,
        _ => None,
    };
    let name = body
        .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            let n = v.get("name")?.get(0)?;
            if let Some(text) = n.get("text").and_then(|t| t.as_str()) {
                return Some(text.to_owned());
            }
            let mut parts: Vec<String> = n
                .get("given")
                .and_then(|g| g.as_array())
                .map(|g| {
                    g.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(f) = n.get("family").and_then(|f| f.as_str()) {
                parts.push(f.to_owned());
            }
            (!parts.is_empty()).then(|| parts.join(" "))
        });
    match name {
        Some(n) => format!("{n} ({reference})"),
        None => reference,
    }
}

// ---- answers ----

/// `redirect_uri` with `params` added to its query.
fn redirect(redirect_uri: &str, params: &[(&str, &str)], status: StatusCode) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{sep}{}", query.finish());
    let mut resp = status.into_response();
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "the redirect URI is unusable"),
    }
    super::set_no_store(resp.headers_mut());
    resp
}

/// An error sent back to the app (RFC 6749 §4.1.2.1), with `state` and `iss`.
fn redirect_error(
    s: &Smart,
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
    params.push(("iss", s.urls.fhir_base.as_str()));
    redirect(redirect_uri, &params, status)
}

fn error_page(status: StatusCode, message: &str) -> Response {
    html(status, pages::error(message))
}

fn login_page(
    s: &Smart,
    client: &Client,
    handle: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    html(
        status,
        pages::app_sign_in(&client.name, &s.urls.authorize, handle, message),
    )
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
}
