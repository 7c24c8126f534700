//! The audit trail of real requests, on both backends: a scripted session (writes,
//! reads, searches, history, refusals, break-the-glass, a transaction) must leave
//! exactly the records the script says — who, role, organization, patient, resource,
//! action, outcome — in the hash chain, readable as AuditEvent by the right people
//! only; `audit::verify` passes, then fails after one row is edited or deleted
//! directly in the database.

mod common;

use common::{add_account, Backend, TestServer};
use oxehr_store::audit::{AuditRecord, StoredAudit};
use reqwest::Method;
use serde_json::{json, Value};

const ORG: &str = "org-audit";

async fn send(
    client: &reqwest::Client,
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = client.request(method, server.url(path));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/fhir+json")
            .body(b.to_string());
    }
    let (status, body, _) = common::split(req.send().await.expect("send")).await;
    (status, body)
}

async fn log(server: &TestServer) -> Vec<StoredAudit> {
    let records = server.records.clone();
    tokio::task::spawn_blocking(move || records.flush_audit())
        .await
        .expect("join")
        .expect("flush");
    let store = server.records.store().clone();
    tokio::task::spawn_blocking(move || {
        let mut tx = store.read().expect("read");
        oxehr_store::audit::list(tx.as_mut(), 0, 100_000).expect("list")
    })
    .await
    .expect("join")
}

/// What the script expects of one record.
#[derive(Debug, PartialEq)]
struct Want {
    user: &'static str,
    action: &'static str,
    outcome: &'static str,
    patient: Option<&'static str>,
    resource: Option<String>,
}

fn want(
    user: &'static str,
    action: &'static str,
    outcome: &'static str,
    patient: Option<&'static str>,
    resource: &str,
) -> Want {
    Want {
        user,
        action,
        outcome,
        patient,
        resource: Some(resource.to_string()),
    }
}

fn got(r: &AuditRecord) -> (Option<&str>, &str, &str, Option<&str>, Option<&str>) {
    (
        r.user.as_deref(),
        r.action.as_str(),
        r.outcome.as_str(),
        r.patient.as_deref(),
        r.resource.as_deref(),
    )
}

fn observation(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 64, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
}

