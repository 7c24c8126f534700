//! The token endpoint (RFC 6749 §3.2) with its three grants — `authorization_code`
//! (PKCE S256, RFC 7636), `refresh_token` (rotating: each refresh token works once; a
//! reused one revokes its whole grant) and `client_credentials` (SMART Backend Services:
//! a JWT client assertion signed RS384 or ES384, RFC 7523) — and token revocation
//! (RFC 7009) and introspection (RFC 7662).
//!
//! Every change a grant makes (a code used, a refresh token rotated, an access token
//! recorded) commits in one write job, also when the request is refused afterwards: a
//! code is spent by its first redemption, right or wrong.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use oxehr_auth::oauth::{self, RefreshKind};
use oxehr_auth::token::{self, Claims};
use oxehr_auth::{parse_scopes, Role};
use oxehr_store::oauth::{self as rows, AccessRow, ClientRow, Consumed, RefreshRow};
use oxehr_store::{StoreError, Tx};

use super::{blocking, no_store, parse_form, write, Form, OAuthError, Smart};

/// Seconds of clock difference tolerated; rows expire from the tables this much later.
pub(crate) const LEEWAY_SECS: u64 = token::LEEWAY_SECS;

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
    parse_form(&body).map_err(|why| OAuthError::new("invalid_request", why))
}

fn answer(result: Answer) -> Response {
    match result {
        Ok(body) => no_store(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
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
    answer(match form.get("grant_type") {
        Some("authorization_code") => authorization_code(&s, &form).await,
        Some("refresh_token") => refresh_token(&s, &form).await,
        Some("client_credentials") => client_credentials(&s, &form).await,
        Some(_) => Err(OAuthError::new(
            "unsupported_grant_type",
            "grant_type must be authorization_code, refresh_token or client_credentials",
        )),
        None => Err(OAuthError::new("invalid_request", "grant_type is required")),
    })
}

fn required<'a>(form: &'a Form, name: &str) -> Result<&'a str, OAuthError> {
    form.get(name)
        .ok_or_else(|| OAuthError::new("invalid_request", format!("{name} is required")))
}

fn read_client(s: &Smart, id: String) -> impl FnOnce() -> Result<Option<ClientRow>, StoreError> {
    let store = s.store().clone();
    move || {
        let mut tx = store.read()?;
        rows::get_client(tx.as_mut(), &id)
    }
}

/// The public client named by `client_id` (apps send no secret; PKCE binds the code).
async fn public_client(s: &Smart, form: &Form) -> Result<ClientRow, OAuthError> {
    let id = required(form, "client_id")?.to_owned();
    blocking(read_client(s, id))
        .await?
        .map_err(OAuthError::storage)?
        .filter(|c| c.kind == "public" && !c.disabled)
        .ok_or_else(|| OAuthError::new("invalid_client", "unknown or disabled client"))
}

/// The backend service a signed client assertion authenticates, and the assertion's
/// `jti` and `exp` (still to be checked as unused).
async fn backend_client(
    s: &Smart,
    form: &Form,
) -> Result<(ClientRow, oauth::Assertion), OAuthError> {
    if form.get("client_assertion_type") != Some(oauth::CLIENT_ASSERTION_TYPE) {
        return Err(OAuthError::new(
            "invalid_client",
            format!(
                "client_assertion_type must be {}",
                oauth::CLIENT_ASSERTION_TYPE
            ),
        ));
    }
    let assertion = required(form, "client_assertion")?;
    let claimed = oauth::assertion_client_id(assertion)
        .ok_or_else(|| OAuthError::new("invalid_client", "the client assertion is malformed"))?;
    if form.get("client_id").is_some_and(|id| id != claimed) {
        return Err(OAuthError::new(
            "invalid_client",
            "client_id differs from the assertion's",
        ));
    }
    let client = blocking(read_client(s, claimed))
        .await?
        .map_err(OAuthError::storage)?
        .filter(|c| c.kind == "backend" && !c.disabled)
        .ok_or_else(|| OAuthError::new("invalid_client", "unknown or disabled client"))?;
    let jwks = client.jwks.clone().unwrap_or_default();
    let verified =
        oauth::verify_client_assertion(assertion, &jwks, &client.client_id, &s.urls.token, s.now())
            .map_err(|e| OAuthError::new("invalid_client", e.to_string()))?;
    Ok((client, verified))
}

