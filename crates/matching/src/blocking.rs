//! Blocking: the few store searches that find the candidates worth scoring for a query
//! Patient. Each key is one FHIR search parameter, so a store answers it from one index;
//! a true match is found when any one of its keys survives the differences between the
//! two records (a new MRN, a typo in the name, a move, a new phone).
//!
//! | key | why |
//! | --- | --- |
//! | `identifier=system\|value`, at most [`MAX_IDENTIFIERS`] | deterministic matches |
//! | `birthdate=YYYY-MM-DD`, and the date with day and month swapped when that is a date | survives name typos, moves and new numbers |
//! | `family=...` (the first family name, digits dropped) | survives a wrong birth date; string search is a prefix match, so "Jerde" finds "Jerde200" |
//! | `phone=...`, `email=...` (the first of each, as written) | survive a wrong name and birth date; the store indexes ContactPoint values as written |
//!
//! Values are escaped as FHIR search requires (`\`, `,`, `$`, `|` with a backslash) but not
//! percent-encoded: that is the caller's URL's business.

use serde_json::Value;

use crate::birth_date::birth_date;
use crate::identifier::identifiers;
use crate::telecom;

/// The most identifier keys one query yields.
pub const MAX_IDENTIFIERS: usize = 3;

/// Search parameters (name, value) that find candidates in a store for `query` ("blocking"),
/// e.g. `identifier=sys|val`, `birthdate=…`, `family=…`, `phone=…`: at most eight, so a store
/// search per key is bounded. Never panics; a query with nothing usable yields none.
pub fn candidate_queries(query: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |name: &str, value: String| {
        if !value.is_empty() && !out.iter().any(|(n, v)| n == name && *v == value) {
            out.push((name.to_string(), value));
        }
    };
    for id in identifiers(query).into_iter().take(MAX_IDENTIFIERS) {
        push(
            "identifier",
            format!(
                "{}|{}",
                oxehr_search::escape_value(&id.system),
                oxehr_search::escape_value(&id.value)
            ),
        );
    }
    if let Some(date) = birth_date(query) {
        if let Some(full) = date.full() {
            push("birthdate", full);
        }
        if let Some(swapped) = date.transposed().and_then(|d| d.full()) {
            push("birthdate", swapped);
        }
    }
    let family = query
        .get("name")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| n.get("family").and_then(Value::as_str))
        .map(|f| {
            let f: String = f.chars().filter(|c| !c.is_ascii_digit()).collect();
            f.trim().to_string()
        })
        .find(|f| !f.is_empty());
    if let Some(family) = family {
        push("family", oxehr_search::escape_value(&family));
    }
    if let Some(phone) = telecom::values(query, &["phone", "sms"])
        .map(str::trim)
        .find(|p| !p.is_empty())
    {
        push("phone", oxehr_search::escape_value(phone));
    }
    if let Some(email) = telecom::values(query, &["email"])
        .map(str::trim)
        .find(|e| e.contains('@'))
    {
        push("email", oxehr_search::escape_value(email));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_cover_identifiers_birth_date_family_and_contacts() {
        let q = json!({
            "resourceType": "Patient",
            "identifier": [
                {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-22-1962"},
                {"system": "urn:a", "value": "1"},
                {"system": "urn:b", "value": "2"},
                {"system": "urn:c", "value": "3"},
                {"value": "no system"}
            ],
            "name": [{"family": "Jerde200", "given": ["Alvin56"]}],
            "birthDate": "1963-09-07",
            "telecom": [
                {"system": "phone", "value": "555-341-3425"},
                {"system": "email", "value": "a@example.org"}
            ]
        });
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            candidate_queries(&q),
            pairs(&[
                ("identifier", "http://hl7.org/fhir/sid/us-ssn|999-22-1962"),
                ("identifier", "urn:a|1"),
                ("identifier", "urn:b|2"),
                ("birthdate", "1963-09-07"),
                ("birthdate", "1963-07-09"),
                ("family", "Jerde"),
                ("phone", "555-341-3425"),
                ("email", "a@example.org"),
            ])
        );
    }

    #[test]
    fn reserved_characters_are_escaped_and_junk_yields_nothing() {
        let q = json!({"identifier": [{"system": "urn:x", "value": "a|b,c"}]});
        assert_eq!(
            candidate_queries(&q),
            vec![("identifier".to_string(), r"urn:x|a\|b\,c".to_string())]
        );
        for v in [
            json!(null),
            json!([1, 2]),
            json!({"name": "x", "birthDate": 5, "telecom": {}}),
        ] {
            assert!(candidate_queries(&v).is_empty(), "{v}");
        }
    }
}
