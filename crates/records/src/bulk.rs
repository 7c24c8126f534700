//! Bulk Data export (`$export`, FHIR Bulk Data Access IG 2.0) for every adapter: the
//! kick-off, the status of a job, its cancellation, its files, and the background
//! runner that writes them.
//!
//! A kick-off is checked here (parameters, the caller's rights on the types, a Group the
//! caller may read, at most [`BulkConfig::max_jobs_per_caller`] unfinished jobs) and
//! becomes a row of `bulk_job` (`oxehr_store::jobs`) with the caller in it, audited as
//! `export`. Runner threads take queued jobs and write them with
//! [`Records::write_export`] under that caller's access — the same policy, compiled
//! into the same search statements, as every read — into `<dir>/<job id>/`, one file
//! row per finished file. A job that was running when the server stopped is queued
//! again at the next start and runs again from the beginning (its partial files are
//! removed). Jobs and files expire [`BulkConfig::expiry`] after they finish, and the
//! runner removes them. Only the account that asked sees a job or its files (anyone
//! else: not found, so nothing shows that it exists); each download is audited per
//! patient whose records the file holds.

mod params;
mod run;
mod write;

use std::path::PathBuf;
use std::time::Duration;

use oxehr_auth::scope::Perm;
use oxehr_auth::{Caller, Role};
use oxehr_store::jobs::{self, JobRow, JobState};
use oxehr_store::{JobOutput, StoreError, Tx};
use serde_json::json;

pub use params::{ExportLevel, ExportRequest, TypeFilter, OUTPUT_FORMATS};
pub(crate) use run::Runner;
pub(crate) use write::in_patient_compartment;
pub use write::{ExportSink, WriteSettings, WrittenFile};

use crate::{audit, Records, RecordsError};

/// Settings of Bulk Data export.
#[derive(Debug, Clone)]
pub struct BulkConfig {
    /// Where export files are written, one directory per job. `None`: a directory of
    /// its own under the system's temporary directory, made at the first export (the
    /// binary always sets `<data>/exports`).
    pub dir: Option<PathBuf>,
    /// How long a finished job and its files are kept.
    pub expiry: Duration,
    /// Unfinished (queued or running) jobs one account may have; one more is answered
    /// "too many requests".
    pub max_jobs_per_caller: usize,
    /// Jobs run at once by this server.
    pub workers: usize,
    /// Lines per NDJSON file; a type with more gets several files.
    pub max_lines_per_file: u64,
    /// Resources read per statement.
    pub page_size: usize,
    /// What `Retry-After` suggests to a client polling a running job or refused for
    /// having too many.
    pub retry_after: Duration,
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            dir: None,
            expiry: Duration::from_secs(24 * 3600),
            max_jobs_per_caller: 2,
            workers: 1,
            max_lines_per_file: 100_000,
            page_size: 1000,
            retry_after: Duration::from_secs(2),
        }
    }
}

/// The answer to a kick-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kickoff {
    /// Accepted: the job's id (the status URL's last segment).
    Accepted(String),
    /// The caller has too many unfinished jobs; ask again later.
    TooMany { retry_after: Duration },
}

/// One file of a complete export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    pub rtype: String,
    pub file_id: String,
    pub count: u64,
}

/// A complete export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub job_id: String,
    pub transaction_time: i64,
    pub request: String,
    pub output: Vec<ManifestFile>,
    pub error: Vec<ManifestFile>,
    pub deleted: Vec<ManifestFile>,
    /// When the job and its files are removed.
    pub expires: i64,
}

/// Where a job is, as its owner may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportStatus {
    InProgress {
        progress: String,
        retry_after: Duration,
    },
    Complete(Manifest),
    /// The export failed; why, in plain words.
    Failed(String),
}

/// A file to send, checked and audited.
#[derive(Debug, Clone)]
pub struct ExportFile {
    pub path: PathBuf,
    pub count: u64,
}

/// The caller as the job keeps it: enough to run as them again after a restart.
pub(crate) fn caller_to_json(who: &Caller) -> String {
    json!({
        "user": who.user,
        "role": who.role.code(),
        "organization": who.organization,
        "person": who.person,
        "patient": who.patient,
        "scopes": who.scopes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "client": who.client,
    })
    .to_string()
}

