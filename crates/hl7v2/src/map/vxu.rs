//! VXU^V04 → Patient + one Immunization per RXA, following "HL7 Message - FHIR R4_
//! VXU_V04 - Sheet1.csv", "HL7 Segment - FHIR R4_ RXA[Immunization] - RXA.csv",
//! "HL7 Segment - FHIR R4_ RXR[Immunization] - RXR.csv" and "HL7 Segment - FHIR R4_
//! ORC[Immunization] - ORC.csv"; status by the "CompletionStatus" concept map (RXA-20).
//!
//! The natural id is ORC-3 (filler order number). Without one, the key is
//! `urn:oxehr:hl7v2:rxa` with `<patient system>|<patient id>|<RXA-3>|<RXA-5.1>`, so
//! that a re-sent history updates instead of duplicating and never matches another
//! patient's record.
//!
//! Left out: the OBX after RXA (funding eligibility, VIS documents), RXA-9 beyond
//! primary source, NK1, and RXA-11 (administered-at location).

use serde_json::{json, Value};

use super::patient::{add_patient, first_pid, pid3};
use super::value::decimal;
use super::{reference, Builder, Context, Mapped, Write};
use crate::datatypes::{cwe_field, dtm_date, ei, nz, obj, xcn_reference};
use crate::error::MapError;
use crate::parse::{Message, Segment};

/// System of the fallback Immunization key (see the module doc).
pub const RXA_SYSTEM: &str = "urn:oxehr:hl7v2:rxa";

pub(crate) fn map(msg: &Message, ctx: &Context) -> Result<Mapped, MapError> {
    let pid = first_pid(msg)?;
    let mut b = Builder::new(msg, ctx);
    let patient_key = pid3(pid, b.base())
        .into_iter()
        .next()
        .map(|(s, v, _)| format!("{s}|{v}"))
        .unwrap_or_default();
    let patient = add_patient(&mut b, pid)?;
    // The visit, when the message has one ("PV1[Encounter]").
    super::adt::add_visit(&mut b, msg, &patient, "")?;
    let mut orc: Option<&Segment> = None;
    let mut rxa: Option<&Segment> = None;
    let mut groups: Vec<(Option<&Segment>, &Segment, Option<&Segment>)> = Vec::new();
    for seg in msg.segments() {
        match seg.name() {
            "ORC" => {
                if let Some(r) = rxa.take() {
                    groups.push((orc, r, None));
                }
                orc = Some(seg);
            }
            "RXA" => {
                if let Some(r) = rxa.take() {
                    groups.push((orc.take(), r, None));
                }
                rxa = Some(seg);
            }
            "RXR" => {
                if let Some(r) = rxa.take() {
                    groups.push((orc.take(), r, Some(seg)));
                }
            }
            _ => {}
        }
    }
    if let Some(r) = rxa {
        groups.push((orc, r, None));
    }
    if groups.is_empty() {
        return Err(MapError::missing(
            "RXA",
            "pharmacy/treatment administration segment",
        ));
    }
    for (orc, rxa, rxr) in groups {
        immunization(&mut b, orc, rxa, rxr, &patient, &patient_key)?;
    }
    Ok(b.finish())
}

