//! Exchange: what other organizations' systems send in, and the interfaces they send
//! through.
//!
//! An interface (an HL7 v2 feed) is registered by a system administrator for one sending
//! facility and speaks for one Organization. A message it sends is stored by
//! [`Records::ingest`] as the interface's organization: its staff's access rules, no
//! more (an interface creates and updates, never deletes, and writes only into the
//! records of patients its organization cares for, or that the message itself brings
//! into its care: an admission, a lab order it fills). Every message's resources get a
//! Provenance naming the organization and the message, so the chart shows where each
//! entry came from.
//!
//! The inbound message's row (`oxehr_store::inbound`) is written in the same transaction
//! as its resources, with the acknowledgement that will be sent: a message sent again
//! (same MSH-3, MSH-4 and MSH-10) is answered with that acknowledgement and stores
//! nothing new, and one that could not be stored is kept in triage ([`Records::hold`])
//! until it is processed again ([`Records::reprocess`]) or dismissed.
//!
//! The patient a message is about is found by identifier among all patients, not only
//! those the interface's organization already sees (a lab's first result for a patient
//! the practice registered): otherwise the message would make a second Patient with the
//! same identifier. The answer tells the sender nothing it did not send.

use std::net::IpAddr;
use std::sync::Arc;

use oxehr_auth::scope::{Context, Permissions, ResourceScope};
use oxehr_auth::{Caller, Role};
use oxehr_fhir::IssueCode;
use oxehr_store::inbound::{self, InboundRow, InboundState, InterfaceRow};
use oxehr_store::StoreError;
use serde_json::{json, Value};

use crate::{audit, time_fmt, EntryOutcome, Records, RecordsError, StoredResource};
use oxehr_fhir::ResourceId;

/// The identifier system of an inbound message's Provenance entity: `MSH-3|MSH-4|MSH-10`.
pub const MESSAGE_SYSTEM: &str = "urn:oxehr:hl7v2:message";

/// A message as received, before anything is decided about it.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The interface it came through.
    pub interface: String,
    /// MSH-3, MSH-4 (as sent) and MSH-10: the sender's key of the message.
    pub application: String,
    pub facility: String,
    pub control_id: String,
    /// `ORU^R01`.
    pub kind: String,
    /// What the message is, in words, for the chart's "from … by …" (`a lab result
    /// message (HL7 v2 ORU^R01)`).
    pub title: String,
    /// The message itself.
    pub message: String,
}

impl Inbound {
    fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.message.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn row(&self, state: InboundState, reason: Option<String>, ack: &str) -> InboundRow {
        InboundRow {
            id: uuid::Uuid::now_v7().to_string(),
            interface: self.interface.clone(),
            application: self.application.clone(),
            facility: self.facility.clone(),
            control_id: self.control_id.clone(),
            digest: self.digest(),
            kind: self.kind.clone(),
            received: time_fmt::now_micros(),
            state,
            reason,
            ack: ack.to_owned(),
            message: self.message.clone(),
        }
    }
}

/// Processes a message held in triage again (by its row id) as `who`, and says what
/// became of it in words: set once by the program that knows how to map the messages
/// (the HL7 listener's mapping, which this crate does not depend on), so any adapter —
/// a page, the command line — can offer "try again".
#[derive(Clone)]
pub struct Reprocessor(pub Arc<ReprocessFn>);

/// The function a [`Reprocessor`] holds: (records, who, held message id) → what became
/// of it.
pub type ReprocessFn =
    dyn Fn(&Records, &Caller, &str) -> Result<String, RecordsError> + Send + Sync;

impl std::fmt::Debug for Reprocessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reprocessor")
    }
}

/// What [`Records::ingest`] and [`Records::hold`] did.
#[derive(Debug)]
pub enum Ingested {
    /// Stored now: the message's resources (and its Provenance, last).
    Stored(Vec<EntryOutcome>),
    /// Kept in triage now.
    Held,
    /// The sender sent this very message before: answer with the acknowledgement sent
    /// then.
    Resent { ack: String },
    /// The sender used this control id before for a different message.
    Reused,
}

