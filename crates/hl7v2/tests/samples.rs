//! The 42 sample messages in `../shared/data/hl7v2`: each parses, its header matches
//! values split out of the raw MSH line by hand, and `map` gives the expected outcome.
//! Expected values are pulled from the raw text with plain string splitting, never
//! through the crate's parser.

use std::path::PathBuf;

use oxehr_hl7v2::{map, Context, ErrorCode, MapError, Mapped, Message};
use serde_json::Value;

fn data_dir() -> PathBuf {
    oxehr_testdata::path("hl7v2")
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// A Bundle with these resource types besides the Patient (in any number).
    Bundle(&'static [&'static str]),
    Merge,
    Unsupported(u16),
    Invalid(u16, &'static str),
}
use Outcome::*;

const ENCOUNTER: &[&str] = &["Encounter"];
const LAB: &[&str] = &[
    "ServiceRequest",
    "DiagnosticReport",
    "Observation",
    "Specimen",
];
const LAB_NO_SPM: &[&str] = &["ServiceRequest", "DiagnosticReport", "Observation"];

/// Every message with a PV1 that says anything has its Encounter ("PV1[Encounter]" in
/// each message table the IG maps).
const CASES: &[(&str, Outcome)] = &[
    ("ADT-A01-01.hl7", Bundle(ENCOUNTER)),
    ("ADT-A01-02.hl7", Bundle(ENCOUNTER)),
    ("ADT-A02-01.hl7", Bundle(ENCOUNTER)),
    ("ADT-A03-01.hl7", Bundle(ENCOUNTER)),
    ("ADT-A04-01.hl7", Bundle(ENCOUNTER)),
    ("ADT-A04-02.hl7", Bundle(ENCOUNTER)),
    ("ADT-A05-01.hl7", Bundle(ENCOUNTER)),
    ("ADT-A08-01.hl7", Bundle(ENCOUNTER)),
    ("ADT-A08-02.hl7", Bundle(ENCOUNTER)),
    ("ADT-A11-01.hl7", Bundle(ENCOUNTER)),
    ("ADT-A13-01.hl7", Bundle(ENCOUNTER)),
    ("ADT-A28-01.hl7", Bundle(ENCOUNTER)),
    ("ADT-A31-01.hl7", Bundle(ENCOUNTER)),
    ("ADT-A40-01.hl7", Merge),
    // Two PID/MRG groups: refused rather than half-merged.
    ("ADT-A40-02.hl7", Unsupported(201)),
    ("ADT-A60-01.hl7", Unsupported(201)),
    ("ADT01-23.hl7", Bundle(ENCOUNTER)),
    ("ADT01-28.hl7", Bundle(ENCOUNTER)),
    ("ADT04-23.hl7", Bundle(ENCOUNTER)),
    ("ADT04-251.hl7", Bundle(ENCOUNTER)),
    ("ADT04-28.hl7", Bundle(ENCOUNTER)),
    ("BAR-P01-01.hl7", Unsupported(200)),
    ("DFT-P03-01.hl7", Unsupported(200)),
    (
        "IZ_1_1.1_Admin_Child_Max_Message.hl7",
        Bundle(&["Immunization"]),
    ),
    ("LAB-ORM-1.hl7", Unsupported(200)),
    ("LAB-ORU-1.hl7", Bundle(LAB)),
    ("LAB-ORU-2.hl7", Bundle(LAB)),
    ("LRI_2.0-NG_CBC_Typ_Message.hl7", Bundle(LAB)),
    ("MDHHS-OML-O21-1.hl7", Unsupported(200)),
    (
        "MDM-T02-01.hl7",
        Bundle(&["DocumentReference", "Encounter"]),
    ),
    // Named MDM but MSH-9 says ADT^A01.
    ("MDM_01.hl7", Bundle(ENCOUNTER)),
    ("OML-O21-01.hl7", Unsupported(200)),
    ("ORM-O01-01.hl7", Unsupported(200)),
    // Its second OBX (an ED) has no OBX-3, and Observation.code is required.
    ("ORU-R01-01.hl7", Invalid(101, "OBX^2^3")),
    ("ORU-R01-RMGEAD.hl7", Bundle(LAB_NO_SPM)),
    ("OUL-R22-01.hl7", Unsupported(200)),
    ("PC1-Problem-Add-v2.3.1.hl7", Unsupported(200)),
    ("RDE-O11-01.hl7", Unsupported(200)),
    ("REF-I12-01.hl7", Unsupported(200)),
    ("SIU-S12-01.hl7", Bundle(&["Appointment", "Encounter"])),
    ("VXU-V04-01.hl7", Bundle(&["Encounter", "Immunization"])),
    ("VXU.hl7", Bundle(&["Immunization"])),
];

