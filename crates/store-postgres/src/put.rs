//! `Tx::put` as ONE round trip: a single prepared statement whose data-modifying CTEs
//! move `resource` to the new version, add the `resource_version` row, delete the old
//! index and compartment rows, and insert the new ones from parallel arrays (`unnest`),
//! one array per column, so a put with 20 index rows is still one statement.
//!
//! The version check is in the statement: a create is `INSERT … ON CONFLICT DO NOTHING`
//! and an update is `UPDATE … WHERE version = new - 1`; no row back means another
//! writer got there first (or the version is wrong), which is `Conflict`. Under READ
//! COMMITTED a racing update waits for the row lock, then re-checks the version and
//! finds it moved on. The deletes run on the statement's snapshot, so they never see the
//! rows the same statement inserts, whatever order PostgreSQL runs the CTEs in (which is
//! also why `compartment` has no unique key: see `schema`).

use std::sync::OnceLock;

use oxehr_search::IndexValue;
use oxehr_store::{rows, NewVersion, StoreError};
use postgres::types::ToSql;

use crate::pg_err;
use crate::pool::PgConn;

const CREATE_HEAD: &str = "WITH r AS (\
    INSERT INTO resource (rtype, id, version, last_updated, deleted) \
    VALUES ($1, $2, $3::int8, $4::int8, $5::bool) \
    ON CONFLICT (rtype, id) DO NOTHING RETURNING rid)";

const UPDATE_HEAD: &str = "WITH r AS (\
    UPDATE resource SET version = $3::int8, last_updated = $4::int8, deleted = $5::bool \
    WHERE rtype = $1 AND id = $2 AND version = $3::int8 - 1 RETURNING rid)";

pub(crate) const TABLES: [&str; 10] = [
    "idx_string",
    "idx_token",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_reference",
    "idx_uri",
    "idx_composite",
    "idx_text",
    "compartment",
];

/// The CTEs that insert the version and the new rows; parameters `$6` on.
const INSERTS: &str = "\
, i_version AS (INSERT INTO resource_version (rid, version, last_updated, method, body) \
    SELECT r.rid, $3::int8, $4::int8, $6::int2, $7::text FROM r)
, i_string AS (INSERT INTO idx_string (rid, param, normalized, exact) \
    SELECT r.rid, u.* FROM r, unnest($8::int4[], $9::text[], $10::text[]) u)
, i_token AS (INSERT INTO idx_token (rid, param, system, code, text) \
    SELECT r.rid, u.* FROM r, unnest($11::int4[], $12::text[], $13::text[], $14::text[]) u)
, i_date AS (INSERT INTO idx_date (rid, param, low, high) \
    SELECT r.rid, u.* FROM r, unnest($15::int4[], $16::int8[], $17::int8[]) u)
, i_number AS (INSERT INTO idx_number (rid, param, value, low, high) \
    SELECT r.rid, u.* FROM r, unnest($18::int4[], $19::float8[], $20::float8[], $21::float8[]) u)
, i_quantity AS (INSERT INTO idx_quantity (rid, param, value, low, high, system, code, unit, \
    canonical_value, canonical_code) \
    SELECT r.rid, u.* FROM r, unnest($22::int4[], $23::float8[], $24::float8[], $25::float8[], \
    $26::text[], $27::text[], $28::text[], $29::float8[], $30::text[]) u)
, i_reference AS (INSERT INTO idx_reference (rid, param, target_type, target_id, version, url, \
    identifier_system, identifier_value) \
    SELECT r.rid, u.* FROM r, unnest($31::int4[], $32::text[], $33::text[], $34::text[], \
    $35::text[], $36::text[], $37::text[]) u)
, i_uri AS (INSERT INTO idx_uri (rid, param, value) \
    SELECT r.rid, u.* FROM r, unnest($38::int4[], $39::text[]) u)
