//! Conformance: concurrent writers, racing writers, and a store reopened.

use oxehr_fhir::VersionId;

use crate::{HistoryScope, JobOutput, Store, StoreError};

use super::build::*;
use super::history::history;
use super::index_rows::every_kind;
use super::search::{crit, patients, search_set, Match};

pub fn concurrent_writers_are_all_durable_and_isolated(store: &dyn Store) {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 50;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let rid = format!("t{t}-{i}");
                    let e = vec![entry("Patient", "identifier", token(Some("urn:t"), &rid))];
                    let v = version("Patient", &rid, 1, (t * 1000 + i) as i64, e);
                    if i % 10 == 9 {
                        // Every tenth job fails after its put: only it must vanish.
                        let r = store.write(Box::new(move |tx| {
                            tx.put(&v)?;
                            Err(StoreError::Aborted(Box::new(())))
                        }));
                        assert!(matches!(r, Err(StoreError::Aborted(_))), "job {rid} aborts");
                    } else if let Err(e) = put_all(store, vec![v]) {
                        panic!("create {rid} failed: {e}");
                    }
                }
            });
        }
    });
    let mut r = store.read().expect("read");
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            let rid = format!("t{t}-{i}");
            let got = r.current(&rt("Patient"), &id(&rid)).expect("current");
            assert_eq!(got.is_some(), i % 10 != 9, "{rid} stored iff acknowledged");
        }
    }
    let expected = (THREADS * PER_THREAD * 9 / 10) as u64;
    assert_eq!(
        crate::search::count(&mut *r, &crate::access::Access::All, &patients(Vec::new()))
            .expect("count"),
        expected
    );
}

pub fn racing_writes_to_one_resource_conflict(store: &dyn Store) {
    write_ok(store, vec![version("Patient", "p", 1, 10, Vec::new())]);
    for (what, v) in [("update", 2), ("create", 1)] {
        let rid = if v == 1 { "fresh" } else { "p" };
        let results: Vec<Result<JobOutput, StoreError>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..6)
                .map(|i| {
                    s.spawn(move || {
                        put_all(store, vec![version("Patient", rid, v, 20 + i, Vec::new())])
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("writer thread"))
                .collect()
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let conflicts = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict)))
            .count();
        assert_eq!(
            (ok, conflicts),
            (1, 5),
            "racing {what}: one wins, the rest conflict"
        );
        let cur = current(store, "Patient", rid).expect("stored");
        assert_eq!(cur.version, VersionId(v));
    }
}

pub fn a_panicking_job_is_rolled_back_and_the_store_goes_on(store: &dyn Store) {
    let r = store.write(Box::new(|tx| {
        tx.put(&version("Patient", "p", 1, 10, Vec::new()))?;
        panic!("a bug in a write job (expected by this test)");
    }));
    assert!(r.is_err(), "a panicking job is an error, not a commit");
    assert_eq!(
        current(store, "Patient", "p"),
        None,
        "its put is rolled back"
    );
    write_ok(store, vec![version("Patient", "p", 1, 20, Vec::new())]);
    assert!(
        current(store, "Patient", "p").is_some(),
        "later writes still work"
    );
}

/// Writes, closes and reopens the store, and checks that everything is still there.
pub fn reopened_store_keeps_everything<S: Store>(store: S, reopen: impl FnOnce(S) -> S) {
    let mut v1 = version("Observation", "o1", 1, 10, every_kind());
    v1.compartments = vec![id("p1")];
    let mut v2 = version("Observation", "o1", 2, 20, every_kind());
    v2.compartments = vec![id("p2")];
    write_ok(&store, vec![v1.clone()]);
    write_ok(
        &store,
        vec![v2.clone(), version("Patient", "p1", 1, 20, Vec::new())],
    );
    write_ok(&store, vec![deletion("Patient", "p1", 2, 30)]);
    let store = reopen(store);
    let s: &dyn Store = &store;
    assert_eq!(current(s, "Observation", "o1"), Some(v2.resource));
    assert_eq!(at_version(s, "Observation", "o1", 1), Some(v1.resource));
    assert!(current(s, "Patient", "p1").expect("p1").is_deleted());
    assert_eq!(
        index_of(s, "Observation", "o1"),
        sorted_entries(every_kind())
    );
    assert_eq!(compartments_of(s, "Observation", "o1").len(), 1);
    let (rows, n) = history(s, HistoryScope::System, None, None, 10, 0);
    assert_eq!(n, 4, "all versions survive: {rows:?}");
    let (got, _) = search_set(
        s,
        vec![crit("name", vec![Match::StringPrefix("blood".into())])],
    );
    assert_eq!(got.len(), 1, "search after reopen");
    // And it still takes writes.
    write_ok(s, vec![version("Observation", "o1", 3, 40, Vec::new())]);
}
