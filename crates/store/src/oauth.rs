//! The OAuth 2.0 authorization server's tables and their SQL, written once for both
//! backends: registered clients, authorization codes, refresh tokens, the access tokens
//! it issued (so one can be revoked), and one-time identifiers already seen (client
//! assertion `jti`s, consent handles).
//!
//! Secrets are never stored: codes and refresh tokens are kept as the hex SHA-256 of
//! their value (they are 256-bit random strings, so a fast hash is enough), access
//! tokens by their `jti`. Times are **seconds** since the Unix epoch, as in the tokens.
//! Every function runs inside the caller's transaction; deciding what the rows mean is
//! `oxehr-auth`'s and the HTTP layer's job.
//!
//! A *grant* is one authorization (one consent, one code): the code, every refresh
//! token rotated from it and every access token issued from those share its
//! `grant_id`, so a reused code or refresh token revokes all of them at once.

use crate::search::SqlValue;
use crate::sql::{Columns, SqlArg};
use crate::{ReadTx, StoreError, Tx};

/// The OAuth tables (schema version 6 on both backends). Flags are 0/1 BIGINTs so one
/// binding serves both backends. Each table with an `expires` column has an index on
/// it, for the clean-up of expired rows ([`delete_expired`]).
pub const SCHEMA: &str = r#"
CREATE TABLE oauth_client (
    client_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    jwks          TEXT,
    scope         TEXT NOT NULL,
    disabled      BIGINT NOT NULL,
    created       BIGINT NOT NULL
);

CREATE TABLE oauth_code (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    account        TEXT NOT NULL,
    scope          TEXT NOT NULL,
    patient        TEXT,
    expires        BIGINT NOT NULL,
    used           BIGINT NOT NULL
);
CREATE INDEX oauth_code_expires ON oauth_code (expires);

CREATE TABLE oauth_refresh_token (
    token_hash TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    account    TEXT NOT NULL,
    scope      TEXT NOT NULL,
    patient    TEXT,
    expires    BIGINT NOT NULL,
    used       BIGINT NOT NULL,
    revoked    BIGINT NOT NULL
);
CREATE INDEX oauth_refresh_token_grant ON oauth_refresh_token (grant_id);
CREATE INDEX oauth_refresh_token_expires ON oauth_refresh_token (expires);

CREATE TABLE oauth_access_token (
    jti       TEXT PRIMARY KEY,
    grant_id  TEXT,
    client_id TEXT NOT NULL,
    subject   TEXT NOT NULL,
    expires   BIGINT NOT NULL,
    revoked   BIGINT NOT NULL
);
CREATE INDEX oauth_access_token_grant ON oauth_access_token (grant_id);
CREATE INDEX oauth_access_token_expires ON oauth_access_token (expires);

CREATE TABLE oauth_seen_jti (
    issuer  TEXT NOT NULL,
    jti     TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX oauth_seen_jti_expires ON oauth_seen_jti (expires);
"#;

/// A registered client application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub client_id: String,
    pub name: String,
    /// `public` (a SMART app: authorization code with PKCE, no secret) or `backend` (a
    /// backend service: client credentials with a signed assertion).
    pub kind: String,
    /// Exact redirect URIs, as a JSON array of strings (empty for backend services).
    pub redirect_uris: String,
    /// The backend service's public keys, a JSON Web Key Set.
    pub jwks: Option<String>,
    /// The scopes the client may be granted, space-separated; empty: whatever the
    /// signed-in user may grant.
    pub scope: String,
    pub disabled: bool,
    pub created: i64,
}

/// An authorization code, by the hash of its value.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    pub account: String,
    /// The granted scopes, space-separated.
    pub scope: String,
    pub patient: Option<String>,
    pub expires: i64,
    pub used: bool,
}

/// Prints neither the hash nor the challenge.
impl std::fmt::Debug for CodeRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeRow")
            .field("grant_id", &self.grant_id)
            .field("client_id", &self.client_id)
            .field("account", &self.account)
            .field("expires", &self.expires)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

/// A refresh token, by the hash of its value.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshRow {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub account: String,
    pub scope: String,
    pub patient: Option<String>,
    pub expires: i64,
    /// Exchanged already (refresh tokens rotate: each works once).
    pub used: bool,
    pub revoked: bool,
}

