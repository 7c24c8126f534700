//! The search engine's SQL: a [`Query`] compiled into one statement over the typed index
//! tables, the same text for SQLite and PostgreSQL apart from the few [`Dialect`]
//! differences, with every user value bound as an argument. Backends only run it
//! ([`ReadTx::query`]).
//!
//! The shape of a plan:
//! - one condition per parameter occurrence, each a subquery on one index table;
//! - the most selective condition (an `_id`, a reference to one resource, a code…) is
//!   the **driver**, written `r.rid IN (…)` so the database starts from its index range
//!   and looks resources up by key; every other condition is a correlated `EXISTS`
//!   probe of the candidate's own index rows (a primary-key range on SQLite);
//! - a chain is a subquery of targets feeding the reference index by
//!   `(param, target_id)`; `_has` is the reverse;
//! - sorting keys are per-resource `min`/`max` subqueries, resources without a value
//!   sort last in both directions (never dropped), and the resource key breaks ties, so
//!   the order is total and paging is by key (`after`/`before` a position), which stays
//!   correct while others write: no offsets, no cached pages.

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::query::{Condition, Query};
use oxehr_search::ParamKey;

use crate::access::Access;
use crate::sql::{Dialect, SqlArg};
use crate::{Method, ReadTx, StoreError, StoredResource};

mod compile;
mod plan;

use compile::{Compiler, Window};
pub use plan::plan_is_shared;

/// A value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl SqlValue {
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            SqlValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn into_text(self) -> Option<String> {
        match self {
            SqlValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// SQL text with `?` placeholders and its arguments, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sql {
    pub text: String,
    pub args: Vec<SqlArg>,
}

impl Sql {
    pub(crate) fn s(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(crate) fn arg(&mut self, a: SqlArg) -> &mut Self {
        self.text.push('?');
        self.args.push(a);
        self
    }

    pub(crate) fn text_arg(&mut self, t: &str) -> &mut Self {
        self.arg(SqlArg::Text(t.to_string()))
    }

    pub(crate) fn append(&mut self, other: Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.args.extend(other.args);
        self
    }

    /// `col = ?` for one key, `col IN (?, …)` for several.
    fn keys(&mut self, col: &str, keys: &[ParamKey]) -> &mut Self {
        self.s(col);
        if let [k] = keys {
            self.s(" = ").arg(SqlArg::Int4(k.0))
        } else {
            self.s(" IN (");
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    self.s(", ");
                }
                self.arg(SqlArg::Int4(k.0));
            }
            self.s(")")
        }
    }
}

/// Where to start a page: after or before a position of the sort order.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    First,
    /// After this row: its sort key values and key.
    After(Vec<SqlValue>, i64),
    /// Before this row (a previous page).
    Before(Vec<SqlValue>, i64),
}

/// One match: the resource, its key and its sort key values (for the next position).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub rid: i64,
    pub resource: StoredResource,
    pub keys: Vec<SqlValue>,
}

/// The resource columns every result reads, from alias `t` (resource) and `v` (version).
const RESOURCE_COLUMNS: &str = "t.rid, t.rtype, t.id, t.version, t.last_updated, v.method, v.body";

/// Runs a statement of `q`, with a shared plan if [`plan_is_shared`].
fn run(tx: &mut dyn ReadTx, q: &Query, sql: &Sql) -> Result<Vec<Vec<SqlValue>>, StoreError> {
    if plan_is_shared(q) {
        tx.query_shared_plan(&sql.text, &sql.args)
    } else {
        tx.query(&sql.text, &sql.args)
    }
}

