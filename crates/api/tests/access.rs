//! The access matrix, on both backends: every role × every read path × whose record
//! (own, related by care, unrelated, consent-denied, consent-permitted,
//! break-the-glass) gives the expected allow or deny, and no path leaks a resource of a
//! patient the caller may not see — not through `_include`, `_revinclude`, chains,
//! `_has`, history or `_total`.
//!
//! The expectations come from the fixture's own description (which organization has
//! which relationship with which patient, what each role may read), written down here
//! from the policy's documentation, never from the server's answers.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{client_with, issue_token, Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const ORG_A: &str = "org-a";
const ORG_B: &str = "org-b";

/// The fixture's patients and how organization A stands with each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum P {
    /// The patient account's own record; A has an Encounter with them.
    Own,
    /// Only organization B has seen them.
    Other,
    /// A has an EpisodeOfCare with them, but their Consent denies A.
    Denied,
    /// No care relationship with A, but their Consent permits A.
    Permitted,
    /// An Appointment with a PractitionerRole of A.
    Booked,
    /// B's patient, whose record a nurse of A opens by breaking the glass.
    Emergency,
}

const PATIENTS: [P; 6] = [
    P::Own,
    P::Other,
    P::Denied,
    P::Permitted,
    P::Booked,
    P::Emergency,
];

impl P {
    fn id(self) -> &'static str {
        match self {
            P::Own => "p-own",
            P::Other => "p-other",
            P::Denied => "p-denied",
            P::Permitted => "p-permitted",
            P::Booked => "p-booked",
            P::Emergency => "p-emergency",
        }
    }

    fn family(self) -> String {
        format!("Family{}", self.id().trim_start_matches("p-"))
    }

    /// Whether staff of organization A see this patient (before any glass is broken).
    fn seen_by_org_a(self) -> bool {
        matches!(self, P::Own | P::Permitted | P::Booked)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Patient,
    Clinician,
    Nurse,
    FrontDesk,
    OrgAdmin,
    SystemAdmin,
}

const ROLES: [Role; 6] = [
    Role::Patient,
    Role::Clinician,
    Role::Nurse,
    Role::FrontDesk,
    Role::OrgAdmin,
    Role::SystemAdmin,
];

impl Role {
    fn code(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Clinician => "clinician",
            Role::Nurse => "nurse",
            Role::FrontDesk => "front-desk",
            Role::OrgAdmin => "org-admin",
            Role::SystemAdmin => "system-admin",
        }
    }

    fn user(self) -> String {
        format!("matrix-{}", self.code())
    }

    /// Whether the role may read this type at all (the policy's role table).
    fn reads_type(self, t: &str) -> bool {
        match self {
            Role::FrontDesk => matches!(t, "Patient" | "Encounter" | "Appointment"),
            Role::OrgAdmin => matches!(t, "Organization" | "Practitioner" | "PractitionerRole"),
            _ => true,
        }
    }

    /// Whether the role sees patient `p`'s record (with `broken`: the glass broken for
    /// the emergency patient).
    fn sees(self, p: P, broken: bool) -> bool {
        match self {
            Role::SystemAdmin => true,
            Role::Patient => p == P::Own,
            Role::OrgAdmin => false,
            Role::Clinician | Role::FrontDesk => p.seen_by_org_a(),
            Role::Nurse => p.seen_by_org_a() || (broken && p == P::Emergency),
        }
    }
}

struct Fixture {
    server: TestServer,
    clients: BTreeMap<&'static str, reqwest::Client>,
    /// Observation ids of each patient (subject = the patient).
    observations: BTreeMap<P, Vec<String>>,
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

fn consent(id: &str, patient: &str, kind: &str, org: &str) -> Value {
    json!({
        "resourceType": "Consent", "id": id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"type": kind, "actor": [{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
            "reference": {"reference": format!("Organization/{org}")}
        }]}
    })
}

fn observation(id: &str, patient: &str, focus: Option<&str>) -> Value {
    let mut o = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 70, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    });
    if let Some(f) = focus {
        o["focus"] = json!([{"reference": format!("Patient/{f}")}]);
    }
    o
}