/// Does not print the hash.
impl std::fmt::Debug for RefreshRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRow")
            .field("grant_id", &self.grant_id)
            .field("client_id", &self.client_id)
            .field("account", &self.account)
            .field("expires", &self.expires)
            .field("used", &self.used)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

/// An access token the authorization server issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRow {
    pub jti: String,
    /// The grant it came from; `None` for a backend service's token.
    pub grant_id: Option<String>,
    pub client_id: String,
    /// The token's `sub`: an account name, or `client:<id>` for a backend service.
    pub subject: String,
    pub expires: i64,
    pub revoked: bool,
}

fn text(v: &str) -> SqlArg {
    SqlArg::Text(v.to_owned())
}

fn flag(b: bool) -> SqlArg {
    SqlArg::Int8(i64::from(b))
}

// ---- clients ----

const CLIENT_COLUMNS: &str = "client_id, name, kind, redirect_uris, jwks, scope, disabled, created";

/// Registers a client; `false` (and nothing written) when the id is taken.
pub fn insert_client<T: Tx + ?Sized>(tx: &mut T, c: &ClientRow) -> Result<bool, StoreError> {
    let sql = format!(
        "INSERT INTO oauth_client ({CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (client_id) DO NOTHING"
    );
    let args = [
        text(&c.client_id),
        text(&c.name),
        text(&c.kind),
        text(&c.redirect_uris),
        SqlArg::opt_text(c.jwks.as_deref()),
        text(&c.scope),
        flag(c.disabled),
        SqlArg::Int8(c.created),
    ];
    Ok(tx.execute(&sql, &args)? == 1)
}

/// Disables (or enables) a client; `false` when there is none.
pub fn set_client_disabled<T: Tx + ?Sized>(
    tx: &mut T,
    client_id: &str,
    disabled: bool,
) -> Result<bool, StoreError> {
    let sql = "UPDATE oauth_client SET disabled = ? WHERE client_id = ?";
    Ok(tx.execute(sql, &[flag(disabled), text(client_id)])? == 1)
}

/// The client with this id.
pub fn get_client<T: ReadTx + ?Sized>(
    tx: &mut T,
    client_id: &str,
) -> Result<Option<ClientRow>, StoreError> {
    let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_client WHERE client_id = ?");
    let rows = tx.query_shared_plan(&sql, &[text(client_id)])?;
    rows.into_iter().next().map(client_row).transpose()
}

/// Every client, by id.
pub fn list_clients<T: ReadTx + ?Sized>(tx: &mut T) -> Result<Vec<ClientRow>, StoreError> {
    let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_client ORDER BY client_id");
    tx.query(&sql, &[])?.into_iter().map(client_row).collect()
}

fn client_row(r: Vec<SqlValue>) -> Result<ClientRow, StoreError> {
    let mut c = Columns::new("oauth_client", r);
    Ok(ClientRow {
        client_id: c.text("client_id")?,
        name: c.text("name")?,
        kind: c.text("kind")?,
        redirect_uris: c.text("redirect_uris")?,
        jwks: c.opt_text("jwks")?,
        scope: c.text("scope")?,
        disabled: c.int("disabled")? != 0,
        created: c.int("created")?,
    })
}

// ---- authorization codes ----

const CODE_COLUMNS: &str = "code_hash, grant_id, client_id, redirect_uri, code_challenge, \
     account, scope, patient, expires, used";

/// Stores a new code.
pub fn insert_code<T: Tx + ?Sized>(tx: &mut T, c: &CodeRow) -> Result<(), StoreError> {
    let sql =
        format!("INSERT INTO oauth_code ({CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    let args = [
        text(&c.code_hash),
        text(&c.grant_id),
        text(&c.client_id),
        text(&c.redirect_uri),
        text(&c.code_challenge),
        text(&c.account),
        text(&c.scope),
        SqlArg::opt_text(c.patient.as_deref()),
        SqlArg::Int8(c.expires),
        flag(c.used),
    ];
    tx.execute(&sql, &args)?;
    Ok(())
}

