//! Web sessions: a person signed in through the browser (the pages' sign-in form at `/`,
//! `POST /sign-in`) is known by a cookie holding a 256-bit random id; the table keeps
//! only its SHA-256 (hex). A session ends when it has been idle longer than the
//! configured time, or at sign-out (`POST /sign-out`). Times are seconds since the Unix
//! epoch.

use crate::sql::{Columns, SqlArg};
use crate::{ReadTx, StoreError, Tx};

/// Migration 7 (both backends).
pub const SCHEMA: &str = r#"
CREATE TABLE web_session (
    id_hash   TEXT PRIMARY KEY,
    account   TEXT NOT NULL,
    created   BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX web_session_last_seen ON web_session (last_seen);
"#;

/// One session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: String,
    pub account: String,
    pub created: i64,
    pub last_seen: i64,
}

pub fn insert<T: Tx + ?Sized>(tx: &mut T, s: &SessionRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO web_session (id_hash, account, created, last_seen) VALUES (?, ?, ?, ?)",
        &[
            SqlArg::Text(s.id_hash.clone()),
            SqlArg::Text(s.account.clone()),
            SqlArg::Int8(s.created),
            SqlArg::Int8(s.last_seen),
        ],
    )?;
    Ok(())
}

pub fn get<T: ReadTx + ?Sized>(
    tx: &mut T,
    id_hash: &str,
) -> Result<Option<SessionRow>, StoreError> {
    let rows = tx.query_shared_plan(
        "SELECT id_hash, account, created, last_seen FROM web_session WHERE id_hash = ?",
        &[SqlArg::Text(id_hash.to_owned())],
    )?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let mut c = Columns::new("web_session", row);
    Ok(Some(SessionRow {
        id_hash: c.text("id_hash")?,
        account: c.text("account")?,
        created: c.int("created")?,
        last_seen: c.int("last_seen")?,
    }))
}

/// Marks the session used at `now`.
pub fn touch<T: Tx + ?Sized>(tx: &mut T, id_hash: &str, now: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE web_session SET last_seen = ? WHERE id_hash = ?",
        &[SqlArg::Int8(now), SqlArg::Text(id_hash.to_owned())],
    )?;
    Ok(())
}

pub fn delete<T: Tx + ?Sized>(tx: &mut T, id_hash: &str) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "DELETE FROM web_session WHERE id_hash = ?",
        &[SqlArg::Text(id_hash.to_owned())],
    )? > 0)
}

/// Removes the sessions idle since before `idle_before`.
pub fn delete_idle<T: Tx + ?Sized>(tx: &mut T, idle_before: i64) -> Result<u64, StoreError> {
    tx.execute(
        "DELETE FROM web_session WHERE last_seen < ?",
        &[SqlArg::Int8(idle_before)],
    )
}
