//! Today's schedule of the demo clinician: one appointment for each living patient in
//! their organization's care (at most [`MAX_APPOINTMENTS`]), between 09:00 and 16:30.
//!
//! "Today" is the server's date in UTC, and the times are UTC (`…T09:00:00Z`): the pages
//! compute today and show times in UTC too, so the two agree wherever the server runs.
//! Each start of `serve --demo` makes the day's schedule when the demo practitioner has
//! no appointment today, so a restart adds nothing and a demo database kept for days
//! gets each new day's schedule. A patient with an active problem comes for a follow-up
//! of their newest one (its code is the reason), the others for a check-up. The status
//! fits the time of the start: past appointments are fulfilled, the current one
//! arrived, later ones booked.

use anyhow::Result;
use serde_json::{json, Value};

use oxehr_records::{format_instant, now_micros, parse_instant, Caller, Records};

use super::{patients_in_care, search, Staff};

/// The most appointments a demo day has.
pub(super) const MAX_APPOINTMENTS: usize = 8;

/// The day's start times (UTC, minutes after midnight); a day with fewer patients
/// spreads over them.
const STARTS: [u32; MAX_APPOINTMENTS] = [
    9 * 60,
    9 * 60 + 40,
    10 * 60 + 20,
    11 * 60,
    13 * 60 + 30,
    14 * 60 + 15,
    15 * 60,
    16 * 60,
];

const SNOMED: &str = "http://snomed.info/sct";
const APPOINTMENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0276";

/// What a visit is for.
struct Kind {
    minutes: u32,
    service: (&'static str, &'static str),
    appointment_type: (&'static str, &'static str),
}

const FOLLOW_UP: Kind = Kind {
    minutes: 20,
    service: ("390906007", "Follow-up encounter"),
    appointment_type: ("FOLLOWUP", "A follow up visit from a previous appointment"),
};

const CHECK_UP: Kind = Kind {
    minutes: 30,
    service: ("185349003", "Encounter for check up"),
    appointment_type: ("CHECKUP", "A routine check-up, such as an annual physical"),
};

/// Makes today's appointments of `staff`'s practitioner unless they have one today.
pub(super) fn ensure_today(records: &Records, staff: &Staff) -> Result<()> {
    let now = now_micros();
    let today = format_instant(now)[..10].to_owned();
    let booked = search(
        records,
        "Appointment",
        &[
            ("actor", staff.practitioner.clone()),
            ("date", today.clone()),
        ],
        1,
    )?;
    if !booked.is_empty() {
        tracing::info!("the demo clinician has appointments today; none added");
        return Ok(());
    }
    let patients = patients_in_care(records, &staff.organization, MAX_APPOINTMENTS)?;
    if patients.is_empty() {
        return Ok(());
    }
    let practitioner_name = search(
        records,
        "Practitioner",
        &[(
            "_id",
            staff
                .practitioner
                .trim_start_matches("Practitioner/")
                .to_owned(),
        )],
        1,
    )?
    .first()
    .map(oxehr_web::display::person_name);
    let mut entries = Vec::new();
    for (i, patient) in patients.iter().enumerate() {
        let Some(pid) = patient["id"].as_str() else {
            continue;
        };
        let problem = search(
            records,
            "Condition",
            &[
                ("patient", pid.to_owned()),
                ("clinical-status", "active,recurrence,relapse".to_owned()),
                ("_sort", "-onset-date".to_owned()),
            ],
            1,
        )?
        .into_iter()
        .next();
        let start = STARTS[i * STARTS.len() / patients.len()];
        let visit = Visit {
            today: &today,
            start,
            now,
            patient,
            practitioner: &staff.practitioner,
            practitioner_name: practitioner_name.as_deref(),
            problem: problem.as_ref(),
        };
        entries.push(json!({
            "resource": visit.appointment(),
            "request": {"method": "POST", "url": "Appointment"}
        }));
    }
    let count = entries.len();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    records
        .bundle(&Caller::server(), bundle)
        .map_err(|e| anyhow::anyhow!("demo schedule: {e}"))?;
    tracing::info!(
        appointments = count,
        "made the demo clinician's schedule for today"
    );
    Ok(())
}

