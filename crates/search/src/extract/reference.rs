//! Reference parameters: literal references (`Type/id`, `Type/id/_history/v`, absolute
//! URLs ending in `Type/id`), `urn:uuid:`/`urn:oid:` and other URLs, canonicals
//! (`url|version`) and logical references by identifier. `#contained` references are
//! not indexed.

use oxehr_fhir::Definitions;
use serde_json::Value;

use super::Input;
use crate::index::IndexValue;

/// A parsed literal reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub version: Option<String>,
    pub url: Option<String>,
}

/// Parses the `reference` string of a Reference. `None` for `#contained` references.
pub fn parse(reference: &str) -> Option<Parsed> {
    let r = reference.trim();
    if r.is_empty() || r.starts_with('#') {
        return None;
    }
    let absolute = r.contains(':');
    let mut parsed = Parsed {
        url: absolute.then(|| r.to_string()),
        ..Parsed::default()
    };
    if r.starts_with("urn:") {
        return Some(parsed);
    }
    let path = r.split(['?', '#']).next().unwrap_or(r);
    let segs: Vec<&str> = path.split('/').collect();
    let (ty, id, version) = match segs.as_slice() {
        [.., ty, id, "_history", v] => (*ty, *id, Some(*v)),
        [.., ty, id] => (*ty, *id, None),
        _ => return Some(parsed),
    };
    if Definitions::r4().is_resource_type(ty) && !id.is_empty() {
        parsed.target_type = Some(ty.to_string());
        parsed.target_id = Some(id.to_string());
        parsed.version = version.map(str::to_string);
    }
    Some(parsed)
}

fn reference_value(p: Parsed, identifier: Option<&Value>) -> IndexValue {
    let (identifier_system, identifier_value) = match identifier {
        Some(i) => (
            i.get("system").and_then(Value::as_str).map(str::to_string),
            i.get("value").and_then(Value::as_str).map(str::to_string),
        ),
        None => (None, None),
    };
    IndexValue::Reference {
        target_type: p.target_type,
        target_id: p.target_id,
        version: p.version,
        url: p.url,
        identifier_system,
        identifier_value,
    }
}

pub(super) fn values(v: &Input<'_>, targets: &[String], out: &mut Vec<IndexValue>) {
    let allowed = |p: &Parsed| match &p.target_type {
        Some(t) => targets.is_empty() || targets.iter().any(|x| x == t || x == "Resource"),
        None => true,
    };
    match v.json {
        Value::String(s) => {
            if matches!(v.ty, Some("canonical")) || (s.contains(':') && !s.starts_with("urn:")) {
                // A canonical: `url|version`.
                let (url, version) = match s.split_once('|') {
                    Some((u, ver)) => (u, Some(ver.to_string())),
                    None => (s.as_str(), None),
                };
                let mut p = parse(url).unwrap_or_default();
                p.url = Some(url.to_string());
                if version.is_some() {
                    p.version = version;
                }
                if allowed(&p) {
                    out.push(reference_value(p, None));
                }
            } else if let Some(p) = parse(s) {
                if allowed(&p) {
                    out.push(reference_value(p, None));
                }
            }
        }
        Value::Object(o) => {
            let identifier = o.get("identifier").filter(|i| i.is_object());
            match o.get("reference").and_then(Value::as_str) {
                Some(r) => {
                    if let Some(p) = parse(r) {
                        if allowed(&p) {
                            out.push(reference_value(p, identifier));
                        }
                    }
                }
                None => {
                    if identifier.is_some() {
                        out.push(reference_value(Parsed::default(), identifier));
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_references_parse() {
        let p = |t: Option<&str>, i: Option<&str>, v: Option<&str>, u: Option<&str>| Parsed {
            target_type: t.map(str::to_string),
            target_id: i.map(str::to_string),
            version: v.map(str::to_string),
            url: u.map(str::to_string),
        };
        for (input, expected) in [
            (
                "Patient/123",
                Some(p(Some("Patient"), Some("123"), None, None)),
            ),
            (
                "Patient/123/_history/2",
                Some(p(Some("Patient"), Some("123"), Some("2"), None)),
            ),
            (
                "http://x.org/fhir/Patient/123",
                Some(p(
                    Some("Patient"),
                    Some("123"),
                    None,
                    Some("http://x.org/fhir/Patient/123"),
                )),
            ),
            (
                "urn:uuid:0a9c-11",
                Some(p(None, None, None, Some("urn:uuid:0a9c-11"))),
            ),
            ("#p1", None),
            ("Nonsense/1", Some(p(None, None, None, None))),
        ] {
            assert_eq!(parse(input), expected, "{input}");
        }
    }
}
