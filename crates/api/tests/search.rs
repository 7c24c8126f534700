//! Issue 3, FHIR search: a table of searches over the Synthea patients and over the
//! official R4 examples, on both backends. The expected results come from the bundles and
//! example files through a small oracle written from the R4 search page
//! (`search_oracle/value.rs`), never from the server's answers; each search is followed
//! through all its pages. Every case runs and all failures are reported together.

mod common;
mod search_oracle;

use common::{Backend, TestServer};
use search_oracle::{
    data, date, examples, quantity, reference, result, run, special, string, token,
};

async fn synthea_searches(s: &TestServer, label: &str) {
    let t = std::time::Instant::now();
    let loaded = data::load_synthea(s).await;
    println!("{label}: loaded in {:?}", t.elapsed());
    let d = &loaded.data;
    let mut cases = Vec::new();
    let mut add = |part: &str, more: Vec<run::Case>| {
        println!("{label}: {part} cases built at {:?}", t.elapsed());
        cases.extend(more);
    };
    add("string", string::cases(d));
    add("token", token::cases(d));
    add("date", date::cases(d));
    add("quantity", quantity::cases(d));
    add("reference", reference::cases(d));
    add("special", special::cases(&loaded));
    add("result", result::cases(d));
    println!("{label}: {} cases built in {:?}", cases.len(), t.elapsed());
    let failures = run::run(s, d, label, &cases).await;
    println!("{label}: ran in {:?}", t.elapsed());
    assert!(
        failures.is_empty(),
        "{} of {} search cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

async fn example_searches(s: &TestServer, label: &str) {
    let (d, invalid, errors) = data::load_examples(s).await;
    println!(
        "{label}: {} examples loaded, {} rejected as invalid: {}",
        d.res.len(),
        invalid.len(),
        invalid.join(", ")
    );
    let cases = examples::cases(&d);
    let mut failures: Vec<String> = errors
        .iter()
        .map(|e| format!("{label} example failed to load: {e}"))
        .collect();
    failures.extend(run::run(s, &d, label, &cases).await);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthea_searches_sqlite() {
    oxehr_testdata::require!();
    let s = common::start(Backend::Sqlite).await.expect("sqlite server");
    synthea_searches(&s, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthea_searches_postgres() {
    oxehr_testdata::require!();
    let Some(s) = common::start(Backend::Postgres).await else {
        return;
    };
    synthea_searches(&s, "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_examples_sqlite() {
    oxehr_testdata::require!();
    let s = common::start(Backend::Sqlite).await.expect("sqlite server");
    example_searches(&s, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_examples_postgres() {
    oxehr_testdata::require!();
    let Some(s) = common::start(Backend::Postgres).await else {
        return;
    };
    example_searches(&s, "postgres").await;
}
