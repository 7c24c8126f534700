//! Validation of any R4 resource against its core StructureDefinition, driven only by the
//! embedded definitions: nothing here is written per resource type.
//!
//! [`validate`] walks the JSON once and reports every problem as an [`Issue`] whose
//! `expression` is the FHIRPath location (`Patient.name[0].given[1]`,
//! `Observation.value.ofType(Quantity)`, `Bundle.entry[2].resource.subject.reference`).
//! Diagnostics name the rule and the element definition, never the value.
//!
//! Issue codes: `structure` for JSON shape (unknown keys, arrays vs single values, wrong
//! JSON types, empty arrays and objects, nulls), `required` for missing mandatory
//! elements, `value` for primitives that break their type's lexical rules (regex, real
//! calendar, integer range, decimal range, empty strings, control characters, narrative
//! XHTML that is not well-formed or not one XHTML `div`) and for unparseable references,
//! `too-long` for strings over the spec's 1024*1024 characters, `code-invalid` for codes
//! outside an enumerable required value set, `invalid` for unknown resource types and
//! reference targets the element does not allow, and `invariant` for the named spec
//! invariants checked here (dom-2, dom-3, dom-4, dom-5, ref-1, ext-1, ele-1 on contained
//! ids, txt-1 on every narrative). Warnings, which leave the resource valid: txt-2 (a
//! narrative with no content; see `narrative`). The other FHIRPath invariants of the
//! definitions (obs-6, per-1, qty-3 and 197 more) are evaluated by
//! `oxehr_fhirpath::invariants`, which depends on this crate; `oxehr_records::validate`
//! runs both.
//!
//! Decisions where the spec leaves room:
//! - `fhir_comments` was dropped from the JSON format in R4 (STU3 allowed it), so it is an
//!   unknown element like any other.
//! - `Resource.id` is checked as an `id` (the resource page types it so; the 4.0.1
//!   snapshot carries it as `System.String` with fhir-type `string`).
//! - Conditional references (`Patient?identifier=x|1`) are accepted anywhere: the spec
//!   defines them for transactions, and a resource alone does not say where it travels.
//! - dom-3 counts a contained resource as used when some `Reference.reference` or
//!   uri-typed value (uri, url, canonical) in the container, its contained resources
//!   included, is `#id`, or when the contained resource itself refers to `#` (the
//!   container). A `#` reference outside a contained resource breaks ref-1.
//! - Resources nested inside a contained resource are rejected by dom-2 and walked for
//!   structure, but their own dom-3/ref-1 scope is not modelled (the spec's
//!   `%rootResource` is ambiguous for them, which is why dom-2 forbids them).
//! - R4 has no invariant against narrative in contained resources, so `text` is allowed
//!   there.
//! - Required bindings on Coding/CodeableConcept are checked only for codings whose
//!   system is one of the value set's systems; codings from other systems are left to
//!   terminology services.

mod location;
mod model;
mod narrative;
mod primitive;
mod reference;
mod safety;

use serde_json::{Map, Value};

use crate::definitions::Max;
use crate::outcome::{Issue, IssueCode};
use location::{Location, Seg};
use model::{CtxId, Entry, EntryKind, Model};
use reference::Scope;
pub use safety::safety;

/// Validates one resource (and the resources nested in it) against the R4 core
/// definitions. An empty result means valid.
pub fn validate(resource: &Value) -> Vec<Issue> {
    let mut w = Walker {
        model: Model::get(),
        issues: Vec::new(),
        loc: Location::default(),
        scopes: Vec::new(),
        in_contained: None,
    };
    w.resource(resource, None);
    w.issues
}

struct Walker<'a> {
    model: &'static Model,
    issues: Vec<Issue>,
    loc: Location<'a>,
    /// One per resource that can hold contained resources, innermost last.
    scopes: Vec<Scope<'a>>,
    /// Index of the contained resource being walked, if any.
    in_contained: Option<usize>,
}

impl<'a> Walker<'a> {
    fn report(&mut self, code: IssueCode, msg: String) {
        let at = self.loc.render();
        self.issues.push(Issue::error(code, msg).at(at));
    }

    fn report_child(&mut self, code: IssueCode, msg: String, child: &str) {
        let at = self.loc.render_child(child);
        self.issues.push(Issue::error(code, msg).at(at));
    }

