//! Hostile input found by the outside security audit, each case a real example with one
//! value replaced: control characters in strings, strings over the spec's 1 MB limit,
//! and decimals no f64 can hold.
//!
//! The expected outcome of every case comes from the spec, never from this validator's
//! output.

use std::path::{Path, PathBuf};

use oxehr_fhir::validate::validate;
use oxehr_fhir::IssueCode;
use serde_json::{json, Value};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn example(name: &str) -> Value {
    let p = data_dir().join("fhir-examples").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Error issues as (code, location, diagnostics).
fn errors(v: &Value) -> Vec<(IssueCode, String, String)> {
    validate(v)
        .into_iter()
        .filter(|i| i.is_error())
        .map(|i| (i.code, i.expression.join(","), i.diagnostics))
        .collect()
}

fn set(v: &mut Value, ptr: &str, val: Value) {
    let (parent, key) = ptr.rsplit_once('/').expect("pointer has a parent");
    match v.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(key.to_string(), val);
        }
        Some(Value::Array(a)) => a[key.parse::<usize>().expect("index")] = val,
        _ => panic!("no {parent}"),
    }
}

const NS: &str = "http://www.w3.org/1999/xhtml";

/// A narrative body inside the one root `div` the xhtml type requires.
fn div(body: &str) -> String {
    format!("<div xmlns=\"{NS}\">{body}</div>")
}

/// (file, pointer, value, expected location)
fn control_character_cases() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    vec![
        (
            "Patient-example.json",
            "/name/0/family",
            json!("Chal\u{0}mers"),
            "Patient.name[0].family",
        ),
        (
            "Patient-example.json",
            "/name/0/given/0",
            json!("Pe\u{1}ter"),
            "Patient.name[0].given[0]",
        ),
        (
            "Patient-example.json",
            "/telecom/0/value",
            json!("\u{1b}[31m"),
            "Patient.telecom[0].value",
        ),
        (
            "Patient-example.json",
            "/address/0/line/0",
            json!("534\u{b}Erewhon"),
            "Patient.address[0].line[0]",
        ),
        (
            "Patient-example.json",
            "/address/0/city",
            json!("Pleasant\u{c}ville"),
            "Patient.address[0].city",
        ),
        (
            "Patient-example.json",
            "/address/0/district",
            json!("Rainbow\u{7f}\u{1f}"),
            "Patient.address[0].district",
        ),
        (
            "Patient-example.json",
            "/gender",
            json!("ma\u{0}le"),
            "Patient.gender",
        ),
        (
            "Patient-example.json",
            "/id",
            json!("exa\u{0}mple"),
            "Patient.id",
        ),
        (
            "Patient-example.json",
            "/birthDate",
            json!("1974-12-25\u{0}"),
            "Patient.birthDate",
        ),
        (
            "Patient-example.json",
            "/_birthDate/extension/0/valueDateTime",
            json!("1974-12-25T14:35:45-05:00\u{2}"),
            "Patient.birthDate.extension[0].value.ofType(dateTime)",
        ),
        (
            "Patient-example.json",
            "/identifier/0/system",
            json!("urn:oid:1.2.36\u{0}"),
            "Patient.identifier[0].system",
        ),
        (
            "Patient-example.json",
            "/text/div",
            json!(div("a\u{0}b")),
            "Patient.text.div",
        ),
        (
            "Patient-example.json",
            "/photo",
            json!([{"contentType": "image/gif", "data": "R0lGOD\u{0}lh"}]),
            "Patient.photo[0].data",
        ),
        (
            "Patient-example.json",
            "/photo",
            json!([{"contentType": "image/gif", "url": "http://example.org/\u{0}"}]),
            "Patient.photo[0].url",
        ),
        (
            "Observation-example.json",
            "/note",
            json!([{"text": "**bold**\u{0}"}]),
            "Observation.note[0].text",
        ),
        (
            "Observation-example.json",
            "/code/coding/0/code",
            json!("29463\u{3}-7"),
            "Observation.code.coding[0].code",
        ),
        (
            "Observation-example.json",
            "/valueQuantity/unit",
            json!("lbs\u{1f}"),
            "Observation.value.ofType(Quantity).unit",
        ),
    ]
}

