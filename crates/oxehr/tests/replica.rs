//! `--database-replica`: reads and searches served by a real streaming replica, and a
//! caller's reads after their own write never older than that write.
//!
//! The test builds its own two-server cluster, as an operator would: `initdb` a primary
//! on a free port, `pg_basebackup -R` a copy of it, and start that copy as a hot standby
//! on another port (the shared PostgreSQL on 5432 does not allow replication
//! connections). Then, against `oxehr serve --database PRIMARY --database-replica
//! STANDBY`:
//! - eight clients each create, read back, search for and update their own Patients;
//!   every answer shows the write just made, and the replica served reads;
//! - with the standby's replay paused, every read still shows its write (the server
//!   waited, then read the primary), while the standby itself provably lacks it;
//! - with the standby stopped, reads go on from the primary;
//! - a replica URL that is not a standby of the primary is refused at start.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{oxehr, Server};

/// The PostgreSQL server programs (`initdb`, `pg_ctl`, `pg_basebackup`), or `None`
/// outside CI when they are not installed.
fn bindir() -> Option<PathBuf> {
    let from_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let found = from_config
        .into_iter()
        .chain(
            std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join("bin")),
        )
        .find(|d| {
            ["initdb", "pg_ctl", "pg_basebackup"]
                .iter()
                .all(|p| d.join(p).exists())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup) are missing in CI"
        );
        eprintln!("skipping: PostgreSQL's server programs are not installed");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A primary and one hot standby in a temporary directory, stopped when dropped.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    primary: u16,
    standby: u16,
    root: bool,
}

impl Cluster {
    /// A PostgreSQL program as the user that owns the cluster (PostgreSQL refuses to
    /// run as root; the test may be run as root, as CI is).
    fn cmd(&self, program: &str) -> Command {
        cmd(&self.bin, self.root, program)
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.cmd(program).args(args).output().expect(program);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, name: &str) -> String {
        self.dir
            .path()
            .join(name)
            .to_str()
            .expect("path")
            .to_owned()
    }

    fn start(&self, name: &str, port: u16) {
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_wal_senders=4",
            self.dir.path().display()
        );
        let log = self.path(&format!("{name}.log"));
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.path(name),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    fn stop(&self, name: &str) {
        let _ = self
            .cmd("pg_ctl")
            .args(["-D", &self.path(name), "-m", "immediate", "-w", "stop"])
            .output();
    }

    fn create() -> Option<Cluster> {
        let bin = bindir()?;
        let root = is_root();
        let dir = tempfile::tempdir().expect("tempdir");
        if root {
            // The cluster's files belong to the `postgres` account.
            let status = Command::new("chown")
                .args(["postgres:", dir.path().to_str().expect("path")])
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "chown the cluster's directory to postgres"
            );
        }
        let cluster = Cluster {
            bin,
            dir,
            primary: free_port(),
            standby: free_port(),
            root,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.path("primary"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        cluster.start("primary", cluster.primary);
        cluster.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &cluster.primary.to_string(),
                "-U",
                "postgres",
                "-D",
                &cluster.path("standby"),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        cluster.start("standby", cluster.standby);
        Some(cluster)
    }

    fn url(port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    }

    fn primary_url(&self) -> String {
        Cluster::url(self.primary)
    }

    fn standby_url(&self) -> String {
        Cluster::url(self.standby)
    }
}

fn cmd(bin: &Path, root: bool, program: &str) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop("standby");
        self.stop("primary");
    }
}

fn sql(url: &str, statement: &str) -> Vec<postgres::Row> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.query(statement, &[]).expect("query")
}

