//! The SQLite schema and its migrations, applied in order at open and recorded in
//! `schema_version`. The layout is documented with example rows in `docs/storage.md`.

use rusqlite::Connection;

/// Migrations by version; each runs once, in one transaction with its version bump.
fn migrations() -> Vec<(i64, std::borrow::Cow<'static, str>)> {
    let mut all = vec![(1, V1.into()), (2, V2.into())];
    all.extend(
        oxehr_store::shared_migrations()
            .into_iter()
            .map(|(v, sql)| (i64::from(v), sql)),
    );
    all
}

/// Version 1: resources, versions, typed index tables, Patient compartments.
///
/// `resource.rid` is the rowid (assigned in insertion order, so keys are time-ordered
/// and inserts append). Bodies are stored once, in `resource_version`; a current read
/// joins `resource` to `resource_version` on (rid, version). Index tables are
/// `WITHOUT ROWID`, clustered by their primary key `(rid, seq)` (`seq`: the entry's
/// position in the version's index list), so a resource's rows append together and are
/// replaced with one range delete; each has one more index, on the columns searches
/// use, which carries `(rid, seq)` too. Two B-trees per index row instead of three.
/// (Changed in place before any database was released.) There are no foreign keys: rows are only written by
/// `put`, which keeps them consistent, and FK checks would cost a lookup per index row.
const V1: &str = r#"
CREATE TABLE resource (
    rid          INTEGER PRIMARY KEY,
    rtype        TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL
);
CREATE UNIQUE INDEX resource_type_id ON resource (rtype, id);

CREATE TABLE resource_version (
    rid          INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    method       INTEGER NOT NULL,
    body         TEXT,
    PRIMARY KEY (rid, version)
);
CREATE INDEX resource_version_last_updated ON resource_version (last_updated);

CREATE TABLE idx_string (
    rid INTEGER NOT NULL, seq INTEGER NOT NULL, param INTEGER NOT NULL,
    normalized TEXT NOT NULL, exact TEXT NOT NULL,
    PRIMARY KEY (rid, seq)
) WITHOUT ROWID;
CREATE INDEX idx_string_value ON idx_string (param, normalized);

CREATE TABLE idx_token (
    rid INTEGER NOT NULL, seq INTEGER NOT NULL, param INTEGER NOT NULL,
    system TEXT, code TEXT, text TEXT,
    PRIMARY KEY (rid, seq)
) WITHOUT ROWID;
CREATE INDEX idx_token_value ON idx_token (param, code, system);

CREATE TABLE idx_date (
    rid INTEGER NOT NULL, seq INTEGER NOT NULL, param INTEGER NOT NULL,
    low INTEGER NOT NULL, high INTEGER NOT NULL,
    PRIMARY KEY (rid, seq)
) WITHOUT ROWID;
CREATE INDEX idx_date_value ON idx_date (param, low, high);

CREATE TABLE idx_number (
    rid INTEGER NOT NULL, seq INTEGER NOT NULL, param INTEGER NOT NULL,
    value REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL,
    PRIMARY KEY (rid, seq)
) WITHOUT ROWID;
CREATE INDEX idx_number_value ON idx_number (param, low, high);

CREATE TABLE idx_quantity (
    rid INTEGER NOT NULL, seq INTEGER NOT NULL, param INTEGER NOT NULL,
    value REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL,
    system TEXT, code TEXT, unit TEXT,
    canonical_value REAL, canonical_code TEXT,
    PRIMARY KEY (rid, seq)
) WITHOUT ROWID;
CREATE INDEX idx_quantity_value ON idx_quantity (param, low, high);

CREATE TABLE idx_reference (
    rid INTEGER NOT NULL, seq INTEGER NOT NULL, param INTEGER NOT NULL,
    target_type TEXT, target_id TEXT, version TEXT, url TEXT,
    identifier_system TEXT, identifier_value TEXT,
    PRIMARY KEY (rid, seq)
) WITHOUT ROWID;
CREATE INDEX idx_reference_target ON idx_reference (param, target_id, target_type);
CREATE INDEX idx_reference_url ON idx_reference (param, url) WHERE url IS NOT NULL;

CREATE TABLE idx_uri (
    rid INTEGER NOT NULL, seq INTEGER NOT NULL, param INTEGER NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (rid, seq)
) WITHOUT ROWID;
CREATE INDEX idx_uri_value ON idx_uri (param, value);

CREATE TABLE idx_composite (
    rid INTEGER NOT NULL, seq INTEGER NOT NULL, param INTEGER NOT NULL,
    system1 TEXT, code1 TEXT,
    system2 TEXT, code2 TEXT,
    value2 REAL, low2 REAL, high2 REAL,
    date_low2 INTEGER, date_high2 INTEGER,
    string2 TEXT,
    parts TEXT NOT NULL,
    PRIMARY KEY (rid, seq)
) WITHOUT ROWID;
CREATE INDEX idx_composite_value ON idx_composite (param, code1, system1);

CREATE TABLE compartment (
    patient_id TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (patient_id, rid)
) WITHOUT ROWID;
CREATE INDEX compartment_rid ON compartment (rid);
"#;

/// Version 2: `idx_text`, the full text of `_text` and `_content` (one row per resource
/// and parameter). Like the other index tables but without a value index: the text is
/// long and matched word by word, which a B-tree on it would not serve; a search reads
/// the rows of the resources its other criteria (or the type) select.
///
/// Also the value indexes the search engine's plans need: number and quantity values are
/// indexed on `value` (the column their prefixes compare); the composite index carries
/// the second part's number (`code-value-quantity=…$gt140` is one index range with no
/// row lookups); and an index for references by identifier (`:identifier`).
const V2: &str = r#"
CREATE TABLE idx_text (
    rid INTEGER NOT NULL, seq INTEGER NOT NULL, param INTEGER NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (rid, seq)
) WITHOUT ROWID;
-- Numbers and quantities are compared on `value`; composites test the second part's
-- value inside the index (`…$gt140`).
DROP INDEX idx_number_value;
CREATE INDEX idx_number_value ON idx_number (param, value);
DROP INDEX idx_quantity_value;
CREATE INDEX idx_quantity_value ON idx_quantity (param, value);
DROP INDEX idx_composite_value;
CREATE INDEX idx_composite_value ON idx_composite (param, code1, system1, value2);
-- `:identifier` on references (`subject:identifier=system|value`).
CREATE INDEX idx_reference_identifier ON idx_reference (param, identifier_value, identifier_system)
    WHERE identifier_value IS NOT NULL;
"#;

/// Brings the schema up to the newest version.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: i64 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    for (version, sql) in migrations().into_iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(&sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [&version],
        )?;
        tx.commit()?;
        tracing::info!(version, "sqlite schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> i64 {
        conn.query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .expect("version")
    }

    #[test]
    fn a_version_1_database_is_migrated_to_the_newest() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(&format!(
            "CREATE TABLE schema_version (version INTEGER NOT NULL);\
             INSERT INTO schema_version (version) VALUES (1);{V1}"
        ))
        .expect("version 1");
        migrate(&mut conn).expect("migrate");
        assert_eq!(version(&conn), migrations().last().map_or(0, |m| m.0));
        conn.execute(
            "INSERT INTO idx_text (rid, seq, param, content) VALUES (1, 0, 2, 'x')",
            [],
        )
        .expect("idx_text exists");
        // Again: nothing left to apply.
        migrate(&mut conn).expect("migrate again");
        assert_eq!(version(&conn), migrations().last().map_or(0, |m| m.0));
    }
}
