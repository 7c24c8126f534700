//! One inbound message, from bytes to acknowledgement: parse (`oxehr_hl7v2`), find the
//! interface it came through, map it to FHIR, store it through `records`, answer.
//!
//! What each outcome is acknowledged with (HL7 table 0357 codes in the ERR segment):
//!
//! | outcome | answer | kept |
//! |---|---|---|
//! | stored (after the commit) | AA | the resources, their Provenance, the message's row |
//! | sent again, same bytes | the acknowledgement sent the first time | nothing new |
//! | the bytes are not an HL7 v2 message | AR 100 / 102 | nothing (there is no message to keep); audited |
//! | no interface for the sending facility or address | AR 204 | nothing; audited |
//! | the control id was used before for another message | AR 205 | nothing |
//! | a message type or event not mapped | AR 200 / 201 | the message, in triage |
//! | the message lacks or garbles what its mapping needs | AE 101 / 102 / 103 | the message, in triage |
//! | the record refuses it (access rule, validation, two patients with its identifier, a merge of patients the record does not hold) | AE 207 | the message, in triage |
//! | the store is busy or failing | AE 206 / 207 | nothing: the sender still holds it and sends again |
//!
//! A message in triage is processed again by [`reprocess`] (after a fix: a mapping, a
//! merge, a care relationship) and is never dropped.

use std::net::IpAddr;

use oxehr_hl7v2::{AckCode, AckError, ErrorCode, Hd, Header, MapError, Mapped, Message};
use oxehr_records::exchange::{Inbound, Ingested, PatientUpdate};
use oxehr_records::{Caller, Category, Records, RecordsError};

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    Resent,
    Held { reason: String },
    Rejected { reason: String },
    Failed { reason: String },
}

impl Outcome {
    /// The outcome in one word, for logs (a reason may quote the message).
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Stored => "stored",
            Outcome::Resent => "resent",
            Outcome::Held { .. } => "held",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Failed { .. } => "failed",
        }
    }
}

/// The answer to a frame longer than the listener accepts.
pub fn too_long(max: usize) -> String {
    let (id, now) = ack_id_and_time();
    oxehr_hl7v2::reject_unparsed(
        &[],
        &error(
            ErrorCode::SegmentSequenceError,
            &format!("the message is longer than {max} bytes"),
        ),
        &id,
        &now,
    )
}

/// An answer to the sender and what it stands for.
#[derive(Debug, Clone)]
pub struct Answer {
    pub ack: String,
    pub outcome: Outcome,
}

/// Processes one message received from `peer`. Blocking: run it on a blocking thread.
pub fn process(records: &Records, bytes: &[u8], peer: Option<IpAddr>) -> Answer {
    let message = match Message::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            let error = AckError::from_parse_error(&e);
            let (id, now) = ack_id_and_time();
            return Answer {
                ack: oxehr_hl7v2::reject_unparsed(bytes, &error, &id, &now),
                outcome: Outcome::Rejected {
                    reason: format!("not an HL7 v2 message: {e}"),
                },
            };
        }
    };
    let header = message.header();
    let reject = |code: ErrorCode, reason: String| Answer {
        ack: ack(&header, AckCode::AR, Some(&error(code, &reason))),
        outcome: Outcome::Rejected { reason },
    };
    let applications = names(&header, &header.sending_application);
    // A message that names no facility is known by its application.
    let facilities = if header.sending_facility.raw.is_empty() {
        applications.clone()
    } else {
        names(&header, &header.sending_facility)
    };
    let interface = match records.interface_for(&applications, &facilities, peer) {
        Ok(Some(i)) => i,
        Ok(None) => {
            return reject(
                ErrorCode::UnknownKeyIdentifier,
                "no interface is registered for this sending facility and address".into(),
            )
        }
        Err(e) => return failed(&header, &e),
    };
    let inbound = Inbound {
        interface: interface.id.clone(),
        application: header.sending_application.raw.clone(),
        facility: header.sending_facility.raw.clone(),
        control_id: header.control_id.clone(),
        kind: kind(&header),
        title: title(&header),
        message: String::from_utf8_lossy(bytes).into_owned(),
    };
    // A message sent again is answered as the first time by `ingest` (or by `hold`,
    // for one that fails its mapping again), each of which looks for its row first.
    let who = records.interface_caller(&interface, peer);
    match mapped(&message, &interface.organization) {
        Ok(work) => {
            let aa = ack(&header, AckCode::AA, None);
            let stored = match work {
                Work::Bundle(bundle, update) => records.ingest(&who, &inbound, bundle, update, &aa),
                Work::Merge { survivor, merged } => {
                    records.ingest_merge(&who, &inbound, &survivor, &merged, &aa)
                }
            };
            match stored {
                Ok(Ingested::Stored(_)) => Answer {
                    ack: aa,
                    outcome: Outcome::Stored,
                },
                Ok(seen) => answer_seen(&header, seen),
                Err(e) if transient(&e) => failed(&header, &e),
                Err(e) => hold(records, &header, &inbound, refused(&e)),
            }
        }
        Err(held) => hold(records, &header, &inbound, held),
    }
}

