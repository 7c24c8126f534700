//! `put_many` batches index rows across versions; these cases check that batching never
//! changes what is stored compared with `put` in order.

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::{IndexEntry, IndexValue, ParamKey};
use oxehr_store::{Method, NewVersion, Store, StoreError, StoredResource};
use oxehr_store_sqlite::{SqliteConfig, SqliteStore};

fn token(code: &str) -> IndexEntry {
    IndexEntry {
        param: ParamKey::of("Observation", "code"),
        value: IndexValue::Token {
            system: Some("http://loinc.org".into()),
            code: Some(code.into()),
            text: None,
        },
    }
}

fn obs(id: &str, version: u64, codes: &[String]) -> NewVersion {
    NewVersion {
        resource: StoredResource {
            rtype: ResourceType::parse("Observation").expect("type"),
            id: ResourceId::parse(id).expect("id"),
            version: VersionId(version),
            last_updated: 1_700_000_000_000_000 + version as i64,
            method: if version == 1 {
                Method::Create
            } else {
                Method::Update
            },
            body: Some(format!(r#"{{"resourceType":"Observation","id":"{id}"}}"#)),
        },
        index: codes.iter().map(|c| token(c)).collect(),
        compartments: Vec::new(),
    }
}

fn codes(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn write(store: &SqliteStore, versions: Vec<NewVersion>) -> Result<(), StoreError> {
    store
        .write(Box::new(move |tx| {
            tx.put_many(&versions)?;
            Ok(Box::new(()))
        }))
        .map(|_| ())
}

fn index_codes(store: &SqliteStore, id: &str) -> Vec<String> {
    let mut r = store.read().expect("read");
    let rtype = ResourceType::parse("Observation").expect("type");
    let entries = r
        .index_entries(&rtype, &ResourceId::parse(id).expect("id"))
        .expect("index");
    entries
        .into_iter()
        .map(|e| match e.value {
            IndexValue::Token { code, .. } => code.unwrap_or_default(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn put_many_stores_rows_of_many_versions_in_chunks_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("db"), SqliteConfig::default()).expect("open");
    // 0..=150 rows: every chunk size and remainder, across 40 resources in one call.
    let versions: Vec<NewVersion> = (0..40)
        .map(|i| obs(&format!("o{i}"), 1, &codes(&format!("c{i}"), (i * 7) % 151)))
        .collect();
    write(&store, versions).expect("write");
    for i in 0..40 {
        assert_eq!(
            index_codes(&store, &format!("o{i}")),
            codes(&format!("c{i}"), (i * 7) % 151),
            "rows of o{i}"
        );
    }
}

#[test]
fn put_many_with_two_versions_of_one_resource_keeps_the_last_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("db"), SqliteConfig::default()).expect("open");
    write(
        &store,
        vec![
            obs("a", 1, &codes("first", 70)),
            obs("b", 1, &codes("b", 3)),
            obs("a", 2, &codes("second", 5)),
        ],
    )
    .expect("write");
    assert_eq!(index_codes(&store, "a"), codes("second", 5));
    assert_eq!(index_codes(&store, "b"), codes("b", 3));
}

#[test]
fn put_many_creating_an_existing_resource_conflicts_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("db"), SqliteConfig::default()).expect("open");
    write(&store, vec![obs("a", 1, &codes("a", 2))]).expect("first");
    let again = write(
        &store,
        vec![obs("b", 1, &codes("b", 2)), obs("a", 1, &codes("x", 2))],
    );
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    assert_eq!(index_codes(&store, "a"), codes("a", 2));
    assert!(index_codes(&store, "b").is_empty(), "b rolled back");
}
