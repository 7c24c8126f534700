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

use oxehr_auth::oauth::{self, UserGrant};
use oxehr_auth::scope::{Context, Scope};
use oxehr_auth::{accounts::normalize_name, parse_scopes, Role, TotpSecret};
use oxehr_fhir::{ResourceId, ResourceType};
use oxehr_store::accounts::AccountRow;
use oxehr_store::oauth::{ClientRow, CodeRow};

use super::{blocking, client_address, parse_form, write, Form, Smart};

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
    oauth::seal(&s.app.auth.key, &handle.kind, handle).map_err(|_| {
        Box::new(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
        ))
    })
}

/// The handle of a form, if it is genuine, of `kind`, and not expired.
fn open(s: &Smart, kind: &str, value: &str) -> Option<Handle> {
    let h: Handle = oauth::unseal(&s.app.auth.key, kind, value)?;
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
        a == s.urls.fhir_base || a == s.app.auth.issuer
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
async fn known_client(s: &Smart, q: &Form) -> Result<ClientRow, Response> {
    let (Some(client_id), Some(redirect_uri)) = (q.get("client_id"), q.get("redirect_uri")) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "client_id and redirect_uri are required",
        ));
    };
    let store = s.store().clone();
    let id = client_id.to_owned();
    let client = blocking(move || {
        let mut tx = store.read()?;
        oxehr_store::oauth::get_client(tx.as_mut(), &id)
    })
    .await
    .map_err(|_| error_page(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
    .map_err(|_| {
        error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage is unavailable; try again",
        )
    })?;
    let client = client
        .filter(|c| c.kind == "public" && !c.disabled)
        .ok_or_else(|| error_page(StatusCode::BAD_REQUEST, "unknown client_id"))?;
    let registered: Vec<String> = serde_json::from_str(&client.redirect_uris).unwrap_or_default();
    if !registered.iter().any(|r| r == redirect_uri) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri is not one this client registered",
        ));
    }
    Ok(client)
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

