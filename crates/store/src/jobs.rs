//! Bulk Data export jobs (`$export`) and the files they wrote, written once for both
//! backends (migration 11).
//!
//! A job row is the whole state of one export: who asked (the caller, so that the job can
//! run again under the same access after a restart), what they asked for, where it is
//! (`queued`, `running`, `complete`, `failed`) and when its files expire. A file row is
//! one NDJSON file of a finished part of the job, with the patients whose records it
//! holds (for the audit records of its downloads). The files themselves live on disk,
//! under the export directory (`oxehr_records::bulk`).

use crate::sql::{Columns, SqlArg};
use crate::{ReadTx, StoreError, Tx};

/// Migration 11 (both backends). Times are microseconds since the Unix epoch.
///
/// `resource_type_rid` lets an export page through one type by key: without it, each
/// page of `rtype = ? AND rid > ? ORDER BY rid` read every resource of the type from the
/// `(rtype, id)` index and sorted them, so a type was read once per page (measured: 36k
/// resources/s for 1,000 patients, 94k with the index; `BENCHMARKS.md`).
pub const SCHEMA: &str = r#"
CREATE INDEX IF NOT EXISTS resource_type_rid ON resource (rtype, rid);
CREATE TABLE bulk_job (
    id               TEXT PRIMARY KEY,
    owner            TEXT NOT NULL,
    caller           TEXT NOT NULL,
    request          TEXT NOT NULL,
    params           TEXT NOT NULL,
    state            TEXT NOT NULL,
    created          BIGINT NOT NULL,
    transaction_time BIGINT,
    finished         BIGINT,
    expires          BIGINT NOT NULL,
    progress         TEXT,
    error            TEXT
);
CREATE INDEX bulk_job_owner ON bulk_job (owner, state);
CREATE INDEX bulk_job_state ON bulk_job (state, created);
CREATE INDEX bulk_job_expires ON bulk_job (expires);
CREATE TABLE bulk_file (
    id       TEXT PRIMARY KEY,
    job_id   TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    rtype    TEXT NOT NULL,
    path     TEXT NOT NULL,
    count    BIGINT NOT NULL,
    patients TEXT NOT NULL
);
CREATE INDEX bulk_file_job ON bulk_file (job_id, seq);
"#;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Accepted, waiting for a runner (also a job that was running when the server
    /// stopped: it starts again from the beginning).
    Queued,
    Running,
    Complete,
    Failed,
}

impl JobState {
    pub fn code(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Complete => "complete",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        [
            JobState::Queued,
            JobState::Running,
            JobState::Complete,
            JobState::Failed,
        ]
        .into_iter()
        .find(|st| st.code() == s)
    }
}

/// One export job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Random (UUID v4): it is the status URL, which must not be guessable.
    pub id: String,
    /// The account name (or `client:<id>`) that asked: only it may poll, cancel and
    /// download.
    pub owner: String,
    /// The caller as JSON (role, organization, scopes …): the job runs as it.
    pub caller: String,
    /// The kick-off request URL, as the manifest repeats it.
    pub request: String,
    /// The parsed parameters as JSON.
    pub params: String,
    pub state: JobState,
    pub created: i64,
    /// When the run that produced the files started (the manifest's `transactionTime`).
    pub transaction_time: Option<i64>,
    pub finished: Option<i64>,
    /// When the job and its files are removed.
    pub expires: i64,
    /// Plain words for `X-Progress` (no patient data).
    pub progress: Option<String>,
    /// Why the job failed (no patient data).
    pub error: Option<String>,
}

/// One NDJSON file a job wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// Random (UUID v4), part of the file's URL.
    pub id: String,
    pub job_id: String,
    /// Order within the job.
    pub seq: i64,
    /// `output`, `error` or `deleted`.
    pub kind: String,
    pub rtype: String,
    /// Relative to the export directory.
    pub path: String,
    /// Lines in the file.
    pub count: i64,
    /// Patient ids whose records the file holds, as a JSON array.
    pub patients: String,
}

const JOB_COLUMNS: &str = "id, owner, caller, request, params, state, created, transaction_time, \
                           finished, expires, progress, error";

fn job_row(row: Vec<crate::search::SqlValue>) -> Result<JobRow, StoreError> {
    let mut c = Columns::new("bulk_job", row);
    let id = c.text("id")?;
    let owner = c.text("owner")?;
    let caller = c.text("caller")?;
    let request = c.text("request")?;
    let params = c.text("params")?;
    let state = c.text("state")?;
    let state = JobState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("bulk_job state {state:?}")))?;
    Ok(JobRow {
        id,
        owner,
        caller,
        request,
        params,
        state,
        created: c.int("created")?,
        transaction_time: c.opt_int("transaction_time")?,
        finished: c.opt_int("finished")?,
        expires: c.int("expires")?,
        progress: c.opt_text("progress")?,
        error: c.opt_text("error")?,
    })
}