/// What one token response carries, before signing.
struct Issue {
    subject: String,
    role: String,
    organization: Option<String>,
    fhir_user: Option<String>,
    patient: Option<String>,
    scope: String,
    client_id: String,
    grant_id: Option<String>,
    ttl: u64,
}

/// Signs an access token and records it (so it can be revoked) inside the job.
fn issue_access(
    s: &Smart,
    tx: &mut dyn Tx,
    i: &Issue,
    now: u64,
) -> Result<Result<(String, Claims), OAuthError>, StoreError> {
    let claims = Claims {
        iss: s.app.auth.issuer.clone(),
        sub: i.subject.clone(),
        aud: s.app.auth.issuer.clone(),
        iat: now,
        exp: now + i.ttl,
        jti: token::new_token_id(),
        scope: i.scope.clone(),
        role: i.role.clone(),
        org: i.organization.clone(),
        fhir_user: i.fhir_user.clone(),
        patient: i.patient.clone(),
    };
    let Ok(signed) = token::issue(&s.app.auth.key, &claims) else {
        return Ok(Err(OAuthError::new(
            "server_error",
            "the token could not be signed",
        )));
    };
    rows::insert_access(
        tx,
        &AccessRow {
            jti: claims.jti.clone(),
            grant_id: i.grant_id.clone(),
            client_id: i.client_id.clone(),
            subject: i.subject.clone(),
            expires: secs(claims.exp),
            revoked: false,
        },
    )?;
    let horizon = now.saturating_sub(LEEWAY_SECS);
    rows::delete_expired(tx, secs(horizon))?;
    Ok(Ok((signed, claims)))
}

fn secs(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// The token response (RFC 6749 §5.1, SMART §2.0.9).
fn response(
    claims: &Claims,
    access: String,
    refresh: Option<String>,
    patient_context: bool,
) -> Value {
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": claims.exp - claims.iat,
        "scope": claims.scope,
    });
    if let (true, Some(p)) = (patient_context, &claims.patient) {
        body["patient"] = json!(p);
    }
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    body
}

/// Whether a granted scope string asks for a refresh token, and which kind.
fn refresh_kind(scope: &str) -> Option<RefreshKind> {
    let tokens: Vec<&str> = scope.split(' ').collect();
    if tokens.contains(&"offline_access") {
        Some(RefreshKind::Offline)
    } else if tokens.contains(&"online_access") {
        Some(RefreshKind::Online)
    } else {
        None
    }
}

fn has_patient_context(scope: &str) -> bool {
    scope.split(' ').any(|t| t == "launch/patient")
}

/// The account behind a grant, if it may still be issued tokens.
fn live_account(
    tx: &mut dyn Tx,
    name: &str,
) -> Result<Option<oxehr_store::accounts::AccountRow>, StoreError> {
    Ok(oxehr_store::accounts::get(tx, name)?
        .filter(|a| !a.disabled && Role::parse(&a.role).is_some()))
}

/// One grant to an account, as its code or refresh token row holds it.
struct Granted<'a> {
    grant_id: &'a str,
    client_id: &'a str,
    /// The scopes granted (which decide whether a refresh token goes with the answer).
    scope: &'a str,
    patient: Option<String>,
}

