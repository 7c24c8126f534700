//! Appointments in the portal — the patient's upcoming appointments with cancel and
//! "change the time", and booking from the free time of their care team's schedules —
//! and the inbox's appointment requests (bookings a schedule's staff confirm). Every
//! rule (which slots a person may book, one Slot one Appointment, who confirms) is
//! `oxehr_records`' booking module; these handlers only show its answers.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use oxehr_fhir::ResourceId;
use oxehr_records::{BookableSlot, RecordsError, StoredResource};

use crate::chart;
use crate::display;
use crate::pages::{blocking, message, record_read, view_form, Frame, Nav, Page, View};
use crate::session::field;
use crate::WebState;

/// How far ahead the booking page offers time, in days.
pub const BOOKING_DAYS: i64 = 14;
/// The most upcoming appointments the page lists.
pub const UPCOMING_ROWS: usize = 20;
const DAY: i64 = 86_400_000_000;

/// A free slot as the booking form offers it: its id and time of day.
pub(crate) struct SlotChoice {
    pub id: String,
    pub time: String,
}

/// The free slots of one schedule on one day.
pub(crate) struct Group {
    /// What and with whom: "Clinic appointment with Dr … (Organization)".
    pub with: String,
    pub needs_confirmation: bool,
    pub slots: Vec<SlotChoice>,
}

/// The free slots of one day, by schedule.
pub(crate) struct Day {
    pub title: String,
    pub groups: Vec<Group>,
}

fn hm(micros: i64) -> String {
    oxehr_records::format_instant(micros)
        .get(11..16)
        .unwrap_or_default()
        .to_owned()
}

/// What a schedule offers, in words.
fn offered_by(sch: &oxehr_records::ScheduleSummary) -> String {
    let what = sch
        .service
        .clone()
        .or_else(|| sch.practitioner.clone())
        .unwrap_or_else(|| "Appointment".to_owned());
    let mut with = vec![what];
    if let (Some(p), Some(_)) = (&sch.practitioner, &sch.service) {
        with.push(format!("with {p}"));
    }
    if let Some(l) = &sch.location {
        with.push(format!("at {l}"));
    }
    if let Some(o) = &sch.organization {
        with.push(format!("({o})"));
    }
    with.join(" ")
}

/// The slots by day (UTC) and schedule, in time order.
fn days(slots: &[BookableSlot]) -> Vec<Day> {
    let mut by_day: BTreeMap<String, Vec<Group>> = BTreeMap::new();
    for s in slots {
        let date = oxehr_records::format_instant(s.start)[..10].to_owned();
        let groups = by_day.entry(date).or_default();
        let with = offered_by(&s.schedule);
        let choice = SlotChoice {
            id: s.slot.clone(),
            time: format!("{}–{}", hm(s.start), hm(s.end)),
        };
        match groups.iter_mut().find(|g| g.with == with) {
            Some(g) => g.slots.push(choice),
            None => groups.push(Group {
                with,
                needs_confirmation: s.schedule.requires_confirmation,
                slots: vec![choice],
            }),
        }
    }
    by_day
        .into_iter()
        .map(|(date, groups)| Day {
            title: weekday_date(&date),
            groups,
        })
        .collect()
}

/// "Monday 7 Dec 2026" for `2026-12-07`.
fn weekday_date(date: &str) -> String {
    const NAMES: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let day = oxehr_records::parse_instant(&format!("{date}T00:00:00Z"))
        .map(|m| NAMES[(m.div_euclid(DAY)).rem_euclid(7) as usize])
        .unwrap_or_default();
    format!("{day} {}", display::date(date))
}

/// An upcoming appointment as the page lists it.
pub(crate) struct Upcoming {
    pub id: String,
    pub when: String,
    pub what: String,
    pub status: &'static str,
    pub waiting: bool,
}

fn upcoming(a: &Value) -> Upcoming {
    let status = a["status"].as_str().unwrap_or("");
    Upcoming {
        id: a["id"].as_str().unwrap_or_default().to_owned(),
        when: a["start"]
            .as_str()
            .map(display::date_time)
            .unwrap_or_default(),
        what: a["description"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| display::concept(&a["serviceType"][0]))
            .or_else(|| display::concept(&a["appointmentType"]))
            .unwrap_or_else(|| "Appointment".to_owned()),
        status: match status {
            "proposed" | "pending" => "Waiting for the clinic to confirm",
            _ => "Booked",
        },
        waiting: matches!(status, "proposed" | "pending"),
    }
}

