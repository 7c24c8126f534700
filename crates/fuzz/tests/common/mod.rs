//! What the harnesses share: the case budget, the seeds, and byte-level mutations.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

/// Cases per harness: `OXEHR_FUZZ_CASES`, default 256 (what CI runs).
pub fn config() -> Config {
    let cases = std::env::var("OXEHR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        // A failure becomes a regression test by hand, next to its harness.
        failure_persistence: None,
        ..Config::default()
    }
}

/// The repository's own demo records (Synthea patients, `demo/`): resources of every
/// type they hold, at most `per_type` of each.
pub fn demo_resources(per_type: usize) -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut counts = std::collections::HashMap::<String, usize>::new();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("demo bundle");
        let bundle: Value = serde_json::from_str(&text).expect("demo bundle is JSON");
        for e in bundle["entry"].as_array().into_iter().flatten() {
            let r = &e["resource"];
            let ty = r["resourceType"].as_str().unwrap_or_default().to_owned();
            let n = counts.entry(ty).or_default();
            if *n < per_type {
                *n += 1;
                out.push(r.clone());
            }
        }
    }
    assert!(!out.is_empty(), "the demo records hold resources");
    out
}

/// A directory of the shared third-party test material (`oxehr-testdata`), or `None`
/// outside CI when it is absent (the harness then runs on nothing: it skips).
pub fn shared(rel: &str) -> Option<PathBuf> {
    oxehr_testdata::root().map(|root| root.join(rel))
}

/// Files under `dir` whose names end with `ext`, sorted.
pub fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// One edit of a byte string; positions are taken modulo its length.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Replace one byte.
    Set(usize, u8),
    /// Insert a token of the format (a delimiter, an escape, a keyword).
    Insert(usize, usize),
    /// Insert arbitrary bytes.
    InsertBytes(usize, Vec<u8>),
    /// Remove up to n bytes.
    Remove(usize, usize),
    /// Copy a span of the input somewhere else (repeats structure).
    Copy(usize, usize, usize),
    /// Cut the input short.
    Truncate(usize),
}

/// Edits drawn for a format whose interesting tokens are `tokens`.
pub fn edits(tokens: usize, max: usize) -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Set(p, b)),
        6 => (any::<usize>(), 0..tokens.max(1)).prop_map(|(p, t)| Edit::Insert(p, t)),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, b)| Edit::InsertBytes(p, b)),
        3 => (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Remove(p, n)),
        2 => (any::<usize>(), 1usize..256, any::<usize>()).prop_map(|(a, n, b)| Edit::Copy(a, n, b)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ];
    prop::collection::vec(edit, 1..max)
}

/// `seed` with `edits` applied in turn.
pub fn apply(seed: &[u8], edits: &[Edit], tokens: &[&[u8]]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for e in edits {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
        match e {
            Edit::Set(p, v) => {
                if !b.is_empty() {
                    let i = p % b.len();
                    b[i] = *v;
                }
            }
            Edit::Insert(p, t) => {
                let i = at(*p, b.len());
                let tok = tokens.get(*t).copied().unwrap_or(b"");
                b.splice(i..i, tok.iter().copied());
            }
            Edit::InsertBytes(p, bytes) => {
                let i = at(*p, b.len());
                b.splice(i..i, bytes.iter().copied());
            }
            Edit::Remove(p, n) => {
                if !b.is_empty() {
                    let i = p % b.len();
                    let j = (i + n).min(b.len());
                    b.drain(i..j);
                }
            }
            Edit::Copy(a, n, to) => {
                if !b.is_empty() {
                    let i = a % b.len();
                    let j = (i + n).min(b.len());
                    let span: Vec<u8> = b[i..j].to_vec();
                    let k = at(*to, b.len());
                    b.splice(k..k, span);
                }
            }
            Edit::Truncate(p) => {
                let i = at(*p, b.len());
                b.truncate(i);
            }
        }
    }
    b
}
