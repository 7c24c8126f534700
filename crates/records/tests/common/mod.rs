//! A fresh store on either backend for one test; dropping it removes the store (on
//! PostgreSQL, its schema). Without PostgreSQL the test skips, except under CI.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use oxehr_store::Store;

pub fn postgres_url() -> String {
    std::env::var("OXEHR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

pub struct TestStore {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(schema) = self.schema.take() {
            if let Ok(mut c) = ::postgres::Client::connect(&postgres_url(), ::postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            }
        }
    }
}

/// A new SQLite file in a temporary directory, or a new schema named after `prefix` in
/// the test PostgreSQL database (`None`: unreachable outside CI).
pub fn open_store(postgres: bool, prefix: &str) -> Option<TestStore> {
    if !postgres {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            oxehr_store_sqlite::SqliteStore::open(&dir.path().join("t.sqlite"), Default::default())
                .expect("open sqlite");
        return Some(TestStore {
            store: Arc::new(store),
            _dir: Some(dir),
            schema: None,
        });
    }
    static N: AtomicUsize = AtomicUsize::new(0);
    let schema = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let config = oxehr_store_postgres::PostgresConfig {
        schema: Some(schema.clone()),
        ..Default::default()
    };
    match oxehr_store_postgres::PostgresStore::connect(&postgres_url(), config) {
        Ok(store) => Some(TestStore {
            store: Arc::new(store),
            _dir: None,
            schema: Some(schema),
        }),
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is unreachable in CI: {e}");
            }
            eprintln!("skipping: PostgreSQL unreachable ({e}); set OXEHR_TEST_POSTGRES_URL");
            None
        }
    }
}