/// The keyset condition "the row comes after (or, reversed, before) this position" over
/// sort key expressions `keys` (with their directions) and then the resource key.
fn position_test(
    keys: &[(String, bool)],
    values: &[SqlValue],
    rid: i64,
    reverse: bool,
    out: &mut Sql,
) {
    // after = a0 OR (e0 AND (a1 OR (e1 AND … (rid > last))))
    let mut closers = 0;
    for ((expr, desc), v) in keys.iter().zip(values) {
        let desc = *desc != reverse;
        let value = match v {
            SqlValue::Null => None,
            SqlValue::Int(i) => Some(SqlArg::Int8(*i)),
            SqlValue::Real(f) => Some(SqlArg::Real(*f)),
            SqlValue::Text(t) => Some(SqlArg::Text(t.clone())),
        };
        let op = if desc { "<" } else { ">" };
        match (value, reverse) {
            // Nulls come last: after a null only nulls follow; before it every value.
            (None, false) => {
                out.s(&format!("({expr} IS NULL AND "));
            }
            (None, true) => {
                out.s(&format!("({expr} IS NOT NULL OR ({expr} IS NULL AND "));
                closers += 1;
            }
            (Some(val), false) => {
                out.s(&format!("({expr} IS NULL OR {expr} {op} "))
                    .arg(val.clone());
                out.s(&format!(" OR ({expr} = ")).arg(val).s(" AND ");
                closers += 1;
            }
            (Some(val), true) => {
                out.s(&format!("(({expr} IS NOT NULL AND {expr} {op} "))
                    .arg(val.clone());
                out.s(&format!(") OR ({expr} = ")).arg(val).s(" AND ");
                closers += 1;
            }
        }
        closers += 1;
    }
    out.s(if reverse { "rid < " } else { "rid > " })
        .arg(SqlArg::Int8(rid));
    for _ in 0..closers {
        out.s(")");
    }
}

fn order_by(keys: &[(String, bool)], rid: &str, reverse: bool) -> String {
    let mut parts = Vec::new();
    for (expr, desc) in keys {
        let desc = *desc != reverse;
        parts.push(format!(
            "{expr}{} NULLS {}",
            if desc { " DESC" } else { "" },
            if reverse { "FIRST" } else { "LAST" }
        ));
    }
    parts.push(format!("{rid}{}", if reverse { " DESC" } else { "" }));
    parts.join(", ")
}

/// The statement of one page of `q`: at most `limit` matches from `position`, in the
/// sort order (for `Before`, the rows just before it, still returned in sort order).
/// With `with_total`, every row also carries the number of all matches (a window count
/// over the matches before the position and the limit apply): the page and the total in
/// one statement, planned once.
pub fn page_sql(
    dialect: Dialect,
    access: &Access,
    q: &Query,
    position: &Position,
    limit: usize,
    with_total: bool,
) -> Sql {
    page_sql_in(dialect, access, q, position, limit, with_total, None)
}

/// [`page_sql`], its driver reading only `window` of its keys.
fn page_sql_in(
    dialect: Dialect,
    access: &Access,
    q: &Query,
    position: &Position,
    limit: usize,
    with_total: bool,
    window: Option<Window>,
) -> Sql {
    let mut c = Compiler::new(dialect, access);
    let sort_exprs: Vec<Sql> = q.sort.iter().map(|k| c.sort_expr("r", k)).collect();
    let from_where = c.select_from(q, window);
    let names: Vec<(String, bool)> = q
        .sort
        .iter()
        .enumerate()
        .map(|(i, k)| (format!("k{i}"), k.descending))
        .collect();
    let reverse = matches!(position, Position::Before(..));
    let mut inner = Sql::default();
    inner.s("SELECT r.rid AS rid, r.rtype AS rtype, r.id AS id, r.version AS version, r.last_updated AS last_updated");
    for (i, e) in sort_exprs.into_iter().enumerate() {
        inner.s(", ").append(e).s(&format!(" AS k{i}"));
    }
    if with_total {
        inner.s(", count(*) OVER () AS total");
    }
    inner.append(from_where);
    let mut page = Sql::default();
    page.s("SELECT * FROM (").append(inner).s(") q");
    match position {
        Position::First => {}
        Position::After(values, rid) | Position::Before(values, rid) => {
            page.s(" WHERE ");
            position_test(&names, values, *rid, reverse, &mut page);
        }
    }
    page.s(&format!(
        " ORDER BY {} LIMIT ",
        order_by(&names, "rid", reverse)
    ))
    .arg(SqlArg::Int8(limit as i64));
    let mut out = Sql::default();
    out.s(&format!("SELECT {RESOURCE_COLUMNS}"));
    if with_total {
        out.s(", t.total");
    }
    for (name, _) in &names {
        out.s(&format!(", t.{name}"));
    }
    out.s(" FROM (")
        .append(page)
        .s(") t JOIN resource_version v ON v.rid = t.rid AND v.version = t.version");
    let outer: Vec<(String, bool)> = names.iter().map(|(n, d)| (format!("t.{n}"), *d)).collect();
    out.s(&format!(" ORDER BY {}", order_by(&outer, "t.rid", false)));
    out
}

