//! Import: a C-CDA R2.1 document to a FHIR R4 transaction Bundle.
//!
//! The document header gives the Patient (recordTarget), the care team
//! (documentationOf/serviceEvent/performer) and the visit (componentOf/
//! encompassingEncounter); each section of the body is recognised by its templateId, or by
//! its LOINC section code when the templateId is missing or unknown, and mapped by the
//! module for that section. Sections without entries we map keep their narrative as a
//! DocumentReference, so nothing a clinician wrote is lost.

mod allergies;
mod bundle;
pub(crate) mod dom;
mod medications;
mod notes;
mod observations;
mod patient;
mod problems;
mod procedures;
pub(crate) mod values;

use serde_json::{json, Value};

use crate::error::CcdaError;
use crate::time;
use bundle::{Builder, Fact};
use dom::{at, child, children, has_template, location, N};
use values::Refs;

/// What the caller knows about where the document came from.
#[derive(Debug, Clone, Default)]
pub struct ImportContext {
    /// The sender as `Organization/ID`: referenced as performer, custodian or service
    /// provider of what the document reports (the Provenance is the caller's to write).
    pub organization: Option<String>,
}

/// The document's header, for the caller's inbound record and Provenance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentInfo {
    /// `ClinicalDocument/id` as `root^extension` (or `root`).
    pub id: Option<String>,
    pub title: Option<String>,
    /// `ClinicalDocument/effectiveTime` as a FHIR dateTime.
    pub effective_time: Option<String>,
    /// The LOINC document type (code, display).
    pub type_code: Option<(String, String)>,
}

impl DocumentInfo {
    /// The document's id as a FHIR identifier (system, value), as C-CDA on FHIR maps a
    /// CDA `II`.
    pub fn identifier(&self) -> Option<(String, String)> {
        let id = self.id.as_deref().filter(|s| !s.is_empty())?;
        Some(match id.split_once('^') {
            Some((root, ext)) => {
                crate::codes::identifier(root, Some(ext).filter(|e| !e.is_empty()))
            }
            None => crate::codes::identifier(id, None),
        })
    }
}

/// An imported document: the transaction Bundle and the document's header.
#[derive(Debug, Clone)]
pub struct Imported {
    pub bundle: Value,
    pub document: DocumentInfo,
}

/// The sections this crate maps to structured resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Problems,
    Medications,
    Allergies,
    Results,
    VitalSigns,
    Immunizations,
    Procedures,
    Encounters,
    SocialHistory,
    Notes,
    Other,
}

const T: &str = "2.16.840.1.113883.10.20.22.2.";

/// (section, templateId roots after `2.16.840.1.113883.10.20.22.2.`, LOINC section code).
const SECTIONS: &[(Section, &[&str], &str)] = &[
    (Section::Problems, &["5", "5.1"], "11450-4"),
    (Section::Medications, &["1", "1.1"], "10160-0"),
    (Section::Allergies, &["6", "6.1"], "48765-2"),
    (Section::Results, &["3", "3.1"], "30954-2"),
    (Section::VitalSigns, &["4", "4.1"], "8716-3"),
    (Section::Immunizations, &["2", "2.1"], "11369-6"),
    (Section::Procedures, &["7", "7.1"], "47519-4"),
    (Section::Encounters, &["22", "22.1"], "46240-8"),
    (Section::SocialHistory, &["17"], "29762-2"),
    (Section::Notes, &["65"], ""),
];

pub(crate) fn section_kind(s: N<'_>) -> Section {
    let roots: Vec<&str> = children(s, "templateId")
        .filter_map(|t| t.attribute("root"))
        .collect();
    for (kind, tids, _) in SECTIONS {
        if tids
            .iter()
            .any(|t| roots.iter().any(|r| r.strip_prefix(T) == Some(*t)))
        {
            return *kind;
        }
    }
    let code = child(s, "code").and_then(|c| c.attribute("code"));
    SECTIONS
        .iter()
        .find(|(_, _, c)| !c.is_empty() && Some(*c) == code)
        .map(|(k, _, _)| *k)
        .unwrap_or(Section::Other)
}

/// What a section mapper needs: the narrative, the Bundle, the patient.
pub(crate) struct Ctx<'a, 'r> {
    pub refs: &'r Refs<'a>,
    pub b: Builder,
    pub patient: String,
    pub org: Option<String>,
    /// The document's effectiveTime (FHIR dateTime), for notes.
    pub doc_time: Option<String>,
}

impl Ctx<'_, '_> {
    pub(crate) fn subject(&self) -> Value {
        json!({ "reference": self.patient })
    }
    pub(crate) fn org_ref(&self) -> Option<Value> {
        self.org.as_ref().map(|o| json!({ "reference": o }))
    }
    pub(crate) fn add(&mut self, r: Value, ids: Vec<(String, String)>, fact: Fact) -> String {
        self.b.add(r, ids, fact)
    }
}

