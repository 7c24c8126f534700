//! C-CDA under hostile input: the shared sample documents of every type mutated with
//! the format's own tokens — section and entry elements, `xsi:type`, `nullFlavor`, odd
//! dates and values, entity declarations (internal entity expansion, the "billion
//! laughs" shape, an external entity) — and arbitrary bytes.
//!
//! And documents kept well-formed whose attribute values and text are replaced by
//! hostile ones, so the mapping itself meets them.
//!
//! For every input: the import gives a Bundle or a clear error; no panic; and it never
//! reads a file or the network because a document asked it to (an external entity's
//! text never reaches the Bundle).

mod common;

use oxehr_ccda::{import_bytes, ImportContext};
use proptest::prelude::*;

const TOKENS: &[&[u8]] = &[
    b"<", b">", b"</", b"/>", b"\"", b"&", b"&amp;", b"&#0;", b"&#x110000;", b"<![CDATA[",
    b"]]>", b"<!-- ", b" -->", b"<section>", b"</section>", b"<entry>", b"</entry>",
    b"<component>", b"</component>", b" xsi:type=\"CD\"", b" xsi:type=\"PQ\"",
    b" xsi:type=\"IVL_TS\"", b" nullFlavor=\"UNK\"", b" value=\"1e999\"", b" value=\"-\"",
    b" value=\"20240230\"", b" value=\"2024013125\"", b" unit=\"\"", b" code=\"\"",
    b" codeSystem=\"2.16.840.1.113883.6.1\"", b" root=\"\"", b" extension=\"x\"",
    b"<effectiveTime value=\"0\"/>", b"<value xsi:type=\"ST\">", b"</value>",
    b"<text><reference value=\"#x\"/></text>", b"<nonXMLBody><text mediaType=\"application/pdf\" representation=\"B64\">!!!</text></nonXMLBody>",
    b"<!DOCTYPE ClinicalDocument [<!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>",
    b"&d;", b"<!DOCTYPE x [<!ENTITY ext SYSTEM \"file:///etc/passwd\">]>", b"&ext;",
    b"\xEF\xBB\xBF", b"\xff",
];

fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let Some(dir) = common::shared("ccda/hl7-c-cda-examples") else {
            return Vec::new();
        };
        let mut files = common::files(&dir, ".xml");
        files.extend(common::files(&dir, ".XML"));
        files
            .into_iter()
            .map(|p| std::fs::read(p).expect("sample"))
            .collect()
    })
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let ctx = ImportContext {
        organization: Some("Organization/sender".into()),
    };
    if let Ok(imported) = import_bytes(bytes, &ctx) {
        let text = serde_json::to_string(&imported.bundle).expect("json");
        prop_assert!(
            !text.contains("root:x:0:0"),
            "a file's content reached the Bundle"
        );
    }
    Ok(())
}

/// Hostile attribute values and text, already escaped for XML, so the document stays
/// well-formed and the import's mapping (codes, dates, quantities, references, null
/// flavors, types) meets them rather than the XML reader's error.
const VALUES: &[&str] = &[
    "",
    " ",
    "UNK",
    "NI",
    "-",
    "0",
    "-0",
    "1e999",
    "NaN",
    "99999999999999999999999999",
    "20240230",
    "2024013125",
    "20241301",
    "2024",
    "202401011200+9999",
    "19000101000000.000000",
    "2.16.840.1.113883.6.1",
    "2.16.840.1.113883.6.96",
    "urn:oid:",
    "#",
    "#missing",
    "CD",
    "PQ",
    "IVL_TS",
    "ST",
    "CO",
    "ED",
    "INT",
    "REAL",
    "TS",
    "BL",
    "xsi:nil",
    "x:y:z",
    "&amp;&lt;&gt;&quot;",
    "&#x1F600;",
    "Ω",
    "a\\b",
    "../../etc/passwd",
];

/// The spans of attribute values (`="…"`) and of text between tags in `doc`.
fn spans(doc: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < doc.len() {
        if doc[i] == b'=' && doc[i + 1] == b'"' {
            if let Some(len) = doc[i + 2..].iter().position(|&c| c == b'"') {
                out.push((i + 2, i + 2 + len));
                i += 2 + len;
            }
        } else if doc[i] == b'>' {
            if let Some(len) = doc[i + 1..].iter().position(|&c| c == b'<') {
                if doc[i + 1..i + 1 + len]
                    .iter()
                    .any(|c| !c.is_ascii_whitespace())
                {
                    out.push((i + 1, i + 1 + len));
                }
            }
        }
        i += 1;
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn hostile_values_in_well_formed_documents(
        seed in any::<prop::sample::Index>(),
        changes in prop::collection::vec(
            (any::<prop::sample::Index>(), prop_oneof![
                3 => prop::sample::select(VALUES).prop_map(str::to_owned),
                1 => "\\PC{0,24}".prop_map(|t| escape(&t)),
            ]),
            1..24,
        ),
    ) {
        let seeds = seeds();
        if !seeds.is_empty() {
            let mut doc: Vec<u8> = seed.get(seeds).clone();
            for (at, value) in changes {
                let spans = spans(&doc);
                if spans.is_empty() {
                    break;
                }
                let (a, b) = *at.get(&spans);
                doc.splice(a..b, value.into_bytes());
            }
            check(&doc)?;
        }
    }

    #[test]
    fn mutated_documents(seed in any::<prop::sample::Index>(), edits in common::edits(TOKENS.len(), 10)) {
        let seeds = seeds();
        if !seeds.is_empty() {
            let s: &Vec<u8> = seed.get(seeds);
            check(&common::apply(s, &edits, TOKENS))?;
        }
    }

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut b = b"<?xml version=\"1.0\"?><ClinicalDocument xmlns=\"urn:hl7-org:v3\">".to_vec();
        b.extend(bytes);
        check(&b)?;
    }
}

/// Sections nested far deeper than any document (each `component/section` inside the
/// last): the import answers, with a Bundle or an error, without running out of stack.
#[test]
fn deeply_nested_sections_do_not_crash() {
    let Some(seed) = seeds().first() else { return };
    let text = String::from_utf8_lossy(seed).into_owned();
    let Some(at) = text.find("<section>").or_else(|| text.find("<section ")) else {
        panic!("the seed has a section");
    };
    for depth in [100, 2_000] {
        let nested = format!(
            "{}{}",
            "<section><component>".repeat(depth),
            "</component></section>".repeat(depth)
        );
        let mut doc = text.clone();
        doc.insert_str(at, &nested);
        let _ = check(doc.as_bytes());
        // Narrative markup nested as deep, inside a section's text.
        let Some(t) = text.find("<text>") else {
            panic!("the seed has narrative text");
        };
        let mut doc = text.clone();
        doc.insert_str(
            t + "<text>".len(),
            &format!(
                "{}deep{}",
                "<content>".repeat(depth),
                "</content>".repeat(depth)
            ),
        );
        let _ = check(doc.as_bytes());
    }
}