    /// A resource at the current location (the root when `contained` is `None` and the
    /// location is empty; else nested in a Bundle, Parameters, or contained in `contained`).
    fn resource(&mut self, v: &'a Value, contained: Option<usize>) {
        let root = self.loc.is_empty();
        let Value::Object(obj) = v else {
            if root {
                self.loc.push(Seg::Key("Resource"));
            }
            self.report(
                IssueCode::Structure,
                "a resource must be a JSON object".into(),
            );
            return;
        };
        let ty = match obj.get("resourceType") {
            Some(Value::String(s)) => s.as_str(),
            other => {
                if root {
                    self.loc.push(Seg::Key("Resource"));
                }
                let (code, msg) = if other.is_some() {
                    (IssueCode::Structure, "resourceType must be a JSON string")
                } else {
                    (IssueCode::Required, "resourceType is missing")
                };
                self.report_child(code, msg.into(), "resourceType");
                return;
            }
        };
        let Some(ctx) = self.model.resource_ctx(ty) else {
            if root {
                self.loc.push(Seg::Key("Resource"));
            }
            self.report_child(
                IssueCode::Invalid,
                "resourceType is not a concrete R4 resource type".into(),
                "resourceType",
            );
            return;
        };
        if root {
            self.loc.push(Seg::Key(ty));
        }
        match contained {
            Some(i) => {
                self.contained_rules(obj);
                let outer = self.in_contained.replace(i);
                self.walk_object(obj, ctx, true);
                self.in_contained = outer;
            }
            None => {
                let outer = self.in_contained.take();
                self.scopes.push(Scope::of(obj));
                self.walk_object(obj, ctx, true);
                if let Some(scope) = self.scopes.pop() {
                    self.unreferenced_contained(&scope);
                }
                self.in_contained = outer;
            }
        }
    }

    /// id required, dom-2, dom-4 and dom-5 on a contained resource.
    fn contained_rules(&mut self, obj: &'a Map<String, Value>) {
        if !obj.contains_key("id") {
            self.report_child(
                IssueCode::Required,
                "a contained resource needs an id to be referenced (ref-1, dom-3)".into(),
                "id",
            );
        }
        if obj.contains_key("contained") {
            self.report_child(
                IssueCode::Invariant,
                "dom-2: a contained resource shall not contain resources".into(),
                "contained",
            );
        }
        if let Some(Value::Object(meta)) = obj.get("meta") {
            if meta.contains_key("versionId") || meta.contains_key("lastUpdated") {
                self.report_child(
                    IssueCode::Invariant,
                    "dom-4: a contained resource shall not have meta.versionId or meta.lastUpdated"
                        .into(),
                    "meta",
                );
            }
            if meta.contains_key("security") {
                self.report_child(
                    IssueCode::Invariant,
                    "dom-5: a contained resource shall not have a security label".into(),
                    "meta.security",
                );
            }
        }
    }

    fn unreferenced_contained(&mut self, scope: &Scope<'a>) {
        for (i, _id) in scope.unreferenced() {
            self.report_child(
                IssueCode::Invariant,
                "dom-3: a contained resource shall be referenced from the container or refer to it"
                    .into(),
                &format!("contained[{i}]"),
            );
        }
    }

    fn walk_object(&mut self, obj: &'a Map<String, Value>, ctx_id: CtxId, is_resource: bool) {
        let model = self.model;
        let ctx = model.ctx(ctx_id);
        let mut seen: u64 = 0;
        let mut choice_reported: u64 = 0;
        for (key, val) in obj {
            if is_resource && key == "resourceType" {
                continue;
            }
            let (companion, name) = match key.strip_prefix('_') {
                Some(n) => (true, n),
                None => (false, key.as_str()),
            };
            let Some(entry) = ctx.get(name) else {
                self.report_child(
                    IssueCode::Structure,
                    "unknown element: not defined at this point by the R4 definitions".into(),
                    key,
                );
                continue;
            };
            let bit = 1u64.checked_shl(u32::from(entry.slot)).unwrap_or(0);
            if entry.el.is_choice()
                && seen & bit != 0
                && choice_reported & bit == 0
                && other_choice_key(obj, ctx, entry)
            {
                choice_reported |= bit;
                self.report_child(
                    IssueCode::Structure,
                    format!(
                        "{}: only one type of a choice element may be given",
                        entry.el.path
                    ),
                    entry.name,
                );
            }
            seen |= bit;
            if companion {
                self.companion(obj, name, entry, val);
            } else {
                self.element(obj, entry, val);
            }
        }
        for &(slot, name) in &ctx.required {
            if seen & 1u64.checked_shl(u32::from(slot)).unwrap_or(0) == 0 {
                let el = ctx.keys.values().find(|e| e.slot == slot).map(|e| e.el);
                let path = el.map(|e| e.path.as_str()).unwrap_or(name);
                self.report_child(
                    IssueCode::Required,
                    format!("{path}: minimum cardinality 1, element is missing"),
                    name,
                );
            }
        }
    }

