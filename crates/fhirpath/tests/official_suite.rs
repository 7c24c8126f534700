//! Runs the official FHIRPath test suite (`fhir-test-cases/r4/fhirpath/tests-fhir-r4.xml`)
//! against the evaluator. Inputs named as XML are mapped to their JSON twins in
//! `fhir-examples/` (`Type-id.json`, read from the XML root). Cases we do not pass are
//! listed, each with a reason, in `official_suite_exclusions.txt`; the test fails when a
//! listed case passes (so the list stays honest) or an unlisted one fails.
//!
//! Set `FHIRPATH_SUITE_VERBOSE=1` to print every failure.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use oxehr_fhirpath::{Expr, Item, Temporal};
use serde_json::Value;

fn data() -> PathBuf {
    oxehr_testdata::path("")
}

struct Case {
    name: String,
    input: Option<String>,
    expression: String,
    invalid: Option<String>,
    predicate: bool,
    outputs: Vec<(String, String)>,
}

fn load_cases() -> Vec<Case> {
    let path = data().join("fhir-test-cases/r4/fhirpath/tests-fhir-r4.xml");
    let text = std::fs::read_to_string(&path).expect("test suite present");
    let doc = roxmltree::Document::parse(&text).expect("suite is XML");
    let mut cases = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, t) in doc
        .descendants()
        .filter(|n| n.has_tag_name("test"))
        .enumerate()
    {
        let mut name = t
            .attribute("name")
            .map_or_else(|| format!("unnamed-{i}"), str::to_string);
        let n = seen.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            name = format!("{name}#{n}");
        }
        let Some(expr) = t.children().find(|c| c.has_tag_name("expression")) else {
            continue;
        };
        cases.push(Case {
            name,
            input: t.attribute("inputfile").map(str::to_string),
            expression: expr.text().unwrap_or("").to_string(),
            invalid: expr.attribute("invalid").map(str::to_string),
            predicate: t.attribute("predicate") == Some("true"),
            outputs: t
                .children()
                .filter(|c| c.has_tag_name("output"))
                .map(|o| {
                    (
                        o.attribute("type").unwrap_or("").to_string(),
                        o.text().unwrap_or("").to_string(),
                    )
                })
                .collect(),
        });
    }
    cases
}

/// The JSON form of a suite input: the `.json` file itself, or the JSON twin of an XML file.
fn load_input(name: &str) -> Result<Value, String> {
    let dir = data().join("fhir-test-cases/r4");
    if name.ends_with(".json") {
        let text = std::fs::read_to_string(dir.join(name)).map_err(|e| e.to_string())?;
        return serde_json::from_str(&text).map_err(|e| e.to_string());
    }
    let xml = std::fs::read_to_string(dir.join(name)).map_err(|e| e.to_string())?;
    let doc = roxmltree::Document::parse(&xml).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    let ty = root.tag_name().name();
    let id = root
        .children()
        .find(|c| c.has_tag_name("id"))
        .and_then(|c| c.attribute("value"))
        .ok_or("XML input has no id")?;
    let twin = data().join(format!("fhir-examples/{ty}-{id}.json"));
    let text =
        std::fs::read_to_string(&twin).map_err(|_| format!("no JSON twin {ty}-{id}.json"))?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn temporal_eq(actual: &Temporal, expected: &str) -> bool {
    let e = expected.trim_start_matches('@');
    let parsed = if let Some(t) = e.strip_prefix('T') {
        Temporal::parse_time(t)
    } else {
        Temporal::parse_datetime(e)
    };
    parsed.is_some_and(|p| {
        p.precision == actual.precision
            && actual.compare(&p, e.starts_with('T')) == Some(std::cmp::Ordering::Equal)
    })
}

/// The type of an output written without a `type` attribute (the FHIRPath 2.1 cases, such
/// as the boundary functions'), read from the literal itself.
fn literal_type(expected: &str) -> &'static str {
    let numeric = |s: &str| {
        let s = s.strip_prefix('-').unwrap_or(s);
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    };
    if expected.starts_with("@T") {
        "time"
    } else if expected.starts_with('@') {
        if expected.contains('T') {
            "dateTime"
        } else {
            "date"
        }
    } else if expected == "true" || expected == "false" {
        "boolean"
    } else if expected.contains('\'')
        && expected.starts_with(|c: char| c.is_ascii_digit() || c == '-')
    {
        "Quantity"
    } else if numeric(expected) && expected.contains('.') {
        "decimal"
    } else if numeric(expected) {
        "integer"
    } else {
        "string"
    }
}

/// Digits written after the decimal point.
fn scale(text: &str) -> usize {
    let number = text.split(' ').next().unwrap_or(text);
    number.split_once('.').map_or(0, |(_, f)| f.len())
}

