//! `oxehr serve --mllp` with the operator's steps (`oxehr import` of the sending
//! organization, `oxehr interface add`):
//! - killed with SIGKILL while a sender streams lab results, it loses nothing it
//!   acknowledged: after a restart every acknowledged message's results are in the
//!   record, the same message sent again is answered with the same acknowledgement, and
//!   sending every message again leaves each result set stored exactly once;
//! - messages built by a third-party library (Python `hl7apy`, tools/hl7-client-test)
//!   are stored as they say.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Messages the sender has ready.
const MESSAGES: usize = 300;
/// Acknowledgements received before the kill.
const KILL_AFTER: usize = 40;

fn oxehr(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_oxehr"));
    c.env("OXEHR_LOG", "info").arg("--log-format").arg("json");
    c.env("OXEHR_DATA", data);
    c
}

fn run_ok(mut c: Command) {
    let out = c.output().expect("run oxehr");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the server and returns it with its MLLP address (read from its log).
fn serve(data: &Path) -> (Child, String) {
    let mut child = oxehr(data)
        .args(["serve", "--listen", "127.0.0.1:0", "--mllp", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let msg = v["fields"]["message"].as_str().unwrap_or("");
                if msg.contains("MLLP") {
                    if let Some(a) = v["fields"]["addr"].as_str() {
                        let _ = tx.send(a.to_owned());
                    }
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server did not start receiving MLLP");
    (child, addr)
}

/// The sample result message made into message `n`: its own control id, patient
/// identifier and filler order number.
fn message(template: &str, n: usize) -> String {
    template
        .replace("CNTRL-3456", &format!("CRASH-{n}"))
        .replace("555-44-4444", &format!("555-{n:06}"))
        .replace("1045813", &format!("9{n:07}"))
}

fn send(stream: &mut TcpStream, msg: &str) -> std::io::Result<String> {
    let mut frame = vec![0x0b];
    frame.extend_from_slice(msg.as_bytes());
    frame.extend_from_slice(&[0x1c, 0x0d]);
    stream.write_all(&frame)?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(&[0x1c, 0x0d]) {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other("closed"));
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&got[1..got.len() - 2]).into_owned())
}

fn msa_code(ack: &str) -> &str {
    ack.split(['\r', '\n'])
        .find(|l| l.starts_with("MSA|"))
        .and_then(|l| l.split('|').nth(1))
        .unwrap_or("")
}

/// DiagnosticReports in the store, counted in SQLite itself.
fn reports(data: &Path) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        data.join("oxehr.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open");
    db.query_row(
        "SELECT COUNT(*) FROM resource WHERE rtype = 'DiagnosticReport' AND deleted = 0",
        [],
        |r| r.get(0),
    )
    .expect("count")
}

/// A data directory holding the organization `lab` and an interface for `facility`.
fn set_up(dir: &Path, facility: &str) -> std::path::PathBuf {
    let data = dir.join("data");
    let org = dir.join("org.ndjson");
    std::fs::write(
        &org,
        "{\"resourceType\":\"Organization\",\"id\":\"lab\",\"name\":\"GHH Lab\"}\n",
    )
    .expect("write");
    let mut import = oxehr(&data);
    import.arg("import").arg(&org);
    run_ok(import);
    let mut add = oxehr(&data);
    add.args([
        "interface",
        "add",
        "lab",
        "--facility",
        facility,
        "--organization",
        "Organization/lab",
    ]);
    run_ok(add);
    data
}

#[test]
fn a_kill_between_receipt_and_ack_loses_nothing_acknowledged() {
    oxehr_testdata::require!();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = set_up(dir.path(), "ELAB-3");

    let template =
        std::fs::read_to_string(common::shared("hl7v2/ORU-R01-RMGEAD.hl7")).expect("sample");
    assert!(template.contains("CNTRL-3456") && template.contains("1045813"));
    let messages: Vec<String> = (0..MESSAGES).map(|n| message(&template, n)).collect();

    let (mut child, addr) = serve(&data);
    let (acked_tx, acked_rx) = mpsc::channel::<(usize, String)>();
    let to_send = messages.clone();
    let sender = std::thread::spawn(move || {
        let Ok(mut s) = TcpStream::connect(&addr) else {
            return;
        };
        for (n, m) in to_send.iter().enumerate() {
            match send(&mut s, m) {
                Ok(ack) => {
                    if acked_tx.send((n, ack)).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    let mut acked = Vec::new();
    while acked.len() < KILL_AFTER {
        acked.push(acked_rx.recv_timeout(Duration::from_secs(60)).expect("ack"));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let _ = sender.join();
    acked.extend(acked_rx.try_iter());
    assert!(
        acked.len() < MESSAGES,
        "the kill came before the last message"
    );
    for (n, ack) in &acked {
        assert_eq!(msa_code(ack), "AA", "message {n}");
    }

    // After the restart: each acknowledged message is there, and a resend of it is
    // answered as the first time.
    assert!(reports(&data) >= acked.len() as i64);
    let (mut child, addr) = serve(&data);
    let mut s = TcpStream::connect(&addr).expect("connect");
    for (n, ack) in &acked {
        let again = send(&mut s, &messages[*n]).expect("resend");
        assert_eq!(&again, ack, "message {n}: the stored acknowledgement");
    }
    // Everything sent again: each result set once.
    for m in &messages {
        assert_eq!(msa_code(&send(&mut s, m).expect("send")), "AA");
    }
    assert_eq!(reports(&data), MESSAGES as i64);
    child.kill().expect("kill");
    let _ = child.wait();
}

/// Reads the store's resources of `rtype` whose JSON contains `needle` (SQLite itself,
/// read-only, the server stopped).
fn bodies(data: &Path, rtype: &str, needle: &str) -> Vec<serde_json::Value> {
    let db = rusqlite::Connection::open_with_flags(
        data.join("oxehr.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open");
    let mut st = db
        .prepare(
            "SELECT v.body FROM resource r JOIN resource_version v \
             ON v.rid = r.rid AND v.version = r.version \
             WHERE r.rtype = ?1 AND r.deleted = 0",
        )
        .expect("prepare");
    let rows = st
        .query_map([rtype], |r| r.get::<_, String>(0))
        .expect("query")
        .map_while(Result::ok)
        .filter(|b| b.contains(needle))
        .map(|b| serde_json::from_str(&b).expect("json"))
        .collect();
    rows
}

#[test]
fn messages_built_by_hl7apy_are_stored_as_they_say() {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/hl7-client-test");
    let Some(python) = common::python_venv(&tool, "hl7-client-venv") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = set_up(dir.path(), "APYFAC");
    let (mut child, addr) = serve(&data);
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let out = Command::new(python)
        .arg(tool.join("hl7_client_test.py"))
        .args([host, port, "APYFAC"])
        .output()
        .expect("run the hl7apy client");
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(sent.len(), 4);
    for m in &sent {
        assert_eq!(m["ack"], "AA", "{m}");
        assert_eq!(m["acked_control_id"], m["control_id"]);
        let mrn = m["mrn"].as_str().expect("mrn");
        let patients = bodies(&data, "Patient", mrn);
        assert_eq!(
            patients.len(),
            1,
            "one patient {mrn}, whichever message came first"
        );
        let patient = &patients[0];
        if m["kind"] == "ADT" {
            assert_eq!(patient["name"][0]["family"], m["family"]);
            assert_eq!(patient["birthDate"], m["birth_date"]);
            assert_eq!(patient["gender"], m["gender"]);
            let pid = patient["id"].as_str().expect("id");
            let visits = bodies(&data, "Encounter", &format!("Patient/{pid}"));
            assert_eq!(visits.len(), 1);
            assert_eq!(
                visits[0]["serviceProvider"]["reference"],
                "Organization/lab"
            );
        } else {
            let pid = patient["id"].as_str().expect("id");
            let results = bodies(&data, "Observation", &format!("Patient/{pid}"));
            assert_eq!(results.len(), 1);
            let o = &results[0];
            assert_eq!(o["code"]["coding"][0]["code"], m["code"]);
            assert_eq!(
                o["valueQuantity"]["value"].as_f64(),
                m["value"].as_f64(),
                "{o}"
            );
            assert_eq!(o["valueQuantity"]["unit"], m["unit"]);
            assert_eq!(
                o["referenceRange"][0]["low"]["value"].as_f64(),
                m["low"].as_f64()
            );
            assert_eq!(
                o["referenceRange"][0]["high"]["value"].as_f64(),
                m["high"].as_f64()
            );
            let flag = o["interpretation"][0]["coding"][0]["code"].as_str();
            assert_eq!(flag, m["flag"].as_str(), "the abnormal flag");
        }
    }
}
