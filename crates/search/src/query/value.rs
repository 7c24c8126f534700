//! Values of one parameter occurrence, by parameter type and modifier.

use crate::extract::date::range as date_range;
use crate::extract::quantity::{canonical_unit, number_range};
use crate::extract::string::normalize;
use crate::registry::ParamKind;

use super::{DateTest, NumberTest, Prefix, QuantityTest, QueryError, UriTest, ValueTest};

const UCUM: &str = "http://unitsofmeasure.org";

pub(crate) struct ValueContext<'a> {
    pub base_url: Option<&'a str>,
    pub now_micros: i64,
}

/// Splits on `sep` where it is not escaped with `\`, at most `max` parts.
fn split_unescaped(s: &str, sep: char, max: usize) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        let last = parts.len() - 1;
        if c == '\\' {
            parts[last].push('\\');
            if let Some(n) = chars.next() {
                parts[last].push(n);
            }
        } else if c == sep && parts.len() < max {
            parts.push(String::new());
        } else {
            parts[last].push(c);
        }
    }
    parts
}

/// Removes the `\` of `\,`, `\|`, `\$` and `\\`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ (',' | '|' | '$' | '\\')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| unescape(s))
}

/// A token value: `code`, `system|code`, `|code`, `system|`.
fn token_parts(v: &str) -> (Option<Option<String>>, Option<String>) {
    let parts = split_unescaped(v, '|', 2);
    match parts.as_slice() {
        [code] => (None, Some(unescape(code))),
        [system, code] if system.is_empty() => (Some(None), opt(code)),
        [system, code] => (Some(Some(unescape(system))), opt(code)),
        _ => (None, None),
    }
}

/// A value matched as a prefix (or inside the value, `:contains`): the index holds the
/// first [`KEY_MAX_BYTES`](crate::index::KEY_MAX_BYTES) bytes of a long value as they
/// are (see [`crate::index::key`]), so a longer pattern could not be matched exactly.
fn prefix(name: &str, v: String) -> Result<String, QueryError> {
    use crate::index::KEY_MAX_BYTES;
    if v.len() > KEY_MAX_BYTES {
        return Err(QueryError::invalid(
            name,
            format!(
                "a value matched as a prefix or with :contains may be at most {KEY_MAX_BYTES} bytes (:exact matches a longer one)"
            ),
        ));
    }
    Ok(v)
}

/// Splits a two-letter prefix off a date, number or quantity value.
fn prefix_of<'v>(name: &str, v: &'v str) -> Result<(Prefix, &'v str), QueryError> {
    if v.len() >= 2 && v.as_bytes()[..2].iter().all(u8::is_ascii_alphabetic) {
        let p = Prefix::parse(&v[..2]).ok_or_else(|| {
            QueryError::invalid(
                name,
                format!(
                    "'{}' is not a search prefix (eq, ne, gt, lt, ge, le, sa, eb, ap)",
                    &v[..2]
                ),
            )
        })?;
        return Ok((p, &v[2..]));
    }
    Ok((Prefix::Eq, v))
}

pub(crate) fn date_test(
    name: &str,
    v: &str,
    ctx: &ValueContext<'_>,
) -> Result<DateTest, QueryError> {
    let (prefix, rest) = prefix_of(name, v)?;
    // A `+` of a time zone arrives as a space when the client did not encode it.
    let text = rest.replace(' ', "+");
    let (low, high) = date_range(&text).ok_or_else(|| {
        QueryError::invalid(
            name,
            format!("'{rest}' is not a date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with zone)"),
        )
    })?;
    let mid = low / 2 + high / 2;
    let ap_margin = ((ctx.now_micros as i128 - mid as i128).abs() / 10) as i64;
    Ok(DateTest {
        prefix,
        low,
        high,
        ap_margin,
    })
}

/// Why a number is refused when it does not fit an f64.
const OUT_OF_RANGE: &str =
    "a number is out of range (beyond about 1.8e308, or so close to 0 that it rounds to 0)";

fn number_test(name: &str, v: &str) -> Result<NumberTest, QueryError> {
    let (prefix, rest) = prefix_of(name, v)?;
    let is_float = rest.parse::<f64>().is_ok() && rest.bytes().any(|b| b.is_ascii_digit());
    let (value, low, high) = number_range(rest).ok_or_else(|| {
        // `1e400` parses, to infinity: out of range rather than not a number.
        if is_float {
            QueryError::invalid(name, OUT_OF_RANGE)
        } else {
            QueryError::invalid(name, format!("'{rest}' is not a number"))
        }
    })?;
    // Without the exponent the precision range is wrong (`number_range` then takes 0).
    let exponent_ok = rest
        .split_once(['e', 'E'])
        .is_none_or(|(_, e)| e.parse::<i32>().is_ok());
    if !exponent_ok || !fits(rest, value) || !low.is_finite() || !high.is_finite() {
        return Err(QueryError::invalid(name, OUT_OF_RANGE));
    }
    Ok(NumberTest {
        prefix,
        value,
        low,
        high,
    })
}

