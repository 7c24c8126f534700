//! The search statements of common queries use the index tables' indexes: SQLite's
//! `EXPLAIN QUERY PLAN` of each shows no full scan of an index table or of `resource`,
//! and the selective condition leads. The store never runs ANALYZE, so these are the
//! plans a real database gets.

use oxehr_search::query::{parse, ParseOptions, Query};
use oxehr_store::search::{count_sql, page_sql, Position, Sql};
use oxehr_store::sql::{Dialect, SqlArg};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

fn query(rtype: &str, q: &str) -> Query {
    let pairs: Vec<(String, String)> = q
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').expect("name=value");
            (k.to_string(), v.to_string())
        })
        .collect();
    parse(
        &[rtype.to_string()],
        &pairs,
        &ParseOptions {
            lenient: false,
            base_url: None,
            now_micros: 0,
        },
    )
    .expect("query parses")
}

fn plan(conn: &Connection, sql: &Sql) -> Vec<String> {
    let args: Vec<Value> = sql
        .args
        .iter()
        .map(|a| match a {
            SqlArg::Int4(n) => Value::Integer(i64::from(*n)),
            SqlArg::Int8(n) => Value::Integer(*n),
            SqlArg::Real(x) => Value::Real(*x),
            SqlArg::Text(t) => Value::Text(t.clone()),
            SqlArg::NullInt8 | SqlArg::NullText => Value::Null,
        })
        .collect();
    let mut st = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text))
        .expect("prepare");
    let rows = st
        .query_map(params_from_iter(args), |r| r.get::<_, String>(3))
        .expect("explain");
    rows.map(|r| r.expect("row")).collect()
}

#[test]
fn common_searches_use_the_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plans.sqlite");
    drop(oxehr_store_sqlite::SqliteStore::open(&path, Default::default()).expect("open"));
    let conn = Connection::open(&path).expect("connect");
    let cases = [
        ("Patient", "family=smi&birthdate=ge1970"),
        (
            "Observation",
            "patient=Patient/p1&code=http://loinc.org|4548-4&_sort=-date&_count=10",
        ),
        (
            "Condition",
            "code=http://snomed.info/sct|44054006&_revinclude=Encounter:diagnosis",
        ),
        ("Encounter", "patient.birthdate=le1950"),
        ("Patient", "birthdate=1970-02"),
        (
            "Observation",
            "code-value-quantity=http://loinc.org|8480-6$gt140",
        ),
        ("Observation", "subject:Patient.family=smith"),
        (
            "Patient",
            "_has:Observation:patient:code=http://loinc.org|4548-4",
        ),
        ("Patient", "identifier=urn:x|42"),
        ("Observation", "_id=a,b"),
        ("Patient", "name:exact=Ann"),
    ];
    for (rtype, q) in cases {
        let parsed = query(rtype, q);
        for (what, sql) in [
            (
                "page",
                page_sql(
                    Dialect::Sqlite,
                    &oxehr_store::access::Access::All,
                    &parsed,
                    &Position::First,
                    10,
                    true,
                ),
            ),
            (
                "count",
                count_sql(Dialect::Sqlite, &oxehr_store::access::Access::All, &parsed),
            ),
        ] {
            let steps = plan(&conn, &sql);
            let text = steps.join("\n");
            println!("{rtype}?{q} ({what}):\n{text}\n");
            for s in &steps {
                // Scans of the page's own subqueries (`t`, `q`, `(subquery-N)`) read
                // rows already selected; any other scan reads a whole table or index.
                let scanned = s.strip_prefix("SCAN ").and_then(|r| r.split(' ').next());
                let scan =
                    scanned.is_some_and(|n| !(n == "t" || n == "q" || n.starts_with("(subquery")));
                // A probe of one candidate's rows goes by its key, never by the
                // parameter alone (which would read every row of the parameter).
                let probe_by_param = s.contains("EXISTS USING") && s.ends_with("(param=?)");
                assert!(
                    !scan && !probe_by_param,
                    "{rtype}?{q} ({what}): {s}\n{text}"
                );
            }
            assert!(
                text.contains("INDEX idx_")
                    || text.contains("USING PRIMARY KEY")
                    || text.contains("INDEX resource_type_id (rtype=? AND id=?)"),
                "{rtype}?{q} ({what}) uses no index-table index:\n{text}"
            );
        }
    }
}
