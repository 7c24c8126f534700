//! Code systems: HL7 OIDs (as C-CDA writes them) to FHIR system URIs and back.
//!
//! The table follows the FHIR R4 terminology pages ("Using codes in resources", the
//! external code system registry); an OID not in it becomes `urn:oid:…`, which FHIR
//! accepts for any OID, and `urn:oid:` systems map back to their OID on export.

/// (OID, FHIR system URI), the well-known systems a C-CDA document uses.
const SYSTEMS: &[(&str, &str)] = &[
    ("2.16.840.1.113883.6.1", "http://loinc.org"),
    ("2.16.840.1.113883.6.96", "http://snomed.info/sct"),
    (
        "2.16.840.1.113883.6.88",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
    ),
    ("2.16.840.1.113883.12.292", "http://hl7.org/fhir/sid/cvx"),
    (
        "2.16.840.1.113883.6.90",
        "http://hl7.org/fhir/sid/icd-10-cm",
    ),
    (
        "2.16.840.1.113883.6.103",
        "http://hl7.org/fhir/sid/icd-9-cm",
    ),
    ("2.16.840.1.113883.6.8", "http://unitsofmeasure.org"),
    ("2.16.840.1.113883.6.69", "http://hl7.org/fhir/sid/ndc"),
    ("2.16.840.1.113883.6.12", "http://www.ama-assn.org/go/cpt"),
    ("2.16.840.1.113883.6.285", "urn:oid:2.16.840.1.113883.6.285"),
    (
        "2.16.840.1.113883.6.101",
        "http://nucc.org/provider-taxonomy",
    ),
    ("2.16.840.1.113883.3.26.1.1", "http://ncimeta.nci.nih.gov"),
    ("2.16.840.1.113883.4.9", "http://fdasis.nlm.nih.gov"),
    (
        "2.16.840.1.113883.5.4",
        "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    ),
    (
        "2.16.840.1.113883.5.1",
        "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender",
    ),
    (
        "2.16.840.1.113883.5.83",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    (
        "2.16.840.1.113883.5.111",
        "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
    ),
    (
        "2.16.840.1.113883.5.1008",
        "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
    ),
    (
        "2.16.840.1.113883.5.6",
        "http://terminology.hl7.org/CodeSystem/v3-ActClass",
    ),
    (
        "2.16.840.1.113883.5.14",
        "http://terminology.hl7.org/CodeSystem/v3-ActStatus",
    ),
    (
        "2.16.840.1.113883.5.25",
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
    ),
    (
        "2.16.840.1.113883.5.2",
        "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
    ),
    (
        "2.16.840.1.113883.5.112",
        "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
    ),
];

/// The FHIR system URI for an OID (or other uid) used as a CDA `codeSystem`.
pub(crate) fn system_uri(oid: &str) -> String {
    SYSTEMS
        .iter()
        .find(|(o, _)| *o == oid)
        .map(|(_, u)| (*u).to_string())
        .unwrap_or_else(|| format!("urn:oid:{oid}"))
}

/// The OID for a FHIR system URI, or `None` when the system has none we know.
pub(crate) fn system_oid(uri: &str) -> Option<String> {
    if let Some(oid) = uri.strip_prefix("urn:oid:") {
        return Some(oid.to_string());
    }
    SYSTEMS
        .iter()
        .find(|(_, u)| *u == uri)
        .map(|(o, _)| (*o).to_string())
}

/// The II root under which [`crate::FACT_SYSTEM`] identifiers are written (as the
/// extension), so a CCD we wrote imports back to the same fact identifiers: a random
/// UUID chosen once for this purpose and never to change.
pub(crate) const FACT_ROOT: &str = "5d1c4b0e-8a36-4a5e-9c51-6f8f0d3c2a71";

/// The FHIR `Identifier` for a CDA `II` (`root`, optional `extension`), as C-CDA on FHIR
/// maps it: with an extension the root names the system (`urn:oid:` or `urn:uuid:`);
/// without, the root itself is the value in the `urn:ietf:rfc:3986` system.
pub(crate) fn identifier(root: &str, extension: Option<&str>) -> (String, String) {
    let as_uri = |r: &str| {
        if is_uuid(r) {
            format!("urn:uuid:{}", r.to_ascii_lowercase())
        } else if r.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            format!("urn:oid:{r}")
        } else {
            r.to_string()
        }
    };
    match extension {
        Some(ext) if root.eq_ignore_ascii_case(FACT_ROOT) => {
            (crate::FACT_SYSTEM.to_string(), ext.to_string())
        }
        Some(ext) => (as_uri(root), ext.to_string()),
        None => ("urn:ietf:rfc:3986".to_string(), as_uri(root)),
    }
}

/// The CDA `II` (`root`, optional `extension`) for a FHIR identifier, when it has one.
pub(crate) fn ii(system: &str, value: &str) -> Option<(String, Option<String>)> {
    let bare = |s: &str| {
        s.strip_prefix("urn:oid:")
            .or_else(|| s.strip_prefix("urn:uuid:"))
            .map(str::to_string)
    };
    if system == "urn:ietf:rfc:3986" {
        return bare(value).map(|r| (r, None));
    }
    bare(system).map(|r| (r, Some(value.to_string())))
}

pub(crate) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_oids_map_both_ways() {
        for (oid, uri) in [
            ("2.16.840.1.113883.6.1", "http://loinc.org"),
            ("2.16.840.1.113883.6.96", "http://snomed.info/sct"),
            ("2.16.840.1.113883.12.292", "http://hl7.org/fhir/sid/cvx"),
            ("1.2.3.4", "urn:oid:1.2.3.4"),
        ] {
            assert_eq!(system_uri(oid), uri);
            assert_eq!(system_oid(uri).as_deref(), Some(oid));
        }
        assert_eq!(
            system_oid("https://github.com/synthetichealth/synthea"),
            None
        );
    }

    #[test]
    fn identifiers_follow_ccda_on_fhir() {
        assert_eq!(
            identifier("2.16.840.1.113883.19", Some("123")),
            ("urn:oid:2.16.840.1.113883.19".into(), "123".into())
        );
        let u = "E6F1BA43-C0ED-4B9B-9F12-F435D8AD8F92";
        let (s, v) = identifier(u, None);
        assert_eq!(
            (s.as_str(), v.as_str()),
            (
                "urn:ietf:rfc:3986",
                "urn:uuid:e6f1ba43-c0ed-4b9b-9f12-f435d8ad8f92"
            )
        );
        assert_eq!(
            ii(&s, &v),
            Some(("e6f1ba43-c0ed-4b9b-9f12-f435d8ad8f92".into(), None))
        );
    }
}
