//! Reference parameters narrowed from another to one target type, over HTTP, on both
//! backends. `Observation.patient` is `Observation.subject.where(resolve() is Patient)`
//! (and `Encounter.patient`, `Provenance.patient` from `target`, 47 such in R4): the
//! index keeps no rows of its own for them, and a search by one reads the other's rows
//! that refer to that type. Every search below is checked against what the test works
//! out from the resources' JSON by the spec's rule — a reference is the patient's when
//! its literal reference names a `Patient` (`resolve() is Patient`); identifier-only
//! references resolve to nothing — through values, `:missing`, `:identifier`, absolute
//! URLs, chains, `_has`, `_include`, `_revinclude`, `_sort` and the Patient
//! compartment; then that no index row was written under a narrowed key.

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use serde_json::{json, Value};

fn observation(id: &str, subject: Option<Value>) -> Value {
    let mut o = json!({
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    });
    if let Some(s) = subject {
        o["subject"] = s;
    }
    o
}

fn resources() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Narrowed"}]}),
        json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Other"}]}),
        json!({"resourceType": "Group", "id": "g1", "type": "person", "actual": true}),
        json!({"resourceType": "Organization", "id": "org1", "name": "Lab"}),
        observation("o-p1", Some(json!({"reference": "Patient/p1"}))),
        observation("o-p2", Some(json!({"reference": "Patient/p2"}))),
        observation("o-g1", Some(json!({"reference": "Group/g1"}))),
        observation(
            "o-ident",
            Some(json!({"identifier": {"system": "urn:sys", "value": "v1"}})),
        ),
        observation(
            "o-p1-ident",
            Some(
                json!({"reference": "Patient/p1", "identifier": {"system": "urn:sys", "value": "v2"}}),
            ),
        ),
        observation(
            "o-abs",
            Some(json!({"reference": "http://other.example/fhir/Patient/p9"})),
        ),
        observation(
            "o-abs-group",
            Some(json!({"reference": "http://other.example/fhir/Group/g9"})),
        ),
        observation("o-none", None),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/p1"}}),
        json!({"resourceType": "Encounter", "id": "e-g1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Group/g1"}}),
        json!({"resourceType": "Provenance", "id": "pv1", "recorded": "2024-01-02T03:04:05Z",
               "target": [{"reference": "Observation/o-p1"}, {"reference": "Patient/p1"}],
               "agent": [{"who": {"reference": "Organization/org1"}}]}),
    ]
}

/// The spec's `resolve() is Patient` on a Reference: its literal reference names a
/// Patient (relative or absolute), by the test's own reading of the string.
fn names_a_patient(reference: &Value) -> bool {
    let Some(r) = reference["reference"].as_str() else {
        return false;
    };
    let segs: Vec<&str> = r.split('/').collect();
    segs.len() >= 2 && segs[segs.len() - 2] == "Patient"
}

fn observations(all: &[Value], keep: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    all.iter()
        .filter(|r| r["resourceType"] == "Observation" && keep(r))
        .map(common::key_of)
        .collect()
}

/// The matches and the included resources of one search, every page.
async fn search(s: &TestServer, path: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut matched, mut included) = (BTreeSet::new(), BTreeSet::new());
    for e in common::all_entries(s, path).await {
        let key = common::key_of(&e["resource"]);
        if e["search"]["mode"] == "include" {
            included.insert(key);
        } else {
            matched.insert(key);
        }
    }
    (matched, included)
}