#[test]
fn control_characters_are_refused_in_every_string_primitive() {
    let mut failures = Vec::new();
    for (file, ptr, val, at) in control_character_cases() {
        let mut v = example(file);
        set(&mut v, ptr, val);
        let got = errors(&v);
        let ok = got.len() == 1
            && got[0].0 == IssueCode::Value
            && got[0].1 == at
            && got[0].2.contains("control character");
        if !ok {
            failures.push(format!("{file} {ptr}: want Value at {at}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The spec's exceptions: tab, CR and LF (and DEL, above U+001F, which the rule does not
/// name) stay valid.
#[test]
fn tab_cr_lf_stay_valid_in_strings() {
    let mut v = example("Patient-example.json");
    set(&mut v, "/name/0/family", json!("Chal\tmers\r\nJr\u{7f}"));
    set(&mut v, "/text/div", json!(div("a\tb\r\nc")));
    assert_eq!(errors(&v), vec![]);
}

/// A JSON key reaches storage only when it names an element, so a key holding a control
/// character is already an unknown element.
#[test]
fn keys_with_control_characters_are_unknown_elements() {
    let mut v = example("Patient-example.json");
    set(&mut v, "/gen\u{0}der", json!("male"));
    let got = errors(&v);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, IssueCode::Structure);
}

const MIB: usize = 1024 * 1024;

#[test]
fn strings_over_one_mebi_characters_are_too_long() {
    let b64 = "AAAA".repeat(MIB / 2);
    // (case, file, pointer, value, expected error location or None for valid)
    let cases: Vec<(&str, &str, &str, Value, Option<&str>)> = vec![
        (
            "string_at_the_limit",
            "Patient-example.json",
            "/name/0/family",
            json!("a".repeat(MIB)),
            None,
        ),
        (
            "string_over_the_limit",
            "Patient-example.json",
            "/name/0/family",
            json!("a".repeat(MIB + 1)),
            Some("Patient.name[0].family"),
        ),
        (
            "string_2_mib",
            "Patient-example.json",
            "/name/0/family",
            json!("a".repeat(2 * MIB)),
            Some("Patient.name[0].family"),
        ),
        // The limit counts characters, not UTF-8 bytes: this is 2 MiB of bytes.
        (
            "two_byte_characters_at_the_limit",
            "Patient-example.json",
            "/name/0/family",
            json!("é".repeat(MIB)),
            None,
        ),
        (
            "two_byte_characters_over_the_limit",
            "Patient-example.json",
            "/name/0/family",
            json!("é".repeat(MIB + 1)),
            Some("Patient.name[0].family"),
        ),
        (
            "uri_over_the_limit",
            "Patient-example.json",
            "/identifier/0/system",
            json!(format!("http://example.org/{}", "a".repeat(MIB))),
            Some("Patient.identifier[0].system"),
        ),
        (
            "url_over_the_limit",
            "Patient-example.json",
            "/photo",
            json!([{"url": format!("http://example.org/{}", "a".repeat(MIB))}]),
            Some("Patient.photo[0].url"),
        ),
        (
            "markdown_over_the_limit",
            "Observation-example.json",
            "/note",
            json!([{"text": "a".repeat(MIB + 1)}]),
            Some("Observation.note[0].text"),
        ),
        (
            "code_over_the_limit",
            "Observation-example.json",
            "/code/coding/0/code",
            json!("a".repeat(MIB + 1)),
            Some("Observation.code.coding[0].code"),
        ),
        // base64Binary has no upper limit in the spec; xhtml is not a string.
        (
            "base64_2_mib",
            "Patient-example.json",
            "/photo",
            json!([{"contentType": "image/gif", "data": b64}]),
            None,
        ),
        (
            "xhtml_2_mib",
            "Patient-example.json",
            "/text/div",
            json!(div(&"a".repeat(2 * MIB))),
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (name, file, ptr, val, want) in cases {
        let mut v = example(file);
        set(&mut v, ptr, val);
        let got: Vec<_> = errors(&v).into_iter().map(|e| (e.0, e.1)).collect();
        let want: Vec<_> = want
            .map(|at| (IssueCode::TooLong, at.to_string()))
            .into_iter()
            .collect();
        if got != want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn decimals_no_f64_can_hold_are_refused() {
    // (JSON number text, valid)
    let cases = [
        ("185", true),
        ("0.0", true),
        ("-0", true),
        ("0e-400", true),
        ("0.000e999", true),
        ("1.7976931348623157e308", true),
        ("-1.7976931348623157e308", true),
        ("4.9e-324", true),
        ("2.2250738585072014e-308", true),
        ("0.10000000000000000000000000001", true),
        ("1e400", false),
        ("-1e400", false),
        ("1.8e308", false),
        ("1e-400", false),
        ("-2.5e-330", false),
    ];
    // Plain notation too: 1e-323 is a subnormal f64, 1e-330 rounds to zero.
    let tiny_ok = format!("0.{}1", "0".repeat(322));
    let tiny_zero = format!("0.{}1", "0".repeat(329));
    let cases = cases
        .into_iter()
        .chain([(tiny_ok.as_str(), true), (tiny_zero.as_str(), false)]);
    let at = "Observation.value.ofType(Quantity).value";
    let mut failures = Vec::new();
    for (text, valid) in cases {
        let mut v = example("Observation-example.json");
        let n: Value = serde_json::from_str(text).expect("a JSON number");
        set(&mut v, "/valueQuantity/value", n);
        let got = errors(&v);
        let ok = if valid {
            got.is_empty()
        } else {
            got.len() == 1
                && got[0].0 == IssueCode::Value
                && got[0].1 == at
                && got[0].2.contains("outside the range")
        };
        if !ok {
            failures.push(format!("{text}: want valid={valid}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
