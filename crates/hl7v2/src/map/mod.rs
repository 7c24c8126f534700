//! HL7 v2 messages to a FHIR R4 transaction Bundle, following the HL7 V2-to-FHIR IG.
//!
//! Dispatch is by MSH-9 (message code and trigger event), never by file name. The
//! Bundle rules the caller relies on:
//!
//! * every entry has a `fullUrl` `urn:uuid:<v4>` and a `request`; references between
//!   entries use those fullUrls;
//! * the Patient is the first entry, a conditional update
//!   `PUT Patient?identifier=<system>|<value>` on the first PID-3 identifier of type MR
//!   (else the first one);
//! * resources with a natural identifier are conditional updates on it (so reprocessing a
//!   message updates instead of duplicating); the others are POSTs. When the same
//!   conditional URL would appear twice in one Bundle, the second resource is POSTed
//!   (a transaction may not hold two conditional updates matching the same thing);
//! * the sending organization (`Context::organization`) is referenced, never written;
//!   practitioners are logical references (`identifier` + `display`), never entries.

mod adt;
mod mdm;
mod oru;
mod patient;
mod siu;
mod value;
mod vxu;

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::datatypes::{dtm_date, dtm_datetime, message_offset};
use crate::error::{ErrorCode, MapError};
use crate::parse::{Message, Segment};

/// Who sent the message, as the receiving server knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The sending organization, e.g. `Organization/abc`.
    pub organization: String,
    /// Prefix for identifier systems when an assigning authority gives no OID/URI,
    /// e.g. `urn:oxehr:org:abc:`.
    pub local_system_base: String,
}

/// What a message maps to.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// A transaction Bundle to store.
    Bundle(Value),
    /// ADT^A40: merge the patient identified by `merged` (MRG-1) into `survivor` (PID-3).
    /// Identifiers as (system, value).
    Merge {
        /// PID-3 identifiers of the patient that stays.
        survivor: Vec<(String, String)>,
        /// MRG-1 identifiers of the patient merged away.
        merged: Vec<(String, String)>,
    },
}

/// Map a parsed message to FHIR.
pub fn map(msg: &Message, ctx: &Context) -> Result<Mapped, MapError> {
    let msh = msg.msh();
    let code = msh.comp(9, 1).trim().to_ascii_uppercase();
    let event = msh.comp(9, 2).trim().to_ascii_uppercase();
    let kind = format!("{code}^{event}");
    let unsupported_event = || {
        MapError::Unsupported {
        error: ErrorCode::UnsupportedEventCode,
        text: format!("{kind} messages are not accepted: only the events listed in the interface documentation are"),
    }
    };
    match code.as_str() {
        "ADT" => match event.as_str() {
            "A40" => adt::merge(msg, ctx),
            "A01" | "A02" | "A03" | "A04" | "A05" | "A08" | "A11" | "A13" => {
                adt::patient_and_encounter(msg, ctx, &event)
            }
            "A28" | "A31" => adt::patient_only(msg, ctx),
            _ => Err(unsupported_event()),
        },
        "ORU" if event == "R01" => oru::map(msg, ctx),
        "VXU" if event == "V04" => vxu::map(msg, ctx),
        "SIU" if event == "S12" => siu::map(msg, ctx),
        "MDM" if event == "T02" => mdm::map(msg, ctx),
        "ORU" | "VXU" | "SIU" | "MDM" => Err(unsupported_event()),
        "" => Err(MapError::missing("MSH^1^9", "message type")),
        _ => Err(MapError::Unsupported {
            error: ErrorCode::UnsupportedMessageType,
            text: format!(
                "{code} messages are not accepted: this interface takes ADT, ORU^R01, VXU^V04, SIU^S12 and MDM^T02"
            ),
        }),
    }
}

/// How an entry is written.
pub(crate) enum Write<'a> {
    /// POST to the type.
    Post,
    /// Conditional update on `identifier=<system>|<value>`.
    PutOn(&'a str, &'a str),
}