async fn found(s: &TestServer, path: &str) -> BTreeSet<String> {
    search(s, path).await.0
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

async fn narrowed_parameters_read_the_wider_ones_rows_of_their_type(s: &TestServer) {
    let all = resources();
    for r in &all {
        s.put_resource(r).await;
    }
    let of_patient = |id: &'static str| {
        move |o: &Value| {
            names_a_patient(&o["subject"])
                && o["subject"]["reference"].as_str() == Some(&format!("Patient/{id}"))
        }
    };
    let p1 = observations(&all, of_patient("p1"));
    assert_eq!(p1.len(), 2);

    // Values: by id, by type/id, with a :Type modifier; a Group is never a patient.
    for q in ["patient=p1", "patient=Patient/p1", "patient:Patient=p1"] {
        assert_eq!(found(s, &format!("Observation?{q}")).await, p1, "{q}");
    }
    let g1 = observations(&all, |o| o["subject"]["reference"] == "Group/g1");
    assert_eq!(found(s, "Observation?subject=Group/g1").await, g1);
    assert!(!g1.is_empty());
    for q in ["patient=g1", "patient=Group/g1", "patient:Group=g1"] {
        assert!(
            found(s, &format!("Observation?{q}")).await.is_empty(),
            "{q}"
        );
    }

    // :missing: an Observation whose subject is a Group, an identifier only, or nothing
    // has no patient.
    let with_patient = observations(&all, |o| names_a_patient(&o["subject"]));
    let every = observations(&all, |_| true);
    assert_eq!(
        found(s, "Observation?patient:missing=false").await,
        with_patient
    );
    assert_eq!(
        found(s, "Observation?patient:missing=true").await,
        &every - &with_patient
    );
    assert_eq!(
        found(s, "Observation?subject:missing=true").await,
        observations(&all, |o| o["subject"].is_null())
    );

    // :identifier: only in references that name a Patient.
    assert_eq!(
        found(s, "Observation?subject:identifier=urn:sys|v1").await,
        set(&["Observation/o-ident"])
    );
    assert!(found(s, "Observation?patient:identifier=urn:sys|v1")
        .await
        .is_empty());
    assert_eq!(
        found(s, "Observation?patient:identifier=urn:sys|v2").await,
        set(&["Observation/o-p1-ident"])
    );

    // Absolute references.
    assert_eq!(
        found(
            s,
            "Observation?patient=http://other.example/fhir/Patient/p9"
        )
        .await,
        set(&["Observation/o-abs"])
    );
    assert!(
        found(s, "Observation?patient=http://other.example/fhir/Group/g9")
            .await
            .is_empty()
    );
    assert_eq!(
        found(s, "Observation?subject=http://other.example/fhir/Group/g9").await,
        set(&["Observation/o-abs-group"])
    );

    // Chains follow Patients only.
    assert_eq!(found(s, "Observation?patient.family=Narrowed").await, p1);
    assert!(found(s, "Observation?patient._id=g1").await.is_empty());
    assert_eq!(found(s, "Observation?subject._id=g1").await, g1);

    // _has: a Group is never an Observation's patient.
    assert_eq!(
        found(s, "Patient?_has:Observation:patient:_id=o-p1").await,
        set(&["Patient/p1"])
    );
    assert!(found(s, "Group?_has:Observation:patient:_id=o-g1")
        .await
        .is_empty());
    assert_eq!(
        found(s, "Group?_has:Observation:subject:_id=o-g1").await,
        set(&["Group/g1"])
    );

    // _include and _revinclude.
    let (_, inc) = search(s, "Observation?_id=o-p1,o-g1&_include=Observation:patient").await;
    assert_eq!(inc, set(&["Patient/p1"]));
    let (_, inc) = search(s, "Observation?_id=o-p1,o-g1&_include=Observation:subject").await;
    assert_eq!(inc, set(&["Patient/p1", "Group/g1"]));
    let (_, inc) = search(
        s,
        "Observation?_id=o-p1,o-g1&_include=Observation:patient:Group",
    )
    .await;
    assert!(inc.is_empty());
    let (_, inc) = search(s, "Patient?_id=p1&_revinclude=Observation:patient").await;
    assert_eq!(inc, p1);
    let (_, inc) = search(s, "Group?_id=g1&_revinclude=Observation:patient").await;
    assert!(inc.is_empty());
    let (_, inc) = search(s, "Group?_id=g1&_revinclude=Observation:subject").await;
    assert_eq!(inc, g1);

    // _sort by the narrowed parameter.
    let (status, b, _) = s.get("Observation?_id=o-p1,o-p2&_sort=-patient").await;
    assert_eq!(status, 200, "{b}");
    let order: Vec<String> = b["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| common::key_of(&e["resource"]))
        .collect();
    assert_eq!(order, ["Observation/o-p2", "Observation/o-p1"]);

    // The Patient compartment names Encounter's and Provenance's `patient`.
    assert_eq!(
        found(s, "Patient/p1/Encounter").await,
        set(&["Encounter/e1"])
    );
    assert_eq!(
        found(s, "Encounter?patient=p1").await,
        set(&["Encounter/e1"])
    );
    assert!(found(s, "Encounter?patient=g1").await.is_empty());
    assert_eq!(
        found(s, "Patient/p1/Provenance").await,
        set(&["Provenance/pv1"])
    );
    assert_eq!(
        found(s, "Provenance?patient=p1").await,
        set(&["Provenance/pv1"])
    );
    assert_eq!(found(s, "Patient/p1/Observation").await, p1);

    // Nothing is indexed under a narrowed key.
    let narrowed = [
        ("Observation", "patient"),
        ("Encounter", "patient"),
        ("Provenance", "patient"),
    ];
    assert_eq!(
        common::index_rows(s, &["idx_reference"], &narrowed).await,
        0
    );
}

on_both_backends!(narrowed_parameters_read_the_wider_ones_rows_of_their_type);
