//! The `oxehr` binary as a user runs it: `import` of every Synthea bundle (resumable),
//! and a crash test — `kill -9` during a concurrent write load, restart, and every write
//! that had been answered 2xx is readable.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
/// Patients the demo's HL7 interface registers (`crates/oxehr/src/demo/exchange.rs`).
const DEMO_ARRIVALS: u64 = 1;
use common::{client_with, oxehr, shared, user_cmd, Server, TempDatabase};

/// Removes ids, meta and every reference string, so content can be compared without
/// knowing the ids the server assigned.
fn content(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "id" && k.as_str() != "meta")
                .map(|(k, v)| {
                    if k == "reference" {
                        (k.clone(), json!("*"))
                    } else {
                        (k.clone(), content(v))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(content).collect()),
        other => other.clone(),
    }
}

fn sent_resources(dirs: &[&str]) -> HashMap<String, Vec<String>> {
    let mut by_type: HashMap<String, Vec<String>> = HashMap::new();
    for dir in dirs {
        for entry in std::fs::read_dir(shared(dir)).expect("dir") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
            let b: Value = serde_json::from_str(&text).expect("json");
            for e in b["entry"].as_array().expect("entries") {
                let r = &e["resource"];
                let ty = r["resourceType"].as_str().expect("type").to_string();
                by_type.entry(ty).or_default().push(content(r).to_string());
            }
        }
    }
    by_type
}

/// Every current resource, via the system history of a server.
fn stored_resources(
    client: &reqwest::blocking::Client,
    base: &str,
) -> (HashMap<String, Vec<String>>, Vec<Value>) {
    let mut by_type: HashMap<String, Vec<String>> = HashMap::new();
    let mut all = Vec::new();
    let mut url = format!("{base}/_history?_count=1000");
    loop {
        let page: Value = client
            .get(&url)
            .send()
            .expect("history")
            .json()
            .expect("json");
        for e in page["entry"].as_array().cloned().unwrap_or_default() {
            let r = e["resource"].clone();
            let ty = r["resourceType"].as_str().expect("type").to_string();
            by_type.entry(ty).or_default().push(content(&r).to_string());
            all.push(r);
        }
        match page["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        {
            Some(next) => url = next["url"].as_str().expect("url").to_string(),
            None => break,
        }
    }
    (by_type, all)
}

fn import_then_compare(storage: &[&str], data_dir: &Path) {
    let dirs = ["synthea/smart-on-fhir-r4", "synthea/synthea-v3"];
    let import = || {
        oxehr()
            .arg("import")
            .args(dirs.iter().map(|d| shared(d)))
            .args(storage)
            .arg("--journal")
            .arg(data_dir.join("journal.txt"))
            .arg("--quiet")
            .output()
            .expect("run import")
    };
    let files: usize = dirs
        .iter()
        .map(|d| std::fs::read_dir(shared(d)).expect("dir").count())
        .sum();
    let resources: usize = sent_resources(&dirs).values().map(Vec::len).sum();
    let out = import();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "import failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "imported {resources} resources from {files} files"
        )),
        "{stdout}"
    );
    // Resumable: a second run skips every file and writes nothing.
    let stdout = String::from_utf8_lossy(&import().stdout).into_owned();
    assert!(
        stdout.contains("imported 0 resources from 0 files")
            && stdout.contains(&format!("{files} skipped")),
        "{stdout}"
    );

    let server = Server::start(storage);
    let (stored, all) = stored_resources(&server.client, &server.base);
    let mut sent = sent_resources(&dirs);
    // Conditional creates (ifNoneExist) of the v3 batch files match nothing twice here,
    // so every sent resource is stored once.
    let mut stored = stored;
    for v in sent.values_mut().chain(stored.values_mut()) {
        v.sort();
    }
    assert_eq!(sent.keys().len(), stored.keys().len());
    for (ty, list) in &sent {
        let got = stored.get(ty).cloned().unwrap_or_default();
        assert_eq!(
            got.len(),
            list.len(),
            "{ty}: {} stored, {} sent",
            got.len(),
            list.len()
        );
        if let Some((a, b)) = list.iter().zip(&got).find(|(a, b)| a != b) {
            panic!("{ty}: stored content differs from what was sent:\nsent   {a}\nstored {b}");
        }
    }
    // Every literal reference points at a stored resource.
    let ids: std::collections::HashSet<String> = all
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            )
        })
        .collect();
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match x {
                        Value::String(s) if k == "reference" => out.push(s.clone()),
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all_refs = Vec::new();
    all.iter().for_each(|r| refs(r, &mut all_refs));
    let dangling: Vec<&String> = all_refs
        .iter()
        .filter(|r| !r.starts_with('#') && !ids.contains(*r))
        .collect();
    assert!(
        dangling.is_empty(),
        "{} dangling references, e.g. {:?}",
        dangling.len(),
        dangling.first()
    );
}

#[test]
fn import_loads_every_synthea_bundle_on_sqlite() {
    oxehr_testdata::require!();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("path").to_string();
    import_then_compare(&["--data", &data], dir.path());
}

