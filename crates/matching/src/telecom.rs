//! Phone numbers and email addresses from `telecom`.

use serde_json::Value;

use crate::text::digits;
use crate::Agreement;

/// Fewer digits than this are an extension or a fragment, not a number to compare.
const MIN_PHONE_DIGITS: usize = 7;

/// The phone numbers (`system` phone or sms) of a Patient: digits only, the last ten, so
/// "+1 (555) 978-4581" and "555-978-4581" are one number.
pub(crate) fn phones(patient: &Value) -> Vec<String> {
    values(patient, &["phone", "sms"])
        .filter_map(|v| {
            let d = digits(v);
            (d.len() >= MIN_PHONE_DIGITS).then(|| d[d.len().saturating_sub(10)..].to_string())
        })
        .collect()
}

/// The email addresses of a Patient, trimmed, without `mailto:`, lower case.
pub(crate) fn emails(patient: &Value) -> Vec<String> {
    values(patient, &["email"])
        .map(|v| {
            let v = v.trim();
            let v = v.strip_prefix("mailto:").unwrap_or(v);
            v.to_lowercase()
        })
        .filter(|v| v.contains('@'))
        .collect()
}

/// The `value` of each telecom entry whose `system` is one of `systems`.
pub(crate) fn values<'a>(
    patient: &'a Value,
    systems: &'a [&str],
) -> impl Iterator<Item = &'a str> + 'a {
    patient
        .get("telecom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| {
            t.get("system")
                .and_then(Value::as_str)
                .is_some_and(|s| systems.contains(&s))
        })
        .filter_map(|t| t.get("value").and_then(Value::as_str))
}

/// Agree when any value is on both sides, disagree when both sides have values and none is
/// shared, missing otherwise.
pub(crate) fn compare(a: &[String], b: &[String]) -> Agreement {
    if a.is_empty() || b.is_empty() {
        Agreement::Missing
    } else if a.iter().any(|x| b.contains(x)) {
        Agreement::Agree
    } else {
        Agreement::Disagree
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn phone(v: &str) -> Vec<String> {
        phones(&json!({"telecom": [{"system": "phone", "value": v}]}))
    }

    #[test]
    fn phones_compare_on_their_last_ten_digits() {
        use Agreement::*;
        let cases = [
            ("555-978-4581", "555-978-4581", Agree),
            ("555-978-4581", "+1 (555) 978 4581", Agree),
            ("555-978-4581", "5559784581", Agree),
            ("555-978-4581", "555-978-4582", Disagree),
            ("555-978-4581", "x123", Missing),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare(&phone(a), &phone(b)), expected, "{a}/{b}");
        }
    }

    #[test]
    fn emails_compare_case_insensitively_and_other_systems_are_skipped() {
        let a = json!({"telecom": [
            {"system": "email", "value": " Abdul.Koepp@Example.org "},
            {"system": "phone", "value": "555-978-4581"},
            {"system": "fax", "value": "555-000-0000"}
        ]});
        let b =
            json!({"telecom": [{"system": "email", "value": "mailto:abdul.koepp@example.org"}]});
        assert_eq!(compare(&emails(&a), &emails(&b)), Agreement::Agree);
        assert_eq!(phones(&a), vec!["5559784581".to_string()]);
        assert!(
            phones(&json!({"telecom": [{"system": "phone"}, 3, {"value": "555-978-4581"}]}))
                .is_empty()
        );
        assert!(emails(&json!({"telecom": "x"})).is_empty());
    }
}
