//! Shared fixture of the audit findings: two organizations, patients organization A
//! cares for and patients only organization B has seen, and a clinician of A.

pub mod input;
pub mod security;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, client_with, issue_token, TestServer};

pub const ORG_A: &str = "org-a";
pub const ORG_B: &str = "org-b";
pub const CLINICIAN: &str = "finding-clinician";

/// A patient of the fixture: `ours` when organization A manages them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pt {
    pub ours: bool,
    pub n: u32,
}

impl Pt {
    pub fn id(self) -> String {
        if self.ours {
            format!("p-ours-{}", self.n)
        } else {
            format!("p-hidden-{}", self.n)
        }
    }

    pub fn family(self) -> String {
        if self.ours {
            format!("Oursfamily{}", self.n)
        } else {
            format!("Hiddenfamily{}", self.n)
        }
    }

    pub fn org(self) -> &'static str {
        if self.ours {
            ORG_A
        } else {
            ORG_B
        }
    }
}

/// The order in which the fixture creates its patients: ours and hidden interleaved, so
/// that hidden versions sit between visible ones in every history.
pub const PATIENTS: [Pt; 6] = [
    Pt { ours: true, n: 1 },
    Pt { ours: false, n: 1 },
    Pt { ours: true, n: 2 },
    Pt { ours: false, n: 2 },
    Pt { ours: false, n: 3 },
    Pt { ours: true, n: 3 },
];

pub async fn put(s: &TestServer, r: &Value) {
    let path = format!(
        "{}/{}",
        r["resourceType"].as_str().expect("type"),
        r["id"].as_str().expect("id")
    );
    let (status, body, _) = s.put(&path, r).await;
    assert!(
        status == 200 || status == 201,
        "PUT {path}: {status} {body}"
    );
}

pub fn condition(id: Option<&str>, patient: &str, snomed: &str) -> Value {
    let mut c = json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": snomed}]},
        "subject": {"reference": format!("Patient/{patient}")}
    });
    if let Some(id) = id {
        c["id"] = json!(id);
    }
    c
}

/// SNOMED CT codes of the fixture's conditions: sinusitis (two hidden ones), acute viral
/// pharyngitis (one hidden one) and diabetes (nobody has it).
pub const SINUSITIS: &str = "444814009";
pub const PHARYNGITIS: &str = "195662009";
pub const DIABETES: &str = "44054006";

/// The hidden conditions of `p-hidden-1`: (id, code).
pub const HIDDEN_CONDITIONS: [(&str, &str); 3] = [
    ("cond-hidden-a", SINUSITIS),
    ("cond-hidden-b", SINUSITIS),
    ("cond-hidden-c", PHARYNGITIS),
];

/// Creates the organizations, the patients (in [`PATIENTS`] order) and the hidden
/// conditions, and returns a client with a clinician of organization A's token.
pub async fn fixture(s: &TestServer) -> reqwest::Client {
    for org in [ORG_A, ORG_B] {
        put(
            s,
            &json!({"resourceType": "Organization", "id": org, "name": org}),
        )
        .await;
    }
    for p in PATIENTS {
        put(
            s,
            &json!({"resourceType": "Patient", "id": p.id(), "name": [{"family": p.family()}],
                "managingOrganization": {"reference": format!("Organization/{}", p.org())}}),
        )
        .await;
    }
    let hidden = Pt { ours: false, n: 1 }.id();
    for (id, code) in HIDDEN_CONDITIONS {
        put(s, &condition(Some(id), &hidden, code)).await;
    }
    clinician(s).await
}

/// A clinician account of organization A and a client carrying its token.
pub async fn clinician(s: &TestServer) -> reqwest::Client {
    let store = s.records.store().clone();
    tokio::task::spawn_blocking(move || {
        oxehr_auth::accounts::add(
            &store,
            oxehr_auth::accounts::NewAccount {
                name: CLINICIAN.into(),
                role: oxehr_auth::Role::Clinician,
                organization: Some(ORG_A.into()),
                person: None,
                password: "finding-password-1".into(),
                mfa_required: Some(false),
            },
        )
    })
    .await
    .expect("join")
    .expect("account");
    let token = issue_token(
        &s.key,
        CLINICIAN,
        "clinician",
        "user/*.cruds",
        Some(ORG_A),
        None,
        None,
    );
    client_with(&token)
}

/// Sends a FHIR request with `client`.
pub async fn call(
    s: &TestServer,
    client: &reqwest::Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = client.request(method, s.url(path));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/fhir+json")
            .body(serde_json::to_vec(b).expect("json"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let (status, body, _) = common::split(req.send().await.expect("request")).await;
    (status, body)
}

/// `POST [type]/_search` with a form body, by `client`.
pub async fn post_search(
    s: &TestServer,
    client: &reqwest::Client,
    ty: &str,
    form: &str,
) -> (u16, Value) {
    let resp = client
        .post(s.url(&format!("{ty}/_search")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .expect("POST _search");
    let (status, body, _) = common::split(resp).await;
    (status, body)
}

/// The diagnostics of an OperationOutcome, joined.
pub fn diagnostics(oo: &Value) -> String {
    oo["issue"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["diagnostics"].as_str().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// The first issue's expression (location), if any.
pub fn expression(oo: &Value) -> String {
    oo["issue"][0]["expression"][0]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// `Type/id` of a searchset's or history's entries, in order.
pub fn entry_keys(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["resource"]["resourceType"].as_str().unwrap_or("?"),
                        e["resource"]["id"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .map(str::to_owned)
}

/// Follows a search's or history's `next` links; every page's entries.
pub async fn pages(client: &reqwest::Client, first_url: &str) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut url = Some(first_url.to_owned());
    while let Some(u) = url {
        let (status, page, _) = common::split(client.get(&u).send().await.expect("page")).await;
        assert_eq!(status, 200, "{u}: {page}");
        out.push(page["entry"].as_array().cloned().unwrap_or_default());
        url = next_link(&page);
        assert!(out.len() < 1000, "paging does not end");
    }
    out
}

/// A transaction or batch Bundle of `entries`.
pub fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}
