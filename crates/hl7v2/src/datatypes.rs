//! HL7 v2 data types to FHIR data types: CX, XPN, XAD, XTN, CWE/CE, XCN, HD and DTM.
//!
//! Each function cites the V2-to-FHIR IG table it follows (files under
//! `v2-to-fhir-mappings/datatypes/` and `codesystems/`). Empty values are never
//! written: FHIR forbids empty strings, arrays and objects, so every builder returns
//! `None` rather than an empty element. The HL7 null `""` counts as empty.
//!
//! # Dates
//!
//! A DTM with a time becomes a FHIR `dateTime`, which needs seconds and an offset
//! whenever it has a time. Missing minutes/seconds are filled with `00`. A missing
//! offset is taken from MSH-7 when MSH-7 has one (the sender's local offset), else
//! `+00:00`. A DTM without time keeps its precision (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`).
//! An impossible date (month 13, 30 February, hour 25, ...) is an error (0357 code 102).

use serde_json::{json, Map, Value};

use crate::parse::{Repetition, Segment};

/// Trimmed text, or `None` when empty or the HL7 null `""`.
pub fn nz(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty() && t != "\"\"").then_some(t)
}

/// Build a JSON object from `(key, value)` pairs, leaving out `None`, empty strings,
/// empty arrays and empty objects. `None` when nothing is left.
pub fn obj(pairs: Vec<(&str, Option<Value>)>) -> Option<Value> {
    let mut m = Map::new();
    for (k, v) in pairs {
        if let Some(v) = v.filter(|v| !is_empty_value(v)) {
            m.insert(k.to_string(), v);
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// A non-empty JSON array, or `None`.
pub fn arr(items: Vec<Value>) -> Option<Value> {
    let items: Vec<Value> = items.into_iter().filter(|v| !is_empty_value(v)).collect();
    (!items.is_empty()).then_some(Value::Array(items))
}

/// A JSON string of non-empty text, or `None`.
pub fn s(text: &str) -> Option<Value> {
    nz(text).map(|t| Value::String(t.to_string()))
}

/// True for `""`, `[]`, `{}` and null.
pub fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Percent-encode everything outside `[A-Za-z0-9._-]`.
pub fn percent_encode(text: &str) -> String {
    // The identifier systems made from it are stored: this set must not change.
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'_')
        .remove(b'-');
    percent_encoding::utf8_percent_encode(text, KEEP).to_string()
}

fn is_oid(s: &str) -> bool {
    let mut parts = s.split('.');
    let first_ok = matches!(parts.next(), Some("0" | "1" | "2"));
    let rest: Vec<&str> = parts.collect();
    first_ok
        && !rest.is_empty()
        && rest.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An identifier system from an HD (namespace id, universal id, universal id type).
///
/// Follows "HL7 Data Type - FHIR R4_ HD[uri]": ISO → `urn:oid:`, UUID → `urn:uuid:`,
/// URI → the URI; otherwise `local_base` + the percent-encoded namespace id (or
/// universal id), or `local_base` + `id` when the HD is empty.
pub fn hd_system(namespace: &str, universal: &str, kind: &str, local_base: &str) -> String {
    let universal = universal.trim();
    match kind.trim().to_ascii_uppercase().as_str() {
        "ISO" if is_oid(universal) => return format!("urn:oid:{universal}"),
        "UUID" if is_uuid(universal) => return format!("urn:uuid:{}", universal.to_lowercase()),
        "URI" if universal.contains(':') && !universal.contains(char::is_whitespace) => {
            return universal.to_string()
        }
        _ => {}
    }
    match nz(namespace).or(nz(universal)) {
        Some(ns) => format!("{local_base}{}", percent_encode(ns)),
        None => format!("{local_base}id"),
    }
}

/// CX → Identifier, following "HL7 Data Type - FHIR R4_ CX[Identifier] - Sheet1.csv":
/// CX.1 value, CX.4 system (see [`hd_system`]), CX.5 type (v2-0203).
/// Returns `(system, value, Identifier)`, or `None` when CX.1 is empty.
pub fn cx_identifier(rep: &Repetition, local_base: &str) -> Option<(String, String, Value)> {
    let value = nz(rep.comp(1))?.to_string();
    let system = hd_system(rep.sub(4, 1), rep.sub(4, 2), rep.sub(4, 3), local_base);
    let type_ = nz(rep.comp(5)).map(|t| {
        json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": t}]})
    });
    let ident = obj(vec![
        ("type", type_),
        ("system", Some(json!(system))),
        ("value", Some(json!(value))),
    ])?;
    Some((system, value, ident))
}

/// EI (entity identifier: EI.1 id, EI.2-4 assigning authority HD) → `(system, value)`,
/// following "HL7 Data Type - FHIR R4_ EI[Identifier-System] - Sheet1.csv".
pub fn ei(rep: Option<&Repetition>, local_base: &str) -> Option<(String, String)> {
    let rep = rep?;
    let value = nz(rep.comp(1))?.to_string();
    Some((
        hd_system(rep.comp(2), rep.comp(3), rep.comp(4), local_base),
        value,
    ))
}

/// An Identifier object for `(system, value)`.
pub fn identifier(system: &str, value: &str) -> Value {
    json!({"system": system, "value": value})
}

/// XPN → HumanName, following "HL7 Data Type - FHIR R4_ XPN[HumanName] - Sheet1.csv"
/// and the "NameType" concept map for XPN.7 → HumanName.use.
pub fn xpn_name(rep: &Repetition) -> Option<Value> {
    let given: Vec<Value> = [rep.comp(2), rep.comp(3)]
        .iter()
        .filter_map(|g| s(g))
        .collect();
    let prefix: Vec<Value> = s(rep.comp(5)).into_iter().collect();
    let suffix: Vec<Value> = [rep.comp(4), rep.comp(6)]
        .iter()
        .filter_map(|x| s(x))
        .collect();
    let use_ = match rep.comp(7) {
        "L" | "R" => Some("official"),
        "D" => Some("usual"),
        "M" => Some("maiden"),
        "N" => Some("nickname"),
        "MSK" => Some("anonymous"),
        "NAV" | "TEMP" => Some("temp"),
        "BAD" => Some("old"),
        _ => None,
    };
    obj(vec![
        ("use", use_.map(|u| json!(u))),
        ("family", s(rep.sub(1, 1))),
        ("given", arr(given)),
        ("prefix", arr(prefix)),
        ("suffix", arr(suffix)),
    ])
    .filter(|n| n.get("family").is_some() || n.get("given").is_some())
}

/// XAD → Address, following "HL7 Data Type - FHIR R4_ XAD[Address] - Sheet1.csv" with
/// the "AddressType[Use]" and "AddressType[Type]" concept maps for XAD.7.
pub fn xad_address(rep: &Repetition) -> Option<Value> {
    let lines: Vec<Value> = [rep.sub(1, 1), rep.comp(2)]
        .iter()
        .filter_map(|l| s(l))
        .collect();
    let kind = rep.comp(7);
    let use_ = match kind {
        "BA" => Some("old"),
        "BI" => Some("billing"),
        "C" => Some("temp"),
        "B" | "O" => Some("work"),
        "H" => Some("home"),
        _ => None,
    };
    let type_ = matches!(kind, "M" | "SH").then_some("postal");
    obj(vec![
        ("use", use_.map(|u| json!(u))),
        ("type", type_.map(|t| json!(t))),
        ("line", arr(lines)),
        ("city", s(rep.comp(3))),
        ("district", s(rep.comp(9))),
        ("state", s(rep.comp(4))),
        ("postalCode", s(rep.comp(5))),
        ("country", s(rep.comp(6))),
    ])
    .filter(|a| {
        a.as_object()
            .is_some_and(|o| o.keys().any(|k| k != "use" && k != "type"))
    })
}

/// XTN → ContactPoint, following "HL7 Data Type - FHIR R4_ XTN[ContactPoint] -
/// Sheet1.csv" with the "TelecommunicationEquipmentType" (XTN.3) and
/// "TelecommunicationUseCode" (XTN.2) concept maps. `default_use` applies when XTN.2
/// is empty (PID-13 is home, PID-14 work).
pub fn xtn_contact(rep: &Repetition, default_use: Option<&str>) -> Option<Value> {
    let equipment = rep.comp(3);
    let email = matches!(equipment, "Internet" | "X.400") || rep.comp(2) == "NET";
    let value = if email {
        nz(rep.comp(4)).map(str::to_string)
    } else {
        nz(rep.comp(12)).map(str::to_string).or_else(|| {
            let parts: Vec<&str> = [rep.comp(5), rep.comp(6), rep.comp(7)]
                .into_iter()
                .filter_map(nz)
                .collect();
            let mut v = parts.join(" ");
            if let Some(ext) = nz(rep.comp(8)) {
                v.push_str(&format!(" ext. {ext}"));
            }
            nz(&v)
                .map(str::to_string)
                .or_else(|| nz(rep.comp(1)).map(str::to_string))
        })
    }?;
    let system = if email {
        "email"
    } else {
        match equipment {
            "FX" => "fax",
            "BP" => "pager",
            "MD" | "SAT" | "TDD" | "TTY" => "other",
            _ => "phone",
        }
    };
    let use_ = match (rep.comp(2), equipment) {
        (_, "CP") => Some("mobile"),
        ("PRN", _) => Some("home"),
        ("WPN", _) => Some("work"),
        ("PRS", _) => Some("mobile"),
        ("", _) => default_use,
        _ => None,
    };
    obj(vec![
        ("system", Some(json!(system))),
        ("value", Some(json!(value))),
        ("use", use_.map(|u| json!(u))),
    ])
}

/// A coding-system name (HL7 table 0396) → a FHIR system URI, for the systems seen in
/// practice. Unknown names give `None` (the coding then has code and display only).
pub fn coding_system(name: &str) -> Option<String> {
    let uri = match name.trim() {
        "LN" | "LOINC" => "http://loinc.org",
        "SCT" | "SNM" | "SNOMED" | "SNOMEDCT" => "http://snomed.info/sct",
        "CVX" => "http://hl7.org/fhir/sid/cvx",
        "MVX" => "http://hl7.org/fhir/sid/mvx",
        "NDC" => "http://hl7.org/fhir/sid/ndc",
        "UCUM" => "http://unitsofmeasure.org",
        "I10" | "ICD10" => "http://hl7.org/fhir/sid/icd-10",
        "I10C" | "ICD10CM" => "http://hl7.org/fhir/sid/icd-10-cm",
        "I9" | "I9C" | "I9CM" | "I9M" => "http://hl7.org/fhir/sid/icd-9-cm",
        "C4" | "CPT" => "http://www.ama-assn.org/go/cpt",
        "RXNORM" | "RXN" => "http://www.nlm.nih.gov/research/umls/rxnorm",
        "NCIT" => "http://ncit.nci.nih.gov",
        "CDCREC" => "urn:oid:2.16.840.1.113883.6.238",
        "DCM" => "http://dicom.nema.org/resources/ontology/DCM",
        "ISO3166_1" => "urn:iso:std:iso:3166",
        "CDCPHINVS" => "urn:oid:2.16.840.1.114222.4.5.274",
        "NIP001" => "urn:oid:2.16.840.1.114222.4.5.274",
        n if n.len() == 7 && n.starts_with("HL7") && n[3..].bytes().all(|b| b.is_ascii_digit()) => {
            return Some(format!(
                "http://terminology.hl7.org/CodeSystem/v2-{}",
                &n[3..]
            ));
        }
        _ => return None,
    };
    Some(uri.to_string())
}

fn coding(code: &str, display: &str, system: &str) -> Option<Value> {
    let code = nz(code)?;
    obj(vec![
        ("system", coding_system(system).map(Value::String)),
        ("code", Some(json!(code))),
        ("display", s(display)),
    ])
}

/// CWE/CE/CNE → CodeableConcept, following
/// "HL7 Data Type - FHIR R4_ CWE[CodeableConcept] - Sheet1.csv": the identifier triplet and the alternate triplet become codings,
/// CWE.9 (original text) or else CWE.2 becomes text.
pub fn cwe_concept(rep: &Repetition) -> Option<Value> {
    let codings: Vec<Value> = [
        coding(rep.comp(1), rep.comp(2), rep.comp(3)),
        coding(rep.comp(4), rep.comp(5), rep.comp(6)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let text = nz(rep.comp(9)).or(nz(rep.comp(2))).or(nz(rep.comp(5)));
    obj(vec![
        ("coding", arr(codings)),
        ("text", text.map(|t| json!(t))),
    ])
}

/// The first repetition of a CWE field as a CodeableConcept.
pub fn cwe_field(seg: &Segment, field: usize) -> Option<Value> {
    seg.rep(field).and_then(cwe_concept)
}

/// A CodeableConcept with one coding from a code system URI.
pub fn concept(system: &str, code: &str, display: Option<&str>) -> Value {
    let mut c = json!({"system": system, "code": code});
    if let Some(d) = display {
        c["display"] = json!(d);
    }
    json!({"coding": [c]})
}

/// XCN → a logical Practitioner reference `{identifier, display}`, following the
/// identifier and name rows of "HL7 Data Type - FHIR R4_ XCN[Practitioner] -
/// Sheet1.csv" (XCN.1 id with XCN.9 assigning authority; XCN.2-6 name). No
/// Practitioner entry is created: the receiving server may not let an interface write
/// its directory.
pub fn xcn_reference(rep: &Repetition, local_base: &str) -> Option<Value> {
    let name: Vec<&str> = [
        rep.comp(6),
        rep.comp(3),
        rep.comp(4),
        rep.sub(2, 1),
        rep.comp(5),
    ]
    .into_iter()
    .filter_map(nz)
    .collect();
    let display = nz(&name.join(" ")).map(str::to_string);
    let ident = nz(rep.comp(1)).map(|id| {
        identifier(
            &hd_system(rep.sub(9, 1), rep.sub(9, 2), rep.sub(9, 3), local_base),
            id,
        )
    });
    obj(vec![
        ("type", Some(json!("Practitioner"))),
        ("identifier", ident),
        ("display", display.map(Value::String)),
    ])
    .filter(|r| r.get("identifier").is_some() || r.get("display").is_some())
}

/// A parsed HL7 DTM.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dtm {
    date: String,
    time: Option<String>,
    offset: Option<String>,
}

fn parse_dtm(raw: &str) -> Option<Dtm> {
    let raw = raw.trim();
    let (body, offset) = match raw.find(['+', '-']) {
        Some(i) => (&raw[..i], Some(&raw[i..])),
        None => (raw, None),
    };
    let (digits, fraction) = match body.split_once('.') {
        Some((d, f)) => (d, Some(f)),
        None => (body, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![4, 6, 8, 10, 12, 14].contains(&digits.len())
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).and_then(|p| p.parse::<u32>().ok());
    let year = num(0..4)?;
    let mut date = format!("{year:04}");
    if let Some(month) = num(4..6) {
        if !(1..=12).contains(&month) {
            return None;
        }
        date.push_str(&format!("-{month:02}"));
        if let Some(day) = num(6..8) {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let max = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            if !(1..=max).contains(&day) {
                return None;
            }
            date.push_str(&format!("-{day:02}"));
        }
    }
    let time = match num(8..10) {
        None => {
            if fraction.is_some() {
                return None;
            }
            None
        }
        Some(h) => {
            let m = num(10..12).unwrap_or(0);
            let sec = num(12..14).unwrap_or(0);
            if h > 23 || m > 59 || sec > 59 {
                return None;
            }
            let mut t = format!("{h:02}:{m:02}:{sec:02}");
            if let Some(f) = fraction {
                if digits.len() != 14 || f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                t.push('.');
                t.push_str(f);
            }
            Some(t)
        }
    };
    let offset = match offset {
        None => None,
        Some(o) => Some(parse_offset(o)?),
    };
    Some(Dtm { date, time, offset })
}

fn parse_offset(o: &str) -> Option<String> {
    let (sign, rest) = o.split_at(1);
    if rest.len() != 4 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: u32 = rest[..2].parse().ok()?;
    let m: u32 = rest[2..].parse().ok()?;
    (h <= 14 && m <= 59).then(|| format!("{sign}{h:02}:{m:02}"))
}

/// The offset of MSH-7 as `+HH:MM`, when it has one; the default for DTMs without.
pub fn message_offset(msh7: &str) -> Option<String> {
    parse_dtm(msh7).and_then(|d| d.offset)
}

/// DTM → FHIR dateTime (see the module doc). `Ok(None)` for an empty value, `Err(())`
/// for an impossible one. Follows "HL7 Data Type - FHIR R4_ DTM[dateTime] - Sheet1.csv".
#[allow(clippy::result_unit_err)]
pub fn dtm_datetime(raw: &str, default_offset: Option<&str>) -> Result<Option<String>, ()> {
    let Some(raw) = nz(raw) else {
        return Ok(None);
    };
    let d = parse_dtm(raw).ok_or(())?;
    Ok(Some(match d.time {
        None => d.date,
        Some(t) => {
            let offset = d
                .offset
                .or_else(|| default_offset.map(str::to_string))
                .unwrap_or_else(|| "+00:00".to_string());
            format!("{}T{t}{offset}", d.date)
        }
    }))
}

/// DTM → FHIR date (the time part is dropped, the date keeps its precision).
#[allow(clippy::result_unit_err)]
pub fn dtm_date(raw: &str) -> Result<Option<String>, ()> {
    let Some(raw) = nz(raw) else {
        return Ok(None);
    };
    parse_dtm(raw).map(|d| Some(d.date)).ok_or(())
}

/// Standard base64 (RFC 4648, with padding), for attachments.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtm_to_fhir_datetime() {
        let cases = [
            ("2024", Some("2024")),
            ("202402", Some("2024-02")),
            ("20240229", Some("2024-02-29")),
            ("198908181126+0215", Some("1989-08-18T11:26:00+02:15")),
            ("20110103143428-0800", Some("2011-01-03T14:34:28-08:00")),
            (
                "20150624084727.655-0500",
                Some("2015-06-24T08:47:27.655-05:00"),
            ),
            ("2012070108", Some("2012-07-01T08:00:00+07:00")),
            ("20230229", None),
            ("20241301", None),
            ("2024010125", None),
            ("04/24/2007", None),
            ("2024+2", None),
        ];
        for (raw, want) in cases {
            let got = dtm_datetime(raw, Some("+07:00")).ok().flatten();
            assert_eq!(got.as_deref(), want, "{raw}");
        }
        assert_eq!(
            dtm_datetime("20240101120000", None),
            Ok(Some("2024-01-01T12:00:00+00:00".into()))
        );
        assert_eq!(dtm_datetime("  ", None), Ok(None));
        assert_eq!(dtm_date("198808181126+0215"), Ok(Some("1988-08-18".into())));
    }

    #[test]
    fn hd_systems() {
        let base = "urn:oxehr:org:abc:";
        let cases = [
            (("X", "2.16.840.1", "ISO"), "urn:oid:2.16.840.1"),
            (("X", "9.8", "ISO"), "urn:oxehr:org:abc:X"),
            (
                ("", "A1B2C3D4-0000-1111-2222-333344445555", "UUID"),
                "urn:uuid:a1b2c3d4-0000-1111-2222-333344445555",
            ),
            (("", "http://x.org/ids", "URI"), "http://x.org/ids"),
            (("NIST MPI", "", ""), "urn:oxehr:org:abc:NIST%20MPI"),
            (("", "", ""), "urn:oxehr:org:abc:id"),
        ];
        for ((ns, uid, kind), want) in cases {
            assert_eq!(hd_system(ns, uid, kind, base), want);
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn obj_leaves_out_empty_values() {
        let v = obj(vec![("a", s("")), ("b", arr(vec![])), ("c", s(" x "))]);
        assert_eq!(v, Some(json!({"c": "x"})));
        assert_eq!(obj(vec![("a", s("\"\""))]), None);
    }
}
