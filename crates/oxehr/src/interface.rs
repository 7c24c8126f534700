//! `oxehr interface`: the HL7 v2 interfaces other organizations' systems send through,
//! and the messages waiting in triage.
//!
//! An MLLP connection has no user: a message is accepted only from a registered sending
//! facility (MSH-4), optionally narrowed to one sending application (MSH-3) and one
//! network, and is stored as the interface's organization (see
//! `oxehr_records::exchange`). A message that parsed but could not be stored is kept in
//! triage: `triage` lists them, `reprocess` tries again (after a fix), `dismiss` takes
//! one out without storing it.

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};

use oxehr_records::{format_instant, Caller, Records};
use oxehr_store::inbound::InterfaceRow;

use crate::config::{FileConfig, StorageArgs};

#[derive(Debug, Args)]
pub struct InterfaceArgs {
    #[command(subcommand)]
    pub command: InterfaceCommand,
    #[command(flatten)]
    pub storage: StorageArgs,
}

#[derive(Debug, Subcommand)]
pub enum InterfaceCommand {
    /// Register an interface: messages naming this sending facility are stored as this
    /// organization.
    Add {
        /// A short name for the interface (letters, digits, '-', '_', '.').
        name: String,
        /// The sending facility its messages name in MSH-4 (the namespace id, the
        /// universal id, or the field as sent).
        #[arg(long)]
        facility: String,
        /// Only messages from this sending application (MSH-3).
        #[arg(long)]
        application: Option<String>,
        /// The organization the interface speaks for: `Organization/ID`.
        #[arg(long)]
        organization: String,
        /// Only connections from this network (`10.1.0.0/16`, or one address).
        #[arg(long)]
        from: Option<String>,
    },
    /// List the interfaces.
    List,
    /// List the messages waiting in triage (or show one with --show ID).
    Triage {
        /// Print this message whole.
        #[arg(long)]
        show: Option<String>,
    },
    /// Process messages in triage again: one by id, or --all.
    Reprocess {
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Take a message out of triage without storing it.
    Dismiss { id: String },
}

pub fn interface(args: InterfaceArgs, file: &FileConfig) -> Result<()> {
    let records = args.storage.open(file)?;
    let who = Caller::server();
    match args.command {
        InterfaceCommand::Add {
            name,
            facility,
            application,
            organization,
            from,
        } => {
            let Some(org) = organization.strip_prefix("Organization/") else {
                bail!("--organization takes Organization/ID");
            };
            let row = InterfaceRow {
                id: name.clone(),
                facility,
                application,
                organization: org.to_owned(),
                from_cidr: from,
                active: true,
                created: oxehr_records::now_micros(),
            };
            records
                .add_interface(&who, &row)
                .map_err(|e| anyhow!("cannot add the interface: {e}"))?;
            println!(
                "interface {name} added: messages from {} are stored as Organization/{org}",
                row.facility
            );
        }
        InterfaceCommand::List => {
            for i in records.interfaces(&who)? {
                println!(
                    "{}\tfacility {}\t{}\tOrganization/{}\t{}{}",
                    i.id,
                    i.facility,
                    i.application
                        .as_deref()
                        .map(|a| format!("application {a}"))
                        .unwrap_or_else(|| "any application".into()),
                    i.organization,
                    i.from_cidr
                        .as_deref()
                        .map(|c| format!("from {c}"))
                        .unwrap_or_else(|| "from anywhere".into()),
                    if i.active { "" } else { "\t(inactive)" }
                );
            }
        }
        InterfaceCommand::Triage { show } => triage(&records, &who, show.as_deref())?,
        InterfaceCommand::Reprocess { id, all } => {
            let ids: Vec<String> = match (id, all) {
                (Some(id), false) => vec![id],
                (None, true) => records
                    .triage(&who, usize::MAX)?
                    .into_iter()
                    .map(|r| r.id)
                    .collect(),
                _ => bail!("name one message id, or give --all"),
            };
            let (mut stored, mut held) = (0, 0);
            for id in ids {
                match oxehr_hl7_listener::reprocess(&records, &who, &id)? {
                    oxehr_hl7_listener::Outcome::Stored => {
                        stored += 1;
                        println!("{id}\tstored");
                    }
                    other => {
                        held += 1;
                        println!("{id}\tstill in triage: {}", reason(&other));
                    }
                }
            }
            println!("{stored} stored, {held} still in triage");
        }
        InterfaceCommand::Dismiss { id } => {
            records
                .dismiss(&who, &id)
                .map_err(|e| anyhow!("cannot dismiss {id}: {e}"))?;
            println!("{id} dismissed");
        }
    }
    Ok(())
}

fn triage(records: &Records, who: &Caller, show: Option<&str>) -> Result<()> {
    let held = records.triage(who, usize::MAX)?;
    if let Some(id) = show {
        let m = held
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| anyhow!("no message {id} in triage"))?;
        println!("{}", m.message.replace('\r', "\n"));
        return Ok(());
    }
    if held.is_empty() {
        println!("no message is waiting in triage");
    }
    for m in held {
        println!(
            "{}\t{}\t{}\t{}\tcontrol id {}\t{}",
            m.id,
            format_instant(m.received),
            m.interface,
            m.kind,
            m.control_id,
            m.reason.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

fn reason(o: &oxehr_hl7_listener::Outcome) -> &str {
    use oxehr_hl7_listener::Outcome;
    match o {
        Outcome::Held { reason } | Outcome::Rejected { reason } | Outcome::Failed { reason } => {
            reason
        }
        Outcome::Stored | Outcome::Resent => "",
    }
}
