//! The read SQL both backends share: history filters and the plain search's criteria,
//! written once with `?` placeholders and dialect-neutral arguments. Each backend binds
//! [`SqlArg`]s as its driver wants (PostgreSQL numbers the placeholders `$1, $2, …`).
//! The full search engine will grow from here into one plan for both backends.

use oxehr_fhir::ResourceType;
use oxehr_search::ParamKey;

use crate::{HistoryQuery, HistoryScope, Match, SimpleSearch};

/// Where the two SQL dialects we speak differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound value. `Int4` is for the `param` columns (32-bit in PostgreSQL).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlArg {
    Int4(i32),
    Int8(i64),
    Real(f64),
    Text(String),
}

/// The `WHERE` clause of a history query over `resource_version v JOIN resource r`.
pub fn history_where(q: &HistoryQuery) -> (String, Vec<SqlArg>) {
    let mut sql = String::from(" WHERE 1 = 1");
    let mut args = Vec::new();
    match &q.scope {
        HistoryScope::System => {}
        HistoryScope::Type(t) => {
            sql.push_str(" AND r.rtype = ?");
            args.push(SqlArg::Text(t.as_str().into()));
        }
        HistoryScope::Instance(t, id) => {
            sql.push_str(" AND r.rtype = ? AND r.id = ?");
            args.push(SqlArg::Text(t.as_str().into()));
            args.push(SqlArg::Text(id.as_str().into()));
        }
    }
    if let Some(since) = q.since {
        sql.push_str(" AND v.last_updated >= ?");
        args.push(SqlArg::Int8(since));
    }
    if let Some(at) = q.at {
        sql.push_str(" AND v.last_updated <= ?");
        args.push(SqlArg::Int8(at));
    }
    (sql, args)
}

/// The `WHERE` clause of a plain search over `resource r`: current, not deleted, of the
/// type, matching every criterion (any of its matches).
pub fn search_where(dialect: Dialect, q: &SimpleSearch) -> (String, Vec<SqlArg>) {
    let mut sql = String::from(match (dialect, q.criteria.is_empty()) {
        // With criteria, the unary `+` keeps SQLite from scanning every resource of the
        // type through the (rtype, id) index (it has no statistics to know better): the
        // rowid lists of the criteria drive the query instead.
        (Dialect::Sqlite, false) => " WHERE +r.rtype = ? AND r.deleted = 0",
        (Dialect::Sqlite, true) => " WHERE r.rtype = ? AND r.deleted = 0",
        (Dialect::Postgres, _) => " WHERE r.rtype = ? AND NOT r.deleted",
    });
    let mut args = vec![SqlArg::Text(q.rtype.as_str().into())];
    for c in &q.criteria {
        sql.push_str(" AND (");
        if c.any_of.is_empty() {
            sql.push_str("1 = 0");
        }
        for (i, m) in c.any_of.iter().enumerate() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            match_sql(&q.rtype, c.param, m, &mut sql, &mut args);
        }
        sql.push(')');
    }
    (sql, args)
}

/// One `Match` as a condition on `r` (the `resource` row): a list of resource keys from
/// an index table.
fn match_sql(
    rtype: &ResourceType,
    param: ParamKey,
    m: &Match,
    sql: &mut String,
    args: &mut Vec<SqlArg>,
) {
    let p = SqlArg::Int4(param.0);
    let text = |s: &str| SqlArg::Text(s.to_owned());
    match m {
        Match::StringPrefix(s) => {
            sql.push_str(
                "r.rid IN (SELECT rid FROM idx_string WHERE param = ? \
                 AND normalized >= ? AND normalized < ?)",
            );
            args.extend([p, text(s), SqlArg::Text(format!("{s}\u{10FFFF}"))]);
        }
        Match::Token { system, code } => {
            sql.push_str("r.rid IN (SELECT rid FROM idx_token WHERE param = ?");
            args.push(p);
            if let Some(c) = code {
                sql.push_str(" AND code = ?");
                args.push(text(c));
            }
            match system {
                None => {}
                Some(None) => sql.push_str(" AND system IS NULL"),
                Some(Some(s)) => {
                    sql.push_str(" AND system = ?");
                    args.push(text(s));
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
            args.extend([p, text(target_id)]);
            if let Some(t) = target_type {
                sql.push_str(" AND target_type = ?");
                args.push(text(t));
            }
            sql.push(')');
        }
        Match::ReferenceUrl(u) => {
            sql.push_str("r.rid IN (SELECT rid FROM idx_reference WHERE param = ? AND url = ?)");
            args.extend([p, text(u)]);
        }
        Match::Uri(u) => {
            sql.push_str("r.rid IN (SELECT rid FROM idx_uri WHERE param = ? AND value = ?)");
            args.extend([p, text(u)]);
        }
        Match::DateWithin { low, high } => {
            sql.push_str(
                "r.rid IN (SELECT rid FROM idx_date WHERE param = ? AND low >= ? AND high <= ?)",
            );
            args.extend([p, SqlArg::Int8(*low), SqlArg::Int8(*high)]);
        }
        Match::NumberNear(x) => {
            sql.push_str(
                "(r.rid IN (SELECT rid FROM idx_number WHERE param = ? AND low <= ? AND high >= ?) \
                 OR r.rid IN (SELECT rid FROM idx_quantity WHERE param = ? AND low <= ? AND high >= ?))",
            );
            for _ in 0..2 {
                args.extend([p.clone(), SqlArg::Real(*x), SqlArg::Real(*x)]);
            }
        }
        Match::Id(id) => {
            // Through the (rtype, id) index, like every other match a key list.
            sql.push_str("r.rid IN (SELECT rid FROM resource WHERE rtype = ? AND id = ?)");
            args.extend([text(rtype.as_str()), text(id)]);
        }
    }
}
