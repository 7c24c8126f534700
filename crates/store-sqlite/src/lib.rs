//! The embedded default storage backend: one SQLite file in WAL mode.
//!
//! - **Durability**: `synchronous=FULL`, so a `COMMIT` returns only after the WAL is
//!   fsynced; a write acknowledged by [`Store::write`] survives `kill -9` and power loss.
//! - **One writer** thread owns the only write connection and does group commit (see
//!   [`writer`]): concurrent jobs share one `COMMIT`; every job after the first runs inside
//!   its own savepoint, so a failing job is undone alone.
//! - **Readers**: a small pool of `query_only` connections; WAL lets them read while the
//!   writer writes.
//! - **Checkpoints** run on a background thread, never on a request.
//!
//! The schema is in [`schema`] and `docs/storage.md`; the SQL of every port method is in
//! [`queries`].

/// The [`oxehr_store::ReadTx`] methods of a checkout whose `conn()` gives the connection
/// (a pooled reader opens its snapshot there; the writer's transaction is open already):
/// one body for both.
macro_rules! read_methods {
    () => {
        fn current(
            &mut self,
            rtype: &ResourceType,
            id: &ResourceId,
        ) -> Result<Option<StoredResource>, StoreError> {
            queries::current(self.conn()?, rtype, id)
        }
        fn version(
            &mut self,
            rtype: &ResourceType,
            id: &ResourceId,
            version: VersionId,
        ) -> Result<Option<StoredResource>, StoreError> {
            queries::version(self.conn()?, rtype, id, version)
        }
        fn dialect(&self) -> Dialect {
            Dialect::Sqlite
        }
        fn query(&mut self, sql: &str, args: &[SqlArg]) -> Result<Vec<Vec<SqlValue>>, StoreError> {
            queries::query(self.conn()?, sql, args)
        }
    };
}

mod pool;
mod put;
mod queries;
mod schema;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use oxehr_store::{JobOutput, ReadTx, Store, StoreError, WriteJob};
use rusqlite::{Connection, OpenFlags};

use crate::pool::ReaderPool;
use crate::writer::Request;

/// Settings of an SQLite store; `Default` gives the values for a small server.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// Read-only connections in the pool (concurrent reads).
    pub readers: usize,
    /// Most write jobs committed together by one group commit.
    pub max_batch: usize,
    /// Write jobs that may wait for the writer before `write` blocks its caller.
    pub queue_depth: usize,
    /// Page cache per connection, in KiB.
    pub cache_kib: u32,
    /// Bytes of the file each connection maps into memory (0 turns mmap off).
    pub mmap_bytes: u64,
    /// How long the checkpointer lets commits accumulate before a passive checkpoint.
    pub checkpoint_interval: Duration,
    /// WAL size, in pages of 4 KiB, above which the WAL is made to start over from its
    /// beginning (see `writer::run_writer`). The WAL file is cut back after it starts
    /// over only above one and a half times this.
    pub wal_restart_pages: i64,
    /// How long a connection waits on a lock held by another process before `Busy`.
    pub busy_timeout: Duration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            readers: 8,
            max_batch: 256,
            queue_depth: 1024,
            cache_kib: 32 * 1024,
            mmap_bytes: 256 * 1024 * 1024,
            checkpoint_interval: Duration::from_millis(500),
            // 256 MiB.
            wal_restart_pages: 65_536,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// An SQLite database file, its writer thread, checkpointer and reader pool.
pub struct SqliteStore {
    path: PathBuf,
    jobs: Option<SyncSender<Request>>,
    writer: Option<JoinHandle<()>>,
    checkpointer: Option<JoinHandle<()>>,
    readers: ReaderPool,
    /// Read connections in all (`SqliteConfig::readers`).
    reader_count: usize,
    /// Write jobs sent to the writer and not yet answered (queued or running).
    writes_in_flight: std::sync::atomic::AtomicUsize,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Maps a driver error to a storage error (SQLite messages carry no row values).
pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Busy(e.to_string())
        }
        // The progress handler of a read stopped it (`oxehr_store::interrupt`).
        Some(rusqlite::ErrorCode::OperationInterrupted) => {
            StoreError::Busy(oxehr_store::interrupt::STOPPED.into())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// The database holds every record and the password and session hashes: it is created
/// readable and writable by its owner only (0600; SQLite gives its `-wal` and `-shm`
/// files the database file's mode), and an existing database, WAL or shared-memory file
/// that other users may read or write is refused rather than used.
fn owner_only(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(StoreError::Backend(format!(
                "cannot create {}: {e}",
                path.display()
            )))
        }
    }
    let name = path.as_os_str().to_string_lossy().into_owned();
    for file in [name.clone(), format!("{name}-wal"), format!("{name}-shm")] {
        let mode = match std::fs::metadata(&file) {
            Ok(m) => m.permissions().mode() & 0o777,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::Backend(format!("cannot read {file}: {e}"))),
        };
        if mode & 0o077 != 0 {
            return Err(StoreError::Backend(format!(
                "{file} can be read or written by other users (mode {mode:03o}); it holds \
                 patient records: make it readable by its owner only (chmod 600 {file})"
            )));
        }
    }
    Ok(())
}

/// Virtual-machine steps between two checks of a read's interrupt.
const PROGRESS_STEPS: std::os::raw::c_int = 2000;

