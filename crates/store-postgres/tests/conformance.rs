//! The storage conformance suite on PostgreSQL: each test gets its own schema, dropped
//! afterwards, so tests run in parallel. The server is `OXEHR_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`). When it is unreachable the tests
//! fail if `CI` is set, and otherwise say so and pass without running.

use std::sync::atomic::{AtomicUsize, Ordering};

use oxehr_store::{JobOutput, ReadTx, Store, StoreError, WriteJob};
use oxehr_store_postgres::{PostgresConfig, PostgresStore};

mod put_many;

fn url() -> String {
    std::env::var("OXEHR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A store in its own schema; dropping it drops the schema.
#[derive(Debug)]
struct Fixture {
    store: Option<PostgresStore>,
    schema: String,
}

impl Fixture {
    fn inner(&self) -> &PostgresStore {
        self.store.as_ref().expect("store open")
    }
}

impl Store for Fixture {
    fn read(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
        self.inner().read()
    }
    fn write(&self, job: WriteJob) -> Result<JobOutput, StoreError> {
        self.inner().write(job)
    }
    fn backend_name(&self) -> &'static str {
        self.inner().backend_name()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.store.take());
        if let Ok(mut c) = postgres::Client::connect(&url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

fn open(schema: &str) -> Result<PostgresStore, StoreError> {
    let config = PostgresConfig {
        schema: Some(schema.to_owned()),
        pool_size: 8,
    };
    PostgresStore::connect(&url(), config)
}

fn fresh() -> Option<Fixture> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let schema = format!(
        "oxehr_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    if let Err(e) = postgres::Client::connect(&url(), postgres::NoTls) {
        if std::env::var_os("CI").is_some() {
            panic!("PostgreSQL at OXEHR_TEST_POSTGRES_URL is unreachable in CI: {e}");
        }
        eprintln!("skipping: PostgreSQL unreachable ({e}); set OXEHR_TEST_POSTGRES_URL");
        return None;
    }
    let store = open(&schema).expect("connect and migrate");
    Some(Fixture {
        store: Some(store),
        schema,
    })
}

fn reopen(mut f: Fixture) -> Fixture {
    drop(f.store.take());
    f.store = Some(open(&f.schema).expect("reconnect"));
    f
}

oxehr_store::conformance_tests!(fresh, reopen = reopen);
