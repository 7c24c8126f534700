//! The conformance suite every storage backend must pass.
//!
//! Each public function checks one behaviour of a [`Store`] and panics with a message
//! naming what went wrong. A backend's integration test expands them into one `#[test]`
//! each with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! oxehr_store::conformance_tests!(|| Some(fresh_store()), reopen = |s| reopen(s));
//! ```
//!
//! `make_store` returns `Option<S>` (`S: Store`): `None` skips the test, for a backend
//! whose server is not available outside CI. `reopen` (optional) closes a store and opens
//! the same database again. The rows are built by hand here: this tests storage, not
//! index extraction.

mod build;
mod durability;
mod history;
mod index_rows;
mod search;

pub use durability::{
    a_panicking_job_is_rolled_back_and_the_store_goes_on,
    concurrent_writers_are_all_durable_and_isolated, racing_writes_to_one_resource_conflict,
    reopened_store_keeps_everything,
};
pub use history::{history_filters_since_at_count_offset, history_is_newest_first_per_scope};
pub use index_rows::{
    compartments_are_replaced_on_update_and_removed_on_delete,
    index_entries_are_replaced_on_update_and_removed_on_delete,
};
pub use search::{
    search_matches_each_kind, search_never_matches_deleted_or_replaced_entries,
    search_ors_within_and_ands_across_criteria, search_pages_by_position,
    search_prefixes_follow_the_search_page,
};

use oxehr_fhir::VersionId;

use crate::{
    HistoryQuery, HistoryScope, JobOutput, Method, NewVersion, Store, StoreError, WriteJob,
};

use build::*;

/// Expands into one `#[test]` per conformance function. See the module doc.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr $(, reopen = $reopen:expr)? $(,)?) => {
        $crate::conformance_tests!(@each $make;
            put_then_read_current_and_each_version,
            single_reads_match_snapshot_reads,
            update_increments_and_keeps_old_versions,
            delete_is_a_version_without_body,
            put_with_wrong_version_conflicts_and_stores_nothing,
            failed_job_rolls_back_all_its_puts,
            reads_inside_a_job_see_its_own_writes,
            history_is_newest_first_per_scope,
            history_filters_since_at_count_offset,
            index_entries_are_replaced_on_update_and_removed_on_delete,
            compartments_are_replaced_on_update_and_removed_on_delete,
            search_matches_each_kind,
            search_ors_within_and_ands_across_criteria,
            search_pages_by_position,
            search_prefixes_follow_the_search_page,
            search_never_matches_deleted_or_replaced_entries,
            concurrent_writers_are_all_durable_and_isolated,
            racing_writes_to_one_resource_conflict,
            a_panicking_job_is_rolled_back_and_the_store_goes_on,
            accounts_are_added_once_read_listed_and_updated
        );
        $(
            #[test]
            fn reopened_store_keeps_everything() {
                if let Some(store) = ($make)() {
                    $crate::conformance::reopened_store_keeps_everything(store, $reopen);
                }
            }
        )?
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(store) = ($make)() {
                    $crate::conformance::$name(&store);
                }
            }
        )*
    };
}

pub fn put_then_read_current_and_each_version(store: &dyn Store) {
    let v1 = version("Patient", "p1", 1, 10, Vec::new());
    write_ok(store, vec![v1.clone()]);
    assert_eq!(
        current(store, "Patient", "p1"),
        Some(v1.resource.clone()),
        "current after create"
    );
    assert_eq!(at_version(store, "Patient", "p1", 1), Some(v1.resource));
    assert_eq!(at_version(store, "Patient", "p1", 2), None, "no version 2");
    assert_eq!(current(store, "Patient", "nope"), None, "unknown id");
    assert_eq!(
        current(store, "Observation", "p1"),
        None,
        "same id, other type"
    );
}

/// `Store::read_current` / `read_version` (the one-statement read path) answer what a
/// read snapshot answers, deleted versions included.
pub fn single_reads_match_snapshot_reads(store: &dyn Store) {
    let v1 = version("Patient", "p1", 1, 10, Vec::new());
    let v2 = version("Patient", "p1", 2, 20, Vec::new());
    write_ok(store, vec![v1.clone()]);
    write_ok(store, vec![v2.clone()]);
    let del = crate::NewVersion {
        resource: crate::StoredResource {
            version: oxehr_fhir::VersionId(3),
            last_updated: 30,
            method: Method::Delete,
            body: None,
            ..v2.resource.clone()
        },
        index: Vec::new(),
        compartments: Vec::new(),
    };
    write_ok(store, vec![del.clone()]);
    let (rt, id) = (v1.resource.rtype.clone(), v1.resource.id.clone());
    let single = store.read_current(&rt, &id).expect("read_current");
    assert_eq!(single, current(store, "Patient", "p1"));
    assert_eq!(
        single,
        Some(del.resource),
        "the current version is the delete"
    );
    for v in [&v1, &v2] {
        assert_eq!(
            store
                .read_version(&rt, &id, v.resource.version)
                .expect("read_version"),
            Some(v.resource.clone())
        );
    }
    let other = oxehr_fhir::ResourceId::parse("nope").expect("id");
    assert_eq!(store.read_current(&rt, &other).expect("read_current"), None);
}

