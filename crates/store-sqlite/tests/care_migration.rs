//! A database written before the care table existed (schema version 7) gets the table
//! filled from its index when it is opened by this version.

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::{IndexEntry, IndexValue, ParamKey};
use oxehr_store::{care, Method, NewVersion, Store, StoredResource};
use oxehr_store_sqlite::{SqliteConfig, SqliteStore};

fn reference(t: &str, id: &str) -> IndexValue {
    IndexValue::Reference {
        target_type: Some(t.into()),
        target_id: Some(id.into()),
        version: None,
        url: None,
        identifier_system: None,
        identifier_value: None,
    }
}

fn version(rtype: &str, id: &str, index: Vec<IndexEntry>, patient: &str) -> NewVersion {
    NewVersion {
        resource: StoredResource {
            rtype: ResourceType::parse(rtype).expect("type"),
            id: ResourceId::parse(id).expect("id"),
            version: VersionId(1),
            last_updated: 1_700_000_000_000_000,
            method: Method::Create,
            body: Some(format!(r#"{{"resourceType":"{rtype}","id":"{id}"}}"#)),
        },
        index,
        compartments: vec![ResourceId::parse(patient).expect("patient id")],
    }
}

fn open(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(path, SqliteConfig::default()).expect("open")
}

#[test]
fn the_care_table_is_filled_when_an_older_database_is_opened() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("oxehr.db");
    let store = open(&path);
    let versions = vec![
        version(
            "Patient",
            "p1",
            vec![IndexEntry {
                param: ParamKey::of("Patient", "organization"),
                value: reference("Organization", "org-a"),
            }],
            "p1",
        ),
        version(
            "Encounter",
            "e1",
            vec![IndexEntry {
                param: ParamKey::of("Encounter", "service-provider"),
                value: reference("Organization", "org-b"),
            }],
            "p2",
        ),
    ];
    store
        .write(Box::new(move |tx| {
            // As a version-7 server stored them: no care rows.
            tx.put_many(&versions)?;
            Ok(Box::new(()))
        }))
        .expect("write");
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    // Back to version 7: the tables of later migrations go too (the index-only
    // migrations create their indexes if missing).
    conn.execute_batch(
        "DROP TABLE care; DROP TABLE inbound_message; DROP TABLE interface; \
         DROP TABLE duplicate_candidate; DROP TABLE clinical_state; DROP TABLE clinical_finding; \
         DROP TABLE bulk_file; DROP TABLE bulk_job; \
         DELETE FROM schema_version WHERE version >= 8",
    )
    .expect("back to version 7");
    drop(conn);

    let store = open(&path);
    let mut r = store.read().expect("read");
    let rows = care::rows(&mut *r).expect("rows");
    assert_eq!(
        rows,
        vec![
            ("org-a".to_owned(), "p1".to_owned()),
            ("org-b".to_owned(), "p2".to_owned())
        ]
    );
}
