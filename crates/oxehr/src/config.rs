//! Configuration: the TOML file's keys, storage selection shared by the commands, and
//! logging set-up. Invalid configuration is an error at start, never a silent default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;

use oxehr_records::{Records, RecordsConfig};
use oxehr_store::Store;

/// The optional TOML file. Unknown keys are rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub database: Option<String>,
    pub database_pool: Option<usize>,
    pub database_replicas: Option<Vec<String>>,
    pub replica_wait_ms: Option<u64>,
    pub base_url: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub log_format: Option<String>,
    pub validate: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_http: Option<bool>,
    pub session_idle_minutes: Option<u64>,
    pub statement_timeout_secs: Option<u64>,
    pub rate_limit: Option<u32>,
    pub read_audit_window_ms: Option<u64>,
    pub durable_read_audit: Option<bool>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))
    }
}

/// Where the data lives: SQLite under `--data` (default), or PostgreSQL with `--database`.
/// The flags are global, so commands with subcommands take them after the subcommand too
/// (`oxehr user list --data DIR`).
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Data directory for the embedded SQLite database.
    #[arg(long, env = "OXEHR_DATA", global = true)]
    pub data: Option<PathBuf>,
    /// `postgres://…` URL: use PostgreSQL instead of SQLite.
    #[arg(long, env = "OXEHR_DATABASE", global = true)]
    pub database: Option<String>,
    /// Most PostgreSQL connections open at once (default 16).
    #[arg(long, env = "OXEHR_DATABASE_POOL", global = true)]
    pub database_pool: Option<usize>,
    /// `postgres://…` URL of a streaming replica of `--database` that serves reads and
    /// searches once it has replayed this server's writes (repeatable; in the
    /// environment, separated by spaces).
    #[arg(
        long = "database-replica",
        env = "OXEHR_DATABASE_REPLICA",
        value_delimiter = ' ',
        global = true
    )]
    pub database_replicas: Vec<String>,
    /// The longest a read waits for a replica to replay this server's last write before
    /// it reads the primary instead, in milliseconds (default 20).
    #[arg(long, env = "OXEHR_REPLICA_WAIT_MS", global = true)]
    pub replica_wait_ms: Option<u64>,
    /// Validate resources against the core definitions on write (default true).
    #[arg(long, env = "OXEHR_VALIDATE", global = true)]
    pub validate: Option<bool>,
}

impl StorageArgs {
    pub fn data_dir(&self, file: &FileConfig) -> PathBuf {
        self.data
            .clone()
            .or(file.data.clone())
            .unwrap_or_else(|| PathBuf::from("oxehr-data"))
    }

    /// Opens the configured store and the record layer over it.
    pub fn open(&self, file: &FileConfig) -> Result<Records> {
        self.open_with(file, self.records_config(file))
    }

    /// The record layer's settings from the flags and the file.
    pub fn records_config(&self, file: &FileConfig) -> RecordsConfig {
        let mut config = RecordsConfig {
            validate: self.validate.or(file.validate).unwrap_or(true),
            ..RecordsConfig::default()
        };
        // Bulk export files live next to the database (`docs/bulk.md`).
        config.bulk.dir = Some(self.data_dir(file).join("exports"));
        config
    }

    /// Opens the configured store and the record layer over it, with `config`.
    pub fn open_with(&self, file: &FileConfig, config: RecordsConfig) -> Result<Records> {
        let store = self.open_store(file)?;
        warm_up();
        Ok(Records::new(store, config))
    }

    /// Opens the configured store (migrating its schema).
    pub fn open_store(&self, file: &FileConfig) -> Result<Arc<dyn Store>> {
        self.open_store_with(file, Default::default())
    }

    /// The record layer for a command that reads the database once from end to end
    /// (`oxehr export`): SQLite neither maps the file nor keeps a large page cache, since
    /// no page is read twice; the process's memory is then what it holds itself.
    pub fn open_for_scan(&self, file: &FileConfig) -> Result<Records> {
        let sqlite = oxehr_store_sqlite::SqliteConfig {
            readers: 2,
            cache_kib: 8 * 1024,
            mmap_bytes: 0,
            ..Default::default()
        };
        let store = self.open_store_with(file, sqlite)?;
        warm_up();
        Ok(Records::new(store, self.records_config(file)))
    }

    fn open_store_with(
        &self,
        file: &FileConfig,
        sqlite: oxehr_store_sqlite::SqliteConfig,
    ) -> Result<Arc<dyn Store>> {
        let database = self.database.clone().or(file.database.clone());
        let store: Arc<dyn Store> = match database {
            Some(url) => {
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    bail!("--database must be a postgres:// URL");
                }
                let mut pg = oxehr_store_postgres::PostgresConfig::default();
                if let Some(n) = self.database_pool.or(file.database_pool) {
                    pg.pool_size = n;
                }
                let replicas = if self.database_replicas.is_empty() {
                    file.database_replicas.clone().unwrap_or_default()
                } else {
                    self.database_replicas.clone()
                };
                if replicas
                    .iter()
                    .any(|r| !(r.starts_with("postgres://") || r.starts_with("postgresql://")))
                {
                    bail!("--database-replica must be a postgres:// URL");
                }
                let mut rc = oxehr_store_postgres::ReplicaConfig::default();
                if let Some(ms) = self.replica_wait_ms.or(file.replica_wait_ms) {
                    rc.wait = std::time::Duration::from_millis(ms);
                }
                rc.pool_size = pg.pool_size;
                let store = oxehr_store_postgres::PostgresStore::connect_replicated(
                    &url, pg, &replicas, &rc,
                )
                .map_err(|e| anyhow::anyhow!("cannot open PostgreSQL: {e}"))?;
                Arc::new(store)
            }
            None if !self.database_replicas.is_empty() => {
                bail!("--database-replica needs --database (replicas are PostgreSQL's)")
            }
            None => {
                let dir = self.data_dir(file);
                data_dir_owner_only(&dir)?;
                let store =
                    oxehr_store_sqlite::SqliteStore::open(&dir.join("oxehr.sqlite"), sqlite)
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "cannot open the SQLite database in {}: {e}",
                                dir.display()
                            )
                        })?;
                Arc::new(store)
            }
        };
        Ok(store)
    }
}

/// The data directory (the database, `secrets/`): created readable by its owner only
/// (0700). An existing one that other users may write is refused (they could replace
/// the database); one they may only list is used with a warning (the files themselves
/// are 0600, which `oxehr_store_sqlite` checks).
fn data_dir_owner_only(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o022 != 0 {
        bail!(
            "the data directory {} can be written by other users (mode {mode:03o}); make it \
             readable by its owner only (chmod 700 {})",
            dir.display(),
            dir.display()
        );
    }
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{mode:03o}"),
            "other users can list the data directory; chmod 700 it"
        );
    }
    Ok(())
}

/// Parses the embedded definitions, compiles every search parameter and builds the
/// validator's tables and its compiled invariants now, at start-up (~0.1 s), rather than
/// inside the first request or the first imported file.
pub fn warm_up() {
    let started = std::time::Instant::now();
    let _ = oxehr_search::Registry::r4();
    let _ = oxehr_records::validate(&serde_json::json!({"resourceType": "Basic"}));
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "definitions loaded"
    );
}