/// Imports a document given as bytes: anything not UTF-8 is refused as [`CcdaError::NotXml`].
pub fn import_bytes(xml: &[u8], ctx: &ImportContext) -> Result<Imported, CcdaError> {
    let s = std::str::from_utf8(xml)
        .map_err(|e| CcdaError::NotXml(format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    import(s, ctx)
}

/// Imports a C-CDA document (US Realm Header, any R2.1 document type, structured or
/// unstructured body) as a FHIR R4 transaction Bundle of conditional creates.
pub fn import(xml: &str, ctx: &ImportContext) -> Result<Imported, CcdaError> {
    let doc = dom::parse(xml)?;
    let root = doc.root_element();
    let document = header(root)?;
    let refs = Refs::new(root);
    let role = at(root, &["recordTarget", "patientRole"]).ok_or_else(|| {
        CcdaError::invalid(
            location(root),
            "no recordTarget/patientRole: a C-CDA names its patient",
        )
    })?;
    let patient_res = patient::patient(role)?;
    let patient_key = patient_res["identifier"][0]
        .as_object()
        .map(|i| {
            format!(
                "{}|{}",
                i["system"].as_str().unwrap_or(""),
                i["value"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_default();
    let seed = format!(
        "{}\u{1f}{}",
        document.id.as_deref().unwrap_or(""),
        patient_key
    );
    let mut b = Builder::new(&seed, &patient_key);
    let patient_url = b.next_url();
    let mut cx = Ctx {
        refs: &refs,
        b,
        patient: patient_url.clone(),
        org: ctx.organization.clone(),
        doc_time: document.effective_time.clone(),
    };
    patient::care_team(root, &mut cx)?;
    patient::encompassing_encounter(root, &mut cx)?;
    if let Some(body) = at(root, &["component", "structuredBody"]) {
        for comp in children(body, "component") {
            if let Some(s) = child(comp, "section") {
                section(s, &mut cx)?;
            }
        }
    } else if let Some(nx) = at(root, &["component", "nonXMLBody"]) {
        notes::non_xml_body(nx, &document, &mut cx)?;
    }
    let Ctx { b, .. } = cx;
    let bundle = b.finish((patient_url, patient_res));
    Ok(Imported { bundle, document })
}

/// One section (and its subsections).
/// How deep sections may nest (`component/section` inside a section). Real documents
/// nest one or two levels; the bound keeps a hostile one from overflowing the stack.
const MAX_SECTION_DEPTH: usize = 16;

fn section(s: N<'_>, cx: &mut Ctx<'_, '_>) -> Result<(), CcdaError> {
    section_at(s, cx, 0)
}

fn section_at(s: N<'_>, cx: &mut Ctx<'_, '_>, depth: usize) -> Result<(), CcdaError> {
    if depth >= MAX_SECTION_DEPTH {
        return Err(CcdaError::invalid(
            location(s),
            format!("sections nest more than {MAX_SECTION_DEPTH} levels deep"),
        ));
    }
    let mapped = match section_kind(s) {
        Section::Problems => problems::problems(s, cx)?,
        Section::Medications => medications::medications(s, cx)?,
        Section::Allergies => allergies::allergies(s, cx)?,
        Section::Results => observations::results(s, cx)?,
        Section::VitalSigns => observations::vital_signs(s, cx)?,
        Section::SocialHistory => observations::social_history(s, cx)?,
        Section::Immunizations => medications::immunizations(s, cx)?,
        Section::Procedures => procedures::procedures(s, cx)?,
        Section::Encounters => procedures::encounters(s, cx)?,
        Section::Notes => notes::note_activities(s, cx)?,
        Section::Other => 0,
    };
    if mapped == 0 {
        notes::narrative_section(s, cx)?;
    }
    for comp in children(s, "component") {
        if let Some(sub) = child(comp, "section") {
            section_at(sub, cx, depth + 1)?;
        }
    }
    Ok(())
}

/// The entries of a section that carry one of these templates: `entry/*[templateId]`.
pub(crate) fn entries<'a>(s: N<'a>, templates: &'a [&'a str]) -> impl Iterator<Item = N<'a>> + 'a {
    children(s, "entry")
        .filter_map(|e| e.children().find(|c| c.is_element()))
        .filter(move |c| has_template(*c, templates))
}

/// `ClinicalDocument` header fields (US Realm Header, 2.16.840.1.113883.10.20.22.1.1).
fn header(root: N<'_>) -> Result<DocumentInfo, CcdaError> {
    let id = child(root, "id").and_then(|i| {
        let r = i.attribute("root")?;
        Some(match i.attribute("extension") {
            Some(e) => format!("{r}^{e}"),
            None => r.to_string(),
        })
    });
    let title = child(root, "title")
        .map(dom::text)
        .filter(|t| !t.is_empty());
    let effective_time = child(root, "effectiveTime")
        .map(values::ts)
        .transpose()?
        .flatten();
    let type_code = child(root, "code").and_then(|c| {
        Some((
            c.attribute("code")?.to_string(),
            c.attribute("displayName").unwrap_or("").to_string(),
        ))
    });
    Ok(DocumentInfo {
        id,
        title,
        effective_time,
        type_code,
    })
}

/// Whether a FHIR dateTime can be an `instant`.
pub(crate) fn instant(dt: &Option<String>) -> Option<String> {
    dt.clone().filter(|d| time::is_instant(d))
}