/// Issues the access token with `access_scope`, and a new refresh token when the grant
/// has one.
fn issue_for_account(
    s: &Smart,
    tx: &mut dyn Tx,
    account: &oxehr_store::accounts::AccountRow,
    g: &Granted,
    access_scope: &str,
    now: u64,
) -> Result<Answer, StoreError> {
    let issue = Issue {
        subject: account.name.clone(),
        role: account.role.clone(),
        organization: account.organization.clone(),
        fhir_user: account.person.clone(),
        patient: g.patient.clone(),
        scope: access_scope.to_owned(),
        client_id: g.client_id.to_owned(),
        grant_id: Some(g.grant_id.to_owned()),
        ttl: s.config.access_token_secs,
    };
    let (access, claims) = match issue_access(s, tx, &issue, now)? {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    let refresh = match refresh_kind(g.scope) {
        None => None,
        Some(kind) => {
            let ttl = match kind {
                RefreshKind::Offline => s.config.offline_refresh_secs,
                RefreshKind::Online => s.config.online_refresh_secs,
            };
            let value = oauth::new_secret();
            rows::insert_refresh(
                tx,
                &RefreshRow {
                    token_hash: oauth::secret_hash(&value),
                    grant_id: g.grant_id.to_owned(),
                    client_id: g.client_id.to_owned(),
                    account: account.name.clone(),
                    scope: g.scope.to_owned(),
                    patient: g.patient.clone(),
                    expires: secs(now + ttl),
                    used: false,
                    revoked: false,
                },
            )?;
            Some(value)
        }
    };
    Ok(Ok(response(
        &claims,
        access,
        refresh,
        has_patient_context(access_scope),
    )))
}

/// `grant_type=authorization_code`.
async fn authorization_code(s: &Smart, form: &Form) -> Answer {
    let client = public_client(s, form).await?;
    let code = required(form, "code")?.to_owned();
    let redirect_uri = required(form, "redirect_uri")?.to_owned();
    let verifier = required(form, "code_verifier")?.to_owned();
    let (st, now) = (s.clone(), s.now());
    let store = s.store().clone();
    blocking(move || {
        write(&store, move |tx| {
            let bad = |why: &str| Ok(Err(OAuthError::new("invalid_grant", why)));
            let row = match rows::consume_code(tx, &oauth::secret_hash(&code))? {
                Consumed::Unknown => return bad("the code is unknown or expired"),
                Consumed::Reused(row) => {
                    // RFC 6749 §4.1.2: a code used twice revokes what it gave.
                    rows::revoke_grant(tx, &row.grant_id)?;
                    tracing::warn!(client_id = %row.client_id, "an authorization code was reused; its grant is revoked");
                    return bad("the code was already used");
                }
                Consumed::Fresh(row) => row,
            };
            if row.expires <= secs(now) {
                return bad("the code has expired");
            }
            if row.client_id != client.client_id {
                return bad("the code was issued to another client");
            }
            if row.redirect_uri != redirect_uri {
                return bad("redirect_uri differs from the authorization request's");
            }
            if !oauth::pkce_verifies(&verifier, &row.code_challenge) {
                return bad("code_verifier does not match the code_challenge");
            }
            let Some(account) = live_account(tx, &row.account)? else {
                return bad("the account is disabled or no longer exists");
            };
            let g = Granted {
                grant_id: &row.grant_id,
                client_id: &row.client_id,
                scope: &row.scope,
                patient: row.patient.clone(),
            };
            issue_for_account(&st, tx, &account, &g, &row.scope, now)
        })
    })
    .await?
    .map_err(OAuthError::storage)?
}

/// `grant_type=refresh_token`: the token is exchanged for a new access token and a new
/// refresh token; using it again revokes the grant (RFC 6749 §10.4, the OAuth security
/// BCP's refresh token rotation).
async fn refresh_token(s: &Smart, form: &Form) -> Answer {
    let client = public_client(s, form).await?;
    let value = required(form, "refresh_token")?.to_owned();
    let narrowed = form.get("scope").map(str::to_owned);
    let (st, now) = (s.clone(), s.now());
    let store = s.store().clone();
    blocking(move || {
        write(&store, move |tx| {
            let bad = |why: &str| Ok(Err(OAuthError::new("invalid_grant", why)));
            let hash = oauth::secret_hash(&value);
            // RFC 6749 §6: a narrower scope may be asked for the access token (checked
            // before the token is spent); the new refresh token keeps the whole grant.
            let access_scope = match (&narrowed, rows::get_refresh(tx, &hash)?) {
                (Some(n), Some(row)) => {
                    let granted: Vec<&str> = row.scope.split(' ').collect();
                    if n.split(' ').filter(|t| !t.is_empty()).any(|t| !granted.contains(&t)) {
                        return Ok(Err(OAuthError::new(
                            "invalid_scope",
                            "scope exceeds what was granted",
                        )));
                    }
                    Some(n.clone())
                }
                _ => None,
            };
            let row = match rows::consume_refresh(tx, &hash)? {
                Consumed::Unknown => return bad("the refresh token is unknown or expired"),
                Consumed::Reused(row) => {
                    if !row.revoked {
                        rows::revoke_grant(tx, &row.grant_id)?;
                        tracing::warn!(client_id = %row.client_id, "a refresh token was reused; its grant is revoked");
                    }
                    return bad("the refresh token was already used or revoked");
                }
                Consumed::Fresh(row) => row,
            };
            if row.revoked {
                return bad("the refresh token was revoked");
            }
            if row.expires <= secs(now) {
                return bad("the refresh token has expired");
            }
            if row.client_id != client.client_id {
                return bad("the refresh token was issued to another client");
            }
            let access_scope = access_scope.unwrap_or_else(|| row.scope.clone());
            let Some(account) = live_account(tx, &row.account)? else {
                return bad("the account is disabled or no longer exists");
            };
            let g = Granted {
                grant_id: &row.grant_id,
                client_id: &row.client_id,
                scope: &row.scope,
                patient: row.patient.clone(),
            };
            issue_for_account(&st, tx, &account, &g, &access_scope, now)
        })
    })
    .await?
    .map_err(OAuthError::storage)?
}

/// `grant_type=client_credentials` (SMART Backend Services): `system/` scopes only,
/// for a backend service whose signed assertion verifies with its registered keys.
async fn client_credentials(s: &Smart, form: &Form) -> Answer {
    let (client, assertion) = backend_client(s, form).await?;
    let requested = oauth::parse_requested(form.get("scope").unwrap_or(""))
        .map_err(|e| OAuthError::new("invalid_scope", e.to_string()))?;
    let allowed = parse_scopes(&client.scope).unwrap_or_default();
    let granted = oauth::grant_system_scopes(&requested, &allowed);
    if granted.is_empty() {
        return Err(OAuthError::new(
            "invalid_scope",
            "none of the requested scopes is registered for this client (system/ scopes only)",
        ));
    }
    let (st, now) = (s.clone(), s.now());
    let store = s.store().clone();
    blocking(move || {
        write(&store, move |tx| {
            let issuer = format!("assertion:{}", client.client_id);
            if !rows::first_use_of_jti(tx, &issuer, &assertion.jti, secs(assertion.exp))? {
                return Ok(Err(OAuthError::new(
                    "invalid_client",
                    "the client assertion's jti was already used",
                )));
            }
            let issue = Issue {
                subject: format!("client:{}", client.client_id),
                role: Role::SystemAdmin.code().to_owned(),
                organization: None,
                fhir_user: None,
                patient: None,
                scope: granted.join(" "),
                client_id: client.client_id.clone(),
                grant_id: None,
                ttl: st.config.backend_token_secs,
            };
            Ok(issue_access(&st, tx, &issue, now)?
                .map(|(access, claims)| response(&claims, access, None, false)))
        })
    })
    .await?
    .map_err(OAuthError::storage)?
}

/// `POST /auth/revoke` (RFC 7009): a public client names itself with `client_id`, a
/// backend service signs a client assertion. An access token is revoked by its `jti`;
/// a refresh token revokes its whole grant (every refresh and access token of it).
/// Unknown, expired or malformed tokens answer 200 as well (§2.2).
pub(crate) async fn revoke(State(s): State<Smart>, req: Request) -> Response {
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let result = async {
        let client = if form.get("client_assertion").is_some() {
            let (client, assertion) = backend_client(&s, &form).await?;
            let store = s.store().clone();
            let issuer = format!("assertion:{}", client.client_id);
            let fresh = blocking(move || {
                write(&store, move |tx| {
                    rows::first_use_of_jti(tx, &issuer, &assertion.jti, secs(assertion.exp))
                })
            })
            .await?
            .map_err(OAuthError::storage)?;
            if !fresh {
                return Err(OAuthError::new(
                    "invalid_client",
                    "the client assertion's jti was already used",
                ));
            }
            client
        } else {
            public_client(&s, &form).await?
        };
        let value = required(&form, "token")?.to_owned();
        let auth = s.app.auth.clone();
        let now = s.now();
        let store = s.store().clone();
        blocking(move || {
            write(&store, move |tx| {
                let refused = || {
                    Ok(Err(OAuthError::new(
                        "unauthorized_client",
                        "the token was issued to another client",
                    )))
                };
                if let Ok(claims) =
                    token::verify(&auth.key, &value, &auth.issuer, &auth.issuer, now)
                {
                    if let Some(row) = rows::get_access(tx, &claims.jti)? {
                        if row.client_id != client.client_id {
                            return refused();
                        }
                        rows::revoke_access(tx, &claims.jti)?;
                    }
                } else if let Some(row) = rows::get_refresh(tx, &oauth::secret_hash(&value))? {
                    if row.client_id != client.client_id {
                        return refused();
                    }
                    rows::revoke_grant(tx, &row.grant_id)?;
                }
                Ok(Ok(json!({})))
            })
        })
        .await?
        .map_err(OAuthError::storage)?
    }
    .await;
    answer(result)
}

/// `POST /auth/introspect` (RFC 7662). The caller authenticates with a bearer access
/// token of its own: a system administrator or backend service may introspect any
/// token, anyone else only their own. Inactive, unknown or others' tokens answer
/// `{"active": false}` and nothing more.
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
    let Some(value) = form.get("token").map(str::to_owned) else {
        return OAuthError::new("invalid_request", "token is required").into_response();
    };
    let privileged = caller.role == Role::SystemAdmin;
    let me = caller.user.clone();
    let auth = s.app.auth.clone();
    let now = s.now();
    let store = s.store().clone();
    let result = blocking(move || -> Result<Value, StoreError> {
        let mut tx = store.read()?;
        let inactive = json!({"active": false});
        if let Ok(c) = token::verify(&auth.key, &value, &auth.issuer, &auth.issuer, now) {
            if !(privileged || c.sub == me) || !super::token_is_current(tx.as_mut(), &c)? {
                return Ok(inactive);
            }
            let row = rows::get_access(tx.as_mut(), &c.jti)?;
            let mut body = json!({
                "active": true,
                "token_type": "Bearer",
                "scope": c.scope,
                "sub": c.sub,
                "exp": c.exp,
                "iat": c.iat,
                "iss": c.iss,
                "aud": c.aud,
            });
            match c.sub.strip_prefix("client:") {
                Some(id) => body["client_id"] = json!(id),
                None => {
                    body["username"] = json!(c.sub);
                    if let Some(r) = row {
                        body["client_id"] = json!(r.client_id);
                    }
                }
            }
            if let Some(p) = c.patient {
                body["patient"] = json!(p);
            }
            if let Some(u) = c.fhir_user {
                body["fhirUser"] = json!(u);
            }
            return Ok(body);
        }
        let Some(r) = rows::get_refresh(tx.as_mut(), &oauth::secret_hash(&value))? else {
            return Ok(inactive);
        };
        let live = !r.used
            && !r.revoked
            && r.expires > secs(now)
            && (privileged || r.account == me)
            && oxehr_store::accounts::get(tx.as_mut(), &r.account)?.is_some_and(|a| !a.disabled);
        if !live {
            return Ok(inactive);
        }
        let mut body = json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": r.scope,
            "client_id": r.client_id,
            "username": r.account,
            "sub": r.account,
            "exp": r.expires,
        });
        if let Some(p) = r.patient {
            body["patient"] = json!(p);
        }
        Ok(body)
    })
    .await;
    answer(match result {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(OAuthError::storage(e)),
        Err(e) => Err(e),
    })
}
