//! The free Slots a caller may book, soonest first, with what a page shows of each.
//!
//! The care team of a patient is the set of organizations with the patient in care (the
//! care table, at most 100 of them); staff see their own organization's Schedules; a
//! system administrator every Schedule. A Slot is offered when it is `free`, starts in
//! the window (never before now; at most [`MAX_BOOKING_WINDOW_DAYS`] ahead) and its
//! Schedule is not inactive and has an actor of one of those organizations: a
//! PractitionerRole (`organization`), a HealthcareService (`providedBy`) or a Location
//! (`managingOrganization`). A Schedule of a Practitioner alone names no organization,
//! so it is nobody's care team.
//!
//! That is three searches, one per kind of actor (one for an administrator), each a page
//! of at most `limit` Slots sorted by start that brings its Schedules, their actors and
//! the actors' practitioners, locations and organizations as includes; the pages are
//! merged. The searches run as the caller (their rights on each type, their access to
//! each resource), and are audited as one search of Slots.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use oxehr_auth::{Caller, Role};

use super::schedule::{self, local_ref, ScheduleInfo};
use super::{BookableSlot, MAX_BOOKABLE_SLOTS, MAX_BOOKING_WINDOW_DAYS, MAX_CARE_ORGS};
use crate::{policy, time_fmt, Records, RecordsError};

const DAY_MICROS: i64 = 86_400_000_000;

/// The kinds of actor a Schedule of an organization has, with the parameter naming the
/// organization.
const TEAM_ACTORS: &[&str] = &["PractitionerRole", "HealthcareService", "Location"];

/// What each page brings along: the Schedule, its actors, and what a page names of them.
const INCLUDES: &[(&str, &str)] = &[
    ("_include", "Slot:schedule"),
    ("_include:iterate", "Schedule:actor"),
    ("_include:iterate", "PractitionerRole:practitioner"),
    ("_include:iterate", "PractitionerRole:location"),
    ("_include:iterate", "PractitionerRole:organization"),
    ("_include:iterate", "HealthcareService:organization"),
    ("_include:iterate", "Location:organization"),
];

/// Whose Schedules a caller books on.
enum Team {
    Everyone,
    Organizations(Vec<String>),
}