/// One appointment of the day.
struct Visit<'a> {
    today: &'a str,
    /// Minutes after midnight, UTC.
    start: u32,
    now: i64,
    patient: &'a Value,
    practitioner: &'a str,
    practitioner_name: Option<&'a str>,
    problem: Option<&'a Value>,
}

impl Visit<'_> {
    fn appointment(&self) -> Value {
        let kind = if self.problem.is_some() {
            &FOLLOW_UP
        } else {
            &CHECK_UP
        };
        let at = |m: u32| format!("{}T{:02}:{:02}:00Z", self.today, m / 60, m % 60);
        let (start, end) = (at(self.start), at(self.start + kind.minutes));
        let status = match (parse_instant(&start), parse_instant(&end)) {
            (_, Some(e)) if e <= self.now => "fulfilled",
            (Some(s), _) if s <= self.now => "arrived",
            _ => "booked",
        };
        let pid = self.patient["id"].as_str().unwrap_or_default();
        let mut practitioner = json!({"reference": self.practitioner});
        if let Some(n) = self.practitioner_name {
            practitioner["display"] = json!(n);
        }
        let mut a = json!({
            "resourceType": "Appointment",
            "status": status,
            "serviceCategory": [{
                "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/service-category",
                    "code": "17",
                    "display": "General Practice"
                }]
            }],
            "serviceType": [{
                "coding": [{"system": SNOMED, "code": kind.service.0, "display": kind.service.1}],
                "text": kind.service.1
            }],
            "appointmentType": {
                "coding": [{
                    "system": APPOINTMENT_TYPE,
                    "code": kind.appointment_type.0,
                    "display": kind.appointment_type.1
                }]
            },
            "description": kind.service.1,
            "start": start,
            "end": end,
            "minutesDuration": kind.minutes,
            "participant": [
                {
                    "actor": {
                        "reference": format!("Patient/{pid}"),
                        "display": oxehr_web::display::person_name(self.patient)
                    },
                    "required": "required",
                    "status": "accepted"
                },
                {"actor": practitioner, "required": "required", "status": "accepted"}
            ]
        });
        if let Some(c) = self.problem {
            if c["code"].is_object() {
                a["reasonCode"] = json!([c["code"].clone()]);
            }
            if let Some(id) = c["id"].as_str() {
                a["reasonReference"] = json!([{"reference": format!("Condition/{id}")}]);
            }
            let what = oxehr_web::display::concept(&c["code"]);
            if let Some(w) = what {
                a["description"] = json!(format!("{}: {w}", kind.service.1));
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visit_s_status_fits_the_time() {
        let patient = json!({"id": "p1", "name": [{"given": ["Ann"], "family": "Lee"}]});
        let at = |t: &str| parse_instant(t).expect("instant");
        // A 20-minute follow-up at 09:40 seen at three moments of the day.
        let problem = json!({"id": "c1", "code": {"text": "Hypertension"}});
        let cases = [
            ("2026-03-05T08:00:00Z", "booked"),
            ("2026-03-05T09:45:00Z", "arrived"),
            ("2026-03-05T10:00:00Z", "fulfilled"),
        ];
        for (now, want) in cases {
            let v = Visit {
                today: "2026-03-05",
                start: 9 * 60 + 40,
                now: at(now),
                patient: &patient,
                practitioner: "Practitioner/d1",
                practitioner_name: Some("Dr. Levi Reichert"),
                problem: Some(&problem),
            };
            let a = v.appointment();
            assert_eq!(a["status"], want, "at {now}");
            assert_eq!(a["start"], "2026-03-05T09:40:00Z");
            assert_eq!(a["end"], "2026-03-05T10:00:00Z");
            assert_eq!(a["description"], "Follow-up encounter: Hypertension");
            assert_eq!(a["participant"][0]["actor"]["display"], "Ann Lee");
        }
    }
}
