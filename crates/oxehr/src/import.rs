//! `oxehr import FILES|DIRS`: loads transaction, batch and collection Bundles (`.json`)
//! and NDJSON files (`.ndjson`, one resource per line) through the record layer.
//!
//! Files are imported in parallel, one transaction per Bundle (NDJSON in chunks). A
//! journal in the data directory lists the files already imported (by path, size and
//! modification time), so a second run after an interruption skips them: importing is
//! resumable. A file that fails is reported and the others go on; the command exits
//! non-zero when any file failed.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use oxehr_records::{EntryOutcome, Records};

use crate::config::{FileConfig, StorageArgs};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files or directories (searched recursively for .json and .ndjson files).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Parallel workers (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Resources per transaction when importing NDJSON.
    #[arg(long, default_value_t = 500)]
    pub chunk: usize,
    /// Journal of imported files (default: <data>/import-journal.txt).
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub storage: StorageArgs,
}

pub fn import(args: ImportArgs, file: &FileConfig) -> Result<()> {
    let records = args.storage.open(file)?;
    let mut files = Vec::new();
    for p in &args.paths {
        collect(p, &mut files).with_context(|| format!("reading {}", p.display()))?;
    }
    files.sort();
    let journal_path = args
        .journal
        .clone()
        .unwrap_or_else(|| args.storage.data_dir(file).join("import-journal.txt"));
    if let Some(dir) = journal_path.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    let done: HashSet<String> = std::fs::read_to_string(&journal_path)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default();
    let total_files = files.len();
    let todo: Vec<(PathBuf, String)> = files
        .into_iter()
        .filter_map(|f| {
            let key = journal_key(&f).ok()?;
            (!done.contains(&key)).then_some((f, key))
        })
        .collect();
    let skipped = total_files - todo.len();
    let journal = Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .with_context(|| format!("opening the journal {}", journal_path.display()))?,
    );
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(todo.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files, {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let resources = AtomicUsize::new(0);
    let failures_first: Mutex<Vec<(PathBuf, String, anyhow::Error)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((path, key)) = todo.get(i) else {
                    break;
                };
                match import_file(&records, path, args.chunk) {
                    Ok(n) => {
                        resources.fetch_add(n, Ordering::Relaxed);
                        record(&journal, key);
                    }
                    Err(e) => {
                        if let Ok(mut f) = failures_first.lock() {
                            f.push((path.clone(), key.clone(), e));
                        }
                    }
                }
                bar.inc(1);
                bar.set_message(format!("{} resources", resources.load(Ordering::Relaxed)));
            });
        }
    });
    // A file may depend on another one imported beside it (Synthea's patient bundles
    // refer to practitioners by conditional reference): try the failed ones once more,
    // one at a time, now that everything else is in.
    let mut failures: Vec<PathBuf> = Vec::new();
    for (path, key, first_error) in failures_first.into_inner().unwrap_or_default() {
        match import_file(&records, &path, args.chunk) {
            Ok(n) => {
                resources.fetch_add(n, Ordering::Relaxed);
                record(&journal, &key);
            }
            Err(_) => {
                bar.suspend(|| eprintln!("failed: {}: {first_error:#}", path.display()));
                failures.push(path);
            }
        }
    }
    bar.finish_and_clear();
    let n = resources.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {n} resources from {} files in {secs:.1} s ({:.0} resources/s); {} failed; {skipped} skipped as already imported; peak RSS {}",
        todo.len() - failures.len(),
        n as f64 / secs.max(1e-9),
        failures.len(),
        peak_rss().unwrap_or_else(|| "unknown".into())
    );
    if !failures.is_empty() {
        anyhow::bail!("{} file(s) failed to import", failures.len());
    }
    Ok(())
}

fn record(journal: &Mutex<std::fs::File>, key: &str) {
    if let Ok(mut j) = journal.lock() {
        let _ = writeln!(j, "{key}");
        let _ = j.flush();
    }
}

/// Peak resident set size of this process (Linux `VmHWM`).
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{} MiB", kb / 1024))
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if p.is_dir() {
        for entry in std::fs::read_dir(p)? {
            collect(&entry?.path(), out)?;
        }
    } else if p.is_file() {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext == "json" || ext == "ndjson" {
            out.push(p.to_path_buf());
        }
    } else {
        anyhow::bail!("no such file or directory");
    }
    Ok(())
}

fn journal_key(p: &Path) -> Result<String> {
    let meta = std::fs::metadata(p)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let abs = std::fs::canonicalize(p)?;
    Ok(format!("{}\t{}\t{}", abs.display(), meta.len(), mtime))
}

/// Imports one file; returns the number of resources written.
fn import_file(records: &Records, path: &Path, chunk: usize) -> Result<usize> {
    if path.extension().and_then(|e| e.to_str()) == Some("ndjson") {
        let f = std::io::BufReader::new(std::fs::File::open(path)?);
        let mut batch = Vec::new();
        let mut n = 0;
        for (line_no, line) in f.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line)
                .with_context(|| format!("line {} is not JSON", line_no + 1))?;
            batch.push(v);
            if batch.len() >= chunk {
                n += write_resources(records, std::mem::take(&mut batch))?;
            }
        }
        n += write_resources(records, batch)?;
        return Ok(n);
    }
    let text = std::fs::read(path)?;
    let v: Value = serde_json::from_slice(&text).context("not valid JSON")?;
    match (
        v.get("resourceType").and_then(Value::as_str),
        v.get("type").and_then(Value::as_str),
    ) {
        (Some("Bundle"), Some("transaction")) | (Some("Bundle"), Some("batch")) => {
            let (_, outcomes) = records
                .bundle(&oxehr_records::Caller::server(), v)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut failed = 0;
            for o in &outcomes {
                if let EntryOutcome::Failed(e) = o {
                    failed += 1;
                    tracing::warn!(error = %e, "batch entry failed");
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} batch entries failed", outcomes.len());
            }
            Ok(outcomes.len())
        }
        (Some("Bundle"), _) => {
            let resources = v
                .get("entry")
                .and_then(Value::as_array)
                .map(|es| {
                    es.iter()
                        .filter_map(|e| e.get("resource").cloned())
                        .collect()
                })
                .unwrap_or_default();
            write_resources(records, resources)
        }
        (Some(_), _) => write_resources(records, vec![v]),
        (None, _) => anyhow::bail!("not a FHIR resource (no resourceType)"),
    }
}

/// Writes resources in one transaction: with their own id (update) when they have one.
fn write_resources(records: &Records, resources: Vec<Value>) -> Result<usize> {
    if resources.is_empty() {
        return Ok(0);
    }
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let ty = r
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match r.get("id").and_then(Value::as_str) {
                Some(id) => {
                    let url = format!("{ty}/{id}");
                    json!({"fullUrl": url, "resource": r, "request": {"method": "PUT", "url": url}})
                }
                None => json!({"resource": r, "request": {"method": "POST", "url": ty}}),
            }
        })
        .collect();
    let n = entries.len();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    records
        .bundle(&oxehr_records::Caller::server(), bundle)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(n)
}