fn ctx() -> Context {
    Context {
        organization: "Organization/sender".to_string(),
        local_system_base: "urn:oxehr:org:sender:".to_string(),
    }
}

/// The raw segments, split by hand: BOM stripped, CR/LF/CRLF line ends.
fn raw_segments(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.trim_start_matches('\u{feff}')
        .split(['\r', '\n'])
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Field `n` of a raw segment (HL7 numbering; for MSH, n >= 2).
fn raw_field(seg: &str, n: usize) -> String {
    let parts: Vec<&str> = seg.split('|').collect();
    let index = if seg.starts_with("MSH") { n - 1 } else { n };
    parts.get(index).copied().unwrap_or("").to_string()
}

fn comp(field: &str, n: usize) -> String {
    field
        .split('~')
        .next()
        .unwrap_or("")
        .split('^')
        .nth(n - 1)
        .unwrap_or("")
        .split('&')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn the_table_covers_every_sample() {
    oxehr_testdata::require!();
    let mut files: Vec<String> = std::fs::read_dir(data_dir())
        .expect("data dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".hl7"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
    assert_eq!(files.len(), 42);
}

#[test]
fn every_sample_parses_and_its_header_matches_the_raw_msh() {
    oxehr_testdata::require!();
    for (file, _) in CASES {
        let bytes = read(file);
        let msg = Message::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let raw = raw_segments(&bytes);
        assert_eq!(msg.segments().len(), raw.len(), "{file}: segment count");
        let msh = &raw[0];
        let h = msg.header();
        let check =
            |got: &str, n: usize, what: &str| assert_eq!(got, raw_field(msh, n), "{file}: {what}");
        check(&h.sending_application.raw, 3, "MSH-3");
        check(&h.sending_facility.raw, 4, "MSH-4");
        check(&h.receiving_application.raw, 5, "MSH-5");
        check(&h.receiving_facility.raw, 6, "MSH-6");
        check(&h.date_time, 7, "MSH-7");
        check(&h.control_id, 10, "MSH-10");
        assert_eq!(
            h.sending_application.namespace_id,
            comp(&raw_field(msh, 3), 1),
            "{file}"
        );
        assert_eq!(
            h.sending_facility.namespace_id,
            comp(&raw_field(msh, 4), 1),
            "{file}"
        );
        assert_eq!(
            h.receiving_application.namespace_id,
            comp(&raw_field(msh, 5), 1),
            "{file}"
        );
        assert_eq!(
            h.receiving_facility.namespace_id,
            comp(&raw_field(msh, 6), 1),
            "{file}"
        );
        let msh9 = raw_field(msh, 9);
        assert_eq!(h.message_code, comp(&msh9, 1), "{file}");
        assert_eq!(h.trigger_event, comp(&msh9, 2), "{file}");
        assert_eq!(h.message_structure, comp(&msh9, 3), "{file}");
        assert_eq!(h.processing_id, comp(&raw_field(msh, 11), 1), "{file}");
        assert_eq!(h.version, comp(&raw_field(msh, 12), 1), "{file}");
        assert_eq!(h.encoding.msh2(), raw_field(msh, 2), "{file}");
        assert_eq!(h.encoding.field, '|');
    }
}

fn outcome_of(file: &str) -> Result<Mapped, MapError> {
    let msg = Message::parse(&read(file)).expect("parses");
    map(&msg, &ctx())
}

#[test]
fn every_sample_maps_to_its_expected_outcome() {
    oxehr_testdata::require!();
    for (file, expected) in CASES {
        let got = outcome_of(file);
        match (expected, &got) {
            (Bundle(types), Ok(Mapped::Bundle(bundle))) => {
                let entries = bundle["entry"].as_array().expect("entries");
                let mut present: Vec<&str> = entries
                    .iter()
                    .skip(1)
                    .filter_map(|e| e["resource"]["resourceType"].as_str())
                    .collect();
                present.sort_unstable();
                present.dedup();
                let mut want = types.to_vec();
                want.sort_unstable();
                assert_eq!(present, want, "{file}");
            }
            (Merge, Ok(Mapped::Merge { .. })) => {}
            (Unsupported(code), Err(MapError::Unsupported { error, text })) => {
                assert_eq!(error.code(), *code, "{file}");
                assert!(!text.is_empty());
            }
            (
                Invalid(code, location),
                Err(MapError::Invalid {
                    error,
                    location: loc,
                    ..
                }),
            ) => {
                assert_eq!(error.code(), *code, "{file}");
                assert_eq!(loc.as_deref(), Some(*location), "{file}");
            }
            _ => panic!("{file}: expected {expected:?}, got {got:?}"),
        }
    }
}

fn bundles() -> Vec<(&'static str, Vec<String>, Value)> {
    CASES
        .iter()
        .filter_map(|(file, _)| match outcome_of(file) {
            Ok(Mapped::Bundle(b)) => Some((*file, raw_segments(&read(file)), b)),
            _ => None,
        })
        .collect()
}

fn resources<'a>(bundle: &'a Value, type_: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| &e["resource"])
                .filter(|r| r["resourceType"] == type_)
                .collect()
        })
        .unwrap_or_default()
}

