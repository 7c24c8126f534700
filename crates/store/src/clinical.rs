//! What `records` works out about each patient's record (care gaps, risk scores), kept so
//! that a population worklist is an index walk, and the mark that says it must be worked
//! out again. Written once for both backends.
//!
//! Every write of a resource the rules read marks the patients of its compartment
//! ([`mark`]) in the write's own transaction, bumping the patient's `generation`. The
//! rows are worked out again before anyone reads them ([`stale`] lists who needs it:
//! marked, or last worked out before today, since gaps fall due with time), and stored
//! with [`store`] only if no write marked the patient in between (the generation the
//! computation started from is still the current one).

use crate::search::SqlValue;
use crate::sql::{Columns, SqlArg};
use crate::{ReadTx, StoreError, Tx};

/// Migration 13 (both backends). `computed_on` is the day (`YYYY-MM-DD`) the rows were
/// worked out for; `due` likewise a day, '' when there is none; `detail` is the gap as JSON (title, reason,
/// evidence, citation) for display.
pub const SCHEMA: &str = r#"
CREATE TABLE clinical_state (
    patient     TEXT PRIMARY KEY,
    generation  BIGINT NOT NULL,
    computed    BIGINT NOT NULL,
    computed_on TEXT
);
CREATE INDEX clinical_state_computed ON clinical_state (computed_on, patient);
CREATE TABLE clinical_finding (
    patient TEXT NOT NULL,
    kind    TEXT NOT NULL,
    status  TEXT NOT NULL,
    due     TEXT NOT NULL,
    detail  TEXT NOT NULL,
    PRIMARY KEY (patient, kind)
);
CREATE INDEX clinical_finding_kind ON clinical_finding (kind, status, due, patient);
"#;

/// One finding for one patient: a rule's care gap, or a score's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRow {
    pub patient: String,
    /// `gap/<rule id>` or `score/<score id>`.
    pub kind: String,
    /// A gap: `open` or `closed`. A score: `computed`, `missing` (an input) or
    /// `not-applicable`.
    pub status: String,
    /// The day it falls (or fell) due, `YYYY-MM-DD`.
    pub due: Option<String>,
    /// JSON, for display.
    pub detail: String,
}

fn finding_row(values: Vec<SqlValue>) -> Result<FindingRow, StoreError> {
    let mut c = Columns::new("clinical_finding", values);
    Ok(FindingRow {
        patient: c.text("patient")?,
        kind: c.text("kind")?,
        status: c.text("status")?,
        due: c.opt_text("due")?.filter(|d| !d.is_empty()),
        detail: c.text("detail")?,
    })
}

/// Marks each patient's derived rows as needing work (one bump per patient per call).
pub fn mark<T: Tx + ?Sized>(tx: &mut T, patients: &[String]) -> Result<(), StoreError> {
    let mut seen: Vec<&str> = patients.iter().map(String::as_str).collect();
    seen.sort_unstable();
    seen.dedup();
    for p in seen {
        tx.execute(
            "INSERT INTO clinical_state (patient, generation, computed) VALUES (?, 1, 0) \
             ON CONFLICT (patient) DO UPDATE SET generation = clinical_state.generation + 1",
            &[SqlArg::Text(p.to_owned())],
        )?;
    }
    Ok(())
}

/// A patient's state: the generation and the day the rows were last worked out for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub generation: i64,
    pub computed_on: Option<String>,
    /// Whether the rows are current for that generation.
    pub current: bool,
}

/// The generation the rows were computed from is kept in `computed`; they are current
/// when it equals `generation`.
pub fn state<T: ReadTx + ?Sized>(tx: &mut T, patient: &str) -> Result<Option<State>, StoreError> {
    let rows = tx.query(
        "SELECT generation, computed, computed_on FROM clinical_state WHERE patient = ?",
        &[SqlArg::Text(patient.to_owned())],
    )?;
    rows.into_iter()
        .next()
        .map(|values| {
            let mut c = Columns::new("clinical_state", values);
            let generation = c.int("generation")?;
            let computed = c.int("computed")?;
            Ok(State {
                generation,
                computed_on: c.opt_text("computed_on")?,
                current: computed == generation,
            })
        })
        .transpose()
}

