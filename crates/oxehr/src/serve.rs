//! `oxehr serve`: composes store, records and the REST API and serves until Ctrl-C or
//! SIGTERM.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use clap::Args;

use oxehr_api::ApiConfig;

use crate::config::{FileConfig, StorageArgs};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "OXEHR_LISTEN")]
    pub listen: Option<String>,
    /// The FHIR base URL clients see (default: http://<listen>/fhir).
    #[arg(long, env = "OXEHR_BASE_URL")]
    pub base_url: Option<String>,
    /// Largest request body in bytes.
    #[arg(long, env = "OXEHR_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Requests per second each FHIR API client may make (by account; by address while
    /// its credentials fail), with a burst of twice that; over it, 429 with
    /// `Retry-After`. 0 turns the limit off (load benchmarks). Default 1000.
    #[arg(long, env = "OXEHR_RATE_LIMIT")]
    pub rate_limit: Option<u32>,
    /// How long, in milliseconds, the audit records of reads gather before they are
    /// written together (default 20): the most of them a crash can lose. 0 writes them
    /// as they come.
    #[arg(long, env = "OXEHR_READ_AUDIT_WINDOW_MS")]
    pub read_audit_window_ms: Option<u64>,
    /// Answer a read only once its audit record is on disk (slower: every read waits
    /// for a commit).
    #[arg(long, env = "OXEHR_DURABLE_READ_AUDIT")]
    pub durable_read_audit: bool,
    /// Load the bundled demo patients (Synthea) when the record holds no Patient yet.
    #[arg(long)]
    pub demo: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "OXEHR_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM, PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "OXEHR_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP on a non-loopback address (only behind a proxy that terminates
    /// TLS on the same host or a trusted network).
    #[arg(long, env = "OXEHR_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// How long the database statements of one request may run, in seconds (default 30;
    /// less than the request timeout of 120). Past it a search answers 503.
    #[arg(long, env = "OXEHR_STATEMENT_TIMEOUT_SECS")]
    pub statement_timeout_secs: Option<u64>,
    /// A browser session ends after this many minutes without a request (default 15).
    #[arg(long, env = "OXEHR_SESSION_IDLE_MINUTES")]
    pub session_idle_minutes: Option<u64>,
    /// How long the files of a finished `$export` are kept, in hours (default 24).
    #[arg(long, env = "OXEHR_EXPORT_EXPIRY_HOURS")]
    pub export_expiry_hours: Option<u64>,
    /// Also receive HL7 v2 messages over MLLP on this address (`0.0.0.0:2575`); a
    /// message is accepted only from a registered interface (`oxehr interface add`).
    #[arg(long, env = "OXEHR_MLLP")]
    pub mllp: Option<String>,
    /// Serve MLLP inside TLS, with the --tls-cert and --tls-key certificate.
    #[arg(long, env = "OXEHR_MLLP_TLS")]
    pub mllp_tls: bool,
    /// Serve plain MLLP on a non-loopback address (a VPN or a trusted network).
    #[arg(long, env = "OXEHR_INSECURE_MLLP")]
    pub insecure_mllp: bool,
    #[command(flatten)]
    pub storage: StorageArgs,
}

