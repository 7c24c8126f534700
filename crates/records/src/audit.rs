//! Audit records of what callers do with the record.
//!
//! - **Writes** append theirs inside the job that commits the write (same transaction:
//!   no write without its record, no record of a write that did not happen).
//! - **Reads** (read, vread, history, search) cannot write in their read snapshot, so
//!   their records go to the [`Auditor`], one thread that appends whatever has arrived
//!   in one write transaction (group commit). By default a read answers once its record
//!   is queued (a crash can lose the read records of the last gathering window,
//!   `RecordsConfig::read_audit_window`, 20 ms by default: measured,
//!   waiting for durability cut reads from ~24k/s to ~5k/s on the reference machine);
//!   with `RecordsConfig::durable_read_audit` it answers only after the record is
//!   durable. If an append fails, every later read is refused until the server is
//!   restarted: no read goes unrecorded for long.
//! - **Refusals** (403) are recorded too, with outcome `denied`.
//!
//! One record per patient whose record was touched (a search returning three patients'
//! Observations writes three), so a patient's access log ("who looked at my chart") is
//! one indexed lookup by patient. The server's own work (import, demo data) writes one
//! record per committed job instead of one per resource.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use oxehr_auth::Caller;
use oxehr_store::audit::{self, AuditRecord};
use oxehr_store::Store;

use crate::{time_fmt, RecordsError};

/// Records appended per write transaction at most.
const MAX_BATCH: usize = 4096;
/// How long a batch of read records gathers before it is appended, by default
/// (`RecordsConfig::read_audit_window`).
pub const DEFAULT_READ_AUDIT_WINDOW: std::time::Duration = std::time::Duration::from_millis(20);

struct Job {
    records: Vec<AuditRecord>,
    done: mpsc::SyncSender<Result<(), String>>,
}

/// The appender of read audit records (see the module documentation).
pub(crate) struct Auditor {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Wait for durability before answering.
    durable: bool,
    /// Set when an append failed: reads are refused from then on.
    failed: Arc<std::sync::atomic::AtomicBool>,
    /// Records queued and not yet appended, and when the last append committed (µs).
    lag: Arc<Lag>,
}

/// How far the audit trail is behind the answers given (for `/metrics`).
#[derive(Debug, Default)]
pub(crate) struct Lag {
    pending: std::sync::atomic::AtomicU64,
    last_append: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auditor")
    }
}

impl Auditor {
    /// `window`: how long read records gather before they are appended (not when
    /// reads wait for durability).
    pub(crate) fn start(
        store: Arc<dyn Store>,
        durable: bool,
        window: std::time::Duration,
    ) -> Auditor {
        let (sender, receiver) = mpsc::channel::<Job>();
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let failed_flag = failed.clone();
        let lag = Arc::new(Lag::default());
        let lag_of_thread = lag.clone();
        let thread = std::thread::Builder::new()
            .name("oxehr-audit".into())
            .spawn(move || {
                while let Ok(first) = receiver.recv() {
                    // Let a batch gather (unless someone waits for durability): while
                    // this thread sleeps, senders do not wake it, which on a busy
                    // server saves a thread switch per request.
                    if !durable && !window.is_zero() {
                        std::thread::sleep(window);
                    }
                    let mut batch = vec![first];
                    let mut n = batch[0].records.len();
                    while n < MAX_BATCH {
                        match receiver.try_recv() {
                            Ok(j) => {
                                n += j.records.len();
                                batch.push(j);
                            }
                            Err(_) => break,
                        }
                    }
                    let records: Vec<AuditRecord> =
                        batch.iter().flat_map(|j| j.records.clone()).collect();
                    // No read waits to see these (the trail is read by its own
                    // searches, which never promised the last window).
                    let result = store
                        .write_log(Box::new(move |tx| {
                            audit::append(tx, &records)?;
                            Ok(Box::new(()))
                        }))
                        .map(|_| ())
                        .map_err(|e| e.to_string());
                    if result.is_ok() {
                        use std::sync::atomic::Ordering::Relaxed;
                        lag_of_thread.pending.fetch_sub(n as u64, Relaxed);
                        lag_of_thread
                            .last_append
                            .store(crate::time_fmt::now_micros(), Relaxed);
                    }
                    if let Err(e) = &result {
                        failed_flag.store(true, std::sync::atomic::Ordering::SeqCst);
                        tracing::error!(error = %e, "audit records could not be written; reads are refused from now on");
                    }
                    for j in batch {
                        let _ = j.done.send(result.clone());
                    }
                }
            })
            .ok();
        Auditor {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(thread),
            durable,
            failed,
            lag,
        }
    }

