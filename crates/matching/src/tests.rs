//! Whole-record cases: each expected grade follows from the weight table and the rules in
//! the crate doc, worked out by hand in the comment beside it.

use serde_json::{json, Value};

use super::*;

const SSN: &str = "http://hl7.org/fhir/sid/us-ssn";

fn abdul() -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": SSN, "value": "999-22-1962"}],
        "name": [{"use": "official", "family": "Koepp", "given": ["Abdul"]}],
        "telecom": [{"system": "phone", "value": "555-978-4581"}],
        "gender": "male",
        "birthDate": "1956-08-03",
        "address": [{"line": ["313 Lockman Row Suite 4"], "city": "Peabody", "postalCode": "01960"}]
    })
}

fn with(mut p: Value, key: &str, value: Value) -> Value {
    if let Some(o) = p.as_object_mut() {
        if value.is_null() {
            o.remove(key);
        } else {
            o.insert(key.to_string(), value);
        }
    }
    p
}

fn no_ids() -> Value {
    with(abdul(), "identifier", Value::Null)
}

#[test]
fn an_exact_copy_is_certain_with_every_field_agreeing() {
    let m = compare(&abdul(), &abdul());
    assert_eq!(m.grade, Grade::Certain);
    assert!(m.score >= CERTAIN && m.score <= 1.0);
    let outcomes: Vec<_> = m.fields.iter().map(|f| (f.field, f.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            ("identifier", Agreement::Agree),
            ("name", Agreement::Agree),
            ("birthDate", Agreement::Agree),
            ("gender", Agreement::Agree),
            ("address", Agreement::Agree),
            ("phone", Agreement::Agree),
            ("email", Agreement::Missing),
        ]
    );
}

#[test]
fn full_demographics_without_identifiers_are_certain() {
    // 6.4919 + 5.8745 + 14.2137 + 0.9709 + 8.3443 + 8.4512 = 44.3465 bits ≥ 29.96.
    let m = compare(&no_ids(), &no_ids());
    assert_eq!(m.grade, Grade::Certain);
    let total: f64 = m.fields.iter().map(|f| f.weight).sum();
    assert!((total - 44.3465).abs() < 1e-3, "{total}");
}

#[test]
fn name_and_birth_date_alone_after_a_move_and_a_new_phone_are_probable() {
    // 6.4919 + 5.8745 + 14.2137 + 0.9709 − 1.9531 − 1.7341 = 23.8637 bits: between 20
    // and 29.96.
    let moved = with(
        with(
            no_ids(),
            "address",
            json!([{"line": ["12 Main St"], "city": "Boston", "postalCode": "02108"}]),
        ),
        "telecom",
        json!([{"system": "phone", "value": "555-000-1111"}]),
    );
    let m = compare(&moved, &no_ids());
    assert_eq!(m.grade, Grade::Probable);
    let expected = 1.0 / (1.0 + (-(23.8637f64 - 20.0)).exp2());
    assert!((m.score - expected).abs() < 1e-3, "{}", m.score);
}

#[test]
fn a_twin_is_at_most_probable() {
    // Family, birth date, gender, address and phone agree; the given name disagrees:
    // 6.4919 − 4.9465 + 14.2137 + 0.9709 + 8.3443 + 8.4512 = 33.5255 bits, certain by weight, probable
    // by rule 4.
    let twin = with(
        no_ids(),
        "name",
        json!([{"family": "Koepp", "given": ["Rufus"]}]),
    );
    let m = compare(&twin, &no_ids());
    assert_eq!(m.grade, Grade::Probable);
    assert!(m.score < CERTAIN && m.score >= PROBABLE);
    assert!(m.field("name").and_then(|f| f.note).is_some());
}

#[test]
fn a_shared_identifier_is_certain_even_with_little_else() {
    let sparse = json!({"identifier": [{"system": SSN, "value": "999221962"}]});
    let m = compare(&sparse, &abdul());
    assert_eq!(m.grade, Grade::Certain);
    assert!(m.score >= CERTAIN);
}

#[test]
fn a_shared_identifier_with_birth_date_and_gender_both_wrong_is_flagged_possible() {
    let other = with(
        with(abdul(), "birthDate", json!("1980-01-30")),
        "gender",
        json!("female"),
    );
    let m = compare(&other, &abdul());
    assert_eq!(m.grade, Grade::Possible);
    assert!(m.field("identifier").and_then(|f| f.note).is_some());
}

