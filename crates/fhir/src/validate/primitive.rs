//! Primitive values: the JSON type each FHIR primitive takes, the spec's regexes (from
//! the `<primitive>.value` elements of the definitions), the real calendar for dates, the
//! 32-bit range of integers, and the outer shape of narrative XHTML.
//!
//! The regexes are compiled once, as byte regexes without Unicode classes: the spec's
//! patterns come from XML Schema / Java, where `\s` is ASCII whitespace only, so a string
//! holding a no-break space is still a valid `string`.

use serde_json::Value;

use super::model::{FastRegex, Model, Prim, PrimKind};
use crate::outcome::IssueCode;

/// Why a primitive value is invalid; `what` names the rule, never the value.
#[derive(Debug)]
pub(crate) struct Problem {
    pub code: IssueCode,
    pub what: &'static str,
}

fn problem(code: IssueCode, what: &'static str) -> Result<(), Problem> {
    Err(Problem { code, what })
}

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
        // valid decimal as it stands.
        PrimKind::Decimal => match v {
            Value::Number(_) => Ok(()),
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
            if !lexical(model, prim, s) {
                return problem(IssueCode::Value, "value does not match the type's regex");
            }
            match prim.kind {
                PrimKind::Temporal if !calendar_ok(s.as_bytes()) => {
                    problem(IssueCode::Value, "not a real calendar date")
                }
                PrimKind::Xhtml if !xhtml_ok(s) => problem(
                    IssueCode::Value,
                    "narrative must be a <div> element in the XHTML namespace",
                ),
                _ => Ok(()),
            }
        }
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

/// The narrative is one `div` in the XHTML namespace (txt-1's full HTML subset check
/// needs an XML parser and is not done here).
fn xhtml_ok(s: &str) -> bool {
    let t = s.trim_start();
    let Some(rest) = t.strip_prefix("<div") else {
        return false;
    };
    if !rest.starts_with([' ', '\t', '\r', '\n', '>', '/']) {
        return false;
    }
    let head = &rest[..rest.find('>').unwrap_or(rest.len())];
    head.contains("xmlns=\"http://www.w3.org/1999/xhtml\"")
        || head.contains("xmlns='http://www.w3.org/1999/xhtml'")
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
            assert_eq!(xhtml_ok(s), ok, "{s}");
        }
    }
}
