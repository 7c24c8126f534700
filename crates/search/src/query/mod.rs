//! The query side of search: a search URL's parameters parsed, checked against the
//! registry and typed into a [`Query`] that a store compiles into one SQL plan.
//!
//! Every value a user sends ends up in a typed field here (a normalized string, a range
//! of microseconds, a number); nothing is ever spliced into SQL text. Everything that
//! cannot be answered exactly (an unknown parameter or modifier, a malformed value, a
//! chain too deep) is a [`QueryError`] naming the parameter, which the API turns into a
//! 400 OperationOutcome.
//!
//! A parameter is identified by its keys, one per resource type searched (a key implies
//! its type), so one condition serves a type-level search and a system search over
//! several types alike: the store matches index rows whose `param` is any of the keys.

mod limits;
mod parse;
mod value;

use crate::index::ParamKey;
use crate::registry::ParamKind;

pub use parse::{is_filter, parse, split_or, ParseOptions};

/// The rules every query's pairs meet before they are parsed (no control characters,
/// values at most [`MAX_VALUE_BYTES`], the counts of parameters, values, sort keys and
/// includes): for searches parsed elsewhere, such as the audit trail's.
pub fn check_pairs(pairs: &[(String, String)]) -> Result<(), QueryError> {
    limits::check(pairs)
}

/// Whether `s` names a resource type (one with search parameters).
fn is_resource_type(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && !crate::registry::Registry::r4().params(s).is_empty()
}

// Limits on the size of a query. Every one is checked by `parse` on the pairs as sent,
// before any value is parsed (`limits::check`), and the counts again while chains are
// expanded over their target types (`limits::Budget`); a query over a limit is a
// `QueryError::Invalid` naming the parameter and the limit (400, OperationOutcome).
//
// Why these numbers. The store compiles a query into one statement
// (`oxehr_store::search`): the filters are AND-ed; the values of one filter are OR-ed
// (`filter`), except in the one driving filter, where they are the terms of a compound
// `SELECT … UNION ALL …` (`driver`, `key_list`: one term per value, or per target type
// of a chain); each value is a subquery testing `param IN (a key per resource type
// searched)` with at most 7 arguments of its own (`row_test`); a chain or `_has` level
// nests a subquery of its targets, with the caller's access test, per target type.
// SQLite refuses a compound SELECT of more than 500 terms, an expression deeper than
// 1,000 and more than 32,766 bound arguments. It parses `a OR b OR c` and `a AND b AND
// c` as left-deep trees, and a subquery's WHERE counts into the depth of the expression
// holding it: measured on the bundled SQLite 3.54, an AND-ed filter or an OR-ed value
// costs one level, an AND-ed word of `_text` two at the top and about nine inside a
// chain of four links. Under these limits:
// - a compound SELECT has at most 100 terms (the values of one parameter), or one per
//   target type of a chain, each of which spends a value: never over 500;
// - the deepest path is at most 50 AND-ed filters, the OR-ed target types of its links
//   (under 50: each is a parameter), at most 100 OR-ed values and at most 32 words at
//   its end, and 4 links: measured, every accepted shape at its limits (the access test
//   of a staff caller included) leaves more than 500 of the 1,000 levels free, where
//   1,000 repetitions of one parameter, or 1,000 comma values, fail;
// - the arguments are a key per type for each value, a word or a prefix (500: they are
//   all counted as values), at most 7 more per value (3,500), a few per chain or `_has`
//   level and 8 sort keys of a key per type: under 13,000 (measured: at most 2,500),
//   plus the access test of a staff caller for each resource the statement reads,
//   about 20 and one per break-the-glass grant (each `_list` value reads a List: 500 of
//   them with 10 grants bind 15,000, measured).
// PostgreSQL has no such limits, but its planning and running time grows with the same
// counts (1,000 repetitions of one parameter ran for minutes).

/// Longest chain (`a.b.c.d.e`: four links) and deepest `_has` nesting accepted.
pub const MAX_CHAIN_DEPTH: usize = 4;

