//! A bearer access token → the caller it stands for. The token must verify (signature,
//! algorithm, issuer, audience, expiry, by the system clock), name a known role and
//! well-formed scopes, and still stand: its subject — an account, or `client:<id>` for
//! a backend service — exists, is enabled and holds the token's role (disabling an
//! account stops its tokens at once), and its `jti` is not revoked.
//!
//! That last check reads the store. A token found current is remembered for
//! `IdentityConfig::token_check_secs` (5 s by default), so a client's stream of
//! requests reads it once in that time: disabling an account or revoking a token from
//! another process takes effect within it; a revocation through this server's own
//! endpoint takes effect at once. [`Identity::identify_bearer_fast`] answers
//! without the store whenever it can, so an adapter need not leave its thread.

use oxehr_store::{ReadTx, StoreError};

use super::{system_now, Identity, Unavailable};
use crate::token::{self, Claims};
use crate::{parse_scopes, Caller, Role};

/// Why a bearer token was refused. The messages say why in general terms and never
/// contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerRefusal {
    /// It does not verify: the reason (bad signature, expired, other issuer, …).
    #[error("{0}")]
    Invalid(String),
    #[error("the access token names an unknown role")]
    UnknownRole,
    #[error("the access token's scopes are malformed")]
    MalformedScopes,
    /// Revoked, or its account or client is disabled, gone or holds another role.
    #[error("the access token was revoked, or its account is disabled or no longer exists")]
    NotCurrent,
    /// The store failed.
    #[error("accounts are unavailable")]
    Unavailable,
}

/// A token found current: whose, and until when (configured clock, Unix seconds) that
/// stands.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    sub: String,
    role: String,
    until: u64,
}

/// Tokens remembered at most; past it the expired ones are dropped, and if none is, all.
const MAX_REMEMBERED: usize = 50_000;

/// A verified token's claims, before the store is asked.
struct Verified {
    claims: Claims,
    role: Role,
    scopes: Vec<crate::Scope>,
}

impl Identity {
    /// The caller `bearer` (the token, without `Bearer `) stands for; see the module
    /// documentation. The caller's client address is the adapter's to fill in.
    pub fn identify_bearer(&self, bearer: &str) -> Result<Caller, BearerRefusal> {
        let v = self.verify_bearer(bearer)?;
        if let Some(caller) = self.remembered(&v) {
            return Ok(caller);
        }
        let current = self
            .store()
            .read()
            .and_then(|mut tx| token_is_current(tx.as_mut(), &v.claims))
            .map_err(|e| {
                Unavailable::from_store(e);
                BearerRefusal::Unavailable
            })?;
        if !current {
            return Err(BearerRefusal::NotCurrent);
        }
        self.remember(&v.claims);
        Ok(caller_of(v))
    }

    /// [`identify_bearer`](Self::identify_bearer) when it needs no store: a token that
    /// does not verify, or one found current within `token_check_secs`. `None`: ask
    /// `identify_bearer` (on a thread that may block).
    pub fn identify_bearer_fast(&self, bearer: &str) -> Option<Result<Caller, BearerRefusal>> {
        match self.verify_bearer(bearer) {
            Err(refused) => Some(Err(refused)),
            Ok(v) => self.remembered(&v).map(Ok),
        }
    }

    /// Forgets every token found current: one was revoked here (a refresh token's
    /// revocation ends access tokens whose ids are not at hand), so the next request
    /// of each asks the store again.
    pub(crate) fn forget_current_tokens(&self) {
        self.current_tokens().clear();
    }

    fn current_tokens(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Current>> {
        self.inner.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn verify_bearer(&self, bearer: &str) -> Result<Verified, BearerRefusal> {
        // The system clock: tokens are issued and checked in real time (the configured
        // clock moves the authorization server's codes, grants and lock-outs).
        let claims = token::verify(
            self.key(),
            bearer,
            self.issuer(),
            self.issuer(),
            system_now(),
        )
        .map_err(|e| BearerRefusal::Invalid(e.to_string()))?;
        let role = Role::parse(&claims.role).ok_or(BearerRefusal::UnknownRole)?;
        let scopes = parse_scopes(&claims.scope).map_err(|_| BearerRefusal::MalformedScopes)?;
        Ok(Verified {
            claims,
            role,
            scopes,
        })
    }

    /// The caller, when the token was found current recently enough.
    fn remembered(&self, v: &Verified) -> Option<Caller> {
        let secs = self.config().token_check_secs;
        if secs == 0 {
            return None;
        }
        let now = self.now();
        let found = self
            .current_tokens()
            .get(&v.claims.jti)
            .is_some_and(|c| c.until > now && c.sub == v.claims.sub && c.role == v.claims.role);
        found.then(|| {
            caller_of(Verified {
                claims: v.claims.clone(),
                role: v.role,
                scopes: v.scopes.clone(),
            })
        })
    }

    fn remember(&self, claims: &Claims) {
        let secs = self.config().token_check_secs;
        if secs == 0 {
            return;
        }
        let now = self.now();
        let mut map = self.current_tokens();
        if map.len() >= MAX_REMEMBERED {
            map.retain(|_, c| c.until > now);
            if map.len() >= MAX_REMEMBERED {
                map.clear();
            }
        }
        map.insert(
            claims.jti.clone(),
            Current {
                sub: claims.sub.clone(),
                role: claims.role.clone(),
                until: now.saturating_add(secs),
            },
        );
    }
}

fn caller_of(v: Verified) -> Caller {
    Caller::new(
        v.claims.sub,
        v.role,
        v.claims.org,
        v.claims.fhir_user,
        v.claims.patient,
        &v.scopes,
    )
}

/// Whether an access token (already verified) still stands: its subject exists, is
/// enabled and holds the token's role, and its `jti` is not revoked. Two indexed
/// lookups in one snapshot.
pub(crate) fn token_is_current<T: ReadTx + ?Sized>(
    tx: &mut T,
    claims: &Claims,
) -> Result<bool, StoreError> {
    let subject_ok = match claims.sub.strip_prefix("client:") {
        Some(id) => {
            claims.role == Role::SystemAdmin.code()
                && oxehr_store::oauth::get_client(tx, id)?
                    .is_some_and(|c| c.kind == "backend" && !c.disabled)
        }
        None => oxehr_store::accounts::get(tx, &claims.sub)?
            .is_some_and(|a| !a.disabled && a.role == claims.role),
    };
    Ok(subject_ok && !oxehr_store::oauth::is_access_revoked(tx, &claims.jti)?)
}
