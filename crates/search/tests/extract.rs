//! Extraction over real material: the Synthea bundles and the official R4 examples.
//! Expected values are computed here by plain serde_json navigation of each resource
//! (and the `time` crate for instants), never taken from the extractor's output.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oxehr_search::{extract, IndexValue, ParamKey};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn data() -> PathBuf {
    oxehr_testdata::path("")
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("readable");
    serde_json::from_str(&text).expect("JSON")
}

/// Resources of the first `n` Synthea bundles, with `urn:uuid:` references rewritten to
/// `Type/id` (as a transaction would) so reference parameters resolve.
fn synthea(n: usize) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data().join("synthea/smart-on-fhir-r4"))
        .expect("synthea dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with("hospital"))
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files.into_iter().take(n) {
        let bundle = read(&f);
        let entries = bundle["entry"].as_array().expect("entries").clone();
        let mut map = std::collections::HashMap::new();
        for e in &entries {
            let r = &e["resource"];
            if let (Some(u), Some(t), Some(id)) = (
                e["fullUrl"].as_str(),
                r["resourceType"].as_str(),
                r["id"].as_str(),
            ) {
                map.insert(u.to_string(), format!("{t}/{id}"));
            }
        }
        for e in entries {
            let mut r = e["resource"].clone();
            rewrite(&mut r, &map);
            out.push(r);
        }
    }
    out
}

fn rewrite(v: &mut Value, map: &std::collections::HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "reference" {
                    if let Some(new) = x.as_str().and_then(|s| map.get(s)) {
                        *x = Value::String(new.clone());
                    }
                } else {
                    rewrite(x, map);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, map)),
        _ => {}
    }
}

fn of_type<'a>(rs: &'a [Value], ty: &str) -> Vec<&'a Value> {
    rs.iter().filter(|r| r["resourceType"] == ty).collect()
}

