//! The SQL of every port method, as functions over one connection: the reader pool and
//! the writer's transaction both call these, so a read inside a write job sees the job's
//! own writes. Statements go through `prepare_cached`.

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::{IndexEntry, IndexValue, ParamKey};
use oxehr_store::search::SqlValue;
use oxehr_store::sql::{self, SqlArg};
use oxehr_store::{rows, HistoryQuery, Method, StoreError, StoredResource};
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

const SELECT_FULL: &str =
    "SELECT r.rtype, r.id, v.version, v.last_updated, v.method, v.body FROM resource r \
     JOIN resource_version v ON v.rid = r.rid";

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

fn history_where(q: &HistoryQuery) -> (String, Vec<Value>) {
    let (sql, args) = sql::history_where(q);
    (sql, bind(args))
}

fn clamp(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn history(
    conn: &Connection,
    q: &HistoryQuery,
) -> Result<Vec<StoredResource>, StoreError> {
    let (filter, mut args) = history_where(q);
    let sql = format!(
        "{SELECT_FULL}{filter} ORDER BY v.last_updated DESC, v.version DESC, v.rid DESC \
         LIMIT ? OFFSET ?"
    );
    args.push(Value::Integer(clamp(q.count)));
    args.push(Value::Integer(clamp(q.offset)));
    collect(conn, &sql, args)
}

pub(crate) fn history_count(conn: &Connection, q: &HistoryQuery) -> Result<u64, StoreError> {
    let (filter, args) = history_where(q);
    let sql =
        format!("SELECT count(*) FROM resource_version v JOIN resource r ON r.rid = v.rid{filter}");
    count(conn, &sql, args)
}

fn collect(
    conn: &Connection,
    sql: &str,
    args: Vec<Value>,
) -> Result<Vec<StoredResource>, StoreError> {
    let mut st = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = st
        .query_map(params_from_iter(args), full_row)
        .map_err(db_err)?;
    rows.map(|r| r.map_err(db_err).and_then(to_stored))
        .collect()
}

fn count(conn: &Connection, sql: &str, args: Vec<Value>) -> Result<u64, StoreError> {
    let mut st = conn.prepare_cached(sql).map_err(db_err)?;
    let n: i64 = st
        .query_row(params_from_iter(args), |r| r.get(0))
        .map_err(db_err)?;
    Ok(n as u64)
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

fn rid_of(
    conn: &Connection,
    rtype: &ResourceType,
    id: &ResourceId,
) -> Result<Option<i64>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT rid FROM resource WHERE rtype = ?1 AND id = ?2")
        .map_err(db_err)?;
    st.query_row(params![rtype.as_str(), id.as_str()], |r| r.get(0))
        .optional()
        .map_err(db_err)
}

pub(crate) fn compartments(
    conn: &Connection,
    rtype: &ResourceType,
    id: &ResourceId,
) -> Result<Vec<ResourceId>, StoreError> {
    let Some(rid) = rid_of(conn, rtype, id)? else {
        return Ok(Vec::new());
    };
    let mut st = conn
        .prepare_cached("SELECT patient_id FROM compartment WHERE rid = ?1 ORDER BY patient_id")
        .map_err(db_err)?;
    let rows = st
        .query_map([rid], |r| r.get::<_, String>(0))
        .map_err(db_err)?;
    rows.map(|r| r.map_err(db_err).and_then(|s| id_of(&s)))
        .collect()
}

/// Reads back the index rows of a resource, one table at a time.
pub(crate) fn index_entries(
    conn: &Connection,
    rtype: &ResourceType,
    id: &ResourceId,
) -> Result<Vec<IndexEntry>, StoreError> {
    let Some(rid) = rid_of(conn, rtype, id)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut read = |sql: &str,
                    f: &dyn Fn(&Row<'_>) -> rusqlite::Result<IndexValue>|
     -> Result<(), StoreError> {
        let mut st = conn.prepare_cached(sql).map_err(db_err)?;
        let rows = st
            .query_map([rid], |r| {
                Ok(IndexEntry {
                    param: ParamKey(r.get(0)?),
                    value: f(r)?,
                })
            })
            .map_err(db_err)?;
        for r in rows {
            out.push(r.map_err(db_err)?);
        }
        Ok(())
    };
    read(
        "SELECT param, normalized, exact FROM idx_string WHERE rid = ?1",
        &|r| {
            Ok(IndexValue::String {
                normalized: r.get(1)?,
                exact: r.get(2)?,
            })
        },
    )?;
    read(
        "SELECT param, system, code, text FROM idx_token WHERE rid = ?1",
        &|r| {
            Ok(IndexValue::Token {
                system: r.get(1)?,
                code: r.get(2)?,
                text: r.get(3)?,
            })
        },
    )?;
    read(
        "SELECT param, low, high FROM idx_date WHERE rid = ?1",
        &|r| {
            Ok(IndexValue::Date {
                low: r.get(1)?,
                high: r.get(2)?,
            })
        },
    )?;
    read(
        "SELECT param, value, low, high FROM idx_number WHERE rid = ?1",
        &|r| {
            Ok(IndexValue::Number {
                value: r.get(1)?,
                low: r.get(2)?,
                high: r.get(3)?,
            })
        },
    )?;
    read(
        "SELECT param, value, low, high, system, code, unit, canonical_value, canonical_code \
         FROM idx_quantity WHERE rid = ?1",
        &|r| {
            Ok(IndexValue::Quantity {
                value: r.get(1)?,
                low: r.get(2)?,
                high: r.get(3)?,
                system: r.get(4)?,
                code: r.get(5)?,
                unit: r.get(6)?,
                canonical_value: r.get(7)?,
                canonical_code: r.get(8)?,
            })
        },
    )?;
    read(
        "SELECT param, target_type, target_id, version, url, identifier_system, \
         identifier_value FROM idx_reference WHERE rid = ?1",
        &|r| {
            Ok(IndexValue::Reference {
                target_type: r.get(1)?,
                target_id: r.get(2)?,
                version: r.get(3)?,
                url: r.get(4)?,
                identifier_system: r.get(5)?,
                identifier_value: r.get(6)?,
            })
        },
    )?;
    read("SELECT param, value FROM idx_uri WHERE rid = ?1", &|r| {
        Ok(IndexValue::Uri { value: r.get(1)? })
    })?;
    read("SELECT param, content FROM idx_text WHERE rid = ?1", &|r| {
        Ok(IndexValue::Text { content: r.get(1)? })
    })?;
    let mut st = conn
        .prepare_cached("SELECT param, parts FROM idx_composite WHERE rid = ?1")
        .map_err(db_err)?;
    let rows = st
        .query_map([rid], |r| Ok((r.get::<_, i32>(0)?, r.get::<_, String>(1)?)))
        .map_err(db_err)?;
    for r in rows {
        let (param, parts) = r.map_err(db_err)?;
        out.push(IndexEntry {
            param: ParamKey(param),
            value: IndexValue::Composite {
                parts: rows::composite_from_json(&parts)?,
            },
        });
    }
    Ok(out)
}
