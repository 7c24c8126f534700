//! The pages in a real browser: Debian's Chromium, driven by `playwright-core` from npm
//! (its own browser download is not reachable), with `axe-core` checking every page.
//! The scenarios are `tools/browser-test/run.mjs`; this test starts `oxehr serve --demo`
//! on a free port, installs what the scenarios need (`tools/browser-test/install.sh`:
//! the `chromium` package when missing, and the pinned npm packages under the target
//! directory), runs them, and fails with their output when one fails.
//!
//! The scenarios compute what each page should show from the FHIR API, with a token of
//! the same user, never from the page code. They save screenshots at desktop and phone
//! width to `docs/screenshots/`.
//!
//! Where the install fails (no network), the test is skipped with a message, except
//! under `CI`, where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn tool_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/browser-test")
}

/// Where `node_modules` goes; `None` (after saying why) when the install failed.
fn install() -> Option<PathBuf> {
    let dest = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-test");
    let out = Command::new("bash")
        .arg(tool_dir().join("install.sh"))
        .arg(&dest)
        .output();
    let failed = match out {
        Ok(o) if o.status.success() => return Some(dest),
        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Err(e) => e.to_string(),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "cannot install the browser tests' requirements in CI: {failed}"
    );
    eprintln!("skipping: cannot install the browser tests' requirements ({failed})");
    None
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_pages_in_a_real_browser() {
    let Some(modules) = install() else { return };
    let data = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxehr"));
    cmd.args([
        "--log-format",
        "json",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--demo",
    ])
    .arg("--data")
    .arg(data.path().join("data"))
    .env("OXEHR_LOG", "info");
    let (child, addr, log) = common::spawn_logged(cmd);
    let _server = Server(child);
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    let out = Command::new("node")
        .arg(tool_dir().join("run.mjs"))
        .env("OXEHR_MODULES", modules.join("node_modules"))
        .env("OXEHR_BASE", format!("http://{addr}"))
        .env("OXEHR_BIN", env!("CARGO_BIN_EXE_oxehr"))
        .env("OXEHR_DATA", data.path().join("data"))
        .env("SCREENSHOTS", &screenshots)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser scenarios failed:\n{stdout}\n{stderr}"
    );
    // No patient data in the server's log: the demo patients' names never appear.
    let log = log.lock().expect("log").join("\n");
    for line in stdout
        .lines()
        .filter_map(|l| l.strip_prefix("patient-name: "))
    {
        assert!(!log.contains(line), "the log names a patient: {line}");
    }
}
