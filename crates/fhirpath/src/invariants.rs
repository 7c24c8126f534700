//! The FHIRPath invariants of the R4 core definitions (`ElementDefinition.constraint`),
//! evaluated over a resource: `obs-6` (no `dataAbsentReason` beside a value), `per-1`
//! (a Period's start is not after its end), `qty-3` (a unit code has a system), and the
//! other 197 of severity error that `oxehr_fhir::validate` does not check in code.
//!
//! Each invariant is compiled once from the embedded definitions. [`check`] walks the
//! resource with the model's types and evaluates, on every value, the invariants of its
//! element (`Observation.referenceRange` carries obs-3) and of its type (every `Period`
//! carries per-1), with the value as the context item and the resource it belongs to as
//! `%resource`. A resource nested in a Bundle entry, a Parameters value or `contained`
//! is checked as a resource of its own.
//!
//! Decisions where the spec leaves room:
//! - An invariant holds unless it evaluates to `false`. An empty result counts as
//!   holding: the expressions are written to give a boolean, and an empty one comes
//!   from a value the structural validator already judges.
//! - An invariant that cannot be evaluated on a value (an evaluation error, such as a
//!   singleton expected where the data has several) is not reported here:
//!   [`evaluation_errors`] lists them, and the tests require none over the official
//!   examples and the Synthea records.
//! - Invariants of profiles (`SimpleQuantity`'s sqty-1, `MoneyQuantity`) are not
//!   applied: a core element typed `Quantity` with that profile is checked as a Quantity.
//! - Warnings (`dom-6` "should have narrative", and 33 more) are not evaluated.
//! - One R4 expression says something other than its own words under FHIRPath's type
//!   rules, and is read as its words say ([`ERRATA`]).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use oxehr_fhir::definitions::ElementDef;
use oxehr_fhir::{Definitions, Issue, IssueCode};
use serde_json::Value;

use crate::eval::{companion_of, is_primitive, typed_node};
use crate::model::{self, Member, Resolved};
use crate::{Expr, Item, Node};

/// One compiled invariant.
struct Invariant {
    key: &'static str,
    human: &'static str,
    expr: Expr,
}

