//! A patient's Consent beyond "permit or deny an organization", over HTTP on both
//! backends: Consents that name a Practitioner, one of their PractitionerRoles, or a
//! CareTeam they take part in; Consents that hold only for a period; and Consents that
//! deny resources by security label (`provision.securityLabel`). Two clinicians of the
//! same organization see different records; searches, totals and reads agree; a
//! labelled resource is absent for staff (404, as if it did not exist) but not for the
//! patient; a Consent made inactive takes effect on the next request.
//!
//! Expectations are written down here from the rule in docs/access.md, per patient,
//! never read from the server.

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use serde_json::{json, Value};

const ORG: &str = "clinic";
const OTHER_ORG: &str = "elsewhere";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// A patient of the fixture: its id, its managing organization, the Consent provision
/// it makes (if any), and which of the two clinicians (x, y) see its record.
struct Case {
    id: &'static str,
    org: &'static str,
    provision: Option<Value>,
    x_sees: bool,
    y_sees: bool,
}

fn actor(reference: &str) -> Value {
    json!([{
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
        "reference": {"reference": reference}
    }])
}

fn provision(kind: &str, who: &str, period: Option<Value>) -> Option<Value> {
    let mut p = json!({"type": kind, "actor": actor(who)});
    if let Some(period) = period {
        p["period"] = period;
    }
    Some(p)
}

fn cases() -> Vec<Case> {
    let ended = json!({"start": "2000-01-01", "end": "2001-01-01"});
    let since_2000 = json!({"start": "2000-01-01"});
    let from_2999 = json!({"start": "2999-01-01"});
    let org = format!("Organization/{ORG}");
    vec![
        Case {
            id: "plain",
            org: ORG,
            provision: None,
            x_sees: true,
            y_sees: true,
        },
        // A person-level denial: the practitioner, one of their roles, a team.
        Case {
            id: "deny-x",
            org: ORG,
            provision: provision("deny", "Practitioner/x", None),
            x_sees: false,
            y_sees: true,
        },
        Case {
            id: "deny-role-x",
            org: ORG,
            provision: provision("deny", "PractitionerRole/role-x", None),
            x_sees: false,
            y_sees: true,
        },
        Case {
            id: "deny-team-y",
            org: ORG,
            provision: provision("deny", "CareTeam/team-y", None),
            x_sees: true,
            y_sees: false,
        },
        // A person-level permission without any care relationship.
        Case {
            id: "permit-x",
            org: OTHER_ORG,
            provision: provision("permit", "Practitioner/x", None),
            x_sees: true,
            y_sees: false,
        },
        // Periods: a denial that has ended, one that holds; a permission to come, one
        // that holds.
        Case {
            id: "deny-org-ended",
            org: ORG,
            provision: provision("deny", &org, Some(ended)),
            x_sees: true,
            y_sees: true,
        },
        Case {
            id: "deny-org-now",
            org: ORG,
            provision: provision("deny", &org, Some(since_2000.clone())),
            x_sees: false,
            y_sees: false,
        },
        Case {
            id: "permit-org-later",
            org: OTHER_ORG,
            provision: provision("permit", &org, Some(from_2999)),
            x_sees: false,
            y_sees: false,
        },
        Case {
            id: "permit-org-now",
            org: OTHER_ORG,
            provision: provision("permit", &org, Some(since_2000)),
            x_sees: true,
            y_sees: true,
        },
        // Denies HIV-labelled resources to everyone but the patient.
        Case {
            id: "label",
            org: ORG,
            provision: Some(
                json!({"type": "deny", "securityLabel": [{"system": ACT_CODE, "code": "HIV"}]}),
            ),
            x_sees: true,
            y_sees: true,
        },
    ]
}

async fn put(s: &TestServer, r: Value) {
    s.put_resource(&r).await;
}

fn consent(patient: &str, provision: &Value, status: &str) -> Value {
    json!({
        "resourceType": "Consent", "id": format!("consent-{patient}"), "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN"}]},
        "provision": provision
    })
}

fn observation(id: &str, patient: &str, label: Option<&str>) -> Value {
    let mut o = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 70, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    });
    if let Some(code) = label {
        o["meta"] = json!({"security": [{"system": ACT_CODE, "code": code}]});
    }
    o
}

struct Clinicians {
    x: reqwest::Client,
    y: reqwest::Client,
    patient: reqwest::Client,
}

async fn fixture(s: &TestServer) -> Clinicians {
    for org in [ORG, OTHER_ORG] {
        put(
            s,
            json!({"resourceType": "Organization", "id": org, "name": org}),
        )
        .await;
    }
    for p in ["x", "y"] {
        put(
            s,
            json!({"resourceType": "Practitioner", "id": p, "name": [{"family": p}]}),
        )
        .await;
    }
    put(
        s,
        json!({"resourceType": "PractitionerRole", "id": "role-x",
        "practitioner": {"reference": "Practitioner/x"},
        "organization": {"reference": format!("Organization/{ORG}")}}),
    )
    .await;
    for c in cases() {
        put(
            s,
            json!({"resourceType": "Patient", "id": c.id, "name": [{"family": c.id}],
            "managingOrganization": {"reference": format!("Organization/{}", c.org)}}),
        )
        .await;
        put(s, observation(&format!("obs-{}", c.id), c.id, None)).await;
        if let Some(p) = &c.provision {
            put(s, consent(c.id, p, "active")).await;
        }
    }
    put(s, observation("obs-label-hiv", "label", Some("HIV"))).await;
    put(s, observation("obs-label-psy", "label", Some("PSY"))).await;
    // The care team is in deny-team-y's record (CareTeam.subject), like a real one.
    put(
        s,
        json!({"resourceType": "CareTeam", "id": "team-y", "status": "active",
        "subject": {"reference": "Patient/deny-team-y"},
        "participant": [{"member": {"reference": "Practitioner/y"}}]}),
    )
    .await;
    let x = common::add_account(s, "doc-x", "clinician", Some(ORG), Some("Practitioner/x")).await;
    let y = common::add_account(s, "doc-y", "clinician", Some(ORG), Some("Practitioner/y")).await;
    let patient = common::add_account(s, "pat-label", "patient", None, Some("Patient/label")).await;
    Clinicians { x, y, patient }
}

