//! Writing an export: the resources of each type, page by page through the search
//! engine under the caller's access, streamed into NDJSON files (one resource per line,
//! as stored), never a whole type in memory.
//!
//! A system-level export reads one type after another. A Patient- or Group-level export
//! reads the patients in chunks and, per chunk, every type of their compartments, so
//! that the patients need not be held either; a file per type stays open meanwhile, and
//! the keys of resources written are remembered to write a resource shared by two
//! patients' records once.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use oxehr_auth::scope::Perm;
use oxehr_auth::Caller;
use oxehr_fhir::{ResourceId, ResourceType};
use oxehr_search::query::{Condition, Filter, Query};
use oxehr_store::access::Access;
use oxehr_store::search::{self as engine, Position};
use oxehr_store::{HistoryScope, Method};
use serde_json::json;

use super::{ExportLevel, ExportRequest};
use crate::{query, HistoryRequest, Records, RecordsError};

/// Patients per chunk of a Patient- or Group-level export.
const PATIENT_CHUNK: usize = 200;

/// One finished NDJSON file.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    /// `output`, `error` or `deleted`.
    pub kind: &'static str,
    pub rtype: String,
    /// Its name inside the export's directory.
    pub name: String,
    pub count: u64,
    /// Patients whose records it holds, sorted.
    pub patients: Vec<String>,
}

/// What the writer tells whoever runs it.
pub trait ExportSink {
    /// A file is complete; `false` stops the export (it was cancelled).
    fn file(&mut self, file: WrittenFile) -> Result<bool, RecordsError>;
    /// Progress in plain words; `false` stops the export.
    fn progress(&mut self, done_types: usize, all_types: usize, resources: u64) -> bool;
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct WriteSettings {
    pub page_size: usize,
    pub max_lines_per_file: u64,
}

/// An open NDJSON file of one type.
struct OpenFile {
    name: String,
    out: std::io::BufWriter<std::fs::File>,
    count: u64,
    patients: BTreeSet<String>,
}

/// The files of one export as they are written.
struct Files<'a> {
    dir: &'a Path,
    settings: &'a WriteSettings,
    open: BTreeMap<String, OpenFile>,
    sink: &'a mut dyn ExportSink,
    written: u64,
    stopped: bool,
}

fn io(e: std::io::Error) -> RecordsError {
    RecordsError::Internal(format!("writing an export file: {e}"))
}

pub(crate) fn new_file_name() -> String {
    format!("{}.ndjson", uuid::Uuid::new_v4().simple())
}

impl Files<'_> {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&mut self, rtype: &str, line: &str, patients: &[String]) -> Result<(), RecordsError> {
        if !self.open.contains_key(rtype) {
            let name = new_file_name();
            let file = std::fs::File::create(self.path(&name)).map_err(io)?;
            self.open.insert(
                rtype.to_owned(),
                OpenFile {
                    name,
                    out: std::io::BufWriter::with_capacity(256 * 1024, file),
                    count: 0,
                    patients: BTreeSet::new(),
                },
            );
        }
        let Some(f) = self.open.get_mut(rtype) else {
            return Ok(());
        };
        f.out.write_all(line.as_bytes()).map_err(io)?;
        f.out.write_all(b"\n").map_err(io)?;
        f.count += 1;
        f.patients.extend(patients.iter().cloned());
        self.written += 1;
        if f.count >= self.settings.max_lines_per_file {
            self.close(rtype)?;
        }
        Ok(())
    }

    /// Finishes the open file of `rtype`, if any.
    fn close(&mut self, rtype: &str) -> Result<(), RecordsError> {
        let Some(mut f) = self.open.remove(rtype) else {
            return Ok(());
        };
        f.out.flush().map_err(io)?;
        f.out.get_ref().sync_all().map_err(io)?;
        let kind = match rtype {
            "OperationOutcome" => "error",
            "Bundle" if f.name.starts_with("deleted-") => "deleted",
            _ => "output",
        };
        let going_on = self.sink.file(WrittenFile {
            kind,
            rtype: rtype.to_owned(),
            name: f.name,
            count: f.count,
            patients: f.patients.into_iter().collect(),
        })?;
        if !going_on {
            self.stopped = true;
        }
        Ok(())
    }

    fn close_all(&mut self) -> Result<(), RecordsError> {
        let types: Vec<String> = self.open.keys().cloned().collect();
        for t in types {
            self.close(&t)?;
        }
        Ok(())
    }
}