/// Replaces a patient's rows with `findings`, worked out for `today` from the record as it
/// stood at `generation`, unless a write has marked the patient since (then nothing is
/// stored and `false` is returned: the next read works them out again).
pub fn store<T: Tx + ?Sized>(
    tx: &mut T,
    patient: &str,
    generation: i64,
    today: &str,
    findings: &[FindingRow],
) -> Result<bool, StoreError> {
    // Two readers may work the same patient out at once: one stores at a time.
    tx.lock(&format!("clinical:{patient}"))?;
    let now = tx.query(
        "SELECT generation FROM clinical_state WHERE patient = ?",
        &[SqlArg::Text(patient.to_owned())],
    )?;
    let current = match now.into_iter().next() {
        Some(values) => Columns::new("clinical_state", values).int("generation")?,
        None => 0,
    };
    if current != generation {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO clinical_state (patient, generation, computed, computed_on) \
         VALUES (?, ?, ?, ?) ON CONFLICT (patient) DO UPDATE SET \
         computed = excluded.computed, computed_on = excluded.computed_on",
        &[
            SqlArg::Text(patient.to_owned()),
            SqlArg::Int8(generation),
            SqlArg::Int8(generation),
            SqlArg::Text(today.to_owned()),
        ],
    )?;
    tx.execute(
        "DELETE FROM clinical_finding WHERE patient = ?",
        &[SqlArg::Text(patient.to_owned())],
    )?;
    for g in findings {
        tx.execute(
            "INSERT INTO clinical_finding (patient, kind, status, due, detail) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (patient, kind) DO UPDATE SET status = excluded.status, \
             due = excluded.due, detail = excluded.detail",
            &[
                SqlArg::Text(g.patient.clone()),
                SqlArg::Text(g.kind.clone()),
                SqlArg::Text(g.status.clone()),
                // No due date is stored as '' so that both backends order it first.
                SqlArg::Text(g.due.clone().unwrap_or_default()),
                SqlArg::Text(g.detail.clone()),
            ],
        )?;
    }
    Ok(true)
}

/// A patient's rows, by rule.
pub fn findings<T: ReadTx + ?Sized>(
    tx: &mut T,
    patient: &str,
) -> Result<Vec<FindingRow>, StoreError> {
    tx.query(
        "SELECT patient, kind, status, due, detail FROM clinical_finding WHERE patient = ? ORDER BY kind",
        &[SqlArg::Text(patient.to_owned())],
    )?
    .into_iter()
    .map(finding_row)
    .collect()
}

/// Whose rows in a population need working out before a worklist over it is read: those
/// marked since, and those last worked out before `today`. `org` limits it to the
/// patients in the organization's care (None: every patient with a state row, plus
/// every Patient with none).
pub fn stale<T: ReadTx + ?Sized>(
    tx: &mut T,
    org: Option<&str>,
    today: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let limit = SqlArg::Int8(i64::try_from(limit).unwrap_or(i64::MAX));
    let t = SqlArg::Text(today.to_owned());
    let rows = match org {
        Some(org) => tx.query(
            "SELECT c.patient_id FROM care c LEFT JOIN clinical_state s ON s.patient = c.patient_id \
             WHERE c.org_id = ? AND (s.patient IS NULL OR s.computed <> s.generation \
             OR s.computed_on IS NULL OR s.computed_on < ?) ORDER BY c.patient_id LIMIT ?",
            &[SqlArg::Text(org.to_owned()), t, limit],
        )?,
        None => tx.query(
            "SELECT r.id FROM resource r LEFT JOIN clinical_state s ON s.patient = r.id \
             WHERE r.rtype = 'Patient' AND NOT r.deleted AND (s.patient IS NULL \
             OR s.computed <> s.generation OR s.computed_on IS NULL OR s.computed_on < ?) \
             ORDER BY r.id LIMIT ?",
            &[t, limit],
        )?,
    };
    rows.into_iter()
        .map(|values| {
            let mut c = Columns::new("clinical_state", values);
            c.text(if org.is_some() { "patient_id" } else { "id" })
        })
        .collect()
}

