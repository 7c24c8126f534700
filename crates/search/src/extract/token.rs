//! Token parameters: codes, Codings, CodeableConcepts, Identifiers, ContactPoints and
//! booleans as (system, code, text).
//!
//! A `code` value gets the system its required binding implies, when the parameter has
//! one (`SearchParam::code_system`), so that `gender=http://hl7.org/fhir/administrative-gender|male`
//! finds it. An Identifier with a `type` also gives, per type Coding, a token for the
//! `:of-type` modifier: system = the type's system, code = `"{type code}|{value}"`.

use serde_json::{Map, Value};

use super::string::normalize;
use super::Input;
use crate::index::IndexValue;

fn str_of(o: &Map<String, Value>, k: &str) -> Option<String> {
    o.get(k).and_then(Value::as_str).map(str::to_string)
}

fn token(system: Option<String>, code: Option<String>, text: Option<String>) -> IndexValue {
    IndexValue::Token { system, code, text }
}

fn coding(c: &Map<String, Value>, text: Option<&str>) -> IndexValue {
    let text = text
        .or_else(|| c.get("display").and_then(Value::as_str))
        .map(normalize);
    token(str_of(c, "system"), str_of(c, "code"), text)
}

/// Converts one value; `code_system` is the parameter's implied system of `code` values,
/// and `of_type` receives the Identifier `:of-type` tokens.
pub(super) fn values(
    v: &Input<'_>,
    code_system: Option<&str>,
    out: &mut Vec<IndexValue>,
    of_type: &mut Vec<IndexValue>,
) {
    match v.json {
        Value::String(s) => {
            let system = match v.ty {
                Some("code") => code_system.map(str::to_string),
                _ => None,
            };
            out.push(token(system, Some(s.clone()), None))
        }
        Value::Bool(b) => out.push(token(None, Some(b.to_string()), None)),
        Value::Number(n) => out.push(token(None, Some(n.to_string()), None)),
        Value::Object(o) => match v.ty.unwrap_or("") {
            "Coding" => out.push(coding(o, None)),
            "CodeableConcept" => {
                let text = o.get("text").and_then(Value::as_str);
                let codings = o.get("coding").and_then(Value::as_array);
                let mut any = false;
                for c in codings.into_iter().flatten().filter_map(Value::as_object) {
                    out.push(coding(c, text));
                    any = true;
                }
                if !any {
                    if let Some(t) = text {
                        out.push(token(None, None, Some(normalize(t))));
                    }
                }
            }
            "Identifier" => {
                let text = o
                    .get("type")
                    .and_then(|t| t.get("text"))
                    .and_then(Value::as_str)
                    .map(normalize);
                if o.contains_key("value") || o.contains_key("system") {
                    out.push(token(str_of(o, "system"), str_of(o, "value"), text));
                }
                if let Some(value) = o.get("value").and_then(Value::as_str) {
                    let codings = o
                        .get("type")
                        .and_then(|t| t.get("coding"))
                        .and_then(Value::as_array);
                    for c in codings.into_iter().flatten().filter_map(Value::as_object) {
                        if let Some(code) = c.get("code").and_then(Value::as_str) {
                            of_type.push(token(
                                str_of(c, "system"),
                                Some(format!("{code}|{value}")),
                                None,
                            ));
                        }
                    }
                }
            }
            "ContactPoint" => {
                if let Some(value) = str_of(o, "value") {
                    out.push(token(None, Some(value), None));
                }
            }
            _ => {}
        },
        _ => {}
    }
}