    fn push_entry(&mut self, entry: &'static Entry) {
        if entry.el.is_choice() {
            self.loc.push(Seg::Choice(entry.name, entry.type_code));
        } else {
            self.loc.push(Seg::Key(entry.name));
        }
    }

    fn element(&mut self, obj: &'a Map<String, Value>, entry: &'static Entry, val: &'a Value) {
        self.push_entry(entry);
        let path = &entry.el.path;
        if entry.el.is_array() {
            match val {
                Value::Array(items) => {
                    if items.is_empty() {
                        self.report(
                            IssueCode::Structure,
                            format!("{path}: empty array (the spec forbids empty values)"),
                        );
                    }
                    if let Max::Limit(n) = entry.el.max {
                        if items.len() > n as usize {
                            self.report(
                                IssueCode::Structure,
                                format!("{path}: more than the maximum of {n} repetitions"),
                            );
                        }
                    }
                    for (i, item) in items.iter().enumerate() {
                        self.loc.push(Seg::Index(i));
                        if item.is_null() {
                            self.null_item(obj, entry, i);
                        } else {
                            self.item(entry, item, Some(i));
                        }
                        self.loc.pop();
                    }
                }
                _ => self.report(
                    IssueCode::Structure,
                    format!("{path}: element repeats (max *), JSON must use an array"),
                ),
            }
        } else {
            match val {
                Value::Array(_) => self.report(
                    IssueCode::Structure,
                    format!("{path}: element has max 1, JSON must not use an array"),
                ),
                Value::Null => self.report(
                    IssueCode::Structure,
                    format!("{path}: null is only allowed inside primitive arrays"),
                ),
                _ => self.item(entry, val, None),
            }
        }
        self.loc.pop();
    }

    /// A `null` in a primitive array is a placeholder for a value that only has an id or
    /// extensions in the aligned `_name` array.
    fn null_item(&mut self, obj: &'a Map<String, Value>, entry: &'static Entry, i: usize) {
        let is_prim = matches!(entry.kind, EntryKind::Primitive(_));
        let filled = is_prim
            && matches!(obj.get(&entry.companion),
                Some(Value::Array(c)) if c.get(i).is_some_and(|x| !x.is_null()));
        if !filled {
            self.report(
                IssueCode::Structure,
                format!(
                    "{}: null without an aligned _{} entry",
                    entry.el.path, entry.name
                ),
            );
        }
    }

