//! Import of the 17 sample documents: counts per section computed from the XML here (with
//! roxmltree, by templateId), spot checks of values read from the XML, the shape of every
//! entry, determinism, and bad input.

use oxehr_ccda::{import, import_bytes, CcdaError, ImportContext, FACT_SYSTEM};
use roxmltree::Node;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::common::{ccda_documents, data_dir, resources};

const V3: &str = "urn:hl7-org:v3";
const T: &str = "2.16.840.1.113883.10.20.22.";

fn kids<'a, 'i>(n: Node<'a, 'i>, name: &'static str) -> impl Iterator<Item = Node<'a, 'i>> {
    n.children().filter(move |c| {
        c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(V3)
    })
}
fn kid<'a, 'i>(n: Node<'a, 'i>, name: &'static str) -> Option<Node<'a, 'i>> {
    kids(n, name).next()
}
fn tpl(n: Node<'_, '_>, roots: &[&str]) -> bool {
    kids(n, "templateId").any(|t| {
        t.attribute("root")
            .is_some_and(|r| roots.iter().any(|x| r == format!("{T}{x}")))
    })
}

/// Which section a `section` element is, by templateId, else by LOINC code.
fn kind(s: Node<'_, '_>) -> &'static str {
    let table: &[(&str, &[&str], &str)] = &[
        ("problems", &["2.5", "2.5.1"], "11450-4"),
        ("medications", &["2.1", "2.1.1"], "10160-0"),
        ("allergies", &["2.6", "2.6.1"], "48765-2"),
        ("results", &["2.3", "2.3.1"], "30954-2"),
        ("vitals", &["2.4", "2.4.1"], "8716-3"),
        ("immunizations", &["2.2", "2.2.1"], "11369-6"),
        ("procedures", &["2.7", "2.7.1"], "47519-4"),
        ("encounters", &["2.22", "2.22.1"], "46240-8"),
        ("social", &["2.17"], "29762-2"),
    ];
    for (k, t, _) in table {
        if tpl(s, t) {
            return k;
        }
    }
    let code = kid(s, "code").and_then(|c| c.attribute("code"));
    table
        .iter()
        .find(|(_, _, c)| Some(*c) == code)
        .map(|(k, _, _)| *k)
        .unwrap_or("other")
}

/// One expected fact: its kind, its own first id, and (code, raw date) for merging.
struct Expect {
    kind: &'static str,
    id: Option<(String, String)>,
    code: String,
    date: String,
}

fn expect(kind: &'static str, n: Node<'_, '_>, code_el: Option<Node<'_, '_>>) -> Expect {
    let id = kids(n, "id")
        .find(|i| i.attribute("nullFlavor").is_none() && i.attribute("root").is_some())
        .map(|i| {
            (
                i.attribute("root").unwrap_or("").to_lowercase(),
                i.attribute("extension").unwrap_or("").to_string(),
            )
        });
    let code = code_el
        .map(|c| {
            format!(
                "{}|{}",
                c.attribute("codeSystem").unwrap_or(""),
                c.attribute("code").unwrap_or("")
            )
        })
        .unwrap_or_default();
    let et = kids(n, "effectiveTime").find(|e| {
        !e.attributes().any(|a| {
            a.name() == "type" && (a.value().ends_with("PIVL_TS") || a.value().ends_with("EIVL_TS"))
        })
    });
    let date = et
        .and_then(|e| {
            e.attribute("value")
                .or_else(|| kid(e, "low").and_then(|l| l.attribute("value")))
        })
        .unwrap_or("")
        .to_string();
    Expect {
        kind,
        id,
        code,
        date,
    }
}

fn entry_acts<'a, 'i>(s: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    kids(s, "entry").filter_map(|e| e.children().find(|c| c.is_element()))
}

fn related<'a, 'i>(n: Node<'a, 'i>, t: &'static [&'static str]) -> Vec<Node<'a, 'i>> {
    kids(n, "entryRelationship")
        .filter_map(|e| kid(e, "observation"))
        .filter(|o| tpl(*o, t))
        .collect()
}

