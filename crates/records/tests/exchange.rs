//! Inbound messages through `Records::ingest`, `hold`, `reprocess` and `dismiss`, on
//! both backends: an interface writes as its organization (the access rule of its
//! staff), a message's patient is found by identifier among all patients, its resources
//! get a Provenance naming the organization and the message, and the message's row
//! makes a resend store nothing new.

mod common;

use oxehr_fhir::{ResourceId, ResourceType};
use oxehr_records::exchange::{Inbound, Ingested, PatientUpdate, MESSAGE_SYSTEM};
use oxehr_records::{query, Caller, Category, Records, RecordsConfig};
use oxehr_store::inbound::{InboundState, InterfaceRow};
use serde_json::{json, Value};

struct Fixture {
    records: Records,
    _store: common::TestStore,
}

fn open(postgres: bool) -> Option<Fixture> {
    let t = common::open_store(postgres, "exchange")?;
    let store = t.store.clone();
    let records = Records::new(store, RecordsConfig::default());
    let server = Caller::server();
    for (id, name) in [
        ("hospital", "General Hospital"),
        ("practice", "Family Practice"),
    ] {
        put(
            &records,
            &server,
            "Organization",
            id,
            json!({"resourceType": "Organization", "id": id, "name": name}),
        );
    }
    // A patient the practice registered: the hospital has no care relationship with her.
    put(
        &records,
        &server,
        "Patient",
        "known",
        json!({
            "resourceType": "Patient", "id": "known",
            "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}],
            "name": [{"family": "Registered", "given": ["Pat"]}],
            "managingOrganization": {"reference": "Organization/practice"},
        }),
    );
    Some(Fixture { records, _store: t })
}

fn put(records: &Records, who: &Caller, t: &str, id: &str, body: Value) {
    records
        .update(
            who,
            &ResourceType::parse(t).expect("type"),
            &ResourceId::parse(id).expect("id"),
            body,
            None,
        )
        .expect("put");
}

fn interface(records: &Records) -> (InterfaceRow, Caller) {
    let row = InterfaceRow {
        id: "adt".into(),
        facility: "GH".into(),
        application: None,
        organization: "hospital".into(),
        from_cidr: None,
        active: true,
        created: 0,
    };
    records
        .add_interface(&Caller::server(), &row)
        .expect("add interface");
    let who = records.interface_caller(&row, None);
    (row, who)
}

fn inbound(control_id: &str, message: &str) -> Inbound {
    Inbound {
        interface: "adt".into(),
        application: "ADT".into(),
        facility: "GH".into(),
        control_id: control_id.into(),
        kind: "ADT^A01".into(),
        title: "a registration message (HL7 v2 ADT^A01)".into(),
        message: message.into(),
    }
}

/// A mapped message: the patient by identifier, and optionally the hospital's visit.
fn bundle(mrn: &str, family: &str, visit: bool) -> Value {
    let mut entries = vec![json!({
        "fullUrl": "urn:uuid:0b7a8c66-0d8e-4a43-9a0b-000000000001",
        "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:1.2.3", "value": mrn}],
            "name": [{"family": family}],
        },
        "request": {"method": "PUT", "url": format!("Patient?identifier=urn:oid:1.2.3|{mrn}")},
    })];
    if visit {
        entries.push(json!({
            "fullUrl": "urn:uuid:0b7a8c66-0d8e-4a43-9a0b-000000000002",
            "resource": {
                "resourceType": "Encounter", "status": "in-progress",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "subject": {"reference": "urn:uuid:0b7a8c66-0d8e-4a43-9a0b-000000000001"},
                "serviceProvider": {"reference": "Organization/hospital"},
            },
            "request": {"method": "POST", "url": "Encounter"},
        }));
    }
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

fn search(records: &Records, t: &str, params: &[(&str, &str)]) -> Vec<Value> {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let q = query::parse(&[t.to_string()], &params, false, None).expect("query");
    records
        .search(&Caller::server(), &q, 100)
        .expect("search")
        .matches
        .into_iter()
        .map(|m| serde_json::from_str(m.body.as_deref().unwrap_or("{}")).expect("json"))
        .collect()
}

