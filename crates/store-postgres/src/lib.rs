//! The scale-out storage backend: PostgreSQL through the synchronous `postgres` client.
//!
//! - **Writes**: `BEGIN; job; COMMIT` on a pooled connection. With the default
//!   `synchronous_commit = on`, `COMMIT` returns once the WAL is flushed: durable.
//!   Serialization failures (40001), deadlocks (40P01) and unique violations (23505) map
//!   to `StoreError::Conflict`; retrying is the caller's choice. Each `put` is one
//!   statement (see [`put`]); `put_many` is one statement per thousand versions (see
//!   [`put_many`]).
//! - **Reads**: a pooled connection; the first query opens a `REPEATABLE READ, READ
//!   ONLY` transaction so that all queries of one [`ReadTx`] see one snapshot.
//! - **Schema**: [`schema`], migrated at connect; with `PostgresConfig::schema` set,
//!   the schema is created if missing and put first on every connection's
//!   `search_path` (tests give each test its own).

mod pool;
mod put;
mod put_many;
mod queries;
mod replicas;
mod schema;

use std::fmt;
use std::str::FromStr;

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_store::search::SqlValue;
use oxehr_store::sql::{Dialect, SqlArg};
use oxehr_store::{JobOutput, NewVersion, ReadTx, Store, StoreError, StoredResource, Tx, WriteJob};
use postgres::error::SqlState;

use crate::pool::{Connector, PgConn, Pool, Pooled};
pub use crate::replicas::ReplicaConfig;
use crate::replicas::Replicas;

/// Settings of a PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// Schema holding the tables (created if missing); `None` uses the server's
    /// `search_path` as it is. Letters, digits and `_` only.
    pub schema: Option<String>,
    /// Most connections open at once (readers and writers share them).
    pub pool_size: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            schema: None,
            pool_size: 16,
        }
    }
}

/// A PostgreSQL database and a pool of connections to it.
pub struct PostgresStore {
    pool: Pool,
    schema: Option<String>,
    /// Streaming replicas that serve reads (`--database-replica`), if any.
    replicas: Option<Replicas>,
}

