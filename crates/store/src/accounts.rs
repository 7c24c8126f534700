//! User accounts: the `account` table and its SQL, written once for both backends.
//!
//! An account is a login (lower-case name), a role, the Organization it belongs to and
//! the FHIR resource it stands for (`Patient/…` for a patient, `Practitioner/…` or
//! `PractitionerRole/…` for staff). The password is kept only as an Argon2id hash and the
//! TOTP secret as base32; deciding what those mean is `oxehr-auth`'s job, storing them
//! this module's. Every function runs inside the caller's transaction.

use crate::search::SqlValue;
use crate::sql::{Columns, SqlArg};
use crate::{ReadTx, StoreError, Tx};

/// The `account` table (schema version 3 on both backends). Integers are BIGINT so one
/// binding serves both; flags are 0/1; times are microseconds since the Unix epoch.
pub const SCHEMA: &str = r#"
CREATE TABLE account (
    name             TEXT PRIMARY KEY,
    role             TEXT NOT NULL,
    organization     TEXT,
    person           TEXT,
    password_hash    TEXT NOT NULL,
    totp_secret      TEXT,
    totp_last_step   BIGINT,
    mfa_required     BIGINT NOT NULL,
    disabled         BIGINT NOT NULL,
    created          BIGINT NOT NULL,
    updated          BIGINT NOT NULL
);
"#;

/// One row of `account`.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub name: String,
    pub role: String,
    /// The Organization's id.
    pub organization: Option<String>,
    /// `Patient/…`, `Practitioner/…` or `PractitionerRole/…`.
    pub person: Option<String>,
    pub password_hash: String,
    /// Base32; `None` until the user enrols an authenticator.
    pub totp_secret: Option<String>,
    /// The last TOTP time step accepted (a code is accepted once).
    pub totp_last_step: Option<i64>,
    pub mfa_required: bool,
    pub disabled: bool,
    pub created: i64,
    pub updated: i64,
}

/// Never prints the hash or the TOTP secret.
impl std::fmt::Debug for AccountRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRow")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("organization", &self.organization)
            .field("person", &self.person)
            .field("totp_enrolled", &self.totp_secret.is_some())
            .field("mfa_required", &self.mfa_required)
            .field("disabled", &self.disabled)
            .field("created", &self.created)
            .field("updated", &self.updated)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "name, role, organization, person, password_hash, totp_secret, \
     totp_last_step, mfa_required, disabled, created, updated";

fn args(a: &AccountRow) -> Vec<SqlArg> {
    vec![
        SqlArg::Text(a.name.clone()),
        SqlArg::Text(a.role.clone()),
        SqlArg::opt_text(a.organization.as_deref()),
        SqlArg::opt_text(a.person.as_deref()),
        SqlArg::Text(a.password_hash.clone()),
        SqlArg::opt_text(a.totp_secret.as_deref()),
        SqlArg::opt_int8(a.totp_last_step),
        SqlArg::Int8(i64::from(a.mfa_required)),
        SqlArg::Int8(i64::from(a.disabled)),
        SqlArg::Int8(a.created),
        SqlArg::Int8(a.updated),
    ]
}

/// Adds an account; `false` (and nothing written) when the name is taken.
pub fn insert<T: Tx + ?Sized>(tx: &mut T, a: &AccountRow) -> Result<bool, StoreError> {
    let sql = format!(
        "INSERT INTO account ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (name) DO NOTHING"
    );
    Ok(tx.execute(&sql, &args(a))? == 1)
}

/// Replaces every column of the account named `a.name`; `false` when there is none.
pub fn update<T: Tx + ?Sized>(tx: &mut T, a: &AccountRow) -> Result<bool, StoreError> {
    let sql = "UPDATE account SET role = ?, organization = ?, person = ?, password_hash = ?, \
               totp_secret = ?, totp_last_step = ?, mfa_required = ?, disabled = ?, \
               created = ?, updated = ? WHERE name = ?";
    let mut v = args(a);
    let name = v.remove(0);
    v.push(name);
    Ok(tx.execute(sql, &v)? == 1)
}

/// The account named `name`.
pub fn get<T: ReadTx + ?Sized>(tx: &mut T, name: &str) -> Result<Option<AccountRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM account WHERE name = ?");
    let rows = tx.query_shared_plan(&sql, &[SqlArg::Text(name.to_owned())])?;
    rows.into_iter().next().map(row).transpose()
}

/// Every account, by name.
pub fn list<T: ReadTx + ?Sized>(tx: &mut T) -> Result<Vec<AccountRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM account ORDER BY name");
    tx.query(&sql, &[])?.into_iter().map(row).collect()
}

/// How many accounts there are (set-up asks whether a first admin exists).
pub fn count<T: ReadTx + ?Sized>(tx: &mut T) -> Result<u64, StoreError> {
    match tx.query("SELECT count(*) FROM account", &[])?.as_slice() {
        [r] => match r.as_slice() {
            [SqlValue::Int(n)] => u64::try_from(*n).map_err(|_| corrupt("count")),
            _ => Err(corrupt("count")),
        },
        _ => Err(corrupt("count")),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("account {what}"))
}

fn row(r: Vec<SqlValue>) -> Result<AccountRow, StoreError> {
    let mut c = Columns::new("account", r);
    Ok(AccountRow {
        name: c.text("name")?,
        role: c.text("role")?,
        organization: c.opt_text("organization")?,
        person: c.opt_text("person")?,
        password_hash: c.text("password_hash")?,
        totp_secret: c.opt_text("totp_secret")?,
        totp_last_step: c.opt_int("totp_last_step")?,
        mfa_required: c.int("mfa_required")? != 0,
        disabled: c.int("disabled")? != 0,
        created: c.int("created")?,
        updated: c.int("updated")?,
    })
}
