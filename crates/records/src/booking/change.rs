//! Changing a booked Appointment: cancel, reschedule, confirm, decline. Each stores
//! the Appointment's new version and its Slots' in one transaction, as booking does.

use serde_json::{json, Value};

use oxehr_auth::scope::Perm;
use oxehr_auth::Caller;
use oxehr_fhir::{IssueCode, ResourceId};
use oxehr_store::{Method, NewVersion, ReadTx, StoredResource};

use super::schedule::{local_ref, ReadLookup};
use super::state::{
    appointment_orgs, holders, read_appointment, read_schedule, read_slot, AppointmentState,
};
use super::{
    booker, reason_text, settle, Attempt, Booker, Booking, AWAITING, CANCELLABLE, NOT_STAFF,
    NOT_YOURS,
};
use crate::prepare::Incoming;
use crate::{policy, time_fmt, Records, RecordsError, Vouched};

impl Records {
    /// Reads Appointment `id` for an operation by `who`: it must be visible to the caller,
    /// and theirs (a patient's own; staff: on their organization's Schedules, or with a
    /// participant of their organization). Refusals are audited.
    fn appointment_for(
        &self,
        who: &Caller,
        booker: &Booker,
        tx: &mut dyn ReadTx,
        id: &ResourceId,
        action: &str,
    ) -> Result<AppointmentState, RecordsError> {
        let appointment = read_appointment(tx, id)?;
        let resource = format!("Appointment/{id}");
        let access = policy::access_of(who, tx)?;
        if self
            .check_visible_current(&access, tx, &appointment.stored)
            .is_err()
        {
            return Err(self.denied(
                who,
                action,
                resource,
                "that appointment belongs to a patient record this account may not see",
            ));
        }
        match booker {
            Booker::Patient(own) if appointment.patient.as_deref() != Some(own.as_str()) => {
                Err(self.denied(who, action, resource, NOT_YOURS))
            }
            Booker::Staff(org) => {
                let orgs = appointment_orgs(tx, &appointment)?;
                if orgs.contains(org) {
                    Ok(appointment)
                } else {
                    Err(self.denied(
                        who,
                        action,
                        resource,
                        "staff change only appointments on their own organization's schedules",
                    ))
                }
            }
            _ => Ok(appointment),
        }
    }

    /// The Appointment's next version, changed by `change`.
    fn appointment_version(
        &self,
        appointment: &AppointmentState,
        change: impl FnOnce(&mut Value),
        now: i64,
    ) -> Result<NewVersion, RecordsError> {
        let mut body = appointment.body.clone();
        change(&mut body);
        self.prepare(
            Incoming::new(body, Some(&appointment.stored.rtype))?,
            &appointment.stored.id,
            appointment.stored.version.next(),
            Method::Update,
            now,
        )
    }

    /// The versions that give the Slots `appointment` holds back (`free`): each one that
    /// is busy and held by no other active Appointment.
    fn freed_slots(
        &self,
        tx: &mut dyn ReadTx,
        appointment: &AppointmentState,
        why: &str,
        now: i64,
    ) -> Result<Vec<(NewVersion, Vouched)>, RecordsError> {
        let mut out = Vec::new();
        for id in &appointment.slots {
            let slot = match read_slot(tx, id) {
                Ok(s) => s,
                Err(RecordsError::NotFound(_) | RecordsError::Invalid(_)) => continue,
                Err(e) => return Err(e),
            };
            if !matches!(slot.status.as_str(), "busy" | "busy-tentative") {
                continue;
            }
            let own = appointment.stored.id.as_str();
            if holders(tx, id)?.iter().any(|h| h != own) {
                continue;
            }
            out.push(self.slot_version(&slot, "free", why.to_owned(), now)?);
        }
        Ok(out)
    }

