//! Hostile input found by the outside security audit, each case a real example with one
//! value replaced: active content in narratives (txt-1, txt-2), control characters in
//! strings, strings over the spec's 1 MB limit, and decimals no f64 can hold.
//!
//! The expected outcome of every case comes from the spec and the HTML/URL rules it
//! names (and, for narratives, from what the official Java validator's `XhtmlValidator`
//! accepts), never from this validator's output.

use std::path::PathBuf;

use oxehr_fhir::validate::validate;
use oxehr_fhir::IssueCode;
use serde_json::{json, Value};

fn data_dir() -> PathBuf {
    oxehr_testdata::path("")
}

fn example(name: &str) -> Value {
    let p = data_dir().join("fhir-examples").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Error issues as (code, location, diagnostics).
fn errors(v: &Value) -> Vec<(IssueCode, String, String)> {
    validate(v)
        .into_iter()
        .filter(|i| i.is_error())
        .map(|i| (i.code, i.expression.join(","), i.diagnostics))
        .collect()
}

fn set(v: &mut Value, ptr: &str, val: Value) {
    let (parent, key) = ptr.rsplit_once('/').expect("pointer has a parent");
    match v.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(key.to_string(), val);
        }
        Some(Value::Array(a)) => a[key.parse::<usize>().expect("index")] = val,
        _ => panic!("no {parent}"),
    }
}

const NS: &str = "http://www.w3.org/1999/xhtml";

/// A narrative body inside the one root `div` the xhtml type requires.
fn div(body: &str) -> String {
    format!("<div xmlns=\"{NS}\">{body}</div>")
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Ok,
    /// An `invariant` error whose diagnostics name txt-1 (disallowed markup, URL or
    /// style).
    Txt1,
    /// No error, and an `invariant` warning whose diagnostics name txt-2 (no content):
    /// the official validator does not enforce txt-2, and four official examples break
    /// it.
    Txt2,
    /// A `value` error: not well-formed XML, or not one `div` in the XHTML namespace.
    Xml,
}

use Expect::*;

