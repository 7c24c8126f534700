//! SQL on FHIR's `$viewdefinition-run` over the FHIR API, on both backends: the Synthea v3
//! patients are posted, a view of their Observations (id, patient key, code, effective,
//! value) runs over HTTP, and its rows — as NDJSON, CSV and a JSON array — equal the rows
//! this test works out itself by walking the bundles it posted (the ids the server gave
//! each entry are read from the transaction responses). A clinician of one organization
//! gets the rows of that organization's patient only; `patient`, `group`, `_limit` and
//! `_since` narrow the rows; a definition that does not compile is a 400 OperationOutcome naming
//! the problem; every run is in the audit trail.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{add_account, TestServer};
use reqwest::Client;
use serde_json::{json, Value};

/// One row of the view, as text per column (`None`: null), in column order.
type Row = Vec<Option<String>>;

const COLUMNS: [&str; 5] = ["id", "patient", "code", "effective", "value"];

fn view() -> Value {
    json!({
        "resourceType": "ViewDefinition",
        "name": "observation_values",
        "status": "active",
        "resource": "Observation",
        "select": [{"column": [
            {"name": "id", "path": "getResourceKey()"},
            {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
            {"name": "code", "path": "code.coding.first().code"},
            {"name": "effective", "path": "effective.ofType(dateTime)"},
            {"name": "value", "path": "value.ofType(Quantity).value"}
        ]}]
    })
}

/// What the test posted and what it expects back.
struct Posted {
    /// Every Observation's expected row.
    rows: Vec<Row>,
    /// The patients (server ids), in the order of their bundles.
    patient_of_bundle: Vec<String>,
    /// The organizations each patient's Encounters name (conditional references), by
    /// patient id.
    orgs: BTreeMap<String, BTreeSet<String>>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// `…/Type/id/_history/n` or `Type/id` → `Type/id`.
fn type_and_id(location: &str) -> String {
    let path = location.split("/_history").next().unwrap_or(location);
    let parts: Vec<&str> = path.rsplitn(3, '/').collect();
    format!("{}/{}", parts[1], parts[0])
}

/// Posts the Synthea v3 bundles (the organization and practitioner files first) and
/// works out the expected rows from what was sent and the ids the server answered with.
async fn post_synthea(s: &TestServer) -> Posted {
    let mut posted = Posted {
        rows: Vec::new(),
        patient_of_bundle: Vec::new(),
        orgs: BTreeMap::new(),
    };
    for path in common::synthea_files("synthea-v3") {
        let bundle: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let (status, resp, _) = s.post("", &bundle).await;
        assert_eq!(status, 200, "{}: {resp}", path.display());
        let sent = bundle["entry"].as_array().expect("entries");
        let got = resp["entry"].as_array().expect("response entries");
        assert_eq!(sent.len(), got.len());
        // fullUrl → the `Type/id` the server gave the entry.
        let ids: BTreeMap<&str, String> = sent
            .iter()
            .zip(got)
            .filter_map(|(e, r)| {
                Some((
                    e["fullUrl"].as_str()?,
                    type_and_id(r["response"]["location"].as_str()?),
                ))
            })
            .collect();
        let key = |reference: &Value| -> Option<String> {
            let to = ids.get(reference.as_str()?)?;
            to.strip_prefix("Patient/").map(str::to_owned)
        };
        let mut patient = None;
        for (e, r) in sent.iter().zip(got) {
            let res = &e["resource"];
            match res["resourceType"].as_str() {
                Some("Patient") => {
                    patient = Some(type_and_id(
                        r["response"]["location"].as_str().expect("location"),
                    ))
                }
                Some("Observation") => {
                    let id = type_and_id(r["response"]["location"].as_str().expect("location"));
                    posted.rows.push(vec![
                        id.strip_prefix("Observation/").map(str::to_owned),
                        key(&res["subject"]["reference"]),
                        text(&res["code"]["coding"][0]["code"]),
                        text(&res["effectiveDateTime"]),
                        text(&res["valueQuantity"]["value"]),
                    ]);
                }
                _ => {}
            }
        }
        if let Some(p) = patient {
            let p = p.trim_start_matches("Patient/").to_owned();
            let orgs: BTreeSet<String> = sent
                .iter()
                .filter(|e| e["resource"]["resourceType"] == "Encounter")
                .filter_map(|e| e["resource"]["serviceProvider"]["reference"].as_str())
                .map(str::to_owned)
                .collect();
            posted.orgs.insert(p.clone(), orgs);
            posted.patient_of_bundle.push(p);
        }
    }
    assert!(
        posted.rows.len() > 900,
        "{} observations",
        posted.rows.len()
    );
    posted
}

/// Runs `view` with these further parameters; the status, content type and body.
async fn run(
    s: &TestServer,
    who: &Client,
    path: &str,
    view: &Value,
    params: &[Value],
) -> (u16, String, String) {
    let mut parameter = vec![json!({"name": "viewResource", "resource": view})];
    parameter.extend(params.iter().cloned());
    let resp = who
        .post(s.url(path))
        .header("content-type", "application/fhir+json")
        .json(&json!({"resourceType": "Parameters", "parameter": parameter}))
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ctype, resp.text().await.expect("body"))
}

fn format(f: &str) -> Value {
    json!({"name": "_format", "valueCode": f})
}

/// NDJSON lines → rows (each line's keys must be the columns, in order).
fn ndjson_rows(body: &str) -> Vec<Row> {
    body.lines()
        .map(|l| {
            let o: Value = serde_json::from_str(l).expect("a JSON line");
            let o = o.as_object().expect("an object");
            assert_eq!(o.keys().map(String::as_str).collect::<Vec<_>>(), COLUMNS);
            o.values().map(text).collect()
        })
        .collect()
}

/// RFC 4180 CSV → rows (an empty unquoted field is a null).
fn csv_rows(body: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut row: Row = Vec::new();
    let (mut field, mut quoted, mut in_quotes) = (String::new(), false, false);
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_quotes, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => in_quotes = false,
            (true, c) => field.push(c),
            (false, '"') => (quoted, in_quotes) = (true, true),
            (false, ',') | (false, '\r') => {
                if c == '\r' {
                    assert_eq!(chars.next(), Some('\n'));
                }
                let f = std::mem::take(&mut field);
                row.push(if f.is_empty() && !quoted {
                    None
                } else {
                    Some(f)
                });
                quoted = false;
                if c == '\r' {
                    rows.push(std::mem::take(&mut row));
                }
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort();
    rows
}

async fn a_view_runs_over_the_stored_observations(s: &TestServer) {
    oxehr_testdata::require!();
    let posted = post_synthea(s).await;
    let want = sorted(posted.rows.clone());

    // NDJSON, the default, at each of the operation's endpoints.
    for path in [
        "$viewdefinition-run",
        "ViewDefinition/$viewdefinition-run",
        "ViewDefinition/$run",
    ] {
        let (st, ctype, body) = run(s, &s.client, path, &view(), &[]).await;
        assert_eq!(st, 200, "{path}: {body}");
        assert_eq!(ctype, "application/x-ndjson", "{path}");
        assert_eq!(sorted(ndjson_rows(&body)), want, "{path}");
    }
    // CSV: the header, then the same rows.
    let (st, ctype, body) = run(
        s,
        &s.client,
        "$viewdefinition-run",
        &view(),
        &[format("csv")],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let mut rows = csv_rows(&body);
    let header = rows.remove(0);
    assert_eq!(
        header,
        COLUMNS.iter().map(|c| Some(c.to_string())).collect::<Row>()
    );
    assert_eq!(sorted(rows), want);
    // CSV without its header.
    let (_, _, body) = run(
        s,
        &s.client,
        "$viewdefinition-run",
        &view(),
        &[
            format("csv"),
            json!({"name": "header", "valueBoolean": false}),
        ],
    )
    .await;
    assert_eq!(sorted(csv_rows(&body)), want);
    // A JSON array of the same objects.
    let (st, ctype, body) = run(
        s,
        &s.client,
        "$viewdefinition-run",
        &view(),
        &[format("json")],
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(ctype, "application/json");
    let array: Value = serde_json::from_str(&body).expect("a JSON array");
    let lines: Vec<String> = array
        .as_array()
        .expect("array")
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(sorted(ndjson_rows(&lines.join("\n"))), want);

    // `patient`: one patient's rows.
    let one = &posted.patient_of_bundle[0];
    let (st, _, body) = run(
        s,
        &s.client,
        "$viewdefinition-run",
        &view(),
        &[json!({"name": "patient", "valueReference": {"reference": format!("Patient/{one}")}})],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let theirs: Vec<Row> = want
        .iter()
        .filter(|r| r[1].as_deref() == Some(one.as_str()))
        .cloned()
        .collect();
    assert!(!theirs.is_empty());
    assert_eq!(sorted(ndjson_rows(&body)), theirs);

    // `group`: its members' rows (the same patient, as a Group's only member).
    let (st, b, _) = s
        .put(
            "Group/view-group",
            &json!({"resourceType": "Group", "id": "view-group", "type": "person",
                "actual": true, "member": [{"entity": {"reference": format!("Patient/{one}")}}]}),
        )
        .await;
    assert!(st == 200 || st == 201, "{b}");
    let (st, _, body) = run(
        s,
        &s.client,
        "$viewdefinition-run",
        &view(),
        &[json!({"name": "group", "valueReference": {"reference": "Group/view-group"}})],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(sorted(ndjson_rows(&body)), theirs);

    // `_limit` bounds the rows; `_since` after everything leaves none.
    let (st, _, body) = run(
        s,
        &s.client,
        "$viewdefinition-run",
        &view(),
        &[json!({"name": "_limit", "valueInteger": 10})],
    )
    .await;
    assert_eq!(st, 200);
    let limited = ndjson_rows(&body);
    assert_eq!(limited.len(), 10);
    assert!(limited.iter().all(|r| want.binary_search(r).is_ok()));
    let (st, _, body) = run(
        s,
        &s.client,
        "$viewdefinition-run",
        &view(),
        &[json!({"name": "_since", "valueInstant": "2999-01-01T00:00:00Z"})],
    )
    .await;
    assert_eq!((st, body.as_str()), (200, ""));

    // A clinician of one organization: only the rows of the patients it cares for. The
    // organization is one that the Encounters of exactly one patient name.
    let (patient, org_ref) = posted
        .orgs
        .iter()
        .find_map(|(p, orgs)| {
            let only_theirs = orgs.iter().find(|o| {
                posted
                    .orgs
                    .iter()
                    .all(|(q, other)| q == p || !other.contains(*o))
            })?;
            Some((p.clone(), only_theirs.clone()))
        })
        .expect("an organization of one patient");
    let (st, found, _) = s.get(&org_ref).await;
    assert_eq!(st, 200, "{org_ref}: {found}");
    let org = found["entry"][0]["resource"]["id"]
        .as_str()
        .expect("the organization")
        .to_owned();
    let dr = add_account(s, "dr-view", "clinician", Some(&org), None).await;
    let (st, _, body) = run(s, &dr, "$viewdefinition-run", &view(), &[format("csv")]).await;
    assert_eq!(st, 200, "{body}");
    let mut rows = csv_rows(&body);
    rows.remove(0);
    let theirs: Vec<Row> = want
        .iter()
        .filter(|r| r[1].as_deref() == Some(patient.as_str()))
        .cloned()
        .collect();
    assert!(!theirs.is_empty());
    assert_eq!(sorted(rows), theirs);
    // Even when asking for another patient by name.
    let other = posted
        .patient_of_bundle
        .iter()
        .find(|p| **p != patient)
        .expect("another patient");
    let (st, _, body) = run(
        s,
        &dr,
        "$viewdefinition-run",
        &view(),
        &[json!({"name": "patient", "valueString": other})],
    )
    .await;
    assert_eq!((st, body.as_str()), (200, ""));

    // The runs are in the audit trail: the clinician's names their patient.
    let records = s.records.clone();
    tokio::task::spawn_blocking(move || records.flush_audit())
        .await
        .expect("join")
        .expect("flush");
    let (st, events, _) = s
        .get(&format!(
            "AuditEvent?patient=Patient/{patient}&subtype=view-run&_count=1000"
        ))
        .await;
    assert_eq!(st, 200, "{events}");
    let users: BTreeSet<String> = events["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["agent"][0]["who"]["identifier"]["value"].as_str())
        .map(str::to_owned)
        .collect();
    assert!(users.contains("dr-view"), "{users:?}");
}

async fn a_bad_definition_or_request_is_a_400_operation_outcome(s: &TestServer) {
    let cases: Vec<(Value, Vec<Value>, &str)> = vec![
        (
            json!({"resourceType": "ViewDefinition", "resource": "Observation"}),
            vec![],
            "invalid ViewDefinition at select",
        ),
        (
            json!({"resource": "Nonsense", "select": [{"column": [{"name": "id", "path": "id"}]}]}),
            vec![],
            "Nonsense is not a FHIR R4 resource type",
        ),
        (
            json!({"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id.("}]}]}),
            vec![],
            "select[0].column[0].path",
        ),
        (view(), vec![format("xml")], "_format"),
        (view(), vec![format("parquet")], "parquet"),
        (
            view(),
            vec![json!({"name": "_limit", "valueInteger": -1})],
            "_limit",
        ),
        (
            view(),
            vec![json!({"name": "source", "valueString": "s3://bucket"})],
            "source",
        ),
    ];
    for (def, params, says) in cases {
        let (st, ctype, body) = run(s, &s.client, "$viewdefinition-run", &def, &params).await;
        assert_eq!(st, 400, "{def} {params:?}: {body}");
        assert!(ctype.starts_with("application/fhir+json"), "{ctype}");
        let outcome: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        let diagnostics = outcome["issue"][0]["diagnostics"].as_str().unwrap_or("");
        assert!(diagnostics.contains(says), "{says}: {diagnostics}");
    }
    // No viewResource, and a stored ViewDefinition: not here.
    let resp = s
        .client
        .post(s.url("$viewdefinition-run"))
        .header("content-type", "application/fhir+json")
        .json(&json!({"resourceType": "Parameters", "parameter": []}))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 400);
    let (st, body, _) = s.get("ViewDefinition/v1/$viewdefinition-run").await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome");
    // A front-desk account may not read Observations.
    let (st, b, _) = s
        .put(
            "Organization/org-x",
            &json!({"resourceType": "Organization", "id": "org-x", "name": "X"}),
        )
        .await;
    assert!(st == 200 || st == 201, "{b}");
    let desk = add_account(s, "desk-view", "front-desk", Some("org-x"), None).await;
    let (st, _, body) = run(s, &desk, "$viewdefinition-run", &view(), &[]).await;
    assert_eq!(st, 403, "{body}");
}

on_both_backends!(
    a_view_runs_over_the_stored_observations,
    a_bad_definition_or_request_is_a_400_operation_outcome
);
