//! Who is calling, over the store: the one place every adapter (the REST API, the web
//! pages) asks to sign a person in, to start, check and end a browser session, to turn
//! a bearer token into a [`Caller`], and to run the OAuth 2.0 / SMART grants.
//!
//! [`Identity`] is built once by the binary from the store, the token signing key, the
//! issuer and the rules ([`IdentityConfig`]: lifetimes, the sign-in throttle, the
//! session idle time, the clock). Its functions block (the store does): adapters call
//! them on a blocking thread.
//!
//! - [`sign_in`]: user name, password, authenticator code → the account, with the
//!   throttle and the sign-in audit record.
//! - [`session`]: browser sessions (only the SHA-256 of a session id is stored).
//! - [`bearer`]: an access token → the caller, checked against its account or backend
//!   client and the revoked tokens.
//! - [`grants`]: registered clients, authorization codes, the token endpoint's grants.
//! - [`revocation`]: token revocation (RFC 7009) and introspection (RFC 7662).
//!
//! The rules themselves stay in the pure modules (`oauth`, `token`, `totp`, `throttle`,
//! `password`); this module is where they meet the rows.
//!
//! Nothing here logs a password, code, token or session id.

pub mod bearer;
pub mod grants;
pub mod revocation;
pub mod session;
pub mod sign_in;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use oxehr_store::accounts::AccountRow;
use oxehr_store::{Store, StoreError, Tx};

use crate::token::SigningKey;
use crate::{parse_scopes, Caller, Role, Throttle, ThrottlePolicy};

pub use bearer::BearerRefusal;
pub use grants::{Client, ClientRefusal, CodeRequest, GrantError, TokenRequest};
pub use revocation::RevokeRequest;
pub use session::{cookie_value, set_cookie, SessionRefusal, SESSION_COOKIE};
pub use sign_in::{SignInAttempt, SignInRefusal, SignedIn};

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
        system_now() + self.ahead.as_ref().map_or(0, |a| a.load(Ordering::Relaxed))
    }
}

/// Seconds since the Unix epoch by the system clock.
pub(crate) fn system_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The rules of sign-in, sessions and the authorization server.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
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
    /// Lifetime of a refresh token granted with `online_access` (default 8 h). Apps'
    /// grants outlive browser sessions, so "while the user is online" is approximated
    /// by this.
    pub online_refresh_secs: u64,
    /// Lock-out after failed sign-ins, per user name and per client address.
    pub login_throttle: ThrottlePolicy,
    /// A web session ends after this many seconds without a request (default 900).
    pub session_idle_secs: u64,
    pub clock: Clock,
    /// The key TOTP secrets are sealed with in the database (`sealed`); the server
    /// keeps it in `<data>/secrets/secrets-key`. The default is a new random key,
    /// good for one process (tests).
    pub secrets_key: crate::SecretKey,
    /// How long, in seconds, an access token found current (its account or client
    /// enabled and holding the role, the token not revoked) is taken as current without
    /// reading the store again (default 5; 0 checks every request). Disabling an account
    /// or revoking a token elsewhere takes effect within this time; a revocation through
    /// this server's own endpoint takes effect at once.
    pub token_check_secs: u64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            access_token_secs: 3600,
            backend_token_secs: 300,
            code_secs: 60,
            offline_refresh_secs: 30 * 86_400,
            online_refresh_secs: 8 * 3600,
            login_throttle: ThrottlePolicy::default(),
            session_idle_secs: 15 * 60,
            clock: Clock::system(),
            secrets_key: crate::SecretKey::generate(),
            token_check_secs: 5,
        }
    }
}

/// The storage behind accounts, sessions or tokens failed; the caller answers "try
/// again" (the cause is in the server log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("accounts and sessions are unavailable; try again")]
pub struct Unavailable;

impl Unavailable {
    /// Logs the storage error (which holds no secret) and hides it from the caller.
    pub(crate) fn from_store(e: StoreError) -> Unavailable {
        tracing::error!(error = %e, "identity storage failure");
        Unavailable
    }
}

/// Sign-in, sessions, bearer tokens and the OAuth grants over one store (see the module
/// documentation). Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    key: SigningKey,
    issuer: String,
    config: IdentityConfig,
    /// Failed sign-ins, in memory: a restart forgets them (acceptable for a lock-out
    /// measured in minutes; several servers each keep their own).
    throttle: Mutex<Throttle>,
    /// Access tokens found current, by `jti` (`bearer`): subject, role, and until when
    /// (by the configured clock) the finding stands without asking the store again.
    current: Mutex<std::collections::HashMap<String, bearer::Current>>,
}

/// Prints neither the key nor the throttle's keys (user names, addresses).
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("issuer", &self.inner.issuer)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// `issuer` is what this server's access tokens name as issuer and audience.
    pub fn new(
        store: Arc<dyn Store>,
        key: SigningKey,
        issuer: impl Into<String>,
        config: IdentityConfig,
    ) -> Identity {
        Identity {
            inner: Arc::new(Inner {
                store,
                key,
                issuer: issuer.into(),
                throttle: Mutex::new(Throttle::new(config.login_throttle)),
                current: Mutex::new(std::collections::HashMap::new()),
                config,
            }),
        }
    }

    /// The issuer (and audience) of this server's access tokens.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.inner.config
    }

    /// Now, by the configured clock, in Unix seconds.
    pub fn now(&self) -> u64 {
        self.inner.config.clock.now()
    }

    /// Seals `value` for a round trip through a browser ([`crate::oauth::seal`] with
    /// this server's key).
    pub fn seal<T: serde::Serialize>(
        &self,
        purpose: &str,
        value: &T,
    ) -> Result<String, crate::AuthError> {
        crate::oauth::seal(&self.inner.key, purpose, value)
    }

    /// Opens what [`seal`](Self::seal) made for `purpose`; `None` when altered.
    pub fn unseal<T: serde::de::DeserializeOwned>(&self, purpose: &str, sealed: &str) -> Option<T> {
        crate::oauth::unseal(&self.inner.key, purpose, sealed)
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub(crate) fn key(&self) -> &SigningKey {
        &self.inner.key
    }

    /// Runs a write job that answers `R`, retrying a few times when a concurrent
    /// transaction conflicts (PostgreSQL).
    pub(crate) fn write<R: Send + 'static>(
        &self,
        job: impl Fn(&mut dyn Tx) -> Result<R, StoreError> + Send + Sync + 'static,
    ) -> Result<R, StoreError> {
        let job = Arc::new(job);
        let mut attempts = 0;
        loop {
            let j = job.clone();
            let out = self
                .inner
                .store
                .write(Box::new(move |tx| Ok(Box::new(j(tx)?))));
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
}

/// The caller an account acts as when it signs in itself (a browser session, the
/// consent page): everything its role may do. `None` when the row names a role this
/// build does not know.
pub(crate) fn account_caller(account: &AccountRow) -> Option<Caller> {
    let role = Role::parse(&account.role)?;
    let scope = if matches!(role, Role::Patient | Role::Proxy) {
        "patient/*.cruds"
    } else if role == Role::SystemAdmin {
        "system/*.cruds"
    } else {
        "user/*.cruds"
    };
    Some(Caller::new(
        account.name.clone(),
        role,
        account.organization.clone(),
        account.person.clone(),
        crate::accounts::own_patient(account),
        &parse_scopes(scope).unwrap_or_default(),
    ))
}

/// Unix seconds as the tables keep them.
pub(crate) fn secs(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

#[cfg(test)]
pub(crate) mod tests;