/// Whether a type is a member of the Patient compartment.
pub(crate) fn in_patient_compartment(rtype: &str) -> bool {
    oxehr_fhir::Definitions::r4()
        .compartment("Patient")
        .is_some_and(|c| c.contains_key(rtype))
}

impl Records {
    /// The types an export of `req` reads, for `who`: the listed ones (each must be
    /// readable and searchable by the caller: 403 otherwise), or every type the store
    /// holds that the caller may read (system level), or the Patient and the members of
    /// its compartment (Patient and Group level); never AuditEvent.
    pub(crate) fn export_types(
        &self,
        who: &Caller,
        req: &ExportRequest,
    ) -> Result<Vec<String>, RecordsError> {
        let may = |t: &str| who.allows(t, Perm::Read) && who.allows(t, Perm::Search);
        if !req.types.is_empty() {
            for t in &req.types {
                if !may(t) {
                    return Err(crate::policy::forbidden(format!(
                        "the caller may not read {t}"
                    )));
                }
            }
            return Ok(req.types.clone());
        }
        let candidates: Vec<String> = match req.level {
            ExportLevel::System => {
                let mut reader = self.reader()?;
                oxehr_store::jobs::stored_types(&mut *reader)?
            }
            ExportLevel::Patient | ExportLevel::Group(_) => {
                let mut ts: Vec<String> = oxehr_fhir::Definitions::r4()
                    .compartment("Patient")
                    .map(|c| c.keys().cloned().collect())
                    .unwrap_or_default();
                ts.push("Patient".into());
                ts.sort();
                ts.dedup();
                ts
            }
        };
        Ok(candidates
            .into_iter()
            .filter(|t| !crate::audit_view::is_audit_event(t) && may(t))
            .collect())
    }

    /// The queries that read one type: one per `_typeFilter` of the type (or one with
    /// none), each bounded by `_since` and the transaction time.
    fn export_queries(
        req: &ExportRequest,
        rtype: &str,
        transaction_time: i64,
    ) -> Result<Vec<Query>, RecordsError> {
        let mut bounds = vec![(
            "_lastUpdated".to_owned(),
            format!("le{}", crate::format_instant(transaction_time)),
        )];
        if let Some(since) = req.since {
            bounds.push((
                "_lastUpdated".to_owned(),
                format!("gt{}", crate::format_instant(since)),
            ));
        }
        let filters: Vec<&str> = req
            .type_filters
            .iter()
            .filter(|f| f.rtype == rtype)
            .map(|f| f.query.as_str())
            .collect();
        let raw = if filters.is_empty() {
            vec![""]
        } else {
            filters
        };
        raw.into_iter()
            .map(|f| {
                let mut pairs = query::decode_pairs(f);
                pairs.extend(bounds.iter().cloned());
                let mut q = query::parse(&[rtype.to_owned()], &pairs, false, None)?;
                // The key order: stable pages whatever the filter asked for.
                q.sort.clear();
                q.page = None;
                Ok(q)
            })
            .collect()
    }

