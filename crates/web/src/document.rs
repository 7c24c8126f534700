//! A note or report as a person reads it: its attachments' text, its narrative, its
//! conclusion. Stored HTML (an attachment, or a resource's narrative `text.div`) is
//! shown only through an allow-list sanitizer (`ammonia`): whatever the record holds,
//! including what was stored before validation got stricter, no script, handler, style,
//! form, frame or image from elsewhere reaches the page.

use std::sync::OnceLock;

use base64::Engine;
use serde_json::Value;

use crate::display;

/// The most text of one attachment shown; a longer one says it was cut.
pub const MAX_SHOWN_BYTES: usize = 256 * 1024;

/// A part of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Plain text (escaped by the template).
    Text {
        title: String,
        text: String,
        cut: bool,
    },
    /// HTML, already sanitized.
    Html {
        title: String,
        html: String,
        cut: bool,
    },
    /// Something that cannot be shown here, and why.
    Unavailable { title: String, why: String },
}

impl Part {
    pub fn title(&self) -> &str {
        match self {
            Part::Text { title, .. }
            | Part::Html { title, .. }
            | Part::Unavailable { title, .. } => title,
        }
    }
}

fn sanitizer() -> &'static ammonia::Builder<'static> {
    static B: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    B.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        // No images at all (a stored image could be a beacon to another site), no
        // classes or styles (the page has its own), links only to the web and mail,
        // opened without the page's address.
        b.rm_tags(["img"])
            .url_schemes(["http", "https", "mailto"].into_iter().collect())
            .link_rel(Some("noopener noreferrer nofollow"))
            .strip_comments(true);
        b
    })
}

/// Stored HTML made safe to show.
pub fn clean_html(html: &str) -> String {
    sanitizer().clean(html).to_string()
}

/// The bytes of an attachment's `data`, at most `MAX_SHOWN_BYTES` (and whether there
/// were more), or `None` when it is not base64.
fn attachment_bytes(a: &Value) -> Option<(Vec<u8>, bool)> {
    let data = a["data"].as_str()?;
    let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .ok()?;
    let cut = bytes.len() > MAX_SHOWN_BYTES;
    let mut bytes = bytes;
    if cut {
        bytes.truncate(MAX_SHOWN_BYTES);
    }
    Some((bytes, cut))
}

