//! The bounds of a query (the `MAX_*` constants of this module's parent) and the
//! characters it may carry, checked on the pairs as sent before any of them is parsed:
//! a query of a thousand parameters costs a count, not a thousand parses, and no value
//! with a NUL reaches a database. The parser then draws on a [`Budget`] as it expands
//! chains over their target types and values over the types searched, which only it
//! knows.

use super::parse::{base_of, is_filter};
use super::{
    QueryError, MAX_CHAIN_DEPTH, MAX_INCLUDES, MAX_PARAMETERS, MAX_SORT_KEYS, MAX_VALUES,
    MAX_VALUES_PER_PARAMETER, MAX_VALUE_BYTES,
};

/// Checks every pair: no control character in a name or value, no value too long, and
/// the counts of parameters, values, sort keys and includes.
pub(super) fn check(pairs: &[(String, String)]) -> Result<(), QueryError> {
    for (name, value) in pairs {
        if name.chars().any(is_control) {
            return Err(QueryError::invalid(
                &name.replace(is_control, "\u{FFFD}"),
                "control character in the name",
            ));
        }
        if value.chars().any(is_control) {
            // The value is never echoed: it may be anything.
            return Err(QueryError::invalid(name, "control character in the value"));
        }
    }
    let mut budget = Budget::default();
    let (mut sort_keys, mut includes) = (0, 0);
    for (name, value) in pairs {
        let base = base_of(name);
        let (values, longest) = if base == "_page" {
            (1, 0)
        } else {
            measure(value)
        };
        if longest > MAX_VALUE_BYTES {
            return Err(QueryError::invalid(
                name,
                format!("a value may be at most {MAX_VALUE_BYTES} bytes long"),
            ));
        }
        match base {
            "_sort" => {
                // `_sort` is split on every comma (a code holds none).
                sort_keys += value.split(',').count();
                if sort_keys > MAX_SORT_KEYS {
                    return Err(QueryError::invalid(
                        name,
                        format!("at most {MAX_SORT_KEYS} sort keys"),
                    ));
                }
            }
            "_include" | "_revinclude" => {
                includes += values;
                if includes > MAX_INCLUDES {
                    return Err(QueryError::invalid(
                        name,
                        format!("at most {MAX_INCLUDES} _include and _revinclude entries"),
                    ));
                }
            }
            _ if is_filter(name, value) => {
                let links = links(name);
                if links > MAX_CHAIN_DEPTH {
                    return Err(too_deep(name));
                }
                if values > MAX_VALUES_PER_PARAMETER {
                    return Err(QueryError::invalid(
                        name,
                        format!("at most {MAX_VALUES_PER_PARAMETER} values separated by commas"),
                    ));
                }
                // Each link is a parameter, each value a value, at least once: what
                // the parser counts again with the types they are searched on.
                for _ in 0..=links {
                    budget.parameter(name)?;
                }
                budget.values(name, values)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// FHIR strings hold no character below U+0020 but TAB, CR and LF (the `string` type of
/// the datatypes page); a search holds none either. A NUL would end a `LIKE` pattern on
/// SQLite (`:contains=x%00y` matched every `x`) and is an encoding error on PostgreSQL.
fn is_control(c: char) -> bool {
    c < ' ' && !matches!(c, '\t' | '\r' | '\n')
}

/// The number of comma-separated values of `value` (an escaped comma, `\,`, does not
/// separate, as in `split_or`) and the length in bytes of the longest, without
/// splitting it.
fn measure(value: &str) -> (usize, usize) {
    let (mut count, mut longest, mut start) = (1, 0, 0);
    let mut bytes = value.bytes().enumerate();
    while let Some((i, b)) = bytes.next() {
        match b {
            b'\\' => {
                bytes.next();
            }
            b',' => {
                longest = longest.max(i - start);
                count += 1;
                start = i + 1;
            }
            _ => {}
        }
    }
    (count, longest.max(value.len() - start))
}

/// The links of a chained or reverse-chained name (`a.b.c`: 2, `_has:T:p:c`: 1), as
/// `parse_filter` follows them, counted up to one past [`MAX_CHAIN_DEPTH`].
fn links(name: &str) -> usize {
    let mut n = 0;
    let mut rest = name;
    while n <= MAX_CHAIN_DEPTH {
        let next = match rest.strip_prefix("_has:") {
            Some(r) => r.splitn(3, ':').nth(2),
            None => rest.split_once('.').map(|(_, r)| r),
        };
        match next {
            Some(r) => {
                n += 1;
                rest = r;
            }
            None => break,
        }
    }
    n
}

pub(super) fn too_deep(name: &str) -> QueryError {
    QueryError::invalid(
        name,
        format!("chains and _has nest at most {MAX_CHAIN_DEPTH} levels"),
    )
}

/// What a query has spent of [`MAX_PARAMETERS`] and [`MAX_VALUES`]. Copied before a try
/// whose error is forgiven (a chain's target type without the parameter, an unknown
/// parameter under lenient handling) and restored after it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Budget {
    parameters: usize,
    values: usize,
}

impl Budget {
    /// One more parameter (one `parse_filter`).
    pub(super) fn parameter(&mut self, name: &str) -> Result<(), QueryError> {
        self.parameters += 1;
        if self.parameters > MAX_PARAMETERS {
            return Err(QueryError::invalid(
                name,
                format!(
                    "at most {MAX_PARAMETERS} search parameters in a query (each link of a \
                     chain or _has counts, once for each type it is searched on)"
                ),
            ));
        }
        Ok(())
    }

    /// `n` more values (already multiplied by the types they are searched on).
    pub(super) fn values(&mut self, name: &str, n: usize) -> Result<(), QueryError> {
        self.values = self.values.saturating_add(n);
        if self.values > MAX_VALUES {
            return Err(QueryError::invalid(
                name,
                format!(
                    "at most {MAX_VALUES} values in the whole query (a value counts once \
                     for each resource type it is searched on, and each further word of \
                     _text or _content or prefix of :above once more)"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_and_measured_between_unescaped_commas() {
        let cases = [
            ("", (1, 0)),
            ("abc", (1, 3)),
            ("a,bcd,ef", (3, 3)),
            (r"a\,b,c", (2, 4)),
            (r"a\\,b", (2, 3)),
            ("a,", (2, 1)),
            (",", (2, 0)),
            (r"ab\", (1, 3)),
        ];
        for (value, expected) in cases {
            assert_eq!(measure(value), expected, "{value}");
        }
    }

    #[test]
    fn links_are_counted_as_the_parser_follows_them() {
        let cases = [
            ("family", 0),
            ("family:exact", 0),
            ("subject:Patient.name", 1),
            ("subject.organization.name", 2),
            ("_has:Observation:patient:code", 1),
            ("_has:Observation:patient", 0),
            ("_has:Observation:patient:_has:AuditEvent:entity:code", 2),
            (
                "general-practitioner._has:PractitionerRole:practitioner:name",
                2,
            ),
            ("a.b.c.d.e.f.g.h", 5),
        ];
        for (name, expected) in cases {
            assert_eq!(links(name), expected, "{name}");
        }
    }
}