/// (case, whole narrative, expected outcome)
fn narrative_cases() -> Vec<(&'static str, String, Expect)> {
    vec![
        // What real narratives hold.
        ("plain_text", div("Peter James Chalmers"), Ok),
        ("table", div("<table class=\"grid\"><tbody><tr><td colspan=\"2\" style=\"text-align: right\">x</td></tr></tbody></table>"), Ok),
        ("comment_is_allowed", div("<!-- link to image -->text"), Ok),
        ("escaped_markup_is_text", div("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot; &apos;"), Ok),
        ("numeric_references", div("caf&#233; caf&#xE9;"), Ok),
        ("only_an_img", div("<img src=\"photo.png\" alt=\"\"/>"), Ok),
        ("img_data_png", div("<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"x\"/>"), Ok),
        ("img_fragment", div("<img src=\"#image\" alt=\"diagram\"/>"), Ok),
        ("href_https", div("<a href=\"https://example.org/a?b=c&amp;d=e#f\">x</a>"), Ok),
        ("href_http_upper_scheme", div("<a href=\"HTTP://example.org/\">x</a>"), Ok),
        ("href_mailto", div("<a href=\"mailto:info@example.org\">x</a>"), Ok),
        ("href_tel", div("<a href=\"tel:+15555550100\">x</a>"), Ok),
        ("href_relative", div("<a href=\"Patient/example\">x</a>"), Ok),
        ("href_fragment", div("<a href=\"#section-2\">x</a>"), Ok),
        ("a_name", div("<a name=\"top\">x</a>"), Ok),
        ("lang_attributes", format!("<div xmlns=\"{NS}\" xml:lang=\"en\" lang=\"en\" dir=\"ltr\">x</div>"), Ok),
        ("style_plain", div("<span style=\"color: red; font-weight: bold; width: 100%\">x</span>"), Ok),
        ("whitespace_around_root", format!("  \n{}\n ", div("x")), Ok),
        ("single_quoted_namespace", format!("<div xmlns='{NS}'>x</div>"), Ok),
        ("nbsp_character_is_content", div("\u{a0}"), Ok),
        // Elements outside the validator's HTML_ELEMENTS.
        ("script", div("<script>alert(1)</script>"), Txt1),
        ("script_empty_with_src", div("<script src=\"https://evil.example/x.js\"/>"), Txt1),
        ("script_upper_case", div("<SCRIPT>alert(1)</SCRIPT>"), Txt1),
        ("script_inside_allowed_elements", div("<p><b><script>alert(1)</script></b></p>"), Txt1),
        ("iframe", div("<iframe src=\"https://evil.example/\"></iframe>"), Txt1),
        ("object", div("<object data=\"x.swf\">x</object>"), Txt1),
        ("embed", div("<embed src=\"x.swf\"/>"), Txt1),
        ("form", div("<form action=\"https://evil.example/\">x</form>"), Txt1),
        ("input", div("<input type=\"text\" value=\"x\"/>"), Txt1),
        ("style_element", div("<style>body { background: url(https://evil.example/) }</style>x"), Txt1),
        ("svg", div("<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"), Txt1),
        ("math", div("<math xmlns=\"http://www.w3.org/1998/Math/MathML\"><mi>x</mi></math>"), Txt1),
        ("link", div("<link rel=\"stylesheet\" href=\"https://evil.example/x.css\"/>x"), Txt1),
        ("meta_refresh", div("<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\"/>x"), Txt1),
        ("base", div("<base href=\"https://evil.example/\"/>x"), Txt1),
        ("prefixed_script_in_xhtml_namespace", div(&format!("<h:script xmlns:h=\"{NS}\">alert(1)</h:script>")), Txt1),
        // Attributes outside HTML_ATTRIBUTES and HTML_COMBO_LIST.
        ("onclick", div("<p onclick=\"alert(1)\">x</p>"), Txt1),
        ("onload_upper_case", div("<img src=\"a.png\" ONLOAD=\"alert(1)\"/>"), Txt1),
        ("onerror_mixed_case", div("<img src=\"a.png\" OnError=\"alert(1)\"/>"), Txt1),
        ("onmouseover_on_root", format!("<div xmlns=\"{NS}\" onmouseover=\"alert(1)\">x</div>"), Txt1),
        ("xlink_href", div("<a xmlns:xlink=\"http://www.w3.org/1999/xlink\" xlink:href=\"javascript:alert(1)\">x</a>"), Txt1),
        ("xml_base", div("<p xml:base=\"javascript:alert(1)//\">x</p>"), Txt1),
        ("a_target", div("<a href=\"https://example.org/\" target=\"_blank\">x</a>"), Txt1),
        ("src_on_a_span", div("<span src=\"https://evil.example/\">x</span>"), Txt1),
        // URLs: javascript and friends, whatever the spelling.
        ("href_javascript", div("<a href=\"javascript:alert(1)\">x</a>"), Txt1),
        ("href_javascript_mixed_case", div("<a href=\"JaVaScRiPt:alert(1)\">x</a>"), Txt1),
        ("href_javascript_leading_space", div("<a href=\" JavaScript:alert(1)\">x</a>"), Txt1),
        ("href_javascript_tab_reference", div("<a href=\"jav&#x09;ascript:alert(1)\">x</a>"), Txt1),
        ("href_javascript_newline_reference", div("<a href=\"jav&#10;ascript:alert(1)\">x</a>"), Txt1),
        ("href_javascript_colon_reference", div("<a href=\"javascript&#58;alert(1)\">x</a>"), Txt1),
        ("href_javascript_letter_reference", div("<a href=\"&#106;avascript:alert(1)\">x</a>"), Txt1),
        ("href_vbscript", div("<a href=\"vbscript:msgbox(1)\">x</a>"), Txt1),
        ("href_data_html", div("<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>"), Txt1),
        ("href_data_image", div("<a href=\"data:image/png;base64,iVBORw0KGgo=\">x</a>"), Txt1),
        ("href_file", div("<a href=\"file:///etc/passwd\">x</a>"), Txt1),
        ("href_empty", div("<a href=\"\">x</a>"), Txt1),
        ("img_src_javascript", div("<img src=\"javascript:alert(1)\" alt=\"x\"/>"), Txt1),
        ("img_src_data_svg", div("<img src=\"data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=\" alt=\"x\"/>"), Txt1),
        ("img_src_data_html", div("<img src=\"data:text/html,x\" alt=\"x\"/>"), Txt1),
        ("area_href_javascript", div("<map name=\"m\"><area shape=\"rect\" coords=\"0,0,1,1\" href=\"javascript:alert(1)\" alt=\"x\"/></map>x"), Txt1),
        ("blockquote_cite_javascript", div("<blockquote cite=\"javascript:alert(1)\">x</blockquote>"), Txt1),
        // CSS can fetch (url, image-set) and, in old engines, execute (expression, javascript:).
        ("style_url", div("<span style=\"background: url(https://evil.example/t.png)\">x</span>"), Txt1),
        ("style_url_upper_case", div("<span style=\"background: URL(x.png)\">x</span>"), Txt1),
        ("style_url_css_escape", div("<span style=\"background: u\\72l(x.png)\">x</span>"), Txt1),
        ("style_url_comment_split", div("<span style=\"background: url/**/(x.png)\">x</span>"), Txt1),
        ("style_expression", div("<span style=\"width: expression(alert(1))\">x</span>"), Txt1),
        ("style_javascript", div("<span style=\"background: JavaScript:alert(1)\">x</span>"), Txt1),
        ("style_image_set", div("<span style=\"background-image: image-set('x.png' 1x)\">x</span>"), Txt1),
        ("style_url_by_reference", div("<span style=\"background: &#117;rl(x.png)\">x</span>"), Txt1),
        // XML features that have no place in a narrative.
        ("cdata_holding_script", div("<![CDATA[<script>alert(1)</script>]]>"), Txt1),
        ("doctype_before_root", format!("<!DOCTYPE div>{}", div("x")), Txt1),
        ("entity_declaration", format!("<!DOCTYPE div [<!ENTITY e \"<script>alert(1)</script>\">]>{}", div("&e;")), Txt1),
        ("processing_instruction_inside", div("<?php echo 1; ?>x"), Txt1),
        ("stylesheet_instruction_before_root", format!("<?xml-stylesheet href=\"x.xsl\"?>{}", div("x")), Txt1),
        ("xml_declaration", format!("<?xml version=\"1.0\"?>{}", div("x")), Txt1),
        // Comments an HTML parser ends earlier than XML does.
        ("comment_closed_early_by_html", div("<!--><script>alert(1)</script>-->x"), Txt1),
        ("comment_closed_early_by_html_dash", div("<!---><script>alert(1)</script>-->x"), Txt1),
        // Not well-formed, or not one XHTML div.
        ("html_only_entity", div("a&nbsp;b"), Xml),
        ("undeclared_entity", div("&e;"), Xml),
        ("bare_ampersand", div("a & b"), Xml),
        ("comment_with_double_hyphen", div("<!-- a -- b -->x"), Xml),
        ("comment_ended_by_html_bang", div("<!-- --!><script>alert(1)</script> -->x"), Xml),
        ("unclosed_element", div("<p>x"), Xml),
        ("mismatched_end", div("<b>x</i>"), Xml),
        ("unclosed_root", format!("<div xmlns=\"{NS}\">x"), Xml),
        ("text_after_root", format!("{}after", div("x")), Xml),
        ("second_root", format!("{}{}", div("x"), div("y")), Xml),
        ("unquoted_attribute", div("<p title=x>x</p>"), Xml),
        ("duplicate_attribute", div("<img src=\"a.png\" src=\"javascript:alert(1)\" alt=\"\"/>"), Xml),
        ("lt_in_attribute", div("<p title=\"&lt;ok\">a</p><p title=\"<script>\">x</p>"), Xml),
        // Not well-formed, but quick-xml reads `/onerror` as an attribute name, which is
        // not in the allowed list.
        ("slash_between_attributes", div("<img src=\"a.png\"/onerror=\"alert(1)\"/>"), Txt1),
        ("control_character_reference", div("a&#1;b"), Xml),
        ("nul_character_reference", div("a&#0;b"), Xml),
        ("wrong_root", format!("<p xmlns=\"{NS}\">x</p>"), Xml),
        ("upper_case_root", format!("<DIV xmlns=\"{NS}\">x</DIV>"), Xml),
        ("no_namespace", "<div>x</div>".to_string(), Xml),
        ("wrong_namespace", "<div xmlns=\"http://www.w3.org/1999/xhtml2\">x</div>".to_string(), Xml),
        ("prefixed_root", format!("<h:div xmlns:h=\"{NS}\">x</h:div>"), Xml),
        ("inner_element_leaves_namespace", div("<p xmlns=\"\">x</p>"), Xml),
        ("inner_element_other_namespace", div("<p xmlns=\"urn:evil\">x</p>"), Xml),
        ("not_xml", "just text".to_string(), Xml),
        // txt-2: some non-whitespace content.
        ("whitespace_only", div("  \n\t "), Txt2),
        ("empty_root", format!("<div xmlns=\"{NS}\"/>"), Txt2),
        ("empty_elements_only", div("<p> </p><br/><table><tr><td/></tr></table>"), Txt2),
        ("comment_only", div("<!-- nothing -->"), Txt2),
        ("space_reference_only", div("&#32;&#x9;"), Txt2),
    ]
}

