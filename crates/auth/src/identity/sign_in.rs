//! Signing a person in with user name, password and — when the account has an
//! authenticator — a TOTP code, for an app (the authorization endpoint) or a browser
//! session. Failed attempts count against the user name and the client's address
//! (`throttle`); every attempt that is checked, and every success, is a record in the
//! audit trail (`login` / `login-failed`), which names the user and what the sign-in
//! was for, never the password or code.

use oxehr_store::accounts::{self, AccountRow};
use oxehr_store::audit::{self, AuditRecord};
use oxehr_store::StoreError;

use super::{account_caller, Identity, Unavailable};
use crate::accounts::{normalize_name, own_patient};
use crate::{Caller, Role, TotpSecret};

/// One sign-in form, as submitted.
#[derive(Clone)]
pub struct SignInAttempt<'a> {
    pub user_name: &'a str,
    pub password: &'a str,
    /// The authenticator code; empty when none was given.
    pub totp: &'a str,
    /// The client's network address, when known.
    pub client_address: Option<&'a str>,
    /// What the sign-in is for (`client growth-chart`, `web session`), for the audit
    /// trail and the log.
    pub via: &'a str,
}

/// Never prints the password or code.
impl std::fmt::Debug for SignInAttempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInAttempt")
            .field("user_name", &self.user_name)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInRefusal {
    /// Too many failed sign-ins for this name or address: try again in `wait_secs`.
    Throttled { wait_secs: u64 },
    /// Wrong user name, password or code (which one is not said), or a disabled account.
    Wrong,
    /// Right password, but the account must enrol an authenticator first.
    MfaNotEnrolled,
    /// The store failed.
    Unavailable,
}

/// The account a person signed in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub name: String,
    /// `None` when the account's row names a role this build does not know.
    pub role: Option<Role>,
    pub organization: Option<String>,
    /// The resource the account stands for (`Patient/…`, `Practitioner/…`).
    pub person: Option<String>,
    /// A patient account's own Patient id: the record its access rests on.
    pub patient: Option<String>,
    row: AccountRow,
}

impl SignedIn {
    pub(crate) fn new(row: AccountRow) -> SignedIn {
        SignedIn {
            name: row.name.clone(),
            role: Role::parse(&row.role),
            organization: row.organization.clone(),
            person: row.person.clone(),
            patient: own_patient(&row),
            row,
        }
    }

    /// The caller this account is when it acts itself (everything its role may do), to
    /// read what a page about the sign-in shows; `None` for an unknown role.
    pub fn caller(&self) -> Option<Caller> {
        account_caller(&self.row)
    }
}

/// What checking the credentials found.
enum Checked {
    Ok(Box<AccountRow>),
    Refused,
    MfaNotEnrolled,
}

