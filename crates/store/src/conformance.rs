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
mod care;
mod durability;
mod history;
mod index_rows;
mod interrupt;
mod proxy;
mod search;

pub use care::care_follows_every_write;
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
pub use interrupt::reads_stop_at_the_deadline_or_when_stopped;
pub use proxy::{
    proxy_access_sees_its_patients_and_hides_an_adolescent_s_labelled_records,
    proxy_grants_are_the_account_s_active_related_persons,
};
pub use search::{
    search_counts_up_to_a_cap_and_estimates_from_the_index, search_matches_each_kind,
    search_never_matches_deleted_or_replaced_entries, search_ors_within_and_ands_across_criteria,
    search_pages_by_position, search_pages_through_windows_of_driver_keys,
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
            care_follows_every_write,
            proxy_grants_are_the_account_s_active_related_persons,
            proxy_access_sees_its_patients_and_hides_an_adolescent_s_labelled_records,
            search_matches_each_kind,
            search_ors_within_and_ands_across_criteria,
            search_pages_by_position,
            search_counts_up_to_a_cap_and_estimates_from_the_index,
            search_pages_through_windows_of_driver_keys,
            search_prefixes_follow_the_search_page,
            search_never_matches_deleted_or_replaced_entries,
            concurrent_writers_are_all_durable_and_isolated,
            racing_writes_to_one_resource_conflict,
            a_panicking_job_is_rolled_back_and_the_store_goes_on,
            accounts_are_added_once_read_listed_and_updated,
            audit_log_chains_records_and_verify_finds_tampering,
            audit_appends_from_concurrent_writers_form_one_chain,
            reads_stop_at_the_deadline_or_when_stopped
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
        access: crate::access::Access::All,
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
            let found = crate::search::page(
                tx,
                &crate::access::Access::All,
                &search,
                &crate::search::Position::First,
                10,
            )?
            .len();
            tx.put(&version("Patient", "p1", 2, 20, Vec::new()))?;
            let seen2 = tx.current(&rt("Patient"), &id("p1"))?.map(|r| r.version);
            let old = tx.version(&rt("Patient"), &id("p1"), VersionId(1))?;
            let found_after = crate::search::count(tx, &crate::access::Access::All, &search)?;
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
        let mut b = b.clone();
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

/// The audit log's records of two jobs form one chain whose hashes are recomputed here
/// from the documented encoding (`crate::audit` module doc), a failed job leaves none,
/// and every kind of edit made behind the store's back — a changed field, a changed
/// field re-hashed, a deleted row, a deleted newest row, a deleted head — is reported
/// with the record it concerns.
pub fn audit_log_chains_records_and_verify_finds_tampering(store: &dyn Store) {
    use crate::audit::{self, AuditRecord, StoredAudit, Verification};
    use crate::sql::SqlArg;
    use sha2::{Digest, Sha256};

    const T: i64 = 1_700_000_000_000_000;
    let zeros = "0".repeat(64);
    let sha = |s: &str| -> String {
        Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let full = |i: i64, detail: Option<&str>| AuditRecord {
        time: T + i,
        user: Some(format!("user{i}")),
        role: Some("clinician".into()),
        organization: Some("org-1".into()),
        patient: Some(format!("p-{i}")),
        resource: Some(format!("Observation/o-{i}")),
        action: "read".into(),
        outcome: "success".into(),
        client: Some("192.0.2.7".into()),
        detail: detail.map(str::to_owned),
    };
    let bare = |i: i64| AuditRecord {
        time: T + i,
        user: None,
        role: None,
        organization: None,
        patient: None,
        resource: Some("Patient".into()),
        action: "search".into(),
        outcome: "denied".into(),
        client: None,
        detail: None,
    };
    let first = vec![full(1, Some("")), bare(2), full(3, None)];
    let second = vec![full(4, Some("break the glass: \"unconscious\"")), bare(5)];
    let append = |records: Vec<AuditRecord>, fail: bool| {
        store.write(Box::new(move |tx| {
            audit::append(tx, &records)?;
            if fail {
                return Err(StoreError::Aborted(Box::new(())));
            }
            Ok(Box::new(()))
        }))
    };
    let verify = || -> Verification {
        let mut r = store.read().expect("read");
        audit::verify(r.as_mut()).expect("verify")
    };
    let listed = || -> Vec<StoredAudit> {
        let mut r = store.read().expect("read");
        audit::list(r.as_mut(), 0, 100).expect("list")
    };
    let sql = |sql: &'static str, args: Vec<SqlArg>| {
        let out = store
            .write(Box::new(move |tx| Ok(Box::new(tx.execute(sql, &args)?))))
            .expect("tampering statement");
        assert_eq!(*out.downcast::<u64>().expect("u64"), 1, "{sql}: one row");
    };
    let expect_problem = |what: &str, needle: &str| {
        let v = verify();
        assert!(!v.is_intact(), "{what}: verify must fail");
        assert_eq!(
            v.problem_count, 1,
            "{what}: one problem, got {:?}",
            v.problems
        );
        assert!(
            v.problems[0].contains(needle),
            "{what}: {:?} should name {needle:?}",
            v.problems
        );
    };

    let v = verify();
    assert!(
        v.is_intact() && v.records == 0 && v.head.is_none(),
        "empty: {v:?}"
    );
    append(first.clone(), false).expect("first job");
    append(second.clone(), false).expect("second job");
    assert!(
        matches!(
            append(vec![full(6, None)], true),
            Err(StoreError::Aborted(_))
        ),
        "the failing job fails"
    );

    let rows = listed();
    let expected: Vec<AuditRecord> = first.iter().chain(&second).cloned().collect();
    assert_eq!(
        rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5],
        "the failed job's record was rolled back"
    );
    assert_eq!(
        rows.iter().map(|r| r.record.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        rows[0].prev_hash, zeros,
        "record 1 follows the genesis hash"
    );
    for w in rows.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash, "record {} links", w[1].seq);
    }
    // Independently of the code under test: the documented JSON, written out.
    let enc1 = format!(
        "[1,{},\"user1\",\"clinician\",\"org-1\",\"p-1\",\"Observation/o-1\",\"read\",\
         \"success\",\"192.0.2.7\",\"\",\"{zeros}\"]",
        T + 1
    );
    assert_eq!(rows[0].hash, sha(&enc1), "hash of record 1");
    let enc2 = format!(
        "[2,{},null,null,null,null,\"Patient\",\"search\",\"denied\",null,null,\"{}\"]",
        T + 2,
        rows[0].hash
    );
    assert_eq!(rows[1].hash, sha(&enc2), "hash of record 2");
    let enc4 = format!(
        "[4,{},\"user4\",\"clinician\",\"org-1\",\"p-4\",\"Observation/o-4\",\"read\",\
         \"success\",\"192.0.2.7\",\"break the glass: \\\"unconscious\\\"\",\"{}\"]",
        T + 4,
        rows[2].hash
    );
    assert_eq!(
        rows[3].hash,
        sha(&enc4),
        "hash of record 4 (escaped quotes)"
    );
    let mut r = store.read().expect("read");
    assert_eq!(
        audit::list(r.as_mut(), 2, 2)
            .expect("list")
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>(),
        [3, 4],
        "list pages after a seq"
    );
    drop(r);
    let v = verify();
    assert!(v.is_intact(), "untouched log: {:?}", v.problems);
    assert_eq!(v.records, 5);
    assert_eq!(
        v.head,
        Some(audit::Head {
            seq: 5,
            hash: rows[4].hash.clone()
        })
    );

    // A changed field.
    let outcome = |o: &str| vec![SqlArg::Text(o.into()), SqlArg::Int8(2)];
    sql(
        "UPDATE audit_log SET outcome = ? WHERE seq = ?",
        outcome("success"),
    );
    expect_problem("altered outcome", "record 2:");
    sql(
        "UPDATE audit_log SET outcome = ? WHERE seq = ?",
        outcome("denied"),
    );
    assert!(verify().is_intact(), "restored");

    // A changed field whose row was re-hashed: the next record's link breaks.
    let enc2_forged = enc2.replace("\"denied\"", "\"success\"");
    sql(
        "UPDATE audit_log SET outcome = ?, hash = ? WHERE seq = ?",
        vec![
            SqlArg::Text("success".into()),
            SqlArg::Text(sha(&enc2_forged)),
            SqlArg::Int8(2),
        ],
    );
    expect_problem("altered and re-hashed", "record 3:");
    sql(
        "UPDATE audit_log SET outcome = ?, hash = ? WHERE seq = ?",
        vec![
            SqlArg::Text("denied".into()),
            SqlArg::Text(rows[1].hash.clone()),
            SqlArg::Int8(2),
        ],
    );
    assert!(verify().is_intact(), "restored");

    // Deleted rows: one in the middle, then the newest (no gap behind it: the head).
    let reinsert = |s: &StoredAudit| {
        let s = s.clone();
        store
            .write(Box::new(move |tx| {
                audit::insert_row(tx, s.seq, &s.record, &s.prev_hash, &s.hash)?;
                Ok(Box::new(()))
            }))
            .expect("put the row back");
    };
    sql("DELETE FROM audit_log WHERE seq = ?", vec![SqlArg::Int8(3)]);
    expect_problem("middle row deleted", "record 3 missing");
    reinsert(&rows[2]);
    assert!(verify().is_intact(), "restored");
    sql("DELETE FROM audit_log WHERE seq = ?", vec![SqlArg::Int8(5)]);
    expect_problem("newest row deleted", "record 5 missing");
    reinsert(&rows[4]);
    assert!(verify().is_intact(), "restored");

    // The head itself.
    sql("DELETE FROM audit_head WHERE id = ?", vec![SqlArg::Int8(1)]);
    expect_problem("head deleted", "no head");
    sql(
        "INSERT INTO audit_head (id, seq, hash) VALUES (?, ?, ?)",
        vec![
            SqlArg::Int8(1),
            SqlArg::Int8(5),
            SqlArg::Text(rows[4].hash.clone()),
        ],
    );
    assert_eq!(verify().records, 5, "restored");
    assert!(verify().is_intact(), "restored");

    // Appending goes on from the head.
    append(vec![full(6, None)], false).expect("third job");
    let v = verify();
    assert!(
        v.is_intact() && v.records == 6,
        "after another append: {v:?}"
    );
}