async fn audit_trail(backend: Backend) {
    let Some(server) = common::start(backend).await else {
        return;
    };
    let admin = server.client.clone();
    for r in [
        json!({"resourceType": "Organization", "id": ORG, "name": "Audit clinic"}),
        json!({"resourceType": "Patient", "id": "p1", "managingOrganization": {"reference": format!("Organization/{ORG}")}}),
        json!({"resourceType": "Patient", "id": "p2"}),
    ] {
        let path = format!(
            "{}/{}",
            r["resourceType"].as_str().expect("present"),
            r["id"].as_str().expect("present")
        );
        assert_eq!(
            send(&admin, &server, Method::PUT, &path, Some(&r)).await.0,
            201
        );
    }
    let doc = add_account(&server, "aud-doc", "clinician", Some(ORG), None).await;
    let pat = add_account(&server, "aud-pat", "patient", None, Some("Patient/p1")).await;
    let baseline = log(&server).await.len();
    assert_eq!(baseline, 3, "the set-up's three creates");

    // The script: each request and the records it must leave.
    let mut expected: Vec<Want> = Vec::new();
    let o1 = observation("o1", "p1");
    assert_eq!(
        send(&doc, &server, Method::PUT, "Observation/o1", Some(&o1))
            .await
            .0,
        201
    );
    expected.push(want(
        "aud-doc",
        "create",
        "success",
        Some("p1"),
        "Observation/o1",
    ));
    assert_eq!(
        send(&doc, &server, Method::GET, "Observation/o1", None)
            .await
            .0,
        200
    );
    expected.push(want(
        "aud-doc",
        "read",
        "success",
        Some("p1"),
        "Observation/o1",
    ));
    assert_eq!(
        send(
            &doc,
            &server,
            Method::GET,
            "Observation/o1/_history/1",
            None
        )
        .await
        .0,
        200
    );
    expected.push(want(
        "aud-doc",
        "vread",
        "success",
        Some("p1"),
        "Observation/o1/_history/1",
    ));
    assert_eq!(
        send(
            &doc,
            &server,
            Method::GET,
            "Observation?subject=Patient/p1",
            None
        )
        .await
        .0,
        200
    );
    expected.push(want(
        "aud-doc",
        "search",
        "success",
        Some("p1"),
        "Observation",
    ));
    assert_eq!(
        send(&doc, &server, Method::GET, "Patient/p2", None).await.0,
        403
    );
    expected.push(want("aud-doc", "read", "denied", None, "Patient/p2"));
    let mut o1b = o1.clone();
    o1b["valueQuantity"]["value"] = json!(66);
    assert_eq!(
        send(&doc, &server, Method::PUT, "Observation/o1", Some(&o1b))
            .await
            .0,
        200
    );
    expected.push(want(
        "aud-doc",
        "update",
        "success",
        Some("p1"),
        "Observation/o1",
    ));
    assert_eq!(
        send(&doc, &server, Method::GET, "Observation/o1/_history", None)
            .await
            .0,
        200
    );
    expected.push(want(
        "aud-doc",
        "history",
        "success",
        Some("p1"),
        "Observation/o1/_history",
    ));
    assert_eq!(
        send(&doc, &server, Method::DELETE, "Observation/o1", None)
            .await
            .0,
        204
    );
    expected.push(want(
        "aud-doc",
        "delete",
        "success",
        Some("p1"),
        "Observation/o1",
    ));
    // A search that finds nothing still leaves its record, without a patient.
    assert_eq!(
        send(&pat, &server, Method::GET, "Observation", None)
            .await
            .0,
        200
    );
    expected.push(want("aud-pat", "search", "success", None, "Observation"));
    assert_eq!(
        send(&pat, &server, Method::GET, "Patient/p1", None).await.0,
        200
    );
    expected.push(want("aud-pat", "read", "success", Some("p1"), "Patient/p1"));
    let o2 = observation("o2", "p2");
    assert_eq!(
        send(&doc, &server, Method::PUT, "Observation/o2", Some(&o2))
            .await
            .0,
        403
    );
    expected.push(want("aud-doc", "create", "denied", None, "Observation/o2"));
    let btg = json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "collapsed in the waiting room"}]});
    assert_eq!(
        send(
            &doc,
            &server,
            Method::POST,
            "Patient/p2/$break-the-glass",
            Some(&btg)
        )
        .await
        .0,
        200
    );
    expected.push(want(
        "aud-doc",
        "break-the-glass",
        "success",
        Some("p2"),
        "Patient/p2",
    ));
    assert_eq!(
        send(&doc, &server, Method::GET, "Patient/p2", None).await.0,
        200
    );
    expected.push(want("aud-doc", "read", "success", Some("p2"), "Patient/p2"));
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("t1", "p1"), "request": {"method": "PUT", "url": "Observation/t1"}},
        {"resource": observation("t2", "p1"), "request": {"method": "PUT", "url": "Observation/t2"}}
    ]});
    assert_eq!(
        send(&doc, &server, Method::POST, "", Some(&tx)).await.0,
        200
    );
    expected.push(want(
        "aud-doc",
        "create",
        "success",
        Some("p1"),
        "Observation/t1",
    ));
    expected.push(want(
        "aud-doc",
        "create",
        "success",
        Some("p1"),
        "Observation/t2",
    ));
    // No credential: refused before anyone is known; no record.
    assert_eq!(
        common::split(
            server
                .anonymous
                .get(server.url("Patient/p1"))
                .send()
                .await
                .expect("get")
        )
        .await
        .0,
        401
    );

    let all = log(&server).await;
    let script: Vec<&StoredAudit> = all[baseline..].iter().collect();
    // Reads are appended by the auditor thread as they arrive, writes in their own
    // transaction, so a read's record may follow the next write's: compared as sets
    // (with repetitions), not in order.
    let mut got_list: Vec<_> = script.iter().map(|a| got(&a.record)).collect();
    got_list.sort();
    let mut want_list: Vec<_> = expected
        .iter()
        .map(|w| {
            (
                Some(w.user),
                w.action,
                w.outcome,
                w.patient,
                w.resource.as_deref(),
            )
        })
        .collect();
    want_list.sort();
    assert_eq!(got_list, want_list);
    for a in &script {
        let r = &a.record;
        let (role, org) = if r.user.as_deref() == Some("aud-doc") {
            (Some("clinician"), Some(ORG))
        } else {
            (Some("patient"), None)
        };
        assert_eq!(
            (r.role.as_deref(), r.organization.as_deref()),
            (role, org),
            "{r:?}"
        );
        assert_eq!(r.client.as_deref(), Some("127.0.0.1"), "{r:?}");
    }
    let btg_record = &script
        .iter()
        .find(|a| a.record.action == "break-the-glass")
        .expect("present")
        .record;
    assert_eq!(
        btg_record.detail.as_deref(),
        Some("collapsed in the waiting room")
    );

    // As AuditEvent: the patient sees who touched their record, and nothing else.
    let (status, bundle) = send(&pat, &server, Method::GET, "AuditEvent?_count=100", None).await;
    assert_eq!(status, 200, "{bundle}");
    let ids: Vec<i64> = bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            e["resource"]["id"]
                .as_str()
                .expect("present")
                .parse()
                .expect("present")
        })
        .collect();
    let mut own: Vec<i64> = all
        .iter()
        .filter(|a| a.record.patient.as_deref() == Some("p1"))
        .map(|a| a.seq)
        .collect();
    own.reverse();
    assert_eq!(ids, own, "newest first, exactly the records about p1");
    let agents: Vec<String> = bundle["entry"]
        .as_array()
        .expect("present")
        .iter()
        .map(|e| {
            e["resource"]["agent"][0]["who"]["identifier"]["value"]
                .as_str()
                .expect("present")
                .to_string()
        })
        .collect();
    assert!(
        agents.iter().any(|a| a == "aud-doc"),
        "the clinician's reads are in the patient's log"
    );
    for e in bundle["entry"].as_array().expect("present") {
        let issues = oxehr_fhir::validate::validate(&e["resource"]);
        assert!(
            !issues.iter().any(|i| i.is_error()),
            "{issues:?} {}",
            e["resource"]
        );
    }
    assert_eq!(
        send(&pat, &server, Method::GET, "AuditEvent?patient=p2", None)
            .await
            .0,
        403
    );
    assert_eq!(
        send(&doc, &server, Method::GET, "AuditEvent", None).await.0,
        403
    );
    // The administrator searches by agent and action, and by subtype.
    let (status, bundle) = send(
        &admin,
        &server,
        Method::GET,
        "AuditEvent?agent=aud-doc&action=R&_count=100",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let reads = expected
        .iter()
        .filter(|w| {
            w.user == "aud-doc" && matches!(w.action, "read" | "vread" | "search" | "history")
        })
        .count();
    assert_eq!(bundle["entry"].as_array().map_or(0, Vec::len), reads);
    let (_, bundle) = send(
        &admin,
        &server,
        Method::GET,
        "AuditEvent?subtype=break-the-glass",
        None,
    )
    .await;
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0]["resource"]["purposeOfEvent"][0]["coding"][0]["code"],
        "BTG"
    );
    let one = &entries[0]["resource"]["id"];
    let (status, event) = send(
        &admin,
        &server,
        Method::GET,
        &format!("AuditEvent/{}", one.as_str().expect("present")),
        None,
    )
    .await;
    assert_eq!((status, &event["id"]), (200, one));
    assert_eq!(
        send(&admin, &server, Method::POST, "AuditEvent", Some(&event))
            .await
            .0,
        405,
        "the trail is append-only"
    );

    // The chain verifies; one row edited, or one deleted, directly in the database: it
    // does not, and the problem names the record.
    let verify = |server: &TestServer| {
        let store = server.records.store().clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut tx = store.read().expect("read");
                oxehr_store::audit::verify(tx.as_mut()).expect("verify")
            })
            .await
            .expect("join")
        }
    };
    assert!(verify(&server).await.is_intact());
    let victim = script[1].seq;
    let sql = |statement: &'static str, seq: i64| {
        let store = server.records.store().clone();
        async move {
            tokio::task::spawn_blocking(move || {
                store
                    .write(Box::new(move |tx| {
                        let n = tx.execute(statement, &[oxehr_store::sql::SqlArg::Int8(seq)])?;
                        Ok(Box::new(n))
                    }))
                    .expect("sql")
            })
            .await
            .expect("join")
        }
    };
    sql(
        "UPDATE audit_log SET user_name = 'mallory' WHERE seq = ?",
        victim,
    )
    .await;
    let v = verify(&server).await;
    assert!(!v.is_intact());
    assert!(
        v.problems.iter().any(|p| p.contains(&victim.to_string())),
        "{:?}",
        v.problems
    );
    sql(
        "UPDATE audit_log SET user_name = 'aud-doc' WHERE seq = ?",
        victim,
    )
    .await;
    assert!(verify(&server).await.is_intact(), "restored");
    sql("DELETE FROM audit_log WHERE seq = ?", script[3].seq).await;
    let v = verify(&server).await;
    assert!(!v.is_intact());
    assert!(
        v.problems.iter().any(|p| p.contains("missing")),
        "{:?}",
        v.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_trail_sqlite() {
    audit_trail(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_trail_postgres() {
    audit_trail(Backend::Postgres).await;
}
