//! Test harness: starts the real server (real store, real HTTP on a free loopback port,
//! the FHIR API and the pages as the binary serves them) on SQLite (a temporary
//! directory) or PostgreSQL (a schema of its own per test).

#![allow(dead_code)]

use std::sync::Arc;

use oxehr_api::ApiConfig;
use oxehr_auth::IdentityConfig;
use oxehr_records::{Records, RecordsConfig};
use oxehr_store::Store;
use serde_json::Value;
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub base: String,
    /// A client that sends the test administrator's token with every request.
    pub client: reqwest::Client,
    /// A client without credentials.
    pub anonymous: reqwest::Client,
    pub records: Records,
    pub key: oxehr_auth::token::SigningKey,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

pub fn postgres_url() -> String {
    std::env::var("OXEHR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn unique_schema() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "api_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts a server; `None` when PostgreSQL is wanted but unreachable outside CI.
pub async fn start(backend: Backend) -> Option<TestServer> {
    start_with(backend, ApiConfig::default()).await
}

pub async fn start_with(backend: Backend, config: ApiConfig) -> Option<TestServer> {
    start_with_records(backend, config, RecordsConfig::default()).await
}

/// A server with these API and record-layer settings.
pub async fn start_with_records(
    backend: Backend,
    config: ApiConfig,
    records_config: RecordsConfig,
) -> Option<TestServer> {
    start_with_all(backend, config, records_config, IdentityConfig::default()).await
}

/// A server with these API settings and sign-in, session and authorization rules.
pub async fn start_with_identity(
    backend: Backend,
    config: ApiConfig,
    identity: IdentityConfig,
) -> Option<TestServer> {
    start_with_all(backend, config, RecordsConfig::default(), identity).await
}

async fn start_with_all(
    backend: Backend,
    mut config: ApiConfig,
    records_config: RecordsConfig,
    identity_config: IdentityConfig,
) -> Option<TestServer> {
    let (store, dir, schema): (Arc<dyn Store>, _, _) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = oxehr_store_sqlite::SqliteStore::open(
                &dir.path().join("t.sqlite"),
                Default::default(),
            )
            .expect("open sqlite");
            (Arc::new(store), Some(dir), None)
        }
        Backend::Postgres => {
            let schema = unique_schema();
            let cfg = oxehr_store_postgres::PostgresConfig {
                schema: Some(schema.clone()),
                ..Default::default()
            };
            let url = postgres_url();
            let opened = tokio::task::spawn_blocking(move || {
                oxehr_store_postgres::PostgresStore::connect(&url, cfg)
            })
            .await
            .expect("join");
            match opened {
                Ok(store) => (Arc::new(store), None, Some(schema)),
                Err(e) => {
                    if std::env::var_os("CI").is_some() {
                        panic!("PostgreSQL is unreachable in CI: {e}");
                    }
                    eprintln!(
                        "skipping: PostgreSQL unreachable ({e}); set OXEHR_TEST_POSTGRES_URL"
                    );
                    return None;
                }
            }
        }
    };
    let records = Records::new(store, records_config);
    let key = oxehr_auth::token::SigningKey::generate();
    {
        let store = records.store().clone();
        tokio::task::spawn_blocking(move || {
            oxehr_auth::accounts::add(
                &store,
                oxehr_auth::accounts::NewAccount {
                    name: "test-admin".into(),
                    role: oxehr_auth::Role::SystemAdmin,
                    organization: None,
                    person: None,
                    password: "test-admin-password".into(),
                    mfa_required: Some(false),
                },
            )
        })
        .await
        .expect("join")
        .expect("test admin account");
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    config.base_url = format!("http://{addr}/fhir");
    let identity = oxehr_auth::Identity::new(
        records.store().clone(),
        key.clone(),
        ISSUER,
        identity_config,
    );
    // The whole server, as `oxehr serve` composes it: the FHIR API and the pages (the
    // authorization endpoint among them).
    let pages = oxehr_web::router(
        records.clone(),
        Arc::new(identity.clone()),
        oxehr_web::WebConfig {
            secure_cookies: false,
            base_url: config.base_url.clone(),
        },
    );
    let router = oxehr_api::router(records.clone(), config.clone(), identity).merge(pages);
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = oxehr_api::run(listener, router, async {
            let _ = rx.await;
        })
        .await;
    });
    let admin = issue_token(
        &key,
        "test-admin",
        "system-admin",
        "system/*.cruds",
        None,
        None,
        None,
    );
    Some(TestServer {
        base: config.base_url,
        client: client_with(&admin),
        anonymous: reqwest::Client::new(),
        records,
        key,
        shutdown: Some(tx),
        _dir: dir,
        schema,
    })
}

/// The issuer and audience of the test servers' tokens.
pub const ISSUER: &str = "oxehr-test";

