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

/// Parses the document, refusing DTDs, and checks that it is a CDA `ClinicalDocument`.
pub(crate) fn parse(xml: &str) -> Result<roxmltree::Document<'_>, CcdaError> {
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
