//! The one write path and read path of the record.
//!
//! REST, bulk import and (later) HL7 v2, C-CDA and the portal change data only through
//! [`Records`]. A write is prepared outside the database (validation, meta, index
//! extraction, serialization: the CPU work) and then committed by one store job that
//! re-checks what the preparation assumed (current version, conditional matches) and
//! stores every version with its index rows and compartment membership in one
//! transaction. If another writer got there first the job answers `Conflict` and the whole
//! interaction is prepared again (optimistic concurrency, bounded retries).
//!
//! Methods are blocking; async callers run them on a blocking thread.

mod audit;
pub use audit::DEFAULT_READ_AUDIT_WINDOW;
pub mod audit_view;
mod booking;
pub mod bulk;
pub mod clinical;
mod compartment;
mod documents;
mod duplicates;
mod error;
pub mod exchange;
mod interactions;
pub mod lastn;
pub mod measures;
mod patch;
pub mod patients;
mod policy;
mod prepare;
pub mod query;
mod reindex;
pub mod requests;
mod search;
mod sharing;
mod time_fmt;
mod transaction;
mod transfer;
pub mod views;

use std::sync::Arc;

pub use oxehr_auth::Caller;
use oxehr_fhir::ResourceId;
use oxehr_search::query::Query;
use oxehr_store::{JobOutput, Store, StoreError, Tx};

pub use booking::{
    BookableSlot, Booking, ScheduleSummary, MAX_BOOKABLE_SLOTS, MAX_BOOKING_WINDOW_DAYS,
    MAX_REASON_CHARS, REQUIRES_CONFIRMATION_URL,
};
pub use compartment::{CompartmentScope, CompartmentSearch};
pub use documents::Document;
pub use duplicates::Decision;
pub use error::{Category, RecordsError};
pub use interactions::{HistoryPage, HistoryRequest, WriteOutcome};
/// The identifier system a RelatedPerson names a proxy's account with.
pub use oxehr_store::access::PROXY_ACCOUNT_SYSTEM;
pub use oxehr_store::duplicates::DuplicateRow;
pub use patch::MAX_PATCH_OPERATIONS;
pub use policy::ProxyPatient;
pub use prepare::validate;
pub use reindex::ReindexReport;
pub use requests::RefillAnswer;
pub use search::{SearchPage, EXACT_TOTAL_UP_TO, MAX_INCLUDED};
pub use sharing::SharingRow;

/// Matches per page when a search gives no `_count`.
pub const DEFAULT_COUNT: usize = 50;
/// The largest page a search returns, whatever its `_count`.
pub const MAX_COUNT: usize = 1000;
/// The deepest a history page may start (its `_offset`): the maximum result window.
/// History is the one listing paged by offset, and a database skips an offset's rows
/// one by one, so a request far down a long history costs in proportion to its depth;
/// searches page by keyset and cost the same at any depth. Past it, a client narrows
/// with `_since` (or starts again from a later `_before`).
pub const MAX_HISTORY_OFFSET: usize = 100_000;
pub use time_fmt::{format_instant, now_micros, parse_instant};
pub use transaction::{parse_etag, BundleKind, EntryOutcome};

pub use oxehr_store::{Gauge, HistoryScope, Method, StoredResource};

/// How a request's statements are stopped: at [`RecordsConfig::statement_timeout`], or
/// when the adapter gives up on the request (its client went away). An adapter runs each
/// blocking call under an [`interrupt::Interrupt`] (`interrupt::scope`).
pub use oxehr_store::interrupt;

