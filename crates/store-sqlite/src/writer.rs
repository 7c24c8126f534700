//! The one writer thread and its group commit, and the background checkpointer.
//!
//! Callers hand jobs to the writer over a bounded channel. The writer takes every job
//! that is waiting (up to `max_batch`), runs them in one transaction (without
//! savepoints until one fails; then the transaction is rolled back, the failed job
//! answered, and the others run again with every job after the first inside its own
//! `SAVEPOINT`, see [`run_batch`]), then makes the whole batch durable with
//! one `COMMIT` (one WAL fsync under `synchronous=FULL`) and only then answers each
//! caller. If the `COMMIT` fails, every job in the batch gets the error. Under load,
//! jobs queue while the previous batch syncs, so the fsync cost is shared by the batch.
//!
//! Checkpoints are kept off this path: the writer's connection has autocheckpoint off,
//! and a separate thread with its own connection runs `wal_checkpoint(PASSIVE)` (which
//! never blocks the writer or readers) after commits, at most once per interval. Only
//! when the WAL has grown past its bound does the writer copy the last frames itself,
//! so that the WAL can start over (see [`run_writer`]).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_store::search::SqlValue;
use oxehr_store::sql::{Dialect, SqlArg};
use oxehr_store::{JobOutput, NewVersion, ReadTx, StoreError, StoredResource, Tx, WriteJob};
use rusqlite::Connection;

use crate::{db_err, put, queries};

/// A job and where to send its answer.
pub(crate) struct Request {
    pub(crate) job: WriteJob,
    pub(crate) reply: SyncSender<Result<JobOutput, StoreError>>,
}

/// The write transaction a job sees: the writer's connection inside the batch's
/// transaction and the job's savepoint.
struct WriteTx<'c> {
    conn: &'c Connection,
}

impl WriteTx<'_> {
    fn conn(&mut self) -> Result<&Connection, StoreError> {
        Ok(self.conn)
    }
}

impl ReadTx for WriteTx<'_> {
    read_methods!();
}

