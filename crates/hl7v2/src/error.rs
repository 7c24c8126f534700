//! HL7 table 0357 (message error condition codes) and the errors `map` returns.
//!
//! The listener answers `MapError::Unsupported` with AR and `MapError::Invalid` with AE
//! (see [`MapError::ack_code`]); both carry the 0357 code for the ERR segment.

use thiserror::Error;

use crate::ack::{AckCode, AckError};

/// HL7 table 0357, message error condition codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 100 Segment sequence error.
    SegmentSequenceError,
    /// 101 Required field missing.
    RequiredFieldMissing,
    /// 102 Data type error.
    DataTypeError,
    /// 103 Table value not found.
    TableValueNotFound,
    /// 200 Unsupported message type.
    UnsupportedMessageType,
    /// 201 Unsupported event code.
    UnsupportedEventCode,
    /// 202 Unsupported processing id.
    UnsupportedProcessingId,
    /// 203 Unsupported version id.
    UnsupportedVersionId,
    /// 204 Unknown key identifier.
    UnknownKeyIdentifier,
    /// 205 Duplicate key identifier.
    DuplicateKeyIdentifier,
    /// 206 Application record locked.
    ApplicationRecordLocked,
    /// 207 Application internal error.
    ApplicationInternalError,
}

impl ErrorCode {
    /// Every code, in table order.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::SegmentSequenceError,
        ErrorCode::RequiredFieldMissing,
        ErrorCode::DataTypeError,
        ErrorCode::TableValueNotFound,
        ErrorCode::UnsupportedMessageType,
        ErrorCode::UnsupportedEventCode,
        ErrorCode::UnsupportedProcessingId,
        ErrorCode::UnsupportedVersionId,
        ErrorCode::UnknownKeyIdentifier,
        ErrorCode::DuplicateKeyIdentifier,
        ErrorCode::ApplicationRecordLocked,
        ErrorCode::ApplicationInternalError,
    ];

    /// The numeric code, e.g. 101.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::SegmentSequenceError => 100,
            ErrorCode::RequiredFieldMissing => 101,
            ErrorCode::DataTypeError => 102,
            ErrorCode::TableValueNotFound => 103,
            ErrorCode::UnsupportedMessageType => 200,
            ErrorCode::UnsupportedEventCode => 201,
            ErrorCode::UnsupportedProcessingId => 202,
            ErrorCode::UnsupportedVersionId => 203,
            ErrorCode::UnknownKeyIdentifier => 204,
            ErrorCode::DuplicateKeyIdentifier => 205,
            ErrorCode::ApplicationRecordLocked => 206,
            ErrorCode::ApplicationInternalError => 207,
        }
    }

    /// The table's text for the code, e.g. "Required field missing".
    pub fn text(self) -> &'static str {
        match self {
            ErrorCode::SegmentSequenceError => "Segment sequence error",
            ErrorCode::RequiredFieldMissing => "Required field missing",
            ErrorCode::DataTypeError => "Data type error",
            ErrorCode::TableValueNotFound => "Table value not found",
            ErrorCode::UnsupportedMessageType => "Unsupported message type",
            ErrorCode::UnsupportedEventCode => "Unsupported event code",
            ErrorCode::UnsupportedProcessingId => "Unsupported processing id",
            ErrorCode::UnsupportedVersionId => "Unsupported version id",
            ErrorCode::UnknownKeyIdentifier => "Unknown key identifier",
            ErrorCode::DuplicateKeyIdentifier => "Duplicate key identifier",
            ErrorCode::ApplicationRecordLocked => "Application record locked",
            ErrorCode::ApplicationInternalError => "Application internal error",
        }
    }
}

/// Why a message could not be mapped to FHIR. Texts name fields, never patient data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MapError {
    /// The message type (200) or event (201) is not one this crate maps.
    #[error("{text}")]
    Unsupported {
        /// 200 or 201.
        error: ErrorCode,
        /// Plain words for the sender.
        text: String,
    },
    /// Required data is missing (101), malformed (102) or not in its table (103).
    #[error("{text}")]
    Invalid {
        /// 101, 102 or 103.
        error: ErrorCode,
        /// Plain words for the sender.
        text: String,
        /// Where, as `SEG^sequence^field[^component]`, e.g. `PID^1^3`.
        location: Option<String>,
    },
}

impl MapError {
    pub(crate) fn missing(location: &str, what: &str) -> MapError {
        MapError::Invalid {
            error: ErrorCode::RequiredFieldMissing,
            text: format!("{location} ({what}) is required"),
            location: Some(location.to_string()),
        }
    }

    pub(crate) fn bad_type(location: &str, what: &str) -> MapError {
        MapError::Invalid {
            error: ErrorCode::DataTypeError,
            text: format!("{location} is not a valid {what}"),
            location: Some(location.to_string()),
        }
    }

    pub(crate) fn bad_code(location: &str, what: &str) -> MapError {
        MapError::Invalid {
            error: ErrorCode::TableValueNotFound,
            text: format!("{location} holds a code that is not in {what}"),
            location: Some(location.to_string()),
        }
    }

    /// The 0357 code.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            MapError::Unsupported { error, .. } | MapError::Invalid { error, .. } => *error,
        }
    }

    /// AR for an unsupported message, AE for invalid content.
    pub fn ack_code(&self) -> AckCode {
        match self {
            MapError::Unsupported { .. } => AckCode::AR,
            MapError::Invalid { .. } => AckCode::AE,
        }
    }

    /// The ERR content for an acknowledgement.
    pub fn to_ack_error(&self) -> AckError {
        match self {
            MapError::Unsupported { error, text } => AckError {
                code: *error,
                text: text.clone(),
                location: None,
            },
            MapError::Invalid {
                error,
                text,
                location,
            } => AckError {
                code: *error,
                text: text.clone(),
                location: location.clone(),
            },
        }
    }
}
