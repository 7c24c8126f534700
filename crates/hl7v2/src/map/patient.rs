//! PID → Patient, following "HL7 Segment - FHIR R4_ PID[Patient] - PID.csv" with the
//! "AdministrativeSex" and "MaritalStatus" concept maps.
//!
//! Left out: race and ethnicity (US Core extensions), PID-2/PID-4/PID-19/PID-20
//! identifiers (the brief keeps PID-3 only; the SSN and driver's licence are not
//! needed to match a patient), PD1, NK1 contacts and PID-24/25 multiple birth.

use serde_json::{json, Value};

use super::{Builder, Write};
use crate::datatypes::{
    concept, cwe_concept, cx_identifier, nz, obj, xad_address, xpn_name, xtn_contact,
};
use crate::error::MapError;
use crate::parse::{Message, Segment};

/// The PID-3 identifiers as `(system, value, Identifier)`.
pub(crate) fn pid3(pid: &Segment, base: &str) -> Vec<(String, String, Value)> {
    pid.reps(3)
        .iter()
        .filter_map(|r| cx_identifier(r, base))
        .collect()
}

/// The first PID segment, or 101.
pub(crate) fn first_pid(msg: &Message) -> Result<&Segment, MapError> {
    msg.segment("PID")
        .ok_or_else(|| MapError::missing("PID", "patient identification segment"))
}

/// Add the Patient of `pid` as a conditional update; returns its fullUrl.
pub(crate) fn add_patient(b: &mut Builder<'_>, pid: &Segment) -> Result<String, MapError> {
    let ids = pid3(pid, b.base());
    let key = pid
        .reps(3)
        .iter()
        .filter_map(|r| cx_identifier(r, b.base()).map(|id| (r.comp(5) == "MR", id)))
        .find(|(mr, _)| *mr)
        .map(|(_, id)| id)
        .or_else(|| ids.first().cloned())
        .ok_or_else(|| MapError::missing(&b.loc(pid, 3), "patient identifier list"))?;
    let patient = patient_resource(b, pid, ids.into_iter().map(|(_, _, v)| v).collect())?;
    Ok(b.add(patient, Write::PutOn(&key.0, &key.1)))
}

fn patient_resource(
    b: &Builder<'_>,
    pid: &Segment,
    identifiers: Vec<Value>,
) -> Result<Value, MapError> {
    let gender = match nz(pid.text(8)).map(str::to_ascii_uppercase).as_deref() {
        None => None,
        Some("M") => Some("male"),
        Some("F") => Some("female"),
        Some("O" | "A" | "N") => Some("other"),
        Some("U") => Some("unknown"),
        Some(_) => {
            return Err(MapError::bad_code(
                &b.loc(pid, 8),
                "HL7 table 0001 (administrative sex)",
            ))
        }
    };
    let names: Vec<Value> = pid.reps(5).iter().filter_map(xpn_name).collect();
    let addresses: Vec<Value> = pid.reps(11).iter().filter_map(xad_address).collect();
    let telecom: Vec<Value> = pid
        .reps(13)
        .iter()
        .filter_map(|r| xtn_contact(r, Some("home")))
        .chain(
            pid.reps(14)
                .iter()
                .filter_map(|r| xtn_contact(r, Some("work"))),
        )
        .collect();
    let communication: Vec<Value> = pid
        .reps(15)
        .iter()
        .filter_map(cwe_concept)
        .map(|language| json!({"language": language}))
        .collect();
    let marital = pid.rep(16).and_then(|r| {
        let v3 = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus";
        let null = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor";
        let (system, code) = match r.comp(1) {
            "A" | "E" => (v3, "L"),
            "D" => (v3, "D"),
            "M" => (v3, "M"),
            "S" => (v3, "S"),
            "W" => (v3, "W"),
            "C" => (v3, "C"),
            "G" | "P" | "R" => (v3, "T"),
            "N" => (v3, "A"),
            "I" => (v3, "I"),
            "B" => (v3, "U"),
            "U" => (null, "UNK"),
            "O" => (null, "OTH"),
            "T" => (null, "NAVU"),
            _ => return cwe_concept(r),
        };
        let mut c = concept(system, code, None);
        if let Some(text) = nz(r.comp(2)) {
            c["text"] = json!(text);
        }
        Some(c)
    });
    let deceased = match b.datetime(pid, 29)? {
        Some(when) => Some(("deceasedDateTime", json!(when))),
        None => match nz(pid.text(30)) {
            Some("Y") => Some(("deceasedBoolean", json!(true))),
            Some("N") => Some(("deceasedBoolean", json!(false))),
            _ => None,
        },
    };
    let mut fields = vec![
        ("resourceType", Some(json!("Patient"))),
        ("identifier", Some(Value::Array(identifiers))),
        ("name", Some(Value::Array(names))),
        ("telecom", Some(Value::Array(telecom))),
        ("gender", gender.map(|g| json!(g))),
        ("birthDate", b.date(pid, 7)?.map(Value::String)),
    ];
    if let Some((key, value)) = deceased {
        fields.push((key, Some(value)));
    }
    fields.extend([
        ("address", Some(Value::Array(addresses))),
        ("maritalStatus", marital),
        ("communication", Some(Value::Array(communication))),
    ]);
    obj(fields).ok_or_else(|| MapError::missing(&b.loc(pid, 3), "patient identifier list"))
}
