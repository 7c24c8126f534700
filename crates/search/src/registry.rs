//! The registry of R4 core search parameters, built once from the embedded definitions
//! (`Definitions::r4().search_params()`), with every FHIRPath expression compiled.
//!
//! A parameter defined on several bases (`clinical-patient` covers 30 types with one
//! union expression) is compiled per resource type from only the union branches that
//! start with that type, so extraction never evaluates the other 29 branches.

use std::collections::HashMap;
use std::sync::OnceLock;

use oxehr_fhir::Definitions;
use oxehr_fhirpath::Expr;

use crate::index::ParamKey;

/// The type of a search parameter, as in `SearchParameter.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamKind {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl ParamKind {
    pub fn parse(s: &str) -> Option<ParamKind> {
        Some(match s {
            "number" => ParamKind::Number,
            "date" => ParamKind::Date,
            "string" => ParamKind::String,
            "token" => ParamKind::Token,
            "reference" => ParamKind::Reference,
            "composite" => ParamKind::Composite,
            "quantity" => ParamKind::Quantity,
            "uri" => ParamKind::Uri,
            "special" => ParamKind::Special,
            _ => return None,
        })
    }
}

/// One component of a composite parameter.
#[derive(Debug, Clone)]
pub struct Component {
    /// Canonical URL of the SearchParameter that types this component.
    pub definition: String,
    pub kind: ParamKind,
    /// Evaluated with each item of the composite's base expression as its focus.
    pub expression: Expr,
}

/// A search parameter of one resource type.
#[derive(Debug, Clone)]
pub struct SearchParam {
    pub code: String,
    /// `ParamKey::of(resource_type, code)`.
    pub key: ParamKey,
    pub kind: ParamKind,
    /// Target resource types of a reference parameter (empty for other kinds).
    pub targets: Vec<String>,
    /// Canonical URL of the SearchParameter.
    pub url: String,
    pub modifiers: Vec<String>,
    /// The compiled expression, restricted to this resource type's branches; `None` for
    /// parameters without one (`_text`, `_content`, `_query`, …).
    pub expression: Option<Expr>,
    /// Components of a composite parameter, in definition order.
    pub components: Vec<Component>,
    /// For a token parameter whose values are `code` elements bound (required) to a
    /// value set of one code system (`Patient.gender` → administrative-gender): that
    /// system's URL, indexed as the system of those codes. See [`code_system_of`].
    pub code_system: Option<String>,
    /// For a parameter that is the union of other parameters of its type
    /// (`Observation.combo-code` is `code | component-code`): their codes. Its values are
    /// not indexed under its own key, since they are the parts' already; a search by it
    /// reads the parts' ([`SearchParam::stored_keys`]). Empty for any other parameter.
    /// See [`Registry::find_unions`].
    pub union_of: Vec<String>,
    /// For a reference parameter that is another of its type restricted to one target
    /// type (`Observation.patient` is `Observation.subject.where(resolve() is Patient)`):
    /// that parameter's code and the type. Its values are the other's rows whose
    /// `target_type` is that type, so it has no rows of its own; a search by it reads
    /// the other's key with the type required. See [`Registry::find_narrowings`].
    pub narrowed_of: Option<(String, String)>,
    /// The codes of the parameters narrowed from this one (`subject` → `patient`): the
    /// Patient compartment names some of them.
    pub narrowed_into: Vec<String>,
    /// The keys its values are indexed under: its own, or its parts' when it is a union,
    /// or the parameter's it narrows.
    pub stored_keys: Vec<ParamKey>,
}

impl SearchParam {
    /// Whether its values are indexed under its own key (not a union of others, nor
    /// another narrowed to one target type).
    pub fn is_indexed(&self) -> bool {
        self.union_of.is_empty() && self.narrowed_of.is_none()
    }

    /// The target type every value must have, for a parameter narrowed from another.
    pub fn required_target(&self) -> Option<&str> {
        self.narrowed_of.as_ref().map(|(_, t)| t.as_str())
    }
}

/// All search parameters, by resource type.
#[derive(Debug)]
pub struct Registry {
    by_type: HashMap<String, Vec<SearchParam>>,
    /// Parameters left out because their expression did not compile: (url, error).
    rejected: Vec<(String, String)>,
}

