//! SQL on FHIR views run over the store, for every adapter: the `$viewdefinition-run`
//! operation of the API and `oxehr view run`.
//!
//! A run pages through the view's resource type with the search engine, under the
//! caller's access (the same rights on the type and the same visibility SQL as a
//! search), parses and runs the view over each page's resources (one thread per core)
//! and hands the rows to a [`ViewSink`] in order: one page of bodies and its rows are
//! held at a time, never the type. It can be limited to
//! some patients' records (the operation's `patient` and `group`, read in chunks as a
//! Patient-level export reads them), to resources changed after an instant (`_since`)
//! and to a number of rows (`_limit`).
//!
//! Audit: a run is a read of every resource it reads, so it is recorded as a search is,
//! one `view-run` record per patient whose records it read (gathered over pages and
//! appended in batches, also when the run stops half-way), with the view's name as
//! detail. The server's own runs (`oxehr view run`) write one record for the whole run,
//! durable before the run returns.

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use oxehr_auth::scope::Perm;
use oxehr_auth::Caller;
use oxehr_fhir::IssueCode;
use oxehr_search::query::{Condition, Filter, Query};
use oxehr_store::access::Access;
use oxehr_store::search::{self as engine, Position};
use serde_json::Value;

pub use oxehr_views::{Column, View};

use crate::{audit, query, Records, RecordsError};

/// One page of resources, and the patients whose records it holds (for the audit).
type Page = (Vec<engine::Hit>, Vec<String>);

/// Resources read per statement.
const PAGE: usize = 1000;
/// Patients per statement when a run is limited to patients.
const PATIENT_CHUNK: usize = 200;
/// Patients gathered before their audit records are appended.
const AUDIT_BATCH: usize = 1000;
/// The audit action of a view run.
pub const ACTION: &str = "view-run";

/// Which resources a run reads, and how many rows it gives at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewFilter {
    /// Only the records of these patients (Patient ids): resources of their
    /// compartments (a Patient is in its own).
    pub patients: Vec<String>,
    /// Only the records of the members of these Groups (Group ids), read as the caller
    /// (members marked inactive left out). With `patients`, the union of both.
    pub groups: Vec<String>,
    /// Only resources changed after this instant (microseconds since the epoch).
    pub since: Option<i64>,
    /// At most this many rows (`None`: all).
    pub limit: Option<u64>,
}

/// How far a run got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewRunStats {
    /// Resources read from the store and run through the view.
    pub resources: u64,
    /// Rows given to the sink.
    pub rows: u64,
    /// The run stopped at the filter's `limit` (more rows may have followed).
    pub limited: bool,
}

/// Where a run's rows go. Any `FnMut(Vec<Value>) -> Result<(), RecordsError>` is one; an
/// error from it stops the run (the client went away, the disk is full).
pub trait ViewSink {
    /// One row, its values in [`View::columns`] order.
    fn row(&mut self, row: Vec<Value>) -> Result<(), RecordsError>;
    /// Called after each page of resources (for a progress bar).
    fn progress(&mut self, _stats: &ViewRunStats) {}
}

impl<F: FnMut(Vec<Value>) -> Result<(), RecordsError>> ViewSink for F {
    fn row(&mut self, row: Vec<Value>) -> Result<(), RecordsError> {
        self(row)
    }
}

/// Compiles a ViewDefinition (`oxehr_views::View::compile`); one that breaks the spec's
/// rules is invalid, with the views crate's message (where in the definition, and why).
pub fn compile(definition: &Value) -> Result<View, RecordsError> {
    View::compile(definition).map_err(view_error)
}

fn view_error(e: oxehr_views::Error) -> RecordsError {
    let code = match e {
        oxehr_views::Error::Definition { .. } => IssueCode::Invalid,
        oxehr_views::Error::Evaluation { .. } => IssueCode::Processing,
    };
    RecordsError::invalid(code, e.to_string())
}

/// The audit records of a run, gathered over its pages.
struct RunAudit<'a> {
    records: &'a Records,
    who: &'a Caller,
    rtype: String,
    detail: String,
    pending: BTreeSet<String>,
    /// Whether a record was appended already.
    appended: bool,
}

