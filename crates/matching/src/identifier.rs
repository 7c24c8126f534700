//! Identifier comparison: deterministic evidence. Two records that share a value in one
//! assigning system (SSN, a hospital's MRN, a driver's licence) are the same person unless
//! something else is badly wrong; two records that both have a value in one system and no
//! value in common there are strong evidence of two people.
//!
//! An identifier takes part only when it names its system and value, is not temporary
//! (`use` = `temp`: such numbers are reused), and its type is not a placeholder (v2-0203
//! has none, so the null flavours `UNK`/`NI`/`NA`/`U` and `ANON`, an anonymous identifier,
//! are the placeholders). The code systems of types (v2-0203 itself) are sometimes sent as
//! an identifier's system by mistake; they name no assigner and are skipped too.

use serde_json::Value;

use crate::Agreement;

/// One usable identifier, normalised for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identifier {
    /// The system as written, without a trailing `/`.
    pub system: String,
    /// The value as written (for search keys).
    pub value: String,
    /// The value without spaces and hyphens, upper case ("999-22-1962" is "999221962").
    key: String,
}

const PLACEHOLDER_TYPES: &[&str] = &["UNK", "NI", "NA", "U", "ANON"];
const NOT_ASSIGNERS: &[&str] = &[
    "http://terminology.hl7.org/CodeSystem/v2-0203",
    "http://hl7.org/fhir/v2/0203",
    "http://hl7.org/fhir/identifier-type",
];

/// The usable identifiers of a Patient.
pub(crate) fn identifiers(patient: &Value) -> Vec<Identifier> {
    let Some(list) = patient.get("identifier").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter().filter_map(identifier).collect()
}

fn identifier(v: &Value) -> Option<Identifier> {
    let system = v.get("system")?.as_str()?.trim().trim_end_matches('/');
    let value = v.get("value")?.as_str()?.trim();
    let key: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    if system.is_empty() || key.is_empty() || NOT_ASSIGNERS.contains(&system) {
        return None;
    }
    if v.get("use").and_then(Value::as_str) == Some("temp") {
        return None;
    }
    let placeholder = v
        .pointer("/type/coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("code").and_then(Value::as_str))
        .any(|code| PLACEHOLDER_TYPES.contains(&code));
    if placeholder {
        return None;
    }
    Some(Identifier {
        system: system.to_string(),
        value: value.to_string(),
        key,
    })
}

/// Agree: some system holds a common value and none conflicts. Disagree: some system that
/// both records have holds no common value, and no system agrees. Partial: one system
/// agrees and another conflicts. Missing: no system in common.
pub(crate) fn compare(a: &[Identifier], b: &[Identifier]) -> Agreement {
    let mut agree = false;
    let mut conflict = false;
    for x in a {
        let same_system: Vec<&Identifier> = b.iter().filter(|y| y.system == x.system).collect();
        if same_system.is_empty() {
            continue;
        }
        let shared = same_system.iter().any(|y| y.key == x.key);
        // A record may hold several values of one system (an old and a new MRN): the
        // system conflicts only when none of x's values of it appears in b.
        let any_common_in_system = a
            .iter()
            .filter(|z| z.system == x.system)
            .any(|z| same_system.iter().any(|y| y.key == z.key));
        agree |= shared;
        conflict |= !any_common_in_system;
    }
    match (agree, conflict) {
        (true, false) => Agreement::Agree,
        (true, true) => Agreement::Partial,
        (false, true) => Agreement::Disagree,
        (false, false) => Agreement::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SSN: &str = "http://hl7.org/fhir/sid/us-ssn";
    const MRN: &str = "http://hospital.smarthealthit.org";

    fn ids(list: &[(&str, &str)]) -> Vec<Identifier> {
        let list: Vec<Value> = list
            .iter()
            .map(|(s, v)| json!({"system": s, "value": v}))
            .collect();
        identifiers(&json!({ "identifier": list }))
    }

    #[test]
    fn shared_and_conflicting_values_per_system() {
        use Agreement::*;
        type Ids<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Ids, Ids, Agreement)] = &[
            (&[(SSN, "999-22-1962")], &[(SSN, "999-22-1962")], Agree),
            // Formatting of the value does not matter.
            (&[(SSN, "999-22-1962")], &[(SSN, "999 22 1962")], Agree),
            // A trailing slash on the system does not matter.
            (
                &[(MRN, "A1")],
                &[("http://hospital.smarthealthit.org/", "a1")],
                Agree,
            ),
            (&[(SSN, "999-22-1962")], &[(SSN, "999-88-8619")], Disagree),
            // Same value in different systems is no evidence.
            (&[(SSN, "123")], &[(MRN, "123")], Missing),
            (
                &[(SSN, "1"), (MRN, "A")],
                &[(SSN, "1"), (MRN, "B")],
                Partial,
            ),
            // Two MRNs of one system, one of them shared: agreement, not conflict.
            (&[(MRN, "A"), (MRN, "OLD")], &[(MRN, "A")], Agree),
            (&[], &[(MRN, "A")], Missing),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare(&ids(a), &ids(b)), *expected, "{a:?} / {b:?}");
            assert_eq!(compare(&ids(b), &ids(a)), *expected, "{b:?} / {a:?}");
        }
    }

    #[test]
    fn trivial_identifiers_are_ignored() {
        let p = json!({"identifier": [
            {"value": "no-system"},
            {"system": "http://x", "value": ""},
            {"system": "http://x", "value": "T1", "use": "temp"},
            {"system": "http://x", "value": "U1",
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK"}]}},
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "value": "MR"},
            {"system": 5, "value": "x"},
            "not an object",
            {"system": "http://x", "value": "KEEP", "use": "official"}
        ]});
        let got = identifiers(&p);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value, "KEEP");
        assert!(identifiers(&json!({"identifier": {"system": "x"}})).is_empty());
        assert!(identifiers(&json!([])).is_empty());
    }
}