/// How an ingest treats the patient the message names when the record already has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientUpdate {
    /// The message is about the patient's registration (ADT): what it says of them
    /// replaces what the record says, element by element; identifiers are added.
    Replace,
    /// The message only names the patient (a result, an immunization): the record's
    /// Patient is left as it is.
    Keep,
    /// The document names the patient (a summary of care): a patient the record has is
    /// left as it is; one it does not have is registered with the importing
    /// organization.
    Register,
    /// As [`PatientUpdate::Register`], but a patient found by no identifier is looked
    /// for by demographic matching too (one `certain` match is them): a record
    /// transferred from a server whose numbers this record does not know.
    Match,
}

/// Where ingested resources came from, for their Provenance: the organization that sent
/// them and the message or document (an identifier and what it is, in words).
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The Organization's id.
    pub organization: String,
    pub system: String,
    pub value: String,
    pub title: String,
}

impl Records {
    /// The caller an interface's messages are stored as: its organization's staff
    /// access, with rights to create, read, update and search (never delete).
    pub fn interface_caller(&self, i: &InterfaceRow, peer: Option<IpAddr>) -> Caller {
        Caller {
            user: format!("interface/{}", i.id),
            role: Role::Clinician,
            organization: Some(i.organization.clone()),
            person: None,
            patient: None,
            scopes: vec![ResourceScope {
                context: Context::User,
                resource_type: None,
                permissions: Permissions {
                    create: true,
                    read: true,
                    update: true,
                    delete: false,
                    search: true,
                },
                query: Vec::new(),
            }],
            client: peer.map(|p| p.to_string()),
            internal: false,
            confirmed: Vec::new(),
        }
    }

    /// Registers an interface (system administrators only). Its organization must exist.
    pub fn add_interface(&self, who: &Caller, i: &InterfaceRow) -> Result<(), RecordsError> {
        only_admin(who)?;
        check_interface(i)?;
        let org = oxehr_fhir::ResourceType::parse("Organization")
            .ok_or_else(|| RecordsError::Internal("no Organization type".into()))?;
        let org_id = oxehr_fhir::ResourceId::parse(&i.organization)
            .ok_or_else(|| invalid("the organization id is not a FHIR id"))?;
        match self.store().read_current(&org, &org_id)? {
            Some(r) if !r.is_deleted() => {}
            _ => {
                return Err(RecordsError::NotFound(format!(
                    "Organization/{}",
                    i.organization
                )))
            }
        }
        let row = i.clone();
        let mut rec = audit::record(who, "interface-add", "success", None, None);
        rec.detail = Some(format!(
            "interface {} for Organization/{}",
            i.id, i.organization
        ));
        self.store()
            .write(Box::new(move |tx| {
                if inbound::interfaces(tx)?.iter().any(|o| o.id == row.id) {
                    return Err(StoreError::Aborted(Box::new(RecordsError::invalid(
                        IssueCode::Duplicate,
                        "an interface with this name exists",
                    ))));
                }
                inbound::insert_interface(tx, &row)?;
                oxehr_store::audit::append(tx, std::slice::from_ref(&rec))?;
                Ok(Box::new(()))
            }))
            .map_err(RecordsError::from)?;
        Ok(())
    }

    /// Every interface (system administrators only).
    pub fn interfaces(&self, who: &Caller) -> Result<Vec<InterfaceRow>, RecordsError> {
        only_admin(who)?;
        let mut tx = self.reader()?;
        Ok(inbound::interfaces(&mut *tx)?)
    }

