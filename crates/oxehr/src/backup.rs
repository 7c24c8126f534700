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
//! audit chain verified) and says what it holds. PostgreSQL is backed up with its own
//! tools (`pg_dump`, or base backups and WAL archiving for point-in-time recovery):
//! docs/operations.md.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;

use crate::config::{FileConfig, StorageArgs};

const DATABASE: &str = "oxehr.sqlite";
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

pub fn backup(args: BackupArgs, file: &FileConfig) -> Result<()> {
    if args.storage.database.is_some() || file.database.is_some() {
        bail!(
            "oxehr backup copies a SQLite store; back up PostgreSQL with pg_dump or base \
             backups and WAL archiving (docs/operations.md)"
        );
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
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(args.dir.join(MANIFEST))?;
    serde_json::to_writer_pretty(&mut f, &manifest)?;
    f.sync_all()?;
    println!(
        "backed up {} ({:.1} MB) to {} in {:.1} s{}",
        data.display(),
        bytes as f64 / 1e6,
        args.dir.display(),
        started.elapsed().as_secs_f64(),
        if secrets > 0 {
            format!(", with {secrets} secret files")
        } else {
            String::new()
        }
    );
    Ok(())
}

pub fn restore(args: RestoreArgs, file: &FileConfig) -> Result<()> {
    if args.storage.database.is_some() || file.database.is_some() {
        bail!("oxehr restore writes a SQLite store; restore PostgreSQL with pg_restore (docs/operations.md)");
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
    println!(
        "restored {} into {}: audit log intact ({} records){}",
        args.dir.display(),
        data.display(),
        v.records,
        if secrets > 0 {
            format!(", {secrets} secret files")
        } else {
            String::new()
        }
    );
    Ok(())
}