fn ingest_rules(postgres: bool) {
    let Some(f) = open(postgres) else { return };
    let r = &f.records;
    let (_, who) = interface(r);

    // A new patient with the hospital's visit: both stored, with the message's source.
    let m = inbound("1", "MSH|one");
    let got = r
        .ingest(
            &who,
            &m,
            bundle("MRN-9", "New", true),
            PatientUpdate::Replace,
            "ACK-1",
        )
        .expect("ingest");
    assert!(matches!(got, Ingested::Stored(_)));
    let new = search(r, "Patient", &[("identifier", "urn:oid:1.2.3|MRN-9")]);
    assert_eq!(new.len(), 1);
    let subject = format!("Patient/{}", new[0]["id"].as_str().expect("id"));
    let prov = search(r, "Provenance", &[("target", &subject)]);
    assert_eq!(prov.len(), 1);
    assert_eq!(
        prov[0]["agent"][0]["who"]["reference"],
        "Organization/hospital"
    );
    assert_eq!(
        prov[0]["entity"][0]["what"]["identifier"]["system"],
        MESSAGE_SYSTEM
    );
    assert_eq!(
        prov[0]["entity"][0]["what"]["identifier"]["value"],
        "ADT|GH|1"
    );
    assert_eq!(
        prov[0]["target"].as_array().map(Vec::len),
        Some(2),
        "the patient and the visit"
    );

    // Sent again: the stored acknowledgement, nothing new.
    match r.ingest(
        &who,
        &m,
        bundle("MRN-9", "New", true),
        PatientUpdate::Replace,
        "ACK-other",
    ) {
        Ok(Ingested::Resent { ack }) => assert_eq!(ack, "ACK-1"),
        other => panic!("a resend: {other:?}"),
    }
    assert_eq!(search(r, "Encounter", &[("patient", &subject)]).len(), 1);
    // The same control id on another message.
    assert!(matches!(
        r.ingest(
            &who,
            &inbound("1", "MSH|two"),
            bundle("MRN-9", "New", true),
            PatientUpdate::Replace,
            "x"
        ),
        Ok(Ingested::Reused)
    ));

    // The practice's patient, named by her identifier without a visit: the hospital has
    // no care relationship with her, so the record refuses; nothing is stored.
    let refused = r
        .ingest(
            &who,
            &inbound("2", "MSH|2"),
            bundle("MRN-1", "Changed", false),
            PatientUpdate::Replace,
            "ACK-2",
        )
        .expect_err("no care relationship");
    assert_eq!(refused.category(), Category::Forbidden);
    let known = search(r, "Patient", &[("_id", "known")]);
    assert_eq!(known[0]["name"][0]["family"], "Registered");
    assert!(r
        .inbound_seen(&inbound("2", "MSH|2"))
        .expect("seen")
        .is_none());

    // Kept in triage with its reason, then processed again once the hospital admits her
    // (the same message now with a visit): her record is updated, not duplicated, and
    // keeps what the message did not say.
    assert!(matches!(
        r.hold(&inbound("2", "MSH|2"), "refused", "ACK-AE")
            .expect("hold"),
        Ingested::Held
    ));
    let held = r.triage(&Caller::server(), 10).expect("triage");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].state, InboundState::Triage);
    assert!(
        r.triage(&who, 10).is_err(),
        "the queue is for administrators"
    );
    r.reprocess(
        &who,
        &held[0].id,
        bundle("MRN-1", "Changed", true),
        PatientUpdate::Replace,
        "t",
        "ACK-AA",
    )
    .expect("reprocess");
    let known = search(r, "Patient", &[("identifier", "urn:oid:1.2.3|MRN-1")]);
    assert_eq!(known.len(), 1, "found by identifier, not created again");
    assert_eq!(known[0]["id"], "known");
    assert_eq!(known[0]["name"][0]["family"], "Changed");
    assert_eq!(
        known[0]["managingOrganization"]["reference"],
        "Organization/practice"
    );
    assert!(r.triage(&Caller::server(), 10).expect("triage").is_empty());
    match r.inbound_seen(&inbound("2", "MSH|2")).expect("seen") {
        Some(Ingested::Resent { ack }) => assert_eq!(ack, "ACK-AA"),
        other => panic!("after reprocessing: {other:?}"),
    }
    // A result for her (no registration): her Patient is left as it is.
    let before = search(r, "Patient", &[("_id", "known")])[0]["meta"]["versionId"].clone();
    let result = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b7a8c66-0d8e-4a43-9a0b-000000000003",
         "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}], "name": [{"family": "Other"}]},
         "request": {"method": "PUT", "url": "Patient?identifier=urn:oid:1.2.3|MRN-1"}},
        {"fullUrl": "urn:uuid:0b7a8c66-0d8e-4a43-9a0b-000000000004",
         "resource": {"resourceType": "Observation", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                      "subject": {"reference": "urn:uuid:0b7a8c66-0d8e-4a43-9a0b-000000000003"},
                      "valueQuantity": {"value": 5.4, "unit": "mmol/L"}},
         "request": {"method": "POST", "url": "Observation"}}]});
    r.ingest(
        &who,
        &inbound("3", "MSH|3"),
        result,
        PatientUpdate::Keep,
        "ACK-3",
    )
    .expect("a result for a patient in the hospital's care");
    let after = search(r, "Patient", &[("_id", "known")]);
    assert_eq!(after[0]["meta"]["versionId"], before);
    assert_eq!(after[0]["name"][0]["family"], "Changed");
    assert_eq!(
        search(r, "Observation", &[("patient", "Patient/known")]).len(),
        1
    );

    // Dismissed: out of triage, kept as dismissed.
    r.hold(&inbound("4", "MSH|4"), "not mapped", "ACK-AR")
        .expect("hold");
    let id = r.triage(&Caller::server(), 10).expect("triage")[0]
        .id
        .clone();
    assert!(r.dismiss(&who, &id).is_err(), "only administrators dismiss");
    r.dismiss(&Caller::server(), &id).expect("dismiss");
    assert!(r.triage(&Caller::server(), 10).expect("triage").is_empty());
    assert_eq!(
        r.inbound_message(&id).expect("read").map(|m| m.state),
        Some(InboundState::Dismissed)
    );
}