    /// The active interface a message from `application` at `facility` (its names: the
    /// field as sent, its namespace id, its universal id) sent from `peer` comes
    /// through. `None` is recorded in the audit trail as a refused message.
    pub fn interface_for(
        &self,
        application: &[&str],
        facility: &[&str],
        peer: Option<IpAddr>,
    ) -> Result<Option<InterfaceRow>, RecordsError> {
        let found = {
            let mut tx = self.reader()?;
            inbound::interfaces_for_facility(&mut *tx, facility)?
        };
        let hit = found.into_iter().find(|i| {
            i.active
                && i.application
                    .as_deref()
                    .is_none_or(|a| application.contains(&a))
                && i.from_cidr
                    .as_deref()
                    .is_none_or(|c| peer.is_some_and(|p| cidr_contains(c, p)))
        });
        if hit.is_none() {
            let mut r = oxehr_store::audit::AuditRecord {
                time: time_fmt::now_micros(),
                user: None,
                role: None,
                organization: None,
                patient: None,
                resource: None,
                action: "hl7v2-receive".into(),
                outcome: "denied".into(),
                client: peer.map(|p| p.to_string()),
                detail: None,
            };
            r.detail = Some(format!(
                "no interface registered for facility {:?}",
                facility.first().copied().unwrap_or("")
            ));
            self.record_events(vec![r])?;
        }
        Ok(hit)
    }

    /// What the store knows of a message with this sender and control id: nothing
    /// (`None`), this very message ([`Ingested::Resent`]) or another one
    /// ([`Ingested::Reused`]).
    pub fn inbound_seen(&self, m: &Inbound) -> Result<Option<Ingested>, RecordsError> {
        let mut tx = self.reader()?;
        let row = inbound::by_key(&mut *tx, &m.application, &m.facility, &m.control_id)?;
        Ok(row.map(|r| seen(&r, m)))
    }

    /// Stores a message's resources (`bundle`, a transaction Bundle whose first Patient
    /// entry names the patient by identifier) as `who` (an [`interface_caller`]), with a
    /// Provenance naming `organization` and the message, and the message's row with
    /// `ack`, in one transaction.
    ///
    /// [`interface_caller`]: Records::interface_caller
    pub fn ingest(
        &self,
        who: &Caller,
        m: &Inbound,
        bundle: Value,
        patient: PatientUpdate,
        ack: &str,
    ) -> Result<Ingested, RecordsError> {
        if let Some(prior) = self.inbound_seen(m)? {
            return Ok(prior);
        }
        let bundle = self.with_source(who, m, bundle, patient)?;
        let also = new_row(m.row(InboundState::Stored, None, ack));
        let stored = self.store_or_seen(m, self.transaction_with(who, bundle, also))?;
        if let Ingested::Stored(outcomes) = &stored {
            self.note_duplicates(outcomes);
        }
        Ok(stored)
    }

    /// Stores a merge request (ADT^A40): the patient holding one of `merged` (MRG-1) is
    /// merged into the one holding one of `survivor` (PID-3), as `who` (see
    /// [`Records::merge_patients`]), with the message's row and `ack` in the same
    /// transaction.
    pub fn ingest_merge(
        &self,
        who: &Caller,
        m: &Inbound,
        survivor: &[(String, String)],
        merged: &[(String, String)],
        ack: &str,
    ) -> Result<Ingested, RecordsError> {
        if let Some(prior) = self.inbound_seen(m)? {
            return Ok(prior);
        }
        let (source, target) = self.merge_pair(survivor, merged)?;
        let also = new_row(m.row(InboundState::Stored, None, ack));
        self.store_or_seen(m, self.merge_with(who, &source, &target, also))
    }

    /// [`Records::ingest_merge`] of a message held in triage (by its row id), marking it
    /// stored with `ack` in the same transaction.
    pub fn reprocess_merge(
        &self,
        who: &Caller,
        id: &str,
        survivor: &[(String, String)],
        merged: &[(String, String)],
        ack: &str,
    ) -> Result<Vec<EntryOutcome>, RecordsError> {
        self.held(id)?;
        let (source, target) = self.merge_pair(survivor, merged)?;
        self.merge_with(who, &source, &target, triage_to_stored(id, ack))
    }

