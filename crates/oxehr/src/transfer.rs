//! `oxehr transfer --patient ID --to URL --token TOKEN`: sends a patient's record (or the
//! types `--type` lists) to another FHIR server as one transaction Bundle
//! (`oxehr_records::Records::transfer_bundle`), and says what the receiver did with it.
//!
//! An oxehr receiver takes it at `Patient/$receive`, which files it on the patient it
//! already knows; any other FHIR server gets it at its base URL as an ordinary
//! transaction. Sending again creates nothing new at the receiver. The transfer is in
//! this server's audit trail, and the receiver's writes in its own.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use oxehr_fhir::{ResourceId, ResourceType};
use oxehr_records::Caller;
use serde_json::Value;

use crate::config::{FileConfig, StorageArgs};

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The patient whose record is sent (the Patient's id here).
    #[arg(long)]
    pub patient: String,
    /// The receiving server's FHIR base URL (`https://other.example/fhir`).
    #[arg(long)]
    pub to: String,
    /// A bearer token the receiving server issued for this sender.
    #[arg(long, env = "OXEHR_TRANSFER_TOKEN")]
    pub token: String,
    /// Only these types (comma-separated; the Patient always goes).
    #[arg(long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// This server's FHIR base URL, the source the receiver records (default: the
    /// configured base URL).
    #[arg(long)]
    pub base_url: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
}

pub fn transfer(args: TransferArgs, file: &FileConfig) -> Result<()> {
    let to = args.to.trim_end_matches('/').to_owned();
    if !(to.starts_with("https://")
        || to.starts_with("http://127.0.0.1")
        || to.starts_with("http://localhost"))
    {
        bail!("--to must be an https:// URL (plain http only to this machine)");
    }
    let patient = ResourceId::parse(&args.patient).context("--patient takes a Patient id")?;
    let mut types = Vec::new();
    for t in args
        .types
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    {
        types.push(ResourceType::parse(t).with_context(|| format!("unknown type {t}"))?);
    }
    let source = args
        .base_url
        .clone()
        .or(file.base_url.clone())
        .context("name this server's base URL with --base-url (or base_url in the config)")?;
    let records = args.storage.open(file)?;
    let bundle = records
        .transfer_bundle(&Caller::server(), &patient, &types, &source, &to)
        .map_err(|e| anyhow::anyhow!("cannot send the record: {e}"))?;
    records.flush_audit()?;
    let sent = bundle["entry"].as_array().map_or(0, Vec::len);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let post = |url: String| {
        http.post(url)
            .bearer_auth(&args.token)
            .header("content-type", "application/fhir+json")
            .header("accept", "application/fhir+json")
            .json(&bundle)
            .send()
    };
    let mut resp = post(format!("{to}/Patient/$receive"))?;
    if matches!(resp.status().as_u16(), 404 | 405) {
        // Not an oxehr server: an ordinary transaction at its base.
        resp = post(to.clone())?;
    }
    let status = resp.status();
    let body: Value = resp.json().unwrap_or(Value::Null);
    if !status.is_success() {
        let why = body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or("no reason given");
        bail!("the receiver refused the record ({status}): {why}");
    }
    let (mut created, mut existing) = (0, 0);
    for e in body["entry"].as_array().into_iter().flatten() {
        match e["response"]["status"].as_str().unwrap_or("") {
            s if s.starts_with("201") => created += 1,
            s if s.starts_with("200") => existing += 1,
            _ => {}
        }
    }
    println!(
        "sent {sent} resources of Patient/{patient} to {to}: {created} new there, {existing} already there"
    );
    Ok(())
}
