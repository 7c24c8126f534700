//! `Tx::put` and `Tx::put_many`: the version check, the `resource` and
//! `resource_version` rows, and the replacement of a resource's index and compartment
//! rows.
//!
//! Index rows are written with multi-row `INSERT … VALUES (…), (…)` statements, all the
//! rows of one table for every version of the call together, in chunks of fixed sizes
//! (so there are few distinct statements to prepare and cache). One statement per
//! chunk instead of one per row saves the per-statement work of SQLite (step, halt,
//! reset) and of the statement cache, which was a sixth of the writer's time in the
//! Synthea import. Each row carries `seq`, its position in the version's index list,
//! which with `rid` is the row's primary key (see `schema`).

use std::sync::OnceLock;

use oxehr_search::{IndexEntry, IndexValue};
use oxehr_store::{rows, NewVersion, StoreError};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Statement, ToSql};

use crate::db_err;

const DELETE_ROWS: [&str; 10] = [
    "DELETE FROM idx_string WHERE rid = ?1",
    "DELETE FROM idx_token WHERE rid = ?1",
    "DELETE FROM idx_date WHERE rid = ?1",
    "DELETE FROM idx_number WHERE rid = ?1",
    "DELETE FROM idx_quantity WHERE rid = ?1",
    "DELETE FROM idx_reference WHERE rid = ?1",
    "DELETE FROM idx_uri WHERE rid = ?1",
    "DELETE FROM idx_composite WHERE rid = ?1",
    "DELETE FROM idx_text WHERE rid = ?1",
    "DELETE FROM compartment WHERE rid = ?1",
];

/// The index tables, in the order of [`table_of`], with their columns.
const TABLES: [(&str, &[&str]); 9] = [
    ("idx_string", &["normalized", "exact"]),
    ("idx_token", &["system", "code", "text"]),
    ("idx_date", &["low", "high"]),
    ("idx_number", &["value", "low", "high"]),
    (
        "idx_quantity",
        &[
            "value",
            "low",
            "high",
            "system",
            "code",
            "unit",
            "canonical_value",
            "canonical_code",
        ],
    ),
    (
        "idx_reference",
        &[
            "target_type",
            "target_id",
            "version",
            "url",
            "identifier_system",
            "identifier_value",
        ],
    ),
    ("idx_uri", &["value"]),
    (
        "idx_composite",
        &[
            "system1",
            "code1",
            "system2",
            "code2",
            "value2",
            "low2",
            "high2",
            "date_low2",
            "date_high2",
            "string2",
            "parts",
        ],
    ),
    ("idx_text", &["content"]),
];

/// Rows per multi-row statement, largest first; any count is a sum of these.
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

fn table_of(v: &IndexValue) -> usize {
    match v {
        IndexValue::String { .. } => 0,
        IndexValue::Token { .. } => 1,
        IndexValue::Date { .. } => 2,
        IndexValue::Number { .. } => 3,
        IndexValue::Quantity { .. } => 4,
        IndexValue::Reference { .. } => 5,
        IndexValue::Uri { .. } => 6,
        IndexValue::Composite { .. } => 7,
        IndexValue::Text { .. } => 8,
    }
}

/// `INSERT OR FAIL INTO t (rid, seq, param, …) VALUES (?, …), …` for every table and
/// chunk size. `OR FAIL`, not the default `ABORT`: an aborting multi-row statement must
/// be able to undo its own first rows, so SQLite would open a statement journal and copy
/// every page the statement changes into it (measured: it ate the gain of multi-row
/// statements). No constraint can fail here (`(rid, seq)` is unique by construction),
/// and if one did, the error fails the job, which is rolled back as a whole.
fn insert_sql(table: usize, chunk: usize) -> &'static str {
    static SQL: OnceLock<Vec<Vec<String>>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        TABLES
            .iter()
            .map(|(name, cols)| {
                let row = format!("({})", vec!["?"; cols.len() + 3].join(", "));
                CHUNKS
                    .iter()
                    .map(|&n| {
                        format!(
                            "INSERT OR FAIL INTO {name} (rid, seq, param, {}) VALUES {}",
                            cols.join(", "),
                            vec![row.as_str(); n].join(", ")
                        )
                    })
                    .collect()
            })
            .collect()
    });
    let k = CHUNKS.iter().position(|&n| n == chunk).unwrap_or(0);
    &all[table][k]
}

