//! `oxehr serve` settings that are checked before anything starts: a value out of range
//! is a clear message and a non-zero exit, not a server running with a surprise.

mod common;

fn refused(args: &[&str], want: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::oxehr()
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .args(args)
        .env("OXEHR_LOG", "warn")
        .output()
        .expect("run oxehr");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} started: {stderr}");
    assert!(stderr.contains(want), "{args:?}: {stderr}");
}

#[test]
fn out_of_range_settings_are_refused_with_a_message() {
    refused(
        &["--read-audit-window-ms", "5000"],
        "--read-audit-window-ms must be at most 1000",
    );
    refused(
        &["--statement-timeout-secs", "0"],
        "--statement-timeout-secs must be between 1 and",
    );
}
