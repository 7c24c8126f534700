//! The demo's clinical notes. The Synthea sample set has no DocumentReference, so when
//! the demo is loaded it writes one progress note (LOINC 11506-3, plain text) for each
//! patient in the demo clinician's care, composed from that patient's own record: their
//! latest visit to the clinician's organization (its type and reason), their active
//! problems and their latest vital signs. Each says in its text that it is a demo note.
//!
//! One more note, for the first demo patient, is HTML whose markup includes what a page
//! must never run (a script, an event handler, a `javascript:` link, a frame, a form, an
//! inline style): the pages show attachments through a sanitizer, and this gives it real
//! data to meet.

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{json, Value};

use oxehr_records::{Caller, Records};
use oxehr_web::display;

use super::{patients_in_care, search, Staff};

/// Writes the demo notes for the patients in `staff`'s care; `first_patient` (the first
/// bundle's patient) also gets the HTML note, else the first patient in care does.
pub(super) fn write(records: &Records, staff: &Staff, first_patient: Option<&str>) -> Result<()> {
    let org = format!("Organization/{}", staff.organization);
    let author = read_name(records, &staff.practitioner, display::person_name)?;
    let patients = patients_in_care(records, &staff.organization, 50)?;
    let html_for = first_patient
        .filter(|f| patients.iter().any(|p| p["id"] == *f))
        .or_else(|| patients.first().and_then(|p| p["id"].as_str()))
        .map(str::to_owned);
    let mut written = 0;
    for patient in &patients {
        let Some(pid) = patient["id"].as_str() else {
            continue;
        };
        let Some(visit) = search(
            records,
            "Encounter",
            &[
                ("patient", pid.to_owned()),
                ("service-provider", org.clone()),
                ("_sort", "-date".to_owned()),
            ],
            1,
        )?
        .into_iter()
        .next() else {
            continue;
        };
        let place = match visit["serviceProvider"]["reference"].as_str() {
            Some(r) => read_name(records, r, |o| {
                o["name"].as_str().unwrap_or_default().to_owned()
            })?,
            None => String::new(),
        };
        let problems = search(
            records,
            "Condition",
            &[
                ("patient", pid.to_owned()),
                ("clinical-status", "active,recurrence,relapse".to_owned()),
                ("_sort", "-onset-date".to_owned()),
            ],
            50,
        )?;
        let vitals = search(
            records,
            "Observation",
            &[
                ("patient", pid.to_owned()),
                ("category", "vital-signs".to_owned()),
                ("_sort", "-date".to_owned()),
            ],
            200,
        )?;
        let text = progress_note(
            &visit,
            &place,
            &problems,
            &newest_per_code(&vitals),
            &author,
        );
        let description = format!(
            "Demo note from the record: {}",
            display::concept(&visit["type"][0]).unwrap_or_else(|| "visit".to_owned())
        );
        let note = document(
            pid,
            &visit,
            staff,
            &author,
            "text/plain; charset=utf-8",
            text.as_bytes(),
            &description,
        );
        create(records, note, staff, &author)?;
        written += 1;
        if html_for.as_deref() == Some(pid) {
            let allergies = search(
                records,
                "AllergyIntolerance",
                &[("patient", pid.to_owned())],
                50,
            )?;
            let note = document(
                pid,
                &visit,
                staff,
                &author,
                "text/html; charset=utf-8",
                allergy_review_html(&allergies).as_bytes(),
                "Demo note: allergy review (HTML whose markup includes a script, which a page must not run)",
            );
            create(records, note, staff, &author)?;
            written += 1;
        }
    }
    tracing::info!(notes = written, "wrote the demo notes");
    Ok(())
}

/// Writes `note` and a Provenance naming its author and organization (where the chart
/// looks for an entry's source). The Provenance also targets the patient, which puts it
/// in their compartment: it is seen by those who may see the record, no one else.
fn create(records: &Records, note: Value, staff: &Staff, author: &str) -> Result<()> {
    let server = Caller::server();
    let org = note["custodian"]["reference"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Organization/{}", staff.organization));
    let patient = note["subject"].clone();
    let rtype = oxehr_fhir::ResourceType::parse("DocumentReference").context("type")?;
    let written = records
        .create(&server, &rtype, note, None)
        .map_err(|e| anyhow::anyhow!("demo note: {e}"))?;
    let provenance = json!({
        "resourceType": "Provenance",
        "target": [
            {"reference": format!("DocumentReference/{}", written.resource.id.as_str())},
            patient
        ],
        "recorded": oxehr_records::format_instant(oxehr_records::now_micros()),
        "activity": {
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                "code": "CREATE",
                "display": "create"
            }]
        },
        "agent": [{
            "type": {
                "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "author",
                    "display": "Author"
                }]
            },
            "who": reference(&staff.practitioner, author),
            "onBehalfOf": {"reference": org}
        }]
    });
    let rtype = oxehr_fhir::ResourceType::parse("Provenance").context("type")?;
    records
        .create(&server, &rtype, provenance, None)
        .map_err(|e| anyhow::anyhow!("demo note's provenance: {e}"))?;
    Ok(())
}