/// How many jobs are in each state now (states with none left out).
pub fn count_by_state<T: ReadTx + ?Sized>(tx: &mut T) -> Result<Vec<(JobState, u64)>, StoreError> {
    let mut out = Vec::new();
    for row in tx.query("SELECT state, count(*) FROM bulk_job GROUP BY state", &[])? {
        let mut it = row.into_iter();
        if let (Some(crate::search::SqlValue::Text(s)), Some(n)) = (it.next(), it.next()) {
            if let (Some(state), Some(n)) = (JobState::parse(&s), n.as_i64()) {
                out.push((state, u64::try_from(n).unwrap_or(0)));
            }
        }
    }
    Ok(out)
}

pub fn insert_job<T: Tx + ?Sized>(tx: &mut T, j: &JobRow) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO bulk_job ({JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            SqlArg::Text(j.id.clone()),
            SqlArg::Text(j.owner.clone()),
            SqlArg::Text(j.caller.clone()),
            SqlArg::Text(j.request.clone()),
            SqlArg::Text(j.params.clone()),
            SqlArg::Text(j.state.code().to_owned()),
            SqlArg::Int8(j.created),
            SqlArg::opt_int8(j.transaction_time),
            SqlArg::opt_int8(j.finished),
            SqlArg::Int8(j.expires),
            SqlArg::opt_text(j.progress.as_deref()),
            SqlArg::opt_text(j.error.as_deref()),
        ],
    )?;
    Ok(())
}

pub fn job<T: ReadTx + ?Sized>(tx: &mut T, id: &str) -> Result<Option<JobRow>, StoreError> {
    let rows = tx.query_shared_plan(
        &format!("SELECT {JOB_COLUMNS} FROM bulk_job WHERE id = ?"),
        &[SqlArg::Text(id.to_owned())],
    )?;
    rows.into_iter().next().map(job_row).transpose()
}

/// How many of `owner`'s jobs are not finished (queued or running).
pub fn unfinished_of<T: ReadTx + ?Sized>(tx: &mut T, owner: &str) -> Result<i64, StoreError> {
    let rows = tx.query_shared_plan(
        "SELECT COUNT(*) FROM bulk_job WHERE owner = ? AND state IN ('queued', 'running')",
        &[SqlArg::Text(owner.to_owned())],
    )?;
    Columns::new("bulk_job", rows.into_iter().next().unwrap_or_default()).int("count")
}

/// The oldest queued job, if any.
pub fn next_queued<T: ReadTx + ?Sized>(tx: &mut T) -> Result<Option<JobRow>, StoreError> {
    let rows = tx.query(
        &format!(
            "SELECT {JOB_COLUMNS} FROM bulk_job WHERE state = 'queued' ORDER BY created, id LIMIT 1"
        ),
        &[],
    )?;
    rows.into_iter().next().map(job_row).transpose()
}

/// Takes a queued job for a runner: false when another runner took it first (or it was
/// cancelled). Its earlier files, if any (a run cut short), are forgotten.
pub fn claim<T: Tx + ?Sized>(tx: &mut T, id: &str, now: i64) -> Result<bool, StoreError> {
    let n = tx.execute(
        "UPDATE bulk_job SET state = 'running', transaction_time = ?, progress = NULL \
         WHERE id = ? AND state = 'queued'",
        &[SqlArg::Int8(now), SqlArg::Text(id.to_owned())],
    )?;
    if n > 0 {
        tx.execute(
            "DELETE FROM bulk_file WHERE job_id = ?",
            &[SqlArg::Text(id.to_owned())],
        )?;
    }
    Ok(n > 0)
}

/// Puts every running job back in the queue: at start-up, the jobs a stopped server
/// left running. Answers their ids.
pub fn requeue_running<T: Tx + ?Sized>(tx: &mut T) -> Result<Vec<String>, StoreError> {
    let ids: Vec<String> = tx
        .query("SELECT id FROM bulk_job WHERE state = 'running'", &[])?
        .into_iter()
        .map(|r| Columns::new("bulk_job", r).text("id"))
        .collect::<Result<_, _>>()?;
    tx.execute(
        "UPDATE bulk_job SET state = 'queued', progress = NULL WHERE state = 'running'",
        &[],
    )?;
    Ok(ids)
}

/// Records progress of a running job; false when the job is gone (cancelled).
pub fn set_progress<T: Tx + ?Sized>(
    tx: &mut T,
    id: &str,
    progress: &str,
) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "UPDATE bulk_job SET progress = ? WHERE id = ? AND state = 'running'",
        &[
            SqlArg::Text(progress.to_owned()),
            SqlArg::Text(id.to_owned()),
        ],
    )? > 0)
}

