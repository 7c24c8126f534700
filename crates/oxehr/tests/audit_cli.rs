//! `oxehr audit verify` as an operator runs it, on SQLite and on PostgreSQL: an empty
//! log, a log written through the store, then the same log edited behind the store's
//! back (a changed field, a deleted row) — which must exit 1 and name the record.

use std::path::Path;
use std::process::Command;

use oxehr_store::audit::{self, AuditRecord};
use oxehr_store::Store;

mod common;
use common::TempDatabase;

/// Runs `oxehr audit verify` with `storage` flags: (exit 0?, stdout and stderr).
fn verify(storage: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oxehr"))
        .args(["audit", "verify"])
        .args(storage)
        .env("OXEHR_LOG", "warn")
        .output()
        .expect("run oxehr");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn assert_intact(storage: &[&str], records: u64) {
    let (ok, out) = verify(storage);
    assert!(ok, "verify should pass: {out}");
    assert!(
        out.contains(&format!("audit log intact: {records} records")),
        "{out}"
    );
}

fn assert_damaged(storage: &[&str], needle: &str) {
    let (ok, out) = verify(storage);
    assert!(!ok, "verify should exit 1: {out}");
    assert!(out.contains(needle), "{out} should name {needle:?}");
    assert!(out.contains("audit log damaged: 1 problems in"), "{out}");
}

fn records() -> Vec<AuditRecord> {
    (1..=5)
        .map(|i| AuditRecord {
            time: 1_700_000_000_000_000 + i,
            user: Some("alice".into()),
            role: Some("clinician".into()),
            organization: Some("org-1".into()),
            patient: Some(format!("p-{i}")),
            resource: Some(format!("Observation/o-{i}")),
            action: "read".into(),
            outcome: "success".into(),
            client: Some("192.0.2.7".into()),
            detail: None,
        })
        .collect()
}

fn append(store: &dyn Store) {
    store
        .write(Box::new(|tx| {
            audit::append(tx, &records())?;
            Ok(Box::new(()))
        }))
        .expect("append");
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn audit_verify_on_sqlite_passes_an_intact_log_and_names_edited_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let storage = ["--data", data];
    assert_intact(&storage, 0);

    let store =
        oxehr_store_sqlite::SqliteStore::open(&dir.path().join("oxehr.sqlite"), Default::default())
            .expect("open");
    append(&store);
    drop(store);
    assert_intact(&storage, 5);

    let copy = tempfile::tempdir().expect("tempdir");
    copy_dir(dir.path(), copy.path());

    let db = rusqlite::Connection::open(dir.path().join("oxehr.sqlite")).expect("sqlite");
    let n = db
        .execute("UPDATE audit_log SET outcome = 'denied' WHERE seq = 3", [])
        .expect("update");
    assert_eq!(n, 1);
    drop(db);
    assert_damaged(&storage, "record 3: altered");

    let db = rusqlite::Connection::open(copy.path().join("oxehr.sqlite")).expect("sqlite");
    let n = db
        .execute("DELETE FROM audit_log WHERE seq = 2", [])
        .expect("delete");
    assert_eq!(n, 1);
    drop(db);
    let copied = copy.path().to_str().expect("utf-8 path");
    assert_damaged(&["--data", copied], "record 2 missing");
}

#[test]
fn audit_verify_on_postgres_passes_an_intact_log_and_names_edited_records() {
    let Some(db) = TempDatabase::create("audit_cli") else {
        return;
    };
    let storage = ["--database", db.url.as_str()];
    assert_intact(&storage, 0);

    let store =
        oxehr_store_postgres::PostgresStore::connect(&db.url, Default::default()).expect("connect");
    append(&store);
    drop(store);
    assert_intact(&storage, 5);

    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).expect("connect");
    let edit = |client: &mut postgres::Client, sql: &str| {
        assert_eq!(client.execute(sql, &[]).expect(sql), 1, "{sql}");
    };
    edit(
        &mut client,
        "UPDATE audit_log SET outcome = 'denied' WHERE seq = 3",
    );
    assert_damaged(&storage, "record 3: altered");
    edit(
        &mut client,
        "UPDATE audit_log SET outcome = 'success' WHERE seq = 3",
    );
    assert_intact(&storage, 5);
    edit(&mut client, "DELETE FROM audit_log WHERE seq = 2");
    assert_damaged(&storage, "record 2 missing");
    drop(client);
}