fn values_of(r: &Value, code: &str) -> Vec<IndexValue> {
    let ty = r["resourceType"].as_str().expect("type");
    let key = ParamKey::of(ty, code);
    extract(r)
        .expect("extracts")
        .entries
        .into_iter()
        .filter(|e| e.param == key)
        .map(|e| e.value)
        .collect()
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn arr(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

#[test]
fn every_official_example_extracts() {
    oxehr_testdata::require!();
    let mut n = 0;
    for e in std::fs::read_dir(data().join("fhir-examples")).expect("examples") {
        let p = e.expect("entry").path();
        let is_meta = p
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with('_'));
        if p.extension().is_some_and(|x| x == "json") && !is_meta {
            let r = read(&p);
            if let Err(err) = extract(&r) {
                panic!("{}: {err}", p.display());
            }
            n += 1;
        }
    }
    assert_eq!(n, 722);
}

#[test]
fn observation_code_tokens_are_the_codings() {
    oxehr_testdata::require!();
    let rs = synthea(3);
    let obs = of_type(&rs, "Observation");
    assert!(obs.len() > 50);
    for o in obs {
        let expected: BTreeSet<(Option<String>, Option<String>)> = arr(&o["code"]["coding"])
            .map(|c| {
                (
                    c["system"].as_str().map(String::from),
                    c["code"].as_str().map(String::from),
                )
            })
            .collect();
        let got: BTreeSet<(Option<String>, Option<String>)> = values_of(o, "code")
            .into_iter()
            .map(|v| match v {
                IndexValue::Token { system, code, .. } => (system, code),
                other => panic!("not a token: {other:?}"),
            })
            .collect();
        assert_eq!(got, expected);
    }
}

/// Lower-cased, whitespace-collapsed: what normalization gives for ASCII names (accented
/// names are covered by the normalizer's own table test).
fn ascii_norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[test]
fn patient_family_birthdate_and_id() {
    oxehr_testdata::require!();
    let rs = synthea(5);
    for p in of_type(&rs, "Patient") {
        let expected: BTreeSet<String> = arr(&p["name"])
            .filter_map(|n| n["family"].as_str())
            .map(String::from)
            .collect();
        let got: BTreeSet<String> = values_of(p, "family")
            .into_iter()
            .map(|v| match v {
                IndexValue::String { normalized, exact } => {
                    if exact.is_ascii() {
                        assert_eq!(normalized, ascii_norm(&exact));
                    }
                    exact
                }
                other => panic!("not a string: {other:?}"),
            })
            .collect();
        assert_eq!(got, expected);

        let bd = p["birthDate"].as_str().expect("birthDate");
        let date = time::Date::parse(
            bd,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .expect("date");
        let low = micros(date.midnight().assume_utc());
        let high = micros(date.next_day().expect("next").midnight().assume_utc()) - 1;
        assert_eq!(
            values_of(p, "birthdate"),
            vec![IndexValue::Date { low, high }]
        );

        assert_eq!(
            values_of(p, "_id"),
            vec![IndexValue::Token {
                system: None,
                code: p["id"].as_str().map(String::from),
                text: None
            }]
        );
    }
}

#[test]
fn observation_value_quantity_and_composite() {
    oxehr_testdata::require!();
    let rs = synthea(3);
    let mut checked = 0;
    for o in of_type(&rs, "Observation") {
        let q = &o["valueQuantity"];
        if !q.is_object() {
            continue;
        }
        let value: f64 = q["value"].to_string().parse().expect("number");
        let vq = values_of(o, "value-quantity");
        assert_eq!(vq.len(), 1);
        let IndexValue::Quantity {
            value: v,
            code,
            unit,
            system,
            low,
            high,
            ..
        } = &vq[0]
        else {
            panic!("not a quantity");
        };
        assert!((v - value).abs() < 1e-9);
        assert!(*low <= value && value <= *high && low <= high);
        assert_eq!(code.as_deref(), q["code"].as_str());
        assert_eq!(unit.as_deref(), q["unit"].as_str());
        assert_eq!(system.as_deref(), q["system"].as_str());

        let composite = values_of(o, "code-value-quantity");
        let codings = arr(&o["code"]["coding"]).count();
        assert_eq!(composite.len(), codings);
        for c in composite {
            let IndexValue::Composite { parts } = c else {
                panic!("not composite")
            };
            assert!(matches!(&parts[0], IndexValue::Token { .. }));
            assert!(
                matches!(&parts[1], IndexValue::Quantity { value: v, .. } if (v - value).abs() < 1e-9)
            );
        }
        checked += 1;
    }
    assert!(checked > 20);
}

#[test]
fn encounter_date_is_its_period() {
    oxehr_testdata::require!();
    let rs = synthea(3);
    for e in of_type(&rs, "Encounter") {
        let start = OffsetDateTime::parse(e["period"]["start"].as_str().expect("start"), &Rfc3339)
            .expect("rfc3339");
        let end = OffsetDateTime::parse(e["period"]["end"].as_str().expect("end"), &Rfc3339)
            .expect("rfc3339");
        // Both are seconds-precision instants: the range runs to the end of the end second.
        assert_eq!(
            values_of(e, "date"),
            vec![IndexValue::Date {
                low: micros(start),
                high: micros(end) + 999_999
            }]
        );
    }
}

#[test]
fn observation_belongs_to_its_subjects_compartment() {
    oxehr_testdata::require!();
    let rs = synthea(2);
    for o in of_type(&rs, "Observation") {
        let subject = o["subject"]["reference"].as_str().expect("subject");
        let id = subject
            .strip_prefix("Patient/")
            .expect("rewritten to Patient/id");
        let x = extract(o).expect("extracts");
        assert_eq!(x.patient_compartment, vec![id.to_string()]);
    }
    // Patients are not put in their own compartment here.
    for p in of_type(&rs, "Patient") {
        assert!(extract(p).expect("extracts").patient_compartment.is_empty());
    }
}

#[test]
fn official_observation_example_compartment_and_last_updated() {
    oxehr_testdata::require!();
    let o = read(&data().join("fhir-examples/Observation-example.json"));
    let mut expected: Vec<String> = Vec::new();
    for r in std::iter::once(&o["subject"]).chain(arr(&o["performer"])) {
        if let Some(id) = r["reference"]
            .as_str()
            .and_then(|s| s.strip_prefix("Patient/"))
        {
            if !expected.iter().any(|e| e == id) {
                expected.push(id.to_string());
            }
        }
    }
    let mut got = extract(&o).expect("extracts").patient_compartment;
    got.sort();
    expected.sort();
    assert_eq!(got, expected);

    let lu = o["meta"]["lastUpdated"].as_str().map(String::from);
    if let Some(lu) = lu {
        let t = OffsetDateTime::parse(&lu, &Rfc3339).expect("instant");
        let got = values_of(&o, "_lastUpdated");
        assert_eq!(got.len(), 1);
        let IndexValue::Date { low, .. } = got[0] else {
            panic!("date")
        };
        assert_eq!(low, micros(t));
    }
}

#[test]
fn references_keep_only_their_target_types() {
    oxehr_testdata::require!();
    let o = read(&data().join("fhir-examples/Observation-example.json"));
    for v in values_of(&o, "patient") {
        let IndexValue::Reference { target_type, .. } = v else {
            panic!("reference")
        };
        assert_eq!(target_type.as_deref(), Some("Patient"));
    }
    // Raw Synthea: `urn:uuid:` references are url-only.
    let bundle = read(
        &std::fs::read_dir(data().join("synthea/smart-on-fhir-r4"))
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| !p.to_string_lossy().contains("hospital"))
            .expect("a bundle"),
    );
    let obs = arr(&bundle["entry"])
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "Observation")
        .expect("an observation");
    let url = obs["subject"]["reference"].as_str().map(String::from);
    assert_eq!(
        values_of(obs, "subject"),
        vec![IndexValue::Reference {
            target_type: None,
            target_id: None,
            version: None,
            url,
            identifier_system: None,
            identifier_value: None
        }]
    );
}

