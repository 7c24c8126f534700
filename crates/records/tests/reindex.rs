//! `Records::reindex` on both backends: after the index, compartment and care rows are
//! lost (as if an upgrade had changed what they hold), a reindex writes back exactly
//! what the writes had stored, searches find the resources again, deleted resources stay
//! without rows, and no version is added. `Tx::reindex` refuses a version that is not
//! the current one.

mod common;

use std::collections::BTreeMap;

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_records::{query, Caller, Records, RecordsConfig};
use oxehr_store::{NewVersion, Store, StoreError};
use serde_json::json;

struct Fixture {
    records: Records,
    _store: common::TestStore,
}

fn open(postgres: bool) -> Option<Fixture> {
    let t = common::open_store(postgres, "reindex")?;
    Some(Fixture {
        records: Records::new(t.store.clone(), RecordsConfig::default()),
        _store: t,
    })
}

/// Index entries and compartments of every current resource, and the care rows.
type Snapshot = (
    BTreeMap<String, (Vec<oxehr_search::IndexEntry>, Vec<ResourceId>)>,
    Vec<(String, String)>,
);

fn snapshot(store: &dyn Store, keys: &[(&str, &str)]) -> Snapshot {
    let mut r = store.read().expect("read");
    let mut out = BTreeMap::new();
    for (t, id) in keys {
        let (rtype, rid) = (
            ResourceType::parse(t).expect("type"),
            ResourceId::parse(id).expect("id"),
        );
        let entries = r.index_entries(&rtype, &rid).expect("entries");
        let compartments = r.compartments(&rtype, &rid).expect("compartments");
        out.insert(format!("{t}/{id}"), (entries, compartments));
    }
    let mut care = oxehr_store::care::rows(&mut *r).expect("care");
    care.sort();
    (out, care)
}

fn count(records: &Records, rtype: &str, pairs: &[(&str, &str)]) -> u64 {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    let q = query::parse(&[rtype.to_owned()], &pairs, false, None).expect("query");
    records
        .search(&Caller::server(), &q, 0)
        .expect("search")
        .total
        .expect("total")
}

fn reindex_restores_what_the_writes_stored(postgres: bool) {
    let Some(f) = open(postgres) else { return };
    let server = Caller::server();
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Organization", "id": "clinic", "name": "Clinic"},
         "request": {"method": "PUT", "url": "Organization/clinic"}},
        {"resource": {"resourceType": "Organization", "id": "lab", "name": "Lab"},
         "request": {"method": "PUT", "url": "Organization/lab"}},
        {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-03-04",
            "name": [{"family": "Ng", "given": ["Ada"]}],
            "managingOrganization": {"reference": "Organization/clinic"}},
         "request": {"method": "PUT", "url": "Patient/p1"}},
        {"resource": {"resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-01-02",
            "valueQuantity": {"value": 71, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}},
         "request": {"method": "PUT", "url": "Observation/o1"}},
        {"resource": {"resourceType": "Observation", "id": "o2", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/p1"}},
         "request": {"method": "PUT", "url": "Observation/o2"}},
        {"resource": {"resourceType": "Consent", "id": "c1", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/p1"},
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {"type": "permit", "actor": [{
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                "reference": {"reference": "Organization/lab"}}]}},
         "request": {"method": "PUT", "url": "Consent/c1"}},
    ]});
    f.records.bundle(&server, tx).expect("transaction");
    let delete = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": "Observation/o2"}},
    ]});
    f.records.bundle(&server, delete).expect("delete");
    let live = [
        ("Organization", "clinic"),
        ("Organization", "lab"),
        ("Patient", "p1"),
        ("Observation", "o1"),
        ("Consent", "c1"),
    ];
    let mut keys = live.to_vec();
    keys.push(("Observation", "o2"));
    let store = f.records.store().clone();
    let before = snapshot(store.as_ref(), &keys);
    assert!(
        before.1.contains(&("lab".to_owned(), "p1".to_owned())),
        "the Consent's permission is a care row: {:?}",
        before.1
    );
    assert_eq!(count(&f.records, "Observation", &[("patient", "p1")]), 1);

    // Lose every derived row, as if the extraction had changed.
    store
        .write(Box::new(|tx| {
            for t in [
                "idx_string",
                "idx_token",
                "idx_date",
                "idx_number",
                "idx_quantity",
                "idx_reference",
                "idx_uri",
                "idx_composite",
                "idx_text",
                "compartment",
                "care",
            ] {
                tx.execute(&format!("DELETE FROM {t}"), &[])?;
            }
            Ok(Box::new(()))
        }))
        .expect("clear");
    assert_eq!(count(&f.records, "Observation", &[("patient", "p1")]), 0);
    let lost = snapshot(store.as_ref(), &keys);
    assert!(lost.0.values().all(|(e, c)| e.is_empty() && c.is_empty()));

    let mut seen = Vec::new();
    let report = f.records.reindex(&mut |n| seen.push(n)).expect("reindex");
    assert_eq!(report.reindexed, live.len() as u64, "{report:?}");
    assert_eq!((report.failed, report.changed_meanwhile), (0, 0));
    assert_eq!(seen.last().copied(), Some(live.len() as u64));
    assert_eq!(snapshot(store.as_ref(), &keys), before);
    assert_eq!(count(&f.records, "Observation", &[("patient", "p1")]), 1);
    assert_eq!(count(&f.records, "Observation", &[("code", "8867-4")]), 1);

    // No version was added.
    let mut r = store.read().expect("read");
    let o1 = r
        .current(
            &ResourceType::parse("Observation").expect("type"),
            &ResourceId::parse("o1").expect("id"),
        )
        .expect("read")
        .expect("o1");
    assert_eq!(o1.version, VersionId(1));
    drop(r);

    // Only the current version may be reindexed.
    let stale = NewVersion {
        resource: at_version(o1.clone(), 2),
        index: Vec::new(),
        compartments: Vec::new(),
    };
    let refused = store.write(Box::new(move |tx| {
        tx.reindex(&stale)?;
        Ok(Box::new(()))
    }));
    assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
}

fn at_version(mut r: oxehr_store::StoredResource, version: u64) -> oxehr_store::StoredResource {
    r.version = VersionId(version);
    r
}

#[test]
fn reindex_restores_what_the_writes_stored_sqlite() {
    reindex_restores_what_the_writes_stored(false);
}

#[test]
fn reindex_restores_what_the_writes_stored_postgres() {
    reindex_restores_what_the_writes_stored(true);
}