impl RunAudit<'_> {
    fn append(&mut self, final_: bool) -> Result<(), RecordsError> {
        if self.who.internal || (self.pending.is_empty() && (self.appended || !final_)) {
            return Ok(());
        }
        let patients: Vec<String> = std::mem::take(&mut self.pending).into_iter().collect();
        let mut records = audit::per_patient(
            self.who,
            ACTION,
            "success",
            Some(self.rtype.clone()),
            patients,
        );
        for r in &mut records {
            r.detail = Some(self.detail.clone());
        }
        self.appended = true;
        self.records.auditor.record(records)
    }

    fn read(&mut self, patients: Vec<String>) -> Result<(), RecordsError> {
        self.pending.extend(patients);
        if self.pending.len() >= AUDIT_BATCH {
            self.append(false)?;
        }
        Ok(())
    }
}

impl Records {
    /// Runs `view` over the resources of its type that `who` may see and `filter`
    /// selects, in the store's key order, giving each row to `out` as it is made.
    ///
    /// Refused (403) when the caller may not read and search the type; invalid (400) when
    /// the type is the audit trail, when `patient`/`group` is asked of a type outside
    /// the Patient compartment, or when the view fails on a resource (a column that is
    /// not a `collection` gives several values). Rows given before an error stay given.
    pub fn run_view(
        &self,
        who: &Caller,
        view: &View,
        filter: &ViewFilter,
        out: &mut impl ViewSink,
    ) -> Result<ViewRunStats, RecordsError> {
        let rtype = view.resource_type().to_owned();
        let detail = match view.name() {
            Some(n) => format!("view {n}"),
            None => "view".to_owned(),
        };
        let mut run_audit = RunAudit {
            records: self,
            who,
            rtype: rtype.clone(),
            detail,
            pending: BTreeSet::new(),
            appended: false,
        };
        let res = self.run_view_inner(who, view, filter, out, &mut run_audit);
        match &res {
            Err(e) if audit::is_denial(e) => {
                if !who.internal {
                    let mut r = audit::record(who, ACTION, "denied", Some(rtype), None);
                    r.detail = Some(run_audit.detail.clone());
                    self.auditor.record(vec![r])?;
                }
            }
            Err(_) => {
                // What was read before the failure was read: recorded all the same.
                run_audit.append(false)?;
            }
            Ok(stats) if who.internal => {
                let mut r = audit::record(who, ACTION, "success", Some(rtype), None);
                r.detail = Some(format!(
                    "{}: {} rows from {} resources",
                    run_audit.detail, stats.rows, stats.resources
                ));
                self.auditor.record_with(vec![r], true)?;
            }
            Ok(_) => run_audit.append(true)?,
        }
        res
    }

    fn run_view_inner(
        &self,
        who: &Caller,
        view: &View,
        filter: &ViewFilter,
        out: &mut impl ViewSink,
        run_audit: &mut RunAudit<'_>,
    ) -> Result<ViewRunStats, RecordsError> {
        let rtype = view.resource_type();
        if crate::audit_view::is_audit_event(rtype) {
            return Err(RecordsError::invalid(
                IssueCode::NotSupported,
                "AuditEvent is the audit trail, searched on its own: AuditEvent?patient=…",
            ));
        }
        crate::policy::check_type(who, rtype, Perm::Read)?;
        let mut pairs = Vec::new();
        if let Some(since) = filter.since {
            pairs.push((
                "_lastUpdated".to_owned(),
                format!("gt{}", crate::format_instant(since)),
            ));
        }
        let mut q = query::parse(&[rtype.to_owned()], &pairs, false, None)?;
        // Key order: pages that neither skip nor repeat while others write.
        q.sort.clear();
        q.page = None;
        crate::policy::check_query(who, &q)?;
        if filter.limit == Some(0) {
            return Ok(ViewRunStats {
                limited: true,
                ..ViewRunStats::default()
            });
        }
        let access = {
            let mut reader = self.reader()?;
            self.access(who, &mut *reader)?
        };
        let mut run = Run {
            who,
            view,
            access: &access,
            limit: filter.limit,
            stats: ViewRunStats::default(),
            out,
            run_audit,
            seen: None,
        };
        if filter.patients.is_empty() && filter.groups.is_empty() {
            run.query(self, &q)?;
            return Ok(run.stats);
        }
        if !crate::bulk::in_patient_compartment(rtype) && rtype != "Patient" {
            return Err(RecordsError::invalid(
                IssueCode::NotSupported,
                format!(
                    "patient and group select records of patients; {rtype} is not in the Patient compartment"
                ),
            ));
        }
        let mut patients: Vec<String> = filter.patients.clone();
        for g in &filter.groups {
            patients.extend(self.group_members(who, g)?);
        }
        patients.sort();
        patients.dedup();
        // A resource in two listed patients' records is read for each chunk it is in.
        run.seen = Some(HashSet::new());
        for chunk in patients.chunks(PATIENT_CHUNK) {
            let mut q = q.clone();
            q.filters.push(Filter {
                negated: false,
                any_of: chunk
                    .iter()
                    .map(|p| Condition::InPatientCompartment(p.clone()))
                    .collect(),
            });
            if !run.query(self, &q)? {
                break;
            }
        }
        Ok(run.stats)
    }
}