/// The statement counting every match of `q`.
pub fn count_sql(dialect: Dialect, access: &Access, q: &Query) -> Sql {
    let mut c = Compiler::new(dialect, access);
    let mut out = Sql::default();
    out.s("SELECT count(*)").append(c.select_from(q, None));
    out
}

/// The statement counting the matches of `q` up to `cap + 1`: it stops reading there.
pub fn count_up_to_sql(dialect: Dialect, access: &Access, q: &Query, cap: u64) -> Sql {
    count_up_to_sql_in(dialect, access, q, cap, None)
}

fn count_up_to_sql_in(
    dialect: Dialect,
    access: &Access,
    q: &Query,
    cap: u64,
    window: Option<Window>,
) -> Sql {
    let mut c = Compiler::new(dialect, access);
    let mut out = Sql::default();
    out.s("SELECT count(*) FROM (SELECT 1 AS one")
        .append(c.select_from(q, window))
        .s(" LIMIT ")
        .arg(SqlArg::Int8(
            i64::try_from(cap.saturating_add(1)).unwrap_or(i64::MAX),
        ))
        .s(") n");
    out
}

/// The statement counting the index rows of `q`'s driving condition, if one drives it
/// by resource key (see [`estimate`]).
pub fn estimate_sql(dialect: Dialect, access: &Access, q: &Query) -> Option<Sql> {
    let mut c = Compiler::new(dialect, access);
    let keys = c.driver_keys(q)?;
    let mut out = Sql::default();
    out.s("SELECT count(*) FROM (").append(keys).s(") k");
    Some(out)
}

pub(crate) fn resource_of(
    row: Vec<SqlValue>,
) -> Result<(i64, StoredResource, Vec<SqlValue>), StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("search row: {what}"));
    let mut it = row.into_iter();
    let mut next = || it.next().ok_or_else(|| bad("too few columns"));
    let rid = next()?.as_i64().ok_or_else(|| bad("rid"))?;
    let rtype = next()?.into_text().ok_or_else(|| bad("rtype"))?;
    let id = next()?.into_text().ok_or_else(|| bad("id"))?;
    let version = next()?.as_i64().ok_or_else(|| bad("version"))?;
    let last_updated = next()?.as_i64().ok_or_else(|| bad("last_updated"))?;
    let method = next()?.as_i64().ok_or_else(|| bad("method"))?;
    let body = next()?.into_text();
    let keys: Vec<SqlValue> = it.collect();
    let resource = StoredResource {
        rtype: ResourceType::parse(&rtype).ok_or_else(|| bad("rtype"))?,
        id: ResourceId::parse(&id).ok_or_else(|| bad("id"))?,
        version: VersionId(u64::try_from(version).map_err(|_| bad("version"))?),
        last_updated,
        method: Method::from_code(method).ok_or_else(|| bad("method"))?,
        body,
    };
    Ok((rid, resource, keys))
}

/// The first window of driver keys a page reads: enough for the page when most keys
/// match, small enough that a page of a common code does not read them all. Each further
/// window is four times larger.
const FIRST_WINDOW: usize = 64;

