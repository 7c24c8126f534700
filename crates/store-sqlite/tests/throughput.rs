//! Rough throughput figures, not a benchmark suite and never a timed assertion:
//! `cargo test --release -p oxehr-store-sqlite --test throughput -- --ignored --nocapture`.

use std::time::Instant;

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::{IndexEntry, IndexValue, ParamKey};
use oxehr_store::{Method, NewVersion, Store, StoredResource};
use oxehr_store_sqlite::{SqliteConfig, SqliteStore};

/// An Observation-like row with 15 index entries and a ~1 KB body.
fn observation(i: usize) -> NewVersion {
    let id = format!("obs-{i}");
    let tok = |code: &str, s: &str, c: &str| IndexEntry {
        param: ParamKey::of("Observation", code),
        value: IndexValue::Token {
            system: Some(s.into()),
            code: Some(c.into()),
            text: None,
        },
    };
    let mut index: Vec<IndexEntry> = (0..6)
        .map(|k| tok("code", "http://loinc.org", &format!("{}-{k}", i % 500)))
        .collect();
    index.extend((0..3).map(|k| IndexEntry {
        param: ParamKey::of("Observation", "text"),
        value: IndexValue::String {
            normalized: format!("blood pressure {k} {}", i % 97),
            exact: format!("Blood Pressure {k}"),
        },
    }));
    index.extend((0..2).map(|k| IndexEntry {
        param: ParamKey::of("Observation", "date"),
        value: IndexValue::Date {
            low: 1_700_000_000_000_000 + (i * 1000 + k) as i64,
            high: 1_700_000_000_000_000 + (i * 1000 + k) as i64 + 999,
        },
    }));
    index.extend(["subject", "performer"].iter().map(|p| IndexEntry {
        param: ParamKey::of("Observation", p),
        value: IndexValue::Reference {
            target_type: Some("Patient".into()),
            target_id: Some(format!("pat-{}", i % 1000)),
            version: None,
            url: None,
            identifier_system: None,
            identifier_value: None,
        },
    }));
    index.push(IndexEntry {
        param: ParamKey::of("Observation", "value-quantity"),
        value: IndexValue::Quantity {
            value: 120.0,
            low: 119.5,
            high: 120.5,
            system: Some("http://unitsofmeasure.org".into()),
            code: Some("mm[Hg]".into()),
            unit: None,
            canonical_value: None,
            canonical_code: None,
        },
    });
    index.push(IndexEntry {
        param: ParamKey::of("Observation", "url"),
        value: IndexValue::Uri {
            value: format!("urn:uuid:{i}"),
        },
    });
    let body = format!(
        r#"{{"resourceType":"Observation","id":"{id}","meta":{{"versionId":"1"}},"status":"final","text":"{}"}}"#,
        "x".repeat(900)
    );
    NewVersion {
        resource: StoredResource {
            rtype: ResourceType::parse("Observation").expect("type"),
            id: ResourceId::parse(&id).expect("id"),
            version: VersionId(1),
            last_updated: 1_700_000_000_000_000 + i as i64,
            method: Method::Create,
            body: Some(body),
        },
        index,
        compartments: vec![ResourceId::parse(&format!("pat-{}", i % 1000)).expect("id")],
    }
}

fn put_batch(store: &dyn Store, vs: Vec<NewVersion>) {
    store
        .write(Box::new(move |tx| {
            for v in &vs {
                tx.put(v)?;
            }
            Ok(Box::new(()))
        }))
        .expect("write");
}

#[test]
#[ignore = "prints throughput figures; run with --release"]
fn throughput() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(&dir.path().join("t.db"), SqliteConfig::default()).expect("open");
    let (jobs, per_job) = (50, 1000);
    let t = Instant::now();
    for j in 0..jobs {
        put_batch(
            &store,
            (0..per_job).map(|k| observation(j * per_job + k)).collect(),
        );
    }
    let n = jobs * per_job;
    println!(
        "bulk: {n} resources x 15 index rows in jobs of {per_job}: {:.0}/s",
        n as f64 / t.elapsed().as_secs_f64()
    );

    let (threads, each) = (32, 200);
    let t = Instant::now();
    std::thread::scope(|s| {
        for th in 0..threads {
            let store = &store;
            s.spawn(move || {
                for k in 0..each {
                    put_batch(store, vec![observation(n + th * each + k)]);
                }
            });
        }
    });
    println!(
        "single creates, {threads} threads: {:.0}/s",
        (threads * each) as f64 / t.elapsed().as_secs_f64()
    );

    let reads = 5000;
    let t = Instant::now();
    let mut lat: Vec<u128> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|th| {
                let store = &store;
                s.spawn(move || {
                    let rt = ResourceType::parse("Observation").expect("type");
                    (0..reads)
                        .map(|k| {
                            let id =
                                ResourceId::parse(&format!("obs-{}", (th * 7919 + k * 31) % n))
                                    .expect("id");
                            let t = Instant::now();
                            let r = store
                                .read()
                                .expect("read")
                                .current(&rt, &id)
                                .expect("current");
                            assert!(r.is_some());
                            t.elapsed().as_micros()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("join"))
            .collect()
    });
    let secs = t.elapsed().as_secs_f64();
    lat.sort_unstable();
    println!(
        "reads by id, {threads} threads: {:.0}/s, p50 {} us, p99 {} us",
        lat.len() as f64 / secs,
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100]
    );
}
