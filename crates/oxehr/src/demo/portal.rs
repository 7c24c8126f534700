//! What the demo adds for the portal and the inbox, so that a newcomer can click through
//! each flow: a message thread between the demo patient and the demo clinician's
//! organization (the clinician's answer not yet read by the patient), and a refill
//! request of the patient's waiting in the clinician's inbox. Written through
//! `oxehr_records::requests` as the demo accounts themselves, as the pages would.

use anyhow::Result;

use oxehr_auth::{Caller, Role};
use oxehr_records::Records;

use super::Staff;

fn caller(
    name: &str,
    role: Role,
    organization: Option<&str>,
    person: &str,
    patient: Option<&str>,
) -> Result<Caller> {
    let scope = if role == Role::Patient {
        "patient/*.cruds"
    } else {
        "user/*.cruds"
    };
    let scopes = vec![oxehr_auth::parse_scope(scope).map_err(|e| anyhow::anyhow!("{e}"))?];
    Ok(Caller::new(
        name.to_owned(),
        role,
        organization.map(str::to_owned),
        Some(person.to_owned()),
        patient.map(str::to_owned),
        &scopes,
    ))
}

/// The thread and the refill request, for `patient` (the demo patient account's).
pub fn write(records: &Records, staff: &Staff, patient: &str) -> Result<()> {
    let me = caller(
        "demo-patient",
        Role::Patient,
        None,
        &format!("Patient/{patient}"),
        Some(patient),
    )?;
    let clinician = caller(
        "demo-clinician",
        Role::Clinician,
        Some(&staff.organization),
        &staff.practitioner,
        None,
    )?;
    let root = records.send_message(
        &me,
        patient,
        None,
        Some(&staff.organization),
        "Dizzy when I stand up",
        "Since I started the new blood pressure tablet I feel dizzy for a few seconds when I \
         get up quickly. Is that expected?",
    )?;
    records.mark_thread_read(&clinician, patient, root.id.as_str())?;
    records.send_message(
        &clinician,
        patient,
        Some(root.id.as_str()),
        None,
        "",
        "That can happen in the first weeks. Stand up slowly and drink enough water. If it \
         does not settle within two weeks, or you faint, book a visit.",
    )?;
    // A refill of the patient's last active prescription (by name), waiting for the
    // clinician; the others are left for the newcomer to ask for.
    let q = oxehr_records::query::parse(
        &["MedicationRequest".to_owned()],
        &[
            ("patient".to_owned(), patient.to_owned()),
            ("status".to_owned(), "active".to_owned()),
        ],
        false,
        None,
    )?;
    let page = records.search(&me, &q, 100)?;
    let mut active: Vec<(String, String)> = page
        .matches
        .iter()
        .filter_map(|r| {
            let v: serde_json::Value = serde_json::from_str(r.body.as_deref()?).ok()?;
            let name = v["medicationCodeableConcept"]["text"]
                .as_str()
                .or_else(|| v["medicationCodeableConcept"]["coding"][0]["display"].as_str())?
                .to_owned();
            Some((name, r.id.as_str().to_owned()))
        })
        .collect();
    active.sort();
    if let Some((_, id)) = active.last() {
        records.request_refill(&me, patient, id, "I have a week's supply left.")?;
    }
    tracing::info!("wrote the demo message thread and refill request");
    Ok(())
}

/// Links the `demo-proxy` account to the youngest demo patient as their parent (a
/// RelatedPerson naming the account), so that the proxy pages have someone to show.
pub fn link_proxy(records: &Records) -> Result<()> {
    let youngest = super::search(records, "Patient", &[("_sort", "-birthdate".to_owned())], 1)?;
    let Some(child) = youngest.first().and_then(|p| p["id"].as_str()) else {
        return Ok(());
    };
    let rtype = oxehr_fhir::ResourceType::parse("RelatedPerson")
        .ok_or_else(|| anyhow::anyhow!("RelatedPerson type"))?;
    records
        .create(
            &Caller::server(),
            &rtype,
            oxehr_records::requests::proxy_grant(
                child,
                "demo-proxy",
                "Demo Parent",
                ("PRN", "Parent"),
                &oxehr_records::format_instant(oxehr_records::now_micros()),
            ),
            None,
        )
        .map_err(|e| anyhow::anyhow!("demo proxy: {e}"))?;
    tracing::info!("linked demo-proxy to the youngest demo patient");
    Ok(())
}
