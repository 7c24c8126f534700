//! The message header (MSH) as the listener needs it: who sent the message, to whom,
//! what it is, and how to answer it.

use crate::parse::{Encoding, Message, Segment};

/// An HD (hierarchic designator) field: the raw text as written and its HD.1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hd {
    /// The whole field exactly as written (escapes included), to echo in an ACK.
    pub raw: String,
    /// HD.1 namespace id, unescaped.
    pub namespace_id: String,
}

/// The MSH fields of a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// MSH-1 and MSH-2.
    pub encoding: Encoding,
    /// MSH-3.
    pub sending_application: Hd,
    /// MSH-4.
    pub sending_facility: Hd,
    /// MSH-5.
    pub receiving_application: Hd,
    /// MSH-6.
    pub receiving_facility: Hd,
    /// MSH-7 date/time of message, as written (an HL7 DTM).
    pub date_time: String,
    /// MSH-9.1 message code, e.g. `ADT`.
    pub message_code: String,
    /// MSH-9.2 trigger event, e.g. `A01`.
    pub trigger_event: String,
    /// MSH-9.3 message structure, e.g. `ADT_A01` (often empty before v2.4).
    pub message_structure: String,
    /// MSH-10 message control id.
    pub control_id: String,
    /// MSH-11.1 processing id (`P`, `T`, `D`).
    pub processing_id: String,
    /// MSH-12.1 version id, e.g. `2.5.1`.
    pub version: String,
}

impl Header {
    /// Read the header of a parsed message.
    pub fn from_message(msg: &Message) -> Header {
        Header::from_msh(msg.msh(), *msg.encoding())
    }

    pub(crate) fn from_msh(msh: &Segment, encoding: Encoding) -> Header {
        let hd = |n: usize| Hd {
            raw: msh.raw(n).to_string(),
            namespace_id: msh.text(n).to_string(),
        };
        Header {
            encoding,
            sending_application: hd(3),
            sending_facility: hd(4),
            receiving_application: hd(5),
            receiving_facility: hd(6),
            date_time: msh.text(7).to_string(),
            message_code: msh.comp(9, 1).to_string(),
            trigger_event: msh.comp(9, 2).to_string(),
            message_structure: msh.comp(9, 3).to_string(),
            control_id: msh.text(10).to_string(),
            processing_id: msh.text(11).to_string(),
            version: msh.text(12).to_string(),
        }
    }
}

impl Message {
    /// The header of this message.
    pub fn header(&self) -> Header {
        Header::from_message(self)
    }
}
