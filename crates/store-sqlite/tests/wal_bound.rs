//! The WAL stays near its bound under a steady stream of commits with readers reading
//! beside them: the checkpointer's passive checkpoints never catch up with a writer that
//! keeps committing, so the WAL starts over only because the writer finishes the copy
//! itself when asked (`writer::run_writer`). Without that, the WAL grows with everything
//! written (checked by turning it off: the file grew to 149 MB in this test, against a
//! bound of 1 MiB).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::{IndexEntry, IndexValue, ParamKey};
use oxehr_store::{Method, NewVersion, Store, StoredResource};
use oxehr_store_sqlite::{SqliteConfig, SqliteStore};

fn patient(i: usize) -> NewVersion {
    let id = format!("p{i}");
    // A body of a few KiB, so that each commit writes pages of its own.
    let note = "x".repeat(3000);
    NewVersion {
        resource: StoredResource {
            rtype: ResourceType::parse("Patient").expect("type"),
            id: ResourceId::parse(&id).expect("id"),
            version: VersionId(1),
            last_updated: 1_700_000_000_000_000 + i as i64,
            method: Method::Create,
            body: Some(format!(
                r#"{{"resourceType":"Patient","id":"{id}","text":{{"div":"{note}"}}}}"#
            )),
        },
        index: vec![IndexEntry {
            param: ParamKey::of("Patient", "identifier"),
            value: IndexValue::Token {
                system: Some("urn:s".into()),
                code: Some(format!("c{i}")),
                text: None,
            },
        }],
        compartments: vec![ResourceId::parse(&id).expect("id")],
    }
}

#[test]
fn the_wal_starts_over_under_a_steady_write_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db.sqlite");
    let wal = dir.path().join("db.sqlite-wal");
    // 1 MiB bound, checkpoints every 5 ms: what a server does at 256 MiB, in a second.
    let bound_pages = 256;
    let config = SqliteConfig {
        wal_restart_pages: bound_pages,
        checkpoint_interval: Duration::from_millis(5),
        ..SqliteConfig::default()
    };
    let store = SqliteStore::open(&path, config).expect("open");
    let writes = 6_000;
    let done = AtomicBool::new(false);
    let largest = std::thread::scope(|s| {
        // Readers beside the writes, each read a snapshot of its own, as requests are.
        for _ in 0..2 {
            s.spawn(|| {
                let rtype = ResourceType::parse("Patient").expect("type");
                let id = ResourceId::parse("p1").expect("id");
                while !done.load(Ordering::Relaxed) {
                    let mut r = store.read().expect("read");
                    r.current(&rtype, &id).expect("current");
                    drop(r);
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
        }
        let watch = s.spawn(|| {
            let mut largest = 0u64;
            while !done.load(Ordering::Relaxed) {
                if let Ok(m) = std::fs::metadata(&wal) {
                    largest = largest.max(m.len());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            largest
        });
        // Four writers, so that commits follow each other without a pause.
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = &store;
                s.spawn(move || {
                    for i in (w..writes).step_by(4) {
                        let v = patient(i);
                        store
                            .write(Box::new(move |tx| {
                                tx.put_many(std::slice::from_ref(&v))?;
                                Ok(Box::new(()))
                            }))
                            .expect("write");
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer");
        }
        done.store(true, Ordering::Relaxed);
        watch.join().expect("watch")
    });
    // Everything written is there.
    let mut r = store.read().expect("read");
    let rtype = ResourceType::parse("Patient").expect("type");
    for i in [0, writes / 2, writes - 1] {
        let id = ResourceId::parse(&format!("p{i}")).expect("id");
        assert!(r.current(&rtype, &id).expect("current").is_some(), "p{i}");
    }
    drop(r);
    let bound = bound_pages as u64 * 4096;
    let written = writes as u64 * 3000;
    assert!(
        written > 12 * bound,
        "the run writes far more than the bound"
    );
    // Above the bound by what the writer commits while the checkpointer catches up, and
    // never near everything written.
    assert!(
        largest <= 6 * bound,
        "the WAL grew to {largest} bytes against a bound of {bound} ({written} written)"
    );
}
