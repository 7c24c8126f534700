//! `oxehr export --out DIR`: writes the record (or part of it) as NDJSON files, one or
//! more per resource type (`Observation.000.ndjson`, `Observation.001.ndjson`, …), the
//! way `$export` writes them — the same `Records::write_export`, the same paging through
//! the store — run by the server itself, like `oxehr import`, on the database directly
//! (stop the server first on SQLite, or run it beside PostgreSQL). For a client of a
//! running server, use `$export` over HTTP.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use oxehr_records::bulk::{ExportLevel, ExportRequest, ExportSink, WriteSettings, WrittenFile};
use oxehr_records::{Caller, RecordsError};

use crate::config::{FileConfig, StorageArgs};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Directory the NDJSON files are written to (made if missing; must hold no
    /// .ndjson file yet).
    #[arg(long)]
    pub out: PathBuf,
    /// Only these resource types (comma-separated), as `_type`.
    #[arg(long = "type")]
    pub types: Option<String>,
    /// Only resources changed after this instant, as `_since` (2024-01-31T00:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Search queries per type, as `_typeFilter` (`Observation?category=laboratory`);
    /// may be repeated.
    #[arg(long = "type-filter")]
    pub type_filters: Vec<String>,
    /// Export the records of the patients only (Patient level), not every resource.
    #[arg(long)]
    pub patients: bool,
    /// Resources per file before another file of the type is started.
    #[arg(long, default_value_t = 100_000)]
    pub max_lines_per_file: u64,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Renames each finished file to its type and number, and shows progress.
struct CliSink {
    out: PathBuf,
    per_type: HashMap<String, u32>,
    bar: ProgressBar,
    files: Vec<(PathBuf, u64)>,
}

impl ExportSink for CliSink {
    fn file(&mut self, f: WrittenFile) -> Result<bool, RecordsError> {
        let n = self.per_type.entry(f.rtype.clone()).or_insert(0);
        let prefix = match f.kind {
            "deleted" => "deleted.",
            _ => "",
        };
        let name = format!("{prefix}{}.{n:03}.ndjson", f.rtype);
        *n += 1;
        let to = self.out.join(&name);
        std::fs::rename(self.out.join(&f.name), &to)
            .map_err(|e| RecordsError::Internal(format!("renaming an export file: {e}")))?;
        self.files.push((to, f.count));
        Ok(true)
    }

    fn progress(&mut self, done_types: usize, all_types: usize, resources: u64) -> bool {
        if all_types > 0 {
            self.bar.set_length(all_types as u64);
            if done_types > 0 {
                self.bar.set_position(done_types as u64);
            }
        }
        self.bar.set_message(format!("{resources} resources"));
        true
    }
}

pub fn export(args: ExportArgs, file: &FileConfig) -> Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("making {}", args.out.display()))?;
    let existing = std::fs::read_dir(&args.out)?
        .filter_map(|e| e.ok())
        .any(|e| e.path().extension().is_some_and(|x| x == "ndjson"));
    if existing {
        bail!(
            "{} already holds .ndjson files: give an empty directory",
            args.out.display()
        );
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(t) = &args.types {
        pairs.push(("_type".into(), t.clone()));
    }
    if let Some(s) = &args.since {
        pairs.push(("_since".into(), s.clone()));
    }
    for f in &args.type_filters {
        pairs.push(("_typeFilter".into(), f.clone()));
    }
    let level = if args.patients {
        ExportLevel::Patient
    } else {
        ExportLevel::System
    };
    let req = ExportRequest::parse(level, &pairs, false, "oxehr export".into())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let records = args.storage.open_for_scan(file)?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} types, {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut sink = CliSink {
        out: args.out.clone(),
        per_type: HashMap::new(),
        bar,
        files: Vec::new(),
    };
    let settings = WriteSettings {
        page_size: 1000,
        max_lines_per_file: args.max_lines_per_file.max(1),
    };
    let started = std::time::Instant::now();
    let transaction_time = oxehr_records::now_micros();
    records
        .write_export(
            &Caller::server(),
            &req,
            transaction_time,
            &args.out,
            &settings,
            &mut sink,
        )
        .map_err(|e| anyhow::anyhow!("export failed: {e}"))?;
    sink.bar.finish_and_clear();
    let n: u64 = sink.files.iter().map(|(_, c)| c).sum();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "exported {n} resources into {} files in {} in {secs:.1} s ({:.0} resources/s); transactionTime {}",
        sink.files.len(),
        args.out.display(),
        n as f64 / secs.max(1e-9),
        oxehr_records::format_instant(transaction_time),
    );
    Ok(())
}
