//! Validation speed over the resources of one Synthea bundle (the per-resource figure is
//! the time per element reported by criterion's throughput).
//!
//! `cargo bench -p oxehr-fhir --bench validate`

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oxehr_fhir::validate::validate;
use serde_json::Value;

fn resources() -> Vec<Value> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/data/synthea/smart-on-fhir-r4/\
         Abdul_Koepp_e925b0f3-8006-43f6-aa31-94bd215e55e7.json",
    );
    let text = std::fs::read_to_string(&p).expect("the Synthea bundle is readable");
    let bundle: Value = serde_json::from_str(&text).expect("the Synthea bundle is JSON");
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let all = resources();
    let mut g = c.benchmark_group("validate");
    g.throughput(Throughput::Elements(all.len() as u64));
    g.bench_function(format!("synthea_bundle_{}_resources", all.len()), |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &all {
                n += validate(std::hint::black_box(r)).len();
            }
            n
        })
    });
    for ty in ["Patient", "Observation", "ExplanationOfBenefit"] {
        if let Some(r) = all.iter().find(|r| r["resourceType"] == ty) {
            g.throughput(Throughput::Elements(1));
            g.bench_function(ty, |b| b.iter(|| validate(std::hint::black_box(r))));
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
