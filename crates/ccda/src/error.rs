//! The one error type of the crate: what a caller can act on.

/// Why a document could not be imported or a CCD could not be written. Messages name a
/// place in the document (an element path) and never carry patient data.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CcdaError {
    /// The input is not well-formed XML (or not UTF-8, or carries a DTD).
    #[error("not well-formed XML: {0}")]
    NotXml(String),
    /// Well-formed XML, but not an HL7 CDA `ClinicalDocument`.
    #[error("not a CDA document: {0}")]
    NotCda(String),
    /// A CDA document that breaks a rule the mapping depends on.
    #[error("invalid C-CDA at {location}: {reason}")]
    Invalid { location: String, reason: String },
    /// Export: the input resources cannot make a CCD (e.g. the patient is not a Patient).
    #[error("cannot export: {0}")]
    Export(String),
}

impl CcdaError {
    pub(crate) fn invalid(location: impl Into<String>, reason: impl Into<String>) -> Self {
        CcdaError::Invalid {
            location: location.into(),
            reason: reason.into(),
        }
    }
}