impl Identity {
    /// Signs a person in (see the module documentation). The throttle is asked first;
    /// a refusal for wrong credentials counts a failure against the name and address
    /// and is audited, a success clears the name's failures and is audited.
    pub fn sign_in(&self, attempt: &SignInAttempt) -> Result<SignedIn, SignInRefusal> {
        let name = normalize_name(attempt.user_name).unwrap_or_default();
        // Keyed by the name and by the client's address (when known: a shared "unknown"
        // key would let anyone lock everyone out).
        let user_key = format!("user:{name}");
        let keys: Vec<String> = std::iter::once(user_key.clone())
            .chain(attempt.client_address.map(|a| format!("ip:{a}")))
            .collect();
        let now = self.now();
        let wait = {
            let t = self.throttle();
            keys.iter().filter_map(|k| t.check(k, now).err()).max()
        };
        if let Some(wait_secs) = wait {
            return Err(SignInRefusal::Throttled { wait_secs });
        }
        let checked = self
            .check_credentials(&name, attempt.password, attempt.totp.trim(), now)
            .map_err(|e| {
                Unavailable::from_store(e);
                SignInRefusal::Unavailable
            })?;
        let account = match checked {
            Checked::Ok(a) => a,
            Checked::Refused => {
                {
                    let mut t = self.throttle();
                    for k in &keys {
                        t.record_failure(k, now);
                    }
                }
                self.audit_sign_in(&name, None, "login-failed", "failure", attempt);
                tracing::warn!(via = %attempt.via, "failed sign-in");
                return Err(SignInRefusal::Wrong);
            }
            Checked::MfaNotEnrolled => return Err(SignInRefusal::MfaNotEnrolled),
        };
        self.throttle().record_success(&user_key);
        self.audit_sign_in(&account.name, Some(&account), "login", "success", attempt);
        Ok(SignedIn::new(*account))
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, crate::Throttle> {
        self.inner
            .throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A sign-in (or a failed one) in the audit trail, with what it was for in
    /// `detail`. Committed before the answer; a failure to write it is logged.
    fn audit_sign_in(
        &self,
        name: &str,
        account: Option<&AccountRow>,
        action: &str,
        outcome: &str,
        attempt: &SignInAttempt,
    ) {
        let record = AuditRecord {
            time: now_micros(),
            user: Some(name.to_owned()),
            role: account.map(|a| a.role.clone()),
            organization: account.and_then(|a| a.organization.clone()),
            patient: account.and_then(own_patient),
            resource: None,
            action: action.to_owned(),
            outcome: outcome.to_owned(),
            client: attempt.client_address.map(str::to_owned),
            detail: Some(attempt.via.to_owned()),
        };
        let records = vec![record];
        if self.write(move |tx| audit::append(tx, &records)).is_err() {
            tracing::error!("a sign-in could not be written to the audit trail");
        }
    }

    /// Checks the password and, for an account with an authenticator, the TOTP code —
    /// recording the code's step so that it cannot be used twice.
    fn check_credentials(
        &self,
        name: &str,
        password: &str,
        code: &str,
        now: u64,
    ) -> Result<Checked, StoreError> {
        let account = {
            let mut tx = self.store().read()?;
            accounts::get(tx.as_mut(), name)?
        };
        let Some(account) = account else {
            let _ = crate::verify_password(password, dummy_hash());
            return Ok(Checked::Refused);
        };
        if !crate::verify_password(password, &account.password_hash) || account.disabled {
            return Ok(Checked::Refused);
        }
        let Some(secret) = account.totp_secret.clone() else {
            return Ok(if account.mfa_required {
                Checked::MfaNotEnrolled
            } else {
                Checked::Ok(Box::new(account))
            });
        };
        let key = &self.config().secrets_key;
        let Ok(opened) = key.open(&secret, &account.name) else {
            tracing::warn!("an authenticator secret does not open with this server's secrets key");
            return Ok(Checked::Refused);
        };
        let Ok(secret_value) = TotpSecret::from_base32(&opened) else {
            return Ok(Checked::Refused);
        };
        let secret = secret_value;
        // A secret stored before sealing is sealed in the same write that records the step.
        let reseal =
            (!crate::SecretKey::is_sealed(&account.totp_secret.clone().unwrap_or_default()))
                .then(|| key.seal(&opened, &account.name));
        // The step is checked and recorded in one write, so a code works once even when
        // two sign-ins race.
        let n = name.to_owned();
        let code = code.to_owned();
        let accepted = self.write(move |tx| {
            let Some(mut row) = accounts::get(tx, &n)? else {
                return Ok(false);
            };
            let last = row.totp_last_step.and_then(|s| u64::try_from(s).ok());
            match secret.verify(&code, now, last) {
                Some(step) => {
                    row.totp_last_step = i64::try_from(step).ok();
                    if let Some(sealed) = &reseal {
                        row.totp_secret = Some(sealed.clone());
                    }
                    accounts::update(tx, &row)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })?;
        Ok(if accepted {
            Checked::Ok(Box::new(account))
        } else {
            Checked::Refused
        })
    }
}

/// A dummy Argon2id hash, verified against when the user name is unknown so that the
/// answer takes as long as for a real account.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        crate::hash_password("no account has this password, it only costs time").unwrap_or_default()
    })
}

fn now_micros() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
