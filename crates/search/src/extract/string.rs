//! String parameters: each string value, normalized for the default (starts-with) and
//! `:contains` searches and kept as written for `:exact`. HumanName and Address index
//! their parts.

use serde_json::Value;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::Input;
use crate::index::IndexValue;

/// Lower case, accents stripped (NFD, combining marks dropped), whitespace collapsed.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_normalized(s, &mut out);
    out
}

/// Appends `normalize(s)` to `out`, separated from what `out` already holds by one space
/// (none when either is empty). ASCII text, the common case, skips the decomposition.
pub fn push_normalized(s: &str, out: &mut String) {
    // A separator is pending once `out` holds text: written before the next character.
    let mut space = !out.is_empty();
    if s.is_ascii() {
        // NFD leaves ASCII as it is and it has no combining marks.
        out.reserve(s.len() + 1);
        for b in s.bytes() {
            if char::from(b).is_whitespace() {
                space = !out.is_empty();
                continue;
            }
            if space {
                out.push(' ');
                space = false;
            }
            out.push(char::from(b.to_ascii_lowercase()));
        }
        return;
    }
    for c in s.nfd().filter(|c| !is_combining_mark(*c)) {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.extend(c.to_lowercase());
    }
}

fn push(s: &str, out: &mut Vec<IndexValue>) {
    if s.is_empty() {
        return;
    }
    out.push(IndexValue::String {
        normalized: normalize(s),
        exact: s.to_string(),
    });
}

fn push_fields(obj: &serde_json::Map<String, Value>, fields: &[&str], out: &mut Vec<IndexValue>) {
    for f in fields {
        match obj.get(*f) {
            Some(Value::String(s)) => push(s, out),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .for_each(|s| push(s, out)),
            _ => {}
        }
    }
}

pub(super) fn values(v: &Input<'_>, out: &mut Vec<IndexValue>) {
    match (v.ty, v.json) {
        (_, Value::String(s)) => push(s, out),
        (Some("HumanName"), Value::Object(o)) => {
            push_fields(o, &["family", "given", "prefix", "suffix", "text"], out)
        }
        (Some("Address"), Value::Object(o)) => push_fields(
            o,
            &[
                "line",
                "city",
                "district",
                "state",
                "postalCode",
                "country",
                "text",
            ],
            out,
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalization_strips_accents_case_and_spaces() {
        for (input, expected) in [
            ("Chalmers", "chalmers"),
            ("  Zoë   van\tder  Berg ", "zoe van der berg"),
            ("ÉLODIE", "elodie"),
            ("Müller-Lüdenscheidt", "muller-ludenscheidt"),
        ] {
            assert_eq!(normalize(input), expected);
        }
    }

    #[test]
    fn pushed_pieces_are_joined_by_one_space() {
        let mut out = String::new();
        for piece in ["  ", " Zoë ", "", "\tVAN der", "  "] {
            super::push_normalized(piece, &mut out);
        }
        assert_eq!(out, "zoe van der");
    }
}