impl Registry {
    /// The registry of the R4 core search parameters, built on first use.
    pub fn r4() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| Registry::build(Definitions::r4()))
    }

    /// Parameters of `resource_type`, including those defined on `Resource` and
    /// `DomainResource`. Empty for an unknown type.
    pub fn params(&self, resource_type: &str) -> &[SearchParam] {
        self.by_type.get(resource_type).map_or(&[], Vec::as_slice)
    }

    pub fn param(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        self.params(resource_type).iter().find(|p| p.code == code)
    }

    /// Parameters left out of the registry because an expression did not compile:
    /// (SearchParameter URL, error). Empty for the R4 core set (a test checks it).
    pub fn rejected(&self) -> &[(String, String)] {
        &self.rejected
    }

    fn build(defs: &Definitions) -> Registry {
        let kinds: HashMap<&str, ParamKind> = defs
            .search_params()
            .iter()
            .filter_map(|p| Some((p.url.as_str(), ParamKind::parse(&p.kind)?)))
            .collect();
        let all_types = defs.resource_types();
        let mut by_type: HashMap<String, Vec<SearchParam>> = HashMap::new();
        let mut rejected = Vec::new();
        for def in defs.search_params() {
            let Some(kind) = ParamKind::parse(&def.kind) else {
                rejected.push((def.url.clone(), format!("unknown type {}", def.kind)));
                continue;
            };
            let mut types: Vec<&str> = Vec::new();
            for base in &def.base {
                match base.as_str() {
                    "Resource" => types.extend(all_types.iter().copied()),
                    "DomainResource" => types.extend(
                        all_types
                            .iter()
                            .copied()
                            .filter(|t| defs.is_subtype(t, "DomainResource")),
                    ),
                    other => types.push(other),
                }
            }
            let components = match compile_components(def, &kinds) {
                Ok(c) => c,
                Err(e) => {
                    rejected.push((def.url.clone(), e));
                    continue;
                }
            };
            for ty in types {
                let expression = match def.expression.as_deref() {
                    None => None,
                    Some(src) => {
                        let own = branches_for(src, ty);
                        match Expr::parse(&own) {
                            Ok(e) => Some(e),
                            Err(e) => {
                                rejected.push((def.url.clone(), e.to_string()));
                                continue;
                            }
                        }
                    }
                };
                let code_system = match (kind, def.expression.as_deref()) {
                    (ParamKind::Token, Some(src)) => code_system_of(defs, &branches_for(src, ty)),
                    _ => None,
                };
                by_type
                    .entry(ty.to_string())
                    .or_default()
                    .push(SearchParam {
                        code: def.code.clone(),
                        key: ParamKey::of(ty, &def.code),
                        kind,
                        targets: def.target.clone(),
                        url: def.url.clone(),
                        modifiers: def.modifier.clone(),
                        expression,
                        components: components.clone(),
                        code_system,
                        union_of: Vec::new(),
                        narrowed_of: None,
                        narrowed_into: Vec::new(),
                        stored_keys: vec![ParamKey::of(ty, &def.code)],
                    });
            }
        }
        for (ty, code, kind, expression, targets) in OXEHR_PARAMS {
            match Expr::parse(expression) {
                Ok(e) => by_type
                    .entry((*ty).to_string())
                    .or_default()
                    .push(SearchParam {
                        code: (*code).to_string(),
                        key: ParamKey::of(ty, code),
                        kind: *kind,
                        targets: targets.iter().map(|t| (*t).to_string()).collect(),
                        url: format!("{OXEHR_PARAM_URL}{code}"),
                        modifiers: Vec::new(),
                        expression: Some(e),
                        components: Vec::new(),
                        code_system: None,
                        union_of: Vec::new(),
                        narrowed_of: None,
                        narrowed_into: Vec::new(),
                        stored_keys: vec![ParamKey::of(ty, code)],
                    }),
                Err(e) => rejected.push((format!("{OXEHR_PARAM_URL}{code}"), e.to_string())),
            }
        }
        for params in by_type.values_mut() {
            Registry::find_unions(params);
            Registry::find_narrowings(params);
        }
        Registry { by_type, rejected }
    }

    /// Marks the parameters of one type that are exactly the union of others of that
    /// type: each top-level branch of the expression is, word for word, the expression
    /// of another parameter of the same kind, with the same components and code system
    /// (`Observation.combo-value-quantity`, `(Observation.value as Quantity) |
    /// (Observation.component.value as Quantity)`, is `value-quantity` and
    /// `component-value-quantity`). Such a parameter matches a resource exactly when one
    /// of its parts does, so its index rows would repeat theirs: every Observation
    /// without components wrote each `combo-*` row twice, in B-tree pages of their own.
    /// Reference parameters are left as they are: the access rules, compartments and
    /// includes read those by their own key.
    fn find_unions(params: &mut [SearchParam]) {
        // Each parameter's top-level branches and what a part must share with the whole,
        // worked out once.
        type Shape = (ParamKind, Vec<(ParamKind, String)>, Option<String>);
        let described: Vec<(Vec<String>, Shape)> = params
            .iter()
            .map(|p| {
                let branches = p.expression.as_ref().map_or_else(Vec::new, |e| {
                    split_union(e.source())
                        .iter()
                        .map(|b| b.trim().to_owned())
                        .collect()
                });
                let components = p
                    .components
                    .iter()
                    .map(|c| (c.kind, c.expression.source().trim().to_owned()))
                    .collect();
                (branches, (p.kind, components, p.code_system.clone()))
            })
            .collect();
        let mut found: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, (branches, shape)) in described.iter().enumerate() {
            if params[i].kind == ParamKind::Reference || branches.len() < 2 {
                continue;
            }
            // The other parameters of the same shape, by their branches.
            let candidates: Vec<(usize, &[String])> = described
                .iter()
                .enumerate()
                .filter(|(j, (theirs, s))| *j != i && s == shape && !theirs.is_empty())
                .map(|(j, (theirs, _))| (j, theirs.as_slice()))
                .collect();
            if let Some(parts) = cover(branches, &candidates) {
                found.push((i, parts));
            }
        }
        for (i, parts) in found {
            params[i].stored_keys = parts.iter().map(|&j| params[j].key).collect();
            params[i].union_of = parts.iter().map(|&j| params[j].code.clone()).collect();
        }
    }
}

