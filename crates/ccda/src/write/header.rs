//! The CCD header: US Realm Header (V3) 2.16.840.1.113883.10.20.22.1.1:2015-08-01 with
//! the CCD (V3) template 2.16.840.1.113883.10.20.22.1.2:2015-08-01 — recordTarget from
//! the Patient, author and custodian from the exporting organization, and the
//! documentationOf/serviceEvent the CCD requires, spanning the record.

use serde_json::Value;

use super::dt::{self, s};
use super::xml::W;
use super::ExportContext;
use crate::codes;
use crate::time;

fn addr(w: &mut W, a: Option<&Value>) {
    let Some(a) = a else {
        w.empty("addr", &[("nullFlavor", "NI")]);
        return;
    };
    let u = match s(a, "/use") {
        Some("home") => "HP",
        Some("work") => "WP",
        Some("temp") => "TMP",
        Some("old") => "OLD",
        _ => "HP",
    };
    w.open("addr", &[("use", u)]);
    let lines: Vec<&str> = a
        .get("line")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if lines.is_empty() {
        w.empty("streetAddressLine", &[("nullFlavor", "NI")]);
    }
    for l in lines {
        w.leaf("streetAddressLine", &[], l);
    }
    for (k, el) in [
        ("city", "city"),
        ("state", "state"),
        ("postalCode", "postalCode"),
        ("country", "country"),
    ] {
        match s(a, &format!("/{k}")) {
            Some(v) => w.leaf(el, &[], v),
            None if k != "country" => w.empty(el, &[("nullFlavor", "NI")]),
            None => {}
        }
    }
    w.close("addr");
}

fn telecoms(w: &mut W, r: &Value) {
    let mut n = 0;
    for t in r
        .get("telecom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(v) = s(t, "/value") else { continue };
        let scheme = match s(t, "/system") {
            Some("email") => "mailto:",
            Some("fax") => "fax:",
            Some("url") => "",
            _ => "tel:",
        };
        let value = format!("{scheme}{}", v.replace(' ', ""));
        let u = match s(t, "/use") {
            Some("home") => Some("HP"),
            Some("work") => Some("WP"),
            Some("mobile") => Some("MC"),
            Some("temp") => Some("TMP"),
            _ => None,
        };
        match u {
            Some(u) => w.empty("telecom", &[("use", u), ("value", &value)]),
            None => w.empty("telecom", &[("value", &value)]),
        }
        n += 1;
    }
    if n == 0 {
        w.empty("telecom", &[("nullFlavor", "NI")]);
    }
}

/// A HumanName as a US Realm Person Name (PN.US.FIELDED).
fn name(w: &mut W, n: Option<&Value>) {
    let Some(n) = n else {
        w.empty("name", &[("nullFlavor", "NI")]);
        return;
    };
    let u = if s(n, "/use") == Some("nickname") {
        "P"
    } else {
        "L"
    };
    w.open("name", &[("use", u)]);
    let parts = |k: &str| -> Vec<String> {
        n.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    for p in parts("prefix") {
        w.leaf("prefix", &[], &p);
    }
    let given = parts("given");
    if given.is_empty() {
        w.empty("given", &[("nullFlavor", "NI")]);
    }
    for g in given {
        w.leaf("given", &[], &g);
    }
    match s(n, "/family") {
        Some(f) => w.leaf("family", &[], f),
        None => w.empty("family", &[("nullFlavor", "NI")]),
    }
    for p in parts("suffix") {
        w.leaf("suffix", &[], &p);
    }
    w.close("name");
}

/// The Patient's identifiers as II; an identifier whose system has no OID or UUID is
/// skipped (CDA cannot carry a URL-named system), and none at all is `NI`.
fn patient_ids(w: &mut W, p: &Value) {
    let mut n = 0;
    for i in p
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(sys), Some(v)) = (s(i, "/system"), s(i, "/value")) else {
            continue;
        };
        let sys = match sys {
            "http://hl7.org/fhir/sid/us-ssn" => "urn:oid:2.16.840.1.113883.4.1",
            "http://hl7.org/fhir/sid/us-npi" => "urn:oid:2.16.840.1.113883.4.6",
            s => s,
        };
        if let Some((root, ext)) = codes::ii(sys, v) {
            match ext {
                Some(e) => w.empty("id", &[("root", &root), ("extension", &e)]),
                None => w.empty("id", &[("root", &root)]),
            }
            n += 1;
        }
    }
    if n == 0 {
        match s(p, "/id").filter(|i| codes::is_uuid(i)) {
            Some(id) => w.empty("id", &[("root", id)]),
            None => w.empty("id", &[("nullFlavor", "NI")]),
        }
    }
}

/// US Core race/ethnicity `ombCategory` as a CDC Race & Ethnicity code, else `UNK`.
fn race(w: &mut W, p: &Value, tag: &str, url: &str) {
    let coding = p
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| s(e, "/url") == Some(url))
        .flat_map(|e| {
            e.get("extension")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|e| s(e, "/url") == Some("ombCategory"))
        .and_then(|e| e.get("valueCoding"));
    match coding.and_then(|c| Some((s(c, "/code")?, s(c, "/display").unwrap_or("")))) {
        Some((code, disp)) => w.empty(
            tag,
            &[
                ("code", code),
                ("codeSystem", "2.16.840.1.113883.6.238"),
                ("displayName", disp),
            ],
        ),
        None => w.empty(tag, &[("nullFlavor", "UNK")]),
    }
}

