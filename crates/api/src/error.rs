//! The one table from record-layer error categories to HTTP answers (see the crate doc).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use oxehr_fhir::outcome::operation_outcome;
use oxehr_fhir::{Issue, IssueCode};
use oxehr_records::{Category, RecordsError};

use crate::format::fhir_json_response;

/// An error answer: a status and an OperationOutcome.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub issues: Vec<Issue>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: IssueCode, diagnostics: impl Into<String>) -> Self {
        ApiError {
            status,
            issues: vec![Issue::error(code, diagnostics)],
        }
    }

    pub fn bad_request(diagnostics: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, IssueCode::Invalid, diagnostics)
    }

    pub fn unknown_type(name: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotSupported,
            format!("unknown resource type '{name}'"),
        )
    }
}

impl From<RecordsError> for ApiError {
    fn from(e: RecordsError) -> Self {
        let status = match e.category() {
            Category::Invalid => StatusCode::BAD_REQUEST,
            Category::NotFound => StatusCode::NOT_FOUND,
            Category::Gone => StatusCode::GONE,
            Category::Conflict => StatusCode::CONFLICT,
            Category::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Category::Forbidden => StatusCode::FORBIDDEN,
            Category::NotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Category::Unauthorized => StatusCode::UNAUTHORIZED,
            Category::Unsupported => StatusCode::BAD_REQUEST,
            Category::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Category::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Internal details go to the log (they name no patient data), not the client.
            tracing::error!(error = %e, "internal error");
            return ApiError::new(
                status,
                IssueCode::Exception,
                "internal error; see the server log",
            );
        }
        ApiError {
            status,
            issues: e.issues(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        fhir_json_response(self.status, &operation_outcome(&self.issues), false)
    }
}
