//! The storage conformance suite on SQLite: each test opens its own database file in a
//! fresh temporary directory.

use oxehr_store::{JobOutput, ReadTx, Store, StoreError, WriteJob};
use oxehr_store_sqlite::{SqliteConfig, SqliteStore};

/// A store and the directory that holds its file (removed when dropped).
#[derive(Debug)]
struct Fixture {
    // Declared first: the store closes before its directory goes.
    store: Option<SqliteStore>,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn inner(&self) -> &SqliteStore {
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

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    let config = SqliteConfig {
        readers: 2,
        ..SqliteConfig::default()
    };
    SqliteStore::open(&dir.path().join("oxehr.db"), config).expect("open sqlite store")
}

fn fresh() -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("temp dir");
    Some(Fixture {
        store: Some(open(&dir)),
        dir,
    })
}

fn reopen(mut f: Fixture) -> Fixture {
    drop(f.store.take());
    f.store = Some(open(&f.dir));
    f
}

oxehr_store::conformance_tests!(fresh, reopen = reopen);
