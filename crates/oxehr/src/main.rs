//! `oxehr`: the binary and composition root — the only crate that sees every other.
//!
//! `oxehr serve` runs the FHIR server; `oxehr import` loads Bundles and NDJSON files;
//! `oxehr export` writes NDJSON files; `oxehr view run` runs a SQL on FHIR view;
//! `user`, `token` and `client` manage accounts, tokens and OAuth clients.
//! Configuration is layered once at start-up: defaults, then an optional TOML file
//! (`--config` / `OXEHR_CONFIG`), then `OXEHR_*` environment variables, then flags.

mod audit;
mod backup;
mod client;
mod config;
mod demo;
mod export;
mod import;
mod interface;
mod reindex;
mod secrets;
mod serve;
mod telemetry;
mod token;
mod transfer;
mod user;
mod view;

use anyhow::Result;

/// mimalloc: the import and write paths allocate many small JSON values; glibc's
/// allocator spent ~15% of an import profile in malloc/free. Measured: import median
/// 9,751 vs 9,418 resources/s with glibc (3 alternating runs each) — small, kept.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "oxehr",
    version,
    about = "oxehr: an electronic health record server speaking FHIR R4"
)]
struct Cli {
    /// TOML configuration file (keys: listen, data, database, database_pool, base_url, max_body_bytes,
    /// log_format, validate, tls_cert, tls_key, insecure_http, session_idle_minutes,
    /// statement_timeout_secs, rate_limit, read_audit_window_ms, durable_read_audit).
    #[arg(long, global = true, env = "OXEHR_CONFIG")]
    config: Option<std::path::PathBuf>,

    /// Log format: `text` or `json`.
    #[arg(long, global = true, env = "OXEHR_LOG_FORMAT")]
    log_format: Option<String>,

    /// Export request spans as OpenTelemetry traces to this collector (its OTLP/HTTP
    /// base URL, e.g. http://127.0.0.1:4318). Needs a build with `--features otel`.
    #[arg(long, global = true, env = "OXEHR_OTEL_ENDPOINT")]
    otel_endpoint: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the FHIR server.
    Serve(serve::ServeArgs),
    /// Import transaction/batch/collection Bundles and NDJSON files (resumable).
    Import(import::ImportArgs),
    /// Write the record as NDJSON files (Bulk Data format), straight from the database.
    Export(export::ExportArgs),
    /// Manage user accounts.
    User(user::UserArgs),
    /// Check the tamper-evident audit log (`audit verify`).
    Audit(audit::AuditArgs),
    /// Issue access tokens.
    Token(token::TokenArgs),
    /// Register the OAuth clients of the SMART authorization server.
    Client(client::ClientArgs),
    /// Register HL7 v2 interfaces and work through the messages in triage.
    Interface(interface::InterfaceArgs),
    /// Send a patient's record to another FHIR server.
    Transfer(transfer::TransferArgs),
    /// Run SQL on FHIR ViewDefinitions over the record (`view run FILE`).
    View(view::ViewArgs),
    /// Copy the store, consistently, while the server runs (`backup DIR`; with
    /// `--database`, through pg_dump).
    Backup(backup::BackupArgs),
    /// Bring a backup back into a new data directory (`restore DIR --data NEW`), or with
    /// `--database` into an empty PostgreSQL database (pg_restore).
    Restore(backup::RestoreArgs),
    /// Write every resource's search index again (after an upgrade changed search
    /// parameters); the server may keep running.
    Reindex(reindex::ReindexArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = run(cli);
    if let Err(e) = result {
        eprintln!("oxehr: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let file = config::FileConfig::load(cli.config.as_deref())?;
    let log_format = cli
        .log_format
        .or(file.log_format.clone())
        .unwrap_or_else(|| "text".into());
    let telemetry = telemetry::init(&log_format, cli.otel_endpoint.as_deref())?;
    let result = match cli.command {
        Command::Serve(args) => serve::serve(args, &file),
        Command::Import(args) => import::import(args, &file),
        Command::Export(args) => export::export(args, &file),
        Command::User(args) => user::user(args, &file),
        Command::Audit(args) => audit::audit(args, &file),
        Command::Token(args) => token::token(args, &file),
        Command::Client(args) => client::client(args, &file),
        Command::Interface(args) => interface::interface(args, &file),
        Command::Transfer(args) => transfer::transfer(args, &file),
        Command::View(args) => view::view(args, &file),
        Command::Backup(args) => backup::backup(args, &file),
        Command::Restore(args) => backup::restore(args, &file),
        Command::Reindex(args) => reindex::reindex(args, &file),
    };
    telemetry.shutdown();
    result
}
