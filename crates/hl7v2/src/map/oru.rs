//! ORU^R01 → Patient, ServiceRequest, DiagnosticReport, Observations and Specimens,
//! following "HL7 Message - FHIR R4_ ORU_R01 - Sheet1.csv".
//!
//! Each OBR opens an order group: the ORC just before it (if any), its OBX, NTE and
//! SPM segments. An OBX outside any OBR group (patient-level results) becomes a
//! standalone Observation, POSTed because it has no order number to key on.
//!
//! Left out: NTE (notes), PRT participations, TQ1 timing, CTD/FT1/CTI, OBX-level
//! performing organization (OBX-23..25), and result copies (OBR-28).

use std::collections::HashSet;

use serde_json::{json, Value};

use super::patient::{add_patient, first_pid};
use super::{reference, Builder, Context, Mapped, Write};
use crate::datatypes::{cwe_concept, cwe_field, ei, identifier, nz, obj, xcn_reference};
use crate::error::MapError;
use crate::parse::{Message, Segment};

/// System of the natural identifier given to Observations: `<filler>|<OBX-3>|<OBX-4>`.
pub const OBX_SYSTEM: &str = "urn:oxehr:hl7v2:obx";

#[derive(Default)]
struct Group<'m> {
    orc: Option<&'m Segment>,
    obr: Option<&'m Segment>,
    obx: Vec<&'m Segment>,
    spm: Vec<&'m Segment>,
}

pub(crate) fn map(msg: &Message, ctx: &Context) -> Result<Mapped, MapError> {
    let pid = first_pid(msg)?;
    let mut groups: Vec<Group<'_>> = vec![Group::default()];
    let mut pending_orc = None;
    for seg in msg.segments() {
        match seg.name() {
            "ORC" => pending_orc = Some(seg),
            "OBR" => groups.push(Group {
                orc: pending_orc.take(),
                obr: Some(seg),
                ..Group::default()
            }),
            "OBX" => groups.last_mut().map_or((), |g| g.obx.push(seg)),
            "SPM" => groups.last_mut().map_or((), |g| g.spm.push(seg)),
            _ => {}
        }
    }
    let mut b = Builder::new(msg, ctx);
    let patient = add_patient(&mut b, pid)?;
    // The visit, when the message has one ("PV1[Encounter]").
    super::adt::add_visit(&mut b, msg, &patient, "")?;
    let mut keys = HashSet::new();
    for group in &groups {
        map_group(&mut b, group, &patient, &mut keys)?;
    }
    Ok(b.finish())
}

fn map_group(
    b: &mut Builder<'_>,
    g: &Group<'_>,
    patient: &str,
    keys: &mut HashSet<String>,
) -> Result<(), MapError> {
    let Some(obr) = g.obr else {
        for obx in &g.obx {
            let obs = observation(b, obx, None, patient, &[])?;
            b.add(obs, Write::Post);
        }
        return Ok(());
    };
    let placer = ei(g.orc.and_then(|o| o.rep(2)), b.base()).or_else(|| ei(obr.rep(2), b.base()));
    let filler = ei(obr.rep(3), b.base()).or_else(|| ei(g.orc.and_then(|o| o.rep(3)), b.base()));
    let specimens = g
        .spm
        .iter()
        .map(|spm| specimen(b, spm, patient))
        .collect::<Result<Vec<_>, _>>()?;
    let order = service_request(b, g.orc, obr, patient, placer.as_ref(), filler.as_ref())?;
    let mut results = Vec::new();
    for obx in &g.obx {
        let obs = observation(b, obx, Some(obr), patient, &specimens)?;
        let key = filler
            .as_ref()
            .or(placer.as_ref())
            .map(|(_, order_no)| format!("{order_no}|{}|{}", obx.comp(3, 1), obx.text(4).trim()));
        let write_key = key.map(|k| {
            let mut unique = k.clone();
            let mut n = 1;
            while !keys.insert(unique.clone()) {
                n += 1;
                unique = format!("{k}|{n}");
            }
            unique
        });
        let obs = match &write_key {
            Some(k) => with_identifier(obs, k),
            None => obs,
        };
        let full_url = match &write_key {
            Some(k) => b.add(obs, Write::PutOn(OBX_SYSTEM, k)),
            None => b.add(obs, Write::Post),
        };
        results.push(reference(&full_url));
    }
    diagnostic_report(
        b,
        obr,
        patient,
        placer.as_ref(),
        filler.as_ref(),
        &order,
        results,
        &specimens,
    )
}

fn with_identifier(mut obs: Value, key: &str) -> Value {
    if let Some(o) = obs.as_object_mut() {
        o.insert("identifier".into(), json!([identifier(OBX_SYSTEM, key)]));
    }
    obs
}