impl Tx for WriteTx<'_> {
    /// One writer: writes are already serialized.
    fn lock(&mut self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn put(&mut self, v: &NewVersion) -> Result<(), StoreError> {
        put::put_many(self.conn, std::slice::from_ref(v))
    }
    fn put_many(&mut self, versions: &[NewVersion]) -> Result<(), StoreError> {
        put::put_many(self.conn, versions)
    }
    fn reindex(&mut self, v: &NewVersion) -> Result<(), StoreError> {
        put::reindex(self.conn, v)
    }
    fn execute(&mut self, sql: &str, args: &[SqlArg]) -> Result<u64, StoreError> {
        queries::execute(self.conn, sql, args)
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(db_err)
}

/// How a job ended inside the batch's transaction.
enum JobEnd {
    /// The transaction is still open: the job's result is to be answered after `COMMIT`
    /// (an error has already been rolled back to the job's savepoint).
    Open(Result<JobOutput, StoreError>),
    /// The job ran without a savepoint and failed: the whole transaction has been
    /// rolled back, with the work of every job before it in the transaction.
    RolledBack(StoreError),
}

/// Runs one job, inside `SAVEPOINT job` when `savepoint` (a failing job is then undone
/// alone); without one, a failing job rolls the whole transaction back. `Err` means the
/// transaction can no longer commit the jobs before this one: SQLite rolled it back
/// (I/O error, disk full) or a savepoint statement failed.
fn run_job(conn: &Connection, job: &mut WriteJob, savepoint: bool) -> Result<JobEnd, StoreError> {
    if savepoint {
        exec(conn, "SAVEPOINT job")?;
    }
    let mut tx = WriteTx { conn };
    let result = match catch_unwind(AssertUnwindSafe(|| job(&mut tx))) {
        Ok(r) => r,
        Err(_) => Err(StoreError::Backend("write job panicked".into())),
    };
    if conn.is_autocommit() {
        return Err(StoreError::Backend(
            "transaction rolled back by SQLite".into(),
        ));
    }
    match (result, savepoint) {
        (Ok(out), false) => Ok(JobEnd::Open(Ok(out))),
        (Ok(out), true) => {
            exec(conn, "RELEASE job")?;
            Ok(JobEnd::Open(Ok(out)))
        }
        (Err(e), false) => {
            exec(conn, "ROLLBACK")?;
            Ok(JobEnd::RolledBack(e))
        }
        (Err(e), true) => {
            exec(conn, "ROLLBACK TO job")?;
            exec(conn, "RELEASE job")?;
            Ok(JobEnd::Open(Err(e)))
        }
    }
}

fn copy_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict => StoreError::Conflict,
        StoreError::Busy(m) => StoreError::Busy(m.clone()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// Runs a batch of jobs in one transaction and answers every caller after `COMMIT`.
///
/// The jobs run without savepoints while none fails: a savepoint makes SQLite copy every
/// page the job changes into its sub-journal first, a tenth of the writer's time under
/// HL7 ingest, and jobs rarely fail here (their checks ran before they were sent). When
/// a job fails, the transaction is rolled back whole; the failed job is answered, and
/// the jobs that had run before it in the transaction run again, from the same state,
/// with the rest of the batch in a new transaction — this time every job after the
/// first inside its own savepoint, so that each job runs at most twice however many
/// fail.
fn run_batch(conn: &Connection, batch: Vec<Request>) {
    let mut done: Vec<(SyncSender<_>, Result<JobOutput, StoreError>)> = Vec::new();
    let mut pending: VecDeque<Request> = batch.into();
    let mut guarded = false;
    'txn: while !pending.is_empty() {
        if !conn.is_autocommit() {
            // A savepoint statement failed with the transaction still open: its jobs
            // were told they failed, so none of it may commit.
            let _ = conn.execute_batch("ROLLBACK");
        }
        if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
            for r in pending {
                let _ = r.reply.send(Err(copy_err(&e)));
            }
            break;
        }
        let mut in_txn: Vec<(Request, Result<JobOutput, StoreError>)> = Vec::new();
        while let Some(mut req) = pending.pop_front() {
            let savepoint = guarded && !in_txn.is_empty();
            match run_job(conn, &mut req.job, savepoint) {
                Ok(JobEnd::Open(result)) => in_txn.push((req, result)),
                Ok(JobEnd::RolledBack(e)) => {
                    let _ = req.reply.send(Err(e));
                    if !in_txn.is_empty() {
                        // Their work went with the rollback: they run again.
                        guarded = true;
                        for (earlier, _) in in_txn.into_iter().rev() {
                            pending.push_front(earlier);
                        }
                    }
                    continue 'txn;
                }
                Err(e) => {
                    // The transaction is gone, with every job of it so far.
                    for (earlier, _) in in_txn.drain(..) {
                        let _ = earlier.reply.send(Err(copy_err(&e)));
                    }
                    let _ = req.reply.send(Err(e));
                    continue 'txn;
                }
            }
        }
        match exec(conn, "COMMIT") {
            Ok(()) => done.extend(in_txn.into_iter().map(|(r, out)| (r.reply, out))),
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                let _ = conn.execute_batch("ROLLBACK");
                for (r, _) in in_txn {
                    let _ = r.reply.send(Err(copy_err(&e)));
                }
            }
        }
        break;
    }
    for (reply, result) in done {
        let _ = reply.send(result);
    }
}

