//! `oxehr backup DIR` and `oxehr restore DIR`: an online, consistent copy of a SQLite
//! store and its return into a new data directory.
//!
//! The backup is one snapshot of the database as of one commit, taken while the server
//! goes on serving (`Store::backup_to`: SQLite's `VACUUM INTO`), written 0600 into a new
//! directory (0700), with `backup.json` saying when and from what. The keys in
//! `<data>/secrets/` are copied only with `--include-secrets`: kept apart, a stolen
//! backup holds no usable authenticator secret.
//!
//! A restore writes into a data directory that has no database yet, checks the copy
//! (SQLite's integrity check through opening it, the schema brought up to date, the
//! audit chain verified) and says what it holds.
//!
//! With `--database` (PostgreSQL) the same commands run PostgreSQL's own tools: the
//! backup is `pg_dump --format=custom`, one snapshot of the database (a repeatable-read
//! transaction) taken while the server writes; the restore is `pg_restore` in one
//! transaction into an empty database, then the schema brought up to date and the audit
//! chain verified. The connection details reach the tools through libpq's environment
//! variables, never their command line (where other users of the machine could read a
//! password). Point-in-time recovery (base backups and WAL archiving) stays PostgreSQL's
//! own: docs/operations.md.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;

use crate::config::{FileConfig, StorageArgs};

const DATABASE: &str = "oxehr.sqlite";
const PG_DUMP: &str = "oxehr.pgdump";
const MANIFEST: &str = "backup.json";

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// A new directory to write the backup into.
    pub dir: PathBuf,
    /// Also copy `<data>/secrets/` (the token signing key and the secrets key). Without
    /// them a restored server issues new tokens and authenticators must be enrolled
    /// again; with them, keep the backup as safe as the server itself.
    #[arg(long)]
    pub include_secrets: bool,
    #[command(flatten)]
    pub storage: StorageArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A directory written by `oxehr backup`.
    pub dir: PathBuf,
    #[command(flatten)]
    pub storage: StorageArgs,
}

fn new_private_dir(dir: &Path) -> Result<()> {
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty; a backup goes into a new directory",
            dir.display()
        );
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// Copies a file, the copy readable by its owner only.
fn copy_private(from: &Path, to: &Path) -> Result<()> {
    let mut src = fs::File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .with_context(|| format!("creating {}", to.display()))?;
    std::io::copy(&mut src, &mut dst).with_context(|| format!("copying to {}", to.display()))?;
    dst.sync_all()?;
    Ok(())
}

fn copy_secrets(from: &Path, to: &Path) -> Result<usize> {
    let mut n = 0;
    if !from.is_dir() {
        return Ok(0);
    }
    fs::DirBuilder::new().mode(0o700).create(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            copy_private(&e.path(), &to.join(e.file_name()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// The libpq environment for `url` (host, port, user, password, database, options), so
/// that `pg_dump` and `pg_restore` connect without the URL on their command line.
fn libpq_env(url: &str) -> Result<Vec<(&'static str, String)>> {
    let config: postgres::Config = url
        .parse()
        .map_err(|e| anyhow!("the PostgreSQL URL is not valid: {e}"))?;
    let mut env = Vec::new();
    if let Some(host) = config.get_hosts().first() {
        let host = match host {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        env.push(("PGHOST", host));
    }
    if let Some(port) = config.get_ports().first() {
        env.push(("PGPORT", port.to_string()));
    }
    if let Some(user) = config.get_user() {
        env.push(("PGUSER", user.to_owned()));
    }
    if let Some(password) = config.get_password() {
        env.push(("PGPASSWORD", String::from_utf8_lossy(password).into_owned()));
    }
    if let Some(db) = config.get_dbname() {
        env.push(("PGDATABASE", db.to_owned()));
    }
    if let Some(options) = config.get_options() {
        env.push(("PGOPTIONS", options.to_owned()));
    }
    Ok(env)
}

/// Runs one of PostgreSQL's client tools against `url`; its first error line on failure.
fn pg_tool(tool: &str, url: &str, args: &[&std::ffi::OsStr]) -> Result<()> {
    let out = std::process::Command::new(tool)
        .args(args)
        .env_remove("PGSERVICE")
        .envs(libpq_env(url)?)
        .output()
        .with_context(|| format!("running {tool} (PostgreSQL's client tools must be installed)"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{tool} failed: {}",
            err.lines().next().unwrap_or("no message")
        );
    }
    Ok(())
}

/// `", with 2 secret files"` (after `lead`), or nothing when none was copied.
fn secrets_note(secrets: usize, lead: &str) -> String {
    if secrets > 0 {
        format!("{lead} {secrets} secret files")
    } else {
        String::new()
    }
}

fn write_manifest(dir: &Path, manifest: &serde_json::Value) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(MANIFEST))?;
    serde_json::to_writer_pretty(&mut f, manifest)?;
    f.sync_all()?;
    Ok(())
}

fn backup_postgres(args: &BackupArgs, file: &FileConfig, url: &str) -> Result<()> {
    new_private_dir(&args.dir)?;
    let started = std::time::Instant::now();
    let dest = args.dir.join(PG_DUMP);
    pg_tool(
        "pg_dump",
        url,
        &[
            "--format=custom".as_ref(),
            "--no-owner".as_ref(),
            "--no-privileges".as_ref(),
            "--file".as_ref(),
            dest.as_os_str(),
        ],
    )?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o600))?;
    let secrets = if args.include_secrets {
        copy_secrets(
            &args.storage.data_dir(file).join("secrets"),
            &args.dir.join("secrets"),
        )?
    } else {
        0
    };
    let bytes = fs::metadata(&dest)?.len();
    write_manifest(
        &args.dir,
        &serde_json::json!({
            "created": oxehr_records::format_instant(oxehr_records::now_micros()),
            "oxehr": env!("CARGO_PKG_VERSION"),
            "backend": "postgres",
            "database": PG_DUMP,
            "bytes": bytes,
            "secrets": secrets > 0,
        }),
    )?;
    println!(
        "backed up the PostgreSQL database ({:.1} MB, pg_dump) to {} in {:.1} s{}",
        bytes as f64 / 1e6,
        args.dir.display(),
        started.elapsed().as_secs_f64(),
        secrets_note(secrets, ", with")
    );
    Ok(())
}

pub fn backup(args: BackupArgs, file: &FileConfig) -> Result<()> {
    if let Some(url) = args.storage.database.clone().or(file.database.clone()) {
        return backup_postgres(&args, file, &url);
    }
    let data = args.storage.data_dir(file);
    if !data.join(DATABASE).exists() {
        bail!("no database in {}", data.display());
    }
    new_private_dir(&args.dir)?;
    let store = args.storage.open_store(file)?;
    let started = std::time::Instant::now();
    let dest = args.dir.join(DATABASE);
    store
        .backup_to(&dest)
        .map_err(|e| anyhow!("backing up the database: {e}"))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o600))?;
    let secrets = if args.include_secrets {
        copy_secrets(&data.join("secrets"), &args.dir.join("secrets"))?
    } else {
        0
    };
    let bytes = fs::metadata(&dest)?.len();
    let manifest = serde_json::json!({
        "created": oxehr_records::format_instant(oxehr_records::now_micros()),
        "oxehr": env!("CARGO_PKG_VERSION"),
        "backend": "sqlite",
        "database": DATABASE,
        "bytes": bytes,
        "secrets": secrets > 0,
    });
    write_manifest(&args.dir, &manifest)?;
    println!(
        "backed up {} ({:.1} MB) to {} in {:.1} s{}",
        data.display(),
        bytes as f64 / 1e6,
        args.dir.display(),
        started.elapsed().as_secs_f64(),
        secrets_note(secrets, ", with")
    );
    Ok(())
}

