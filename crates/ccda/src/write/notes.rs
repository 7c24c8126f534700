//! Notes in the CCD: DocumentReferences as Note Activities in a Notes Section.

use base64::Engine as _;
use serde_json::{json, Value};

use super::dt::{cd, display, ids, s, ts};
use super::sections::{date_text, section, Def};
use super::xml::W;

/// Notes Section 2.16.840.1.113883.10.20.22.2.65:2016-11-01 with Note Activity
/// 2.16.840.1.113883.10.20.22.4.202:2016-11-01 (C-CDA R2.1 Companion Guide; C-CDA on FHIR
/// "CF-notes", reversed): type → a translation of LOINC 34109-9 "Note", the first
/// attachment → text (B64 with its media type), the note's text in the narrative when it
/// is plain text or HTML.
pub(crate) fn notes(w: &mut W, list: &[&Value]) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let when = |r: &Value| {
        s(r, "/context/period/start")
            .or(s(r, "/date"))
            .map(str::to_string)
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let att = r.pointer("/content/0/attachment");
            let text = att
                .filter(|a| s(a, "/contentType").is_some_and(|c| c.starts_with("text/")))
                .and_then(|a| s(a, "/data"))
                .and_then(|d| b64.decode(d).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .map(|t| {
                    if s(att.unwrap_or(&Value::Null), "/contentType")
                        .is_some_and(|c| c.starts_with("text/html"))
                    {
                        strip_tags(&t)
                    } else {
                        t
                    }
                })
                .unwrap_or_else(|| "(attachment)".into());
            vec![display(r.get("type")), date_text(when(r).as_deref()), text]
        })
        .collect();
    let def = Def {
        tpl: "2.16.840.1.113883.10.20.22.2.65",
        ext: "2016-11-01",
        code: "11488-4",
        display: "Consult note",
        title: "Notes",
        required: false,
        columns: &["Note", "Date", "Text"],
    };
    section(w, &def, &rows, |w| {
        for r in list {
            let t = when(r);
            w.open("entry", &[]);
            w.open("act", &[("classCode", "ACT"), ("moodCode", "EVN")]);
            w.empty(
                "templateId",
                &[
                    ("root", "2.16.840.1.113883.10.20.22.4.202"),
                    ("extension", "2016-11-01"),
                ],
            );
            ids(w, r);
            let translations: Vec<Value> = r
                .pointer("/type/coding")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let note = json!({ "coding": [{ "system": "http://loinc.org", "code": "34109-9", "display": "Note" }] });
            cd(w, "code", Some(&note), &[], &translations);
            let att = r.pointer("/content/0/attachment");
            match att.and_then(|a| s(a, "/data")) {
                Some(d) => {
                    let media = att
                        .and_then(|a| s(a, "/contentType"))
                        .unwrap_or("text/plain");
                    let media = media.split(';').next().unwrap_or(media).trim();
                    w.leaf(
                        "text",
                        &[("mediaType", media), ("representation", "B64")],
                        d,
                    );
                }
                None => match att.and_then(|a| s(a, "/url")) {
                    Some(u) => {
                        w.open("text", &[]);
                        w.empty("reference", &[("value", u)]);
                        w.close("text");
                    }
                    None => w.leaf("text", &[], ""),
                },
            }
            w.empty("statusCode", &[("code", "completed")]);
            ts(w, "effectiveTime", t.as_deref());
            w.open("author", &[]);
            w.empty(
                "templateId",
                &[("root", "2.16.840.1.113883.10.20.22.4.119")],
            );
            ts(w, "time", t.as_deref());
            w.open("assignedAuthor", &[]);
            w.empty("id", &[("nullFlavor", "NI")]);
            w.close("assignedAuthor");
            w.close("author");
            w.close("act");
            w.close("entry");
        }
    });
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}