async fn fixture(backend: Backend) -> Option<Fixture> {
    // Tokens checked against their accounts on every request (not remembered for the
    // default 5 s, whose bound `oxehr-auth` tests), so disabling one shows at once.
    let rules = oxehr_auth::IdentityConfig {
        token_check_secs: 0,
        ..Default::default()
    };
    let server =
        common::start_with_identity(backend, oxehr_api::ApiConfig::default(), rules).await?;
    for org in [ORG_A, ORG_B] {
        put(
            &server,
            json!({"resourceType": "Organization", "id": org, "name": org}),
        )
        .await;
    }
    put(
        &server,
        json!({"resourceType": "Practitioner", "id": "doc-a", "name": [{"family": "Doc"}]}),
    )
    .await;
    put(&server, json!({"resourceType": "PractitionerRole", "id": "role-a",
        "practitioner": {"reference": "Practitioner/doc-a"}, "organization": {"reference": format!("Organization/{ORG_A}")}})).await;
    let mut observations: BTreeMap<P, Vec<String>> = BTreeMap::new();
    for p in PATIENTS {
        let id = p.id();
        put(
            &server,
            json!({"resourceType": "Patient", "id": id, "name": [{"family": p.family()}]}),
        )
        .await;
        // Two observations each, one carrying a focus on another patient (the leak
        // probes for chains and includes).
        let o1 = format!("obs-{id}-1");
        let o2 = format!("obs-{id}-2");
        put(&server, observation(&o1, id, None)).await;
        put(&server, observation(&o2, id, Some(focus_of(p).id()))).await;
        observations.insert(p, vec![o1, o2]);
    }
    let enc = |id: &str, patient: &str, org: &str| {
        json!({"resourceType": "Encounter", "id": id, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/{patient}")},
            "serviceProvider": {"reference": format!("Organization/{org}")}})
    };
    put(&server, enc("enc-own", P::Own.id(), ORG_A)).await;
    put(&server, enc("enc-other", P::Other.id(), ORG_B)).await;
    put(&server, enc("enc-emergency", P::Emergency.id(), ORG_B)).await;
    put(
        &server,
        json!({"resourceType": "EpisodeOfCare", "id": "eoc-denied", "status": "active",
        "patient": {"reference": format!("Patient/{}", P::Denied.id())},
        "managingOrganization": {"reference": format!("Organization/{ORG_A}")}}),
    )
    .await;
    put(
        &server,
        consent("consent-denied", P::Denied.id(), "deny", ORG_A),
    )
    .await;
    put(
        &server,
        consent("consent-permitted", P::Permitted.id(), "permit", ORG_A),
    )
    .await;
    put(
        &server,
        json!({"resourceType": "Appointment", "id": "appt-booked", "status": "booked",
        "start": "2026-12-01T10:00:00Z", "end": "2026-12-01T10:30:00Z",
        "participant": [
            {"actor": {"reference": format!("Patient/{}", P::Booked.id())}, "status": "accepted"},
            {"actor": {"reference": "PractitionerRole/role-a"}, "status": "accepted"}
        ]}),
    )
    .await;

    // One account per role, each with a token as `oxehr token issue` would give.
    let mut clients = BTreeMap::new();
    for role in ROLES {
        let store = server.records.store().clone();
        let (org, person) = match role {
            Role::SystemAdmin => (None, None),
            Role::Patient => (None, Some(format!("Patient/{}", P::Own.id()))),
            Role::Clinician | Role::Nurse => (
                Some(ORG_A.to_string()),
                Some("Practitioner/doc-a".to_string()),
            ),
            Role::FrontDesk | Role::OrgAdmin => (Some(ORG_A.to_string()), None),
        };
        let (o, pe) = (org.clone(), person.clone());
        let auth_role = oxehr_auth::Role::parse(role.code()).expect("role");
        tokio::task::spawn_blocking(move || {
            oxehr_auth::accounts::add(
                &store,
                oxehr_auth::accounts::NewAccount {
                    name: role.user(),
                    role: auth_role,
                    organization: o,
                    person: pe,
                    password: "matrix-password-1".into(),
                    mfa_required: Some(false),
                },
            )
        })
        .await
        .expect("join")
        .expect("account");
        let scope = match role {
            Role::Patient => "patient/*.cruds",
            Role::SystemAdmin => "system/*.cruds",
            _ => "user/*.cruds",
        };
        let patient = (role == Role::Patient).then(|| P::Own.id());
        let token = issue_token(
            &server.key,
            &role.user(),
            role.code(),
            scope,
            org.as_deref(),
            person.as_deref(),
            patient,
        );
        clients.insert(role.code(), client_with(&token));
    }
    Some(Fixture {
        server,
        clients,
        observations,
    })
}

