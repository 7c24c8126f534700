//! Parsing of the plain search queries the write path needs: conditional create, update
//! and delete (`Patient?identifier=http://x|123`), conditional references inside
//! transactions (`Practitioner?identifier=…`) and simple type-level searches — one or
//! more parameters of any type with plain equality. Modifiers, prefixes other than `eq`,
//! chains and composite parameters are refused with a clear error; the full search
//! engine is its own piece of work and will replace this module.

use oxehr_fhir::{IssueCode, ResourceType};
use oxehr_search::extract::date::range as date_range;
use oxehr_search::extract::string::normalize;
use oxehr_search::{ParamKey, Registry};
use oxehr_store::{Criterion, Match, SimpleSearch};

use crate::RecordsError;

/// Parameters that control the result rather than select resources.
pub const RESULT_PARAMETERS: &[&str] = &[
    "_count",
    "_offset",
    "_total",
    "_summary",
    "_elements",
    "_format",
    "_pretty",
    "_sort",
    "_contained",
    "_containedType",
];

/// A parsed type-level search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub search: SimpleSearch,
    /// Parameters that were ignored (unknown, under lenient handling).
    pub ignored: Vec<String>,
}

/// Parses `params` (decoded name/value pairs) for a search of `rtype`. Unknown parameters
/// are an error unless `lenient`.
pub fn parse(
    rtype: &ResourceType,
    params: &[(String, String)],
    lenient: bool,
) -> Result<SearchRequest, RecordsError> {
    let registry = Registry::r4();
    let mut criteria = Vec::new();
    let mut ignored = Vec::new();
    let mut count = 50usize;
    let mut offset = 0usize;
    for (name, value) in params {
        match name.as_str() {
            "_count" => {
                count = value
                    .parse()
                    .map_err(|_| bad(name, "must be a non-negative integer"))?;
                continue;
            }
            "_offset" => {
                offset = value
                    .parse()
                    .map_err(|_| bad(name, "must be a non-negative integer"))?;
                continue;
            }
            n if RESULT_PARAMETERS.contains(&n) => continue,
            _ => {}
        }
        if name.contains(':') || name.contains('.') {
            return Err(unsupported(name, "modifiers and chained parameters"));
        }
        if name == "_id" {
            let any_of = value.split(',').map(|v| Match::Id(v.to_string())).collect();
            criteria.push(Criterion {
                param: ParamKey::of(rtype.as_str(), "_id"),
                any_of,
            });
            continue;
        }
        let Some(param) = registry.param(rtype.as_str(), name) else {
            if lenient {
                ignored.push(name.clone());
                continue;
            }
            return Err(RecordsError::invalid(
                IssueCode::NotSupported,
                format!("unknown search parameter '{name}' for {rtype}"),
            ));
        };
        let mut any_of = Vec::new();
        for v in split_or(value) {
            any_of.push(parse_value(name, &param.kind, &v)?);
        }
        criteria.push(Criterion {
            param: param.key,
            any_of,
        });
    }
    Ok(SearchRequest {
        search: SimpleSearch {
            rtype: rtype.clone(),
            criteria,
            count,
            offset,
        },
        ignored,
    })
}

/// Parses a conditional URL's query part (`identifier=a|b&active=true`).
pub fn parse_query_string(rtype: &ResourceType, query: &str) -> Result<SimpleSearch, RecordsError> {
    let pairs = decode_pairs(query);
    if pairs.is_empty() {
        return Err(RecordsError::invalid(
            IssueCode::Invalid,
            "a conditional interaction needs search parameters",
        ));
    }
    Ok(parse(rtype, &pairs, false)?.search)
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

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits on commas not escaped with `\`.
fn split_or(value: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if let Some(last) = parts.last_mut() {
                        last.push(n);
                    }
                }
            }
            ',' => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

fn bad(name: &str, why: &str) -> RecordsError {
    RecordsError::invalid(
        IssueCode::Invalid,
        format!("search parameter '{name}' {why}"),
    )
}

fn unsupported(name: &str, what: &str) -> RecordsError {
    RecordsError::invalid(
        IssueCode::NotSupported,
        format!("'{name}': {what} are not supported yet"),
    )
}

fn parse_value(name: &str, kind: &oxehr_search::ParamKind, v: &str) -> Result<Match, RecordsError> {
    use oxehr_search::ParamKind as K;
    Ok(match kind {
        K::String => Match::StringPrefix(normalize(v)),
        K::Token => match v.split_once('|') {
            None => Match::Token {
                system: None,
                code: Some(v.to_string()),
            },
            Some(("", code)) => Match::Token {
                system: Some(None),
                code: Some(code.to_string()),
            },
            Some((system, "")) => Match::Token {
                system: Some(Some(system.to_string())),
                code: None,
            },
            Some((system, code)) => Match::Token {
                system: Some(Some(system.to_string())),
                code: Some(code.to_string()),
            },
        },
        K::Reference => {
            if v.contains("://") || v.starts_with("urn:") {
                Match::ReferenceUrl(v.to_string())
            } else {
                match v.split('/').collect::<Vec<_>>().as_slice() {
                    [id] => Match::Reference {
                        target_type: None,
                        target_id: id.to_string(),
                    },
                    [ty, id] => Match::Reference {
                        target_type: Some(ty.to_string()),
                        target_id: id.to_string(),
                    },
                    _ => return Err(bad(name, "is not a reference of the form [Type/]id")),
                }
            }
        }
        K::Uri => Match::Uri(v.to_string()),
        K::Date => {
            let v = v.strip_prefix("eq").unwrap_or(v);
            if v.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return Err(unsupported(name, "date prefixes other than eq"));
            }
            let (low, high) = date_range(v).ok_or_else(|| bad(name, "is not a valid date"))?;
            Match::DateWithin { low, high }
        }
        K::Number | K::Quantity => {
            let v = v.strip_prefix("eq").unwrap_or(v);
            let number = v.split('|').next().unwrap_or("");
            let n: f64 = number.parse().map_err(|_| {
                bad(
                    name,
                    "is not a number (prefixes other than eq are not supported yet)",
                )
            })?;
            Match::NumberNear(n)
        }
        _ => return Err(unsupported(name, "composite and special parameters")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            split_or(r"a,b\,c"),
            vec!["a".to_string(), "b,c".to_string()]
        );
        assert_eq!(normalize("  Ángel  MÜLLER "), "angel muller");
    }
}