/// Settings of the record layer.
#[derive(Debug, Clone)]
pub struct RecordsConfig {
    /// Validate resources against the core StructureDefinitions on every write.
    pub validate: bool,
    /// How often a write is prepared again after losing a race to another writer.
    pub max_retries: u32,
    /// Largest number of entries accepted in one batch or transaction bundle.
    pub max_bundle_entries: usize,
    /// Whether a read waits until its audit record is durable before answering (true),
    /// or only until the record is queued for the next group append (false, default:
    /// a crash can lose the last few milliseconds of read records; writes always
    /// record in their own transaction). Either way a failed append stops all reads.
    pub durable_read_audit: bool,
    /// How long read audit records gather before they are appended together (not with
    /// `durable_read_audit`): the longest a read's record may wait, and so what a crash
    /// can lose of them. Longer windows append bigger batches with fewer thread wakes;
    /// zero appends as soon as records arrive. Default 20 ms
    /// ([`DEFAULT_READ_AUDIT_WINDOW`]).
    pub read_audit_window: std::time::Duration,
    /// Largest resource a JSON Patch may make, in bytes of JSON (the binary sets the
    /// request body limit: a patched resource may be as large as a sent one).
    pub max_resource_bytes: usize,
    /// How long the statements of one request may run (`None`: no limit). Adapters run
    /// each request under an [`interrupt::Interrupt`] with this deadline;
    /// past it a read stops and answers `Busy`.
    pub statement_timeout: Option<std::time::Duration>,
    /// Bulk Data export (`bulk`).
    pub bulk: bulk::BulkConfig,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            validate: true,
            max_retries: 8,
            max_bundle_entries: 10_000,
            durable_read_audit: false,
            read_audit_window: audit::DEFAULT_READ_AUDIT_WINDOW,
            max_resource_bytes: 64 * 1024 * 1024,
            statement_timeout: Some(std::time::Duration::from_secs(30)),
            bulk: bulk::BulkConfig::default(),
        }
    }
}

/// The record: every interaction with stored FHIR resources. A clone is one reference
/// count (adapters clone it for every request).
#[derive(Clone, Debug)]
pub struct Records {
    shared: Arc<Shared>,
}

/// What every clone of a [`Records`] shares.
#[doc(hidden)]
#[derive(Debug)]
pub struct Shared {
    store: Arc<dyn Store>,
    config: RecordsConfig,
    auditor: Arc<audit::Auditor>,
    reprocessor: std::sync::OnceLock<exchange::Reprocessor>,
    bulk: Arc<bulk::Runner>,
}

impl std::ops::Deref for Records {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// A version the record layer writes on the caller's behalf, after checking rules of its
/// own that the type rights cannot express: a booking operation changes a Slot's status
/// for a patient, who may not write Slots (`booking.rs`). Exactly this version of this
/// resource passes [`policy::check_writes`] without the caller's rights on its type; the
/// audit record still names the caller, with `why` as its detail.
#[derive(Debug, Clone)]
pub(crate) struct Vouched {
    pub rtype: oxehr_fhir::ResourceType,
    pub id: ResourceId,
    pub version: oxehr_fhir::VersionId,
    /// Why records wrote it (`book Appointment/…`): the audit record's detail.
    pub why: String,
}

impl Vouched {
    pub(crate) fn covers(&self, r: &oxehr_store::StoredResource) -> bool {
        self.rtype == r.rtype && self.id == r.id && self.version == r.version
    }
}

/// More that a write job stores in the same transaction as the versions, after them:
/// the row of the inbound message they came from (`exchange`). Called again on a retry.
pub(crate) type Also = Arc<dyn Fn(&mut dyn Tx) -> Result<(), StoreError> + Send + Sync + 'static>;

/// A check that a write job makes before it stores anything: the conditional query must
/// still match exactly `ids` (empty: nothing).
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    pub query: Query,
    pub ids: Vec<ResourceId>,
}