/// Processes a message held in triage again, as its interface (system administrators
/// only: `who` is checked by `records`). The message stays in triage, with the new
/// reason, when it fails again.
pub fn reprocess(records: &Records, who: &Caller, id: &str) -> Result<Outcome, RecordsError> {
    let row = records
        .triage(who, usize::MAX)?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| RecordsError::NotFound(format!("no message {id} in triage")))?;
    let interface = records
        .interfaces(who)?
        .into_iter()
        .find(|i| i.id == row.interface)
        .ok_or_else(|| RecordsError::NotFound(format!("interface {}", row.interface)))?;
    let message = Message::parse(row.message.as_bytes())
        .map_err(|e| RecordsError::Internal(format!("a held message no longer parses: {e}")))?;
    let header = message.header();
    let caller = records.interface_caller(&interface, None);
    let failure = match mapped(&message, &interface.organization) {
        Ok(work) => {
            let aa = ack(&header, AckCode::AA, None);
            let stored = match work {
                Work::Bundle(bundle, update) => {
                    records.reprocess(&caller, id, bundle, update, &title(&header), &aa)
                }
                Work::Merge { survivor, merged } => {
                    records.reprocess_merge(&caller, id, &survivor, &merged, &aa)
                }
            };
            match stored {
                Ok(_) => return Ok(Outcome::Stored),
                Err(e) if transient(&e) => return Err(e),
                Err(e) => refused(&e),
            }
        }
        Err(held) => held,
    };
    records.retriage(id, &failure.reason, &failure.ack(&header))?;
    Ok(Outcome::Held {
        reason: failure.reason,
    })
}

/// Why a message is held, and how it is acknowledged.
#[derive(Debug)]
struct Held {
    code: AckCode,
    error: ErrorCode,
    reason: String,
    location: Option<String>,
}

impl Held {
    fn ack(&self, header: &Header) -> String {
        let mut e = error(self.error, &self.reason);
        e.location = self.location.clone();
        ack(header, self.code, Some(&e))
    }
}

/// What a mapped message asks of the record.
enum Work {
    /// Store this transaction Bundle, treating a known patient so.
    Bundle(serde_json::Value, PatientUpdate),
    /// Merge the patient with one of `merged` into the one with one of `survivor`.
    Merge {
        survivor: Vec<(String, String)>,
        merged: Vec<(String, String)>,
    },
}

/// The message as the work it asks of the record.
fn mapped(message: &Message, organization: &str) -> Result<Work, Held> {
    let ctx = oxehr_hl7v2::Context {
        organization: format!("Organization/{organization}"),
        local_system_base: format!("urn:oxehr:org:{organization}:"),
    };
    match oxehr_hl7v2::map(message, &ctx) {
        Ok(Mapped::Bundle(bundle)) => {
            let update = if message.header().message_code == "ADT" {
                PatientUpdate::Replace
            } else {
                PatientUpdate::Keep
            };
            Ok(Work::Bundle(bundle, update))
        }
        Ok(Mapped::Merge { survivor, merged }) => Ok(Work::Merge { survivor, merged }),
        Err(MapError::Unsupported { error, text }) => Err(Held {
            code: AckCode::AR,
            error,
            reason: text,
            location: None,
        }),
        Err(MapError::Invalid {
            error,
            text,
            location,
        }) => Err(Held {
            code: AckCode::AE,
            error,
            reason: text,
            location,
        }),
    }
}