/// Binds one row's values from parameter `at` on; returns the next free parameter.
fn bind_row(
    st: &mut Statement<'_>,
    mut at: usize,
    rid: i64,
    seq: i64,
    e: &IndexEntry,
) -> rusqlite::Result<usize> {
    let mut bind = |v: &dyn ToSql| -> rusqlite::Result<()> {
        st.raw_bind_parameter(at, v)?;
        at += 1;
        Ok(())
    };
    bind(&rid)?;
    bind(&seq)?;
    bind(&e.param.0)?;
    match &e.value {
        IndexValue::String { normalized, exact } => {
            bind(normalized)?;
            bind(exact)?;
        }
        IndexValue::Token { system, code, text } => {
            bind(system)?;
            bind(code)?;
            bind(text)?;
        }
        IndexValue::Date { low, high } => {
            bind(low)?;
            bind(high)?;
        }
        IndexValue::Number { value, low, high } => {
            bind(value)?;
            bind(low)?;
            bind(high)?;
        }
        IndexValue::Quantity {
            value,
            low,
            high,
            system,
            code,
            unit,
            canonical_value,
            canonical_code,
        } => {
            bind(value)?;
            bind(low)?;
            bind(high)?;
            bind(system)?;
            bind(code)?;
            bind(unit)?;
            bind(canonical_value)?;
            bind(canonical_code)?;
        }
        IndexValue::Reference {
            target_type,
            target_id,
            version,
            url,
            identifier_system,
            identifier_value,
        } => {
            bind(target_type)?;
            bind(target_id)?;
            bind(version)?;
            bind(url)?;
            bind(identifier_system)?;
            bind(identifier_value)?;
        }
        IndexValue::Uri { value } => bind(value)?,
        IndexValue::Composite { parts } => {
            let c = rows::composite_columns(parts);
            bind(&c.system1)?;
            bind(&c.code1)?;
            bind(&c.system2)?;
            bind(&c.code2)?;
            bind(&c.value2)?;
            bind(&c.low2)?;
            bind(&c.high2)?;
            bind(&c.date_low2)?;
            bind(&c.date_high2)?;
            bind(&c.string2)?;
            bind(&c.parts)?;
        }
        IndexValue::Text { content } => bind(content)?,
    }
    Ok(at)
}

