//! Proxy access over HTTP, on both backends: a parent's account acts for the patients
//! RelatedPersons name it for (`urn:oxehr:account|<name>`), reads and writes only in
//! their records, loses them on the next request after a revocation, and does not see
//! an adolescent's confidential records (`meta.security` R, V or a sensitivity code) by
//! any path — read, vread, history, search and its total, `_security`, `_include`,
//! `$everything` — while the adolescent does. An adult's record closes to the proxy
//! whose grant predates the 18th birthday. Its accesses are audited under its own name.
//!
//! Expectations come from the fixture (whose records, which labels, which ages, written
//! down here from the rule in docs/access.md), never from the server's answers.

mod common;

use std::collections::BTreeSet;

use common::{client_with, issue_token, Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use time::{Date, Month, OffsetDateTime};

const PROXY: &str = "mum";
const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// The birth date of someone `years` old whose birthday is today (28 February for a
/// 29th the year lacks), as FHIR writes it.
fn born_years_ago(years: i32) -> String {
    let today = OffsetDateTime::now_utc().date();
    let year = today.year() - years;
    let d = Date::from_calendar_date(year, today.month(), today.day())
        .or_else(|_| Date::from_calendar_date(year, Month::February, 28))
        .expect("a date");
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn observation(id: &str, patient: &str, labels: &[(&str, &str)]) -> Value {
    let mut o = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 70, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    });
    if !labels.is_empty() {
        let security: Vec<Value> = labels
            .iter()
            .map(|(system, code)| json!({"system": system, "code": code}))
            .collect();
        o["meta"] = json!({"security": security});
    }
    o
}

fn related_person(id: &str, patient: &str, account: &str, active: bool) -> Value {
    json!({
        "resourceType": "RelatedPerson", "id": id, "active": active,
        "patient": {"reference": format!("Patient/{patient}")},
        "identifier": [{"system": "urn:oxehr:account", "value": account}],
        "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}],
        "name": [{"family": "Proxy", "given": ["Mum"]}]
    })
}

async fn put(server: &TestServer, r: &Value) {
    let path = format!(
        "{}/{}",
        r["resourceType"].as_str().expect("type"),
        r["id"].as_str().expect("id")
    );
    let (status, body, _) = server.put(&path, r).await;
    assert!(
        status == 200 || status == 201,
        "PUT {path}: {status} {body}"
    );
}

async fn add_account(
    server: &TestServer,
    name: &str,
    role: oxehr_auth::Role,
    person: Option<&str>,
) {
    let store = server.records.store().clone();
    let (name, person) = (name.to_owned(), person.map(str::to_owned));
    tokio::task::spawn_blocking(move || {
        oxehr_auth::accounts::add(
            &store,
            oxehr_auth::accounts::NewAccount {
                name,
                role,
                organization: None,
                person,
                password: "proxy-test-password".into(),
                mfa_required: Some(false),
            },
        )
    })
    .await
    .expect("join")
    .expect("account");
}

struct Client {
    server_base: String,
    http: reqwest::Client,
}

impl Client {
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/{path}", self.server_base));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/fhir+json")
                .body(b.to_string());
        }
        let (status, body, _) = common::split(req.send().await.expect("request")).await;
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }

    /// `Type/id` of a search's matches (one page is enough here) and its total.
    async fn search(&self, path: &str) -> (BTreeSet<String>, Option<u64>, BTreeSet<String>) {
        let (status, bundle) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {bundle}");
        let (mut matches, mut included) = (BTreeSet::new(), BTreeSet::new());
        for e in bundle["entry"].as_array().cloned().unwrap_or_default() {
            let key = format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap_or("?"),
                e["resource"]["id"].as_str().unwrap_or("?")
            );
            if e["search"]["mode"] == "include" {
                included.insert(key);
            } else {
                matches.insert(key);
            }
        }
        assert!(
            bundle["link"]
                .as_array()
                .is_none_or(|l| l.iter().all(|l| l["relation"] != "next")),
            "{path}: one page"
        );
        (matches, bundle["total"].as_u64(), included)
    }
}

