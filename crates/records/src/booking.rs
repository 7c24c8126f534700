//! Appointment booking from free Slots: the rules every adapter shares (the portal's
//! pages, later the FHIR API and HL7 SIU messages).
//!
//! - [`Records::bookable_slots`]: the free, future Slots of the caller's care team's
//!   Schedules, soonest first (`booking/bookable.rs`).
//! - [`Records::book`]: in one transaction the Slot goes from `free` to `busy` (or
//!   `busy-tentative`) and an Appointment is created, `booked` (or `proposed` when the
//!   Schedule asks for staff confirmation, [`REQUIRES_CONFIRMATION_URL`]).
//! - [`Records::cancel`], [`Records::reschedule`], [`Records::confirm`],
//!   [`Records::decline`]: the Appointment's status and its Slot's, together.
//!
//! **One Slot, one Appointment.** Every operation stores the Slot's next version in the
//! same transaction as the Appointment, so the store's optimistic concurrency (a
//! version that is not the current one plus one is a conflict) decides a race: of two
//! patients booking the same Slot, the second one's transaction conflicts, is prepared
//! again, finds the Slot taken and is refused ("that time was just taken"). A Slot that
//! says free but is named by an active Appointment made some other way counts as taken.
//!
//! **Who may.** A patient books, cancels and reschedules their own appointments, with
//! the Schedules of their care team: a Schedule whose actor is a PractitionerRole
//! (`organization`), a HealthcareService (`providedBy`) or a Location
//! (`managingOrganization`) of an organization that has the patient in care (the care
//! table, `oxehr_store::care`). Staff (clinicians, nurses, front desk) act on their own
//! organization's Schedules, for patients whose record they may see; they alone confirm
//! or decline a proposed appointment. What they book is `booked` at once (staff of the
//! Schedule's organization are the ones who would confirm it). A system administrator
//! may do all of it.
//!
//! **The Slot on a patient's behalf.** A patient may not write Slots (the role table,
//! `oxehr_auth::policy`), so no FHIR request of theirs changes one. A booking
//! operation checks its own rules here, then commits the Slot's new version as
//! [`Vouched`](crate::Vouched): exactly that version passes the write checks, while the
//! Appointment meets the caller's rights as any write does. The audit trail names the
//! caller's account for both, the Slot's record saying which booking it was for.

mod bookable;
mod change;
mod schedule;
mod state;

use serde_json::{json, Value};

use oxehr_auth::scope::Perm;
use oxehr_auth::{Caller, Role};
use oxehr_fhir::{IssueCode, ResourceId, ResourceType, VersionId};
use oxehr_store::{Method, NewVersion, ReadTx, StoredResource};

use crate::prepare::{new_id, Incoming};
use crate::{audit, policy, time_fmt, Records, RecordsError, Vouched};
use schedule::{ReadLookup, ScheduleInfo};
use state::{holders, read_schedule, read_slot, SlotState};

/// The extension on a Schedule (`valueBoolean` true) that makes each booking a proposal
/// its staff confirm or decline.
pub const REQUIRES_CONFIRMATION_URL: &str =
    "https://oxehr.org/fhir/StructureDefinition/schedule-requires-confirmation";

/// Most Slots [`Records::bookable_slots`] returns.
pub const MAX_BOOKABLE_SLOTS: usize = 100;

/// The longest window [`Records::bookable_slots`] looks ahead, in days.
pub const MAX_BOOKING_WINDOW_DAYS: i64 = 90;

/// Longest reason for a visit or for a cancellation, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Organizations of a patient's care team looked at (a search value list holds 100).
const MAX_CARE_ORGS: usize = 100;

/// Slots of one Appointment looked at.
const MAX_SLOTS: usize = 10;

/// Appointment statuses that hold their Slots.
const ACTIVE: &[&str] = &[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "checked-in",
    "waitlist",
];

/// Appointment statuses that may still be cancelled.
const CANCELLABLE: &[&str] = &["proposed", "pending", "booked", "waitlist"];

/// Appointment statuses waiting for the Schedule's staff.
const AWAITING: &[&str] = &["proposed", "pending"];

const NOT_YOURS: &str = "a patient may book, cancel or change only their own appointments";
const NOT_STAFF: &str = "only staff of the schedule's organization may confirm or decline";