impl Records {
    pub fn new(store: Arc<dyn Store>, config: RecordsConfig) -> Records {
        let auditor = Arc::new(audit::Auditor::start(
            store.clone(),
            config.durable_read_audit,
            config.read_audit_window,
        ));
        Records {
            shared: Arc::new(Shared {
                bulk: Arc::new(bulk::Runner::new(config.bulk.clone())),
                store,
                config,
                auditor,
                reprocessor: std::sync::OnceLock::new(),
            }),
        }
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Records {
        Records { shared }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &RecordsConfig {
        &self.config
    }

    /// The storage backend's short name for logs and the CapabilityStatement (`sqlite`,
    /// `postgres`).
    pub fn backend_name(&self) -> &'static str {
        self.store.backend_name()
    }

    /// Runs `attempt` until it does not lose a race, at most `max_retries + 1` times.
    pub(crate) fn with_retries<T>(
        &self,
        mut attempt: impl FnMut() -> Result<T, RecordsError>,
    ) -> Result<T, RecordsError> {
        let mut tries = 0;
        loop {
            match attempt() {
                Err(RecordsError::Conflict(_)) if tries < self.config.max_retries => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(u64::from(tries)));
                }
                other => return other,
            }
        }
    }

    /// Commits prepared versions in one transaction after checking the guards.
    ///
    /// The access policy is applied inside the job, against what the transaction sees:
    /// the caller's rights on each type, the record each version leaves and changes.
    pub(crate) fn commit(
        &self,
        who: &Caller,
        guards: Vec<Guard>,
        versions: Vec<oxehr_store::NewVersion>,
    ) -> Result<(), RecordsError> {
        self.commit_vouched(who, guards, versions, Vec::new(), None)
    }

    /// [`commit`](Self::commit), with `vouched` versions that records itself checked
    /// (see [`Vouched`]); every other version meets the caller's rights as usual.
    pub(crate) fn commit_vouched(
        &self,
        who: &Caller,
        guards: Vec<Guard>,
        versions: Vec<oxehr_store::NewVersion>,
        vouched: Vec<Vouched>,
        also: Option<Also>,
    ) -> Result<(), RecordsError> {
        // What a refusal records: each version's action and resource.
        let attempted: Vec<(&'static str, String)> = versions
            .iter()
            .map(|v| {
                let r = &v.resource;
                (audit::action_of(r.method), format!("{}/{}", r.rtype, r.id))
            })
            .collect();
        let caller = who.clone();
        let job = Box::new(move |tx: &mut dyn Tx| -> Result<JobOutput, StoreError> {
            let who = &caller;
            let judged = policy::check_writes(who, tx, &versions, &vouched)?;
            let records = write_audit(who, tx, &versions, &vouched)?;
            // The guards see what the caller sees, as their planning did.
            let access = match judged {
                _ if guards.is_empty() => oxehr_store::access::Access::All,
                Some(access) => access,
                None => policy::access_of(who, tx)?,
            };
            for g in &guards {
                tx.lock(&guard_key(&g.query))?;
                let found: Vec<ResourceId> = oxehr_store::search::page(
                    tx,
                    &access,
                    &g.query,
                    &oxehr_store::search::Position::First,
                    g.ids.len() + 1,
                )?
                .into_iter()
                .map(|h| h.resource.id)
                .collect();
                if found != g.ids {
                    return Err(StoreError::Conflict);
                }
            }
            // No lock per resource: `put` itself refuses a version that is not the
            // current one plus one, so a lost race is a `Conflict` and a retry.
            let touched = clinical::touched_patients(tx, &versions)?;
            oxehr_store::care::store_versions(tx, &versions)?;
            oxehr_store::clinical::mark(tx, &touched)?;
            if let Some(also) = &also {
                also(tx)?;
            }
            // Last, so the audit log's lock is held only for the append.
            oxehr_store::audit::append(tx, &records)?;
            Ok(Box::new(()))
        });
        match self.store.write(job) {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = RecordsError::from(e);
                if audit::is_denial(&e) && !who.internal {
                    let denied = attempted
                        .into_iter()
                        .map(|(action, resource)| {
                            audit::record(who, action, "denied", Some(resource), None)
                        })
                        .collect();
                    self.auditor.record(denied)?;
                }
                Err(e)
            }
        }
    }

    /// Whether the server can serve records now (for `/readyz`): the store answers a
    /// read, and the audit trail can be written. The error says which, in general terms.
    pub fn ready(&self) -> Result<(), RecordsError> {
        if !self.auditor.healthy() {
            return Err(RecordsError::Busy(
                "the audit trail cannot be written; see the server log".into(),
            ));
        }
        // One indexed lookup of a resource that need not exist: the store answers.
        let (Some(rtype), Some(id)) = (
            oxehr_fhir::ResourceType::parse("Patient"),
            ResourceId::parse("readyz"),
        ) else {
            return Err(RecordsError::Internal("the readiness probe's key".into()));
        };
        self.reader()?.current(&rtype, &id)?;
        Ok(())
    }

    /// Whether the audit trail can still be written (for `/metrics`; see [`ready`](Self::ready)).
    pub fn audit_writable(&self) -> bool {
        self.auditor.healthy()
    }

    /// Gauges for `/metrics`: the store's own (pool and queue depths), the audit
    /// trail's lag (records answered for and not yet appended; seconds since the last
    /// append), and the Bulk Data export jobs waiting and running.
    pub fn gauges(&self) -> Vec<Gauge> {
        let mut out = self.store.gauges();
        let (pending, last) = self.auditor.lag();
        out.push(Gauge {
            name: "oxehr_audit_pending_records",
            help: "Audit records of answers given, not yet appended to the trail.",
            value: pending as f64,
        });
        if last > 0 {
            out.push(Gauge {
                name: "oxehr_audit_seconds_since_append",
                help: "Seconds since the audit trail's last append committed.",
                value: (time_fmt::now_micros() - last).max(0) as f64 / 1e6,
            });
        }
        if let Ok(mut reader) = self.reader() {
            if let Ok(counts) = oxehr_store::jobs::count_by_state(&mut *reader) {
                for (state, name, help) in [
                    (
                        oxehr_store::jobs::JobState::Queued,
                        "oxehr_export_jobs_queued",
                        "Bulk Data export jobs waiting to run.",
                    ),
                    (
                        oxehr_store::jobs::JobState::Running,
                        "oxehr_export_jobs_running",
                        "Bulk Data export jobs running now.",
                    ),
                ] {
                    let n = counts.iter().find(|(s, _)| *s == state).map_or(0, |c| c.1);
                    out.push(Gauge {
                        name,
                        help,
                        value: n as f64,
                    });
                }
            }
        }
        out
    }

    /// A blocking read snapshot.
    pub(crate) fn reader(&self) -> Result<Box<dyn oxehr_store::ReadTx + '_>, RecordsError> {
        Ok(self.store.read()?)
    }
}

