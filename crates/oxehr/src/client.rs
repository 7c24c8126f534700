//! `oxehr client add|list|disable|enable`: registering the OAuth clients of the SMART
//! authorization server, against the same database the server uses.
//!
//! - A **public** client is a SMART app a person signs in to (authorization code with
//!   PKCE, no secret): `oxehr client add --name "Growth chart" --redirect-uri
//!   https://app.example/callback`.
//! - A **backend** service signs a JWT with its private key to get a token with
//!   `system/` scopes: `oxehr client add --name "Lab sync" --backend --jwks keys.json
//!   --scope 'system/Observation.rs'`; `keys.json` is its public JSON Web Key Set (RSA
//!   for RS384 or EC P-384 for ES384).

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use oxehr_auth::clients::{self, ClientRow};
use oxehr_auth::oauth;
use oxehr_auth::scope::{Context as ScopeContext, Scope};
use oxehr_store::Store;

use crate::config::{FileConfig, StorageArgs};

#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(subcommand)]
    pub command: ClientCommand,
    #[command(flatten)]
    pub storage: StorageArgs,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client: a public SMART app (the default) or, with --backend, a
    /// backend service.
    Add {
        /// A name shown to people on the consent page.
        #[arg(long)]
        name: String,
        /// Where the app receives the code (exact match); repeat for several. Public
        /// clients only.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A public client: a SMART app without a secret (the default).
        #[arg(long, conflicts_with = "backend")]
        public: bool,
        /// A backend service, authenticated by a JWT signed with a key of --jwks.
        #[arg(long, requires = "jwks")]
        backend: bool,
        /// The backend service's public keys: a JSON Web Key Set file.
        #[arg(long, requires = "backend")]
        jwks: Option<std::path::PathBuf>,
        /// The scopes the client may be granted, space-separated: system/ scopes for a
        /// backend service (required); for a public client, a limit on what users may
        /// grant it (default: no limit beyond the user's own).
        #[arg(long)]
        scope: Option<String>,
        /// The client id (default: a random one).
        #[arg(long)]
        client_id: Option<String>,
    },
    /// List the clients.
    List,
    /// Disable a client: it gets no more tokens, and its backend tokens stop working.
    Disable { client_id: String },
    /// Enable a disabled client again.
    Enable { client_id: String },
}

pub fn client(args: ClientArgs, file: &FileConfig) -> Result<()> {
    let store = args.storage.open_store(file)?;
    match args.command {
        ClientCommand::Add {
            name,
            redirect_uris,
            public: _,
            backend,
            jwks,
            scope,
            client_id,
        } => {
            let row = new_client(name, redirect_uris, backend, jwks, scope, client_id)?;
            let row = clients::add(&store, row)?;
            println!("added {} client {} ({})", row.kind, row.client_id, row.name);
        }
        ClientCommand::List => list(&store)?,
        ClientCommand::Disable { client_id } => set_disabled(&store, client_id, true)?,
        ClientCommand::Enable { client_id } => set_disabled(&store, client_id, false)?,
    }
    Ok(())
}

/// The row for `client add`, with every rule checked.
fn new_client(
    name: String,
    redirect_uris: Vec<String>,
    backend: bool,
    jwks: Option<std::path::PathBuf>,
    scope: Option<String>,
    client_id: Option<String>,
) -> Result<ClientRow> {
    let name = name.trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        bail!("--name is 1 to 200 characters");
    }
    let client_id = client_id.unwrap_or_else(oxehr_auth::token::new_token_id);
    oauth::check_client_id(&client_id)?;
    let scope = scope.unwrap_or_default();
    let scopes = oxehr_auth::parse_scopes(&scope)?;
    let system_only = scopes
        .iter()
        .all(|s| matches!(s, Scope::Resource(r) if r.context == ScopeContext::System));
    let (kind, jwks) = if backend {
        if !redirect_uris.is_empty() {
            bail!("a backend service has no --redirect-uri");
        }
        if scopes.is_empty() || !system_only {
            bail!("a backend service needs --scope with system/ scopes only, e.g. 'system/Observation.rs'");
        }
        let path = jwks.context("a backend service needs --jwks FILE")?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let keys =
            oauth::check_client_jwks(&text).with_context(|| format!("{}", path.display()))?;
        println!("{keys} usable key(s) in {}", path.display());
        ("backend", Some(text))
    } else {
        if redirect_uris.is_empty() {
            bail!("a public client needs at least one --redirect-uri");
        }
        for uri in &redirect_uris {
            oauth::check_redirect_uri(uri)?;
        }
        if scopes
            .iter()
            .any(|s| matches!(s, Scope::Resource(r) if r.context == ScopeContext::System))
        {
            bail!("system/ scopes are for backend services (--backend)");
        }
        ("public", None)
    };
    Ok(ClientRow {
        client_id,
        name,
        kind: kind.into(),
        redirect_uris: serde_json::to_string(&redirect_uris)?,
        jwks,
        scope: scopes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        disabled: false,
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            .try_into()?,
    })
}

fn set_disabled(store: &Arc<dyn Store>, client_id: String, disabled: bool) -> Result<()> {
    clients::set_disabled(store, &client_id, disabled)?;
    println!(
        "{} client {client_id}",
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(())
}

fn list(store: &Arc<dyn Store>) -> Result<()> {
    let clients = clients::list(store)?;
    println!(
        "{:<34} {:<8} {:<8} {:<24} redirect URIs / scopes",
        "client id", "kind", "status", "name"
    );
    for c in &clients {
        let uris: Vec<String> = serde_json::from_str(&c.redirect_uris).unwrap_or_default();
        let detail = match (c.kind.as_str(), c.scope.is_empty()) {
            ("backend", _) => c.scope.clone(),
            (_, true) => uris.join(" "),
            (_, false) => format!("{} [{}]", uris.join(" "), c.scope),
        };
        println!(
            "{:<34} {:<8} {:<8} {:<24} {detail}",
            c.client_id,
            c.kind,
            if c.disabled { "disabled" } else { "active" },
            c.name,
        );
    }
    println!("{} clients", clients.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_rules() {
        let public = |uris: &[&str], scope: Option<&str>| {
            new_client(
                "App".into(),
                uris.iter().map(|s| s.to_string()).collect(),
                false,
                None,
                scope.map(str::to_owned),
                Some("app".into()),
            )
        };
        let row = public(&["https://app.example/cb"], Some("patient/*.read")).expect("public");
        assert_eq!(
            (
                row.kind.as_str(),
                row.redirect_uris.as_str(),
                row.scope.as_str()
            ),
            ("public", r#"["https://app.example/cb"]"#, "patient/*.rs")
        );
        assert!(public(&[], None).is_err(), "needs a redirect URI");
        assert!(
            public(&["http://app.example/cb"], None).is_err(),
            "plain http"
        );
        assert!(public(&["https://app.example/cb"], Some("system/*.rs")).is_err());
        let backend = |scope: &str, uris: Vec<String>| {
            new_client(
                "Svc".into(),
                uris,
                true,
                Some("/nonexistent/keys.json".into()),
                Some(scope.into()),
                None,
            )
        };
        assert!(backend("user/*.rs", vec![]).is_err(), "system/ only");
        assert!(backend("system/*.rs", vec!["https://x.example/cb".into()]).is_err());
        let e = backend("system/*.rs", vec![]).expect_err("no such file");
        assert!(format!("{e:#}").contains("keys.json"), "{e:#}");
    }
}
