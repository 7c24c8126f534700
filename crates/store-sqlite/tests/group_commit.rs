//! Group commit with failing jobs: jobs queued behind a busy writer are committed
//! together, without savepoints until one fails; then the transaction is rolled back,
//! the jobs before the failed one run again and the rest of the batch runs with a
//! savepoint for every job after a transaction's first. Whatever the batching, a failed
//! job leaves nothing behind, every other job is stored, and no job runs more than
//! twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
/// others queue behind it and are batched. Checks that each job's answer and its rows
/// agree with `fails`; returns how many times each job ran, and the jobs in the order
/// they first ran.
fn run(fails: fn(usize) -> bool) -> (Vec<usize>, Vec<usize>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        SqliteStore::open(&dir.path().join("db.sqlite"), SqliteConfig::default()).expect("open");
    let runs: Vec<Arc<AtomicUsize>> = (0..12).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let order: Arc<Mutex<Vec<usize>>> = Arc::default();
    let results: Vec<(usize, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let store = &store;
                let count = Arc::clone(&runs[i]);
                let order = Arc::clone(&order);
                let h = s.spawn(move || {
                    let v = patient(&format!("p{i}"), &format!("c{i}"));
                    let r = store.write(Box::new(move |tx| {
                        if count.fetch_add(1, Ordering::SeqCst) == 0 {
                            order.lock().expect("order").push(i);
                        }
                        if i == 0 {
                            std::thread::sleep(Duration::from_millis(300));
                        }
                        tx.put_many(std::slice::from_ref(&v))?;
                        if fails(i) {
                            return Err(StoreError::Conflict);
                        }
                        Ok(Box::new(()))
                    }));
                    (i, r.is_ok())
                });
                // Job 0 first, then the others in order, each queued before the next.
                std::thread::sleep(Duration::from_millis(if i == 0 { 50 } else { 10 }));
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
    let runs = runs.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    let order = order.lock().expect("order").clone();
    (runs, order)
}

#[test]
fn failing_jobs_in_a_batch_are_undone_alone() {
    let (runs, _) = run(|i| i % 3 == 1);
    assert!(runs.iter().all(|&n| (1..=2).contains(&n)), "runs {runs:?}");
}

#[test]
fn failing_first_job_of_a_batch_is_undone_alone() {
    let (runs, _) = run(|i| i == 0 || i == 5);
    assert!(runs.iter().all(|&n| (1..=2).contains(&n)), "runs {runs:?}");
}

/// Jobs 1..=11 form one batch; 6 and 9 fail. The jobs that ran before the first failure
/// run twice (their work was rolled back with it), every other job once, the second
/// failure included (by then each job after a transaction's first has a savepoint).
#[test]
fn jobs_before_a_failure_run_again_and_no_job_runs_three_times() {
    let fails = |i| i == 6 || i == 9;
    let (runs, order) = run(fails);
    // Job 0 ran alone; the batch behind it ran in `order` (their arrival order).
    assert_eq!(order.first(), Some(&0), "order {order:?}");
    let first_failure = order.iter().position(|&i| fails(i)).expect("a failure ran");
    let mut want = vec![1; 12];
    for &i in &order[1..first_failure] {
        want[i] = 2;
    }
    assert_eq!(runs, want, "order {order:?}");
}