struct Table {
    /// By element path (`Observation.referenceRange`) or type name (`Period`, whose
    /// root element carries the type's invariants).
    by_path: HashMap<&'static str, Vec<Invariant>>,
    /// Contexts (type names and backbone element paths) under which some value may
    /// carry an invariant, or a resource may be nested: the walk skips the others
    /// (a `Coding`, `Meta`, `HumanName`…) without reading them.
    relevant: HashSet<&'static str>,
    /// Invariants whose expression this engine does not compile, with the reason.
    uncompiled: Vec<(&'static str, String)>,
}

/// Where the children of `el` are defined: its type names, its own path for an inline
/// (backbone) element, the path it refers to for a content reference; `None` for a
/// nested resource.
fn child_contexts(el: &'static ElementDef) -> Vec<Option<&'static str>> {
    if let Some(cref) = &el.content_reference {
        return vec![Some(cref.as_str())];
    }
    el.types
        .iter()
        .map(|t| match t.code.as_str() {
            "BackboneElement" | "Element" => Some(el.path.as_str()),
            "Resource" | "DomainResource" => None,
            code => Some(code),
        })
        .collect()
}

/// The contexts under which an invariant may apply: those that carry one themselves or
/// whose elements do, then, to a fixed point, those with a child context already found
/// (the type graph has cycles: `Identifier.assigner` is a Reference, which has an
/// `identifier`). A context holding a nested resource counts, since the resource is
/// checked in turn.
fn relevant_contexts(
    defs: &'static Definitions,
    by_path: &HashMap<&'static str, Vec<Invariant>>,
) -> HashSet<&'static str> {
    let mut relevant: HashSet<&'static str> = by_path.keys().copied().collect();
    let mut edges: Vec<(&'static str, &'static str)> = Vec::new();
    for name in defs.type_names() {
        let Some(t) = defs.type_def(name) else {
            continue;
        };
        for el in &t.elements {
            let Some((parent, _)) = el.path.rsplit_once('.') else {
                continue;
            };
            // The parent's context is its path (the type's name at the root).
            let Some(parent) = defs.element_at(parent).map(|p| p.path.as_str()) else {
                continue;
            };
            if by_path.contains_key(el.path.as_str()) {
                relevant.insert(parent);
            }
            // Every element may have extensions, and an extension's value may be a
            // Period: through them every context would count. The walk looks for
            // extensions in the data instead (`has_extension`).
            if matches!(el.name(), "extension" | "modifierExtension") {
                continue;
            }
            for c in child_contexts(el) {
                match c {
                    Some(c) => edges.push((parent, c)),
                    None => {
                        relevant.insert(parent);
                    }
                }
            }
        }
    }
    loop {
        let before = relevant.len();
        for (parent, child) in &edges {
            if relevant.contains(child) {
                relevant.insert(parent);
            }
        }
        if relevant.len() == before {
            return relevant;
        }
    }
}

/// Invariants whose published R4 expression contradicts their own words, with the
/// expression evaluated instead. que-7 says "If the operator is 'exists', the value must
/// be a boolean", but tests `answer is Boolean`: `System.Boolean`, which a FHIR
/// `boolean` element is not (the official FHIRPath suite: `Patient.active.is(Boolean)`
/// is false, testType12), so every correct `exists` condition would break it, as the
/// official example Questionnaire-bb does. The Java validator passes it only because it
/// compares type names ignoring case.
pub const ERRATA: &[(&str, &str)] = &[("que-7", "operator = 'exists' implies (answer is boolean)")];

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let defs = Definitions::r4();
        let mut by_path: HashMap<&'static str, Vec<Invariant>> = HashMap::new();
        let mut uncompiled = Vec::new();
        for name in defs.type_names() {
            let Some(t) = defs.type_def(name) else {
                continue;
            };
            for el in &t.elements {
                for c in &el.constraints {
                    let src = ERRATA
                        .iter()
                        .find(|(k, _)| *k == c.key)
                        .map_or(c.expression.as_str(), |(_, e)| e);
                    match Expr::parse(src) {
                        Ok(expr) => {
                            let list = by_path.entry(el.path.as_str()).or_default();
                            if !list.iter().any(|i| i.key == c.key) {
                                list.push(Invariant {
                                    key: &c.key,
                                    human: &c.human,
                                    expr,
                                });
                            }
                        }
                        Err(e) => uncompiled.push((c.key.as_str(), e.to_string())),
                    }
                }
            }
        }
        let relevant = relevant_contexts(defs, &by_path);
        Table {
            by_path,
            relevant,
            uncompiled,
        }
    })
}

/// How many invariants are evaluated, and those that could not be compiled (key,
/// reason). Both come from the embedded definitions.
pub fn coverage() -> (usize, &'static [(&'static str, String)]) {
    let t = table();
    (t.by_path.values().map(Vec::len).sum(), &t.uncompiled)
}

/// The invariants `resource` breaks, as errors of code `invariant` located at the value
/// that breaks them (`Observation.referenceRange[0]`), each naming the rule's key and
/// the spec's words for it. An empty result means every invariant holds.
pub fn check(resource: &Value) -> Vec<Issue> {
    let mut w = Walk::default();
    w.root(resource);
    w.issues
}

/// Invariants that could not be evaluated on a value of `resource`: `key at location:
/// error`. For tests; [`check`] passes over them.
pub fn evaluation_errors(resource: &Value) -> Vec<String> {
    let mut w = Walk::default();
    w.root(resource);
    w.errors
}

/// One step of the location of the value being walked.
enum Seg {
    /// The resource type at the root, or a property.
    Key(&'static str),
    /// An array index.
    Index(usize),
    /// A choice element and its type (`value.ofType(Quantity)`).
    Choice(&'static str, &'static str),
}

#[derive(Default)]
struct Walk {
    loc: Vec<Seg>,
    issues: Vec<Issue>,
    errors: Vec<String>,
}

impl Walk {
    fn root(&mut self, resource: &Value) {
        let Some(rt) = resource_type(resource) else {
            return;
        };
        self.loc.push(Seg::Key(rt));
        self.resource(resource, rt);
    }