/// Writers appending at once still make one chain without gaps: appenders serialize on
/// the `audit-log` lock (PostgreSQL) or the single writer (SQLite), and a job that fails
/// after appending takes its records and its head update with it.
pub fn audit_appends_from_concurrent_writers_form_one_chain(store: &dyn Store) {
    use crate::audit::{self, AuditRecord};
    const THREADS: usize = 8;
    const JOBS: usize = 25;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for i in 0..JOBS {
                    let record = AuditRecord {
                        time: (t * 1000 + i) as i64,
                        user: Some(format!("t{t}")),
                        role: None,
                        organization: None,
                        patient: None,
                        resource: None,
                        action: format!("{i}"),
                        outcome: "success".into(),
                        client: None,
                        detail: None,
                    };
                    let fail = i % 5 == 4;
                    let r = store.write(Box::new(move |tx| {
                        audit::append(tx, std::slice::from_ref(&record))?;
                        if fail {
                            return Err(StoreError::Aborted(Box::new(())));
                        }
                        Ok(Box::new(()))
                    }));
                    match r {
                        Ok(_) => assert!(!fail, "job t{t}/{i} should have failed"),
                        Err(StoreError::Aborted(_)) => assert!(fail, "job t{t}/{i} aborted"),
                        Err(e) => panic!("append t{t}/{i}: {e}"),
                    }
                }
            });
        }
    });
    let mut r = store.read().expect("read");
    let v = audit::verify(r.as_mut()).expect("verify");
    assert!(v.is_intact(), "concurrent appends: {:?}", v.problems);
    assert_eq!(v.records, (THREADS * JOBS * 4 / 5) as u64);
    let rows = audit::list(r.as_mut(), 0, 1000).expect("list");
    for t in 0..THREADS {
        let user = Some(format!("t{t}"));
        let mine: Vec<i64> = rows
            .iter()
            .filter(|s| s.record.user == user)
            .map(|s| s.record.time)
            .collect();
        let expected: Vec<i64> = (0..JOBS)
            .filter(|i| i % 5 != 4)
            .map(|i| (t * 1000 + i) as i64)
            .collect();
        assert_eq!(mine, expected, "thread {t}'s records, in its order");
    }
}
