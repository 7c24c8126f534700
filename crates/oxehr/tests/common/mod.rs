//! Helpers shared by the binary's integration tests.

#![allow(dead_code)] // not every test binary uses every helper

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn postgres_url() -> String {
    std::env::var("OXEHR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL database for one test, dropped at the end; `None` outside CI when
/// PostgreSQL is unreachable.
pub struct TempDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl TempDatabase {
    pub fn create(tag: &str) -> Option<TempDatabase> {
        let admin = postgres_url();
        let mut client = match postgres::Client::connect(&admin, postgres::NoTls) {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "PostgreSQL is unreachable in CI: {e}"
                );
                eprintln!("skipping: PostgreSQL unreachable ({e})");
                return None;
            }
        };
        let name = format!("oxehr_{tag}_{}", std::process::id());
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .expect("drop");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin.clone());
        Some(TempDatabase {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Starts `oxehr serve` as `cmd` describes (with `--log-format json`), waits until it
/// logs the address it listens on, and keeps every log line in the returned vector
/// (drained on a thread, so the server never blocks on a full pipe).
pub fn spawn_logged(
    mut cmd: std::process::Command,
) -> (
    std::process::Child,
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn oxehr serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let addr = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .expect("line");
        log.lock().expect("log").push(line.clone());
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if let Some(a) = v["fields"]["addr"].as_str() {
                break a.to_owned();
            }
        }
    };
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().expect("log").push(line);
        }
    });
    (child, addr, log)
}

/// A virtual environment with `tool/requirements.txt` installed, cached under the
/// target directory as `name`; `None` (after saying why) when pip cannot install, except
/// under `CI`, where that fails the test.
pub fn python_venv(tool: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    use std::process::Command;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let requirements = tool.join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("requirements.txt");
    let stamp = dir.join("installed-requirements.txt");
    let python = dir.join("bin/python");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return Some(python);
    }
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    };
    let installed = run(Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&dir))
    .and_then(|()| {
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
            ])
            .arg(&requirements))
    });
    match installed {
        Ok(()) => {
            std::fs::write(&stamp, wanted).expect("stamp");
            Some(python)
        }
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("cannot install {} in CI: {e}", requirements.display())
        }
        Err(e) => {
            eprintln!("skipping: cannot install {} ({e})", requirements.display());
            None
        }
    }
}

// The binary as an operator runs it: `oxehr serve` with an administrator, accounts and
// tokens from the command line.

pub fn oxehr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oxehr"))
}

/// `rel` in the shared test data (`../shared/data` beside the checkout, or
/// `$OXEHR_SHARED_DATA`); a test reading it starts with `oxehr_testdata::require!()`.
pub fn shared(rel: &str) -> PathBuf {
    oxehr_testdata::path(rel)
}

pub struct Server {
    pub child: Child,
    pub base: String,
    /// Sends an administrator's bearer token.
    pub client: reqwest::blocking::Client,
    /// Every line the server logged so far.
    pub log: Arc<Mutex<Vec<String>>>,
    pub _secrets: Option<tempfile::TempDir>,
}

/// A client sending `token` as its bearer token.
pub fn client_with(token: &str) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Adds a system administrator (once per store) and prints a token for it, as an
/// operator would: `oxehr user add` then `oxehr token issue`.
pub fn admin_token(storage: &[&str]) -> String {
    let (ok, text) = user_cmd(
        storage,
        &[
            "add",
            "cli-admin",
            "--role",
            "system-admin",
            "--password-stdin",
        ],
        "cli admin password\n",
    );
    assert!(ok || text.contains("taken"), "{text}");
    let out = oxehr()
        .args([
            "token",
            "issue",
            "--user",
            "cli-admin",
            "--scope",
            "system/*.cruds",
        ])
        .args(storage)
        .env("OXEHR_LOG", "warn")
        .output()
        .expect("token issue");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

impl Server {
    /// Serves `storage` with an administrator added first (its token in `client`).
    pub fn start(storage: &[&str]) -> Server {
        // Secrets live in the data directory, also when the records are in PostgreSQL.
        let mut storage: Vec<String> = storage.iter().map(|s| s.to_string()).collect();
        let mut secrets = None;
        if !storage.iter().any(|a| a == "--data") {
            let dir = tempfile::tempdir().expect("tempdir");
            storage.extend([
                "--data".to_string(),
                dir.path().to_str().expect("path").to_string(),
            ]);
            secrets = Some(dir);
        }
        let storage: Vec<&str> = storage.iter().map(String::as_str).collect();
        let token = admin_token(&storage);
        let mut server = Server::serve(&storage);
        server.client = client_with(&token);
        server._secrets = secrets;
        server
    }

    /// `oxehr serve ARGS` as it is, its log kept in `log`; `client` has no credentials.
    pub fn serve(args: &[&str]) -> Server {
        let listen: &[&str] = if args.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut cmd = oxehr();
        cmd.args(["--log-format", "json", "serve"])
            .args(listen)
            .args(args);
        let (child, addr, log) = spawn_logged(cmd);
        Server {
            child,
            base: format!("http://{addr}/fhir"),
            client: reqwest::blocking::Client::new(),
            log,
            _secrets: None,
        }
    }

    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `oxehr user …` with `stdin` on standard input; (success, stdout + stderr).
pub fn user_cmd(storage: &[&str], args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = oxehr()
        .arg("user")
        .args(args)
        .args(storage)
        .env("OXEHR_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn oxehr user");
    // A command that fails before reading its input closes the pipe: not an error here.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    let out = child.wait_with_output().expect("oxehr user");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