pub fn serve(args: ServeArgs, file: &FileConfig) -> Result<()> {
    let listen = args
        .listen
        .clone()
        .or(file.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen '{listen}' is not an address such as 127.0.0.1:8080"))?;
    let configured_base = args.base_url.clone().or(file.base_url.clone());
    let tls = match (
        args.tls_cert.clone().or(file.tls_cert.clone()),
        args.tls_key.clone().or(file.tls_key.clone()),
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let insecure_http = args.insecure_http || file.insecure_http.unwrap_or(false);
    if tls.is_none() && !addr.ip().is_loopback() && !insecure_http {
        bail!(
            "refusing to serve plain HTTP on {addr}, which is not a loopback address: \
             give --tls-cert and --tls-key, or --insecure-http when a proxy on a trusted \
             network terminates TLS"
        );
    }
    let mut api = ApiConfig {
        on_request_span: crate::telemetry::request_span_hook(),
        ..ApiConfig::default()
    };
    let mut identity_config = oxehr_auth::IdentityConfig::default();
    if let Some(n) = args.max_body_bytes.or(file.max_body_bytes) {
        api.max_body_bytes = n;
    }
    if let Some(n) = args.rate_limit.or(file.rate_limit) {
        api.rate_limit = (n > 0).then(|| oxehr_api::limits::RateLimit::per_second(n));
    }
    if let Some(m) = args.session_idle_minutes.or(file.session_idle_minutes) {
        if m == 0 || m > 24 * 60 {
            bail!("--session-idle-minutes must be between 1 and 1440");
        }
        identity_config.session_idle_secs = m * 60;
    }
    // A patched resource may be as large as one sent whole.
    let mut records_config = args.storage.records_config(file);
    records_config.max_resource_bytes = api.max_body_bytes;
    if let Some(ms) = args.read_audit_window_ms.or(file.read_audit_window_ms) {
        if ms > 1000 {
            bail!("--read-audit-window-ms must be at most 1000");
        }
        records_config.read_audit_window = std::time::Duration::from_millis(ms);
    }
    records_config.durable_read_audit =
        args.durable_read_audit || file.durable_read_audit.unwrap_or(false);
    if let Some(secs) = args.statement_timeout_secs.or(file.statement_timeout_secs) {
        if secs == 0 || secs >= api.request_timeout.as_secs() {
            bail!(
                "--statement-timeout-secs must be between 1 and {} (the request timeout)",
                api.request_timeout.as_secs() - 1
            );
        }
        records_config.statement_timeout = Some(std::time::Duration::from_secs(secs));
    }
    if let Some(h) = args.export_expiry_hours {
        if h == 0 || h > 24 * 30 {
            bail!("--export-expiry-hours must be between 1 and 720");
        }
        records_config.bulk.expiry = std::time::Duration::from_secs(h * 3600);
    }
    let records = args.storage.open_with(file, records_config)?;
    records.set_reprocessor(oxehr_hl7_listener::reprocessor());
    // Export jobs a stopped server left running run again now.
    records.start_export_runner();
    // Care gaps and risk scores are worked out in the background as writes mark them.
    records.start_findings_refresher();
    // Authenticator secrets are sealed with the server's key; any stored before are
    // sealed now.
    identity_config.secrets_key = crate::secrets::secrets_key(&args.storage.data_dir(file))?;
    let sealed = oxehr_auth::accounts::seal_secrets(records.store(), &identity_config.secrets_key)?;
    if sealed > 0 {
        tracing::info!(
            accounts = sealed,
            "sealed the authenticator secrets stored in plain text"
        );
    }
    let identity = oxehr_auth::Identity::new(
        records.store().clone(),
        crate::secrets::token_signing_key(&args.storage.data_dir(file))?,
        crate::token::token_issuer(configured_base.as_deref()),
        identity_config,
    );
    if args.demo {
        crate::demo::load(&records)?;
    }
    first_admin(&records, &args.storage.data_dir(file))?;
    let mllp = mllp_settings(&args, tls.as_ref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        if let Some((addr, config)) = mllp {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for MLLP on {addr}"))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, tls = config.tls.is_some(), "oxehr is receiving HL7 v2 over MLLP");
            let records = records.clone();
            tokio::spawn(async move {
                if let Err(e) =
                    oxehr_hl7_listener::run(listener, records, config, shutdown_signal()).await
                {
                    tracing::error!(error = %e, "the MLLP listener stopped");
                }
            });
        }
        let Some((cert, key)) = tls else {
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
            // With port 0 the system picks the port: report and use the real one.
            let addr = listener.local_addr()?;
            api.base_url = configured_base.unwrap_or_else(|| format!("http://{addr}/fhir"));
            tracing::info!(%addr, base_url = %api.base_url, backend = records.backend_name(), tls = false, "oxehr is serving FHIR R4");
            let pages = web(records.clone(), identity.clone(), false, &api.base_url);
            let router = oxehr_api::router(records, api, identity).merge(pages);
            oxehr_api::run(listener, router, shutdown_signal()).await?;
            tracing::info!("oxehr stopped");
            return Ok(());
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
            .await
            .with_context(|| format!("reading the TLS certificate {} and key {}", cert.display(), key.display()))?;
        let listener = std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        api.base_url = configured_base.unwrap_or_else(|| format!("https://{addr}/fhir"));
        tracing::info!(%addr, base_url = %api.base_url, backend = records.backend_name(), tls = true, "oxehr is serving FHIR R4");
        let pages = web(records.clone(), identity.clone(), true, &api.base_url);
        let router = oxehr_api::router(records, api, identity).merge(pages);
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        });
        axum_server::from_tcp_rustls(listener, config)?
            .handle(handle)
            .serve(router.into_make_service_with_connect_info::<SocketAddr>())
            .await?;
        tracing::info!("oxehr stopped");
        Ok(())
    })
}

