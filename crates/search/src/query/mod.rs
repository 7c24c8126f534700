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

pub use parse::{parse, split_or, ParseOptions};

/// Whether `s` names a resource type (one with search parameters).
fn is_resource_type(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && !crate::registry::Registry::r4().params(s).is_empty()
}

/// Longest chain (`a.b.c.d`) and deepest `_has` nesting accepted.
pub const MAX_CHAIN_DEPTH: usize = 4;

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
    Estimate,
    #[default]
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
    /// The resource has (`missing == false`) or lacks any index row of the parameter.
    Missing {
        params: Vec<ParamKey>,
        table: Table,
        missing: bool,
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
    /// `url|version`).
    ReferenceUrl {
        url: String,
        version: Option<String>,
    },
    /// `:identifier`: the Reference's identifier matches the token.
    ReferenceIdentifier {
        system: Option<Option<String>>,
        value: Option<String>,
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
