//! Account management over a store: add, list, disable, reset a password. The rules
//! live here (names, roles, the password policy, MFA for staff); the rows are
//! `oxehr_store::accounts`. Every change is one write transaction.

use std::sync::Arc;

use oxehr_fhir::{ResourceId, ResourceType};
use oxehr_store::accounts;
use oxehr_store::{Store, StoreError};

use crate::password::{check_password_policy, hash_password};
use crate::TotpSecret;
use crate::{AuthError, Role};

pub use oxehr_store::accounts::AccountRow;

/// What `add` needs to create an account.
#[derive(Clone)]
pub struct NewAccount {
    pub name: String,
    pub role: Role,
    /// The Organization's id (required for every role but system admin, patient and
    /// proxy).
    pub organization: Option<String>,
    /// `Patient/…` for a patient (required), `RelatedPerson/…` for a proxy (optional),
    /// `Practitioner/…` or `PractitionerRole/…` for staff (optional).
    pub person: Option<String>,
    pub password: String,
    /// Staff must enrol an authenticator unless this is set to false.
    pub mfa_required: Option<bool>,
}

/// Never prints the password.
impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("organization", &self.organization)
            .field("person", &self.person)
            .finish_non_exhaustive()
    }
}

/// A login name: 1 to 64 characters of lower-case ASCII letters, digits, `.`, `_`,
/// `-` and `@` (so an e-mail address works), starting with a letter or digit. Names
/// are compared as given after lower-casing.
pub fn normalize_name(name: &str) -> Result<String, AuthError> {
    let n = name.trim().to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(n)
    } else {
        Err(AuthError::Invalid(
            "a user name is 1 to 64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
                .into(),
        ))
    }
}

fn store_err(e: StoreError) -> AuthError {
    AuthError::Internal(format!("storage: {e}"))
}

fn now_micros() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Checks that `Type/id` names a resource of one of `types` that exists (not deleted).
fn check_reference(
    store: &Arc<dyn Store>,
    reference: &str,
    types: &[&str],
    what: &str,
) -> Result<(), AuthError> {
    let bad = || {
        AuthError::Invalid(format!(
            "{what} must be a reference {}/<id>",
            types.join("/<id> or ")
        ))
    };
    let (t, id) = reference.split_once('/').ok_or_else(bad)?;
    if !types.contains(&t) {
        return Err(bad());
    }
    let rtype = ResourceType::parse(t).ok_or_else(bad)?;
    let rid = ResourceId::parse(id).ok_or_else(bad)?;
    match store.read_current(&rtype, &rid).map_err(store_err)? {
        Some(r) if !r.is_deleted() => Ok(()),
        _ => Err(AuthError::Invalid(format!(
            "{what}: there is no {t}/{id} in the record"
        ))),
    }
}

/// The Patient id a patient account stands for (`None` for staff): the record its
/// access rests on, carried in its tokens and sessions.
pub fn own_patient(row: &AccountRow) -> Option<String> {
    if row.role != Role::Patient.code() {
        return None;
    }
    row.person
        .as_deref()
        .and_then(|p| p.strip_prefix("Patient/"))
        .map(str::to_owned)
}

/// Creates an account. Fails, writing nothing, when the name is taken, the password
/// breaks the policy, or the organization or person does not exist.
pub fn add(store: &Arc<dyn Store>, mut new: NewAccount) -> Result<AccountRow, AuthError> {
    let name = normalize_name(&new.name)?;
    // The organization is kept as its id; `Organization/<id>`, as `--person` is written,
    // names the same one.
    if let Some(id) = new
        .organization
        .as_deref()
        .and_then(|o| o.strip_prefix("Organization/"))
    {
        new.organization = Some(id.to_owned());
    }
    check_password_policy(&new.password)?;
    match new.role {
        Role::Patient => match &new.person {
            Some(p) => check_reference(store, p, &["Patient"], "a patient's --person")?,
            None => {
                return Err(AuthError::Invalid(
                    "a patient account needs --person Patient/<id>".into(),
                ))
            }
        },
        // Who a proxy acts for is not the account's: RelatedPersons name the account.
        Role::Proxy => {
            if let Some(p) = &new.person {
                check_reference(store, p, &["RelatedPerson"], "a proxy's --person")?;
            }
        }
        _ => {
            if let Some(p) = &new.person {
                check_reference(
                    store,
                    p,
                    &["Practitioner", "PractitionerRole"],
                    "a staff member's --person",
                )?;
            }
        }
    }
    match (&new.organization, new.role) {
        (Some(org), _) => check_reference(
            store,
            &format!("Organization/{org}"),
            &["Organization"],
            "--organization",
        )?,
        (None, Role::SystemAdmin | Role::Patient | Role::Proxy) => {}
        (None, role) => {
            return Err(AuthError::Invalid(format!(
                "a {role} account needs --organization <Organization id>"
            )))
        }
    }
    let now = now_micros();
    let row = AccountRow {
        name,
        role: new.role.code().to_owned(),
        organization: new.organization,
        person: new.person,
        password_hash: hash_password(&new.password)?,
        totp_secret: None,
        totp_last_step: None,
        mfa_required: new.mfa_required.unwrap_or(new.role.is_staff()),
        disabled: false,
        created: now,
        updated: now,
    };
    let r = row.clone();
    let out = store
        .write(Box::new(move |tx| Ok(Box::new(accounts::insert(tx, &r)?))))
        .map_err(store_err)?;
    match out.downcast::<bool>() {
        Ok(added) if *added => Ok(row),
        Ok(_) => Err(AuthError::Invalid(format!(
            "the user name {} is taken",
            row.name
        ))),
        Err(_) => Err(AuthError::Internal("unexpected job output".into())),
    }
}

