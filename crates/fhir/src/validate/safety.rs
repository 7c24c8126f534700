//! The rules that protect the server and its readers, checked on every write even when
//! full validation is turned off (`validate = false`, for trusted bulk loads): no control
//! characters in any string or key (they break PostgreSQL and the search index), no
//! number the index cannot hold, and no active content in a narrative (txt-1: a
//! browser showing it would run it). One pass over the JSON, without the definitions:
//! a narrative is the `div` of an object under a `text` key.

use serde_json::Value;

use super::{narrative, primitive};
use crate::outcome::{Issue, IssueCode};

/// The safety issues of `resource` (empty: none), located by the JSON path
/// (`Patient.name[0].family`).
pub fn safety(resource: &Value) -> Vec<Issue> {
    let root = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("Resource")
        .to_owned();
    let mut issues = Vec::new();
    walk(resource, &mut root.clone(), Kind::Other, &mut issues);
    issues
}

/// Where a value sits: a resource's `text`, the `div` of one (a narrative), elsewhere.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Narrative,
    Other,
}

fn walk(v: &Value, path: &mut String, kind: Kind, issues: &mut Vec<Issue>) {
    match v {
        Value::String(s) => {
            if primitive::has_control(s.as_bytes()) {
                issues.push(
                    Issue::error(
                        IssueCode::Value,
                        "control character (below U+0020 other than tab, CR, LF) in a string",
                    )
                    .at(path.clone()),
                );
            } else if kind == Kind::Narrative {
                if let Err(p) = narrative::check(s) {
                    if !p.warning {
                        issues.push(Issue::error(p.code, p.what.into_owned()).at(path.clone()));
                    }
                }
            }
        }
        Value::Number(n) if !primitive::decimal_in_range(n) => issues.push(
            Issue::error(
                IssueCode::Value,
                "decimal outside the range this server can store and search (about ±1.8e308)",
            )
            .at(path.clone()),
        ),
        Value::Object(m) => {
            for (k, child) in m {
                let len = path.len();
                if primitive::has_control(k.as_bytes()) {
                    issues.push(
                        Issue::error(IssueCode::Structure, "control character in an element name")
                            .at(path.clone()),
                    );
                    continue;
                }
                path.push('.');
                path.push_str(k);
                let child_kind = match (kind, k.as_str()) {
                    (_, "text") => Kind::Text,
                    (Kind::Text, "div") => Kind::Narrative,
                    _ => Kind::Other,
                };
                walk(child, path, child_kind, issues);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(child, path, Kind::Other, issues);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unsafe_content_is_found_without_the_definitions() {
        let div =
            |inner: &str| format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{inner}</div>");
        let cases = [
            (
                json!({"resourceType": "Patient", "name": [{"family": "A\u{0}"}]}),
                Some("Patient.name[0].family"),
            ),
            (
                json!({"resourceType": "Patient", "text": {"status": "generated", "div": div("<script>x</script>")}}),
                Some("Patient.text.div"),
            ),
            (
                json!({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "text": {"div": div("<p onclick=\"x\">a</p>")}}}]}),
                Some("Bundle.entry[0].resource.text.div"),
            ),
            (
                serde_json::from_str(
                    r#"{"resourceType": "Observation", "valueQuantity": {"value": 1e400}}"#,
                )
                .expect("json"),
                Some("Observation.valueQuantity.value"),
            ),
            (
                json!({"resourceType": "Patient", "text": {"status": "generated", "div": div("<p>Seen</p>")}, "name": [{"text": "Tab\there\r\n"}]}),
                None,
            ),
            // A `div` that is not a narrative is a plain string.
            (
                json!({"resourceType": "Basic", "extension": [{"url": "http://x", "valueString": "<script>"}]}),
                None,
            ),
        ];
        for (resource, want) in cases {
            let issues = safety(&resource);
            let got = issues
                .first()
                .and_then(|i| i.expression.first())
                .map(String::as_str);
            assert_eq!(got, want, "{resource}: {issues:?}");
        }
    }
}
