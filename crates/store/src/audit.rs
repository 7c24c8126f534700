//! The tamper-evident audit log: who did what to which record, when, from where, and
//! whether it was allowed — stored as a hash chain, written once for both backends.
//!
//! # The chain
//!
//! Records are numbered `seq` = 1, 2, 3, … without gaps. Each row stores the hash of the
//! row before it (`prev_hash`; the first row's is [`GENESIS_HASH`], 64 `'0'`s) and its own
//! `hash`: the lower-case hex SHA-256 of the canonical encoding of its sequence number,
//! its fields and `prev_hash`. Editing a row then breaks its own hash; deleting a row
//! leaves a gap in `seq` (and a `prev_hash` that names no row); a row edited *and*
//! re-hashed breaks the next row's `prev_hash`. `audit_head` (one row, `id` = 1) holds
//! the last `seq` and `hash`, written in the same transaction as the records, so that
//! deleting the newest records — which leaves no gap behind it — is detected too.
//!
//! **The canonical encoding** of a record is the compact JSON array (no whitespace)
//!
//! ```text
//! [seq,time,user,role,organization,patient,resource,action,outcome,client,detail,prev_hash]
//! ```
//!
//! with `seq` and `time` as JSON integers, every other field a JSON string, and an absent
//! (`None`) field `null` — so an absent field and an empty string differ. Strings are
//! escaped as `serde_json` writes them: `"` and `\` as `\"` and `\\`, the control
//! characters U+0000–U+001F as `\b \t \n \f \r` or `\u00xx` (lower-case hex), everything
//! else (non-ASCII included) as its UTF-8 bytes. The hash is over those bytes. JSON makes
//! the encoding unambiguous (no separator can be forged inside a field), and any
//! language can recompute it. Changing it would break every existing chain: it is fixed.
//!
//! # Appending
//!
//! [`append`] runs inside the caller's write job, so the records commit or roll back
//! with what they describe. It first takes `Tx::lock("audit-log")`: on PostgreSQL, where
//! write transactions run READ COMMITTED side by side, this serializes appenders for the
//! rest of their transactions (so two of them never read the same head); on SQLite,
//! whose one writer runs every job in turn, it is a no-op. Because the lock is held
//! until commit, call `append` as the last thing a job does.
//!
//! # What it does and does not prove
//!
//! [`verify`] finds any change to the stored records that was made without recomputing
//! the chain from the change onwards and the head. The hashes are not keyed: someone
//! who can write the database *and* knows this scheme can rewrite a suffix of the log
//! consistently. Against that, keep the head ([`Verification::head`], printed by
//! `oxehr audit verify`) somewhere the database's writers cannot reach; a later head
//! whose chain does not pass through the kept one shows the rewrite.
//!
//! No patient data goes into the problems [`verify`] reports: they name sequence
//! numbers only.

use sha2::{Digest, Sha256};

use crate::search::SqlValue;
use crate::sql::{Columns, SqlArg};
use crate::{ReadTx, StoreError, Tx};

