//! `getResourceKey()` and `getReferenceKey([type])`, the functions SQL on FHIR v2 adds to
//! FHIRPath so rows of one view can be joined to rows of another
//! (https://sql-on-fhir.org/ig/StructureDefinition-ViewDefinition.html, §"Required
//! Additional Functions").
//!
//! The spec leaves the key's form to the implementation as long as the two agree. Ours is
//! the resource's logical id: `getResourceKey()` of `Patient/123` is `123`, and so is
//! `getReferenceKey()` of a `Reference` to `Patient/123` (or `Patient/123/_history/2`).
//! Only relative literal references have a key: an absolute URL, a `#contained` or
//! `urn:uuid:` reference, or a Reference without `reference`, gives none, since we
//! cannot tell which stored resource it names.

use std::borrow::Cow;

use serde_json::Value;

use crate::item::Item;

/// `getResourceKey()`: the `id` of each resource in the input.
pub(crate) fn resource_keys<'a>(input: &[Item<'a>]) -> Vec<Item<'a>> {
    input
        .iter()
        .filter_map(|i| match i {
            Item::Node(n) if n.value.get("resourceType").is_some() => {
                n.value.get("id").and_then(Value::as_str)
            }
            _ => None,
        })
        .map(|id| Item::String(Cow::Borrowed(id)))
        .collect()
}

/// `getReferenceKey([type])`: the id each Reference in the input points to, when it is a
/// relative reference (to a resource of `ty`, when given).
pub(crate) fn reference_keys<'a>(input: &[Item<'a>], ty: Option<&str>) -> Vec<Item<'a>> {
    input
        .iter()
        .filter_map(|i| match i {
            Item::Node(n) => n.value.get("reference").and_then(Value::as_str),
            _ => None,
        })
        .filter_map(|r| {
            let (t, id) = split_relative(r)?;
            ty.is_none_or(|ty| ty == t).then_some(id)
        })
        .map(|id| Item::String(Cow::Borrowed(id)))
        .collect()
}

/// `Patient/123` or `Patient/123/_history/2` → `("Patient", "123")`.
fn split_relative(reference: &str) -> Option<(&str, &str)> {
    let r = match reference.find("/_history/") {
        Some(i) => &reference[..i],
        None => reference,
    };
    let (ty, id) = r.split_once('/')?;
    let type_like = ty.starts_with(|c: char| c.is_ascii_uppercase())
        && ty.bytes().all(|b| b.is_ascii_alphanumeric());
    let id_like = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    (type_like && id_like).then_some((ty, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Expr;
    use serde_json::json;

    fn texts(src: &str, root: &Value) -> Vec<String> {
        Expr::parse(src)
            .and_then(|e| e.evaluate(root))
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .iter()
            .filter_map(Item::to_text)
            .collect()
    }

    #[test]
    fn resource_key_is_the_id() {
        let p = json!({"resourceType": "Patient", "id": "p1"});
        assert_eq!(texts("getResourceKey()", &p), ["p1"]);
        let anonymous = json!({"resourceType": "Patient"});
        assert!(texts("getResourceKey()", &anonymous).is_empty());
    }

    #[test]
    fn reference_key_is_the_id_of_a_relative_reference() {
        let obs = json!({
            "resourceType": "Observation",
            "id": "o1",
            "subject": {"reference": "Patient/p1"},
            "performer": [
                {"reference": "Practitioner/pr1/_history/3"},
                {"reference": "http://other.example/fhir/Practitioner/pr2"},
                {"reference": "#c1"},
                {"reference": "urn:uuid:9d0a6e7c-0000-4000-8000-000000000000"},
                {"display": "Dr. Nobody"}
            ]
        });
        let cases: [(&str, &[&str]); 6] = [
            ("subject.getReferenceKey()", &["p1"]),
            ("subject.getReferenceKey(Patient)", &["p1"]),
            ("subject.getReferenceKey('Patient')", &["p1"]),
            ("subject.getReferenceKey(Group)", &[]),
            ("performer.getReferenceKey()", &["pr1"]),
            ("performer.getReferenceKey(Practitioner)", &["pr1"]),
        ];
        for (src, expected) in cases {
            assert_eq!(texts(src, &obs), expected, "{src}");
        }
    }

    #[test]
    fn reference_key_with_an_unknown_type_is_a_compile_error() {
        assert!(Expr::parse("subject.getReferenceKey(NotAType)").is_err());
    }
}