impl Fixture {
    async fn get(&self, role: Role, path: &str) -> (u16, Value) {
        let resp = self.clients[role.code()]
            .get(self.server.url(path))
            .send()
            .await
            .expect("GET");
        let (status, body, _) = common::split(resp).await;
        (status, body)
    }

    /// Every resource of a search, following `next` links; (status of the first page,
    /// `Type/id` of matches, of includes, the first page's total).
    async fn search_all(
        &self,
        role: Role,
        path: &str,
    ) -> (u16, BTreeSet<String>, BTreeSet<String>, Option<u64>) {
        let (status, first) = self.get(role, path).await;
        let (mut matches, mut included) = (BTreeSet::new(), BTreeSet::new());
        let total = first["total"].as_u64();
        if status != 200 {
            return (status, matches, included, total);
        }
        let mut page = first;
        loop {
            for e in page["entry"].as_array().cloned().unwrap_or_default() {
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
            let next = page["link"]
                .as_array()
                .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned);
            match next {
                Some(url) => {
                    let resp = self.clients[role.code()]
                        .get(&url)
                        .send()
                        .await
                        .expect("next");
                    page = common::split(resp).await.1;
                }
                None => break,
            }
        }
        (status, matches, included, total)
    }

    fn obs_of(&self, p: P) -> BTreeSet<String> {
        self.observations[&p]
            .iter()
            .map(|o| format!("Observation/{o}"))
            .collect()
    }
}

/// Every resource of the fixture in `p`'s record (its compartment).
fn record_of(p: P, observations: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = observations.clone();
    out.insert(format!("Patient/{}", p.id()));
    let extra: &[&str] = match p {
        P::Own => &["Encounter/enc-own"],
        P::Other => &["Encounter/enc-other"],
        P::Emergency => &["Encounter/enc-emergency"],
        P::Denied => &["EpisodeOfCare/eoc-denied", "Consent/consent-denied"],
        P::Permitted => &["Consent/consent-permitted"],
        P::Booked => &["Appointment/appt-booked"],
    };
    out.extend(extra.iter().map(|s| s.to_string()));
    out
}

/// The patient the second observation of `p`'s record is about (its `focus`).
fn focus_of(p: P) -> P {
    if p == P::Own {
        P::Other
    } else {
        P::Own
    }
}

/// The expected status of reading a resource of type `t` in `p`'s record.
fn read_status(role: Role, t: &str, p: P, broken: bool) -> u16 {
    if role.reads_type(t) && role.sees(p, broken) {
        200
    } else {
        403
    }
}