/// The value of one series of `/metrics`.
fn metric(server: &Server, name: &str) -> f64 {
    let root = server.base.trim_end_matches("/fhir");
    let text = server
        .client
        .get(format!("{root}/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
        .parse()
        .expect("number")
}

/// Creates a Patient, then at once reads it, searches for it and updates it, and reads
/// the update: every answer must show the write before it. Its id.
fn write_then_read(server: &Server, family: &str) -> String {
    let c = &server.client;
    let created = c
        .post(format!("{}/Patient", server.base))
        .header("content-type", "application/fhir+json")
        .body(
            serde_json::json!({"resourceType": "Patient", "name": [{"family": family}]})
                .to_string(),
        )
        .send()
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let body: serde_json::Value = created.json().expect("json");
    let id = body["id"].as_str().expect("id").to_owned();

    let read = c
        .get(format!("{}/Patient/{id}", server.base))
        .send()
        .expect("read");
    assert_eq!(read.status().as_u16(), 200, "read after create of {id}");
    let read: serde_json::Value = read.json().expect("json");
    assert_eq!(read["name"][0]["family"], family);

    let found: serde_json::Value = c
        .get(format!("{}/Patient?family:exact={family}", server.base))
        .send()
        .expect("search")
        .json()
        .expect("json");
    assert_eq!(found["total"], 1, "search after create of {id}");

    let updated = c
        .put(format!("{}/Patient/{id}", server.base))
        .header("content-type", "application/fhir+json")
        .body(
            serde_json::json!({"resourceType": "Patient", "id": id, "active": true, "name": [{"family": family}]})
                .to_string(),
        )
        .send()
        .expect("update");
    assert_eq!(updated.status().as_u16(), 200);
    let after: serde_json::Value = c
        .get(format!("{}/Patient/{id}", server.base))
        .send()
        .expect("read")
        .json()
        .expect("json");
    assert_eq!(after["meta"]["versionId"], "2", "read after update of {id}");
    assert_eq!(after["active"], true);
    id
}

/// `clients` threads each running `write_then_read` `rounds` times.
fn under_load(server: &Server, tag: &str, clients: usize, rounds: usize) {
    std::thread::scope(|s| {
        for t in 0..clients {
            s.spawn(move || {
                for r in 0..rounds {
                    write_then_read(server, &format!("Replica{tag}C{t}R{r}"));
                }
            });
        }
    });
}

#[test]
fn reads_go_to_a_streaming_replica_and_never_see_older_than_the_callers_write() {
    let Some(cluster) = Cluster::create() else {
        return;
    };
    let (primary, standby) = (cluster.primary_url(), cluster.standby_url());
    let server = Server::start(&[
        "--database",
        &primary,
        "--database-replica",
        &standby,
        "--replica-wait-ms",
        "50",
    ]);
    assert_eq!(metric(&server, "oxehr_store_replicas_up"), 1.0);

    // Eight clients writing and reading back at once: every read shows its write, and
    // the replica served reads.
    let before = metric(&server, "oxehr_store_replica_reads_total");
    under_load(&server, "Load", 8, 12);
    let served = metric(&server, "oxehr_store_replica_reads_total") - before;
    assert!(served > 0.0, "the replica served no read");

    // Replay paused once the standby has caught up: reads alone still go to it, though
    // each is audited (the audit trail's appends are writes no read waits for).
    let id = write_then_read(&server, "ReplicaReadsOnly");
    let caught_up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        metric(&server, "oxehr_store_replica_lag_bytes") == 0.0
    });
    assert!(caught_up, "the standby did not catch up");
    sql(&standby, "SELECT pg_wal_replay_pause()");
    let reads = metric(&server, "oxehr_store_replica_reads_total");
    let fallbacks = metric(&server, "oxehr_store_replica_fallbacks_total");
    for _ in 0..30 {
        let r = server
            .client
            .get(format!("{}/Patient/{id}", server.base))
            .send()
            .expect("read");
        assert_eq!(r.status().as_u16(), 200);
        // Past the read audit's window, so that its appends land between reads.
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(
        metric(&server, "oxehr_store_replica_fallbacks_total"),
        fallbacks,
        "reads alone were sent to the primary"
    );
    assert!(metric(&server, "oxehr_store_replica_reads_total") >= reads + 30.0);
    sql(&standby, "SELECT pg_wal_replay_resume()");

    // Replay paused: the standby stops short of new writes, and reads still show them.
    sql(&standby, "SELECT pg_wal_replay_pause()");
    let fallbacks = metric(&server, "oxehr_store_replica_fallbacks_total");
    under_load(&server, "Paused", 4, 3);
    let id = write_then_read(&server, "ReplicaPausedLast");
    assert!(
        sql(
            &primary,
            &format!("SELECT 1 FROM resource WHERE rtype = 'Patient' AND id = '{id}'")
        )
        .len()
            == 1
    );
    assert!(
        sql(
            &standby,
            &format!("SELECT 1 FROM resource WHERE rtype = 'Patient' AND id = '{id}'")
        )
        .is_empty(),
        "the paused standby has the new Patient: the pause did not hold"
    );
    assert!(
        metric(&server, "oxehr_store_replica_fallbacks_total") > fallbacks,
        "reads after writes the replica lacked did not go to the primary"
    );

    // Replay resumed: the replica serves reads again.
    sql(&standby, "SELECT pg_wal_replay_resume()");
    let before = metric(&server, "oxehr_store_replica_reads_total");
    under_load(&server, "Resumed", 2, 3);
    assert!(metric(&server, "oxehr_store_replica_reads_total") > before);

    // The standby stopped: reads go on from the primary.
    cluster.stop("standby");
    write_then_read(&server, "ReplicaStopped");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(metric(&server, "oxehr_store_replicas_up"), 0.0);
    write_then_read(&server, "ReplicaStoppedLater");
}

#[test]
fn a_replica_that_is_not_a_standby_of_the_primary_is_refused() {
    let Some(cluster) = Cluster::create() else {
        return;
    };
    let primary = cluster.primary_url();
    // The primary itself is not a standby; the shared test server is another cluster.
    let mut cases = vec![(primary.clone(), "not a standby")];
    if postgres::Client::connect(&common::postgres_url(), postgres::NoTls).is_ok() {
        cases.push((common::postgres_url(), "not a copy of the primary"));
    }
    for (replica, says) in cases {
        let out = oxehr()
            .args([
                "user",
                "list",
                "--database",
                &primary,
                "--database-replica",
                &replica,
            ])
            .env("OXEHR_LOG", "warn")
            .output()
            .expect("oxehr user list");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{replica} accepted as a replica");
        assert!(text.contains(says), "{text}");
    }
}
