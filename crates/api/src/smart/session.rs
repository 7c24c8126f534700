//! Web sessions, for people using oxehr in a browser (the chart and the portal): sign in
//! at `/auth/login` (user name, password, authenticator code when the account has one;
//! the same checks, throttle and audit as the authorization endpoint) and the browser
//! holds a session cookie that FHIR requests may carry instead of a bearer token. A
//! session ends after it has been idle for the configured time (default 15 minutes), at
//! `POST /auth/logout`, or when the account is disabled.
//!
//! The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure` when the server's
//! base URL is `https`. A FHIR request authenticated by the cookie that is not a GET or
//! HEAD must also carry `X-Requested-With` (which a cross-site form cannot send), so a
//! forged cross-site request cannot write. The table keeps only the SHA-256 of the id.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;

use oxehr_auth::{oauth, parse_scopes, Caller, Role};
use oxehr_store::sessions::{self, SessionRow};

use super::authorize::{escape, html, verify_sign_in};
use super::{blocking, client_address, parse_form, write, Smart};

/// The session cookie's name.
pub const COOKIE: &str = "oxehr_session";
/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;

fn login_form(message: Option<&str>, status: StatusCode) -> Response {
    let error = message
        .map(|m| format!("<p class=\"error\">{}</p>", escape(m)))
        .unwrap_or_default();
    html(
        status,
        "Sign in",
        &format!(
            "{error}<form method=\"post\" action=\"/auth/login\">\
             <label>User name <input name=\"username\" autocomplete=\"username\" required></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <label>Authenticator code (if you have one) <input name=\"totp\" inputmode=\"numeric\" autocomplete=\"one-time-code\"></label>\
             <button type=\"submit\">Sign in</button></form>"
        ),
    )
}

/// `GET /auth/login`.
pub(crate) async fn page() -> Response {
    login_form(None, StatusCode::OK)
}

/// The session id a request's cookie carries.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

fn cookie(s: &Smart, value: &str, max_age: Option<u64>) -> HeaderValue {
    let secure = if s.urls.fhir_base.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/{secure}{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("oxehr_session=; Max-Age=0"))
}

/// `POST /auth/login`: checks the form and starts a session.
pub(crate) async fn login(State(s): State<Smart>, req: Request) -> Response {
    let address = client_address(&req);
    let body = match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return login_form(
                Some("The form is too large."),
                StatusCode::PAYLOAD_TOO_LARGE,
            )
        }
    };
    let Ok(form) = parse_form(&body) else {
        return login_form(Some("The form could not be read."), StatusCode::BAD_REQUEST);
    };
    let account = match verify_sign_in(&s, &form, address, "web session").await {
        Ok(a) => a,
        Err((message, status)) => return login_form(Some(&message), status),
    };
    let id = oauth::new_secret();
    let now = i64::try_from(s.now()).unwrap_or(i64::MAX);
    let row = SessionRow {
        id_hash: oauth::secret_hash(&id),
        account: account.name.clone(),
        created: now,
        last_seen: now,
    };
    let store = s.store().clone();
    let idle = i64::try_from(s.config.session_idle_secs).unwrap_or(i64::MAX);
    let stored = blocking(move || {
        write(&store, move |tx| {
            // Sessions idle too long are swept when someone signs in.
            sessions::delete_idle(tx, now.saturating_sub(idle))?;
            sessions::insert(tx, &row)
        })
    })
    .await;
    if !matches!(stored, Ok(Ok(()))) {
        return login_form(
            Some("Sign-in is unavailable right now; try again."),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    }
    let mut resp = html(
        StatusCode::OK,
        "Signed in",
        &format!(
            "<p>Signed in as {}. The session ends after {} minutes without use.</p>\
             <form method=\"post\" action=\"/auth/logout\"><button type=\"submit\">Sign out</button></form>",
            escape(&account.name),
            s.config.session_idle_secs / 60
        ),
    );
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie(&s, &id, None));
    resp
}

/// `POST /auth/logout`: ends the session the cookie names.
pub(crate) async fn logout(State(s): State<Smart>, req: Request) -> Response {
    if let Some(id) = session_id(req.headers()) {
        let store = s.store().clone();
        let hash = oauth::secret_hash(&id);
        let _ = blocking(move || write(&store, move |tx| sessions::delete(tx, &hash))).await;
    }
    let mut resp = html(StatusCode::OK, "Signed out", "<p>You are signed out.</p>");
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie(&s, "", Some(0)));
    resp
}

/// Why a session cookie was not accepted.
pub(crate) enum Refused {
    /// No such session, or it was idle too long (it is removed), or its account is
    /// disabled.
    Expired,
    /// A write without `X-Requested-With`.
    NoCsrfHeader,
    Unavailable,
}

/// The caller a session cookie stands for (and the session marked used), for a FHIR
/// request with `method` (and whether it sent `X-Requested-With`).
pub(crate) fn session_caller(
    store: &std::sync::Arc<dyn oxehr_store::Store>,
    id: &str,
    method: &Method,
    csrf_header: bool,
    now: u64,
    idle_secs: u64,
) -> Result<Caller, Refused> {
    if !matches!(*method, Method::GET | Method::HEAD) && !csrf_header {
        return Err(Refused::NoCsrfHeader);
    }
    let hash = oauth::secret_hash(id);
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let idle = i64::try_from(idle_secs).unwrap_or(i64::MAX);
    let (row, account) = {
        let mut tx = store.read().map_err(|_| Refused::Unavailable)?;
        let row = sessions::get(tx.as_mut(), &hash).map_err(|_| Refused::Unavailable)?;
        let account = match &row {
            Some(r) => oxehr_store::accounts::get(tx.as_mut(), &r.account)
                .map_err(|_| Refused::Unavailable)?,
            None => None,
        };
        (row.ok_or(Refused::Expired)?, account)
    };
    if now.saturating_sub(row.last_seen) > idle {
        let h = hash.clone();
        let _ = write(store, move |tx| sessions::delete(tx, &h));
        return Err(Refused::Expired);
    }
    // Written at most once a minute: a busy page does not write on every request.
    if now - row.last_seen >= 60 {
        let h = hash.clone();
        write(store, move |tx| sessions::touch(tx, &h, now)).map_err(|_| Refused::Unavailable)?;
    }
    let account = account.filter(|a| !a.disabled).ok_or(Refused::Expired)?;
    let role = Role::parse(&account.role).ok_or(Refused::Expired)?;
    // A session acts with everything the role may do.
    let scope = if role == Role::Patient {
        "patient/*.cruds"
    } else if role == Role::SystemAdmin {
        "system/*.cruds"
    } else {
        "user/*.cruds"
    };
    let patient = oxehr_auth::accounts::own_patient(&account);
    Ok(Caller::new(
        account.name,
        role,
        account.organization,
        account.person,
        patient,
        &parse_scopes(scope).unwrap_or_default(),
    ))
}
