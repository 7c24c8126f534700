//! `mllp`: HL7 v2 ingest over MLLP. Each client is one connection sending ORU^R01 lab
//! results back to back (a unique control id each, a patient drawn from `--patients`
//! record numbers, a panel of `--results` OBX), waiting for each acknowledgement;
//! latencies are from the last byte sent to the acknowledgement's last byte. Every
//! acknowledgement must be AA.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::{micros_since, percentile_ms, Rng};
use crate::LoadArgs;

#[derive(Debug, Args)]
pub struct MllpArgs {
    /// The listener's address (`oxehr serve --mllp ADDR`).
    #[arg(long, default_value = "127.0.0.1:2575")]
    pub addr: String,
    /// The sending facility (MSH-4) an interface is registered for
    /// (`oxehr interface add --facility …`).
    #[arg(long, default_value = "LOADLAB")]
    pub facility: String,
    /// Distinct patients (record numbers) the results are about.
    #[arg(long, default_value_t = 1000)]
    pub patients: usize,
    /// Results (OBX) in each message.
    #[arg(long, default_value_t = 3)]
    pub results: usize,
}

/// LOINC codes of a basic metabolic panel, with a unit and a normal value.
const TESTS: [(&str, &str, &str, f64); 5] = [
    (
        "2345-7",
        "Glucose [Mass/volume] in Serum or Plasma",
        "mg/dL",
        95.0,
    ),
    (
        "2951-2",
        "Sodium [Moles/volume] in Serum or Plasma",
        "mmol/L",
        140.0,
    ),
    (
        "2823-3",
        "Potassium [Moles/volume] in Serum or Plasma",
        "mmol/L",
        4.2,
    ),
    (
        "2160-0",
        "Creatinine [Mass/volume] in Serum or Plasma",
        "mg/dL",
        0.9,
    ),
    (
        "3094-0",
        "Urea nitrogen [Mass/volume] in Serum or Plasma",
        "mg/dL",
        14.0,
    ),
];

fn message(args: &MllpArgs, run: u64, client: usize, n: u64, rng: &mut Rng) -> String {
    let patient = rng.below(args.patients.max(1));
    let now = "20261206120000";
    let mut m = format!(
        "MSH|^~\\&|LIS|{f}|OXEHR|CLINIC|{now}||ORU^R01^ORU_R01|L{run}-{client}-{n}|P|2.5.1\r\
         PID|1||LM{patient:06}^^^{f}^MR||Loadtest^Patient{patient}||19700101|U\r\
         OBR|1||O{run}-{client}-{n}|24323-8^Comprehensive metabolic panel^LN|||{now}\r",
        f = args.facility
    );
    for (i, (code, name, unit, value)) in TESTS.iter().cycle().take(args.results).enumerate() {
        let v = value * (0.9 + (rng.below(200) as f64) / 1000.0);
        m.push_str(&format!(
            "OBX|{}|NM|{code}^{name}^LN||{v:.1}|{unit}|||||F|||{now}\r",
            i + 1
        ));
    }
    m
}

async fn exchange(conn: &mut TcpStream, msg: &str, buf: &mut Vec<u8>) -> Result<String> {
    let mut frame = Vec::with_capacity(msg.len() + 3);
    frame.push(0x0b);
    frame.extend_from_slice(msg.as_bytes());
    frame.extend_from_slice(&[0x1c, 0x0d]);
    conn.write_all(&frame).await?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            bail!("the listener closed the connection");
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.ends_with(&[0x1c, 0x0d]) {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf[1..buf.len() - 2]).into_owned())
}

pub async fn run(load: LoadArgs, args: MllpArgs) -> Result<()> {
    let args = std::sync::Arc::new(args);
    // Control ids unique across runs against one database.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let deadline = Instant::now() + Duration::from_secs(load.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..load.clients {
        let args = args.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(&args.addr)
                .await
                .with_context(|| format!("connecting to {}", args.addr))?;
            conn.set_nodelay(true)?;
            let mut rng = Rng::seeded(run ^ (c as u64 + 1));
            let (mut lat, mut buf, mut n) = (Vec::<u32>::new(), Vec::new(), 0u64);
            while Instant::now() < deadline {
                n += 1;
                let msg = message(&args, run, c, n, &mut rng);
                let start = Instant::now();
                let ack = exchange(&mut conn, &msg, &mut buf).await?;
                lat.push(micros_since(start));
                if !ack.contains("MSA|AA|") {
                    bail!("not accepted: {}", ack.replace('\r', "\n"));
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
        "mllp ORU^R01 ({} results each): {} messages in {:.1} s = {:.0}/s over {} connections; ACK latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        args.results,
        all.len(),
        secs,
        all.len() as f64 / secs,
        load.clients,
        percentile_ms(&all, 0.50),
        percentile_ms(&all, 0.90),
        percentile_ms(&all, 0.99),
        percentile_ms(&all, 1.0),
    );
    Ok(())
}
