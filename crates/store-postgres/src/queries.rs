//! The read SQL of every port method, over one pooled connection (a reader's snapshot
//! or a write transaction). Same queries as the SQLite backend; statements are
//! prepared once per connection and cached.

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_store::search::SqlValue;
use oxehr_store::sql::SqlArg;
use oxehr_store::{Method, StoreError, StoredResource};
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
