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
use oxehr_search::index::key;
use oxehr_search::query::{
    Chained, Condition, DateTest, Filter, NumberTest, Prefix, QuantityTest, Query, SortBy, SortKey,
    Table, UriTest, ValueTest,
};
use oxehr_search::ParamKey;

use crate::access::Access;
use crate::sql::{Dialect, SqlArg};
use crate::{Method, ReadTx, StoreError, StoredResource};

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

struct Compiler<'a> {
    dialect: Dialect,
    next_alias: usize,
    /// Whose records the statement may reveal: applied to every resource it reads.
    access: &'a Access,
}

/// How a condition can narrow the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DriveBy {
    /// A list of resource keys (`alias.rid IN (…)`).
    Rid,
    /// A list of ids of the alias's type (`alias.id IN (…)`).
    Id,
}

impl Compiler<'_> {
    fn alias(&mut self, prefix: &str) -> String {
        self.next_alias += 1;
        format!("{prefix}{}", self.next_alias)
    }

    /// The `param` column of a correlated probe (`x.rid = a.rid AND +param …`). The unary
    /// `+` keeps the planner off the value index, whose leading column is `param`: on
    /// SQLite it would otherwise scan every row of the parameter for each candidate
    /// (measured: 140 ms instead of 4 for a patient's Observations by code); PostgreSQL,
    /// misled by its estimate of a code's frequency (55 rows for 1,706), would start
    /// from the code and probe the patient reference, 22 ms instead of 2. A probe reads
    /// the candidate's own rows by key, a handful; the driver decides where to start.
    fn probe_param(&self, x: &str) -> String {
        format!("+{x}.param")
    }

    /// ` AND <alias is visible to the caller>`.
    fn visible(&mut self, alias: &str, out: &mut Sql) {
        self.next_alias += 1;
        let n = self.next_alias;
        self.access.visible(alias, n, out);
    }

    fn not_deleted(&self, alias: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("{alias}.deleted = 0"),
            Dialect::Postgres => format!("NOT {alias}.deleted"),
        }
    }

    /// The `WHERE` conditions of `filters` on resource alias `a` (after a leading
    /// ` AND`), and whether a driver was used and of which kind.
    fn filters(
        &mut self,
        a: &str,
        types: &[String],
        filters: &[Filter],
        out: &mut Sql,
    ) -> Option<DriveBy> {
        let driver = driver(filters);
        let mut drive = None;
        for (i, f) in filters.iter().enumerate() {
            out.s(" AND ");
            if Some(i) == driver {
                drive = Some(self.driver(a, types, f, out));
            } else {
                self.filter(a, types, f, out);
            }
        }
        drive
    }

    /// A filter as a condition on alias `a`.
    fn filter(&mut self, a: &str, types: &[String], f: &Filter, out: &mut Sql) {
        out.s(if f.negated { "NOT (" } else { "(" });
        if f.any_of.is_empty() {
            out.s("1 = 0");
        }
        for (i, c) in f.any_of.iter().enumerate() {
            if i > 0 {
                out.s(" OR ");
            }
            self.condition(a, types, c, out);
        }
        out.s(")");
    }

    /// A (positive, drivable) filter as a key list for alias `a`.
    fn driver(&mut self, a: &str, types: &[String], f: &Filter, out: &mut Sql) -> DriveBy {
        let by = drive_kind(&f.any_of[0]);
        if f.any_of.iter().all(|c| matches!(c, Condition::Id(_))) {
            out.s(&format!("{a}.id IN ("));
            for (i, c) in f.any_of.iter().enumerate() {
                if let Condition::Id(id) = c {
                    out.s(if i > 0 { ", " } else { "" }).text_arg(id);
                }
            }
            out.s(")");
            return by;
        }
        match by {
            DriveBy::Rid => out.s(&format!("{a}.rid IN (")),
            DriveBy::Id => out.s(&format!("{a}.id IN (")),
        };
        for (i, c) in f.any_of.iter().enumerate() {
            if i > 0 {
                out.s(" UNION ALL ");
            }
            self.key_list(types, c, out);
        }
        out.s(")");
        by
    }

    /// A condition as a correlated predicate on alias `a`.
    fn condition(&mut self, a: &str, types: &[String], c: &Condition, out: &mut Sql) {
        match c {
            Condition::Value { params, test } => {
                let x = self.alias("x");
                out.s(&format!(
                    "EXISTS (SELECT 1 FROM {} {x} WHERE {x}.rid = {a}.rid AND ",
                    table_of(test).name()
                ));
                out.keys(&self.probe_param(&x), params).s(" AND ");
                self.row_test(&x, test, out);
                out.s(")");
            }
            Condition::Missing {
                params,
                table,
                missing,
            } => {
                let x = self.alias("x");
                out.s(if *missing { "NOT EXISTS" } else { "EXISTS" });
                out.s(&format!(
                    " (SELECT 1 FROM {} {x} WHERE {x}.rid = {a}.rid AND ",
                    table.name()
                ));
                out.keys(&self.probe_param(&x), params).s(")");
            }
            Condition::Id(id) => {
                out.s(&format!("{a}.id = ")).text_arg(id);
            }
            Condition::LastUpdated(d) => {
                let col = format!("{a}.last_updated");
                date_test(&col, &col, d, out);
            }
            Condition::InPatientCompartment(_) => {
                out.s(&format!("{a}.rid IN ("));
                self.key_list(types, c, out);
                out.s(")");
            }
            Condition::InList(_) | Condition::Has { .. } => {
                out.s(&format!("{a}.id IN ("));
                self.key_list(types, c, out);
                out.s(")");
            }
            Condition::All(filters) => {
                out.s("(");
                if filters.is_empty() {
                    out.s("1 = 1");
                }
                for (i, f) in filters.iter().enumerate() {
                    if i > 0 {
                        out.s(" AND ");
                    }
                    self.filter(a, types, f, out);
                }
                out.s(")");
            }
            Condition::Chain {
                params,
                target_types,
            } => {
                out.s("(");
                for (i, ch) in target_types.iter().enumerate() {
                    if i > 0 {
                        out.s(" OR ");
                    }
                    let x = self.alias("x");
                    out.s(&format!(
                        "EXISTS (SELECT 1 FROM idx_reference {x} WHERE {x}.rid = {a}.rid AND "
                    ));
                    out.keys(&self.probe_param(&x), params);
                    self.chain_target(&x, ch, out);
                    out.s(")");
                }
                out.s(")");
            }
        }
    }

    /// ` AND x.target_type = ? AND x.target_id IN (ids of targets passing the filter)`.
    fn chain_target(&mut self, x: &str, ch: &Chained, out: &mut Sql) {
        let t = self.alias("t");
        out.s(&format!(" AND {x}.target_type = "))
            .text_arg(&ch.target_type);
        let types = std::slice::from_ref(&ch.target_type);
        let mut conds = Sql::default();
        let drive = self.filters(&t, types, std::slice::from_ref(&ch.filter), &mut conds);
        out.s(&format!(
            " AND {x}.target_id IN (SELECT {t}.id FROM resource {t} WHERE "
        ));
        self.types(&t, types, drive == Some(DriveBy::Rid), out);
        out.s(&format!(" AND {}", self.not_deleted(&t)));
        self.visible(&t, out);
        out.append(conds).s(")");
    }

    /// ` AND x.target_type …`: the reference points at one of the types of the alias
    /// it is matched against (an id alone may exist under several types).
    fn target_types(&self, x: &str, types: &[String], out: &mut Sql) {
        if types.is_empty() {
            return;
        }
        out.s(" AND ");
        self.types_col(&format!("{x}.target_type"), types, out);
    }

    /// A condition as a `SELECT` of resource keys (or, for `DriveBy::Id` conditions, of
    /// ids of alias `a`'s type).
    fn key_list(&mut self, types: &[String], c: &Condition, out: &mut Sql) {
        match c {
            Condition::Value { params, test } => {
                let x = self.alias("x");
                out.s(&format!(
                    "SELECT {x}.rid FROM {} {x} WHERE ",
                    table_of(test).name()
                ));
                out.keys(&format!("{x}.param"), params).s(" AND ");
                self.row_test(&x, test, out);
            }
            Condition::Missing { params, table, .. } => {
                let x = self.alias("x");
                out.s(&format!("SELECT {x}.rid FROM {} {x} WHERE ", table.name()));
                out.keys(&format!("{x}.param"), params);
            }
            Condition::Id(id) => {
                out.s("SELECT CAST(").text_arg(id).s(" AS TEXT)");
            }
            Condition::InPatientCompartment(patient) => {
                out.s("SELECT c.rid FROM compartment c WHERE c.patient_id = ")
                    .text_arg(patient);
            }
            Condition::InList(list) => {
                let (x, l) = (self.alias("x"), self.alias("l"));
                let item = ParamKey::of("List", "item");
                out.s(&format!(
                    "SELECT {x}.target_id FROM idx_reference {x} JOIN resource {l} ON {l}.rid = {x}.rid \
                     WHERE {l}.rtype = 'List' AND {l}.id = "
                ))
                .text_arg(list);
                out.s(&format!(" AND {x}.param = "))
                    .arg(SqlArg::Int4(item.0));
                self.target_types(&x, types, out);
                self.visible(&l, out);
            }
            Condition::Has {
                params,
                filter,
                source_type,
            } => {
                let (x, s) = (self.alias("x"), self.alias("s"));
                out.s(&format!(
                    "SELECT {x}.target_id FROM idx_reference {x} JOIN resource {s} ON {s}.rid = {x}.rid WHERE "
                ));
                out.keys(&format!("{x}.param"), params);
                self.target_types(&x, types, out);
                self.visible(&s, out);
                self.filters(
                    &s,
                    std::slice::from_ref(source_type),
                    std::slice::from_ref(filter),
                    out,
                );
            }
            Condition::Chain {
                params,
                target_types,
            } => {
                for (i, ch) in target_types.iter().enumerate() {
                    if i > 0 {
                        out.s(" UNION ALL ");
                    }
                    let x = self.alias("x");
                    out.s(&format!("SELECT {x}.rid FROM idx_reference {x} WHERE "));
                    out.keys(&format!("{x}.param"), params);
                    self.chain_target(&x, ch, out);
                }
            }
            Condition::LastUpdated(_) | Condition::All(_) => {
                unreachable!("_lastUpdated and a conjunction never drive (see selectivity)")
            }
        }
    }

    /// The test of one index row of alias `x`.
    fn row_test(&mut self, x: &str, test: &ValueTest, out: &mut Sql) {
        match test {
            ValueTest::StringStartsWith(s) => {
                prefix_range(&format!("{x}.normalized"), s, out);
            }
            ValueTest::StringExact(s) => {
                // Through the (param, normalized) index, then the exact text.
                let n = oxehr_search::extract::string::normalize(s);
                out.s(&format!("{x}.normalized = ")).text_arg(&key(&n));
                out.s(&format!(" AND {x}.exact = ")).text_arg(s);
            }
            ValueTest::StringContains(s) => {
                out.s(&format!("{x}.normalized LIKE "))
                    .text_arg(&format!("%{}%", like_escape(s)))
                    .s(" ESCAPE '\\'");
            }
            ValueTest::Token { system, code } => {
                token_test(x, "system", "code", system, code, out);
            }
            ValueTest::TokenText(s) => {
                prefix_range(&format!("{x}.text"), s, out);
            }
            ValueTest::OfType {
                type_system,
                type_code,
                value,
            } => {
                out.s(&format!("{x}.code = "))
                    .text_arg(&key(&format!("{type_code}|{value}")));
                out.s(&format!(" AND {x}.system = "))
                    .text_arg(&key(type_system));
            }
            ValueTest::Date(d) => date_test(&format!("{x}.low"), &format!("{x}.high"), d, out),
            ValueTest::Number(n) => number_test(&format!("{x}.value"), n, out),
            ValueTest::Quantity(q) => quantity_test(x, q, out),
            ValueTest::Reference { target_type, id } => {
                out.s(&format!("{x}.target_id = ")).text_arg(id);
                if let Some(t) = target_type {
                    out.s(&format!(" AND {x}.target_type = ")).text_arg(t);
                }
            }
            ValueTest::ReferenceUrl { url, version } => {
                out.s(&format!("{x}.url = ")).text_arg(&key(url));
                if let Some(v) = version {
                    out.s(&format!(" AND {x}.version = ")).text_arg(v);
                }
            }
            ValueTest::ReferenceIdentifier { system, value } => {
                token_test(
                    x,
                    "identifier_system",
                    "identifier_value",
                    system,
                    value,
                    out,
                );
            }
            ValueTest::Uri(UriTest::Equals(u)) => {
                out.s(&format!("{x}.value = ")).text_arg(&key(u));
            }
            ValueTest::Uri(UriTest::Below(u)) => prefix_range(&format!("{x}.value"), u, out),
            ValueTest::Uri(UriTest::Above(list)) => {
                out.s(&format!("{x}.value IN ("));
                for (i, u) in list.iter().enumerate() {
                    if i > 0 {
                        out.s(", ");
                    }
                    out.text_arg(&key(u));
                }
                out.s(")");
            }
            ValueTest::Text(words) => {
                for (i, w) in words.iter().enumerate() {
                    if i > 0 {
                        out.s(" AND ");
                    }
                    out.s(&format!("(' ' || {x}.content) LIKE "))
                        .text_arg(&format!("% {}%", like_escape(w)))
                        .s(" ESCAPE '\\'");
                }
            }
            ValueTest::Composite {
                system1,
                code1,
                second,
            } => {
                token_test(x, "system1", "code1", system1, code1, out);
                out.s(" AND ");
                self.composite_second(x, second, out);
            }
        }
    }

    /// The second part of a composite row (columns `*2` of `idx_composite`).
    fn composite_second(&mut self, x: &str, test: &ValueTest, out: &mut Sql) {
        match test {
            ValueTest::Token { system, code } => {
                token_test(x, "system2", "code2", system, code, out)
            }
            ValueTest::Quantity(q) => {
                number_test(&format!("{x}.value2"), &q.number, out);
                if let Some(s) = &q.system {
                    out.s(&format!(" AND {x}.system2 = ")).text_arg(s);
                }
                if let Some(c) = &q.code {
                    out.s(&format!(" AND {x}.code2 = ")).text_arg(c);
                }
            }
            ValueTest::Number(n) => number_test(&format!("{x}.value2"), n, out),
            ValueTest::Date(d) => date_test(
                &format!("{x}.date_low2"),
                &format!("{x}.date_high2"),
                d,
                out,
            ),
            ValueTest::StringStartsWith(s) => prefix_range(&format!("{x}.string2"), s, out),
            ValueTest::Uri(UriTest::Equals(u)) => {
                out.s(&format!("{x}.string2 = ")).text_arg(&key(u));
            }
            ValueTest::Reference {
                target_type: Some(t),
                id,
            } => {
                out.s(&format!("{x}.string2 = "))
                    .text_arg(&format!("{t}/{id}"));
            }
            ValueTest::ReferenceUrl { url, .. } => {
                out.s(&format!("{x}.string2 = ")).text_arg(&key(url));
            }
            _ => {
                // Not produced by the parser for composites; match nothing rather than
                // everything.
                out.s("1 = 0");
            }
        }
    }

    /// The sort key expression of resource alias `a`.
    fn sort_expr(&mut self, a: &str, k: &SortKey) -> Sql {
        let mut out = Sql::default();
        match &k.by {
            SortBy::Id => {
                out.s(&format!("{a}.id"));
            }
            SortBy::LastUpdated => {
                out.s(&format!("{a}.last_updated"));
            }
            SortBy::Param { params, table } => {
                let s = self.alias("k");
                let agg = if k.descending { "max" } else { "min" };
                let col = match (table, k.descending) {
                    (Table::String, _) => format!("{s}.normalized"),
                    (Table::Token, _) => format!("coalesce({s}.code, {s}.text)"),
                    (Table::Date, false) => format!("{s}.low"),
                    (Table::Date, true) => format!("{s}.high"),
                    (Table::Number | Table::Quantity, _) => format!("{s}.value"),
                    (Table::Reference, _) => {
                        format!("coalesce({s}.target_type || '/' || {s}.target_id, {s}.url)")
                    }
                    (Table::Uri, _) => format!("{s}.value"),
                    (Table::Composite, _) => format!("{s}.code1"),
                    (Table::Text, _) => format!("{s}.content"),
                };
                out.s(&format!(
                    "(SELECT {agg}({col}) FROM {} {s} WHERE {s}.rid = {a}.rid AND ",
                    table.name()
                ));
                out.keys(&self.probe_param(&s), params).s(")");
            }
        }
        out
    }

    /// `r.rtype …` for the types searched (nothing for every type).
    fn types(&self, a: &str, types: &[String], driven: bool, out: &mut Sql) {
        // With a key-list driver, the unary `+` keeps SQLite from scanning every resource
        // of the type through the (rtype, id) index (it has no statistics to know
        // better): the driver's keys lead instead.
        let col = if driven && self.dialect == Dialect::Sqlite {
            format!("+{a}.rtype")
        } else {
            format!("{a}.rtype")
        };
        if types.is_empty() {
            out.s("1 = 1");
        } else {
            self.types_col(&col, types, out);
        }
    }

    /// `col = ?` or `col IN (?, …)` over type names.
    fn types_col(&self, col: &str, types: &[String], out: &mut Sql) {
        if let [t] = types {
            out.s(&format!("{col} = ")).text_arg(t);
            return;
        }
        out.s(&format!("{col} IN ("));
        for (i, t) in types.iter().enumerate() {
            if i > 0 {
                out.s(", ");
            }
            out.text_arg(t);
        }
        out.s(")");
    }

    /// `FROM resource r WHERE …` of a query.
    fn select_from(&mut self, q: &Query) -> Sql {
        let mut conds = Sql::default();
        let drive = self.filters("r", &q.types, &q.filters, &mut conds);
        let mut out = Sql::default();
        out.s(" FROM resource r WHERE ");
        self.types("r", &q.types, drive == Some(DriveBy::Rid), &mut out);
        out.s(&format!(" AND {}", self.not_deleted("r")));
        self.visible("r", &mut out);
        out.append(conds);
        out
    }
}

