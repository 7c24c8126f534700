//! Search: the registry of R4 core SearchParameters (from data), extraction of typed
//! index entries from resources, and (for the query side) the parsing of search URLs.
//!
//! **Invariant**: pure — no I/O, no database, no HTTP.

pub mod extract;
pub mod index;
pub mod query;
pub mod registry;

pub use extract::{extract, ExtractError, Extracted};
pub use index::{IndexEntry, IndexValue, ParamKey};
pub use registry::{Component, ParamKind, Registry, SearchParam};

/// A search value with FHIR's reserved characters escaped (`\`, `,`, `$`, `|` each get a
/// leading backslash: R4 search, "Escaping Search Parameters"), so it can be put in a
/// URL's parameter as one value; the query parser undoes it.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '$' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod escape_tests {
    #[test]
    fn reserved_characters_get_a_backslash() {
        // The spec's example: the value "a,b" is searched as "a\,b".
        assert_eq!(super::escape_value("a,b"), r"a\,b");
        assert_eq!(super::escape_value(r"x\y|z$"), r"x\\y\|z\$");
        assert_eq!(super::escape_value("plain"), "plain");
    }
}
