//! Acknowledgements: the original-mode ACK for a parsed message, and a best-effort AR
//! for bytes that could not be parsed, so the listener can always answer.
//!
//! Layout (v2.5+ ERR, which older receivers ignore field by field):
//!
//! ```text
//! MSH|^~\&|<MSH-5>|<MSH-6>|<MSH-3>|<MSH-4>|<now>||ACK^<trigger>^ACK|<ack id>|<MSH-11>|<MSH-12>
//! MSA|<AA/AE/AR>|<original MSH-10>
//! ERR||<SEG^seq^field>|<0357 code>^<0357 text>^HL70357|E||||<reason>
//! ```
//!
//! * The sender's own delimiters are used, and MSH-3..6 are echoed as written (so
//!   their escapes stay valid); every other value written is escaped.
//! * MSH-11 echoes the original processing id (`P` when it had none): a `T` message
//!   answered as `P` would be refused by a careful sender.
//! * The reason goes in ERR-8 (user message); ERR-3 carries the table 0357 code and
//!   text; ERR-4 severity is always `E`.
//! * Segments end with CR, as MLLP peers expect.

use crate::error::ErrorCode;
use crate::header::Header;
use crate::parse::{Encoding, Message, ParseError};

/// MSA-1 acknowledgement codes (original mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Application accept.
    AA,
    /// Application error: the message was understood but could not be processed.
    AE,
    /// Application reject: the message was refused (unsupported, unparsable).
    AR,
}

impl AckCode {
    /// The code as written in MSA-1.
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
        }
    }
}

/// What goes into the ERR segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckError {
    /// HL7 table 0357 code.
    pub code: ErrorCode,
    /// The reason in plain words (escaped when written). Never patient data.
    pub text: String,
    /// Error location as `SEG^sequence^field[^repetition^component]`, e.g. `PID^1^3`.
    pub location: Option<String>,
}

impl AckError {
    /// The ERR content for a message that did not parse.
    pub fn from_parse_error(err: &ParseError) -> AckError {
        let (code, location) = match err {
            ParseError::Empty | ParseError::NoMsh => (ErrorCode::SegmentSequenceError, None),
            ParseError::BadEncodingCharacters => {
                (ErrorCode::DataTypeError, Some("MSH^1^2".to_string()))
            }
            ParseError::BadSegmentName { .. } => (ErrorCode::SegmentSequenceError, None),
        };
        AckError {
            code,
            text: err.to_string(),
            location,
        }
    }
}

/// Build the acknowledgement of `header`'s message.
///
/// `ack_control_id` becomes the ACK's MSH-10 and `now_hl7_dtm` its MSH-7 (the caller
/// owns the clock and the id generator; this crate stays pure).
pub fn ack(
    header: &Header,
    code: AckCode,
    error: Option<&AckError>,
    ack_control_id: &str,
    now_hl7_dtm: &str,
) -> String {
    let e = &header.encoding;
    let f = e.field;
    let c = e.component;
    let processing = if header.processing_id.is_empty() {
        "P".to_string()
    } else {
        e.escape(&header.processing_id)
    };
    let mut out = format!(
        "MSH{f}{msh2}{f}{ra}{f}{rf}{f}{sa}{f}{sf}{f}{now}{f}{f}ACK{c}{trigger}{c}ACK{f}{id}{f}{processing}{f}{version}\r",
        msh2 = e.msh2(),
        ra = header.receiving_application.raw,
        rf = header.receiving_facility.raw,
        sa = header.sending_application.raw,
        sf = header.sending_facility.raw,
        now = e.escape(now_hl7_dtm),
        trigger = e.escape(&header.trigger_event),
        id = e.escape(ack_control_id),
        version = e.escape(&header.version),
    );
    out.push_str(&format!(
        "MSA{f}{}{f}{}\r",
        code.as_str(),
        e.escape(&header.control_id)
    ));
    if let Some(err) = error {
        out.push_str(&err_segment(e, err));
    }
    out
}

fn err_segment(e: &Encoding, err: &AckError) -> String {
    let f = e.field;
    let c = e.component;
    let location = err
        .location
        .as_deref()
        .map(|l| {
            l.split('^')
                .map(|part| e.escape(part))
                .collect::<Vec<_>>()
                .join(&c.to_string())
        })
        .unwrap_or_default();
    format!(
        "ERR{f}{f}{location}{f}{code}{c}{table_text}{c}HL70357{f}E{f}{f}{f}{f}{reason}\r",
        code = err.code.code(),
        table_text = e.escape(err.code.text()),
        reason = e.escape(&err.text),
    )
}

