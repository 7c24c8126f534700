//! The demo record: a handful of Synthea patients shipped in the repository (`demo/`,
//! Apache-2.0, see `demo/NOTICE`), compiled into the binary so `serve --demo` works from
//! any directory.

use anyhow::{Context, Result};

use oxehr_auth::accounts::{self, NewAccount};
use oxehr_auth::Role;
use oxehr_records::{Caller, EntryOutcome, Records, StoredResource};

/// The demo bundles: (file name, transaction Bundle JSON).
pub const BUNDLES: &[(&str, &str)] = &[
    (
        "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../demo/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"
        )),
    ),
    (
        "Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../demo/Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json"
        )),
    ),
    (
        "Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../demo/Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json"
        )),
    ),
    (
        "Antonio_Castellanos_6d2eba67-5b4a-403f-a29f-e6da3f1ea963.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../demo/Antonio_Castellanos_6d2eba67-5b4a-403f-a29f-e6da3f1ea963.json"
        )),
    ),
    (
        "Stephen_McLaughlin_7735ab79-6ac8-4b81-9936-f7ddabd18751.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../demo/Stephen_McLaughlin_7735ab79-6ac8-4b81-9936-f7ddabd18751.json"
        )),
    ),
];

/// The demo accounts' password (demo data only: documented in the README, never for
/// a real deployment). Staff demo accounts do not require MFA.
pub const DEMO_PASSWORD: &str = "oxehr-demo-password";

/// Loads the demo patients unless the record already holds a Patient, and creates one
/// demo account per role (when no account exists yet): the staff belong to the first
/// demo patient's organization, the patient account is that patient.
pub fn load_if_empty(records: &Records) -> Result<()> {
    let server = Caller::server();
    let q = oxehr_records::query::parse(&["Patient".to_string()], &[], false, None)?;
    if !records.search(&server, &q, 1)?.matches.is_empty() {
        tracing::info!("the record already holds patients; demo data not loaded");
        return Ok(());
    }
    let mut resources = 0;
    let mut first: Option<Vec<StoredResource>> = None;
    for (name, json) in BUNDLES {
        let bundle: serde_json::Value =
            serde_json::from_str(json).with_context(|| format!("demo bundle {name}"))?;
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
    if let Some(first) = first {
        demo_users(records, &first)?;
    }
    Ok(())
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