impl Registry {
    /// Marks the reference parameters of one type whose expression is, word for word,
    /// another reference parameter's followed by `.where(resolve() is T)`, `T` one of its
    /// targets (`Observation.patient`: `Observation.subject.where(resolve() is
    /// Patient)`; `Encounter.practitioner`: `Encounter.participant.individual.where(…)`).
    /// Such a parameter's values are exactly the other's whose reference names a `T`:
    /// `resolve()` types a reference by its literal `Type/id`, which is also how the
    /// index fills `target_type`, and drops references without one (identifier-only,
    /// `urn:`), which have no `target_type`. Its rows would repeat the other's: each
    /// Observation wrote its patient twice, in B-tree pages of their own.
    fn find_narrowings(params: &mut [SearchParam]) {
        let mut found = Vec::new();
        for (i, p) in params.iter().enumerate() {
            if p.kind != ParamKind::Reference || !p.is_indexed() {
                continue;
            }
            let Some(src) = p.expression.as_ref().map(|e| e.source().trim()) else {
                continue;
            };
            let Some((base, ty)) = src
                .strip_suffix(')')
                .and_then(|s| s.rsplit_once(".where(resolve() is "))
            else {
                continue;
            };
            let ty = ty.trim();
            if !p.targets.iter().any(|t| t == ty) {
                continue;
            }
            let other = params.iter().position(|q| {
                q.kind == ParamKind::Reference
                    && q.is_indexed()
                    && q.targets.iter().any(|t| t == ty)
                    && q.expression.as_ref().map(|e| e.source().trim()) == Some(base.trim())
            });
            if let Some(j) = other {
                found.push((i, j, ty.to_owned()));
            }
        }
        for (i, j, ty) in found {
            let (code, key) = (params[j].code.clone(), params[j].key);
            params[i].narrowed_of = Some((code, ty));
            params[i].stored_keys = vec![key];
            let narrowed = params[i].code.clone();
            params[j].narrowed_into.push(narrowed);
        }
    }
}