/// Words of the hostile payloads: a diagnostic that names one of them echoes the value.
const PAYLOAD_WORDS: &[&str] = &["alert", "evil", "x.png", "msgbox", "passwd"];

#[test]
fn narratives_with_active_content_or_bad_markup_are_refused_at_the_div() {
    oxehr_testdata::require!();
    let base = example("Patient-example.json");
    assert!(errors(&base).is_empty());
    let mut failures = Vec::new();
    for (name, narrative, expect) in narrative_cases() {
        let mut v = base.clone();
        set(&mut v, "/text/div", Value::String(narrative));
        let all = validate(&v);
        let got: Vec<_> = all
            .iter()
            .filter(|i| i.is_error() != (expect == Txt2))
            .map(|i| (i.code, i.expression.join(","), i.diagnostics.clone()))
            .collect();
        let ok = match expect {
            Ok => all.is_empty(),
            Txt1 | Txt2 | Xml => {
                let (code, rule) = match expect {
                    Txt1 => (IssueCode::Invariant, Some("txt-1")),
                    Txt2 => (IssueCode::Invariant, Some("txt-2")),
                    _ => (IssueCode::Value, None),
                };
                got.len() == 1
                    && all.len() == 1
                    && got[0].0 == code
                    && got[0].1 == "Patient.text.div"
                    && rule.is_none_or(|r| got[0].2.contains(r))
                    && !PAYLOAD_WORDS.iter().any(|w| got[0].2.contains(w))
            }
        };
        if !ok {
            failures.push(format!("{name}: want {expect:?}, got {all:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        narrative_cases().len(),
        failures.join("\n")
    );
}

/// The walker visits every narrative: contained resources and resources in a Bundle.
#[test]
fn narratives_are_checked_in_contained_resources_and_bundle_entries() {
    oxehr_testdata::require!();
    let script = div("<script>alert(1)</script>");
    let mut obs = example("Observation-example.json");
    set(
        &mut obs,
        "/contained",
        json!([{"resourceType": "Patient", "id": "p1",
                "text": {"status": "generated", "div": script}}]),
    );
    set(&mut obs, "/subject", json!({"reference": "#p1"}));
    let got: Vec<_> = errors(&obs).into_iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        got,
        vec![(
            IssueCode::Invariant,
            "Observation.contained[0].text.div".to_string()
        )]
    );

    let mut patient = example("Patient-example.json");
    set(&mut patient, "/text/div", Value::String(script));
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://example.org/fhir/Observation/example",
         "resource": example("Observation-example.json")},
        {"fullUrl": "http://example.org/fhir/Patient/example", "resource": patient}
    ]});
    let got: Vec<_> = errors(&bundle).into_iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        got,
        vec![(
            IssueCode::Invariant,
            "Bundle.entry[1].resource.text.div".to_string()
        )]
    );
}