, i_composite AS (INSERT INTO idx_composite (rid, param, system1, code1, system2, code2, \
    value2, low2, high2, date_low2, date_high2, string2, parts) \
    SELECT r.rid, u.* FROM r, unnest($40::int4[], $41::text[], $42::text[], $43::text[], \
    $44::text[], $45::float8[], $46::float8[], $47::float8[], $48::int8[], $49::int8[], \
    $50::text[], $51::text[]) u)
, i_text AS (INSERT INTO idx_text (rid, param, content) \
    SELECT r.rid, u.* FROM r, unnest($52::int4[], $53::text[]) u)
, i_compartment AS (INSERT INTO compartment (patient_id, rid) \
    SELECT DISTINCT u.p, r.rid FROM r, unnest($54::text[]) AS u(p))
SELECT rid FROM r";

/// `oxehr reindex`: the current version's index and compartment rows replaced, no version
/// stored. `$4` to `$7` (the version row's) are named so that their types are known.
const REINDEX_HEAD: &str = "WITH r AS (\
    SELECT rid FROM resource WHERE rtype = $1 AND id = $2 AND version = $3::int8 \
    AND NOT deleted AND $4::int8 IS NOT NULL AND $5::bool IS NOT NULL \
    AND $6::int2 IS NOT NULL AND ($7::text IS NULL OR TRUE) FOR UPDATE)";

fn deletes() -> String {
    TABLES
        .iter()
        .map(|t| format!(", d_{t} AS (DELETE FROM {t} WHERE rid IN (SELECT rid FROM r))\n"))
        .collect()
}

fn reindex_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let version_row = INSERTS
            .split_once(", i_string")
            .map(|(head, _)| head.len())
            .unwrap_or(0);
        format!("{REINDEX_HEAD}\n{}{}", deletes(), &INSERTS[version_row..])
    })
}

fn create_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| format!("{CREATE_HEAD}\n{INSERTS}"))
}

fn update_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| format!("{UPDATE_HEAD}\n{}{INSERTS}", deletes()))
}

type Text = Option<String>;

/// The new rows of one put, one vector per column (the `unnest` arrays).
#[derive(Default)]
pub(crate) struct Columns {
    s_k: Vec<i32>,
    s_param: Vec<i32>,
    s_normalized: Vec<String>,
    s_exact: Vec<String>,
    t_k: Vec<i32>,
    t_param: Vec<i32>,
    t_system: Vec<Text>,
    t_code: Vec<Text>,
    t_text: Vec<Text>,
    d_k: Vec<i32>,
    d_param: Vec<i32>,
    d_low: Vec<i64>,
    d_high: Vec<i64>,
    n_k: Vec<i32>,
    n_param: Vec<i32>,
    n_value: Vec<f64>,
    n_low: Vec<f64>,
    n_high: Vec<f64>,
    q_k: Vec<i32>,
    q_param: Vec<i32>,
    q_value: Vec<f64>,
    q_low: Vec<f64>,
    q_high: Vec<f64>,
    q_system: Vec<Text>,
    q_code: Vec<Text>,
    q_unit: Vec<Text>,
    q_canonical_value: Vec<Option<f64>>,
    q_canonical_code: Vec<Text>,
    r_k: Vec<i32>,
    r_param: Vec<i32>,
    r_target_type: Vec<Text>,
    r_target_id: Vec<Text>,
    r_version: Vec<Text>,
    r_url: Vec<Text>,
    r_identifier_system: Vec<Text>,
    r_identifier_value: Vec<Text>,
    u_k: Vec<i32>,
    u_param: Vec<i32>,
    u_value: Vec<String>,
    c_k: Vec<i32>,
    c_param: Vec<i32>,
    c_system1: Vec<Text>,
    c_code1: Vec<Text>,
    c_system2: Vec<Text>,
    c_code2: Vec<Text>,
    c_value2: Vec<Option<f64>>,
    c_low2: Vec<Option<f64>>,
    c_high2: Vec<Option<f64>>,
    c_date_low2: Vec<Option<i64>>,
    c_date_high2: Vec<Option<i64>>,
    c_string2: Vec<Text>,
    c_parts: Vec<String>,
    x_k: Vec<i32>,
    x_param: Vec<i32>,
    x_content: Vec<String>,
    p_k: Vec<i32>,
    patients: Vec<String>,
}