/// Collects Bundle entries and what every mapper needs.
pub(crate) struct Builder<'a> {
    pub msg: &'a Message,
    pub ctx: &'a Context,
    /// The MSH-7 offset, the default for DTMs without one.
    offset: Option<String>,
    entries: Vec<Value>,
    conditions: HashSet<String>,
}

impl<'a> Builder<'a> {
    pub fn new(msg: &'a Message, ctx: &'a Context) -> Builder<'a> {
        Builder {
            msg,
            ctx,
            offset: message_offset(msg.msh().text(7)),
            entries: Vec::new(),
            conditions: HashSet::new(),
        }
    }

    pub fn base(&self) -> &str {
        &self.ctx.local_system_base
    }

    /// A reference to the sending organization.
    pub fn organization(&self) -> Value {
        json!({"reference": self.ctx.organization})
    }

    /// Add a resource; returns its fullUrl.
    pub fn add(&mut self, resource: Value, write: Write<'_>) -> String {
        let full_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let type_ = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let request = match write {
            Write::PutOn(system, value) => {
                let url = format!(
                    "{type_}?identifier={}%7C{}",
                    query_encode(&search_escape(system)),
                    query_encode(&search_escape(value))
                );
                if self.conditions.insert(url.clone()) {
                    json!({"method": "PUT", "url": url})
                } else {
                    json!({"method": "POST", "url": type_})
                }
            }
            Write::Post => json!({"method": "POST", "url": type_}),
        };
        self.entries.push(json!({
            "fullUrl": full_url,
            "resource": resource,
            "request": request,
        }));
        full_url
    }

    /// Field `field` of `seg` as a FHIR dateTime; 102 when it is not a valid DTM.
    pub fn datetime(&self, seg: &Segment, field: usize) -> Result<Option<String>, MapError> {
        self.datetime_text(seg, field, seg.text(field))
    }

    /// A DTM taken from `seg`'s field `field` (maybe a component) as a FHIR dateTime.
    pub fn datetime_text(
        &self,
        seg: &Segment,
        field: usize,
        raw: &str,
    ) -> Result<Option<String>, MapError> {
        dtm_datetime(raw, self.offset.as_deref())
            .map_err(|()| MapError::bad_type(&self.loc(seg, field), "date/time (DTM)"))
    }

    /// A FHIR instant: a dateTime with a time, else nothing.
    pub fn instant(&self, seg: &Segment, field: usize) -> Result<Option<String>, MapError> {
        Ok(self.datetime(seg, field)?.filter(|d| d.contains('T')))
    }

    /// Field `field` of `seg` as a FHIR date; 102 when it is not a valid DTM.
    pub fn date(&self, seg: &Segment, field: usize) -> Result<Option<String>, MapError> {
        dtm_date(seg.text(field)).map_err(|()| MapError::bad_type(&self.loc(seg, field), "date"))
    }

    /// `SEG^occurrence^field` for an ERR location.
    pub fn loc(&self, seg: &Segment, field: usize) -> String {
        let occurrence = self
            .msg
            .segments_named(seg.name())
            .position(|s| std::ptr::eq(s, seg))
            .map_or(1, |i| i + 1);
        format!("{}^{occurrence}^{field}", seg.name())
    }

    pub fn finish(self) -> Mapped {
        Mapped::Bundle(json!({
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": self.entries,
        }))
    }
}

/// FHIR search value escaping: `\` before `\`, `,`, `$` and `|`.
pub(crate) fn search_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '$' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Percent-encode a query parameter value (everything but RFC 3986 unreserved).
pub(crate) fn query_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A reference to another entry of the Bundle.
pub(crate) fn reference(full_url: &str) -> Value {
    json!({"reference": full_url})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_urls_escape_and_encode() {
        assert_eq!(search_escape(r"a,b$c|d\e"), r"a\,b\$c\|d\\e");
        assert_eq!(query_encode("urn:oid:1.2 x|y"), "urn%3Aoid%3A1.2%20x%7Cy");
    }
}
