//! Extraction of a resource's index entries: every search parameter of its type is
//! evaluated and each value is converted as the parameter's type says (one module per
//! type, as the search page defines them). Also computes the Patient compartments the
//! resource belongs to.

pub mod date;
pub mod quantity;
pub mod reference;
pub mod string;
pub mod token;
pub mod uri;

use std::borrow::Cow;

use oxehr_fhir::Definitions;
use oxehr_fhirpath::{Item, Node};
use serde_json::Value;

use crate::index::{IndexEntry, IndexValue};
use crate::registry::{ParamKind, Registry, SearchParam};

/// What a resource contributes to the index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    /// One entry per (parameter, distinct value).
    pub entries: Vec<IndexEntry>,
    /// Ids of the Patients whose compartment holds this resource (never the resource's
    /// own id: the write path adds a Patient to its own compartment).
    pub patient_compartment: Vec<String>,
}

/// Why a resource could not be indexed. All are `invalid` in the project's categories.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExtractError {
    #[error("not a resource: the JSON has no resourceType")]
    NotAResource,
    #[error("unknown resource type {0}")]
    UnknownType(String),
    #[error("search parameter {param}: {source}")]
    Expression {
        param: String,
        #[source]
        source: oxehr_fhirpath::Error,
    },
}

/// A value to convert: the JSON it is and its FHIR type, when known.
pub(crate) struct Input<'a> {
    pub json: &'a Value,
    pub ty: Option<&'a str>,
}

/// Extracts the index entries and Patient compartment membership of `resource`.
pub fn extract(resource: &Value) -> Result<Extracted, ExtractError> {
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or(ExtractError::NotAResource)?;
    if !Definitions::r4().is_resource_type(ty) {
        return Err(ExtractError::UnknownType(ty.to_string()));
    }
    let registry = Registry::r4();
    let mut out = Extracted::default();
    let mut values = Vec::new();
    let compartment_params = Definitions::r4()
        .compartment("Patient")
        .and_then(|c| c.get(ty));
    for param in registry.params(ty) {
        values.clear();
        param_values(param, resource, &mut values)?;
        let in_compartment = compartment_params.is_some_and(|c| c.contains(&param.code));
        let start = out.entries.len();
        for v in values.drain(..) {
            if out.entries[start..].iter().any(|e| e.value == v) {
                continue;
            }
            if in_compartment {
                if let IndexValue::Reference {
                    target_type: Some(t),
                    target_id: Some(id),
                    ..
                } = &v
                {
                    let own =
                        ty == "Patient" && resource.get("id").and_then(Value::as_str) == Some(id);
                    if t == "Patient" && !own && !out.patient_compartment.contains(id) {
                        out.patient_compartment.push(id.clone());
                    }
                }
            }
            out.entries.push(IndexEntry {
                param: param.key,
                value: v,
            });
        }
    }
    Ok(out)
}

/// The values of one parameter on `resource`, converted to its type (not deduplicated).
pub fn param_values(
    param: &SearchParam,
    resource: &Value,
    out: &mut Vec<IndexValue>,
) -> Result<(), ExtractError> {
    let Some(expr) = &param.expression else {
        return Ok(());
    };
    if param.kind == ParamKind::Special {
        return Ok(());
    }
    let err = |source| ExtractError::Expression {
        param: param.code.clone(),
        source,
    };
    let items = expr.evaluate(resource).map_err(err)?;
    if param.kind != ParamKind::Composite {
        for item in &items {
            convert(param.kind, &param.targets, item, out);
        }
        return Ok(());
    }
    for item in &items {
        // Cartesian product of the components' values on this item.
        let mut combos: Vec<Vec<IndexValue>> = vec![Vec::new()];
        for c in &param.components {
            let mut vals = Vec::new();
            for ci in c.expression.evaluate_on(resource, item).map_err(err)? {
                convert(c.kind, &[], &ci, &mut vals);
            }
            let mut next = Vec::with_capacity(combos.len() * vals.len());
            for combo in &combos {
                for v in &vals {
                    let mut c = combo.clone();
                    c.push(v.clone());
                    next.push(c);
                }
            }
            combos = next;
            if combos.is_empty() {
                break;
            }
        }
        out.extend(
            combos
                .into_iter()
                .map(|parts| IndexValue::Composite { parts }),
        );
    }
    Ok(())
}

/// Converts one FHIRPath result item to index values of `kind`.
fn convert(kind: ParamKind, targets: &[String], item: &Item<'_>, out: &mut Vec<IndexValue>) {
    let owned;
    let input = match item {
        Item::Node(Node {
            value, type_code, ..
        }) => Input {
            json: value,
            ty: *type_code,
        },
        other => {
            // System values (from functions such as `toString()`): index their text.
            owned = match other.to_text() {
                Some(t) => Value::String(t),
                None => return,
            };
            Input {
                json: &owned,
                ty: None,
            }
        }
    };
    match kind {
        ParamKind::String => string::values(&input, out),
        ParamKind::Token => token::values(&input, out),
        ParamKind::Date => date::values(&input, out),
        ParamKind::Number => quantity::number(&input, out),
        ParamKind::Quantity => quantity::quantity(&input, out),
        ParamKind::Reference => reference::values(&input, targets, out),
        ParamKind::Uri => uri::values(&input, out),
        ParamKind::Composite | ParamKind::Special => {}
    }
}

/// Normalizes a string as string parameters index it (for the query side).
pub fn normalize(s: &str) -> Cow<'_, str> {
    Cow::Owned(string::normalize(s))
}