pub(crate) fn caller_from_json(s: &str) -> Option<Caller> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let scopes = v
        .get("scopes")?
        .as_array()?
        .iter()
        .filter_map(|s| oxehr_auth::parse_scope(s.as_str()?).ok())
        .filter_map(|s| s.as_resource().cloned())
        .collect();
    Some(Caller {
        user: text("user")?,
        role: Role::parse(&text("role")?)?,
        organization: text("organization"),
        person: text("person"),
        patient: text("patient"),
        scopes,
        client: text("client"),
        internal: false,
        confirmed: Vec::new(),
    })
}

fn not_found(id: &str) -> RecordsError {
    // The id is random and names no patient.
    RecordsError::NotFound(format!("export job {id}"))
}

/// A job id or file id as issued: 32 lower-case hex digits (anything else cannot name
/// one, and never reaches a path).
fn is_issued_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Records {
    /// The directory export files are written under.
    pub fn export_dir(&self) -> PathBuf {
        self.bulk.dir()
    }

    /// Asks for an export: checks it, queues the job and answers its id, or
    /// [`Kickoff::TooMany`]. Audited (`export`).
    pub fn export_kickoff(
        &self,
        who: &Caller,
        req: ExportRequest,
    ) -> Result<Kickoff, RecordsError> {
        self.export_types(who, &req)?;
        if !req.types.is_empty() || !req.type_filters.is_empty() {
            for f in &req.type_filters {
                crate::policy::check_type(who, &f.rtype, Perm::Search)?;
            }
        }
        if let ExportLevel::Group(id) = &req.level {
            self.group_members(who, id)?;
        }
        let now = crate::now_micros();
        let expiry = i64::try_from(self.config.bulk.expiry.as_micros()).unwrap_or(i64::MAX);
        let row = JobRow {
            id: uuid::Uuid::new_v4().simple().to_string(),
            owner: who.user.clone(),
            caller: caller_to_json(who),
            request: req.request_url.clone(),
            params: req.to_json(),
            state: JobState::Queued,
            created: now,
            transaction_time: None,
            finished: None,
            expires: now.saturating_add(expiry),
            progress: None,
            error: None,
        };
        let mut record = audit::record(who, "export", "success", Some(req.level.path()), None);
        record.detail = Some(format!("job {}", row.id));
        let max = i64::try_from(self.config.bulk.max_jobs_per_caller).unwrap_or(i64::MAX);
        let id = row.id.clone();
        let internal = who.internal;
        let job = Box::new(move |tx: &mut dyn Tx| -> Result<JobOutput, StoreError> {
            tx.lock(&format!("bulk-owner:{}", row.owner))?;
            if jobs::unfinished_of(tx, &row.owner)? >= max {
                return Ok(Box::new(false));
            }
            jobs::insert_job(tx, &row)?;
            if !internal {
                oxehr_store::audit::append(tx, std::slice::from_ref(&record))?;
            }
            Ok(Box::new(true))
        });
        let accepted = self
            .store
            .write(job)?
            .downcast::<bool>()
            .map(|b| *b)
            .unwrap_or(false);
        if !accepted {
            return Ok(Kickoff::TooMany {
                retry_after: self.config.bulk.retry_after,
            });
        }
        self.start_export_runner();
        self.bulk.wake();
        Ok(Kickoff::Accepted(id))
    }

    /// A job of `who`'s: not found for anyone else.
    fn own_job(&self, who: &Caller, id: &str) -> Result<JobRow, RecordsError> {
        if !is_issued_id(id) {
            return Err(not_found(id));
        }
        let mut reader = self.reader()?;
        match jobs::job(&mut *reader, id)? {
            Some(j) if j.owner == who.user && j.expires >= crate::now_micros() => Ok(j),
            _ => Err(not_found(id)),
        }
    }

    /// Where `who`'s export job is.
    pub fn export_status(&self, who: &Caller, id: &str) -> Result<ExportStatus, RecordsError> {
        let job = self.own_job(who, id)?;
        let retry_after = self.config.bulk.retry_after;
        match job.state {
            JobState::Queued => Ok(ExportStatus::InProgress {
                progress: "queued".into(),
                retry_after,
            }),
            JobState::Running => Ok(ExportStatus::InProgress {
                progress: job.progress.unwrap_or_else(|| "started".into()),
                retry_after,
            }),
            JobState::Failed => Ok(ExportStatus::Failed(
                job.error.unwrap_or_else(|| "the export failed".into()),
            )),
            JobState::Complete => {
                let files = {
                    let mut reader = self.reader()?;
                    jobs::files(&mut *reader, id)?
                };
                let mut m = Manifest {
                    job_id: job.id.clone(),
                    transaction_time: job.transaction_time.unwrap_or(job.created),
                    request: job.request.clone(),
                    output: Vec::new(),
                    error: Vec::new(),
                    deleted: Vec::new(),
                    expires: job.expires,
                };
                for f in files {
                    let entry = ManifestFile {
                        rtype: f.rtype,
                        file_id: f.id,
                        count: u64::try_from(f.count).unwrap_or(0),
                    };
                    match f.kind.as_str() {
                        "error" => m.error.push(entry),
                        "deleted" => m.deleted.push(entry),
                        _ => m.output.push(entry),
                    }
                }
                Ok(ExportStatus::Complete(m))
            }
        }
    }

    /// Cancels (or, once complete, removes) `who`'s export job and its files.
    pub fn export_cancel(&self, who: &Caller, id: &str) -> Result<(), RecordsError> {
        self.own_job(who, id)?;
        let owned = id.to_owned();
        let gone = self
            .store
            .write(Box::new(
                move |tx: &mut dyn Tx| -> Result<JobOutput, StoreError> {
                    Ok(Box::new(jobs::delete_job(tx, &owned)?))
                },
            ))?
            .downcast::<bool>()
            .map(|b| *b)
            .unwrap_or(false);
        if !gone {
            return Err(not_found(id));
        }
        self.bulk.cancelled(id);
        let _ = std::fs::remove_dir_all(self.export_dir().join(id));
        if !who.internal {
            let mut r = audit::record(
                who,
                "export-cancel",
                "success",
                Some("$export".into()),
                None,
            );
            r.detail = Some(format!("job {id}"));
            self.auditor.record(vec![r])?;
        }
        Ok(())
    }

    /// One file of `who`'s complete export, audited per patient whose records it holds
    /// (`export-download`).
    pub fn export_file(
        &self,
        who: &Caller,
        job_id: &str,
        file_id: &str,
    ) -> Result<ExportFile, RecordsError> {
        let job = self.own_job(who, job_id)?;
        if job.state != JobState::Complete || !is_issued_id(file_id) {
            return Err(not_found(job_id));
        }
        let file = {
            let mut reader = self.reader()?;
            jobs::file(&mut *reader, job_id, file_id)?
        }
        .ok_or_else(|| not_found(job_id))?;
        let path = self.export_dir().join(&file.path);
        if !who.internal {
            let patients: Vec<String> = serde_json::from_str(&file.patients).unwrap_or_default();
            let mut records = audit::per_patient(
                who,
                "export-download",
                "success",
                Some(file.rtype.clone()),
                patients,
            );
            for r in &mut records {
                r.detail = Some(format!("job {job_id} file {file_id}"));
            }
            self.auditor.record(records)?;
        }
        Ok(ExportFile {
            path,
            count: u64::try_from(file.count).unwrap_or(0),
        })
    }

    /// Starts the export runner of this server, once: jobs left running by a stopped
    /// server are queued again, then runner threads take queued jobs and remove
    /// expired ones. The binary calls it at start; a kick-off calls it too.
    pub fn start_export_runner(&self) {
        self.bulk.start(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_round_trip_through_json() {
        let scopes =
            oxehr_auth::parse_scopes("system/Patient.rs system/Observation.r").expect("scopes");
        let mut who = Caller::new(
            "client:abc".into(),
            Role::SystemAdmin,
            None,
            None,
            None,
            &scopes,
        );
        who.client = Some("192.0.2.1".into());
        let back = caller_from_json(&caller_to_json(&who)).expect("parse");
        assert_eq!(back, who);
    }

    #[test]
    fn only_issued_ids_are_looked_up() {
        assert!(is_issued_id(&uuid::Uuid::new_v4().simple().to_string()));
        for bad in ["", "../etc", "ABCDEF0123456789abcdef0123456789", "1234"] {
            assert!(!is_issued_id(bad), "{bad}");
        }
    }
}