/// A best-effort AR for bytes that did not parse as a message.
///
/// The MSH fields (and delimiters) are taken from the bytes when an MSH line can be
/// read there, else left empty with the default delimiters; MSH-12 then says `2.5.1`
/// because the ERR segment uses that version's layout.
pub fn reject_unparsed(
    bytes: &[u8],
    error: &AckError,
    ack_control_id: &str,
    now_hl7_dtm: &str,
) -> String {
    let mut header = salvage_header(bytes).unwrap_or_default();
    if header.version.is_empty() {
        header.version = "2.5.1".to_string();
    }
    ack(
        &header,
        AckCode::AR,
        Some(error),
        ack_control_id,
        now_hl7_dtm,
    )
}

fn salvage_header(bytes: &[u8]) -> Option<Header> {
    let text = String::from_utf8_lossy(bytes);
    let start = text.find("MSH")?;
    let line = text[start..].split(['\r', '\n']).next()?;
    let msg = Message::parse_str(line).ok()?;
    Some(msg.header())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(text: &str) -> Header {
        Message::parse_str(text).expect("parses").header()
    }

    #[test]
    fn accept_echoes_sender_and_receiver_swapped() {
        let h =
            header_of("MSH|^~\\&|SND|SFAC^1.2^ISO|RCV|RFAC|20240101||ADT^A01^ADT_A01|C1|P|2.5.1");
        let got = ack(&h, AckCode::AA, None, "A9", "20240102030405+0000");
        assert_eq!(
            got,
            "MSH|^~\\&|RCV|RFAC|SND|SFAC^1.2^ISO|20240102030405+0000||ACK^A01^ACK|A9|P|2.5.1\rMSA|AA|C1\r"
        );
    }

    #[test]
    fn error_text_with_delimiters_is_escaped() {
        let h = header_of("MSH|^~\\&|S|F|R|G|20240101||ORU^R01|C|T|2.5");
        let err = AckError {
            code: ErrorCode::RequiredFieldMissing,
            text: "bad | value ^ here & ~ \\".to_string(),
            location: Some("PID^1^3".to_string()),
        };
        let got = ack(&h, AckCode::AE, Some(&err), "A", "20240101");
        let err_line = got.split('\r').nth(2).expect("ERR line");
        assert_eq!(
            err_line,
            "ERR||PID^1^3|101^Required field missing^HL70357|E||||bad \\F\\ value \\S\\ here \\T\\ \\R\\ \\E\\"
        );
        assert!(got.contains("|ACK^R01^ACK|A|T|2.5\r"));
        assert_eq!(got.matches('\r').count(), 3);
    }

    #[test]
    fn custom_delimiters_are_used_in_the_answer() {
        let h = header_of("MSH$%#!|$S$F$R$G$2024$$ADT%A04$C$P$2.3");
        let err = AckError {
            code: ErrorCode::UnsupportedEventCode,
            text: "a$b".to_string(),
            location: Some("MSH^1^9^1^2".to_string()),
        };
        let got = ack(&h, AckCode::AR, Some(&err), "X", "2024");
        assert!(
            got.starts_with("MSH$%#!|$R$G$S$F$2024$$ACK%A04%ACK$X$P$2.3\r"),
            "{got}"
        );
        assert!(got.contains("MSA$AR$C\r"));
        assert!(got.contains("ERR$$MSH%1%9%1%2$201%Unsupported event code%HL70357$E$$$$a!F!b\r"));
    }

    #[test]
    fn reject_unparsed_garbage_and_broken_messages() {
        let err = AckError::from_parse_error(&ParseError::NoMsh);
        let got = reject_unparsed(b"\x00\xffgarbage", &err, "R1", "2024");
        assert_eq!(
            got,
            "MSH|^~\\&|||||2024||ACK^^ACK|R1|P|2.5.1\rMSA|AR|\rERR|||100^Segment sequence error^HL70357|E||||the message does not start with an MSH segment\r"
        );
        // An MSH that reads, followed by a broken segment: its fields are echoed.
        let bytes = b"\x0bMSH|^~\\&|S|F|R|G|2024||ADT^A08|C7|P|2.4\r?? broken\r\x1c\r";
        let parse_err = Message::parse(bytes).expect_err("broken");
        let got = reject_unparsed(bytes, &AckError::from_parse_error(&parse_err), "R2", "2025");
        assert!(
            got.starts_with("MSH|^~\\&|R|G|S|F|2025||ACK^A08^ACK|R2|P|2.4\rMSA|AR|C7\rERR|"),
            "{got}"
        );
    }

    #[test]
    fn error_codes_match_table_0357() {
        let codes: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            codes,
            [100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207]
        );
        assert!(ErrorCode::ALL.iter().all(|c| !c.text().is_empty()));
    }
}