/// A free Slot a page can offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookableSlot {
    /// The Slot's id: what [`Records::book`] takes.
    pub slot: String,
    /// Start and end, microseconds since the Unix epoch (UTC).
    pub start: i64,
    pub end: i64,
    pub schedule: ScheduleSummary,
}

/// What a page shows of a Schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSummary {
    /// The Schedule's id.
    pub id: String,
    /// The practitioner's name (a PractitionerRole's or Practitioner actor's).
    pub practitioner: Option<String>,
    /// A HealthcareService actor's name, else the Schedule's first service type.
    pub service: Option<String>,
    /// A Location actor's name, else the PractitionerRole's first location's.
    pub location: Option<String>,
    /// The name of the (first) organization the actors belong to.
    pub organization: Option<String>,
    /// Bookings wait for staff confirmation ([`REQUIRES_CONFIRMATION_URL`]).
    pub requires_confirmation: bool,
}

/// A booking made: the Appointment and the Slot, as stored.
#[derive(Debug, Clone)]
pub struct Booking {
    pub appointment: StoredResource,
    pub slot: StoredResource,
    /// The Appointment is `proposed`: the Schedule's staff still confirm or decline it.
    pub needs_confirmation: bool,
}

/// Who is acting, as booking sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Booker {
    /// A patient, about their own record.
    Patient(String),
    /// Staff of this organization.
    Staff(String),
    /// A system administrator or the server.
    Admin,
    /// A proxy (a parent, guardian or carer): books and changes as the patient it acts
    /// for, in the records it acts for (the access policy's `Access::Proxy`).
    Proxy,
}

impl Booker {
    /// A patient, or someone acting for one: their bookings at a clinic that confirms
    /// wait for it, they cannot confirm, and they cannot change what has started.
    fn patient_side(&self) -> bool {
        matches!(self, Booker::Patient(_) | Booker::Proxy)
    }
}

fn booker(who: &Caller) -> Result<Booker, RecordsError> {
    match (who.role, &who.organization, &who.patient) {
        (Role::Patient, _, Some(p)) => Ok(Booker::Patient(p.clone())),
        (Role::Clinician | Role::Nurse | Role::FrontDesk, Some(org), _) => {
            Ok(Booker::Staff(org.clone()))
        }
        (Role::SystemAdmin, _, _) => Ok(Booker::Admin),
        (Role::Proxy, _, _) => Ok(Booker::Proxy),
        _ => Err(policy::forbidden(
            "this account may not book or change appointments",
        )),
    }
}

/// Refusals that are not a lost race: decided by what the attempt read, never retried.
type Attempt<T> = Result<Result<T, RecordsError>, RecordsError>;

fn settle<T>(r: Attempt<T>) -> Result<T, RecordsError> {
    r.and_then(|inner| inner)
}

fn taken() -> RecordsError {
    RecordsError::Conflict("that time was just taken; please choose another time".into())
}

fn rtype(name: &str) -> Result<ResourceType, RecordsError> {
    ResourceType::parse(name).ok_or_else(|| RecordsError::Internal(format!("type {name}")))
}

/// The trimmed reason, refused when too long.
fn reason_text(reason: &str) -> Result<Option<String>, RecordsError> {
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(RecordsError::invalid(
            IssueCode::TooLong,
            format!("the reason may be at most {MAX_REASON_CHARS} characters long"),
        ));
    }
    Ok((!reason.is_empty()).then(|| reason.to_owned()))
}

impl Records {
    /// Records a refusal in the audit trail (as a refused write) and returns it.
    fn denied(&self, who: &Caller, action: &str, resource: String, why: &str) -> RecordsError {
        let e = policy::forbidden(why);
        if !who.internal {
            if let Err(busy) = self.auditor.record(vec![audit::record(
                who,
                action,
                "denied",
                Some(resource),
                None,
            )]) {
                return busy;
            }
        }
        e
    }

