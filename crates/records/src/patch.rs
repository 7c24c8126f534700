//! JSON Patch (RFC 6902) applied with a bound on what it may build.

use serde_json::Value;

use oxehr_fhir::IssueCode;

use crate::RecordsError;

/// Most operations in one JSON Patch: each may cost a pass over the document.
pub const MAX_PATCH_OPERATIONS: usize = 256;

/// A JSON Patch document, checked: well-formed and at most [`MAX_PATCH_OPERATIONS`]
/// operations.
pub(crate) fn parse_patch(patch: Value) -> Result<json_patch::Patch, RecordsError> {
    let patch: json_patch::Patch = serde_json::from_value(patch).map_err(|e| {
        RecordsError::invalid(
            IssueCode::Invalid,
            format!("not a JSON Patch document: {e}"),
        )
    })?;
    if patch.0.len() > MAX_PATCH_OPERATIONS {
        return Err(RecordsError::invalid(
            IssueCode::TooCostly,
            format!("a JSON Patch may hold at most {MAX_PATCH_OPERATIONS} operations"),
        ));
    }
    Ok(patch)
}

/// The JSON Patch a Bundle entry's PATCH carries: a Binary whose `contentType` is
/// `application/json-patch+json` and whose `data` is the patch, base64-encoded (FHIR R4
/// http.html#patch, "Patch using Bundles"). FHIRPath Patch (a Parameters resource) is
/// not supported.
pub(crate) fn patch_of_binary(resource: &Value) -> Result<json_patch::Patch, RecordsError> {
    use base64::Engine as _;
    let not = |why: &str| RecordsError::invalid(IssueCode::NotSupported, why.to_owned());
    match resource.get("resourceType").and_then(Value::as_str) {
        Some("Binary") => {}
        Some("Parameters") => {
            return Err(not(
                "FHIRPath Patch (a Parameters resource) is not supported; send a JSON Patch as a Binary",
            ))
        }
        _ => {
            return Err(not(
                "a PATCH entry's resource is a Binary holding a JSON Patch (contentType application/json-patch+json)",
            ))
        }
    }
    let content_type = resource
        .get("contentType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/json-patch+json") {
        return Err(not(
            "a PATCH entry's Binary must have contentType application/json-patch+json",
        ));
    }
    let data = resource.get("data").and_then(Value::as_str).unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| {
            RecordsError::invalid(IssueCode::Invalid, "the Binary's data is not base64")
        })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        RecordsError::invalid(
            IssueCode::Invalid,
            format!("the Binary's data is not JSON: {e}"),
        )
    })?;
    parse_patch(value)
}