/// What [`consume_code`] found.
#[derive(Debug)]
pub enum Consumed<R> {
    /// The row, unused until now: it is marked used by this transaction.
    Fresh(R),
    /// The row was used before (a replay).
    Reused(R),
    /// No such row.
    Unknown,
}

/// Marks the code used and returns it. The `UPDATE … WHERE used = 0` comes first, so
/// two transactions racing for one code cannot both see it fresh (PostgreSQL's row
/// lock makes the second wait and find it used).
pub fn consume_code<T: Tx + ?Sized>(
    tx: &mut T,
    code_hash: &str,
) -> Result<Consumed<CodeRow>, StoreError> {
    let changed = tx.execute(
        "UPDATE oauth_code SET used = 1 WHERE code_hash = ? AND used = 0",
        &[text(code_hash)],
    )?;
    let sql = format!("SELECT {CODE_COLUMNS} FROM oauth_code WHERE code_hash = ?");
    let row = tx
        .query(&sql, &[text(code_hash)])?
        .into_iter()
        .next()
        .map(code_row)
        .transpose()?;
    Ok(match (row, changed) {
        (Some(r), 1) => Consumed::Fresh(r),
        (Some(r), _) => Consumed::Reused(r),
        (None, _) => Consumed::Unknown,
    })
}

fn code_row(r: Vec<SqlValue>) -> Result<CodeRow, StoreError> {
    let mut c = Columns::new("oauth_code", r);
    Ok(CodeRow {
        code_hash: c.text("code_hash")?,
        grant_id: c.text("grant_id")?,
        client_id: c.text("client_id")?,
        redirect_uri: c.text("redirect_uri")?,
        code_challenge: c.text("code_challenge")?,
        account: c.text("account")?,
        scope: c.text("scope")?,
        patient: c.opt_text("patient")?,
        expires: c.int("expires")?,
        used: c.int("used")? != 0,
    })
}

// ---- refresh tokens ----

const REFRESH_COLUMNS: &str =
    "token_hash, grant_id, client_id, account, scope, patient, expires, used, revoked";

