//! Care-gap evaluation over the Synthea patients (`cargo bench -p oxehr-clinical --bench
//! gaps`): all built-in rules for one patient, with the whole bundle as the record (the
//! caller will pass only the resource types the rules read, so this is the slow case).

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oxehr_clinical::gaps::{evaluate, RiskInput, RuleSet};
use oxehr_clinical::Record;
use serde_json::Value;
use time::macros::date;

fn patients() -> Vec<(Value, Vec<Value>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/synthea");
    let mut out = Vec::new();
    for dir in ["synthea-v3", "smart-on-fhir-r4"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let Ok(bundle) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let resources: Vec<Value> = bundle["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["resource"].clone())
                .collect();
            if let Some(p) = resources.iter().find(|r| r["resourceType"] == "Patient") {
                out.push((p.clone(), resources));
            }
        }
    }
    out
}

fn evaluate_all(c: &mut Criterion) {
    let patients = patients();
    if patients.is_empty() {
        println!("skipped: no Synthea bundles in ../shared/data/synthea");
        return;
    }
    let rules = RuleSet::builtin().expect("built-in rules parse");
    let risk = [RiskInput {
        id: "ascvd-10y",
        value_percent: 12.0,
        source: None,
    }];
    let resources: usize = patients.iter().map(|(_, r)| r.len()).sum();
    println!(
        "{} patients, {resources} resources ({} per patient on average)",
        patients.len(),
        resources / patients.len()
    );
    let mut g = c.benchmark_group("gaps");
    g.throughput(Throughput::Elements(patients.len() as u64));
    g.bench_function("all rules, every Synthea patient", |b| {
        b.iter(|| {
            for (p, res) in &patients {
                let gaps = evaluate(&rules, &Record::new(p, res), date!(2026 - 12 - 05), &risk);
                std::hint::black_box(gaps);
            }
        })
    });
    // The largest bundle alone: the per-patient cost that grows with the record.
    if let Some((p, res)) = patients.iter().max_by_key(|(_, r)| r.len()) {
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("largest patient ({} resources)", res.len()), |b| {
            b.iter(|| evaluate(&rules, &Record::new(p, res), date!(2026 - 12 - 05), &risk))
        });
    }
    g.bench_function("RuleSet::builtin (parse the rule files)", |b| {
        b.iter(RuleSet::builtin)
    });
    g.finish();
}

criterion_group!(benches, evaluate_all);
criterion_main!(benches);
