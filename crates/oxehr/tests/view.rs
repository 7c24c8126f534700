//! `oxehr view run` as an operator runs it: the Synthea v3 bundles are imported with
//! `oxehr import`, a ViewDefinition of Observations (one row each) runs straight over
//! the database into a CSV file, and the file holds one row per Observation of the
//! bundles (counted here from the bundles' JSON) under the view's header; `--limit`
//! bounds the rows; the run is one `view-run` entry of the server's in the audit trail;
//! without the `parquet` feature, `--format parquet` says how to build it.

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

mod common;
use common::{oxehr, shared, TempDatabase};

fn observations_in_bundles() -> usize {
    std::fs::read_dir(shared("synthea/synthea-v3"))
        .expect("dir")
        .map(|e| {
            let text = std::fs::read_to_string(e.expect("entry").path()).expect("read");
            let b: Value = serde_json::from_str(&text).expect("json");
            b["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["resource"]["resourceType"] == "Observation")
                .count()
        })
        .sum()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The CSV's records (CRLF-separated; no field of this view holds a line break).
fn csv_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("csv");
    assert!(text.ends_with("\r\n"));
    text.split_terminator("\r\n").map(str::to_owned).collect()
}

fn view_run_to_csv(storage: &[&str], dir: &Path) {
    ok(&oxehr()
        .arg("import")
        .arg(shared("synthea/synthea-v3"))
        .args(storage)
        .arg("--journal")
        .arg(dir.join("journal.txt"))
        .arg("--quiet")
        .output()
        .expect("import"));
    let def = dir.join("observations.json");
    std::fs::write(
        &def,
        json!({
            "resourceType": "ViewDefinition",
            "name": "observation_values",
            "resource": "Observation",
            "select": [{"column": [
                {"name": "id", "path": "getResourceKey()"},
                {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                {"name": "code", "path": "code.coding.first().code"},
                {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"}
            ]}]
        })
        .to_string(),
    )
    .expect("write the view");
    let csv = dir.join("observations.csv");
    let summary = ok(&oxehr()
        .args(["view", "run"])
        .arg(&def)
        .arg("--output")
        .arg(&csv)
        .args(storage)
        .output()
        .expect("view run"));
    let want = observations_in_bundles();
    assert!(want > 900, "{want}");
    let lines = csv_lines(&csv);
    assert_eq!(lines[0], "id,patient,code,value");
    assert_eq!(lines.len() - 1, want, "{summary}");
    assert!(
        summary.contains(&format!("{want} rows from {want} Observation resources")),
        "{summary}"
    );
    // Every row names its patient.
    assert!(lines[1..].iter().all(|l| {
        let f: Vec<&str> = l.split(',').collect();
        f.len() == 4 && !f[0].is_empty() && !f[1].is_empty()
    }));

    // --limit, to standard output as NDJSON.
    let out = oxehr()
        .args([
            "view", "run", "--format", "ndjson", "--limit", "7", "--quiet",
        ])
        .arg(&def)
        .args(storage)
        .output()
        .expect("view run");
    ok(&out);
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 7);
    for l in stdout.lines() {
        let row: Value = serde_json::from_str(l).expect("a JSON line");
        assert!(row["id"].is_string() && row["patient"].is_string(), "{l}");
    }

    // A definition that does not compile: the views crate's message, exit 1.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, json!({"resource": "Observation"}).to_string()).expect("write");
    let out = oxehr()
        .args(["view", "run"])
        .arg(&bad)
        .args(storage)
        .output()
        .expect("view run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid ViewDefinition at select"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    #[cfg(not(feature = "parquet"))]
    {
        let out = oxehr()
            .args(["view", "run", "--format", "parquet", "--output"])
            .arg(dir.join("x.parquet"))
            .arg(&def)
            .args(storage)
            .output()
            .expect("view run");
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--features parquet"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn view_run_writes_a_row_per_observation_on_sqlite() {
    oxehr_testdata::require!();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("path").to_owned();
    view_run_to_csv(&["--data", &data], dir.path());
    // Each successful run is one audit record of the server's, with its counts.
    let db = rusqlite::Connection::open(Path::new(&data).join("oxehr.sqlite")).expect("open");
    let mut st = db
        .prepare("SELECT user_name, detail FROM audit_log WHERE action = 'view-run' ORDER BY seq")
        .expect("prepare");
    let rows: Vec<(String, Option<String>)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|(u, _)| u == "oxehr"));
    let want = observations_in_bundles();
    assert_eq!(
        rows[0].1.as_deref(),
        Some(format!("view observation_values: {want} rows from {want} resources").as_str())
    );
}

#[test]
fn view_run_writes_a_row_per_observation_on_postgres() {
    oxehr_testdata::require!();
    let Some(db) = TempDatabase::create("viewrun") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    view_run_to_csv(&["--database", &db.url], dir.path());
}