impl fmt::Debug for PostgresStore {
    /// The URL may hold a password: only the schema is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Maps a driver error to a storage error. Only the SQLSTATE and the server's message
/// are kept: the DETAIL of a constraint error can quote row values (patient data).
pub(crate) fn pg_err(e: postgres::Error) -> StoreError {
    if let Some(code) = e.code() {
        if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::UNIQUE_VIOLATION
        {
            return StoreError::Conflict;
        }
        // Stopped by `statement_timeout` or a cancel request (`oxehr_store::interrupt`).
        if *code == SqlState::QUERY_CANCELED {
            return StoreError::Busy(oxehr_store::interrupt::STOPPED.into());
        }
        if *code == SqlState::TOO_MANY_CONNECTIONS || *code == SqlState::ADMIN_SHUTDOWN {
            return StoreError::Busy(code.code().to_owned());
        }
    }
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!("{}: {}", db.code().code(), db.message())),
        None if e.is_closed() => StoreError::Busy("connection closed".into()),
        None => StoreError::Backend(e.to_string()),
    }
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`), creates the schema if asked
    /// and applies migrations.
    pub fn connect(url: &str, config: PostgresConfig) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_replicated(url, config, &[], &ReplicaConfig::default())
    }

    /// As [`PostgresStore::connect`], with reads served by the streaming replicas at
    /// `replica_urls` once they have replayed this store's writes (see [`replicas`]).
    pub fn connect_replicated(
        url: &str,
        config: PostgresConfig,
        replica_urls: &[String],
        replica_config: &ReplicaConfig,
    ) -> Result<PostgresStore, StoreError> {
        if config.pool_size == 0 {
            return Err(StoreError::Backend("pool_size must be at least 1".into()));
        }
        let mut pg_config = postgres::Config::from_str(url)
            .map_err(|_| StoreError::Backend("invalid PostgreSQL URL".into()))?;
        let mut replica_configs = Vec::new();
        for (i, r) in replica_urls.iter().enumerate() {
            let c = postgres::Config::from_str(r).map_err(|_| {
                StoreError::Backend(format!("invalid PostgreSQL URL for replica {}", i + 1))
            })?;
            replica_configs.push(c);
        }
        let quoted = match &config.schema {
            Some(s) if valid_schema(s) => Some(format!("\"{s}\"")),
            Some(_) => return Err(StoreError::Backend("invalid schema name".into())),
            None => None,
        };
        let connector = Connector {
            config: pg_config.clone(),
            schema: None,
        };
        let mut first = connector.open()?;
        if let Some(q) = &quoted {
            first
                .client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {q}; SET search_path TO {q}"
                ))
                .map_err(pg_err)?;
        }
        schema::migrate(&mut first.client).map_err(pg_err)?;
        if let Some(setting) = planner_default(&mut first.client)? {
            first
                .client
                .batch_execute(&format!("SET {setting}"))
                .map_err(pg_err)?;
            for c in std::iter::once(&mut pg_config).chain(replica_configs.iter_mut()) {
                let options = match c.get_options() {
                    Some(o) => format!("{o} -c {setting}"),
                    None => format!("-c {setting}"),
                };
                c.options(&options);
            }
        }
        let replicas = if replica_configs.is_empty() {
            None
        } else {
            let connectors: Vec<Connector> = replica_configs
                .into_iter()
                .map(|config| Connector {
                    config,
                    schema: quoted.clone(),
                })
                .collect();
            Some(Replicas::connect(&mut first, &connectors, replica_config)?)
        };
        let connector = Connector {
            config: pg_config,
            schema: quoted,
        };
        Ok(PostgresStore {
            pool: Pool::new(connector, config.pool_size, first),
            schema: config.schema,
            replicas,
        })
    }

    /// A connection for a read: from a replica that has replayed every write this
    /// store acknowledged, else from the primary.
    fn read_conn(&self) -> Result<Pooled<'_>, StoreError> {
        if let Some(replicas) = &self.replicas {
            if let Some(pool) = replicas.pick() {
                match pool.get() {
                    Ok(c) => return Ok(c),
                    Err(_) => replicas.mark_down(pool),
                }
            }
        }
        self.pool.get()
    }

    /// After a committed write: notes where the primary's WAL stands, so that reads
    /// wait for the replicas to get there.
    fn note_written(&self, conn: &mut PgConn) {
        let Some(replicas) = &self.replicas else {
            return;
        };
        let lsn = replicas::position(conn, replicas::WRITTEN).or_else(|_| {
            let mut other = self.pool.get()?;
            replicas::position(other.conn()?, replicas::WRITTEN)
        });
        match lsn {
            Ok(lsn) => replicas.wrote(lsn),
            // The write is committed and stays acknowledged; the primary is out of
            // reach, so reads cannot be sent there either until it is back.
            Err(e) => {
                tracing::warn!(error = %e, "could not read the primary's WAL position after a write")
            }
        }
    }
}

/// Stable 64-bit key of an advisory lock: FNV-1a of the key's bytes.
fn lock_key(key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// The planner setting oxehr's connections use when the server leaves it at its default:
/// `random_page_cost = 1.1` instead of 4. The default models spinning disks, so that a
/// search probing a few thousand rows by key (`resource` by `rid` for every match of a
/// value index) is planned as a sequential scan of the whole table, about twice as slow
/// when the data is cached or on SSD, which is where an EHR's database lives. A value set
/// by the database's administrator (in `postgresql.conf`, for the database or the role,
/// or in the URL's `options`) is left alone.
fn planner_default(client: &mut postgres::Client) -> Result<Option<&'static str>, StoreError> {
    let row = client
        .query_one(
            "SELECT source FROM pg_settings WHERE name = 'random_page_cost'",
            &[],
        )
        .map_err(pg_err)?;
    let source: String = row.get(0);
    Ok((source == "default").then_some("random_page_cost=1.1"))
}

/// A read snapshot on a pooled connection.
struct Reader<'p> {
    conn: Pooled<'p>,
    in_txn: bool,
    /// The cancel request registered with the request's interrupt, if any.
    cancel: Option<oxehr_store::interrupt::Registration>,
}

impl Reader<'_> {
    /// The connection, inside this snapshot's transaction. Under a request's interrupt
    /// (`oxehr_store::interrupt`) the transaction's statements time out when the
    /// request's deadline passes, and a stop cancels the running one.
    fn conn(&mut self) -> Result<&mut PgConn, StoreError> {
        if !self.in_txn {
            let mut begin = String::from("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
            if let Some(interrupt) = oxehr_store::interrupt::current() {
                if interrupt.is_stopped() {
                    return Err(StoreError::Busy(oxehr_store::interrupt::STOPPED.into()));
                }
                if let Some(left) = interrupt.remaining() {
                    // 0 would mean no limit; at least one millisecond.
                    let ms = left.as_millis().clamp(1, i32::MAX as u128);
                    begin.push_str(&format!("; SET LOCAL statement_timeout = {ms}"));
                }
                let token = self.conn.conn()?.client.cancel_token();
                self.cancel = Some(interrupt.on_stop(move || {
                    let _ = token.cancel_query(postgres::NoTls);
                }));
            }
            self.conn
                .conn()?
                .client
                .batch_execute(&begin)
                .map_err(pg_err)?;
            self.in_txn = true;
        }
        self.conn.conn()
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        // A cancel request sent to this connection may arrive late: the connection is
        // closed rather than handed to another request's statement.
        if self.cancel.take().is_some_and(|c| c.withdraw()) {
            self.conn.mark_broken();
            return;
        }
        if self.in_txn {
            let ended = match self.conn.conn() {
                Ok(c) => c.client.batch_execute("COMMIT").is_ok(),
                Err(_) => false,
            };
            if !ended {
                self.conn.mark_broken();
            }
        }
    }
}

/// A write transaction. `failed` remembers that a statement failed, because PostgreSQL
/// then ignores everything up to the end of the transaction and answers `COMMIT` with a
/// silent rollback: the write must not be reported as stored.
struct WriteTx<'a> {
    conn: &'a mut PgConn,
    failed: bool,
}

impl WriteTx<'_> {
    fn track<T>(&mut self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if r.is_err() {
            self.failed = true;
        }
        r
    }
}

macro_rules! read_methods {
    ($conn:ident, $wrap:ident) => {
        fn current(
            &mut self,
            rtype: &ResourceType,
            id: &ResourceId,
        ) -> Result<Option<StoredResource>, StoreError> {
            let r = queries::current(self.$conn()?, rtype, id);
            self.$wrap(r)
        }
        fn version(
            &mut self,
            rtype: &ResourceType,
            id: &ResourceId,
            version: VersionId,
        ) -> Result<Option<StoredResource>, StoreError> {
            let r = queries::version(self.$conn()?, rtype, id, version);
            self.$wrap(r)
        }
        fn dialect(&self) -> Dialect {
            Dialect::Postgres
        }
        fn query(&mut self, sql: &str, args: &[SqlArg]) -> Result<Vec<Vec<SqlValue>>, StoreError> {
            let r = queries::query_values(self.$conn()?, sql, args, false);
            self.$wrap(r)
        }
        fn query_shared_plan(
            &mut self,
            sql: &str,
            args: &[SqlArg],
        ) -> Result<Vec<Vec<SqlValue>>, StoreError> {
            let r = queries::query_values(self.$conn()?, sql, args, true);
            self.$wrap(r)
        }
    };
}

impl Reader<'_> {
    fn pass<T>(&mut self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        r
    }
}

impl ReadTx for Reader<'_> {
    read_methods!(conn, pass);
}

impl WriteTx<'_> {
    fn conn(&mut self) -> Result<&mut PgConn, StoreError> {
        Ok(self.conn)
    }
}

impl ReadTx for WriteTx<'_> {
    read_methods!(conn, track);
}

impl Tx for WriteTx<'_> {
    fn lock(&mut self, key: &str) -> Result<(), StoreError> {
        let r = self
            .conn
            .prepare("SELECT pg_advisory_xact_lock($1)")
            .and_then(|st| {
                self.conn
                    .client
                    .execute(&st, &[&lock_key(key)])
                    .map_err(pg_err)
            });
        self.track(r).map(|_| ())
    }

    fn put(&mut self, v: &NewVersion) -> Result<(), StoreError> {
        let r = put::put(self.conn, v);
        // A version conflict is detected without an SQL error: the transaction is
        // still usable, so only real statement failures poison it.
        if matches!(r, Err(StoreError::Conflict)) {
            return r;
        }
        self.track(r)
    }

    fn reindex(&mut self, v: &NewVersion) -> Result<(), StoreError> {
        let r = put::reindex(self.conn, v);
        if matches!(r, Err(StoreError::Conflict)) {
            return r;
        }
        self.track(r)
    }

    fn put_many(&mut self, versions: &[NewVersion]) -> Result<(), StoreError> {
        if let [v] = versions {
            return self.put(v);
        }
        if versions.is_empty() {
            return Ok(());
        }
        let r = put_many::put_many(self.conn, versions);
        match self.track(r)? {
            put_many::Outcome::Stored => Ok(()),
            put_many::Outcome::OneByOne => versions.iter().try_for_each(|v| self.put(v)),
        }
    }

    fn execute(&mut self, sql: &str, args: &[SqlArg]) -> Result<u64, StoreError> {
        let r = queries::execute(self.conn, sql, args);
        self.track(r)
    }
}

impl Store for PostgresStore {
    fn read(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
        Ok(Box::new(Reader {
            conn: self.read_conn()?,
            in_txn: false,
            cancel: None,
        }))
    }

    /// One statement in autocommit: no BEGIN/COMMIT round trips for a single read.
    fn read_current(
        &self,
        rtype: &ResourceType,
        id: &ResourceId,
    ) -> Result<Option<StoredResource>, StoreError> {
        let mut pooled = self.read_conn()?;
        queries::current(pooled.conn()?, rtype, id)
    }

    fn read_version(
        &self,
        rtype: &ResourceType,
        id: &ResourceId,
        version: VersionId,
    ) -> Result<Option<StoredResource>, StoreError> {
        let mut pooled = self.read_conn()?;
        queries::version(pooled.conn()?, rtype, id, version)
    }

    fn write(&self, job: WriteJob) -> Result<JobOutput, StoreError> {
        self.write_noting(job, true)
    }

    fn write_log(&self, job: WriteJob) -> Result<JobOutput, StoreError> {
        self.write_noting(job, false)
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    fn gauges(&self) -> Vec<oxehr_store::Gauge> {
        self.pool_gauges()
    }
}

impl PostgresStore {
    /// `BEGIN; job; COMMIT`; with `observed`, reads that follow wait for the replicas
    /// to replay it.
    fn write_noting(&self, mut job: WriteJob, observed: bool) -> Result<JobOutput, StoreError> {
        let mut pooled = self.pool.get()?;
        let conn = pooled.conn()?;
        conn.client.batch_execute("BEGIN").map_err(pg_err)?;
        let mut tx = WriteTx {
            conn: &mut *conn,
            failed: false,
        };
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut tx))) {
            Ok(r) => r,
            Err(_) => Err(StoreError::Backend("write job panicked".into())),
        };
        let failed = tx.failed;
        let end = match (&result, failed) {
            (Ok(_), false) => conn.client.batch_execute("COMMIT").map_err(pg_err),
            _ => conn.client.batch_execute("ROLLBACK").map_err(pg_err),
        };
        match (result, end) {
            (Ok(_), Ok(())) if failed => Err(StoreError::Backend(
                "a statement of the job failed; rolled back".into(),
            )),
            (Ok(out), Ok(())) => {
                if observed {
                    if let Ok(conn) = pooled.conn() {
                        self.note_written(conn);
                    }
                }
                Ok(out)
            }
            (Ok(_), Err(e)) => {
                // A failed COMMIT leaves the session in an unknown state.
                pooled.mark_broken();
                Err(e)
            }
            (Err(e), end) => {
                if end.is_err() {
                    pooled.mark_broken();
                }
                Err(e)
            }
        }
    }

    fn pool_gauges(&self) -> Vec<oxehr_store::Gauge> {
        let (open, idle, size) = self.pool.counts();
        let mut gauges = vec![
            oxehr_store::Gauge {
                name: "oxehr_store_connections_max",
                help: "PostgreSQL connections the pool may open (--database-pool).",
                value: size as f64,
            },
            oxehr_store::Gauge {
                name: "oxehr_store_connections_open",
                help: "PostgreSQL connections open now.",
                value: open as f64,
            },
            oxehr_store::Gauge {
                name: "oxehr_store_connections_idle",
                help: "PostgreSQL connections open and idle now.",
                value: idle as f64,
            },
        ];
        if let Some(r) = &self.replicas {
            gauges.extend(r.gauges());
        }
        gauges
    }
}
