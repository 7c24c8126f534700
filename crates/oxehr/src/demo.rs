//! The demo record: a handful of Synthea patients shipped in the repository (`demo/`,
//! Apache-2.0, see `demo/NOTICE`), compiled into the binary so `serve --demo` works from
//! any directory, and what the demo adds to them through `Records` as the server: one
//! account per role, a progress note for each patient in the demo clinician's care
//! (`notes`), that clinician's appointments for today (`schedule`), two weeks of free
//! time to book at the organization's clinics (`slots`), and a message thread and a
//! refill request of the demo patient's (`portal`).
//!
//! The first bundle decides who the demo staff are: its Organization (Boston Children's
//! Hospital) and Practitioner. Four more patients have encounters there (three of them
//! also at other organizations), so five patients are in the demo clinician's care; the
//! last one (Lahey) is not, and opens only by breaking the glass.

mod exchange;
mod notes;
mod portal;
mod schedule;
mod slots;

use anyhow::{Context, Result};
use serde_json::Value;

use oxehr_auth::accounts::{self, NewAccount};
use oxehr_auth::Role;
use oxehr_records::{Caller, EntryOutcome, Records, StoredResource};

macro_rules! bundle {
    ($file:literal) => {
        (
            $file,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo/", $file)),
        )
    };
}

/// The demo bundles: (file name, transaction Bundle JSON). The first one's organization
/// and practitioner are the demo staff's.
pub const BUNDLES: &[(&str, &str)] = &[
    bundle!("Kermit_Trantow_f1a650a5-737e-4fd7-828e-03c3348b9524.json"),
    bundle!("Brady_Kuhlman_79ef6ec3-e86a-441b-bb6b-c15936ee8be9.json"),
    bundle!("Cameron_Greenfelder_9b55212c-8024-4b8b-bc82-fa605435f63b.json"),
    bundle!("Rickey_Becker_f7b1ad4f-8063-4bfa-8b0d-f5245077ae05.json"),
    bundle!("Shavonne_Schaefer_e37f11b3-2f8f-4cba-bda7-d93091348d14.json"),
    bundle!("Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"),
];

/// The demo accounts' password (demo data only: documented in the README, never for
/// a real deployment). Staff demo accounts do not require MFA.
pub const DEMO_PASSWORD: &str = "oxehr-demo-password";

/// The account whose organization and practitioner the notes and the schedule are for.
const DEMO_CLINICIAN: &str = "demo-clinician";

/// Who the demo staff are: an Organization id and the clinician's `Practitioner/…`.
#[derive(Debug, Clone)]
struct Staff {
    organization: String,
    practitioner: String,
}

/// Loads the demo record when the store holds no patient yet, then makes sure the demo
/// clinician has today's appointments (at every start: a demo database outlives a day).
pub fn load(records: &Records) -> Result<()> {
    load_if_empty(records)?;
    match staff(records)? {
        Some(staff) => {
            schedule::ensure_today(records, &staff)?;
            slots::ensure_ahead(records, &staff)
        }
        None => {
            tracing::info!("no demo clinician account; no demo schedule made");
            Ok(())
        }
    }
}

/// Loads the demo patients unless the record already holds a Patient, creates one demo
/// account per role (when no account exists yet): the staff belong to the first demo
/// patient's organization, the patient account is that patient; and writes a demo note
/// for each patient in the staff's care.
fn load_if_empty(records: &Records) -> Result<()> {
    let server = Caller::server();
    if !search(records, "Patient", &[], 1)?.is_empty() {
        tracing::info!("the record already holds patients; demo data not loaded");
        return Ok(());
    }
    let mut resources = 0;
    let mut first: Option<Vec<StoredResource>> = None;
    for (name, json) in BUNDLES {
        let mut bundle: Value =
            serde_json::from_str(json).with_context(|| format!("demo bundle {name}"))?;
        share_directory_entries(&mut bundle);
        let (_, outcomes) = records
            .bundle(&server, bundle)
            .map_err(|e| anyhow::anyhow!("demo bundle {name}: {e}"))?;
        resources += outcomes.len();
        if first.is_none() {
            first = Some(
                outcomes
                    .into_iter()
                    .filter_map(|o| match o {
                        EntryOutcome::Created(r)
                        | EntryOutcome::Updated(r)
                        | EntryOutcome::Existing(r) => Some(r),
                        _ => None,
                    })
                    .collect(),
            );
        }
    }
    tracing::info!(
        bundles = BUNDLES.len(),
        resources,
        "loaded the demo patients"
    );
    let first = first.unwrap_or_default();
    demo_users(records, &first)?;
    if let Some(staff) = staff(records)? {
        let patient = first.iter().find(|r| r.rtype.as_str() == "Patient");
        notes::write(records, &staff, patient.map(|r| r.id.as_str()))?;
        if let Some(p) = patient {
            portal::write(records, &staff, p.id.as_str())?;
        }
        portal::link_proxy(records)?;
        let in_care = patients_in_care(records, &staff.organization, 50)?;
        let portal_patient = patient.map(|p| p.id.as_str().to_owned());
        if let Some(lookalike) = in_care
            .iter()
            .rev()
            .find(|p| p["id"].as_str() != portal_patient.as_deref())
        {
            exchange::write(records, &staff, lookalike)?;
        }
    }
    Ok(())
}

