//! MDM^T02 → Patient + DocumentReference, following "HL7 Message - FHIR R4_ MDM_T02 -
//! Sheet1.csv", "HL7 Segment - FHIR R4_ TXA[DocumentReference] - Sheet1.csv" and
//! "HL7 Segment - FHIR R4_ OBX[DocumentReference] - Sheet1.csv".
//!
//! Content: the text of the ST/TX/FT OBX segments, one line each, as a base64
//! `text/plain` attachment. Without text, an ED OBX gives its own data and MIME type
//! (ED.2/ED.3; data only when ED.4 says Base64). Without either, the attachment says
//! only `text/plain` and the document title, so `content` is never empty.
//!
//! Left out: ORC/OBR (the order), CON consents, NTE notes, TXA-22 authentication
//! details beyond the authenticator.

use serde_json::{json, Value};

use super::patient::{add_patient, first_pid};
use super::{reference, Builder, Context, Mapped, Write};
use crate::datatypes::{base64, cwe_field, ei, nz, obj, xcn_reference};
use crate::error::MapError;
use crate::parse::Message;

pub(crate) fn map(msg: &Message, ctx: &Context) -> Result<Mapped, MapError> {
    let txa = msg
        .segment("TXA")
        .ok_or_else(|| MapError::missing("TXA", "transcription document header"))?;
    let pid = first_pid(msg)?;
    let mut b = Builder::new(msg, ctx);
    let patient = add_patient(&mut b, pid)?;
    // The visit, when the message has one ("PV1[Encounter]").
    super::adt::add_visit(&mut b, msg, &patient, "")?;
    let status = match txa.text(19).trim() {
        "OB" => "superseded",
        "CA" => "entered-in-error",
        _ => "current",
    };
    let doc_status = match txa.text(17).trim() {
        "AU" | "LA" => Some("final"),
        "DI" | "DO" | "IP" | "IN" | "PA" => Some("preliminary"),
        _ => None,
    };
    let title = nz(txa.comp(2, 2)).or(nz(txa.comp(2, 1)));
    let mut lines = Vec::new();
    let mut ed = None;
    for obx in msg.segments_named("OBX") {
        match obx.text(2).trim() {
            "ST" | "TX" | "FT" => {
                for rep in obx.reps(5) {
                    lines.push(rep.comp(1).to_string());
                }
            }
            "ED" if ed.is_none() => ed = obx.rep(5).cloned(),
            _ => {}
        }
    }
    let attachment = if !lines.is_empty() {
        json!({"contentType": "text/plain; charset=utf-8", "data": base64(lines.join("\n").as_bytes())})
    } else if let Some(rep) = ed.filter(|r| nz(r.comp(2)).is_some()) {
        let mime = match nz(rep.comp(3)) {
            Some(sub) => format!("{}/{}", rep.comp(2).trim(), sub).to_ascii_lowercase(),
            None => rep.comp(2).trim().to_ascii_lowercase(),
        };
        let data = nz(rep.comp(5))
            .filter(|_| rep.comp(4).eq_ignore_ascii_case("Base64"))
            .map(|d| d.chars().filter(|c| !c.is_whitespace()).collect::<String>());
        obj(vec![
            ("contentType", Some(json!(mime))),
            ("data", data.map(Value::String)),
            ("title", title.map(|t| json!(t))),
        ])
        .unwrap_or_default()
    } else {
        obj(vec![
            ("contentType", Some(json!("text/plain"))),
            ("title", title.map(|t| json!(t))),
        ])
        .unwrap_or_default()
    };
    let id = ei(txa.rep(12), b.base());
    let authors: Vec<Value> = txa
        .reps(5)
        .iter()
        .chain(txa.reps(9))
        .filter_map(|r| xcn_reference(r, b.base()))
        .collect();
    let doc = obj(vec![
        ("resourceType", Some(json!("DocumentReference"))),
        (
            "masterIdentifier",
            id.as_ref().map(|(s, v)| json!({"system": s, "value": v})),
        ),
        (
            "identifier",
            id.as_ref().map(|(s, v)| json!([{"system": s, "value": v}])),
        ),
        ("status", Some(json!(status))),
        ("docStatus", doc_status.map(|d| json!(d))),
        ("type", cwe_field(txa, 2)),
        ("subject", Some(reference(&patient))),
        ("date", b.instant(txa, 4)?.map(Value::String)),
        ("author", Some(Value::Array(authors))),
        (
            "authenticator",
            txa.rep(10).and_then(|r| xcn_reference(r, b.base())),
        ),
        ("custodian", Some(b.organization())),
        ("description", title.map(|t| json!(t))),
        ("content", Some(json!([{"attachment": attachment}]))),
    ])
    .unwrap_or_default();
    match &id {
        Some((s, v)) => b.add(doc, Write::PutOn(s, v)),
        None => b.add(doc, Write::Post),
    };
    Ok(b.finish())
}
