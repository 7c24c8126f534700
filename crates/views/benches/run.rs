//! Rows per second of a view over the Observations of the Synthea v3 bundles: id,
//! patient key, first code, effective dateTime, value and unit — alone, and written to
//! CSV, and from each resource's JSON text (parsed whole, or only the elements the view
//! reads). Run: `cargo bench -p oxehr-views --bench run`.
//!
//! The bundles are transactions whose references are `urn:uuid:` full URLs; the server
//! rewrites them to `Type/id` when it stores the bundle, so the loader does the same, and
//! the patient key column sees what it sees in stored data.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oxehr_views::{CsvWriter, View};
use serde_json::{json, Value};

fn observations() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/synthea/synthea-v3");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("synthea-v3 dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let bundle: Value =
            serde_json::from_str(&std::fs::read_to_string(&f).expect("bundle")).expect("json");
        let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
        let urls: HashMap<String, String> = entries
            .iter()
            .filter_map(|e| {
                let r = &e["resource"];
                Some((
                    e["fullUrl"].as_str()?.to_string(),
                    format!("{}/{}", r["resourceType"].as_str()?, r["id"].as_str()?),
                ))
            })
            .collect();
        for e in entries {
            let mut r = e["resource"].clone();
            if r["resourceType"] == "Observation" {
                rewrite(&mut r, &urls);
                out.push(r);
            }
        }
    }
    out
}

/// `{"reference": "urn:uuid:…"}` → `{"reference": "Patient/…"}`, everywhere.
fn rewrite(v: &mut Value, urls: &HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                if k == "reference" {
                    if let Some(to) = child.as_str().and_then(|s| urls.get(s)) {
                        *child = Value::String(to.clone());
                    }
                } else {
                    rewrite(child, urls);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| rewrite(c, urls)),
        _ => {}
    }
}

fn view() -> View {
    View::compile(&json!({
        "resource": "Observation",
        "name": "observation_values",
        "select": [{"column": [
            {"name": "id", "path": "getResourceKey()"},
            {"name": "patient_id", "path": "subject.getReferenceKey(Patient)"},
            {"name": "code", "path": "code.coding.first().code"},
            {"name": "effective", "path": "effective.ofType(dateTime)"},
            {"name": "value", "path": "value.ofType(Quantity).value"},
            {"name": "unit", "path": "value.ofType(Quantity).unit"}
        ]}]
    }))
    .expect("view compiles")
}

fn bench(c: &mut Criterion) {
    let observations = observations();
    let view = view();
    let mut rows = 0u64;
    for o in &observations {
        view.rows(o, &mut |row| {
            assert!(row[1].is_string(), "every Observation has a patient key");
            rows += 1;
        })
        .expect("runs");
    }
    let mut g = c.benchmark_group("view");
    g.throughput(Throughput::Elements(rows));
    g.bench_function(format!("observation_values_{rows}_rows"), |b| {
        b.iter(|| {
            for o in &observations {
                view.rows(black_box(o), &mut |row| {
                    black_box(row);
                })
                .expect("runs");
            }
        })
    });
    g.bench_function(format!("observation_values_{rows}_rows_to_csv"), |b| {
        let mut buf = Vec::with_capacity(1 << 20);
        b.iter(|| {
            buf.clear();
            let mut w = CsvWriter::new(&mut buf, view.columns()).expect("header");
            for o in &observations {
                view.rows(black_box(o), &mut |row| {
                    w.write_row(&row).expect("writes");
                })
                .expect("runs");
            }
            black_box(buf.len());
        })
    });
    // From the JSON text, as a run over the store reads each stored body: the whole
    // resource parsed, against only what the view's paths may read (`View::parse`).
    let texts: Vec<String> = observations.iter().map(Value::to_string).collect();
    g.bench_function(
        format!("observation_values_{rows}_rows_from_text_whole"),
        |b| {
            b.iter(|| {
                for t in &texts {
                    let o: Value = serde_json::from_str(black_box(t)).expect("json");
                    view.rows(&o, &mut |row| {
                        black_box(row);
                    })
                    .expect("runs");
                }
            })
        },
    );
    g.bench_function(
        format!("observation_values_{rows}_rows_from_text_partial"),
        |b| {
            b.iter(|| {
                for t in &texts {
                    let o = view.parse(black_box(t)).expect("json");
                    view.rows(&o, &mut |row| {
                        black_box(row);
                    })
                    .expect("runs");
                }
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