pub fn update_increments_and_keeps_old_versions(store: &dyn Store) {
    let vs: Vec<NewVersion> = (1..=3)
        .map(|v| version("Patient", "p1", v, 10 * v as i64, Vec::new()))
        .collect();
    write_ok(store, vec![vs[0].clone()]);
    write_ok(store, vec![vs[1].clone()]);
    write_ok(store, vec![vs[2].clone()]);
    let cur = current(store, "Patient", "p1").expect("current exists");
    assert_eq!(cur, vs[2].resource, "current is the newest version");
    for v in &vs {
        assert_eq!(
            at_version(store, "Patient", "p1", v.resource.version.0).as_ref(),
            Some(&v.resource),
            "version {} stays readable",
            v.resource.version
        );
    }
}

pub fn delete_is_a_version_without_body(store: &dyn Store) {
    write_ok(store, vec![version("Patient", "p1", 1, 10, Vec::new())]);
    write_ok(store, vec![deletion("Patient", "p1", 2, 20)]);
    let cur = current(store, "Patient", "p1").expect("a deleted resource still has a current");
    assert!(cur.is_deleted(), "current reads as deleted");
    assert_eq!(cur.version, VersionId(2));
    assert_eq!(cur.method, Method::Delete);
    let old = at_version(store, "Patient", "p1", 1).expect("version 1");
    assert!(old.body.is_some(), "older version keeps its body");
    // Re-creating after a delete is just the next version.
    let v3 = version("Patient", "p1", 3, 30, Vec::new());
    write_ok(store, vec![v3.clone()]);
    assert_eq!(current(store, "Patient", "p1"), Some(v3.resource));
}

pub fn put_with_wrong_version_conflicts_and_stores_nothing(store: &dyn Store) {
    let expect_conflict = |vs: Vec<NewVersion>, what: &str| match put_all(store, vs) {
        Err(StoreError::Conflict) => {}
        Err(e) => panic!("{what}: expected Conflict, got {e}"),
        Ok(_) => panic!("{what}: expected Conflict, got Ok"),
    };
    expect_conflict(
        vec![version("Patient", "new", 2, 10, Vec::new())],
        "version 2 of a new resource",
    );
    assert_eq!(current(store, "Patient", "new"), None);
    write_ok(store, vec![version("Patient", "p1", 1, 10, Vec::new())]);
    expect_conflict(
        vec![version("Patient", "p1", 1, 20, Vec::new())],
        "create twice",
    );
    expect_conflict(
        vec![version("Patient", "p1", 3, 20, Vec::new())],
        "skip a version",
    );
    let cur = current(store, "Patient", "p1").expect("p1");
    assert_eq!(cur.version, VersionId(1), "nothing stored by a conflict");
    assert_eq!(cur.last_updated, T0 + 10);
    assert_eq!(at_version(store, "Patient", "p1", 3), None);
    let mut r = store.read().expect("read");
    let q = HistoryQuery {
        scope: HistoryScope::System,
        since: None,
        at: None,
        count: 100,
        offset: 0,
    };
    assert_eq!(r.history_count(&q).expect("history_count"), 1);
}

pub fn failed_job_rolls_back_all_its_puts(store: &dyn Store) {
    let tok = |c: &str| vec![entry("Patient", "identifier", token(Some("urn:s"), c))];
    let mut c1 = version("Patient", "c", 1, 10, tok("old"));
    c1.compartments = vec![id("c")];
    write_ok(store, vec![c1]);
    let job_versions = vec![
        version("Patient", "a", 1, 20, tok("a")),
        version("Patient", "b", 1, 20, tok("b")),
        version("Patient", "c", 2, 20, tok("new")),
    ];
    let result = store.write(Box::new(move |tx| {
        for v in &job_versions {
            tx.put(v)?;
        }
        Err(StoreError::Aborted(Box::new("caller says no")))
    }));
    match result {
        Err(StoreError::Aborted(payload)) => assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"caller says no"),
            "the caller's payload comes back"
        ),
        Err(e) => panic!("expected Aborted, got {e}"),
        Ok(_) => panic!("expected Aborted, got Ok"),
    }
    assert_eq!(current(store, "Patient", "a"), None, "a rolled back");
    assert_eq!(current(store, "Patient", "b"), None, "b rolled back");
    let c = current(store, "Patient", "c").expect("c");
    assert_eq!(c.version, VersionId(1), "update of c rolled back");
    assert_eq!(
        index_of(store, "Patient", "c"),
        sorted_entries(tok("old")),
        "c keeps its index rows"
    );
    assert_eq!(compartments_of(store, "Patient", "c").len(), 1);
    // The store still works after a rollback.
    write_ok(store, vec![version("Patient", "a", 1, 30, Vec::new())]);
    assert!(current(store, "Patient", "a").is_some());
}

