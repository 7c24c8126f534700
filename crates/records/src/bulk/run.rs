//! The export runner: threads that take queued jobs from `bulk_job`, write them, and
//! remove expired jobs and their files.
//!
//! The runner belongs to one `Records` (and its clones); its threads hold only a weak
//! reference to it, and stop when the last clone is dropped. A job is taken with an
//! update that only one runner can win (`jobs::claim`), so several servers over one
//! PostgreSQL database do not run a job twice. At start, jobs left `running` are
//! queued again: this assumes one server runs the jobs of a database (documented in
//! `docs/bulk.md`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use oxehr_store::jobs::{self, FileRow, JobRow, JobState};
use oxehr_store::{JobOutput, StoreError, Tx};

use super::write::{ExportSink, WriteSettings, WrittenFile};
use super::{caller_from_json, BulkConfig, ExportRequest};
use crate::{Records, RecordsError};

/// How often an idle runner looks for work it was not woken for (a job queued by
/// another server) and for expired jobs.
const IDLE_POLL: Duration = Duration::from_secs(1);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Signal {
    /// (stopped, woken)
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

#[derive(Debug)]
pub(crate) struct Runner {
    config: BulkConfig,
    /// The directory used when the configuration names none, made once.
    fallback_dir: PathBuf,
    started: Mutex<bool>,
    signal: Arc<Signal>,
    cancelled: Arc<Mutex<HashSet<String>>>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Ok(mut s) = self.signal.state.lock() {
            s.0 = true;
        }
        self.signal.cv.notify_all();
    }
}

impl Runner {
    pub(crate) fn new(config: BulkConfig) -> Runner {
        let fallback_dir =
            std::env::temp_dir().join(format!("oxehr-export-{}", uuid::Uuid::new_v4().simple()));
        Runner {
            config,
            fallback_dir,
            started: Mutex::new(false),
            signal: Arc::new(Signal::default()),
            cancelled: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    pub(crate) fn dir(&self) -> PathBuf {
        self.config
            .dir
            .clone()
            .unwrap_or_else(|| self.fallback_dir.clone())
    }

    pub(crate) fn wake(&self) {
        if let Ok(mut s) = self.signal.state.lock() {
            s.1 = true;
        }
        self.signal.cv.notify_all();
    }

    pub(crate) fn cancelled(&self, id: &str) {
        if let Ok(mut c) = self.cancelled.lock() {
            c.insert(id.to_owned());
        }
    }

    /// Starts the runner threads of `records` (once).
    pub(crate) fn start(&self, records: &Records) {
        let Ok(mut started) = self.started.lock() else {
            return;
        };
        if *started {
            return;
        }
        *started = true;
        if let Err(e) = std::fs::create_dir_all(self.dir()) {
            tracing::error!(error = %e, "cannot make the export directory");
        }
        restrict(&self.dir());
        // Jobs a stopped server left running start again.
        let requeued = records.store.write(Box::new(
            |tx: &mut dyn Tx| -> Result<JobOutput, StoreError> {
                Ok(Box::new(jobs::requeue_running(tx)?))
            },
        ));
        if let Ok(ids) = requeued {
            if let Ok(ids) = ids.downcast::<Vec<String>>() {
                for id in ids.iter() {
                    let _ = std::fs::remove_dir_all(self.dir().join(id));
                }
                if !ids.is_empty() {
                    tracing::info!(
                        jobs = ids.len(),
                        "export jobs interrupted by a stop run again"
                    );
                }
            }
        }
        for n in 0..self.config.workers.max(1) {
            let worker = Worker {
                records: records.weak(),
                signal: self.signal.clone(),
                cancelled: self.cancelled.clone(),
                config: self.config.clone(),
                dir: self.dir(),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("oxehr-export-{n}"))
                .spawn(move || worker.run());
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start an export runner");
            }
        }
    }
}

/// The export directory is readable by the owner only (it holds patient data).
fn restrict(dir: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
}

/// What a runner thread holds: no strong reference to the runner.
struct Worker {
    records: WeakRecords,
    signal: Arc<Signal>,
    cancelled: Arc<Mutex<HashSet<String>>>,
    config: BulkConfig,
    dir: PathBuf,
}

impl Worker {
    fn stopped(&self) -> bool {
        self.signal.state.lock().map(|s| s.0).unwrap_or(true)
    }

