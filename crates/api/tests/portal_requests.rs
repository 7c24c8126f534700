//! The rules of what patients ask of their care team (`oxehr_records::requests`), on a
//! real store of each backend, called as the signed-in people the portal and the inbox
//! act for: refill requests (who may ask, who owns and answers them, what an answer
//! writes) and message threads (who they go to, who may answer, unread marks), and that
//! neither is seen outside the records it belongs to.
//!
//! The expected values come from the fixture this test writes (which organization each
//! encounter names, which prescriptions are active), not from the code under test.

mod common;

use common::{Backend, TestServer};
use oxehr_auth::{Caller, Role};
use oxehr_records::{Category, RecordsError, RefillAnswer};
use serde_json::{json, Value};

const ORG_A: &str = "org-a";
const ORG_B: &str = "org-b";
const P1: &str = "p1";
const P2: &str = "p2";

fn scopes(role: Role) -> Vec<oxehr_auth::scope::Scope> {
    let s = if role == Role::Patient {
        "patient/*.cruds"
    } else {
        "user/*.cruds"
    };
    vec![oxehr_auth::parse_scope(s).expect("scope")]
}

fn staff(role: Role, org: &str, person: &str) -> Caller {
    Caller::new(
        format!("{}-{org}", role.code()),
        role,
        Some(org.to_owned()),
        Some(format!("Practitioner/{person}")),
        None,
        &scopes(role),
    )
}

fn patient(id: &str) -> Caller {
    Caller::new(
        format!("patient-{id}"),
        Role::Patient,
        None,
        Some(format!("Patient/{id}")),
        Some(id.to_owned()),
        &scopes(Role::Patient),
    )
}

async fn put(server: &TestServer, r: Value) {
    let path = format!(
        "{}/{}",
        r["resourceType"].as_str().expect("type"),
        r["id"].as_str().expect("id")
    );
    let (status, body, _) = server.put(&path, &r).await;
    assert!(
        status == 200 || status == 201,
        "PUT {path}: {status} {body}"
    );
}

fn medication(id: &str, p: &str, status: &str, encounter: &str, text: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "status": status, "intent": "order",
        "medicationCodeableConcept": {"text": text},
        "subject": {"reference": format!("Patient/{p}")},
        "encounter": {"reference": format!("Encounter/{encounter}")},
        "requester": {"reference": "Practitioner/doc-a"},
        "authoredOn": "2024-01-05"})
}

/// Org A cares for P1 and P2 (an encounter each); org B for nobody. P1 takes two active
/// medications prescribed at A's encounter, and one stopped.
async fn fixture(backend: Backend) -> Option<TestServer> {
    let server = common::start(backend).await?;
    for org in [ORG_A, ORG_B] {
        put(
            &server,
            json!({"resourceType": "Organization", "id": org, "name": format!("Clinic {org}")}),
        )
        .await;
    }
    for doc in ["doc-a", "doc-b"] {
        put(
            &server,
            json!({"resourceType": "Practitioner", "id": doc,
            "name": [{"family": doc, "given": ["Dr"]}]}),
        )
        .await;
    }
    put(
        &server,
        json!({"resourceType": "PractitionerRole", "id": "role-doc-a", "active": true,
            "practitioner": {"reference": "Practitioner/doc-a"},
            "organization": {"reference": format!("Organization/{ORG_A}")}}),
    )
    .await;
    for p in [P1, P2] {
        put(
            &server,
            json!({"resourceType": "Patient", "id": p,
            "name": [{"family": "Test", "given": [p]}], "birthDate": "1980-01-01"}),
        )
        .await;
        put(
            &server,
            json!({"resourceType": "Encounter", "id": format!("enc-{p}"),
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{p}")},
            "serviceProvider": {"reference": format!("Organization/{ORG_A}")}}),
        )
        .await;
    }
    put(
        &server,
        medication("mr-1", P1, "active", "enc-p1", "Lisinopril 10 MG"),
    )
    .await;
    put(
        &server,
        medication("mr-2", P1, "active", "enc-p1", "Metformin 500 MG"),
    )
    .await;
    put(
        &server,
        medication("mr-old", P1, "stopped", "enc-p1", "Amoxicillin 250 MG"),
    )
    .await;
    // Written in the chart: no encounter, a Provenance for org A; and one naming nobody.
    let mut charted = medication("mr-3", P1, "active", "-", "Atorvastatin 20 MG");
    charted.as_object_mut().map(|o| o.remove("encounter"));
    put(&server, charted).await;
    put(
        &server,
        json!({"resourceType": "Provenance", "id": "prov-3",
        "target": [{"reference": "MedicationRequest/mr-3"}], "recorded": "2024-01-05T10:00:00Z",
        "agent": [{"who": {"reference": "Practitioner/doc-a"},
                   "onBehalfOf": {"reference": format!("Organization/{ORG_A}")}}]}),
    )
    .await;
    let mut orphan = medication("mr-4", P1, "active", "-", "Vitamin D 1000 UNT");
    orphan.as_object_mut().map(|o| o.remove("encounter"));
    put(&server, orphan).await;
    Some(server)
}

