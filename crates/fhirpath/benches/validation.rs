//! What every write's content check costs, over the resources of one Synthea bundle:
//! the structural validation (`oxehr_fhir::validate`, group `validate`) and the
//! definitions' FHIRPath invariants (group `invariants`), which `oxehr_records::validate`
//! runs one after the other. The per-resource figure is criterion's time per element.
//!
//! `cargo bench -p oxehr-fhirpath --bench validation`

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oxehr_fhir::validate::validate;
use oxehr_fhir::Issue;
use oxehr_fhirpath::invariants::check;
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

fn group(c: &mut Criterion, all: &[Value], name: &str, f: fn(&Value) -> Vec<Issue>) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(all.len() as u64));
    g.bench_function(format!("synthea_bundle_{}_resources", all.len()), |b| {
        b.iter(|| {
            let mut n = 0;
            for r in all {
                n += f(std::hint::black_box(r)).len();
            }
            n
        })
    });
    for ty in ["Patient", "Observation", "ExplanationOfBenefit"] {
        if let Some(r) = all.iter().find(|r| r["resourceType"] == ty) {
            g.throughput(Throughput::Elements(1));
            g.bench_function(ty, |b| b.iter(|| f(std::hint::black_box(r))));
        }
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    let all = resources();
    group(c, &all, "validate", validate);
    group(c, &all, "invariants", check);
}

criterion_group!(benches, bench);
criterion_main!(benches);
