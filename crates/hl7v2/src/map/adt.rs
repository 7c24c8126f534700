//! ADT messages: Patient + Encounter (A01, A02, A03, A04, A05, A08, A11, A13), Patient
//! only (A28, A31), and the A40 merge.
//!
//! Message tables: "HL7 Message - FHIR R4_ ADT_A01", "_ ADT_A02", "_ ADT_A05" and
//! "_ ADT_A11" (PID → Patient[1], PV1/PV2 → Encounter[1]). Encounter.status follows
//! the "Event[EncounterStatus]" concept map (A01/A02/A13 in-progress, A03 finished,
//! A04/A05 planned, A11 cancelled). For A08 that map says `unknown` because the event
//! carries no status; we use "PatientClass[EncounterStatus]" (PV1-2) instead, or
//! `finished` when PV1-45 has a discharge time, so an update does not erase a known
//! status. A28/A31 follow "ADT_A05": a PV1 that says anything becomes an Encounter,
//! as in every other message type the IG maps ([`add_visit`]).

use serde_json::{json, Value};

use super::patient::{add_patient, first_pid, pid3};
use super::{reference, Builder, Mapped, Write};
use crate::datatypes::{cwe_field, cx_identifier, nz, obj, xcn_reference};
use crate::error::{ErrorCode, MapError};
use crate::parse::{Message, Segment};

/// ADT^A28/A31: the Patient, and the visit its PV1 describes, if any.
pub(crate) fn patient_only(msg: &Message, ctx: &super::Context) -> Result<Mapped, MapError> {
    let mut b = Builder::new(msg, ctx);
    let patient = add_patient(&mut b, first_pid(msg)?)?;
    add_visit(&mut b, msg, &patient, "")?;
    Ok(b.finish())
}

/// The message's PV1 (and PV2) as an Encounter of the sending organization, when it
/// has one that says anything: every message table the IG maps has "PV1[Encounter]"
/// (ADT, ORU_R01, VXU_V04, SIU_S12, MDM_T02). Returns the Encounter's fullUrl.
pub(crate) fn add_visit(
    b: &mut Builder<'_>,
    msg: &Message,
    patient: &str,
    event: &str,
) -> Result<Option<String>, MapError> {
    let Some(pv1) = msg.segment("PV1") else {
        return Ok(None);
    };
    if (2..=pv1.field_count()).all(|n| pv1.text(n).trim().is_empty()) {
        return Ok(None);
    }
    add_encounter(b, pv1, msg.segment("PV2"), patient, event).map(Some)
}

/// ADT events with a visit: Patient + Encounter.
pub(crate) fn patient_and_encounter(
    msg: &Message,
    ctx: &super::Context,
    event: &str,
) -> Result<Mapped, MapError> {
    let pid = first_pid(msg)?;
    let pv1 = msg
        .segment("PV1")
        .ok_or_else(|| MapError::missing("PV1", "patient visit segment"))?;
    let mut b = Builder::new(msg, ctx);
    let patient = add_patient(&mut b, pid)?;
    add_encounter(&mut b, pv1, msg.segment("PV2"), &patient, event)?;
    Ok(b.finish())
}

