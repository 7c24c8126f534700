//! What a test sees with and without the shared data, `require!` and `path` included. The
//! environment is the same for every test of a process, so each case runs this test
//! binary again, with the variables it needs, for one of the two ignored tests below,
//! and reads what that printed.

use std::process::{Command, Output};

/// Runs in a child process (`run`): checks for the data, then says it went on.
#[test]
#[ignore = "run by the other tests of this file in a child process"]
fn child_checks_first() {
    oxehr_testdata::require!();
    println!("went on with the data");
}

/// Runs in a child process (`run`): reads a path without checking first.
#[test]
#[ignore = "run by the other tests of this file in a child process"]
fn child_forgets_to_check() {
    let dir = oxehr_testdata::path("synthea");
    println!("went on with {}", dir.display());
}

/// Runs one of the child tests with `OXEHR_SHARED_DATA` set to `data` and, if `ci`, `CI`.
fn run(test: &str, data: &str, ci: bool) -> Output {
    let mut cmd = Command::new(std::env::current_exe().expect("this test binary"));
    cmd.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("OXEHR_SHARED_DATA", data)
    .env_remove("CI");
    if ci {
        cmd.env("CI", "true");
    }
    cmd.output().expect("the test binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory that exists: this crate's own.
const PRESENT: &str = env!("CARGO_MANIFEST_DIR");

/// A directory that does not, named as a mistyped `OXEHR_SHARED_DATA` would.
fn absent() -> String {
    format!("{PRESENT}/no-such-folder")
}

#[test]
fn with_the_data_the_test_goes_on() {
    for test in ["child_checks_first", "child_forgets_to_check"] {
        let out = run(test, PRESENT, false);
        assert!(out.status.success(), "{test}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("went on with"), "{test}");
        assert!(!text(&out.stderr).contains("skipping"), "{test}");
    }
}

#[test]
fn without_the_data_outside_ci_the_test_skips_with_one_line() {
    let out = run("child_checks_first", &absent(), false);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!text(&out.stdout).contains("went on"));
    let skips: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("skipping:"))
        .collect();
    assert_eq!(skips.len(), 1, "{stderr}");
    assert!(skips[0].contains(&absent()), "{}", skips[0]);
    assert!(skips[0].contains("OXEHR_SHARED_DATA"), "{}", skips[0]);
}

#[test]
fn without_the_data_under_ci_the_test_fails_saying_where_it_looked() {
    let out = run("child_checks_first", &absent(), true);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(!text(&out.stdout).contains("went on"));
    assert!(stderr.contains("CI needs the shared test data"), "{stderr}");
    assert!(stderr.contains(&absent()), "{stderr}");
    // The failure points at the test's own line, not at this crate.
    assert!(stderr.contains("tests/absent.rs"), "{stderr}");
}

#[test]
fn a_test_that_forgot_to_check_fails_saying_so() {
    let out = run("child_forgets_to_check", &absent(), false);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("without checking first"), "{stderr}");
    assert!(stderr.contains("require!()"), "{stderr}");
    assert!(stderr.contains(&absent()), "{stderr}");
}