#[derive(Template)]
#[template(path = "appointments.html")]
struct AppointmentsPage {
    nav: Nav,
    back: String,
    base: String,
    name: String,
    upcoming: Vec<Upcoming>,
    days: Vec<Day>,
    done: Option<&'static str>,
    /// Set when choosing a new time for this appointment.
    moving: Option<Upcoming>,
    action: String,
    button: &'static str,
}

fn upcoming_of(
    records: &oxehr_records::Records,
    who: &oxehr_records::Caller,
    pid: &str,
) -> Result<Vec<Value>, RecordsError> {
    let today = crate::pages::today();
    let page = chart::search(
        records,
        who,
        "Appointment",
        &[
            ("patient", pid.to_owned()),
            ("date", format!("ge{today}")),
            ("status", "proposed,pending,booked".to_owned()),
            ("_sort", "date".to_owned()),
        ],
        UPCOMING_ROWS,
    )?;
    Ok(page.matches.iter().filter_map(chart::body).collect())
}

async fn page(
    state: &WebState,
    headers: &HeaderMap,
    id: &str,
    moving: Option<String>,
    done: Option<&'static str>,
) -> Response {
    let pid = id.to_owned();
    let mv = moving.clone();
    let (s, (p, upcoming_list, slots)) =
        match record_read(state, headers, id, View::Portal, move |records, who| {
            let p = chart::patient(&records, &who, &pid)?;
            let list = upcoming_of(&records, &who, &pid)?;
            if let Some(m) = &mv {
                if !list.iter().any(|a| a["id"].as_str() == Some(m.as_str())) {
                    return Err(RecordsError::NotFound(format!("Appointment/{m}")));
                }
            }
            let now = oxehr_records::now_micros();
            let slots =
                records.bookable_slots_for(&who, Some(&pid), now, now + BOOKING_DAYS * DAY, 100)?;
            Ok((p, list, slots))
        })
        .await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    let frame = Frame::of(&s, View::Portal, id, &p);
    let upcoming_rows: Vec<Upcoming> = upcoming_list.iter().map(upcoming).collect();
    let moving = moving.and_then(|m| {
        upcoming_list
            .iter()
            .find(|a| a["id"].as_str() == Some(m.as_str()))
            .map(upcoming)
    });
    let (action, button) = match &moving {
        Some(m) => (
            format!("{}/appointments/{}/reschedule", frame.base, m.id),
            "Move to this time",
        ),
        None => (format!("{}/appointments", frame.base), "Book this time"),
    };
    Page::render(
        StatusCode::OK,
        &AppointmentsPage {
            nav: frame.nav,
            back: frame.back,
            base: frame.base,
            name: display::person_name(&p),
            upcoming: upcoming_rows,
            days: days(&slots),
            done,
            moving,
            action,
            button,
        },
    )
    .into_response()
}

/// `GET /portal/{id}/appointments`: upcoming appointments, and free time to book.
pub async fn appointments(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let done = match q.get("done").map(String::as_str) {
        Some("booked") => Some("Booked. The appointment is in your list."),
        Some("requested") => Some(
            "Requested. The clinic confirms this kind of appointment; it shows as waiting until they do.",
        ),
        Some("cancelled") => Some("Cancelled. The time is free for someone else."),
        Some("moved") => Some("Moved to the new time."),
        _ => None,
    };
    page(&state, &headers, &id, None, done).await
}

/// `GET /portal/{id}/appointments/{appointment}/reschedule`: choose a new time.
pub async fn choose_new_time(
    State(state): State<WebState>,
    Path((id, appointment)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    page(&state, &headers, &id, Some(appointment), None).await
}

/// "There is no such record", for an id that cannot be one.
fn no_such_record() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such record.",
    )
    .into_response()
}

/// `POST /portal/{id}/appointments`: books the chosen `slot` with an optional `reason`.
pub async fn book(State(state): State<WebState>, Path(id): Path<String>, req: Request) -> Response {
    let (s, fields) = match view_form(&state, req, View::Portal).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let back = format!("/portal/{id}/appointments");
    let Some(slot) = field(&fields, "slot").map(str::to_owned) else {
        return crate::portal::refused_page(
            "Choose a time",
            "Choose one of the free times, then book it.".to_owned(),
            back,
        );
    };
    let reason = field(&fields, "reason").unwrap_or("").to_owned();
    let (Some(patient), Some(slot)) = (ResourceId::parse(&id), ResourceId::parse(&slot)) else {
        return no_such_record();
    };
    let (records, who) = (state.records.clone(), s.caller.clone());
    match blocking(move || records.book(&who, &patient, &slot, &reason)).await {
        Ok(b) if b.needs_confirmation => {
            Redirect::to(&format!("{back}?done=requested")).into_response()
        }
        Ok(_) => Redirect::to(&format!("{back}?done=booked")).into_response(),
        Err(e) => crate::portal::refused_or_error(&e, "That did not work", &back),
    }
}