/// The audit records of a write, one per version and patient; the server's own writes
/// (import, demo data) get one record for the whole job.
fn write_audit(
    who: &Caller,
    tx: &mut dyn Tx,
    versions: &[oxehr_store::NewVersion],
    vouched: &[Vouched],
) -> Result<Vec<oxehr_store::audit::AuditRecord>, StoreError> {
    if who.internal {
        let mut r = audit::record(who, "import", "success", None, None);
        r.detail = Some(format!("{} resources", versions.len()));
        return Ok(vec![r]);
    }
    let mut out = Vec::new();
    for v in versions {
        let r = &v.resource;
        let mut patients: Vec<String> = v
            .compartments
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect();
        if patients.is_empty() {
            // A delete: the record it leaves.
            patients = tx
                .compartments(&r.rtype, &r.id)?
                .into_iter()
                .map(|p| p.as_str().to_owned())
                .collect();
        }
        let mut records = audit::per_patient(
            who,
            audit::action_of(r.method),
            "success",
            Some(format!("{}/{}", r.rtype, r.id)),
            patients,
        );
        if let Some(v) = vouched.iter().find(|v| v.covers(r)) {
            for record in &mut records {
                record.detail = Some(v.why.clone());
            }
        }
        out.extend(records);
    }
    Ok(out)
}

fn guard_key(q: &Query) -> String {
    format!("?{:?}{:?}", q.types, q.filters)
}
