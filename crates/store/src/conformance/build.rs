//! Row builders and read helpers shared by the conformance checks: versions, index
//! entries and compartments are built by hand, since the suite tests storage, not
//! extraction.

use std::collections::BTreeSet;

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::{IndexEntry, IndexValue, ParamKey};

use crate::{JobOutput, Method, NewVersion, Store, StoreError, StoredResource};

pub(super) const T0: i64 = 1_700_000_000_000_000;

pub(super) fn rt(s: &str) -> ResourceType {
    ResourceType::parse(s).expect("a core resource type")
}

pub(super) fn id(s: &str) -> ResourceId {
    ResourceId::parse(s).expect("a valid id")
}

pub(super) fn param(rtype: &str, code: &str) -> ParamKey {
    ParamKey::of(rtype, code)
}

/// A version of `rtype/rid` at `T0 + at` microseconds, with a small JSON body.
pub(super) fn version(
    rtype: &str,
    rid: &str,
    v: u64,
    at: i64,
    index: Vec<IndexEntry>,
) -> NewVersion {
    let method = if v == 1 {
        Method::Create
    } else {
        Method::Update
    };
    NewVersion {
        resource: StoredResource {
            rtype: rt(rtype),
            id: id(rid),
            version: VersionId(v),
            last_updated: T0 + at,
            method,
            body: Some(format!(
                r#"{{"resourceType":"{rtype}","id":"{rid}","meta":{{"versionId":"{v}","lastUpdated":"t+{at}"}}}}"#
            )),
        },
        index,
        compartments: Vec::new(),
    }
}

pub(super) fn deletion(rtype: &str, rid: &str, v: u64, at: i64) -> NewVersion {
    let mut nv = version(rtype, rid, v, at, Vec::new());
    nv.resource.method = Method::Delete;
    nv.resource.body = None;
    nv
}

pub(super) fn entry(rtype: &str, code: &str, value: IndexValue) -> IndexEntry {
    IndexEntry {
        param: param(rtype, code),
        value,
    }
}

pub(super) fn token(system: Option<&str>, code: &str) -> IndexValue {
    IndexValue::Token {
        system: system.map(str::to_owned),
        code: Some(code.to_owned()),
        text: None,
    }
}

pub(super) fn string(s: &str) -> IndexValue {
    IndexValue::String {
        normalized: s.to_lowercase(),
        exact: s.to_owned(),
    }
}

pub(super) fn reference(target_type: &str, target_id: &str) -> IndexValue {
    IndexValue::Reference {
        target_type: Some(target_type.to_owned()),
        target_id: Some(target_id.to_owned()),
        version: None,
        url: None,
        identifier_system: None,
        identifier_value: None,
    }
}

pub(super) fn quantity(value: f64, code: &str) -> IndexValue {
    IndexValue::Quantity {
        value,
        low: value - 0.5,
        high: value + 0.5,
        system: Some("http://unitsofmeasure.org".into()),
        code: Some(code.into()),
        unit: Some(code.into()),
        canonical_value: None,
        canonical_code: None,
    }
}

/// Stores all `versions` in one write job.
pub(super) fn put_all(
    store: &dyn Store,
    versions: Vec<NewVersion>,
) -> Result<JobOutput, StoreError> {
    store.write(Box::new(move |tx| {
        for v in &versions {
            tx.put(v)?;
        }
        Ok(Box::new(()))
    }))
}

pub(super) fn write_ok(store: &dyn Store, versions: Vec<NewVersion>) {
    if let Err(e) = put_all(store, versions) {
        panic!("write failed: {e}");
    }
}

pub(super) fn current(store: &dyn Store, rtype: &str, rid: &str) -> Option<StoredResource> {
    let mut r = store.read().expect("read snapshot");
    r.current(&rt(rtype), &id(rid)).expect("current")
}

pub(super) fn at_version(
    store: &dyn Store,
    rtype: &str,
    rid: &str,
    v: u64,
) -> Option<StoredResource> {
    let mut r = store.read().expect("read snapshot");
    r.version(&rt(rtype), &id(rid), VersionId(v))
        .expect("version")
}

pub(super) fn sorted_entries(mut v: Vec<IndexEntry>) -> Vec<String> {
    let mut s: Vec<String> = v.drain(..).map(|e| format!("{e:?}")).collect();
    s.sort();
    s
}

pub(super) fn index_of(store: &dyn Store, rtype: &str, rid: &str) -> Vec<String> {
    let mut r = store.read().expect("read snapshot");
    sorted_entries(
        r.index_entries(&rt(rtype), &id(rid))
            .expect("index_entries"),
    )
}

pub(super) fn compartments_of(store: &dyn Store, rtype: &str, rid: &str) -> BTreeSet<String> {
    let mut r = store.read().expect("read snapshot");
    r.compartments(&rt(rtype), &id(rid))
        .expect("compartments")
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect()
}

pub(super) fn keys(rs: &[StoredResource]) -> Vec<String> {
    rs.iter()
        .map(|r| format!("{}/{}/{}", r.rtype, r.id, r.version))
        .collect()
}