/// The restored store's audit chain, verified; its record count.
fn verify_restored(args: &RestoreArgs, file: &FileConfig) -> Result<u64> {
    // Opening brings the schema up to date.
    let store = args.storage.open_store(file)?;
    let v = oxehr_records::audit_view::verify(store.as_ref())
        .map_err(|e| anyhow!("reading the restored audit log: {e}"))?;
    if !v.is_intact() {
        bail!(
            "the restored audit log is damaged: {} problems in {} records",
            v.problem_count,
            v.records
        );
    }
    Ok(v.records)
}

fn restore_postgres(args: &RestoreArgs, file: &FileConfig, url: &str) -> Result<()> {
    let from = args.dir.join(PG_DUMP);
    if !args.dir.join(MANIFEST).exists() || !from.exists() {
        bail!(
            "{} is not a PostgreSQL backup written by oxehr backup --database",
            args.dir.display()
        );
    }
    // Into an empty database only: a restore over records would mix two histories.
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .map_err(|e| anyhow!("connecting to the target database: {e}"))?;
    let used = client
        .query_one("SELECT to_regclass('resource') IS NOT NULL", &[])
        .map_err(|e| anyhow!("reading the target database: {e}"))?
        .get::<_, bool>(0);
    drop(client);
    if used {
        bail!("the target database holds records already; restore into an empty database");
    }
    pg_tool(
        "pg_restore",
        url,
        &[
            "--no-owner".as_ref(),
            "--no-privileges".as_ref(),
            "--exit-on-error".as_ref(),
            "--single-transaction".as_ref(),
            "--dbname".as_ref(),
            libpq_env(url)?
                .iter()
                .find(|(k, _)| *k == "PGDATABASE")
                .map(|(_, v)| v.as_str())
                .unwrap_or("postgres")
                .as_ref(),
            from.as_os_str(),
        ],
    )?;
    let data = args.storage.data_dir(file);
    let secrets = if args.dir.join("secrets").is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data)?;
        copy_secrets(&args.dir.join("secrets"), &data.join("secrets"))?
    } else {
        0
    };
    let records = verify_restored(args, file)?;
    println!(
        "restored {} into the PostgreSQL database: audit log intact ({records} records){}",
        args.dir.display(),
        secrets_note(secrets, ",")
    );
    Ok(())
}

pub fn restore(args: RestoreArgs, file: &FileConfig) -> Result<()> {
    if let Some(url) = args.storage.database.clone().or(file.database.clone()) {
        return restore_postgres(&args, file, &url);
    }
    if args.dir.join(PG_DUMP).exists() {
        bail!(
            "{} is a PostgreSQL backup: restore it with --database",
            args.dir.display()
        );
    }
    let from = args.dir.join(DATABASE);
    if !args.dir.join(MANIFEST).exists() || !from.exists() {
        bail!(
            "{} is not a backup written by oxehr backup",
            args.dir.display()
        );
    }
    let data = args.storage.data_dir(file);
    if data.join(DATABASE).exists() {
        bail!(
            "{} holds a database already; restore into a new data directory",
            data.display()
        );
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&data)
        .with_context(|| format!("creating {}", data.display()))?;
    copy_private(&from, &data.join(DATABASE))?;
    let secrets = copy_secrets(&args.dir.join("secrets"), &data.join("secrets"))?;
    // Opening checks the file and brings its schema up to date.
    let records = verify_restored(&args, file)?;
    println!(
        "restored {} into {}: audit log intact ({} records){}",
        args.dir.display(),
        data.display(),
        records,
        secrets_note(secrets, ",")
    );
    Ok(())
}