/// Covers `branches`, in order, with runs that are candidates' whole branch lists (the
/// longest that fits at each point, never all of `branches` at once): the candidates
/// used, or `None` when some branch is no candidate's.
fn cover(branches: &[String], candidates: &[(usize, &[String])]) -> Option<Vec<usize>> {
    let mut parts = Vec::new();
    let mut at = 0;
    while at < branches.len() {
        let (len, j) = candidates
            .iter()
            .filter(|(_, theirs)| {
                theirs.len() < branches.len() && branches[at..].starts_with(theirs)
            })
            .map(|(j, theirs)| (theirs.len(), *j))
            .max()?;
        parts.push(j);
        at += len;
    }
    Some(parts)
}

/// The URL prefix of oxehr's own search parameters.
pub const OXEHR_PARAM_URL: &str = "urn:oxehr:SearchParameter:";

/// oxehr's own search parameters, which the access policy reads through the index: on
/// Consent, the actors a patient's Consent permits or denies, at the top provision or
/// one level down (R4 `Consent.provision.type`; the top provision's period is R4's
/// `period` parameter, read at each request, and a permission one level down with a
/// period of its own is left out rather than granted for all time); on RelatedPerson, the period in which a
/// proxy's grant holds (R4 has no search parameter for `RelatedPerson.period`).
/// (resource type, code, type, expression, targets)
const OXEHR_PARAMS: &[(&str, &str, ParamKind, &str, &[&str])] = &[
    (
        "Consent",
        "oxehr-permit-actor",
        ParamKind::Reference,
        "Consent.provision.where(type = 'permit').actor.reference | Consent.provision.provision.where(type = 'permit' and period.empty()).actor.reference",
        &["Organization", "Practitioner", "PractitionerRole", "CareTeam"],
    ),
    (
        "Consent",
        "oxehr-deny-actor",
        ParamKind::Reference,
        "Consent.provision.where(type = 'deny').actor.reference | Consent.provision.provision.where(type = 'deny').actor.reference",
        &["Organization", "Practitioner", "PractitionerRole", "CareTeam"],
    ),
    (
        "Consent",
        "oxehr-deny-label",
        ParamKind::Token,
        "Consent.provision.where(type = 'deny' and actor.empty()).securityLabel | Consent.provision.provision.where(type = 'deny' and actor.empty()).securityLabel",
        &[],
    ),
    (
        "RelatedPerson",
        "oxehr-period",
        ParamKind::Date,
        "RelatedPerson.period",
        &[],
    ),
];

fn compile_components(
    def: &oxehr_fhir::definitions::SearchParamDef,
    kinds: &HashMap<&str, ParamKind>,
) -> Result<Vec<Component>, String> {
    def.component
        .iter()
        .map(|c| {
            let kind = *kinds
                .get(c.definition.as_str())
                .ok_or_else(|| format!("component definition {} not found", c.definition))?;
            let expression = Expr::parse(&c.expression).map_err(|e| e.to_string())?;
            Ok(Component {
                definition: c.definition.clone(),
                kind,
                expression,
            })
        })
        .collect()
}

/// The code system implied for the values of a token expression: when every union
/// branch of `src` is a simple path (`Patient.gender`, `Encounter.location.status`) to a
/// `code` element with a required binding to a value set whose codes all come from one
/// code system, and all branches agree on it. `None` otherwise (paths with functions or
/// choice types, Codings, value sets of several systems or not enumerable).
pub fn code_system_of(defs: &Definitions, src: &str) -> Option<String> {
    let mut system: Option<&str> = None;
    for branch in split_union(src) {
        let mut segments = branch.trim().split('.');
        let mut context = segments.next()?;
        if !context.starts_with(|c: char| c.is_ascii_uppercase()) {
            return None;
        }
        let mut last = None;
        for seg in segments {
            if seg.is_empty() || !seg.chars().all(|c| c.is_ascii_alphanumeric()) {
                return None;
            }
            let child = defs.child(context, seg)?;
            context = child.context;
            last = Some(child);
        }
        let child = last?;
        if child.type_code != Some("code") {
            return None;
        }
        let mut systems = defs
            .value_set(child.element.binding.as_deref()?)?
            .iter()
            .map(|(s, _)| s.as_str());
        let first = systems.next()?;
        if systems.any(|s| s != first) || system.is_some_and(|s| s != first) {
            return None;
        }
        system = Some(first);
    }
    system.map(str::to_string)
}

