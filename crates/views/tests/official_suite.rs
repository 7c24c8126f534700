//! Runs every test of the official SQL on FHIR test suite
//! (`fhir-test-cases/sql-on-fhir/*.json`, the files of https://github.com/FHIR/sql-on-fhir.js
//! `tests/`) against `oxehr_views`, with no exclusions.
//!
//! Each file has `resources` and `tests`; a test has a `view` and either `expect` (the
//! rows, as objects keyed by column name) or `expectError` (the view must fail to compile
//! or to run over the resources), and may have `expectColumns` (the column names, in
//! order). Rows are compared as a multiset, as the reference runner does: a view's row
//! order is not part of the spec except where `%rowIndex` numbers rows, and those values
//! are compared. JSON numbers compare by value (`5` = `5.0`), since a computed decimal
//! may be written with more digits than the expectation.
//!
//! The test fails when any case fails, when the number of cases run differs from the
//! number in the files, or when that number is not 134 (so a file going missing shows).

use std::path::PathBuf;

use oxehr_views::View;
use serde_json::{Map, Value};

/// Tests in the suite as checked out in `../shared/data` (22 files).
const EXPECTED_TESTS: usize = 134;

fn suite_dir() -> PathBuf {
    oxehr_testdata::path("fhir-test-cases/sql-on-fhir")
}

fn suite_files() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(suite_dir())
        .expect("the SQL on FHIR suite is present")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| p.file_name().is_some_and(|n| n != "manifest.json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&p).expect("readable");
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, json)
        })
        .collect()
}

/// JSON equality with numbers compared by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Views compiled whose paths read only some top-level elements.
static PARTIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How the test hands each resource to the view.
#[derive(Clone, Copy)]
enum Input {
    /// The resource as the test file has it.
    Tree,
    /// The resource's JSON text, read by `View::parse` (only what the view's paths may
    /// read), as a run over the store reads it.
    Text,
}

/// Runs a view over the resources: its column names and rows as objects, or the error.
fn run(
    view: &Value,
    resources: &[Value],
    input: Input,
) -> Result<(Vec<String>, Vec<Value>), String> {
    let view = View::compile(view).map_err(|e| e.to_string())?;
    if matches!(input, Input::Text) && !view.footprint().all {
        PARTIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let names: Vec<String> = view.columns().iter().map(|c| c.name.clone()).collect();
    let mut rows = Vec::new();
    for r in resources {
        let parsed;
        let r = match input {
            Input::Tree => r,
            Input::Text => {
                parsed = view.parse(&r.to_string()).map_err(|e| e.to_string())?;
                &parsed
            }
        };
        view.rows(r, &mut |row| {
            let obj: Map<String, Value> = names.iter().cloned().zip(row).collect();
            rows.push(Value::Object(obj));
        })
        .map_err(|e| e.to_string())?;
    }
    Ok((names, rows))
}

fn check(test: &Value, resources: &[Value], input: Input) -> Result<(), String> {
    let outcome = run(&test["view"], resources, input);
    if test.get("expectError").and_then(Value::as_bool) == Some(true) {
        return match outcome {
            Err(_) => Ok(()),
            Ok((_, rows)) => Err(format!("expected an error, got {} rows", rows.len())),
        };
    }
    let (names, rows) = outcome?;
    if let Some(cols) = test.get("expectColumns").and_then(Value::as_array) {
        let expected: Vec<&str> = cols.iter().filter_map(Value::as_str).collect();
        if names != expected {
            return Err(format!("columns {names:?}, expected {expected:?}"));
        }
    }
    let expected = test["expect"]
        .as_array()
        .ok_or("the test has neither expect nor expectError")?;
    let mut unmatched: Vec<&Value> = rows.iter().collect();
    let mut missing = Vec::new();
    for e in expected {
        match unmatched.iter().position(|r| same(r, e)) {
            Some(i) => {
                unmatched.swap_remove(i);
            }
            None => missing.push(e),
        }
    }
    if missing.is_empty() && unmatched.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "expected rows not produced: {missing:?}; rows not expected: {unmatched:?}"
        ))
    }
}

#[test]
fn official_sql_on_fhir_suite() {
    oxehr_testdata::require!();
    suite(Input::Tree);
}

/// The same cases with each resource read from its JSON text by `View::parse`, which
/// skips the elements no path of the view may read: the rows must be the same.
#[test]
fn official_sql_on_fhir_suite_from_text() {
    oxehr_testdata::require!();
    suite(Input::Text);
}

fn suite(input: Input) {
    suite_run(input);
    let partial = PARTIAL.load(std::sync::atomic::Ordering::Relaxed);
    println!("views reading only some elements: {partial}");
    // The text run proves something only if views do skip elements.
    assert!(partial > 0, "no view of the suite skipped an element");
}

fn suite_run(input: Input) {
    let files = suite_files();
    let in_files: usize = files
        .iter()
        .map(|(_, f)| f["tests"].as_array().map_or(0, Vec::len))
        .sum();
    let mut run_count = 0;
    let mut failures = Vec::new();
    for (name, file) in &files {
        let resources = file["resources"].as_array().cloned().unwrap_or_default();
        for test in file["tests"].as_array().into_iter().flatten() {
            run_count += 1;
            let title = test["title"].as_str().unwrap_or("(untitled)");
            let outcome = std::panic::catch_unwind(|| check(test, &resources, input))
                .unwrap_or_else(|_| Err("panicked".to_string()));
            if let Err(why) = outcome {
                failures.push(format!("{name} / {title}: {why}"));
            }
        }
    }
    println!(
        "SQL on FHIR suite: {} files, {run_count} tests, {} passed",
        files.len(),
        run_count - failures.len()
    );
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {run_count} tests failed",
        failures.len()
    );
    assert_eq!(run_count, in_files, "every test in the files was run");
    assert_eq!(
        in_files, EXPECTED_TESTS,
        "the suite has {in_files} tests, not {EXPECTED_TESTS}: a file is missing or new"
    );
}
