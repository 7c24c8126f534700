//! Full text: `_text` (the narrative) and `_content` (the whole resource), each one
//! normalized text per resource (see [`normalize`](super::string::normalize)), which the
//! search engine matches word by word.
//!
//! `_text` is `text.div` with its XHTML tags removed (a tag other than an inline one
//! such as `<b>` or `<span>` separates words) and its entities decoded.
//!
//! `_content` is every human-readable string of the resource, joined by single spaces,
//! then the narrative: all JSON strings except those under keys that hold identifiers
//! and machine values — `id`, `meta`, `resourceType`, the narrative itself (added once,
//! as text), `reference`, `url`, `system`, `fullUrl`, `profile`, base64 `data`, keys
//! ending in `Uri`, `Url`, `Canonical` or `Base64Binary` — and dates, dateTimes,
//! instants and absolute URLs and URNs anywhere. Codes, displays, names, identifiers' values, notes and descriptions stay.
//! One walk of the JSON, one output buffer; ASCII strings are normalized without the
//! Unicode decomposition.

use serde_json::{Map, Value};

use super::string::push_normalized;

/// The normalized narrative of `resource`, `None` when it has none or it holds no text.
pub fn narrative(resource: &Value) -> Option<String> {
    let div = resource.get("text")?.get("div")?.as_str()?;
    let mut raw = String::with_capacity(div.len());
    strip_xhtml(div, &mut raw);
    let mut out = String::with_capacity(raw.len());
    push_normalized(&raw, &mut out);
    (!out.is_empty()).then_some(out)
}

/// The normalized text of `resource` for `_content`, `narrative` (already normalized)
/// last; `None` when there is none.
pub fn content(resource: &Value, narrative: Option<&str>) -> Option<String> {
    let mut out = String::new();
    if let Value::Object(o) = resource {
        for (k, v) in o {
            if k != "text" {
                walk_field(k, v, &mut out);
            }
        }
    }
    if let Some(n) = narrative.filter(|n| !n.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(n);
    }
    (!out.is_empty()).then_some(out)
}

fn skipped(key: &str) -> bool {
    matches!(
        key,
        "id" | "meta"
            | "resourceType"
            | "div"
            | "reference"
            | "url"
            | "system"
            | "fullUrl"
            | "profile"
            | "data"
    ) || key.ends_with("Uri")
        || key.ends_with("Url")
        || key.ends_with("Canonical")
        || key.ends_with("Base64Binary")
}

fn walk_field(key: &str, v: &Value, out: &mut String) {
    // The companion `_name` of a primitive holds its extensions: walk them as well.
    if !skipped(key.strip_prefix('_').unwrap_or(key)) {
        walk(v, out);
    }
}

fn walk(v: &Value, out: &mut String) {
    match v {
        Value::String(s) if !is_date(s) && !is_uri(s) => push_normalized(s, out),
        Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
        Value::Object(o) => walk_object(o, out),
        _ => {}
    }
}

fn walk_object(o: &Map<String, Value>, out: &mut String) {
    for (k, v) in o {
        walk_field(k, v, out);
    }
}

/// A date with a day, a dateTime or an instant (`2019-03-01`, `2019-03-01T10:00:00Z`):
/// not words anyone searches for.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
        && (b.len() == 10 || b[10] == b'T')
}

/// An absolute URL or URN, whatever element holds it (Synthea has URLs as codes).
fn is_uri(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("urn:")
}

/// Tags that do not separate words (`<b>W</b>ord` is one word).
fn inline_tag(name: &str) -> bool {
    matches!(
        name,
        "a" | "abbr"
            | "b"
            | "bdo"
            | "big"
            | "cite"
            | "code"
            | "dfn"
            | "em"
            | "font"
            | "i"
            | "kbd"
            | "q"
            | "s"
            | "samp"
            | "small"
            | "span"
            | "strike"
            | "strong"
            | "sub"
            | "sup"
            | "tt"
            | "u"
            | "var"
    )
}

/// Appends the text of XHTML `div` to `out`: tags removed (a space for a block tag),
/// comments dropped, entities decoded.
fn strip_xhtml(div: &str, out: &mut String) {
    let mut rest = div;
    while let Some(i) = rest.find(['<', '&']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('<') {
            rest = skip_tag(rest, out);
        } else {
            rest = entity(rest, out);
        }
    }
    out.push_str(rest);
}

