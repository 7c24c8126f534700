//! The read SQL of every port method, over one pooled connection (a reader's snapshot
//! or a write transaction). Same queries as the SQLite backend; statements are
//! prepared once per connection and cached.

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::{IndexEntry, IndexValue, ParamKey};
use oxehr_store::{
    rows, HistoryQuery, HistoryScope, Match, Method, SimpleSearch, StoreError, StoredResource,
};
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

fn history_where(q: &HistoryQuery) -> (String, Vec<Arg>) {
    let mut sql = String::from(" WHERE true");
    let mut args: Vec<Arg> = Vec::new();
    match &q.scope {
        HistoryScope::System => {}
        HistoryScope::Type(t) => {
            sql.push_str(" AND r.rtype = ?");
            args.push(Box::new(t.as_str().to_owned()));
        }
        HistoryScope::Instance(t, id) => {
            sql.push_str(" AND r.rtype = ? AND r.id = ?");
            args.push(Box::new(t.as_str().to_owned()));
            args.push(Box::new(id.as_str().to_owned()));
        }
    }
    if let Some(since) = q.since {
        sql.push_str(" AND v.last_updated >= ?");
        args.push(Box::new(since));
    }
    if let Some(at) = q.at {
        sql.push_str(" AND v.last_updated <= ?");
        args.push(Box::new(at));
    }
    (sql, args)
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

/// One `Match` as a condition on `r` (the `resource` row), with its arguments.
fn match_sql(param: ParamKey, m: &Match, sql: &mut String, args: &mut Vec<Arg>) {
    let p = param.0;
    match m {
        Match::StringPrefix(s) => {
            sql.push_str(
                "r.rid IN (SELECT rid FROM idx_string WHERE param = ? \
                 AND normalized >= ? AND normalized < ?)",
            );
            args.push(Box::new(p));
            args.push(Box::new(s.clone()));
            args.push(Box::new(format!("{s}\u{10FFFF}")));
        }
        Match::Token { system, code } => {
            sql.push_str("r.rid IN (SELECT rid FROM idx_token WHERE param = ?");
            args.push(Box::new(p));
            if let Some(c) = code {
                sql.push_str(" AND code = ?");
                args.push(Box::new(c.clone()));
            }
            match system {
                None => {}
                Some(None) => sql.push_str(" AND system IS NULL"),
                Some(Some(s)) => {
                    sql.push_str(" AND system = ?");
                    args.push(Box::new(s.clone()));
                }
            }
            sql.push(')');
        }
        Match::Reference {
            target_type,
            target_id,
        } => {
            sql.push_str(
                "r.rid IN (SELECT rid FROM idx_reference WHERE param = ? AND target_id = ?",
            );
            args.push(Box::new(p));
            args.push(Box::new(target_id.clone()));
            if let Some(t) = target_type {
                sql.push_str(" AND target_type = ?");
                args.push(Box::new(t.clone()));
            }
            sql.push(')');
        }
        Match::ReferenceUrl(u) => {
            sql.push_str("r.rid IN (SELECT rid FROM idx_reference WHERE param = ? AND url = ?)");
            args.push(Box::new(p));
            args.push(Box::new(u.clone()));
        }
        Match::Uri(u) => {
            sql.push_str("r.rid IN (SELECT rid FROM idx_uri WHERE param = ? AND value = ?)");
            args.push(Box::new(p));
            args.push(Box::new(u.clone()));
        }
        Match::DateWithin { low, high } => {
            sql.push_str(
                "r.rid IN (SELECT rid FROM idx_date WHERE param = ? AND low >= ? AND high <= ?)",
            );
            args.push(Box::new(p));
            args.push(Box::new(*low));
            args.push(Box::new(*high));
        }
        Match::NumberNear(x) => {
            sql.push_str(
                "(r.rid IN (SELECT rid FROM idx_number WHERE param = ? AND low <= ? AND high >= ?) \
                 OR r.rid IN (SELECT rid FROM idx_quantity WHERE param = ? AND low <= ? AND high >= ?))",
            );
            for _ in 0..2 {
                args.push(Box::new(p));
                args.push(Box::new(*x));
                args.push(Box::new(*x));
            }
        }
        Match::Id(id) => {
            sql.push_str("r.id = ?");
            args.push(Box::new(id.clone()));
        }
    }
}

fn search_where(q: &SimpleSearch) -> (String, Vec<Arg>) {
    let mut sql = String::from(" WHERE r.rtype = ? AND NOT r.deleted");
    let mut args: Vec<Arg> = vec![Box::new(q.rtype.as_str().to_owned())];
    for c in &q.criteria {
        sql.push_str(" AND (");
        if c.any_of.is_empty() {
            sql.push_str("false");
        }
        for (i, m) in c.any_of.iter().enumerate() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            match_sql(c.param, m, &mut sql, &mut args);
        }
        sql.push(')');
    }
    (sql, args)
}

pub(crate) fn search(
    conn: &mut PgConn,
    q: &SimpleSearch,
) -> Result<Vec<StoredResource>, StoreError> {
    let (filter, mut args) = search_where(q);
    args.push(Box::new(clamp(q.count)));
    args.push(Box::new(clamp(q.offset)));
    let sql = numbered(&format!(
        "SELECT r.rtype, r.id, v.version, v.last_updated, v.method, v.body FROM resource r \
         JOIN resource_version v ON v.rid = r.rid AND v.version = r.version{filter} \
         ORDER BY r.rid LIMIT ? OFFSET ?"
    ));
    stored(query(conn, &sql, &args)?)
}

pub(crate) fn search_count(conn: &mut PgConn, q: &SimpleSearch) -> Result<u64, StoreError> {
    let (filter, args) = search_where(q);
    count(
        conn,
        &numbered(&format!("SELECT count(*) FROM resource r{filter}")),
        &args,
    )
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
const READ_BACK: [(&str, Decode); 7] = [
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
