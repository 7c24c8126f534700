//! `oxehr audit verify`: checks the audit log's hash chain (see `oxehr_records::audit_view::verify`)
//! against the same database the server uses.
//!
//! An intact log prints one line with the record count and the head (its `seq` and the
//! start of its hash) and exits 0: keeping that line somewhere the database's writers
//! cannot reach lets a later run show that the chain was not rewritten since. A damaged
//! log prints each problem (sequence numbers only, never record contents) and exits 1.

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};

use oxehr_records::audit_view;

use crate::config::{FileConfig, StorageArgs};

/// Hex digits of the head's hash printed: enough to compare by eye, short enough for a
/// log line; the full hash is in `audit_head`.
const HASH_PREFIX: usize = 16;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
    #[command(flatten)]
    pub storage: StorageArgs,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that no audit record was altered, removed or reordered; exits 1 if any was.
    Verify,
}

pub fn audit(args: AuditArgs, file: &FileConfig) -> Result<()> {
    let store = args.storage.open_store(file)?;
    match args.command {
        AuditCommand::Verify => {
            let v = audit_view::verify(store.as_ref())
                .map_err(|e| anyhow!("reading the audit log: {e}"))?;
            if v.is_intact() {
                match &v.head {
                    Some(h) => println!(
                        "audit log intact: {} records, head {} {}",
                        v.records,
                        h.seq,
                        h.hash.get(..HASH_PREFIX).unwrap_or(&h.hash)
                    ),
                    None => println!("audit log intact: {} records", v.records),
                }
                return Ok(());
            }
            for p in &v.problems {
                println!("{p}");
            }
            let unlisted = v.problem_count.saturating_sub(v.problems.len() as u64);
            if unlisted > 0 {
                println!("… and {unlisted} more");
            }
            bail!(
                "audit log damaged: {} problems in {} records",
                v.problem_count,
                v.records
            )
        }
    }
}