/// (file, pointer, value, expected location)
fn control_character_cases() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    vec![
        (
            "Patient-example.json",
            "/name/0/family",
            json!("Chal\u{0}mers"),
            "Patient.name[0].family",
        ),
        (
            "Patient-example.json",
            "/name/0/given/0",
            json!("Pe\u{1}ter"),
            "Patient.name[0].given[0]",
        ),
        (
            "Patient-example.json",
            "/telecom/0/value",
            json!("\u{1b}[31m"),
            "Patient.telecom[0].value",
        ),
        (
            "Patient-example.json",
            "/address/0/line/0",
            json!("534\u{b}Erewhon"),
            "Patient.address[0].line[0]",
        ),
        (
            "Patient-example.json",
            "/address/0/city",
            json!("Pleasant\u{c}ville"),
            "Patient.address[0].city",
        ),
        (
            "Patient-example.json",
            "/address/0/district",
            json!("Rainbow\u{7f}\u{1f}"),
            "Patient.address[0].district",
        ),
        (
            "Patient-example.json",
            "/gender",
            json!("ma\u{0}le"),
            "Patient.gender",
        ),
        (
            "Patient-example.json",
            "/id",
            json!("exa\u{0}mple"),
            "Patient.id",
        ),
        (
            "Patient-example.json",
            "/birthDate",
            json!("1974-12-25\u{0}"),
            "Patient.birthDate",
        ),
        (
            "Patient-example.json",
            "/_birthDate/extension/0/valueDateTime",
            json!("1974-12-25T14:35:45-05:00\u{2}"),
            "Patient.birthDate.extension[0].value.ofType(dateTime)",
        ),
        (
            "Patient-example.json",
            "/identifier/0/system",
            json!("urn:oid:1.2.36\u{0}"),
            "Patient.identifier[0].system",
        ),
        (
            "Patient-example.json",
            "/text/div",
            json!(div("a\u{0}b")),
            "Patient.text.div",
        ),
        (
            "Patient-example.json",
            "/photo",
            json!([{"contentType": "image/gif", "data": "R0lGOD\u{0}lh"}]),
            "Patient.photo[0].data",
        ),
        (
            "Patient-example.json",
            "/photo",
            json!([{"contentType": "image/gif", "url": "http://example.org/\u{0}"}]),
            "Patient.photo[0].url",
        ),
        (
            "Observation-example.json",
            "/note",
            json!([{"text": "**bold**\u{0}"}]),
            "Observation.note[0].text",
        ),
        (
            "Observation-example.json",
            "/code/coding/0/code",
            json!("29463\u{3}-7"),
            "Observation.code.coding[0].code",
        ),
        (
            "Observation-example.json",
            "/valueQuantity/unit",
            json!("lbs\u{1f}"),
            "Observation.value.ofType(Quantity).unit",
        ),
    ]
}