/// Whether `value`, the f64 of the decimal `text`, stands for it: finite, and not 0
/// unless `text` is 0 (`1e-400` underflows to 0 and would then match 0).
fn fits(text: &str, value: f64) -> bool {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let zero = !mantissa.bytes().any(|b| matches!(b, b'1'..=b'9'));
    value.is_finite() && (value != 0.0 || zero)
}

/// `n` scaled by `factor` (a unit's canonical form), if every bound stays an f64 that
/// stands for it.
fn scaled(n: &NumberTest, factor: f64) -> Option<NumberTest> {
    let scale = |x: f64| {
        let y = x * factor;
        (y.is_finite() && (y != 0.0 || x == 0.0)).then_some(y)
    };
    Some(NumberTest {
        prefix: n.prefix,
        value: scale(n.value)?,
        low: scale(n.low)?,
        high: scale(n.high)?,
    })
}

fn quantity_test(name: &str, v: &str) -> Result<QuantityTest, QueryError> {
    let parts = split_unescaped(v, '|', 3);
    let number = number_test(name, &parts[0])?;
    let (system, code) = match parts.as_slice() {
        [_] => (None, None),
        [_, system, code] => (opt(system), opt(code)),
        _ => {
            return Err(QueryError::invalid(
                name,
                "a quantity is number, number|system|code or number||code",
            ))
        }
    };
    let canonical = match (&system, &code) {
        (Some(s), Some(c)) if s == UCUM => canonical_unit(c),
        (None, Some(c)) => canonical_unit(c),
        _ => None,
    }
    .map(|(factor, base)| {
        // `1e308 kg` is finite, its 1e311 g is not: refused like the number itself.
        scaled(&number, factor)
            .map(|n| (n, base.to_string()))
            .ok_or_else(|| QueryError::invalid(name, OUT_OF_RANGE))
    })
    .transpose()?;
    Ok(QuantityTest {
        number,
        system,
        code,
        canonical,
    })
}

fn reference_test(name: &str, v: &str, ctx: &ValueContext<'_>) -> Result<ValueTest, QueryError> {
    let v = v.trim();
    let relative = ctx
        .base_url
        .and_then(|b| v.strip_prefix(b.trim_end_matches('/')))
        .and_then(|r| r.strip_prefix('/'));
    let v = relative.unwrap_or(v);
    if v.contains("://") || v.starts_with("urn:") {
        let (url, version) = match v.split_once('|') {
            Some((u, ver)) => (u.to_string(), Some(ver.to_string())),
            None => (v.to_string(), None),
        };
        return Ok(ValueTest::ReferenceUrl {
            url,
            version,
            target_type: None,
        });
    }
    let segs: Vec<&str> = v.split('/').collect();
    let ok_id = |id: &str| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    match segs.as_slice() {
        [id] if ok_id(id) => Ok(ValueTest::Reference {
            target_type: None,
            id: (*id).to_string(),
        }),
        [ty, id] | [ty, id, "_history", _] if ok_id(id) && super::is_resource_type(ty) => {
            Ok(ValueTest::Reference {
                target_type: Some((*ty).to_string()),
                id: (*id).to_string(),
            })
        }
        _ => Err(QueryError::invalid(
            name,
            format!("'{v}' is not a reference (id, Type/id or an absolute URL)"),
        )),
    }
}

/// How many prefixes [`uri_prefixes`] makes of the value `v` as sent (escapes removed
/// first, as there): the uri and one per `/` after its scheme.
pub(crate) fn uri_prefix_count(v: &str) -> usize {
    let v = unescape(v);
    let start = v.find("://").map_or(0, |i| i + 3);
    1 + v[start..].bytes().filter(|&b| b == b'/').count()
}

/// The prefixes of a URI at its `/` boundaries, longest first (`:above`).
fn uri_prefixes(v: &str) -> Vec<String> {
    let mut out = vec![v.to_string()];
    let start = v.find("://").map_or(0, |i| i + 3);
    let mut cut = v.len();
    while let Some(i) = v[..cut].rfind('/') {
        if i < start {
            break;
        }
        out.push(v[..i].to_string());
        cut = i;
    }
    out
}