/// The filter that drives the statement: the most selective one that can.
fn driver(filters: &[Filter]) -> Option<usize> {
    filters
        .iter()
        .enumerate()
        .filter_map(|(i, f)| selectivity(f).map(|s| (i, s)))
        .max_by_key(|(_, s)| *s)
        .map(|(i, _)| i)
}

/// Whether the best plan of `q`'s statements is the same whatever its values, so that
/// a backend may plan it once ([`ReadTx::query_shared_plan`]): it is driven by one id,
/// one reference (a patient's records: `patient=`, `subject=`) or one patient's
/// compartment, a handful of rows to start from whichever they are. A search driven by
/// a code or a date is not: one code is on every patient, another on none.
pub fn plan_is_shared(q: &Query) -> bool {
    driver(&q.filters).is_some_and(|i| match q.filters[i].any_of.as_slice() {
        [c] => matches!(
            c,
            Condition::Id(_)
                | Condition::InPatientCompartment(_)
                | Condition::Value {
                    test: ValueTest::Reference { .. },
                    ..
                }
        ),
        _ => false,
    })
}

/// Runs a statement of `q`, with a shared plan if [`plan_is_shared`].
fn run(tx: &mut dyn ReadTx, q: &Query, sql: &Sql) -> Result<Vec<Vec<SqlValue>>, StoreError> {
    if plan_is_shared(q) {
        tx.query_shared_plan(&sql.text, &sql.args)
    } else {
        tx.query(&sql.text, &sql.args)
    }
}