/// Synthea writes the organizations and practitioners a patient saw into that patient's
/// bundle as plain creates, so two patients of one hospital would get two copies of it
/// (and only one of them would be the demo staff's). Each such entry becomes a
/// conditional create on its identifier (`ifNoneExist`), as Synthea's own newer output
/// does: the second bundle's references then resolve to the resource the first made.
/// The resources themselves are loaded as published.
fn share_directory_entries(bundle: &mut Value) {
    let Some(entries) = bundle["entry"].as_array_mut() else {
        return;
    };
    for entry in entries {
        let rtype = entry["resource"]["resourceType"].as_str().unwrap_or("");
        if !matches!(rtype, "Organization" | "Practitioner")
            || entry["request"]["method"] != "POST"
            || !entry["request"]["ifNoneExist"].is_null()
        {
            continue;
        }
        let id = &entry["resource"]["identifier"][0];
        if let (Some(system), Some(value)) = (id["system"].as_str(), id["value"].as_str()) {
            let condition = format!(
                "identifier={}|{}",
                oxehr_search::escape_value(system),
                oxehr_search::escape_value(value)
            );
            entry["request"]["ifNoneExist"] = Value::String(condition);
        }
    }
}

/// One account per role, named `demo-<role>`.
fn demo_users(records: &Records, first: &[StoredResource]) -> Result<()> {
    let store = records.store();
    if !accounts::list(store)?.is_empty() {
        return Ok(());
    }
    let id_of = |t: &str| {
        first
            .iter()
            .find(|r| r.rtype.as_str() == t)
            .map(|r| r.id.as_str().to_owned())
            .ok_or_else(|| anyhow::anyhow!("the first demo bundle has no {t}"))
    };
    let (org, practitioner, patient) = (
        id_of("Organization")?,
        id_of("Practitioner")?,
        id_of("Patient")?,
    );
    for role in Role::ALL {
        let (organization, person) = match role {
            Role::SystemAdmin => (None, None),
            Role::Patient => (None, Some(format!("Patient/{patient}"))),
            Role::Clinician | Role::Nurse => (
                Some(org.clone()),
                Some(format!("Practitioner/{practitioner}")),
            ),
            Role::FrontDesk | Role::OrgAdmin => (Some(org.clone()), None),
            // Acts for no one until a RelatedPerson names it.
            Role::Proxy => (None, None),
        };
        accounts::add(
            store,
            NewAccount {
                name: format!("demo-{}", role.code()),
                role,
                organization,
                person,
                password: DEMO_PASSWORD.to_owned(),
                mfa_required: Some(false),
            },
        )?;
    }
    tracing::info!(
        accounts = Role::ALL.len(),
        "created the demo accounts (demo-<role>)"
    );
    Ok(())
}

/// The demo clinician's organization and practitioner, when that account exists and is
/// a practitioner of an organization.
fn staff(records: &Records) -> Result<Option<Staff>> {
    let Some(account) = accounts::get(records.store(), DEMO_CLINICIAN)? else {
        return Ok(None);
    };
    let practitioner = account.person.filter(|p| p.starts_with("Practitioner/"));
    Ok(match (account.organization, practitioner) {
        (Some(organization), Some(practitioner)) => Some(Staff {
            organization,
            practitioner,
        }),
        _ => None,
    })
}

/// `rtype?pairs` as the server, at most `count` matches, as JSON.
fn search(
    records: &Records,
    rtype: &str,
    pairs: &[(&str, String)],
    count: usize,
) -> Result<Vec<Value>> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .chain([("_count".to_owned(), count.to_string())])
        .collect();
    let q = oxehr_records::query::parse(&[rtype.to_owned()], &pairs, false, None)?;
    let page = records.search(&Caller::server(), &q, count)?;
    Ok(page
        .matches
        .iter()
        .filter_map(|r| serde_json::from_str(r.body.as_deref()?).ok())
        .collect())
}

/// The living patients with an encounter at `org` (the demo's care relationship), by
/// name, at most `limit`.
fn patients_in_care(records: &Records, org: &str, limit: usize) -> Result<Vec<Value>> {
    let patients = search(
        records,
        "Patient",
        &[
            (
                "_has:Encounter:patient:service-provider",
                format!("Organization/{org}"),
            ),
            ("_sort", "family,given".to_owned()),
        ],
        limit,
    )?;
    Ok(patients
        .into_iter()
        .filter(|p| p["deceasedDateTime"].is_null() && p["deceasedBoolean"] != true)
        .collect())
}