/// Runs a records call on a blocking thread.
async fn run<T: Send + 'static>(
    server: &TestServer,
    f: impl FnOnce(oxehr_records::Records) -> T + Send + 'static,
) -> T {
    let records = server.records.clone();
    tokio::task::spawn_blocking(move || f(records))
        .await
        .expect("join")
}

fn body(r: &oxehr_records::StoredResource) -> Value {
    serde_json::from_str(r.body.as_deref().expect("body")).expect("json")
}

/// `rtype?pairs` as `who`: the ids found, or the refusal's category.
fn search(
    records: &oxehr_records::Records,
    who: &Caller,
    rtype: &str,
    pairs: &[(&str, &str)],
) -> Result<Vec<Value>, Category> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let q = oxehr_records::query::parse(&[rtype.to_owned()], &pairs, false, None)
        .map_err(|e| e.category())?;
    records
        .search(who, &q, 100)
        .map(|p| p.matches.iter().map(body).collect())
        .map_err(|e| e.category())
}

fn category<T>(r: Result<T, RecordsError>) -> Option<Category> {
    r.err().map(|e| e.category())
}

async fn refills(backend: Backend) {
    let Some(server) = fixture(backend).await else {
        return;
    };
    let got = run(&server, |records| {
        let (p1, p2) = (patient(P1), patient(P2));
        let first = records
            .request_refill(&p1, P1, "mr-1", "running low")
            .expect("request");
        let again = records.request_refill(&p1, P1, "mr-1", "").expect("again");
        let t = body(&first);
        // Owned by the organization of the prescription's encounter; for P1; its focus.
        assert_eq!(t["owner"]["reference"], format!("Organization/{ORG_A}"));
        assert_eq!(t["for"]["reference"], format!("Patient/{P1}"));
        assert_eq!(t["focus"]["reference"], "MedicationRequest/mr-1");
        assert_eq!(t["status"], "requested");
        assert_eq!(t["note"][0]["text"], "running low");
        assert_eq!(again.id, first.id, "an open request is not made twice");
        // Written in the chart: owned by the organization its Provenance names; one that
        // names no organization at all cannot be routed.
        let charted = body(
            &records
                .request_refill(&p1, P1, "mr-3", "")
                .expect("charted"),
        );
        assert_eq!(
            charted["owner"]["reference"],
            format!("Organization/{ORG_A}")
        );
        assert_eq!(
            category(records.request_refill(&p1, P1, "mr-4", "")),
            Some(Category::Invalid)
        );
        // A stopped prescription, another patient's, a made-up one.
        assert_eq!(
            category(records.request_refill(&p1, P1, "mr-old", "")),
            Some(Category::Invalid)
        );
        assert!(matches!(
            category(records.request_refill(&p2, P2, "mr-1", "")),
            Some(Category::Forbidden | Category::NotFound)
        ));
        assert!(matches!(
            category(records.request_refill(&p2, P1, "mr-1", "")),
            Some(Category::Forbidden | Category::NotFound)
        ));
        // The request is in P1's record: P2 neither reads nor finds it.
        let task_id = first.id.as_str().to_owned();
        let task_type = oxehr_fhir::ResourceType::parse("Task").expect("type");
        let tid = oxehr_fhir::ResourceId::parse(&task_id).expect("id");
        assert_eq!(
            category(records.read(&p2, &task_type, &tid)),
            Some(Category::Forbidden)
        );
        assert_eq!(search(&records, &p2, "Task", &[]).expect("search").len(), 0);
        assert_eq!(search(&records, &p1, "Task", &[]).expect("search").len(), 2);
        // Org B's staff cannot see or answer it; A's nurse may not approve, nor deny
        // without a reason.
        let clinician_b = staff(Role::Clinician, ORG_B, "doc-b");
        assert_eq!(
            search(&records, &clinician_b, "Task", &[])
                .expect("search")
                .len(),
            0
        );
        assert!(matches!(
            category(records.answer_refill(&clinician_b, &task_id, RefillAnswer::Approve)),
            Some(Category::Forbidden)
        ));
        let nurse_a = staff(Role::Nurse, ORG_A, "nurse-a");
        assert_eq!(
            category(records.answer_refill(&nurse_a, &task_id, RefillAnswer::Approve)),
            Some(Category::Forbidden)
        );
        assert_eq!(
            category(records.answer_refill(
                &nurse_a,
                &task_id,
                RefillAnswer::Deny {
                    reason: "  ".into()
                }
            )),
            Some(Category::Invalid)
        );
        // A's clinician approves: the Task completed with the new prescription.
        let clinician_a = staff(Role::Clinician, ORG_A, "doc-a");
        let done = body(
            &records
                .answer_refill(&clinician_a, &task_id, RefillAnswer::Approve)
                .expect("approve"),
        );
        assert_eq!(done["status"], "completed");
        let new_ref = done["output"][0]["valueReference"]["reference"]
            .as_str()
            .expect("output")
            .to_owned();
        assert_eq!(
            category(records.answer_refill(&clinician_a, &task_id, RefillAnswer::Approve)),
            Some(Category::Conflict),
            "answered once"
        );
        let active =
            search(&records, &p1, "MedicationRequest", &[("status", "active")]).expect("search");
        let new = active
            .iter()
            .find(|m| format!("MedicationRequest/{}", m["id"].as_str().unwrap_or("")) == new_ref)
            .expect("the new prescription is in P1's record")
            .clone();
        // A second request for mr-2, denied by the nurse with a reason P1 sees.
        let second = records
            .request_refill(&p1, P1, "mr-2", "")
            .expect("request");
        records
            .answer_refill(
                &nurse_a,
                second.id.as_str(),
                RefillAnswer::Deny {
                    reason: "Please book a review first".into(),
                },
            )
            .expect("deny");
        let mine = search(&records, &p1, "Task", &[("status", "rejected")]).expect("search");
        (active.len(), new, mine)
    })
    .await;
    let (active, new, rejected) = got;
    // mr-1 to mr-4 and the new one.
    assert_eq!(active, 5);
    assert_eq!(
        new["priorPrescription"]["reference"],
        "MedicationRequest/mr-1"
    );
    assert_eq!(new["medicationCodeableConcept"]["text"], "Lisinopril 10 MG");
    assert_eq!(new["requester"]["reference"], "Practitioner/doc-a");
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        rejected[0]["statusReason"]["text"],
        "Please book a review first"
    );
}

