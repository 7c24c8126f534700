//! A small blocking connection pool (a mutex, a condition variable, at most `size`
//! connections, opened on demand) with a per-connection cache of prepared statements.
//! Our own rather than r2d2 or deadpool: the ports are synchronous, the pool is forty
//! lines, and each connection needs its `search_path` set and its statements cached.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use oxehr_store::StoreError;
use postgres::{Client, NoTls, Statement};

use crate::pg_err;

/// Most prepared statements kept per connection; search statements vary, so the cache
/// is emptied when it grows past this.
const STATEMENT_CACHE: usize = 512;

/// One connection and its prepared statements.
pub(crate) struct PgConn {
    pub(crate) client: Client,
    statements: HashMap<String, Statement>,
}

impl PgConn {
    /// The prepared statement for `sql`, preparing it on first use.
    pub(crate) fn prepare(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let st = self.client.prepare(sql).map_err(pg_err)?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }
}

/// How to open a connection.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) config: postgres::Config,
    /// A quoted schema name to put first on `search_path`.
    pub(crate) schema: Option<String>,
}

impl Connector {
    pub(crate) fn open(&self) -> Result<PgConn, StoreError> {
        let mut client = self.config.connect(NoTls).map_err(pg_err)?;
        if let Some(schema) = &self.schema {
            client
                .batch_execute(&format!("SET search_path TO {schema}"))
                .map_err(pg_err)?;
        }
        Ok(PgConn {
            client,
            statements: HashMap::new(),
        })
    }
}

struct State {
    idle: Vec<PgConn>,
    open: usize,
}

pub(crate) struct Pool {
    connector: Connector,
    size: usize,
    state: Mutex<State>,
    returned: Condvar,
}

impl Pool {
    pub(crate) fn new(connector: Connector, size: usize, first: PgConn) -> Pool {
        Pool {
            connector,
            size,
            state: Mutex::new(State {
                idle: vec![first],
                open: 1,
            }),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::Backend("connection pool poisoned".into()))
    }

    /// How this pool opens its connections.
    pub(crate) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// (connections open, of which idle, the most that may be open) now.
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        self.lock()
            .map(|s| (s.open, s.idle.len(), self.size))
            .unwrap_or((0, 0, self.size))
    }

    /// An idle connection, a new one if the pool is not full, else waits for one.
    pub(crate) fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let mut state = self.lock()?;
        loop {
            if let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                    broken: false,
                });
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match self.connector.open() {
                    Ok(conn) => Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                        broken: false,
                    }),
                    Err(e) => {
                        self.release(None);
                        Err(e)
                    }
                };
            }
            state = self
                .returned
                .wait(state)
                .map_err(|_| StoreError::Backend("connection pool poisoned".into()))?;
        }
    }

    fn release(&self, conn: Option<PgConn>) {
        if let Ok(mut state) = self.state.lock() {
            match conn {
                Some(c) => state.idle.push(c),
                None => state.open -= 1,
            }
            self.returned.notify_one();
        }
    }
}

impl Drop for Pool {
    /// Closes the idle connections on a thread of their own: closing a synchronous
    /// client blocks on its internal runtime, which panics when the store is dropped
    /// inside an async task (as a server's state is at shutdown).
    fn drop(&mut self) {
        let idle = match self.state.get_mut() {
            Ok(state) => std::mem::take(&mut state.idle),
            Err(_) => return,
        };
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

/// A checked-out connection; goes back to the pool when dropped, unless marked broken.
pub(crate) struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<PgConn>,
    broken: bool,
}

impl Pooled<'_> {
    pub(crate) fn conn(&mut self) -> Result<&mut PgConn, StoreError> {
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::Backend("connection already returned".into()))
    }

    /// The connection's session state is unknown (a failed COMMIT or ROLLBACK): close it
    /// instead of handing it out again.
    pub(crate) fn mark_broken(&mut self) {
        self.broken = true;
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let conn = self.conn.take();
        let healthy = !self.broken && conn.as_ref().is_some_and(|c| !c.client.is_closed());
        self.pool.release(if healthy { conn } else { None });
    }
}