fn size_text(n: usize) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MB", n as f64 / (1024.0 * 1024.0))
    } else if n >= 1024 {
        format!("{} KB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// An attachment as a part: text, sanitized HTML, or why it cannot be shown.
pub fn attachment(a: &Value, fallback_title: &str) -> Part {
    let title = a["title"]
        .as_str()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(fallback_title)
        .to_owned();
    let content_type = a["contentType"]
        .as_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((bytes, cut)) = attachment_bytes(a) else {
        let why = if a["url"].is_string() {
            "This document is kept in another system; it is not stored here.".to_owned()
        } else {
            "This document has no content stored.".to_owned()
        };
        return Part::Unavailable { title, why };
    };
    // Lossy: a stray byte is shown as � rather than hiding the note.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match content_type.as_str() {
        "text/plain" | "" => Part::Text { title, text, cut },
        "text/html" | "application/xhtml+xml" => Part::Html {
            title,
            html: clean_html(&text),
            cut,
        },
        other => Part::Unavailable {
            title,
            why: format!(
                "This is a {} document ({}); it cannot be shown in the chart yet.",
                kind_name(other),
                size_text(a["size"].as_u64().map_or(bytes.len(), |n| n as usize))
            ),
        },
    }
}

fn kind_name(content_type: &str) -> &str {
    match content_type {
        "application/pdf" => "PDF",
        t if t.starts_with("image/") => "picture",
        "application/xml" | "text/xml" | "application/hl7-v3+xml" => "XML",
        _ => content_type,
    }
}

/// A note or report read for a person.
#[derive(Debug, Clone)]
pub struct Document {
    pub title: String,
    pub date: String,
    pub author: Vec<String>,
    pub status: String,
    pub parts: Vec<Part>,
}

/// `r` (a DocumentReference or DiagnosticReport) as a document: its attachments, its
/// conclusion, and its narrative when there is nothing else to read.
pub fn of(r: &Value) -> Document {
    let s = |p: &str| r.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let is_report = r["resourceType"] == "DiagnosticReport";
    let title = if is_report {
        display::concept(&r["code"])
    } else {
        s("/description").or_else(|| display::concept(&r["type"]))
    }
    .unwrap_or_else(|| "Document".to_owned());
    let date = if is_report {
        s("/effectiveDateTime").or_else(|| s("/issued"))
    } else {
        s("/date")
    };
    let mut parts = Vec::new();
    if let Some(c) = s("/conclusion").filter(|c| !c.trim().is_empty()) {
        parts.push(Part::Text {
            title: "Conclusion".into(),
            text: c,
            cut: false,
        });
    }
    let attachments: Vec<&Value> = if is_report {
        r["presentedForm"]
            .as_array()
            .into_iter()
            .flatten()
            .collect()
    } else {
        r["content"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| &c["attachment"])
            .collect()
    };
    for (i, a) in attachments.iter().enumerate() {
        let fallback = if attachments.len() > 1 {
            format!("Part {}", i + 1)
        } else {
            "Text".to_owned()
        };
        parts.push(attachment(a, &fallback));
    }
    if let Some(div) = s("/text/div") {
        let generated = r["text"]["status"] == "generated";
        // A generated narrative repeats the data; show it only when it is all there is.
        if !generated || parts.is_empty() {
            parts.push(Part::Html {
                title: "Narrative".into(),
                html: clean_html(&div),
                cut: false,
            });
        }
    }
    let author = r["author"]
        .as_array()
        .or_else(|| r["performer"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|a| a["display"].as_str().map(str::to_owned))
        .collect();
    Document {
        title,
        date: date.as_deref().map(display::date).unwrap_or_default(),
        author,
        status: s("/docStatus").or_else(|| s("/status")).unwrap_or_default(),
        parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// The OWASP filter-evasion classics: none may leave anything that runs.
    #[test]
    fn stored_html_loses_everything_that_could_run_or_call_out() {
        let hostile = [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
            "<svg onload=alert(1)>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<div style=\"background:url(https://evil.example/t)\">x</div>",
            "<form action=\"https://evil.example\"><input name=a></form>",
            "<p onclick=\"alert(1)\">x</p>",
            "<object data=\"x.swf\"></object>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
            "<base href=\"https://evil.example/\">",
            "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
            "<link rel=stylesheet href=\"https://evil.example/x.css\">",
        ];
        for h in hostile {
            let out = clean_html(h).to_ascii_lowercase();
            for bad in [
                "<script",
                "onerror",
                "onload",
                "onclick",
                "javascript:",
                "<iframe",
                "style=",
                "<form",
                "<input",
                "<object",
                "<img",
                "<base",
                "<meta",
                "<link",
                "<svg",
                "evil.example",
            ] {
                assert!(!out.contains(bad), "{h} → {out} still has {bad}");
            }
        }
        // What a note needs survives.
        let ok = clean_html("<p>Seen <b>today</b>.</p><ul><li>BP 120/80</li></ul><table><tr><td>a</td></tr></table>");
        assert!(
            ok.contains("<b>today</b>")
                && ok.contains("<li>BP 120/80</li>")
                && ok.contains("<td>a</td>")
        );
        let link = clean_html("<a href=\"https://example.org/x\">more</a>");
        assert!(
            link.contains("rel=\"noopener noreferrer nofollow\""),
            "{link}"
        );
    }

    #[test]
    fn attachments_by_their_content_type() {
        let text = attachment(
            &json!({"contentType": "text/plain; charset=utf-8", "data": b64("Line one\n<b>not markup</b>")}),
            "Text",
        );
        assert_eq!(
            text,
            Part::Text {
                title: "Text".into(),
                text: "Line one\n<b>not markup</b>".into(),
                cut: false
            }
        );
        let html = attachment(
            &json!({"contentType": "text/html", "title": "Visit", "data": b64("<p>Fine</p><script>x()</script>")}),
            "Text",
        );
        assert_eq!(
            html,
            Part::Html {
                title: "Visit".into(),
                html: "<p>Fine</p>".into(),
                cut: false
            }
        );
        let pdf = attachment(
            &json!({"contentType": "application/pdf", "data": b64(&"x".repeat(3000))}),
            "Text",
        );
        assert!(
            matches!(pdf, Part::Unavailable { ref why, .. } if why.contains("PDF") && why.contains("2 KB")),
            "{pdf:?}"
        );
        let elsewhere = attachment(&json!({"url": "https://elsewhere.example/doc/1"}), "Text");
        assert!(
            matches!(elsewhere, Part::Unavailable { ref why, .. } if !why.contains("elsewhere.example"))
        );
        let broken = attachment(&json!({"contentType": "text/plain", "data": "%%%"}), "Text");
        assert!(matches!(broken, Part::Unavailable { .. }));
    }

    #[test]
    fn a_long_attachment_is_cut_and_says_so() {
        let long = "a".repeat(MAX_SHOWN_BYTES + 10);
        match attachment(
            &json!({"contentType": "text/plain", "data": b64(&long)}),
            "T",
        ) {
            Part::Text { text, cut, .. } => {
                assert!(cut);
                assert_eq!(text.len(), MAX_SHOWN_BYTES);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_report_shows_its_conclusion_forms_and_narrative() {
        let r = json!({
            "resourceType": "DiagnosticReport",
            "code": {"text": "Chest X-ray"},
            "issued": "2024-03-15T10:00:00Z",
            "conclusion": "No acute findings.",
            "presentedForm": [{"contentType": "text/plain", "data": b64("Full report")}],
            "text": {"status": "additional", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p onmouseover=\"x()\">Read by Dr A</p></div>"},
        });
        let d = of(&r);
        assert_eq!(d.title, "Chest X-ray");
        assert_eq!(d.date, "15 Mar 2024");
        assert_eq!(d.parts.len(), 3);
        assert!(
            matches!(&d.parts[2], Part::Html { html, .. } if html.contains("Read by Dr A") && !html.contains("onmouseover"))
        );
        // A generated narrative only repeats the data: shown only when nothing else is.
        let g = json!({"resourceType": "DocumentReference", "text": {"status": "generated", "div": "<div>gen</div>"},
                       "content": [{"attachment": {"contentType": "text/plain", "data": b64("n")}}]});
        assert_eq!(of(&g).parts.len(), 1);
    }
}
