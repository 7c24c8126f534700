//! A FHIRPath result item as the JSON value of a column (ViewDefinition, §"Column types"):
//! a node of the resource is its JSON as written (a `decimal` keeps its digits, a
//! `dateTime` its text); a value FHIRPath computed is written the way FHIR writes that
//! type (Boolean, Integer and Decimal as JSON numbers and booleans, Date/DateTime/Time in
//! FHIR's text form, a Quantity as FHIRPath's `value 'unit'` text).

use std::str::FromStr;

use oxehr_fhirpath::temporal::Kind;
use oxehr_fhirpath::Item;
use serde_json::{Number, Value};

pub(crate) fn to_json(item: &Item<'_>) -> Value {
    match item {
        Item::Node(n) => n.value.clone(),
        Item::Boolean(b) => Value::Bool(*b),
        Item::Integer(i) => Value::Number((*i).into()),
        Item::Decimal(d) => Number::from_str(&d.to_string())
            .ok()
            .or_else(|| Number::from_f64(d.value))
            .map_or(Value::Null, Value::Number),
        Item::String(s) => Value::String(s.to_string()),
        Item::Date(t) => Value::String(t.format(Kind::Date)),
        Item::DateTime(t) => Value::String(t.format(Kind::DateTime)),
        Item::Time(t) => Value::String(t.format(Kind::Time)),
        Item::Quantity { .. } => item.to_text().map_or(Value::Null, Value::String),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxehr_fhirpath::Expr;
    use serde_json::json;

    #[test]
    fn computed_values_are_written_as_fhir_writes_them() {
        let root = json!({"resourceType": "Observation", "valueQuantity": {"value": 1.50}});
        let cases = [
            ("valueQuantity.value", json!(1.50)),
            ("1 + 2", json!(3)),
            ("1.5 + 1.25", json!(2.75)),
            ("true and false", json!(false)),
            ("'a' + 'b'", json!("ab")),
            ("@2020-01-02", json!("2020-01-02")),
            (
                "@2020-01-02T03:04:05.678+01:00",
                json!("2020-01-02T03:04:05.678+01:00"),
            ),
            ("@T10:30", json!("10:30")),
            ("5 'mg'", json!("5 'mg'")),
        ];
        for (src, expected) in cases {
            let items = Expr::parse(src)
                .and_then(|e| e.evaluate(&root))
                .unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(items.len(), 1, "{src}");
            assert_eq!(to_json(&items[0]), expected, "{src}");
        }
    }
}