    /// The records a merge message names: (merged away, surviving).
    fn merge_pair(
        &self,
        survivor: &[(String, String)],
        merged: &[(String, String)],
    ) -> Result<(ResourceId, ResourceId), RecordsError> {
        let target = self
            .patient_by_identifiers(survivor)?
            .ok_or_else(|| invalid("the surviving patient (PID-3) is not in the record"))?;
        let source = self
            .patient_by_identifiers(merged)?
            .ok_or_else(|| invalid("the patient to merge (MRG-1) is not in the record"))?;
        if source.id == target.id {
            return Err(RecordsError::Conflict(
                "the two patients of the merge are already one record".into(),
            ));
        }
        Ok((source.id, target.id))
    }

    /// The row of a message held in triage.
    fn held(&self, id: &str) -> Result<InboundRow, RecordsError> {
        let row = self
            .inbound_message(id)?
            .ok_or_else(|| RecordsError::NotFound(format!("inbound message {id}")))?;
        if row.state != InboundState::Triage {
            return Err(RecordsError::Conflict(
                "the message is no longer in triage".into(),
            ));
        }
        Ok(row)
    }

    /// Stores a message held in triage (by its row id) after a fix, as [`ingest`] would,
    /// and marks it stored with `ack`, in one transaction.
    ///
    /// [`ingest`]: Records::ingest
    pub fn reprocess(
        &self,
        who: &Caller,
        id: &str,
        bundle: Value,
        patient: PatientUpdate,
        title: &str,
        ack: &str,
    ) -> Result<Vec<EntryOutcome>, RecordsError> {
        let row = self.held(id)?;
        let m = Inbound {
            interface: row.interface.clone(),
            application: row.application.clone(),
            facility: row.facility.clone(),
            control_id: row.control_id.clone(),
            kind: row.kind.clone(),
            title: title.to_owned(),
            message: row.message.clone(),
        };
        let bundle = self.with_source(who, &m, bundle, patient)?;
        self.transaction_with(who, bundle, triage_to_stored(id, ack))
    }

    /// Sets how held messages are processed again (once; later calls are ignored).
    pub fn set_reprocessor(&self, r: Reprocessor) {
        let _ = self.reprocessor.set(r);
    }

    /// Processes a held message again as `who` (a system administrator), with the
    /// reprocessor the program set; says what became of it.
    pub fn reprocess_held(&self, who: &Caller, id: &str) -> Result<String, RecordsError> {
        only_admin(who)?;
        let r = self.reprocessor.get().cloned().ok_or_else(|| {
            RecordsError::Unsupported("messages cannot be processed again here".into())
        })?;
        (r.0)(self, who, id)
    }

    /// Keeps a message that could not be stored in triage, with the reason (plain words,
    /// no patient data) and the acknowledgement sent.
    pub fn hold(&self, m: &Inbound, reason: &str, ack: &str) -> Result<Ingested, RecordsError> {
        let row = m.row(InboundState::Triage, Some(reason.to_owned()), ack);
        let result = self.store().write(Box::new(move |tx| {
            if let Some(prior) =
                inbound::by_key(tx, &row.application, &row.facility, &row.control_id)?
            {
                return Ok(Box::new(Some(prior)));
            }
            inbound::insert(tx, &row)?;
            Ok(Box::new(None::<InboundRow>))
        }))?;
        match result.downcast::<Option<InboundRow>>() {
            Ok(prior) => Ok(match *prior {
                Some(p) => seen(&p, m),
                None => Ingested::Held,
            }),
            Err(_) => Err(RecordsError::Internal("hold: unexpected job output".into())),
        }
    }

    /// A message held in triage failed again: its new reason and acknowledgement.
    pub fn retriage(&self, id: &str, reason: &str, ack: &str) -> Result<(), RecordsError> {
        let (id, reason, ack) = (id.to_owned(), reason.to_owned(), ack.to_owned());
        self.store().write(Box::new(move |tx| {
            inbound::set_state(
                tx,
                &id,
                InboundState::Triage,
                InboundState::Triage,
                Some(&reason),
                &ack,
            )?;
            Ok(Box::new(()))
        }))?;
        Ok(())
    }