/// Index rows waiting to be inserted, by table: `(rid, seq, entry)`.
#[derive(Default)]
struct Pending<'v> {
    rows: [Vec<(i64, i64, &'v IndexEntry)>; 9],
}

impl<'v> Pending<'v> {
    fn add(&mut self, rid: i64, v: &'v NewVersion) {
        for (seq, e) in v.index.iter().enumerate() {
            self.rows[table_of(&e.value)].push((rid, seq as i64, e));
        }
    }

    /// Inserts every pending row, table by table, in multi-row statements.
    fn flush(&mut self, conn: &Connection) -> Result<(), StoreError> {
        for (table, rows) in self.rows.iter_mut().enumerate() {
            let mut rest: &[(i64, i64, &IndexEntry)] = rows;
            for chunk in CHUNKS {
                while rest.len() >= chunk {
                    let (now, later) = rest.split_at(chunk);
                    let mut st = conn
                        .prepare_cached(insert_sql(table, chunk))
                        .map_err(db_err)?;
                    let mut at = 1;
                    for &(rid, seq, e) in now {
                        at = bind_row(&mut st, at, rid, seq, e).map_err(db_err)?;
                    }
                    st.raw_execute().map_err(db_err)?;
                    rest = later;
                }
            }
            rows.clear();
        }
        Ok(())
    }
}

/// `Tx::put_many`: each version as `put` would store it, with the index rows of all of
/// them inserted together at the end. Rows of a resource about to be replaced are
/// flushed first, so that its delete sees them.
pub(crate) fn put_many(conn: &Connection, versions: &[NewVersion]) -> Result<(), StoreError> {
    let mut pending = Pending::default();
    for v in versions {
        let rid = put_resource(conn, v, &mut pending)?;
        pending.add(rid, v);
    }
    pending.flush(conn)
}

/// Checks the version, writes the version row, moves `resource` to it, deletes the
/// resource's old index and compartment rows and inserts the new compartment rows.
/// Returns the resource's `rid`.
fn put_resource<'v>(
    conn: &Connection,
    v: &'v NewVersion,
    pending: &mut Pending<'v>,
) -> Result<i64, StoreError> {
    let r = &v.resource;
    let new_version = i64::try_from(r.version.0).map_err(|_| StoreError::Conflict)?;
    let deleted = i64::from(r.body.is_none());
    let rid = if new_version == 1 {
        // No lookup first: the unique `(rtype, id)` index refuses a second version 1.
        let inserted = conn
            .prepare_cached(
                "INSERT INTO resource (rtype, id, version, last_updated, deleted) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(db_err)?
            .execute(params![
                r.rtype.as_str(),
                r.id.as_str(),
                new_version,
                r.last_updated,
                deleted
            ]);
        match inserted {
            Ok(_) => conn.last_insert_rowid(),
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                return Err(StoreError::Conflict)
            }
            Err(e) => return Err(db_err(e)),
        }
    } else {
        let existing: Option<(i64, i64)> = conn
            .prepare_cached("SELECT rid, version FROM resource WHERE rtype = ?1 AND id = ?2")
            .map_err(db_err)?
            .query_row(params![r.rtype.as_str(), r.id.as_str()], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .map_err(db_err)?;
        let Some((rid, _)) = existing.filter(|(_, cur)| cur + 1 == new_version) else {
            return Err(StoreError::Conflict);
        };
        conn.prepare_cached(
            "UPDATE resource SET version = ?2, last_updated = ?3, deleted = ?4 WHERE rid = ?1",
        )
        .map_err(db_err)?
        .execute(params![rid, new_version, r.last_updated, deleted])
        .map_err(db_err)?;
        // The previous version may be one of this call's, its rows still pending.
        pending.flush(conn)?;
        delete_rows(conn, rid)?;
        rid
    };
    conn.prepare_cached(
        "INSERT INTO resource_version (rid, version, last_updated, method, body) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(db_err)?
    .execute(params![
        rid,
        new_version,
        r.last_updated,
        r.method.code(),
        r.body
    ])
    .map_err(db_err)?;
    insert_compartments(conn, rid, v)?;
    Ok(rid)
}

/// The resource's index and compartment rows, deleted.
fn delete_rows(conn: &Connection, rid: i64) -> Result<(), StoreError> {
    for sql in DELETE_ROWS {
        conn.prepare_cached(sql)
            .map_err(db_err)?
            .execute([rid])
            .map_err(db_err)?;
    }
    Ok(())
}

fn insert_compartments(conn: &Connection, rid: i64, v: &NewVersion) -> Result<(), StoreError> {
    if !v.compartments.is_empty() {
        let mut st = conn
            .prepare_cached("INSERT OR IGNORE INTO compartment (patient_id, rid) VALUES (?1, ?2)")
            .map_err(db_err)?;
        for p in &v.compartments {
            st.execute(params![p.as_str(), rid]).map_err(db_err)?;
        }
    }
    Ok(())
}

/// `Tx::reindex`: the current version's index and compartment rows replaced; `Conflict`
/// when `v` is not the current version (or it is deleted).
pub(crate) fn reindex(conn: &Connection, v: &NewVersion) -> Result<(), StoreError> {
    let r = &v.resource;
    let version = i64::try_from(r.version.0).map_err(|_| StoreError::Conflict)?;
    let rid: Option<i64> = conn
        .prepare_cached(
            "SELECT rid FROM resource WHERE rtype = ?1 AND id = ?2 AND version = ?3 AND deleted = 0",
        )
        .map_err(db_err)?
        .query_row(params![r.rtype.as_str(), r.id.as_str(), version], |row| {
            row.get(0)
        })
        .optional()
        .map_err(db_err)?;
    let rid = rid.ok_or(StoreError::Conflict)?;
    delete_rows(conn, rid)?;
    insert_compartments(conn, rid, v)?;
    let mut pending = Pending::default();
    pending.add(rid, v);
    pending.flush(conn)
}