impl Columns {
    /// The parameters of the batch statement's index and compartment CTEs, in the order
    /// of [`crate::put_many`]'s SQL: per table its `k` array, then one array per column.
    pub(crate) fn batch_args(&self) -> [&(dyn ToSql + Sync); 57] {
        [
            &self.s_k,
            &self.s_param,
            &self.s_normalized,
            &self.s_exact,
            &self.t_k,
            &self.t_param,
            &self.t_system,
            &self.t_code,
            &self.t_text,
            &self.d_k,
            &self.d_param,
            &self.d_low,
            &self.d_high,
            &self.n_k,
            &self.n_param,
            &self.n_value,
            &self.n_low,
            &self.n_high,
            &self.q_k,
            &self.q_param,
            &self.q_value,
            &self.q_low,
            &self.q_high,
            &self.q_system,
            &self.q_code,
            &self.q_unit,
            &self.q_canonical_value,
            &self.q_canonical_code,
            &self.r_k,
            &self.r_param,
            &self.r_target_type,
            &self.r_target_id,
            &self.r_version,
            &self.r_url,
            &self.r_identifier_system,
            &self.r_identifier_value,
            &self.u_k,
            &self.u_param,
            &self.u_value,
            &self.c_k,
            &self.c_param,
            &self.c_system1,
            &self.c_code1,
            &self.c_system2,
            &self.c_code2,
            &self.c_value2,
            &self.c_low2,
            &self.c_high2,
            &self.c_date_low2,
            &self.c_date_high2,
            &self.c_string2,
            &self.c_parts,
            &self.x_k,
            &self.x_param,
            &self.x_content,
            &self.p_k,
            &self.patients,
        ]
    }

    fn of(v: &NewVersion) -> Columns {
        let mut c = Columns::default();
        c.push(0, v);
        c
    }

    /// Adds the rows of `v`, tagged with `k`: its 1-based position in a batch (the
    /// `k` arrays are not sent by a single `put`).
    pub(crate) fn push(&mut self, k: i32, v: &NewVersion) {
        let c = self;
        for e in &v.index {
            let p = e.param.0;
            match &e.value {
                IndexValue::String { normalized, exact } => {
                    c.s_k.push(k);
                    c.s_param.push(p);
                    c.s_normalized.push(normalized.clone());
                    c.s_exact.push(exact.clone());
                }
                IndexValue::Token { system, code, text } => {
                    c.t_k.push(k);
                    c.t_param.push(p);
                    c.t_system.push(system.clone());
                    c.t_code.push(code.clone());
                    c.t_text.push(text.clone());
                }
                IndexValue::Date { low, high } => {
                    c.d_k.push(k);
                    c.d_param.push(p);
                    c.d_low.push(*low);
                    c.d_high.push(*high);
                }
                IndexValue::Number { value, low, high } => {
                    c.n_k.push(k);
                    c.n_param.push(p);
                    c.n_value.push(*value);
                    c.n_low.push(*low);
                    c.n_high.push(*high);
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
                    c.q_k.push(k);
                    c.q_param.push(p);
                    c.q_value.push(*value);
                    c.q_low.push(*low);
                    c.q_high.push(*high);
                    c.q_system.push(system.clone());
                    c.q_code.push(code.clone());
                    c.q_unit.push(unit.clone());
                    c.q_canonical_value.push(*canonical_value);
                    c.q_canonical_code.push(canonical_code.clone());
                }
                IndexValue::Reference {
                    target_type,
                    target_id,
                    version,
                    url,
                    identifier_system,
                    identifier_value,
                } => {
                    c.r_k.push(k);
                    c.r_param.push(p);
                    c.r_target_type.push(target_type.clone());
                    c.r_target_id.push(target_id.clone());
                    c.r_version.push(version.clone());
                    c.r_url.push(url.clone());
                    c.r_identifier_system.push(identifier_system.clone());
                    c.r_identifier_value.push(identifier_value.clone());
                }
                IndexValue::Uri { value } => {
                    c.u_k.push(k);
                    c.u_param.push(p);
                    c.u_value.push(value.clone());
                }
                IndexValue::Composite { parts } => {
                    let cc = rows::composite_columns(parts);
                    c.c_k.push(k);
                    c.c_param.push(p);
                    c.c_system1.push(cc.system1);
                    c.c_code1.push(cc.code1);
                    c.c_system2.push(cc.system2);
                    c.c_code2.push(cc.code2);
                    c.c_value2.push(cc.value2);
                    c.c_low2.push(cc.low2);
                    c.c_high2.push(cc.high2);
                    c.c_date_low2.push(cc.date_low2);
                    c.c_date_high2.push(cc.date_high2);
                    c.c_string2.push(cc.string2);
                    c.c_parts.push(cc.parts);
                }
                IndexValue::Text { content } => {
                    c.x_k.push(k);
                    c.x_param.push(p);
                    c.x_content.push(content.clone());
                }
            }
        }
        for p in &v.compartments {
            c.p_k.push(k);
            c.patients.push(p.as_str().to_owned());
        }
    }
}

