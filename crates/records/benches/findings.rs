//! What keeping care gaps and risk scores current costs (issue 14's targets), on a
//! SQLite store in a temporary directory holding one Synthea patient's whole record:
//!
//! - `write/empty`: a write job that changes nothing (no commit to sync);
//!   `write/mark-1` vs `write/mark-2`: a job marking one patient, then two — the
//!   difference is what a write of a type the rules read adds per patient it touches;
//! - `refresh/stale`: working one patient's findings out again after a write marked
//!   them (what the next read pays, once);
//! - `findings/current`: `$care-gaps`' record-layer call when nothing changed.
//!
//! `cargo bench -p oxehr-records --bench findings`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use oxehr_auth::Caller;
use oxehr_records::{EntryOutcome, Records, RecordsConfig};
use oxehr_store::Store;
use serde_json::Value;

const BUNDLE: &str =
    "../../../shared/data/synthea/smart-on-fhir-r4/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json";

fn setup() -> (tempfile::TempDir, Records, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        oxehr_store_sqlite::SqliteStore::open(&dir.path().join("b.sqlite"), Default::default())
            .expect("sqlite"),
    );
    let records = Records::new(store, RecordsConfig::default());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(BUNDLE);
    let bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("bundle")).expect("json");
    let (_, outcomes) = records.bundle(&Caller::server(), bundle).expect("import");
    let patient = outcomes
        .iter()
        .find_map(|o| match o {
            EntryOutcome::Created(r) if r.rtype.as_str() == "Patient" => {
                Some(r.id.as_str().to_owned())
            }
            _ => None,
        })
        .expect("patient");
    (dir, records, patient)
}

fn bench(c: &mut Criterion) {
    let (_dir, records, patient) = setup();
    let today = time::OffsetDateTime::now_utc().date();
    let id = oxehr_fhir::ResourceId::parse(&patient).expect("id");
    let who = Caller::server();

    let mut g = c.benchmark_group("write");
    g.bench_function("empty", |b| {
        b.iter(|| {
            records
                .store()
                .write(Box::new(|_tx| Ok(Box::new(()))))
                .expect("write")
        })
    });
    // The marginal cost of a mark in a transaction that commits anyway: one patient
    // marked, then two (the second on a row of its own). Their difference is what a
    // write adds per patient it touches; the first already pays the commit's WAL write
    // and fsync, as every write does.
    for (name, marked) in [
        ("mark-1", vec![patient.clone()]),
        (
            "mark-2",
            vec![patient.clone(), "zz-another-patient".to_owned()],
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let m = marked.clone();
                records
                    .store()
                    .write(Box::new(move |tx| {
                        oxehr_store::clinical::mark(tx, &m)?;
                        Ok(Box::new(()))
                    }))
                    .expect("write")
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("refresh");
    g.bench_function("stale", |b| {
        b.iter(|| {
            let p = patient.clone();
            records
                .store()
                .write(Box::new(move |tx| {
                    oxehr_store::clinical::mark(tx, std::slice::from_ref(&p))?;
                    Ok(Box::new(()))
                }))
                .expect("mark");
            records.refresh(&patient, today, true).expect("refresh")
        })
    });
    g.finish();

    records.findings(&who, &id, today).expect("warm");
    c.bench_function("findings/current", |b| {
        b.iter(|| records.findings(&who, &id, today).expect("findings"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