fn connect(path: &Path, config: &SqliteConfig) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    conn.busy_timeout(config.busy_timeout).map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(256);
    // Query planner stability: with STAT4 compiled in (the bundled build), SQLite
    // otherwise marks statements whose plan could depend on a bound value and prepares
    // them again at every rebind — a fifth of the time of a read by id, measured.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(db_err)?;
    conn.execute_batch(&format!(
        "PRAGMA cache_size = -{}; PRAGMA mmap_size = {}; PRAGMA temp_store = MEMORY;",
        config.cache_kib, config.mmap_bytes
    ))
    .map_err(db_err)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`, applies migrations, and starts the
    /// writer and checkpointer threads.
    pub fn open(path: &Path, config: SqliteConfig) -> Result<SqliteStore, StoreError> {
        if config.readers == 0 || config.max_batch == 0 || config.queue_depth == 0 {
            return Err(StoreError::Backend(
                "readers, max_batch and queue_depth must be at least 1".into(),
            ));
        }
        owner_only(path)?;
        let mut wconn = connect(path, &config)?;
        let mode: String = wconn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "could not switch to WAL mode (got {mode})"
            )));
        }
        // FULL: the WAL is synced at every COMMIT. Autocheckpoint off: the checkpointer
        // thread does it. No foreign keys are declared (see `schema`).
        let restart = writer::Restart::new(config.wal_restart_pages);
        wconn
            .execute_batch(&format!(
                "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; \
                 PRAGMA foreign_keys = OFF; PRAGMA journal_size_limit = {};",
                restart.journal_size_limit()
            ))
            .map_err(db_err)?;
        schema::migrate(&mut wconn).map_err(db_err)?;

        let mut readers = Vec::with_capacity(config.readers);
        for _ in 0..config.readers {
            let mut c = connect(path, &config)?;
            c.execute_batch("PRAGMA query_only = ON").map_err(db_err)?;
            // Reads stop when their request says so (its deadline passed or its client
            // went away): asked every few thousand virtual-machine steps.
            c.progress_handler(PROGRESS_STEPS, Some(oxehr_store::interrupt::should_stop))
                .map_err(db_err)?;
            readers.push(c);
        }
        let cconn = connect(path, &config)?;
        cconn
            .execute_batch("PRAGMA wal_autocheckpoint = 0")
            .map_err(db_err)?;

        let (jobs, job_rx) = sync_channel(config.queue_depth);
        let (committed, wake) = sync_channel(1);
        let spawn_err = |e: std::io::Error| StoreError::Backend(format!("spawn thread: {e}"));
        let interval = config.checkpoint_interval;
        let wanted = restart.clone();
        let checkpointer = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || writer::run_checkpointer(cconn, wake, interval, wanted))
            .map_err(spawn_err)?;
        let max_batch = config.max_batch;
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer::run_writer(wconn, job_rx, max_batch, committed, restart))
            .map_err(spawn_err)?;
        tracing::info!(path = %path.display(), readers = config.readers, "sqlite store open");
        Ok(SqliteStore {
            path: path.to_owned(),
            jobs: Some(jobs),
            writer: Some(writer),
            checkpointer: Some(checkpointer),
            reader_count: readers.len(),
            readers: ReaderPool::new(readers),
            writes_in_flight: Default::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SqliteStore {
    /// Stops the writer after the jobs already queued, then the checkpointer, which
    /// folds the WAL into the database file on its way out.
    fn drop(&mut self) {
        drop(self.jobs.take());
        for handle in [self.writer.take(), self.checkpointer.take()]
            .into_iter()
            .flatten()
        {
            if handle.join().is_err() {
                tracing::error!("sqlite background thread panicked");
            }
        }
    }
}

impl Store for SqliteStore {
    fn reads_locally(&self) -> bool {
        true
    }

    fn read(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
        Ok(Box::new(self.readers.get()?))
    }

    fn write(&self, job: WriteJob) -> Result<JobOutput, StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        let stopped = || StoreError::Busy("sqlite writer stopped".into());
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        let (reply, answer) = sync_channel(1);
        self.writes_in_flight.fetch_add(1, Relaxed);
        let out = jobs
            .send(Request { job, reply })
            .map_err(|_| stopped())
            .and_then(|()| answer.recv().map_err(|_| stopped()));
        self.writes_in_flight.fetch_sub(1, Relaxed);
        out?
    }

    fn gauges(&self) -> Vec<oxehr_store::Gauge> {
        let in_flight = self
            .writes_in_flight
            .load(std::sync::atomic::Ordering::Relaxed);
        vec![
            oxehr_store::Gauge {
                name: "oxehr_store_read_connections",
                help: "SQLite read connections in the pool.",
                value: self.reader_count as f64,
            },
            oxehr_store::Gauge {
                name: "oxehr_store_read_connections_idle",
                help: "SQLite read connections idle now.",
                value: self.readers.idle() as f64,
            },
            oxehr_store::Gauge {
                name: "oxehr_store_writes_in_flight",
                help: "Write jobs queued for or running on the SQLite writer now.",
                value: in_flight as f64,
            },
        ]
    }

    /// `VACUUM INTO` on a connection of its own: SQLite copies one read snapshot into a
    /// new, compact file while the writer goes on (WAL), so the copy is consistent
    /// without stopping the server.
    fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        if dest.exists() {
            return Err(StoreError::Backend(format!(
                "{} exists already; a backup is written to a new file",
                dest.display()
            )));
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db_err)?;
        let target = dest
            .to_str()
            .ok_or_else(|| StoreError::Backend("the backup path is not UTF-8".into()))?;
        conn.execute("VACUUM INTO ?1", [target]).map_err(db_err)?;
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}
