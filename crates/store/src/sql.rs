//! The read SQL both backends share, written once with `?` placeholders and
//! dialect-neutral arguments: history filters here, the search engine in
//! [`crate::search`]. Each backend binds [`SqlArg`]s as its driver wants (PostgreSQL
//! numbers the placeholders `$1, $2, …`).

use crate::{HistoryQuery, HistoryScope};

/// Where the two SQL dialects we speak differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound value. `Int4` is for the `param` columns (32-bit in PostgreSQL); a NULL
/// carries its column's type, which PostgreSQL needs to bind it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlArg {
    Int4(i32),
    Int8(i64),
    Real(f64),
    Text(String),
    NullInt8,
    NullText,
}

impl SqlArg {
    /// `Text`, or a text NULL.
    pub fn opt_text(v: Option<&str>) -> SqlArg {
        v.map_or(SqlArg::NullText, |t| SqlArg::Text(t.to_owned()))
    }

    /// `Int8`, or a bigint NULL.
    pub fn opt_int8(v: Option<i64>) -> SqlArg {
        v.map_or(SqlArg::NullInt8, SqlArg::Int8)
    }
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
    let mut visible = crate::search::Sql::default();
    q.access.visible("r", 0, &mut visible);
    sql.push_str(&visible.text);
    args.extend(visible.args);
    (sql, args)
}

/// Reads a result row ([`crate::search::SqlValue`]s) column by column, in order, for the
/// tables whose SQL lives in this crate (`accounts`, `audit`); a value of the wrong kind
/// is `Corrupt`, naming the table and column.
#[derive(Debug)]
pub struct Columns {
    table: &'static str,
    values: std::vec::IntoIter<crate::search::SqlValue>,
}

impl Columns {
    pub fn new(table: &'static str, row: Vec<crate::search::SqlValue>) -> Columns {
        Columns {
            table,
            values: row.into_iter(),
        }
    }

    fn corrupt(&self, column: &str) -> crate::StoreError {
        crate::StoreError::Corrupt(format!("{} {column}", self.table))
    }

    fn next(&mut self, column: &str) -> Result<crate::search::SqlValue, crate::StoreError> {
        self.values.next().ok_or_else(|| self.corrupt(column))
    }

    pub fn text(&mut self, column: &str) -> Result<String, crate::StoreError> {
        self.opt_text(column)?.ok_or_else(|| self.corrupt(column))
    }

    pub fn opt_text(&mut self, column: &str) -> Result<Option<String>, crate::StoreError> {
        use crate::search::SqlValue;
        match self.next(column)? {
            SqlValue::Null => Ok(None),
            SqlValue::Text(t) => Ok(Some(t)),
            _ => Err(self.corrupt(column)),
        }
    }

    pub fn int(&mut self, column: &str) -> Result<i64, crate::StoreError> {
        self.opt_int(column)?.ok_or_else(|| self.corrupt(column))
    }

    pub fn opt_int(&mut self, column: &str) -> Result<Option<i64>, crate::StoreError> {
        use crate::search::SqlValue;
        match self.next(column)? {
            SqlValue::Null => Ok(None),
            SqlValue::Int(n) => Ok(Some(n)),
            _ => Err(self.corrupt(column)),
        }
    }

    pub fn real(&mut self, column: &str) -> Result<f64, crate::StoreError> {
        self.opt_real(column)?.ok_or_else(|| self.corrupt(column))
    }

    /// A real column, which a backend may hand back as an integer when the value is whole.
    pub fn opt_real(&mut self, column: &str) -> Result<Option<f64>, crate::StoreError> {
        use crate::search::SqlValue;
        match self.next(column)? {
            SqlValue::Null => Ok(None),
            SqlValue::Real(x) => Ok(Some(x)),
            SqlValue::Int(n) => Ok(Some(n as f64)),
            SqlValue::Text(_) => Err(self.corrupt(column)),
        }
    }
}
