//! `oxehr user add|list|disable|enable|reset-password`: account administration from the
//! command line, against the same database the server uses.
//!
//! Passwords are never taken as arguments (they would land in shell history and in the
//! process list): they are read from standard input with `--password-stdin` (first line)
//! or asked for twice on the terminal without echo.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use oxehr_auth::accounts::{self, AccountRow, NewAccount};
use oxehr_auth::Role;
use oxehr_store::Store;

use crate::config::{FileConfig, StorageArgs};

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
    #[command(flatten)]
    pub storage: StorageArgs,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account.
    Add {
        /// Login name (letters, digits, '.', '_', '-', '@').
        name: String,
        /// patient, clinician, nurse, front-desk, org-admin, system-admin or proxy (a
        /// parent, guardian or other person acting for patients: RelatedPersons with
        /// the identifier urn:oxehr:account|<name> say whose records it sees).
        #[arg(long)]
        role: String,
        /// The Organization (its id) the account belongs to; required for staff other
        /// than system admins.
        #[arg(long)]
        organization: Option<String>,
        /// The resource the account stands for: Patient/<id> for a patient (required),
        /// RelatedPerson/<id> for a proxy, Practitioner/<id> or PractitionerRole/<id>
        /// for staff.
        #[arg(long)]
        person: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Do not require an authenticator (TOTP) at login; staff need one by default.
        #[arg(long)]
        no_mfa: bool,
    },
    /// List the accounts.
    List,
    /// Disable an account: it can no longer log in.
    Disable { name: String },
    /// Enable a disabled account again.
    Enable { name: String },
    /// Give the account a new authenticator (TOTP): prints the otpauth:// URI (for a QR
    /// code) and the secret for the person's authenticator app, once. Staff accounts
    /// must have one to sign in (unless created with --no-mfa).
    EnrolMfa { name: String },
    /// Set a new password.
    ResetPassword {
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Also remove the account's authenticator, so it enrols again at next login.
        #[arg(long)]
        reset_mfa: bool,
    },
}

pub fn user(args: UserArgs, file: &FileConfig) -> Result<()> {
    let store = args.storage.open_store(file)?;
    match args.command {
        UserCommand::Add {
            name,
            role,
            organization,
            person,
            password_stdin,
            no_mfa,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!(
                    "unknown role {role:?}; one of: {}",
                    Role::ALL.map(Role::code).join(", ")
                )
            })?;
            let password = read_password(password_stdin)?;
            let row = accounts::add(
                &store,
                NewAccount {
                    name,
                    role,
                    organization,
                    person,
                    password,
                    mfa_required: no_mfa.then_some(false),
                },
            )?;
            println!("added {}", describe(&row));
        }
        UserCommand::List => list(&store)?,
        UserCommand::Disable { name } => {
            let row = accounts::set_disabled(&store, &name, true)?;
            println!("disabled {}", row.name);
        }
        UserCommand::Enable { name } => {
            let row = accounts::set_disabled(&store, &name, false)?;
            println!("enabled {}", row.name);
        }
        UserCommand::EnrolMfa { name } => {
            let key = crate::secrets::secrets_key(&args.storage.data_dir(file))?;
            let (row, secret) = accounts::enrol_mfa(&store, &name, &key)?;
            println!(
                "authenticator of {} replaced; add it to the person's app (shown once):",
                row.name
            );
            println!("{}", secret.otpauth_uri("oxehr", &row.name)?);
            println!("secret (base32): {}", secret.to_base32());
        }
        UserCommand::ResetPassword {
            name,
            password_stdin,
            reset_mfa,
        } => {
            if accounts::get(&store, &name)?.is_none() {
                bail!("no user named {name}");
            }
            let password = read_password(password_stdin)?;
            let row = accounts::reset_password(&store, &name, &password, reset_mfa)?;
            let mfa = if reset_mfa {
                "; authenticator removed"
            } else {
                ""
            };
            println!("password of {} changed{mfa}", row.name);
        }
    }
    Ok(())
}

fn describe(a: &AccountRow) -> String {
    let mut s = format!("{} ({}", a.name, a.role);
    if let Some(o) = &a.organization {
        s.push_str(&format!(", Organization/{o}"));
    }
    if let Some(p) = &a.person {
        s.push_str(&format!(", {p}"));
    }
    s.push(')');
    s
}

fn list(store: &Arc<dyn Store>) -> Result<()> {
    let rows = accounts::list(store)?;
    println!(
        "{:<24} {:<13} {:<24} {:<32} {:<13} status",
        "name", "role", "organization", "person", "mfa"
    );
    for a in &rows {
        let mfa = match (a.mfa_required, a.totp_secret.is_some()) {
            (_, true) => "enrolled",
            (true, false) => "not enrolled",
            (false, false) => "off",
        };
        println!(
            "{:<24} {:<13} {:<24} {:<32} {:<13} {}",
            a.name,
            a.role,
            a.organization.as_deref().unwrap_or("-"),
            a.person.as_deref().unwrap_or("-"),
            mfa,
            if a.disabled { "disabled" } else { "active" }
        );
    }
    println!("{} accounts", rows.len());
    Ok(())
}

/// The new password: the first line of standard input, or asked twice on the terminal.
fn read_password(from_stdin: bool) -> Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let p = line.trim_end_matches(['\r', '\n']).to_owned();
        if p.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for the password: give it with --password-stdin");
    }
    let first = rpassword::prompt_password("New password: ").context("reading the password")?;
    let second = rpassword::prompt_password("Again: ").context("reading the password")?;
    if first != second {
        bail!("the two passwords differ");
    }
    Ok(first)
}