async fn messages(backend: Backend) {
    let Some(server) = fixture(backend).await else {
        return;
    };
    run(&server, |records| {
        let (p1, p2) = (patient(P1), patient(P2));
        let clinician_a = staff(Role::Clinician, ORG_A, "doc-a");
        let clinician_b = staff(Role::Clinician, ORG_B, "doc-b");
        // P1's care team is org A only.
        let team = records.care_team(&p1, P1).expect("care team");
        assert_eq!(team, vec![(ORG_A.to_owned(), format!("Clinic {ORG_A}"))]);
        assert_eq!(
            category(records.send_message(&p1, P1, None, Some(ORG_B), "Hi", "Hello")),
            Some(Category::Invalid),
            "B is not P1's care team"
        );
        assert_eq!(
            category(records.send_message(&p1, P1, None, Some(ORG_A), "Hi", "   ")),
            Some(Category::Invalid),
            "an empty message"
        );
        let root = records
            .send_message(&p1, P1, None, Some(ORG_A), "Pills", "Morning or night?")
            .expect("send");
        let root_id = root.id.as_str().to_owned();
        let m = body(&root);
        assert_eq!(
            m["recipient"][0]["reference"],
            format!("Organization/{ORG_A}")
        );
        assert_eq!(m["sender"]["reference"], format!("Patient/{P1}"));
        let unread_at_a = |records: &oxehr_records::Records| {
            search(
                records,
                &clinician_a,
                "Communication",
                &[
                    ("recipient", "Organization/org-a"),
                    ("received:missing", "true"),
                ],
            )
            .expect("search")
            .len()
        };
        assert_eq!(unread_at_a(&records), 1);
        // Other patients and other organizations see nothing of it.
        assert!(records.thread(&p2, P1, &root_id).is_err());
        assert!(records.thread(&clinician_b, P1, &root_id).is_err());
        assert_eq!(
            search(&records, &p2, "Communication", &[])
                .expect("search")
                .len(),
            0
        );
        assert!(matches!(
            category(records.send_message(&clinician_b, P1, Some(&root_id), None, "", "No")),
            Some(Category::Forbidden | Category::NotFound)
        ));
        // A reads it (marked read once) and answers; the answer goes to P1.
        assert_eq!(
            records
                .mark_thread_read(&clinician_a, P1, &root_id)
                .expect("read"),
            1
        );
        assert_eq!(
            records
                .mark_thread_read(&clinician_a, P1, &root_id)
                .expect("read"),
            0
        );
        assert_eq!(unread_at_a(&records), 0);
        let answer = body(
            &records
                .send_message(&clinician_a, P1, Some(&root_id), None, "", "Morning.")
                .expect("reply"),
        );
        assert_eq!(answer["recipient"][0]["reference"], format!("Patient/{P1}"));
        assert_eq!(
            answer["partOf"][0]["reference"],
            format!("Communication/{root_id}")
        );
        assert_eq!(
            answer["inResponseTo"][0]["reference"],
            format!("Communication/{root_id}")
        );
        assert_eq!(answer["topic"]["text"], "Pills");
        let unread_for_p1 = |records: &oxehr_records::Records| {
            search(
                records,
                &p1,
                "Communication",
                &[("recipient", "Patient/p1"), ("received:missing", "true")],
            )
            .expect("search")
            .len()
        };
        assert_eq!(unread_for_p1(&records), 1);
        let thread = records.thread(&p1, P1, &root_id).expect("thread");
        assert_eq!(thread.len(), 2);
        assert_eq!(thread[1]["payload"][0]["contentString"], "Morning.");
        assert_eq!(
            records.mark_thread_read(&p1, P1, &root_id).expect("read"),
            1
        );
        assert_eq!(unread_for_p1(&records), 0);
        // Assigning the thread to a colleague: A's practitioners only, by A's staff only.
        assert_eq!(
            records.colleagues(&clinician_a).expect("colleagues"),
            vec![("doc-a".to_owned(), "Dr doc-a".to_owned())]
        );
        let assigned = body(
            &records
                .assign_thread(&clinician_a, P1, &root_id, Some("doc-a"))
                .expect("assign"),
        );
        assert_eq!(
            oxehr_records::requests::assignee(&assigned).as_deref(),
            Some("doc-a")
        );
        assert_eq!(
            assigned["recipient"][0]["reference"],
            format!("Organization/{ORG_A}"),
            "still the organization's"
        );
        assert_eq!(
            category(records.assign_thread(&clinician_a, P1, &root_id, Some("doc-b"))),
            Some(Category::Invalid),
            "not a colleague"
        );
        assert!(records
            .assign_thread(&clinician_b, P1, &root_id, None)
            .is_err());
        assert_eq!(
            category(records.assign_thread(&p1, P1, &root_id, None)),
            Some(Category::Forbidden)
        );
        let cleared = body(
            &records
                .assign_thread(&clinician_a, P1, &root_id, None)
                .expect("clear"),
        );
        assert_eq!(oxehr_records::requests::assignee(&cleared), None);
        // A reply is never a thread of its own.
        let reply_id = answer["id"].as_str().expect("id").to_owned();
        assert!(matches!(
            records.thread(&p1, P1, &reply_id).map_err(|e| e.category()),
            Err(Category::NotFound)
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refills_sqlite() {
    refills(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refills_postgres() {
    refills(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_sqlite() {
    messages(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_postgres() {
    messages(Backend::Postgres).await;
}

/// Sharing: the rows say why each organization sees the record, and a choice changes
/// what its staff see on their next request.
async fn sharing(backend: Backend) {
    let Some(server) = fixture(backend).await else {
        return;
    };
    run(&server, |records| {
        let p1 = patient(P1);
        let clinician_a = staff(Role::Clinician, ORG_A, "doc-a");
        let clinician_b = staff(Role::Clinician, ORG_B, "doc-b");
        let p1_type = oxehr_fhir::ResourceType::parse("Patient").expect("type");
        let p1_id = oxehr_fhir::ResourceId::parse(P1).expect("id");
        let status = |who: &Caller| category(records.read(who, &p1_type, &p1_id));
        // The fixture: one encounter of P1 at A; nothing at B.
        let rows = records.sharing(&p1, P1).expect("sharing");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].organization, ORG_A);
        assert_eq!(rows[0].reasons, vec!["1 visit".to_owned()]);
        assert!(rows[0].sees && rows[0].choice.is_none());
        assert_eq!(status(&clinician_a), None);
        assert_eq!(status(&clinician_b), Some(Category::Forbidden));
        // Deny A, allow B: the next request follows.
        records
            .set_sharing(&p1, P1, ORG_A, Some(false))
            .expect("deny");
        records
            .set_sharing(&p1, P1, ORG_B, Some(true))
            .expect("allow");
        assert_eq!(status(&clinician_a), Some(Category::Forbidden));
        assert_eq!(status(&clinician_b), None);
        let rows = records.sharing(&p1, P1).expect("sharing");
        let by_org = |o: &str| {
            rows.iter()
                .find(|r| r.organization == o)
                .expect("row")
                .clone()
        };
        assert_eq!(
            (by_org(ORG_A).sees, by_org(ORG_A).choice),
            (false, Some(false))
        );
        assert_eq!(
            (by_org(ORG_B).sees, by_org(ORG_B).choice),
            (true, Some(true))
        );
        // A second choice replaces the first: one active Consent per organization.
        records
            .set_sharing(&p1, P1, ORG_A, Some(true))
            .expect("allow A");
        let active = search(&records, &p1, "Consent", &[("status", "active")]).expect("search");
        assert_eq!(active.len(), 2, "one for A, one for B");
        assert_eq!(status(&clinician_a), None);
        // Back to the default: B loses the record, A keeps it by its care relationship.
        records
            .set_sharing(&p1, P1, ORG_B, None)
            .expect("default B");
        records
            .set_sharing(&p1, P1, ORG_A, None)
            .expect("default A");
        assert_eq!(status(&clinician_a), None);
        assert_eq!(status(&clinician_b), Some(Category::Forbidden));
        assert!(search(&records, &p1, "Consent", &[("status", "active")])
            .expect("search")
            .is_empty());
        // Another patient cannot choose for P1, and a made-up organization is refused.
        assert!(records
            .set_sharing(&patient(P2), P1, ORG_B, Some(true))
            .is_err());
        assert_eq!(status(&clinician_b), Some(Category::Forbidden));
        assert!(matches!(
            category(records.set_sharing(&p1, P1, "no-such-org", Some(true))),
            Some(Category::NotFound)
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sharing_sqlite() {
    sharing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sharing_postgres() {
    sharing(Backend::Postgres).await;
}
