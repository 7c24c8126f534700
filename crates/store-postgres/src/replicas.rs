//! Reads from streaming replicas (`--database-replica`), never older than this server's
//! own writes.
//!
//! Every write this store commits ends with the primary's WAL position after its
//! `COMMIT` (`pg_current_wal_lsn()`), and the store keeps the highest: `written`. A read
//! goes to a replica only once that replica has replayed up to `written` as it was
//! when the read began, so a caller who wrote and then reads — or anyone reading after
//! a write this server acknowledged — never sees an older state. The replicas' replay
//! positions (`pg_last_wal_replay_lsn()`) are asked by one thread of the store's own:
//! every millisecond while some replica is behind `written`, once a second otherwise
//! (also how a replica that went away is found again). A read waits up to
//! [`ReplicaConfig::wait`] for some replica to catch up, then reads the primary.
//!
//! Only this server's writes are followed: writes by another process (a second server,
//! `oxehr import`) reach the replicas in their own time (docs/operations.md).
//!
//! A replica must be a standby of the same cluster as the primary: checked at start from
//! `pg_control_system()`, so a mistyped URL naming some other database is refused rather
//! than read.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use oxehr_store::StoreError;

use crate::pg_err;
use crate::pool::{Connector, PgConn, Pool};

/// How reads use the replicas.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// The longest a read waits for a replica to replay the last write before it reads
    /// the primary instead.
    pub wait: Duration,
    /// Most connections open at once to each replica.
    pub pool_size: usize,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            wait: Duration::from_millis(20),
            pool_size: 16,
        }
    }
}

/// The WAL position a statement's first column gives, as bytes from the start.
const REPLAYED: &str = "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8";
pub(crate) const WRITTEN: &str = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8";

/// The cluster a server belongs to, and whether it is a standby.
fn identify(conn: &mut PgConn) -> Result<(i64, bool), StoreError> {
    let row = conn
        .client
        .query_one(
            "SELECT system_identifier, pg_is_in_recovery() FROM pg_control_system()",
            &[],
        )
        .map_err(pg_err)?;
    Ok((row.get(0), row.get(1)))
}

pub(crate) fn position(conn: &mut PgConn, sql: &str) -> Result<u64, StoreError> {
    let row = conn.client.query_one(sql, &[]).map_err(pg_err)?;
    let lsn: Option<i64> = row.get(0);
    Ok(lsn.unwrap_or(0).max(0) as u64)
}

struct Replica {
    pool: Pool,
    /// Bytes of WAL this replica has replayed, as last asked; 0 when it could not be
    /// asked (down), so that it is not read until it answers again.
    replayed: AtomicU64,
}

/// State shared with the polling thread.
struct Shared {
    replicas: Vec<Replica>,
    /// The end of the last write this store acknowledged, in bytes of WAL.
    written: AtomicU64,
    stop: AtomicBool,
    /// Wakes the poller (a write) and the readers waiting for a replica (a poll).
    lock: Mutex<()>,
    wake_poller: Condvar,
    polled: Condvar,
    served: AtomicU64,
    fell_back: AtomicU64,
}

/// The replicas of a [`crate::PostgresStore`] and their poller.
pub(crate) struct Replicas {
    shared: Arc<Shared>,
    wait: Duration,
    next: AtomicUsize,
    poller: Option<std::thread::JoinHandle<()>>,
}

impl Replicas {
    /// Connects to each replica URL and checks that it is a standby of `primary`'s
    /// cluster; starts the poller.
    pub(crate) fn connect(
        primary: &mut PgConn,
        replicas: &[Connector],
        config: &ReplicaConfig,
    ) -> Result<Replicas, StoreError> {
        if config.pool_size == 0 {
            return Err(StoreError::Backend(
                "the replica pool size must be at least 1".into(),
            ));
        }
        let (cluster, _) = identify(primary)?;
        let mut list = Vec::new();
        for (i, connector) in replicas.iter().enumerate() {
            let n = i + 1;
            let mut first = connector
                .open()
                .map_err(|e| StoreError::Backend(format!("cannot connect to replica {n}: {e}")))?;
            let (theirs, standby) = identify(&mut first)?;
            if theirs != cluster {
                return Err(StoreError::Backend(format!(
                    "replica {n} is not a copy of the primary (another database cluster)"
                )));
            }
            if !standby {
                return Err(StoreError::Backend(format!(
                    "replica {n} is not a standby (pg_is_in_recovery() is false)"
                )));
            }
            let replayed = position(&mut first, REPLAYED)?;
            list.push(Replica {
                pool: Pool::new(connector.clone(), config.pool_size, first),
                replayed: AtomicU64::new(replayed),
            });
        }
        // Everything committed before this store opened (its migrations, earlier
        // servers' writes) counts as written.
        let written = position(primary, WRITTEN)?;
        let shared = Arc::new(Shared {
            replicas: list,
            written: AtomicU64::new(written),
            stop: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake_poller: Condvar::new(),
            polled: Condvar::new(),
            served: AtomicU64::new(0),
            fell_back: AtomicU64::new(0),
        });
        let s = shared.clone();
        let poller = std::thread::Builder::new()
            .name("pg-replicas".into())
            .spawn(move || poll(&s))
            .map_err(|e| StoreError::Backend(format!("spawn thread: {e}")))?;
        Ok(Replicas {
            shared,
            wait: config.wait,
            next: AtomicUsize::new(0),
            poller: Some(poller),
        })
    }

