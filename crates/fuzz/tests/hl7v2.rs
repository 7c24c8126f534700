//! HL7 v2 under hostile input: the shared sample messages (ADT, ORU, VXU, SIU, MDM…)
//! mutated with the format's own tokens — delimiters, escapes, segment names, MSH
//! headers with other encoding characters, line ends, BOMs — and arbitrary bytes.
//!
//! For every input: parsing gives a message or an error; a parsed message maps to FHIR
//! or to an error; and an acknowledgement can always be written (AA/AE for a parsed
//! message, AR for bytes that do not parse), naming the message's control id. No panic.

mod common;

use oxehr_hl7v2::{ack, map, reject_unparsed, AckCode, AckError, Context, Message};
use proptest::prelude::*;

const TOKENS: &[&[u8]] = &[
    b"|",
    b"^",
    b"~",
    b"\\",
    b"&",
    b"\r",
    b"\n",
    b"\r\n",
    b"\xEF\xBB\xBF",
    b"\x0b",
    b"\x1c",
    b"MSH|^~\\&|",
    b"MSH|#!$%|",
    b"MSH|",
    b"\rPID|1||",
    b"\rOBX|1|NM|",
    b"\rOBR|1|",
    b"\rMRG|",
    b"\rORC|",
    b"\rRXA|0|1|",
    b"\rEVN|",
    b"\rNTE|",
    b"\rTXA|",
    b"\rOBX|1|ED|",
    b"\\X0D\\",
    b"\\X\\",
    b"\\.br\\",
    b"\\H\\",
    b"\\E\\",
    b"\\Zabc\\",
    b"\\C2842\\",
    b"20240230",
    b"99999999999999",
    b"2024010112",
    b"+9999",
    b"-0.0",
    b"1e999",
    b"ADT^A40",
    b"ORU^R01",
    b"VXU^V04",
    b"SIU^S12",
    b"MDM^T02",
    b"ADT^A08",
    b"^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    b"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
];

fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let Some(dir) = common::shared("hl7v2") else {
            return Vec::new();
        };
        common::files(&dir, ".hl7")
            .into_iter()
            .map(|p| std::fs::read(p).expect("sample"))
            .collect()
    })
}

fn context() -> Context {
    Context {
        organization: "Organization/sender".into(),
        local_system_base: "urn:oxehr:org:sender:".into(),
    }
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match Message::parse(bytes) {
        Ok(msg) => {
            let header = msg.header();
            let mapped = map(&msg, &context());
            let (code, err) = match &mapped {
                Ok(_) => (AckCode::AA, None),
                Err(e) => (AckCode::AE, Some(e.to_ack_error())),
            };
            let a = ack(&header, code, err.as_ref(), "ACK1", "20240101120000");
            prop_assert!(a.starts_with("MSH"), "{a}");
            prop_assert!(a.contains("MSA"), "{a}");
        }
        Err(e) => {
            let a = reject_unparsed(
                bytes,
                &AckError::from_parse_error(&e),
                "ACK1",
                "20240101120000",
            );
            prop_assert!(a.starts_with("MSH"), "{a}");
            prop_assert!(a.contains("MSA"), "{a}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn mutated_messages(seed in any::<prop::sample::Index>(), edits in common::edits(TOKENS.len(), 10)) {
        let seeds = seeds();
        if !seeds.is_empty() {
            let s: &Vec<u8> = seed.get(seeds);
            check(&common::apply(s, &edits, TOKENS))?;
        }
    }

    #[test]
    fn arbitrary_bytes(prefix in any::<bool>(), bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut b = if prefix { b"MSH|^~\\&|".to_vec() } else { Vec::new() };
        b.extend(bytes);
        check(&b)?;
    }
}