async fn get(s: &TestServer, c: &reqwest::Client, path: &str) -> (u16, Value) {
    let resp = c.get(s.url(path)).send().await.expect("get");
    let (st, body, _) = common::split(resp).await;
    (st, body)
}

/// The ids of a search's matches (one page) and its total.
async fn ids(s: &TestServer, c: &reqwest::Client, path: &str) -> (BTreeSet<String>, u64) {
    let (st, bundle) = get(s, c, path).await;
    assert_eq!(st, 200, "{path}: {bundle}");
    let matches = bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect();
    (matches, bundle["total"].as_u64().expect("total"))
}

async fn check(s: &TestServer, who: &str, c: &reqwest::Client, sees: impl Fn(&Case) -> bool) {
    let cases = cases();
    let patients: BTreeSet<String> = cases
        .iter()
        .filter(|c| sees(c))
        .map(|c| c.id.to_owned())
        .collect();
    let (found, total) = ids(s, c, "Patient?_count=100").await;
    assert_eq!(found, patients, "{who}: Patient search");
    assert_eq!(total, patients.len() as u64, "{who}: Patient total");
    // Observations: the visible patients' own, but never a label the patient denied.
    let observations: BTreeSet<String> = patients.iter().map(|p| format!("obs-{p}")).collect();
    let mut expected = observations.clone();
    if patients.contains("label") {
        expected.insert("obs-label-psy".into());
    }
    let (found, total) = ids(s, c, "Observation?_count=100").await;
    assert_eq!(found, expected, "{who}: Observation search");
    assert_eq!(total, expected.len() as u64, "{who}: Observation total");
    for case in &cases {
        let (st, body) = get(s, c, &format!("Patient/{}", case.id)).await;
        let want = if sees(case) { 200 } else { 403 };
        assert_eq!(st, want, "{who} reads Patient/{}: {body}", case.id);
        let (st, _) = get(s, c, &format!("Observation/obs-{}", case.id)).await;
        assert_eq!(st, want, "{who} reads obs-{}", case.id);
    }
    // The denied label is absent (404), as a resource that does not exist; another
    // label of the same record is there.
    let (st, body) = get(s, c, "Observation/obs-label-hiv").await;
    assert_eq!(st, 404, "{who}: {body}");
    assert_eq!(get(s, c, "Observation/obs-label-hiv/_history").await.0, 404);
    assert_eq!(get(s, c, "Observation/obs-label-psy").await.0, 200);
    let (found, _) = ids(s, c, "Observation?patient=label&_security=HIV").await;
    assert!(found.is_empty(), "{who}: {found:?}");
}

async fn consents_naming_people_periods_and_labels(s: &TestServer) {
    let c = fixture(s).await;
    check(s, "x", &c.x, |case| case.x_sees).await;
    check(s, "y", &c.y, |case| case.y_sees).await;

    // The patient sees their whole record, the labelled part too.
    let (found, _) = ids(s, &c.patient, "Observation?_count=100").await;
    let own: BTreeSet<String> = ["obs-label", "obs-label-hiv", "obs-label-psy"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(found, own);
    assert_eq!(get(s, &c.patient, "Observation/obs-label-hiv").await.0, 200);

    // A staff member may not change what a Consent hides from them.
    let resp =
        c.x.put(s.url("Observation/obs-label-hiv"))
            .header("content-type", "application/fhir+json")
            .body(observation("obs-label-hiv", "label", None).to_string())
            .send()
            .await
            .expect("put");
    assert_eq!(resp.status().as_u16(), 403);

    // Made inactive, a denial stops on the next request; active again, it holds again.
    let deny_x = provision("deny", "Practitioner/x", None).expect("provision");
    put(s, consent("deny-x", &deny_x, "inactive")).await;
    assert_eq!(get(s, &c.x, "Patient/deny-x").await.0, 200);
    put(s, consent("deny-x", &deny_x, "active")).await;
    assert_eq!(get(s, &c.x, "Patient/deny-x").await.0, 403);
    // Leaving the care team ends the team's denial for y.
    put(
        s,
        json!({"resourceType": "CareTeam", "id": "team-y", "status": "active",
        "subject": {"reference": "Patient/deny-team-y"},
        "participant": [{"member": {"reference": "Practitioner/x"}}]}),
    )
    .await;
    assert_eq!(get(s, &c.y, "Patient/deny-team-y").await.0, 200);
    assert_eq!(get(s, &c.x, "Patient/deny-team-y").await.0, 403);
}

on_both_backends!(consents_naming_people_periods_and_labels);
