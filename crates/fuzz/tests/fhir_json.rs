//! The FHIR JSON reader and validator under hostile input: the demo's real resources,
//! their JSON text mutated byte by byte, or with any element replaced by a generated
//! value (deep nesting, huge or odd numbers, control characters, long strings, wrong
//! types). For every input: no panic, and validation gives the same issues twice.

mod common;

use oxehr_fhir::validate::validate;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"null",
    b"true",
    b"false",
    b"1e999",
    b"-0",
    b"123456789012345678901234567890.5",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"\"resourceType\":",
    b"\"extension\":[{}]",
    b"\"_birthDate\":{}",
    b"\"contained\":[",
    b"\"valueQuantity\":{\"value\":\"x\"}",
    b"\"reference\":\"Patient/../x\"",
    b"\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\"><script>",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"\xff\xfe",
    b"\"id\":\"a b\"",
];

/// The issues of a validation, comparable.
fn issues(v: &Value) -> Vec<String> {
    validate(v).into_iter().map(|i| format!("{i:?}")).collect()
}

/// Any JSON value, a few levels deep, favouring what breaks readers.
fn hostile() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(serde_json::from_str::<Value>("1e308").expect("number")),
        Just(serde_json::from_str::<Value>("123456789012345678901234567890123").expect("number")),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("\u{0}\u{7}\u{1b}[31m".into())),
        Just(Value::String("x".repeat(70_000))),
        Just(Value::String(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><img src=x onerror=alert(1)></div>".into()
        )),
        Just(Value::String("2024-02-30T25:61:61+99:99".into())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z_]{1,12}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every JSON pointer into `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn mutated_json_text(seed in any::<prop::sample::Index>(), edits in common::edits(TOKENS.len(), 12)) {
        let seeds = seeds();
        let text = serde_json::to_vec(seed.get(seeds)).expect("json");
        let bytes = common::apply(&text, &edits, TOKENS);
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            prop_assert_eq!(issues(&v), issues(&v));
        }
    }

    #[test]
    fn grafted_values(seed in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), value in hostile()) {
        let mut v = seed.get(seeds()).clone();
        let mut ptrs = Vec::new();
        pointers(&v, String::new(), &mut ptrs);
        if !ptrs.is_empty() {
            let p = at.get(&ptrs).clone();
            if let Some(slot) = v.pointer_mut(&p) {
                *slot = value;
            }
        }
        prop_assert_eq!(issues(&v), issues(&v));
    }
}

fn seeds() -> &'static [Value] {
    static SEEDS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| common::demo_resources(3))
}

/// Nesting deeper than any resource: the reader refuses it (serde_json's recursion
/// limit), and the validator never sees it; a deep but readable value is validated
/// without running out of stack.
#[test]
fn deep_nesting_is_refused_or_validated() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(serde_json::from_str::<Value>(&deep).is_err());
    let mut v = Value::Null;
    for _ in 0..100 {
        v = json!({"extension": [{"url": "x", "extension": [v]}]});
    }
    let mut patient = json!({"resourceType": "Patient", "id": "deep"});
    patient["extension"] = v["extension"].clone();
    assert_eq!(issues(&patient), issues(&patient));
}
