//! Narrative kept as documents: sections whose entries we do not map (Assessment, Plan of
//! Treatment, History of Present Illness, …) → DocumentReference with the section's
//! narrative as text/html; Note Activity (2.16.840.1.113883.10.20.22.4.202) →
//! DocumentReference; a `nonXMLBody` (an unstructured document, e.g. an embedded PDF) →
//! DocumentReference with the content as its attachment.

use base64::Engine as _;
use serde_json::{json, Value};

use super::bundle::{hex, Fact};
use super::dom::{self, child, N};
use super::values::{self, ids};
use super::{entries, instant, Ctx, DocumentInfo};
use crate::error::CcdaError;

const NOTE_ACTIVITY: &[&str] = &["2.16.840.1.113883.10.20.22.4.202"];
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// How deep narrative markup is kept as markup; deeper, an element's text is kept as
/// plain text. Real narratives nest a few levels (a table in a list item); without a
/// bound, a document nesting thousands would overflow the stack.
const MAX_NARRATIVE_DEPTH: usize = 64;

/// CDA narrative (StrucDocText) as HTML: the element names CDA borrowed from HTML keep
/// their meaning; `content` becomes a span, `list` a ul/ol, `paragraph` a p.
pub(crate) fn html(n: N<'_>, out: &mut String) {
    html_at(n, out, 0)
}

fn html_at(n: N<'_>, out: &mut String, depth: usize) {
    if depth >= MAX_NARRATIVE_DEPTH {
        out.push_str(&esc(&crate::read::dom::text(n)));
        return;
    }
    for c in n.children() {
        if c.is_text() {
            out.push_str(&esc(c.text().unwrap_or("")));
            continue;
        }
        if !c.is_element() {
            continue;
        }
        let tag = match c.tag_name().name() {
            "paragraph" => "p",
            "content" => "span",
            "list" if c.attribute("listType") == Some("ordered") => "ol",
            "list" => "ul",
            "item" => "li",
            "linkHtml" => "a",
            "renderMultiMedia" | "footnoteRef" => continue,
            "footnote" => "small",
            t @ ("table" | "thead" | "tbody" | "tfoot" | "tr" | "th" | "td" | "caption" | "sub"
            | "sup" | "br" | "col" | "colgroup") => t,
            _ => "span",
        };
        if tag == "br" {
            out.push_str("<br/>");
            continue;
        }
        out.push('<');
        out.push_str(tag);
        if tag == "a" {
            if let Some(h) = c.attribute("href") {
                out.push_str(&format!(" href=\"{}\"", esc(h).replace('"', "&quot;")));
            }
        }
        out.push('>');
        html_at(c, out, depth + 1);
        out.push_str(&format!("</{tag}>"));
    }
}

fn note(
    cx: &mut Ctx<'_, '_>,
    type_: Option<Value>,
    title: Option<String>,
    attachment: Value,
    ids_: Vec<(String, String)>,
    when: Option<String>,
    digest: &str,
) {
    let mut r = json!({
        "resourceType": "DocumentReference",
        "status": "current",
    });
    if let Some(t) = &type_ {
        r["type"] = t.clone();
    }
    r["category"] = json!([{ "coding": [{
        "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
        "code": "clinical-note", "display": "Clinical Note" }] }]);
    r["subject"] = cx.subject();
    if let Some(d) = instant(&when) {
        r["date"] = json!(d);
    }
    if let Some(o) = cx.org_ref() {
        r["custodian"] = o;
    }
    if let Some(t) = &title {
        r["description"] = json!(t);
    }
    r["content"] = json!([{ "attachment": attachment }]);
    if let Some(w) = &when {
        r["context"] = json!({ "period": { "start": w } });
    }
    let fact = Fact {
        kind: "DocumentReference".into(),
        code: type_.as_ref().and_then(values::first_code),
        date: Some(format!("{}#{digest}", when.unwrap_or_default())),
    };
    cx.add(r, ids_, fact);
}

fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes)[..8])
}

