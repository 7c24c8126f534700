//! `oxehr serve`: composes store, records and the REST API and serves until Ctrl-C or
//! SIGTERM.

use std::net::SocketAddr;

use anyhow::{Context, Result};
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
    /// Load the bundled demo patients (Synthea) when the record holds no Patient yet.
    #[arg(long)]
    pub demo: bool,
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
    let mut api = ApiConfig::default();
    if let Some(n) = args.max_body_bytes.or(file.max_body_bytes) {
        api.max_body_bytes = n;
    }
    let records = args.storage.open(file)?;
    if args.demo {
        crate::demo::load_if_empty(&records)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        // With port 0 the system picks the port: report and use the real one.
        let addr = listener.local_addr()?;
        api.base_url = configured_base.unwrap_or_else(|| format!("http://{addr}/fhir"));
        tracing::info!(%addr, base_url = %api.base_url, backend = records.store().backend_name(), "oxehr is serving FHIR R4");
        let router = oxehr_api::router(records, api);
        oxehr_api::run(listener, router, shutdown_signal()).await?;
        tracing::info!("oxehr stopped");
        Ok(())
    })
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