    /// Writes the NDJSON files of `req` into `dir` as `who`, with resources changed at
    /// or before `transaction_time`. Files are reported to `sink` as they are finished;
    /// the caller's rights on types and its access to records apply as to a search.
    pub fn write_export(
        &self,
        who: &Caller,
        req: &ExportRequest,
        transaction_time: i64,
        dir: &Path,
        settings: &WriteSettings,
        sink: &mut dyn ExportSink,
    ) -> Result<(), RecordsError> {
        let types = self.export_types(who, req)?;
        let access = {
            let mut reader = self.reader()?;
            self.access(who, &mut *reader)?
        };
        let mut files = Files {
            dir,
            settings,
            open: BTreeMap::new(),
            sink,
            written: 0,
            stopped: false,
        };
        if !req.ignored.is_empty() {
            for why in &req.ignored {
                let outcome = json!({"resourceType": "OperationOutcome", "issue": [{
                    "severity": "information", "code": "not-supported",
                    "diagnostics": format!("ignored (lenient handling): {why}")}]});
                files.write("OperationOutcome", &outcome.to_string(), &[])?;
            }
            files.close("OperationOutcome")?;
        }
        let n_types = types.len();
        match &req.level {
            ExportLevel::System => {
                for (i, t) in types.iter().enumerate() {
                    for q in Self::export_queries(req, t, transaction_time)? {
                        self.export_query(who, &access, &q, &mut files, None)?;
                        if files.stopped {
                            return Ok(());
                        }
                    }
                    files.close(t)?;
                    if !files.sink.progress(i + 1, n_types, files.written) {
                        return Ok(());
                    }
                }
            }
            ExportLevel::Patient | ExportLevel::Group(_) => {
                let queries: Vec<(String, Vec<Query>)> = types
                    .iter()
                    .map(|t| Ok((t.clone(), Self::export_queries(req, t, transaction_time)?)))
                    .collect::<Result<_, RecordsError>>()?;
                let mut seen: HashSet<i64> = HashSet::new();
                let mut chunks = self.export_patients(who, &access, req)?;
                while let Some(chunk) = chunks.next_chunk(self)? {
                    let cond: Vec<Condition> = chunk
                        .iter()
                        .map(|p| Condition::InPatientCompartment(p.clone()))
                        .collect();
                    for (_, qs) in &queries {
                        for q in qs {
                            let mut q = q.clone();
                            q.filters.push(Filter {
                                negated: false,
                                any_of: cond.clone(),
                            });
                            self.export_query(who, &access, &q, &mut files, Some(&mut seen))?;
                            if files.stopped {
                                return Ok(());
                            }
                        }
                    }
                    if !files.sink.progress(0, n_types, files.written) {
                        return Ok(());
                    }
                }
                files.close_all()?;
            }
        }
        if let Some(since) = req.since {
            if req.level != ExportLevel::System && !matches!(req.level, ExportLevel::Patient) {
                // Group level: a deleted resource has left its record; whose it was is
                // not known from the index, so no deleted list (docs/bulk.md).
            } else {
                self.export_deleted(who, &types, since, transaction_time, &mut files)?;
            }
        }
        files.close_all()?;
        files.sink.progress(n_types, n_types, files.written);
        Ok(())
    }

    /// Pages through one query, writing each match not written before.
    fn export_query(
        &self,
        who: &Caller,
        access: &Access,
        q: &Query,
        files: &mut Files<'_>,
        mut seen: Option<&mut HashSet<i64>>,
    ) -> Result<(), RecordsError> {
        crate::policy::check_query(who, q)?;
        let page_size = files.settings.page_size.max(1);
        let mut reader = self.reader()?;
        let mut position = Position::First;
        loop {
            let hits = engine::page(&mut *reader, access, q, &position, page_size)?;
            let patients = if who.internal || hits.is_empty() {
                Vec::new()
            } else {
                let rids: Vec<i64> = hits.iter().map(|h| h.rid).collect();
                oxehr_store::access::patients_of(&mut *reader, &rids)?
            };
            let full = hits.len() >= page_size;
            let last = hits.last().map(|h| (h.keys.clone(), h.rid));
            for h in hits {
                if let Some(seen) = seen.as_deref_mut() {
                    if !seen.insert(h.rid) {
                        continue;
                    }
                }
                if let Some(body) = &h.resource.body {
                    files.write(h.resource.rtype.as_str(), body, &patients)?;
                }
            }
            if files.stopped {
                return Ok(());
            }
            match (full, last) {
                (true, Some((keys, rid))) => position = Position::After(keys, rid),
                _ => return Ok(()),
            }
            if !files.sink.progress(0, 0, files.written) {
                files.stopped = true;
                return Ok(());
            }
        }
    }

    /// The patients of a Patient- or Group-level export, in chunks.
    fn export_patients(
        &self,
        who: &Caller,
        access: &Access,
        req: &ExportRequest,
    ) -> Result<PatientChunks, RecordsError> {
        let listed = match &req.level {
            ExportLevel::Group(id) => {
                let members = self.group_members(who, id)?;
                if req.patients.is_empty() {
                    Some(members)
                } else {
                    Some(
                        members
                            .into_iter()
                            .filter(|m| req.patients.contains(m))
                            .collect(),
                    )
                }
            }
            _ if !req.patients.is_empty() => Some(req.patients.clone()),
            _ => None,
        };
        Ok(PatientChunks {
            listed,
            position: Some(Position::First),
            access: access.clone(),
            query: query::parse(&["Patient".to_owned()], &[], false, None)?,
        })
    }