#[test]
fn control_characters_are_refused_in_every_string_primitive() {
    oxehr_testdata::require!();
    let mut failures = Vec::new();
    for (file, ptr, val, at) in control_character_cases() {
        let mut v = example(file);
        set(&mut v, ptr, val);
        let got = errors(&v);
        let ok = got.len() == 1
            && got[0].0 == IssueCode::Value
            && got[0].1 == at
            && got[0].2.contains("control character");
        if !ok {
            failures.push(format!("{file} {ptr}: want Value at {at}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The spec's exceptions: tab, CR and LF (and DEL, above U+001F, which the rule does not
/// name) stay valid.
#[test]
fn tab_cr_lf_stay_valid_in_strings() {
    oxehr_testdata::require!();
    let mut v = example("Patient-example.json");
    set(&mut v, "/name/0/family", json!("Chal\tmers\r\nJr\u{7f}"));
    set(&mut v, "/text/div", json!(div("a\tb\r\nc")));
    assert_eq!(errors(&v), vec![]);
}

/// A JSON key reaches storage only when it names an element, so a key holding a control
/// character is already an unknown element.
#[test]
fn keys_with_control_characters_are_unknown_elements() {
    oxehr_testdata::require!();
    let mut v = example("Patient-example.json");
    set(&mut v, "/gen\u{0}der", json!("male"));
    let got = errors(&v);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, IssueCode::Structure);
}

const MIB: usize = 1024 * 1024;

#[test]
fn strings_over_one_mebi_characters_are_too_long() {
    oxehr_testdata::require!();
    let b64 = "AAAA".repeat(MIB / 2);
    // (case, file, pointer, value, expected error location or None for valid)
    let cases: Vec<(&str, &str, &str, Value, Option<&str>)> = vec![
        (
            "string_at_the_limit",
            "Patient-example.json",
            "/name/0/family",
            json!("a".repeat(MIB)),
            None,
        ),
        (
            "string_over_the_limit",
            "Patient-example.json",
            "/name/0/family",
            json!("a".repeat(MIB + 1)),
            Some("Patient.name[0].family"),
        ),
        (
            "string_2_mib",
            "Patient-example.json",
            "/name/0/family",
            json!("a".repeat(2 * MIB)),
            Some("Patient.name[0].family"),
        ),
        // The limit counts characters, not UTF-8 bytes: this is 2 MiB of bytes.
        (
            "two_byte_characters_at_the_limit",
            "Patient-example.json",
            "/name/0/family",
            json!("é".repeat(MIB)),
            None,
        ),
        (
            "two_byte_characters_over_the_limit",
            "Patient-example.json",
            "/name/0/family",
            json!("é".repeat(MIB + 1)),
            Some("Patient.name[0].family"),
        ),
        (
            "uri_over_the_limit",
            "Patient-example.json",
            "/identifier/0/system",
            json!(format!("http://example.org/{}", "a".repeat(MIB))),
            Some("Patient.identifier[0].system"),
        ),
        (
            "url_over_the_limit",
            "Patient-example.json",
            "/photo",
            json!([{"url": format!("http://example.org/{}", "a".repeat(MIB))}]),
            Some("Patient.photo[0].url"),
        ),
        (
            "markdown_over_the_limit",
            "Observation-example.json",
            "/note",
            json!([{"text": "a".repeat(MIB + 1)}]),
            Some("Observation.note[0].text"),
        ),
        (
            "code_over_the_limit",
            "Observation-example.json",
            "/code/coding/0/code",
            json!("a".repeat(MIB + 1)),
            Some("Observation.code.coding[0].code"),
        ),
        // base64Binary has no upper limit in the spec; xhtml is not a string.
        (
            "base64_2_mib",
            "Patient-example.json",
            "/photo",
            json!([{"contentType": "image/gif", "data": b64}]),
            None,
        ),
        (
            "xhtml_2_mib",
            "Patient-example.json",
            "/text/div",
            json!(div(&"a".repeat(2 * MIB))),
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (name, file, ptr, val, want) in cases {
        let mut v = example(file);
        set(&mut v, ptr, val);
        let got: Vec<_> = errors(&v).into_iter().map(|e| (e.0, e.1)).collect();
        let want: Vec<_> = want
            .map(|at| (IssueCode::TooLong, at.to_string()))
            .into_iter()
            .collect();
        if got != want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn decimals_no_f64_can_hold_are_refused() {
    oxehr_testdata::require!();
    // (JSON number text, valid)
    let cases = [
        ("185", true),
        ("0.0", true),
        ("-0", true),
        ("0e-400", true),
        ("0.000e999", true),
        ("1.7976931348623157e308", true),
        ("-1.7976931348623157e308", true),
        ("4.9e-324", true),
        ("2.2250738585072014e-308", true),
        ("0.10000000000000000000000000001", true),
        ("1e400", false),
        ("-1e400", false),
        ("1.8e308", false),
        ("1e-400", false),
        ("-2.5e-330", false),
    ];
    // Plain notation too: 1e-323 is a subnormal f64, 1e-330 rounds to zero.
    let tiny_ok = format!("0.{}1", "0".repeat(322));
    let tiny_zero = format!("0.{}1", "0".repeat(329));
    let cases = cases
        .into_iter()
        .chain([(tiny_ok.as_str(), true), (tiny_zero.as_str(), false)]);
    let at = "Observation.value.ofType(Quantity).value";
    let mut failures = Vec::new();
    for (text, valid) in cases {
        let mut v = example("Observation-example.json");
        let n: Value = serde_json::from_str(text).expect("a JSON number");
        set(&mut v, "/valueQuantity/value", n);
        let got = errors(&v);
        let ok = if valid {
            got.is_empty()
        } else {
            got.len() == 1
                && got[0].0 == IssueCode::Value
                && got[0].1 == at
                && got[0].2.contains("outside the range")
        };
        if !ok {
            failures.push(format!("{text}: want valid={valid}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
