//! Primitive values: the JSON type each FHIR primitive takes, the spec's regexes (from
//! the `<primitive>.value` elements of the definitions), the real calendar for dates, the
//! 32-bit range of integers, the range of decimals, the spec's limits on strings, and
//! narrative XHTML (in [`super::narrative`]).
//!
//! The regexes are compiled once, as byte regexes without Unicode classes: the spec's
//! patterns come from XML Schema / Java, where `\s` is ASCII whitespace only, so a string
//! holding a no-break space is still a valid `string`.
//!
//! Rules from the datatypes page that the regexes do not carry:
//! - "Strings SHALL NOT contain Unicode character points below 32, except for u0009
//!   (horizontal tab), u0010 (carriage return) and u0013 (line feed)" (the page means
//!   U+000A and U+000D). Checked on every value held in a JSON string (all primitives
//!   but boolean, integers and decimal): they share the lexical space of `string`, and
//!   PostgreSQL cannot store U+0000 in text or jsonb. DEL (U+007F) is not below 32 and
//!   stays valid.
//! - "strings SHALL NOT exceed 1MB (1024*1024 characters) in size": for `string` and the
//!   types derived from it (`code`, `id`, `markdown`) and for `uri` and its
//!   specialisations (`url`, `canonical`, `oid`, `uuid`), whose lexical space is a string
//!   too. Characters are counted, not UTF-8 bytes; a value of at most 1 MiB bytes is
//!   under the limit without counting. Not bounded: `base64Binary` ("There is no
//!   specified upper limit to the size of a binary", the same page: attachments are
//!   legitimately large) and `xhtml` (not derived from `string`; a narrative may hold
//!   images as `data:` URLs). The server's request body limit bounds both.
//! - Decimals: the spec gives no range, but the search index stores an f64, so a decimal
//!   beyond ±f64::MAX or a non-zero one that rounds to zero could be stored and never
//!   found. Both are refused; precision beyond f64's is kept (the JSON text is stored).
//!   This relies on serde_json's `arbitrary_precision` (the workspace turns it on), which
//!   keeps a number's text.

use std::borrow::Cow;

use serde_json::Value;

use super::model::{FastRegex, Model, Prim, PrimKind};
use super::narrative;
use crate::outcome::IssueCode;

/// Why a primitive value is invalid; `what` names the rule, never the value. A
/// `warning` is reported without making the resource invalid.
#[derive(Debug)]
pub(crate) struct Problem {
    pub code: IssueCode,
    pub what: Cow<'static, str>,
    pub warning: bool,
}

fn problem(code: IssueCode, what: &'static str) -> Result<(), Problem> {
    Err(Problem {
        code,
        what: what.into(),
        warning: false,
    })
}

/// The spec's limit on `string` and `uri` values, in characters.
pub(crate) const MAX_STRING_CHARS: usize = 1024 * 1024;

/// Checks one non-null JSON value against primitive type `prim`.
pub(crate) fn check(model: &Model, prim: &Prim, v: &Value) -> Result<(), Problem> {
    match prim.kind {
        PrimKind::Boolean => match v {
            Value::Bool(_) => Ok(()),
            _ => problem(
                IssueCode::Structure,
                "a boolean must be a JSON true or false",
            ),
        },
        PrimKind::Integer { min } => match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) if i > i32::MAX as i64 || i < i32::MIN as i64 => {
                    problem(IssueCode::Value, "integer out of the 32-bit range")
                }
                Some(i) if i < min => problem(
                    IssueCode::Value,
                    if min > 0 {
                        "a positiveInt must be at least 1"
                    } else {
                        "an unsignedInt must not be negative"
                    },
                ),
                Some(_) => Ok(()),
                None if n.as_u64().is_some() => {
                    problem(IssueCode::Value, "integer out of the 32-bit range")
                }
                None => problem(
                    IssueCode::Structure,
                    "an integer must be a JSON number without fraction or exponent",
                ),
            },
            _ => problem(IssueCode::Structure, "an integer must be a JSON number"),
        },
        // JSON's number grammar is the decimal regex of the spec, so a JSON number is a
        // valid decimal as it stands; what remains is the range an f64 can hold.
        PrimKind::Decimal => match v {
            Value::Number(n) if decimal_in_range(n) => Ok(()),
            Value::Number(_) => problem(
                IssueCode::Value,
                "decimal outside the range this server can store and search (about ±1.8e308, \
                 and not so small that it rounds to zero)",
            ),
            _ => problem(IssueCode::Structure, "a decimal must be a JSON number"),
        },
        PrimKind::Temporal | PrimKind::Text | PrimKind::Xhtml => {
            let Value::String(s) = v else {
                return problem(IssueCode::Structure, "this primitive must be a JSON string");
            };
            if s.is_empty() {
                return problem(
                    IssueCode::Value,
                    "empty string (the spec forbids empty values)",
                );
            }
            if prim.string_like
                && s.len() > MAX_STRING_CHARS
                && s.chars().count() > MAX_STRING_CHARS
            {
                return problem(
                    IssueCode::TooLong,
                    "longer than the spec's limit for strings (1024*1024 characters)",
                );
            }
            if has_control(s.as_bytes()) {
                return problem(
                    IssueCode::Value,
                    "control character (below U+0020 other than tab, CR, LF) in a string",
                );
            }
            // With no control characters, `string`'s regex holds for any non-empty value
            // (it only refuses U+000B and U+000C), so its byte loop is skipped.
            if prim.fast != Some(FastRegex::Text) && !lexical(model, prim, s) {
                return problem(IssueCode::Value, "value does not match the type's regex");
            }
            match prim.kind {
                PrimKind::Temporal if !calendar_ok(s.as_bytes()) => {
                    problem(IssueCode::Value, "not a real calendar date")
                }
                PrimKind::Xhtml => narrative::check(s),
                _ => Ok(()),
            }
        }
    }
}