fn first_raw<'a>(raw: &'a [String], name: &str) -> &'a str {
    raw.iter()
        .find(|s| s.starts_with(&format!("{name}|")))
        .map_or("", String::as_str)
}

#[test]
fn bundles_carry_the_patient_from_the_raw_pid() {
    oxehr_testdata::require!();
    for (file, raw, bundle) in bundles() {
        let pid = first_raw(&raw, "PID");
        let first = &bundle["entry"][0];
        assert_eq!(first["resource"]["resourceType"], "Patient", "{file}");
        assert_eq!(first["request"]["method"], "PUT", "{file}");
        let url = first["request"]["url"].as_str().expect("url");
        assert!(url.starts_with("Patient?identifier="), "{file}");
        // The key identifier: the first PID-3 repetition typed MR, else the first.
        let pid3 = raw_field(pid, 3);
        let reps: Vec<&str> = pid3.split('~').collect();
        let key = reps
            .iter()
            .find(|r| r.split('^').nth(4) == Some("MR"))
            .or(reps.first())
            .map(|r| comp(r, 1))
            .expect("PID-3");
        assert!(
            url.ends_with(&format!("%7C{key}")),
            "{file}: {url} vs {key}"
        );
        let patient = &first["resource"];
        let ids: Vec<&str> = patient["identifier"]
            .as_array()
            .expect("identifiers")
            .iter()
            .filter_map(|i| i["value"].as_str())
            .collect();
        assert!(ids.contains(&key.as_str()), "{file}");
        assert_eq!(
            ids.len(),
            reps.iter().filter(|r| !comp(r, 1).is_empty()).count(),
            "{file}"
        );
        let family = comp(&raw_field(pid, 5), 1);
        assert_eq!(
            patient["name"][0]["family"].as_str(),
            Some(family.as_str()),
            "{file}"
        );
        let dob = raw_field(pid, 7);
        let want = format!("{}-{}-{}", &dob[0..4], &dob[4..6], &dob[6..8]);
        assert_eq!(patient["birthDate"].as_str(), Some(want.as_str()), "{file}");
    }
}

#[test]
fn lab_results_map_every_obx_and_the_first_numeric_value() {
    oxehr_testdata::require!();
    let mut checked_nm = 0;
    for (file, raw, bundle) in bundles() {
        if comp(&raw_field(&raw[0], 9), 1) != "ORU" {
            continue;
        }
        let obx: Vec<&String> = raw.iter().filter(|s| s.starts_with("OBX|")).collect();
        let observations = resources(&bundle, "Observation");
        assert_eq!(observations.len(), obx.len(), "{file}");
        // ORU-R01-RMGEAD has a single SN result and no NM.
        if let Some((index, nm)) = obx
            .iter()
            .enumerate()
            .find(|(_, s)| raw_field(s, 2) == "NM" && !comp(&raw_field(s, 5), 1).is_empty())
        {
            let q = &observations[index]["valueQuantity"];
            assert_eq!(q["value"].to_string(), comp(&raw_field(nm, 5), 1), "{file}");
            assert_eq!(
                q["unit"].as_str(),
                Some(comp(&raw_field(nm, 6), 1).as_str()),
                "{file}"
            );
            checked_nm += 1;
        }
        let reports = resources(&bundle, "DiagnosticReport");
        let obr = raw.iter().filter(|s| s.starts_with("OBR|")).count();
        assert_eq!(reports.len(), obr, "{file}");
    }
    assert_eq!(
        checked_nm, 3,
        "LAB-ORU-1, LAB-ORU-2 and the LRI CBC have NM results"
    );
}

