//! Broken variants of real examples: each case breaks one thing at a known JSON pointer,
//! and the expected issue code and FHIRPath location come from the mutation itself (the
//! pointer turned into a path), never from the validator's output.

use std::path::PathBuf;

use oxehr_fhir::validate::validate;
use oxehr_fhir::IssueCode;
use serde_json::{json, Value};

fn data_dir() -> PathBuf {
    oxehr_testdata::path("")
}

fn example(name: &str) -> Value {
    let p = data_dir().join("fhir-examples").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn synthea_bundle() -> Value {
    let dir = data_dir().join("synthea/smart-on-fhir-r4");
    let p = dir.join("Abdul_Koepp_e925b0f3-8006-43f6-aa31-94bd215e55e7.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A JSON pointer as a FHIRPath from the resource root: numbers become indexes and
/// `_x` companions name their primitive.
fn fhirpath(root: &str, pointer: &str) -> String {
    let mut out = root.to_string();
    for seg in pointer.split('/').skip(1) {
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            out.push('.');
            out.push_str(seg.strip_prefix('_').unwrap_or(seg));
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Op {
    Set(&'static str, fn() -> Value),
    Remove(&'static str),
}

struct Case {
    name: &'static str,
    file: &'static str,
    ops: &'static [Op],
    /// Expected error issues: code, and the pointer of the broken element (turned into a
    /// FHIRPath) or a literal FHIRPath when it starts with an uppercase letter (choice
    /// types and nested resources, which a pointer cannot spell).
    expect: &'static [(IssueCode, &'static str)],
}

fn apply(v: &mut Value, op: Op) {
    match op {
        Op::Set(ptr, f) => {
            let (parent, key) = ptr.rsplit_once('/').expect("pointer has a parent");
            let target = v
                .pointer_mut(parent)
                .unwrap_or_else(|| panic!("no {parent}"));
            match target {
                Value::Object(m) => {
                    m.insert(key.to_string(), f());
                }
                Value::Array(a) => {
                    let i: usize = key.parse().expect("index");
                    a[i] = f();
                }
                _ => panic!("{parent} is not a container"),
            }
        }
        Op::Remove(ptr) => {
            let (parent, key) = ptr.rsplit_once('/').expect("pointer has a parent");
            match v.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.shift_remove(key).unwrap_or_else(|| panic!("no {ptr}"));
                }
                _ => panic!("{parent} is not an object"),
            }
        }
    }
}

use IssueCode::*;

const CASES: &[Case] = &[
    Case {
        name: "unknown_element_at_top_level",
        file: "Patient-example.json",
        ops: &[Op::Set("/nickname", || json!("x"))],
        expect: &[(Structure, "/nickname")],
    },
    Case {
        name: "unknown_element_nested_in_a_repeat",
        file: "Patient-example.json",
        ops: &[Op::Set("/name/1/nickname", || json!("x"))],
        expect: &[(Structure, "/name/1/nickname")],
    },
    Case {
        name: "fhir_comments_is_not_r4_json",
        file: "Patient-example.json",
        ops: &[Op::Set("/fhir_comments", || json!(["a comment"]))],
        expect: &[(Structure, "/fhir_comments")],
    },
    Case {
        name: "unknown_key_in_primitive_extension_companion",
        file: "Patient-example.json",
        ops: &[Op::Set("/_birthDate/value", || json!("x"))],
        expect: &[(Structure, "/_birthDate/value")],
    },
    Case {
        name: "boolean_as_string",
        file: "Patient-example.json",
        ops: &[Op::Set("/active", || json!("true"))],
        expect: &[(Structure, "/active")],
    },
    Case {
        name: "string_as_number",
        file: "Patient-example.json",
        ops: &[Op::Set("/name/0/family", || json!(42))],
        expect: &[(Structure, "/name/0/family")],
    },
    Case {
        name: "positive_int_as_string",
        file: "Claim-100150.json",
        ops: &[Op::Set("/item/0/sequence", || json!("1"))],
        expect: &[(Structure, "/item/0/sequence")],
    },
    Case {
        name: "positive_int_zero",
        file: "Claim-100150.json",
        ops: &[Op::Set("/item/0/sequence", || json!(0))],
        expect: &[(Value, "/item/0/sequence")],
    },
    Case {
        name: "integer_with_fraction",
        file: "Claim-100150.json",
        ops: &[Op::Set("/item/0/sequence", || json!(1.5))],
        expect: &[(Structure, "/item/0/sequence")],
    },
    Case {
        name: "decimal_as_string",
        file: "Observation-example.json",
        ops: &[Op::Set("/valueQuantity/value", || json!("185"))],
        expect: &[(Structure, "Observation.value.ofType(Quantity).value")],
    },
    Case {
        name: "array_for_max_one_element",
        file: "Patient-example.json",
        ops: &[Op::Set("/gender", || json!(["male"]))],
        expect: &[(Structure, "/gender")],
    },
    Case {
        name: "scalar_for_repeating_element",
        file: "Patient-example.json",
        ops: &[Op::Set("/name/0/given", || json!("Peter"))],
        expect: &[(Structure, "/name/0/given")],
    },
    Case {
        name: "missing_observation_code",
        file: "Observation-example.json",
        ops: &[Op::Remove("/code")],
        expect: &[(Required, "/code")],
    },
    Case {
        name: "missing_observation_status",
        file: "Observation-example.json",
        ops: &[Op::Remove("/status")],
        expect: &[(Required, "/status")],
    },
    Case {
        name: "month_13",
        file: "Patient-example.json",
        ops: &[Op::Set("/birthDate", || json!("2020-13-01"))],
        expect: &[(Value, "/birthDate")],
    },
    Case {
        name: "february_30",
        file: "Patient-example.json",
        ops: &[Op::Set("/birthDate", || json!("2021-02-30"))],
        expect: &[(Value, "/birthDate")],
    },
    Case {
        name: "date_without_zero_padding",
        file: "Patient-example.json",
        ops: &[Op::Set("/birthDate", || json!("2020-1-1"))],
        expect: &[(Value, "/birthDate")],
    },
    Case {
        name: "date_time_with_time_but_no_zone",
        file: "Observation-example.json",
        ops: &[Op::Set("/effectiveDateTime", || {
            json!("2013-04-02T10:30:10")
        })],
        expect: &[(Value, "Observation.effective.ofType(dateTime)")],
    },
    Case {
        name: "instant_without_zone",
        file: "Observation-example.json",
        ops: &[Op::Set("/issued", || json!("2013-04-03T15:30:10"))],
        expect: &[(Value, "/issued")],
    },
    Case {
        name: "bad_resource_id",
        file: "Patient-example.json",
        ops: &[Op::Set("/id", || json!("not an id!"))],
        expect: &[(Value, "/id")],
    },
    Case {
        name: "gender_outside_required_binding",
        file: "Patient-example.json",
        ops: &[Op::Set("/gender", || json!("boy"))],
        expect: &[(CodeInvalid, "/gender")],
    },
    Case {
        name: "observation_status_outside_required_binding",
        file: "Observation-example.json",
        ops: &[Op::Set("/status", || json!("done"))],
        expect: &[(CodeInvalid, "/status")],
    },
    Case {
        name: "two_types_for_one_choice_element",
        file: "Observation-example.json",
        ops: &[Op::Set("/valueString", || json!("tall"))],
        expect: &[(Structure, "Observation.value")],
    },
    Case {
        name: "choice_type_not_allowed",
        file: "Observation-example.json",
        ops: &[
            Op::Remove("/valueQuantity"),
            Op::Set("/valueUri", || json!("http://x")),
        ],
        expect: &[(Structure, "/valueUri")],
    },
    Case {
        name: "reference_to_disallowed_type",
        file: "Observation-example.json",
        ops: &[Op::Set("/subject", || json!({"reference": "Medication/x"}))],
        expect: &[(Invalid, "/subject/reference")],
    },
    Case {
        name: "reference_to_unknown_type",
        file: "Observation-example.json",
        ops: &[Op::Set("/subject", || json!({"reference": "Pateint/x"}))],
        expect: &[(Value, "/subject/reference")],
    },
    Case {
        name: "local_reference_without_contained",
        file: "Observation-example.json",
        ops: &[Op::Set("/subject", || json!({"reference": "#p1"}))],
        expect: &[(Invariant, "/subject/reference")],
    },
    Case {
        name: "contained_resource_without_id",
        file: "Observation-example.json",
        ops: &[Op::Set(
            "/contained",
            || json!([{"resourceType": "Patient", "active": true}]),
        )],
        // dom-3 is not broken as well: with no id, `'#' + id` is empty and FHIRPath's
        // three-valued logic drops the resource from dom-3's `where()`.
        expect: &[(Required, "/contained/0/id")],
    },
    Case {
        name: "contained_resource_with_contained",
        file: "Observation-example.json",
        ops: &[
            Op::Set("/contained", || {
                json!([{"resourceType": "Patient", "id": "p1",
            "contained": [{"resourceType": "Patient", "id": "p2"}]}])
            }),
            Op::Set("/subject", || json!({"reference": "#p1"})),
        ],
        expect: &[(Invariant, "/contained/0/contained")],
    },
    Case {
        name: "contained_resource_with_version_id",
        file: "Observation-example.json",
        ops: &[
            Op::Set("/contained", || {
                json!([{"resourceType": "Patient", "id": "p1",
            "meta": {"versionId": "1"}}])
            }),
            Op::Set("/subject", || json!({"reference": "#p1"})),
        ],
        expect: &[(Invariant, "/contained/0/meta")],
    },
    Case {
        name: "contained_resource_nobody_references",
        file: "Observation-example.json",
        ops: &[Op::Set(
            "/contained",
            || json!([{"resourceType": "Patient", "id": "p1"}]),
        )],
        expect: &[(Invariant, "/contained/0")],
    },
    Case {
        name: "local_reference_to_contained_of_wrong_type",
        file: "Observation-example.json",
        ops: &[
            Op::Set(
                "/contained",
                || json!([{"resourceType": "Medication", "id": "m1"}]),
            ),
            Op::Set("/subject", || json!({"reference": "#m1"})),
        ],
        expect: &[(Invalid, "/subject/reference")],
    },
    Case {
        name: "extension_without_url",
        file: "Patient-example.json",
        ops: &[Op::Remove("/_birthDate/extension/0/url")],
        expect: &[(Required, "/_birthDate/extension/0/url")],
    },
    Case {
        name: "extension_with_value_and_extensions",
        file: "Patient-example.json",
        ops: &[Op::Set(
            "/_birthDate/extension/0/extension",
            || json!([{"url": "a", "valueBoolean": true}]),
        )],
        expect: &[(Invariant, "/_birthDate/extension/0")],
    },
    Case {
        name: "empty_string",
        file: "Patient-example.json",
        ops: &[Op::Set("/name/0/family", || json!(""))],
        expect: &[(Value, "/name/0/family")],
    },
    Case {
        name: "empty_array",
        file: "Patient-example.json",
        ops: &[Op::Set("/telecom", || json!([]))],
        expect: &[(Structure, "/telecom")],
    },
    Case {
        name: "empty_object",
        file: "Patient-example.json",
        ops: &[Op::Set("/maritalStatus", || json!({}))],
        expect: &[(Structure, "/maritalStatus")],
    },
    Case {
        name: "null_in_primitive_array_without_companion",
        file: "Patient-example.json",
        ops: &[Op::Set("/name/0/given/1", || json!(null))],
        expect: &[(Structure, "/name/0/given/1")],
    },
    Case {
        name: "narrative_without_xhtml_namespace",
        file: "Patient-example.json",
        ops: &[Op::Set("/text/div", || json!("<div>no namespace</div>"))],
        expect: &[(Value, "/text/div")],
    },
    Case {
        name: "missing_resource_type",
        file: "Patient-example.json",
        ops: &[Op::Remove("/resourceType")],
        expect: &[(Required, "Resource.resourceType")],
    },
    Case {
        name: "unknown_resource_type",
        file: "Patient-example.json",
        ops: &[Op::Set("/resourceType", || json!("Patients"))],
        expect: &[(Invalid, "Resource.resourceType")],
    },
];

#[test]
fn broken_variants_report_the_expected_issue_at_the_mutated_location() {
    oxehr_testdata::require!();
    let mut failures = Vec::new();
    for case in CASES {
        let mut v = example(case.file);
        let root = v["resourceType"].as_str().unwrap_or("Resource").to_string();
        let before: Vec<_> = validate(&v).into_iter().filter(|i| i.is_error()).collect();
        assert!(
            before.is_empty(),
            "{}: {} is not valid to start with: {before:?}",
            case.name,
            case.file
        );
        for op in case.ops {
            apply(&mut v, *op);
        }
        let mut want: Vec<(IssueCode, String)> = case
            .expect
            .iter()
            .map(|(c, at)| {
                let path = if at.starts_with('/') {
                    fhirpath(&root, at)
                } else {
                    at.to_string()
                };
                (*c, path)
            })
            .collect();
        let mut got: Vec<(IssueCode, String)> = validate(&v)
            .into_iter()
            .filter(|i| i.is_error())
            .map(|i| (i.code, i.expression.join(",")))
            .collect();
        want.sort_by(|a, b| a.1.cmp(&b.1));
        got.sort_by(|a, b| a.1.cmp(&b.1));
        if want != got {
            failures.push(format!("{}: want {want:?}, got {got:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Mutations inside a transaction bundle: the location runs through `entry[i].resource`.
#[test]
fn broken_resources_inside_a_bundle_are_located_through_the_entry() {
    oxehr_testdata::require!();
    let cases: &[(&str, Value, IssueCode, &str)] = &[
        (
            "/entry/0/resource/gender",
            json!("boy"),
            CodeInvalid,
            "Bundle.entry[0].resource.gender",
        ),
        (
            "/entry/1/resource/resourceType",
            json!("Organisation"),
            Invalid,
            "Bundle.entry[1].resource.resourceType",
        ),
        (
            "/entry/3/resource/nonsense",
            json!(1),
            Structure,
            "Bundle.entry[3].resource.nonsense",
        ),
        (
            "/entry/0/resource/birthDate",
            json!("2021-02-29"),
            Value,
            "Bundle.entry[0].resource.birthDate",
        ),
    ];
    let base = synthea_bundle();
    assert!(validate(&base).iter().all(|i| !i.is_error()));
    for (ptr, val, code, at) in cases {
        let mut v = base.clone();
        let (parent, key) = ptr.rsplit_once('/').expect("pointer");
        if let Some(Value::Object(m)) = v.pointer_mut(parent) {
            m.insert(key.to_string(), val.clone());
        }
        let got: Vec<(IssueCode, String)> = validate(&v)
            .into_iter()
            .filter(|i| i.is_error())
            .map(|i| (i.code, i.expression.join(",")))
            .collect();
        assert_eq!(got, vec![(*code, at.to_string())], "{ptr}");
    }
}

#[test]
fn diagnostics_never_echo_the_value() {
    oxehr_testdata::require!();
    let mut v = example("Patient-example.json");
    v["name"][0]["family"] = json!(["Secretname"]);
    v["gender"] = json!("Secretgender");
    v["birthDate"] = json!("Secret-date");
    v["nickname"] = json!("Secretnick");
    let issues = validate(&v);
    assert!(issues.len() >= 4);
    for i in issues {
        assert!(!i.diagnostics.contains("Secret"), "{}", i.diagnostics);
    }
}

/// Input that is not a resource at all still gets issues, never a panic.
#[test]
fn shapes_that_are_not_resources_are_reported() {
    let cases: &[(Value, IssueCode, &str)] = &[
        (json!(null), Structure, "Resource"),
        (json!([]), Structure, "Resource"),
        (
            json!({"resourceType": 7}),
            Structure,
            "Resource.resourceType",
        ),
        (
            json!({"resourceType": "DomainResource"}),
            Invalid,
            "Resource.resourceType",
        ),
        (
            json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": 5}]}),
            Structure,
            "Bundle.entry[0].resource",
        ),
        (
            json!({"resourceType": "Bundle", "type": "collection",
                "entry": [{"resource": {"id": "x"}}]}),
            Required,
            "Bundle.entry[0].resource.resourceType",
        ),
        (
            json!({"resourceType": "Patient", "multipleBirthInteger": 99999999999u64}),
            Value,
            "Patient.multipleBirth.ofType(integer)",
        ),
    ];
    for (v, code, at) in cases {
        let got: Vec<(IssueCode, String)> = validate(v)
            .into_iter()
            .map(|i| (i.code, i.expression.join(",")))
            .collect();
        assert_eq!(got, vec![(*code, at.to_string())], "{v}");
    }
}