fn walk<'a, 'i>(s: Node<'a, 'i>, out: &mut Vec<Expect>, notes: &mut usize) {
    let k = kind(s);
    let before = out.len();
    for a in entry_acts(s) {
        match k {
            "problems" if tpl(a, &["4.3"]) => {
                for o in related(a, &["4.4"]) {
                    out.push(expect("Condition", o, kid(o, "value")));
                }
            }
            "allergies" if tpl(a, &["4.30"]) => {
                for o in related(a, &["4.7"]) {
                    let sub = kids(o, "participant")
                        .filter_map(|p| {
                            kid(p, "participantRole")
                                .and_then(|r| kid(r, "playingEntity"))
                                .and_then(|e| kid(e, "code"))
                        })
                        .next();
                    out.push(expect("AllergyIntolerance", o, sub));
                }
            }
            "medications" if tpl(a, &["4.16"]) => {
                let c = kid(a, "consumable")
                    .and_then(|c| kid(c, "manufacturedProduct"))
                    .and_then(|m| kid(m, "manufacturedMaterial"))
                    .and_then(|m| kid(m, "code"));
                out.push(expect("MedicationStatement", a, c));
            }
            "immunizations" if tpl(a, &["4.52"]) => {
                let c = kid(a, "consumable")
                    .and_then(|c| kid(c, "manufacturedProduct"))
                    .and_then(|m| kid(m, "manufacturedMaterial"))
                    .and_then(|m| kid(m, "code"));
                out.push(expect("Immunization", a, c));
            }
            "results" if tpl(a, &["4.1"]) => {
                for o in kids(a, "component")
                    .filter_map(|c| kid(c, "observation"))
                    .filter(|o| tpl(*o, &["4.2"]))
                {
                    out.push(expect("Observation:laboratory", o, kid(o, "code")));
                }
                // a report without its own time is dated by its first result
                let mut report = expect("DiagnosticReport", a, kid(a, "code"));
                if report.date.is_empty() {
                    if let Some(first) = kids(a, "component")
                        .filter_map(|c| kid(c, "observation"))
                        .find(|o| tpl(*o, &["4.2"]))
                    {
                        report.date = expect("", first, None).date;
                    }
                }
                out.push(report);
            }
            "results" if tpl(a, &["4.2"]) => {
                out.push(expect("Observation:laboratory", a, kid(a, "code")))
            }
            "vitals" if tpl(a, &["4.26"]) => {
                for o in kids(a, "component")
                    .filter_map(|c| kid(c, "observation"))
                    .filter(|o| tpl(*o, &["4.27"]))
                {
                    out.push(expect("Observation:vital-signs", o, kid(o, "code")));
                }
            }
            "vitals" if tpl(a, &["4.27"]) => {
                out.push(expect("Observation:vital-signs", a, kid(a, "code")))
            }
            "social" if a.tag_name().name() == "observation" => {
                out.push(expect("Observation:social-history", a, kid(a, "code")))
            }
            "procedures" if tpl(a, &["4.12", "4.13", "4.14"]) => {
                out.push(expect("Procedure", a, kid(a, "code")))
            }
            "encounters" if tpl(a, &["4.49"]) => out.push(expect("Encounter", a, kid(a, "code"))),
            _ => {}
        }
    }
    let text = kid(s, "text").map(|t| {
        t.descendants()
            .filter(|d| d.is_text())
            .any(|d| !d.text().unwrap_or("").trim().is_empty())
    });
    if out.len() == before && text == Some(true) && s.attribute("nullFlavor").is_none() {
        *notes += 1;
    }
    for sub in kids(s, "component").filter_map(|c| kid(c, "section")) {
        walk(sub, out, notes);
    }
}

/// Expected resources per kind: every mapped entry, two entries being one fact when they
/// share an id that is theirs alone, or (lacking such an id) their kind, code and date.
fn expected(xml: &str) -> BTreeMap<String, usize> {
    let doc = roxmltree::Document::parse(xml).expect("sample parses");
    let root = doc.root_element();
    let mut list = Vec::new();
    let mut notes = 0;
    if let Some(enc) = kid(root, "componentOf").and_then(|c| kid(c, "encompassingEncounter")) {
        list.push(expect("Encounter", enc, kid(enc, "code")));
    }
    let body = kid(root, "component");
    if let Some(sb) = body.and_then(|b| kid(b, "structuredBody")) {
        for s in kids(sb, "component").filter_map(|c| kid(c, "section")) {
            walk(s, &mut list, &mut notes);
        }
    }
    if body.and_then(|b| kid(b, "nonXMLBody")).is_some() {
        notes += 1;
    }
    let mut uses: HashMap<(String, String), usize> = HashMap::new();
    for e in &list {
        if let Some(id) = &e.id {
            *uses.entry(id.clone()).or_default() += 1;
        }
    }
    let mut keys = HashSet::new();
    let mut counts = BTreeMap::new();
    for e in &list {
        let key = match &e.id {
            Some(id) if uses[id] == 1 => format!("id {id:?}"),
            _ => format!("{} {} {}", e.kind, e.code, e.date),
        };
        if keys.insert(key) {
            *counts.entry(e.kind.to_string()).or_insert(0) += 1;
        }
    }
    if notes > 0 {
        counts.insert("DocumentReference".into(), notes);
    }
    let has_performer = kids(root, "documentationOf")
        .filter_map(|d| kid(d, "serviceEvent"))
        .any(|e| kids(e, "performer").next().is_some());
    if has_performer {
        counts.insert("CareTeam".into(), 1);
    }
    counts.insert("Patient".into(), 1);
    counts
}

