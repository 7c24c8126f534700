//! Exchange with other systems: the registered interfaces (an HL7 v2 feed from another
//! organization's system) and every inbound message they send, written once for both
//! backends.
//!
//! An `inbound_message` row is what makes acknowledgements honest: it is written in the
//! same transaction as the message's resources, with the acknowledgement that will be
//! sent, so a message sent again (same sender and control id) is answered with the
//! stored acknowledgement and stores nothing twice; and a message that could not be
//! stored (it parsed but could not be mapped, or the record refused it) is kept here in
//! the `triage` state, never dropped, until it is processed again.

use crate::sql::{Columns, SqlArg};
use crate::{ReadTx, StoreError, Tx};

/// Migration 10 (both backends). Times are microseconds since the Unix epoch; flags 0/1.
pub const SCHEMA: &str = r#"
CREATE TABLE interface (
    id           TEXT PRIMARY KEY,
    facility     TEXT NOT NULL,
    application  TEXT,
    organization TEXT NOT NULL,
    from_cidr    TEXT,
    active       BIGINT NOT NULL,
    created      BIGINT NOT NULL
);
CREATE INDEX interface_facility ON interface (facility);
CREATE TABLE inbound_message (
    id          TEXT PRIMARY KEY,
    interface   TEXT NOT NULL,
    application TEXT NOT NULL,
    facility    TEXT NOT NULL,
    control_id  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    received    BIGINT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT,
    ack         TEXT NOT NULL,
    message     TEXT NOT NULL,
    UNIQUE (application, facility, control_id)
);
CREATE INDEX inbound_message_state ON inbound_message (state, received);
"#;

/// One registered interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceRow {
    /// A short name chosen by whoever registered it (`ghh-lab`).
    pub id: String,
    /// The sending facility (MSH-4) its messages name: its namespace id or universal id.
    pub facility: String,
    /// The sending application (MSH-3), when the interface is narrowed to one.
    pub application: Option<String>,
    /// The Organization id the interface speaks for.
    pub organization: String,
    /// The network the messages must come from (`10.0.0.0/8`), when narrowed.
    pub from_cidr: Option<String>,
    pub active: bool,
    pub created: i64,
}

/// What became of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundState {
    /// Its resources are stored (acknowledged AA).
    Stored,
    /// It could not be stored; it waits to be processed again (acknowledged AE or AR).
    Triage,
    /// Taken out of triage by a person without storing it (a message sent in error).
    Dismissed,
}

impl InboundState {
    pub fn code(self) -> &'static str {
        match self {
            InboundState::Stored => "stored",
            InboundState::Triage => "triage",
            InboundState::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<InboundState> {
        [
            InboundState::Stored,
            InboundState::Triage,
            InboundState::Dismissed,
        ]
        .into_iter()
        .find(|st| st.code() == s)
    }
}

/// One inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRow {
    /// A time-ordered uuid.
    pub id: String,
    pub interface: String,
    /// MSH-3 and MSH-4 as sent, and MSH-10: the sender's key of the message.
    pub application: String,
    pub facility: String,
    pub control_id: String,
    /// SHA-256 (hex) of the message as received: a resend has the same.
    pub digest: String,
    /// `ORU^R01`.
    pub kind: String,
    pub received: i64,
    pub state: InboundState,
    /// Why it is in triage (plain words, no patient data).
    pub reason: Option<String>,
    /// The acknowledgement sent, sent again for a resend.
    pub ack: String,
    /// The message itself.
    pub message: String,
}

pub fn insert_interface<T: Tx + ?Sized>(tx: &mut T, i: &InterfaceRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO interface (id, facility, application, organization, from_cidr, active, created) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            SqlArg::Text(i.id.clone()),
            SqlArg::Text(i.facility.clone()),
            SqlArg::opt_text(i.application.as_deref()),
            SqlArg::Text(i.organization.clone()),
            SqlArg::opt_text(i.from_cidr.as_deref()),
            SqlArg::Int8(i64::from(i.active)),
            SqlArg::Int8(i.created),
        ],
    )?;
    Ok(())
}

/// Sets whether an interface is active; false when there is no such interface.
pub fn set_interface_active<T: Tx + ?Sized>(
    tx: &mut T,
    id: &str,
    active: bool,
) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "UPDATE interface SET active = ? WHERE id = ?",
        &[SqlArg::Int8(i64::from(active)), SqlArg::Text(id.to_owned())],
    )? > 0)
}

const INTERFACE_COLUMNS: &str =
    "id, facility, application, organization, from_cidr, active, created";

fn interface_row(row: Vec<crate::search::SqlValue>) -> Result<InterfaceRow, StoreError> {
    let mut c = Columns::new("interface", row);
    Ok(InterfaceRow {
        id: c.text("id")?,
        facility: c.text("facility")?,
        application: c.opt_text("application")?,
        organization: c.text("organization")?,
        from_cidr: c.opt_text("from_cidr")?,
        active: c.int("active")? != 0,
        created: c.int("created")?,
    })
}

/// Every interface, by id.
pub fn interfaces<T: ReadTx + ?Sized>(tx: &mut T) -> Result<Vec<InterfaceRow>, StoreError> {
    tx.query(
        &format!("SELECT {INTERFACE_COLUMNS} FROM interface ORDER BY id"),
        &[],
    )?
    .into_iter()
    .map(interface_row)
    .collect()
}

