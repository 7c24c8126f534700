//! `oxehr reindex`: every current resource's search index rows and Patient compartments
//! written again from its stored body, then the care table worked out again
//! (`Records::reindex`). Run it after an upgrade whose notes say the search parameters
//! or their extraction changed. It may run while the server runs: a resource written
//! meanwhile is indexed by its own write.

use std::io::IsTerminal;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{FileConfig, StorageArgs};

#[derive(Debug, Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
}

pub fn reindex(args: ReindexArgs, file: &FileConfig) -> Result<()> {
    let records = args.storage.open(file)?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} resources read [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let report = records
        .reindex(&mut |read| bar.set_position(read))
        .map_err(|e| anyhow!("reindexing: {e}"))?;
    bar.finish_and_clear();
    println!(
        "reindexed {} resources ({} changed by writes meanwhile, indexed by them); care table rebuilt",
        report.reindexed, report.changed_meanwhile
    );
    if report.failed > 0 {
        for name in &report.failures {
            println!("could not index {name}; its old index rows are kept");
        }
        let unlisted = report.failed - report.failures.len() as u64;
        if unlisted > 0 {
            println!("… and {unlisted} more");
        }
        bail!("{} resources could not be indexed", report.failed);
    }
    Ok(())
}