/// A Reference, with its display when there is one (FHIR allows no empty string).
fn reference(to: &str, display: &str) -> Value {
    let mut r = json!({ "reference": to });
    if !display.trim().is_empty() {
        r["display"] = json!(display);
    }
    r
}

/// What `f` makes of the resource `reference` (`Type/id`) names, or "" when it is gone.
fn read_name(records: &Records, reference: &str, f: impl Fn(&Value) -> String) -> Result<String> {
    let Some((t, id)) = reference.split_once('/') else {
        return Ok(String::new());
    };
    Ok(search(records, t, &[("_id", id.to_owned())], 1)?
        .first()
        .map(f)
        .unwrap_or_default())
}

/// A DocumentReference of `visit` by the demo practitioner, the attachment `data` of
/// `content_type`.
fn document(
    patient: &str,
    visit: &Value,
    staff: &Staff,
    author: &str,
    content_type: &str,
    data: &[u8],
    description: &str,
) -> Value {
    let when = visit["period"]["end"]
        .as_str()
        .or_else(|| visit["period"]["start"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| oxehr_records::format_instant(oxehr_records::now_micros()));
    let mut context = json!({
        "encounter": [{"reference": format!("Encounter/{}", visit["id"].as_str().unwrap_or_default())}],
    });
    if visit["period"].is_object() {
        context["period"] = visit["period"].clone();
    }
    let mut doc = json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}],
            "text": "Progress note"
        },
        "category": [{
            "coding": [{
                "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                "code": "clinical-note",
                "display": "Clinical Note"
            }]
        }],
        "subject": {"reference": format!("Patient/{patient}")},
        "date": when,
        "author": [reference(&staff.practitioner, author)],
        "description": description,
        "content": [{
            "attachment": {
                "contentType": content_type,
                "language": "en",
                "data": base64::engine::general_purpose::STANDARD.encode(data),
                "title": "Progress note (demo)",
                "creation": when
            }
        }],
        "context": context
    });
    if let Some(custodian) = visit["serviceProvider"]["reference"].as_str() {
        doc["custodian"] = json!({"reference": custodian});
    }
    doc
}

/// The plain text of a progress note.
fn progress_note(
    visit: &Value,
    place: &str,
    problems: &[Value],
    vitals: &[&Value],
    author: &str,
) -> String {
    let mut t = String::new();
    t.push_str("Progress note (DEMO NOTE)\n\n");
    t.push_str(
        "This is a demo note. oxehr's demo loader composed it from this patient's \
         synthetic (Synthea) record when the demo was loaded; no clinician wrote it.\n\n",
    );
    let kind = display::concept(&visit["type"][0]).unwrap_or_else(|| "Visit".to_owned());
    let day = day_of(visit["period"]["start"].as_str());
    t.push_str(&format!("Visit: {kind} on {day}"));
    if !place.is_empty() {
        t.push_str(&format!(" at {place}"));
    }
    t.push_str(".\n");
    let reasons: Vec<String> = visit["reasonCode"]
        .as_array()
        .map(|a| a.iter().filter_map(display::concept).collect())
        .unwrap_or_default();
    if reasons.is_empty() {
        t.push_str("Reason for visit: none recorded.\n");
    } else {
        t.push_str(&format!("Reason for visit: {}.\n", reasons.join("; ")));
    }
    t.push_str("\nActive problems:\n");
    if problems.is_empty() {
        t.push_str("- none recorded\n");
    }
    for p in problems {
        let what = display::concept(&p["code"]).unwrap_or_else(|| "(not described)".to_owned());
        match p["onsetDateTime"].as_str() {
            Some(d) => t.push_str(&format!("- {what} (since {})\n", day_of(Some(d)))),
            None => t.push_str(&format!("- {what}\n")),
        }
    }
    t.push_str("\nLatest vital signs:\n");
    if vitals.is_empty() {
        t.push_str("- none recorded\n");
    }
    for v in vitals {
        let what = display::concept(&v["code"]).unwrap_or_else(|| "(not described)".to_owned());
        let value = observation_value(v).unwrap_or_else(|| "no value".to_owned());
        let day = day_of(v["effectiveDateTime"].as_str());
        t.push_str(&format!("- {what}: {value} ({day})\n"));
    }
    if !author.is_empty() {
        t.push_str(&format!("\nAuthor (demo): {author}\n"));
    }
    t
}

