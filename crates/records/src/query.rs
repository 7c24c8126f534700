//! Search queries from URLs: decoding of `a=1&b=2`, and the parsing (by
//! `oxehr_search::query`) of the conditions the write path needs — conditional create,
//! update and delete (`Patient?identifier=http://x|123`) and conditional references
//! inside transactions — and of type-level searches in bundles.

use oxehr_fhir::{IssueCode, ResourceType};
use oxehr_search::query::{self, ParseOptions, Query, QueryError};

use crate::RecordsError;

/// Parses a search of `types` from decoded pairs.
pub fn parse(
    types: &[String],
    pairs: &[(String, String)],
    lenient: bool,
    base_url: Option<&str>,
) -> Result<Query, RecordsError> {
    let opts = ParseOptions {
        lenient,
        base_url,
        now_micros: crate::now_micros(),
    };
    query::parse(types, pairs, &opts).map_err(query_error)
}

/// A query error as the invalid-request error the API reports (400).
pub fn query_error(e: QueryError) -> RecordsError {
    let code = match &e {
        QueryError::UnknownParameter { .. } | QueryError::NotSupported { .. } => {
            IssueCode::NotSupported
        }
        QueryError::Invalid { .. } => IssueCode::Invalid,
    };
    RecordsError::invalid(code, e.to_string())
}

/// Parses a conditional URL's query part (`identifier=a|b&active=true`).
pub fn parse_query_string(rtype: &ResourceType, query: &str) -> Result<Query, RecordsError> {
    let pairs = decode_pairs(query);
    let q = parse(&[rtype.as_str().to_string()], &pairs, false, None)?;
    if q.filters.is_empty() {
        return Err(RecordsError::invalid(
            IssueCode::Invalid,
            "a conditional interaction needs search parameters",
        ));
    }
    Ok(q)
}

/// `Patient?identifier=x` and `identifier=x` both name the query part of a condition.
pub(crate) fn strip_type<'a>(q: &'a str, rtype: &ResourceType) -> &'a str {
    let q = q.strip_prefix(rtype.as_str()).unwrap_or(q);
    q.strip_prefix('?').unwrap_or(q)
}

/// Splits `a=1&b=2` into decoded pairs.
pub fn decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; bytes
/// that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    use oxehr_search::extract::date::range as date_range;
    use oxehr_search::extract::string::normalize;

    #[test]
    fn date_ranges_cover_the_precision() {
        // 2013-01-01T00:00:00Z is 1356998400 s after the epoch; 2014-01-01 is 1388534400.
        let cases = [
            ("2013", 1_356_998_400_000_000, 1_388_534_400_000_000 - 1),
            ("2013-02", 1_359_676_800_000_000, 1_362_096_000_000_000 - 1),
            (
                "2013-01-14",
                1_358_121_600_000_000,
                1_358_208_000_000_000 - 1,
            ),
            (
                "2013-01-14T10:00:00Z",
                1_358_157_600_000_000,
                1_358_157_601_000_000 - 1,
            ),
            (
                "2013-01-14T11:00:00+01:00",
                1_358_157_600_000_000,
                1_358_157_601_000_000 - 1,
            ),
            (
                "2013-01-14T10:00",
                1_358_157_600_000_000,
                1_358_157_660_000_000 - 1,
            ),
        ];
        for (v, low, high) in cases {
            assert_eq!(date_range(v), Some((low, high)), "{v}");
        }
        for bad in ["13", "2013-13", "2013-02-30", "2013-1-1", "x"] {
            assert_eq!(date_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            decode_pairs("identifier=http%3A%2F%2Fx%7C1&name=a+b&x"),
            vec![
                ("identifier".to_string(), "http://x|1".to_string()),
                ("name".to_string(), "a b".to_string()),
                ("x".to_string(), String::new()),
            ]
        );
        assert_eq!(normalize("  Ángel  MÜLLER "), "angel muller");
    }
}