/// One page of matches of `q` from `position` (at most `limit`), in the sort order.
///
/// A page in key order (no `_sort`, forwards) of a search whose driver lists resource
/// keys reads the driver's keys a window at a time, from the position on: the first
/// `2 × limit` or [`FIRST_WINDOW`] keys, and, while the page is not full, the next
/// windows. So the first page of a code on half a million resources reads its first
/// keys, not all of them (the keys of one value are read in order from its index, or,
/// for a range, sorted keeping only the window's).
pub fn page(
    tx: &mut dyn ReadTx,
    access: &Access,
    q: &Query,
    position: &Position,
    limit: usize,
) -> Result<Vec<Hit>, StoreError> {
    let dialect = tx.dialect();
    let start = match position {
        _ if !q.sort.is_empty() || plan::rid_driver(&q.filters).is_none() => None,
        Position::First => Some(i64::MIN),
        Position::After(_, rid) => Some(*rid),
        Position::Before(..) => None,
    };
    let Some(mut after) = start else {
        return hits(tx, q, &page_sql(dialect, access, q, position, limit, false));
    };
    let mut size = FIRST_WINDOW.max(limit.saturating_mul(2));
    let mut out: Vec<Hit> = Vec::new();
    loop {
        let window = Window { after, size };
        let want = limit - out.len();
        let sql = page_sql_in(dialect, access, q, position, want, false, Some(window));
        out.extend(hits(tx, q, &sql)?);
        if out.len() >= limit {
            return Ok(out);
        }
        match window_end(tx, access, q, window)? {
            Some(end) => {
                after = end;
                size = size.saturating_mul(4);
            }
            None => return Ok(out),
        }
    }
}

fn hits(tx: &mut dyn ReadTx, q: &Query, sql: &Sql) -> Result<Vec<Hit>, StoreError> {
    run(tx, q, sql)?
        .into_iter()
        .map(|row| {
            let (rid, resource, keys) = resource_of(row)?;
            Ok(Hit {
                rid,
                resource,
                keys,
            })
        })
        .collect()
}

/// The last key of a full `window` of `q`'s driver, `None` when the window holds every
/// key after its start (there is nothing further to read).
fn window_end(
    tx: &mut dyn ReadTx,
    access: &Access,
    q: &Query,
    window: Window,
) -> Result<Option<i64>, StoreError> {
    let mut c = Compiler::new(tx.dialect(), access);
    let Some(keys) = c.driver_keys(q) else {
        return Ok(None);
    };
    let mut sql = Sql::default();
    sql.s("SELECT rid FROM (");
    c.window_keys(keys, window.after, "k", &mut sql);
    sql.s(" LIMIT 1 OFFSET ")
        .arg(SqlArg::Int8(
            i64::try_from(window.size.saturating_sub(1)).unwrap_or(i64::MAX),
        ))
        .s(") e");
    let rows = run(tx, q, &sql)?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(SqlValue::as_i64))
}

/// One page as [`page`] does, and the number of all matches.
pub fn page_and_total(
    tx: &mut dyn ReadTx,
    access: &Access,
    q: &Query,
    position: &Position,
    limit: usize,
) -> Result<(Vec<Hit>, u64), StoreError> {
    let sql = page_sql(tx.dialect(), access, q, position, limit, true);
    let mut total = None;
    let hits = run(tx, q, &sql)?
        .into_iter()
        .map(|row| {
            let (rid, resource, mut keys) = resource_of(row)?;
            if keys.is_empty() {
                return Err(StoreError::Corrupt("search row: total".into()));
            }
            let n = keys.remove(0).as_i64().and_then(|n| u64::try_from(n).ok());
            total = n.or(total);
            Ok(Hit {
                rid,
                resource,
                keys,
            })
        })
        .collect::<Result<Vec<Hit>, StoreError>>()?;
    let total = match (total, position) {
        (Some(n), _) => n,
        // No row: no match at all, or none past the position.
        (None, Position::First) => 0,
        (None, _) => count(tx, access, q)?,
    };
    Ok((hits, total))
}

/// The number of matches of `q`.
pub fn count(tx: &mut dyn ReadTx, access: &Access, q: &Query) -> Result<u64, StoreError> {
    let sql = count_sql(tx.dialect(), access, q);
    single_count(tx, q, &sql)
}