/// PV1 (+PV2) → Encounter, following "HL7 Segment - FHIR R4_ PV1[Encounter] - PV1.csv"
/// (class by "PatientClass[EncounterClass]", participants PV1-7/8/9/17, period
/// PV1-44/45, identifier PV1-19) and "HL7 Segment - FHIR R4_ PV2[Encounter] - PV2.csv"
/// (PV2-3 admit reason → reasonCode).
fn add_encounter(
    b: &mut Builder<'_>,
    pv1: &Segment,
    pv2: Option<&Segment>,
    patient: &str,
    event: &str,
) -> Result<String, MapError> {
    let class_code = pv1.text(2).trim().to_ascii_uppercase();
    let v3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
    let v2 = "http://terminology.hl7.org/CodeSystem/v2-0004";
    let class = match class_code.as_str() {
        "E" => json!({"system": v3, "code": "EMER", "display": "emergency"}),
        "I" => json!({"system": v3, "code": "IMP", "display": "inpatient encounter"}),
        "O" => json!({"system": v3, "code": "AMB", "display": "ambulatory"}),
        "P" => json!({"system": v3, "code": "PRENC", "display": "pre-admission"}),
        "R" => json!({"system": v2, "code": "R", "display": "Recurring patient"}),
        "B" => json!({"system": v2, "code": "B", "display": "Obstetrics"}),
        "C" => json!({"system": v2, "code": "C", "display": "Commercial Account"}),
        "N" => json!({"system": v2, "code": "N", "display": "Not Applicable"}),
        "U" | "" => json!({"system": v2, "code": "U", "display": "Unknown"}),
        _ => {
            return Err(MapError::bad_code(
                &b.loc(pv1, 2),
                "HL7 table 0004 (patient class)",
            ))
        }
    };
    let start = b.datetime(pv1, 44)?;
    let end = b.datetime(pv1, 45)?;
    let status = match event {
        "A01" | "A02" | "A13" => "in-progress",
        "A03" => "finished",
        "A04" | "A05" => "planned",
        "A11" => "cancelled",
        _ if end.is_some() => "finished",
        _ => match class_code.as_str() {
            "P" => "planned",
            "U" | "" => "unknown",
            _ => "in-progress",
        },
    };
    let mut participants = Vec::new();
    for (field, code, display) in [
        (7, "ATND", "attender"),
        (8, "REF", "referrer"),
        (9, "CON", "consultant"),
        (17, "ADM", "admitter"),
    ] {
        for rep in pv1.reps(field) {
            if let Some(individual) = xcn_reference(rep, b.base()) {
                participants.push(json!({
                    "type": [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "code": code,
                        "display": display,
                    }]}],
                    "individual": individual,
                }));
            }
        }
    }
    let visit = pv1.rep(19).and_then(|r| cx_identifier(r, b.base()));
    let encounter = obj(vec![
        ("resourceType", Some(json!("Encounter"))),
        ("identifier", visit.as_ref().map(|(_, _, id)| json!([id]))),
        ("status", Some(json!(status))),
        ("class", Some(class)),
        ("subject", Some(reference(patient))),
        ("participant", Some(Value::Array(participants))),
        (
            "period",
            obj(vec![
                ("start", start.map(Value::String)),
                ("end", end.map(Value::String)),
            ]),
        ),
        (
            "reasonCode",
            pv2.and_then(|p| cwe_field(p, 3)).map(|c| json!([c])),
        ),
        ("serviceProvider", Some(b.organization())),
    ])
    .unwrap_or_default();
    let write = match &visit {
        Some((system, value, _)) => Write::PutOn(system, value),
        None => Write::Post,
    };
    Ok(b.add(encounter, write))
}

/// ADT^A40 → [`Mapped::Merge`]: PID-3 survives, MRG-1 is merged into it. One
/// PID/MRG group per message: a message with several groups is refused, so that no
/// merge is silently dropped.
pub(crate) fn merge(msg: &Message, ctx: &super::Context) -> Result<Mapped, MapError> {
    let base = &ctx.local_system_base;
    let pid = first_pid(msg)?;
    if msg.segments_named("PID").count() > 1 || msg.segments_named("MRG").count() > 1 {
        return Err(MapError::Unsupported {
            error: ErrorCode::UnsupportedEventCode,
            text: "ADT^A40 with more than one patient group is not accepted: send one merge per message".to_string(),
        });
    }
    let mrg = msg
        .segment("MRG")
        .ok_or_else(|| MapError::missing("MRG", "merge patient information segment"))?;
    let pairs = |ids: Vec<(String, String, Value)>| -> Vec<(String, String)> {
        ids.into_iter().map(|(s, v, _)| (s, v)).collect()
    };
    let survivor = pairs(pid3(pid, base));
    if survivor.is_empty() {
        return Err(MapError::missing("PID^1^3", "patient identifier list"));
    }
    let merged: Vec<(String, String)> = mrg
        .reps(1)
        .iter()
        .filter_map(|r| cx_identifier(r, base))
        .map(|(s, v, _)| (s, v))
        .collect();
    if merged.is_empty() || nz(mrg.text(1)).is_none() {
        return Err(MapError::missing(
            "MRG^1^1",
            "prior patient identifier list",
        ));
    }
    Ok(Mapped::Merge { survivor, merged })
}
