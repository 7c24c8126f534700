//! `ViewDefinition.constant`: a named value, written as one `value[x]` of a FHIR
//! primitive type, that paths read as `%name` (ViewDefinition, §"Constants",
//! https://sql-on-fhir.org/ig/StructureDefinition-ViewDefinition.html).
//!
//! Each constant becomes the FHIRPath system value its type maps to (FHIRPath N1, §"Using
//! FHIR types"): string-like types a String, the integer types an Integer, `decimal` a
//! Decimal with its written precision, `date`/`dateTime`/`instant`/`time` the temporal
//! values, so `birthDate = %bd` compares as dates.

use std::borrow::Cow;

use oxehr_fhirpath::{Decimal, Item, Temporal};
use serde_json::Value;

use crate::compile::check_name;
use crate::Error;

/// A compiled constant: its name and value.
#[derive(Debug, Clone)]
pub(crate) struct Constant {
    pub name: String,
    pub value: Item<'static>,
}

/// Compiles `constant[i]` (at `at`).
pub(crate) fn compile(def: &Value, at: &str) -> Result<Constant, Error> {
    let obj = def
        .as_object()
        .ok_or_else(|| Error::definition(at, "a constant must be an object"))?;
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::definition(at, "a constant needs a name"))?;
    check_name(name, at)?;
    let mut values = obj.iter().filter(|(k, _)| k.starts_with("value"));
    let (key, v) = values
        .next()
        .ok_or_else(|| Error::definition(at, format!("constant {name} has no value[x]")))?;
    if values.next().is_some() {
        return Err(Error::definition(
            at,
            format!("constant {name} has more than one value[x]"),
        ));
    }
    let bad = |what: &str| Error::definition(at, format!("constant {name}: {key} {what}"));
    let text = || v.as_str().ok_or_else(|| bad("must be a string"));
    let value = match &key[5..] {
        "String" | "Code" | "Id" | "Uri" | "Url" | "Canonical" | "Oid" | "Uuid" | "Markdown"
        | "Base64Binary" => Item::String(Cow::Owned(text()?.to_string())),
        "Boolean" => Item::Boolean(v.as_bool().ok_or_else(|| bad("must be a boolean"))?),
        "Integer" | "PositiveInt" | "UnsignedInt" | "Integer64" => {
            // integer64 is written as a JSON string (FHIR R5).
            let i = match v {
                Value::String(s) => s.parse().ok(),
                other => other.as_i64(),
            };
            Item::Integer(i.ok_or_else(|| bad("must be an integer"))?)
        }
        "Decimal" => {
            let d = match v {
                Value::Number(n) => Decimal::parse(&n.to_string()),
                _ => None,
            };
            Item::Decimal(d.ok_or_else(|| bad("must be a number"))?)
        }
        "Date" => Item::Date(Temporal::parse_date(text()?).ok_or_else(|| bad("is not a date"))?),
        "DateTime" | "Instant" => Item::DateTime(
            Temporal::parse_datetime(text()?).ok_or_else(|| bad("is not a dateTime"))?,
        ),
        "Time" => Item::Time(Temporal::parse_time(text()?).ok_or_else(|| bad("is not a time"))?),
        _ => return Err(bad("is not a primitive type a constant may have")),
    };
    Ok(Constant {
        name: name.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_primitive_type_becomes_its_system_value() {
        let cases = [
            (json!({"name": "a", "valueString": "x"}), "x"),
            (json!({"name": "a", "valueCode": "female"}), "female"),
            (json!({"name": "a", "valueBoolean": true}), "true"),
            (json!({"name": "a", "valuePositiveInt": 3}), "3"),
            (
                json!({"name": "a", "valueInteger64": "9007199254740993"}),
                "9007199254740993",
            ),
            // Written digits are kept: 1.20, not 1.2.
            (
                serde_json::from_str(r#"{"name": "a", "valueDecimal": 1.20}"#).expect("json"),
                "1.20",
            ),
            (json!({"name": "a", "valueDate": "1978-03"}), "1978-03"),
            (
                json!({"name": "a", "valueInstant": "2015-02-07T13:28:17.239+02:00"}),
                "2015-02-07T13:28:17.239+02:00",
            ),
            (json!({"name": "a", "valueTime": "18:12:00"}), "18:12:00"),
        ];
        for (def, text) in cases {
            let c = compile(&def, "constant[0]").unwrap_or_else(|e| panic!("{def}: {e}"));
            assert_eq!(c.value.to_text().as_deref(), Some(text), "{def}");
        }
    }

    #[test]
    fn malformed_constants_are_rejected() {
        for def in [
            json!({"name": "a"}),
            json!({"valueString": "x"}),
            json!({"name": "1a", "valueString": "x"}),
            json!({"name": "a", "valueString": "x", "valueCode": "y"}),
            json!({"name": "a", "valueInteger": "one"}),
            json!({"name": "a", "valueDate": "yesterday"}),
            json!({"name": "a", "valueCoding": {"code": "x"}}),
        ] {
            assert!(compile(&def, "constant[0]").is_err(), "{def}");
        }
    }
}
