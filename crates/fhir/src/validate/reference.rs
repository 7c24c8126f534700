//! References: the syntax of `Reference.reference`, its target type against the
//! element's allowed targets, local (`#id`) references to contained resources (ref-1),
//! and the bookkeeping for dom-3 (every contained resource is referenced).

use serde_json::{Map, Value};

use super::model::{Entry, Model};
use super::primitive;
use super::Walker;
use crate::outcome::IssueCode;

/// The contained resources of one container and the local references seen inside it.
#[derive(Debug, Default)]
pub(crate) struct Scope<'a> {
    /// (index in `contained`, id, resourceType) of each contained resource.
    contained: Vec<(usize, &'a str, &'a str)>,
    /// `#id` values seen anywhere in the container.
    local_refs: Vec<&'a str>,
    /// Indexes of contained resources that refer to their container (`#`).
    refer_container: Vec<usize>,
}

impl<'a> Scope<'a> {
    pub fn of(obj: &'a Map<String, Value>) -> Scope<'a> {
        let mut s = Scope::default();
        if let Some(Value::Array(items)) = obj.get("contained") {
            for (i, item) in items.iter().enumerate() {
                if let Some(Value::String(id)) = item.get("id") {
                    let ty = match item.get("resourceType") {
                        Some(Value::String(t)) => t.as_str(),
                        _ => "",
                    };
                    s.contained.push((i, id.as_str(), ty));
                }
            }
        }
        s
    }

    /// Records a `#…` value found in the container (or in contained resource `from`).
    pub fn note_local(&mut self, r: &'a str, from: Option<usize>) {
        if self.contained.is_empty() {
            return;
        }
        match (r, from) {
            ("#", Some(i)) => self.refer_container.push(i),
            _ => self.local_refs.push(r),
        }
    }

    fn lookup(&self, id: &str) -> Option<&'a str> {
        self.contained
            .iter()
            .find(|(_, cid, _)| *cid == id)
            .map(|(_, _, t)| *t)
    }

    /// Contained resources that nothing refers to and that do not refer to the container.
    pub fn unreferenced(&self) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        self.contained.iter().filter_map(|&(i, id, _)| {
            let used = self.refer_container.contains(&i)
                || self.local_refs.iter().any(|r| r.get(1..) == Some(id));
            (!used).then_some((i, id))
        })
    }
}

/// What a reference string points at, as far as its syntax shows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target<'s> {
    /// `#id` (`""` for `#`, the container).
    Local(&'s str),
    /// A resource of this type (`Patient/1`, `Patient/1/_history/2`, `Patient?x=y`, or
    /// an absolute URL ending in `Patient/1`).
    Typed(&'s str),
    /// A URI whose type cannot be seen (`urn:uuid:`, `urn:oid:`, other absolute URIs).
    Opaque,
}

/// Why a reference string is not a reference.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RefError {
    Syntax,
    UnknownType,
}

pub(crate) fn parse<'s>(model: &Model, r: &'s str) -> Result<Target<'s>, RefError> {
    if let Some(id) = r.strip_prefix('#') {
        return Ok(Target::Local(id));
    }
    let id_ok = |s: &str| primitive::lexical(model, &model.id_prim, s);
    let regex_ok = |re: Option<u16>| re.is_none_or(|re| model.regex(re).is_match(r.as_bytes()));
    if r.starts_with("urn:uuid:") {
        let uuid_ok = model
            .uuid_prim
            .as_ref()
            .is_none_or(|p| primitive::lexical(model, p, r));
        return if uuid_ok {
            Ok(Target::Opaque)
        } else {
            Err(RefError::Syntax)
        };
    }
    if r.starts_with("urn:oid:") {
        return if regex_ok(model.oid_regex) {
            Ok(Target::Opaque)
        } else {
            Err(RefError::Syntax)
        };
    }
    if r.chars().any(char::is_whitespace) {
        return Err(RefError::Syntax);
    }
    let scheme_end = r.find(':');
    let path_start = r.find(['/', '?']);
    if let Some(c) = scheme_end {
        if path_start.is_none_or(|p| c < p) {
            // Absolute URI: the type is visible when it ends in `Type/id[/_history/vid]`.
            let path = r.split(['?', '#']).next().unwrap_or(r);
            let segs: Vec<&str> = path.rsplit('/').take(4).collect();
            let ty = match segs.as_slice() {
                [_, "_history", _, t] => Some(*t),
                [_, t, ..] => Some(*t),
                _ => None,
            };
            return Ok(match ty {
                Some(t) if model.defs.is_resource_type(t) => Target::Typed(t),
                _ => Target::Opaque,
            });
        }
    }
    if let Some((ty, _query)) = r.split_once('?') {
        return if model.defs.is_resource_type(ty) {
            Ok(Target::Typed(ty))
        } else {
            Err(RefError::UnknownType)
        };
    }
    let mut parts = r.split('/');
    let (ty, id, hist, vid, rest) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    );
    let shape_ok = match (id, hist, vid, rest) {
        (Some(id), None, None, None) => id_ok(id),
        (Some(id), Some("_history"), Some(v), None) => id_ok(id) && id_ok(v),
        _ => false,
    };
    match ty {
        Some(t) if shape_ok && model.defs.is_resource_type(t) => Ok(Target::Typed(t)),
        Some(t) if shape_ok && t.starts_with(|c: char| c.is_ascii_uppercase()) => {
            Err(RefError::UnknownType)
        }
        _ => Err(RefError::Syntax),
    }
}

