//! Address comparison: the street line (house and unit numbers exactly, street words by
//! Jaro–Winkler), then the place (postal code, or city when a postal code is not on both).

use serde_json::Value;

use crate::text::{address_words, digits, jaro_winkler, name_words};
use crate::Agreement;

/// Jaro–Winkler at or above which street words (and city names) agree: a typo in a street
/// name stays above it, a different street in the same town rarely reaches it.
const STREET_JW: f64 = 0.92;

/// One Address reduced to what is compared.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Address {
    /// Tokens that hold a digit: house number, unit number, in order.
    numbers: Vec<String>,
    /// The other words of the lines, joined by spaces, unit designators dropped.
    street: String,
    /// The first five digits of a US ZIP code, or the code's letters and digits otherwise.
    postal: Option<String>,
    city: Option<String>,
}

/// The addresses of a Patient that have a line, a postal code or a city.
pub(crate) fn addresses(patient: &Value) -> Vec<Address> {
    let Some(list) = patient.get("address").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter().filter_map(address).collect()
}

fn address(v: &Value) -> Option<Address> {
    let mut numbers = Vec::new();
    let mut street = Vec::new();
    let lines = v
        .get("line")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for word in lines.filter_map(Value::as_str).flat_map(address_words) {
        if word.chars().any(|c| c.is_ascii_digit()) {
            numbers.push(word);
        } else if word != "#" {
            street.push(word);
        }
    }
    let postal = v.get("postalCode").and_then(Value::as_str).and_then(|p| {
        let d = digits(p);
        let code = if d.len() >= 5 && d.len() == p.chars().filter(|c| c.is_alphanumeric()).count() {
            d[..5].to_string()
        } else {
            p.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_uppercase)
                .collect()
        };
        (!code.is_empty()).then_some(code)
    });
    let city = v
        .get("city")
        .and_then(Value::as_str)
        .map(|c| name_words(c).join(" "))
        .filter(|c| !c.is_empty());
    let a = Address {
        numbers,
        street: street.join(" "),
        postal,
        city,
    };
    let has_line = !a.numbers.is_empty() || !a.street.is_empty();
    (has_line || a.postal.is_some() || a.city.is_some()).then_some(a)
}

impl Address {
    fn has_line(&self) -> bool {
        !self.numbers.is_empty() || !self.street.is_empty()
    }
}

/// The best outcome over every pair of addresses: agree is the same line in the same place,
/// partial the same place on another line (or the same line in another place), disagree
/// neither.
pub(crate) fn compare(a: &[Address], b: &[Address]) -> Agreement {
    let mut best = Agreement::Missing;
    for x in a {
        for y in b {
            let outcome = compare_one(x, y);
            if rank(outcome) > rank(best) {
                best = outcome;
            }
        }
    }
    best
}

fn rank(a: Agreement) -> u8 {
    match a {
        Agreement::Missing => 0,
        Agreement::Disagree => 1,
        Agreement::Partial => 2,
        Agreement::Agree => 3,
    }
}

fn compare_one(x: &Address, y: &Address) -> Agreement {
    let line = (x.has_line() && y.has_line()).then(|| {
        x.numbers == y.numbers
            && (x.street == y.street || jaro_winkler(&x.street, &y.street) >= STREET_JW)
    });
    let postal = x
        .postal
        .as_ref()
        .zip(y.postal.as_ref())
        .map(|(p, q)| p == q);
    let city = x
        .city
        .as_ref()
        .zip(y.city.as_ref())
        .map(|(c, d)| c == d || jaro_winkler(c, d) >= STREET_JW);
    // The place agrees when any part of it that both records give agrees (a mistyped ZIP
    // in the right city still places the address).
    let place = match (postal, city) {
        (None, None) => None,
        (p, c) => Some(p == Some(true) || c == Some(true)),
    };
    match (line, place) {
        (Some(true), Some(true) | None) => Agreement::Agree,
        (Some(true), Some(false)) => Agreement::Partial,
        (_, Some(true)) => Agreement::Partial,
        (Some(false), _) | (None, Some(false)) => Agreement::Disagree,
        (None, None) => Agreement::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn addr(line: &str, city: &str, postal: &str) -> Vec<Address> {
        let mut a = serde_json::Map::new();
        if !line.is_empty() {
            a.insert("line".into(), json!([line]));
        }
        if !city.is_empty() {
            a.insert("city".into(), json!(city));
        }
        if !postal.is_empty() {
            a.insert("postalCode".into(), json!(postal));
        }
        addresses(&json!({ "address": [a] }))
    }

    #[test]
    fn line_and_place_decide_the_outcome() {
        use Agreement::*;
        let home = ("313 Lockman Row Suite 4", "Peabody", "01960");
        let cases = [
            (("313 Lockman Row Suite 4", "Peabody", "01960"), Agree),
            // Spelling of the unit designator and of the ZIP+4.
            (("313 LOCKMAN ROW, APT 4", "PEABODY", "01960-1234"), Agree),
            // A typo in the street name (JW of "lockman row"/"lokcman row" ≈ 0.97).
            (("313 Lokcman Row Suite 4", "Peabody", "01960"), Agree),
            // A wrong ZIP in the right city.
            (("313 Lockman Row Suite 4", "Peabody", "01961"), Agree),
            // Another unit in the same building: same place, another line.
            (("313 Lockman Row Suite 5", "Peabody", "01960"), Partial),
            // Another house on the street.
            (("315 Lockman Row Suite 4", "Peabody", "01960"), Partial),
            // Moved away.
            (("12 Main Street", "Boston", "02108"), Disagree),
            // Same line in another town.
            (("313 Lockman Row Suite 4", "Boston", "02108"), Partial),
            // Only a place.
            (("", "Peabody", ""), Partial),
            (("", "", ""), Missing),
        ];
        let a = addr(home.0, home.1, home.2);
        for ((l, c, p), expected) in cases {
            let b = addr(l, c, p);
            assert_eq!(compare(&a, &b), expected, "{l}/{c}/{p}");
            assert_eq!(compare(&b, &a), expected, "{l}/{c}/{p} reversed");
        }
    }

    #[test]
    fn the_best_of_several_addresses_counts() {
        let a = addresses(&json!({"address": [
            {"line": ["1 Old Rd"], "city": "Lowell", "postalCode": "01850"},
            {"line": ["313 Lockman Row"], "city": "Peabody", "postalCode": "01960"}
        ]}));
        let b = addr("313 Lockman Row", "Peabody", "01960");
        assert_eq!(compare(&a, &b), Agreement::Agree);
    }

    #[test]
    fn malformed_addresses_are_missing() {
        for v in [
            json!({"address": "x"}),
            json!({"address": [1, {"line": "313 Lockman"}, {"city": 4}]}),
            json!(7),
        ] {
            assert!(addresses(&v).is_empty(), "{v}");
        }
    }
}
