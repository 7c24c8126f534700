//! The values an expression yields: nodes of the JSON tree (typed by the FHIR model) and
//! FHIRPath system values (Boolean, Integer, Decimal, String, Date, DateTime, Time,
//! Quantity), plus the conversion of a primitive node to its system value.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use crate::temporal::{Kind, Temporal};

/// A decimal as FHIRPath sees it: its value and the number of digits written after the
/// point (`1.50` → scale 2), so precision survives display and equivalence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decimal {
    pub value: f64,
    pub scale: u8,
}

impl Decimal {
    pub fn parse(text: &str) -> Option<Decimal> {
        let value: f64 = text.trim().parse().ok()?;
        if !value.is_finite() {
            return None;
        }
        let t = text.trim();
        let mantissa = t.split(['e', 'E']).next().unwrap_or(t);
        let scale = mantissa.split_once('.').map_or(0, |(_, f)| f.len());
        Some(Decimal {
            value,
            scale: u8::try_from(scale).unwrap_or(u8::MAX),
        })
    }
    pub fn from_int(v: i64) -> Decimal {
        Decimal {
            value: v as f64,
            scale: 0,
        }
    }
    pub fn from_f64(value: f64) -> Decimal {
        // Shortest representation that round-trips, capped at 8 places.
        let s = format!("{}", (value * 1e8).round() / 1e8);
        Decimal::parse(&s).unwrap_or(Decimal { value, scale: 8 })
    }
}

impl std::ops::Neg for Decimal {
    type Output = Decimal;
    fn neg(self) -> Decimal {
        Decimal {
            value: -self.value,
            scale: self.scale,
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.*}", usize::from(self.scale), self.value)
    }
}

/// A value inside the resource's JSON tree.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    pub value: &'a Value,
    /// FHIR type of the value: `HumanName`, `Quantity`, `dateTime`, `code`, `Reference`,
    /// `Patient`, `BackboneElement`… `None` where the model does not say.
    pub type_code: Option<&'static str>,
    /// Where the node's children are defined (a type name or an element path); `None`
    /// when unknown, in which case children are found by JSON key alone.
    pub context: Option<&'static str>,
    /// The `_name` companion of a primitive value (its `id` and `extension`).
    pub companion: Option<&'a Value>,
}

impl<'a> Node<'a> {
    /// A node for a resource (the root, a contained or a bundled resource), typed by its
    /// `resourceType`.
    pub fn resource(value: &'a Value) -> Node<'a> {
        let ty = value
            .get("resourceType")
            .and_then(Value::as_str)
            .and_then(crate::model::static_type_name);
        Node {
            value,
            type_code: ty,
            context: ty,
            companion: None,
        }
    }
}

/// One item of a FHIRPath collection.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    Node(Node<'a>),
    Boolean(bool),
    Integer(i64),
    Decimal(Decimal),
    String(Cow<'a, str>),
    Date(Temporal),
    DateTime(Temporal),
    Time(Temporal),
    Quantity { value: Decimal, unit: Cow<'a, str> },
}

impl<'a> Item<'a> {
    /// The system value of a primitive node (a `dateTime` node → `DateTime`, a `code` →
    /// `String`, a Quantity → `Quantity`); other items are returned as they are.
    pub fn to_system(&self) -> Item<'a> {
        let Item::Node(n) = self else {
            return self.clone();
        };
        let ty = n.type_code.unwrap_or("");
        match n.value {
            Value::Bool(b) => Item::Boolean(*b),
            Value::Number(num) => {
                let text = num.to_string();
                if matches!(ty, "decimal") || text.contains(['.', 'e', 'E']) {
                    Decimal::parse(&text).map_or(self.clone(), Item::Decimal)
                } else {
                    match text.parse::<i64>() {
                        Ok(i) => Item::Integer(i),
                        Err(_) => Decimal::parse(&text).map_or(self.clone(), Item::Decimal),
                    }
                }
            }
            Value::String(s) => match ty {
                "date" => Temporal::parse_date(s).map_or(self.clone(), Item::Date),
                "dateTime" | "instant" => {
                    Temporal::parse_datetime(s).map_or(self.clone(), Item::DateTime)
                }
                "time" => Temporal::parse_time(s).map_or(self.clone(), Item::Time),
                _ => Item::String(Cow::Borrowed(s.as_str())),
            },
            Value::Object(o) if is_quantity_type(ty) => {
                let Some(value) = o.get("value").and_then(number_decimal) else {
                    return self.clone();
                };
                let ucum =
                    o.get("system").and_then(Value::as_str) == Some("http://unitsofmeasure.org");
                let unit = o
                    .get("code")
                    .filter(|_| ucum)
                    .or_else(|| o.get("unit"))
                    .or_else(|| o.get("code"))
                    .and_then(Value::as_str)
                    .unwrap_or("1");
                Item::Quantity {
                    value,
                    unit: Cow::Borrowed(unit),
                }
            }
            _ => self.clone(),
        }
    }

    /// The item as a string, for string functions (strings and primitive string nodes).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Item::String(s) => Some(s),
            Item::Node(n) => n.value.as_str(),
            _ => None,
        }
    }

    /// The FHIRPath type name: `(namespace, name)`.
    pub fn type_name(&self) -> (&'static str, &'static str) {
        match self {
            Item::Node(n) => ("FHIR", n.type_code.unwrap_or("Element")),
            Item::Boolean(_) => ("System", "Boolean"),
            Item::Integer(_) => ("System", "Integer"),
            Item::Decimal(_) => ("System", "Decimal"),
            Item::String(_) => ("System", "String"),
            Item::Date(_) => ("System", "Date"),
            Item::DateTime(_) => ("System", "DateTime"),
            Item::Time(_) => ("System", "Time"),
            Item::Quantity { .. } => ("System", "Quantity"),
        }
    }

    /// Text of a system value (`toString()`); `None` for complex nodes.
    pub fn to_text(&self) -> Option<String> {
        Some(match self.to_system() {
            Item::Boolean(b) => b.to_string(),
            Item::Integer(i) => i.to_string(),
            Item::Decimal(d) => d.to_string(),
            Item::String(s) => s.into_owned(),
            Item::Date(t) => t.format(Kind::Date),
            Item::DateTime(t) => t.format(Kind::DateTime),
            Item::Time(t) => t.format(Kind::Time),
            Item::Quantity { value, unit } => {
                if crate::parser::is_calendar_unit(&unit) {
                    format!("{value} {unit}")
                } else {
                    format!("{value} '{unit}'")
                }
            }
            Item::Node(_) => return None,
        })
    }
}

pub(crate) fn number_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => Decimal::parse(&n.to_string()),
        _ => None,
    }
}

pub(crate) fn is_quantity_type(ty: &str) -> bool {
    matches!(
        ty,
        "Quantity" | "Age" | "Duration" | "Distance" | "Count" | "SimpleQuantity" | "MoneyQuantity"
    )
}
