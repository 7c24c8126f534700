//! The demo's exchange with other systems, so the "Incoming records" page and the chart's
//! sources have something real to show: the practice's registration system is an HL7
//! v2 interface, and two of its messages arrive through the same code an MLLP
//! connection uses (`oxehr_hl7_listener::process`):
//! - an ADT^A04 registering, under the registration system's own number, a person the
//!   practice already knows (a likely duplicate, listed for review);
//! - an ORU^R01 whose result lacks its test code (OBX-3), which cannot be filed and
//!   waits in triage for the sender to fix it.

use anyhow::{bail, Result};
use serde_json::Value;

use oxehr_records::{Caller, Records};
use oxehr_store::inbound::InterfaceRow;

use super::Staff;

/// The sending facility (MSH-4) of the demo's registration system.
pub const FACILITY: &str = "DEMO-REG";

/// Registers the interface and sends the two messages; `lookalike` is a patient in the
/// staff's care whom the registration system registers a second time.
pub fn write(records: &Records, staff: &Staff, lookalike: &Value) -> Result<()> {
    let server = Caller::server();
    records.add_interface(
        &server,
        &InterfaceRow {
            id: "registration-desk".into(),
            facility: FACILITY.into(),
            application: None,
            organization: staff.organization.clone(),
            from_cidr: None,
            active: true,
            created: oxehr_records::now_micros(),
        },
    )?;
    let now = hl7_time();
    let name = &lookalike["name"][0];
    let family = name["family"].as_str().unwrap_or_default();
    let given = name["given"][0].as_str().unwrap_or_default();
    let birth = lookalike["birthDate"]
        .as_str()
        .unwrap_or_default()
        .replace('-', "");
    let sex = match lookalike["gender"].as_str() {
        Some("female") => "F",
        Some("male") => "M",
        _ => "U",
    };
    let a = &lookalike["address"][0];
    let address = format!(
        "{}^^{}^{}^{}",
        a["line"][0].as_str().unwrap_or_default(),
        a["city"].as_str().unwrap_or_default(),
        a["state"].as_str().unwrap_or_default(),
        a["postalCode"].as_str().unwrap_or_default()
    );
    let registration = format!(
        "MSH|^~\\&|REGISTRATION|{FACILITY}|OXEHR|PRACTICE|{now}||ADT^A04^ADT_A01|demo-reg-1|P|2.5.1\r\
         EVN|A04|{now}\r\
         PID|1||DR-40417^^^{FACILITY}^MR||{family}^{given}||{birth}|{sex}|||{address}\r\
         PV1|1|O|||||||||||||||||DV-1001|||||||||||||||||||||||||{now}\r"
    );
    let result = format!(
        "MSH|^~\\&|REGISTRATION|{FACILITY}|OXEHR|PRACTICE|{now}||ORU^R01^ORU_R01|demo-lab-1|P|2.5.1\r\
         PID|1||DR-99999^^^{FACILITY}^MR||Okafor^Grace||19710304|F\r\
         OBR|1||L-1|4548-4^Hemoglobin A1c/Hemoglobin.total in Blood^LN|||{now}\r\
         OBX|1|NM|||6.1|%|4.0-5.6|H|||F|||{now}\r"
    );
    for (what, message) in [("registration", registration), ("result", result)] {
        let answer = oxehr_hl7_listener::process(records, message.as_bytes(), None);
        tracing::info!(
            message = what,
            outcome = answer.outcome.kind(),
            "demo HL7 message"
        );
        if matches!(answer.outcome, oxehr_hl7_listener::Outcome::Failed { .. }) {
            bail!("the demo {what} message failed");
        }
    }
    Ok(())
}

/// Now as an HL7 v2 timestamp (`YYYYMMDDHHMMSS`, UTC).
fn hl7_time() -> String {
    let t = oxehr_records::format_instant(oxehr_records::now_micros());
    t.chars().filter(char::is_ascii_digit).take(14).collect()
}
