//! Checks on the pairs of a query as sent, before any of them is parsed: no value with a
//! NUL reaches a database.

use super::QueryError;

/// Checks every pair: no control character in a name or value.
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
    Ok(())
}

/// FHIR strings hold no character below U+0020 but TAB, CR and LF (the `string` type of
/// the datatypes page); a search holds none either. A NUL would end a `LIKE` pattern on
/// SQLite (`:contains=x%00y` matched every `x`) and is an encoding error on PostgreSQL.
fn is_control(c: char) -> bool {
    c < ' ' && !matches!(c, '\t' | '\r' | '\n')
}
