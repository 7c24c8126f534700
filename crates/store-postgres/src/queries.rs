//! The read SQL of every port method, over one pooled connection (a reader's snapshot
//! or a write transaction). Same queries as the SQLite backend; statements are
//! prepared once per connection and cached.

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::{IndexEntry, IndexValue, ParamKey};
use oxehr_store::search::SqlValue;
use oxehr_store::sql::{self, SqlArg};
use oxehr_store::{rows, HistoryQuery, Method, StoreError, StoredResource};
use postgres::types::ToSql;
use postgres::Row;

use crate::pg_err;
use crate::pool::PgConn;

type Arg = Box<dyn ToSql + Sync + Send>;

/// Rewrites `?` placeholders as `$1, $2, …` (our SQL has no `?` in literals).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

fn query(conn: &mut PgConn, sql: &str, args: &[Arg]) -> Result<Vec<Row>, StoreError> {
    let st = conn.prepare(sql)?;
    let refs: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect();
    conn.client.query(&st, &refs).map_err(pg_err)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.into())
}

/// Columns: rtype, id, version, last_updated, method, body.
fn to_stored(row: &Row) -> Result<StoredResource, StoreError> {
    let get = |e: postgres::Error| pg_err(e);
    let rtype: &str = row.try_get(0).map_err(get)?;
    let id: &str = row.try_get(1).map_err(get)?;
    let version: i64 = row.try_get(2).map_err(get)?;
    let method: i16 = row.try_get(4).map_err(get)?;
    Ok(StoredResource {
        rtype: ResourceType::parse(rtype).ok_or_else(|| corrupt("resource type"))?,
        id: ResourceId::parse(id).ok_or_else(|| corrupt("resource id"))?,
        version: VersionId(u64::try_from(version).map_err(|_| corrupt("version"))?),
        last_updated: row.try_get(3).map_err(get)?,
        method: Method::from_code(i64::from(method)).ok_or_else(|| corrupt("method"))?,
        body: row.try_get(5).map_err(get)?,
    })
}

fn stored(rows: Vec<Row>) -> Result<Vec<StoredResource>, StoreError> {
    rows.iter().map(to_stored).collect()
}

const SELECT_FULL: &str = "SELECT r.rtype, r.id, v.version, v.last_updated, v.method, v.body \
     FROM resource r JOIN resource_version v ON v.rid = r.rid";

pub(crate) fn current(
    conn: &mut PgConn,
    rtype: &ResourceType,
    id: &ResourceId,
) -> Result<Option<StoredResource>, StoreError> {
    let rows = query(
        conn,
        "SELECT r.rtype, r.id, v.version, v.last_updated, v.method, v.body FROM resource r \
         JOIN resource_version v ON v.rid = r.rid AND v.version = r.version \
         WHERE r.rtype = $1 AND r.id = $2",
        &[
            Box::new(rtype.as_str().to_owned()),
            Box::new(id.as_str().to_owned()),
        ],
    )?;
    rows.first().map(to_stored).transpose()
}

pub(crate) fn version(
    conn: &mut PgConn,
    rtype: &ResourceType,
    id: &ResourceId,
    version: VersionId,
) -> Result<Option<StoredResource>, StoreError> {
    let v = i64::try_from(version.0).unwrap_or(i64::MAX);
    let rows = query(
        conn,
        &format!("{SELECT_FULL} AND v.version = $3 WHERE r.rtype = $1 AND r.id = $2"),
        &[
            Box::new(rtype.as_str().to_owned()),
            Box::new(id.as_str().to_owned()),
            Box::new(v),
        ],
    )?;
    rows.first().map(to_stored).transpose()
}

/// Our arguments as PostgreSQL parameters.
fn bind(args: Vec<SqlArg>) -> Vec<Arg> {
    args.into_iter()
        .map(|a| -> Arg {
            match a {
                SqlArg::Int4(n) => Box::new(n),
                SqlArg::Int8(n) => Box::new(n),
                SqlArg::Real(x) => Box::new(x),
                SqlArg::Text(t) => Box::new(t),
                SqlArg::NullInt8 => Box::new(None::<i64>),
                SqlArg::NullText => Box::new(None::<String>),
            }
        })
        .collect()
}

fn history_where(q: &HistoryQuery) -> (String, Vec<Arg>) {
    let (sql, args) = sql::history_where(q);
    (sql, bind(args))
}

