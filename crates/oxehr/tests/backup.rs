//! `oxehr backup` while the server is writing, and `oxehr restore` into a new data
//! directory: the copy is one consistent snapshot. Every resource version and every
//! audit record it holds is exactly the source's (the source goes on past it); its
//! audit chain verifies; and the restored store serves what was backed up. The data is
//! the repository's own demo records (`demo/`), imported first.

mod common;

use std::path::Path;
use std::process::Output;

use common::{oxehr, Server};

fn run(args: &[&str], data: &Path) -> Output {
    oxehr()
        .args(args)
        .arg("--data")
        .arg(data)
        .env("OXEHR_LOG", "warn")
        .output()
        .expect("run oxehr")
}

fn rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open");
    let mut st = conn.prepare(sql).expect("prepare");
    let n = st.column_count();
    st.query_map([], |r| {
        (0..n)
            .map(|i| {
                r.get_ref(i).map(|v| match v {
                    rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                    rusqlite::types::ValueRef::Integer(x) => x.to_string(),
                    rusqlite::types::ValueRef::Real(x) => x.to_string(),
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        String::from_utf8_lossy(t).into_owned()
                    }
                })
            })
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// Creates Patients on `server`, one after another, until `stop`; how many.
fn write_patients(
    server: &Server,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u32> {
    let (client, url, stop) = (
        server.client.clone(),
        format!("{}/Patient", server.base),
        stop.clone(),
    );
    std::thread::spawn(move || {
        let mut n = 0u32;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let body = serde_json::json!({"resourceType": "Patient", "name": [{"family": format!("Backup{n}")}]});
            let resp = client
                .post(&url)
                .header("content-type", "application/fhir+json")
                .body(body.to_string())
                .send()
                .expect("post");
            assert_eq!(resp.status().as_u16(), 201);
            n += 1;
        }
        n
    })
}

const VERSIONS: &str =
    "SELECT rid, version, method, last_updated, body FROM resource_version ORDER BY rid, version";
const AUDIT: &str = "SELECT * FROM audit_log ORDER BY seq";

#[test]
fn an_online_backup_is_a_consistent_snapshot_and_restores() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo");
    let out = oxehr()
        .args(["import", "--quiet"])
        .arg(&demo)
        .arg("--data")
        .arg(&a)
        .env("OXEHR_LOG", "warn")
        .output()
        .expect("import");
    assert!(out.status.success(), "{out:?}");

    // The server writes new patients all through the backup.
    let server = Server::start(&["--data", a.to_str().expect("path")]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = write_patients(&server, &stop);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = run(&["backup", b.to_str().expect("path")], &a);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains("backed up"), "{said}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().expect("writer");
    assert!(written > 0);
    drop(server);

    // A backup goes into a new directory, not over another.
    let again = run(&["backup", b.to_str().expect("path")], &a);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let out = run(&["restore", b.to_str().expect("path")], &c);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains("audit log intact"), "{said}");
    // Not over an existing database.
    let again = run(&["restore", b.to_str().expect("path")], &c);
    assert!(!again.status.success());

    let (src, copy) = (a.join("oxehr.sqlite"), c.join("oxehr.sqlite"));
    let (src_versions, copy_versions) = (rows(&src, VERSIONS), rows(&copy, VERSIONS));
    let (src_audit, copy_audit) = (rows(&src, AUDIT), rows(&copy, AUDIT));
    // The copy holds the import and some of the server's writes, not all of them: it
    // was taken while they went on.
    assert!(
        copy_versions.len() < src_versions.len(),
        "{} {}",
        copy_versions.len(),
        src_versions.len()
    );
    let imported = rows(&copy, "SELECT count(*) FROM resource_version");
    assert!(imported[0][0].parse::<usize>().expect("count") > 100);
    // One snapshot: every version and every audit record in the copy is the source's,
    // none is torn or missing in between (the source's rows up to the copy's last).
    let src_set: std::collections::HashSet<&Vec<String>> = src_versions.iter().collect();
    assert!(copy_versions.iter().all(|v| src_set.contains(v)));
    assert_eq!(&src_audit[..copy_audit.len()], &copy_audit[..]);
    // The audit chain verifies on the copy, and the copy's head is in the source.
    let out = run(&["audit", "verify"], &c);
    assert!(out.status.success(), "{out:?}");
}

/// Every row of `sql` in the PostgreSQL database at `url`, as text.
fn pg_rows(url: &str, sql: &str) -> Vec<Vec<String>> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.query(
        &format!("SELECT CAST(ROW(q.*) AS TEXT) FROM ({sql}) q"),
        &[],
    )
    .expect("query")
    .into_iter()
    .map(|r| vec![r.get::<_, String>(0)])
    .collect()
}

/// The same with PostgreSQL: `oxehr backup --database` (pg_dump) while the server writes,
/// `oxehr restore --database` (pg_restore) into an empty database, and the same checks of
/// one snapshot, the audit prefix and the chain.
#[test]
fn a_postgres_backup_is_one_snapshot_and_restores_into_an_empty_database() {
    let Some(src) = common::TempDatabase::create("bksrc") else {
        return;
    };
    let Some(dst) = common::TempDatabase::create("bkdst") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let pg = |args: &[&str], url: &str, data: &Path| {
        oxehr()
            .args(args)
            .args(["--database", url, "--data"])
            .arg(data)
            .env("OXEHR_LOG", "warn")
            .output()
            .expect("run oxehr")
    };
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo");
    let out = pg(
        &["import", "--quiet", demo.to_str().expect("path")],
        &src.url,
        &a,
    );
    assert!(out.status.success(), "{out:?}");

    let server = Server::start(&["--database", &src.url, "--data", a.to_str().expect("path")]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = write_patients(&server, &stop);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = pg(&["backup", b.to_str().expect("path")], &src.url, &a);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("pg_dump"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.join().expect("writer") > 0);
    drop(server);

    // The dump is not a SQLite backup, and restores only with --database.
    let out = run(&["restore", b.to_str().expect("path")], &c);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--database"));
    let out = pg(&["restore", b.to_str().expect("path")], &dst.url, &c);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains("audit log intact"), "{said}");
    // Not over records.
    let again = pg(&["restore", b.to_str().expect("path")], &dst.url, &c);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty database"));

    let (src_versions, copy_versions) = (pg_rows(&src.url, VERSIONS), pg_rows(&dst.url, VERSIONS));
    let (src_audit, copy_audit) = (pg_rows(&src.url, AUDIT), pg_rows(&dst.url, AUDIT));
    assert!(
        copy_versions.len() < src_versions.len() && copy_versions.len() > 100,
        "{} {}",
        copy_versions.len(),
        src_versions.len()
    );
    let src_set: std::collections::HashSet<&Vec<String>> = src_versions.iter().collect();
    assert!(copy_versions.iter().all(|v| src_set.contains(v)));
    assert_eq!(&src_audit[..copy_audit.len()], &copy_audit[..]);
    let out = pg(&["audit", "verify"], &dst.url, &c);
    assert!(out.status.success(), "{out:?}");
}