    /// The member Patients of a Group the caller may read (`Group.member.entity`,
    /// members marked inactive left out).
    pub(crate) fn group_members(
        &self,
        who: &Caller,
        id: &str,
    ) -> Result<Vec<String>, RecordsError> {
        let rtype =
            ResourceType::parse("Group").ok_or_else(|| RecordsError::Internal("Group".into()))?;
        let id =
            ResourceId::parse(id).ok_or_else(|| RecordsError::NotFound(format!("Group/{id}")))?;
        let group = self.read(who, &rtype, &id)?;
        let body: serde_json::Value = group
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or_default();
        let mut out: Vec<String> = body
            .get("member")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter(|m| m.get("inactive").and_then(serde_json::Value::as_bool) != Some(true))
            .filter_map(|m| m.pointer("/entity/reference")?.as_str())
            .filter_map(|r| r.rsplit_once("Patient/").map(|(_, id)| id.to_owned()))
            .filter(|id| ResourceId::parse(id).is_some())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The `deleted` files of an export with `_since`: per type, the resources whose
    /// latest version in (`since`, `transaction_time`] is a delete, as transaction
    /// Bundles of DELETE entries (one resource per Bundle), read through type history
    /// under the caller's access (a delete is judged by the record it left).
    fn export_deleted(
        &self,
        who: &Caller,
        types: &[String],
        since: i64,
        transaction_time: i64,
        files: &mut Files<'_>,
    ) -> Result<(), RecordsError> {
        for t in types {
            let Some(rtype) = ResourceType::parse(t) else {
                continue;
            };
            let mut seen: HashSet<String> = HashSet::new();
            let mut offset = 0;
            loop {
                let page = self.history(
                    who,
                    &HistoryRequest {
                        scope: HistoryScope::Type(rtype.clone()),
                        since: Some(since + 1),
                        at: Some(transaction_time),
                        count: files.settings.page_size.max(1),
                        offset,
                    },
                )?;
                for v in &page.entries {
                    // Newest first: the first version seen of a resource is its last.
                    if seen.insert(v.id.as_str().to_owned()) && v.method == Method::Delete {
                        let bundle = json!({"resourceType": "Bundle", "type": "transaction",
                            "entry": [{"request": {"method": "DELETE",
                                "url": format!("{}/{}", v.rtype, v.id)}}]});
                        if !files.open.contains_key("Bundle") {
                            // A deleted file is named so that `close` knows its kind.
                            let name = format!("deleted-{}", new_file_name());
                            let file = std::fs::File::create(files.path(&name)).map_err(io)?;
                            files.open.insert(
                                "Bundle".into(),
                                OpenFile {
                                    name,
                                    out: std::io::BufWriter::new(file),
                                    count: 0,
                                    patients: BTreeSet::new(),
                                },
                            );
                        }
                        files.write("Bundle", &bundle.to_string(), &[])?;
                    }
                }
                match page.next_offset {
                    Some(n) => offset = n,
                    None => break,
                }
            }
        }
        files.close("Bundle")
    }
}

/// The patients of a Patient- or Group-level export, a chunk at a time: the listed ones
/// (a Group's members, `patient`), or every Patient the caller may see, read page by page.
struct PatientChunks {
    listed: Option<Vec<String>>,
    position: Option<Position>,
    access: Access,
    query: Query,
}

impl PatientChunks {
    fn next_chunk(&mut self, records: &Records) -> Result<Option<Vec<String>>, RecordsError> {
        if let Some(listed) = &mut self.listed {
            if listed.is_empty() {
                return Ok(None);
            }
            let n = listed.len().min(PATIENT_CHUNK);
            return Ok(Some(listed.drain(..n).collect()));
        }
        let Some(position) = self.position.take() else {
            return Ok(None);
        };
        let mut reader = records.reader()?;
        let hits = engine::page(
            &mut *reader,
            &self.access,
            &self.query,
            &position,
            PATIENT_CHUNK,
        )?;
        if hits.len() >= PATIENT_CHUNK {
            if let Some(h) = hits.last() {
                self.position = Some(Position::After(h.keys.clone(), h.rid));
            }
        }
        if hits.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            hits.into_iter()
                .map(|h| h.resource.id.as_str().to_owned())
                .collect(),
        ))
    }
}