fn matches(item: &Item<'_>, ty: &str, expected: &str) -> bool {
    if ty.is_empty() {
        // An untyped output is a literal: match its type and, for numbers, also the
        // precision it is written with (`1.58650000` is not `1.5865`).
        let ty = literal_type(expected);
        // A decimal worked to precision 0 is written like an integer (`1.587.lowBoundary(0)`
        // is `1`).
        if ty == "integer" && matches(item, "decimal", expected) {
            return item.to_text().is_some_and(|t| scale(&t) == 0);
        }
        let same_scale = match ty {
            "decimal" | "Quantity" => item.to_text().is_some_and(|t| scale(&t) == scale(expected)),
            _ => true,
        };
        return same_scale && matches(item, ty, expected);
    }
    let sys = item.to_system();
    match (ty, &sys) {
        ("boolean", Item::Boolean(b)) => b.to_string() == expected,
        ("integer", Item::Integer(i)) => i.to_string() == expected,
        ("decimal", Item::Decimal(d)) => expected
            .parse::<f64>()
            .is_ok_and(|e| (e - d.value).abs() < 1e-9),
        ("decimal", Item::Integer(i)) => expected.parse::<f64>().is_ok_and(|e| e == *i as f64),
        ("date" | "dateTime", Item::Date(t) | Item::DateTime(t)) => temporal_eq(t, expected),
        ("time", Item::Time(t)) => temporal_eq(t, expected),
        ("Quantity", Item::Quantity { value, unit }) => {
            let (v, u) = expected.split_once(' ').unwrap_or((expected, "'1'"));
            v.parse::<f64>()
                .is_ok_and(|v| (v - value.value).abs() < 1e-9)
                && u.trim_matches('\'') == unit.as_ref()
        }
        ("string" | "code" | "id" | "uri", _) => sys.as_str() == Some(expected),
        _ => false,
    }
}

fn run(case: &Case, inputs: &mut HashMap<String, Result<Value, String>>) -> Result<(), String> {
    let empty = Value::Object(Default::default());
    let root = match &case.input {
        Some(f) => match inputs.entry(f.clone()).or_insert_with(|| load_input(f)) {
            Ok(v) => v,
            Err(e) => return Err(e.clone()),
        },
        None => &empty,
    };
    let result = Expr::parse(&case.expression).and_then(|e| e.evaluate(root));
    if let Some(kind) = &case.invalid {
        return match result {
            Err(_) => Ok(()),
            Ok(v) => Err(format!("expected a {kind} error, got {} items", v.len())),
        };
    }
    let mut items = result.map_err(|e| e.to_string())?;
    if case.predicate {
        items = vec![Item::Boolean(!items.is_empty())];
    }
    let describe = || {
        items
            .iter()
            .map(|i| {
                i.to_text()
                    .unwrap_or_else(|| format!("<{}>", i.type_name().1))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if items.len() != case.outputs.len() {
        return Err(format!(
            "expected {} items {:?}, got {}: [{}]",
            case.outputs.len(),
            case.outputs,
            items.len(),
            describe()
        ));
    }
    for (item, (ty, text)) in items.iter().zip(&case.outputs) {
        if !matches(item, ty, text) {
            return Err(format!("expected {ty} {text}, got [{}]", describe()));
        }
    }
    Ok(())
}

fn exclusions() -> BTreeMap<String, String> {
    let text = include_str!("official_suite_exclusions.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (name.to_string(), reason.trim().to_string())
        })
        .collect()
}

#[test]
fn official_fhirpath_suite() {
    oxehr_testdata::require!();
    let cases = load_cases();
    let excluded = exclusions();
    let verbose = std::env::var_os("FHIRPATH_SUITE_VERBOSE").is_some();
    let mut inputs = HashMap::new();
    let (mut passed, mut unexpected_fail, mut unexpected_pass) = (0, Vec::new(), Vec::new());
    for case in &cases {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(case, &mut inputs)))
                .unwrap_or_else(|_| Err("panicked".to_string()));
        match (&outcome, excluded.contains_key(&case.name)) {
            (Ok(()), false) => passed += 1,
            (Ok(()), true) => unexpected_pass.push(case.name.clone()),
            (Err(e), false) => {
                unexpected_fail.push(format!("{}: {} => {e}", case.name, case.expression.trim()))
            }
            (Err(e), true) => {
                if verbose {
                    println!("excluded {}: {} => {e}", case.name, case.expression.trim());
                }
            }
        }
    }
    println!(
        "FHIRPath suite: {} cases, {passed} passed, {} excluded",
        cases.len(),
        excluded.len()
    );
    for f in &unexpected_fail {
        println!("FAIL {f}");
    }
    for p in &unexpected_pass {
        println!("NOW PASSES (remove from exclusions) {p}");
    }
    assert!(
        unexpected_fail.is_empty() && unexpected_pass.is_empty(),
        "{} unexpected failures, {} excluded cases now pass",
        unexpected_fail.len(),
        unexpected_pass.len()
    );
}