/// The number of matches of `q`, counted up to `cap`: `cap + 1` stands for "more than
/// `cap`". It reads at most `cap + 1` matches; where the driver lists resource keys, it
/// first tries the driver's first `cap + 1` keys alone, which settle it when they all
/// match or are all there is.
pub fn count_up_to(
    tx: &mut dyn ReadTx,
    access: &Access,
    q: &Query,
    cap: u64,
) -> Result<u64, StoreError> {
    let dialect = tx.dialect();
    if let Some(keys) = index_only_keys(dialect, access, q) {
        let mut sql = Sql::default();
        sql.s("SELECT count(*) FROM (SELECT DISTINCT rid FROM (")
            .append(keys)
            .s(") k LIMIT ")
            .arg(SqlArg::Int8(
                i64::try_from(cap.saturating_add(1)).unwrap_or(i64::MAX),
            ))
            .s(") n");
        return single_count(tx, q, &sql);
    }
    if plan::rid_driver(&q.filters).is_some() {
        let window = Window {
            after: i64::MIN,
            size: usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX),
        };
        let sql = count_up_to_sql_in(dialect, access, q, cap, Some(window));
        let n = single_count(tx, q, &sql)?;
        if n > cap || window_end(tx, access, q, window)?.is_none() {
            return Ok(n);
        }
    }
    let sql = count_up_to_sql(dialect, access, q, cap);
    single_count(tx, q, &sql)
}

/// The driver's keys of a search whose matches are exactly its distinct keys, so that
/// they can be counted from the index alone: a caller who sees everything, and one
/// condition, on values or a chain, which lists keys of the searched types only (index
/// rows are a resource's current, undeleted version's, of its own type's parameters).
fn index_only_keys(dialect: Dialect, access: &Access, q: &Query) -> Option<Sql> {
    let [f] = q.filters.as_slice() else {
        return None;
    };
    let typed = |c: &Condition| matches!(c, Condition::Value { .. } | Condition::Chain { .. });
    if !access.is_all() || !f.any_of.iter().all(typed) {
        return None;
    }
    Compiler::new(dialect, access).driver_keys(q)
}

/// An estimate of the number of matches of `q` read from the index alone: the index rows
/// of its driving condition (a code, a value range, a chain's references…), with no
/// resource read and its other conditions left out, so it can count more than match but
/// never fewer (a resource with two matching rows counts twice). `None` when no
/// condition drives by resource key, and whenever `access` hides anything: a count over
/// records the caller may not see would tell of them.
pub fn estimate(
    tx: &mut dyn ReadTx,
    access: &Access,
    q: &Query,
) -> Result<Option<u64>, StoreError> {
    if !access.is_all() {
        return Ok(None);
    }
    match estimate_sql(tx.dialect(), access, q) {
        Some(sql) => single_count(tx, q, &sql).map(Some),
        None => Ok(None),
    }
}

/// The one count a counting statement answers.
fn single_count(tx: &mut dyn ReadTx, q: &Query, sql: &Sql) -> Result<u64, StoreError> {
    let rows = run(tx, q, sql)?;
    rows.first()
        .and_then(|r| r.first())
        .and_then(SqlValue::as_i64)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| StoreError::Corrupt("count row".into()))
}

/// Resources referred to by the resources `rids` through `params` (`_include`), of
/// `target_type` if given. Deleted targets are left out.
pub fn included(
    tx: &mut dyn ReadTx,
    access: &Access,
    rids: &[i64],
    params: &[ParamKey],
    target_type: Option<&str>,
) -> Result<Vec<(i64, StoredResource)>, StoreError> {
    if rids.is_empty() || params.is_empty() {
        return Ok(Vec::new());
    }
    let dialect = tx.dialect();
    let mut c = Compiler::new(dialect, access);
    let mut sql = Sql::default();
    sql.s(&format!(
        "SELECT DISTINCT {RESOURCE_COLUMNS} FROM idx_reference x \
         JOIN resource t ON t.rtype = x.target_type AND t.id = x.target_id \
         JOIN resource_version v ON v.rid = t.rid AND v.version = t.version WHERE x.rid IN ("
    ));
    for (i, r) in rids.iter().enumerate() {
        if i > 0 {
            sql.s(", ");
        }
        sql.arg(SqlArg::Int8(*r));
    }
    sql.s(") AND ").keys("x.param", params);
    if let Some(t) = target_type {
        sql.s(" AND x.target_type = ").text_arg(t);
    }
    sql.s(&format!(" AND {}", c.not_deleted("t")));
    c.visible("t", &mut sql);
    sql.s(" ORDER BY t.rid");
    rows_to_resources(tx, sql)
}