pub(crate) fn put(conn: &mut PgConn, v: &NewVersion) -> Result<(), StoreError> {
    let version = i64::try_from(v.resource.version.0).map_err(|_| StoreError::Conflict)?;
    if version < 1 {
        return Err(StoreError::Conflict);
    }
    let sql = if version == 1 {
        create_sql()
    } else {
        update_sql()
    };
    run(conn, sql, v, version)
}

/// Replaces the current version's index and compartment rows (`Tx::reindex`).
pub(crate) fn reindex(conn: &mut PgConn, v: &NewVersion) -> Result<(), StoreError> {
    let version = i64::try_from(v.resource.version.0).map_err(|_| StoreError::Conflict)?;
    run(conn, reindex_sql(), v, version)
}

/// Runs a put-shaped statement with `v`'s rows; no row back is `Conflict`.
fn run(conn: &mut PgConn, sql: &str, v: &NewVersion, version: i64) -> Result<(), StoreError> {
    let r = &v.resource;
    let st = conn.prepare(sql)?;
    let c = Columns::of(v);
    let (rtype, id) = (r.rtype.as_str(), r.id.as_str());
    let deleted = r.body.is_none();
    let method = r.method.code();
    let args: [&(dyn ToSql + Sync); 54] = [
        &rtype,
        &id,
        &version,
        &r.last_updated,
        &deleted,
        &method,
        &r.body,
        &c.s_param,
        &c.s_normalized,
        &c.s_exact,
        &c.t_param,
        &c.t_system,
        &c.t_code,
        &c.t_text,
        &c.d_param,
        &c.d_low,
        &c.d_high,
        &c.n_param,
        &c.n_value,
        &c.n_low,
        &c.n_high,
        &c.q_param,
        &c.q_value,
        &c.q_low,
        &c.q_high,
        &c.q_system,
        &c.q_code,
        &c.q_unit,
        &c.q_canonical_value,
        &c.q_canonical_code,
        &c.r_param,
        &c.r_target_type,
        &c.r_target_id,
        &c.r_version,
        &c.r_url,
        &c.r_identifier_system,
        &c.r_identifier_value,
        &c.u_param,
        &c.u_value,
        &c.c_param,
        &c.c_system1,
        &c.c_code1,
        &c.c_system2,
        &c.c_code2,
        &c.c_value2,
        &c.c_low2,
        &c.c_high2,
        &c.c_date_low2,
        &c.c_date_high2,
        &c.c_string2,
        &c.c_parts,
        &c.x_param,
        &c.x_content,
        &c.patients,
    ];
    let rows = conn.client.query(&st, &args).map_err(pg_err)?;
    if rows.is_empty() {
        Err(StoreError::Conflict)
    } else {
        Ok(())
    }
}
