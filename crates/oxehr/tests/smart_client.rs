//! A real SMART client against a real `oxehr serve --demo`: the Python `fhirclient`
//! library (tools/smart-client-test) runs the standalone launch with PKCE, reads the
//! patient's Observations and refreshes its token. The operator's steps are the CLI's:
//! `oxehr client add` registers the app, `oxehr user add` the patient's account.
//!
//! The library is installed with pip into a virtual environment cached under the target
//! directory (`requirements.txt` pins it). Where that install fails — no network to
//! PyPI — the test is skipped with a message, except under `CI`, where it fails.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const CLIENT_ID: &str = "smart-client-test";
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
const USER: &str = "smart-patient";
const PASSWORD: &str = "a patient's long password";

fn oxehr() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_oxehr"));
    c.env("OXEHR_LOG", "warn");
    c
}

fn tool_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/smart-client-test")
}

/// The virtual environment with the pinned requirements, made once and reused while
/// `requirements.txt` is unchanged; `None` (after saying why) when pip cannot install.
fn venv() -> Option<PathBuf> {
    common::python_venv(&tool_dir(), "smart-client-venv")
}

/// `oxehr serve`, stopped when dropped; its log lines kept.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(data: &str) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxehr"));
        cmd.args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--demo",
        ])
        .args(["--data", data])
        .env("OXEHR_LOG", "info");
        let (child, addr, log) = common::spawn_logged(cmd);
        Server {
            child,
            base: format!("http://{addr}/fhir"),
            log,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `GET base/path` with a token, as JSON.
fn get(base: &str, path: &str, token: &str) -> Value {
    let resp = reqwest::blocking::Client::new()
        .get(format!("{base}/{path}"))
        .bearer_auth(token)
        .send()
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().expect("json")
}

#[test]
fn fhirclient_runs_the_standalone_launch() {
    let Some(python) = venv() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("path").to_owned();
    run_ok(oxehr().args([
        "client",
        "add",
        "--name",
        "SMART client test",
        "--client-id",
        CLIENT_ID,
        "--redirect-uri",
        REDIRECT_URI,
        "--data",
        &data,
    ]));
    let server = Server::start(&data);

    // The second demo patient gets an account; the first one's record must stay closed.
    let admin = run_ok(oxehr().args([
        "token",
        "issue",
        "--user",
        "demo-system-admin",
        "--scope",
        "system/*.rs",
        "--data",
        &data,
    ]));
    let admin = admin.trim();
    let patients = get(&server.base, "Patient", admin);
    let ids: Vec<&str> = patients["entry"]
        .as_array()
        .expect("patients")
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .collect();
    assert!(ids.len() >= 2, "the demo has patients");
    let (other, patient) = (ids[0], ids[1]);
    let expected = get(
        &server.base,
        &format!("Observation?patient={patient}&_summary=count"),
        admin,
    )["total"]
        .as_u64()
        .expect("total");
    assert!(expected > 0);
    let mut add = oxehr()
        .args(["user", "add", USER, "--role", "patient", "--password-stdin"])
        .args(["--person", &format!("Patient/{patient}"), "--data", &data])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("user add");
    writeln!(add.stdin.take().expect("stdin"), "{PASSWORD}").expect("password");
    assert!(add.wait().expect("wait").success());

    let started = Instant::now();
    let mut script = Command::new(&python)
        .arg(tool_dir().join("smart_client_test.py"))
        .args(["--fhir-base", &server.base, "--client-id", CLIENT_ID])
        .args([
            "--redirect-uri",
            REDIRECT_URI,
            "--user",
            USER,
            "--other-patient",
            other,
        ])
        .env("OXEHR_TEST_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the SMART client");
    while script.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = script.kill();
            panic!("the SMART client ran for more than 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = script.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SMART client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("result");
    assert_eq!(result["patient"], patient);
    assert_eq!(result["observations"].as_u64(), Some(expected));

    let log = server.log.lock().expect("log").join("\n");
    assert!(log.contains("authorization code issued"), "{log}");
    assert!(!log.contains(PASSWORD), "the log holds the password");
}