/// One value (one alternative of a comma list) of a non-composite parameter.
pub(crate) fn parse_value(
    name: &str,
    kind: ParamKind,
    modifier: Option<&str>,
    v: &str,
    ctx: &ValueContext<'_>,
) -> Result<ValueTest, QueryError> {
    let unknown = |m: &str| QueryError::invalid(name, format!("unknown modifier ':{m}'"));
    let unsupported = |m: &str| QueryError::unsupported(name, format!("the ':{m}' modifier"));
    if v.is_empty() {
        return Err(QueryError::invalid(name, "has an empty value"));
    }
    Ok(match kind {
        ParamKind::String => match modifier {
            None => ValueTest::StringStartsWith(prefix(name, normalize(&unescape(v)))?),
            Some("exact") => ValueTest::StringExact(unescape(v)),
            Some("contains") => ValueTest::StringContains(prefix(name, normalize(&unescape(v)))?),
            Some(m @ ("text" | "above" | "below")) => return Err(unsupported(m)),
            Some(m) => return Err(unknown(m)),
        },
        ParamKind::Token => match modifier {
            None => {
                let (system, code) = token_parts(v);
                ValueTest::Token { system, code }
            }
            Some("text") => ValueTest::TokenText(normalize(&unescape(v))),
            Some("of-type") => {
                let parts = split_unescaped(v, '|', 3);
                match parts.as_slice() {
                    [s, c, val] if !c.is_empty() && !val.is_empty() => ValueTest::OfType {
                        type_system: unescape(s),
                        type_code: unescape(c),
                        value: unescape(val),
                    },
                    _ => {
                        return Err(QueryError::invalid(
                            name,
                            ":of-type takes type-system|type-code|value",
                        ))
                    }
                }
            }
            Some(m @ ("in" | "not-in" | "above" | "below")) => return Err(unsupported(m)),
            Some(m) => return Err(unknown(m)),
        },
        ParamKind::Date => match modifier {
            None => ValueTest::Date(date_test(name, v, ctx)?),
            Some(m) => return Err(unknown(m)),
        },
        ParamKind::Number => match modifier {
            None => ValueTest::Number(number_test(name, v)?),
            Some(m) => return Err(unknown(m)),
        },
        ParamKind::Quantity => match modifier {
            None => ValueTest::Quantity(quantity_test(name, v)?),
            Some(m) => return Err(unknown(m)),
        },
        ParamKind::Reference => match modifier {
            None => reference_test(name, v, ctx)?,
            Some("identifier") => {
                let (system, value) = token_parts(v);
                ValueTest::ReferenceIdentifier {
                    system,
                    value,
                    target_type: None,
                }
            }
            Some(m @ ("above" | "below")) => return Err(unsupported(m)),
            Some(m) => return Err(unknown(m)),
        },
        ParamKind::Uri => match modifier {
            None => ValueTest::Uri(UriTest::Equals(unescape(v))),
            Some("below") => ValueTest::Uri(UriTest::Below(prefix(name, unescape(v))?)),
            Some("above") => ValueTest::Uri(UriTest::Above(uri_prefixes(&unescape(v)))),
            Some(m) => return Err(unknown(m)),
        },
        ParamKind::Composite | ParamKind::Special => {
            return Err(QueryError::unsupported(name, "this parameter type"))
        }
    })
}

/// A composite value `first$second`: the first component a token, the second of its own
/// type.
pub(crate) fn parse_composite(
    name: &str,
    components: &[ParamKind],
    modifier: Option<&str>,
    v: &str,
    ctx: &ValueContext<'_>,
) -> Result<ValueTest, QueryError> {
    if let Some(m) = modifier {
        return Err(QueryError::invalid(
            name,
            format!("unknown modifier ':{m}'"),
        ));
    }
    if components.len() != 2 || components[0] != ParamKind::Token {
        return Err(QueryError::unsupported(
            name,
            "a composite whose first part is not a token, or with more than two parts,",
        ));
    }
    let parts = split_unescaped(v, '$', 2);
    let [first, second] = parts.as_slice() else {
        return Err(QueryError::invalid(
            name,
            "a composite value has two parts joined by '$'",
        ));
    };
    let (system1, code1) = token_parts(first);
    let second = parse_value(name, components[1], None, second, ctx)?;
    Ok(ValueTest::Composite {
        system1,
        code1,
        second: Box::new(second),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_split_and_unescape() {
        assert_eq!(
            split_unescaped(r"a\|b|c|d", '|', 2),
            vec![r"a\|b".to_string(), "c|d".to_string()]
        );
        assert_eq!(unescape(r"a\|b\$c\\d"), r"a|b$c\d");
    }

    #[test]
    fn uri_prefixes_are_counted_before_they_are_made() {
        for v in [
            "http://acme.org/fhir/ValueSet/123",
            "http://acme.org/",
            "http://acme.org",
            "urn:oid:1.2.3",
            "a/b//c/",
            "/",
            r"http://h/a\,b/c",
        ] {
            assert_eq!(uri_prefix_count(v), uri_prefixes(&unescape(v)).len(), "{v}");
        }
    }

    #[test]
    fn uri_above_lists_the_path_prefixes() {
        assert_eq!(
            uri_prefixes("http://acme.org/fhir/ValueSet/123"),
            vec![
                "http://acme.org/fhir/ValueSet/123",
                "http://acme.org/fhir/ValueSet",
                "http://acme.org/fhir",
                "http://acme.org",
            ]
        );
    }
}