impl Records {
    /// The free Slots `who` may book, soonest first: those starting in `[from, to)`
    /// (microseconds; `from` no earlier than now, `to` at most
    /// [`MAX_BOOKING_WINDOW_DAYS`] after `from`), at most `limit` (at most
    /// [`MAX_BOOKABLE_SLOTS`]), of the Schedules of a patient's care team, or of a staff
    /// member's organization (see the module documentation of `booking`). An empty list
    /// when there are none.
    ///
    /// Errors: `Forbidden` for an account that books nothing (an organization's
    /// administrator) or whose token may not search Slots and Schedules.
    pub fn bookable_slots(
        &self,
        who: &Caller,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<BookableSlot>, RecordsError> {
        self.bookable_slots_for(who, None, from, to, limit)
    }

    /// [`bookable_slots`](Self::bookable_slots) for `patient`: what a proxy needs (the
    /// care team of a patient it acts for; refused for any other). Others ignore it.
    pub fn bookable_slots_for(
        &self,
        who: &Caller,
        patient: Option<&str>,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<BookableSlot>, RecordsError> {
        let res = self.bookable_inner(who, patient, from, to, limit);
        self.audited(who, "search", "Slot".to_owned(), res)
    }

    fn bookable_inner(
        &self,
        who: &Caller,
        patient: Option<&str>,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<(Vec<BookableSlot>, Vec<String>), RecordsError> {
        let team = match (who.role, &who.organization, &who.patient) {
            (Role::Proxy, _, _) => {
                let p = patient.ok_or_else(|| {
                    policy::forbidden("a proxy books for one of the patients it acts for")
                })?;
                let mut reader = self.reader()?;
                let access = policy::access_of(who, &mut *reader)?;
                if !access.sees_all(&mut *reader, &[p.to_owned()])? {
                    return Err(policy::forbidden(
                        "a proxy books only for the patients it acts for",
                    ));
                }
                Team::Organizations(oxehr_store::care::orgs_caring_for(
                    &mut *reader,
                    p,
                    MAX_CARE_ORGS,
                )?)
            }
            (Role::Patient, _, Some(p)) => {
                let mut reader = self.reader()?;
                Team::Organizations(oxehr_store::care::orgs_caring_for(
                    &mut *reader,
                    p,
                    MAX_CARE_ORGS,
                )?)
            }
            (Role::Clinician | Role::Nurse | Role::FrontDesk, Some(org), _) => {
                Team::Organizations(vec![org.clone()])
            }
            (Role::SystemAdmin, _, _) => Team::Everyone,
            _ => return Err(policy::forbidden("this account does not book appointments")),
        };
        let limit = limit.min(MAX_BOOKABLE_SLOTS);
        let from = from.max(time_fmt::now_micros());
        let to = to.min(from.saturating_add(MAX_BOOKING_WINDOW_DAYS * DAY_MICROS));
        if limit == 0 || to <= from {
            return Ok((Vec::new(), Vec::new()));
        }
        let chains: Vec<Option<(String, String)>> = match &team {
            Team::Everyone => vec![None],
            Team::Organizations(orgs) if orgs.is_empty() => return Ok((Vec::new(), Vec::new())),
            Team::Organizations(orgs) => {
                let value = orgs
                    .iter()
                    .map(|o| format!("Organization/{o}"))
                    .collect::<Vec<_>>()
                    .join(",");
                TEAM_ACTORS
                    .iter()
                    .map(|t| {
                        Some((
                            format!("schedule:Schedule.actor:{t}.organization"),
                            value.clone(),
                        ))
                    })
                    .collect()
            }
        };
        let mut slots: BTreeMap<String, Value> = BTreeMap::new();
        let mut found: HashMap<String, Value> = HashMap::new();
        let mut patients = Vec::new();
        for chain in chains {
            let q = slot_query(chain, from, to, limit)?;
            let (page, seen) = self.search_inner(who, &q, limit)?;
            patients.extend(seen);
            for r in page.included {
                let body = crate::interactions::parse_body(&r)?;
                found.insert(format!("{}/{}", r.rtype, r.id), body);
            }
            for r in page.matches {
                slots.insert(
                    r.id.as_str().to_owned(),
                    crate::interactions::parse_body(&r)?,
                );
            }
        }
        let mut offered: Vec<(i64, i64, String, String)> = slots
            .into_iter()
            .filter_map(|(id, body)| {
                let instant = |f: &str| {
                    body.get(f)
                        .and_then(Value::as_str)
                        .and_then(time_fmt::parse_instant)
                };
                let (start, end) = (instant("start")?, instant("end")?);
                let schedule = match body.get("schedule").and_then(local_ref)? {
                    (t, s) if t == "Schedule" => s,
                    _ => return None,
                };
                let free = body.get("status").and_then(Value::as_str) == Some("free");
                (free && start >= from && start < to).then_some((start, end, id, schedule))
            })
            .collect();
        offered.sort();
        offered.truncate(limit);
        let mut described: HashMap<String, Option<ScheduleInfo>> = HashMap::new();
        let mut out = Vec::with_capacity(offered.len());
        for (start, end, slot, schedule_id) in offered {
            if !described.contains_key(&schedule_id) {
                let info = match found.get(&format!("Schedule/{schedule_id}")).cloned() {
                    Some(s) => Some(schedule::describe(&schedule_id, &s, &mut found)?),
                    None => None,
                };
                described.insert(schedule_id.clone(), info);
            }
            let summary = match described.get(&schedule_id) {
                Some(Some(info)) if !info.active => continue,
                Some(Some(info)) => info.summary.clone(),
                // The Schedule was not brought (the includes' limit): its id only.
                _ => super::ScheduleSummary {
                    id: schedule_id.clone(),
                    practitioner: None,
                    service: None,
                    location: None,
                    organization: None,
                    requires_confirmation: false,
                },
            };
            out.push(BookableSlot {
                slot,
                start,
                end,
                schedule: summary,
            });
        }
        patients.sort();
        patients.dedup();
        Ok((out, patients))
    }
}

/// One page of free Slots in `[from, to)` sorted by start, of Schedules passing `chain`
/// (none: every Schedule), not inactive, with the includes a page needs.
fn slot_query(
    chain: Option<(String, String)>,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<oxehr_search::query::Query, RecordsError> {
    // Whole seconds around the window (the index holds a Slot's start as the range of
    // its precision); the exact bounds are applied to the matches.
    let second = |t: i64, up: bool| {
        let s = t.div_euclid(1_000_000) * 1_000_000;
        let s = if up && s < t { s + 1_000_000 } else { s };
        time_fmt::format_instant(s)
    };
    let mut pairs: Vec<(String, String)> = vec![
        ("status".into(), "free".into()),
        ("start".into(), format!("ge{}", second(from, false))),
        ("start".into(), format!("lt{}", second(to, true))),
        ("schedule:Schedule.active:not".into(), "false".into()),
        ("_sort".into(), "start".into()),
        ("_total".into(), "none".into()),
        ("_count".into(), limit.to_string()),
    ];
    pairs.extend(chain);
    pairs.extend(
        INCLUDES
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    crate::query::parse(&["Slot".to_owned()], &pairs, false, None)
}
