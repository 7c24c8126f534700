//! Typed search-index entries: what the store writes for each resource version, one row
//! per (search parameter, value). The types follow the FHIR search parameter types.

/// Stable key of a search parameter of one resource type: FNV-1a 32-bit hash of
/// `"{ResourceType}.{code}"` (e.g. `Observation.code`), stored as an integer so index
/// rows stay small. The registry checks at start-up that no two keys collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamKey(pub i32);

impl ParamKey {
    pub fn of(resource_type: &str, code: &str) -> ParamKey {
        let mut h: u32 = 0x811c_9dc5;
        for b in resource_type
            .bytes()
            .chain(std::iter::once(b'.'))
            .chain(code.bytes())
        {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        ParamKey(h as i32)
    }
}

/// One index row of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub param: ParamKey,
    pub value: IndexValue,
}

/// A value extracted for a search parameter, typed as the parameter is.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// `normalized`: lower case, accents stripped, whitespace collapsed (for the default
    /// starts-with search and `:contains`); `exact`: the value as written (`:exact`).
    String {
        normalized: String,
        exact: String,
    },
    /// Codes, identifiers, booleans, ContactPoint values. `text` is the normalized display
    /// or CodeableConcept.text (for `:text`).
    Token {
        system: Option<String>,
        code: Option<String>,
        text: Option<String>,
    },
    /// The implicit range of a date, dateTime, instant, Period or Timing, as microseconds
    /// since the Unix epoch, both ends inclusive. Open ends use `i64::MIN` / `i64::MAX`.
    Date {
        low: i64,
        high: i64,
    },
    /// A number, with the implicit range given by its precision (`100` → [99.5, 100.5)).
    Number {
        value: f64,
        low: f64,
        high: f64,
    },
    /// A Quantity (or Money, Age, Duration…), plus its UCUM-canonical form where known.
    Quantity {
        value: f64,
        low: f64,
        high: f64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
        canonical_value: Option<f64>,
        canonical_code: Option<String>,
    },
    /// A literal reference (`Patient/123`, resolved to type and id), an absolute URL or
    /// canonical (`url`, with `version`), and/or a logical reference by identifier.
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        version: Option<String>,
        url: Option<String>,
        identifier_system: Option<String>,
        identifier_value: Option<String>,
    },
    Uri {
        value: String,
    },
    /// A composite parameter: one value per component, in the definition's order.
    Composite {
        parts: Vec<IndexValue>,
    },
    /// Full text of `_text` (the narrative) or `_content` (the whole resource),
    /// normalized like strings (lower case, accents stripped, whitespace collapsed).
    /// Never a composite part.
    Text {
        content: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_keys_are_fnv1a_of_type_dot_code() {
        // FNV-1a 32 of "a" is 0xe40c292c (reference value of the algorithm).
        let mut h: u32 = 0x811c_9dc5;
        h ^= u32::from(b'a');
        h = h.wrapping_mul(0x0100_0193);
        assert_eq!(h, 0xe40c_292c);
        assert_ne!(
            ParamKey::of("Observation", "code"),
            ParamKey::of("Condition", "code")
        );
    }
}
