//! Today's schedule: the signed-in clinician's or nurse's appointments today, read
//! through `oxehr-records` as them (`Appointment?actor=<their person>&date=<today>`), so
//! the access policy decides which they see: an appointment is in its patient's
//! compartment, and one with a patient outside their organization's care is not shown.
//!
//! "Today" is the server's date in UTC and times are shown in UTC, so the day and the
//! times agree wherever the server runs (the page says so). Each row: the time, the
//! patient (linking to the chart), what the visit is for and why, in the record's
//! words, the status in plain words, and where, when the appointment names a place.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use oxehr_records::{format_instant, parse_instant, Records, RecordsError};

use crate::pages::{self, Page};
use crate::session::signed_in;
use crate::{chart, display, WebState};

/// The most appointments the page lists (it says so when there are more).
pub const MAX_ROWS: usize = 100;

/// One appointment of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// "09:30–09:50" (UTC), or the start alone.
    pub time: String,
    pub patient: String,
    /// The patient's id, when the appointment names one.
    pub patient_id: Option<String>,
    /// What the visit is: its service type, else appointment type, else description.
    pub what: String,
    /// Why: the reasons' words.
    pub reason: String,
    pub status: String,
    /// Where: the locations and services it names.
    pub place: String,
}

#[derive(Template)]
#[template(path = "schedule.html")]
struct SchedulePage<'a> {
    nav: crate::pages::Nav,
    day: String,
    count_text: String,
    empty: &'a str,
    has_place: bool,
    rows: Vec<Row>,
}

/// `GET /schedule`: today's appointments of the signed-in clinician or nurse.
pub async fn schedule(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let s = match signed_in(&state, &headers, None).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if let Some(r) = pages::only_chart_users(&s) {
        return r;
    }
    let today = pages::today();
    let (rows, total, empty) = match s.caller.person.clone() {
        Some(person) => {
            let (records, who, day) = (state.records.clone(), s.caller.clone(), today.clone());
            match pages::blocking(move || day_of(&records, &who, &person, &day)).await {
                Ok((rows, total)) => (rows, total, "You have no appointments today."),
                Err(e) => return pages::error_page(&e),
            }
        }
        None => (
            vec![],
            0,
            "Your account is not linked to a practitioner, so it has no appointments.",
        ),
    };
    let count_text = match (rows.len(), total) {
        (_, 0) => String::new(),
        (1, 1) => "1 appointment. Times are in UTC.".to_owned(),
        (n, t) if t > n => format!("The first {n} of {t} appointments. Times are in UTC."),
        (n, _) => format!("{n} appointments. Times are in UTC."),
    };
    Page::render(
        StatusCode::OK,
        &SchedulePage {
            nav: crate::pages::Nav::of(&s),
            day: format!("Today, {}", display::date(&today)),
            count_text,
            empty,
            has_place: rows.iter().any(|r| !r.place.is_empty()),
            rows,
        },
    )
    .into_response()
}

/// `person`'s appointments on `day` (`YYYY-MM-DD`, UTC) as `who`, by start time, and
/// how many there are.
fn day_of(
    records: &Records,
    who: &oxehr_auth::Caller,
    person: &str,
    day: &str,
) -> Result<(Vec<Row>, usize), RecordsError> {
    let page = chart::search(
        records,
        who,
        "Appointment",
        &[
            ("actor", person.to_owned()),
            ("date", day.to_owned()),
            ("_sort", "date".to_owned()),
            ("_include", "Appointment:patient".to_owned()),
            ("_include", "Appointment:location".to_owned()),
        ],
        MAX_ROWS,
    )?;
    let included: Vec<Value> = page.included.iter().filter_map(chart::body).collect();
    let rows: Vec<Row> = page
        .matches
        .iter()
        .filter_map(chart::body)
        .map(|a| row(&a, &included))
        .collect();
    let total = page
        .total
        .and_then(|t| usize::try_from(t).ok())
        .unwrap_or(rows.len());
    Ok((rows, total))
}