    /// Notes a committed write ending at `lsn` and wakes the poller.
    pub(crate) fn wrote(&self, lsn: u64) {
        self.shared.written.fetch_max(lsn, Ordering::AcqRel);
        let _guard = self.shared.lock.lock();
        self.shared.wake_poller.notify_one();
    }

    /// The pool of a replica that has replayed every write acknowledged so far, waiting
    /// up to the configured time for one; `None`: read the primary.
    pub(crate) fn pick(&self) -> Option<&Pool> {
        let s = &*self.shared;
        let floor = s.written.load(Ordering::Acquire);
        let count = s.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let ready = || {
            (0..count)
                .map(|k| &s.replicas[(start + k) % count])
                .find(|r| r.replayed.load(Ordering::Acquire) >= floor)
        };
        fn chosen<'a>(s: &Shared, r: &'a Replica) -> Option<&'a Pool> {
            s.served.fetch_add(1, Ordering::Relaxed);
            Some(&r.pool)
        }
        if let Some(r) = ready() {
            return chosen(s, r);
        }
        let deadline = Instant::now() + self.wait;
        // Under the lock, so that a poll finishing between the look and the wait wakes it.
        let mut guard = s.lock.lock().ok();
        loop {
            if let Some(r) = ready() {
                return chosen(s, r);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(g) = guard.take().filter(|_| !left.is_zero()) else {
                s.fell_back.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            s.wake_poller.notify_one();
            guard = s.polled.wait_timeout(g, left).ok().map(|(g, _)| g);
        }
    }

    /// A replica's connection failed: it is not read until the poller reaches it again.
    pub(crate) fn mark_down(&self, pool: &Pool) {
        if let Some(r) = self
            .shared
            .replicas
            .iter()
            .find(|r| std::ptr::eq(&r.pool, pool))
        {
            r.replayed.store(0, Ordering::Release);
        }
    }

    pub(crate) fn gauges(&self) -> Vec<oxehr_store::Gauge> {
        let s = &*self.shared;
        let written = s.written.load(Ordering::Acquire);
        let up: Vec<u64> = s
            .replicas
            .iter()
            .map(|r| r.replayed.load(Ordering::Acquire))
            .filter(|&p| p > 0)
            .collect();
        let lag = up.iter().map(|&p| written.saturating_sub(p)).max();
        vec![
            oxehr_store::Gauge {
                name: "oxehr_store_replicas_up",
                help: "PostgreSQL replicas (--database-replica) answering now.",
                value: up.len() as f64,
            },
            oxehr_store::Gauge {
                name: "oxehr_store_replica_lag_bytes",
                help: "Bytes of WAL the furthest-behind answering replica has yet to replay of this server's writes.",
                value: lag.unwrap_or(0) as f64,
            },
            oxehr_store::Gauge {
                name: "oxehr_store_replica_reads_total",
                help: "Reads served by a replica.",
                value: s.served.load(Ordering::Relaxed) as f64,
            },
            oxehr_store::Gauge {
                name: "oxehr_store_replica_fallbacks_total",
                help: "Reads sent to the primary because no replica had replayed the last write in time.",
                value: s.fell_back.load(Ordering::Relaxed) as f64,
            },
        ]
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Ok(_guard) = self.shared.lock.lock() {
            self.shared.wake_poller.notify_all();
        }
        if let Some(p) = self.poller.take() {
            let _ = p.join();
        }
    }
}

/// Asks each replica how far it has replayed: every millisecond while one is behind the
/// last write, else once a second; a replica that does not answer counts as down.
fn poll(s: &Shared) {
    let mut conns: Vec<Option<PgConn>> = s.replicas.iter().map(|_| None).collect();
    let mut last_try: Vec<Option<Instant>> = vec![None; s.replicas.len()];
    while !s.stop.load(Ordering::Acquire) {
        for (i, r) in s.replicas.iter().enumerate() {
            if conns[i].is_none() {
                // A replica that went away is tried again once a second.
                if last_try[i].is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                    continue;
                }
                last_try[i] = Some(Instant::now());
                conns[i] = r.pool.connector().open().ok();
            }
            let asked = conns[i].as_mut().map(|c| position(c, REPLAYED));
            match asked {
                Some(Ok(p)) => r.replayed.store(p, Ordering::Release),
                _ => {
                    conns[i] = None;
                    r.replayed.store(0, Ordering::Release);
                }
            }
        }
        let Ok(guard) = s.lock.lock() else { return };
        // Read under the lock: a write noted after this wakes the wait below.
        let written = s.written.load(Ordering::Acquire);
        let behind = s
            .replicas
            .iter()
            .zip(&conns)
            .any(|(r, c)| c.is_some() && r.replayed.load(Ordering::Acquire) < written);
        s.polled.notify_all();
        if s.stop.load(Ordering::Acquire) {
            break;
        }
        let pause = if behind {
            Duration::from_millis(1)
        } else {
            Duration::from_secs(1)
        };
        let _ = s.wake_poller.wait_timeout(guard, pause);
    }
    // Closing a synchronous client off any async runtime (see `Pool`'s drop).
    drop(conns);
}