#[test]
fn a_conflicting_ssn_keeps_identical_demographics_from_certain() {
    // 44.3465 − 9.9658 = 34.3807 bits, certain by weight; rule 3 caps it.
    let other = with(
        abdul(),
        "identifier",
        json!([{"system": SSN, "value": "999-88-8619"}]),
    );
    let m = compare(&other, &abdul());
    assert_eq!(
        m.field("identifier").map(|f| f.outcome),
        Some(Agreement::Disagree)
    );
    assert_eq!(m.grade, Grade::Probable);
}

#[test]
fn two_strangers_are_certainly_not() {
    let stranger = json!({
        "identifier": [{"system": SSN, "value": "999-88-8619"}],
        "name": [{"family": "Fonseca", "given": ["Agustín"]}],
        "telecom": [{"system": "phone", "value": "555-929-9025"}],
        "gender": "male",
        "birthDate": "1994-02-01",
        "address": [{"line": ["586 Hilll Ranch Unit 68"], "city": "Fall River", "postalCode": "02720"}]
    });
    let m = compare(&stranger, &abdul());
    assert_eq!(m.grade, Grade::CertainlyNot);
    assert!(m.score < POSSIBLE);
}

#[test]
fn grades_have_fhir_codes() {
    assert_eq!(Grade::Certain.code(), "certain");
    assert_eq!(Grade::Probable.code(), "probable");
    assert_eq!(Grade::Possible.code(), "possible");
    assert_eq!(Grade::CertainlyNot.code(), "certainly-not");
}

#[test]
fn any_json_is_accepted_without_panicking() {
    let junk = [
        json!(null),
        json!(1),
        json!("Patient"),
        json!([abdul()]),
        json!({}),
        json!({"name": {"family": "Koepp"}, "birthDate": [1], "gender": 3, "telecom": "x",
               "address": {"line": "313"}, "identifier": [null, {"system": []}]}),
        json!({"name": [{"family": "", "given": [""]}], "birthDate": "", "gender": ""}),
        json!({"name": [{"family": "ÅÉÎ😀", "given": ["\u{0301}"]}], "birthDate": "9999-99-99"}),
    ];
    for a in &junk {
        for b in junk.iter().chain([&abdul()]) {
            let m = compare(a, b);
            assert!((0.0..=1.0).contains(&m.score), "{a} / {b}");
            assert_eq!(m.fields.len(), 7);
            let _ = candidate_queries(a);
        }
    }
}

#[test]
fn a_parent_of_the_same_name_at_the_same_address_is_at_most_possible() {
    // Name, gender, address and phone agree, birth date disagrees:
    // 6.4919 + 5.8745 − 5.6423 + 0.9709 + 8.3443 + 8.4512 = 24.4903 bits, probable by
    // weight, possible by rule 5.
    let senior = with(no_ids(), "birthDate", json!("1931-02-17"));
    let m = compare(&senior, &no_ids());
    assert_eq!(m.grade, Grade::Possible);
    assert!(m.score < PROBABLE && m.score >= POSSIBLE);
    assert!(m.field("birthDate").and_then(|f| f.note).is_some());
}

/// Every node of a Patient, replaced in turn by each value of the wrong type.
#[test]
fn every_field_of_the_wrong_type_is_survived() {
    fn paths(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    let p = format!("{at}/{k}");
                    out.push(p.clone());
                    paths(x, p, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let p = format!("{at}/{i}");
                    out.push(p.clone());
                    paths(x, p, out);
                }
            }
            _ => {}
        }
    }
    let base = abdul();
    let mut all = Vec::new();
    paths(&base, String::new(), &mut all);
    let junk = [
        json!(null),
        json!(true),
        json!(-1.5),
        json!(""),
        json!("x"),
        json!([]),
        json!({}),
        json!([null]),
        json!({"x": [1]}),
    ];
    for path in &all {
        for j in &junk {
            let mut p = base.clone();
            if let Some(slot) = p.pointer_mut(path) {
                *slot = j.clone();
            }
            let m = compare(&p, &base);
            assert!((0.0..=1.0).contains(&m.score), "{path} = {j}");
            let _ = compare(&base, &p);
            let _ = candidate_queries(&p);
        }
    }
}