    /// That `booker` may book for `patient`: the patient exists, and is the caller
    /// themselves (a patient) or a record the caller may see (staff). The patient's
    /// care team (for a patient booker).
    fn check_patient(
        &self,
        who: &Caller,
        booker: &Booker,
        tx: &mut dyn ReadTx,
        patient: &ResourceId,
    ) -> Result<Vec<String>, RecordsError> {
        let resource = format!("Patient/{patient}");
        if let Booker::Patient(own) = booker {
            if own != patient.as_str() {
                return Err(self.denied(who, "create", resource, NOT_YOURS));
            }
        }
        match tx.current(&rtype("Patient")?, patient)? {
            Some(p) if !p.is_deleted() => {}
            _ => return Err(RecordsError::NotFound(resource)),
        }
        match booker {
            Booker::Patient(own) => Ok(oxehr_store::care::orgs_caring_for(tx, own, MAX_CARE_ORGS)?),
            Booker::Proxy => {
                let access = policy::access_of(who, tx)?;
                if access.sees_all(tx, &[patient.as_str().to_owned()])? {
                    Ok(oxehr_store::care::orgs_caring_for(
                        tx,
                        patient.as_str(),
                        MAX_CARE_ORGS,
                    )?)
                } else {
                    Err(self.denied(who, "create", resource, NOT_YOURS))
                }
            }
            Booker::Staff(_) => {
                let access = policy::access_of(who, tx)?;
                if access.sees_all(tx, &[patient.as_str().to_owned()])? {
                    Ok(Vec::new())
                } else {
                    Err(self.denied(
                        who,
                        "create",
                        resource.clone(),
                        &format!("{resource} belongs to a patient record this account may not see"),
                    ))
                }
            }
            Booker::Admin => Ok(Vec::new()),
        }
    }

    /// That `booker` may book into `schedule` (a patient: their care team's; staff:
    /// their organization's), and that it takes bookings.
    fn check_schedule(
        &self,
        who: &Caller,
        booker: &Booker,
        schedule: &ScheduleInfo,
        care: &[String],
        slot: &str,
    ) -> Result<(), RecordsError> {
        let resource = format!("Slot/{slot}");
        match booker {
            Booker::Patient(_) | Booker::Proxy
                if !schedule.orgs.iter().any(|o| care.contains(o)) =>
            {
                return Err(self.denied(
                    who,
                    "update",
                    resource,
                    "that time is not on a schedule of your care team",
                ))
            }
            Booker::Staff(org) if !schedule.orgs.contains(org) => {
                return Err(self.denied(
                    who,
                    "update",
                    resource,
                    "staff book only into their own organization's schedules",
                ))
            }
            _ => {}
        }
        if !schedule.active {
            return Err(RecordsError::Conflict(
                "that schedule is not taking bookings".into(),
            ));
        }
        Ok(())
    }

    /// Why Slot `slot` cannot be booked now, if it cannot (a conflict: not retried).
    fn unbookable(
        tx: &mut dyn ReadTx,
        slot: &SlotState,
        now: i64,
    ) -> Result<Option<RecordsError>, RecordsError> {
        if slot.status != "free" {
            return Ok(Some(taken()));
        }
        if slot.start <= now {
            return Ok(Some(RecordsError::Conflict(
                "that time has already passed; please choose another time".into(),
            )));
        }
        if !holders(tx, slot.stored.id.as_str())?.is_empty() {
            return Ok(Some(taken()));
        }
        Ok(None)
    }

    /// The Slot's next version with `status`, vouched for as part of `why`.
    fn slot_version(
        &self,
        slot: &SlotState,
        status: &str,
        why: String,
        now: i64,
    ) -> Result<(NewVersion, Vouched), RecordsError> {
        let mut body = slot.body.clone();
        body["status"] = Value::String(status.to_owned());
        let version = slot.stored.version.next();
        let v = self.prepare(
            Incoming::new(body, Some(&slot.stored.rtype))?,
            &slot.stored.id,
            version,
            Method::Update,
            now,
        )?;
        let vouched = Vouched {
            rtype: slot.stored.rtype.clone(),
            id: slot.stored.id.clone(),
            version,
            why,
        };
        Ok((v, vouched))
    }

