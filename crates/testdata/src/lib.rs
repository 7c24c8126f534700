//! Where the tests find the shared third-party test material (Synthea bundles, the
//! official FHIR examples, HL7 v2 messages, C-CDA documents, the FHIRPath and SQL on
//! FHIR suites), and what happens when it is not there.
//!
//! The material is 106 MB of other people's work, so it is not in the repository: it
//! lives in `../shared/data` beside the checkout, or wherever `OXEHR_SHARED_DATA` says.
//! Someone who clones the repository alone and runs `cargo test --workspace` should see
//! the tests that need it skip with one line saying so, not panic on a missing folder;
//! CI, which lays the material beside the checkout, must fail instead, so that a test
//! that quietly stopped finding its data is noticed. The PostgreSQL tests follow the same
//! rule.
//!
//! A test that needs the material starts with [`require!`]; helpers build their paths
//! with [`path`], so that one place decides where the material is.
//!
//! ```no_run
//! #[test]
//! fn every_sample_parses() {
//!     oxehr_testdata::require!();
//!     let dir = oxehr_testdata::path("hl7v2");
//!     // …
//! }
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable that names the material's directory instead of the default.
pub const ENV_VAR: &str = "OXEHR_SHARED_DATA";

/// The shared test material's directory, or `None` when it is absent outside CI.
///
/// The directory is `$OXEHR_SHARED_DATA` when that is set and not empty, else
/// `../shared/data` beside the checkout; it is looked up once per test binary. When
/// `OXEHR_SHARED_DATA` names a directory that does not exist, the material counts as
/// absent: the default is not tried, so that a mistyped path is not hidden.
///
/// When the material is absent, outside CI this prints one line to standard error (the
/// test's output, shown by `cargo test -- --nocapture` or when it fails) and returns
/// `None`, for the test to return; under CI (the variable `CI` set) it panics with a
/// message that says where the material was looked for (and, through `track_caller`,
/// which test asked).
#[track_caller]
pub fn root() -> Option<&'static Path> {
    match found() {
        Ok(dir) => Some(dir),
        Err(looked_for) if under_ci() => panic!("{}", ci_message(looked_for)),
        Err(looked_for) => {
            eprintln!("{}", skip_message(looked_for));
            None
        }
    }
}

/// `rel` (such as `"synthea/synthea-v3"`; `""` for the directory itself) inside the
/// shared test material.
///
/// # Panics
///
/// When the material is absent: under CI as [`root`] does; outside CI too, since a
/// helper that reaches here without the material was called by a test that forgot
/// [`require!`], and the message says so.
#[track_caller]
pub fn path(rel: &str) -> PathBuf {
    match (root(), found()) {
        (Some(dir), _) => dir.join(rel),
        (None, Ok(dir) | Err(dir)) => panic!(
            "this test reads {rel:?} from the shared test data without checking first (it \
             should start with oxehr_testdata::require!()); the data is {}",
            missing(dir)
        ),
    }
}

/// Returns from the enclosing test (a function returning `()`) when the shared test
/// material is absent outside CI, after one line saying so; under CI it fails the test.
/// See [`root`].
#[macro_export]
macro_rules! require {
    () => {
        if $crate::root().is_none() {
            return;
        }
    };
}

/// Where the material is (`Ok`) or was looked for (`Err`), worked out once per process.
fn found() -> &'static Result<PathBuf, PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, PathBuf>> = OnceLock::new();
    FOUND.get_or_init(|| locate(std::env::var_os(ENV_VAR), &default_root()))
}

/// `../shared/data` beside the checkout: this crate is `crates/testdata` in it. The
/// checkout's parent is resolved when it can be, so that messages name a plain path.
fn default_root() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    beside
        .canonicalize()
        .unwrap_or(beside)
        .join("shared")
        .join("data")
}

/// The material's directory, resolved, given the value of `OXEHR_SHARED_DATA` and the
/// default; `Err` with the directory looked for when it is not a directory. Kept apart
/// from the environment so that the tests can try each case without setting variables
/// that every test in the process shares.
fn locate(env_override: Option<OsString>, default: &Path) -> Result<PathBuf, PathBuf> {
    let wanted = match env_override {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => default.to_path_buf(),
    };
    match wanted.canonicalize() {
        Ok(dir) if dir.is_dir() => Ok(dir),
        _ => Err(wanted),
    }
}

fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

fn missing(looked_for: &Path) -> String {
    format!(
        "not found at {}; put it beside the checkout as ../shared/data or set {ENV_VAR} to \
         its directory (README, \"Two commands\")",
        looked_for.display()
    )
}

fn skip_message(looked_for: &Path) -> String {
    format!(
        "skipping: this test needs the shared test data, {}",
        missing(looked_for)
    )
}

fn ci_message(looked_for: &Path) -> String {
    format!("CI needs the shared test data, {}", missing(looked_for))
}

/// The `.json` files directly in `dir`, sorted by name.
///
/// # Panics
///
/// When `dir` cannot be read (call [`require!`] first).
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

/// The JSON document in file `p`.
///
/// # Panics
///
/// When the file cannot be read or is not JSON, naming the file.
pub fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An existing directory to point at: this crate's own.
    fn here() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .canonicalize()
            .unwrap()
    }

    #[test]
    fn the_override_names_the_directory() {
        let elsewhere = Path::new("/nonexistent/default");
        assert_eq!(locate(Some(here().into()), elsewhere), Ok(here()));
    }

    #[test]
    fn without_an_override_the_default_is_used() {
        assert_eq!(locate(None, &here()), Ok(here()));
        assert_eq!(locate(Some(OsString::new()), &here()), Ok(here()));
    }

    #[test]
    fn the_directory_is_resolved() {
        let roundabout = here().join("src/..");
        assert_eq!(locate(None, &roundabout), Ok(here()));
    }

    #[test]
    fn a_missing_override_does_not_fall_back_to_the_default() {
        let missing = PathBuf::from("/nonexistent/oxehr-shared-data");
        assert_eq!(locate(Some(missing.clone().into()), &here()), Err(missing));
    }

    #[test]
    fn a_missing_default_is_absent() {
        let missing = here().join("no-such-folder");
        assert_eq!(locate(None, &missing), Err(missing));
    }

    #[test]
    fn a_file_is_not_the_directory() {
        let file = here().join("Cargo.toml");
        assert_eq!(locate(Some(file.clone().into()), &here()), Err(file));
    }

    #[test]
    fn the_default_is_beside_the_checkout() {
        let checkout = here().join("../..").canonicalize().unwrap();
        let beside = checkout.parent().unwrap().join("shared").join("data");
        assert_eq!(default_root(), beside);
    }

    #[test]
    fn the_messages_say_where_and_what_to_do() {
        let dir = Path::new("/nowhere/shared/data");
        let skip = skip_message(dir);
        assert!(skip.starts_with("skipping: "), "{skip}");
        let ci = ci_message(dir);
        assert!(ci.starts_with("CI needs the shared test data"), "{ci}");
        for m in [skip, ci] {
            assert!(m.contains("/nowhere/shared/data"), "{m}");
            assert!(m.contains(ENV_VAR), "{m}");
            assert!(!m.contains('\n'), "one line: {m}");
        }
    }
}