/// The MLLP address and listener settings, when `--mllp` is given: TLS with the HTTPS
/// certificate when `--mllp-tls`; plain MLLP only on a loopback address unless
/// `--insecure-mllp`.
fn mllp_settings(
    args: &ServeArgs,
    tls: Option<&(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<Option<(SocketAddr, oxehr_hl7_listener::ListenerConfig)>> {
    let Some(mllp) = &args.mllp else {
        if args.mllp_tls {
            bail!("--mllp-tls needs --mllp");
        }
        return Ok(None);
    };
    let addr: SocketAddr = mllp
        .parse()
        .with_context(|| format!("--mllp '{mllp}' is not an address such as 0.0.0.0:2575"))?;
    let mut config = oxehr_hl7_listener::ListenerConfig::default();
    if args.mllp_tls {
        let Some((cert, key)) = tls else {
            bail!("--mllp-tls needs --tls-cert and --tls-key");
        };
        config.tls = Some(crate::secrets::tls_acceptor(cert, key)?);
    } else if !addr.ip().is_loopback() && !args.insecure_mllp {
        bail!(
            "refusing to receive plain MLLP on {addr}, which is not a loopback address: \
             give --mllp-tls, or --insecure-mllp on a trusted network"
        );
    }
    Ok(Some((addr, config)))
}

/// First run: when the store holds no account, creates the system administrator `admin`
/// with a random password written to `<data>/secrets/initial-admin-password` (0600).
/// The log says where the file is, never the password. The administrator signs in with
/// it (enrolling an authenticator) and should change it.
fn first_admin(records: &oxehr_records::Records, data_dir: &std::path::Path) -> Result<()> {
    let store = records.store();
    let any = oxehr_auth::accounts::count(store)
        .map_err(|e| anyhow::anyhow!("reading the accounts: {e}"))?
        > 0;
    if any {
        return Ok(());
    }
    let path = crate::secrets::initial_admin_password_path(data_dir);
    let password = oxehr_auth::token::new_token_id();
    crate::secrets::write_new_secret(&path, &password).with_context(|| {
        format!("the store has no account, and the first administrator's password cannot be written to {}; remove a stale file there", path.display())
    })?;
    oxehr_auth::accounts::add(
        store,
        oxehr_auth::accounts::NewAccount {
            name: "admin".into(),
            role: oxehr_auth::Role::SystemAdmin,
            organization: None,
            person: None,
            password,
            mfa_required: None,
        },
    )?;
    tracing::info!(user = "admin", password_file = %path.display(), "created the first administrator; its password is in the file");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The pages for people, on the same records, identity and FHIR base URL as the FHIR
/// API (the authorization endpoint's `aud` and `iss`).
fn web(
    records: oxehr_records::Records,
    identity: oxehr_auth::Identity,
    tls: bool,
    base_url: &str,
) -> axum::Router {
    oxehr_web::router(
        records,
        std::sync::Arc::new(identity),
        oxehr_web::WebConfig {
            // Behind a proxy that terminates TLS the base URL is https: the browser
            // still reaches the pages over TLS, so the cookies are Secure.
            secure_cookies: tls || base_url.starts_with("https://"),
            base_url: base_url.to_owned(),
        },
    )
}