#[test]
fn ingest_rules_sqlite() {
    ingest_rules(false);
}

#[test]
fn ingest_rules_postgres() {
    ingest_rules(true);
}

#[test]
fn an_interface_needs_an_existing_organization_and_an_administrator() {
    let Some(f) = open(false) else { return };
    let r = &f.records;
    let mut row = InterfaceRow {
        id: "lab".into(),
        facility: "LAB".into(),
        application: None,
        organization: "nowhere".into(),
        from_cidr: None,
        active: true,
        created: 0,
    };
    assert_eq!(
        r.add_interface(&Caller::server(), &row)
            .expect_err("no such organization")
            .category(),
        Category::NotFound
    );
    row.organization = "hospital".into();
    row.from_cidr = Some("10.0.0.0/99".into());
    assert_eq!(
        r.add_interface(&Caller::server(), &row)
            .expect_err("bad network")
            .category(),
        Category::Invalid
    );
    row.from_cidr = None;
    let staff = r.interface_caller(&row, None);
    assert_eq!(
        r.add_interface(&staff, &row)
            .expect_err("not an administrator")
            .category(),
        Category::Forbidden
    );
    r.add_interface(&Caller::server(), &row).expect("add");
    assert_eq!(
        r.add_interface(&Caller::server(), &row)
            .expect_err("twice")
            .category(),
        Category::Invalid
    );
    assert_eq!(r.interfaces(&Caller::server()).expect("list"), vec![row]);
}
