//! Storage ports: the traits every backend implements, the row types they exchange, and
//! (under `conformance`) the one test suite every backend must pass.
//!
//! Backends are thin: they run SQL and hold no FHIR rules. Versioning, meta, index
//! extraction and compartment membership are decided by `oxehr-records`, which hands the
//! backend finished rows inside one transaction.
//!
//! The ports are synchronous. A write is a closure run inside one database transaction
//! (see `Store::write`); the caller runs blocking calls off the async executor. This
//! lets the SQLite backend run every write on one writer thread with group commit and the
//! PostgreSQL backend run them on pooled connections, behind the same shape.

pub mod access;
pub mod accounts;
pub mod audit;
pub mod care;
pub mod clinical;
pub mod conformance;
pub mod duplicates;
pub mod inbound;
pub mod interrupt;
pub mod jobs;
pub mod oauth;
mod read;
pub mod search;
pub mod sessions;
pub mod sql;

use std::any::Any;
use std::fmt;

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::{IndexEntry, IndexValue};

/// How a version came to be; it is the `request.method` of a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Create,
    Update,
    Patch,
    Delete,
}

impl Method {
    pub fn code(self) -> i16 {
        match self {
            Method::Create => 1,
            Method::Update => 2,
            Method::Patch => 3,
            Method::Delete => 4,
        }
    }

    pub fn from_code(c: i64) -> Option<Method> {
        match c {
            1 => Some(Method::Create),
            2 => Some(Method::Update),
            3 => Some(Method::Patch),
            4 => Some(Method::Delete),
            _ => None,
        }
    }

    /// The HTTP verb of a history entry's `request.method`.
    pub fn http_verb(self) -> &'static str {
        match self {
            Method::Create => "POST",
            Method::Update => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One stored version of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    pub rtype: ResourceType,
    pub id: ResourceId,
    pub version: VersionId,
    /// Microseconds since the Unix epoch (UTC).
    pub last_updated: i64,
    pub method: Method,
    /// The resource JSON, `meta.versionId` and `meta.lastUpdated` included; `None` for a
    /// deleted version.
    pub body: Option<String>,
}

impl StoredResource {
    pub fn is_deleted(&self) -> bool {
        self.body.is_none()
    }
}

/// A new version to store: the row plus its index entries and compartment membership.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub resource: StoredResource,
    /// Index entries of this version (empty for a delete). They replace the previous
    /// version's entries.
    pub index: Vec<IndexEntry>,
    /// Ids of the Patients whose compartment this version belongs to (empty for a delete).
    pub compartments: Vec<ResourceId>,
}

/// Which versions a history query covers.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryScope {
    System,
    Type(ResourceType),
    Instance(ResourceType, ResourceId),
}

