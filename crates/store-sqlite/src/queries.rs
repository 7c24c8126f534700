//! The SQL of every port method, as functions over one connection: the reader pool and
//! the writer's transaction both call these, so a read inside a write job sees the job's
//! own writes. Statements go through `prepare_cached`.

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_store::search::SqlValue;
use oxehr_store::sql::SqlArg;
use oxehr_store::{Method, StoreError, StoredResource};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::db_err;

fn method_of(code: i64) -> Result<Method, StoreError> {
    Method::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("method code {code}")))
}

fn rtype_of(s: &str) -> Result<ResourceType, StoreError> {
    ResourceType::parse(s).ok_or_else(|| StoreError::Corrupt("resource type".into()))
}

fn id_of(s: &str) -> Result<ResourceId, StoreError> {
    ResourceId::parse(s).ok_or_else(|| StoreError::Corrupt("resource id".into()))
}

/// Columns: rtype, id, version, last_updated, method, body.
fn full_row(row: &Row<'_>) -> rusqlite::Result<(String, String, i64, i64, i64, Option<String>)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn to_stored(
    (rtype, id, version, last_updated, method, body): (
        String,
        String,
        i64,
        i64,
        i64,
        Option<String>,
    ),
) -> Result<StoredResource, StoreError> {
    Ok(StoredResource {
        rtype: rtype_of(&rtype)?,
        id: id_of(&id)?,
        version: VersionId(version as u64),
        last_updated,
        method: method_of(method)?,
        body,
    })
}

pub(crate) fn current(
    conn: &Connection,
    rtype: &ResourceType,
    id: &ResourceId,
) -> Result<Option<StoredResource>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT r.rtype, r.id, v.version, v.last_updated, v.method, v.body FROM resource r \
             JOIN resource_version v ON v.rid = r.rid AND v.version = r.version \
             WHERE r.rtype = ?1 AND r.id = ?2",
        )
        .map_err(db_err)?;
    let row = st
        .query_row(params![rtype.as_str(), id.as_str()], full_row)
        .optional()
        .map_err(db_err)?;
    row.map(to_stored).transpose()
}

pub(crate) fn version(
    conn: &Connection,
    rtype: &ResourceType,
    id: &ResourceId,
    version: VersionId,
) -> Result<Option<StoredResource>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT r.rtype, r.id, v.version, v.last_updated, v.method, v.body FROM resource r \
             JOIN resource_version v ON v.rid = r.rid AND v.version = ?3 \
             WHERE r.rtype = ?1 AND r.id = ?2",
        )
        .map_err(db_err)?;
    let row = st
        .query_row(
            params![rtype.as_str(), id.as_str(), version.0 as i64],
            full_row,
        )
        .optional()
        .map_err(db_err)?;
    row.map(to_stored).transpose()
}

/// Our arguments as SQLite values.
pub(crate) fn bind(args: Vec<SqlArg>) -> Vec<Value> {
    args.into_iter()
        .map(|a| match a {
            SqlArg::Int4(n) => Value::Integer(i64::from(n)),
            SqlArg::Int8(n) => Value::Integer(n),
            SqlArg::Real(x) => Value::Real(x),
            SqlArg::Text(t) => Value::Text(t),
            SqlArg::NullInt8 | SqlArg::NullText => Value::Null,
        })
        .collect()
}

/// Runs one statement built by `oxehr_store` (accounts, audit); the rows it changed.
pub(crate) fn execute(conn: &Connection, sql: &str, args: &[SqlArg]) -> Result<u64, StoreError> {
    let mut st = conn.prepare_cached(sql).map_err(db_err)?;
    let n = st
        .execute(params_from_iter(bind(args.to_vec())))
        .map_err(db_err)?;
    Ok(n as u64)
}

/// Runs a statement of the search engine; every value as a [`SqlValue`].
pub(crate) fn query(
    conn: &Connection,
    sql: &str,
    args: &[SqlArg],
) -> Result<Vec<Vec<SqlValue>>, StoreError> {
    use rusqlite::types::ValueRef;
    let mut st = conn.prepare_cached(sql).map_err(db_err)?;
    let n = st.column_count();
    let mut rows = st
        .query(params_from_iter(bind(args.to_vec())))
        .map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            vals.push(match row.get_ref(i).map_err(db_err)? {
                ValueRef::Null => SqlValue::Null,
                ValueRef::Integer(v) => SqlValue::Int(v),
                ValueRef::Real(v) => SqlValue::Real(v),
                // `from_utf8` checks ASCII a word at a time; the lossy walk (only for
                // text that is not UTF-8) goes a chunk at a time and was 4% of a scan.
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    SqlValue::Text(match std::str::from_utf8(t) {
                        Ok(s) => s.to_owned(),
                        Err(_) => String::from_utf8_lossy(t).into_owned(),
                    })
                }
            });
        }
        out.push(vals);
    }
    Ok(out)
}