#[test]
fn identifier_of_type_tokens_are_type_code_bar_value() {
    oxehr_testdata::require!();
    let rs = synthea(5);
    let mut typed = 0;
    for p in of_type(&rs, "Patient") {
        let mut expected = BTreeSet::new();
        for i in arr(&p["identifier"]) {
            let Some(value) = i["value"].as_str() else {
                continue;
            };
            for c in arr(&i["type"]["coding"]) {
                if let Some(code) = c["code"].as_str() {
                    expected.insert((
                        c["system"].as_str().map(String::from),
                        Some(format!("{code}|{value}")),
                    ));
                }
            }
        }
        typed += expected.len();
        let got: BTreeSet<(Option<String>, Option<String>)> = values_of(p, "identifier:of-type")
            .into_iter()
            .map(|v| match v {
                IndexValue::Token { system, code, text } => {
                    assert_eq!(text, None);
                    (system, code)
                }
                other => panic!("not a token: {other:?}"),
            })
            .collect();
        assert_eq!(got, expected);
    }
    assert!(typed >= 10, "{typed}");
    // Untyped identifiers give none.
    let o = of_type(&rs, "Encounter")[0];
    assert!(values_of(o, "identifier:of-type").is_empty());
}

#[test]
fn bound_codes_carry_their_code_system() {
    oxehr_testdata::require!();
    let rs = synthea(3);
    for p in of_type(&rs, "Patient") {
        assert_eq!(
            values_of(p, "gender"),
            vec![IndexValue::Token {
                system: Some("http://hl7.org/fhir/administrative-gender".into()),
                code: p["gender"].as_str().map(String::from),
                text: None
            }]
        );
    }
    for o in of_type(&rs, "Observation") {
        assert_eq!(
            values_of(o, "status"),
            vec![IndexValue::Token {
                system: Some("http://hl7.org/fhir/observation-status".into()),
                code: o["status"].as_str().map(String::from),
                text: None
            }]
        );
    }
}

fn text_of(r: &Value, code: &str) -> Option<String> {
    let got = values_of(r, code);
    assert!(got.len() <= 1, "{got:?}");
    got.into_iter().next().map(|v| match v {
        IndexValue::Text { content } => content,
        other => panic!("not text: {other:?}"),
    })
}

#[test]
fn full_text_of_the_narrative_and_the_content() {
    oxehr_testdata::require!();
    let rs = synthea(3);
    let mut with_text = 0;
    for r in &rs {
        let div = r["text"]["div"].as_str();
        let text = text_of(r, "_text");
        assert_eq!(text.is_some(), div.is_some(), "{}", r["id"]);
        let content = text_of(r, "_content").expect("every resource has strings");
        if let (Some(div), Some(text)) = (div, &text) {
            with_text += 1;
            assert!(!text.contains('<') && !div.is_empty());
            assert!(
                content.ends_with(text.as_str()),
                "the narrative ends _content"
            );
        }
        assert_eq!(content, ascii_norm(&content), "normalized");
        let id = r["id"].as_str().expect("id");
        if !arr(&r["identifier"]).any(|i| i["value"] == id) {
            assert!(!content.contains(id), "no ids: {content}");
        }
        assert!(!content.contains("http"), "no URLs: {content}");
    }
    assert!(with_text >= 3, "{with_text}");
    let care_plan = of_type(&rs, "CarePlan")[0];
    let text = text_of(care_plan, "_text").expect("narrative");
    assert!(text.starts_with("care plan for "), "{text}");
    for o in of_type(&rs, "Observation") {
        let content = text_of(o, "_content").expect("content");
        for c in arr(&o["code"]["coding"]) {
            let display = ascii_norm(c["display"].as_str().expect("display"));
            assert!(content.contains(&display), "{display} in {content}");
        }
        let subject = o["subject"]["reference"].as_str().expect("subject");
        assert!(!content.contains(&subject.to_lowercase()));
    }
}