/// Checks a sign-in form (user name, password, authenticator code) with the throttle,
/// and records the sign-in or its failure in the audit trail (`what`: for which app or
/// session). The account, or the message and status to show.
pub(crate) async fn verify_sign_in(
    s: &Smart,
    form: &Form,
    address: Option<String>,
    what: &str,
) -> Result<Box<AccountRow>, (String, StatusCode)> {
    let again = |message: &str, status: StatusCode| Err((message.to_owned(), status));
    let name = normalize_name(form.get("username").unwrap_or("")).unwrap_or_default();
    // Keyed by the name and by the client's address (when known: a shared "unknown"
    // key would let anyone lock everyone out).
    let user_key = format!("user:{name}");
    let keys: Vec<String> = std::iter::once(user_key.clone())
        .chain(address.as_ref().map(|a| format!("ip:{a}")))
        .collect();
    let now = s.now();
    let wait = {
        let t = s.throttle.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().filter_map(|k| t.check(k, now).err()).max()
    };
    if let Some(wait) = wait {
        return again(
            &format!("Too many failed sign-ins. Try again in {wait} seconds."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let password = form.get("password").unwrap_or("").to_owned();
    let code = form.get("totp").unwrap_or("").trim().to_owned();
    let store = s.store().clone();
    let who = name.clone();
    let checked = blocking(move || check_credentials(&store, &who, &password, &code, now)).await;
    let outcome = match checked {
        Ok(Ok(o)) => o,
        _ => {
            return again(
                "Sign-in is unavailable right now; try again.",
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    };
    let account = match outcome {
        SignIn::Ok(a) => a,
        SignIn::Refused => {
            {
                let mut t = s.throttle.lock().unwrap_or_else(|p| p.into_inner());
                for k in &keys {
                    t.record_failure(k, now);
                }
            }
            audit_sign_in(s, &name, None, "login-failed", "failure", address.clone(), what).await;
            tracing::warn!(via = %what, "failed sign-in");
            return again(
                "Wrong user name, password or authenticator code.",
                StatusCode::UNAUTHORIZED,
            );
        }
        SignIn::MfaNotEnrolled => {
            return again(
                "This account must enrol an authenticator before it can sign in to apps; ask your administrator.",
                StatusCode::FORBIDDEN,
            )
        }
    };
    s.throttle
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record_success(&user_key);
    audit_sign_in(
        s,
        &account.name,
        Some(&account),
        "login",
        "success",
        address.clone(),
        what,
    )
    .await;
    Ok(account)
}

/// A sign-in (or a failed one) in the audit trail; the client app in `detail`. Never
/// the password or code.
async fn audit_sign_in(
    s: &Smart,
    name: &str,
    account: Option<&AccountRow>,
    action: &str,
    outcome: &str,
    address: Option<String>,
    what: &str,
) {
    let patient = account.and_then(oxehr_auth::accounts::own_patient);
    let record = oxehr_store::audit::AuditRecord {
        time: oxehr_records::now_micros(),
        user: Some(name.to_owned()),
        role: account.map(|a| a.role.clone()),
        organization: account.and_then(|a| a.organization.clone()),
        patient,
        resource: None,
        action: action.to_owned(),
        outcome: outcome.to_owned(),
        client: address,
        detail: Some(what.to_owned()),
    };
    let records = s.app.records.clone();
    if blocking(move || records.record_events(vec![record]))
        .await
        .is_err()
    {
        tracing::error!("a sign-in could not be written to the audit trail");
    }
}

/// What checking the credentials found.
enum SignIn {
    Ok(Box<AccountRow>),
    /// Wrong name, password or code (which one is not said).
    Refused,
    /// Right password, but the account must enrol an authenticator first.
    MfaNotEnrolled,
}

async fn login(
    s: &Smart,
    client: &ClientRow,
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

    let Some(role) = Role::parse(&account.role) else {
        return again(
            "This account cannot sign in to apps.",
            StatusCode::FORBIDDEN,
        );
    };
    let requested = oauth::parse_requested(&handle.scope).unwrap_or_default();
    let allowed = parse_scopes(&client.scope).unwrap_or_default();
    let grant = oauth::grant_user_scopes(role, &requested, &allowed);
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
    let patient = oxehr_auth::accounts::own_patient(&account);
    let patient_name = match &patient {
        Some(id) => Some(patient_display(s, id).await),
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
        Ok(signed) => consent_page(
            s,
            client,
            &account,
            &grant,
            patient_name.as_deref(),
            &signed,
        ),
        Err(resp) => *resp,
    }
}

/// A dummy Argon2id hash, verified against when the user name is unknown so that the
/// answer takes as long as for a real account.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        oxehr_auth::hash_password("no account has this password, it only costs time")
            .unwrap_or_default()
    })
}

/// Checks the password and, for an account with an authenticator, the TOTP code —
/// recording the code's step so that it cannot be used twice.
fn check_credentials(
    store: &std::sync::Arc<dyn oxehr_store::Store>,
    name: &str,
    password: &str,
    code: &str,
    now: u64,
) -> Result<SignIn, oxehr_store::StoreError> {
    let account = {
        let mut tx = store.read()?;
        oxehr_store::accounts::get(tx.as_mut(), name)?
    };
    let Some(account) = account else {
        let _ = oxehr_auth::verify_password(password, dummy_hash());
        return Ok(SignIn::Refused);
    };
    if !oxehr_auth::verify_password(password, &account.password_hash) || account.disabled {
        return Ok(SignIn::Refused);
    }
    let Some(secret) = account.totp_secret.clone() else {
        return Ok(if account.mfa_required {
            SignIn::MfaNotEnrolled
        } else {
            SignIn::Ok(Box::new(account))
        });
    };
    let Ok(secret) = TotpSecret::from_base32(&secret) else {
        return Ok(SignIn::Refused);
    };
    // The step is checked and recorded in one write, so a code works once even when
    // two sign-ins race.
    let n = name.to_owned();
    let code = code.to_owned();
    let accepted = write(store, move |tx| {
        let Some(mut row) = oxehr_store::accounts::get(tx, &n)? else {
            return Ok(false);
        };
        let last = row.totp_last_step.and_then(|s| u64::try_from(s).ok());
        match secret.verify(&code, now, last) {
            Some(step) => {
                row.totp_last_step = i64::try_from(step).ok();
                oxehr_store::accounts::update(tx, &row)?;
                Ok(true)
            }
            None => Ok(false),
        }
    })?;
    Ok(if accepted {
        SignIn::Ok(Box::new(account))
    } else {
        SignIn::Refused
    })
}

/// The consent was given: a single-use code bound to the client, redirect URI, PKCE
/// challenge, account and grant, and the redirect back to the app.
async fn approve(s: &Smart, handle: Handle) -> Response {
    let now = s.now();
    let code = oauth::new_secret();
    let row = CodeRow {
        code_hash: oauth::secret_hash(&code),
        grant_id: oxehr_auth::token::new_token_id(),
        client_id: handle.client_id.clone(),
        redirect_uri: handle.redirect_uri.clone(),
        code_challenge: handle.code_challenge.clone(),
        account: handle.account.clone().unwrap_or_default(),
        scope: handle.granted.clone().unwrap_or_default(),
        patient: handle.patient.clone(),
        expires: i64::try_from(now + s.config.code_secs).unwrap_or(i64::MAX),
        used: false,
    };
    let store = s.store().clone();
    let (jti, exp) = (
        handle.jti.clone(),
        i64::try_from(handle.exp).unwrap_or(i64::MAX),
    );
    let stored = blocking(move || {
        write(&store, move |tx| {
            if !oxehr_store::oauth::first_use_of_jti(tx, "consent", &jti, exp)? {
                return Ok(false);
            }
            oxehr_store::oauth::insert_code(tx, &row)?;
            let horizon = i64::try_from(now.saturating_sub(super::token::LEEWAY_SECS)).unwrap_or(0);
            oxehr_store::oauth::delete_expired(tx, horizon)?;
            Ok(true)
        })
    })
    .await;
    match stored {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
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
    }
    tracing::info!(client_id = %handle.client_id, "authorization code issued");
    let mut params = vec![("code", code.as_str())];
    if let Some(st) = handle.state.as_deref() {
        params.push(("state", st));
    }
    params.push(("iss", s.urls.fhir_base.as_str()));
    redirect(&handle.redirect_uri, &params, StatusCode::SEE_OTHER)
}

/// The patient's name for the consent page, or their reference when it cannot be read.
async fn patient_display(s: &Smart, id: &str) -> String {
    let reference = format!("Patient/{id}");
    let (Some(t), Some(rid)) = (ResourceType::parse("Patient"), ResourceId::parse(id)) else {
        return reference;
    };
    let store = s.store().clone();
    let read = blocking(move || store.read_current(&t, &rid)).await;
    let body = match read {
        Ok(Ok(Some(r))) => r.body,
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

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · oxehr</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.4}}\
         label{{display:block;margin:.8rem 0}}input{{display:block;width:100%;padding:.4rem;box-sizing:border-box}}\
         button{{padding:.5rem 1.2rem;margin:.8rem .5rem 0 0}}.error{{color:#a00;font-weight:bold}}\
         </style></head><body><main>\n<h1>{}</h1>\n{body}\n</main></body></html>\n",
        escape(title),
        escape(title)
    );
    let mut resp = (status, page).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    super::set_no_store(h);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn error_page(status: StatusCode, message: &str) -> Response {
    html(
        status,
        "Cannot continue",
        &format!("<p class=\"error\">{}</p>", escape(message)),
    )
}

fn login_page(
    s: &Smart,
    client: &ClientRow,
    handle: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let message = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(m)))
        .unwrap_or_default();
    let body = format!(
        "<p><strong>{}</strong> asks to access health records on this server. Sign in to continue.</p>\n\
         {message}<form method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"handle\" value=\"{}\">\n\
         <label>User name <input name=\"username\" autocomplete=\"username\" required></label>\n\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\n\
         <label>Authenticator code (if your account has one) <input name=\"totp\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"6\"></label>\n\
         <button type=\"submit\" name=\"action\" value=\"login\">Sign in</button>\n</form>",
        escape(&client.name),
        escape(&s.urls.authorize),
        escape(handle),
    );
    html(status, "Sign in", &body)
}

fn consent_page(
    s: &Smart,
    client: &ClientRow,
    account: &AccountRow,
    grant: &UserGrant,
    patient: Option<&str>,
    handle: &str,
) -> Response {
    let items: String = grant
        .scopes
        .iter()
        .map(|token| {
            let words = oxehr_auth::parse_scope(token)
                .map(|s| describe(&s))
                .unwrap_or_default();
            format!(
                "<li><code>{}</code>: {}</li>\n",
                escape(token),
                escape(&words)
            )
        })
        .collect();
    let patient = patient
        .map(|p| format!("<p>Patient: <strong>{}</strong></p>\n", escape(p)))
        .unwrap_or_default();
    let body = format!(
        "<p>Signed in as <strong>{}</strong>.</p>\n\
         <p><strong>{}</strong> asks to:</p>\n<ul>\n{items}</ul>\n{patient}\
         <form method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"handle\" value=\"{}\">\n\
         <button type=\"submit\" name=\"action\" value=\"approve\">Allow</button>\n\
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\n</form>",
        escape(&account.name),
        escape(&client.name),
        escape(&s.urls.authorize),
        escape(handle),
    );
    html(StatusCode::OK, "Allow access?", &body)
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
            format!("{} {what} {whose}", verbs.join(", "))
        }
        Scope::LaunchPatient => "know whose record is open".into(),
        Scope::OfflineAccess => "keep access after you sign out, until you revoke it".into(),
        Scope::OnlineAccess => "keep access for a few hours without asking again".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

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