/// How selective a filter is likely to be, higher is fewer rows; `None` when it cannot
/// drive (negated, `:missing=true`, `_lastUpdated`). Without statistics of our own, by
/// the kind of test: an id or a reference to one resource is a handful of rows, a code
/// a few thousand, a date range a large share of the type. Even the least selective
/// filter drives when it is the only one: the total needs every match anyway, and an
/// index range read once costs less than a probe of every resource of the type.
fn selectivity(f: &Filter) -> Option<u32> {
    if f.negated || f.any_of.is_empty() {
        return None;
    }
    let kind = drive_kind(&f.any_of[0]);
    let mut worst = u32::MAX;
    for c in &f.any_of {
        if drive_kind(c) != kind {
            return None;
        }
        worst = worst.min(condition_selectivity(c)?);
    }
    Some(if f.any_of.len() > 1 {
        worst.saturating_sub(5)
    } else {
        worst
    })
}

fn condition_selectivity(c: &Condition) -> Option<u32> {
    Some(match c {
        Condition::Id(_) => 100,
        Condition::InList(_) => 85,
        Condition::InPatientCompartment(_) => 88,
        Condition::Value { test, .. } => match test {
            ValueTest::Reference { .. } => 90,
            ValueTest::ReferenceUrl { .. } | ValueTest::OfType { .. } => 80,
            ValueTest::ReferenceIdentifier { value: Some(_), .. } => 75,
            ValueTest::Token { code: Some(_), .. } | ValueTest::StringExact(_) => 70,
            ValueTest::Uri(UriTest::Equals(_) | UriTest::Above(_)) => 70,
            ValueTest::Composite { code1: Some(_), .. } => 65,
            ValueTest::StringStartsWith(s) => 45 + s.chars().count().min(10) as u32,
            ValueTest::Uri(UriTest::Below(_)) => 40,
            ValueTest::Date(d) if d.prefix == Prefix::Eq && d.high - d.low < 86_400_000_000 => 40,
            ValueTest::TokenText(_) => 30,
            _ => 20,
        },
        Condition::Chain { target_types, .. } => {
            let inner = target_types
                .iter()
                .map(|c| selectivity(&c.filter))
                .collect::<Option<Vec<u32>>>()?;
            inner.into_iter().min()?.saturating_sub(5)
        }
        Condition::Has { filter, .. } => selectivity(filter)?.saturating_sub(10),
        Condition::Missing { missing: false, .. } => 5,
        Condition::Missing { missing: true, .. }
        | Condition::LastUpdated(_)
        | Condition::All(_) => return None,
    })
}