/// Splits `src` on its top-level `|` (outside parentheses, brackets and quotes).
fn split_union(src: &str) -> Vec<&str> {
    let mut branches = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, false, 0usize);
    for (i, c) in src.char_indices() {
        match c {
            '\'' => quote = !quote,
            '(' | '[' if !quote => depth += 1,
            ')' | ']' if !quote => depth -= 1,
            '|' if !quote && depth == 0 => {
                branches.push(&src[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    branches.push(&src[start..]);
    branches
}

/// Splits `src` on top-level `|` and keeps the branches that can apply to `ty`: those
/// whose first name is `ty`, a base of it, or not a resource type at all. Falls back to
/// the whole expression when no branch is kept.
pub(crate) fn branches_for(src: &str, ty: &str) -> String {
    let defs = Definitions::r4();
    let branches = split_union(src);
    if branches.len() == 1 {
        return src.to_string();
    }
    let kept: Vec<&str> = branches
        .into_iter()
        .filter(|b| {
            let first: String = b
                .trim_start()
                .trim_start_matches('(')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            first == ty
                || !first.starts_with(|c: char| c.is_ascii_uppercase())
                || (defs.type_def(&first).is_some() && defs.is_subtype(ty, &first))
        })
        .collect();
    if kept.is_empty() {
        src.to_string()
    } else {
        kept.iter()
            .map(|b| b.trim())
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_core_expression_compiles() {
        let r = Registry::r4();
        assert!(r.rejected().is_empty(), "{:?}", r.rejected());
        // Every SearchParameter of search-parameters.json (1,375) is in the registry for
        // at least one of its bases.
        let urls: HashSet<&str> = r
            .by_type
            .values()
            .flatten()
            .map(|p| p.url.as_str())
            .filter(|u| !u.starts_with(OXEHR_PARAM_URL))
            .collect();
        assert_eq!(urls.len(), 1375);
    }

    #[test]
    fn consent_provisions_are_indexed_by_kind() {
        // A permit at the top with a nested deny of one organization, as a patient who
        // shares with everyone but one would write it.
        let consent = serde_json::json!({
            "resourceType": "Consent",
            "provision": {
                "type": "permit",
                "actor": [{"reference": {"reference": "Organization/a"}}],
                "provision": [
                    {"type": "deny", "actor": [{"reference": {"reference": "Organization/b"}}]},
                    {"type": "permit", "period": {"end": "2001-01-01"},
                     "actor": [{"reference": {"reference": "Organization/c"}}]},
                    {"type": "deny", "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]}
                ]
            }
        });
        let targets = |code: &str| {
            let mut out = Vec::new();
            let p = Registry::r4().param("Consent", code).expect(code);
            crate::extract::param_values(p, &consent, &mut out).expect("values");
            out
        };
        let refs = |code: &str| -> Vec<String> {
            targets(code)
                .into_iter()
                .filter_map(|v| match v {
                    crate::IndexValue::Reference { target_id, .. } => target_id,
                    _ => None,
                })
                .collect()
        };
        // Not c: a nested permission with a period of its own grants nothing.
        assert_eq!(refs("oxehr-permit-actor"), ["a"]);
        assert_eq!(refs("oxehr-deny-actor"), ["b"]);
        assert_eq!(targets("oxehr-deny-label").len(), 1);
    }

    /// What the proxy rule (`oxehr_store::access::proxy_grants` and the adolescent
    /// rule) reads from the index: a RelatedPerson's account identifier, `active`,
    /// `patient` and period, a Patient's birthDate, and a resource's `meta.security`.
    #[test]
    fn the_proxy_rule_s_elements_are_indexed_as_it_reads_them() {
        use crate::IndexValue;
        let values = |rtype: &str, code: &str, resource: &serde_json::Value| {
            let mut out = Vec::new();
            let p = Registry::r4().param(rtype, code).expect(code);
            crate::extract::param_values(p, resource, &mut out).expect("values");
            out
        };
        let token = |system: Option<&str>, code: &str| IndexValue::Token {
            system: system.map(str::to_owned),
            code: Some(code.to_owned()),
            text: None,
        };
        let related = serde_json::json!({
            "resourceType": "RelatedPerson",
            "active": false,
            "patient": {"reference": "Patient/child"},
            "identifier": [{"system": "urn:oxehr:account", "value": "mum"}],
            "period": {"start": "2020-01-01", "end": "2030-06-30"}
        });
        assert_eq!(
            values("RelatedPerson", "identifier", &related),
            [token(Some("urn:oxehr:account"), "mum")]
        );
        assert_eq!(
            values("RelatedPerson", "active", &related),
            [token(None, "false")]
        );
        assert!(matches!(
            values("RelatedPerson", "patient", &related).as_slice(),
            [IndexValue::Reference { target_type: Some(t), target_id: Some(id), .. }]
                if t == "Patient" && id == "child"
        ));
        // 2020-01-01T00:00Z to the last microsecond of 2030-06-30 (UTC), in µs.
        assert_eq!(
            values("RelatedPerson", "oxehr-period", &related),
            [IndexValue::Date {
                low: 1_577_836_800_000_000,
                high: 1_909_094_400_000_000 - 1
            }]
        );
        let open =
            serde_json::json!({"resourceType": "RelatedPerson", "period": {"start": "2020-01-01"}});
        assert_eq!(
            values("RelatedPerson", "oxehr-period", &open),
            [IndexValue::Date {
                low: 1_577_836_800_000_000,
                high: i64::MAX
            }]
        );
        // A birthDate is its day from midnight UTC (2012-02-29: 15,399 days after 1970).
        let patient = serde_json::json!({"resourceType": "Patient", "birthDate": "2012-02-29"});
        assert_eq!(
            values("Patient", "birthdate", &patient),
            [IndexValue::Date {
                low: 15_399 * 86_400_000_000,
                high: 15_400 * 86_400_000_000 - 1
            }]
        );
        let labelled = serde_json::json!({"resourceType": "Observation", "meta": {"security": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}
        ]}});
        let security: Vec<(Option<String>, Option<String>)> =
            values("Observation", "_security", &labelled)
                .into_iter()
                .filter_map(|v| match v {
                    IndexValue::Token { system, code, .. } => Some((system, code)),
                    _ => None,
                })
                .collect();
        assert_eq!(
            security,
            [
                (
                    Some("http://terminology.hl7.org/CodeSystem/v3-Confidentiality".into()),
                    Some("R".into())
                ),
                (
                    Some("http://terminology.hl7.org/CodeSystem/v3-ActCode".into()),
                    Some("PSY".into())
                ),
            ]
        );
    }

    #[test]
    fn resource_level_params_apply_to_every_type() {
        let r = Registry::r4();
        for code in [
            "_id",
            "_lastUpdated",
            "_tag",
            "_profile",
            "_security",
            "_source",
        ] {
            assert!(r.param("Observation", code).is_some(), "{code}");
            assert!(r.param("Bundle", code).is_some(), "{code}");
        }
        assert!(r.param("Observation", "_text").is_some());
        assert!(r.param("Bundle", "_text").is_none());
    }

    #[test]
    fn param_keys_do_not_collide() {
        let r = Registry::r4();
        let mut seen = HashMap::new();
        for (ty, params) in &r.by_type {
            for p in params {
                let name = format!("{ty}.{}", p.code);
                if let Some(other) = seen.insert(p.key, name.clone()) {
                    assert_eq!(other, name, "key collision");
                }
            }
        }
    }

    #[test]
    fn derived_of_type_keys_do_not_collide() {
        let r = Registry::r4();
        let mut seen: HashMap<ParamKey, String> = HashMap::new();
        for (ty, params) in &r.by_type {
            for p in params {
                seen.insert(p.key, format!("{ty}.{}", p.code));
            }
        }
        for (ty, params) in &r.by_type {
            for p in params.iter().filter(|p| p.kind == ParamKind::Token) {
                let name = format!("{ty}.{}:of-type", p.code);
                let key = ParamKey::of(ty, &format!("{}:of-type", p.code));
                if let Some(other) = seen.insert(key, name.clone()) {
                    panic!("key collision: {name} and {other}");
                }
            }
        }
    }

    /// The system a required binding implies, read from the definitions here.
    fn bound_system(path: &str) -> String {
        let defs = Definitions::r4();
        let url = defs
            .element_at(path)
            .and_then(|e| e.binding.as_deref())
            .expect("required binding");
        let systems: HashSet<&str> = defs
            .value_set(url)
            .expect("enumerable value set")
            .iter()
            .map(|(s, _)| s.as_str())
            .collect();
        assert_eq!(systems.len(), 1, "{path}: {systems:?}");
        systems.into_iter().next().unwrap_or_default().to_string()
    }

    #[test]
    fn code_params_carry_the_system_of_their_binding() {
        let r = Registry::r4();
        for (ty, code, path) in [
            ("Patient", "gender", "Patient.gender"),
            ("Observation", "status", "Observation.status"),
            ("ServiceRequest", "intent", "ServiceRequest.intent"),
            ("Encounter", "class", ""),
            ("Encounter", "location-period", ""),
            ("Encounter", "status", "Encounter.status"),
            ("MedicationRequest", "status", "MedicationRequest.status"),
            ("Person", "gender", "Person.gender"),
            ("Observation", "code", ""),
            ("Patient", "identifier", ""),
            ("Patient", "language", ""),
        ] {
            let p = r.param(ty, code).expect("param");
            let expected = (!path.is_empty()).then(|| bound_system(path));
            assert_eq!(p.code_system, expected, "{ty}.{code}");
        }
        assert_eq!(
            r.param("Patient", "gender")
                .and_then(|p| p.code_system.as_deref()),
            Some("http://hl7.org/fhir/administrative-gender")
        );
        assert_eq!(
            r.param("Observation", "status")
                .and_then(|p| p.code_system.as_deref()),
            Some("http://hl7.org/fhir/observation-status")
        );
        // A two-level path: Encounter.location.status.
        let defs = Definitions::r4();
        assert_eq!(
            code_system_of(defs, "Encounter.location.status"),
            Some(bound_system("Encounter.location.status"))
        );
        // A union whose branches agree, and one whose branches do not.
        assert_eq!(
            code_system_of(defs, "Patient.gender | Person.gender"),
            Some(bound_system("Patient.gender"))
        );
        assert_eq!(
            code_system_of(defs, "Patient.gender | Observation.status"),
            None
        );
        assert_eq!(code_system_of(defs, "Patient.gender.where(true)"), None);
        let with_system = r
            .by_type
            .values()
            .flatten()
            .filter(|p| p.code_system.is_some())
            .count();
        assert!(with_system > 100, "{with_system}");
    }

    #[test]
    fn union_expressions_keep_only_own_branches() {
        assert_eq!(
            branches_for(
                "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient)",
                "CarePlan"
            ),
            "CarePlan.subject.where(resolve() is Patient)"
        );
        assert_eq!(
            branches_for(
                "(Observation.value as Quantity) | (Observation.value as SampledData)",
                "Observation"
            ),
            "(Observation.value as Quantity) | (Observation.value as SampledData)"
        );
        assert_eq!(branches_for("Resource.id", "Patient"), "Resource.id");
    }
}

#[cfg(test)]
mod union_tests {
    use super::*;

    /// The unions found among the core parameters are those whose definitions say so in
    /// their expressions; each is checked here against the expression text of the
    /// SearchParameter resources in the spec's search-parameters.json (read by the
    /// definitions, not by this module).
    #[test]
    fn unions_are_the_combo_parameters_of_observation() {
        let r = Registry::r4();
        let mut found: Vec<(String, String, Vec<String>)> = r
            .by_type
            .iter()
            .flat_map(|(ty, ps)| {
                ps.iter()
                    .filter(|p| !p.union_of.is_empty())
                    .map(move |p| (ty.clone(), p.code.clone(), p.union_of.clone()))
            })
            .collect();
        found.sort();
        let expected: Vec<(String, String, Vec<String>)> = [
            ("combo-code", ["code", "component-code"]),
            (
                "combo-code-value-concept",
                ["code-value-concept", "component-code-value-concept"],
            ),
            (
                "combo-code-value-quantity",
                ["code-value-quantity", "component-code-value-quantity"],
            ),
            (
                "combo-data-absent-reason",
                ["data-absent-reason", "component-data-absent-reason"],
            ),
            (
                "combo-value-concept",
                ["value-concept", "component-value-concept"],
            ),
            (
                "combo-value-quantity",
                ["value-quantity", "component-value-quantity"],
            ),
        ]
        .iter()
        .map(|(c, parts)| {
            (
                "Observation".to_owned(),
                c.to_string(),
                parts.iter().map(|p| p.to_string()).collect(),
            )
        })
        .collect();
        assert_eq!(found, expected);
        // Word for word, per the definitions: the union's branches are its parts'
        // branches on Observation (`code` is defined on fifteen types at once), in order.
        let defs = Definitions::r4();
        let observation_branches = |c: &str| -> Vec<String> {
            let src = defs
                .search_params()
                .iter()
                .find(|d| d.code == c && d.base.iter().any(|b| b == "Observation"))
                .and_then(|d| d.expression.clone())
                .unwrap();
            src.split(" | ")
                .map(|b| b.trim().to_owned())
                .filter(|b| {
                    let b = b.trim_start_matches('(');
                    b == "Observation" || b.starts_with("Observation.")
                })
                .collect()
        };
        for (_, code, parts) in &expected {
            let joined: Vec<String> = parts.iter().flat_map(|p| observation_branches(p)).collect();
            let whole = observation_branches(code);
            assert!(whole.len() >= 2);
            assert_eq!(whole, joined, "{code}");
        }
    }
}

#[cfg(test)]
mod narrowing_tests {
    use super::*;

    /// Every narrowing found is the definition's own words: the narrowed parameter's
    /// branch for its type in search-parameters.json is the other's branch followed by
    /// `.where(resolve() is T)`, `T` among its targets; and the ones the access rules'
    /// neighbours rely on are found (Observation's and Encounter's `patient` from
    /// `subject`, Provenance's from `target`).
    #[test]
    fn narrowings_are_the_definitions_own_words() {
        let r = Registry::r4();
        let defs = Definitions::r4();
        let mut n = 0;
        for (ty, params) in &r.by_type {
            for p in params {
                let Some((of, t)) = &p.narrowed_of else {
                    continue;
                };
                n += 1;
                let raw = |code: &str| {
                    defs.search_params()
                        .iter()
                        .find(|d| d.code == code && d.base.iter().any(|b| b == ty))
                        .and_then(|d| d.expression.clone())
                        .map(|e| branches_for(&e, ty))
                        .unwrap_or_default()
                };
                assert_eq!(
                    raw(&p.code).trim(),
                    format!("{}.where(resolve() is {t})", raw(of).trim()),
                    "{ty}.{}",
                    p.code
                );
                assert!(p.targets.contains(t), "{ty}.{}", p.code);
                assert_eq!(p.stored_keys, vec![ParamKey::of(ty, of)]);
                let base = r.param(ty, of).expect("base");
                assert!(base.is_indexed() && base.narrowed_into.contains(&p.code));
            }
        }
        assert_eq!(n, 47);
        for (ty, code, of) in [
            ("Observation", "patient", "subject"),
            ("Encounter", "patient", "subject"),
            ("Provenance", "patient", "target"),
        ] {
            let p = r.param(ty, code).expect("param");
            assert_eq!(p.narrowed_of, Some((of.to_owned(), "Patient".to_owned())));
        }
        // A parameter of its own type stays indexed (AllergyIntolerance.patient).
        assert!(r
            .param("AllergyIntolerance", "patient")
            .expect("p")
            .is_indexed());
    }
}