    fn run(self) {
        let mut last_sweep: Option<Instant> = None;
        loop {
            if self.stopped() {
                return;
            }
            let Some(records) = self.records.upgrade() else {
                return;
            };
            if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY.min(self.config.expiry)) {
                if let Err(e) = self.sweep(&records) {
                    tracing::warn!(error = %e, "removing expired exports failed");
                }
                last_sweep = Some(Instant::now());
            }
            let worked = match self.next(&records) {
                Ok(worked) => worked,
                Err(e) => {
                    tracing::warn!(error = %e, "the export runner could not take a job");
                    false
                }
            };
            drop(records);
            if worked {
                continue;
            }
            let Ok(mut s) = self.signal.state.lock() else {
                return;
            };
            if !s.1 && !s.0 {
                s = match self.signal.cv.wait_timeout(s, IDLE_POLL) {
                    Ok((s, _)) => s,
                    Err(_) => return,
                };
            }
            s.1 = false;
        }
    }

    /// Takes and runs the oldest queued job; false when there was none.
    fn next(&self, records: &Records) -> Result<bool, RecordsError> {
        let job = {
            let mut reader = records.reader()?;
            jobs::next_queued(&mut *reader)?
        };
        let Some(job) = job else {
            return Ok(false);
        };
        let id = job.id.clone();
        let now = crate::now_micros();
        let claimed = records
            .store
            .write(Box::new(
                move |tx: &mut dyn Tx| -> Result<JobOutput, StoreError> {
                    Ok(Box::new(jobs::claim(tx, &id, now)?))
                },
            ))?
            .downcast::<bool>()
            .map(|b| *b)
            .unwrap_or(false);
        if claimed {
            self.run_job(records, job, now);
        }
        Ok(true)
    }

    fn run_job(&self, records: &Records, job: JobRow, transaction_time: i64) {
        let dir = self.dir.join(&job.id);
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        let result = (|| -> Result<bool, RecordsError> {
            std::fs::create_dir_all(&dir)
                .map_err(|e| RecordsError::Internal(format!("export directory: {e}")))?;
            let who = caller_from_json(&job.caller)
                .ok_or_else(|| RecordsError::Internal("export job: unreadable caller".into()))?;
            let req = ExportRequest::from_json(&job.params)
                .ok_or_else(|| RecordsError::Internal("export job: unreadable request".into()))?;
            let mut sink = JobSink {
                records,
                job_id: &job.id,
                seq: 0,
                cancelled: &self.cancelled,
                last_progress: Instant::now(),
                gone: false,
            };
            let settings = WriteSettings {
                page_size: self.config.page_size,
                max_lines_per_file: self.config.max_lines_per_file,
            };
            records.write_export(&who, &req, transaction_time, &dir, &settings, &mut sink)?;
            Ok(!sink.gone)
        })();
        let now = crate::now_micros();
        let expiry = i64::try_from(self.config.expiry.as_micros()).unwrap_or(i64::MAX);
        let (state, error) = match &result {
            Ok(true) => (JobState::Complete, None),
            Ok(false) => {
                // Cancelled (or expired) while it ran.
                let _ = std::fs::remove_dir_all(&dir);
                if let Ok(mut c) = self.cancelled.lock() {
                    c.remove(&job.id);
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "an export job failed");
                let _ = std::fs::remove_dir_all(&dir);
                let why = match e.category() {
                    crate::Category::Internal => "the export failed; see the server log".into(),
                    _ => e.to_string(),
                };
                (JobState::Failed, Some(why))
            }
        };
        let id = job.id.clone();
        let finished = records.store.write(Box::new(
            move |tx: &mut dyn Tx| -> Result<JobOutput, StoreError> {
                Ok(Box::new(jobs::finish(
                    tx,
                    &id,
                    state,
                    now,
                    now.saturating_add(expiry),
                    error.as_deref(),
                )?))
            },
        ));
        let finished = finished
            .ok()
            .and_then(|b| b.downcast::<bool>().ok())
            .is_some_and(|b| *b);
        if !finished {
            let _ = std::fs::remove_dir_all(&dir);
        }
        tracing::info!(
            state = state.code(),
            secs = started.elapsed().as_secs_f64(),
            "an export job ended"
        );
    }