/// The length of `v` as compact JSON, without building the text.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing a Value to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// Applies `patch` one operation at a time, keeping count of the document's size as JSON
/// and refusing an operation that would take it past `max` bytes *before* it runs: a
/// few `copy` operations of a part onto itself double the document each time, and
/// checking afterwards would come gigabytes too late. `doc` is a working copy; on an
/// error it is thrown away.
pub(crate) fn apply_patch(
    doc: &mut Value,
    patch: &json_patch::Patch,
    max: usize,
) -> Result<(), RecordsError> {
    use json_patch::PatchOperation as Op;
    let mut size = json_len(doc);
    let at = |p: &json_patch::jsonptr::PointerBuf| p.as_str().to_owned();
    for (i, op) in patch.0.iter().enumerate() {
        let old = |doc: &Value, path: &str| doc.pointer(path).map_or(0, json_len);
        // What a value put at `path` adds: itself, and, as a new member, its key or its
        // comma (a member that exists is replaced and counted as removed).
        let put = |doc: &Value, path: &str, value_len: usize| -> (usize, usize) {
            let (parent, key) = path.rsplit_once('/').unwrap_or(("", ""));
            match doc.pointer(parent) {
                Some(Value::Object(_)) if doc.pointer(path).is_some() => {
                    (value_len, old(doc, path))
                }
                Some(Value::Object(_)) => {
                    (value_len + json_len(&Value::String(key.to_owned())) + 2, 0)
                }
                Some(Value::Array(_)) => (value_len + 1, 0),
                _ => (value_len, old(doc, path)),
            }
        };
        let (adds, removes) = match op {
            Op::Add(a) => put(doc, &at(&a.path), json_len(&a.value)),
            Op::Replace(r) => (json_len(&r.value), old(doc, &at(&r.path))),
            Op::Copy(c) => {
                let from = old(doc, &at(&c.from));
                put(doc, &at(&c.path), from)
            }
            // The value keeps its size; its new key may be longer.
            Op::Move(m) => (json_len(&Value::String(at(&m.path))) + 2, 0),
            Op::Remove(r) => (0, old(doc, &at(&r.path))),
            Op::Test(_) => (0, 0),
        };
        let after = size.saturating_add(adds).saturating_sub(removes);
        if after > max {
            return Err(RecordsError::invalid(
                IssueCode::TooLong,
                format!("operation {i} would make the patched resource larger than {max} bytes"),
            ));
        }
        json_patch::patch_unsafe(doc, std::slice::from_ref(op)).map_err(|e| {
            RecordsError::invalid(
                IssueCode::Processing,
                format!("the patch does not apply: {e}"),
            )
        })?;
        size = after;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(v: Value) -> json_patch::Patch {
        serde_json::from_value(v).expect("patch")
    }

    #[test]
    fn copies_of_a_part_onto_itself_are_refused_before_they_grow_the_document() {
        let mut doc = json!({"resourceType": "Patient", "name": [{"family": "Bomb"}]});
        let patch = ops(Value::Array(
            (0..40)
                .map(|_| json!({"op": "copy", "from": "/name", "path": "/name/-"}))
                .collect(),
        ));
        let max = 10_000;
        let err = apply_patch(&mut doc, &patch, max).expect_err("refused");
        assert!(err.to_string().contains("larger than 10000 bytes"), "{err}");
        // Refused before the operation ran: the document never passed the bound.
        assert!(json_len(&doc) <= max, "{}", json_len(&doc));
    }

    /// The running size equals the real size after every kind of operation (an add into
    /// an array inserts, into an object replaces), so no sequence can drift past the
    /// bound.
    #[test]
    fn the_running_size_is_the_documents_size() {
        let steps = [
            json!({"op": "add", "path": "/a", "value": [1, 2, 3]}),
            json!({"op": "add", "path": "/a/0", "value": {"big": "xxxxxxxxxxxxxxxxxxxx"}}),
            json!({"op": "add", "path": "/b", "value": "replaced-by-next"}),
            json!({"op": "add", "path": "/b", "value": "short"}),
            json!({"op": "replace", "path": "/a/1", "value": [4, 5, 6, 7, 8]}),
            json!({"op": "copy", "from": "/a", "path": "/c"}),
            json!({"op": "move", "from": "/c", "path": "/d"}),
            json!({"op": "remove", "path": "/a/0"}),
            json!({"op": "test", "path": "/b", "value": "short"}),
        ];
        let mut doc = json!({"resourceType": "Basic"});
        for step in steps {
            let before = json_len(&doc);
            let patch = ops(json!([step.clone()]));
            // Never less than the size reached (one byte under the bound refuses it), and
            // not much more (a few bytes over allows it).
            let mut probe = doc.clone();
            apply_patch(&mut probe, &patch, usize::MAX).expect("applies");
            let reached = json_len(&probe);
            let mut near = doc.clone();
            apply_patch(&mut near, &patch, reached.max(before) + 16).expect("near the bound");
            if reached > before {
                let mut under = doc.clone();
                assert!(
                    apply_patch(&mut under, &patch, reached - 1).is_err(),
                    "{step} to {reached} bytes allowed under the bound"
                );
            }
            doc = probe;
        }
    }
}