impl<'a> Walker<'a> {
    /// Checks `Reference.reference` of an element whose allowed targets are in `entry`.
    pub(super) fn reference(&mut self, o: &'a Map<String, Value>, entry: &'static Entry) {
        let Some(Value::String(r)) = o.get("reference") else {
            return;
        };
        let path = &entry.el.path;
        let ty = match parse(self.model, r) {
            Err(RefError::Syntax) => {
                let msg = format!(
                    "{path}: reference is not a relative, absolute, urn or #local reference"
                );
                self.report_child(IssueCode::Value, msg, "reference");
                return;
            }
            Err(RefError::UnknownType) => {
                let msg = format!("{path}: reference names a type that is not an R4 resource type");
                self.report_child(IssueCode::Value, msg, "reference");
                return;
            }
            Ok(Target::Opaque) => return,
            Ok(Target::Typed(t)) => t,
            Ok(Target::Local(id)) => {
                let in_contained = self.in_contained;
                let found = match self.scopes.last_mut() {
                    Some(scope) => {
                        scope.note_local(r, in_contained);
                        if id.is_empty() {
                            in_contained.map(|_| "")
                        } else {
                            scope.lookup(id)
                        }
                    }
                    None => None,
                };
                match found {
                    None => {
                        let msg = format!(
                            "ref-1: {path}: a local reference needs a contained resource with that id"
                        );
                        self.report_child(IssueCode::Invariant, msg, "reference");
                        return;
                    }
                    Some("") => return,
                    Some(t) => t,
                }
            }
        };
        let defs = self.model.defs;
        let allowed = entry.targets.is_empty()
            || entry.targets.iter().any(|t| t == "Resource" || t == ty)
            || entry.targets.iter().any(|t| defs.is_subtype(ty, t));
        if !allowed {
            let msg = format!(
                "{path}: reference target type is not allowed here (allowed: {})",
                entry.targets.join(", ")
            );
            self.report_child(IssueCode::Invalid, msg, "reference");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_syntax() {
        let m = Model::get();
        let cases: &[(&str, Result<Target, RefError>)] = &[
            ("Patient/123", Ok(Target::Typed("Patient"))),
            ("Patient/123/_history/2", Ok(Target::Typed("Patient"))),
            (
                "Practitioner?identifier=a|b",
                Ok(Target::Typed("Practitioner")),
            ),
            ("http://x.org/fhir/Patient/1", Ok(Target::Typed("Patient"))),
            (
                "http://x.org/fhir/Patient/1/_history/3",
                Ok(Target::Typed("Patient")),
            ),
            ("http://x.org/a/b", Ok(Target::Opaque)),
            (
                "urn:uuid:3f228315-d2de-4292-a56a-b7c120c2875d",
                Ok(Target::Opaque),
            ),
            ("urn:uuid:not-a-uuid", Err(RefError::Syntax)),
            ("urn:oid:1.2.3", Ok(Target::Opaque)),
            ("#p1", Ok(Target::Local("p1"))),
            ("#", Ok(Target::Local(""))),
            ("Patient", Err(RefError::Syntax)),
            ("Patient/a b", Err(RefError::Syntax)),
            ("Patient/1/2", Err(RefError::Syntax)),
            ("Foo/1", Err(RefError::UnknownType)),
            ("Patient/", Err(RefError::Syntax)),
        ];
        for (r, want) in cases {
            assert_eq!(&parse(m, r), want, "{r}");
        }
    }
}