    /// Removes expired jobs, their rows and their files.
    fn sweep(&self, records: &Records) -> Result<(), RecordsError> {
        let now = crate::now_micros();
        let ids = {
            let mut reader = records.reader()?;
            jobs::expired(&mut *reader, now)?
        };
        for id in ids {
            let owned = id.clone();
            records.store.write(Box::new(
                move |tx: &mut dyn Tx| -> Result<JobOutput, StoreError> {
                    Ok(Box::new(jobs::delete_job(tx, &owned)?))
                },
            ))?;
            if let Ok(mut c) = self.cancelled.lock() {
                c.insert(id.clone());
            }
            let _ = std::fs::remove_dir_all(self.dir.join(&id));
        }
        Ok(())
    }
}

/// Records a running job's files and progress in its row.
struct JobSink<'a> {
    records: &'a Records,
    job_id: &'a str,
    seq: i64,
    cancelled: &'a Mutex<HashSet<String>>,
    last_progress: Instant,
    /// The job row is gone (cancelled, or removed as expired).
    gone: bool,
}

impl JobSink<'_> {
    fn is_cancelled(&self) -> bool {
        self.cancelled
            .lock()
            .map(|c| c.contains(self.job_id))
            .unwrap_or(true)
    }
}

impl ExportSink for JobSink<'_> {
    fn file(&mut self, f: WrittenFile) -> Result<bool, RecordsError> {
        self.seq += 1;
        let id = f
            .name
            .trim_start_matches("deleted-")
            .trim_end_matches(".ndjson")
            .to_owned();
        let row = FileRow {
            id,
            job_id: self.job_id.to_owned(),
            seq: self.seq,
            kind: f.kind.to_owned(),
            rtype: f.rtype,
            path: format!("{}/{}", self.job_id, f.name),
            count: i64::try_from(f.count).unwrap_or(i64::MAX),
            patients: serde_json::Value::from(f.patients).to_string(),
        };
        let added = self
            .records
            .store
            .write(Box::new(
                move |tx: &mut dyn Tx| -> Result<JobOutput, StoreError> {
                    Ok(Box::new(jobs::add_file(tx, &row)?))
                },
            ))?
            .downcast::<bool>()
            .map(|b| *b)
            .unwrap_or(false);
        if !added {
            self.gone = true;
        }
        Ok(added && !self.is_cancelled())
    }

    fn progress(&mut self, done_types: usize, all_types: usize, resources: u64) -> bool {
        if self.is_cancelled() {
            self.gone = true;
            return false;
        }
        // A row update at most every second: the progress is for people polling.
        if all_types == 0 || self.last_progress.elapsed() < Duration::from_secs(1) {
            return true;
        }
        self.last_progress = Instant::now();
        let text = if done_types > 0 {
            format!("{done_types} of {all_types} types, {resources} resources written")
        } else {
            format!("{resources} resources written")
        };
        let id = self.job_id.to_owned();
        let still = self
            .records
            .store
            .write(Box::new(
                move |tx: &mut dyn Tx| -> Result<JobOutput, StoreError> {
                    Ok(Box::new(jobs::set_progress(tx, &id, &text)?))
                },
            ))
            .ok()
            .and_then(|b| b.downcast::<bool>().ok())
            .is_none_or(|b| *b);
        if !still {
            self.gone = true;
        }
        still
    }
}

/// A `Records` that does not keep its runner alive: what runner threads hold.
pub(crate) struct WeakRecords(std::sync::Weak<crate::Shared>);

impl WeakRecords {
    fn upgrade(&self) -> Option<Records> {
        self.0.upgrade().map(Records::from_shared)
    }
}

impl Records {
    fn weak(&self) -> WeakRecords {
        WeakRecords(Arc::downgrade(&self.shared))
    }
}