async fn check_matrix(f: &Fixture, broken: bool) {
    let mut failures = Vec::new();
    let mut checked = 0usize;
    let mut expect = |what: String, got: &dyn std::fmt::Debug, want: &dyn std::fmt::Debug| {
        checked += 1;
        if format!("{got:?}") != format!("{want:?}") {
            failures.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    };
    for role in ROLES {
        let r = role.code();
        // Population searches: exactly the visible patients' resources, and totals that
        // count nothing else.
        let seen: Vec<P> = PATIENTS
            .into_iter()
            .filter(|p| role.sees(*p, broken))
            .collect();
        let want_patients: BTreeSet<String> =
            seen.iter().map(|p| format!("Patient/{}", p.id())).collect();
        let want_obs: BTreeSet<String> = seen.iter().flat_map(|p| f.obs_of(*p)).collect();
        for (t, want) in [("Patient", &want_patients), ("Observation", &want_obs)] {
            let (status, got, _, total) = f
                .search_all(role, &format!("{t}?_count=3&_total=accurate"))
                .await;
            if role.reads_type(t) {
                expect(format!("{r} {t} search status"), &status, &200u16);
                expect(format!("{r} {t} search matches"), &got, want);
                expect(
                    format!("{r} {t} search _total"),
                    &total,
                    &Some(want.len() as u64),
                );
            } else {
                expect(format!("{r} {t} search status"), &status, &403u16);
            }
        }
        let (status, body) = f.get(role, "Observation?_summary=count").await;
        if role.reads_type("Observation") {
            expect(
                format!("{r} _summary=count"),
                &(status, body["total"].as_u64()),
                &(200u16, Some(want_obs.len() as u64)),
            );
        }
        for p in PATIENTS {
            let id = p.id();
            let want = read_status(role, "Patient", p, broken);
            expect(
                format!("{r} read Patient/{id}"),
                &f.get(role, &format!("Patient/{id}")).await.0,
                &want,
            );
            let obs = &f.observations[&p][0];
            let want = read_status(role, "Observation", p, broken);
            expect(
                format!("{r} read Observation/{obs}"),
                &f.get(role, &format!("Observation/{obs}")).await.0,
                &want,
            );
            expect(
                format!("{r} vread Observation/{obs}"),
                &f.get(role, &format!("Observation/{obs}/_history/1"))
                    .await
                    .0,
                &want,
            );
            expect(
                format!("{r} history Observation/{obs}"),
                &f.get(role, &format!("Observation/{obs}/_history")).await.0,
                &want,
            );
            // Searches scoped to the patient: their observations, or nothing.
            let visible = role.reads_type("Observation") && role.sees(p, broken);
            let (status, got, _, total) = f
                .search_all(
                    role,
                    &format!("Observation?subject=Patient/{id}&_total=accurate"),
                )
                .await;
            if role.reads_type("Observation") {
                let want: BTreeSet<String> = if visible {
                    f.obs_of(p)
                } else {
                    BTreeSet::new()
                };
                expect(
                    format!("{r} Observation?subject={id}"),
                    &(status, &got, total),
                    &(200u16, &want, Some(want.len() as u64)),
                );
                let (status, got, _, _) = f
                    .search_all(role, &format!("Patient/{id}/Observation"))
                    .await;
                expect(
                    format!("{r} Patient/{id}/Observation"),
                    &(status, &got),
                    &(200u16, &want),
                );
                // A chain through the focus patient's name: it matches the
                // observations (of other patients) whose focus is this patient, and
                // only when both they and this patient are visible.
                let (_, got, _, _) = f
                    .search_all(
                        role,
                        &format!("Observation?focus:Patient.family={}", p.family()),
                    )
                    .await;
                let want_chain: BTreeSet<String> = PATIENTS
                    .into_iter()
                    .filter(|q| *q != p && focus_of(*q) == p)
                    .filter(|q| {
                        role.reads_type("Patient") && role.sees(*q, broken) && role.sees(p, broken)
                    })
                    .map(|q| format!("Observation/{}", f.observations[&q][1]))
                    .collect();
                expect(
                    format!("{r} chain focus.family={}", p.family()),
                    &got,
                    &want_chain,
                );
            } else {
                expect(
                    format!("{r} Observation?subject={id} status"),
                    &status,
                    &403u16,
                );
            }
            // $everything: the whole record when visible, nothing when not; only for a
            // role that reads every type in it.
            let (status, got, _, _) = f
                .search_all(role, &format!("Patient/{id}/$everything?_count=4"))
                .await;
            if role.reads_type("Observation") && role.reads_type("Consent") {
                let want: BTreeSet<String> = if role.sees(p, broken) {
                    record_of(p, &f.obs_of(p))
                } else {
                    BTreeSet::new()
                };
                expect(
                    format!("{r} Patient/{id}/$everything"),
                    &(status, &got),
                    &(200u16, &want),
                );
            } else {
                expect(
                    format!("{r} Patient/{id}/$everything status"),
                    &status,
                    &403u16,
                );
            }
            if role.reads_type("Patient") && role.reads_type("Observation") {
                // _has: the patient matches when a visible observation of another
                // patient has them as its focus.
                let (_, got, _, _) = f
                    .search_all(
                        role,
                        &format!("Patient?_id={id}&_has:Observation:focus:code=8867-4"),
                    )
                    .await;
                let found = PATIENTS
                    .into_iter()
                    .any(|q| q != p && focus_of(q) == p && role.sees(q, broken));
                let want: BTreeSet<String> = if role.sees(p, broken) && found {
                    [format!("Patient/{id}")].into()
                } else {
                    BTreeSet::new()
                };
                expect(format!("{r} _has from {id}"), &got, &want);
                // _revinclude of observations whose focus is this patient (one belongs to
                // each other patient): only those of visible patients come back.
                let (_, _, inc, _) = f
                    .search_all(
                        role,
                        &format!("Patient?_id={id}&_revinclude=Observation:focus"),
                    )
                    .await;
                let want: BTreeSet<String> = if role.sees(p, broken) {
                    PATIENTS
                        .into_iter()
                        .filter(|q| *q != p && role.sees(*q, broken))
                        .filter(|q| focus_of(*q) == p)
                        .map(|q| format!("Observation/{}", f.observations[&q][1]))
                        .collect()
                } else {
                    BTreeSet::new()
                };
                expect(format!("{r} _revinclude to {id}"), &inc, &want);
                // _include of the focus patient: only when that patient is visible.
                let obs2 = &f.observations[&p][1];
                let (_, _, inc, _) = f
                    .search_all(
                        role,
                        &format!("Observation?_id={obs2}&_include=Observation:focus"),
                    )
                    .await;
                let focus = focus_of(p);
                let want: BTreeSet<String> = if role.sees(p, broken) && role.sees(focus, broken) {
                    [format!("Patient/{}", focus.id())].into()
                } else {
                    BTreeSet::new()
                };
                expect(format!("{r} _include from {obs2}"), &inc, &want);
            }
        }
        // Type history: only versions of visible records; no total unless all are.
        let (status, body) = f.get(role, "Observation/_history?_count=100").await;
        if role.reads_type("Observation") {
            let got: BTreeSet<String> = body["entry"]
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
            expect(
                format!("{r} Observation/_history"),
                &(status, &got),
                &(200u16, &want_obs),
            );
            let total_shown = body.get("total").is_some();
            expect(
                format!("{r} history total shown"),
                &total_shown,
                &(role == Role::SystemAdmin),
            );
        } else {
            expect(format!("{r} Observation/_history status"), &status, &403u16);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 300, "only {checked} checks ran");
}

async fn access_matrix(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    check_matrix(&f, false).await;
    confirmed_patients_change_no_answer(&f, false).await;

    // Break the glass: the front desk may not; a nurse may, with a reason; then the
    // emergency patient's record opens to that nurse only, and the audit log holds it.
    let btg = json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "unconscious in the emergency room"}]});
    let path = format!("Patient/{}/$break-the-glass", P::Emergency.id());
    let send = |role: Role, body: Value| {
        let req = f.clients[role.code()]
            .post(f.server.url(&path))
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
        async move { common::split(req.send().await.expect("POST")).await }
    };
    assert_eq!(send(Role::FrontDesk, btg.clone()).await.0, 403);
    let short = json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "because"}]});
    assert_eq!(
        send(Role::Nurse, short).await.0,
        400,
        "a reason is required"
    );
    let (status, body, _) = send(Role::Nurse, btg).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issue"][0]["severity"], "information");
    check_matrix(&f, true).await;
    confirmed_patients_change_no_answer(&f, true).await;
    let store = f.server.records.store().clone();
    let log = tokio::task::spawn_blocking(move || {
        let mut tx = store.read().expect("read");
        oxehr_store::audit::list(tx.as_mut(), 0, 1000).expect("audit")
    })
    .await
    .expect("join");
    let flagged: Vec<_> = log
        .iter()
        .map(|r| &r.record)
        .filter(|r| r.action == "break-the-glass")
        .collect();
    assert_eq!(flagged.len(), 1, "{log:?}");
    assert_eq!(
        flagged[0].user.as_deref(),
        Some(Role::Nurse.user().as_str())
    );
    assert_eq!(flagged[0].patient.as_deref(), Some(P::Emergency.id()));
    assert_eq!(flagged[0].organization.as_deref(), Some(ORG_A));
}

