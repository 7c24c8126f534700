//! What the listener's tests share: a record on a real store, the listener on a real
//! socket (port 0), an MLLP client, and a reader of HL7 v2 text written here, apart from
//! the code under test (split on the separators the message declares; no escapes,
//! which the samples' checked fields do not use).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use oxehr_records::{query, Caller, Records, RecordsConfig};
use oxehr_store::inbound::InterfaceRow;
use oxehr_store::Store;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn samples_dir() -> PathBuf {
    oxehr_testdata::path("hl7v2")
}

pub fn postgres_url() -> String {
    std::env::var("OXEHR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A record over a fresh store, and the listener serving it.
pub struct Server {
    pub records: Records,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(schema) = self.schema.take() {
            // The blocking client runs a runtime of its own: not on the test's.
            let _ = std::thread::spawn(move || {
                if let Ok(mut c) = ::postgres::Client::connect(&postgres_url(), ::postgres::NoTls) {
                    let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
                }
            })
            .join();
        }
    }
}

impl Server {
    /// Stops accepting, lets open connections finish, and waits.
    pub async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh store with the organization `sender`; `None` when PostgreSQL is unreachable
/// outside CI.
pub async fn start(backend: Backend) -> Option<Server> {
    let (store, dir, schema): (Arc<dyn Store>, _, _) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = oxehr_store_sqlite::SqliteStore::open(
                &dir.path().join("t.sqlite"),
                Default::default(),
            )
            .expect("open sqlite");
            (Arc::new(store), Some(dir), None)
        }
        Backend::Postgres => {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let schema = format!(
                "mllp_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let config = oxehr_store_postgres::PostgresConfig {
                schema: Some(schema.clone()),
                ..Default::default()
            };
            let connected = tokio::task::spawn_blocking(move || {
                oxehr_store_postgres::PostgresStore::connect(&postgres_url(), config)
            })
            .await
            .expect("join");
            match connected {
                Ok(store) => (Arc::new(store), None, Some(schema)),
                Err(e) => {
                    if std::env::var_os("CI").is_some() {
                        panic!("PostgreSQL is unreachable in CI: {e}");
                    }
                    eprintln!("skipping: PostgreSQL unreachable ({e})");
                    return None;
                }
            }
        }
    };
    let records = Records::new(store, RecordsConfig::default());
    let r = records.clone();
    tokio::task::spawn_blocking(move || {
        r.update(
            &Caller::server(),
            &oxehr_fhir::ResourceType::parse("Organization").expect("type"),
            &oxehr_fhir::ResourceId::parse("sender").expect("id"),
            json!({"resourceType": "Organization", "id": "sender", "name": "Sending Hospital"}),
            None,
        )
        .expect("organization");
    })
    .await
    .expect("join");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = records.clone();
    let task = tokio::spawn(async move {
        oxehr_hl7_listener::run(listener, serving, Default::default(), async {
            let _ = stopped.await;
        })
        .await
        .expect("listener");
    });
    Some(Server {
        records,
        addr,
        stop: Some(stop),
        task: Some(task),
        _dir: dir,
        schema,
    })
}

/// Registers an interface for `facility` (from `from`, when given) speaking for
/// `Organization/sender`.
pub async fn register(records: &Records, name: &str, facility: &str, from: Option<&str>) {
    let row = InterfaceRow {
        id: name.to_owned(),
        facility: facility.to_owned(),
        application: None,
        organization: "sender".into(),
        from_cidr: from.map(str::to_owned),
        active: true,
        created: 0,
    };
    let r = records.clone();
    tokio::task::spawn_blocking(move || r.add_interface(&Caller::server(), &row))
        .await
        .expect("join")
        .expect("add interface");
}

/// Sends one message on a new connection and returns the acknowledgement.
pub async fn send(addr: SocketAddr, message: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    send_on(&mut c, message).await
}

/// Sends one message on an open connection and reads its acknowledgement.
pub async fn send_on(c: &mut TcpStream, message: &[u8]) -> String {
    let mut frame = vec![0x0b];
    frame.extend_from_slice(message);
    frame.extend_from_slice(&[0x1c, 0x0d]);
    c.write_all(&frame).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = c.read(&mut buf).await.expect("read");
        assert!(n > 0, "the connection closed before the acknowledgement");
        got.extend_from_slice(&buf[..n]);
        if got.ends_with(&[0x1c, 0x0d]) {
            break;
        }
    }
    let start = got.iter().position(|b| *b == 0x0b).expect("start byte") + 1;
    String::from_utf8(got[start..got.len() - 2].to_vec()).expect("utf-8 ack")
}

/// A message's segments, each a list of fields (MSH's field 1 is the separator itself,
/// so `seg[n]` is field n for every segment).
pub fn segments(raw: &str) -> Vec<Vec<String>> {
    let raw = raw.trim_start_matches('\u{feff}');
    let sep = raw.chars().nth(3).unwrap_or('|');
    raw.split(['\r', '\n'])
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut fields: Vec<String> = line.split(sep).map(str::to_owned).collect();
            if fields.first().map(String::as_str) == Some("MSH") {
                fields.insert(1, sep.to_string());
            }
            fields
        })
        .collect()
}

/// The component separator the message declares.
pub fn component_sep(raw: &str) -> char {
    raw.trim_start_matches('\u{feff}')
        .chars()
        .nth(4)
        .unwrap_or('^')
}

/// Field `n` of the first segment named `name`.
pub fn field<'a>(segs: &'a [Vec<String>], name: &str, n: usize) -> Option<&'a str> {
    segs.iter()
        .find(|s| s[0] == name)
        .and_then(|s| s.get(n))
        .map(String::as_str)
}

pub fn count(segs: &[Vec<String>], name: &str) -> usize {
    segs.iter().filter(|s| s[0] == name).count()
}

/// `MSA-1` and `MSA-2` of an acknowledgement, and whether it has an ERR segment.
pub fn msa(ack: &str) -> (String, String, bool) {
    let segs = segments(ack);
    let code = field(&segs, "MSA", 1).unwrap_or("").to_owned();
    let id = field(&segs, "MSA", 2).unwrap_or("").to_owned();
    (code, id, count(&segs, "ERR") > 0)
}

/// Resources of `rtype` matching `params`, as the server sees them.
pub async fn search(records: &Records, rtype: &str, params: &[(&str, &str)]) -> Vec<Value> {
    let r = records.clone();
    let rtype = rtype.to_owned();
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let q = query::parse(&[rtype], &params, false, None).expect("query");
        r.search(&Caller::server(), &q, 1000)
            .expect("search")
            .matches
            .into_iter()
            .map(|m| serde_json::from_str(m.body.as_deref().unwrap_or("{}")).expect("json"))
            .collect()
    })
    .await
    .expect("join")
}