    /// Takes a message out of triage without storing it (system administrators only).
    pub fn dismiss(&self, who: &Caller, id: &str) -> Result<(), RecordsError> {
        only_admin(who)?;
        let mut rec = audit::record(who, "hl7v2-dismiss", "success", None, None);
        rec.detail = Some(format!("inbound message {id}"));
        let id = id.to_owned();
        self.store()
            .write(Box::new(move |tx| {
                let row = inbound::by_id(tx, &id)?;
                let Some(row) = row else {
                    return Err(StoreError::Aborted(Box::new(RecordsError::NotFound(
                        format!("inbound message {id}"),
                    ))));
                };
                if !inbound::set_state(
                    tx,
                    &id,
                    InboundState::Triage,
                    InboundState::Dismissed,
                    row.reason.as_deref(),
                    &row.ack,
                )? {
                    return Err(StoreError::Aborted(Box::new(RecordsError::Conflict(
                        "the message is no longer in triage".into(),
                    ))));
                }
                oxehr_store::audit::append(tx, std::slice::from_ref(&rec))?;
                Ok(Box::new(()))
            }))
            .map_err(RecordsError::from)?;
        Ok(())
    }

    /// The messages waiting in triage, oldest first (system administrators only).
    pub fn triage(&self, who: &Caller, limit: usize) -> Result<Vec<InboundRow>, RecordsError> {
        only_admin(who)?;
        let mut tx = self.reader()?;
        Ok(inbound::in_state(&mut *tx, InboundState::Triage, limit)?)
    }

    /// One inbound message by its row id, for the listener's reprocessing (no caller:
    /// the listener's own look-up; people read the queue through [`Records::triage`]).
    pub fn inbound_message(&self, id: &str) -> Result<Option<InboundRow>, RecordsError> {
        let mut tx = self.reader()?;
        Ok(inbound::by_id(&mut *tx, id)?)
    }

    /// What a commit with a new message row came to: stored, or (when the same message
    /// was stored meanwhile by another connection) what was stored then.
    fn store_or_seen(
        &self,
        m: &Inbound,
        committed: Result<Vec<EntryOutcome>, RecordsError>,
    ) -> Result<Ingested, RecordsError> {
        match committed {
            Ok(outcomes) => Ok(Ingested::Stored(outcomes)),
            Err(RecordsError::Internal(ref s)) if s == DUPLICATE => self
                .inbound_seen(m)?
                .ok_or_else(|| RecordsError::Internal("a duplicate message vanished".into())),
            Err(e) => Err(e),
        }
    }

    /// The message's Bundle with its patient resolved among all patients and a
    /// Provenance entry naming the interface's organization and the message.
    fn with_source(
        &self,
        who: &Caller,
        m: &Inbound,
        bundle: Value,
        patient: PatientUpdate,
    ) -> Result<Value, RecordsError> {
        let source = Source {
            organization: who.organization.clone().unwrap_or_default(),
            system: MESSAGE_SYSTEM.to_owned(),
            value: format!("{}|{}|{}", m.application, m.facility, m.control_id),
            title: m.title.clone(),
        };
        self.with_provenance(bundle, patient, who.organization.as_deref(), &source)
    }

