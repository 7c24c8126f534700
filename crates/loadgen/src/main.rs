//! `oxehr-load`: a small, low-overhead HTTP/1.1 load generator for the benchmarks in
//! `BENCHMARKS.md`, and the Synthea data multiplier they use. Each client is one
//! keep-alive connection issuing requests back to back for a fixed time; latencies of
//! every request are kept and reported as percentiles. It talks only to the address it
//! is given (use loopback).
//!
//! - `creates`: POSTs a Patient per request (every answer must be 201).
//! - `reads`: collects up to `--ids` resource ids of a type from the server, then GETs
//!   them by id in random order (every answer must be 200).
//! - `search`: runs named search templates one after the other, each for `--seconds`,
//!   filling their placeholders from the `values.tsv` that `synth` writes.
//! - `pages`: the web pages (`crates/web`): each client signs in through the sign-in
//!   form, then each page runs for `--seconds` (every answer must be 200); reports the
//!   pages' weight too. `--base` is the server's root here.
//! - `mllp`: HL7 v2 ORU^R01 lab results over MLLP connections (`--addr`), each
//!   acknowledgement waited for (every one must be AA).
//! - `synth`: writes N patient bundles by copying the shipped Synthea bundles with fresh
//!   ids, names and dates.
//!
//! `--base`, `--clients` and `--seconds` may be given before or after the mode.

mod http;
mod mllp;
mod pages;
mod search;
mod synth;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use http_body_util::Full;
use serde_json::{json, Value};

use crate::http::{connect, get, micros_since, parse_base, percentile_ms, send, Rng, Target};

/// Load generator and Synthea data multiplier for the oxehr benchmarks.
#[derive(Debug, Parser)]
#[command(name = "oxehr-load")]
struct Cli {
    #[command(flatten)]
    load: LoadArgs,
    #[command(subcommand)]
    mode: Mode,
}

// Options of the modes that send requests (ignored by `synth`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Load options (creates, reads, search, pages)")]
pub struct LoadArgs {
    /// FHIR base URL (http only), e.g. http://127.0.0.1:8080/fhir; for `pages` the
    /// server's root, e.g. http://127.0.0.1:8080
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080/fhir")]
    pub base: String,
    /// Access token sent as `Authorization: Bearer …` (`oxehr token issue`).
    #[arg(long, global = true, env = "OXEHR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Concurrent clients (connections).
    #[arg(long, global = true, default_value_t = 32)]
    pub clients: usize,
    /// Seconds to run (for `search`: per query; for `pages`: per page).
    #[arg(long, global = true, default_value_t = 10)]
    pub seconds: u64,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Durable single-resource creates.
    Creates,
    /// Read by id.
    Reads {
        /// Resource type to read.
        #[arg(long, default_value = "Observation")]
        r#type: String,
        /// How many ids to collect and read among.
        #[arg(long, default_value_t = 5000)]
        ids: usize,
    },
    /// Search latency: each query template of a file in turn, for --seconds each.
    Search(search::SearchArgs),
    /// Web page latency and weight: sign in through the form, then each page in turn.
    Pages(pages::PagesArgs),
    /// HL7 v2 ORU^R01 ingest over MLLP: messages/s and acknowledgement latency.
    Mllp(mllp::MllpArgs),
    /// Generate N Synthea patients by copying the shipped bundles with fresh ids.
    Synth(synth::SynthArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Mode::Synth(args) = cli.mode {
        return synth::run(args);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    match cli.mode {
        Mode::Creates => rt.block_on(creates_or_reads(cli.load, None)),
        Mode::Reads { r#type, ids } => rt.block_on(creates_or_reads(cli.load, Some((r#type, ids)))),
        Mode::Search(args) => rt.block_on(search::run(cli.load, args)),
        Mode::Pages(args) => rt.block_on(pages::run(cli.load, args)),
        Mode::Mllp(args) => rt.block_on(mllp::run(cli.load, args)),
        Mode::Synth(_) => Ok(()),
    }
}

async fn collect_ids(t: &Target, rtype: &str, limit: usize) -> Result<Vec<String>> {
    let mut sender = connect(&t.host).await?;
    let mut ids = Vec::new();
    let mut offset = 0;
    while ids.len() < limit {
        let (status, body) = send(
            &mut sender,
            get(
                t,
                &format!("/{rtype}?_count=1000&_offset={offset}&_elements=id"),
            )?,
        )
        .await?;
        if status != 200 {
            bail!("listing {rtype} answered {status}");
        }
        let page: Value = serde_json::from_slice(&body)?;
        let entries = page["entry"].as_array().cloned().unwrap_or_default();
        if entries.is_empty() {
            break;
        }
        offset += entries.len();
        ids.extend(
            entries
                .iter()
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string)),
        );
    }
    ids.truncate(limit);
    if ids.is_empty() {
        bail!("the server holds no {rtype} to read; import data first");
    }
    Ok(ids)
}

/// `creates` (`reads` is `None`) or `reads` of `(type, ids)`.
async fn creates_or_reads(load: LoadArgs, reads: Option<(String, usize)>) -> Result<()> {
    let t = Arc::new(parse_base(&load.base, load.token.as_deref())?);
    let (rtype, ids) = match &reads {
        Some((rtype, n)) => (rtype.clone(), Arc::new(collect_ids(&t, rtype, *n).await?)),
        None => ("Patient".to_string(), Arc::new(Vec::new())),
    };
    let creates = reads.is_none();
    let deadline = Instant::now() + Duration::from_secs(load.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..load.clients {
        let (t, ids, rtype) = (t.clone(), ids.clone(), rtype.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(&t.host).await?;
            let mut lat: Vec<u32> = Vec::new();
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1));
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let req = if creates {
                    let body = json!({
                        "resourceType": "Patient",
                        "identifier": [{"system": "urn:oxehr:load", "value": format!("{c}-{n}")}],
                        "name": [{"family": "Load", "given": ["Client", format!("{c}")]}],
                        "gender": "unknown",
                        "birthDate": "1970-01-01"
                    });
                    crate::http::request(&t, hyper::Method::POST, "/Patient")
                        .header("content-type", "application/fhir+json")
                        .header("prefer", "return=minimal")
                        .body(Full::new(Bytes::from(body.to_string())))?
                } else {
                    let id = &ids[rng.below(ids.len())];
                    get(&t, &format!("/{rtype}/{id}"))?
                };
                let start = Instant::now();
                let (status, _) = send(&mut sender, req).await?;
                lat.push(micros_since(start));
                let want = if creates { 201 } else { 200 };
                if status != want {
                    bail!("answer {status}, expected {want}");
                }
            }
            Ok::<Vec<u32>, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "{} {}: {} requests in {:.1} s = {:.0}/s with {} clients; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        if creates { "creates" } else { "reads" },
        rtype,
        all.len(),
        secs,
        all.len() as f64 / secs,
        load.clients,
        percentile_ms(&all, 0.50),
        percentile_ms(&all, 0.90),
        percentile_ms(&all, 0.99),
        percentile_ms(&all, 1.0)
    );
    Ok(())
}
