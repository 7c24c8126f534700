//! SIU^S12 → Patient + Appointment, following "HL7 Message - FHIR R4_ SIU_S12 -
//! Sheet1.csv", "HL7 Segment - FHIR R4_ SCH[Appointment] - Sheet1.csv", "_ AIS[Appointment]",
//! "_ AIL[Appointment]" and "_ AIP[Appointment]"; status by the
//! "FillerStatusCodes[Appointment]" concept map (SCH-25), `booked` when SCH-25 is empty
//! (S12 announces a booking).
//!
//! Start/end come from TQ1-7/TQ1-8, else SCH-11.4/SCH-11.5. R4 (app-3) lets only
//! proposed, cancelled and waitlisted appointments lack them, so a booked one without
//! times is refused (101).
//!
//! Left out: AIG (equipment; no Device entries), NTE comments, SCH-12..SCH-23 contacts,
//! RGS grouping, and the DG1/OBX of the message.

use serde_json::{json, Value};

use super::patient::{add_patient, first_pid};
use super::{reference, Builder, Context, Mapped, Write};
use crate::datatypes::{cwe_field, ei, nz, obj, xcn_reference};
use crate::error::MapError;
use crate::parse::Message;

pub(crate) fn map(msg: &Message, ctx: &Context) -> Result<Mapped, MapError> {
    let sch = msg
        .segment("SCH")
        .ok_or_else(|| MapError::missing("SCH", "scheduling activity segment"))?;
    let pid = first_pid(msg)?;
    let mut b = Builder::new(msg, ctx);
    let patient = add_patient(&mut b, pid)?;
    // The visit, when the message has one ("PV1[Encounter]").
    super::adt::add_visit(&mut b, msg, &patient, "")?;
    let status = match sch.comp(25, 1).trim() {
        "" | "Booked" | "Overbook" => "booked",
        "Pending" => "pending",
        "Waitlist" => "waitlist",
        "Started" => "checked-in",
        "Complete" => "fulfilled",
        "Cancelled" | "Discontinued" => "cancelled",
        "Deleted" => "entered-in-error",
        "Noshow" => "noshow",
        _ => {
            return Err(MapError::bad_code(
                &b.loc(sch, 25),
                "HL7 table 0278 (filler status codes)",
            ))
        }
    };
    let tq1 = msg.segment("TQ1");
    let (start, end) = match tq1 {
        Some(t) if nz(t.text(7)).is_some() => (b.datetime(t, 7)?, b.datetime(t, 8)?),
        _ => (
            b.datetime_text(sch, 11, sch.comp(11, 4))?,
            b.datetime_text(sch, 11, sch.comp(11, 5))?,
        ),
    };
    let (start, end) = match (start, end) {
        (Some(s), Some(e)) => (Some(s), Some(e)),
        _ if matches!(
            status,
            "cancelled" | "waitlist" | "pending" | "entered-in-error"
        ) =>
        {
            (None, None)
        }
        _ => return Err(MapError::missing("TQ1^1^7", "appointment start and end")),
    };
    let mut participants = vec![json!({"actor": reference(&patient), "status": "accepted"})];
    for aip in msg.segments_named("AIP") {
        if let Some(actor) = aip.rep(3).and_then(|r| xcn_reference(r, b.base())) {
            participants.push(json!(obj(vec![
                ("type", cwe_field(aip, 4).map(|c| json!([c]))),
                ("actor", Some(actor)),
                ("status", Some(json!("accepted"))),
            ])));
        }
    }
    for ail in msg.segments_named("AIL") {
        let place: Vec<&str> = [
            ail.comp(3, 1),
            ail.comp(3, 2),
            ail.comp(3, 3),
            ail.comp(3, 4),
        ]
        .into_iter()
        .filter_map(nz)
        .collect();
        if !place.is_empty() {
            participants.push(json!({
                "actor": {"type": "Location", "display": place.join(" ")},
                "status": "accepted",
            }));
        }
    }
    let services: Vec<Value> = msg
        .segments_named("AIS")
        .filter_map(|ais| cwe_field(ais, 3))
        .collect();
    let id = ei(sch.rep(2), b.base()).or_else(|| ei(sch.rep(1), b.base()));
    let appointment = obj(vec![
        ("resourceType", Some(json!("Appointment"))),
        (
            "identifier",
            id.as_ref().map(|(s, v)| json!([{"system": s, "value": v}])),
        ),
        ("status", Some(json!(status))),
        ("serviceType", Some(Value::Array(services))),
        ("appointmentType", cwe_field(sch, 8)),
        ("reasonCode", cwe_field(sch, 7).map(|c| json!([c]))),
        ("start", start.map(Value::String)),
        ("end", end.map(Value::String)),
        ("participant", Some(Value::Array(participants))),
    ])
    .unwrap_or_default();
    match &id {
        Some((s, v)) => b.add(appointment, Write::PutOn(s, v)),
        None => b.add(appointment, Write::Post),
    };
    Ok(b.finish())
}