/// One page of a worklist: the rows of `kind` (and of its series, `kind/…`) in `status`, earliest due first, after
/// `after` (the last row's `(due, patient, kind)` of the page before), among the patients of
/// `org`'s care (None: everyone), at most `limit`.
pub fn worklist<T: ReadTx + ?Sized>(
    tx: &mut T,
    kind: &str,
    status: &str,
    org: Option<&str>,
    after: Option<(&str, &str, &str)>,
    limit: usize,
) -> Result<Vec<FindingRow>, StoreError> {
    // A rule with series (childhood immunizations) keeps a row per series under it,
    // `kind/series`; one index probe says whether this kind has any.
    let series = !tx
        .query(
            "SELECT kind FROM clinical_finding WHERE kind > ? AND kind < ? LIMIT 1",
            &[
                SqlArg::Text(format!("{kind}/")),
                SqlArg::Text(format!("{kind}0")),
            ],
        )?
        .is_empty();
    let mut sql =
        String::from("SELECT g.patient, g.kind, g.status, g.due, g.detail FROM clinical_finding g");
    let mut args = Vec::new();
    if let Some(org) = org {
        sql.push_str(" JOIN care c ON c.patient_id = g.patient AND c.org_id = ?");
        args.push(SqlArg::Text(org.to_owned()));
    }
    if series {
        sql.push_str(" WHERE (g.kind = ? OR (g.kind > ? AND g.kind < ?)) AND g.status = ?");
        args.push(SqlArg::Text(kind.to_owned()));
        args.push(SqlArg::Text(format!("{kind}/")));
        args.push(SqlArg::Text(format!("{kind}0")));
    } else {
        // One kind: the index (kind, status, due, patient) gives the order, and the walk
        // stops at the page's end.
        sql.push_str(" WHERE g.kind = ? AND g.status = ?");
        args.push(SqlArg::Text(kind.to_owned()));
    }
    args.push(SqlArg::Text(status.to_owned()));
    if let Some((due, patient, kind)) = after {
        sql.push_str(
            " AND (g.due > ? OR (g.due = ? AND (g.patient > ? OR (g.patient = ? AND g.kind > ?))))",
        );
        args.push(SqlArg::Text(due.to_owned()));
        args.push(SqlArg::Text(due.to_owned()));
        args.push(SqlArg::Text(patient.to_owned()));
        args.push(SqlArg::Text(patient.to_owned()));
        args.push(SqlArg::Text(kind.to_owned()));
    }
    sql.push_str(" ORDER BY g.due, g.patient, g.kind LIMIT ?");
    args.push(SqlArg::Int8(i64::try_from(limit).unwrap_or(i64::MAX)));
    tx.query(&sql, &args)?
        .into_iter()
        .map(finding_row)
        .collect()
}

/// The ids of the patients of `org`'s care (None: every Patient not deleted), in id
/// order, after `after`, at most `limit`: the population a measure or worklist covers.
pub fn patients<T: ReadTx + ?Sized>(
    tx: &mut T,
    org: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let limit = SqlArg::Int8(i64::try_from(limit).unwrap_or(i64::MAX));
    let after = SqlArg::Text(after.unwrap_or("").to_owned());
    let (column, rows) = match org {
        Some(org) => (
            "patient_id",
            tx.query(
                "SELECT c.patient_id FROM care c JOIN resource r ON r.rtype = 'Patient' \
                 AND r.id = c.patient_id AND NOT r.deleted \
                 WHERE c.org_id = ? AND c.patient_id > ? ORDER BY c.patient_id LIMIT ?",
                &[SqlArg::Text(org.to_owned()), after, limit],
            )?,
        ),
        None => (
            "id",
            tx.query(
                "SELECT r.id FROM resource r WHERE r.rtype = 'Patient' AND NOT r.deleted \
                 AND r.id > ? ORDER BY r.id LIMIT ?",
                &[after, limit],
            )?,
        ),
    };
    rows.into_iter()
        .map(|values| Columns::new("patients", values).text(column))
        .collect()
}

/// How many patients of `org`'s care (None: everyone) have an open gap of `kind` or of
/// one of its series (`kind/…`).
pub fn open_count<T: ReadTx + ?Sized>(
    tx: &mut T,
    org: Option<&str>,
    kind: &str,
) -> Result<i64, StoreError> {
    let mut sql = String::from("SELECT COUNT(DISTINCT g.patient) AS n FROM clinical_finding g");
    let mut args = Vec::new();
    if let Some(org) = org {
        sql.push_str(" JOIN care c ON c.patient_id = g.patient AND c.org_id = ?");
        args.push(SqlArg::Text(org.to_owned()));
    }
    sql.push_str(" WHERE g.status = 'open' AND (g.kind = ? OR (g.kind > ? AND g.kind < ?))");
    args.push(SqlArg::Text(kind.to_owned()));
    args.push(SqlArg::Text(format!("{kind}/")));
    args.push(SqlArg::Text(format!("{kind}0")));
    let rows = tx.query(&sql, &args)?;
    match rows.into_iter().next() {
        Some(values) => Columns::new("clinical_finding", values).int("n"),
        None => Ok(0),
    }
}
