//! `oxehr-load`: a small, low-overhead HTTP/1.1 load generator for the benchmarks in
//! `BENCHMARKS.md`. Each client is one keep-alive connection issuing requests back to
//! back for a fixed time; latencies of every request are kept and reported as
//! percentiles. It talks only to the address it is given (use loopback).
//!
//! - `creates`: POSTs a Patient per request (every answer must be 201).
//! - `reads`: collects up to `--ids` resource ids of a type from the server, then GETs
//!   them by id in random order (every answer must be 200).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(name = "oxehr-load")]
struct Cli {
    /// FHIR base URL (http only), e.g. http://127.0.0.1:8080/fhir
    #[arg(long, default_value = "http://127.0.0.1:8080/fhir")]
    base: String,
    /// Concurrent clients (connections).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[command(subcommand)]
    mode: Mode,
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
}

struct Target {
    host: String,
    path: String,
}

fn parse_base(base: &str) -> Result<Target> {
    let rest = base
        .strip_prefix("http://")
        .context("--base must be an http:// URL")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    Ok(Target {
        host: host.to_string(),
        path: format!("/{}", path.trim_end_matches('/')),
    })
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(host: &str) -> Result<Sender> {
    let stream = tokio::net::TcpStream::connect(host)
        .await
        .with_context(|| format!("connecting to {host}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> Result<(u16, Bytes)> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

fn get(t: &Target, path_and_query: &str) -> Result<Request<Full<Bytes>>> {
    Ok(Request::get(format!("{}{}", t.path, path_and_query))
        .header("host", &t.host)
        .body(Full::new(Bytes::new()))?)
}

/// A small xorshift generator: the order of reads needs no cryptographic randomness.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    let t = std::sync::Arc::new(parse_base(&cli.base)?);
    let ids = match &cli.mode {
        Mode::Reads { r#type, ids } => std::sync::Arc::new(collect_ids(&t, r#type, *ids).await?),
        Mode::Creates => std::sync::Arc::new(Vec::new()),
    };
    let rtype = match &cli.mode {
        Mode::Reads { r#type, .. } => r#type.clone(),
        Mode::Creates => "Patient".into(),
    };
    let creates = matches!(cli.mode, Mode::Creates);
    let deadline = Instant::now() + Duration::from_secs(cli.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..cli.clients {
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
                    Request::post(format!("{}/Patient", t.path))
                        .header("host", &t.host)
                        .header("content-type", "application/fhir+json")
                        .header("prefer", "return=minimal")
                        .body(Full::new(Bytes::from(body.to_string())))?
                } else {
                    let id = &ids[(rng.next() % ids.len() as u64) as usize];
                    get(&t, &format!("/{rtype}/{id}"))?
                };
                let start = Instant::now();
                let (status, _) = send(&mut sender, req).await?;
                lat.push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
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
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        f64::from(all[i]) / 1000.0
    };
    println!(
        "{} {}: {} requests in {:.1} s = {:.0}/s with {} clients; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        if creates { "creates" } else { "reads" },
        rtype,
        all.len(),
        secs,
        all.len() as f64 / secs,
        cli.clients,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
