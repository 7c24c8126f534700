//! The pool of read-only connections. A checked-out connection is a [`ReadTx`]: its
//! first query opens a read transaction, so every later query of the same checkout sees
//! the same snapshot; returning it to the pool ends that transaction.

use std::sync::{Condvar, Mutex};

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_store::search::SqlValue;
use oxehr_store::sql::{Dialect, SqlArg};
use oxehr_store::{ReadTx, StoreError, StoredResource};
use rusqlite::Connection;

use crate::{db_err, queries};

pub(crate) struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl ReaderPool {
    pub(crate) fn new(conns: Vec<Connection>) -> ReaderPool {
        ReaderPool {
            idle: Mutex::new(conns),
            returned: Condvar::new(),
        }
    }

    /// Waits for an idle connection.
    pub(crate) fn get(&self) -> Result<Reader<'_>, StoreError> {
        let poisoned = |_| StoreError::Backend("reader pool poisoned".into());
        let mut idle = self.idle.lock().map_err(poisoned)?;
        loop {
            if let Some(conn) = idle.pop() {
                return Ok(Reader {
                    pool: self,
                    conn: Some(conn),
                    in_txn: false,
                });
            }
            idle = self.returned.wait(idle).map_err(poisoned)?;
        }
    }

    /// Connections idle now.
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    fn put_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
            self.returned.notify_one();
        }
    }
}

/// A checked-out read connection.
pub(crate) struct Reader<'p> {
    pool: &'p ReaderPool,
    conn: Option<Connection>,
    in_txn: bool,
}

impl Reader<'_> {
    /// The connection, inside this checkout's read transaction.
    fn conn(&mut self) -> Result<&Connection, StoreError> {
        let conn = self
            .conn
            .as_ref()
            .ok_or_else(|| StoreError::Backend("reader already returned".into()))?;
        if !self.in_txn {
            if oxehr_store::interrupt::should_stop() {
                return Err(StoreError::Busy(oxehr_store::interrupt::STOPPED.into()));
            }
            conn.prepare_cached("BEGIN")
                .and_then(|mut s| s.execute([]))
                .map_err(db_err)?;
            self.in_txn = true;
        }
        Ok(conn)
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.in_txn {
                let ended = conn
                    .prepare_cached("COMMIT")
                    .and_then(|mut s| s.execute([]))
                    .is_ok();
                if !ended && conn.execute_batch("ROLLBACK").is_err() {
                    // A connection we cannot reset is not handed out again.
                    tracing::warn!("dropping a read connection that could not end its snapshot");
                    return;
                }
            }
            self.pool.put_back(conn);
        }
    }
}

impl ReadTx for Reader<'_> {
    read_methods!();
}