fn drive_kind(c: &Condition) -> DriveBy {
    match c {
        Condition::Id(_) | Condition::InList(_) | Condition::Has { .. } => DriveBy::Id,
        _ => DriveBy::Rid,
    }
}

fn table_of(test: &ValueTest) -> Table {
    match test {
        ValueTest::StringStartsWith(_)
        | ValueTest::StringExact(_)
        | ValueTest::StringContains(_) => Table::String,
        ValueTest::Token { .. } | ValueTest::TokenText(_) | ValueTest::OfType { .. } => {
            Table::Token
        }
        ValueTest::Date(_) => Table::Date,
        ValueTest::Number(_) => Table::Number,
        ValueTest::Quantity(_) => Table::Quantity,
        ValueTest::Reference { .. }
        | ValueTest::ReferenceUrl { .. }
        | ValueTest::ReferenceIdentifier { .. } => Table::Reference,
        ValueTest::Uri(_) => Table::Uri,
        ValueTest::Composite { .. } => Table::Composite,
        ValueTest::Text(_) => Table::Text,
    }
}

/// `col >= ? AND col < ? || U+10FFFF`: starts-with as an index range.
fn prefix_range(col: &str, prefix: &str, out: &mut Sql) {
    out.s(&format!("{col} >= ")).text_arg(prefix);
    out.s(&format!(" AND {col} < "))
        .text_arg(&format!("{prefix}\u{10FFFF}"));
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn token_test(
    x: &str,
    system_col: &str,
    code_col: &str,
    system: &Option<Option<String>>,
    code: &Option<String>,
    out: &mut Sql,
) {
    let mut first = true;
    let mut and = |out: &mut Sql| {
        if !first {
            out.s(" AND ");
        }
        first = false;
    };
    if let Some(c) = code {
        and(out);
        out.s(&format!("{x}.{code_col} = ")).text_arg(&key(c));
    }
    match system {
        None => {}
        Some(None) => {
            and(out);
            out.s(&format!("{x}.{system_col} IS NULL"));
        }
        Some(Some(s)) => {
            and(out);
            out.s(&format!("{x}.{system_col} = ")).text_arg(&key(s));
        }
    }
    if first {
        out.s("1 = 1");
    }
}

/// A date test on a row range `[lo, hi]` (see [`DateTest`] for the semantics).
fn date_test(lo: &str, hi: &str, d: &DateTest, out: &mut Sql) {
    let i = |v: i64| SqlArg::Int8(v);
    let eq = |out: &mut Sql| {
        out.s(&format!("({lo} >= ")).arg(i(d.low));
        out.s(&format!(" AND {hi} <= ")).arg(i(d.high)).s(")");
    };
    // Bounds implied by the test (a row's low never exceeds its high), stated so the
    // (param, low, high) index reads a range instead of every row of the parameter.
    match d.prefix {
        Prefix::Eq | Prefix::Le => {
            out.s(&format!("{lo} <= ")).arg(i(d.high)).s(" AND ");
        }
        Prefix::Eb => {
            out.s(&format!("{lo} < ")).arg(i(d.low)).s(" AND ");
        }
        _ => {}
    }
    match d.prefix {
        Prefix::Eq => eq(out),
        Prefix::Ne => {
            out.s(&format!("({lo} < ")).arg(i(d.low));
            out.s(&format!(" OR {hi} > ")).arg(i(d.high)).s(")");
        }
        Prefix::Gt => {
            out.s(&format!("{hi} > ")).arg(i(d.high));
        }
        Prefix::Lt => {
            out.s(&format!("{lo} < ")).arg(i(d.low));
        }
        Prefix::Ge => {
            out.s(&format!("({hi} > ")).arg(i(d.high)).s(" OR ");
            eq(out);
            out.s(")");
        }
        Prefix::Le => {
            out.s(&format!("({lo} < ")).arg(i(d.low)).s(" OR ");
            eq(out);
            out.s(")");
        }
        Prefix::Sa => {
            out.s(&format!("{lo} > ")).arg(i(d.high));
        }
        Prefix::Eb => {
            out.s(&format!("{hi} < ")).arg(i(d.low));
        }
        Prefix::Ap => {
            out.s(&format!("({lo} <= "))
                .arg(i(d.high.saturating_add(d.ap_margin)));
            out.s(&format!(" AND {hi} >= "))
                .arg(i(d.low.saturating_sub(d.ap_margin)))
                .s(")");
        }
    }
}

/// A number test on column `col` (see [`NumberTest`]).
fn number_test(col: &str, n: &NumberTest, out: &mut Sql) {
    let r = SqlArg::Real;
    match n.prefix {
        Prefix::Eq => {
            out.s(&format!("({col} >= ")).arg(r(n.low));
            out.s(&format!(" AND {col} < ")).arg(r(n.high)).s(")");
        }
        Prefix::Ne => {
            out.s(&format!("({col} < ")).arg(r(n.low));
            out.s(&format!(" OR {col} >= ")).arg(r(n.high)).s(")");
        }
        Prefix::Gt | Prefix::Sa => {
            out.s(&format!("{col} > ")).arg(r(n.value));
        }
        Prefix::Lt | Prefix::Eb => {
            out.s(&format!("{col} < ")).arg(r(n.value));
        }
        Prefix::Ge => {
            out.s(&format!("{col} >= ")).arg(r(n.value));
        }
        Prefix::Le => {
            out.s(&format!("{col} <= ")).arg(r(n.value));
        }
        Prefix::Ap => {
            let (lo, hi) = n.ap_bounds();
            out.s(&format!("({col} >= ")).arg(r(lo));
            out.s(&format!(" AND {col} <= ")).arg(r(hi)).s(")");
        }
    }
}

/// A quantity row test: in canonical units where both sides have them, else in the
/// stored unit with the unit matched as given.
fn quantity_test(x: &str, q: &QuantityTest, out: &mut Sql) {
    let stored = |out: &mut Sql| {
        out.s("(");
        number_test(&format!("{x}.value"), &q.number, out);
        match (&q.system, &q.code) {
            (Some(s), Some(c)) => {
                out.s(&format!(" AND {x}.system = ")).text_arg(s);
                out.s(&format!(" AND {x}.code = ")).text_arg(c);
            }
            (Some(s), None) => {
                out.s(&format!(" AND {x}.system = ")).text_arg(s);
            }
            (None, Some(c)) => {
                out.s(&format!(" AND ({x}.code = ")).text_arg(c);
                out.s(&format!(" OR {x}.unit = ")).text_arg(c).s(")");
            }
            (None, None) => {}
        }
        out.s(")");
    };
    match &q.canonical {
        Some((n, code)) => {
            out.s("(");
            stored(out);
            out.s(" OR (");
            out.s(&format!("{x}.canonical_code = "))
                .text_arg(code)
                .s(" AND ");
            number_test(&format!("{x}.canonical_value"), n, out);
            out.s("))");
        }
        None => stored(out),
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
    let mut c = Compiler {
        dialect,
        next_alias: 0,
        access,
    };
    let sort_exprs: Vec<Sql> = q.sort.iter().map(|k| c.sort_expr("r", k)).collect();
    let from_where = c.select_from(q);
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
    let mut c = Compiler {
        dialect,
        next_alias: 0,
        access,
    };
    let mut out = Sql::default();
    out.s("SELECT count(*)").append(c.select_from(q));
    out
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

/// One page of matches of `q` from `position` (at most `limit`), in the sort order.
pub fn page(
    tx: &mut dyn ReadTx,
    access: &Access,
    q: &Query,
    position: &Position,
    limit: usize,
) -> Result<Vec<Hit>, StoreError> {
    let sql = page_sql(tx.dialect(), access, q, position, limit, false);
    run(tx, q, &sql)?
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
    let rows = run(tx, q, &sql)?;
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
    let mut c = Compiler {
        dialect,
        next_alias: 0,
        access,
    };
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
