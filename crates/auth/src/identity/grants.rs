//! The authorization server's grants over the store: the registered clients an
//! authorization request may name, the single-use authorization code a consent gives,
//! and the token endpoint (RFC 6749 §3.2) with its three grants — `authorization_code`
//! (PKCE S256, RFC 7636), `refresh_token` (rotating: each refresh token works once; a
//! reused one revokes its whole grant) and `client_credentials` (SMART Backend Services:
//! a JWT client assertion signed RS384 or ES384, RFC 7523).
//!
//! Every change a grant makes (a code used, a refresh token rotated, an access token
//! recorded) commits in one write job, also when the request is refused afterwards: a
//! code is spent by its first redemption, right or wrong.
//!
//! Refusals are OAuth's error codes ([`GrantError`], RFC 6749 §5.2); the adapter picks
//! the HTTP status. No description carries a code, token or verifier.

use serde_json::{json, Value};

use oxehr_store::oauth::{self as rows, AccessRow, ClientRow, CodeRow, Consumed, RefreshRow};
use oxehr_store::{StoreError, Tx};

use super::{secs, Identity, Unavailable};
use crate::oauth::{self, RefreshKind, UserGrant};
use crate::token::{self, Claims};
use crate::{parse_scopes, Role};

/// An OAuth error answer: the RFC 6749 §5.2 code and a description for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `invalid_scope`,
    /// `unsupported_grant_type`, `unauthorized_client`, `server_error`,
    /// `temporarily_unavailable`.
    pub error: &'static str,
    pub description: String,
}

impl GrantError {
    pub fn new(error: &'static str, description: impl Into<String>) -> GrantError {
        GrantError {
            error,
            description: description.into(),
        }
    }

    /// The store failed (logged; the client is told to try again).
    pub(crate) fn storage(e: StoreError) -> GrantError {
        tracing::error!(error = %e, "authorization server storage failure");
        GrantError::new(
            "temporarily_unavailable",
            "storage is unavailable; try again",
        )
    }
}

impl From<Unavailable> for GrantError {
    fn from(_: Unavailable) -> GrantError {
        GrantError::new(
            "temporarily_unavailable",
            "storage is unavailable; try again",
        )
    }
}

/// A registered, enabled public client (a SMART app), as an authorization request sees
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    /// Its name, shown on the sign-in and consent pages.
    pub name: String,
    /// The scopes it may be granted, space-separated; empty: whatever the user may grant.
    pub scope: String,
}

impl Client {
    /// What a signed-in user with `role` grants this client of the `requested` scopes
    /// (space-separated): what the role may hold, the client may be granted and was
    /// asked for.
    pub fn user_grant(&self, role: Role, requested: &str) -> UserGrant {
        let requested = oauth::parse_requested(requested).unwrap_or_default();
        let allowed = parse_scopes(&self.scope).unwrap_or_default();
        oauth::grant_user_scopes(role, &requested, &allowed)
    }
}

/// Why an authorization request's client was not accepted. The authorization endpoint
/// shows an error page for these and redirects nowhere (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientRefusal {
    #[error("unknown client_id")]
    Unknown,
    #[error("redirect_uri is not one this client registered")]
    RedirectNotRegistered,
    #[error("storage is unavailable; try again")]
    Unavailable,
}

/// What a consent approves: the code is bound to all of it.
#[derive(Debug, Clone)]
pub struct CodeRequest {
    /// The consent's own id and expiry (Unix seconds): a consent gives one code.
    pub consent_id: String,
    pub consent_expires: u64,
    pub client_id: String,
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    pub account: String,
    /// The granted scopes, space-separated.
    pub scope: String,
    pub patient: Option<String>,
}

/// A token request's form parameters (empty ones as absent).
#[derive(Default, Clone)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

/// Prints no code, verifier, token or assertion.
impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