/// `POST /portal/{id}/appointments/{appointment}/cancel`.
pub async fn cancel(
    State(state): State<WebState>,
    Path((id, appointment)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (s, fields) = match view_form(&state, req, View::Portal).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let back = format!("/portal/{id}/appointments");
    let reason = field(&fields, "reason").unwrap_or("").to_owned();
    let Some(a) = ResourceId::parse(&appointment) else {
        return no_such_record();
    };
    let (records, who) = (state.records.clone(), s.caller.clone());
    match blocking(move || records.cancel(&who, &a, &reason)).await {
        Ok(_) => Redirect::to(&format!("{back}?done=cancelled")).into_response(),
        Err(e) => crate::portal::refused_or_error(&e, "That did not work", &back),
    }
}

/// `POST /portal/{id}/appointments/{appointment}/reschedule`: moves it to `slot`.
pub async fn reschedule(
    State(state): State<WebState>,
    Path((id, appointment)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (s, fields) = match view_form(&state, req, View::Portal).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let back = format!("/portal/{id}/appointments");
    let slot = field(&fields, "slot").unwrap_or("").to_owned();
    let (Some(a), Some(slot)) = (ResourceId::parse(&appointment), ResourceId::parse(&slot)) else {
        return no_such_record();
    };
    let (records, who) = (state.records.clone(), s.caller.clone());
    match blocking(move || records.reschedule(&who, &a, &slot)).await {
        Ok(_) => Redirect::to(&format!("{back}?done=moved")).into_response(),
        Err(e) => crate::portal::refused_or_error(&e, "That did not work", &back),
    }
}

/// An appointment request as the inbox lists it.
pub(crate) struct RequestRow {
    pub id: String,
    pub when: String,
    pub what: String,
    pub patient: String,
    pub patient_name: String,
    pub reason: String,
}

/// The organization's appointment requests, for the inbox.
pub(crate) fn requests(
    records: &oxehr_records::Records,
    who: &oxehr_records::Caller,
) -> Result<Vec<RequestRow>, RecordsError> {
    let found: Vec<StoredResource> = records.appointment_requests(who, 50)?;
    let mut names = crate::portal::Names::new(records, who);
    Ok(found
        .iter()
        .filter_map(chart::body)
        .map(|a| {
            let patient_ref = a["participant"]
                .as_array()
                .and_then(|ps| {
                    ps.iter()
                        .map(|p| &p["actor"])
                        .find(|r| oxehr_records::requests::reference_id(r, "Patient").is_some())
                        .cloned()
                })
                .unwrap_or(Value::Null);
            let u = upcoming(&a);
            RequestRow {
                id: u.id,
                when: u.when,
                what: u.what,
                patient: oxehr_records::requests::reference_id(&patient_ref, "Patient")
                    .unwrap_or_default()
                    .to_owned(),
                patient_name: names.of(&patient_ref),
                reason: a["reasonCode"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            }
        })
        .collect())
}

/// `POST /inbox/appointments/{id}`: confirm (`decision=confirm`) or decline with a
/// `reason`.
pub async fn answer(
    State(state): State<WebState>,
    Path(appointment): Path<String>,
    req: Request,
) -> Response {
    let (s, fields) = match view_form(&state, req, View::Chart).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(a) = ResourceId::parse(&appointment) else {
        return no_such_record();
    };
    let decision = field(&fields, "decision").unwrap_or("").to_owned();
    let reason = field(&fields, "reason").unwrap_or("").to_owned();
    let (records, who) = (state.records.clone(), s.caller.clone());
    let confirm = decision == "confirm";
    let done = blocking(move || {
        if confirm {
            records.confirm(&who, &a)
        } else {
            records.decline(&who, &a, &reason)
        }
    })
    .await;
    match done {
        Ok(_) if confirm => Redirect::to("/inbox?done=confirmed").into_response(),
        Ok(_) => Redirect::to("/inbox?done=declined").into_response(),
        Err(e) => crate::portal::refused_or_error(&e, "That did not work", "/inbox"),
    }
}
