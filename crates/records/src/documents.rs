//! Documents brought into the record: a summary of care (a C-CDA document a referring
//! practice or a hospital sent) that a member of staff imports.
//!
//! The document has been read into a transaction Bundle of conditional creates by its
//! format's crate (`oxehr-ccda`); here it is stored like an inbound message
//! (`crate::exchange`): its patient found among all patients by identifier (one the
//! record does not hold is registered with the importing organization), every entry
//! under the importer's access policy, and a Provenance naming the organization the
//! document came from and the document itself, so the chart shows the source of each
//! entry. A second import of the same document adds no entries (the creates are
//! conditional on the entries' ids), only a Provenance saying it arrived again.

use std::sync::Arc;

use oxehr_auth::Caller;
use oxehr_fhir::{IssueCode, ResourceId, ResourceType};

use crate::exchange::{PatientUpdate, Source};
use crate::{EntryOutcome, Records, RecordsError};

/// A document as received.
#[derive(Debug, Clone)]
pub struct Document {
    /// The Organization (its id) the document came from; `None`: the importer's own.
    pub organization: Option<String>,
    /// The document's id as a FHIR identifier (system, value); `None`: it has none, and
    /// the Provenance names it by a new UUID.
    pub identifier: Option<(String, String)>,
    /// What the document is, in words ("a document (C-CDA Continuity of Care
    /// Document)").
    pub title: String,
}

impl Records {
    /// Stores a document's resources (`bundle`, a transaction whose first Patient entry
    /// names the patient by identifier) as `who`, with a Provenance naming the
    /// organization it came from and the document, in one transaction.
    ///
    /// Staff of an organization and system administrators import; the organization
    /// named must be in the directory.
    pub fn import_document(
        &self,
        who: &Caller,
        document: &Document,
        bundle: serde_json::Value,
    ) -> Result<Vec<EntryOutcome>, RecordsError> {
        crate::exchange::only_staff_or_admin(who, "documents are imported by a practice's staff")?;
        let organization = document
            .organization
            .clone()
            .or_else(|| who.organization.clone())
            .ok_or_else(|| {
                RecordsError::invalid(
                    IssueCode::Required,
                    "name the organization the document came from",
                )
            })?;
        let org_id = ResourceId::parse(&organization).ok_or_else(|| {
            RecordsError::invalid(IssueCode::Value, "the organization is not a valid id")
        })?;
        let org_type = ResourceType::parse("Organization")
            .ok_or_else(|| RecordsError::Internal("no Organization type".into()))?;
        match self.read(&Caller::server(), &org_type, &org_id) {
            Ok(_) => {}
            Err(RecordsError::NotFound(_) | RecordsError::Gone(_)) => {
                return Err(RecordsError::invalid(
                    IssueCode::NotFound,
                    format!("Organization/{organization} is not in the directory"),
                ))
            }
            Err(e) => return Err(e),
        }
        let (system, value) = document.identifier.clone().unwrap_or_else(|| {
            (
                "urn:ietf:rfc:3986".to_owned(),
                format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            )
        });
        let source = Source {
            organization,
            system,
            value,
            title: document.title.clone(),
        };
        let bundle = self.with_provenance(
            bundle,
            PatientUpdate::Register,
            who.organization.as_deref(),
            &source,
        )?;
        let outcomes = self.transaction_with(who, bundle, Arc::new(|_| Ok(())))?;
        self.note_duplicates(&outcomes);
        Ok(outcomes)
    }
}
