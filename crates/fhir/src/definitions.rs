//! The FHIR R4 core definitions, embedded as data and parsed once.
//!
//! `definitions/r4.json.gz` is produced by `tools/pack-definitions.py` from the official
//! package (CC0-1.0). Nothing here is hand-written per resource type: element trees,
//! search parameters, compartments and required value sets all come from that file.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::OnceLock;

use serde::Deserialize;

static PACKED: &[u8] = include_bytes!("../definitions/r4.json.gz");

/// What a StructureDefinition defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    PrimitiveType,
    ComplexType,
    Resource,
    Logical,
}

/// One StructureDefinition: a resource, a datatype or a primitive.
#[derive(Debug, Deserialize)]
pub struct TypeDef {
    #[serde(skip)]
    pub name: String,
    pub kind: Kind,
    #[serde(rename = "abstract")]
    pub is_abstract: bool,
    pub base: Option<String>,
    pub elements: Vec<ElementDef>,
}

/// Maximum cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Max {
    Many,
    Limit(u32),
}

/// One element of a StructureDefinition snapshot.
#[derive(Debug, Deserialize)]
pub struct ElementDef {
    /// Full path, e.g. `Observation.component.value[x]`.
    pub path: String,
    pub min: u32,
    #[serde(deserialize_with = "de_max")]
    pub max: Max,
    #[serde(default)]
    pub types: Vec<TypeRef>,
    /// For elements defined by reference to another element (e.g. `Questionnaire.item.item`).
    #[serde(rename = "contentReference")]
    pub content_reference: Option<String>,
    /// Canonical URL of a `required` value set binding.
    pub binding: Option<String>,
    /// Regex of a primitive type's value (only on `<primitive>.value` elements).
    pub regex: Option<String>,
    #[serde(default)]
    pub summary: bool,
    #[serde(default)]
    pub modifier: bool,
    /// The element's FHIRPath invariants of severity error, less those
    /// [`validate`](crate::validate) checks in code (ele-1, ext-1, dom-2 to dom-6, ref-1,
    /// txt-1, txt-2). Evaluated by `oxehr_fhirpath::invariants`.
    #[serde(default)]
    pub constraints: Vec<Constraint>,
}

/// A FHIRPath invariant of an element (`ElementDefinition.constraint`).
#[derive(Debug, Deserialize)]
pub struct Constraint {
    /// `obs-6`, `per-1`, …
    pub key: String,
    /// The spec's own words for the rule.
    pub human: String,
    /// The FHIRPath expression, true when the rule holds, evaluated with the element as
    /// its context.
    pub expression: String,
}

impl ElementDef {
    /// The element's name in its parent, without a `[x]` suffix (`value` for `value[x]`).
    pub fn name(&self) -> &str {
        let last = self.path.rsplit('.').next().unwrap_or(&self.path);
        last.strip_suffix("[x]").unwrap_or(last)
    }

    pub fn is_choice(&self) -> bool {
        self.path.ends_with("[x]")
    }

    pub fn is_array(&self) -> bool {
        self.max != Max::Limit(0) && self.max != Max::Limit(1)
    }
}

fn de_max<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Max, D::Error> {
    let s = String::deserialize(d)?;
    if s == "*" {
        Ok(Max::Many)
    } else {
        s.parse().map(Max::Limit).map_err(serde::de::Error::custom)
    }
}

/// One allowed type of an element.
#[derive(Debug, Deserialize)]
pub struct TypeRef {
    /// Type name (`string`, `CodeableConcept`, `Reference`, `BackboneElement`, …).
    pub code: String,
    /// Target resource types of a `Reference`/`canonical` (`Resource` means any).
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub profile: Vec<String>,
}

/// An R4 core SearchParameter, as data.
#[derive(Debug, Deserialize)]
pub struct SearchParamDef {
    pub url: String,
    pub code: String,
    pub base: Vec<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub expression: Option<String>,
    #[serde(default)]
    pub target: Vec<String>,
    #[serde(default)]
    pub component: Vec<SearchParamComponent>,
    #[serde(default)]
    pub modifier: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct SearchParamComponent {
    pub definition: String,
    pub expression: String,
}

#[derive(Deserialize)]
struct Packed {
    types: HashMap<String, TypeDef>,
    #[serde(rename = "searchParameters")]
    search_parameters: Vec<SearchParamDef>,
    compartments: HashMap<String, HashMap<String, Vec<String>>>,
    #[serde(rename = "valueSets")]
    value_sets: HashMap<String, Vec<(String, String)>>,
}

/// What a JSON property of an element resolves to.
#[derive(Debug, Clone, Copy)]
pub struct Child<'a> {
    pub element: &'a ElementDef,
    /// The concrete type: for a choice element, the one named by the JSON key
    /// (`valueQuantity` → `Quantity`); otherwise the element's single type, or `None` for
    /// elements whose children are defined inline (BackboneElement) or by reference.
    pub type_code: Option<&'a str>,
    /// Where the children of this element are defined: a type name (`CodeableConcept`) or
    /// an element path (`Observation.component`). `Resource` for contained resources.
    pub context: &'a str,
}