pub fn reads_inside_a_job_see_its_own_writes(store: &dyn Store) {
    let out = store
        .write(Box::new(|tx| {
            tx.lock("Patient/p1")?;
            let v1 = version(
                "Patient",
                "p1",
                1,
                10,
                vec![entry("Patient", "name", string("Ada"))],
            );
            tx.put(&v1)?;
            let seen1 = tx.current(&rt("Patient"), &id("p1"))?;
            let search = search::patients(vec![search::Criterion::on(
                "Patient",
                "name",
                vec![search::Match::StringPrefix("ad".into())],
            )]);
            let found =
                crate::search::page(tx, &search, &crate::search::Position::First, 10)?.len();
            tx.put(&version("Patient", "p1", 2, 20, Vec::new()))?;
            let seen2 = tx.current(&rt("Patient"), &id("p1"))?.map(|r| r.version);
            let old = tx.version(&rt("Patient"), &id("p1"), VersionId(1))?;
            let found_after = crate::search::count(tx, &search)?;
            Ok(Box::new((
                seen1 == Some(v1.resource.clone()),
                found,
                seen2,
                old == Some(v1.resource),
                found_after,
            )))
        }))
        .expect("job commits");
    let out = out
        .downcast::<(bool, usize, Option<VersionId>, bool, u64)>()
        .expect("the job's output comes back");
    assert!(out.0, "current inside the job sees the put");
    assert_eq!(out.1, 1, "search inside the job sees the put");
    assert_eq!(out.2, Some(VersionId(2)), "second put visible");
    assert!(out.3, "version 1 readable inside the job");
    assert_eq!(out.4, 0, "index rows of version 1 replaced inside the job");
}

pub fn accounts_are_added_once_read_listed_and_updated(store: &dyn Store) {
    use crate::accounts::{self, AccountRow};
    let alice = AccountRow {
        name: "alice".into(),
        role: "clinician".into(),
        organization: Some("org-1".into()),
        person: Some("Practitioner/pr-1".into()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        totp_secret: None,
        totp_last_step: None,
        mfa_required: true,
        disabled: false,
        created: 1_700_000_000_000_000,
        updated: 1_700_000_000_000_000,
    };
    let bob = AccountRow {
        name: "bob".into(),
        role: "patient".into(),
        organization: None,
        person: Some("Patient/p-1".into()),
        mfa_required: false,
        ..alice.clone()
    };
    let run = |job: WriteJob| -> JobOutput { store.write(job).expect("account job") };
    let added = |out: JobOutput| *out.downcast::<bool>().expect("bool");
    let (b, a) = (bob.clone(), alice.clone());
    assert!(added(run(Box::new(move |tx| {
        Ok(Box::new(
            accounts::insert(tx, &b)? && accounts::insert(tx, &a)?,
        ))
    }))));
    // A second account under a taken name writes nothing, and the transaction goes on.
    let mut imposter = alice.clone();
    imposter.role = "system-admin".into();
    let b = bob.clone();
    assert!(!added(run(Box::new(move |tx| {
        let taken = accounts::insert(tx, &imposter)?;
        let mut b = b;
        b.disabled = true;
        Ok(Box::new(taken || !accounts::update(tx, &b)?))
    }))));
    let mut read = store.read().expect("read");
    assert_eq!(
        accounts::get(read.as_mut(), "alice").expect("get"),
        Some(alice.clone())
    );
    assert_eq!(accounts::get(read.as_mut(), "carol").expect("get"), None);
    let listed = accounts::list(read.as_mut()).expect("list");
    let names: Vec<&str> = listed.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert!(listed[1].disabled, "bob was disabled in the same job");
    assert_eq!(accounts::count(read.as_mut()).expect("count"), 2);
    drop(read);

    // Enrolling TOTP sets the nullable columns; clearing them sets NULL again.
    let mut enrolled = alice.clone();
    enrolled.totp_secret = Some("JBSWY3DPEHPK3PXP".into());
    enrolled.totp_last_step = Some(56_666_666);
    enrolled.updated += 1;
    let e = enrolled.clone();
    assert!(added(run(Box::new(move |tx| {
        Ok(Box::new(accounts::update(tx, &e)?))
    }))));
    let mut read = store.read().expect("read");
    assert_eq!(
        accounts::get(read.as_mut(), "alice").expect("get"),
        Some(enrolled)
    );
    drop(read);
    let a = alice.clone();
    assert!(added(run(Box::new(move |tx| {
        Ok(Box::new(accounts::update(tx, &a)?))
    }))));
    let mut read = store.read().expect("read");
    assert_eq!(
        accounts::get(read.as_mut(), "alice").expect("get"),
        Some(alice)
    );
    let mut nobody = bob;
    nobody.name = "nobody".into();
    drop(read);
    assert!(!added(run(Box::new(move |tx| {
        Ok(Box::new(accounts::update(tx, &nobody)?))
    }))));
}