    /// (records queued and not yet appended, when the last append committed in µs,
    /// 0 before the first).
    pub(crate) fn lag(&self) -> (u64, i64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.lag.pending.load(Relaxed),
            self.lag.last_append.load(Relaxed),
        )
    }

    /// Queues `records` for the next append (and waits until they are committed when
    /// the auditor is durable). An answer that cannot be audited is not given: the
    /// error is `Busy`.
    pub(crate) fn record(&self, records: Vec<AuditRecord>) -> Result<(), RecordsError> {
        self.record_with(records, self.durable)
    }

    /// [`record`](Self::record), waiting for durability when `durable`.
    /// Whether the audit trail can still be written (an append failure stops reads).
    pub(crate) fn healthy(&self) -> bool {
        !self.failed.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn record_with(
        &self,
        records: Vec<AuditRecord>,
        durable: bool,
    ) -> Result<(), RecordsError> {
        if self.failed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(RecordsError::Busy(
                "the audit trail cannot be written; see the server log".into(),
            ));
        }
        if records.is_empty() {
            return Ok(());
        }
        let (done, wait) = mpsc::sync_channel(1);
        let count = records.len() as u64;
        self.lag
            .pending
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        let sent = self
            .sender
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.send(Job { records, done })));
        let unavailable = || RecordsError::Busy("the audit trail is unavailable".into());
        match sent {
            Some(Ok(())) => {}
            _ => {
                self.lag
                    .pending
                    .fetch_sub(count, std::sync::atomic::Ordering::Relaxed);
                return Err(unavailable());
            }
        }
        if !durable {
            return Ok(());
        }
        match wait.recv() {
            Ok(Ok(())) => Ok(()),
            _ => Err(unavailable()),
        }
    }
}

impl Auditor {
    /// Waits until everything queued before this call is committed.
    pub(crate) fn flush(&self) -> Result<(), RecordsError> {
        // A job without records still waits for its batch to commit.
        let (done, wait) = mpsc::sync_channel(1);
        let sent = self.sender.lock().ok().and_then(|s| {
            s.as_ref().map(|s| {
                s.send(Job {
                    records: Vec::new(),
                    done,
                })
            })
        });
        if !matches!(sent, Some(Ok(()))) {
            return Err(RecordsError::Busy("the audit trail is unavailable".into()));
        }
        match wait.recv() {
            Ok(Ok(())) => Ok(()),
            _ => Err(RecordsError::Busy("the audit trail is unavailable".into())),
        }
    }
}

impl Drop for Auditor {
    fn drop(&mut self) {
        // Closing the channel ends the thread after it has written what it holds.
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

/// A record of `who` doing `action`, now.
pub(crate) fn record(
    who: &Caller,
    action: &str,
    outcome: &str,
    resource: Option<String>,
    patient: Option<String>,
) -> AuditRecord {
    AuditRecord {
        time: time_fmt::now_micros(),
        user: Some(who.user.clone()),
        role: Some(who.role.code().to_owned()),
        organization: who.organization.clone(),
        patient,
        resource,
        action: action.to_owned(),
        outcome: outcome.to_owned(),
        client: who.client.clone(),
        detail: None,
    }
}

/// One record per patient (or one without a patient when there is none).
pub(crate) fn per_patient(
    who: &Caller,
    action: &str,
    outcome: &str,
    resource: Option<String>,
    patients: Vec<String>,
) -> Vec<AuditRecord> {
    if patients.is_empty() {
        return vec![record(who, action, outcome, resource, None)];
    }
    patients
        .into_iter()
        .map(|p| record(who, action, outcome, resource.clone(), Some(p)))
        .collect()
}

/// The audit action of a stored version.
pub(crate) fn action_of(method: oxehr_store::Method) -> &'static str {
    match method {
        oxehr_store::Method::Create => "create",
        oxehr_store::Method::Update => "update",
        oxehr_store::Method::Patch => "patch",
        oxehr_store::Method::Delete => "delete",
    }
}

/// Whether an error is a refusal worth recording.
pub(crate) fn is_denial(e: &RecordsError) -> bool {
    matches!(e, RecordsError::Forbidden(_))
}

impl crate::Records {
    /// The audit trail as its readers may see it: a system administrator all of it, an
    /// organization's administrator what its staff did, a patient who accessed their
    /// own record ("who looked at my chart"); others are refused. Newest first.
    pub fn audit_events(
        &self,
        who: &Caller,
        mut filter: audit::AuditFilter,
        limit: usize,
    ) -> Result<Vec<audit::StoredAudit>, RecordsError> {
        use oxehr_auth::Role;
        let refuse = |why: &str| RecordsError::Forbidden(why.to_owned());
        match who.role {
            Role::SystemAdmin => {}
            Role::OrgAdmin => match &who.organization {
                Some(org) => filter.organization = Some(org.clone()),
                None => return Err(refuse("an administrator without an organization")),
            },
            Role::Patient => {
                let own = who
                    .patient
                    .clone()
                    .ok_or_else(|| refuse("a patient account without a patient"))?;
                if filter.patient.as_ref().is_some_and(|p| p != &own) {
                    return Err(refuse(
                        "a patient sees the access log of their own record only",
                    ));
                }
                filter.patient = Some(own);
            }
            _ => return Err(refuse(
                "the audit trail is for administrators, and for patients about their own record",
            )),
        }
        let mut tx = self.reader()?;
        Ok(audit::search(&mut *tx, &filter, limit)?)
    }
}

impl crate::Records {
    /// Appends events that are not record interactions (sign-ins, failed sign-ins) to
    /// the audit trail, returning when they are durable.
    pub fn record_events(&self, records: Vec<AuditRecord>) -> Result<(), RecordsError> {
        self.auditor.record_with(records, true)
    }

    /// Waits until every audit record queued so far is durable.
    pub fn flush_audit(&self) -> Result<(), RecordsError> {
        self.auditor.flush()
    }
}
