//! A bearer access token → the caller it stands for. The token must verify (signature,
//! algorithm, issuer, audience, expiry, by the system clock), name a known role and
//! well-formed scopes, and still stand: its subject — an account, or `client:<id>` for
//! a backend service — exists, is enabled and holds the token's role (disabling an
//! account stops its tokens at once), and its `jti` is not revoked.

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

impl Identity {
    /// The caller `bearer` (the token, without `Bearer `) stands for; see the module
    /// documentation. The caller's client address is the adapter's to fill in.
    pub fn identify_bearer(&self, bearer: &str) -> Result<Caller, BearerRefusal> {
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
        let current = self
            .store()
            .read()
            .and_then(|mut tx| token_is_current(tx.as_mut(), &claims))
            .map_err(|e| {
                Unavailable::from_store(e);
                BearerRefusal::Unavailable
            })?;
        if !current {
            return Err(BearerRefusal::NotCurrent);
        }
        Ok(Caller::new(
            claims.sub,
            role,
            claims.org,
            claims.fhir_user,
            claims.patient,
            &scopes,
        ))
    }
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