/// The row of appointment `a`; `included` holds the patients and locations it names.
pub fn row(a: &Value, included: &[Value]) -> Row {
    let participants: Vec<&Value> = a["participant"]
        .as_array()
        .map(|ps| ps.iter().map(|p| &p["actor"]).collect())
        .unwrap_or_default();
    let named = |kind: &str| -> Vec<(&Value, Option<&Value>)> {
        participants
            .iter()
            .filter(|actor| {
                actor["reference"]
                    .as_str()
                    .is_some_and(|r| r.starts_with(&format!("{kind}/")))
            })
            .map(|actor| {
                let id = actor["reference"]
                    .as_str()
                    .and_then(|r| r.split_once('/'))
                    .map(|(_, id)| id);
                let found = included
                    .iter()
                    .find(|r| r["resourceType"] == kind && r["id"].as_str() == id);
                (*actor, found)
            })
            .collect()
    };
    let patient = named("Patient").into_iter().next();
    let (patient_name, patient_id) = match patient {
        Some((actor, found)) => (
            found
                .map(display::person_name)
                .or_else(|| actor["display"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "(no name recorded)".to_owned()),
            actor["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Patient/"))
                .map(str::to_owned),
        ),
        None => ("(no patient named)".to_owned(), None),
    };
    let mut places: Vec<String> = named("Location")
        .into_iter()
        .filter_map(|(actor, found)| {
            found
                .and_then(|l| l["name"].as_str())
                .or_else(|| actor["display"].as_str())
                .map(str::to_owned)
        })
        .collect();
    places.extend(
        named("HealthcareService")
            .into_iter()
            .filter_map(|(actor, _)| actor["display"].as_str().map(str::to_owned)),
    );
    let first_concept = |v: &Value| {
        v.as_array()
            .and_then(|cs| cs.iter().find_map(display::concept))
    };
    let what = first_concept(&a["serviceType"])
        .or_else(|| display::concept(&a["appointmentType"]))
        .or_else(|| a["description"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "Appointment".to_owned());
    let mut reasons: Vec<String> = a["reasonCode"]
        .as_array()
        .map(|cs| cs.iter().filter_map(display::concept).collect())
        .unwrap_or_default();
    if reasons.is_empty() {
        reasons = a["reasonReference"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| r["display"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
    }
    Row {
        time: time_span(a),
        patient: patient_name,
        patient_id,
        what,
        reason: reasons.join(", "),
        status: status_words(a["status"].as_str().unwrap_or("")).to_owned(),
        place: places.join(", "),
    }
}

/// "09:30–09:50" in UTC: the start and the end (else the start plus `minutesDuration`).
pub fn time_span(a: &Value) -> String {
    let hm = |micros: i64| format_instant(micros)[11..16].to_owned();
    let Some(start) = a["start"].as_str().and_then(parse_instant) else {
        return "Time not set".to_owned();
    };
    let end = a["end"].as_str().and_then(parse_instant).or_else(|| {
        a["minutesDuration"]
            .as_i64()
            .map(|m| start + m * 60_000_000)
    });
    match end {
        Some(end) if end > start => format!("{}–{}", hm(start), hm(end)),
        _ => hm(start),
    }
}

/// An appointment's status as the clinic says it.
pub fn status_words(code: &str) -> &'static str {
    match code {
        "proposed" => "Proposed",
        "pending" => "Waiting for confirmation",
        "booked" => "Booked",
        "arrived" => "Arrived",
        "checked-in" => "Checked in",
        "fulfilled" => "Completed",
        "cancelled" => "Cancelled",
        "noshow" => "Did not come",
        "entered-in-error" => "Entered in error",
        "waitlist" => "On the waiting list",
        _ => "Status not recorded",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_read_in_utc_whatever_offset_the_record_gives() {
        let cases = [
            (
                json!({"start": "2026-03-05T09:30:00Z", "end": "2026-03-05T09:50:00Z"}),
                "09:30–09:50",
            ),
            (
                json!({"start": "2026-03-05T09:30:00-05:00", "end": "2026-03-05T10:00:00-05:00"}),
                "14:30–15:00",
            ),
            (
                json!({"start": "2026-03-05T16:00:00Z", "minutesDuration": 30}),
                "16:00–16:30",
            ),
            (json!({"start": "2026-03-05T08:05:00Z"}), "08:05"),
            (json!({"status": "proposed"}), "Time not set"),
        ];
        for (a, want) in cases {
            assert_eq!(time_span(&a), want, "{a}");
        }
    }

    #[test]
    fn a_row_says_who_what_why_and_how_in_words() {
        let a = json!({
            "resourceType": "Appointment",
            "status": "fulfilled",
            "serviceType": [{"coding": [{"system": "http://snomed.info/sct",
                "code": "390906007", "display": "Follow-up encounter"}]}],
            "appointmentType": {"coding": [{"code": "FOLLOWUP"}]},
            "reasonCode": [{"coding": [{"system": "http://snomed.info/sct",
                "code": "38341003"}], "text": "Hypertension"}],
            "start": "2026-03-05T09:00:00Z",
            "end": "2026-03-05T09:20:00Z",
            "participant": [
                {"actor": {"reference": "Patient/p1", "display": "stale name"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/d1"}, "status": "accepted"},
                {"actor": {"reference": "Location/l1", "display": "Room 2"}, "status": "accepted"}
            ]
        });
        let included = [
            json!({"resourceType": "Patient", "id": "p1",
                "name": [{"use": "official", "given": ["Kermit"], "family": "Trantow"}]}),
            json!({"resourceType": "Location", "id": "l1", "name": "Clinic B"}),
        ];
        assert_eq!(
            row(&a, &included),
            Row {
                time: "09:00–09:20".into(),
                patient: "Kermit Trantow".into(),
                patient_id: Some("p1".into()),
                what: "Follow-up encounter".into(),
                reason: "Hypertension".into(),
                status: "Completed".into(),
                place: "Clinic B".into(),
            }
        );
        // Nothing included (a patient the caller may not read is never included): the
        // appointment's own words.
        let r = row(&a, &[]);
        assert_eq!(
            (r.patient.as_str(), r.place.as_str()),
            ("stale name", "Room 2")
        );
        // No service type: the appointment type, then the description.
        let bare = json!({"status": "booked", "description": "Annual physical"});
        let r = row(&bare, &[]);
        assert_eq!(
            (r.what.as_str(), r.status.as_str(), r.patient_id),
            ("Annual physical", "Booked", None)
        );
    }

    #[test]
    fn every_status_has_plain_words() {
        for code in [
            "proposed",
            "pending",
            "booked",
            "arrived",
            "fulfilled",
            "cancelled",
            "noshow",
            "entered-in-error",
            "checked-in",
            "waitlist",
        ] {
            assert_ne!(status_words(code), "Status not recorded", "{code}");
        }
    }
}