#[test]
fn immunizations_appointments_and_documents_carry_their_keys() {
    oxehr_testdata::require!();
    for (file, raw, bundle) in bundles() {
        match comp(&raw_field(&raw[0], 9), 1).as_str() {
            "VXU" => {
                let rxa = first_raw(&raw, "RXA");
                let imm = resources(&bundle, "Immunization");
                assert_eq!(
                    imm.len(),
                    raw.iter().filter(|s| s.starts_with("RXA|")).count()
                );
                let code = comp(&raw_field(rxa, 5), 1);
                assert_eq!(
                    imm[0]["vaccineCode"]["coding"][0]["code"].as_str(),
                    Some(code.as_str()),
                    "{file}"
                );
            }
            "SIU" => {
                let sch = first_raw(&raw, "SCH");
                let id = Some(comp(&raw_field(sch, 2), 1))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| comp(&raw_field(sch, 1), 1));
                let appt = resources(&bundle, "Appointment");
                assert_eq!(
                    appt[0]["identifier"][0]["value"].as_str(),
                    Some(id.as_str()),
                    "{file}"
                );
            }
            "MDM" => {
                let txa = first_raw(&raw, "TXA");
                let id = comp(&raw_field(txa, 12), 1);
                let doc = resources(&bundle, "DocumentReference");
                assert_eq!(
                    doc[0]["masterIdentifier"]["value"].as_str(),
                    Some(id.as_str()),
                    "{file}"
                );
            }
            _ => {}
        }
    }
}

fn assert_no_empty_values(file: &str, path: &str, v: &Value) {
    match v {
        Value::Null => panic!("{file}: null at {path}"),
        Value::String(s) => assert!(!s.is_empty(), "{file}: empty string at {path}"),
        Value::Array(a) => {
            assert!(!a.is_empty(), "{file}: empty array at {path}");
            for (i, x) in a.iter().enumerate() {
                assert_no_empty_values(file, &format!("{path}[{i}]"), x);
            }
        }
        Value::Object(o) => {
            assert!(!o.is_empty(), "{file}: empty object at {path}");
            for (k, x) in o {
                assert_no_empty_values(file, &format!("{path}.{k}"), x);
            }
        }
        _ => {}
    }
}

fn collect_references<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("reference", Value::String(s)) => out.push(s),
                    _ => collect_references(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_references(x, out)),
        _ => {}
    }
}

#[test]
fn bundle_entries_are_well_formed() {
    oxehr_testdata::require!();
    for (file, _, bundle) in bundles() {
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "transaction");
        let entries = bundle["entry"].as_array().expect("entries");
        let full_urls: Vec<&str> = entries
            .iter()
            .filter_map(|e| e["fullUrl"].as_str())
            .collect();
        assert_eq!(full_urls.len(), entries.len(), "{file}");
        let mut conditional = Vec::new();
        for e in entries {
            let url = e["fullUrl"].as_str().expect("fullUrl");
            assert!(
                url.starts_with("urn:uuid:") && url.len() == 45,
                "{file}: {url}"
            );
            let type_ = e["resource"]["resourceType"]
                .as_str()
                .expect("resourceType");
            let method = e["request"]["method"].as_str().expect("method");
            let target = e["request"]["url"].as_str().expect("request url");
            match method {
                "POST" => assert_eq!(target, type_, "{file}"),
                "PUT" => {
                    assert!(
                        target.starts_with(&format!("{type_}?identifier=")),
                        "{file}"
                    );
                    conditional.push(target);
                }
                _ => panic!("{file}: method {method}"),
            }
            assert_no_empty_values(file, type_, &e["resource"]);
            assert!(e["resource"].get("id").is_none(), "{file}");
            assert!(!["Organization", "Practitioner"].contains(&type_), "{file}");
        }
        let count = conditional.len();
        conditional.sort_unstable();
        conditional.dedup();
        assert_eq!(conditional.len(), count, "{file}: a conditional URL twice");
        let mut refs = Vec::new();
        collect_references(&bundle, &mut refs);
        for r in refs {
            assert!(
                full_urls.contains(&r) || r == "Organization/sender",
                "{file}: dangling reference {r}"
            );
        }
    }
}