pub(crate) fn required<'a>(v: &'a Option<String>, name: &str) -> Result<&'a str, GrantError> {
    v.as_deref()
        .ok_or_else(|| GrantError::new("invalid_request", format!("{name} is required")))
}

impl Identity {
    /// The registered, enabled public client `client_id`, if `redirect_uri` is one it
    /// registered exactly.
    pub fn authorization_client(
        &self,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<Client, ClientRefusal> {
        let row = self.read_client(client_id).map_err(|e| {
            Unavailable::from_store(e);
            ClientRefusal::Unavailable
        })?;
        let row = row
            .filter(|c| c.kind == "public" && !c.disabled)
            .ok_or(ClientRefusal::Unknown)?;
        let registered: Vec<String> = serde_json::from_str(&row.redirect_uris).unwrap_or_default();
        if !registered.iter().any(|r| r == redirect_uri) {
            return Err(ClientRefusal::RedirectNotRegistered);
        }
        Ok(Client {
            client_id: row.client_id,
            name: row.name,
            scope: row.scope,
        })
    }

    /// The single-use authorization code for an approved consent; `None` when this
    /// consent already gave one.
    pub fn issue_code(&self, r: &CodeRequest) -> Result<Option<String>, Unavailable> {
        let now = self.now();
        let code = oauth::new_secret();
        let row = CodeRow {
            code_hash: oauth::secret_hash(&code),
            grant_id: token::new_token_id(),
            client_id: r.client_id.clone(),
            redirect_uri: r.redirect_uri.clone(),
            code_challenge: r.code_challenge.clone(),
            account: r.account.clone(),
            scope: r.scope.clone(),
            patient: r.patient.clone(),
            expires: secs(now + self.config().code_secs),
            used: false,
        };
        let (jti, exp) = (r.consent_id.clone(), secs(r.consent_expires));
        let stored = self
            .write(move |tx| {
                if !rows::first_use_of_jti(tx, "consent", &jti, exp)? {
                    return Ok(false);
                }
                rows::insert_code(tx, &row)?;
                rows::delete_expired(tx, secs(now.saturating_sub(token::LEEWAY_SECS)))?;
                Ok(true)
            })
            .map_err(Unavailable::from_store)?;
        if !stored {
            return Ok(None);
        }
        tracing::info!(client_id = %r.client_id, "authorization code issued");
        Ok(Some(code))
    }

    /// The token endpoint: the grant `req.grant_type` names. `token_endpoint` is this
    /// server's token URL, the audience of backend services' client assertions. The
    /// answer is the token response (RFC 6749 §5.1, SMART §2.0.9).
    pub fn token(&self, req: &TokenRequest, token_endpoint: &str) -> Result<Value, GrantError> {
        match req.grant_type.as_deref() {
            // A reused code or refresh token revokes its grant: its access tokens must
            // not stay taken as current (`bearer`).
            Some("authorization_code") => self.forgetting_on_invalid(self.authorization_code(req)),
            Some("refresh_token") => self.forgetting_on_invalid(self.refresh_token(req)),
            Some("client_credentials") => self.client_credentials(req, token_endpoint),
            Some(_) => Err(GrantError::new(
                "unsupported_grant_type",
                "grant_type must be authorization_code, refresh_token or client_credentials",
            )),
            None => Err(GrantError::new("invalid_request", "grant_type is required")),
        }
    }

    fn read_client(&self, id: &str) -> Result<Option<ClientRow>, StoreError> {
        let mut tx = self.store().read()?;
        rows::get_client(tx.as_mut(), id)
    }

    /// The public client named by `client_id` (apps send no secret; PKCE binds the code).
    pub(crate) fn public_client(
        &self,
        client_id: &Option<String>,
    ) -> Result<ClientRow, GrantError> {
        let id = required(client_id, "client_id")?;
        self.read_client(id)
            .map_err(GrantError::storage)?
            .filter(|c| c.kind == "public" && !c.disabled)
            .ok_or_else(|| GrantError::new("invalid_client", "unknown or disabled client"))
    }

    /// The backend service a signed client assertion authenticates, and the assertion's
    /// `jti` and `exp` (still to be checked as unused).
    pub(crate) fn backend_client(
        &self,
        assertion_type: &Option<String>,
        assertion: &Option<String>,
        client_id: &Option<String>,
        token_endpoint: &str,
    ) -> Result<(ClientRow, oauth::Assertion), GrantError> {
        if assertion_type.as_deref() != Some(oauth::CLIENT_ASSERTION_TYPE) {
            return Err(GrantError::new(
                "invalid_client",
                format!(
                    "client_assertion_type must be {}",
                    oauth::CLIENT_ASSERTION_TYPE
                ),
            ));
        }
        let assertion = required(assertion, "client_assertion")?;
        let claimed = oauth::assertion_client_id(assertion).ok_or_else(|| {
            GrantError::new("invalid_client", "the client assertion is malformed")
        })?;
        if client_id.as_deref().is_some_and(|id| id != claimed) {
            return Err(GrantError::new(
                "invalid_client",
                "client_id differs from the assertion's",
            ));
        }
        let client = self
            .read_client(&claimed)
            .map_err(GrantError::storage)?
            .filter(|c| c.kind == "backend" && !c.disabled)
            .ok_or_else(|| GrantError::new("invalid_client", "unknown or disabled client"))?;
        let jwks = client.jwks.clone().unwrap_or_default();
        let verified = oauth::verify_client_assertion(
            assertion,
            &jwks,
            &client.client_id,
            token_endpoint,
            self.now(),
        )
        .map_err(|e| GrantError::new("invalid_client", e.to_string()))?;
        Ok((client, verified))
    }

    /// Signs an access token and records it (so it can be revoked) inside the job.
    fn issue_access(
        &self,
        tx: &mut dyn Tx,
        i: &Issue,
        now: u64,
    ) -> Result<Result<(String, Claims), GrantError>, StoreError> {
        let claims = Claims {
            iss: self.issuer().to_owned(),
            sub: i.subject.clone(),
            aud: self.issuer().to_owned(),
            iat: now,
            exp: now + i.ttl,
            jti: token::new_token_id(),
            scope: i.scope.clone(),
            role: i.role.clone(),
            org: i.organization.clone(),
            fhir_user: i.fhir_user.clone(),
            patient: i.patient.clone(),
        };
        let Ok(signed) = token::issue(self.key(), &claims) else {
            return Ok(Err(GrantError::new(
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
        let horizon = now.saturating_sub(token::LEEWAY_SECS);
        rows::delete_expired(tx, secs(horizon))?;
        Ok(Ok((signed, claims)))
    }

    /// Issues the access token with `access_scope`, and a new refresh token when the
    /// grant has one.
    fn issue_for_account(
        &self,
        tx: &mut dyn Tx,
        account: &oxehr_store::accounts::AccountRow,
        g: &Granted,
        access_scope: &str,
        now: u64,
    ) -> Result<Result<Value, GrantError>, StoreError> {
        let config = self.config();
        let issue = Issue {
            subject: account.name.clone(),
            role: account.role.clone(),
            organization: account.organization.clone(),
            fhir_user: account.person.clone(),
            patient: g.patient.clone(),
            scope: access_scope.to_owned(),
            client_id: g.client_id.to_owned(),
            grant_id: Some(g.grant_id.to_owned()),
            ttl: config.access_token_secs,
        };
        let (access, claims) = match self.issue_access(tx, &issue, now)? {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        let refresh = match refresh_kind(g.scope) {
            None => None,
            Some(kind) => {
                let ttl = match kind {
                    RefreshKind::Offline => config.offline_refresh_secs,
                    RefreshKind::Online => config.online_refresh_secs,
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

    /// `out`, after forgetting every token found current when it is `invalid_grant`
    /// (which may have revoked a grant).
    fn forgetting_on_invalid(&self, out: Result<Value, GrantError>) -> Result<Value, GrantError> {
        if matches!(&out, Err(e) if e.error == "invalid_grant") {
            self.forget_current_tokens();
        }
        out
    }

    /// `grant_type=authorization_code`.
    fn authorization_code(&self, req: &TokenRequest) -> Result<Value, GrantError> {
        let client = self.public_client(&req.client_id)?;
        let code = required(&req.code, "code")?.to_owned();
        let redirect_uri = required(&req.redirect_uri, "redirect_uri")?.to_owned();
        let verifier = required(&req.code_verifier, "code_verifier")?.to_owned();
        let (id, now) = (self.clone(), self.now());
        self.write(move |tx| {
            let bad = |why: &str| Ok(Err(GrantError::new("invalid_grant", why)));
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
            id.issue_for_account(tx, &account, &g, &row.scope, now)
        })
        .map_err(GrantError::storage)?
    }

    /// `grant_type=refresh_token`: the token is exchanged for a new access token and a
    /// new refresh token; using it again revokes the grant (RFC 6749 §10.4, the OAuth
    /// security BCP's refresh token rotation).
    fn refresh_token(&self, req: &TokenRequest) -> Result<Value, GrantError> {
        let client = self.public_client(&req.client_id)?;
        let value = required(&req.refresh_token, "refresh_token")?.to_owned();
        let narrowed = req.scope.clone();
        let (id, now) = (self.clone(), self.now());
        self.write(move |tx| {
            let bad = |why: &str| Ok(Err(GrantError::new("invalid_grant", why)));
            let hash = oauth::secret_hash(&value);
            // RFC 6749 §6: a narrower scope may be asked for the access token (checked
            // before the token is spent); the new refresh token keeps the whole grant.
            let access_scope = match (&narrowed, rows::get_refresh(tx, &hash)?) {
                (Some(n), Some(row)) => {
                    let granted: Vec<&str> = row.scope.split(' ').collect();
                    if n.split(' ').filter(|t| !t.is_empty()).any(|t| !granted.contains(&t)) {
                        return Ok(Err(GrantError::new(
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
            id.issue_for_account(tx, &account, &g, &access_scope, now)
        })
        .map_err(GrantError::storage)?
    }

    /// `grant_type=client_credentials` (SMART Backend Services): `system/` scopes only,
    /// for a backend service whose signed assertion verifies with its registered keys.
    fn client_credentials(
        &self,
        req: &TokenRequest,
        token_endpoint: &str,
    ) -> Result<Value, GrantError> {
        let (client, assertion) = self.backend_client(
            &req.client_assertion_type,
            &req.client_assertion,
            &req.client_id,
            token_endpoint,
        )?;
        let requested = oauth::parse_requested(req.scope.as_deref().unwrap_or(""))
            .map_err(|e| GrantError::new("invalid_scope", e.to_string()))?;
        let allowed = parse_scopes(&client.scope).unwrap_or_default();
        let granted = oauth::grant_system_scopes(&requested, &allowed);
        if granted.is_empty() {
            return Err(GrantError::new(
                "invalid_scope",
                "none of the requested scopes is registered for this client (system/ scopes only)",
            ));
        }
        let (id, now) = (self.clone(), self.now());
        self.write(move |tx| {
            let issuer = format!("assertion:{}", client.client_id);
            if !rows::first_use_of_jti(tx, &issuer, &assertion.jti, secs(assertion.exp))? {
                return Ok(Err(GrantError::new(
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
                ttl: id.config().backend_token_secs,
            };
            Ok(id
                .issue_access(tx, &issue, now)?
                .map(|(access, claims)| response(&claims, access, None, false)))
        })
        .map_err(GrantError::storage)?
    }
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

/// One grant to an account, as its code or refresh token row holds it.
struct Granted<'a> {
    grant_id: &'a str,
    client_id: &'a str,
    /// The scopes granted (which decide whether a refresh token goes with the answer).
    scope: &'a str,
    patient: Option<String>,
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
