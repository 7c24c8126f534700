//! Newtypes for identity, so that no bare `String` id crosses a layer boundary.

use std::fmt;
use std::sync::Arc;

/// A FHIR resource type name that exists in R4 core (e.g. `Patient`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType(Arc<str>);

impl ResourceType {
    /// Accepts only the names of R4 core resource types (not abstract ones such as `Resource`).
    pub fn parse(name: &str) -> Option<Self> {
        if crate::Definitions::r4().is_resource_type(name) {
            Some(ResourceType(Arc::from(name)))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ResourceType {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A logical resource id: `[A-Za-z0-9\-\.]{1,64}` (FHIR `id` datatype).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(Arc<str>);

impl ResourceId {
    pub fn parse(s: &str) -> Option<Self> {
        if is_valid_id(s) {
            Some(ResourceId(Arc::from(s)))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The FHIR `id` regex `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ResourceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A version of a resource: 1 for the first, incremented by every update and delete.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct VersionId(pub u64);

impl VersionId {
    pub fn parse(s: &str) -> Option<Self> {
        s.parse::<u64>().ok().filter(|v| *v > 0).map(VersionId)
    }

    pub fn next(self) -> Self {
        VersionId(self.0 + 1)
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_fhir_id_regex() {
        let cases = [
            ("a", true),
            ("Patient-1.2", true),
            (&"x".repeat(64), true),
            (&"x".repeat(65), false),
            ("", false),
            ("a b", false),
            ("a_b", false),
            ("é", false),
        ];
        for (input, ok) in cases {
            assert_eq!(ResourceId::parse(input).is_some(), ok, "{input}");
        }
    }

    #[test]
    fn resource_types_are_the_core_ones() {
        assert!(ResourceType::parse("Patient").is_some());
        assert!(ResourceType::parse("Observation").is_some());
        assert!(ResourceType::parse("patient").is_none());
        assert!(ResourceType::parse("DomainResource").is_none());
        assert!(ResourceType::parse("HumanName").is_none());
    }
}
