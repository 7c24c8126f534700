//! The four quality measures over the Synthea patients in ../shared/data/synthea
//! (`cargo bench -p oxehr-clinical --bench measures`). Target: one measure over 1,000
//! patients in at most 5 s including loading, so evaluation must stay well under 1 ms
//! per patient. Criterion's throughput line gives patients per second.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oxehr_clinical::measures::{evaluate, Counts, MeasureId};
use oxehr_clinical::Record;
use serde_json::Value;
use time::macros::date;

/// The bundle texts, one per file.
fn bundles() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/synthea");
    ["synthea-v3", "smart-on-fhir-r4"]
        .iter()
        .filter_map(|d| std::fs::read_dir(root.join(d)).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect()
}

/// Each bundle's Patient and the other resources, for bundles that hold a patient.
fn patients(texts: &[String]) -> Vec<(Value, Vec<Value>)> {
    texts
        .iter()
        .filter_map(|t| {
            let bundle: Value = serde_json::from_str(t).ok()?;
            let mut patient = None;
            let mut rest = Vec::new();
            for e in bundle.get("entry")?.as_array()? {
                let r = e.get("resource")?.clone();
                if r.get("resourceType").and_then(Value::as_str) == Some("Patient") {
                    patient = Some(r);
                } else {
                    rest.push(r);
                }
            }
            Some((patient?, rest))
        })
        .collect()
}

fn run_all(patients: &[(Value, Vec<Value>)]) -> [Counts; 4] {
    let period = (date!(2019 - 01 - 01), date!(2019 - 12 - 31));
    MeasureId::all().map(|m| {
        let mut c = Counts::default();
        for (p, rest) in patients {
            c.add(&evaluate(m, &Record::new(p, rest), period));
        }
        c
    })
}

fn measures(c: &mut Criterion) {
    let texts = bundles();
    let loaded = patients(&texts);
    if loaded.is_empty() {
        println!("skipped: no Synthea bundles in ../shared/data/synthea");
        return;
    }
    let n = loaded.len() as u64;
    let mut g = c.benchmark_group("measures");
    g.throughput(Throughput::Elements(n));
    g.bench_function(format!("4 measures, {n} patients"), |b| {
        b.iter(|| std::hint::black_box(run_all(&loaded)))
    });
    for m in MeasureId::all() {
        let period = (date!(2019 - 01 - 01), date!(2019 - 12 - 31));
        g.bench_function(format!("{}, {n} patients", m.id()), |b| {
            b.iter(|| {
                for (p, rest) in &loaded {
                    std::hint::black_box(evaluate(m, &Record::new(p, rest), period));
                }
            })
        });
    }
    // Parsing the bundle JSON as well, as a measure run that loads its patients would.
    g.bench_function(format!("parse + 4 measures, {n} patients"), |b| {
        b.iter(|| std::hint::black_box(run_all(&patients(&texts))))
    });
    g.finish();
}

criterion_group!(benches, measures);
criterion_main!(benches);