/// Resources that refer through `params` to any of `targets` (`Type`, `id`) pairs
/// (`_revinclude`).
pub fn revincluded(
    tx: &mut dyn ReadTx,
    access: &Access,
    targets: &[(String, String)],
    params: &[ParamKey],
) -> Result<Vec<(i64, StoredResource)>, StoreError> {
    if targets.is_empty() || params.is_empty() {
        return Ok(Vec::new());
    }
    let mut types: Vec<&str> = targets.iter().map(|(t, _)| t.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    let mut sql = Sql::default();
    sql.s(&format!(
        "SELECT DISTINCT {RESOURCE_COLUMNS} FROM idx_reference x \
         JOIN resource t ON t.rid = x.rid \
         JOIN resource_version v ON v.rid = t.rid AND v.version = t.version WHERE "
    ))
    .keys("x.param", params)
    .s(" AND (");
    for (i, ty) in types.iter().enumerate() {
        if i > 0 {
            sql.s(" OR ");
        }
        sql.s("(x.target_type = ")
            .text_arg(ty)
            .s(" AND x.target_id IN (");
        let ids = targets.iter().filter(|(t, _)| t == ty);
        for (j, (_, id)) in ids.enumerate() {
            if j > 0 {
                sql.s(", ");
            }
            sql.text_arg(id);
        }
        sql.s("))");
    }
    sql.s(")");
    access.visible("t", 0, &mut sql);
    sql.s(" ORDER BY t.rid");
    rows_to_resources(tx, sql)
}

fn rows_to_resources(
    tx: &mut dyn ReadTx,
    sql: Sql,
) -> Result<Vec<(i64, StoredResource)>, StoreError> {
    tx.query(&sql.text, &sql.args)?
        .into_iter()
        .map(|row| resource_of(row).map(|(rid, r, _)| (rid, r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::plan_is_shared;
    use oxehr_search::query::{parse, Condition, ParseOptions};

    fn query(rtype: &str, pairs: &[(&str, &str)]) -> oxehr_search::query::Query {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let opts = ParseOptions {
            lenient: false,
            base_url: None,
            now_micros: 0,
        };
        parse(&[rtype.to_owned()], &pairs, &opts).expect("query parses")
    }

    #[test]
    fn a_plan_is_shared_only_when_one_id_or_one_reference_drives() {
        // One patient's records: the reference drives, whatever else is asked.
        for (rtype, pairs) in [
            ("Encounter", vec![("patient", "p1")]),
            (
                "Observation",
                vec![
                    ("patient", "Patient/p1"),
                    ("code", "http://loinc.org|29463-7"),
                ],
            ),
            (
                "Observation",
                vec![("subject", "Patient/p1"), ("_sort", "-date")],
            ),
            ("Patient", vec![("_id", "p1")]),
        ] {
            assert!(plan_is_shared(&query(rtype, &pairs)), "{rtype} {pairs:?}");
        }
        // A code, a name, a date, two references or a chain: the values decide.
        for (rtype, pairs) in [
            ("Observation", vec![("code", "http://loinc.org|29463-7")]),
            ("Patient", vec![("name", "Mueller")]),
            ("Observation", vec![("date", "ge2020")]),
            ("Observation", vec![("patient", "p1,p2")]),
            ("Encounter", vec![("patient.birthdate", "le1950")]),
            ("Observation", vec![]),
        ] {
            assert!(!plan_is_shared(&query(rtype, &pairs)), "{rtype} {pairs:?}");
        }
        // A compartment search is one patient's records too.
        let mut q = query("Observation", &[]);
        q.filters.push(oxehr_search::query::Filter {
            negated: false,
            any_of: vec![Condition::InPatientCompartment("p1".into())],
        });
        assert!(plan_is_shared(&q));
    }
}
