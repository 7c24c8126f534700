//! C-CDA R2.1 documents in and out of oxehr.
//!
//! * [`import`] reads a C-CDA document (any of the R2.1 document types, structured or
//!   narrative-only, or a `nonXMLBody` such as an embedded PDF) and returns a FHIR R4
//!   transaction Bundle whose every entry is a conditional create, so importing the same
//!   document twice — or a second document carrying the same facts — creates nothing new.
//! * [`export_ccd`] writes a Continuity of Care Document (CCD R2.1) for one patient from
//!   that patient's FHIR resources.
//!
//! Invariant: this crate does no I/O. It parses with `roxmltree` (DTDs refused, so no
//! entity expansion) and writes XML as escaped strings.
//!
//! The mapping follows HL7's *C-CDA on FHIR* IG (STU 1.x) and the C-CDA R2.1 templates;
//! each mapping function cites the template it reads or writes. Provenance is not written
//! here: the caller (`records`) adds the Provenance naming the sending organization.

mod codes;
mod error;
mod read;
mod time;
mod write;

pub use error::CcdaError;
pub use read::{import, import_bytes, DocumentInfo, ImportContext, Imported};
pub use write::{export_ccd, ExportContext};

/// Identifier system for entries that carry no `id` of their own: the value is a hash of
/// (patient identifier, kind of fact, code, date), so the same fact imported from two
/// documents gets the same identifier and the conditional create finds it.
pub const FACT_SYSTEM: &str = "urn:oxehr:ccda:fact";