#[test]
fn import_loads_every_synthea_bundle_on_postgres() {
    oxehr_testdata::require!();
    let Some(db) = TempDatabase::create("import") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    import_then_compare(&["--database", &db.url], dir.path());
}

/// Writers create Patients as fast as they can; the server is killed with SIGKILL in
/// the middle; after a restart every create that had been answered 201 must be there.
fn crash_keeps_every_acknowledged_write(storage: &[&str]) {
    let server = Server::start(storage);
    let base = server.base.clone();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..16 {
        let (base, acknowledged, stop) = (base.clone(), acknowledged.clone(), stop.clone());
        let client = server.client.clone();
        writers.push(std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                n += 1;
                let body = json!({"resourceType": "Patient", "identifier": [{"system": "urn:crash", "value": format!("{w}-{n}")}]});
                match client.post(format!("{base}/Patient")).header("content-type", "application/fhir+json").body(body.to_string()).send() {
                    Ok(resp) if resp.status().as_u16() == 201 => {
                        let v: Value = resp.json().expect("json");
                        acknowledged.lock().expect("lock").push(v["id"].as_str().expect("id").to_string());
                    }
                    Ok(resp) => panic!("unexpected status {}", resp.status()),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    // Let the load build up, then pull the plug.
    let start = Instant::now();
    while acknowledged.lock().expect("lock").len() < 300
        && start.elapsed() < Duration::from_secs(15)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    let acked = acknowledged.lock().expect("lock").clone();
    assert!(
        acked.len() >= 300,
        "only {} writes before the crash",
        acked.len()
    );

    let server = Server::start(storage);
    let client = server.client.clone();
    let mut missing = 0;
    for id in &acked {
        let status = client
            .get(format!("{}/Patient/{id}", server.base))
            .send()
            .expect("read")
            .status()
            .as_u16();
        if status != 200 {
            missing += 1;
        }
    }
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged writes lost",
        acked.len()
    );
}

#[test]
fn crash_keeps_every_acknowledged_write_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("path").to_string();
    crash_keeps_every_acknowledged_write(&["--data", &data]);
}

#[test]
fn crash_keeps_every_acknowledged_write_on_postgres() {
    let Some(db) = TempDatabase::create("crash") else {
        return;
    };
    crash_keeps_every_acknowledged_write(&["--database", &db.url]);
}

#[test]
fn configuration_errors_stop_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("oxehr.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nlisten_port = 8080\n").expect("write");
    let out = oxehr()
        .args(["--config"])
        .arg(&cfg)
        .arg("serve")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid configuration") && err.contains("listen_port"),
        "{err}"
    );
    let out = oxehr()
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an address"));
    // The environment sets what a flag would.
    let out = oxehr()
        .env("OXEHR_LISTEN", "also-not-an-address")
        .args(["serve"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("also-not-an-address"));
    let out = oxehr()
        .args(["import", "/nonexistent/file.json", "--data"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file or directory"));
}

/// NDJSON files and collection Bundles import with the resources' own ids (as updates),
/// in chunks, and a bad line fails that file without stopping the others.
#[test]
fn import_takes_ndjson_and_collection_bundles() {
    oxehr_testdata::require!();
    let dir = tempfile::tempdir().expect("tempdir");
    let examples = shared("fhir-examples");
    let names = [
        "Patient-example.json",
        "Observation-example.json",
        "Organization-hl7.json",
        "Practitioner-example.json",
    ];
    let resources: Vec<Value> = names
        .iter()
        .map(|n| {
            serde_json::from_str(&std::fs::read_to_string(examples.join(n)).expect("read"))
                .expect("json")
        })
        .collect();
    let ndjson: String = resources.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.path().join("resources.ndjson"), ndjson).expect("write");
    let mut other = resources[0].clone();
    other["id"] = json!("collected-1");
    let collection =
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": other}]});
    std::fs::write(dir.path().join("collection.json"), collection.to_string()).expect("write");
    std::fs::write(
        dir.path().join("broken.ndjson"),
        "{\"resourceType\": \"Patient\"\nnot json\n",
    )
    .expect("write");
    let data = dir.path().join("data");
    let out = oxehr()
        .arg("import")
        .arg(dir.path())
        .arg("--data")
        .arg(&data)
        .args(["--chunk", "2", "--quiet"])
        .output()
        .expect("import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a broken file makes the command fail"
    );
    assert!(
        stdout.contains("imported 5 resources from 2 files") && stdout.contains("1 failed"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.ndjson"));
    let data = data.to_str().expect("path").to_string();
    // `oxehr reindex` writes the index of each of the 5 stored resources again.
    let reindexed = run_ok(&["reindex", "--data", &data]);
    assert!(
        reindexed.starts_with("reindexed 5 resources (0 changed by writes meanwhile"),
        "{reindexed}"
    );
    let server = Server::start(&["--data", &data]);
    let client = server.client.clone();
    for r in resources.iter().chain(std::iter::once(&other)) {
        let url = format!(
            "{}/{}/{}",
            server.base,
            r["resourceType"].as_str().expect("type"),
            r["id"].as_str().expect("id")
        );
        let stored: Value = client.get(&url).send().expect("get").json().expect("json");
        assert_eq!(content(&stored), content(r), "{url}");
        assert_eq!(stored["id"], r["id"], "imported with its own id");
    }
    // The reindexed rows answer searches: both Patients by their family name.
    let family = resources[0]["name"][0]["family"].as_str().expect("family");
    let url = format!("{}/Patient?family={family}", server.base);
    let found: Value = client.get(&url).send().expect("get").json().expect("json");
    assert_eq!(found["total"], 2, "{found}");
}

/// `oxehr user`: accounts reference resources that exist, names are unique, the password
/// policy holds, passwords never show and are stored only as Argon2id hashes, and
/// disable and reset-password change what they say. `password_hash` reads the stored
/// hash of an account straight from the database.
fn user_accounts_from_the_command_line(
    storage: &[&str],
    data_dir: &Path,
    password_hash: &dyn Fn(&str) -> Option<String>,
) {
    // An Organization, a Practitioner and a Patient from the official examples.
    let dir = tempfile::tempdir().expect("tempdir");
    let examples = shared("fhir-examples");
    let ndjson: String = [
        "Organization-hl7.json",
        "Practitioner-example.json",
        "Patient-example.json",
    ]
    .iter()
    .map(|n| {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(examples.join(n)).expect("read"))
                .expect("json");
        format!("{v}\n")
    })
    .collect();
    std::fs::write(dir.path().join("people.ndjson"), ndjson).expect("write");
    let out = oxehr()
        .arg("import")
        .arg(dir.path())
        .args(storage)
        .arg("--journal")
        .arg(dir.path().join("journal"))
        .arg("--quiet")
        .output()
        .expect("import");
    assert!(out.status.success(), "{out:?}");

    let secret = "correct horse battery staple";
    let add_clinician = [
        "add",
        "Dr.Who",
        "--role",
        "clinician",
        "--organization",
        "hl7",
        "--person",
        "Practitioner/example",
        "--password-stdin",
    ];
    let (ok, text) = user_cmd(storage, &add_clinician, &format!("{secret}\n"));
    assert!(ok, "{text}");
    assert!(
        text.contains("added dr.who (clinician, Organization/hl7, Practitioner/example)"),
        "{text}"
    );
    let (ok, text) = user_cmd(storage, &add_clinician, &format!("{secret}\n"));
    assert!(!ok && text.contains("taken"), "a name is used once: {text}");

    let add_patient = [
        "add",
        "amy",
        "--role",
        "patient",
        "--person",
        "Patient/example",
        "--password-stdin",
    ];
    let (ok, text) = user_cmd(storage, &add_patient, "another long passphrase\n");
    assert!(ok, "{text}");
    // A proxy: no person of its own (RelatedPersons name it), no authenticator needed.
    let (ok, text) = user_cmd(
        storage,
        &["add", "kim", "--role", "proxy", "--password-stdin"],
        "a proxy's long passphrase\n",
    );
    assert!(ok && text.contains("added kim (proxy)"), "{text}");

    // Refusals, each with a message that says why and never echoes the password.
    let refused: [(&[&str], &str, &str); 6] = [
        (
            &["add", "nurse1", "--role", "nurse", "--password-stdin"],
            "long enough password",
            "--organization",
        ),
        (
            &[
                "add",
                "bob",
                "--role",
                "patient",
                "--person",
                "Patient/nobody-here",
                "--password-stdin",
            ],
            "long enough password",
            "no Patient/nobody-here",
        ),
        (
            &["add", "carl", "--role", "wizard", "--password-stdin"],
            "long enough password",
            "unknown role",
        ),
        (
            &[
                "add",
                "lee",
                "--role",
                "proxy",
                "--person",
                "Patient/example",
                "--password-stdin",
            ],
            "long enough password",
            "a proxy's --person must be a reference RelatedPerson/<id>",
        ),
        (
            &["add", "dora", "--role", "system-admin", "--password-stdin"],
            "short1",
            "12 characters",
        ),
        (
            &[
                "add",
                "bad name",
                "--role",
                "system-admin",
                "--password-stdin",
            ],
            "long enough password",
            "user name",
        ),
    ];
    for (args, password, why) in refused {
        let (ok, text) = user_cmd(storage, args, &format!("{password}\n"));
        assert!(!ok, "{args:?} must fail");
        assert!(text.contains(why), "{args:?}: {text}");
        assert!(!text.contains(password), "{args:?} echoes the password");
    }

    let (ok, list) = user_cmd(storage, &["list"], "");
    assert!(ok, "{list}");
    let line = |name: &str| line_of(&list, name);
    assert!(list.contains("3 accounts"), "{list}");
    assert!(
        line("dr.who").contains("not enrolled") && line("dr.who").ends_with("active"),
        "staff need an authenticator: {list}"
    );
    assert!(line("amy").contains("off"), "{list}");
    assert!(
        line("kim").contains("proxy") && line("kim").contains("off"),
        "{list}"
    );
    assert!(!list.contains(secret) && !list.contains("argon2"), "{list}");

    // Only a hash is stored; it verifies the password.
    let hash = password_hash("dr.who").expect("stored");
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(oxehr_auth::verify_password(secret, &hash));

    tokens_from_the_command_line(storage, data_dir);

    // Enrolling an authenticator prints it once (an otpauth:// URI and its base32
    // secret, RFC 4648) and the account lists as enrolled; enrolling again replaces it.
    let enrol = || {
        let (ok, text) = user_cmd(storage, &["enrol-mfa", "dr.who"], "");
        assert!(ok, "{text}");
        let uri = text
            .lines()
            .find(|l| l.starts_with("otpauth://totp/"))
            .unwrap_or_else(|| panic!("no otpauth URI: {text}"))
            .to_string();
        let b32 = text
            .lines()
            .find_map(|l| l.strip_prefix("secret (base32): "))
            .expect("secret line")
            .to_string();
        assert!(uri.contains(&format!("secret={b32}")), "{uri}");
        assert!(
            b32.len() >= 32
                && b32
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        );
        b32
    };
    let first = enrol();
    let (_, list) = user_cmd(storage, &["list"], "");
    assert!(!line_of(&list, "dr.who").contains("not enrolled"), "{list}");
    assert_ne!(enrol(), first, "a new secret each time");

    let (ok, text) = user_cmd(storage, &["disable", "dr.who"], "");
    assert!(ok && text.contains("disabled dr.who"), "{text}");
    let (_, list) = user_cmd(storage, &["list"], "");
    assert!(line_of(&list, "dr.who").ends_with("disabled"), "{list}");

    let renewed = "a completely new passphrase";
    let (ok, text) = user_cmd(
        storage,
        &["reset-password", "dr.who", "--password-stdin"],
        &format!("{renewed}\n"),
    );
    assert!(ok && text.contains("password of dr.who changed"), "{text}");
    let hash = password_hash("dr.who").expect("stored");
    assert!(oxehr_auth::verify_password(renewed, &hash));
    assert!(!oxehr_auth::verify_password(secret, &hash));
    let (ok, text) = user_cmd(
        storage,
        &["reset-password", "nobody", "--password-stdin"],
        &format!("{renewed}\n"),
    );
    assert!(!ok && text.contains("no user named nobody"), "{text}");

    let (ok, text) = token_cmd(storage, &["--user", "dr.who"]);
    assert!(!ok && text.contains("disabled"), "{text}");
    // The organization written as a reference names the same one.
    let (ok, text) = user_cmd(
        storage,
        &[
            "add",
            "dr.jones",
            "--role",
            "clinician",
            "--organization",
            "Organization/hl7",
            "--password-stdin",
        ],
        &format!("{secret}\n"),
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("added dr.jones (clinician, Organization/hl7)"),
        "{text}"
    );
}

/// Runs `oxehr token issue …`; (success, stdout, stderr).
fn token_cmd(storage: &[&str], args: &[&str]) -> (bool, String) {
    let out = oxehr()
        .args(["token", "issue"])
        .args(args)
        .args(storage)
        .env("OXEHR_LOG", "warn")
        .env_remove("OXEHR_BASE_URL")
        .output()
        .expect("oxehr token issue");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        (true, stdout)
    } else {
        (false, String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `oxehr token issue` for the accounts the user test made (dr.who, a clinician, and
/// amy, the patient `Patient/example`): the token verifies with the key the command
/// stored (0600 in a 0700 directory) and says who the caller is and what it may do.
fn tokens_from_the_command_line(storage: &[&str], data_dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let (ok, amy) = token_cmd(storage, &["--user", "amy", "--ttl", "15m"]);
    assert!(ok, "{amy}");
    let key_path = data_dir.join("secrets").join("token-signing-key");
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(mode(key_path.parent().expect("dir")), 0o700);
    let key = oxehr_auth::token::SigningKey::from_bytes(&std::fs::read(&key_path).expect("key"))
        .expect("32 bytes");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = oxehr_auth::token::verify(&key, &amy, "oxehr", "oxehr", now).expect("verifies");
    assert_eq!(claims.sub, "amy");
    assert_eq!(claims.role, "patient");
    assert_eq!(claims.patient.as_deref(), Some("example"));
    assert_eq!(claims.fhir_user.as_deref(), Some("Patient/example"));
    assert_eq!(claims.scope, "patient/*.rs");
    assert_eq!(claims.exp - claims.iat, 900);
    // A proxy's token: patient/ scopes, no patient of its own.
    let (ok, kim) = token_cmd(storage, &["--user", "kim"]);
    assert!(ok, "{kim}");
    let claims = oxehr_auth::token::verify(&key, &kim, "oxehr", "oxehr", now).expect("verifies");
    assert_eq!(
        (claims.role.as_str(), claims.scope.as_str(), claims.patient),
        ("proxy", "patient/*.rs", None)
    );
    let (ok, text) = token_cmd(storage, &["--user", "kim", "--scope", "user/*.rs"]);
    assert!(
        !ok && text.contains("cannot be given user/ scopes"),
        "{text}"
    );

    let (ok, doc) = token_cmd(
        storage,
        &[
            "--user",
            "Dr.Who",
            "--scope",
            "user/Observation.read launch/patient",
        ],
    );
    assert!(ok, "{doc}");
    let claims = oxehr_auth::token::verify(&key, &doc, "oxehr", "oxehr", now).expect("verifies");
    assert_eq!(
        (claims.role.as_str(), claims.org.as_deref(), claims.patient),
        ("clinician", Some("hl7"), None)
    );
    assert_eq!(
        claims.scope, "user/Observation.rs launch/patient",
        "v1 read is rs"
    );
    assert_eq!(claims.exp - claims.iat, 3600, "one hour by default");
    // The key is made once: a second token verifies with the same key.
    assert_ne!(
        claims.jti,
        oxehr_auth::token::verify(&key, &amy, "oxehr", "oxehr", now)
            .expect("ok")
            .jti
    );

    for (args, why) in [
        (
            &["--user", "amy", "--scope", "user/*.rs"][..],
            "cannot be given user/",
        ),
        (
            &["--user", "dr.who", "--scope", "system/*.rs"][..],
            "cannot be given system/",
        ),
        (
            &["--user", "dr.who", "--scope", "patient/Observation.sr"][..],
            "Observation",
        ),
        (&["--user", "dr.who", "--ttl", "31d"][..], "at most 30d"),
        (&["--user", "nobody"][..], "no user named nobody"),
    ] {
        let (ok, text) = token_cmd(storage, args);
        assert!(!ok && text.contains(why), "{args:?}: {text}");
    }
}

fn line_of(list: &str, name: &str) -> String {
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("{name} not listed: {list}"))
        .to_string()
}

#[test]
fn user_accounts_from_the_command_line_on_sqlite() {
    oxehr_testdata::require!();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let db = data.join("oxehr.sqlite");
    let data_dir = data.clone();
    let data = data.to_str().expect("path").to_string();
    user_accounts_from_the_command_line(&["--data", &data], &data_dir, &|name| {
        let c = rusqlite::Connection::open(&db).expect("open sqlite");
        c.query_row(
            "SELECT password_hash FROM account WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .ok()
    });
}

#[test]
fn user_accounts_from_the_command_line_on_postgres() {
    oxehr_testdata::require!();
    let Some(db) = TempDatabase::create("users") else {
        return;
    };
    let url = db.url.clone();
    // Secrets live in the data directory also when the records are in PostgreSQL.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("path").to_string();
    let storage = ["--database", &db.url, "--data", &data];
    user_accounts_from_the_command_line(&storage, dir.path(), &|name| {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        c.query_opt(
            "SELECT password_hash FROM account WHERE name = $1",
            &[&name],
        )
        .expect("query")
        .map(|r| r.get(0))
    });
}

/// Runs `oxehr ARGS` and returns its standard output (it must succeed).
fn run_ok(args: &[&str]) -> String {
    let out = oxehr()
        .args(args)
        .env("OXEHR_LOG", "warn")
        .output()
        .expect("run oxehr");
    assert!(out.status.success(), "oxehr {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `oxehr token issue` for `user` with `scope` on the SQLite store in `data`.
fn issue_token(data: &str, user: &str, scope: &str) -> String {
    run_ok(&[
        "token", "issue", "--user", user, "--scope", scope, "--data", data,
    ])
    .trim()
    .to_owned()
}

/// `GET base/path` with `token` (if any): (status, body).
fn get_with(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let client = match token {
        Some(t) => client_with(t),
        None => reqwest::blocking::Client::new(),
    };
    let resp = client.get(format!("{base}/{path}")).send().expect("GET");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// First run on an empty store: the administrator `admin` is created with a random
/// password in a 0600 file, which signs in (its hash verifies it); nothing secret is
/// logged; every FHIR request needs a token.
#[test]
fn first_run_creates_the_administrator() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("path").to_string();
    let server = Server::serve(&["--data", &data]);
    let file = dir.path().join("secrets/initial-admin-password");
    let password = std::fs::read_to_string(&file).expect("password file");
    let password = password.trim();
    assert!(password.len() >= 24, "a long random password");
    assert_eq!(
        std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    let db = dir.path().join("oxehr.sqlite");
    let hash: String = rusqlite::Connection::open(&db)
        .expect("open")
        .query_row(
            "SELECT password_hash FROM account WHERE name = 'admin'",
            [],
            |r| r.get(0),
        )
        .expect("admin row");
    assert!(oxehr_auth::verify_password(password, &hash));
    assert!(run_ok(&["user", "list", "--data", &data]).contains("admin"));

    assert_eq!(get_with(&server.base, "Patient", None).0, 401);
    assert_eq!(get_with(&server.base, "metadata", None).0, 200);
    let token = issue_token(data.as_ref(), "admin", "system/*.cruds");
    let token = token.trim();
    let (status, body) = get_with(&server.base, "Patient", Some(token));
    assert_eq!(
        (status, body["resourceType"].as_str()),
        (200, Some("Bundle"))
    );
    // A restart does not create another administrator or touch the file.
    drop(server);
    let server = Server::serve(&["--data", &data]);
    assert_eq!(
        std::fs::read_to_string(&file).expect("file").trim(),
        password
    );
    assert_eq!(get_with(&server.base, "Patient", Some(token)).0, 200);
    let key = std::fs::read(dir.path().join("secrets/token-signing-key")).expect("key");
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let log = server.log.lock().expect("log").join("\n");
    for secret in [
        password,
        token,
        key_hex.as_str(),
        hash.as_str(),
        "$argon2id",
    ] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
}

/// `serve --demo` creates one demo account per role; each sees what its role and the
/// demo's care relationships allow (expected counts computed from the demo bundles).
#[test]
fn demo_has_an_account_per_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("path").to_string();
    let server = Server::serve(&["--demo", "--data", &data]);
    let list = run_ok(&["user", "list", "--data", &data]);
    for role in [
        "patient",
        "clinician",
        "nurse",
        "front-desk",
        "org-admin",
        "system-admin",
        "proxy",
    ] {
        assert!(list.contains(&format!("demo-{role}")), "{list}");
    }
    assert!(
        !dir.path().join("secrets/initial-admin-password").exists(),
        "the demo has its admin"
    );

    // From the bundles: the patients, and those whose encounters the first bundle's
    // organization provided (by its identifier, as Synthea's references resolve).
    let bundles = demo_bundles();
    let first_org = first_org(&bundles);
    let related = bundles
        .iter()
        .filter(|b| encounter_orgs(b).contains(&first_org))
        .count() as u64;
    let patients = bundles.len() as u64;
    assert!(
        related >= 1 && related < patients,
        "{related} of {patients}"
    );

    let count = |user: &str, scope: &str| {
        let token = issue_token(&data, user, scope);
        let (status, body) = get_with(&server.base, "Patient?_summary=count", Some(token.trim()));
        (status, body["total"].as_u64())
    };
    // Plus the registration the demo's HL7 interface sends for the practice
    // (`demo/exchange.rs`): a second record of a patient in its care, for review.
    assert_eq!(
        count("demo-system-admin", "system/*.rs"),
        (200, Some(patients + DEMO_ARRIVALS))
    );
    assert_eq!(
        count("demo-clinician", "user/*.rs"),
        (200, Some(related + DEMO_ARRIVALS))
    );
    assert_eq!(
        count("demo-front-desk", "user/*.rs"),
        (200, Some(related + DEMO_ARRIVALS))
    );
    assert_eq!(count("demo-patient", "patient/*.rs"), (200, Some(1)));
    assert_eq!(count("demo-org-admin", "user/*.rs").0, 403);
    // The demo proxy is the parent of the youngest demo patient (by the bundles'
    // birth dates), and acts for no one else.
    assert_eq!(count("demo-proxy", "patient/*.rs"), (200, Some(1)));
    let youngest = bundles
        .iter()
        .flat_map(|b| b["entry"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["resource"]["resourceType"] == "Patient")
        .filter_map(|e| e["resource"]["birthDate"].as_str().map(str::to_owned))
        .max()
        .expect("birth dates");
    let token = issue_token(&data, "demo-proxy", "patient/*.rs");
    let (status, body) = get_with(&server.base, "Patient", Some(token.trim()));
    assert_eq!(status, 200);
    assert_eq!(body["entry"][0]["resource"]["birthDate"], youngest.as_str());
}

/// The demo bundles as the repository ships them, first one first.
fn demo_bundles() -> Vec<Value> {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo");
    [
        "Kermit_Trantow",
        "Brady_Kuhlman",
        "Cameron_Greenfelder",
        "Rickey_Becker",
        "Shavonne_Schaefer",
        "Clemente_Kreiger",
    ]
    .iter()
    .map(|n| {
        let path = std::fs::read_dir(&demo)
            .expect("demo dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.starts_with(n))
            })
            .expect("bundle");
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
    })
    .collect()
}

/// The first resource of `rtype` in a bundle.
fn first_of<'a>(bundle: &'a Value, rtype: &str) -> &'a Value {
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == rtype)
        .expect("resource")
}

/// The identifier value of the first bundle's Organization (the demo staff's).
fn first_org(bundles: &[Value]) -> String {
    first_of(&bundles[0], "Organization")["identifier"][0]["value"]
        .as_str()
        .expect("org identifier")
        .to_string()
}

/// The identifier values of the organizations that provided a bundle's encounters.
fn encounter_orgs(b: &Value) -> Vec<String> {
    let entries = b["entry"].as_array().cloned().unwrap_or_default();
    let by_url = |url: &str| {
        entries
            .iter()
            .find(|e| e["fullUrl"] == url)
            .map(|e| e["resource"].clone())
    };
    entries
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Encounter")
        .filter_map(|e| e["resource"]["serviceProvider"]["reference"].as_str())
        .filter_map(by_url)
        .filter_map(|o| o["identifier"][0]["value"].as_str().map(str::to_owned))
        .collect()
}

/// Today's date in UTC (`YYYY-MM-DD`), from the system clock (civil-from-days,
/// H. Hinnant's algorithm).
fn utc_today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `serve --demo` gives the demo clinician data in every section of the chart (the
/// first demo patient's has them all), a demo note for each patient in their care plus
/// one HTML note, and today's schedule: one appointment for each of those patients,
/// made once a day (a restart adds none). Expected values come from the bundles.
#[test]
fn demo_gives_the_clinician_a_full_chart_notes_and_one_schedule_a_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("path").to_string();
    let bundles = demo_bundles();
    let org = first_org(&bundles);
    let in_care: Vec<&Value> = bundles
        .iter()
        .filter(|b| encounter_orgs(b).contains(&org))
        .filter(|b| first_of(b, "Patient")["deceasedDateTime"].is_null())
        .collect();
    let npi = first_of(&bundles[0], "Practitioner")["identifier"][0]["value"]
        .as_str()
        .expect("npi")
        .to_owned();
    let today = utc_today();

    let server = Server::serve(&["--demo", "--data", &data]);
    let token = issue_token(&data, "demo-clinician", "user/*.rs");
    let get = |base: &str, path: &str| {
        let (status, body) = get_with(base, path, Some(&token));
        assert_eq!(status, 200, "{path}: {body}");
        body["entry"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e["resource"].clone())
            .collect::<Vec<Value>>()
    };
    let practitioner = get(
        &server.base,
        &format!("Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|{npi}"),
    );
    assert_eq!(
        practitioner.len(),
        1,
        "one demo practitioner, shared by the bundles"
    );
    let practitioner = practitioner[0]["id"].as_str().expect("id").to_owned();
    let schedule = format!("Appointment?actor=Practitioner/{practitioner}&date={today}&_count=100");

    // Every section of the first patient's chart has data.
    let first = get(&server.base, "Patient?_count=100")
        .into_iter()
        .find(|p| p["name"] == first_of(&bundles[0], "Patient")["name"])
        .expect("the first demo patient is in the clinician's care");
    let pid = first["id"].as_str().expect("id");
    for section in [
        "Condition?clinical-status=active",
        "MedicationRequest?status=active",
        "AllergyIntolerance?",
        "Immunization?",
        "Encounter?",
        "Observation?category=laboratory",
        "Observation?category=vital-signs",
        "DiagnosticReport?",
        "DocumentReference?",
    ] {
        let sep = if section.ends_with('?') { "" } else { "&" };
        let found = get(
            &server.base,
            &format!("{section}{sep}patient={pid}&_count=1"),
        );
        assert!(
            !found.is_empty(),
            "{section}: the first demo patient has none"
        );
    }

    // The notes: a plain-text one for each patient in care, saying it is a demo note,
    // and one HTML note.
    let notes = get(&server.base, "DocumentReference?_count=100");
    let text_of = |n: &Value| {
        use base64::Engine;
        let data = n["content"][0]["attachment"]["data"]
            .as_str()
            .expect("data");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64");
        String::from_utf8(bytes).expect("utf-8")
    };
    let kind = |n: &Value| {
        n["content"][0]["attachment"]["contentType"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let plain: Vec<&Value> = notes
        .iter()
        .filter(|n| kind(n).starts_with("text/plain"))
        .collect();
    let html: Vec<&Value> = notes
        .iter()
        .filter(|n| kind(n).starts_with("text/html"))
        .collect();
    assert_eq!(plain.len(), in_care.len());
    assert_eq!(html.len(), 1);
    for n in &plain {
        assert!(text_of(n).contains("demo note"), "{}", text_of(n));
        assert_eq!(n["type"]["coding"][0]["code"], "11506-3");
        assert_eq!(n["status"], "current");
        assert_eq!(
            n["author"][0]["reference"],
            format!("Practitioner/{practitioner}")
        );
    }
    assert!(text_of(html[0]).contains("<script>"));
    assert_eq!(html[0]["subject"]["reference"], format!("Patient/{pid}"));

    // Today's schedule: one appointment per patient in care (the demo HL7 interface's
    // registration among them), in the working day.
    let day = get(&server.base, &schedule);
    let in_care_now = in_care.len() + DEMO_ARRIVALS as usize;
    assert_eq!(day.len(), in_care_now, "{day:?}");
    let mut patients: Vec<&str> = day
        .iter()
        .filter_map(|a| {
            a["participant"].as_array()?.iter().find_map(|p| {
                p["actor"]["reference"]
                    .as_str()
                    .filter(|r| r.starts_with("Patient/"))
            })
        })
        .collect();
    patients.sort();
    patients.dedup();
    assert_eq!(patients.len(), in_care_now, "one appointment per patient");
    for a in &day {
        let start = a["start"].as_str().expect("start");
        let end = a["end"].as_str().expect("end");
        assert!(start.starts_with(&today), "{start}");
        assert!(
            start >= format!("{today}T09:00").as_str()
                && end <= format!("{today}T16:30:00Z").as_str(),
            "{start}–{end}"
        );
        assert!(
            ["booked", "arrived", "fulfilled"].contains(&a["status"].as_str().unwrap_or("")),
            "{}",
            a["status"]
        );
    }
    let ids = |v: &[Value]| {
        let mut ids: Vec<String> = v
            .iter()
            .filter_map(|a| a["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    };
    let before = ids(&day);
    drop(server);

    // A restart on the same day adds no appointment.
    let server = Server::serve(&["--demo", "--data", &data]);
    assert_eq!(ids(&get(&server.base, &schedule)), before);
}

/// HTTPS with `--tls-cert`/`--tls-key` (a certificate made here for 127.0.0.1): the API
/// answers over TLS, with tokens as over HTTP; plain HTTP on a non-loopback address is
/// refused unless `--insecure-http` says a proxy terminates TLS.
#[test]
fn tls_and_no_plain_http_off_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("certificate");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let data = dir.path().join("data");
    let data = data.to_str().expect("path");
    let server = Server::serve(&[
        "--data",
        data,
        "--tls-cert",
        cert_path.to_str().expect("path"),
        "--tls-key",
        key_path.to_str().expect("path"),
    ]);
    let https = server.base.replacen("http://", "https://", 1);
    let token = issue_token(data, "admin", "system/*.cruds");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .expect("header"),
    );
    let client = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("root"),
        )
        .default_headers(headers)
        .build()
        .expect("client");
    let resp = client
        .get(format!("{https}/Patient?_summary=count"))
        .send()
        .expect("https GET");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().expect("json");
    assert_eq!(body["total"], 0);
    // The TLS port does not speak plain HTTP.
    let plain = reqwest::blocking::Client::new()
        .get(format!("{}/metadata", server.base))
        .send();
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));
    drop(server);

    let out = oxehr()
        .args(["serve", "--listen", "0.0.0.0:0", "--data", data])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("refusing to serve plain HTTP"),
        "{err}"
    );
    let out = oxehr()
        .args([
            "serve",
            "--tls-cert",
            cert_path.to_str().expect("path"),
            "--data",
            data,
        ])
        .output()
        .expect("run");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("go together"));
    let server = Server::serve(&["--listen", "0.0.0.0:0", "--insecure-http", "--data", data]);
    assert_eq!(
        get_with(
            &server.base.replace("0.0.0.0", "127.0.0.1"),
            "metadata",
            None
        )
        .0,
        200
    );
}

/// Issue 10, A4: the SQLite database holds every record and the password and session
/// hashes, so its directory is created readable by its owner only (0700) and the
/// database and its `-wal`/`-shm` files 0600; an existing database file that others may
/// read, or a directory that others may write, is refused with a message saying what to
/// change; a directory others may only read is accepted with a warning.
#[test]
fn the_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("new").join("data");
    let data_arg = data.to_str().expect("utf-8 path").to_owned();
    let storage = ["--data", data_arg.as_str()];
    let (ok, out) = user_cmd(&storage, &["list"], "");
    assert!(ok, "{out}");
    assert_eq!(mode(&data), 0o700, "the data directory");
    let db = data.join("oxehr.sqlite");
    assert_eq!(mode(&db), 0o600, "oxehr.sqlite");
    // The WAL and shared-memory files, while a server has the database open.
    let server = Server::serve(&storage);
    assert_eq!(get_with(&server.base, "metadata", None).0, 200);
    for suffix in ["-wal", "-shm"] {
        let p = data.join(format!("oxehr.sqlite{suffix}"));
        assert_eq!(mode(&p), 0o600, "oxehr.sqlite{suffix}");
    }
    drop(server);

    // A database file others can read is refused, and says how to mend it.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (ok, out) = user_cmd(&storage, &["list"], "");
    assert!(!ok, "opened a database others can read: {out}");
    assert!(
        out.contains("chmod 600") && out.contains("oxehr.sqlite"),
        "{out}"
    );
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // A directory others can write is refused; one others can only read is a warning.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let (ok, out) = user_cmd(&storage, &["list"], "");
    assert!(!ok, "used a directory others can write: {out}");
    assert!(out.contains("chmod 700"), "{out}");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (ok, out) = user_cmd(&storage, &["list"], "");
    assert!(ok, "{out}");
    assert!(out.contains("other users can list"), "no warning: {out}");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let (ok, out) = user_cmd(&storage, &["list"], "");
    assert!(ok && !out.contains("WARN"), "{out}");
}

/// A build without the `otel` feature refuses `--otel-endpoint` with a message naming
/// the feature, and starts nothing.
#[cfg(not(feature = "otel"))]
#[test]
fn otel_endpoint_without_the_feature_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = common::oxehr()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args(["--otel-endpoint", "http://127.0.0.1:4318"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features otel"), "{err}");
}