    /// `bundle` (a transaction whose first Patient entry names the patient by
    /// identifier) with its patient resolved among all patients (a new one registered
    /// with `register_with` when `patient` says so) and a Provenance entry naming the
    /// source's organization and the message or document.
    pub(crate) fn with_provenance(
        &self,
        bundle: Value,
        patient: PatientUpdate,
        register_with: Option<&str>,
        source: &Source,
    ) -> Result<Value, RecordsError> {
        let mut bundle = bundle;
        let entries = bundle
            .get_mut("entry")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| RecordsError::Internal("a mapped bundle without entries".into()))?;
        for e in entries.iter_mut() {
            if e.get("fullUrl").is_none() {
                e["fullUrl"] = json!(format!("urn:uuid:{}", uuid::Uuid::new_v4()));
            }
        }
        let patient_ref = self.resolve_patient(entries, patient, register_with)?;
        let mut targets: Vec<Value> = entries
            .iter()
            .filter_map(|e| e.get("fullUrl").cloned())
            .map(|u| json!({ "reference": u }))
            .collect();
        if let Some(p) = patient_ref {
            targets.push(json!({ "reference": p }));
        }
        let org = &source.organization;
        let provenance = json!({
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "resource": {
                "resourceType": "Provenance",
                "target": targets,
                "recorded": time_fmt::format_instant(time_fmt::now_micros()),
                "activity": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "CREATE",
                }]},
                "agent": [{
                    "type": { "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                        "code": "author",
                        "display": "Author",
                    }]},
                    "who": { "reference": format!("Organization/{org}") },
                }],
                "entity": [{
                    "role": "source",
                    "what": {
                        "identifier": { "system": source.system, "value": source.value },
                        "display": source.title,
                    },
                }],
            },
            "request": { "method": "POST", "url": "Provenance" },
        });
        entries.push(provenance);
        Ok(bundle)
    }

    /// Finds the Patient the first Patient entry names (by its identifiers, in order,
    /// among all patients) and points the entry at it: an update of that Patient with
    /// the message's elements ([`PatientUpdate::Replace`]), or no entry at all, the
    /// references rewritten to it ([`PatientUpdate::Keep`]). A Patient found nowhere is
    /// created (by a registration: with the sending organization as its managing
    /// organization). Returns the reference a Provenance should target for the patient when
    /// the entry was removed.
    fn resolve_patient(
        &self,
        entries: &mut Vec<Value>,
        update: PatientUpdate,
        organization: Option<&str>,
    ) -> Result<Option<String>, RecordsError> {
        let Some(pos) = entries
            .iter()
            .position(|e| e["resource"]["resourceType"] == "Patient")
        else {
            return Ok(None);
        };
        let identifiers: Vec<(String, String)> = entries[pos]["resource"]["identifier"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|i| {
                        Some((
                            i["system"].as_str()?.to_owned(),
                            i["value"].as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut found = self.patient_by_identifiers(&identifiers)?;
        if found.is_none() && update == PatientUpdate::Match {
            found = self.certain_match(&entries[pos]["resource"])?;
        }
        let Some(existing) = found else {
            // A registration of a patient the record does not hold registers them with
            // the sending organization, unless it names another (a transferred record
            // names the sender's copy of its organization: the receiver's wins).
            let resource = &mut entries[pos]["resource"];
            let replace = update == PatientUpdate::Match
                || (update != PatientUpdate::Keep
                    && resource.get("managingOrganization").is_none());
            if replace {
                if let Some(org) = organization {
                    resource["managingOrganization"] =
                        json!({ "reference": format!("Organization/{org}") });
                }
            }
            return Ok(None);
        };
        let reference = format!("Patient/{}", existing.id);
        match update {
            PatientUpdate::Replace => {
                let mut body = crate::interactions::parse_body(&existing)?;
                let incoming = entries[pos]["resource"].clone();
                merge_patient(&mut body, incoming);
                entries[pos]["resource"] = body;
                entries[pos]["request"] = json!({ "method": "PUT", "url": reference });
                Ok(None)
            }
            PatientUpdate::Keep | PatientUpdate::Register | PatientUpdate::Match => {
                let removed = entries.remove(pos);
                if let Some(full_url) = removed["fullUrl"].as_str() {
                    for e in entries.iter_mut() {
                        rewrite(e, full_url, &reference);
                    }
                }
                Ok(Some(reference))
            }
        }
    }
}

impl Records {
    /// The Patient that holds the first of `identifiers` (system, value) any Patient
    /// holds, among all patients; a record merged away stands for the record it was
    /// merged into. More than one person with it is an error: they need merging first.
    pub(crate) fn patient_by_identifiers(
        &self,
        identifiers: &[(String, String)],
    ) -> Result<Option<StoredResource>, RecordsError> {
        let server = Caller::server();
        for (system, value) in identifiers {
            let q = crate::query::parse(
                &["Patient".to_string()],
                &[(
                    "identifier".to_string(),
                    format!(
                        "{}|{}",
                        oxehr_search::escape_value(system),
                        oxehr_search::escape_value(value)
                    ),
                )],
                false,
                None,
            )?;
            let mut people: Vec<StoredResource> = Vec::new();
            for hit in self.find(&server, &q, 4)? {
                let survivor = self.survivor(hit)?;
                if !people.iter().any(|p| p.id == survivor.id) {
                    people.push(survivor);
                }
            }
            match people.len() {
                0 => continue,
                1 => return Ok(people.pop()),
                _ => {
                    return Err(invalid(
                        "more than one patient in the record has this patient's identifier; \
                         they need to be merged first",
                    ))
                }
            }
        }
        Ok(None)
    }

    /// The record a Patient was merged into (following `replaced-by` links, at most a
    /// few), or the Patient itself.
    pub(crate) fn survivor(&self, patient: StoredResource) -> Result<StoredResource, RecordsError> {
        let mut current = patient;
        for _ in 0..4 {
            let body = crate::interactions::parse_body(&current)?;
            let Some(next) = crate::patients::replaced_by(&body)
                .and_then(|r| r.strip_prefix("Patient/").and_then(ResourceId::parse))
            else {
                return Ok(current);
            };
            current = self.read(&Caller::server(), &current.rtype, &next)?;
        }
        Ok(current)
    }
}

/// The commit hook that writes a new message's row, aborting when the row appeared
/// meanwhile (the same message on another connection).
fn new_row(row: InboundRow) -> crate::Also {
    Arc::new(move |tx| {
        if inbound::by_key(tx, &row.application, &row.facility, &row.control_id)?.is_some() {
            return Err(StoreError::Aborted(Box::new(RecordsError::Internal(
                DUPLICATE.into(),
            ))));
        }
        inbound::insert(tx, &row)
    })
}

/// The commit hook that marks a held message stored with `ack`, aborting when it left
/// triage meanwhile.
fn triage_to_stored(id: &str, ack: &str) -> crate::Also {
    let (id, ack) = (id.to_owned(), ack.to_owned());
    Arc::new(move |tx| {
        if inbound::set_state(
            tx,
            &id,
            InboundState::Triage,
            InboundState::Stored,
            None,
            &ack,
        )? {
            Ok(())
        } else {
            Err(StoreError::Aborted(Box::new(RecordsError::Conflict(
                "the message is no longer in triage".into(),
            ))))
        }
    })
}

/// What the store's row says of a message with the same key.
fn seen(row: &InboundRow, m: &Inbound) -> Ingested {
    if row.digest == m.digest() {
        Ingested::Resent {
            ack: row.ack.clone(),
        }
    } else {
        Ingested::Reused
    }
}

/// The marker a commit aborts with when the message's row appeared meanwhile.
const DUPLICATE: &str = "duplicate inbound message";

/// The record's Patient with what a registration message says: each element the message
/// has replaces the record's; identifiers are the record's plus the message's new ones.
fn merge_patient(body: &mut Value, incoming: Value) {
    let Value::Object(incoming) = incoming else {
        return;
    };
    let mut ids: Vec<Value> = body["identifier"].as_array().cloned().unwrap_or_default();
    for (k, v) in incoming {
        match k.as_str() {
            "id" | "meta" | "resourceType" => {}
            "identifier" => {
                for i in v.as_array().into_iter().flatten() {
                    let same = |o: &Value| o["system"] == i["system"] && o["value"] == i["value"];
                    if !ids.iter().any(same) {
                        ids.push(i.clone());
                    }
                }
            }
            _ => body[k] = v,
        }
    }
    if !ids.is_empty() {
        body["identifier"] = Value::Array(ids);
    }
}

/// Replaces every string equal to `from` in `v` with `to`.
fn rewrite(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) if s == from => *s = to.to_owned(),
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, from, to)),
        Value::Object(o) => o.values_mut().for_each(|x| rewrite(x, from, to)),
        _ => {}
    }
}