/// Skips the tag or comment at the start of `s`; returns what follows it.
fn skip_tag<'a>(s: &'a str, out: &mut String) -> &'a str {
    if let Some(body) = s.strip_prefix("<!--") {
        return body.find("-->").map_or("", |e| &body[e + 3..]);
    }
    let name_start = s[1..].trim_start_matches('/');
    let name_len = name_start
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(name_start.len());
    let name = name_start[..name_len].to_ascii_lowercase();
    if !inline_tag(&name) {
        out.push(' ');
    }
    // The closing `>`, outside quoted attribute values.
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '>') => return &s[i + 1..],
            _ => {}
        }
    }
    ""
}

/// Decodes the entity at the start of `s` (`&amp;`, `&#39;`, `&#x27;`…) into `out`;
/// returns what follows it. An unknown or malformed one is kept as written.
fn entity<'a>(s: &'a str, out: &mut String) -> &'a str {
    let end = s
        .char_indices()
        .take(12)
        .find(|&(_, c)| c == ';')
        .map(|(i, _)| i);
    let Some(end) = end else {
        out.push('&');
        return &s[1..];
    };
    let name = &s[1..end];
    let decoded = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        "copy" => Some('©'),
        "reg" => Some('®'),
        "trade" => Some('™'),
        "deg" => Some('°'),
        "plusmn" => Some('±'),
        "micro" => Some('µ'),
        "middot" => Some('·'),
        "times" => Some('×'),
        "divide" => Some('÷'),
        "ndash" => Some('–'),
        "mdash" => Some('—'),
        "lsquo" => Some('‘'),
        "rsquo" => Some('’'),
        "ldquo" => Some('“'),
        "rdquo" => Some('”'),
        "hellip" => Some('…'),
        "le" => Some('≤'),
        "ge" => Some('≥'),
        _ => name.strip_prefix('#').and_then(|n| {
            let code = match n.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => n.parse().ok()?,
            };
            char::from_u32(code)
        }),
    };
    match decoded {
        Some(c) => {
            out.push(c);
            &s[end + 1..]
        }
        None => {
            out.push('&');
            &s[1..]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn narrative_loses_tags_and_decodes_entities() {
        let r = json!({"resourceType": "Patient", "text": {"status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Zoë <b>Van</b>der&amp;Berg</p>\
                    <table><tr><td>a&lt;b</td><td title=\"x>y\">&quot;c&quot;&#39;d&#x41;</td></tr></table>\
                    <!-- a <comment> -->x&nbsp;&nbsp;y &bogus; & z &unknown;</div>"}});
        assert_eq!(
            narrative(&r).as_deref(),
            Some("zoe vander&berg a<b \"c\"'da x y &bogus; & z &unknown;")
        );
        assert_eq!(narrative(&json!({"text": {"div": "<div> </div>"}})), None);
        assert_eq!(narrative(&json!({"id": "x"})), None);
    }

    #[test]
    fn content_is_the_readable_strings() {
        let r = json!({
            "resourceType": "Observation",
            "id": "o1",
            "meta": {"versionId": "3", "tag": [{"code": "hidden"}]},
            "text": {"status": "generated", "div": "<div>Narr</div>"},
            "extension": [{"url": "http://example.org/ext", "valueString": "Ext Value"}],
            "status": "final",
            "_status": {"extension": [{"url": "http://x", "valueCode": "why"}]},
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6",
                "display": "Systolic  BP"}], "text": "Blood pressure"},
            "subject": {"reference": "Patient/p1", "display": "Zoë Smith"},
            "effectiveDateTime": "2019-03-01T10:00:00Z",
            "issued": "2019-03-01",
            "valueQuantity": {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org"},
            "note": [{"text": "Patient\ncalm"}, {"text": "https://example.org/a"}],
            "instantiatesUri": "http://example.org/plan",
            "presentedForm": [{"contentType": "text/plain", "data": "SGVsbG8="}]
        });
        let n = narrative(&r);
        assert_eq!(
            content(&r, n.as_deref()).as_deref(),
            Some(
                "ext value final why 8480-6 systolic bp blood pressure zoe smith mmhg \
                 patient calm text/plain narr"
            )
        );
        assert_eq!(
            content(&json!({"resourceType": "Basic", "id": "b"}), None),
            None
        );
    }

    #[test]
    fn dates_are_recognized() {
        for (s, date) in [
            ("2019-03-01", true),
            ("2019-03-01T10:00:00+01:00", true),
            ("8480-6", false),
            ("2019", false),
            ("2019-03-01 is a day", false),
            ("abcd-ef-gh", false),
        ] {
            assert_eq!(is_date(s), date, "{s}");
        }
    }
}
