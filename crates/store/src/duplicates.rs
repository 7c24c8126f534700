//! Likely duplicate patients waiting for a person's decision: when a record arrives for
//! a patient the store did not know (a message, a document, a transfer from another
//! organization), the patients it may be are listed here with the match's grade and
//! evidence, until someone merges them or says they are two people. Written once for
//! both backends.

use crate::sql::{Columns, SqlArg};
use crate::{ReadTx, StoreError, Tx};

/// Migration 12 (both backends). `score` is the match probability in millionths; times
/// are microseconds since the Unix epoch.
pub const SCHEMA: &str = r#"
CREATE TABLE duplicate_candidate (
    id          TEXT PRIMARY KEY,
    patient     TEXT NOT NULL,
    other       TEXT NOT NULL,
    score       BIGINT NOT NULL,
    grade       TEXT NOT NULL,
    evidence    TEXT NOT NULL,
    found       BIGINT NOT NULL,
    state       TEXT NOT NULL,
    decided_by  TEXT,
    decided     BIGINT,
    UNIQUE (patient, other)
);
CREATE INDEX duplicate_candidate_state ON duplicate_candidate (state, found);
"#;

/// One pair of patient records that may be one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRow {
    /// A time-ordered uuid.
    pub id: String,
    /// The Patient id that arrived last.
    pub patient: String,
    /// The Patient id it may be.
    pub other: String,
    /// The match probability, in millionths.
    pub score: i64,
    /// `certain`, `probable` or `possible`.
    pub grade: String,
    /// How each field compared, as JSON: `[{"field", "agreement", "weight"}]`.
    pub evidence: String,
    pub found: i64,
    /// `open`, `merged` or `dismissed`.
    pub state: String,
    pub decided_by: Option<String>,
    pub decided: Option<i64>,
}

const COLUMNS: &str =
    "id, patient, other, score, grade, evidence, found, state, decided_by, decided";

fn row(values: Vec<crate::search::SqlValue>) -> Result<DuplicateRow, StoreError> {
    let mut c = Columns::new("duplicate_candidate", values);
    Ok(DuplicateRow {
        id: c.text("id")?,
        patient: c.text("patient")?,
        other: c.text("other")?,
        score: c.int("score")?,
        grade: c.text("grade")?,
        evidence: c.text("evidence")?,
        found: c.int("found")?,
        state: c.text("state")?,
        decided_by: c.opt_text("decided_by")?,
        decided: c.opt_int("decided")?,
    })
}

/// Adds a pair unless it (or the same pair the other way round) is listed already.
pub fn insert<T: Tx + ?Sized>(tx: &mut T, d: &DuplicateRow) -> Result<bool, StoreError> {
    let known = tx.query(
        "SELECT id FROM duplicate_candidate WHERE (patient = ? AND other = ?) \
         OR (patient = ? AND other = ?)",
        &[
            SqlArg::Text(d.patient.clone()),
            SqlArg::Text(d.other.clone()),
            SqlArg::Text(d.other.clone()),
            SqlArg::Text(d.patient.clone()),
        ],
    )?;
    if !known.is_empty() {
        return Ok(false);
    }
    tx.execute(
        &format!(
            "INSERT INTO duplicate_candidate ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            SqlArg::Text(d.id.clone()),
            SqlArg::Text(d.patient.clone()),
            SqlArg::Text(d.other.clone()),
            SqlArg::Int8(d.score),
            SqlArg::Text(d.grade.clone()),
            SqlArg::Text(d.evidence.clone()),
            SqlArg::Int8(d.found),
            SqlArg::Text(d.state.clone()),
            SqlArg::opt_text(d.decided_by.as_deref()),
            SqlArg::opt_int8(d.decided),
        ],
    )?;
    Ok(true)
}

/// The pairs in `state`, most likely first, at most `limit`.
pub fn in_state<T: ReadTx + ?Sized>(
    tx: &mut T,
    state: &str,
    limit: usize,
) -> Result<Vec<DuplicateRow>, StoreError> {
    tx.query(
        &format!(
            "SELECT {COLUMNS} FROM duplicate_candidate WHERE state = ? \
             ORDER BY score DESC, found, id LIMIT ?"
        ),
        &[
            SqlArg::Text(state.to_owned()),
            SqlArg::Int8(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
    )?
    .into_iter()
    .map(row)
    .collect()
}

pub fn by_id<T: ReadTx + ?Sized>(tx: &mut T, id: &str) -> Result<Option<DuplicateRow>, StoreError> {
    tx.query(
        &format!("SELECT {COLUMNS} FROM duplicate_candidate WHERE id = ?"),
        &[SqlArg::Text(id.to_owned())],
    )?
    .into_iter()
    .next()
    .map(row)
    .transpose()
}

/// Records a person's decision on an open pair; false when it was no longer open.
pub fn decide<T: Tx + ?Sized>(
    tx: &mut T,
    id: &str,
    state: &str,
    by: &str,
    at: i64,
) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "UPDATE duplicate_candidate SET state = ?, decided_by = ?, decided = ? \
         WHERE id = ? AND state = 'open'",
        &[
            SqlArg::Text(state.to_owned()),
            SqlArg::Text(by.to_owned()),
            SqlArg::Int8(at),
            SqlArg::Text(id.to_owned()),
        ],
    )? > 0)
}
