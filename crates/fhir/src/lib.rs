//! FHIR R4 (4.0.1) knowledge as data: typed identifiers, the embedded core definitions,
//! validation and OperationOutcome.
//!
//! **Invariant**: this crate does no I/O. The definitions are compiled into the binary
//! (`definitions/r4.json.gz`, packed by `tools/pack-definitions.py`) and parsed once.

pub mod definitions;
pub mod ids;
pub mod outcome;
pub mod url;
pub mod validate;

pub use definitions::Definitions;
pub use ids::{ResourceId, ResourceType, VersionId};
pub use outcome::{Issue, IssueCode, Severity};
pub use validate::validate;