    /// Cancels Appointment `appointment`: status `cancelled` (with `reason` as the
    /// `cancelationReason` text, if any) and its Slot `free` again, in one transaction.
    /// The patient (their own) or staff of the Schedule's organization.
    ///
    /// Errors: `NotFound`; `Forbidden` when it is not the caller's; `Conflict` when it
    /// is already cancelled, fulfilled or under way, or (for a patient) has begun.
    pub fn cancel(
        &self,
        who: &Caller,
        appointment: &ResourceId,
        reason: &str,
    ) -> Result<StoredResource, RecordsError> {
        let reason = reason_text(reason)?;
        let booker = booker(who)?;
        policy::check_type(who, "Appointment", Perm::Update)?;
        settle(self.with_retries(|| -> Attempt<StoredResource> {
            let now = time_fmt::now_micros();
            let (versions, vouched) = {
                let mut reader = self.reader()?;
                let tx = &mut *reader;
                let a = self.appointment_for(who, &booker, tx, appointment, "update")?;
                if let Some(e) = not_cancellable(&a, &booker, now) {
                    return Ok(Err(e));
                }
                let why = format!("cancel Appointment/{appointment}");
                let (mut versions, vouched): (Vec<_>, Vec<_>) =
                    self.freed_slots(tx, &a, &why, now)?.into_iter().unzip();
                let reason = reason.clone();
                versions.insert(
                    0,
                    self.appointment_version(
                        &a,
                        |b| {
                            b["status"] = json!("cancelled");
                            if let Some(r) = reason {
                                b["cancelationReason"] = json!({"text": r});
                            }
                        },
                        now,
                    )?,
                );
                (versions, vouched)
            };
            let cancelled = versions[0].resource.clone();
            self.commit_vouched(who, Vec::new(), versions, vouched, None)?;
            Ok(Ok(cancelled))
        }))
    }

    /// Moves Appointment `appointment` to Slot `new_slot`: the Appointment is cancelled
    /// ("rescheduled") and its Slot freed, and the new Slot booked with a new
    /// Appointment carrying the same reason, all in one transaction; if the new time is
    /// taken nothing changes. Who may: as [`cancel`](Self::cancel) for the old
    /// Appointment and as [`book`](Self::book) for the new Slot.
    ///
    /// Errors: those of `cancel` and `book`; `Invalid` when the new Slot is the one the
    /// Appointment already holds.
    pub fn reschedule(
        &self,
        who: &Caller,
        appointment: &ResourceId,
        new_slot: &ResourceId,
    ) -> Result<Booking, RecordsError> {
        let booker = booker(who)?;
        policy::check_type(who, "Appointment", Perm::Update)?;
        policy::check_type(who, "Appointment", Perm::Create)?;
        settle(self.with_retries(|| -> Attempt<Booking> {
            let now = time_fmt::now_micros();
            // Everything is read in one snapshot, released before the commit.
            let (old, patient, slot, schedule, freed) = {
                let mut reader = self.reader()?;
                let tx = &mut *reader;
                let old = self.appointment_for(who, &booker, tx, appointment, "update")?;
                if let Some(e) = not_cancellable(&old, &booker, now) {
                    return Ok(Err(e));
                }
                if old.slots.iter().any(|s| s == new_slot.as_str()) {
                    return Err(RecordsError::invalid(
                        IssueCode::Invalid,
                        "the appointment already has that time",
                    ));
                }
                let Some(patient) = old.patient.as_deref().and_then(ResourceId::parse) else {
                    return Err(RecordsError::invalid(
                        IssueCode::Invalid,
                        "the appointment names no single patient, and cannot be moved",
                    ));
                };
                let care = self.check_patient(who, &booker, tx, &patient)?;
                let slot = read_slot(tx, new_slot.as_str())?;
                let schedule = read_schedule(&mut ReadLookup::new(tx), &slot.schedule)?;
                let id = slot.stored.id.as_str();
                if let Err(e) = self.check_schedule(who, &booker, &schedule, &care, id) {
                    return match e {
                        RecordsError::Conflict(_) => Ok(Err(e)),
                        e => Err(e),
                    };
                }
                if let Some(e) = Self::unbookable(tx, &slot, now)? {
                    return Ok(Err(e));
                }
                let why = format!("reschedule Appointment/{appointment}");
                let freed = self.freed_slots(tx, &old, &why, now)?;
                (old, patient, slot, schedule, freed)
            };
            let proposed = schedule.requires_confirmation && booker.patient_side();
            let reason_fields: Vec<(&str, Value)> = ["reasonCode", "description"]
                .into_iter()
                .filter_map(|f| old.body.get(f).map(|v| (f, v.clone())))
                .collect();
            let (new_appointment, slot_v, slot_vouched) = self.booking_versions(
                patient.as_str(),
                &slot,
                &schedule,
                proposed,
                &reason_fields,
                now,
            )?;
            let cancelled = self.appointment_version(
                &old,
                |b| {
                    b["status"] = json!("cancelled");
                    b["cancelationReason"] = json!({"text": "Rescheduled"});
                },
                now,
            )?;
            let booking = Booking {
                appointment: new_appointment.resource.clone(),
                slot: slot_v.resource.clone(),
                needs_confirmation: proposed,
            };
            let mut versions = vec![cancelled, new_appointment, slot_v];
            let mut vouched = vec![slot_vouched];
            for (v, w) in freed {
                versions.push(v);
                vouched.push(w);
            }
            self.commit_vouched(who, Vec::new(), versions, vouched, None)?;
            Ok(Ok(booking))
        }))
    }