/// A byte below 0x20 other than tab, LF and CR (UTF-8 continuation and lead bytes are all
/// 0x80 and above, so a byte scan finds exactly the characters). Every string value goes
/// through here, so eight bytes are tested at once for any byte below 0x20 and only such
/// words are looked at byte by byte.
pub(crate) fn has_control(s: &[u8]) -> bool {
    const ALLOWED: u32 = (1 << b'\t') | (1 << b'\n') | (1 << b'\r');
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let control = |b: &u8| *b < 0x20 && ALLOWED >> *b & 1 == 0;
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        let Ok(bytes) = <[u8; 8]>::try_from(w) else {
            continue;
        };
        let x = u64::from_le_bytes(bytes);
        // Non-zero iff some byte of `x` is below 0x20 (the classic "has less than" test).
        if x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0 && w.iter().any(control) {
            return true;
        }
    }
    words.remainder().iter().any(control)
}

/// A finite f64, and not a non-zero value that underflows to zero.
pub(crate) fn decimal_in_range(n: &serde_json::Number) -> bool {
    let text = n.as_str();
    // Without an exponent, under 300 characters leave under 300 digits on either side
    // of the point: 1e-300 < |x| < 1e300 or zero, well inside f64 (the common case, with
    // no float parse).
    if text.len() < 300 && !text.bytes().any(|b| b == b'e' || b == b'E') {
        return true;
    }
    match n.as_f64() {
        None => false,
        Some(f) if f != 0.0 => true,
        // Zero as an f64: fine only if the number is zero (no non-zero digit before the
        // exponent).
        Some(_) => !text
            .bytes()
            .take_while(|&b| b != b'e' && b != b'E')
            .any(|b| (b'1'..=b'9').contains(&b)),
    }
}

/// The value matches the type's regex (or its hand-written equivalent).
pub(crate) fn lexical(model: &Model, prim: &Prim, s: &str) -> bool {
    match (prim.fast, prim.regex) {
        (Some(fast), _) => fast_match(fast, s.as_bytes()),
        (None, Some(re)) => model.regex(re).is_match(s.as_bytes()),
        (None, None) => true,
    }
}

/// ASCII whitespace as in the spec's (Java / XML Schema) `\s`.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

fn fast_match(f: FastRegex, s: &[u8]) -> bool {
    match f {
        FastRegex::Text => !s.is_empty() && !s.iter().any(|&b| b == 0x0B || b == 0x0C),
        FastRegex::NoSpace => !s.iter().any(|&b| is_ws(b)),
        FastRegex::Code => {
            let (Some(&first), Some(&last)) = (s.first(), s.last()) else {
                return false;
            };
            !is_ws(first) && !is_ws(last) && !s.windows(2).any(|w| is_ws(w[0]) && is_ws(w[1]))
        }
        FastRegex::Id => {
            (1..=64).contains(&s.len())
                && s.iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        }
        FastRegex::Uuid => {
            let Some(u) = s.strip_prefix(b"urn:uuid:") else {
                return false;
            };
            u.len() == 36
                && u.iter().enumerate().all(|(i, &b)| match i {
                    8 | 13 | 18 | 23 => b == b'-',
                    _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
                })
        }
    }
}