/// Search parameters (filters) in one query. Each link of a chain and each `_has` counts
/// as one more (`subject:Patient.name=x` is two), and a chain without a type modifier
/// counts its link once per target type it is searched on (`subject.name` on an
/// Observation searches Patient and Location: three).
pub const MAX_PARAMETERS: usize = 50;

/// Values of one parameter, separated by commas (OR). An escaped comma (`\,`) does not
/// separate.
pub const MAX_VALUES_PER_PARAMETER: usize = 100;

/// Values in the whole query, nested ones included, each counted once for each resource
/// type it is searched on (a chained value once per target type, a value of a system
/// search once per type of `_type`), and once more for each word after the first of a
/// `_text`/`_content` value and each path prefix a `:above` uri adds (each is a test or
/// an argument of its own).
pub const MAX_VALUES: usize = 500;

/// Words of one `_text` or `_content` value. Every word must match, each a `LIKE` over
/// the candidate's text rows, AND-ed: two levels of SQLite's expression depth each, and
/// about nine at the end of a chain of four links (measured), where a comma value or a
/// filter costs one. Each word also counts towards [`MAX_VALUES`].
pub const MAX_TEXT_WORDS: usize = 32;

/// Keys of `_sort`, over every `_sort` parameter (a repeated `_sort` is refused anyway).
/// Each key is a correlated subquery per candidate, and the position test of a page
/// grows with the square of their number.
pub const MAX_SORT_KEYS: usize = 8;

/// `_include` and `_revinclude` entries (comma-separated values included), together.
pub const MAX_INCLUDES: usize = 20;

/// Bytes of one value (one of the comma-separated values, as decoded, escapes included):
/// long enough to match long identifiers exactly, short enough that a `:contains`
/// pattern (at most twice the value once `%` and `_` are escaped) stays far under
/// SQLite's 50,000-byte `LIKE` pattern limit. `_page` is exempt: a page position carries
/// the sort values of a row, which may be longer, and is checked where it is decoded.
pub const MAX_VALUE_BYTES: usize = 8192;

/// A parsed search over one resource type (or, for a system search, several).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The resource types searched: one for a type-level search; for a system search the
    /// `_type` list, or empty for every type.
    pub types: Vec<String>,
    /// Every filter must hold (repeated parameters AND).
    pub filters: Vec<Filter>,
    pub sort: Vec<SortKey>,
    pub include: Vec<Include>,
    pub revinclude: Vec<Include>,
    /// `_count`, if given.
    pub count: Option<usize>,
    pub total: Total,
    /// Parameters ignored under lenient handling (unknown ones).
    pub ignored: Vec<String>,
    /// The opaque page position (`_page`), if any.
    pub page: Option<String>,
}

/// `_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Total {
    None,
    /// Also what a search without `_total` gets: the server decides (FHIR R4 3.1.1.5.8).
    #[default]
    Estimate,
    Accurate,
}

/// One parameter occurrence: at least one of `any_of` must hold (comma = OR); with
/// `negated` (`:not`), none may.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub negated: bool,
    pub any_of: Vec<Condition>,
}

/// A condition on one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Some index row of the parameter passes `test`.
    Value {
        params: Vec<ParamKey>,
        test: ValueTest,
    },
    /// The resource has (`missing == false`) or lacks any index row of the parameter:
    /// a row of `params`, or a row of one of `typed`'s keys that refers to its type (a
    /// parameter narrowed from another to one target type, such as `patient` from
    /// `subject`).
    Missing {
        params: Vec<ParamKey>,
        table: Table,
        missing: bool,
        typed: Vec<(ParamKey, String)>,
    },
    /// `_id`.
    Id(String),
    /// `_lastUpdated`: the resource's last update instant (a point) passes the test.
    LastUpdated(DateTest),
    /// `_list=id`: the resource is an item of List/id.
    InList(String),
    /// Compartment search (`Patient/123/Observation`): the resource is in the
    /// compartment of Patient/`id`.
    InPatientCompartment(String),
    /// Chaining: a reference of `param` points to a resource of one of `target_types`
    /// that passes `filter`.
    Chain {
        params: Vec<ParamKey>,
        target_types: Vec<Chained>,
    },
    /// Reverse chaining (`_has:Source:param:…`): some resource of `source_type` refers
    /// to this one through `param` and passes `filter`.
    Has {
        source_type: String,
        params: Vec<ParamKey>,
        filter: Box<Filter>,
    },
    /// Every one of the filters holds. A URL cannot say this inside one parameter; the
    /// record layer builds it to OR whole sets of parameters, one per SMART scope that
    /// narrows a type by a query (`patient/Observation.rs?category=…`).
    All(Vec<Filter>),
}

