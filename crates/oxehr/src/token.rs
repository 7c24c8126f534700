//! `oxehr token issue --user NAME [--scope …] [--ttl …]`: prints a bearer access token for
//! scripts and tests, signed with the server's key (`secrets`), for an enabled account.
//!
//! The token's issuer and audience are the configured base URL (`--base-url`,
//! `OXEHR_BASE_URL`, `base_url` in the file) or `oxehr` when none is configured; the
//! server verifies them the same way.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use oxehr_auth::scope::Scope;
use oxehr_auth::token::{self, Claims};
use oxehr_auth::{accounts, oauth, parse_scopes, Role};

use crate::config::{FileConfig, StorageArgs};

/// Longest lifetime `token issue` grants.
const MAX_TTL_SECS: u64 = 30 * 86_400;

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The FHIR base URL clients see; the token's issuer and audience.
    #[arg(long, env = "OXEHR_BASE_URL", global = true)]
    pub base_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print an access token for an account.
    Issue {
        /// The account's name.
        #[arg(long)]
        user: String,
        /// Space-separated SMART scopes (default: patient/*.rs for a patient,
        /// user/*.cruds for staff).
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime: 900, 15m, 8h, 30d (default 1h, at most 30d).
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
}

/// The issuer and audience of this deployment's tokens.
pub fn token_issuer(base_url: Option<&str>) -> String {
    base_url.unwrap_or("oxehr").trim_end_matches('/').to_owned()
}

pub fn token(args: TokenArgs, file: &FileConfig) -> Result<()> {
    let TokenCommand::Issue { user, scope, ttl } = args.command;
    let ttl = token::parse_ttl(&ttl)?;
    if ttl > MAX_TTL_SECS {
        bail!("--ttl is at most 30d");
    }
    let store = args.storage.open_store(file)?;
    let Some(account) = accounts::get(&store, &user)? else {
        bail!("no user named {user}");
    };
    if account.disabled {
        bail!("the account {} is disabled", account.name);
    }
    let role = Role::parse(&account.role)
        .ok_or_else(|| anyhow::anyhow!("the account {} has an unknown role", account.name))?;
    let scope = scope.unwrap_or_else(|| {
        if matches!(role, Role::Patient | Role::Proxy) {
            "patient/*.rs".into()
        } else {
            "user/*.cruds".into()
        }
    });
    let scopes = parse_scopes(&scope)?;
    if scopes.is_empty() {
        bail!("--scope is empty");
    }
    for s in &scopes {
        if let Scope::Resource(r) = s {
            if !oauth::role_may_hold(role, r) {
                bail!(
                    "a {role} account cannot be given {}/ scopes",
                    r.context.code()
                );
            }
        }
    }
    let patient = accounts::own_patient(&account);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let issuer = token_issuer(args.base_url.as_deref().or(file.base_url.as_deref()));
    let claims = Claims {
        iss: issuer.clone(),
        sub: account.name.clone(),
        aud: issuer,
        iat: now,
        exp: now + ttl,
        jti: token::new_token_id(),
        scope: scopes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        role: role.code().to_owned(),
        org: account.organization.clone(),
        fhir_user: account.person.clone(),
        patient,
    };
    let key = crate::secrets::token_signing_key(&args.storage.data_dir(file))?;
    println!("{}", token::issue(&key, &claims)?);
    Ok(())
}