#[test]
fn required_codes_are_from_their_value_sets() {
    oxehr_testdata::require!();
    let allowed: &[(&str, &str, &[&str])] = &[
        (
            "Encounter",
            "status",
            &[
                "planned",
                "arrived",
                "triaged",
                "in-progress",
                "onleave",
                "finished",
                "cancelled",
                "entered-in-error",
                "unknown",
            ],
        ),
        (
            "Observation",
            "status",
            &[
                "registered",
                "preliminary",
                "final",
                "amended",
                "corrected",
                "cancelled",
                "entered-in-error",
                "unknown",
            ],
        ),
        (
            "DiagnosticReport",
            "status",
            &[
                "registered",
                "partial",
                "preliminary",
                "final",
                "amended",
                "corrected",
                "appended",
                "cancelled",
                "entered-in-error",
                "unknown",
            ],
        ),
        (
            "Immunization",
            "status",
            &["completed", "entered-in-error", "not-done"],
        ),
        (
            "Appointment",
            "status",
            &[
                "proposed",
                "pending",
                "booked",
                "arrived",
                "fulfilled",
                "cancelled",
                "noshow",
                "entered-in-error",
                "checked-in",
                "waitlist",
            ],
        ),
        (
            "DocumentReference",
            "status",
            &["current", "superseded", "entered-in-error"],
        ),
        (
            "ServiceRequest",
            "status",
            &[
                "draft",
                "active",
                "on-hold",
                "revoked",
                "completed",
                "entered-in-error",
                "unknown",
            ],
        ),
        ("Patient", "gender", &["male", "female", "other", "unknown"]),
    ];
    for (file, _, bundle) in bundles() {
        for (type_, element, codes) in allowed {
            for r in resources(&bundle, type_) {
                let v = r[*element].as_str();
                if *element == "status" {
                    assert!(v.is_some(), "{file}: {type_}.{element} missing");
                }
                if let Some(v) = v {
                    assert!(codes.contains(&v), "{file}: {type_}.{element} = {v}");
                }
            }
        }
        for e in resources(&bundle, "Encounter") {
            assert!(e["class"]["code"].is_string(), "{file}");
        }
        for a in resources(&bundle, "Appointment") {
            let ps = a["participant"].as_array().expect("participants");
            assert!(ps.iter().all(|p| p["status"].is_string()), "{file}");
        }
        for d in resources(&bundle, "DocumentReference") {
            assert!(d["content"][0]["attachment"].is_object(), "{file}");
        }
    }
}

#[test]
fn merge_names_survivor_and_merged_identifiers() {
    oxehr_testdata::require!();
    let raw = raw_segments(&read("ADT-A40-01.hl7"));
    match outcome_of("ADT-A40-01.hl7") {
        Ok(Mapped::Merge { survivor, merged }) => {
            assert_eq!(
                survivor[0].1,
                comp(&raw_field(first_raw(&raw, "PID"), 3), 1)
            );
            assert_eq!(merged[0].1, comp(&raw_field(first_raw(&raw, "MRG"), 1), 1));
            assert_eq!(survivor[0].0, "urn:oxehr:org:sender:BCBS");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_required_data_is_invalid_with_a_location() {
    let cases = [
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPV1|1|I", ErrorCode::RequiredFieldMissing, Some("PID")),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||\rPV1|1|I", ErrorCode::RequiredFieldMissing, Some("PID^1^3")),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||X^^^H^MR||DOE||19991340\rPV1|1|I", ErrorCode::DataTypeError, Some("PID^1^7")),
        ("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5\rPID|1||X^^^H^MR\rOBR|1||F1|CODE^Name^LN\rOBX|1|NM|||abc", ErrorCode::RequiredFieldMissing, Some("OBX^1^3")),
        ("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5\rPID|1||X^^^H^MR\rOBR|1||F1|CODE^Name^LN\rOBX|1|NM|C^N^LN||abc", ErrorCode::DataTypeError, Some("OBX^1^5")),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||X^^^H^MR||DOE|||Q\rPV1|1|I", ErrorCode::TableValueNotFound, Some("PID^1^8")),
    ];
    for (text, code, location) in cases {
        let msg = Message::parse_str(text).expect("parses");
        match map(&msg, &ctx()) {
            Err(MapError::Invalid {
                error,
                location: l,
                text,
            }) => {
                assert_eq!(error, code, "{text}");
                assert_eq!(l.as_deref(), location, "{text}");
                assert!(!text.contains("DOE"));
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn reprocessing_gives_the_same_conditional_urls() {
    oxehr_testdata::require!();
    for file in [
        "LRI_2.0-NG_CBC_Typ_Message.hl7",
        "VXU.hl7",
        "ADT-A01-01.hl7",
    ] {
        let urls = |m: Result<Mapped, MapError>| -> Vec<String> {
            match m {
                Ok(Mapped::Bundle(b)) => b["entry"]
                    .as_array()
                    .expect("entries")
                    .iter()
                    .map(|e| e["request"]["url"].as_str().unwrap_or_default().to_string())
                    .collect(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(urls(outcome_of(file)), urls(outcome_of(file)), "{file}");
    }
}
