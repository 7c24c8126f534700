//! A [`Query`]'s conditions as SQL: the compiler of one statement (aliases, the caller's
//! visibility on every resource it reads, correlated probes and key lists) and the
//! tests of one index row by value type.

use oxehr_search::index::key;
use oxehr_search::query::{
    Chained, Condition, DateTest, Filter, NumberTest, Prefix, QuantityTest, Query, SortBy, SortKey,
    Table, UriTest, ValueTest,
};
use oxehr_search::ParamKey;

use crate::access::Access;
use crate::sql::{Dialect, SqlArg};

use super::plan::{drive_kind, driver, rid_driver, DriveBy};
use super::Sql;

/// The part of a driver's keys a page statement reads: the first `size` keys after
/// `after`, in key order (see [`super::page`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub after: i64,
    pub size: usize,
}

pub(super) struct Compiler<'a> {
    pub(super) dialect: Dialect,
    pub(super) next_alias: usize,
    /// Whose records the statement may reveal: applied to every resource it reads.
    pub(super) access: &'a Access,
}

impl<'a> Compiler<'a> {
    pub(super) fn new(dialect: Dialect, access: &'a Access) -> Compiler<'a> {
        Compiler {
            dialect,
            next_alias: 0,
            access,
        }
    }

    pub(super) fn alias(&mut self, prefix: &str) -> String {
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
    pub(super) fn probe_param(&self, x: &str) -> String {
        format!("+{x}.param")
    }

    /// ` AND <alias is visible to the caller>`.
    pub(super) fn visible(&mut self, alias: &str, out: &mut Sql) {
        self.next_alias += 1;
        let n = self.next_alias;
        self.access.visible(alias, n, out);
    }

    pub(super) fn not_deleted(&self, alias: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("{alias}.deleted = 0"),
            Dialect::Postgres => format!("NOT {alias}.deleted"),
        }
    }

    /// The `WHERE` conditions of `filters` on resource alias `a` (after a leading
    /// ` AND`), and whether a driver was used and of which kind.
    pub(super) fn filters(
        &mut self,
        a: &str,
        types: &[String],
        filters: &[Filter],
        window: Option<Window>,
        out: &mut Sql,
    ) -> Option<DriveBy> {
        let driver = driver(filters);
        let mut drive = None;
        for (i, f) in filters.iter().enumerate() {
            out.s(" AND ");
            if Some(i) == driver {
                drive = Some(self.driver(a, types, f, window, out));
            } else {
                self.filter(a, types, f, out);
            }
        }
        drive
    }

    /// A filter as a condition on alias `a`.
    pub(super) fn filter(&mut self, a: &str, types: &[String], f: &Filter, out: &mut Sql) {
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

    /// A (positive, drivable) filter as a key list for alias `a`; with a `window`, only
    /// that part of it (for a filter that drives by resource key).
    pub(super) fn driver(
        &mut self,
        a: &str,
        types: &[String],
        f: &Filter,
        window: Option<Window>,
        out: &mut Sql,
    ) -> DriveBy {
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
        let mut keys = Sql::default();
        self.any_key(types, f, &mut keys);
        match window {
            Some(w) if by == DriveBy::Rid => {
                let k = self.alias("k");
                out.s("SELECT rid FROM (");
                self.window_keys(keys, w.after, &k, out);
                out.s(" LIMIT ")
                    .arg(SqlArg::Int8(i64::try_from(w.size).unwrap_or(i64::MAX)))
                    .s(&format!(") {k}w"));
            }
            _ => {
                out.append(keys);
            }
        }
        out.s(")");
        by
    }

    /// The key lists of a filter's conditions, one after the other (a key matching
    /// several conditions comes once for each).
    fn any_key(&mut self, types: &[String], f: &Filter, out: &mut Sql) {
        for (i, c) in f.any_of.iter().enumerate() {
            if i > 0 {
                out.s(" UNION ALL ");
            }
            self.key_list(types, c, out);
        }
    }

    /// `SELECT rid FROM (keys) k WHERE rid > after ORDER BY rid`, to which a `LIMIT`
    /// belongs. A key listed twice (a resource with two matching rows) may fill two
    /// places of a window, never more than it would hold: windows are split after a
    /// key, so no key is in two windows. Not `DISTINCT`, which would keep every key to
    /// sort, where a `LIMIT` keeps only the window's.
    pub(super) fn window_keys(&mut self, keys: Sql, after: i64, k: &str, out: &mut Sql) {
        out.s("SELECT rid FROM (")
            .append(keys)
            .s(&format!(") {k} WHERE rid > "))
            .arg(SqlArg::Int8(after))
            .s(" ORDER BY rid");
    }

    /// A condition as a correlated predicate on alias `a`.
    pub(super) fn condition(&mut self, a: &str, types: &[String], c: &Condition, out: &mut Sql) {
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
                typed,
            } => {
                let x = self.alias("x");
                out.s(if *missing { "NOT EXISTS" } else { "EXISTS" });
                out.s(&format!(
                    " (SELECT 1 FROM {} {x} WHERE {x}.rid = {a}.rid AND ",
                    table.name()
                ));
                let col = self.probe_param(&x);
                self.param_rows(&x, &col, params, typed, out);
                out.s(")");
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
    pub(super) fn chain_target(&mut self, x: &str, ch: &Chained, out: &mut Sql) {
        let t = self.alias("t");
        out.s(&format!(" AND {x}.target_type = "))
            .text_arg(&ch.target_type);
        let types = std::slice::from_ref(&ch.target_type);
        let mut conds = Sql::default();
        let drive = self.filters(
            &t,
            types,
            std::slice::from_ref(&ch.filter),
            None,
            &mut conds,
        );
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
    pub(super) fn target_types(&self, x: &str, types: &[String], out: &mut Sql) {
        if types.is_empty() {
            return;
        }
        out.s(" AND ");
        self.types_col(&format!("{x}.target_type"), types, out);
    }

    /// A condition as a `SELECT` of resource keys (or, for `DriveBy::Id` conditions, of
    /// ids of alias `a`'s type).
    pub(super) fn key_list(&mut self, types: &[String], c: &Condition, out: &mut Sql) {
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
            Condition::Missing {
                params,
                table,
                typed,
                ..
            } => {
                let x = self.alias("x");
                out.s(&format!("SELECT {x}.rid FROM {} {x} WHERE ", table.name()));
                self.param_rows(&x, &format!("{x}.param"), params, typed, out);
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
                    None,
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
    pub(super) fn row_test(&mut self, x: &str, test: &ValueTest, out: &mut Sql) {
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
            ValueTest::ReferenceUrl {
                url,
                version,
                target_type,
            } => {
                out.s(&format!("{x}.url = ")).text_arg(&key(url));
                if let Some(v) = version {
                    out.s(&format!(" AND {x}.version = ")).text_arg(v);
                }
                if let Some(t) = target_type {
                    out.s(&format!(" AND {x}.target_type = ")).text_arg(t);
                }
            }
            ValueTest::ReferenceIdentifier {
                system,
                value,
                target_type,
            } => {
                token_test(
                    x,
                    "identifier_system",
                    "identifier_value",
                    system,
                    value,
                    out,
                );
                if let Some(t) = target_type {
                    out.s(&format!(" AND {x}.target_type = ")).text_arg(t);
                }
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
    pub(super) fn composite_second(&mut self, x: &str, test: &ValueTest, out: &mut Sql) {
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
    pub(super) fn sort_expr(&mut self, a: &str, k: &SortKey) -> Sql {
        let mut out = Sql::default();
        match &k.by {
            SortBy::Id => {
                out.s(&format!("{a}.id"));
            }
            SortBy::LastUpdated => {
                out.s(&format!("{a}.last_updated"));
            }
            SortBy::Param {
                params,
                table,
                target_type,
            } => {
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
                out.keys(&self.probe_param(&s), params);
                if let Some(t) = target_type {
                    out.s(&format!(" AND {s}.target_type = ")).text_arg(t);
                }
                out.s(")");
            }
        }
        out
    }

    /// The rows of `params` (their key in `col`), or of `typed`'s keys that refer to
    /// the type each names, on alias `x`.
    fn param_rows(
        &self,
        x: &str,
        col: &str,
        params: &[ParamKey],
        typed: &[(ParamKey, String)],
        out: &mut Sql,
    ) {
        if typed.is_empty() {
            out.keys(col, params);
            return;
        }
        out.s("(");
        let mut first = true;
        if !params.is_empty() {
            out.keys(col, params);
            first = false;
        }
        for (k, t) in typed {
            if !first {
                out.s(" OR ");
            }
            first = false;
            out.s("(")
                .keys(col, std::slice::from_ref(k))
                .s(&format!(" AND {x}.target_type = "))
                .text_arg(t)
                .s(")");
        }
        out.s(")");
    }

    /// `r.rtype …` for the types searched (nothing for every type).
    pub(super) fn types(&self, a: &str, types: &[String], driven: bool, out: &mut Sql) {
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
    pub(super) fn types_col(&self, col: &str, types: &[String], out: &mut Sql) {
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

    /// The key list of `q`'s driving filter (`SELECT rid …` over its index rows, one per
    /// matching row), when the filter drives by resource key.
    pub(super) fn driver_keys(&mut self, q: &Query) -> Option<Sql> {
        let f = &q.filters[rid_driver(&q.filters)?];
        let mut out = Sql::default();
        self.any_key(&q.types, f, &mut out);
        Some(out)
    }

    /// `FROM resource r WHERE …` of a query; with a `window`, its driver (which must
    /// drive by resource key: [`rid_driver`]) reads only that part of its keys.
    pub(super) fn select_from(&mut self, q: &Query, window: Option<Window>) -> Sql {
        let mut conds = Sql::default();
        let drive = self.filters("r", &q.types, &q.filters, window, &mut conds);
        let mut out = Sql::default();
        out.s(" FROM resource r WHERE ");
        self.types("r", &q.types, drive == Some(DriveBy::Rid), &mut out);
        out.s(&format!(" AND {}", self.not_deleted("r")));
        self.visible("r", &mut out);
        out.append(conds);
        out
    }
}

pub(super) fn table_of(test: &ValueTest) -> Table {
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
pub(super) fn prefix_range(col: &str, prefix: &str, out: &mut Sql) {
    out.s(&format!("{col} >= ")).text_arg(prefix);
    out.s(&format!(" AND {col} < "))
        .text_arg(&format!("{prefix}\u{10FFFF}"));
}

pub(super) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(super) fn token_test(
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
pub(super) fn date_test(lo: &str, hi: &str, d: &DateTest, out: &mut Sql) {
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
pub(super) fn number_test(col: &str, n: &NumberTest, out: &mut Sql) {
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
pub(super) fn quantity_test(x: &str, q: &QuantityTest, out: &mut Sql) {
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