/// An HTML allergy review of `allergies`, with hostile markup around it.
fn allergy_review_html(allergies: &[Value]) -> String {
    let mut items = String::new();
    for a in allergies {
        let what = display::concept(&a["code"]).unwrap_or_else(|| "(not described)".to_owned());
        let mut detail = Vec::new();
        if let Some(c) = a["criticality"].as_str() {
            detail.push(format!("criticality {c}"));
        }
        if let Some(d) = a["recordedDate"].as_str() {
            detail.push(format!("recorded {}", day_of(Some(d))));
        }
        items.push_str(&format!(
            "<li><strong>{}</strong> ({})</li>",
            escape_html(&what),
            escape_html(&detail.join(", "))
        ));
    }
    if items.is_empty() {
        items.push_str("<li>No allergies recorded.</li>");
    }
    format!(
        "<h2>Allergy review</h2>\
         <p><em>Demo note.</em> oxehr's demo loader composed it from this patient's synthetic \
         (Synthea) record; no clinician wrote it. Its markup also holds a script, an image \
         with an event handler, a <code>javascript:</code> link, a frame, a form and an \
         inline style: a page must show the text and none of those.</p>\
         <ul>{items}</ul>\
         <p style=\"color: red; position: fixed; top: 0\">Review at the next visit.</p>\
         <script>alert('the demo note ran a script')</script>\
         <img src=x onerror=\"alert('the demo note ran an event handler')\">\
         <a href=\"javascript:alert('the demo note ran a link')\">Allergy action plan</a>\
         <iframe src=\"https://example.invalid/\"></iframe>\
         <form action=\"https://example.invalid/\" method=\"post\"><input name=\"password\"><button>Send</button></form>"
    )
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The newest observation of each code, newest first (`obs` is newest first).
fn newest_per_code(obs: &[Value]) -> Vec<&Value> {
    let mut seen = std::collections::HashSet::new();
    obs.iter()
        .filter(|o| seen.insert(code_key(&o["code"])))
        .collect()
}

fn code_key(c: &Value) -> String {
    let first = &c["coding"][0];
    format!(
        "{}|{}",
        first["system"].as_str().unwrap_or(""),
        first["code"].as_str().unwrap_or("")
    )
}

/// The date part of a FHIR dateTime, or "an unrecorded date".
fn day_of(v: Option<&str>) -> String {
    v.and_then(|v| v.get(..10))
        .unwrap_or("an unrecorded date")
        .to_owned()
}

/// An observation's value as the chart reads it: a quantity, a coded answer, or its
/// components (a blood pressure's "118/76 mmHg", systolic first whatever their order).
fn observation_value(o: &Value) -> Option<String> {
    if let Some(q) = display::quantity(&o["valueQuantity"]) {
        return Some(q);
    }
    if let Some(t) = display::concept(&o["valueCodeableConcept"]) {
        return Some(t);
    }
    let mut parts: Vec<(u8, &Value)> = o["component"]
        .as_array()?
        .iter()
        .map(|c| {
            let rank = match c["code"]["coding"][0]["code"].as_str() {
                Some("8480-6") => 0, // systolic
                Some("8462-4") => 1, // diastolic
                _ => 2,
            };
            (rank, &c["valueQuantity"])
        })
        .collect();
    parts.sort_by_key(|(rank, _)| *rank);
    let numbers: Vec<String> = parts
        .iter()
        .map(|(_, q)| q["value"].as_f64().map(display::number))
        .collect::<Option<_>>()?;
    if numbers.is_empty() {
        return None;
    }
    let unit = parts[0].1["unit"]
        .as_str()
        .map(display::unit)
        .unwrap_or_default();
    Some(
        format!("{} {unit}", numbers.join("/"))
            .trim_end()
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reads_values_as_a_person_writes_them() {
        // Synthea gives the diastolic component first.
        let bp = json!({"component": [
            {"code": {"coding": [{"code": "8462-4"}]}, "valueQuantity": {"value": 76.0, "unit": "mm[Hg]"}},
            {"code": {"coding": [{"code": "8480-6"}]}, "valueQuantity": {"value": 118.333, "unit": "mm[Hg]"}}
        ]});
        let cases = [
            (
                json!({"valueQuantity": {"value": 71.6619, "unit": "kg"}}),
                Some("71.66 kg"),
            ),
            (
                json!({"valueQuantity": {"value": 1.86, "unit": "{score}"}}),
                Some("1.86"),
            ),
            (bp, Some("118.33/76 mmHg")),
            (json!({"valueString": "x"}), None),
        ];
        for (obs, want) in cases {
            assert_eq!(observation_value(&obs).as_deref(), want, "{obs}");
        }
    }

    #[test]
    fn the_html_note_escapes_the_record_and_keeps_its_hostile_markup() {
        let html =
            allergy_review_html(&[json!({"code": {"text": "Allergy to <b>nuts</b> & fish"}})]);
        assert!(html.contains("Allergy to &lt;b&gt;nuts&lt;/b&gt; &amp; fish"));
        for hostile in [
            "<script>",
            "onerror=",
            "javascript:",
            "<iframe",
            "<form",
            "style=",
        ] {
            assert!(html.contains(hostile), "{hostile}");
        }
    }
}