    /// The location of the value being walked, as a FHIRPath expression.
    fn location(&self) -> String {
        let mut out = String::with_capacity(48);
        for seg in &self.loc {
            match seg {
                Seg::Key(k) => push_key(&mut out, k),
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
                Seg::Choice(name, ty) => {
                    push_key(&mut out, name);
                    out.push_str(&format!(".ofType({ty})"));
                }
            }
        }
        out
    }

    fn resource(&mut self, res: &Value, rt: &'static str) {
        self.apply(rt, res, &Item::Node(Node::resource(res)));
        self.children(res, rt, res);
    }

    /// The children of an object whose elements are defined at `context`.
    fn children(&mut self, value: &Value, context: &'static str, root: &Value) {
        let Value::Object(obj) = value else {
            return;
        };
        let table = table();
        for (key, v) in obj {
            if key == "resourceType" {
                continue;
            }
            if let Some(name) = key.strip_prefix('_') {
                // A primitive's companion (`_birthDate`): its extensions' values may
                // carry rules too.
                if let (Member::Plain(r), true) = (model::member(context, name), has_extension(v)) {
                    self.loc.push(seg(r));
                    self.companion(v, root);
                    self.loc.pop();
                }
                continue;
            }
            // An element the model does not know is the structural validator's to report.
            let Member::Plain(r) = model::member(context, key) else {
                continue;
            };
            let r = *r;
            let el = r.element;
            if !r.is_resource
                && !table.relevant.contains(r.context)
                && !table.by_path.contains_key(el.path.as_str())
                && !has_extension(v)
            {
                continue;
            }
            self.loc.push(seg(&r));
            let primitive = r.type_code.is_some_and(is_primitive);
            let companion = if primitive {
                companion_of(obj, key)
            } else {
                None
            };
            match v {
                Value::Array(items) => {
                    let comps = companion.and_then(Value::as_array);
                    for (i, it) in items.iter().enumerate() {
                        self.loc.push(Seg::Index(i));
                        let c = comps.and_then(|c| c.get(i)).filter(|c| !c.is_null());
                        self.value(it, c, r, root);
                        self.loc.pop();
                    }
                }
                _ => self.value(v, companion, r, root),
            }
            self.loc.pop();
        }
    }

    /// A primitive's companion object (its `id` and `extension`), or an array of them.
    fn companion(&mut self, v: &Value, root: &Value) {
        match v {
            Value::Array(items) => {
                for (i, it) in items.iter().enumerate() {
                    self.loc.push(Seg::Index(i));
                    self.children(it, "Element", root);
                    self.loc.pop();
                }
            }
            _ => self.children(v, "Element", root),
        }
    }

    fn value(&mut self, v: &Value, companion: Option<&Value>, r: Resolved, root: &Value) {
        if v.is_null() {
            return;
        }
        if r.is_resource {
            if let Some(rt) = resource_type(v) {
                self.resource(v, rt);
            }
            return;
        }
        let focus = Item::Node(typed_node(v, companion, r));
        self.apply(r.element.path.as_str(), root, &focus);
        if r.context != r.element.path {
            self.apply(r.context, root, &focus);
        }
        if v.is_object() {
            self.children(v, r.context, root);
        }
    }