/// One target type of a chain, with the filter on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chained {
    pub target_type: String,
    pub filter: Box<Filter>,
}

/// The index table a parameter's values live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    String,
    Token,
    Date,
    Number,
    Quantity,
    Reference,
    Uri,
    Composite,
    /// `_text` and `_content`.
    Text,
}

impl Table {
    pub fn of(kind: ParamKind) -> Option<Table> {
        Some(match kind {
            ParamKind::String => Table::String,
            ParamKind::Token => Table::Token,
            ParamKind::Date => Table::Date,
            ParamKind::Number => Table::Number,
            ParamKind::Quantity => Table::Quantity,
            ParamKind::Reference => Table::Reference,
            ParamKind::Uri => Table::Uri,
            ParamKind::Composite => Table::Composite,
            ParamKind::Special => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Table::String => "idx_string",
            Table::Token => "idx_token",
            Table::Date => "idx_date",
            Table::Number => "idx_number",
            Table::Quantity => "idx_quantity",
            Table::Reference => "idx_reference",
            Table::Uri => "idx_uri",
            Table::Composite => "idx_composite",
            Table::Text => "idx_text",
        }
    }
}

/// A test on one index row.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueTest {
    /// Normalized value starts with (the default string search).
    StringStartsWith(String),
    /// The value exactly as written (`:exact`).
    StringExact(String),
    /// Normalized value contains (`:contains`).
    StringContains(String),
    /// `code`, `system|code`, `|code` (`system: Some(None)`), `system|` (`code: None`).
    Token {
        system: Option<Option<String>>,
        code: Option<String>,
    },
    /// `:text`: the normalized display or text starts with.
    TokenText(String),
    /// `:of-type` on identifiers: `type-system|type-code|value`. Stored as token rows of
    /// the derived parameter `{code}:of-type` with `system` = the type's system and
    /// `code` = `{type code}|{value}`.
    OfType {
        type_system: String,
        type_code: String,
        value: String,
    },
    Date(DateTest),
    Number(NumberTest),
    Quantity(QuantityTest),
    /// A literal reference to `type/id` (`target_type: None`: any type).
    Reference {
        target_type: Option<String>,
        id: String,
    },
    /// A reference by absolute URL or canonical (`url`, with `version` if given as
    /// `url|version`); with `target_type`, one that names a resource of that type.
    ReferenceUrl {
        url: String,
        version: Option<String>,
        target_type: Option<String>,
    },
    /// `:identifier`: the Reference's identifier matches the token; with
    /// `target_type`, in a reference that names a resource of that type.
    ReferenceIdentifier {
        system: Option<Option<String>>,
        value: Option<String>,
        target_type: Option<String>,
    },
    Uri(UriTest),
    /// `_text` / `_content`: every word (normalized) starts a word of the text.
    Text(Vec<String>),
    /// A composite value: the first component is a token, the second any of the other
    /// tests (stored in `idx_composite`).
    Composite {
        system1: Option<Option<String>>,
        code1: Option<String>,
        second: Box<ValueTest>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum UriTest {
    Equals(String),
    /// `:below`: the stored uri starts with this.
    Below(String),
    /// `:above`: the stored uri is one of these prefixes of the value.
    Above(Vec<String>),
}

/// A search prefix (`eq` when none is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

impl Prefix {
    pub fn parse(s: &str) -> Option<Prefix> {
        Some(match s {
            "eq" => Prefix::Eq,
            "ne" => Prefix::Ne,
            "gt" => Prefix::Gt,
            "lt" => Prefix::Lt,
            "ge" => Prefix::Ge,
            "le" => Prefix::Le,
            "sa" => Prefix::Sa,
            "eb" => Prefix::Eb,
            "ap" => Prefix::Ap,
            _ => return None,
        })
    }
}

/// A date test: the search value's implicit range `[low, high]` (µs, inclusive) and the
/// prefix. The row's range `[row_low, row_high]` passes as the search page defines
/// (compiled into SQL by the store; the conformance suite checks each prefix):
///
/// | prefix | passes when |
/// |---|---|
/// | eq | `low <= row_low && row_high <= high` (the search range contains the row's) |
/// | ne | not eq |
/// | gt | `row_high > high` (the row's range reaches above the search range) |
/// | lt | `row_low < low` |
/// | ge | gt or eq |
/// | le | lt or eq |
/// | sa | `row_low > high` (starts after) |
/// | eb | `row_high < low` (ends before) |
/// | ap | the ranges overlap once the search range is widened by `ap_margin` each side |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTest {
    pub prefix: Prefix,
    pub low: i64,
    pub high: i64,
    /// For `ap`: 10% of the distance from now to the value, in µs.
    pub ap_margin: i64,
}

/// A number test on a stored value `v`: the search value `value`, with the implicit
/// range `[low, high)` of its precision.
///
/// | prefix | passes when |
/// |---|---|
/// | eq | `low <= v < high` |
/// | ne | not eq |
/// | gt / sa | `v > value` |
/// | lt / eb | `v < value` |
/// | ge | `v >= value` |
/// | le | `v <= value` |
/// | ap | `|v - value| <= 10% of |value|` (or within the precision range) |
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberTest {
    pub prefix: Prefix,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl NumberTest {
    /// The closed interval `ap` accepts.
    pub fn ap_bounds(&self) -> (f64, f64) {
        let margin = (self.value.abs() * 0.1).max((self.high - self.low) / 2.0);
        (self.value - margin, self.value + margin)
    }
}

/// A quantity test: the number test on the stored value, in the stored unit or — when
/// both sides have a UCUM-canonical form — on the canonical value.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantityTest {
    pub number: NumberTest,
    /// `value|system|code`: `None` when no system was given (`value||code` or `value`).
    pub system: Option<String>,
    /// The unit code (matched against the code or, without a system, the unit text).
    pub code: Option<String>,
    /// The search value in canonical units, when the unit has a canonical form.
    pub canonical: Option<(NumberTest, String)>,
}

/// A sort key of `_sort`.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub by: SortBy,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SortBy {
    Id,
    LastUpdated,
    /// A parameter's values: ascending sorts by the smallest, descending by the largest.
    Param {
        params: Vec<ParamKey>,
        table: Table,
        /// Only rows that refer to a resource of this type (a narrowed parameter).
        target_type: Option<String>,
    },
}

/// `_include` / `_revinclude`: `source_type:param[:target_type]`, or `*`.
#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    pub source_type: String,
    /// The reference parameters followed (one, or all of the source type's for `*`).
    pub params: Vec<ParamKey>,
    pub target_type: Option<String>,
    pub iterate: bool,
}

/// Why a query cannot be answered. The message names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown search parameter '{param}' for {rtype}")]
    UnknownParameter { param: String, rtype: String },
    #[error("search parameter '{param}': {reason}")]
    Invalid { param: String, reason: String },
    #[error("search parameter '{param}': {reason} is not supported")]
    NotSupported { param: String, reason: String },
}

impl QueryError {
    pub(crate) fn invalid(param: &str, reason: impl Into<String>) -> QueryError {
        QueryError::Invalid {
            param: param.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(param: &str, reason: impl Into<String>) -> QueryError {
        QueryError::NotSupported {
            param: param.to_string(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests;