fn typed_identifier(system: &str, value: &str, code: &str) -> Value {
    json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": code}]},
        "system": system,
        "value": value,
    })
}

/// ORC/OBR → ServiceRequest, following "HL7 Segment - FHIR R4_ ORC[ServiceRequest] -
/// ORC.csv" and "HL7 Segment - FHIR R4_ OBR[ServiceRequest] - OBR.csv"; status by the
/// "OrderStatus" concept map (ORC-5), else from OBR-25 (final results: completed).
fn service_request(
    b: &mut Builder<'_>,
    orc: Option<&Segment>,
    obr: &Segment,
    patient: &str,
    placer: Option<&(String, String)>,
    filler: Option<&(String, String)>,
) -> Result<String, MapError> {
    let status = match orc.map(|o| o.text(5).trim()).unwrap_or_default() {
        "CM" => "completed",
        "CA" | "DC" | "RP" => "revoked",
        "HD" => "on-hold",
        "ER" => "entered-in-error",
        "IP" | "SC" | "A" => "active",
        _ => match obr.text(25).trim() {
            "F" | "C" => "completed",
            "X" => "revoked",
            _ => "active",
        },
    };
    let ids: Vec<Value> = [
        placer.map(|(s, v)| typed_identifier(s, v, "PLAC")),
        filler.map(|(s, v)| typed_identifier(s, v, "FILL")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let requester = orc
        .and_then(|o| o.rep(12))
        .and_then(|r| xcn_reference(r, b.base()))
        .or_else(|| obr.rep(16).and_then(|r| xcn_reference(r, b.base())));
    let authored = match orc {
        Some(o) => b.datetime(o, 9)?,
        None => None,
    };
    let sr = obj(vec![
        ("resourceType", Some(json!("ServiceRequest"))),
        ("identifier", Some(Value::Array(ids))),
        ("status", Some(json!(status))),
        ("intent", Some(json!("order"))),
        ("code", cwe_field(obr, 4)),
        ("subject", Some(reference(patient))),
        ("authoredOn", authored.map(Value::String)),
        ("requester", requester),
        ("performer", Some(json!([b.organization()]))),
    ])
    .unwrap_or_default();
    Ok(match placer {
        Some((s, v)) => b.add(sr, Write::PutOn(s, v)),
        None => b.add(sr, Write::Post),
    })
}

/// OBR → DiagnosticReport, following "HL7 Segment - FHIR R4_ OBR[DiagnosticReport] -
/// OBR.csv"; status by the "ResultStatus[Non-Queries]" concept map (OBR-25). Codes the
/// map leaves empty (A, M, N, or none) give `partial`/`unknown`; Y and Z (no order, no
/// patient) are 103.
#[allow(clippy::too_many_arguments)]
fn diagnostic_report(
    b: &mut Builder<'_>,
    obr: &Segment,
    patient: &str,
    placer: Option<&(String, String)>,
    filler: Option<&(String, String)>,
    order: &str,
    results: Vec<Value>,
    specimens: &[String],
) -> Result<(), MapError> {
    let status = match obr.text(25).trim() {
        "O" | "I" | "S" => "registered",
        "P" => "preliminary",
        "C" => "corrected",
        "R" | "A" | "M" | "N" => "partial",
        "F" => "final",
        "X" => "cancelled",
        "" => "unknown",
        _ => {
            return Err(MapError::bad_code(
                &b.loc(obr, 25),
                "the result statuses this interface accepts",
            ))
        }
    };
    let code = cwe_field(obr, 4)
        .ok_or_else(|| MapError::missing(&b.loc(obr, 4), "universal service identifier"))?;
    let key = filler.or(placer);
    let ids: Vec<Value> = [
        filler.map(|(s, v)| typed_identifier(s, v, "FILL")),
        placer.map(|(s, v)| typed_identifier(s, v, "PLAC")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let report = obj(vec![
        ("resourceType", Some(json!("DiagnosticReport"))),
        ("identifier", Some(Value::Array(ids))),
        ("basedOn", Some(json!([reference(order)]))),
        ("status", Some(json!(status))),
        ("code", Some(code)),
        ("subject", Some(reference(patient))),
        ("effectiveDateTime", b.datetime(obr, 7)?.map(Value::String)),
        ("issued", b.instant(obr, 22)?.map(Value::String)),
        ("performer", Some(json!([b.organization()]))),
        (
            "specimen",
            Some(Value::Array(
                specimens.iter().map(|s| reference(s)).collect(),
            )),
        ),
        ("result", Some(Value::Array(results))),
    ])
    .unwrap_or_default();
    match key {
        Some((s, v)) => b.add(report, Write::PutOn(s, v)),
        None => b.add(report, Write::Post),
    };
    Ok(())
}

/// SPM → Specimen, following "HL7 Segment - FHIR R4_ SPM[Specimen] - SPM.csv" (SPM-2
/// identifier, SPM-4 type, SPM-17 collection time, SPM-18 received time). POSTed.
fn specimen(b: &mut Builder<'_>, spm: &Segment, patient: &str) -> Result<String, MapError> {
    let mut ids = Vec::new();
    if let Some(rep) = spm.rep(2) {
        if let Some(v) = nz(rep.sub(1, 1)) {
            let sys =
                crate::datatypes::hd_system(rep.sub(1, 2), rep.sub(1, 3), rep.sub(1, 4), b.base());
            ids.push(typed_identifier(&sys, v, "PLAC"));
        }
        if let Some(v) = nz(rep.sub(2, 1)) {
            let sys =
                crate::datatypes::hd_system(rep.sub(2, 2), rep.sub(2, 3), rep.sub(2, 4), b.base());
            ids.push(typed_identifier(&sys, v, "FILL"));
        }
    }
    let collected = b.datetime_text(spm, 17, spm.comp(17, 1))?;
    let sp = obj(vec![
        ("resourceType", Some(json!("Specimen"))),
        ("identifier", Some(Value::Array(ids))),
        ("type", cwe_field(spm, 4)),
        ("subject", Some(reference(patient))),
        ("receivedTime", b.instant(spm, 18)?.map(Value::String)),
        (
            "collection",
            obj(vec![("collectedDateTime", collected.map(Value::String))]),
        ),
    ])
    .unwrap_or_default();
    Ok(b.add(sp, Write::Post))
}

/// OBX → Observation, following "HL7 Segment - FHIR R4_ OBX[Observation] - OBX.csv":
/// value[x] by OBX-2 (see [`crate::map::value`]), referenceRange OBX-7,
/// interpretation OBX-8 ("InterpretationCodes" concept map), status OBX-11
/// ("ObservationResultStatusCodesInterpretation"), effective OBX-14 else OBR-7,
/// performer OBX-16.
pub(crate) fn observation(
    b: &Builder<'_>,
    obx: &Segment,
    obr: Option<&Segment>,
    patient: &str,
    specimens: &[String],
) -> Result<Value, MapError> {
    let code = cwe_field(obx, 3)
        .ok_or_else(|| MapError::missing(&b.loc(obx, 3), "observation identifier"))?;
    let status = match obx.text(11).trim() {
        "F" | "U" | "V" => "final",
        "C" => "corrected",
        "A" | "B" => "amended",
        "D" | "W" => "entered-in-error",
        "P" | "R" | "S" => "preliminary",
        "X" => "cancelled",
        "I" | "O" | "N" => "registered",
        "" => "unknown",
        _ => {
            return Err(MapError::bad_code(
                &b.loc(obx, 11),
                "HL7 table 0085 (observation result status)",
            ))
        }
    };
    let effective = match b.datetime(obx, 14)? {
        Some(d) => Some(d),
        None => match obr {
            Some(o) => b.datetime(o, 7)?,
            None => None,
        },
    };
    let (value_key, value) = match super::value::obx_value(b, obx)? {
        Some((k, v)) => (k, Some(v)),
        None => ("valueString", None),
    };
    let interpretation: Vec<Value> = obx
        .reps(8)
        .iter()
        .filter_map(|r| {
            let code = nz(r.comp(1))?;
            if super::value::INTERPRETATION_CODES.contains(&code) {
                Some(json!({"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": code,
                }]}))
            } else {
                cwe_concept(r)
            }
        })
        .collect();
    let performers: Vec<Value> = obx
        .reps(16)
        .iter()
        .filter_map(|r| xcn_reference(r, b.base()))
        .collect();
    let mut fields = vec![
        ("resourceType", Some(json!("Observation"))),
        ("status", Some(json!(status))),
        ("code", Some(code)),
        ("subject", Some(reference(patient))),
        ("effectiveDateTime", effective.map(Value::String)),
        ("performer", Some(Value::Array(performers))),
        (value_key, value),
        ("interpretation", Some(Value::Array(interpretation))),
        ("specimen", specimens.first().map(|s| reference(s))),
    ];
    let range = super::value::reference_range(obx.text(7), obx.comp(6, 1));
    fields.push(("referenceRange", range.map(|r| json!([r]))));
    if status == "cancelled"
        && fields
            .iter()
            .all(|(k, v)| !k.starts_with("value") || v.is_none())
    {
        fields.push((
            "dataAbsentReason",
            Some(json!({"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                "code": "not-performed",
            }]})),
        ));
    }
    Ok(obj(fields).unwrap_or_default())
}
