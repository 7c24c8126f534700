//! Group commit with failing jobs: jobs queued behind a busy writer are committed
//! together; the first job of a transaction runs without a savepoint (its failure rolls
//! the whole transaction back), later ones inside their own savepoint. Whatever the
//! batching, a failed job leaves nothing behind and every other job is stored.

use std::time::Duration;

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::{IndexEntry, IndexValue, ParamKey};
use oxehr_store::{Method, NewVersion, Store, StoreError, StoredResource};
use oxehr_store_sqlite::{SqliteConfig, SqliteStore};

fn patient(id: &str, code: &str) -> NewVersion {
    NewVersion {
        resource: StoredResource {
            rtype: ResourceType::parse("Patient").expect("type"),
            id: ResourceId::parse(id).expect("id"),
            version: VersionId(1),
            last_updated: 1_700_000_000_000_000,
            method: Method::Create,
            body: Some(format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#)),
        },
        index: vec![IndexEntry {
            param: ParamKey::of("Patient", "identifier"),
            value: IndexValue::Token {
                system: Some("urn:s".into()),
                code: Some(code.into()),
                text: None,
            },
        }],
        compartments: vec![ResourceId::parse(id).expect("id")],
    }
}

/// Job `i` puts `p{i}`, then fails when `fails(i)`; job 0 first holds the writer so the
/// others queue behind it and are batched.
fn run(fails: fn(usize) -> bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        SqliteStore::open(&dir.path().join("db.sqlite"), SqliteConfig::default()).expect("open");
    let results: Vec<(usize, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let store = &store;
                let h = s.spawn(move || {
                    let v = patient(&format!("p{i}"), &format!("c{i}"));
                    let r = store.write(Box::new(move |tx| {
                        if i == 0 {
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        tx.put_many(std::slice::from_ref(&v))?;
                        if fails(i) {
                            return Err(StoreError::Conflict);
                        }
                        Ok(Box::new(()))
                    }));
                    (i, r.is_ok())
                });
                if i == 0 {
                    std::thread::sleep(Duration::from_millis(50));
                }
                h
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    let mut r = store.read().expect("read");
    for (i, ok) in results {
        assert_eq!(ok, !fails(i), "job {i} answered as it ended");
        let id = ResourceId::parse(&format!("p{i}")).expect("id");
        let rtype = ResourceType::parse("Patient").expect("type");
        let stored = r.current(&rtype, &id).expect("current");
        assert_eq!(stored.is_some(), ok, "p{i} stored iff its job succeeded");
        let index = r.index_entries(&rtype, &id).expect("index");
        assert_eq!(index.len(), usize::from(ok), "p{i} index rows");
        let comps = r.compartments(&rtype, &id).expect("compartments");
        assert_eq!(comps.len(), usize::from(ok), "p{i} compartment rows");
    }
}

#[test]
fn failing_jobs_in_a_batch_are_undone_alone() {
    run(|i| i % 3 == 1);
}

#[test]
fn failing_first_job_of_a_batch_is_undone_alone() {
    run(|i| i == 0 || i == 5);
}