fn produced(bundle: &Value) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for r in resources(bundle) {
        let t = r["resourceType"].as_str().unwrap_or("").to_string();
        let k = if t == "Observation" {
            format!(
                "Observation:{}",
                r["category"][0]["coding"][0]["code"].as_str().unwrap_or("")
            )
        } else {
            t
        };
        *c.entry(k).or_insert(0) += 1;
    }
    c
}

#[test]
fn every_sample_imports_with_the_counts_its_xml_has() {
    oxehr_testdata::require!();
    let data = data_dir();
    let docs = ccda_documents(&data);
    assert_eq!(docs.len(), 17, "the 17 sample documents");
    let mut total = 0;
    for path in &docs {
        let xml = std::fs::read_to_string(path).expect("read sample");
        let imported = import(
            &xml,
            &ImportContext {
                organization: Some("Organization/sender".into()),
            },
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let got = produced(&imported.bundle);
        let want = expected(&xml);
        assert_eq!(got, want, "{}", path.display());
        total += got.values().sum::<usize>();
        println!(
            "{}: {} resources {:?}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or(""),
            got.values().sum::<usize>(),
            got
        );
    }
    println!("17 documents, {total} resources");
}

/// FHIR R4 required elements (min 1) of the resources the import writes.
const REQUIRED: &[(&str, &[&str])] = &[
    ("Patient", &[]),
    ("Condition", &["subject"]),
    ("AllergyIntolerance", &["patient", "clinicalStatus"]),
    (
        "MedicationStatement",
        &["status", "medicationCodeableConcept", "subject"],
    ),
    ("Immunization", &["status", "vaccineCode", "patient"]),
    ("Observation", &["status", "code"]),
    ("DiagnosticReport", &["status", "code"]),
    ("Procedure", &["status", "subject"]),
    ("Encounter", &["status", "class"]),
    ("DocumentReference", &["status", "content"]),
    ("CareTeam", &[]),
];

#[test]
fn every_entry_is_a_conditional_create_of_a_well_formed_resource() {
    oxehr_testdata::require!();
    let data = data_dir();
    for path in ccda_documents(&data) {
        let xml = std::fs::read_to_string(&path).expect("read sample");
        let a = import(&xml, &ImportContext::default()).expect("imports");
        let b = import(&xml, &ImportContext::default()).expect("imports");
        assert_eq!(a.bundle, b.bundle, "deterministic: {}", path.display());
        let entries = a.bundle["entry"].as_array().expect("entries");
        let urls: HashSet<&str> = entries
            .iter()
            .filter_map(|e| e["fullUrl"].as_str())
            .collect();
        assert_eq!(urls.len(), entries.len(), "unique fullUrls");
        let patient_url = entries[0]["fullUrl"].as_str().expect("patient first");
        let mut keys = HashSet::new();
        for e in entries {
            let r = &e["resource"];
            let t = r["resourceType"].as_str().expect("resourceType");
            assert!(e["fullUrl"]
                .as_str()
                .is_some_and(|u| u.starts_with("urn:uuid:") && u.len() == 45));
            assert_eq!(e["request"]["method"], "POST");
            assert_eq!(e["request"]["url"], t);
            let req = REQUIRED
                .iter()
                .find(|(rt, _)| *rt == t)
                .unwrap_or_else(|| panic!("unexpected {t}"));
            for f in req.1 {
                assert!(!r[*f].is_null(), "{}: {t} lacks {f}", path.display());
            }
            if t == "Immunization" {
                assert!(
                    r.get("occurrenceDateTime").is_some() || r.get("occurrenceString").is_some()
                );
            }
            if t == "Encounter" {
                assert!(r["class"]["code"].is_string());
            }
            if t != "Patient" {
                let ine = e["request"]["ifNoneExist"].as_str().expect("ifNoneExist");
                assert!(ine.starts_with("identifier="), "{ine}");
                assert!(
                    keys.insert(ine.to_string()),
                    "{}: two entries share {ine}",
                    path.display()
                );
                let subject = r.get("subject").or_else(|| r.get("patient"));
                assert_eq!(
                    subject.and_then(|s| s["reference"].as_str()),
                    Some(patient_url)
                );
                for (k, v) in [
                    ("Observation", "effectiveDateTime"),
                    ("Condition", "onsetDateTime"),
                ] {
                    if t == k {
                        if let Some(d) = r[v].as_str() {
                            assert!(
                                d.len() == 4 || d.len() == 7 || d.len() == 10 || d.len() >= 25,
                                "{d}"
                            );
                        }
                    }
                }
            }
            // references inside the bundle point at entries of the bundle
            let text = r.to_string();
            for part in text.split("\"reference\":\"urn:uuid:").skip(1) {
                let u = format!("urn:uuid:{}", &part[..36]);
                assert!(
                    urls.contains(u.as_str()),
                    "{}: dangling {u}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn values_match_the_xml() {
    oxehr_testdata::require!();
    let data = data_dir();
    for path in ccda_documents(&data) {
        let xml = std::fs::read_to_string(&path).expect("read sample");
        let doc = roxmltree::Document::parse(&xml).expect("parses");
        let root = doc.root_element();
        let pat = kid(root, "recordTarget")
            .and_then(|r| kid(r, "patientRole"))
            .and_then(|r| kid(r, "patient"))
            .expect("patient");
        let family = kid(pat, "name")
            .and_then(|n| kid(n, "family"))
            .and_then(|f| f.text())
            .map(str::trim);
        let birth = kid(pat, "birthTime").and_then(|b| b.attribute("value"));
        let bundle = import(&xml, &ImportContext::default())
            .expect("imports")
            .bundle;
        let p = &bundle["entry"][0]["resource"];
        assert_eq!(
            p["name"][0]["family"].as_str(),
            family,
            "{}",
            path.display()
        );
        if let Some(b) = birth {
            let want = format!("{}-{}-{}", &b[0..4], &b[4..6], &b[6..8]);
            assert_eq!(
                p["birthDate"].as_str(),
                Some(want.as_str()),
                "{}",
                path.display()
            );
        }
        // every PQ value of a Result Observation shows up, value and unit, in an Observation
        let obs: Vec<Value> = resources(&bundle)
            .into_iter()
            .filter(|r| r["resourceType"] == "Observation")
            .collect();
        for o in doc
            .descendants()
            .filter(|n| n.tag_name().name() == "observation" && tpl(*n, &["4.2"]))
        {
            let Some(v) = kid(o, "value").filter(|v| v.attributes().any(|a| a.value() == "PQ"))
            else {
                continue;
            };
            let (Some(val), unit) = (v.attribute("value"), v.attribute("unit")) else {
                continue;
            };
            let code = kid(o, "code").and_then(|c| c.attribute("code"));
            let found = obs.iter().any(|r| {
                r["valueQuantity"]["value"]
                    .as_number()
                    .map(|n| n.to_string())
                    .as_deref()
                    == Some(val.trim())
                    && r["valueQuantity"]["unit"].as_str() == unit
                    && r["code"]["coding"][0]["code"].as_str() == code
            });
            assert!(
                found,
                "{}: result {code:?} {val} {unit:?} not imported",
                path.display()
            );
        }
    }
}

#[test]
fn importing_twice_keys_every_fact_the_same_way() {
    oxehr_testdata::require!();
    let data = data_dir();
    let path = data.join("ccda/hl7-c-cda-examples/CCD__CCD_1__CCD.XML");
    let xml = std::fs::read_to_string(path).expect("read");
    let a = import(&xml, &ImportContext::default()).expect("imports");
    // the same facts in another document (another id, another time) get the same keys
    let other = xml.replacen("extension=\"TT988\"", "extension=\"TT989\"", 1);
    let b = import(&other, &ImportContext::default()).expect("imports");
    let keys = |v: &Value| -> HashSet<String> {
        v["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["request"]["ifNoneExist"].as_str().map(str::to_string))
            .collect()
    };
    let (ka, kb) = (keys(&a.bundle), keys(&b.bundle));
    assert_eq!(ka, kb);
    assert!(
        ka.iter().any(|k| k.contains(FACT_SYSTEM)),
        "facts without ids are keyed by hash"
    );
    assert_eq!(
        a.document.id.as_deref(),
        Some("2.16.840.1.113883.19.5.99999.1^TT988")
    );
    assert_eq!(
        a.document.type_code.as_ref().map(|t| t.0.as_str()),
        Some("34133-9")
    );
    assert_eq!(
        a.document.effective_time.as_deref(),
        Some("2013-08-15T10:30:00-08:00")
    );
}

#[test]
fn embedded_and_referenced_bodies_become_a_document_reference() {
    oxehr_testdata::require!();
    let data = data_dir();
    let xml =
        std::fs::read_to_string(data.join("ccda/ms-fhir-converter/sample.ccda")).expect("read");
    let bundle = import(&xml, &ImportContext::default())
        .expect("imports")
        .bundle;
    let d = &bundle["entry"][1]["resource"];
    assert_eq!(d["resourceType"], "DocumentReference");
    assert_eq!(d["content"][0]["attachment"]["url"], "UD_sample.pdf");
    // the same document with the PDF embedded
    let pdf = "JVBERi0xLjQKJcfsj6IKNSAwIG9iago=";
    let embedded = xml.replacen(
        "<text>\n\t\t\t\t<reference value=\"UD_sample.pdf\"/>\n\t\t\t</text>",
        &format!("<text mediaType=\"application/pdf\" representation=\"B64\">{pdf}</text>"),
        1,
    );
    assert_ne!(embedded, xml, "the sample's nonXMLBody text was found");
    let bundle = import(&embedded, &ImportContext::default())
        .expect("imports")
        .bundle;
    let att = &bundle["entry"][1]["resource"]["content"][0]["attachment"];
    assert_eq!(att["contentType"], "application/pdf");
    assert_eq!(att["data"], pdf);
}

#[test]
fn bad_input_is_an_error_never_a_panic() {
    oxehr_testdata::require!();
    let data = data_dir();
    let xml = std::fs::read_to_string(data.join("ccda/hl7-c-cda-examples/CCD__CCD_2__CCD.xml"))
        .expect("read");
    // truncated anywhere: an error (the document is no longer well-formed)
    let mut cut = 0;
    while cut < xml.len() {
        if xml.is_char_boundary(cut) {
            assert!(
                import(&xml[..cut], &ImportContext::default()).is_err(),
                "truncated at {cut}"
            );
        }
        cut += 997;
    }
    type Case = (&'static [u8], fn(&CcdaError) -> bool);
    let cases: &[Case] = &[
        (b"", |e| matches!(e, CcdaError::NotXml(_))),
        (b"not xml at all", |e| matches!(e, CcdaError::NotXml(_))),
        (b"<html><body/></html>", |e| matches!(e, CcdaError::NotCda(_))),
        (b"<ClinicalDocument/>", |e| matches!(e, CcdaError::NotCda(_))),
        (b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>", |e| matches!(e, CcdaError::Invalid { .. })),
        (b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>", |e| {
            matches!(e, CcdaError::NotXml(_))
        }),
        (b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\xff\xfe</ClinicalDocument>", |e| matches!(e, CcdaError::NotXml(_))),
    ];
    for (input, ok) in cases {
        let e = import_bytes(input, &ImportContext::default()).expect_err("refused");
        assert!(ok(&e), "{:?} gave {e}", String::from_utf8_lossy(input));
    }
    let e = import(
        "<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>",
        &ImportContext::default(),
    )
    .expect_err("no patient");
    assert!(e.to_string().contains("/ClinicalDocument"), "{e}");
    // damaged values inside a real document: dates, numbers, base64
    for (from, to) in [
        ("value=\"20", "value=\"2x"),
        (
            "<value xsi:type=\"PQ\" value=\"",
            "<value xsi:type=\"PQ\" value=\"x",
        ),
        ("codeSystem=\"", "codeSystem=\"&amp;"),
        ("<entry", "<entry><entry"),
    ] {
        let broken = xml.replace(from, to);
        let _ = import(&broken, &ImportContext::default());
    }
}
