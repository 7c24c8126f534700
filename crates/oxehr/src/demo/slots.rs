//! Bookable time for the portal's demo: two Schedules of the demo clinician's
//! organization, each with free Slots on the weekdays of the next 14 days (UTC):
//!
//! - the demo clinician's clinic (a PractitionerRole of the organization): 30-minute
//!   Slots from 09:00 to 12:00, booked at once;
//! - the nurse clinic (a HealthcareService of the organization, "Blood pressure
//!   check"): 15-minute Slots from 14:00 to 15:00, which staff confirm
//!   (`schedule-requires-confirmation`), so a booking stays proposed until then.
//!
//! Each start of `serve --demo` adds the days that have no Slots yet, so a demo database
//! kept for days keeps two weeks ahead of it. The Schedules are found again by their
//! identifiers (conditional creates).

use anyhow::{Context, Result};
use serde_json::{json, Value};

use oxehr_records::{format_instant, now_micros, Caller, Records};

use super::{search, Staff};

/// How far ahead the demo offers time, in days.
pub(super) const DAYS_AHEAD: i64 = 14;
const IDENTIFIER_SYSTEM: &str = "urn:oxehr:demo";
const DAY: i64 = 86_400_000_000;

/// One kind of demo Schedule.
struct Clinic {
    key: &'static str,
    name: &'static str,
    /// (first start, last start), minutes after midnight UTC, and the Slot length.
    hours: (u32, u32),
    minutes: u32,
    confirm: bool,
}

const CLINICS: [Clinic; 2] = [
    Clinic {
        key: "clinic",
        name: "Clinic appointment",
        hours: (9 * 60, 11 * 60 + 30),
        minutes: 30,
        confirm: false,
    },
    Clinic {
        key: "nurse-clinic",
        name: "Blood pressure check (nurse clinic)",
        hours: (14 * 60, 14 * 60 + 45),
        minutes: 15,
        confirm: true,
    },
];

/// Conditional create of `resource` by its demo identifier `key`; the stored id.
fn ensure(records: &Records, resource: Value, key: &str) -> Result<String> {
    let rtype = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let t = oxehr_fhir::ResourceType::parse(&rtype).context("type")?;
    let out = records
        .create(
            &Caller::server(),
            &t,
            resource,
            Some(&format!("identifier={IDENTIFIER_SYSTEM}|{key}")),
        )
        .map_err(|e| anyhow::anyhow!("demo {rtype} {key}: {e}"))?;
    Ok(out.resource.id.as_str().to_owned())
}

/// The demo clinic's actor for `clinic`: the clinician's PractitionerRole, or the nurse
/// clinic's HealthcareService.
fn actor(records: &Records, staff: &Staff, clinic: &Clinic) -> Result<Value> {
    let org = json!({ "reference": format!("Organization/{}", staff.organization) });
    let ident = json!([{ "system": IDENTIFIER_SYSTEM, "value": format!("{}-actor", clinic.key) }]);
    Ok(if clinic.confirm {
        let id = ensure(
            records,
            json!({ "resourceType": "HealthcareService", "identifier": ident, "active": true,
                    "providedBy": org, "name": "Nurse clinic" }),
            &format!("{}-actor", clinic.key),
        )?;
        json!({ "reference": format!("HealthcareService/{id}"), "display": "Nurse clinic" })
    } else {
        let id = ensure(
            records,
            json!({ "resourceType": "PractitionerRole", "identifier": ident, "active": true,
                    "practitioner": { "reference": staff.practitioner },
                    "organization": org }),
            &format!("{}-actor", clinic.key),
        )?;
        json!({ "reference": format!("PractitionerRole/{id}") })
    })
}

/// Makes sure both Schedules exist and have Slots on each weekday of the next
/// [`DAYS_AHEAD`] days.
pub(super) fn ensure_ahead(records: &Records, staff: &Staff) -> Result<()> {
    let now = now_micros();
    let today = now - now.rem_euclid(DAY);
    let mut added = 0;
    for clinic in &CLINICS {
        let actor = actor(records, staff, clinic)?;
        let mut schedule = json!({
            "resourceType": "Schedule",
            "identifier": [{ "system": IDENTIFIER_SYSTEM, "value": clinic.key }],
            "active": true,
            "serviceType": [{ "text": clinic.name }],
            "actor": [actor],
            "comment": clinic.name
        });
        if clinic.confirm {
            schedule["extension"] = json!([{
                "url": oxehr_records::REQUIRES_CONFIRMATION_URL,
                "valueBoolean": true
            }]);
        }
        let schedule_id = ensure(records, schedule, clinic.key)?;
        for d in 1..=DAYS_AHEAD {
            let day = today + d * DAY;
            // 1970-01-01 was a Thursday: 0 = Thursday … 2 = Saturday, 3 = Sunday.
            if matches!((day / DAY).rem_euclid(7), 2 | 3) {
                continue;
            }
            let date = format_instant(day)[..10].to_owned();
            let existing = search(
                records,
                "Slot",
                &[
                    ("schedule", format!("Schedule/{schedule_id}")),
                    ("start", date.clone()),
                ],
                1,
            )?;
            if !existing.is_empty() {
                continue;
            }
            let mut entries = Vec::new();
            let mut m = clinic.hours.0;
            while m <= clinic.hours.1 {
                let start = day + i64::from(m) * 60_000_000;
                let end = start + i64::from(clinic.minutes) * 60_000_000;
                entries.push(json!({
                    "request": { "method": "POST", "url": "Slot" },
                    "resource": {
                        "resourceType": "Slot",
                        "schedule": { "reference": format!("Schedule/{schedule_id}") },
                        "status": "free",
                        "serviceType": [{ "text": clinic.name }],
                        "start": format_instant(start),
                        "end": format_instant(end)
                    }
                }));
                m += clinic.minutes;
            }
            added += entries.len();
            records
                .bundle(
                    &Caller::server(),
                    json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries }),
                )
                .map_err(|e| anyhow::anyhow!("demo slots: {e}"))?;
        }
    }
    if added > 0 {
        tracing::info!(
            slots = added,
            "made the demo clinics' free time for the next two weeks"
        );
    }
    Ok(())
}
