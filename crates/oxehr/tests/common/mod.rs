//! Helpers shared by the binary's integration tests.

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
#[allow(dead_code)] // not every test binary starts a server
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
#[allow(dead_code)] // not every test binary runs a Python tool
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