    fn apply(&mut self, path: &str, root: &Value, focus: &Item<'_>) {
        let Some(list) = table().by_path.get(path) else {
            return;
        };
        for inv in list {
            match inv.expr.evaluate_on(root, focus) {
                Ok(items) => {
                    if matches!(items.as_slice(), [Item::Boolean(false)]) {
                        self.issues.push(
                            Issue::error(
                                IssueCode::Invariant,
                                format!("{}: {}", inv.key, inv.human),
                            )
                            .at(self.location()),
                        );
                    }
                }
                Err(e) => self
                    .errors
                    .push(format!("{} at {}: {e}", inv.key, self.location())),
            }
        }
    }
}

/// The location step of an element: its name, with its type for a choice element.
fn seg(r: &Resolved) -> Seg {
    let el = r.element;
    if el.is_choice() {
        Seg::Choice(el.name(), r.type_code.unwrap_or("Element"))
    } else {
        Seg::Key(el.name())
    }
}

/// True when an extension appears anywhere in `v` (its values may carry rules that the
/// definitions of `v`'s own type do not lead to).
fn has_extension(v: &Value) -> bool {
    match v {
        Value::Object(obj) => obj
            .iter()
            .any(|(k, x)| k == "extension" || k == "modifierExtension" || has_extension(x)),
        Value::Array(items) => items.iter().any(has_extension),
        _ => false,
    }
}

fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

fn resource_type(v: &Value) -> Option<&'static str> {
    let rt = v.get("resourceType")?.as_str()?;
    Definitions::r4()
        .is_resource_type(rt)
        .then(|| model::static_type_name(rt))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(v: &Value) -> Vec<String> {
        check(v)
            .into_iter()
            .map(|i| format!("{} {}", i.expression.join(","), &i.diagnostics[..5]))
            .collect()
    }

    #[test]
    fn every_error_invariant_of_the_definitions_compiles() {
        let (n, uncompiled) = coverage();
        assert!(uncompiled.is_empty(), "{uncompiled:?}");
        // 200 in the R4 core definitions, less none: the packer's count.
        assert_eq!(n, 200);
    }

    #[test]
    fn que_7_reads_as_its_words_say() {
        let q = |answer: Value| {
            let mut when = json!({"question": "q1", "operator": "exists"});
            if let (Value::Object(w), Value::Object(a)) = (&mut when, answer) {
                w.extend(a);
            }
            json!({"resourceType": "Questionnaire", "status": "active", "item": [
                {"linkId": "q1", "type": "boolean"},
                {"linkId": "q2", "type": "string", "enableWhen": [when]}]})
        };
        assert!(keys(&q(json!({"answerBoolean": true}))).is_empty());
        assert_eq!(
            keys(&q(json!({"answerString": "yes"}))),
            ["Questionnaire.item[1].enableWhen[0] que-7"]
        );
    }

    #[test]
    fn the_value_that_breaks_a_rule_is_named() {
        // per-1: "If present, start SHALL have a lower value than end".
        let enc = json!({"resourceType": "Encounter", "status": "finished",
            "class": {"code": "AMB"},
            "period": {"start": "2020-02-01", "end": "2020-01-01"}});
        assert_eq!(keys(&enc), ["Encounter.period per-1"]);
        // obs-6 on the resource, qty-3 inside a choice element.
        let obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"},
            "valueQuantity": {"value": 1, "code": "mg"},
            "dataAbsentReason": {"text": "asked"}});
        assert_eq!(
            keys(&obs),
            [
                "Observation obs-6",
                "Observation.value.ofType(Quantity) qty-3"
            ]
        );
        // Inside a contained resource and a bundle entry, located through them.
        let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "contact": [{}]}}]});
        assert_eq!(keys(&b), ["Bundle.entry[0].resource.contact[0] pat-1"]);
    }

    #[test]
    fn rules_deep_in_types_are_reached() {
        // A Period inside an Identifier inside a Reference, and inside an extension's
        // value: the walk skips what holds no rule, not what leads to one.
        let late = json!({"start": "2020-02-01", "end": "2020-01-01"});
        let obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"},
            "subject": {"identifier": {"value": "1", "period": late}},
            "extension": [{"url": "http://example.org/x", "valuePeriod": late}],
            "category": [{"coding": [{"code": "c",
                "extension": [{"url": "http://example.org/y", "valuePeriod": late}]}]}],
            "issued": "2020-01-01T00:00:00Z",
            "_issued": {"extension": [{"url": "http://example.org/z", "valuePeriod": late}]}});
        assert_eq!(
            keys(&obs),
            [
                "Observation.subject.identifier.period per-1",
                "Observation.extension[0].value.ofType(Period) per-1",
                "Observation.category[0].coding[0].extension[0].value.ofType(Period) per-1",
                "Observation.issued.extension[0].value.ofType(Period) per-1"
            ]
        );
    }
}