/// One run's state while it pages.
struct Run<'a, 'b, S: ViewSink> {
    who: &'a Caller,
    view: &'a View,
    access: &'a Access,
    limit: Option<u64>,
    stats: ViewRunStats,
    out: &'a mut S,
    run_audit: &'a mut RunAudit<'b>,
    /// Resources read already, when several statements may read one.
    seen: Option<HashSet<i64>>,
}

impl<S: ViewSink> Run<'_, '_, S> {
    /// Pages through `q`; `false` when the run is over (the limit was reached).
    ///
    /// A thread of its own reads the pages (and whose records each holds, for the
    /// audit), one page ahead of the views run over the page before, and this thread
    /// writes a page's rows while the worker threads run the view over the next:
    /// reading, running and writing overlap. Each read takes a snapshot of its own, so
    /// no transaction stays open while rows are written.
    fn query(&mut self, records: &Records, q: &Query) -> Result<bool, RecordsError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Page, RecordsError>>(1);
        let (access, internal) = (self.access, self.who.internal);
        let interrupt = oxehr_store::interrupt::current();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                oxehr_store::interrupt::scope(interrupt, || {
                    let mut position = Position::First;
                    loop {
                        let page = read_page(records, access, q, &position, internal);
                        let next = match &page {
                            Ok((hits, _)) if hits.len() >= PAGE => {
                                hits.last().map(|h| Position::After(h.keys.clone(), h.rid))
                            }
                            _ => None,
                        };
                        // The reader is gone: the run stopped.
                        if tx.send(page).is_err() {
                            return;
                        }
                        match next {
                            Some(p) => position = p,
                            None => return,
                        }
                    }
                })
            });
            let workers = Workers::start(scope, self.view);
            let result = self.consume(&rx, workers.as_ref());
            // Unblocks the reader if the run stopped before the last page, and ends the
            // workers.
            drop(rx);
            drop(workers);
            result
        })
    }

    /// Runs the view over the pages `rx` brings; `false` when the limit was reached.
    fn consume(
        &mut self,
        rx: &std::sync::mpsc::Receiver<Result<Page, RecordsError>>,
        workers: Option<&Workers>,
    ) -> Result<bool, RecordsError> {
        // The page the worker threads hold while this thread writes the one before.
        let mut in_flight: Option<InFlight> = None;
        for page in rx.iter() {
            let (hits, patients) = page?;
            self.run_audit.read(patients)?;
            let mut bodies: Vec<String> = Vec::with_capacity(hits.len());
            for h in hits {
                if let Some(seen) = &mut self.seen {
                    if !seen.insert(h.rid) {
                        continue;
                    }
                }
                if let Some(body) = h.resource.body {
                    bodies.push(body);
                }
            }
            match workers {
                Some(w) if bodies.len() >= PARALLEL_FROM => {
                    let next = w.submit(Arc::new(bodies));
                    if let Some(before) = in_flight.replace(next) {
                        if !self.emit_all(w.collect(before))? {
                            return Ok(false);
                        }
                    }
                }
                _ => {
                    if let Some((w, before)) = workers.zip(in_flight.take()) {
                        if !self.emit_all(w.collect(before))? {
                            return Ok(false);
                        }
                    }
                    let rows = bodies.iter().map(|b| resource_rows(self.view, b));
                    if !self.emit_all(rows.collect())? {
                        return Ok(false);
                    }
                }
            }
            self.out.progress(&self.stats);
        }
        if let Some((w, before)) = workers.zip(in_flight.take()) {
            if !self.emit_all(w.collect(before))? {
                return Ok(false);
            }
            self.out.progress(&self.stats);
        }
        Ok(true)
    }

    /// Gives a page's rows to the sink, in order; `false` when the limit is reached.
    fn emit_all(&mut self, pages_rows: Vec<ResourceRows>) -> Result<bool, RecordsError> {
        for rows in pages_rows {
            if !self.emit(rows?)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Gives one resource's rows to the sink; `false` when the limit is reached.
    fn emit(&mut self, rows: Vec<Vec<Value>>) -> Result<bool, RecordsError> {
        self.stats.resources += 1;
        for row in rows {
            if self.limit.is_some_and(|l| self.stats.rows >= l) {
                break;
            }
            self.out.row(row)?;
            self.stats.rows += 1;
        }
        if self.limit.is_some_and(|l| self.stats.rows >= l) {
            self.stats.limited = true;
        }
        Ok(!self.stats.limited)
    }
}

/// One page of `q` after `position`, and (for a caller whose reads are audited) the
/// patients whose records it holds.
fn read_page(
    records: &Records,
    access: &Access,
    q: &Query,
    position: &Position,
    internal: bool,
) -> Result<Page, RecordsError> {
    let mut reader = records.reader()?;
    let hits = engine::page(&mut *reader, access, q, position, PAGE)?;
    let patients = if internal || hits.is_empty() {
        Vec::new()
    } else {
        let rids: Vec<i64> = hits.iter().map(|h| h.rid).collect();
        oxehr_store::access::patients_of(&mut *reader, &rids)?
    };
    Ok((hits, patients))
}

/// Resources of a page below which it is run on one thread.
const PARALLEL_FROM: usize = 64;

/// One resource's rows, or why it failed.
type ResourceRows = Result<Vec<Vec<Value>>, RecordsError>;

/// A part of a page for a worker: the page's bodies and the part's range.
type Job = (Arc<Vec<String>>, Range<usize>);

/// Threads that parse and run the view over parts of each page, one per core, for the
/// whole run. Parsing and running the view are most of a run's work once a page is read,
/// and each resource is independent; threads kept for the run (rather than started per
/// page) keep their allocator's memory warm. Rows are handed on in the page's order.
struct Workers {
    jobs: Vec<SyncSender<Job>>,
    results: Vec<Receiver<Vec<ResourceRows>>>,
}

impl Workers {
    /// `None` on a single core: the page is run on the calling thread.
    fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        view: &'scope View,
    ) -> Option<Workers> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get().min(4))
            .unwrap_or(1);
        if threads < 2 {
            return None;
        }
        let mut w = Workers {
            jobs: Vec::with_capacity(threads),
            results: Vec::with_capacity(threads),
        };
        for _ in 0..threads {
            let (job_tx, job_rx) = sync_channel::<Job>(1);
            let (res_tx, res_rx) = sync_channel(1);
            scope.spawn(move || {
                for (bodies, range) in job_rx {
                    // A panic stays in its resource's result: the scope would re-raise
                    // it in the caller.
                    let rows = bodies[range]
                        .iter()
                        .map(|b| {
                            std::panic::catch_unwind(AssertUnwindSafe(|| resource_rows(view, b)))
                                .unwrap_or_else(|_| {
                                    Err(RecordsError::Internal("a view thread panicked".into()))
                                })
                        })
                        .collect();
                    if res_tx.send(rows).is_err() {
                        return;
                    }
                }
            });
            w.jobs.push(job_tx);
            w.results.push(res_rx);
        }
        Some(w)
    }

    /// Hands a page's bodies to the threads, a part each; [`Workers::collect`] gets
    /// their rows. The threads work on it while the caller writes the page before.
    fn submit(&self, bodies: Arc<Vec<String>>) -> InFlight {
        let per = bodies.len().div_ceil(self.jobs.len());
        let mut sent = 0;
        for (i, job) in self.jobs.iter().enumerate() {
            let range = (i * per).min(bodies.len())..((i + 1) * per).min(bodies.len());
            if job.send((bodies.clone(), range)).is_err() {
                break;
            }
            sent += 1;
        }
        InFlight {
            sent,
            len: bodies.len(),
        }
    }

    /// The rows of each body of the page `page` handed on, in order.
    fn collect(&self, page: InFlight) -> Vec<ResourceRows> {
        let mut out = Vec::with_capacity(page.len);
        for r in &self.results[..page.sent] {
            match r.recv() {
                Ok(rows) => out.extend(rows),
                Err(_) => out.push(Err(RecordsError::Internal("a view thread stopped".into()))),
            }
        }
        if page.sent < self.jobs.len() {
            out.push(Err(RecordsError::Internal("a view thread stopped".into())));
        }
        out
    }
}

/// A page the worker threads hold: how many of them got a part, and its resources.
struct InFlight {
    sent: usize,
    len: usize,
}

/// One stored body's rows. Only the elements the view's paths may read are parsed.
fn resource_rows(view: &View, body: &str) -> Result<Vec<Vec<Value>>, RecordsError> {
    let resource: Value = view
        .parse(body)
        .map_err(|e| RecordsError::Internal(format!("a stored resource is not JSON: {e}")))?;
    let mut rows = Vec::new();
    view.rows(&resource, &mut |row| rows.push(row))
        .map_err(view_error)?;
    Ok(rows)
}