    fn item(&mut self, entry: &'static Entry, v: &'a Value, index: Option<usize>) {
        match entry.kind {
            EntryKind::Primitive(p) => {
                if let Err(pr) = primitive::check(self.model, &p, v) {
                    let msg = format!("{} ({}): {}", entry.el.path, p.name, pr.what);
                    if pr.warning {
                        let at = self.loc.render();
                        self.issues.push(Issue::warning(pr.code, msg).at(at));
                    } else {
                        self.report(pr.code, msg);
                    }
                    return;
                }
                let Value::String(s) = v else { return };
                if let Some(vs) = entry.value_set {
                    let vs = &self.model.value_sets[vs as usize];
                    if !vs.codes.contains(s.as_str()) {
                        let msg = format!(
                            "{}: code is not in the required value set {}",
                            entry.el.path, vs.url
                        );
                        self.report(IssueCode::CodeInvalid, msg);
                    }
                }
                if p.uri_like && s.starts_with('#') {
                    if let Some(scope) = self.scopes.last_mut() {
                        scope.note_local(s, self.in_contained);
                    }
                }
            }
            EntryKind::Resource => {
                let contained = entry.el.path.ends_with(".contained");
                self.resource(v, if contained { index.or(Some(0)) } else { None });
            }
            EntryKind::Complex(ctx) => {
                let Value::Object(o) = v else {
                    self.report(
                        IssueCode::Structure,
                        format!(
                            "{}: a {} must be a JSON object",
                            entry.el.path, entry.type_code
                        ),
                    );
                    return;
                };
                if o.keys().all(|k| k == "id") {
                    self.report(
                        IssueCode::Structure,
                        format!("{}: empty object (ele-1: value or children)", entry.el.path),
                    );
                    return;
                }
                self.walk_object(o, ctx, false);
                match entry.type_code {
                    "Reference" => self.reference(o, entry),
                    "Extension" => self.extension(o),
                    "Coding" if entry.value_set.is_some() => self.coding(o, entry, None),
                    "CodeableConcept" if entry.value_set.is_some() => {
                        if let Some(Value::Array(cs)) = o.get("coding") {
                            for (i, c) in cs.iter().enumerate() {
                                if let Value::Object(c) = c {
                                    self.coding(c, entry, Some(i));
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// A Coding against the element's required value set, when its system is one of the
    /// value set's systems.
    fn coding(&mut self, c: &'a Map<String, Value>, entry: &'static Entry, i: Option<usize>) {
        let Some(vs) = entry.value_set else { return };
        let vs = &self.model.value_sets[vs as usize];
        let (Some(Value::String(system)), Some(Value::String(code))) =
            (c.get("system"), c.get("code"))
        else {
            return;
        };
        if vs.systems.binary_search(&system.as_str()).is_err()
            || vs.pairs.contains(&(system.as_str(), code.as_str()))
        {
            return;
        }
        let msg = format!(
            "{}: code is not in the required value set {}",
            entry.el.path, vs.url
        );
        match i {
            Some(i) => self.report_child(IssueCode::CodeInvalid, msg, &format!("coding[{i}].code")),
            None => self.report_child(IssueCode::CodeInvalid, msg, "code"),
        }
    }

    /// ext-1: an extension has either a value or nested extensions, not both.
    fn extension(&mut self, o: &'a Map<String, Value>) {
        let has_value = o
            .keys()
            .any(|k| k.starts_with("value") || k.starts_with("_value"));
        let has_ext = o.contains_key("extension");
        if has_value == has_ext {
            self.report(
                IssueCode::Invariant,
                "ext-1: an extension must have either extensions or a value, not both".into(),
            );
        }
    }

    /// A `_name` primitive-extension companion: an Element (id, extension), or for
    /// repeating primitives an array aligned with the value array.
    fn companion(
        &mut self,
        obj: &'a Map<String, Value>,
        name: &str,
        entry: &'static Entry,
        val: &'a Value,
    ) {
        if !matches!(entry.kind, EntryKind::Primitive(_)) {
            self.report_child(
                IssueCode::Structure,
                format!(
                    "{}: `_` properties are only for primitive elements",
                    entry.el.path
                ),
                &entry.companion,
            );
            return;
        }
        self.push_entry(entry);
        let path = &entry.el.path;
        if entry.el.is_array() {
            match val {
                Value::Array(items) => {
                    let main = match obj.get(name) {
                        Some(Value::Array(m)) => Some(m),
                        _ => None,
                    };
                    if items.is_empty() {
                        self.report(IssueCode::Structure, format!("{path}: empty `_` array"));
                    } else if main.is_some_and(|m| m.len() != items.len()) {
                        self.report(
                            IssueCode::Structure,
                            format!("{path}: `_` array is not aligned with the value array"),
                        );
                    }
                    for (i, it) in items.iter().enumerate() {
                        self.loc.push(Seg::Index(i));
                        match it {
                            Value::Null => {
                                let has_value =
                                    main.and_then(|m| m.get(i)).is_some_and(|x| !x.is_null());
                                if !has_value {
                                    self.report(
                                        IssueCode::Structure,
                                        format!("{path}: neither a value nor an extension"),
                                    );
                                }
                            }
                            _ => self.primitive_element(path, it),
                        }
                        self.loc.pop();
                    }
                }
                _ => self.report(
                    IssueCode::Structure,
                    format!("{path}: element repeats, its `_` companion must be an array"),
                ),
            }
        } else {
            self.primitive_element(path, val);
        }
        self.loc.pop();
    }

    fn primitive_element(&mut self, path: &str, v: &'a Value) {
        match v {
            Value::Object(o) if !o.keys().all(|k| k == "id") => {
                self.walk_object(o, self.model.element_ctx, false);
            }
            Value::Object(_) => self.report(
                IssueCode::Structure,
                format!("{path}: empty `_` object (ele-1: value or children)"),
            ),
            _ => self.report(
                IssueCode::Structure,
                format!("{path}: a `_` companion must be a JSON object"),
            ),
        }
    }
}

/// True when another key of `obj` names the same choice element with another type.
fn other_choice_key(obj: &Map<String, Value>, ctx: &model::Context, entry: &Entry) -> bool {
    obj.keys().any(|k| {
        let n = k.strip_prefix('_').unwrap_or(k);
        ctx.get(n)
            .is_some_and(|e| e.slot == entry.slot && e.type_code != entry.type_code)
    })
}