/// The writer thread's loop; ends when every sender is dropped.
///
/// When the checkpointer finds the WAL above `SqliteConfig::wal_restart_pages`
/// (`restart`), the writer finishes the copy itself after its next batch: a PASSIVE
/// checkpoint on its own connection, which no commit can overtake, so it can copy every
/// frame back (the checkpointer's own passes copy most of them beforehand, off this
/// thread). With the
/// WAL copied back completely, the next batch's transaction starts the WAL over from its
/// beginning, as SQLite does whenever a writer begins with nothing left to copy and no
/// reader still on an older snapshot. It tries again after each batch until the WAL has
/// started over. (A RESTART checkpoint from the checkpointer's thread, as before, waited
/// for the writer's lock, which the writer takes again as soon as it lets go: the WAL
/// grew to 1.3 GB before one got through, and the one that did held every write back
/// for up to half a second while it copied what had piled up.)
pub(crate) fn run_writer(
    conn: Connection,
    rx: Receiver<Request>,
    max_batch: usize,
    committed: SyncSender<()>,
    restart: Restart,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        run_batch(&conn, batch);
        if restart.wanted.load(Ordering::Acquire) {
            match wal_checkpoint(&conn, "PASSIVE") {
                // The checkpointer's pass holds the checkpoint lock (-1): next time.
                Some((pages, _)) if pages < 0 => {}
                // The WAL holds only what was written since it started over.
                Some((pages, _)) if pages <= restart.pages => {
                    restart.wanted.store(false, Ordering::Release)
                }
                Some(_) => {}
                None => restart.wanted.store(false, Ordering::Release),
            }
        }
        // Wake the checkpointer; if it already has a wake-up pending, that is enough.
        let _ = committed.try_send(());
    }
    drop(conn);
}

/// When the WAL is to start over: the bound (`SqliteConfig::wal_restart_pages`) and
/// whether the checkpointer has asked the writer to finish the copy.
#[derive(Clone)]
pub(crate) struct Restart {
    pages: i64,
    wanted: Arc<AtomicBool>,
}

impl Restart {
    pub(crate) fn new(pages: i64) -> Restart {
        Restart {
            pages: pages.max(1),
            wanted: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Bytes above which SQLite cuts the WAL file back after it starts over: one and a
    /// half times the bound, more than the WAL grows to, so that the file is overwritten
    /// in place rather than cut back and grown again.
    pub(crate) fn journal_size_limit(&self) -> i64 {
        self.pages * 4096 * 3 / 2
    }
}

/// WAL frames (4 KiB pages) left to copy back below which the checkpointer hands the
/// rest to the writer: 4 MiB, a few milliseconds of the writer's time.
const WAL_TAIL_PAGES: i64 = 1_024;

/// `PRAGMA wal_checkpoint(mode)`: the WAL's size in pages and how many of them have been
/// copied back, if known.
fn wal_checkpoint(conn: &Connection, mode: &str) -> Option<(i64, i64)> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    match conn.query_row(&sql, [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))) {
        Ok(pages) => Some(pages),
        Err(e) => {
            tracing::warn!(error = %e, "wal checkpoint failed");
            None
        }
    }
}

/// The checkpointer's loop: after commits, at most once per `interval`, it copies WAL
/// frames back into the database file. Ends when the writer is gone.
///
/// A passive checkpoint never waits, so under a steady stream of commits (an import) it
/// never catches up with the end of the WAL, and the WAL only starts over from its
/// beginning once it has been copied back completely: it would grow without bound
/// (measured: 20 GB after 3,000 Synthea patients). When the WAL holds more than
/// `SqliteConfig::wal_restart_pages`, the checkpointer asks the writer to finish the copy
/// (`restart`; see [`run_writer`]).
pub(crate) fn run_checkpointer(
    conn: Connection,
    wake: Receiver<()>,
    interval: Duration,
    restart: Restart,
) {
    'outer: while wake.recv().is_ok() {
        // Let commits accumulate for one interval, then checkpoint them together.
        let deadline = Instant::now() + interval;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match wake.recv_timeout(left) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break 'outer,
            }
        }
        let Some((mut pages, mut copied)) = wal_checkpoint(&conn, "PASSIVE") else {
            continue;
        };
        if pages <= restart.pages {
            continue;
        }
        // Copy again what came in during the pass, until what is left is small (each pass
        // is shorter than the one before), then let the writer copy the rest.
        for _ in 0..8 {
            if pages - copied <= WAL_TAIL_PAGES {
                break;
            }
            match wal_checkpoint(&conn, "PASSIVE") {
                Some(p) => (pages, copied) = p,
                None => break,
            }
        }
        restart.wanted.store(true, Ordering::Release);
    }
    // Shutting down: no writer is left, so fold the WAL in and truncate it.
    wal_checkpoint(&conn, "TRUNCATE");
}