fn immunization(
    b: &mut Builder<'_>,
    orc: Option<&Segment>,
    rxa: &Segment,
    rxr: Option<&Segment>,
    patient: &str,
    patient_key: &str,
) -> Result<(), MapError> {
    let vaccine =
        cwe_field(rxa, 5).ok_or_else(|| MapError::missing(&b.loc(rxa, 5), "administered code"))?;
    let occurrence = b
        .datetime(rxa, 3)?
        .ok_or_else(|| MapError::missing(&b.loc(rxa, 3), "date/time start of administration"))?;
    let status = if rxa.text(21).trim() == "D" {
        "entered-in-error"
    } else {
        match rxa.text(20).trim() {
            "" | "CP" | "PA" => "completed",
            "RE" | "NA" => "not-done",
            _ => {
                return Err(MapError::bad_code(
                    &b.loc(rxa, 20),
                    "HL7 table 0322 (completion status)",
                ))
            }
        }
    };
    let filler = ei(orc.and_then(|o| o.rep(3)), b.base());
    let key = match &filler {
        Some(k) => k.clone(),
        None => (
            RXA_SYSTEM.to_string(),
            format!(
                "{patient_key}|{}|{}",
                rxa.text(3).trim(),
                rxa.comp(5, 1).trim()
            ),
        ),
    };
    let dose = nz(rxa.text(6))
        .filter(|d| *d != "999")
        .and_then(decimal)
        .map(|v| {
            obj(vec![
                ("value", Some(v)),
                ("unit", nz(rxa.comp(7, 1)).map(|u| json!(u))),
                (
                    "system",
                    rxa.comp(7, 3)
                        .eq_ignore_ascii_case("UCUM")
                        .then(|| json!("http://unitsofmeasure.org"))
                        .filter(|_| nz(rxa.comp(7, 1)).is_some()),
                ),
                (
                    "code",
                    nz(rxa.comp(7, 1))
                        .filter(|_| rxa.comp(7, 3).eq_ignore_ascii_case("UCUM"))
                        .map(|u| json!(u)),
                ),
            ])
        });
    let mut performers = vec![json!({
        "function": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443", "code": "AP", "display": "Administering Provider"}]},
        "actor": b.organization(),
    })];
    for rep in rxa.reps(10) {
        if let Some(actor) = xcn_reference(rep, b.base()) {
            performers.push(json!({
                "function": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443", "code": "AP", "display": "Administering Provider"}]},
                "actor": actor,
            }));
        }
    }
    if let Some(actor) = orc
        .and_then(|o| o.rep(12))
        .and_then(|r| xcn_reference(r, b.base()))
    {
        performers.push(json!({
            "function": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443", "code": "OP", "display": "Ordering Provider"}]},
            "actor": actor,
        }));
    }
    let primary_source = match rxa.comp(9, 1).trim() {
        "00" => Some(true),
        "" => None,
        _ => Some(false),
    };
    let expiration =
        dtm_date(rxa.text(16)).map_err(|()| MapError::bad_type(&b.loc(rxa, 16), "date"))?;
    let manufacturer = nz(rxa.comp(17, 2)).or(nz(rxa.comp(17, 1))).map(|name| {
        let mut r = json!({"display": name});
        if let Some(code) = nz(rxa.comp(17, 1)) {
            r["identifier"] = json!({"system": "http://hl7.org/fhir/sid/mvx", "value": code});
        }
        r
    });
    let imm = obj(vec![
        ("resourceType", Some(json!("Immunization"))),
        (
            "identifier",
            Some(json!([{"system": key.0.clone(), "value": key.1.clone()}])),
        ),
        ("status", Some(json!(status))),
        (
            "statusReason",
            (status == "not-done").then(|| cwe_field(rxa, 18)).flatten(),
        ),
        ("vaccineCode", Some(vaccine)),
        ("patient", Some(reference(patient))),
        ("occurrenceDateTime", Some(json!(occurrence))),
        ("primarySource", primary_source.map(Value::Bool)),
        (
            "reportOrigin",
            (primary_source == Some(false))
                .then(|| cwe_field(rxa, 9))
                .flatten(),
        ),
        ("manufacturer", manufacturer),
        ("lotNumber", nz(rxa.text(15)).map(|l| json!(l))),
        ("expirationDate", expiration.map(Value::String)),
        ("site", rxr.and_then(|r| cwe_field(r, 2))),
        ("route", rxr.and_then(|r| cwe_field(r, 1))),
        ("doseQuantity", dose.flatten()),
        ("performer", Some(Value::Array(performers))),
    ])
    .unwrap_or_default();
    b.add(imm, Write::PutOn(&key.0, &key.1));
    Ok(())
}