/// `audit_log` and `audit_head` (schema version 4 on both backends). Integers are
/// BIGINT so one binding serves both; `time` is microseconds since the Unix epoch.
/// The index serves "who looked at this patient's chart, and when".
pub const SCHEMA: &str = r#"
CREATE TABLE audit_log (
    seq           BIGINT PRIMARY KEY,
    time          BIGINT NOT NULL,
    user_name     TEXT,
    role          TEXT,
    organization  TEXT,
    patient       TEXT,
    resource      TEXT,
    action        TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    client        TEXT,
    detail        TEXT,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_log_patient_time ON audit_log (patient, time);
CREATE TABLE audit_head (
    id            BIGINT PRIMARY KEY,
    seq           BIGINT NOT NULL,
    hash          TEXT NOT NULL
);
"#;

/// Schema version 9: a patient's records in log order, so that "who looked at my
/// record" reads its newest page (`patient = ? ORDER BY seq DESC LIMIT n`, and each
/// older page from `seq < ?`) by walking an index backwards, however long the log: all
/// of them, and (a partial index) those of staff and proxies, without the patient's own
/// visits ([`AuditFilter::exclude_patients`]). With only `(patient, time)` a page read
/// and sorted every record of the patient: 4.5 s for a patient with 389,484 records
/// (BENCHMARKS.md, the patient portal).
pub const PATIENT_SEQ_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS audit_log_patient_seq ON audit_log (patient, seq);
CREATE INDEX IF NOT EXISTS audit_log_patient_seq_others ON audit_log (patient, seq)
    WHERE role <> 'patient';
";

/// The `prev_hash` of record 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The lock key appenders serialize on.
const LOCK_KEY: &str = "audit-log";

/// Records [`verify`] reads per statement: the log is streamed, never held whole.
const CHUNK: usize = 10_000;

/// Problems [`verify`] lists; the rest are only counted.
pub const MAX_PROBLEMS: usize = 100;

/// One audited event, as the caller describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Microseconds since the Unix epoch (UTC).
    pub time: i64,
    /// The account name; `None` for an unauthenticated request.
    pub user: Option<String>,
    pub role: Option<String>,
    /// The Organization id the user acted for.
    pub organization: Option<String>,
    /// The id of the Patient whose record was touched.
    pub patient: Option<String>,
    /// `Type/id`, or `Type` for a search.
    pub resource: Option<String>,
    /// What was done (`read`, `search`, `create`, `login`, …).
    pub action: String,
    /// `success`, `denied`, `failure`, …
    pub outcome: String,
    /// The client's address.
    pub client: Option<String>,
    /// Free text: a break-the-glass reason, a search's parameter names, …
    pub detail: Option<String>,
}

/// A record as stored: its place in the chain and its hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAudit {
    pub seq: i64,
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

/// The last record's `seq` and `hash`, as `audit_head` holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Records read.
    pub records: u64,
    /// The head as stored (`None`: no record was ever appended, or the head was deleted).
    pub head: Option<Head>,
    /// The first [`MAX_PROBLEMS`] problems, each naming the records concerned.
    pub problems: Vec<String>,
    /// Every problem found, listed or not.
    pub problem_count: u64,
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, p: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }
}

/// Appends `records`, in order, to the chain, inside the caller's transaction.
pub fn append<T: Tx + ?Sized>(tx: &mut T, records: &[AuditRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    tx.lock(LOCK_KEY)?;
    // The head is the authority (deleted newest rows must stay a gap), but never go
    // behind a row that exists: inserting its seq again would fail every append.
    let last = match (head(tx)?, tail(tx)?) {
        (Some(h), Some(t)) if t.seq > h.seq => t,
        (Some(h), _) => h,
        (None, Some(t)) => t,
        (None, None) => Head {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        },
    };
    let (mut seq, mut prev) = (last.seq, last.hash);
    for r in records {
        seq = seq
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt("audit_head seq at its maximum".into()))?;
        let hash = record_hash(seq, r, &prev)?;
        insert_row(tx, seq, r, &prev, &hash)?;
        prev = hash;
    }
    tx.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        &[SqlArg::Int8(seq), SqlArg::Text(prev)],
    )?;
    Ok(())
}

/// Writes one `audit_log` row as given (the chain is the caller's business: `append`,
/// or a test putting back a row it removed).
pub(crate) fn insert_row<T: Tx + ?Sized>(
    tx: &mut T,
    seq: i64,
    r: &AuditRecord,
    prev_hash: &str,
    hash: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO audit_log (seq, time, user_name, role, organization, patient, \
         resource, action, outcome, client, detail, prev_hash, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            SqlArg::Int8(seq),
            SqlArg::Int8(r.time),
            SqlArg::opt_text(r.user.as_deref()),
            SqlArg::opt_text(r.role.as_deref()),
            SqlArg::opt_text(r.organization.as_deref()),
            SqlArg::opt_text(r.patient.as_deref()),
            SqlArg::opt_text(r.resource.as_deref()),
            SqlArg::Text(r.action.clone()),
            SqlArg::Text(r.outcome.clone()),
            SqlArg::opt_text(r.client.as_deref()),
            SqlArg::opt_text(r.detail.as_deref()),
            SqlArg::Text(prev_hash.to_owned()),
            SqlArg::Text(hash.to_owned()),
        ],
    )?;
    Ok(())
}