fn keys(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The patients: a child of 8 (the whole record), an adolescent of 15 (not the
/// confidential part), a patient of 9 nobody grants, an adult of 19.
async fn fixture(s: &TestServer) {
    for (id, age) in [("child", 8), ("teen", 15), ("stranger", 9), ("adult", 19)] {
        put(
            s,
            &json!({"resourceType": "Patient", "id": id, "birthDate": born_years_ago(age),
                "name": [{"family": format!("Family{id}")}]}),
        )
        .await;
    }
    for o in [
        observation("child-plain", "child", &[]),
        observation("child-r", "child", &[(CONFIDENTIALITY, "R")]),
        observation("teen-plain", "teen", &[]),
        observation("teen-n", "teen", &[(CONFIDENTIALITY, "N")]),
        observation("teen-r", "teen", &[(CONFIDENTIALITY, "R")]),
        observation("teen-v", "teen", &[(CONFIDENTIALITY, "V")]),
        observation("teen-psy", "teen", &[(ACT_CODE, "PSY")]),
        observation("stranger-plain", "stranger", &[]),
        observation("adult-plain", "adult", &[]),
    ] {
        put(s, &o).await;
    }
    put(
        s,
        &json!({"resourceType": "DiagnosticReport", "id": "teen-report", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
            "subject": {"reference": "Patient/teen"},
            "result": [{"reference": "Observation/teen-plain"}, {"reference": "Observation/teen-r"}]}),
    )
    .await;
    // Staff (the test administrator) grants the child's and the adult's record.
    put(s, &related_person("rp-child", "child", PROXY, true)).await;
    put(s, &related_person("rp-adult", "adult", PROXY, true)).await;
    add_account(s, PROXY, oxehr_auth::Role::Proxy, None).await;
    add_account(s, "teen", oxehr_auth::Role::Patient, Some("Patient/teen")).await;
}

fn client(s: &TestServer, user: &str, role: &str, patient: Option<&str>) -> Client {
    let token = issue_token(&s.key, user, role, "patient/*.cruds", None, None, patient);
    Client {
        server_base: s.base.clone(),
        http: client_with(&token),
    }
}

async fn proxy_acts_for_the_patients_related_persons_name(s: &TestServer) {
    fixture(s).await;
    // The proxy's token names a patient: it is ignored.
    let mum = client(s, PROXY, "proxy", Some("stranger"));
    let teen = client(s, "teen", "patient", Some("teen"));

    // Before the teen grants anything: the child's and the adult's records.
    let (m, total, _) = mum.search("Observation").await;
    assert_eq!(
        m,
        keys(&[
            "Observation/child-plain",
            "Observation/child-r",
            "Observation/adult-plain"
        ])
    );
    assert_eq!(total, Some(3));
    // The child is 8: the labelled record too.
    assert_eq!(mum.get("Observation/child-r").await.0, 200);
    // Another patient's record, as the policy answers any record not one's own.
    assert_eq!(mum.get("Observation/stranger-plain").await.0, 403);
    assert_eq!(mum.get("Observation/teen-plain").await.0, 403);
    let (m, total, _) = mum.search("Observation?patient=stranger").await;
    assert!(m.is_empty() && total == Some(0));

    // The teen grants their record (RelatedPerson is theirs to write), and cannot
    // grant anyone else's.
    let (status, body) = teen
        .send(
            Method::PUT,
            "RelatedPerson/rp-teen",
            Some(&related_person("rp-teen", "teen", PROXY, true)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = teen
        .send(
            Method::PUT,
            "RelatedPerson/rp-stranger",
            Some(&related_person("rp-stranger", "stranger", PROXY, true)),
        )
        .await;
    assert_eq!(
        status, 403,
        "a patient grants access to their own record only"
    );

    // The teen is 15: the proxy sees the record but what is labelled R, V or PSY.
    let teen_visible = ["Observation/teen-plain", "Observation/teen-n"];
    let (m, total, _) = mum.search("Observation?patient=teen").await;
    assert_eq!(m, keys(&teen_visible));
    assert_eq!(total, Some(2));
    let (_, count, _) = mum.search("Observation?patient=teen&_summary=count").await;
    assert_eq!(count, Some(2), "the count leaves them out");
    for id in ["teen-r", "teen-v", "teen-psy"] {
        for path in [
            format!("Observation/{id}"),
            format!("Observation/{id}/_history/1"),
            format!("Observation/{id}/_history"),
        ] {
            let (status, body) = mum.get(&path).await;
            assert_eq!(status, 404, "{path} reads as absent: {body}");
        }
    }
    let (m, total, _) = mum
        .search(&format!("Observation?_security={CONFIDENTIALITY}|R"))
        .await;
    assert_eq!((m, total), (keys(&["Observation/child-r"]), Some(1)));
    let (m, _, included) = mum
        .search("DiagnosticReport?_id=teen-report&_include=DiagnosticReport:result")
        .await;
    assert_eq!(m, keys(&["DiagnosticReport/teen-report"]));
    assert_eq!(included, keys(&["Observation/teen-plain"]), "_include");
    let (m, _, _) = mum.search("Patient/teen/$everything").await;
    let everything: BTreeSet<String> = [
        "Patient/teen",
        "RelatedPerson/rp-teen",
        "DiagnosticReport/teen-report",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain(teen_visible.iter().map(|s| (*s).to_owned()))
    .collect();
    assert_eq!(m, everything, "$everything");
    let (status, history) = mum.get("Observation/_history").await;
    assert_eq!(status, 200, "{history}");
    let in_history: BTreeSet<String> = history["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "Observation/{}",
                e["resource"]["id"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        in_history,
        keys(&[
            "Observation/child-plain",
            "Observation/child-r",
            "Observation/adult-plain",
            "Observation/teen-plain",
            "Observation/teen-n",
        ]),
        "type history"
    );
    // The adolescent sees their whole record.
    let (m, total, _) = teen.search("Observation?patient=teen").await;
    assert_eq!(m.len(), 5);
    assert_eq!(total, Some(5));
    assert_eq!(teen.get("Observation/teen-r").await.0, 200);
    // Records tells an adapter whom the proxy acts for.
    let caller = oxehr_auth::Caller::new(
        PROXY.into(),
        oxehr_auth::Role::Proxy,
        None,
        None,
        None,
        &oxehr_auth::parse_scopes("patient/*.rs").expect("scopes"),
    );
    let records = s.records.clone();
    let c = caller.clone();
    let patients = tokio::task::spawn_blocking(move || records.proxy_patients(&c))
        .await
        .expect("join")
        .expect("proxy patients");
    let got: Vec<(String, bool)> = patients.into_iter().map(|p| (p.id, p.restricted)).collect();
    assert_eq!(
        got,
        vec![
            ("adult".to_owned(), false),
            ("child".to_owned(), false),
            ("teen".to_owned(), true)
        ]
    );

    // Writes: what a patient writes, in these records only; no RelatedPerson.
    let message = |patient: &str| {
        json!({"resourceType": "Communication", "status": "completed",
            "subject": {"reference": format!("Patient/{patient}")},
            "payload": [{"contentString": "Is the appointment still on?"}]})
    };
    let (status, body) = mum
        .send(Method::POST, "Communication", Some(&message("child")))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        mum.send(Method::POST, "Communication", Some(&message("stranger")))
            .await
            .0,
        403
    );
    assert_eq!(
        mum.send(
            Method::PUT,
            "RelatedPerson/rp-mum-stranger",
            Some(&related_person("rp-mum-stranger", "stranger", PROXY, true))
        )
        .await
        .0,
        403,
        "a proxy does not extend itself"
    );
    assert_eq!(
        mum.send(
            Method::PUT,
            "Observation/child-plain",
            Some(&observation("child-plain", "child", &[]))
        )
        .await
        .0,
        403,
        "a proxy writes what a patient writes"
    );
    // The audit trail names the proxy, its role and the patient; the proxy cannot read it.
    assert_eq!(mum.get("AuditEvent?patient=child").await.0, 403);
    let records = s.records.clone();
    tokio::task::spawn_blocking(move || records.flush_audit())
        .await
        .expect("join")
        .expect("flush");
    let store = s.records.store().clone();
    let log = tokio::task::spawn_blocking(move || {
        let mut tx = store.read().expect("read");
        oxehr_store::audit::list(tx.as_mut(), 0, 10_000).expect("audit")
    })
    .await
    .expect("join");
    let read = log
        .iter()
        .map(|a| &a.record)
        .find(|r| r.action == "read" && r.resource.as_deref() == Some("Observation/child-r"))
        .expect("the proxy's read is audited");
    assert_eq!(read.user.as_deref(), Some(PROXY));
    assert_eq!(read.role.as_deref(), Some("proxy"));
    assert_eq!(read.patient.as_deref(), Some("child"));
    assert!(
        log.iter().map(|a| &a.record).any(|r| r.action == "create"
            && r.user.as_deref() == Some(PROXY)
            && r.patient.as_deref() == Some("child")
            && r.resource
                .as_deref()
                .is_some_and(|x| x.starts_with("Communication/"))),
        "the proxy's write is audited"
    );

    // Revocation takes effect on the next request: staff sets the child's grant
    // inactive, the teen deletes theirs.
    put(s, &related_person("rp-child", "child", PROXY, false)).await;
    let (m, total, _) = mum.search("Observation?patient=child").await;
    assert!(m.is_empty() && total == Some(0), "{m:?}");
    assert_eq!(mum.get("Observation/child-plain").await.0, 403);
    assert_eq!(
        teen.send(Method::DELETE, "RelatedPerson/rp-teen", None)
            .await
            .0,
        204
    );
    let (m, total, _) = mum.search("Observation").await;
    assert_eq!((m, total), (keys(&["Observation/adult-plain"]), Some(1)));

    // The adult's record: the grant was written after the 18th birthday (the adult's
    // own). Dated back to before it (when the patient was 17), it no longer counts;
    // written again now, it does.
    backdate(s, "RelatedPerson", "rp-adult", 2).await;
    let (m, total, _) = mum.search("Observation").await;
    assert!(
        m.is_empty() && total == Some(0),
        "a childhood grant ends at 18: {m:?}"
    );
    put(s, &related_person("rp-adult", "adult", PROXY, true)).await;
    let (m, _, _) = mum.search("Observation").await;
    assert_eq!(
        m,
        keys(&["Observation/adult-plain"]),
        "the adult grants again"
    );
}

/// A JSON Patch's `test` operations say nothing about a resource the caller may not
/// read: a right and a wrong guess at its content get the same answer, the read's
/// (another patient's record: 403; an adolescent's confidential one, to a proxy: 404).
async fn a_patch_tells_nothing_of_a_resource_the_caller_may_not_read(s: &TestServer) {
    fixture(s).await;
    put(s, &related_person("rp-teen", "teen", PROXY, true)).await;
    put(
        s,
        &json!({"resourceType": "Communication", "id": "teen-note", "status": "completed",
            "meta": {"security": [{"system": ACT_CODE, "code": "SEX"}]},
            "subject": {"reference": "Patient/teen"},
            "payload": [{"contentString": "clinic visit"}]}),
    )
    .await;
    let mum = client(s, PROXY, "proxy", None);
    let teen = client(s, "teen", "patient", Some("teen"));
    let patch = |path: &str, value: &str| {
        json!([{"op": "test", "path": path, "value": value},
               {"op": "replace", "path": "/status", "value": "completed"}])
    };
    let send = |who: &Client, target: &str, body: Value| {
        let req = who
            .http
            .patch(format!("{}/{target}", who.server_base))
            .header("content-type", "application/json-patch+json")
            .body(body.to_string());
        async move { common::split(req.send().await.expect("PATCH")).await.0 }
    };
    // (caller, resource, path tested, its value, a wrong value, the answer)
    let cases: [(&Client, &str, &str, &str, &str, u16); 3] = [
        (
            &mum,
            "Communication/teen-note",
            "/payload/0/contentString",
            "clinic visit",
            "nothing",
            404,
        ),
        (
            &teen,
            "Observation/stranger-plain",
            "/subject/reference",
            "Patient/stranger",
            "Patient/x",
            403,
        ),
        (
            &mum,
            "Observation/stranger-plain",
            "/subject/reference",
            "Patient/stranger",
            "Patient/x",
            403,
        ),
    ];
    for (who, target, path, right, wrong, status) in cases {
        let answers = (
            send(who, target, patch(path, right)).await,
            send(who, target, patch(path, wrong)).await,
        );
        assert_eq!(answers.0, answers.1, "{target}: a right and a wrong guess");
        assert_eq!(answers.0, status, "{target}");
    }
    // The proxy's own patient's Communication it may patch.
    let (status, body) = mum
        .send(
            Method::PUT,
            "Communication/child-note",
            Some(&json!({"resourceType": "Communication", "id": "child-note", "status": "in-progress",
                "subject": {"reference": "Patient/child"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        send(
            &mum,
            "Communication/child-note",
            patch("/status", "in-progress")
        )
        .await,
        200
    );
}

/// Moves the current version of `rtype/id` `years` back in time, as if written then
/// (the grant of a parent made during the patient's childhood).
async fn backdate(s: &TestServer, rtype: &str, id: &str, years: i64) {
    let store = s.records.store().clone();
    let (rtype, id) = (rtype.to_owned(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        store.write(Box::new(move |tx| {
            let shift = oxehr_store::sql::SqlArg::Int8(years * 366 * 86_400_000_000);
            let args = [
                shift,
                oxehr_store::sql::SqlArg::Text(rtype.clone()),
                oxehr_store::sql::SqlArg::Text(id.clone()),
            ];
            tx.execute(
                "UPDATE resource SET last_updated = last_updated - ? WHERE rtype = ? AND id = ?",
                &args,
            )?;
            Ok(Box::new(()))
        }))
    })
    .await
    .expect("join")
    .expect("backdate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_acts_for_the_patients_related_persons_name_sqlite() {
    let s = common::start(Backend::Sqlite).await.expect("sqlite server");
    proxy_acts_for_the_patients_related_persons_name(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_acts_for_the_patients_related_persons_name_postgres() {
    let Some(s) = common::start(Backend::Postgres).await else {
        return;
    };
    proxy_acts_for_the_patients_related_persons_name(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_tells_nothing_of_a_resource_the_caller_may_not_read_sqlite() {
    let s = common::start(Backend::Sqlite).await.expect("sqlite server");
    a_patch_tells_nothing_of_a_resource_the_caller_may_not_read(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_tells_nothing_of_a_resource_the_caller_may_not_read_postgres() {
    let Some(s) = common::start(Backend::Postgres).await else {
        return;
    };
    a_patch_tells_nothing_of_a_resource_the_caller_may_not_read(&s).await;
}
