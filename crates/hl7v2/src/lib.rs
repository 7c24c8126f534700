//! HL7 v2 for oxehr: parse a message, answer it, and map it to FHIR R4.
//!
//! Pure: no I/O, no clock, no database. The MLLP listener frames bytes, calls
//! [`Message::parse`], [`map`], writes the Bundle through `records`, and answers with
//! [`ack`] (or [`reject_unparsed`] when the bytes do not parse).
//!
//! * [`parse`]: the message tree, escapes, delimiters (our own parser; the module doc
//!   says why `hl7-parser` was not used).
//! * [`header`]: the MSH fields.
//! * [`ack`]: ACK messages, with a v2.5+ ERR segment and table 0357 codes ([`ErrorCode`]).
//! * [`datatypes`]: CX, XPN, XAD, XTN, CWE, XCN and DTM to FHIR.
//! * [`map`]: messages to a FHIR transaction Bundle, following the HL7 V2-to-FHIR IG
//!   tables (each mapping function cites its table).
//!
//! Messages that map (by MSH-9, never by file name):
//!
//! | MSH-9 | result | IG message table |
//! | --- | --- | --- |
//! | ADT^A01, A02, A03, A04, A05, A08, A11, A13 | Patient + Encounter | ADT_A01, ADT_A02, ADT_A05, ADT_A09 (A11), ADT_A01 (A13) |
//! | ADT^A28, A31 | Patient | ADT_A05 |
//! | ADT^A40 | [`Mapped::Merge`] | (merge is an operation, not a Bundle) |
//! | ORU^R01 | Patient, ServiceRequest, DiagnosticReport, Observations, Specimen | ORU_R01 |
//! | VXU^V04 | Patient, Immunization | VXU_V04 |
//! | SIU^S12 | Patient, Appointment | SIU_S12 |
//! | MDM^T02 | Patient, DocumentReference | MDM_T02 |
//!
//! Everything else is [`MapError::Unsupported`] (200 for an unknown message type, 201
//! for an unknown event of a known type).

pub mod ack;
pub mod datatypes;
pub mod error;
pub mod header;
pub mod map;
pub mod parse;

pub use ack::{ack, reject_unparsed, AckCode, AckError};
pub use error::{ErrorCode, MapError};
pub use header::{Hd, Header};
pub use map::{map, Context, Mapped};
pub use parse::{Encoding, Message, ParseError};

/// What a message of `kind` (`ORU^R01`, or `ADT`) is, in words a clinician or an
/// administrator reads: "a result message (HL7 v2 ORU^R01)".
pub fn message_title(kind: &str) -> String {
    let code = kind.split('^').next().unwrap_or("");
    let what = match code {
        "ADT" => "a registration message",
        "ORU" => "a result message",
        "VXU" => "an immunization message",
        "SIU" => "a scheduling message",
        "MDM" => "a document message",
        _ => "a message",
    };
    format!("{what} (HL7 v2 {kind})")
}

#[cfg(test)]
mod title_tests {
    #[test]
    fn a_message_kind_reads_as_words() {
        assert_eq!(
            super::message_title("ORU^R01"),
            "a result message (HL7 v2 ORU^R01)"
        );
        assert_eq!(super::message_title("QRY"), "a message (HL7 v2 QRY)");
    }
}