/// A section without mapped entries, kept as a DocumentReference of its narrative (C-CDA
/// on FHIR keeps section narrative in Composition.section.text; without a Composition the
/// narrative travels as a note typed by the section's LOINC code).
pub(crate) fn narrative_section(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<(), CcdaError> {
    // A section that says it has no information (nullFlavor) has no note to keep.
    if dom::is_null(s) {
        return Ok(());
    }
    let Some(text) = child(s, "text") else {
        return Ok(());
    };
    if dom::text(text).is_empty() {
        return Ok(());
    }
    let mut body = String::new();
    html(text, &mut body);
    let title = child(s, "title").map(dom::text).filter(|t| !t.is_empty());
    let page = format!(
        "<div xmlns=\"http://www.w3.org/1999/xhtml\">{}{body}</div>",
        title
            .as_ref()
            .map(|t| format!("<h2>{}</h2>", esc(t)))
            .unwrap_or_default()
    );
    let type_ = child(s, "code").and_then(|c| values::concept(c, cx.refs));
    let att = json!({ "contentType": "text/html", "data": B64.encode(page.as_bytes()),
        "title": title.clone().unwrap_or_else(|| "Section".into()) });
    let d = digest(page.as_bytes());
    note(cx, type_, title, att, Vec::new(), cx.doc_time.clone(), &d);
    Ok(())
}

/// Note Activity (2.16.840.1.113883.10.20.22.4.202, Notes Section 2.16.840.1.113883.10.20.22.2.65)
/// → DocumentReference (C-CDA on FHIR "CF-notes"): code (translation) → type, text (inline,
/// B64, or its narrative reference) → content, effectiveTime → context.period and date.
pub(crate) fn note_activities(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<usize, CcdaError> {
    let mut n = 0;
    for act in entries(s, NOTE_ACTIVITY) {
        // The code is LOINC 34109-9 "Note" with the kind of note as a translation: the
        // translation is what the note is known by, so it comes first.
        let type_ = child(act, "code")
            .and_then(|c| values::concept(c, cx.refs))
            .map(|mut t| {
                if let Some(c) = t.get_mut("coding").and_then(Value::as_array_mut) {
                    if c.len() > 1 && c[0].get("code").and_then(Value::as_str) == Some("34109-9") {
                        c.rotate_left(1);
                    }
                }
                t
            });
        let when = values::effective(act)?.and_then(|w| w.start());
        let Some(text) = child(act, "text") else {
            continue;
        };
        let att = ed_attachment(text, cx)?;
        let d = digest(att.to_string().as_bytes());
        note(
            cx,
            type_,
            None,
            att,
            ids(act),
            when.or_else(|| cx.doc_time.clone()),
            &d,
        );
        n += 1;
    }
    Ok(n)
}

/// An ED (`text` with mediaType, representation, reference) as an Attachment.
fn ed_attachment(text: N<'_>, cx: &Ctx<'_, '_>) -> Result<Value, CcdaError> {
    let media = text.attribute("mediaType").unwrap_or("text/plain");
    if text.attribute("representation") == Some("B64") {
        let data: String = dom::text(text).split_whitespace().collect();
        B64.decode(data.as_bytes())
            .map_err(|_| CcdaError::invalid(dom::location(text), "B64 content is not base64"))?;
        return Ok(json!({ "contentType": media, "data": data }));
    }
    let own: String = text
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect::<String>()
        .trim()
        .to_string();
    if own.is_empty() {
        if let Some(r) = child(text, "reference").and_then(|r| r.attribute("value")) {
            if let Some(t) = cx.refs.resolve(r) {
                return Ok(
                    json!({ "contentType": "text/plain", "data": B64.encode(t.as_bytes()) }),
                );
            }
            return Ok(json!({ "contentType": media, "url": r }));
        }
    }
    Ok(json!({ "contentType": media, "data": B64.encode(own.as_bytes()) }))
}

/// `nonXMLBody` (US Realm Header, unstructured document 2.16.840.1.113883.10.20.22.1.10)
/// → one DocumentReference whose attachment is the body: base64 content as sent, a
/// `reference` as the attachment's url, plain text encoded.
pub(crate) fn non_xml_body(
    nx: N<'_>,
    doc: &DocumentInfo,
    cx: &mut Ctx<'_, '_>,
) -> Result<(), CcdaError> {
    let Some(text) = child(nx, "text") else {
        return Err(CcdaError::invalid(
            dom::location(nx),
            "nonXMLBody without text",
        ));
    };
    let mut att = ed_attachment(text, cx)?;
    if let Some(t) = &doc.title {
        att["title"] = json!(t);
    }
    let type_ = doc.type_code.as_ref().map(
        |(c, d)| json!({ "coding": [{ "system": "http://loinc.org", "code": c, "display": d }] }),
    );
    let d = digest(att.to_string().as_bytes());
    let mut own = Vec::new();
    if let Some(id) = &doc.id {
        let (root, ext) = match id.split_once('^') {
            Some((r, e)) => (r, Some(e)),
            None => (id.as_str(), None),
        };
        own.push(crate::codes::identifier(root, ext));
    }
    note(
        cx,
        type_,
        doc.title.clone(),
        att,
        own,
        cx.doc_time.clone(),
        &d,
    );
    Ok(())
}
