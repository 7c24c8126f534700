//! What a booking operation reads, in one snapshot: a Slot, its Schedule, an
//! Appointment, the active Appointments that hold a Slot, the organizations an
//! Appointment belongs to.

use serde_json::Value;

use oxehr_fhir::{IssueCode, ResourceId};
use oxehr_store::access::Access;
use oxehr_store::search::Position;
use oxehr_store::{ReadTx, StoredResource};

use super::schedule::{self, local_ref, ReadLookup, ScheduleInfo};
use super::{rtype, ACTIVE, MAX_SLOTS};
use crate::interactions::parse_body;
use crate::{time_fmt, RecordsError};

/// A Slot as a booking operation read it.
pub(super) struct SlotState {
    pub stored: StoredResource,
    pub body: Value,
    pub status: String,
    pub start: i64,
    pub schedule: String,
}

/// An Appointment as a booking operation read it.
pub(super) struct AppointmentState {
    pub stored: StoredResource,
    pub body: Value,
    pub status: String,
    /// The one Patient participant.
    pub patient: Option<String>,
    /// The Slots it holds (ids).
    pub slots: Vec<String>,
    pub start: Option<i64>,
}

/// The current Slot `id`: `NotFound` when there is none (or it is deleted), `Invalid`
/// when it has no start or no local Schedule reference.
pub(super) fn read_slot(tx: &mut dyn ReadTx, id: &str) -> Result<SlotState, RecordsError> {
    let missing = || RecordsError::NotFound(format!("Slot/{id}"));
    let rid = ResourceId::parse(id).ok_or_else(missing)?;
    let stored = match tx.current(&rtype("Slot")?, &rid)? {
        Some(r) if !r.is_deleted() => r,
        _ => return Err(missing()),
    };
    let body = parse_body(&stored)?;
    let text = |f: &str| body.get(f).and_then(Value::as_str).map(str::to_owned);
    let start = text("start").as_deref().and_then(time_fmt::parse_instant);
    let schedule = body.get("schedule").and_then(local_ref);
    match (start, schedule) {
        (Some(start), Some((t, schedule))) if t == "Schedule" => Ok(SlotState {
            status: text("status").unwrap_or_default(),
            start,
            schedule,
            body,
            stored,
        }),
        _ => Err(RecordsError::invalid(
            IssueCode::Invalid,
            "that time slot has no start or no schedule, and cannot be booked",
        )),
    }
}

/// Schedule `id`, described (`NotFound` when there is none).
pub(super) fn read_schedule(
    lookup: &mut ReadLookup<'_>,
    id: &str,
) -> Result<ScheduleInfo, RecordsError> {
    match schedule::Lookup::get(lookup, "Schedule", id)? {
        Some(s) => schedule::describe(id, &s, lookup),
        None => Err(RecordsError::NotFound(format!("Schedule/{id}"))),
    }
}

/// The current Appointment `id` (`NotFound` when there is none or it is deleted).
pub(super) fn read_appointment(
    tx: &mut dyn ReadTx,
    id: &ResourceId,
) -> Result<AppointmentState, RecordsError> {
    let stored = match tx.current(&rtype("Appointment")?, id)? {
        Some(r) if !r.is_deleted() => r,
        _ => return Err(RecordsError::NotFound(format!("Appointment/{id}"))),
    };
    let body = parse_body(&stored)?;
    let mut patients: Vec<String> = participants(&body)
        .iter()
        .filter_map(|p| p.get("actor").and_then(local_ref))
        .filter(|(t, _)| t == "Patient")
        .map(|(_, id)| id)
        .collect();
    patients.sort();
    patients.dedup();
    let slots = body
        .get("slot")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(local_ref)
                .filter(|(t, _)| t == "Slot")
                .map(|(_, id)| id)
                .take(MAX_SLOTS)
                .collect()
        })
        .unwrap_or_default();
    Ok(AppointmentState {
        status: body
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        patient: (patients.len() == 1).then(|| patients.remove(0)),
        slots,
        start: body
            .get("start")
            .and_then(Value::as_str)
            .and_then(time_fmt::parse_instant),
        body,
        stored,
    })
}

pub(super) fn participants(appointment: &Value) -> Vec<Value> {
    appointment
        .get("participant")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Ids of the active Appointments that name Slot `slot`, read as the server (whose
/// they are is not told; a Slot's being taken is what any booking page shows).
pub(super) fn holders(tx: &mut dyn ReadTx, slot: &str) -> Result<Vec<String>, RecordsError> {
    let q = crate::query::parse(
        &["Appointment".to_owned()],
        &[
            ("slot".to_owned(), format!("Slot/{slot}")),
            ("status".to_owned(), ACTIVE.join(",")),
        ],
        false,
        None,
    )?;
    Ok(
        oxehr_store::search::page(tx, &Access::All, &q, &Position::First, MAX_SLOTS)?
            .into_iter()
            .map(|h| h.resource.id.as_str().to_owned())
            .collect(),
    )
}

/// The organizations an Appointment belongs to: those of its Slots' Schedules and of
/// its PractitionerRole, HealthcareService and Location participants.
pub(super) fn appointment_orgs(
    tx: &mut dyn ReadTx,
    appointment: &AppointmentState,
) -> Result<Vec<String>, RecordsError> {
    let actors: Vec<Value> = participants(&appointment.body)
        .iter()
        .filter_map(|p| p.get("actor").cloned())
        .collect();
    let mut lookup = ReadLookup::new(tx);
    let mut orgs = schedule::organizations_of(&actors, &mut lookup)?;
    for id in &appointment.slots {
        let schedule_id = match read_slot(lookup.tx(), id) {
            Ok(s) => s.schedule,
            Err(RecordsError::NotFound(_) | RecordsError::Invalid(_)) => continue,
            Err(e) => return Err(e),
        };
        if let Ok(info) = read_schedule(&mut lookup, &schedule_id) {
            orgs.extend(info.orgs);
        }
    }
    orgs.sort();
    orgs.dedup();
    Ok(orgs)
}
