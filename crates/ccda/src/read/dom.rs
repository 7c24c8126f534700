//! Small helpers over `roxmltree` for the HL7 v3 namespace: child lookup by name,
//! templateIds, nullFlavor, and element paths for error locations.

use crate::error::CcdaError;

pub(crate) const V3: &str = "urn:hl7-org:v3";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

pub(crate) type N<'a> = roxmltree::Node<'a, 'a>;

/// The first child element `name` in the v3 namespace.
pub(crate) fn child<'a>(n: N<'a>, name: &str) -> Option<N<'a>> {
    n.children().find(|c| {
        c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(V3)
    })
}

/// All child elements `name` in the v3 namespace.
pub(crate) fn children<'a, 'n>(n: N<'a>, name: &'n str) -> impl Iterator<Item = N<'a>> + 'n
where
    'a: 'n,
{
    n.children().filter(move |c| {
        c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(V3)
    })
}

/// The element at a path of child names.
pub(crate) fn at<'a>(n: N<'a>, path: &[&str]) -> Option<N<'a>> {
    path.iter().try_fold(n, |n, name| child(n, name))
}

/// Whether the element carries one of these templateId roots.
pub(crate) fn has_template(n: N<'_>, roots: &[&str]) -> bool {
    children(n, "templateId").any(|t| t.attribute("root").is_some_and(|r| roots.contains(&r)))
}

/// Whether the element is a null (`nullFlavor` set).
pub(crate) fn is_null(n: N<'_>) -> bool {
    n.attribute("nullFlavor").is_some()
}

/// The `xsi:type` without its prefix.
pub(crate) fn xsi_type<'a>(n: N<'a>) -> Option<&'a str> {
    n.attribute((XSI, "type"))
        .map(|t| t.rsplit(':').next().unwrap_or(t))
}

/// The text of an element, whitespace collapsed.
pub(crate) fn text(n: N<'_>) -> String {
    let mut out = String::new();
    for d in n.descendants().filter(|d| d.is_text()) {
        out.push_str(d.text().unwrap_or(""));
        out.push(' ');
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An XPath-like location of the element (`/ClinicalDocument/component/…/section[2]`),
/// for error messages: names and positions only, never content.
pub(crate) fn location(n: N<'_>) -> String {
    let mut parts = Vec::new();
    let mut cur = Some(n);
    while let Some(c) = cur {
        if !c.is_element() {
            break;
        }
        let name = c.tag_name().name();
        let same: Vec<_> = c
            .parent()
            .map(|p| {
                p.children()
                    .filter(|s| s.is_element() && s.tag_name().name() == name)
                    .collect()
            })
            .unwrap_or_default();
        if same.len() > 1 {
            let pos = same.iter().position(|s| *s == c).unwrap_or(0) + 1;
            parts.push(format!("{name}[{pos}]"));
        } else {
            parts.push(name.to_string());
        }
        cur = c.parent();
    }
    parts.reverse();
    format!("/{}", parts.join("/"))
}

/// How deep elements may nest. `roxmltree` reads nested elements by recursion, so a
/// document of thousands of nested elements (a few kilobytes) would overflow the
/// stack and abort the server; C-CDA documents nest a few dozen levels.
pub(crate) const MAX_XML_DEPTH: usize = 256;

/// The deepest element nesting of `xml`, counted before it is parsed, or the position
/// where it passes `max`. A light scan: it skips comments, CDATA, processing
/// instructions, declarations and quoted attribute values, and counts every other `<…>`
/// that does not end in `/>` as an open element and every `</` as a close, so it never
/// counts less than the parser would nest (it may count more in a malformed document,
/// which the parser refuses anyway).
pub(crate) fn too_deep(xml: &str, max: usize) -> Option<usize> {
    let b = xml.as_bytes();
    let find = |from: usize, pat: &[u8]| {
        b.get(from..)
            .and_then(|rest| rest.windows(pat.len()).position(|w| w == pat))
            .map(|p| from + p + pat.len())
    };
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(p) = b.get(i..).and_then(|r| r.iter().position(|&c| c == b'<')) {
        let at = i + p;
        let rest = &b[at..];
        i = if rest.starts_with(b"<!--") {
            find(at + 4, b"-->").unwrap_or(b.len())
        } else if rest.starts_with(b"<![CDATA[") {
            find(at + 9, b"]]>").unwrap_or(b.len())
        } else if rest.starts_with(b"<?") {
            find(at + 2, b"?>").unwrap_or(b.len())
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            find(at + 2, b">").unwrap_or(b.len())
        } else if rest.starts_with(b"<!") {
            find(at + 2, b">").unwrap_or(b.len())
        } else {
            // An element's start tag: to its `>`, past quoted values.
            let mut j = at + 1;
            let mut quote = None;
            while j < b.len() {
                match (quote, b[j]) {
                    (None, q @ (b'"' | b'\'')) => quote = Some(q),
                    (Some(q), c) if c == q => quote = None,
                    (None, b'>') => break,
                    _ => {}
                }
                j += 1;
            }
            if j < b.len() && b[j - 1] != b'/' {
                depth += 1;
                if depth > max {
                    return Some(at);
                }
            }
            j + 1
        };
    }
    None
}

/// Parses the document, refusing DTDs and nesting past [`MAX_XML_DEPTH`], and checks
/// that it is a CDA `ClinicalDocument`.
pub(crate) fn parse(xml: &str) -> Result<roxmltree::Document<'_>, CcdaError> {
    if let Some(at) = too_deep(xml, MAX_XML_DEPTH) {
        return Err(CcdaError::NotXml(format!(
            "elements nest more than {MAX_XML_DEPTH} levels deep (at byte {at})"
        )));
    }
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 5_000_000,
    };
    let doc = roxmltree::Document::parse_with_options(xml, opts)
        .map_err(|e| CcdaError::NotXml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "ClinicalDocument" || root.tag_name().namespace() != Some(V3) {
        return Err(CcdaError::NotCda(format!(
            "the root element is {{{}}}{}, not {{{V3}}}ClinicalDocument",
            root.tag_name().namespace().unwrap_or(""),
            root.tag_name().name()
        )));
    }
    Ok(doc)
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    #[test]
    fn nesting_is_counted_as_the_parser_nests() {
        assert_eq!(too_deep("<a><b/><c x='>'><d></d></c></a>", 3), None);
        assert_eq!(too_deep("<a><b><c><d/></c></b></a>", 2), Some(6));
        // Comments, CDATA, instructions and closed siblings do not nest.
        let flat = format!(
            "<r>{}</r>",
            "<!-- <x> --><![CDATA[<y>]]><?p <z>?><e/><f></f>".repeat(500)
        );
        assert_eq!(too_deep(&flat, 2), None);
        // A quoted '>' or '/>' does not end a start tag.
        assert_eq!(too_deep("<a t=\"/>\"><b t='>'><c/></b></a>", 1), Some(10));
    }

    /// Found by the fuzz harness (`crates/fuzz`, `ccda::deeply_nested_sections_do_not_crash`):
    /// 2,000 nested elements overflowed the stack inside `roxmltree`. They are refused.
    #[test]
    fn deep_documents_are_refused_before_parsing() {
        let n = MAX_XML_DEPTH * 20;
        let xml = format!(
            "<ClinicalDocument xmlns=\"{V3}\">{}{}</ClinicalDocument>",
            "<component>".repeat(n),
            "</component>".repeat(n)
        );
        match parse(&xml) {
            Err(CcdaError::NotXml(m)) => assert!(m.contains("nest"), "{m}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