fn organization(w: &mut W, tag: &str, org: Option<&Value>) {
    w.open(tag, &[]);
    match org {
        Some(o) => dt::ids(w, o),
        None => w.empty("id", &[("nullFlavor", "NI")]),
    }
    match org.and_then(|o| s(o, "/name")) {
        Some(n) => w.leaf("name", &[], n),
        None => w.empty("name", &[("nullFlavor", "NI")]),
    }
    match org {
        Some(o) => {
            let mut t = W::new();
            telecoms(&mut t, o);
            // representedCustodianOrganization allows one telecom only
            let first = t.out.find("/>").map(|i| &t.out[..i + 2]).unwrap_or("");
            w.out.push_str(first);
            addr(w, o.pointer("/address/0"));
        }
        None => {
            w.empty("telecom", &[("nullFlavor", "NI")]);
            w.empty("addr", &[("nullFlavor", "NI")]);
        }
    }
    w.close(tag);
}

pub(crate) fn header(w: &mut W, p: &Value, ctx: &ExportContext, first: Option<&str>) {
    let now = time::from_fhir(&ctx.now).unwrap_or_default();
    w.empty("realmCode", &[("code", "US")]);
    w.empty(
        "typeId",
        &[
            ("root", "2.16.840.1.113883.1.3"),
            ("extension", "POCD_HD000040"),
        ],
    );
    w.template("2.16.840.1.113883.10.20.22.1.1", Some("2015-08-01"));
    w.template("2.16.840.1.113883.10.20.22.1.2", Some("2015-08-01"));
    w.empty("id", &[("root", &ctx.document_id)]);
    w.empty(
        "code",
        &[
            ("code", "34133-9"),
            ("codeSystem", "2.16.840.1.113883.6.1"),
            ("codeSystemName", "LOINC"),
            ("displayName", "Summarization of Episode Note"),
        ],
    );
    w.leaf("title", &[], "Continuity of Care Document");
    w.empty("effectiveTime", &[("value", &now)]);
    w.empty(
        "confidentialityCode",
        &[
            ("code", "N"),
            ("codeSystem", "2.16.840.1.113883.5.25"),
            ("displayName", "normal"),
        ],
    );
    w.empty("languageCode", &[("code", "en-US")]);
    // recordTarget
    w.open("recordTarget", &[]);
    w.open("patientRole", &[]);
    patient_ids(w, p);
    let addresses: Vec<&Value> = p
        .get("address")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if addresses.is_empty() {
        addr(w, None);
    }
    for a in addresses {
        addr(w, Some(a));
    }
    telecoms(w, p);
    w.open("patient", &[]);
    let names: Vec<&Value> = p
        .get("name")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if names.is_empty() {
        name(w, None);
    }
    for n in names {
        name(w, Some(n));
    }
    match s(p, "/gender") {
        Some(g @ ("male" | "female")) => w.empty(
            "administrativeGenderCode",
            &[
                ("code", if g == "male" { "M" } else { "F" }),
                ("codeSystem", "2.16.840.1.113883.5.1"),
            ],
        ),
        Some("other") => w.empty(
            "administrativeGenderCode",
            &[("code", "UN"), ("codeSystem", "2.16.840.1.113883.5.1")],
        ),
        _ => w.empty("administrativeGenderCode", &[("nullFlavor", "UNK")]),
    }
    dt::ts(w, "birthTime", s(p, "/birthDate"));
    race(
        w,
        p,
        "raceCode",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
    );
    race(
        w,
        p,
        "ethnicGroupCode",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
    );
    w.close("patient");
    w.close("patientRole");
    w.close("recordTarget");
    // author: this system, on behalf of the exporting organization
    let org = ctx.author_organization.as_ref();
    w.open("author", &[]);
    w.empty("time", &[("value", &now)]);
    w.open("assignedAuthor", &[]);
    match org {
        Some(o) => dt::ids(w, o),
        None => w.empty("id", &[("nullFlavor", "NI")]),
    }
    addr(w, org.and_then(|o| o.pointer("/address/0")));
    match org {
        Some(o) => telecoms(w, o),
        None => w.empty("telecom", &[("nullFlavor", "NI")]),
    }
    w.open("assignedAuthoringDevice", &[]);
    w.leaf("manufacturerModelName", &[], "oxehr");
    w.leaf("softwareName", &[], "oxehr");
    w.close("assignedAuthoringDevice");
    // a device author needs the organization it writes for (CONF:1198-8456)
    organization(w, "representedOrganization", org);
    w.close("assignedAuthor");
    w.close("author");
    w.open("custodian", &[]);
    w.open("assignedCustodian", &[]);
    organization(w, "representedCustodianOrganization", org);
    w.close("assignedCustodian");
    w.close("custodian");
    w.open("documentationOf", &[]);
    w.open("serviceEvent", &[("classCode", "PCPR")]);
    dt::ivl(
        w,
        "effectiveTime",
        first.or(Some(&ctx.now)),
        Some(&ctx.now),
        &[],
    );
    w.close("serviceEvent");
    w.close("documentationOf");
}