fn clamp(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn history(
    conn: &mut PgConn,
    q: &HistoryQuery,
) -> Result<Vec<StoredResource>, StoreError> {
    let (filter, mut args) = history_where(q);
    args.push(Box::new(clamp(q.count)));
    args.push(Box::new(clamp(q.offset)));
    let sql = numbered(&format!(
        "{SELECT_FULL}{filter} ORDER BY v.last_updated DESC, v.version DESC, v.rid DESC \
         LIMIT ? OFFSET ?"
    ));
    stored(query(conn, &sql, &args)?)
}

fn count(conn: &mut PgConn, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
    let rows = query(conn, sql, args)?;
    let n: i64 = rows
        .first()
        .ok_or_else(|| corrupt("count"))?
        .try_get(0)
        .map_err(pg_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn history_count(conn: &mut PgConn, q: &HistoryQuery) -> Result<u64, StoreError> {
    let (filter, args) = history_where(q);
    let sql = numbered(&format!(
        "SELECT count(*) FROM resource_version v JOIN resource r ON r.rid = v.rid{filter}"
    ));
    count(conn, &sql, &args)
}

/// Runs one statement built by `oxehr_store` (accounts, audit), prepared once per
/// connection; the rows it changed.
pub(crate) fn execute(conn: &mut PgConn, sql: &str, args: &[SqlArg]) -> Result<u64, StoreError> {
    let st = conn.prepare(&numbered(sql))?;
    let args = bind(args.to_vec());
    let refs: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect();
    conn.client.execute(&st, &refs).map_err(pg_err)
}

/// Runs a statement of the search engine; every value as a [`SqlValue`].
///
/// With `shared_plan` false the statement is not taken from the statement cache: a
/// cached statement gets a generic plan after five runs, planned without the argument
/// values, and for most searches the values decide the plan (a reference to one patient
/// vs a code every patient has) — measured, a generic plan made a 2 ms search take
/// 200 ms. A statement prepared for one run is planned with its values, which costs a
/// parse round trip and 1–2 ms of planning every time. With `shared_plan` (the caller
/// says the best plan is the same for any values: one patient's records, keys by
/// primary key) it is prepared once per connection, and PostgreSQL switches to the
/// generic plan when its cost is no worse than the plans made with values.
pub(crate) fn query_values(
    conn: &mut PgConn,
    sql: &str,
    args: &[SqlArg],
    shared_plan: bool,
) -> Result<Vec<Vec<SqlValue>>, StoreError> {
    use postgres::types::Type;
    let args = bind(args.to_vec());
    let refs: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = if shared_plan {
        let st = conn.prepare(&numbered(sql))?;
        conn.client.query(&st, &refs)
    } else {
        conn.client.query(numbered(sql).as_str(), &refs)
    }
    .map_err(pg_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut vals = Vec::with_capacity(row.len());
        for (i, col) in row.columns().iter().enumerate() {
            let t = col.type_();
            let v = if *t == Type::INT8 {
                row.try_get::<_, Option<i64>>(i)
                    .map(|v| v.map(SqlValue::Int))
            } else if *t == Type::INT4 {
                row.try_get::<_, Option<i32>>(i)
                    .map(|v| v.map(|v| SqlValue::Int(i64::from(v))))
            } else if *t == Type::INT2 {
                row.try_get::<_, Option<i16>>(i)
                    .map(|v| v.map(|v| SqlValue::Int(i64::from(v))))
            } else if *t == Type::FLOAT8 {
                row.try_get::<_, Option<f64>>(i)
                    .map(|v| v.map(SqlValue::Real))
            } else if *t == Type::BOOL {
                row.try_get::<_, Option<bool>>(i)
                    .map(|v| v.map(|b| SqlValue::Int(i64::from(b))))
            } else {
                row.try_get::<_, Option<String>>(i)
                    .map(|v| v.map(SqlValue::Text))
            }
            .map_err(pg_err)?;
            vals.push(v.unwrap_or(SqlValue::Null));
        }
        out.push(vals);
    }
    Ok(out)
}

fn rid_of(
    conn: &mut PgConn,
    rtype: &ResourceType,
    id: &ResourceId,
) -> Result<Option<i64>, StoreError> {
    let rows = query(
        conn,
        "SELECT rid FROM resource WHERE rtype = $1 AND id = $2",
        &[
            Box::new(rtype.as_str().to_owned()),
            Box::new(id.as_str().to_owned()),
        ],
    )?;
    rows.first()
        .map(|r| r.try_get(0).map_err(pg_err))
        .transpose()
}

pub(crate) fn compartments(
    conn: &mut PgConn,
    rtype: &ResourceType,
    id: &ResourceId,
) -> Result<Vec<ResourceId>, StoreError> {
    let Some(rid) = rid_of(conn, rtype, id)? else {
        return Ok(Vec::new());
    };
    let rows = query(
        conn,
        "SELECT DISTINCT patient_id FROM compartment WHERE rid = $1 ORDER BY patient_id",
        &[Box::new(rid)],
    )?;
    rows.iter()
        .map(|r| {
            let p: &str = r.try_get(0).map_err(pg_err)?;
            ResourceId::parse(p).ok_or_else(|| corrupt("patient id"))
        })
        .collect()
}

type Decode = fn(&Row) -> Result<IndexValue, postgres::Error>;

/// Per index table: the query of one resource's rows and how to read a row back.
const READ_BACK: [(&str, Decode); 8] = [
    (
        "SELECT param, normalized, exact FROM idx_string WHERE rid = $1",
        |r| {
            Ok(IndexValue::String {
                normalized: r.try_get(1)?,
                exact: r.try_get(2)?,
            })
        },
    ),
    (
        "SELECT param, system, code, text FROM idx_token WHERE rid = $1",
        |r| {
            Ok(IndexValue::Token {
                system: r.try_get(1)?,
                code: r.try_get(2)?,
                text: r.try_get(3)?,
            })
        },
    ),
    (
        "SELECT param, low, high FROM idx_date WHERE rid = $1",
        |r| {
            Ok(IndexValue::Date {
                low: r.try_get(1)?,
                high: r.try_get(2)?,
            })
        },
    ),
    (
        "SELECT param, value, low, high FROM idx_number WHERE rid = $1",
        |r| {
            Ok(IndexValue::Number {
                value: r.try_get(1)?,
                low: r.try_get(2)?,
                high: r.try_get(3)?,
            })
        },
    ),
    (
        "SELECT param, value, low, high, system, code, unit, canonical_value, canonical_code \
         FROM idx_quantity WHERE rid = $1",
        |r| {
            Ok(IndexValue::Quantity {
                value: r.try_get(1)?,
                low: r.try_get(2)?,
                high: r.try_get(3)?,
                system: r.try_get(4)?,
                code: r.try_get(5)?,
                unit: r.try_get(6)?,
                canonical_value: r.try_get(7)?,
                canonical_code: r.try_get(8)?,
            })
        },
    ),
    (
        "SELECT param, target_type, target_id, version, url, identifier_system, \
         identifier_value FROM idx_reference WHERE rid = $1",
        |r| {
            Ok(IndexValue::Reference {
                target_type: r.try_get(1)?,
                target_id: r.try_get(2)?,
                version: r.try_get(3)?,
                url: r.try_get(4)?,
                identifier_system: r.try_get(5)?,
                identifier_value: r.try_get(6)?,
            })
        },
    ),
    ("SELECT param, value FROM idx_uri WHERE rid = $1", |r| {
        Ok(IndexValue::Uri {
            value: r.try_get(1)?,
        })
    }),
    ("SELECT param, content FROM idx_text WHERE rid = $1", |r| {
        Ok(IndexValue::Text {
            content: r.try_get(1)?,
        })
    }),
];

pub(crate) fn index_entries(
    conn: &mut PgConn,
    rtype: &ResourceType,
    id: &ResourceId,
) -> Result<Vec<IndexEntry>, StoreError> {
    let Some(rid) = rid_of(conn, rtype, id)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (sql, decode) in READ_BACK {
        for row in query(conn, sql, &[Box::new(rid)])? {
            out.push(IndexEntry {
                param: ParamKey(row.try_get(0).map_err(pg_err)?),
                value: decode(&row).map_err(pg_err)?,
            });
        }
    }
    for row in query(
        conn,
        "SELECT param, parts FROM idx_composite WHERE rid = $1",
        &[Box::new(rid)],
    )? {
        let parts: &str = row.try_get(1).map_err(pg_err)?;
        out.push(IndexEntry {
            param: ParamKey(row.try_get(0).map_err(pg_err)?),
            value: IndexValue::Composite {
                parts: rows::composite_from_json(parts)?,
            },
        });
    }
    Ok(out)
}