fn hold(records: &Records, header: &Header, inbound: &Inbound, held: Held) -> Answer {
    let ack_text = held.ack(header);
    match records.hold(inbound, &held.reason, &ack_text) {
        Ok(Ingested::Held) => {
            let outcome = if held.code == AckCode::AR {
                Outcome::Rejected {
                    reason: held.reason,
                }
            } else {
                Outcome::Held {
                    reason: held.reason,
                }
            };
            Answer {
                ack: ack_text,
                outcome,
            }
        }
        Ok(seen) => answer_seen(header, seen),
        Err(e) => failed(header, &e),
    }
}

/// A refusal of the record, as a held message's reason.
fn refused(e: &RecordsError) -> Held {
    Held {
        code: AckCode::AE,
        error: ErrorCode::ApplicationInternalError,
        reason: format!("the record refused the message: {e}"),
        location: None,
    }
}

/// Errors the sender should simply send again after (nothing is kept).
fn transient(e: &RecordsError) -> bool {
    matches!(e.category(), Category::Busy) || matches!(e, RecordsError::Internal(_))
}

fn failed(header: &Header, e: &RecordsError) -> Answer {
    let (code, reason) = match e.category() {
        Category::Busy => (
            ErrorCode::ApplicationRecordLocked,
            "the record is busy; send the message again".to_string(),
        ),
        _ => (
            ErrorCode::ApplicationInternalError,
            "the message could not be stored; send it again".to_string(),
        ),
    };
    tracing::warn!(error = %e, "an HL7 v2 message could not be stored");
    Answer {
        ack: ack(header, AckCode::AE, Some(&error(code, &reason))),
        outcome: Outcome::Failed { reason },
    }
}

fn answer_seen(header: &Header, seen: Ingested) -> Answer {
    match seen {
        Ingested::Resent { ack } => Answer {
            ack,
            outcome: Outcome::Resent,
        },
        Ingested::Stored(_) => Answer {
            ack: ack(header, AckCode::AA, None),
            outcome: Outcome::Stored,
        },
        Ingested::Held | Ingested::Reused => {
            let reason = "this control id was used before for a different message".to_string();
            Answer {
                ack: ack(
                    header,
                    AckCode::AR,
                    Some(&error(ErrorCode::DuplicateKeyIdentifier, &reason)),
                ),
                outcome: Outcome::Rejected { reason },
            }
        }
    }
}

fn error(code: ErrorCode, text: &str) -> AckError {
    AckError {
        code,
        text: text.to_owned(),
        location: None,
    }
}

fn ack(header: &Header, code: AckCode, error: Option<&AckError>) -> String {
    let (id, now) = ack_id_and_time();
    oxehr_hl7v2::ack(header, code, error, &id, &now)
}

/// A new acknowledgement's control id and time (HL7 DTM, UTC).
fn ack_id_and_time() -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    let dtm = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}+0000",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    (uuid::Uuid::now_v7().simple().to_string(), dtm)
}

/// `ORU^R01`.
fn kind(h: &Header) -> String {
    if h.trigger_event.is_empty() {
        h.message_code.clone()
    } else {
        format!("{}^{}", h.message_code, h.trigger_event)
    }
}

/// What a message is, in words a clinician reads under an entry.
pub fn title(h: &Header) -> String {
    oxehr_hl7v2::message_title(&kind(h))
}

/// The names an HD field of the header goes by: as sent, its namespace id (HD.1) and
/// its universal id (HD.2).
fn names<'a>(header: &Header, hd: &'a Hd) -> Vec<&'a str> {
    let mut out = vec![hd.raw.as_str()];
    if !hd.namespace_id.is_empty() && hd.namespace_id != hd.raw {
        out.push(hd.namespace_id.as_str());
    }
    if let Some(universal) = hd
        .raw
        .split(header.encoding.component)
        .nth(1)
        .filter(|u| !u.is_empty())
    {
        out.push(universal);
    }
    out
}