fn invalid(what: &str) -> RecordsError {
    RecordsError::invalid(IssueCode::Invalid, what)
}

/// Refuses (with `why`) anyone but an organization's staff who see records by care
/// relationship (clinicians, nurses, front desk) and system administrators: who may
/// bring records in from outside and sort out what came.
pub(crate) fn only_staff_or_admin(who: &Caller, why: &str) -> Result<(), RecordsError> {
    if who.uses_grants() || who.role == Role::SystemAdmin {
        Ok(())
    } else {
        Err(RecordsError::Forbidden(why.to_owned()))
    }
}

fn only_admin(who: &Caller) -> Result<(), RecordsError> {
    if who.role == Role::SystemAdmin {
        Ok(())
    } else {
        Err(RecordsError::Forbidden(
            "interfaces and their messages are for system administrators".into(),
        ))
    }
}

/// An interface's fields make sense: a short name, a facility, a network.
fn check_interface(i: &InterfaceRow) -> Result<(), RecordsError> {
    let name_ok = !i.id.is_empty()
        && i.id.len() <= 64
        && i.id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return Err(invalid(
            "an interface's name is 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    if i.facility.trim().is_empty() {
        return Err(invalid("an interface needs the sending facility (MSH-4)"));
    }
    if let Some(c) = &i.from_cidr {
        parse_cidr(c).ok_or_else(|| invalid("--from takes a network such as 10.1.0.0/16"))?;
    }
    Ok(())
}

/// `10.1.0.0/16`, `::1/128`, or a bare address (one host).
fn parse_cidr(s: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let addr: IpAddr = addr.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.trim().parse::<u32>().ok().filter(|b| *b <= max)?,
        None => max,
    };
    Some((addr, bits))
}

