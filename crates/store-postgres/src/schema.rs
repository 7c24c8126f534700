//! The PostgreSQL schema and its migrations, applied at connect under an advisory lock
//! (so servers starting together do not race) and recorded in `schema_version`. Same
//! tables and columns as the SQLite backend; see `docs/storage.md`.

use postgres::Client;

/// Migrations by version; each runs once, in one transaction with its version bump.
fn migrations() -> Vec<(i32, std::borrow::Cow<'static, str>)> {
    let mut all = vec![(1, V1.into()), (2, V2.into())];
    all.extend(oxehr_store::shared_migrations());
    all
}

/// Advisory lock key held while migrating ("oxehr-migrate").
const MIGRATE_LOCK: i64 = 0x6f78_6568_726d_6967;

/// Version 1. Every table carries `rid`, the resource's integer key, so that all rows
/// of one resource could be co-located by a distributed engine (Citus) sharding on it.
/// `normalized` uses the "C" collation so that prefix searches can run as byte-ordered
/// index range scans, whatever the database's default collation. `compartment` has no
/// unique key: a put deletes and inserts a resource's rows in one statement whose parts
/// may run in any order, so the new row could meet the old one (`put` removes duplicates).
const V1: &str = r#"
CREATE TABLE resource (
    rid          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rtype        TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      BIGINT  NOT NULL,
    last_updated BIGINT  NOT NULL,
    deleted      BOOLEAN NOT NULL,
    UNIQUE (rtype, id)
);

CREATE TABLE resource_version (
    rid          BIGINT   NOT NULL,
    version      BIGINT   NOT NULL,
    last_updated BIGINT   NOT NULL,
    method       SMALLINT NOT NULL,
    body         TEXT,
    PRIMARY KEY (rid, version)
);
CREATE INDEX resource_version_last_updated ON resource_version (last_updated);

CREATE TABLE idx_string (
    rid BIGINT NOT NULL, param INT NOT NULL,
    normalized TEXT COLLATE "C" NOT NULL, exact TEXT NOT NULL
);
CREATE INDEX idx_string_rid ON idx_string (rid);
CREATE INDEX idx_string_value ON idx_string (param, normalized);

CREATE TABLE idx_token (
    rid BIGINT NOT NULL, param INT NOT NULL,
    system TEXT, code TEXT, text TEXT
);
CREATE INDEX idx_token_rid ON idx_token (rid);
CREATE INDEX idx_token_value ON idx_token (param, code, system);

CREATE TABLE idx_date (
    rid BIGINT NOT NULL, param INT NOT NULL,
    low BIGINT NOT NULL, high BIGINT NOT NULL
);
CREATE INDEX idx_date_rid ON idx_date (rid);
CREATE INDEX idx_date_value ON idx_date (param, low, high);

CREATE TABLE idx_number (
    rid BIGINT NOT NULL, param INT NOT NULL,
    value DOUBLE PRECISION NOT NULL, low DOUBLE PRECISION NOT NULL,
    high DOUBLE PRECISION NOT NULL
);
CREATE INDEX idx_number_rid ON idx_number (rid);
CREATE INDEX idx_number_value ON idx_number (param, low, high);

CREATE TABLE idx_quantity (
    rid BIGINT NOT NULL, param INT NOT NULL,
    value DOUBLE PRECISION NOT NULL, low DOUBLE PRECISION NOT NULL,
    high DOUBLE PRECISION NOT NULL,
    system TEXT, code TEXT, unit TEXT,
    canonical_value DOUBLE PRECISION, canonical_code TEXT
);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid);
CREATE INDEX idx_quantity_value ON idx_quantity (param, low, high);

CREATE TABLE idx_reference (
    rid BIGINT NOT NULL, param INT NOT NULL,
    target_type TEXT, target_id TEXT, version TEXT, url TEXT,
    identifier_system TEXT, identifier_value TEXT
);
CREATE INDEX idx_reference_rid ON idx_reference (rid);
CREATE INDEX idx_reference_target ON idx_reference (param, target_id, target_type);
CREATE INDEX idx_reference_url ON idx_reference (param, url) WHERE url IS NOT NULL;

CREATE TABLE idx_uri (
    rid BIGINT NOT NULL, param INT NOT NULL, value TEXT NOT NULL
);
CREATE INDEX idx_uri_rid ON idx_uri (rid);
CREATE INDEX idx_uri_value ON idx_uri (param, value);