    /// Confirms a proposed Appointment: `booked`, its staff participants `accepted`, its
    /// Slot `busy`. Staff of the Schedule's organization (or a system administrator).
    ///
    /// Errors: `NotFound`; `Forbidden` for a patient or staff of another organization;
    /// `Conflict` when it is not waiting for confirmation or its time was given away.
    pub fn confirm(
        &self,
        who: &Caller,
        appointment: &ResourceId,
    ) -> Result<StoredResource, RecordsError> {
        self.respond(who, appointment, None)
    }

    /// Declines a proposed Appointment: `cancelled` (with `reason` as the
    /// `cancelationReason` text, if any), its staff participants `declined`, its Slot
    /// `free` again. Who may, and errors: as [`confirm`](Self::confirm).
    pub fn decline(
        &self,
        who: &Caller,
        appointment: &ResourceId,
        reason: &str,
    ) -> Result<StoredResource, RecordsError> {
        let reason = reason_text(reason)?;
        self.respond(who, appointment, Some(reason))
    }

    /// The appointments waiting for confirmation (`proposed` or `pending`, not yet
    /// started) that belong to `who`'s organization — by their Slots' Schedules or their
    /// participants, as [`confirm`](Self::confirm) decides — soonest first, at most
    /// `limit` (≤ 100). Read as `who`, under the access policy: staff see only those of
    /// patients whose records they may see. Empty for anyone without an organization.
    pub fn appointment_requests(
        &self,
        who: &Caller,
        limit: usize,
    ) -> Result<Vec<StoredResource>, RecordsError> {
        let Some(org) = who.organization.clone().filter(|_| who.role.is_staff()) else {
            return Ok(Vec::new());
        };
        let limit = limit.min(100);
        let now = crate::format_instant(time_fmt::now_micros());
        let pairs: Vec<(String, String)> = [
            ("status", "proposed,pending".to_owned()),
            ("date", format!("ge{now}")),
            ("_sort", "date".to_owned()),
            ("_count", "100".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let q = crate::query::parse(&["Appointment".to_owned()], &pairs, false, None)?;
        let found = self.search(who, &q, 100)?;
        let mut reader = self.reader()?;
        let tx: &mut dyn ReadTx = &mut *reader;
        let mut out = Vec::new();
        for r in found.matches {
            let a = read_appointment(tx, &r.id)?;
            if appointment_orgs(tx, &a)?.contains(&org) {
                out.push(r);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// [`confirm`](Self::confirm) (`decline` = `None`) or [`decline`](Self::decline).
    fn respond(
        &self,
        who: &Caller,
        appointment: &ResourceId,
        decline: Option<Option<String>>,
    ) -> Result<StoredResource, RecordsError> {
        let booker = booker(who)?;
        policy::check_type(who, "Appointment", Perm::Update)?;
        if booker.patient_side() {
            return Err(self.denied(
                who,
                "update",
                format!("Appointment/{appointment}"),
                NOT_STAFF,
            ));
        }
        settle(self.with_retries(|| -> Attempt<StoredResource> {
            let now = time_fmt::now_micros();
            let (versions, vouched) = {
                let mut reader = self.reader()?;
                let tx = &mut *reader;
                let a = self.appointment_for(who, &booker, tx, appointment, "update")?;
                if !AWAITING.contains(&a.status.as_str()) {
                    return Ok(Err(RecordsError::Conflict(
                        "that appointment is not waiting for confirmation".into(),
                    )));
                }
                let (participant_status, why) = match &decline {
                    Some(_) => ("declined", format!("decline Appointment/{appointment}")),
                    None => ("accepted", format!("confirm Appointment/{appointment}")),
                };
                let slots = match &decline {
                    Some(_) => self.freed_slots(tx, &a, &why, now)?,
                    None => match self.claimed_slots(tx, &a, &why, now)? {
                        Ok(s) => s,
                        Err(e) => return Ok(Err(e)),
                    },
                };
                let (mut versions, vouched): (Vec<_>, Vec<_>) = slots.into_iter().unzip();
                let decline = decline.clone();
                versions.insert(
                    0,
                    self.appointment_version(
                        &a,
                        |b| {
                            respond_participants(b, participant_status);
                            match decline {
                                Some(reason) => {
                                    b["status"] = json!("cancelled");
                                    if let Some(r) = reason {
                                        b["cancelationReason"] = json!({"text": r});
                                    }
                                }
                                None => b["status"] = json!("booked"),
                            }
                        },
                        now,
                    )?,
                );
                (versions, vouched)
            };
            let changed = versions[0].resource.clone();
            self.commit_vouched(who, Vec::new(), versions, vouched, None)?;
            Ok(Ok(changed))
        }))
    }

    /// The versions that make the Slots a confirmed Appointment holds `busy`; a conflict
    /// when one of them went to another Appointment or is no longer usable.
    fn claimed_slots(
        &self,
        tx: &mut dyn ReadTx,
        appointment: &AppointmentState,
        why: &str,
        now: i64,
    ) -> Result<Result<Vec<(NewVersion, Vouched)>, RecordsError>, RecordsError> {
        let mut out = Vec::new();
        for id in &appointment.slots {
            let slot = read_slot(tx, id)?;
            let own = appointment.stored.id.as_str();
            if holders(tx, id)?.iter().any(|h| h != own) {
                return Ok(Err(RecordsError::Conflict(
                    "that appointment's time has been given to someone else".into(),
                )));
            }
            match slot.status.as_str() {
                "busy" => {}
                "busy-tentative" | "free" => {
                    out.push(self.slot_version(&slot, "busy", why.to_owned(), now)?)
                }
                _ => {
                    return Ok(Err(RecordsError::Conflict(
                        "that appointment's time is no longer available".into(),
                    )))
                }
            }
        }
        Ok(Ok(out))
    }
}

/// Why `appointment` may not be cancelled (or moved) by `booker` now, if so.
fn not_cancellable(a: &AppointmentState, booker: &Booker, now: i64) -> Option<RecordsError> {
    if a.status == "cancelled" {
        return Some(RecordsError::Conflict(
            "that appointment is already cancelled".into(),
        ));
    }
    if !CANCELLABLE.contains(&a.status.as_str()) {
        return Some(RecordsError::Conflict(format!(
            "an appointment that is {} can no longer be cancelled or moved",
            a.status
        )));
    }
    if booker.patient_side() && a.start.is_some_and(|s| s <= now) {
        return Some(RecordsError::Conflict(
            "that appointment has already begun; please contact the practice".into(),
        ));
    }
    None
}

/// Sets the status of the staff participants waiting to respond.
fn respond_participants(appointment: &mut Value, status: &str) {
    if let Some(list) = appointment
        .get_mut("participant")
        .and_then(Value::as_array_mut)
    {
        for p in list {
            let patient = p
                .get("actor")
                .and_then(local_ref)
                .is_some_and(|(t, _)| t == "Patient");
            if !patient && p.get("status").and_then(Value::as_str) == Some("needs-action") {
                p["status"] = json!(status);
            }
        }
    }
}
