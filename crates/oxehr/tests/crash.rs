//! Crash cycles: the server is killed with SIGKILL in the middle of mixed concurrent
//! work — creates, updates, transactions, reads and searches — and started again, many
//! times, on both backends. After the last restart every write the server acknowledged
//! is readable as the version it answered, with the content sent, each updated
//! resource's history holds every acknowledged version, and `oxehr audit verify`
//! passes. `OXEHR_CRASH_CYCLES` sets the number of cycles (50 by default).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{admin_token, client_with, oxehr, Server, TempDatabase};
use serde_json::{json, Value};

fn cycles() -> usize {
    std::env::var("OXEHR_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

/// A write the server answered: the resource, the version it said it stored, and the
/// family name that version carries.
#[derive(Debug, Clone)]
struct Ack {
    id: String,
    version: u64,
    family: String,
}

fn version_of(v: &Value) -> Option<u64> {
    v["meta"]["versionId"].as_str()?.parse().ok()
}

/// One worker's loop until `stop`: what it does depends on `kind`. Errors (the server
/// was killed) end nothing but that request: the write is not acknowledged.
fn work(
    kind: usize,
    base: String,
    token: String,
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
    tag: String,
) {
    let client = client_with(&token);
    let mut n = 0u32;
    let mut mine: Option<(String, u64)> = None;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let family = format!("{tag}-{kind}-{n}");
        let patient = json!({"resourceType": "Patient", "name": [{"family": family}]});
        let sent = match kind {
            // Creates.
            0 => client
                .post(format!("{base}/Patient"))
                .header("content-type", "application/fhir+json")
                .body(patient.to_string())
                .send(),
            // Updates of one resource of its own, version after version.
            1 => match &mine {
                None => client
                    .post(format!("{base}/Patient"))
                    .header("content-type", "application/fhir+json")
                    .body(patient.to_string())
                    .send(),
                Some((id, _)) => {
                    let mut p = patient.clone();
                    p["id"] = json!(id);
                    client
                        .put(format!("{base}/Patient/{id}"))
                        .header("content-type", "application/fhir+json")
                        .body(p.to_string())
                        .send()
                }
            },
            // Transactions of two creates.
            2 => {
                let entry = |i: u32| {
                    json!({"fullUrl": format!("urn:uuid:8e0c1f52-0000-4000-8000-{:012}", u64::from(n) * 2 + u64::from(i)),
                        "resource": {"resourceType": "Patient", "name": [{"family": format!("{family}-{i}")}]},
                        "request": {"method": "POST", "url": "Patient"}})
                };
                let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [entry(0), entry(1)]});
                client
                    .post(base.clone())
                    .header("content-type", "application/fhir+json")
                    .body(bundle.to_string())
                    .send()
            }
            // Reads and searches beside the writes.
            _ => {
                let _ = client
                    .get(format!("{base}/Patient?family={tag}&_count=20"))
                    .send();
                client.get(format!("{base}/metadata")).send()
            }
        };
        let Ok(resp) = sent else { continue };
        let status = resp.status().as_u16();
        let Ok(body) = resp.json::<Value>() else {
            continue;
        };
        match (kind, status) {
            (0 | 1, 200 | 201) => {
                let (Some(id), Some(version)) = (body["id"].as_str(), version_of(&body)) else {
                    continue;
                };
                if kind == 1 {
                    mine = Some((id.to_owned(), version));
                }
                acks.lock().expect("acks").push(Ack {
                    id: id.to_owned(),
                    version,
                    family: family.clone(),
                });
            }
            (2, 200) => {
                for (i, e) in body["entry"].as_array().into_iter().flatten().enumerate() {
                    // Location: Patient/ID/_history/1
                    let loc = e["response"]["location"].as_str().unwrap_or_default();
                    let parts: Vec<&str> = loc.split('/').collect();
                    if let [_, id, "_history", v, ..] = parts.as_slice() {
                        acks.lock().expect("acks").push(Ack {
                            id: (*id).to_owned(),
                            version: v.parse().unwrap_or(0),
                            family: format!("{family}-{i}"),
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

fn crash_cycles(storage: &[&str], label: &str) {
    let token = admin_token(storage);
    // The check after the last crash reads every acknowledged version back as fast as
    // it can, one client: no per-client limit (it is tested in api's limits.rs).
    let serve_args: Vec<&str> = storage
        .iter()
        .copied()
        .chain(["--rate-limit", "0"])
        .collect();
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let n = cycles();
    for cycle in 0..n {
        let mut server = Server::serve(&serve_args);
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|kind| {
                let (base, token, stop, acks) = (
                    server.base.clone(),
                    token.clone(),
                    stop.clone(),
                    acks.clone(),
                );
                let tag = format!("{label}{cycle}");
                std::thread::spawn(move || work(kind, base, token, stop, acks, tag))
            })
            .collect();
        // Work goes on, then SIGKILL lands in the middle of it.
        std::thread::sleep(Duration::from_millis(250 + (cycle as u64 * 37) % 200));
        server.child.kill().expect("SIGKILL");
        server.child.wait().expect("reaped");
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("worker");
        }
    }
    let acks = acks.lock().expect("acks").clone();
    assert!(
        acks.len() > n,
        "only {} writes acknowledged in {n} cycles",
        acks.len()
    );
    // After the last crash: every acknowledged version is there, as sent.
    let mut server = Server::serve(&serve_args);
    server.client = client_with(&token);
    let mut latest = std::collections::HashMap::<String, u64>::new();
    for a in &acks {
        let resp = server
            .client
            .get(format!(
                "{}/Patient/{}/_history/{}",
                server.base, a.id, a.version
            ))
            .send()
            .expect("vread");
        assert_eq!(resp.status().as_u16(), 200, "{a:?} lost");
        let body: Value = resp.json().expect("json");
        assert_eq!(body["name"][0]["family"], a.family.as_str(), "{a:?}");
        let v = latest.entry(a.id.clone()).or_default();
        *v = (*v).max(a.version);
    }
    // Each resource's history holds every version up to the newest acknowledged one.
    for (id, newest) in latest.iter().filter(|(_, v)| **v > 1) {
        let resp = server
            .client
            .get(format!("{}/Patient/{id}/_history?_count=1000", server.base))
            .send()
            .expect("history");
        let body: Value = resp.json().expect("json");
        let versions: std::collections::BTreeSet<u64> = body["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| version_of(&e["resource"]))
            .collect();
        assert!(
            (1..=*newest).all(|v| versions.contains(&v)),
            "{id}: {versions:?}"
        );
    }
    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
    let out = oxehr()
        .args(["audit", "verify"])
        .args(storage)
        .env("OXEHR_LOG", "warn")
        .output()
        .expect("verify");
    assert!(out.status.success(), "{out:?}");
    println!(
        "{label}: {n} crash cycles, {} acknowledged writes, all found",
        acks.len()
    );
}

#[test]
fn crash_cycles_on_sqlite() {
    let data = tempfile::tempdir().expect("tempdir");
    crash_cycles(&["--data", data.path().to_str().expect("path")], "s");
}

#[test]
fn crash_cycles_on_postgres() {
    let Some(db) = TempDatabase::create("crash") else {
        return;
    };
    // Secrets live in a data directory also when the records are in PostgreSQL.
    let data = tempfile::tempdir().expect("tempdir");
    crash_cycles(
        &[
            "--database",
            &db.url,
            "--data",
            data.path().to_str().expect("path"),
        ],
        "p",
    );
}