/// Ends a running job (complete or failed); false when it is gone (cancelled).
pub fn finish<T: Tx + ?Sized>(
    tx: &mut T,
    id: &str,
    state: JobState,
    now: i64,
    expires: i64,
    error: Option<&str>,
) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "UPDATE bulk_job SET state = ?, finished = ?, expires = ?, error = ?, progress = NULL \
         WHERE id = ? AND state = 'running'",
        &[
            SqlArg::Text(state.code().to_owned()),
            SqlArg::Int8(now),
            SqlArg::Int8(expires),
            SqlArg::opt_text(error),
            SqlArg::Text(id.to_owned()),
        ],
    )? > 0)
}

/// Removes a job and its file rows; false when there was no such job.
pub fn delete_job<T: Tx + ?Sized>(tx: &mut T, id: &str) -> Result<bool, StoreError> {
    tx.execute(
        "DELETE FROM bulk_file WHERE job_id = ?",
        &[SqlArg::Text(id.to_owned())],
    )?;
    Ok(tx.execute(
        "DELETE FROM bulk_job WHERE id = ?",
        &[SqlArg::Text(id.to_owned())],
    )? > 0)
}

/// Ids of the jobs that expired at `now`.
pub fn expired<T: ReadTx + ?Sized>(tx: &mut T, now: i64) -> Result<Vec<String>, StoreError> {
    tx.query(
        "SELECT id FROM bulk_job WHERE expires < ? ORDER BY expires LIMIT 100",
        &[SqlArg::Int8(now)],
    )?
    .into_iter()
    .map(|r| Columns::new("bulk_job", r).text("id"))
    .collect()
}

const FILE_COLUMNS: &str = "id, job_id, seq, kind, rtype, path, count, patients";

fn file_row(row: Vec<crate::search::SqlValue>) -> Result<FileRow, StoreError> {
    let mut c = Columns::new("bulk_file", row);
    Ok(FileRow {
        id: c.text("id")?,
        job_id: c.text("job_id")?,
        seq: c.int("seq")?,
        kind: c.text("kind")?,
        rtype: c.text("rtype")?,
        path: c.text("path")?,
        count: c.int("count")?,
        patients: c.text("patients")?,
    })
}

/// Adds a finished file to a running job; false when the job is gone (cancelled).
pub fn add_file<T: Tx + ?Sized>(tx: &mut T, f: &FileRow) -> Result<bool, StoreError> {
    let running = tx.query(
        "SELECT 1 FROM bulk_job WHERE id = ? AND state = 'running'",
        &[SqlArg::Text(f.job_id.clone())],
    )?;
    if running.is_empty() {
        return Ok(false);
    }
    tx.execute(
        &format!("INSERT INTO bulk_file ({FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        &[
            SqlArg::Text(f.id.clone()),
            SqlArg::Text(f.job_id.clone()),
            SqlArg::Int8(f.seq),
            SqlArg::Text(f.kind.clone()),
            SqlArg::Text(f.rtype.clone()),
            SqlArg::Text(f.path.clone()),
            SqlArg::Int8(f.count),
            SqlArg::Text(f.patients.clone()),
        ],
    )?;
    Ok(true)
}

/// The files of a job, in the order they were written.
pub fn files<T: ReadTx + ?Sized>(tx: &mut T, job_id: &str) -> Result<Vec<FileRow>, StoreError> {
    tx.query_shared_plan(
        &format!("SELECT {FILE_COLUMNS} FROM bulk_file WHERE job_id = ? ORDER BY seq"),
        &[SqlArg::Text(job_id.to_owned())],
    )?
    .into_iter()
    .map(file_row)
    .collect()
}

/// One file of a job.
pub fn file<T: ReadTx + ?Sized>(
    tx: &mut T,
    job_id: &str,
    file_id: &str,
) -> Result<Option<FileRow>, StoreError> {
    let rows = tx.query_shared_plan(
        &format!("SELECT {FILE_COLUMNS} FROM bulk_file WHERE id = ? AND job_id = ?"),
        &[
            SqlArg::Text(file_id.to_owned()),
            SqlArg::Text(job_id.to_owned()),
        ],
    )?;
    rows.into_iter().next().map(file_row).transpose()
}

/// The resource types the store holds current resources of (not deleted), sorted.
pub fn stored_types<T: ReadTx + ?Sized>(tx: &mut T) -> Result<Vec<String>, StoreError> {
    let deleted_false = match tx.dialect() {
        crate::sql::Dialect::Sqlite => "0",
        crate::sql::Dialect::Postgres => "FALSE",
    };
    tx.query(
        &format!(
            "SELECT DISTINCT rtype FROM resource WHERE deleted = {deleted_false} ORDER BY rtype"
        ),
        &[],
    )?
    .into_iter()
    .map(|r| Columns::new("resource", r).text("rtype"))
    .collect()
}