/// Types oxehr counts in the Patient compartment although R4's CompartmentDefinition
/// leaves them out, with the search parameters that link them to the patient. The
/// compartment is what the access policy protects and what `$everything` returns, and
/// R4 lists no parameter for `Task`: a refill request a patient makes (`Task.for` is the
/// patient) would be in no record, visible to every user. Only types whose link to the
/// patient is a plain reference parameter are added.
pub const ADDED_TO_PATIENT_COMPARTMENT: &[(&str, &[&str])] = &[("Task", &["patient"])];

/// The R4 core definitions.
pub struct Definitions {
    types: HashMap<String, TypeDef>,
    search_params: Vec<SearchParamDef>,
    compartments: HashMap<String, HashMap<String, Vec<String>>>,
    value_sets: HashMap<String, HashSet<(String, String)>>,
    /// (parent context, JSON key) → (type name, element index, concrete type)
    children: HashMap<(String, String), (String, usize, Option<String>)>,
    /// element path → (type name, element index), for contexts given by path
    paths: HashMap<String, (String, usize)>,
}

impl std::fmt::Debug for Definitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Definitions")
            .field("types", &self.types.len())
            .field("search_params", &self.search_params.len())
            .finish()
    }
}

impl Definitions {
    /// The embedded R4 core definitions, parsed on first use.
    pub fn r4() -> &'static Definitions {
        static DEFS: OnceLock<Definitions> = OnceLock::new();
        DEFS.get_or_init(|| {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(PACKED)
                .read_to_end(&mut raw)
                .expect("embedded definitions are valid gzip");
            let packed: Packed =
                serde_json::from_slice(&raw).expect("embedded definitions are valid JSON");
            Definitions::from_packed(packed)
        })
    }

    fn from_packed(mut packed: Packed) -> Definitions {
        for (name, t) in packed.types.iter_mut() {
            t.name = name.clone();
        }
        let mut children = HashMap::new();
        let mut paths = HashMap::new();
        for (name, t) in &packed.types {
            for (i, el) in t.elements.iter().enumerate() {
                paths.insert(el.path.clone(), (name.clone(), i));
                let Some((parent, last)) = el.path.rsplit_once('.') else {
                    continue;
                };
                if let Some(base) = last.strip_suffix("[x]") {
                    for ty in &el.types {
                        let key = format!("{base}{}", upper_first(&ty.code));
                        children.insert(
                            (parent.to_string(), key),
                            (name.clone(), i, Some(ty.code.clone())),
                        );
                    }
                } else {
                    let ty = if el.types.len() == 1 {
                        Some(el.types[0].code.clone())
                    } else {
                        None
                    };
                    children.insert(
                        (parent.to_string(), last.to_string()),
                        (name.clone(), i, ty),
                    );
                }
            }
        }
        let value_sets = packed
            .value_sets
            .into_iter()
            .map(|(url, codes)| (url, codes.into_iter().collect()))
            .collect();
        let mut compartments = packed.compartments;
        if let Some(patient) = compartments.get_mut("Patient") {
            for (t, params) in ADDED_TO_PATIENT_COMPARTMENT {
                patient
                    .entry((*t).to_owned())
                    .or_insert_with(|| params.iter().map(|p| (*p).to_owned()).collect());
            }
        }
        Definitions {
            types: packed.types,
            search_params: packed.search_parameters,
            compartments,
            value_sets,
            children,
            paths,
        }
    }

    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// Every type name (resources, datatypes, primitives), sorted.
    pub fn type_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.types.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// True for a concrete R4 core resource type (`Patient`, not `DomainResource`).
    pub fn is_resource_type(&self, name: &str) -> bool {
        self.types
            .get(name)
            .is_some_and(|t| t.kind == Kind::Resource && !t.is_abstract)
    }

    /// Concrete resource type names, sorted.
    pub fn resource_types(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .types
            .values()
            .filter(|t| t.kind == Kind::Resource && !t.is_abstract)
            .map(|t| t.name.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// True when `ty` is `of` or derives from it (`Patient` is a `DomainResource` is a
    /// `Resource`; `Age` is a `Quantity`; `code` is a `string`).
    pub fn is_subtype(&self, ty: &str, of: &str) -> bool {
        let mut cur = Some(ty);
        let mut guard = 0;
        while let Some(t) = cur {
            if t == of {
                return true;
            }
            guard += 1;
            if guard > 16 {
                return false;
            }
            cur = self.types.get(t).and_then(|d| d.base.as_deref());
        }
        false
    }

    /// The element definition at a full path (`Observation.component.code`).
    pub fn element_at(&self, path: &str) -> Option<&ElementDef> {
        self.paths
            .get(path)
            .map(|(t, i)| &self.types[t].elements[*i])
    }

    /// Resolves JSON property `key` of a value whose children are defined at `context`
    /// (a type name such as `HumanName`, or an element path such as
    /// `Observation.component`). Handles choice keys (`valueQuantity`), content references
    /// and inline (backbone) elements. `None` means the property is not defined there.
    pub fn child(&self, context: &str, key: &str) -> Option<Child<'_>> {
        let context = self.resolve_context(context);
        let (ty, i, code) = self.children.get(&(context.to_string(), key.to_string()))?;
        let element = &self.types[ty].elements[*i];
        let type_code = code.as_deref();
        let ctx: &str = if let Some(cref) = &element.content_reference {
            cref
        } else {
            match type_code {
                Some("BackboneElement") | Some("Element") | None => &element.path,
                Some(t) => t,
            }
        };
        Some(Child {
            element,
            type_code,
            context: ctx,
        })
    }

    fn resolve_context<'a>(&'a self, context: &'a str) -> &'a str {
        // An element path whose definition points elsewhere.
        match self.element_at(context) {
            Some(el) if el.content_reference.is_some() => {
                el.content_reference.as_deref().unwrap_or(context)
            }
            _ => context,
        }
    }

    pub fn search_params(&self) -> &[SearchParamDef] {
        &self.search_params
    }

    /// Compartment definition by code (`Patient`): resource type → the search parameters
    /// that link a resource of that type to the compartment's owner (R4's, plus
    /// [`ADDED_TO_PATIENT_COMPARTMENT`]).
    pub fn compartment(&self, code: &str) -> Option<&HashMap<String, Vec<String>>> {
        self.compartments.get(code)
    }

    /// The expansion of a `required` value set, when it is enumerable from core code
    /// systems. `None` for value sets that cannot be enumerated (filters, external systems).
    pub fn value_set(&self, url: &str) -> Option<&HashSet<(String, String)>> {
        self.value_sets.get(url)
    }

    /// True when `code` is in the enumerable value set `url` (any system), or when the
    /// value set is not enumerable.
    pub fn value_set_has_code(&self, url: &str, code: &str) -> bool {
        match self.value_sets.get(url) {
            None => true,
            Some(set) => set.iter().any(|(_, c)| c == code),
        }
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_cover_r4_core() {
        let d = Definitions::r4();
        // profiles-resources.json of 4.0.1 holds 146 concrete resource StructureDefinitions
        // and search-parameters.json 1,375 SearchParameters (counted with python3).
        assert_eq!(d.resource_types().len(), 146);
        assert_eq!(d.search_params().len(), 1375);
        assert!(d.compartment("Patient").is_some());
    }

    #[test]
    fn the_patient_compartment_is_r4_s_plus_task() {
        let patient = Definitions::r4().compartment("Patient").expect("Patient");
        // R4's own entries stay as published (CompartmentDefinition-patient: Communication
        // by subject, sender and recipient; Slot in no compartment) ...
        assert_eq!(patient["Communication"], ["subject", "sender", "recipient"]);
        assert!(patient.get("Slot").is_none_or(|p| p.is_empty()));
        // ... and a Task belongs to the patient it is `for`.
        assert_eq!(patient["Task"], ["patient"]);
    }

    #[test]
    fn children_resolve_choices_backbones_and_references() {
        let d = Definitions::r4();
        let c = d
            .child("Observation", "valueQuantity")
            .expect("valueQuantity");
        assert_eq!(c.type_code, Some("Quantity"));
        assert_eq!(c.context, "Quantity");
        let c = d.child("Observation", "component").expect("component");
        assert_eq!(c.context, "Observation.component");
        let c = d
            .child("Observation.component", "code")
            .expect("component.code");
        assert_eq!(c.context, "CodeableConcept");
        let c = d.child("Questionnaire.item", "item").expect("item.item");
        assert_eq!(c.context, "Questionnaire.item");
        let c = d
            .child("Questionnaire.item.item", "linkId")
            .expect("nested linkId");
        assert_eq!(c.type_code, Some("string"));
        assert!(d.child("Observation", "valueFoo").is_none());
        assert!(d.child("Patient", "nonsense").is_none());
        assert!(d.is_subtype("Patient", "Resource"));
        assert!(d.is_subtype("Age", "Quantity"));
        assert!(!d.is_subtype("Quantity", "Age"));
    }
}
