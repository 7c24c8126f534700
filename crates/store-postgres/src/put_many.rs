//! `Tx::put_many` in one round trip per [`CHUNK`] versions: ONE prepared statement
//! stores every version of the chunk, whatever its size, with the semantics of `put`
//! for each (see [`put`](crate::put)).
//!
//! The statement unnests the versions (`v`, numbered `k` = 1, 2, … by `WITH
//! ORDINALITY`), inserts the new resources (`INSERT … ON CONFLICT DO NOTHING`) and moves
//! the updated ones (`UPDATE … WHERE version = new - 1`), collects the `rid` of every
//! version that passed its check into one array `rids` indexed by `k` (NULL for one that
//! did not), deletes the updated resources' old index and compartment rows, and inserts
//! the version rows and the new index rows, each index row finding its `rid` as
//! `rids[k]` (an array subscript, not a join, so the plan does not depend on row
//! estimates). It answers how many versions passed.
//!
//! Fewer than all means a version conflict. Then the whole call is undone (a savepoint
//! taken before the first chunk) and the caller replays the versions one `put` at a
//! time, which stores those before the conflicting one and answers `Conflict` exactly
//! where a loop of `put`s would. Inputs the statement cannot take as one set — the same
//! resource twice, a version out of range — go that way from the start. A batch of one
//! is just `put`.

use std::collections::HashSet;
use std::sync::OnceLock;

use oxehr_store::{NewVersion, StoreError};
use postgres::types::ToSql;

use crate::pg_err;
use crate::pool::PgConn;
use crate::put::{Columns, TABLES};

/// Most versions sent in one statement: bounds the size of one message (a Synthea
/// bundle is 100–1,000 resources of 1–3 KB).
const CHUNK: usize = 1000;

/// What `put_many` did.
pub(crate) enum Outcome {
    /// Every version is stored.
    Stored,
    /// Nothing is stored; the caller must `put` the versions one by one.
    OneByOne,
}

const VERSIONS: &str = "WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], \
    $4::int8[], $5::bool[], $6::int2[], $7::text[]) WITH ORDINALITY \
    AS v(rtype, id, version, last_updated, deleted, method, body, k))
, c AS (INSERT INTO resource (rtype, id, version, last_updated, deleted) \
    SELECT rtype, id, version, last_updated, deleted FROM v WHERE version = 1 ORDER BY k \
    ON CONFLICT (rtype, id) DO NOTHING RETURNING rid, rtype, id)
";

const UPDATES: &str = ", u AS (UPDATE resource r SET version = v.version, \
    last_updated = v.last_updated, deleted = v.deleted \
    FROM v WHERE v.version > 1 AND r.rtype = v.rtype AND r.id = v.id \
    AND r.version = v.version - 1 RETURNING r.rid, v.k)
";

/// Index tables after `rid`: columns and their array types, in [`Columns::batch_args`]
/// order.
const INDEX_COLUMNS: [(&str, &[(&str, &str)]); 9] = [
    (
        "idx_string",
        &[("param", "int4"), ("normalized", "text"), ("exact", "text")],
    ),
    (
        "idx_token",
        &[
            ("param", "int4"),
            ("system", "text"),
            ("code", "text"),
            ("text", "text"),
        ],
    ),
    (
        "idx_date",
        &[("param", "int4"), ("low", "int8"), ("high", "int8")],
    ),
    (
        "idx_number",
        &[
            ("param", "int4"),
            ("value", "float8"),
            ("low", "float8"),
            ("high", "float8"),
        ],
    ),
    (
        "idx_quantity",
        &[
            ("param", "int4"),
            ("value", "float8"),
            ("low", "float8"),
            ("high", "float8"),
            ("system", "text"),
            ("code", "text"),
            ("unit", "text"),
            ("canonical_value", "float8"),
            ("canonical_code", "text"),
        ],
    ),
    (
        "idx_reference",
        &[
            ("param", "int4"),
            ("target_type", "text"),
            ("target_id", "text"),
            ("version", "text"),
            ("url", "text"),
            ("identifier_system", "text"),
            ("identifier_value", "text"),
        ],
    ),
    ("idx_uri", &[("param", "int4"), ("value", "text")]),
    (
        "idx_composite",
        &[
            ("param", "int4"),
            ("system1", "text"),
            ("code1", "text"),
            ("system2", "text"),
            ("code2", "text"),
            ("value2", "float8"),
            ("low2", "float8"),
            ("high2", "float8"),
            ("date_low2", "int8"),
            ("date_high2", "int8"),
            ("string2", "text"),
            ("parts", "text"),
        ],
    ),
    ("idx_text", &[("param", "int4"), ("content", "text")]),
];