/// `Records::confirm_patient` (a page's one check of a patient, after which its other
/// statements skip the care set): it confirms exactly the patients the matrix says a
/// role sees, refuses the others as a read does, and a confirmed caller gets the same
/// answer as the unconfirmed one to every patient's Observation search (its own
/// patient's and everyone else's, focus probes included).
async fn confirmed_patients_change_no_answer(f: &Fixture, broken: bool) {
    use oxehr_records::Category;
    let scopes: Vec<oxehr_auth::scope::Scope> = ["user/*.cruds"]
        .iter()
        .filter_map(|s| oxehr_auth::parse_scope(s).ok())
        .collect();
    for (role, auth_role) in [
        (Role::Clinician, oxehr_auth::Role::Clinician),
        (Role::Nurse, oxehr_auth::Role::Nurse),
        (Role::FrontDesk, oxehr_auth::Role::FrontDesk),
    ] {
        let caller = oxehr_auth::Caller::new(
            role.user(),
            auth_role,
            Some(ORG_A.to_owned()),
            None,
            None,
            &scopes,
        );
        for p in PATIENTS {
            let (records, c) = (f.server.records.clone(), caller.clone());
            let got = tokio::task::spawn_blocking(move || {
                let confirmed = records.confirm_patient(&c, p.id());
                let searches = |who: &oxehr_auth::Caller| {
                    PATIENTS
                        .iter()
                        .map(|q| {
                            let query = oxehr_records::query::parse(
                                &["Observation".to_owned()],
                                &[("patient".to_owned(), q.id().to_owned())],
                                false,
                                None,
                            )
                            .expect("query");
                            match records.search(who, &query, 100) {
                                Ok(page) => {
                                    let mut ids: Vec<String> = page
                                        .matches
                                        .iter()
                                        .map(|r| r.id.as_str().to_owned())
                                        .collect();
                                    ids.sort();
                                    format!("{ids:?}")
                                }
                                Err(e) => format!("{:?}", e.category()),
                            }
                        })
                        .collect::<Vec<_>>()
                };
                let plain = searches(&c);
                let after = confirmed.as_ref().ok().map(searches);
                (confirmed.map_err(|e| e.category()), plain, after)
            })
            .await
            .expect("join");
            match got {
                (Ok(_), plain, Some(after)) => {
                    assert!(role.sees(p, broken), "{role:?} confirmed {p:?}");
                    assert_eq!(plain, after, "{role:?} confirmed {p:?}: answers changed");
                }
                (Err(category), _, _) => {
                    assert!(!role.sees(p, broken), "{role:?} refused {p:?}");
                    assert_eq!(category, Category::Forbidden, "{role:?} {p:?}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_matrix_sqlite() {
    access_matrix(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_matrix_postgres() {
    access_matrix(Backend::Postgres).await;
}

/// A patient's Consent takes effect on the next request: denying organization A hides
/// the record from A's clinician; withdrawing the denial shows it again. A patient
/// writes Consents only for themselves, and no clinical data.
async fn consent_takes_effect(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let own = P::Own.id();
    let own_path = format!("Patient/{own}");
    let read = |role| f.get(role, &own_path);
    assert_eq!(read(Role::Clinician).await.0, 200);
    let deny = consent("consent-own", own, "deny", ORG_A);
    let post = |role: Role, path: &str, body: &Value, method: Method| {
        let req = f.clients[role.code()]
            .request(method, f.server.url(path))
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
        async move { common::split(req.send().await.expect("send")).await }
    };
    let (status, body, _) = post(Role::Patient, "Consent/consent-own", &deny, Method::PUT).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        read(Role::Clinician).await.0,
        403,
        "denied on the next request"
    );
    let (_, got, _, total) = f
        .search_all(
            Role::Clinician,
            &format!("Observation?subject=Patient/{own}&_total=accurate"),
        )
        .await;
    assert!(got.is_empty() && total == Some(0), "{got:?} {total:?}");
    let mut withdrawn = deny.clone();
    withdrawn["status"] = json!("inactive");
    let (status, body, _) = post(
        Role::Patient,
        "Consent/consent-own",
        &withdrawn,
        Method::PUT,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(read(Role::Clinician).await.0, 200, "visible again");

    // Another patient's Consent, or clinical data: refused, nothing stored.
    let other = consent("consent-forged", P::Other.id(), "permit", ORG_A);
    assert_eq!(
        post(Role::Patient, "Consent/consent-forged", &other, Method::PUT)
            .await
            .0,
        403
    );
    let obs = observation("obs-self-reported", own, None);
    assert_eq!(
        post(Role::Patient, "Observation", &obs, Method::POST)
            .await
            .0,
        403
    );
    assert_eq!(
        f.get(Role::SystemAdmin, "Consent/consent-forged").await.0,
        404
    );
    // Staff write only into records they see, or records they take into care.
    let obs = observation("obs-other-by-a", P::Other.id(), None);
    assert_eq!(
        post(
            Role::Clinician,
            "Observation/obs-other-by-a",
            &obs,
            Method::PUT
        )
        .await
        .0,
        403
    );
    let obs = observation("obs-own-by-a", own, None);
    assert_eq!(
        post(
            Role::Clinician,
            "Observation/obs-own-by-a",
            &obs,
            Method::PUT
        )
        .await
        .0,
        201
    );
    let visit = json!({"resourceType": "Encounter", "id": "enc-walk-in", "status": "arrived",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "subject": {"reference": format!("Patient/{}", P::Other.id())},
        "serviceProvider": {"reference": format!("Organization/{ORG_A}")}});
    assert_eq!(
        post(
            Role::Clinician,
            "Encounter/enc-walk-in",
            &visit,
            Method::PUT
        )
        .await
        .0,
        201
    );
    assert_eq!(
        f.get(Role::Clinician, &format!("Patient/{}", P::Other.id()))
            .await
            .0,
        200,
        "a walk-in is a care relationship"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consent_takes_effect_sqlite() {
    consent_takes_effect(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consent_takes_effect_postgres() {
    consent_takes_effect(Backend::Postgres).await;
}

/// The care relationships follow the record as it changes: a practitioner's role moved
/// to another organization takes the booked patient out of A's care, and a deleted
/// encounter the patient it was the only tie to.
async fn care_follows_the_record(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let f = &f;
    let status_of = move |p: P| {
        let path = format!("Patient/{}", p.id());
        async move { f.get(Role::Clinician, &path).await.0 }
    };
    assert_eq!(status_of(P::Booked).await, 200);
    assert_eq!(status_of(P::Own).await, 200);
    let admin = move |method: Method, path: &str, body: Option<Value>| {
        let mut req = f.clients[Role::SystemAdmin.code()]
            .request(method, f.server.url(path))
            .header("content-type", "application/fhir+json");
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        async move { common::split(req.send().await.expect("send")).await.0 }
    };
    let role = |org: &str| {
        json!({"resourceType": "PractitionerRole", "id": "role-a",
            "practitioner": {"reference": "Practitioner/doc-a"},
            "organization": {"reference": format!("Organization/{org}")}})
    };
    assert_eq!(
        admin(Method::PUT, "PractitionerRole/role-a", Some(role(ORG_B))).await,
        200
    );
    assert_eq!(status_of(P::Booked).await, 403, "the role moved to B");
    assert_eq!(
        admin(Method::PUT, "PractitionerRole/role-a", Some(role(ORG_A))).await,
        200
    );
    assert_eq!(status_of(P::Booked).await, 200, "the role back at A");
    assert_eq!(admin(Method::DELETE, "Encounter/enc-own", None).await, 204);
    assert_eq!(status_of(P::Own).await, 403, "the only encounter deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn care_follows_the_record_sqlite() {
    care_follows_the_record(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn care_follows_the_record_postgres() {
    care_follows_the_record(Backend::Postgres).await;
}

/// No credential, a forged or expired token, or a disabled account: 401 with a
/// `WWW-Authenticate` challenge and an OperationOutcome; the CapabilityStatement stays
/// public.
async fn unauthenticated(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let url = f.server.url("Patient");
    let check = |resp: reqwest::Response| async move {
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (status, body, _) = common::split(resp).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
        assert_eq!(body["issue"][0]["code"], "login");
        assert!(challenge.is_some_and(|c| c.starts_with("Bearer")));
    };
    check(f.server.anonymous.get(&url).send().await.expect("get")).await;
    check(
        f.server
            .anonymous
            .get(&url)
            .header("authorization", "Basic YWRtaW46YWRtaW4=")
            .send()
            .await
            .expect("get"),
    )
    .await;
    let other_key = oxehr_auth::token::SigningKey::generate();
    let forged = issue_token(
        &other_key,
        "matrix-system-admin",
        "system-admin",
        "system/*.cruds",
        None,
        None,
        None,
    );
    check(client_with(&forged).get(&url).send().await.expect("get")).await;
    let mut parts: Vec<String> = issue_token(
        &f.server.key,
        "matrix-clinician",
        "clinician",
        "user/*.cruds",
        Some(ORG_A),
        None,
        None,
    )
    .split('.')
    .map(str::to_owned)
    .collect();
    // A token whose claims were edited (role raised) no longer verifies.
    let claims: Value = serde_json::from_slice(&base64_url_decode(&parts[1])).expect("claims");
    let mut raised = claims.clone();
    raised["role"] = json!("system-admin");
    parts[1] = base64_url_encode(raised.to_string().as_bytes());
    check(
        client_with(&parts.join("."))
            .get(&url)
            .send()
            .await
            .expect("get"),
    )
    .await;
    // An expired token.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let expired = oxehr_auth::token::issue(
        &f.server.key,
        &oxehr_auth::token::Claims {
            iss: common::ISSUER.into(),
            sub: "matrix-clinician".into(),
            aud: common::ISSUER.into(),
            iat: now - 7200,
            exp: now - 3600,
            jti: "expired".into(),
            scope: "user/*.cruds".into(),
            role: "clinician".into(),
            org: Some(ORG_A.into()),
            fhir_user: None,
            patient: None,
        },
    )
    .expect("token");
    check(client_with(&expired).get(&url).send().await.expect("get")).await;
    // A disabled account's token stops working at once (`token_check_secs` 0).
    assert_eq!(f.get(Role::Nurse, "Patient").await.0, 200);
    let store = f.server.records.store().clone();
    tokio::task::spawn_blocking(move || {
        oxehr_auth::accounts::set_disabled(&store, "matrix-nurse", true)
    })
    .await
    .expect("join")
    .expect("disable");
    let resp = f.clients["nurse"].get(&url).send().await.expect("get");
    check(resp).await;
    let (status, body, _) = common::split(
        f.server
            .anonymous
            .get(f.server.url("metadata"))
            .send()
            .await
            .expect("metadata"),
    )
    .await;
    assert_eq!(
        (status, body["resourceType"].as_str()),
        (200, Some("CapabilityStatement"))
    );
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64")
}

fn base64_url_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_requests_get_401_sqlite() {
    unauthenticated(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_requests_get_401_postgres() {
    unauthenticated(Backend::Postgres).await;
}