    /// The new Appointment of `patient` in `slot`, and the Slot's new version.
    fn booking_versions(
        &self,
        patient: &str,
        slot: &SlotState,
        schedule: &ScheduleInfo,
        proposed: bool,
        reason: &[(&str, Value)],
        now: i64,
    ) -> Result<(NewVersion, NewVersion, Vouched), RecordsError> {
        let id = new_id();
        let staff_status = if proposed { "needs-action" } else { "accepted" };
        let mut participant = vec![json!({
            "actor": {"reference": format!("Patient/{patient}")},
            "required": "required",
            "status": "accepted"
        })];
        participant.extend(
            schedule
                .staff_actors
                .iter()
                .map(|a| json!({"actor": a, "required": "required", "status": staff_status})),
        );
        let mut appointment = serde_json::Map::new();
        appointment.insert("resourceType".into(), json!("Appointment"));
        appointment.insert(
            "status".into(),
            json!(if proposed { "proposed" } else { "booked" }),
        );
        for field in [
            "serviceCategory",
            "serviceType",
            "specialty",
            "appointmentType",
        ] {
            if let Some(v) = slot.body.get(field) {
                appointment.insert(field.into(), v.clone());
            }
        }
        for (field, v) in reason {
            appointment.insert((*field).into(), v.clone());
        }
        for field in ["start", "end"] {
            if let Some(v) = slot.body.get(field) {
                appointment.insert(field.into(), v.clone());
            }
        }
        appointment.insert(
            "slot".into(),
            json!([{"reference": format!("Slot/{}", slot.stored.id)}]),
        );
        appointment.insert("created".into(), json!(time_fmt::format_instant(now)));
        appointment.insert("participant".into(), Value::Array(participant));
        let appointment = self.prepare(
            Incoming::new(Value::Object(appointment), Some(&rtype("Appointment")?))?,
            &id,
            VersionId(1),
            Method::Create,
            now,
        )?;
        let status = if proposed { "busy-tentative" } else { "busy" };
        let (slot_v, vouched) =
            self.slot_version(slot, status, format!("book Appointment/{id}"), now)?;
        Ok((appointment, slot_v, vouched))
    }

    /// Books Slot `slot` for `patient`: the Slot becomes `busy` and an Appointment
    /// `booked` is created (`busy-tentative` and `proposed` when a patient books on a
    /// Schedule that asks for confirmation), in one transaction. `reason` (at most
    /// [`MAX_REASON_CHARS`]; empty: none) becomes the Appointment's `reasonCode` text and
    /// `description`.
    ///
    /// Errors: `Forbidden` when a patient books for someone else, or on a Schedule not
    /// of their care team, or staff on another organization's Schedule or for a patient
    /// whose record they may not see; `NotFound` for an unknown Slot or Patient;
    /// `Conflict` when the time is taken ("that time was just taken"), past, or its
    /// Schedule inactive; `Invalid` for a reason too long.
    pub fn book(
        &self,
        who: &Caller,
        patient: &ResourceId,
        slot: &ResourceId,
        reason: &str,
    ) -> Result<Booking, RecordsError> {
        let reason = reason_text(reason)?;
        let booker = booker(who)?;
        policy::check_type(who, "Appointment", Perm::Create)?;
        let reason_fields: Vec<(&str, Value)> = match &reason {
            Some(r) => vec![
                ("reasonCode", json!([{"text": r}])),
                ("description", json!(r)),
            ],
            None => Vec::new(),
        };
        settle(self.with_retries(|| -> Attempt<Booking> {
            let now = time_fmt::now_micros();
            let (slot, schedule) = {
                let mut reader = self.reader()?;
                let care = self.check_patient(who, &booker, &mut *reader, patient)?;
                let slot = read_slot(&mut *reader, slot.as_str())?;
                let mut lookup = ReadLookup::new(&mut *reader);
                let schedule = read_schedule(&mut lookup, &slot.schedule)?;
                if let Err(e) =
                    self.check_schedule(who, &booker, &schedule, &care, slot.stored.id.as_str())
                {
                    return match e {
                        RecordsError::Conflict(_) => Ok(Err(e)),
                        e => Err(e),
                    };
                }
                if let Some(e) = Self::unbookable(lookup.tx(), &slot, now)? {
                    return Ok(Err(e));
                }
                (slot, schedule)
            };
            let proposed = schedule.requires_confirmation && booker.patient_side();
            let (appointment, slot_v, vouched) = self.booking_versions(
                patient.as_str(),
                &slot,
                &schedule,
                proposed,
                &reason_fields,
                now,
            )?;
            let booking = Booking {
                appointment: appointment.resource.clone(),
                slot: slot_v.resource.clone(),
                needs_confirmation: proposed,
            };
            self.commit_vouched(
                who,
                Vec::new(),
                vec![slot_v, appointment],
                vec![vouched],
                None,
            )?;
            Ok(Ok(booking))
        }))
    }
}