/// The day exists in its month (the regex already checked digits and ranges).
fn calendar_ok(s: &[u8]) -> bool {
    if s.len() < 10 {
        return true;
    }
    let num = |r: std::ops::Range<usize>| -> u32 {
        s[r].iter()
            .fold(0, |a, d| a * 10 + u32::from(d.wrapping_sub(b'0')))
    };
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_paths_agree_with_the_spec_regexes() {
        let m = Model::get();
        let inputs = [
            "",
            " ",
            "a",
            "a b",
            "a  b",
            " a",
            "a ",
            "a\tb",
            "a\t\tb",
            "a\u{b}b",
            "a\u{c}",
            "a\nb",
            "\n",
            "ab\r\n",
            "é ü",
            "a\u{a0}b",
            "x\u{2003}y",
            "http://x/y",
            "a b c",
        ];
        let mut checked = 0;
        for t in m.defs.type_names() {
            let Some(td) = m.defs.type_def(t) else {
                continue;
            };
            let Some(re) = td
                .elements
                .iter()
                .find(|e| e.path.ends_with(".value"))
                .and_then(|e| e.regex.as_deref())
            else {
                continue;
            };
            let Some(fast) = FastRegex::for_pattern(re) else {
                continue;
            };
            let compiled = regex::bytes::RegexBuilder::new(&format!("^(?:{re})$"))
                .unicode(false)
                .build()
                .expect("spec regex compiles");
            for s in inputs {
                assert_eq!(
                    fast_match(fast, s.as_bytes()),
                    compiled.is_match(s.as_bytes()),
                    "{t} {re} {s:?}"
                );
            }
            checked += 1;
        }
        // string, markdown, code, uri, url, canonical, id, uuid
        assert_eq!(checked, 8);
    }

    #[test]
    fn string_limit_covers_string_and_uri_and_their_specialisations() {
        let m = Model::get();
        let mut bounded = std::collections::BTreeSet::new();
        let mut unbounded = std::collections::BTreeSet::new();
        for ctx in &m.contexts {
            for e in ctx.keys.values() {
                if let super::super::model::EntryKind::Primitive(p) = e.kind {
                    if p.string_like {
                        bounded.insert(p.name);
                    } else {
                        unbounded.insert(p.name);
                    }
                }
            }
        }
        let want = [
            "canonical",
            "code",
            "id",
            "markdown",
            "oid",
            "string",
            "uri",
            "url",
            "uuid",
        ];
        assert_eq!(bounded.into_iter().collect::<Vec<_>>(), want);
        assert!(unbounded.contains("base64Binary") && unbounded.contains("xhtml"));
    }

    #[test]
    fn control_characters_are_found_by_the_byte_scan() {
        for b in 0u8..=0x7f {
            let s = [b'a', b, b'z'];
            let want = b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r');
            assert_eq!(has_control(&s), want, "{b:#x}");
        }
        assert!(!has_control("é ü \u{2028} \u{85}".as_bytes()));
    }

    #[test]
    fn calendar_rejects_impossible_days() {
        let cases = [
            ("2021-02-28", true),
            ("2021-02-29", false),
            ("2020-02-29", true),
            ("1900-02-29", false),
            ("2000-02-29", true),
            ("2021-04-31", false),
            ("2021-12-31T10:00:00Z", true),
            ("2021-06", true),
        ];
        for (s, ok) in cases {
            assert_eq!(calendar_ok(s.as_bytes()), ok, "{s}");
        }
    }

    #[test]
    fn xhtml_needs_div_and_namespace() {
        let cases = [
            ("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>", true),
            (
                "<div xmlns='http://www.w3.org/1999/xhtml'><p>x</p></div>",
                true,
            ),
            ("<div>x</div>", false),
            ("<p xmlns=\"http://www.w3.org/1999/xhtml\">x</p>", false),
            (
                "<divx xmlns=\"http://www.w3.org/1999/xhtml\">x</divx>",
                false,
            ),
        ];
        for (s, ok) in cases {
            assert_eq!(narrative::check(s).is_ok(), ok, "{s}");
        }
    }
}