CREATE TABLE idx_composite (
    rid BIGINT NOT NULL, param INT NOT NULL,
    system1 TEXT, code1 TEXT,
    system2 TEXT, code2 TEXT,
    value2 DOUBLE PRECISION, low2 DOUBLE PRECISION, high2 DOUBLE PRECISION,
    date_low2 BIGINT, date_high2 BIGINT,
    string2 TEXT,
    parts TEXT NOT NULL
);
CREATE INDEX idx_composite_rid ON idx_composite (rid);
CREATE INDEX idx_composite_value ON idx_composite (param, code1, system1);

CREATE TABLE compartment (
    patient_id TEXT NOT NULL, rid BIGINT NOT NULL
);
CREATE INDEX compartment_patient ON compartment (patient_id, rid);
CREATE INDEX compartment_rid ON compartment (rid);
"#;

/// Version 2: `idx_text`, the full text of `_text` and `_content` (one row per resource
/// and parameter). Only the `(rid)` index: the text is long and matched word by word,
/// which a B-tree on it would not serve (and could not hold past ~2.7 kB per row).
///
/// Also the value indexes the search engine's plans need: each carries `rid` so the
/// driver of a search is an index-only scan; number and quantity values are indexed on
/// `value` (the column their prefixes compare); the composite index carries the second
/// part's number (`code-value-quantity=…$gt140` is one index range); and an index for
/// references by identifier (`:identifier`).
const V2: &str = r#"
CREATE TABLE idx_text (
    rid BIGINT NOT NULL, param INT NOT NULL, content TEXT NOT NULL
);
CREATE INDEX idx_text_rid ON idx_text (rid);
-- Value indexes carry `rid` (INCLUDE), so a search reads its keys from the index alone
-- (an index-only scan) instead of a heap page per row; numbers and quantities are
-- compared on `value`; composites test the second part's value in the index.
DROP INDEX idx_string_value;
CREATE INDEX idx_string_value ON idx_string (param, normalized) INCLUDE (rid);
DROP INDEX idx_token_value;
CREATE INDEX idx_token_value ON idx_token (param, code, system) INCLUDE (rid);
DROP INDEX idx_date_value;
CREATE INDEX idx_date_value ON idx_date (param, low, high) INCLUDE (rid);
DROP INDEX idx_number_value;
CREATE INDEX idx_number_value ON idx_number (param, value) INCLUDE (rid);
DROP INDEX idx_quantity_value;
CREATE INDEX idx_quantity_value ON idx_quantity (param, value) INCLUDE (rid);
DROP INDEX idx_reference_target;
CREATE INDEX idx_reference_target ON idx_reference (param, target_id, target_type) INCLUDE (rid);
DROP INDEX idx_uri_value;
CREATE INDEX idx_uri_value ON idx_uri (param, value) INCLUDE (rid);
DROP INDEX idx_composite_value;
CREATE INDEX idx_composite_value ON idx_composite (param, code1, system1, value2) INCLUDE (rid);
-- `:identifier` on references (`subject:identifier=system|value`).
CREATE INDEX idx_reference_identifier ON idx_reference (param, identifier_value, identifier_system)
    WHERE identifier_value IS NOT NULL;
"#;

/// Brings the schema (the first one on `search_path`) up to the newest version.
pub(crate) fn migrate(client: &mut Client) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL)")?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])?
        .get(0);
    for (version, sql) in migrations().into_iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(&sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )?;
        tracing::info!(version, "postgres schema migrated");
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 schema (as databases made before version 2 are) is brought up to date.
    /// Needs the server of `OXEHR_TEST_POSTGRES_URL` (skipped when unreachable, unless
    /// `CI` is set), as the conformance tests do.
    #[test]
    fn a_version_1_schema_is_migrated_to_the_newest() {
        let url = std::env::var("OXEHR_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut client = match Client::connect(&url, postgres::NoTls) {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipping: PostgreSQL unreachable ({e})");
                return;
            }
            Err(e) => panic!("PostgreSQL unreachable in CI: {e}"),
        };
        let schema = format!("oxehr_migrate_{}", std::process::id());
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};\
                 SET search_path TO {schema};\
                 CREATE TABLE schema_version (version INT NOT NULL);\
                 INSERT INTO schema_version (version) VALUES (1);{V1}"
            ))
            .expect("version 1");
        let outcome = (|| -> Result<(i32, u64), postgres::Error> {
            migrate(&mut client)?;
            migrate(&mut client)?;
            let v: i32 = client
                .query_one("SELECT max(version) FROM schema_version", &[])?
                .get(0);
            let n = client.execute(
                "INSERT INTO idx_text (rid, param, content) VALUES (1, 2, repeat('x', 100000))",
                &[],
            )?;
            Ok((v, n))
        })();
        let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        let (version, inserted) = outcome.expect("migrates");
        assert_eq!(version, migrations().last().map_or(0, |m| m.0));
        assert_eq!(inserted, 1, "idx_text exists and takes long text");
    }
}
