//! Extraction throughput: every resource of one Synthea bundle, per resource.
//! Run: `cargo bench -p oxehr-search --bench extract`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;

fn bundle_resources() -> Vec<Value> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/synthea/smart-on-fhir-r4");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("synthea dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.to_string_lossy().contains("hospital"))
        .collect();
    files.sort();
    let text = std::fs::read_to_string(&files[0]).expect("bundle");
    let bundle: Value = serde_json::from_str(&text).expect("json");
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["resource"].clone())
        .collect()
}

fn bench(c: &mut Criterion) {
    let resources = bundle_resources();
    // Build the registry outside the measurement.
    let _ = oxehr_search::Registry::r4();
    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Elements(resources.len() as u64));
    g.bench_function(
        format!("synthea_bundle_{}_resources", resources.len()),
        |b| {
            b.iter(|| {
                for r in &resources {
                    black_box(oxehr_search::extract(black_box(r)).ok());
                }
            })
        },
    );
    // The full-text part of it alone (`_text` and `_content`).
    g.bench_function(
        format!("synthea_bundle_{}_resources_full_text", resources.len()),
        |b| {
            b.iter(|| {
                for r in &resources {
                    let n = oxehr_search::extract::text::narrative(black_box(r));
                    black_box(oxehr_search::extract::text::content(r, n.as_deref()));
                }
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
