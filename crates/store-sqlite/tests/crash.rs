//! A write acknowledged by `Store::write` survives `kill -9` of the process. The test
//! runs its own binary again as a child that writes and prints an acknowledgement after
//! each write returns, kills it mid-stream with SIGKILL, then reopens the file and reads
//! every acknowledged resource back. (Power loss additionally relies on
//! `synchronous=FULL`, which a test cannot pull the plug on.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_store::{Method, NewVersion, Store, StoredResource};
use oxehr_store_sqlite::{SqliteConfig, SqliteStore};

const CHILD_ENV: &str = "OXEHR_CRASH_CHILD_DB";

fn patient(i: u64) -> NewVersion {
    NewVersion {
        resource: StoredResource {
            rtype: ResourceType::parse("Patient").expect("type"),
            id: ResourceId::parse(&format!("p{i}")).expect("id"),
            version: VersionId(1),
            last_updated: 1_700_000_000_000_000 + i as i64,
            method: Method::Create,
            body: Some(format!(r#"{{"resourceType":"Patient","id":"p{i}"}}"#)),
        },
        index: Vec::new(),
        compartments: Vec::new(),
    }
}

/// The child: write forever, acknowledging each durable write on stdout.
fn child(path: &str) {
    let store = SqliteStore::open(path.as_ref(), SqliteConfig::default()).expect("open");
    for i in 0.. {
        let v = patient(i);
        store
            .write(Box::new(move |tx| tx.put(&v).map(|()| Box::new(()) as _)))
            .expect("write");
        println!("ack {i}");
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path);
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("crash.db");
    let mut proc = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "acknowledged_writes_survive_kill_9",
            "--nocapture",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let out = proc.stdout.take().expect("child stdout");
    let mut acked = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.expect("read child");
        if let Some(i) = line.strip_prefix("ack ") {
            acked.push(i.parse::<u64>().expect("ack number"));
            if acked.len() == 300 {
                break;
            }
        }
    }
    proc.kill().expect("SIGKILL the child");
    let _ = proc.wait();
    assert_eq!(
        acked.len(),
        300,
        "the child acknowledged writes before it died"
    );

    let store = SqliteStore::open(&path, SqliteConfig::default()).expect("reopen");
    let mut r = store.read().expect("read");
    let rtype = ResourceType::parse("Patient").expect("type");
    for i in acked {
        let id = ResourceId::parse(&format!("p{i}")).expect("id");
        assert!(
            r.current(&rtype, &id).expect("current").is_some(),
            "acknowledged write p{i} lost"
        );
    }
}