/// The batch statement; `updates` adds the `UPDATE` and the deletes of old rows (a
/// batch of creates only, as an import is, leaves them out).
fn build_sql(updates: bool) -> String {
    let mut sql = String::from(VERSIONS);
    if updates {
        sql.push_str(UPDATES);
        sql.push_str(
            ", rk AS (SELECT c.rid, v.k FROM c JOIN v ON v.rtype = c.rtype AND v.id = c.id \
             AND v.version = 1 UNION ALL SELECT rid, k FROM u)\n",
        );
        for t in TABLES {
            sql.push_str(&format!(
                ", d_{t} AS (DELETE FROM {t} WHERE rid IN (SELECT rid FROM u))\n"
            ));
        }
    } else {
        sql.push_str(
            ", rk AS (SELECT c.rid, v.k FROM c JOIN v ON v.rtype = c.rtype AND v.id = c.id)\n",
        );
    }
    sql.push_str(
        ", a AS (SELECT array_agg(rk.rid ORDER BY v.k) AS rids FROM v LEFT JOIN rk ON rk.k = v.k)
, i_version AS (INSERT INTO resource_version (rid, version, last_updated, method, body) \
    SELECT rk.rid, v.version, v.last_updated, v.method, v.body FROM rk JOIN v ON v.k = rk.k)
",
    );
    let mut n = 8;
    let mut unnest = |cols: &[(&str, &str)]| {
        let mut args = format!("${n}::int4[]");
        n += 1;
        for (_, ty) in cols {
            args.push_str(&format!(", ${n}::{ty}[]"));
            n += 1;
        }
        args
    };
    for (t, cols) in INDEX_COLUMNS {
        let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        let u_names: Vec<String> = names.iter().map(|c| format!("u.{c}")).collect();
        let (names, u_names) = (names.join(", "), u_names.join(", "));
        let args = unnest(cols);
        sql.push_str(&format!(
            ", i_{t} AS (INSERT INTO {t} (rid, {names}) SELECT x.* FROM \
             (SELECT (SELECT rids FROM a)[u.k] AS rid, {u_names} FROM unnest({args}) \
             AS u(k, {names})) AS x WHERE x.rid IS NOT NULL)\n"
        ));
    }
    let args = unnest(&[("p", "text")]);
    sql.push_str(&format!(
        ", i_compartment AS (INSERT INTO compartment (patient_id, rid) \
         SELECT DISTINCT x.p, x.rid FROM \
         (SELECT (SELECT rids FROM a)[u.k] AS rid, u.p FROM unnest({args}) AS u(k, p)) AS x \
         WHERE x.rid IS NOT NULL)
SELECT count(*) FROM rk"
    ));
    sql
}

fn sql(updates: bool) -> &'static str {
    static CREATES: OnceLock<String> = OnceLock::new();
    static ANY: OnceLock<String> = OnceLock::new();
    if updates {
        ANY.get_or_init(|| build_sql(true))
    } else {
        CREATES.get_or_init(|| build_sql(false))
    }
}

/// Whether the versions can go as one set: each in range and each resource once.
fn one_set(versions: &[NewVersion]) -> bool {
    let mut seen = HashSet::with_capacity(versions.len());
    versions.iter().all(|v| {
        let r = &v.resource;
        (1..=i64::MAX as u64).contains(&r.version.0)
            && seen.insert((r.rtype.as_str(), r.id.as_str()))
    })
}

/// Stores one chunk; answers whether every version passed its check.
fn chunk(conn: &mut PgConn, versions: &[NewVersion]) -> Result<bool, StoreError> {
    let n = versions.len();
    let mut rtype = Vec::with_capacity(n);
    let mut id = Vec::with_capacity(n);
    let mut version = Vec::with_capacity(n);
    let mut last_updated = Vec::with_capacity(n);
    let mut deleted = Vec::with_capacity(n);
    let mut method = Vec::with_capacity(n);
    let mut body = Vec::with_capacity(n);
    let mut columns = Columns::default();
    for (k, v) in (1..).zip(versions) {
        let r = &v.resource;
        rtype.push(r.rtype.as_str());
        id.push(r.id.as_str());
        version.push(i64::try_from(r.version.0).map_err(|_| StoreError::Conflict)?);
        last_updated.push(r.last_updated);
        deleted.push(r.body.is_none());
        method.push(r.method.code());
        body.push(r.body.as_deref());
        columns.push(k, v);
    }
    let updates = version.iter().any(|&v| v > 1);
    let st = conn.prepare(sql(updates))?;
    let head: [&(dyn ToSql + Sync); 7] = [
        &rtype,
        &id,
        &version,
        &last_updated,
        &deleted,
        &method,
        &body,
    ];
    let tail = columns.batch_args();
    let args: Vec<&(dyn ToSql + Sync)> = head.iter().chain(tail.iter()).copied().collect();
    let row = conn.client.query_one(&st, &args).map_err(pg_err)?;
    let stored: i64 = row.try_get(0).map_err(pg_err)?;
    Ok(usize::try_from(stored).ok() == Some(n))
}

/// Stores `versions` (two or more) as one set, or stores nothing and asks for one by one.
pub(crate) fn put_many(conn: &mut PgConn, versions: &[NewVersion]) -> Result<Outcome, StoreError> {
    if !one_set(versions) {
        return Ok(Outcome::OneByOne);
    }
    conn.client
        .batch_execute("SAVEPOINT oxehr_put_many")
        .map_err(pg_err)?;
    for part in versions.chunks(CHUNK) {
        if !chunk(conn, part)? {
            conn.client
                .batch_execute(
                    "ROLLBACK TO SAVEPOINT oxehr_put_many; RELEASE SAVEPOINT oxehr_put_many",
                )
                .map_err(pg_err)?;
            return Ok(Outcome::OneByOne);
        }
    }
    conn.client
        .batch_execute("RELEASE SAVEPOINT oxehr_put_many")
        .map_err(pg_err)?;
    Ok(Outcome::Stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_in_batch_args_order() {
        for updates in [false, true] {
            let s = build_sql(updates);
            assert!(s.contains("$64::text[]"), "compartment patients are $64");
            assert!(!s.contains("$65"), "no parameter past $64");
        }
        let cols: usize = INDEX_COLUMNS.iter().map(|(_, c)| c.len() + 1).sum();
        assert_eq!(7 + cols + 2, 64);
        assert_eq!(Columns::default().batch_args().len(), cols + 2);
    }
}