#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    /// Only versions with `last_updated >= since` (microseconds).
    pub since: Option<i64>,
    /// Only versions with `last_updated <= at` (a snapshot bound for stable paging).
    pub at: Option<i64>,
    pub count: usize,
    pub offset: usize,
    /// Whose versions are listed: versions of resources in compartments the caller may
    /// not see (as of each resource's current compartments) are left out in SQL. The
    /// record layer sets the caller's; it checks each version's own compartments too.
    pub access: access::Access,
}

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another transaction changed the same rows (serialization failure, deadlock,
    /// unique violation on a racing create); the caller may retry the whole job.
    #[error("concurrent update, retry")]
    Conflict,
    /// The store is overloaded or shutting down.
    #[error("storage busy: {0}")]
    Busy(String),
    /// The job itself chose to abort (the payload is the caller's own error).
    #[error("aborted by the caller")]
    Aborted(Box<dyn Any + Send>),
    #[error("storage failure: {0}")]
    Backend(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Reads within one consistent snapshot (a pooled read connection, or a write
/// transaction, which also sees its own uncommitted writes).
pub trait ReadTx {
    /// The current version, deleted or not.
    fn current(
        &mut self,
        rtype: &ResourceType,
        id: &ResourceId,
    ) -> Result<Option<StoredResource>, StoreError>;

    fn version(
        &mut self,
        rtype: &ResourceType,
        id: &ResourceId,
        version: VersionId,
    ) -> Result<Option<StoredResource>, StoreError>;

    /// Versions newest first.
    fn history(&mut self, q: &HistoryQuery) -> Result<Vec<StoredResource>, StoreError> {
        read::history(self, q)
    }

    /// Number of versions the query covers, ignoring count and offset.
    fn history_count(&mut self, q: &HistoryQuery) -> Result<u64, StoreError> {
        read::history_count(self, q)
    }

    /// The SQL dialect [`ReadTx::query`] speaks.
    fn dialect(&self) -> sql::Dialect;

    /// Runs one read-only statement built by this crate (`search`), with `?`
    /// placeholders, and returns every row. Integers come back as `Int`, floats as
    /// `Real`, text as `Text`, booleans as `Int` 0/1.
    fn query(
        &mut self,
        sql: &str,
        args: &[sql::SqlArg],
    ) -> Result<Vec<Vec<search::SqlValue>>, StoreError>;

    /// [`ReadTx::query`] for a statement whose best plan does not depend on its
    /// argument values: one patient's records, keys looked up by primary key, a fixed
    /// lookup by account. A backend may prepare it once per connection and reuse the
    /// plan; [`ReadTx::query`] plans every statement with its values.
    fn query_shared_plan(
        &mut self,
        sql: &str,
        args: &[sql::SqlArg],
    ) -> Result<Vec<Vec<search::SqlValue>>, StoreError> {
        self.query(sql, args)
    }

    /// The index entries of the current version (for tests and diagnostics).
    fn index_entries(
        &mut self,
        rtype: &ResourceType,
        id: &ResourceId,
    ) -> Result<Vec<IndexEntry>, StoreError> {
        read::index_entries(self, rtype, id)
    }

    /// Patient ids whose compartment holds the current version.
    fn compartments(
        &mut self,
        rtype: &ResourceType,
        id: &ResourceId,
    ) -> Result<Vec<ResourceId>, StoreError> {
        read::compartments(self, rtype, id)
    }
}

/// A write transaction.
pub trait Tx: ReadTx {
    /// Serializes writers that touch the same logical key (a resource `Type/id`, or a
    /// conditional-create query) until this transaction ends. A no-op where the backend
    /// has a single writer.
    fn lock(&mut self, key: &str) -> Result<(), StoreError>;

    /// Stores a new version: appends it to history, makes it current, and replaces the
    /// resource's index entries and compartment membership. The version must be the
    /// current one plus one (or 1 for a new resource), else `Conflict`.
    fn put(&mut self, v: &NewVersion) -> Result<(), StoreError>;

    /// Stores several new versions, as `put` each in order would (a transaction bundle,
    /// an import chunk). Backends override it to send the rows in fewer round trips.
    fn put_many(&mut self, versions: &[NewVersion]) -> Result<(), StoreError> {
        versions.iter().try_for_each(|v| self.put(v))
    }

    /// Replaces the index entries and compartment membership of the current version,
    /// storing no new version: `oxehr reindex`, after the search parameters or their
    /// extraction changed. `v.resource.version` must be the current version, not a
    /// delete, else `Conflict` (a write got there first, and indexed it itself).
    fn reindex(&mut self, v: &NewVersion) -> Result<(), StoreError>;

    /// Runs one statement built by this crate (`accounts`), with `?` placeholders, and
    /// returns the number of rows it changed.
    fn execute(&mut self, sql: &str, args: &[sql::SqlArg]) -> Result<u64, StoreError>;
}

/// Up to `limit` current resources, not deleted, with `rid` above `after`, in `rid`
/// order, with their `rid`s: for walking the whole record page by page
/// (`oxehr reindex`).
pub fn current_resources(
    tx: &mut dyn ReadTx,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, StoredResource)>, StoreError> {
    let not_deleted = match tx.dialect() {
        sql::Dialect::Sqlite => "r.deleted = 0",
        sql::Dialect::Postgres => "NOT r.deleted",
    };
    let text = format!(
        "SELECT r.rid, r.rtype, r.id, r.version, r.last_updated, v.method, v.body \
         FROM resource r JOIN resource_version v ON v.rid = r.rid AND v.version = r.version \
         WHERE r.rid > ? AND {not_deleted} ORDER BY r.rid LIMIT ?"
    );
    let args = [
        sql::SqlArg::Int8(after),
        sql::SqlArg::Int8(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    tx.query(&text, &args)?
        .into_iter()
        .map(|row| search::resource_of(row).map(|(rid, r, _)| (rid, r)))
        .collect()
}

/// The migrations both backends share (version 3 onward: the SQL is the same on both),
/// after each backend's own versions 1 and 2.
pub fn shared_migrations() -> Vec<(i32, std::borrow::Cow<'static, str>)> {
    vec![
        (3, accounts::SCHEMA.into()),
        (4, audit::SCHEMA.into()),
        (5, access::SCHEMA.into()),
        (6, oauth::SCHEMA.into()),
        (7, sessions::SCHEMA.into()),
        (8, care::schema().into()),
        (9, audit::PATIENT_SEQ_INDEXES.into()),
        (10, inbound::SCHEMA.into()),
        (11, jobs::SCHEMA.into()),
        (12, duplicates::SCHEMA.into()),
        (13, clinical::SCHEMA.into()),
        (14, care::without_timed_consents().into()),
    ]
}

/// The result a write job hands back through the store.
pub type JobOutput = Box<dyn Any + Send>;

/// A write job: runs inside one database transaction; an `Err` rolls back everything it
/// did. A job may be run more than once (SQLite's writer runs a batch's jobs again after
/// one of them fails, its work rolled back in between): it must act only through `tx`
/// and start each run from what it captured, unchanged (take from its captures by
/// reference or clone, never move out of them).
pub type WriteJob = Box<dyn FnMut(&mut dyn Tx) -> Result<JobOutput, StoreError> + Send>;

/// One gauge of a backend's state for `/metrics`: a Prometheus name, its help text, and
/// its value now. A name ending in `_total` is a count that only grows, exposed as a
/// counter.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub value: f64,
}

/// A storage backend.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// A read snapshot from the pool. Blocking.
    fn read(&self) -> Result<Box<dyn ReadTx + '_>, StoreError>;

    /// Runs `job` in one transaction and returns once it is durable (committed and
    /// synced), or rolled back. Blocking. `Conflict` may be retried by the caller.
    fn write(&self, job: WriteJob) -> Result<JobOutput, StoreError>;

    /// As [`Store::write`], for records no read waits to see at once (the read audit's
    /// batched appends): a backend whose reads wait for replicas to replay every write
    /// (PostgreSQL with `--database-replica`) does not make them wait for this one.
    fn write_log(&self, job: WriteJob) -> Result<JobOutput, StoreError> {
        self.write(job)
    }

    /// The backend's own gauges for `/metrics` (pool and queue depths), read now.
    fn gauges(&self) -> Vec<Gauge> {
        Vec::new()
    }

    /// Whether a read by key here is a local lookup that never waits on a network or a
    /// lock for long (SQLite: a page of a file, under WAL), so that a caller may run it
    /// on its own thread rather than hand it to a pool of blocking threads. A remote
    /// database (PostgreSQL) answers false.
    fn reads_locally(&self) -> bool {
        false
    }

    /// The current version of one resource, read on its own: the hot path of `read`.
    /// Backends may answer it in one statement without an explicit transaction.
    fn read_current(
        &self,
        rtype: &ResourceType,
        id: &ResourceId,
    ) -> Result<Option<StoredResource>, StoreError> {
        self.read()?.current(rtype, id)
    }

    /// One version of one resource, read on its own (`vread`).
    fn read_version(
        &self,
        rtype: &ResourceType,
        id: &ResourceId,
        version: VersionId,
    ) -> Result<Option<StoredResource>, StoreError> {
        self.read()?.version(rtype, id, version)
    }

    /// A short name for logs and the CapabilityStatement (`sqlite`, `postgres`).
    fn backend_name(&self) -> &'static str;

    /// Writes a consistent copy of the whole database to `dest` (a new file) while
    /// others go on reading and writing: one snapshot, as of one commit. Backends that
    /// back up by other means (PostgreSQL: `pg_dump`) answer `Backend`.
    fn backup_to(&self, _dest: &std::path::Path) -> Result<(), StoreError> {
        Err(StoreError::Backend(format!(
            "the {} backend is backed up with its own tools",
            self.backend_name()
        )))
    }
}

/// Helpers for backends: the column layout of an index value, shared so that both backends
/// store the same things the same way.
pub mod rows {
    use super::*;

    /// Table an index value belongs in.
    pub fn table_of(v: &IndexValue) -> &'static str {
        match v {
            IndexValue::String { .. } => "idx_string",
            IndexValue::Token { .. } => "idx_token",
            IndexValue::Date { .. } => "idx_date",
            IndexValue::Number { .. } => "idx_number",
            IndexValue::Quantity { .. } => "idx_quantity",
            IndexValue::Reference { .. } => "idx_reference",
            IndexValue::Uri { .. } => "idx_uri",
            IndexValue::Composite { .. } => "idx_composite",
            IndexValue::Text { .. } => "idx_text",
        }
    }

    /// The columns of one `idx_composite` row (see `docs/storage.md`): the first part's
    /// token as `system1`/`code1`, the second part by type, and every part as JSON.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct CompositeColumns {
        pub system1: Option<String>,
        pub code1: Option<String>,
        /// Token or quantity system/code of the second part.
        pub system2: Option<String>,
        pub code2: Option<String>,
        /// Number or quantity value and range of the second part.
        pub value2: Option<f64>,
        pub low2: Option<f64>,
        pub high2: Option<f64>,
        /// Date range of the second part.
        pub date_low2: Option<i64>,
        pub date_high2: Option<i64>,
        /// String (normalized), uri, or reference `Type/id` (else URL) of the second part.
        pub string2: Option<String>,
        /// All parts, as written by [`composite_to_json`].
        pub parts: String,
    }

    pub fn composite_columns(parts: &[IndexValue]) -> CompositeColumns {
        let mut c = CompositeColumns {
            parts: composite_to_json(parts),
            ..CompositeColumns::default()
        };
        if let Some(IndexValue::Token { system, code, .. }) = parts.first() {
            c.system1.clone_from(system);
            c.code1.clone_from(code);
        }
        match parts.get(1) {
            Some(IndexValue::Token { system, code, .. }) => {
                c.system2.clone_from(system);
                c.code2.clone_from(code);
            }
            Some(IndexValue::Quantity {
                value,
                low,
                high,
                system,
                code,
                ..
            }) => {
                (c.value2, c.low2, c.high2) = (Some(*value), Some(*low), Some(*high));
                c.system2.clone_from(system);
                c.code2.clone_from(code);
            }
            Some(IndexValue::Number { value, low, high }) => {
                (c.value2, c.low2, c.high2) = (Some(*value), Some(*low), Some(*high));
            }
            Some(IndexValue::Date { low, high }) => {
                (c.date_low2, c.date_high2) = (Some(*low), Some(*high));
            }
            Some(IndexValue::String { normalized, .. }) => c.string2 = Some(normalized.clone()),
            Some(IndexValue::Uri { value }) => c.string2 = Some(value.clone()),
            Some(IndexValue::Reference {
                target_type,
                target_id,
                url,
                ..
            }) => {
                c.string2 = match (target_type, target_id) {
                    (Some(t), Some(i)) => Some(format!("{t}/{i}")),
                    _ => url.clone(),
                }
            }
            Some(IndexValue::Composite { .. } | IndexValue::Text { .. }) | None => {}
        }
        c
    }

    /// The parts of a composite entry as a JSON array (one object per part, tagged `t`).
    pub fn composite_to_json(parts: &[IndexValue]) -> String {
        serde_json::Value::Array(parts.iter().map(value_to_json).collect()).to_string()
    }

    /// Reads what [`composite_to_json`] wrote.
    pub fn composite_from_json(s: &str) -> Result<Vec<IndexValue>, StoreError> {
        let bad = || StoreError::Corrupt("idx_composite.parts".into());
        let v: serde_json::Value = serde_json::from_str(s).map_err(|_| bad())?;
        v.as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|p| value_from_json(p).ok_or_else(bad))
            .collect()
    }

    fn value_to_json(v: &IndexValue) -> serde_json::Value {
        use serde_json::json;
        match v {
            IndexValue::String { normalized, exact } => {
                json!({"t": "string", "normalized": normalized, "exact": exact})
            }
            IndexValue::Token { system, code, text } => {
                json!({"t": "token", "system": system, "code": code, "text": text})
            }
            IndexValue::Date { low, high } => json!({"t": "date", "low": low, "high": high}),
            IndexValue::Number { value, low, high } => {
                json!({"t": "number", "value": value, "low": low, "high": high})
            }
            IndexValue::Quantity {
                value,
                low,
                high,
                system,
                code,
                unit,
                canonical_value,
                canonical_code,
            } => json!({"t": "quantity", "value": value, "low": low, "high": high,
                "system": system, "code": code, "unit": unit,
                "canonical_value": canonical_value, "canonical_code": canonical_code}),
            IndexValue::Reference {
                target_type,
                target_id,
                version,
                url,
                identifier_system,
                identifier_value,
            } => json!({"t": "reference", "target_type": target_type, "target_id": target_id,
                "version": version, "url": url, "identifier_system": identifier_system,
                "identifier_value": identifier_value}),
            IndexValue::Uri { value } => json!({"t": "uri", "value": value}),
            IndexValue::Composite { parts } => {
                json!({"t": "composite", "parts": parts.iter().map(value_to_json).collect::<Vec<_>>()})
            }
            IndexValue::Text { content } => json!({"t": "text", "content": content}),
        }
    }

    fn value_from_json(v: &serde_json::Value) -> Option<IndexValue> {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
        let i = |k: &str| v.get(k).and_then(serde_json::Value::as_i64);
        Some(match v.get("t")?.as_str()? {
            "string" => IndexValue::String {
                normalized: s("normalized")?,
                exact: s("exact")?,
            },
            "token" => IndexValue::Token {
                system: s("system"),
                code: s("code"),
                text: s("text"),
            },
            "date" => IndexValue::Date {
                low: i("low")?,
                high: i("high")?,
            },
            "number" => IndexValue::Number {
                value: f("value")?,
                low: f("low")?,
                high: f("high")?,
            },
            "quantity" => IndexValue::Quantity {
                value: f("value")?,
                low: f("low")?,
                high: f("high")?,
                system: s("system"),
                code: s("code"),
                unit: s("unit"),
                canonical_value: f("canonical_value"),
                canonical_code: s("canonical_code"),
            },
            "reference" => IndexValue::Reference {
                target_type: s("target_type"),
                target_id: s("target_id"),
                version: s("version"),
                url: s("url"),
                identifier_system: s("identifier_system"),
                identifier_value: s("identifier_value"),
            },
            "uri" => IndexValue::Uri { value: s("value")? },
            "text" => IndexValue::Text {
                content: s("content")?,
            },
            "composite" => IndexValue::Composite {
                parts: v
                    .get("parts")?
                    .as_array()?
                    .iter()
                    .map(value_from_json)
                    .collect::<Option<Vec<_>>>()?,
            },
            _ => return None,
        })
    }
}
