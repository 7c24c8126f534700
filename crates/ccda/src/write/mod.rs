//! Export: a patient's FHIR resources as a Continuity of Care Document (CCD) R2.1
//! (2.16.840.1.113883.10.20.22.1.2, extension 2015-08-01) on the US Realm Header
//! (2.16.840.1.113883.10.20.22.1.1, extension 2015-08-01).
//!
//! The sections the CCD requires (allergies, medications, problems, results, social
//! history, vital signs) are always written, with `nullFlavor="NI"` and the narrative "No
//! information" when the patient has nothing in them; the optional ones (immunizations,
//! procedures, encounters, notes) only when there is something to say.

mod dt;
mod header;
mod notes;
mod observations;
mod sections;
mod xml;

use serde_json::Value;

use crate::error::CcdaError;
use xml::W;

/// What the CCD says about itself.
#[derive(Debug, Clone, Default)]
pub struct ExportContext {
    /// The Organization resource writing the document: author's organization and custodian.
    pub author_organization: Option<Value>,
    /// When the document is written (FHIR instant).
    pub now: String,
    /// The document's id (a UUID).
    pub document_id: String,
}

/// Writes a CCD for `patient` from `resources` (any resource types; those the CCD has no
/// section for are ignored, Medication resources are used to resolve
/// `medicationReference`).
pub fn export_ccd(
    patient: &Value,
    resources: &[Value],
    ctx: &ExportContext,
) -> Result<String, CcdaError> {
    if patient.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err(CcdaError::Export(
            "the patient is not a Patient resource".into(),
        ));
    }
    if crate::time::from_fhir(&ctx.now).is_none() {
        return Err(CcdaError::Export(
            "ExportContext.now is not a FHIR instant".into(),
        ));
    }
    if !crate::codes::is_uuid(&ctx.document_id) {
        return Err(CcdaError::Export(
            "ExportContext.document_id is not a UUID".into(),
        ));
    }
    let mut w = W::new();
    w.out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    w.open(
        "ClinicalDocument",
        &[
            ("xmlns", "urn:hl7-org:v3"),
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ("xmlns:sdtc", "urn:hl7-org:sdtc"),
        ],
    );
    let first = sections::earliest(resources);
    header::header(&mut w, patient, ctx, first.as_deref());
    w.open("component", &[]);
    w.open("structuredBody", &[]);
    sections::all(&mut w, resources);
    w.close("structuredBody");
    w.close("component");
    w.close("ClinicalDocument");
    Ok(w.out)
}
