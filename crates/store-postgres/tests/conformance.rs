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

/// The random_page_cost a read on one of the store's pooled connections sees.
fn page_cost(tx: &mut dyn ReadTx) -> String {
    use oxehr_store::search::SqlValue;
    let rows = tx
        .query("SELECT current_setting('random_page_cost')", &[])
        .expect("query");
    match &rows[..] {
        [row] => match &row[..] {
            [SqlValue::Text(v)] => v.clone(),
            other => panic!("unexpected row {other:?}"),
        },
        other => panic!("unexpected rows {other:?}"),
    }
}

/// Searches probe index matches by key; PostgreSQL's default cost of a random page
/// (4, for spinning disks) makes it scan whole tables instead. Every pooled connection
/// (not only the first) uses 1.1 when the server leaves the default, and a value given
/// in the URL wins.
#[test]
fn connections_plan_for_cached_data_unless_configured() {
    let Some(f) = fresh() else { return };
    let mut server = postgres::Client::connect(&url(), postgres::NoTls).expect("connect");
    let source: String = server
        .query_one(
            "SELECT source FROM pg_settings WHERE name = 'random_page_cost'",
            &[],
        )
        .expect("pg_settings")
        .get(0);
    let expected = if source == "default" { "1.1" } else { "" };
    // Several reads at once, each holding its connection, so the pool opens more than
    // its first one.
    let store = f.inner();
    let mut held: Vec<_> = (0..4).map(|_| store.read().expect("read")).collect();
    for tx in &mut held {
        let cost = page_cost(tx.as_mut());
        if !expected.is_empty() {
            assert_eq!(cost, expected);
        }
    }
    drop(held);

    let sep = if url().contains('?') { '&' } else { '?' };
    let configured = format!("{}{sep}options=-c%20random_page_cost%3D2", url());
    let other = PostgresStore::connect(
        &configured,
        PostgresConfig {
            schema: Some(f.schema.clone()),
            pool_size: 2,
        },
    )
    .expect("connect with options");
    assert_eq!(page_cost(other.read().expect("read").as_mut()), "2");
}
