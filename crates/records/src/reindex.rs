//! Reindexing: every current resource's index entries and compartments worked out again
//! from its stored body, and the tables derived from them (the care table) with them,
//! storing no new version. For after an upgrade that changed the search parameters or
//! how values are extracted (`oxehr reindex`, docs/operations.md).
//!
//! It pages through the record by `rid`, a page per transaction, so it can run while
//! the server writes: a resource written meanwhile was indexed by its own write, and its
//! page's `reindex` answers `Conflict` for it, which counts as done.

use oxehr_store::{NewVersion, StoreError, StoredResource};

use crate::{Records, RecordsError};

/// What a reindex did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReindexReport {
    /// Current resources whose index rows were written again.
    pub reindexed: u64,
    /// Current resources a write changed while the reindex ran (indexed by that write).
    pub changed_meanwhile: u64,
    /// Stored bodies that could not be indexed (unreadable JSON, or values the index
    /// refuses); their old rows are kept. Each is named in `failures`, at most 100.
    pub failed: u64,
    pub failures: Vec<String>,
}

/// Resources per page (one read and one write transaction each).
const PAGE: usize = 500;
/// Failures named in the report.
const MAX_NAMED: usize = 100;

impl Records {
    /// Writes every current resource's index rows and compartments again from its body,
    /// then works the care table out again. `progress` is told the number of resources
    /// read so far after each page.
    pub fn reindex(&self, progress: &mut dyn FnMut(u64)) -> Result<ReindexReport, RecordsError> {
        let mut report = ReindexReport::default();
        let mut after = 0i64;
        let mut read = 0u64;
        loop {
            let page = {
                let mut reader = self.reader()?;
                oxehr_store::current_resources(&mut *reader, after, PAGE)?
            };
            let Some((last, _)) = page.last() else {
                break;
            };
            after = *last;
            read += page.len() as u64;
            let mut versions = Vec::with_capacity(page.len());
            for (_, r) in page {
                match version_of(r) {
                    Ok(v) => versions.push(v),
                    Err(name) => {
                        report.failed += 1;
                        if report.failures.len() < MAX_NAMED {
                            report.failures.push(name);
                        }
                    }
                }
            }
            let (done, changed) = self
                .store
                .write(Box::new(move |tx| {
                    let (mut done, mut changed) = (0u64, 0u64);
                    for v in &versions {
                        match tx.reindex(v) {
                            Ok(()) => done += 1,
                            Err(StoreError::Conflict) => changed += 1,
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(Box::new((done, changed)))
                }))
                .map_err(RecordsError::from)
                .and_then(|out| {
                    out.downcast::<(u64, u64)>().map(|b| *b).map_err(|_| {
                        RecordsError::Internal("reindex: unexpected job output".into())
                    })
                })?;
            report.reindexed += done;
            report.changed_meanwhile += changed;
            progress(read);
        }
        self.store.write(Box::new(|tx| {
            oxehr_store::care::rebuild(tx)?;
            Ok(Box::new(()))
        }))?;
        Ok(report)
    }
}

/// The version to index again: the stored one with its entries worked out anew; on
/// failure, `Type/id` (never the body).
fn version_of(r: StoredResource) -> Result<NewVersion, String> {
    let name = format!("{}/{}", r.rtype, r.id);
    let value: serde_json::Value = r
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .ok_or_else(|| name.clone())?;
    let (index, compartments) =
        crate::prepare::index_of(&r.rtype, &r.id, &value).map_err(|_| name.clone())?;
    Ok(NewVersion {
        resource: r,
        index,
        compartments,
    })
}