/// Stores a new refresh token.
pub fn insert_refresh<T: Tx + ?Sized>(tx: &mut T, r: &RefreshRow) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO oauth_refresh_token ({REFRESH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    let args = [
        text(&r.token_hash),
        text(&r.grant_id),
        text(&r.client_id),
        text(&r.account),
        text(&r.scope),
        SqlArg::opt_text(r.patient.as_deref()),
        SqlArg::Int8(r.expires),
        flag(r.used),
        flag(r.revoked),
    ];
    tx.execute(&sql, &args)?;
    Ok(())
}

/// Marks the refresh token used and returns it, as [`consume_code`] does.
pub fn consume_refresh<T: Tx + ?Sized>(
    tx: &mut T,
    token_hash: &str,
) -> Result<Consumed<RefreshRow>, StoreError> {
    let changed = tx.execute(
        "UPDATE oauth_refresh_token SET used = 1 WHERE token_hash = ? AND used = 0",
        &[text(token_hash)],
    )?;
    let row = get_refresh(tx, token_hash)?;
    Ok(match (row, changed) {
        (Some(r), 1) => Consumed::Fresh(r),
        (Some(r), _) => Consumed::Reused(r),
        (None, _) => Consumed::Unknown,
    })
}

/// The refresh token with this hash.
pub fn get_refresh<T: ReadTx + ?Sized>(
    tx: &mut T,
    token_hash: &str,
) -> Result<Option<RefreshRow>, StoreError> {
    let sql = format!("SELECT {REFRESH_COLUMNS} FROM oauth_refresh_token WHERE token_hash = ?");
    tx.query_shared_plan(&sql, &[text(token_hash)])?
        .into_iter()
        .next()
        .map(refresh_row)
        .transpose()
}

fn refresh_row(r: Vec<SqlValue>) -> Result<RefreshRow, StoreError> {
    let mut c = Columns::new("oauth_refresh_token", r);
    Ok(RefreshRow {
        token_hash: c.text("token_hash")?,
        grant_id: c.text("grant_id")?,
        client_id: c.text("client_id")?,
        account: c.text("account")?,
        scope: c.text("scope")?,
        patient: c.opt_text("patient")?,
        expires: c.int("expires")?,
        used: c.int("used")? != 0,
        revoked: c.int("revoked")? != 0,
    })
}

// ---- access tokens ----

const ACCESS_COLUMNS: &str = "jti, grant_id, client_id, subject, expires, revoked";

/// Records an issued access token.
pub fn insert_access<T: Tx + ?Sized>(tx: &mut T, a: &AccessRow) -> Result<(), StoreError> {
    let sql =
        format!("INSERT INTO oauth_access_token ({ACCESS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)");
    let args = [
        text(&a.jti),
        SqlArg::opt_text(a.grant_id.as_deref()),
        text(&a.client_id),
        text(&a.subject),
        SqlArg::Int8(a.expires),
        flag(a.revoked),
    ];
    tx.execute(&sql, &args)?;
    Ok(())
}

/// The issued access token with this `jti` (none for tokens issued outside the
/// authorization server, such as `oxehr token issue`'s).
pub fn get_access<T: ReadTx + ?Sized>(
    tx: &mut T,
    jti: &str,
) -> Result<Option<AccessRow>, StoreError> {
    let sql = format!("SELECT {ACCESS_COLUMNS} FROM oauth_access_token WHERE jti = ?");
    let rows = tx.query_shared_plan(&sql, &[text(jti)])?;
    rows.into_iter()
        .next()
        .map(|r| {
            let mut c = Columns::new("oauth_access_token", r);
            Ok(AccessRow {
                jti: c.text("jti")?,
                grant_id: c.opt_text("grant_id")?,
                client_id: c.text("client_id")?,
                subject: c.text("subject")?,
                expires: c.int("expires")?,
                revoked: c.int("revoked")? != 0,
            })
        })
        .transpose()
}

/// Whether the access token with this `jti` has been revoked: the one indexed lookup
/// every authenticated request makes.
pub fn is_access_revoked<T: ReadTx + ?Sized>(tx: &mut T, jti: &str) -> Result<bool, StoreError> {
    let rows = tx.query_shared_plan(
        "SELECT revoked FROM oauth_access_token WHERE jti = ?",
        &[text(jti)],
    )?;
    match rows.into_iter().next() {
        None => Ok(false),
        Some(r) => Ok(Columns::new("oauth_access_token", r).int("revoked")? != 0),
    }
}

/// Revokes one access token; `false` when there is no such row.
pub fn revoke_access<T: Tx + ?Sized>(tx: &mut T, jti: &str) -> Result<bool, StoreError> {
    let n = tx.execute(
        "UPDATE oauth_access_token SET revoked = 1 WHERE jti = ?",
        &[text(jti)],
    )?;
    Ok(n == 1)
}

/// Revokes every refresh and access token of a grant.
pub fn revoke_grant<T: Tx + ?Sized>(tx: &mut T, grant_id: &str) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE oauth_refresh_token SET revoked = 1 WHERE grant_id = ?",
        &[text(grant_id)],
    )?;
    tx.execute(
        "UPDATE oauth_access_token SET revoked = 1 WHERE grant_id = ?",
        &[text(grant_id)],
    )?;
    Ok(())
}

// ---- one-time identifiers ----

/// Records that `issuer` used `jti` (valid until `expires`); `false` when it was seen
/// before — a replay.
pub fn first_use_of_jti<T: Tx + ?Sized>(
    tx: &mut T,
    issuer: &str,
    jti: &str,
    expires: i64,
) -> Result<bool, StoreError> {
    let n = tx.execute(
        "INSERT INTO oauth_seen_jti (issuer, jti, expires) VALUES (?, ?, ?) \
         ON CONFLICT (issuer, jti) DO NOTHING",
        &[text(issuer), text(jti), SqlArg::Int8(expires)],
    )?;
    Ok(n == 1)
}

/// Deletes rows that can no longer matter: codes, refresh tokens, access tokens and
/// seen identifiers that expired before `before` (the caller leaves a margin for the
/// clock leeway it grants).
pub fn delete_expired<T: Tx + ?Sized>(tx: &mut T, before: i64) -> Result<(), StoreError> {
    for table in [
        "oauth_code",
        "oauth_refresh_token",
        "oauth_access_token",
        "oauth_seen_jti",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE expires < ?"),
            &[SqlArg::Int8(before)],
        )?;
    }
    Ok(())
}
