//! Extraction of a resource's index entries: every search parameter of its type is
//! evaluated and each value is converted as the parameter's type says (one module per
//! type, as the search page defines them). Also computes the Patient compartments the
//! resource belongs to.
//!
//! Beyond the parameters' own values: the full text of `_text` and `_content` (one
//! [`IndexValue::Text`] each, see [`text`]), and for token parameters with typed
//! Identifiers the `:of-type` tokens, under the derived key
//! `ParamKey::of(type, "{code}:of-type")` (see [`token`]).

pub mod date;
pub mod quantity;
pub mod reference;
pub mod string;
pub mod text;
pub mod token;
pub mod uri;

use std::borrow::Cow;

use oxehr_fhir::Definitions;
use oxehr_fhirpath::{Item, Node};
use serde_json::Value;

use crate::index::{IndexEntry, IndexValue, ParamKey};
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
    let mut of_type = Vec::new();
    let mut narrative = None;
    for param in registry.params(ty) {
        if !param.is_indexed() {
            // A union of other parameters, or another narrowed to one target type: its
            // values are theirs, indexed under them.
            continue;
        }
        if param.expression.is_none() {
            // `_text` and `_content` (string parameters without an expression), `_query`.
            let content = match param.code.as_str() {
                "_text" => narrative
                    .get_or_insert_with(|| text::narrative(resource))
                    .clone(),
                "_content" => {
                    let n = narrative.get_or_insert_with(|| text::narrative(resource));
                    text::content(resource, n.as_deref())
                }
                _ => None,
            };
            if let Some(content) = content {
                out.entries.push(IndexEntry {
                    param: param.key,
                    value: IndexValue::Text { content },
                });
            }
            continue;
        }
        values.clear();
        of_type.clear();
        values_of(param, resource, &mut values, &mut of_type)?;
        // The compartment may name the parameter or one narrowed from it (Encounter's
        // `patient` is its `subject` where that is a Patient; only Patients join it).
        let in_compartment = compartment_params.is_some_and(|c| {
            c.contains(&param.code) || param.narrowed_into.iter().any(|n| c.contains(n))
        });
        let start = out.entries.len();
        for v in values.drain(..) {
            let v = v.bounded();
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
        if !of_type.is_empty() {
            let key = ParamKey::of(ty, &format!("{}:of-type", param.code));
            let start = out.entries.len();
            for v in of_type.drain(..) {
                let v = v.bounded();
                if !out.entries[start..].iter().any(|e| e.value == v) {
                    out.entries.push(IndexEntry {
                        param: key,
                        value: v,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The ids of the Patients whose compartment holds `resource`, a Patient's own id
/// included, sorted: what the access policy checks a resource against. Evaluates only
/// the compartment's parameters.
pub fn patient_compartment(resource: &Value) -> Result<Vec<String>, ExtractError> {
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or(ExtractError::NotAResource)?;
    let mut out = Vec::new();
    if ty == "Patient" {
        if let Some(id) = resource.get("id").and_then(Value::as_str) {
            out.push(id.to_string());
        }
    }
    let Some(codes) = Definitions::r4()
        .compartment("Patient")
        .and_then(|c| c.get(ty))
    else {
        out.sort();
        out.dedup();
        return Ok(out);
    };
    let registry = Registry::r4();
    let mut values = Vec::new();
    for code in codes {
        let Some(param) = registry.param(ty, code) else {
            continue;
        };
        values.clear();
        param_values(param, resource, &mut values)?;
        for v in values.drain(..) {
            if let IndexValue::Reference {
                target_type: Some(t),
                target_id: Some(id),
                ..
            } = v
            {
                if t == "Patient" {
                    out.push(id);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The values of one parameter on `resource`, converted to its type (not deduplicated).
/// Full text (`_text`, `_content`) and `:of-type` entries are made by [`extract`] only.
pub fn param_values(
    param: &SearchParam,
    resource: &Value,
    out: &mut Vec<IndexValue>,
) -> Result<(), ExtractError> {
    values_of(param, resource, out, &mut Vec::new())
}

/// [`param_values`], with the `:of-type` tokens of Identifiers in `of_type`.
fn values_of(
    param: &SearchParam,
    resource: &Value,
    out: &mut Vec<IndexValue>,
    of_type: &mut Vec<IndexValue>,
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
        let to = Target {
            kind: param.kind,
            targets: &param.targets,
            code_system: param.code_system.as_deref(),
        };
        for item in &items {
            convert(&to, item, out, of_type);
        }
        return Ok(());
    }
    let mut ignored = Vec::new();
    for item in &items {
        // Cartesian product of the components' values on this item.
        let mut combos: Vec<Vec<IndexValue>> = vec![Vec::new()];
        for c in &param.components {
            let to = Target {
                kind: c.kind,
                targets: &[],
                code_system: None,
            };
            let mut vals = Vec::new();
            for ci in c.expression.evaluate_on(resource, item).map_err(err)? {
                convert(&to, &ci, &mut vals, &mut ignored);
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

/// What a value is converted to: the parameter's type and what its conversion needs.
struct Target<'p> {
    kind: ParamKind,
    /// Reference target types.
    targets: &'p [String],
    /// The implied system of `code` token values.
    code_system: Option<&'p str>,
}

/// Converts one FHIRPath result item to index values of `to.kind`.
fn convert(
    to: &Target<'_>,
    item: &Item<'_>,
    out: &mut Vec<IndexValue>,
    of_type: &mut Vec<IndexValue>,
) {
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
    match to.kind {
        ParamKind::String => string::values(&input, out),
        ParamKind::Token => token::values(&input, to.code_system, out, of_type),
        ParamKind::Date => date::values(&input, out),
        ParamKind::Number => quantity::number(&input, out),
        ParamKind::Quantity => quantity::quantity(&input, out),
        ParamKind::Reference => reference::values(&input, to.targets, out),
        ParamKind::Uri => uri::values(&input, out),
        ParamKind::Composite | ParamKind::Special => {}
    }
}

/// Normalizes a string as string parameters index it (for the query side).
pub fn normalize(s: &str) -> Cow<'_, str> {
    Cow::Owned(string::normalize(s))
}