/// Up to `limit` records with `seq > after_seq`, in `seq` order.
pub fn list<T: ReadTx + ?Sized>(
    tx: &mut T,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<StoredAudit>, StoreError> {
    let Some(from) = after_seq.checked_add(1) else {
        return Ok(Vec::new());
    };
    rows(tx, from, limit)?.into_iter().map(|(_, r)| r).collect()
}

/// Which audit records a [`search`] returns; every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub patient: Option<String>,
    pub user: Option<String>,
    /// Leaves out the records of patient accounts: a patient's access log without their
    /// own visits (the one patient account that can read a record is its own patient's).
    /// Read through the partial index of [`PATIENT_SEQ_INDEXES`], whose condition this is.
    pub exclude_patients: bool,
    pub organization: Option<String>,
    /// Any of these actions (empty: any).
    pub actions: Vec<String>,
    /// `time >= since` and `time < until` (microseconds).
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only records with `seq < before` (paging, newest first).
    pub before: Option<i64>,
}

/// Up to `limit` records matching `f`, newest first.
pub fn search<T: ReadTx + ?Sized>(
    tx: &mut T,
    f: &AuditFilter,
    limit: usize,
) -> Result<Vec<StoredAudit>, StoreError> {
    // SQLite without statistics costs the partial index of the patient's log without
    // their own visits the same as the whole one and takes the whole one, then walks
    // past every own visit (390 ms for 318,563 of them); so it is named. PostgreSQL
    // chooses it by its size.
    let from =
        if f.exclude_patients && f.patient.is_some() && tx.dialect() == crate::sql::Dialect::Sqlite
        {
            "audit_log INDEXED BY audit_log_patient_seq_others"
        } else {
            "audit_log"
        };
    let mut sql = format!(
        "SELECT seq, time, user_name, role, organization, patient, resource, action, \
         outcome, client, detail, prev_hash, hash FROM {from} WHERE 1 = 1"
    );
    let mut args = Vec::new();
    let mut eq = |col: &str, v: &Option<String>, sql: &mut String| {
        if let Some(v) = v {
            sql.push_str(&format!(" AND {col} = ?"));
            args.push(SqlArg::Text(v.clone()));
        }
    };
    eq("patient", &f.patient, &mut sql);
    eq("user_name", &f.user, &mut sql);
    eq("organization", &f.organization, &mut sql);
    if f.exclude_patients {
        // Word for word the partial index's condition, so both planners use it.
        sql.push_str(" AND role <> 'patient'");
    }
    if !f.actions.is_empty() {
        sql.push_str(" AND action IN (");
        for (i, a) in f.actions.iter().enumerate() {
            sql.push_str(if i > 0 { ", ?" } else { "?" });
            args.push(SqlArg::Text(a.clone()));
        }
        sql.push(')');
    }
    for (col, op, v) in [
        ("time", ">=", f.since),
        ("time", "<", f.until),
        ("seq", "<", f.before),
    ] {
        if let Some(v) = v {
            sql.push_str(&format!(" AND {col} {op} ?"));
            args.push(SqlArg::Int8(v));
        }
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    args.push(SqlArg::Int8(i64::try_from(limit).unwrap_or(i64::MAX)));
    tx.query(&sql, &args)?
        .into_iter()
        .map(|r| {
            let mut c = Columns::new("audit_log", r);
            let seq = c.int("seq")?;
            stored(seq, &mut c)
        })
        .collect()
}

/// The head as stored.
pub fn head<T: ReadTx + ?Sized>(tx: &mut T) -> Result<Option<Head>, StoreError> {
    let rows = tx.query_shared_plan("SELECT seq, hash FROM audit_head WHERE id = 1", &[])?;
    seq_and_hash(rows, "audit_head")
}

/// The record with the greatest `seq`, as a head.
fn tail<T: ReadTx + ?Sized>(tx: &mut T) -> Result<Option<Head>, StoreError> {
    let rows = tx.query_shared_plan(
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        &[],
    )?;
    seq_and_hash(rows, "audit_log")
}

fn seq_and_hash(rows: Vec<Vec<SqlValue>>, table: &str) -> Result<Option<Head>, StoreError> {
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    match <[SqlValue; 2]>::try_from(row) {
        Ok([SqlValue::Int(seq), SqlValue::Text(hash)]) => Ok(Some(Head { seq, hash })),
        _ => Err(StoreError::Corrupt(format!("{table} seq, hash"))),
    }
}

/// Checks the whole chain (see the module doc) and the head, reading the log in chunks
/// of [`CHUNK`] records within the caller's one snapshot.
pub fn verify<T: ReadTx + ?Sized>(tx: &mut T) -> Result<Verification, StoreError> {
    let mut v = Verification {
        records: 0,
        head: head(tx)?,
        problems: Vec::new(),
        problem_count: 0,
    };
    // The last record read: its seq and stored hash (`None` if its row did not read).
    let mut last: Option<(i64, Option<String>)> = None;
    let mut from = i64::MIN;
    loop {
        let chunk = rows(tx, from, CHUNK)?;
        let full = chunk.len() == CHUNK;
        for (seq, row) in chunk {
            v.records += 1;
            let expected = last.as_ref().map_or(Some(1), |(s, _)| s.checked_add(1));
            let follows = expected == Some(seq);
            if !follows {
                match expected {
                    Some(e) if seq > e => v.problem(missing(e, seq - 1)),
                    _ => v.problem(format!("record {seq}: unexpected sequence number")),
                }
            }
            match row {
                Ok(s) => {
                    let prev = match &last {
                        None => Some(GENESIS_HASH),
                        Some((_, h)) => h.as_deref(),
                    };
                    // After a gap the link names a missing record, already reported;
                    // after a malformed row there is no hash to compare with.
                    if follows && prev.is_some_and(|p| p != s.prev_hash) {
                        v.problem(format!(
                            "record {seq}: prev_hash does not match the hash of the record \
                             before it (that record was altered or replaced)"
                        ));
                    }
                    if record_hash(seq, &s.record, &s.prev_hash)? != s.hash {
                        v.problem(format!(
                            "record {seq}: altered (its hash does not match its contents)"
                        ));
                    }
                    last = Some((seq, Some(s.hash)));
                }
                Err(_) => {
                    v.problem(format!("record {seq}: malformed row"));
                    last = Some((seq, None));
                }
            }
        }
        match (&last, full) {
            (Some((seq, _)), true) => match seq.checked_add(1) {
                Some(next) => from = next,
                None => break,
            },
            _ => break,
        }
    }
    match (v.head.clone(), last) {
        (None, None) => {}
        (Some(h), None) => v.problem(format!(
            "head names record {} but the log is empty: records 1 to {} missing",
            h.seq, h.seq
        )),
        (None, Some((seq, _))) => v.problem(format!(
            "no head, but the log has records up to {seq}: the head was deleted"
        )),
        (Some(h), Some((seq, hash))) => {
            if h.seq > seq {
                v.problem(format!(
                    "{} (the head names record {})",
                    missing(seq + 1, h.seq),
                    h.seq
                ));
            } else if h.seq < seq {
                v.problem(format!(
                    "head names record {} but the log goes on to record {seq}",
                    h.seq
                ));
            } else if hash.is_some_and(|hash| hash != h.hash) {
                v.problem(format!(
                    "head mismatch: the head's hash is not record {seq}'s"
                ));
            }
        }
    }
    Ok(v)
}

fn missing(first: i64, last: i64) -> String {
    if first == last {
        format!("record {first} missing")
    } else {
        format!("records {first} to {last} missing")
    }
}

/// A row's `seq`, and the row if its other columns read.
type Row = (i64, Result<StoredAudit, StoreError>);

/// Up to `limit` rows with `seq >= from`, in `seq` order; a row whose other columns do
/// not read is `Err` beside its `seq`, so [`verify`] can report it and go on.
fn rows<T: ReadTx + ?Sized>(tx: &mut T, from: i64, limit: usize) -> Result<Vec<Row>, StoreError> {
    let rows = tx.query(
        "SELECT seq, time, user_name, role, organization, patient, resource, action, \
         outcome, client, detail, prev_hash, hash FROM audit_log WHERE seq >= ? \
         ORDER BY seq LIMIT ?",
        &[
            SqlArg::Int8(from),
            SqlArg::Int8(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
    )?;
    rows.into_iter()
        .map(|r| {
            let mut c = Columns::new("audit_log", r);
            let seq = c.int("seq")?;
            Ok((seq, stored(seq, &mut c)))
        })
        .collect()
}

/// The columns after `seq`.
fn stored(seq: i64, c: &mut Columns) -> Result<StoredAudit, StoreError> {
    let record = AuditRecord {
        time: c.int("time")?,
        user: c.opt_text("user_name")?,
        role: c.opt_text("role")?,
        organization: c.opt_text("organization")?,
        patient: c.opt_text("patient")?,
        resource: c.opt_text("resource")?,
        action: c.text("action")?,
        outcome: c.text("outcome")?,
        client: c.opt_text("client")?,
        detail: c.opt_text("detail")?,
    };
    Ok(StoredAudit {
        seq,
        record,
        prev_hash: c.text("prev_hash")?,
        hash: c.text("hash")?,
    })
}

/// The hash of one record: see "the canonical encoding" in the module doc.
fn record_hash(seq: i64, r: &AuditRecord, prev_hash: &str) -> Result<String, StoreError> {
    let encoded = serde_json::to_vec(&(
        seq,
        r.time,
        &r.user,
        &r.role,
        &r.organization,
        &r.patient,
        &r.resource,
        &r.action,
        &r.outcome,
        &r.client,
        &r.detail,
        prev_hash,
    ))
    .map_err(|e| StoreError::Backend(format!("encoding an audit record: {e}")))?;
    Ok(lower_hex(&Sha256::digest(&encoded)))
}

fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash is over exactly the bytes the module doc promises, written by hand here,
    /// strings that need escaping and `null` beside `""` included.
    #[test]
    fn canonical_encoding_escapes_as_documented() {
        let r = AuditRecord {
            time: -5,
            user: Some("a\"b\\c".into()),
            role: Some("\u{1}\n\t".into()),
            organization: Some("Zoë/🙂".into()),
            patient: None,
            resource: Some(String::new()),
            action: "read".into(),
            outcome: "success".into(),
            client: None,
            detail: None,
        };
        let expected = "[7,-5,\"a\\\"b\\\\c\",\"\\u0001\\n\\t\",\"Zoë/🙂\",null,\"\",\
                        \"read\",\"success\",null,null,\"ab\"]";
        assert_eq!(
            record_hash(7, &r, "ab").expect("hash"),
            lower_hex(&Sha256::digest(expected.as_bytes()))
        );
    }

    /// The example rows of `docs/storage.md`, hashed by another implementation
    /// (Python's `json.dumps(separators=(",", ":"), ensure_ascii=False)` and `hashlib`).
    #[test]
    fn documented_example_rows_hash_as_another_implementation_does() {
        let r1 = AuditRecord {
            time: 1_700_000_000_000_001,
            user: Some("alice".into()),
            role: Some("clinician".into()),
            organization: Some("org-1".into()),
            patient: Some("p1".into()),
            resource: Some("Observation/bp1".into()),
            action: "read".into(),
            outcome: "success".into(),
            client: Some("192.0.2.7".into()),
            detail: None,
        };
        let r2 = AuditRecord {
            time: 1_700_000_000_000_002,
            user: None,
            role: None,
            organization: None,
            patient: None,
            resource: Some("Patient".into()),
            action: "search".into(),
            outcome: "denied".into(),
            client: Some("192.0.2.9".into()),
            detail: None,
        };
        let h1 = "da26dfbf0dfdf4163d21b22fdb43702be1a491288cc4ee351ea8aba78fe51925";
        let h2 = "563585d7192cba06a728bae3a89bb33a5268306cd3abde736544d611c11f7376";
        assert_eq!(record_hash(1, &r1, GENESIS_HASH).expect("hash"), h1);
        assert_eq!(record_hash(2, &r2, h1).expect("hash"), h2);
    }

    #[test]
    fn lower_hex_of_bytes() {
        for (bytes, hex) in [(&[][..], ""), (&[0x00, 0x0f, 0xa0, 0xff][..], "000fa0ff")] {
            assert_eq!(lower_hex(bytes), hex);
        }
    }
}
