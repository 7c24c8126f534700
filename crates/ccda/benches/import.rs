//! Import throughput over the 17 sample C-CDA documents (`cargo bench -p oxehr-ccda`).
//! Target: at least 20 documents per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::Path;

fn documents() -> Vec<String> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ccda");
    let mut out = Vec::new();
    for sub in ["hl7-c-cda-examples", "ms-fhir-converter"] {
        let Ok(rd) = std::fs::read_dir(data.join(sub)) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            if let Ok(t) = std::fs::read_to_string(e.path()) {
                out.push(t);
            }
        }
    }
    out
}

fn import_all(c: &mut Criterion) {
    let docs = documents();
    if docs.is_empty() {
        println!("skipped: no C-CDA samples in ../shared/data/ccda");
        return;
    }
    let ctx = oxehr_ccda::ImportContext::default();
    let mut g = c.benchmark_group("import");
    g.throughput(Throughput::Elements(docs.len() as u64));
    g.bench_function("17 sample documents", |b| {
        b.iter(|| {
            for d in &docs {
                let r = oxehr_ccda::import(d, &ctx);
                std::hint::black_box(r.is_ok());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, import_all);
criterion_main!(benches);