/// Whether `peer` is inside the network `cidr` (an IPv4 peer mapped into IPv6 counts as
/// IPv4).
pub fn cidr_contains(cidr: &str, peer: IpAddr) -> bool {
    let Some((net, bits)) = parse_cidr(cidr) else {
        return false;
    };
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
        v4 => v4,
    };
    match (net, peer) {
        (IpAddr::V4(n), IpAddr::V4(p)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(p) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(p)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(p) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_the_addresses_of_their_prefix() {
        let cases = [
            ("10.1.0.0/16", "10.1.200.3", true),
            ("10.1.0.0/16", "10.2.0.1", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("0.0.0.0/0", "192.168.1.1", true),
            ("10.0.0.0/8", "::ffff:10.9.9.9", true),
            ("::1/128", "::1", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("10.0.0.0/33", "10.0.0.1", false),
            ("not a network", "10.0.0.1", false),
        ];
        for (cidr, peer, want) in cases {
            let peer: IpAddr = peer.parse().expect("test address");
            assert_eq!(cidr_contains(cidr, peer), want, "{cidr} {peer}");
        }
    }

    #[test]
    fn a_registration_keeps_what_the_message_does_not_say() {
        let mut body = json!({
            "resourceType": "Patient", "id": "p1",
            "identifier": [{"system": "s", "value": "1"}],
            "managingOrganization": {"reference": "Organization/o"},
            "name": [{"family": "Old"}],
        });
        merge_patient(
            &mut body,
            json!({
                "resourceType": "Patient",
                "identifier": [{"system": "s", "value": "1"}, {"system": "t", "value": "2"}],
                "name": [{"family": "New"}],
            }),
        );
        assert_eq!(body["id"], "p1");
        assert_eq!(body["name"][0]["family"], "New");
        assert_eq!(body["managingOrganization"]["reference"], "Organization/o");
        assert_eq!(body["identifier"].as_array().map(Vec::len), Some(2));
    }
}
