//! `oxehr view run FILE`: runs a SQL on FHIR ViewDefinition over the stored record and
//! writes its rows as CSV, NDJSON or (in a build with the `parquet` feature) Parquet —
//! the same `Records::run_view` as the API's `$viewdefinition-run`, paging through the
//! store, run by the server itself, like `oxehr export`, on the database directly (stop
//! the server first on SQLite, or run it beside PostgreSQL). The run is recorded in the
//! audit trail as one `view-run` entry of the server's.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use oxehr_records::views::{self, ViewFilter, ViewRunStats, ViewSink};
use oxehr_records::{Caller, RecordsError};
use oxehr_views::{CsvWriter, NdjsonWriter};
use serde_json::Value;

use crate::config::{FileConfig, StorageArgs};

#[derive(Debug, Args)]
pub struct ViewArgs {
    #[command(subcommand)]
    pub command: ViewCommand,
}

#[derive(Debug, Subcommand)]
pub enum ViewCommand {
    /// Run a ViewDefinition (a JSON file) over the record and write its rows.
    Run(RunArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
    /// Needs a build with `--features parquet`.
    Parquet,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The ViewDefinition, as JSON.
    pub file: PathBuf,
    /// Output format (default: from the output file's extension, else csv).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where the rows go (default: standard output; Parquet needs a file).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Only this patient's record (a Patient id); may be repeated.
    #[arg(long = "patient")]
    pub patients: Vec<String>,
    /// Only the records of this Group's members (a Group id); may be repeated.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Only resources changed after this instant (2024-01-31T00:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many rows.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Hide the progress bar and the summary.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub storage: StorageArgs,
}

pub fn view(args: ViewArgs, file: &FileConfig) -> Result<()> {
    match args.command {
        ViewCommand::Run(args) => run(args, file),
    }
}

/// The rows' writer, in the chosen format.
enum Rows {
    Csv(CsvWriter<BufWriter<Box<dyn Write + Send>>>),
    Ndjson(NdjsonWriter<BufWriter<Box<dyn Write + Send>>>),
    #[cfg(feature = "parquet")]
    Parquet(Box<oxehr_views::ParquetWriter<File>>),
}

struct CliSink {
    rows: Rows,
    bar: ProgressBar,
}

impl ViewSink for CliSink {
    fn row(&mut self, row: Vec<Value>) -> Result<(), RecordsError> {
        match &mut self.rows {
            Rows::Csv(w) => w.write_row(&row),
            Rows::Ndjson(w) => w.write_row(&row),
            #[cfg(feature = "parquet")]
            Rows::Parquet(w) => w.write_row(&row),
        }
        .map_err(|e| RecordsError::Internal(format!("writing the rows: {e}")))
    }

    fn progress(&mut self, stats: &ViewRunStats) {
        self.bar.set_message(format!(
            "{} resources read, {} rows",
            stats.resources, stats.rows
        ));
    }
}

fn format_of(args: &RunArgs) -> Format {
    if let Some(f) = args.format {
        return f;
    }
    match args
        .output
        .as_ref()
        .and_then(|p| p.extension())
        .and_then(|x| x.to_str())
    {
        Some("ndjson" | "jsonl") => Format::Ndjson,
        Some("parquet") => Format::Parquet,
        _ => Format::Csv,
    }
}

pub fn run(args: RunArgs, file: &FileConfig) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let definition: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.file.display()))?;
    let view = views::compile(&definition).map_err(|e| anyhow::anyhow!("{e}"))?;
    let since = match &args.since {
        Some(s) => Some(oxehr_records::parse_instant(s).with_context(|| {
            format!("--since {s}: an instant with a time zone (2024-01-31T00:00:00Z)")
        })?),
        None => None,
    };
    let filter = ViewFilter {
        patients: args.patients.clone(),
        groups: args.groups.clone(),
        since,
        limit: args.limit,
    };
    let format = format_of(&args);
    let open = |path: &PathBuf| -> Result<File> {
        File::create(path).with_context(|| format!("creating {}", path.display()))
    };
    let rows = match format {
        Format::Csv | Format::Ndjson => {
            let out: Box<dyn Write + Send> = match &args.output {
                Some(p) => Box::new(open(p)?),
                None => Box::new(std::io::stdout()),
            };
            let out = BufWriter::with_capacity(256 * 1024, out);
            if format == Format::Csv {
                Rows::Csv(CsvWriter::new(out, view.columns())?)
            } else {
                Rows::Ndjson(NdjsonWriter::new(out, view.columns()))
            }
        }
        #[cfg(feature = "parquet")]
        Format::Parquet => {
            let Some(p) = &args.output else {
                bail!("Parquet is written to a file: give --output FILE.parquet");
            };
            Rows::Parquet(Box::new(oxehr_views::ParquetWriter::new(
                open(p)?,
                view.columns(),
            )?))
        }
        #[cfg(not(feature = "parquet"))]
        Format::Parquet => bail!(
            "this oxehr was built without Parquet; build it with \
             `cargo build --release -p oxehr --features parquet`, or use --format csv or ndjson"
        ),
    };
    let records = args.storage.open_for_scan(file)?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut sink = CliSink { rows, bar };
    let started = std::time::Instant::now();
    let stats = records
        .run_view(&Caller::server(), &view, &filter, &mut sink)
        .map_err(|e| anyhow::anyhow!("the view run failed: {e}"))?;
    sink.bar.finish_and_clear();
    match sink.rows {
        Rows::Csv(w) => w.into_inner().flush()?,
        Rows::Ndjson(w) => w.into_inner().flush()?,
        #[cfg(feature = "parquet")]
        Rows::Parquet(w) => w.finish()?.sync_all()?,
    }
    let secs = started.elapsed().as_secs_f64();
    if !args.quiet {
        eprintln!(
            "{} rows from {} {} resources{} in {secs:.1} s ({:.0} rows/s){}",
            stats.rows,
            stats.resources,
            view.resource_type(),
            if stats.limited {
                " (stopped at --limit)"
            } else {
                ""
            },
            stats.rows as f64 / secs.max(1e-9),
            match &args.output {
                Some(p) => format!("; written to {}", p.display()),
                None => String::new(),
            }
        );
    }
    Ok(())
}
