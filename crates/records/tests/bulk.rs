//! An export job survives a restart: a job a stopped server left `running` (with a
//! partial file on disk) is queued again when the next server's runner starts, runs from
//! the beginning, and completes with exactly the store's resources; on SQLite (the file
//! closed and opened again) and on PostgreSQL (a new connection to the same schema).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxehr_fhir::ResourceType;
use oxehr_records::bulk::{BulkConfig, ExportLevel, ExportRequest, ExportStatus};
use oxehr_records::{Caller, Records, RecordsConfig};
use oxehr_store::jobs::{JobRow, JobState};
use oxehr_store::{JobOutput, Store, StoreError, Tx};
use serde_json::json;

fn postgres_url() -> String {
    std::env::var("OXEHR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// Opens the test's store: the SQLite file in `dir`, or the PostgreSQL `schema`.
fn open(dir: &Path, schema: Option<&str>) -> Option<Arc<dyn Store>> {
    match schema {
        None => Some(Arc::new(
            oxehr_store_sqlite::SqliteStore::open(&dir.join("t.sqlite"), Default::default())
                .expect("sqlite"),
        )),
        Some(schema) => {
            let config = oxehr_store_postgres::PostgresConfig {
                schema: Some(schema.to_owned()),
                ..Default::default()
            };
            match oxehr_store_postgres::PostgresStore::connect(&postgres_url(), config) {
                Ok(s) => Some(Arc::new(s)),
                Err(e) => {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "PostgreSQL unreachable in CI: {e}"
                    );
                    eprintln!("skipping: PostgreSQL unreachable ({e})");
                    None
                }
            }
        }
    }
}

fn records(store: Arc<dyn Store>, exports: &Path) -> Records {
    Records::new(
        store,
        RecordsConfig {
            bulk: BulkConfig {
                dir: Some(exports.to_owned()),
                ..BulkConfig::default()
            },
            ..RecordsConfig::default()
        },
    )
}

fn a_job_left_running_restarts_and_completes(schema: Option<&str>) {
    let dir = tempfile::tempdir().expect("dir");
    let exports = dir.path().join("exports");
    let Some(store) = open(dir.path(), schema) else {
        return;
    };
    let before = records(store, &exports);
    let server = Caller::server();
    let patient = ResourceType::parse("Patient").expect("type");
    let mut ids = Vec::new();
    for i in 0..25 {
        let out = before
            .create(
                &server,
                &patient,
                json!({"resourceType": "Patient", "name": [{"family": format!("F{i}")}]}),
                None,
            )
            .expect("create");
        ids.push(out.resource.id.as_str().to_owned());
    }
    // The stopped server's job: running, with half a file written.
    let job_id = uuid::Uuid::new_v4().simple().to_string();
    let req = ExportRequest::parse(
        ExportLevel::System,
        &[],
        false,
        "http://x/fhir/$export".into(),
    )
    .expect("request");
    let row = JobRow {
        id: job_id.clone(),
        owner: "backend".into(),
        caller: json!({"user": "backend", "role": "system-admin", "scopes": ["system/*.rs"]})
            .to_string(),
        request: req.request_url.clone(),
        params: req.to_json(),
        state: JobState::Running,
        created: oxehr_records::now_micros(),
        transaction_time: Some(oxehr_records::now_micros()),
        finished: None,
        expires: oxehr_records::now_micros() + 3_600_000_000,
        progress: Some("1 of 1 types".into()),
        error: None,
    };
    before
        .store()
        .write(Box::new(
            move |tx: &mut dyn Tx| -> Result<JobOutput, StoreError> {
                oxehr_store::jobs::insert_job(tx, &row)?;
                Ok(Box::new(()))
            },
        ))
        .expect("job row");
    let partial = exports.join(&job_id).join("partial.ndjson");
    std::fs::create_dir_all(partial.parent().expect("dir")).expect("mkdir");
    std::fs::write(&partial, "{\"resourceType\":\"Patient\"").expect("partial");
    drop(before);

    // The next server.
    let Some(store) = open(dir.path(), schema) else {
        return;
    };
    let after = records(store, &exports);
    after.start_export_runner();
    let who = Caller {
        user: "backend".into(),
        role: oxehr_auth::Role::SystemAdmin,
        organization: None,
        person: None,
        patient: None,
        scopes: oxehr_auth::parse_scopes("system/*.rs")
            .expect("scopes")
            .iter()
            .filter_map(|s| s.as_resource().cloned())
            .collect(),
        client: None,
        internal: false,
        confirmed: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let manifest = loop {
        match after.export_status(&who, &job_id).expect("status") {
            ExportStatus::Complete(m) => break m,
            ExportStatus::Failed(why) => panic!("failed: {why}"),
            ExportStatus::InProgress { .. } => {}
        }
        assert!(Instant::now() < deadline, "the job did not run again");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !partial.exists(),
        "the partial file of the first run is removed"
    );
    assert_eq!(manifest.output.len(), 1);
    let f = &manifest.output[0];
    let file = after.export_file(&who, &job_id, &f.file_id).expect("file");
    let text = std::fs::read_to_string(&file.path).expect("read");
    let mut got: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["id"].as_str().expect("id").to_owned()
        })
        .collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    if let Some(schema) = schema {
        let url = postgres_url();
        let schema = schema.to_owned();
        drop(after);
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&url, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            }
        })
        .join();
    }
}

#[test]
fn sqlite_a_job_left_running_restarts_and_completes() {
    a_job_left_running_restarts_and_completes(None);
}

#[test]
fn postgres_a_job_left_running_restarts_and_completes() {
    let schema = format!("bulk_restart_{}", uuid::Uuid::new_v4().simple());
    a_job_left_running_restarts_and_completes(Some(&schema));
}