/// A client that sends `token` as its bearer token.
pub fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// A signed access token for an account, valid for an hour.
pub fn issue_token(
    key: &oxehr_auth::token::SigningKey,
    user: &str,
    role: &str,
    scope: &str,
    org: Option<&str>,
    person: Option<&str>,
    patient: Option<&str>,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = oxehr_auth::token::Claims {
        iss: ISSUER.into(),
        sub: user.into(),
        aud: ISSUER.into(),
        iat: now,
        exp: now + 3600,
        jti: oxehr_auth::token::new_token_id(),
        scope: scope.into(),
        role: role.into(),
        org: org.map(str::to_owned),
        fhir_user: person.map(str::to_owned),
        patient: patient.map(str::to_owned),
    };
    oxehr_auth::token::issue(key, &claims).expect("token")
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(schema) = self.schema.take() {
            // Best effort: drop the test's schema on a thread of its own (no runtime here).
            let url = postgres_url();
            let _ = std::thread::spawn(move || {
                if let Ok(mut c) = postgres::Client::connect(&url, postgres::NoTls) {
                    let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
                }
            })
            .join();
        }
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub async fn get(&self, path: &str) -> (u16, Value, reqwest::header::HeaderMap) {
        let resp = self.client.get(self.url(path)).send().await.expect("GET");
        split(resp).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("content-type", "application/fhir+json")
            .body(serde_json::to_vec(body).expect("json"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        split(req.send().await.expect("request")).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
        self.send(reqwest::Method::POST, path, body, &[]).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
        self.send(reqwest::Method::PUT, path, body, &[]).await
    }

    /// Stores `r` at its own `Type/id` as the test administrator; it must answer 200 or
    /// 201.
    pub async fn put_resource(&self, r: &Value) {
        let path = format!(
            "{}/{}",
            r["resourceType"].as_str().expect("type"),
            r["id"].as_str().expect("id")
        );
        let (status, body, _) = self.put(&path, r).await;
        assert!(
            status == 200 || status == 201,
            "PUT {path}: {status} {body}"
        );
    }
}

pub async fn split(resp: reqwest::Response) -> (u16, Value, reqwest::header::HeaderMap) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, value, headers)
}

/// Reads a file of the shared third-party test material (`../shared/data` beside the
/// checkout, or `$OXEHR_SHARED_DATA`); a test reading it starts with
/// `oxehr_testdata::require!()`.
pub fn shared(path: &str) -> Value {
    let p = oxehr_testdata::path(path);
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    serde_json::from_str(&text).expect("shared JSON")
}

/// The bundle files of one folder of ../shared/data/synthea, sorted, with Synthea's own
/// rule applied: the organization and practitioner files load first.
pub fn synthea_files(dir: &str) -> Vec<std::path::PathBuf> {
    let root = oxehr_testdata::path("synthea").join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .expect("synthea dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    files.sort_by_key(|p| {
        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        !(n.starts_with("hospitalInformation") || n.starts_with("practitionerInformation"))
    });
    files
}

/// A resource without `id` and `meta`, for comparing what was sent with what is stored.
pub fn without_id_meta(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.shift_remove("id");
        m.shift_remove("meta");
    }
    v
}

/// Declares each listed async test fn once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = $crate::common::start($crate::common::Backend::Sqlite).await.expect("sqlite server");
                    super::$name(&s).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(s) = $crate::common::start($crate::common::Backend::Postgres).await else { return };
                    super::$name(&s).await;
                }
            )*
        }
    };
}

/// Adds an account with this role, organization and person, and gives a client with a
/// token for it (`patient/*.cruds` for a patient, `user/*.cruds` for anyone else).
pub async fn add_account(
    server: &TestServer,
    name: &str,
    role: &str,
    org: Option<&str>,
    person: Option<&str>,
) -> reqwest::Client {
    let store = server.records.store().clone();
    let (n, o, p) = (
        name.to_string(),
        org.map(str::to_owned),
        person.map(str::to_owned),
    );
    let r = oxehr_auth::Role::parse(role).expect("role");
    tokio::task::spawn_blocking(move || {
        oxehr_auth::accounts::add(
            &store,
            oxehr_auth::accounts::NewAccount {
                name: n,
                role: r,
                organization: o,
                person: p,
                password: "test-password-1".into(),
                mfa_required: Some(false),
            },
        )
    })
    .await
    .expect("join")
    .expect("account");
    let scope = if role == "patient" {
        "patient/*.cruds"
    } else {
        "user/*.cruds"
    };
    let patient = person.and_then(|p| p.strip_prefix("Patient/"));
    client_with(&issue_token(
        &server.key,
        name,
        role,
        scope,
        org,
        person,
        patient,
    ))
}

/// Every resource of a search or `$everything` (`path` relative to the base), following
/// `next` links, as the test administrator; each page must answer 200.
pub async fn all_pages(s: &TestServer, path: &str) -> Vec<Value> {
    all_entries(s, path)
        .await
        .into_iter()
        .map(|mut e| e["resource"].take())
        .collect()
}

/// Every Bundle entry (resource and `search` mode) of a search, following `next`
/// links, as the test administrator; each page must answer 200.
pub async fn all_entries(s: &TestServer, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(s.url(path));
    while let Some(url) = next.take() {
        let (status, b, _) = split(s.client.get(url).send().await.expect("GET")).await;
        assert_eq!(status, 200, "{path}: {b}");
        out.extend(b["entry"].as_array().into_iter().flatten().cloned());
        next = b["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str())
            .map(str::to_owned);
    }
    out
}

/// `Type/id` of a resource.
pub fn key_of(r: &Value) -> String {
    format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap_or(""),
        r["id"].as_str().unwrap_or("")
    )
}

/// How many rows the index tables `tables` hold under the parameter keys `keys`
/// (`(type, code)`), read straight from the store.
pub async fn index_rows(s: &TestServer, tables: &[&str], keys: &[(&str, &str)]) -> i64 {
    let keys: Vec<String> = keys
        .iter()
        .map(|(t, c)| oxehr_search::ParamKey::of(t, c).0.to_string())
        .collect();
    let tables: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    let store = s.records.store().clone();
    tokio::task::spawn_blocking(move || {
        let mut tx = store.read().expect("read");
        tables
            .iter()
            .map(|table| {
                let sql = format!(
                    "SELECT count(*) FROM {table} WHERE param IN ({})",
                    keys.join(", ")
                );
                match &tx.query(&sql, &[]).expect("count").remove(0)[0] {
                    oxehr_store::search::SqlValue::Int(n) => *n,
                    other => panic!("{other:?}"),
                }
            })
            .sum()
    })
    .await
    .expect("join")
}