/// Every account, by name.
pub fn list(store: &Arc<dyn Store>) -> Result<Vec<AccountRow>, AuthError> {
    let mut tx = store.read().map_err(store_err)?;
    accounts::list(tx.as_mut()).map_err(store_err)
}

/// How many accounts there are.
pub fn count(store: &Arc<dyn Store>) -> Result<u64, AuthError> {
    let mut tx = store.read().map_err(store_err)?;
    accounts::count(tx.as_mut()).map_err(store_err)
}

/// The account named `name`.
pub fn get(store: &Arc<dyn Store>, name: &str) -> Result<Option<AccountRow>, AuthError> {
    let name = normalize_name(name)?;
    let mut tx = store.read().map_err(store_err)?;
    accounts::get(tx.as_mut(), &name).map_err(store_err)
}

/// Reads the account, changes it with `f` and stores it, in one transaction.
fn modify(
    store: &Arc<dyn Store>,
    name: &str,
    mut f: impl FnMut(&mut AccountRow) + Send + 'static,
) -> Result<AccountRow, AuthError> {
    let name = normalize_name(name)?;
    let n = name.clone();
    let out = store
        .write(Box::new(move |tx| {
            let Some(mut row) = accounts::get(tx, &n)? else {
                return Ok(Box::new(None::<AccountRow>));
            };
            f(&mut row);
            row.updated = now_micros().max(row.updated + 1);
            accounts::update(tx, &row)?;
            Ok(Box::new(Some(row)))
        }))
        .map_err(store_err)?;
    match out.downcast::<Option<AccountRow>>() {
        Ok(row) => row.ok_or_else(|| AuthError::NotFound(format!("no user named {name}"))),
        Err(_) => Err(AuthError::Internal("unexpected job output".into())),
    }
}

/// Seals every authenticator secret still stored in plain text (from before secrets were
/// sealed) with `key`, in one transaction; gives how many it sealed. The server runs it
/// at start, so no plaintext secret outlives an upgrade.
pub fn seal_secrets(store: &Arc<dyn Store>, key: &crate::SecretKey) -> Result<usize, AuthError> {
    let key = key.clone();
    let out = store
        .write(Box::new(move |tx| {
            let mut sealed = 0usize;
            for mut row in accounts::list(tx)? {
                let Some(secret) = row.totp_secret.clone() else {
                    continue;
                };
                if crate::SecretKey::is_sealed(&secret) {
                    continue;
                }
                row.totp_secret = Some(key.seal(&secret, &row.name));
                accounts::update(tx, &row)?;
                sealed += 1;
            }
            Ok(Box::new(sealed))
        }))
        .map_err(store_err)?;
    out.downcast::<usize>()
        .map(|n| *n)
        .map_err(|_| AuthError::Internal("unexpected job output".into()))
}

/// Disables (or enables again) an account: a disabled account cannot log in, and its
/// sessions and tokens stop working.
pub fn set_disabled(
    store: &Arc<dyn Store>,
    name: &str,
    disabled: bool,
) -> Result<AccountRow, AuthError> {
    modify(store, name, move |row| row.disabled = disabled)
}

/// Gives the account a new authenticator (TOTP) secret, replacing any it had, and
/// returns it: the person adds it to their authenticator app (as the `otpauth://` URI or
/// its base32 text). From then on signing in needs a code from it.
///
/// The secret is stored sealed with `key` (the server's secrets key, `sealed`).
pub fn enrol_mfa(
    store: &Arc<dyn Store>,
    name: &str,
    key: &crate::SecretKey,
) -> Result<(AccountRow, TotpSecret), AuthError> {
    let secret = TotpSecret::generate();
    let (b32, key) = (secret.to_base32(), key.clone());
    let row = modify(store, name, move |row| {
        // Sealed for the account's name as stored.
        row.totp_secret = Some(key.seal(&b32, &row.name));
        row.totp_last_step = None;
    })?;
    Ok((row, secret))
}

/// Sets a new password (checked against the policy). With `reset_mfa`, the account's
/// authenticator is removed too, so the user enrols again at the next login.
pub fn reset_password(
    store: &Arc<dyn Store>,
    name: &str,
    password: &str,
    reset_mfa: bool,
) -> Result<AccountRow, AuthError> {
    check_password_policy(password)?;
    let hash = hash_password(password)?;
    modify(store, name, move |row| {
        row.password_hash = hash.clone();
        if reset_mfa {
            row.totp_secret = None;
            row.totp_last_step = None;
        }
    })
}