/// The interfaces registered for a sending facility (any of the names it may go by).
pub fn interfaces_for_facility<T: ReadTx + ?Sized>(
    tx: &mut T,
    names: &[&str],
) -> Result<Vec<InterfaceRow>, StoreError> {
    let mut out = Vec::new();
    for name in names.iter().filter(|n| !n.is_empty()) {
        let rows = tx.query_shared_plan(
            &format!("SELECT {INTERFACE_COLUMNS} FROM interface WHERE facility = ?"),
            &[SqlArg::Text((*name).to_owned())],
        )?;
        for row in rows {
            let i = interface_row(row)?;
            if !out.iter().any(|o: &InterfaceRow| o.id == i.id) {
                out.push(i);
            }
        }
    }
    Ok(out)
}

const INBOUND_COLUMNS: &str = "id, interface, application, facility, control_id, digest, kind, \
                               received, state, reason, ack, message";

fn inbound_row(row: Vec<crate::search::SqlValue>) -> Result<InboundRow, StoreError> {
    let mut c = Columns::new("inbound_message", row);
    let id = c.text("id")?;
    let interface = c.text("interface")?;
    let application = c.text("application")?;
    let facility = c.text("facility")?;
    let control_id = c.text("control_id")?;
    let digest = c.text("digest")?;
    let kind = c.text("kind")?;
    let received = c.int("received")?;
    let state = c.text("state")?;
    let state = InboundState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("inbound_message state {state:?}")))?;
    Ok(InboundRow {
        id,
        interface,
        application,
        facility,
        control_id,
        digest,
        kind,
        received,
        state,
        reason: c.opt_text("reason")?,
        ack: c.text("ack")?,
        message: c.text("message")?,
    })
}

/// The message a sender gave this key, if any.
pub fn by_key<T: ReadTx + ?Sized>(
    tx: &mut T,
    application: &str,
    facility: &str,
    control_id: &str,
) -> Result<Option<InboundRow>, StoreError> {
    let rows = tx.query_shared_plan(
        &format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_message \
             WHERE application = ? AND facility = ? AND control_id = ?"
        ),
        &[
            SqlArg::Text(application.to_owned()),
            SqlArg::Text(facility.to_owned()),
            SqlArg::Text(control_id.to_owned()),
        ],
    )?;
    rows.into_iter().next().map(inbound_row).transpose()
}

pub fn by_id<T: ReadTx + ?Sized>(tx: &mut T, id: &str) -> Result<Option<InboundRow>, StoreError> {
    let rows = tx.query(
        &format!("SELECT {INBOUND_COLUMNS} FROM inbound_message WHERE id = ?"),
        &[SqlArg::Text(id.to_owned())],
    )?;
    rows.into_iter().next().map(inbound_row).transpose()
}

/// Messages in one state, oldest first, at most `limit`.
pub fn in_state<T: ReadTx + ?Sized>(
    tx: &mut T,
    state: InboundState,
    limit: usize,
) -> Result<Vec<InboundRow>, StoreError> {
    tx.query(
        &format!(
            "SELECT {INBOUND_COLUMNS} FROM inbound_message WHERE state = ? \
             ORDER BY received, id LIMIT ?"
        ),
        &[
            SqlArg::Text(state.code().to_owned()),
            SqlArg::Int8(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
    )?
    .into_iter()
    .map(inbound_row)
    .collect()
}

/// How many messages are in one state.
pub fn count_in_state<T: ReadTx + ?Sized>(
    tx: &mut T,
    state: InboundState,
) -> Result<i64, StoreError> {
    let rows = tx.query(
        "SELECT COUNT(*) FROM inbound_message WHERE state = ?",
        &[SqlArg::Text(state.code().to_owned())],
    )?;
    let row = rows.into_iter().next().unwrap_or_default();
    Columns::new("inbound_message", row).int("count")
}

pub fn insert<T: Tx + ?Sized>(tx: &mut T, m: &InboundRow) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO inbound_message ({INBOUND_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            SqlArg::Text(m.id.clone()),
            SqlArg::Text(m.interface.clone()),
            SqlArg::Text(m.application.clone()),
            SqlArg::Text(m.facility.clone()),
            SqlArg::Text(m.control_id.clone()),
            SqlArg::Text(m.digest.clone()),
            SqlArg::Text(m.kind.clone()),
            SqlArg::Int8(m.received),
            SqlArg::Text(m.state.code().to_owned()),
            SqlArg::opt_text(m.reason.as_deref()),
            SqlArg::Text(m.ack.clone()),
            SqlArg::Text(m.message.clone()),
        ],
    )?;
    Ok(())
}

/// Records what became of a message processed again (or dismissed); false when there is
/// no such message or it was no longer in `from`.
pub fn set_state<T: Tx + ?Sized>(
    tx: &mut T,
    id: &str,
    from: InboundState,
    to: InboundState,
    reason: Option<&str>,
    ack: &str,
) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "UPDATE inbound_message SET state = ?, reason = ?, ack = ? WHERE id = ? AND state = ?",
        &[
            SqlArg::Text(to.code().to_owned()),
            SqlArg::opt_text(reason),
            SqlArg::Text(ack.to_owned()),
            SqlArg::Text(id.to_owned()),
            SqlArg::Text(from.code().to_owned()),
        ],
    )? > 0)
}
