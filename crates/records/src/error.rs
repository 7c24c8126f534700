//! The errors of the record layer, each with a category that adapters map to their answer
//! (HTTP status + OperationOutcome in `api`, an AE/AR acknowledgement in HL7, a CLI message).

use oxehr_fhir::{Issue, IssueCode};
use oxehr_store::StoreError;

/// What kind of failure, independent of any protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Invalid,
    NotFound,
    Gone,
    Conflict,
    PreconditionFailed,
    Forbidden,
    /// The interaction is not allowed on this type for anyone (writes of the audit trail).
    NotAllowed,
    Unauthorized,
    Unsupported,
    Busy,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The input breaks the FHIR rules; the issues say where and why.
    #[error("invalid: {}", summary(.0))]
    Invalid(Vec<Issue>),
    #[error("{0} not found")]
    NotFound(String),
    /// The resource exists but its current version is a delete.
    #[error("{0} is deleted")]
    Gone(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// `If-Match` named another version, or a conditional interaction matched several.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// The caller may not do this (its role, its token's scopes, or whose record it is).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No caller may do this on this type (AuditEvents are written by the server only).
    #[error("not allowed: {0}")]
    NotAllowed(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("busy: {0}")]
    Busy(String),
    #[error("internal error: {0}")]
    Internal(String),
}

fn summary(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| match i.expression.first() {
            Some(at) => format!("{} ({at})", i.diagnostics),
            None => i.diagnostics.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl RecordsError {
    pub fn invalid(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        RecordsError::Invalid(vec![Issue::error(code, diagnostics)])
    }

    pub fn invalid_at(code: IssueCode, diagnostics: impl Into<String>, at: &str) -> Self {
        RecordsError::Invalid(vec![Issue::error(code, diagnostics).at(at)])
    }

    pub fn category(&self) -> Category {
        match self {
            RecordsError::Invalid(_) => Category::Invalid,
            RecordsError::NotFound(_) => Category::NotFound,
            RecordsError::Gone(_) => Category::Gone,
            RecordsError::Conflict(_) => Category::Conflict,
            RecordsError::PreconditionFailed(_) => Category::PreconditionFailed,
            RecordsError::Forbidden(_) => Category::Forbidden,
            RecordsError::NotAllowed(_) => Category::NotAllowed,
            RecordsError::Unsupported(_) => Category::Unsupported,
            RecordsError::Busy(_) => Category::Busy,
            RecordsError::Internal(_) => Category::Internal,
        }
    }

    /// The issues to report: the validation issues, or one issue describing the error.
    pub fn issues(&self) -> Vec<Issue> {
        let code = match self {
            RecordsError::Invalid(issues) => return issues.clone(),
            RecordsError::NotFound(_) => IssueCode::NotFound,
            RecordsError::Gone(_) => IssueCode::Deleted,
            RecordsError::Conflict(_) => IssueCode::Conflict,
            RecordsError::PreconditionFailed(_) => IssueCode::Processing,
            RecordsError::Forbidden(_) => IssueCode::Forbidden,
            RecordsError::NotAllowed(_) => IssueCode::NotSupported,
            RecordsError::Unsupported(_) => IssueCode::NotSupported,
            RecordsError::Busy(_) => IssueCode::Timeout,
            RecordsError::Internal(_) => IssueCode::Exception,
        };
        vec![Issue::error(code, self.to_string())]
    }
}

impl From<StoreError> for RecordsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => RecordsError::Conflict("concurrent update".into()),
            StoreError::Busy(m) => RecordsError::Busy(m),
            StoreError::Aborted(payload) => match payload.downcast::<RecordsError>() {
                Ok(e) => *e,
                Err(_) => RecordsError::Internal("aborted write".into()),
            },
            StoreError::Backend(m) | StoreError::Corrupt(m) => RecordsError::Internal(m),
        }
    }
}
