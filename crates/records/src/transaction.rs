//! `batch` and `transaction` Bundles.
//!
//! A transaction is all or nothing: its entries are planned against one read snapshot in
//! the order the spec gives (DELETE, POST, PUT/PATCH, then GET), `urn:uuid:` and other
//! `fullUrl` references are rewritten to the ids the server assigns, conditional
//! references (`Practitioner?identifier=…`) are resolved to the one resource they match,
//! and every write is committed in one store job that re-checks the plan. A batch runs
//! each entry on its own and reports each outcome.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use oxehr_fhir::{IssueCode, ResourceId, ResourceType, VersionId};
use oxehr_store::{Method, NewVersion, StoredResource};

use oxehr_auth::Caller;

use crate::prepare::{new_id, Incoming};
use crate::query;
use crate::search::{PlanAccess, SearchPage};
use crate::{time_fmt, Guard, Records, RecordsError};
use crate::{DEFAULT_COUNT, MAX_COUNT};

/// Threads that process one batch's entries concurrently.
const BATCH_WORKERS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    Batch,
    Transaction,
}

/// What happened to one entry, in the order of the request bundle's entries.
#[derive(Debug)]
pub enum EntryOutcome {
    Created(StoredResource),
    Updated(StoredResource),
    /// A conditional create matched this existing resource.
    Existing(StoredResource),
    /// A delete (`None`: there was nothing to delete).
    Deleted(Option<StoredResource>),
    Read(StoredResource),
    Searched(SearchPage),
    /// A batch entry that failed; the others went on.
    Failed(RecordsError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verb {
    Delete,
    Post,
    Put,
    Patch,
    Get,
}

#[derive(Debug, Clone)]
enum Target {
    Type(ResourceType, Option<String>),
    Instance(ResourceType, ResourceId),
    Version(ResourceType, ResourceId, VersionId),
}

#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    full_url: Option<String>,
    verb: Verb,
    target: Target,
    resource: Option<Value>,
    if_none_exist: Option<String>,
    if_match: Option<VersionId>,
    /// A PATCH entry's JSON Patch (from its Binary).
    patch: Option<json_patch::Patch>,
}

impl Records {
    /// Processes a `batch` or `transaction` Bundle.
    pub fn bundle(
        &self,
        who: &Caller,
        bundle: Value,
    ) -> Result<(BundleKind, Vec<EntryOutcome>), RecordsError> {
        let Value::Object(mut b) = bundle else {
            return Err(RecordsError::invalid(
                IssueCode::Structure,
                "the body is not a JSON object",
            ));
        };
        if b.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Err(RecordsError::invalid_at(
                IssueCode::Invalid,
                "POST to the base URL takes a Bundle",
                "resourceType",
            ));
        }
        let kind = match b.get("type").and_then(Value::as_str) {
            Some("transaction") => BundleKind::Transaction,
            Some("batch") => BundleKind::Batch,
            _ => {
                return Err(RecordsError::invalid_at(
                    IssueCode::Invalid,
                    "the Bundle type must be batch or transaction",
                    "Bundle.type",
                ))
            }
        };
        let raw_entries = match b.remove("entry") {
            Some(Value::Array(e)) => e,
            None => Vec::new(),
            Some(_) => {
                return Err(RecordsError::invalid_at(
                    IssueCode::Structure,
                    "entry must be an array",
                    "Bundle.entry",
                ))
            }
        };
        check_bundle(&b, &raw_entries)?;
        if raw_entries.len() > self.config.max_bundle_entries {
            return Err(RecordsError::invalid_at(
                IssueCode::TooLong,
                format!(
                    "the Bundle has more than {} entries",
                    self.config.max_bundle_entries
                ),
                "Bundle.entry",
            ));
        }
        match kind {
            BundleKind::Transaction => {
                let entries = raw_entries
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| parse_entry(i, e))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((kind, self.transaction(who, entries, None)?))
            }
            BundleKind::Batch => Ok((kind, self.batch(who, raw_entries))),
        }
    }

    /// A batch's entries have no interdependencies (the spec forbids them), so they are
    /// processed concurrently: each is its own transaction, and the store's group commit
    /// makes one durable commit of the ones that arrive together instead of one each.
    fn batch(&self, who: &Caller, raw_entries: Vec<Value>) -> Vec<EntryOutcome> {
        let n = raw_entries.len();
        let slots: Vec<std::sync::Mutex<Option<Value>>> = raw_entries
            .into_iter()
            .map(|e| std::sync::Mutex::new(Some(e)))
            .collect();
        let outcomes: Vec<std::sync::Mutex<Option<EntryOutcome>>> =
            (0..n).map(|_| std::sync::Mutex::new(None)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = BATCH_WORKERS.min(n).max(1);
        // The workers work for this request: its interrupt stops their reads too.
        let interrupt = oxehr_store::interrupt::current();
        let (next, slots, outcomes_ref) = (&next, &slots, &outcomes);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let interrupt = interrupt.clone();
                scope.spawn(move || {
                    oxehr_store::interrupt::scope(interrupt, || loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let raw = slots[i].lock().ok().and_then(|mut s| s.take());
                        let outcome = match raw.map(|e| parse_entry(i, e)) {
                            Some(Ok(entry)) => self
                                .batch_entry(who, entry)
                                .unwrap_or_else(EntryOutcome::Failed),
                            Some(Err(err)) => EntryOutcome::Failed(err),
                            None => EntryOutcome::Failed(RecordsError::Internal(
                                "entry taken twice".into(),
                            )),
                        };
                        if let Ok(mut slot) = outcomes_ref[i].lock() {
                            *slot = Some(outcome);
                        }
                    })
                });
            }
        });
        outcomes
            .into_iter()
            .map(|m| {
                m.into_inner().ok().flatten().unwrap_or_else(|| {
                    EntryOutcome::Failed(RecordsError::Internal("entry not processed".into()))
                })
            })
            .collect()
    }

    fn batch_entry(&self, who: &Caller, entry: Entry) -> Result<EntryOutcome, RecordsError> {
        let mut resource = entry.resource.clone();
        if let Some(r) = resource.as_mut() {
            let mut cache = HashMap::new();
            let mut plan = PlanAccess::default();
            self.resolve_conditional_references(who, &mut plan, r, &mut cache, entry.index)?;
        }
        match (entry.verb, entry.target) {
            (Verb::Post, Target::Type(rt, None)) => {
                let body = resource.ok_or_else(|| missing_resource(entry.index))?;
                let out = self.create(who, &rt, body, entry.if_none_exist.as_deref())?;
                Ok(if out.existing {
                    EntryOutcome::Existing(out.resource)
                } else {
                    EntryOutcome::Created(out.resource)
                })
            }
            (Verb::Put, Target::Instance(rt, id)) => {
                let body = resource.ok_or_else(|| missing_resource(entry.index))?;
                let out = self.update(who, &rt, &id, body, entry.if_match)?;
                Ok(if out.created {
                    EntryOutcome::Created(out.resource)
                } else {
                    EntryOutcome::Updated(out.resource)
                })
            }
            (Verb::Put, Target::Type(rt, Some(q))) => {
                let body = resource.ok_or_else(|| missing_resource(entry.index))?;
                let out = self.conditional_update(who, &rt, &q, body, entry.if_match)?;
                Ok(if out.created {
                    EntryOutcome::Created(out.resource)
                } else {
                    EntryOutcome::Updated(out.resource)
                })
            }
            (Verb::Patch, Target::Instance(rt, id)) => {
                let patch = entry
                    .patch
                    .as_ref()
                    .ok_or_else(|| missing_resource(entry.index))?;
                let out = self.patch_parsed(who, &rt, &id, patch, entry.if_match)?;
                Ok(EntryOutcome::Updated(out.resource))
            }
            (Verb::Delete, Target::Instance(rt, id)) => {
                Ok(EntryOutcome::Deleted(self.delete(who, &rt, &id)?))
            }
            (Verb::Delete, Target::Type(rt, Some(q))) => Ok(EntryOutcome::Deleted(
                self.conditional_delete(who, &rt, &q)?,
            )),
            (Verb::Get, target) => self.get_entry(who, target),
            _ => Err(RecordsError::Unsupported(format!(
                "entry {}: this method and URL combination",
                entry.index
            ))),
        }
    }

    fn get_entry(&self, who: &Caller, target: Target) -> Result<EntryOutcome, RecordsError> {
        match target {
            Target::Instance(rt, id) => Ok(EntryOutcome::Read(self.read(who, &rt, &id)?)),
            Target::Version(rt, id, v) => Ok(EntryOutcome::Read(self.vread(who, &rt, &id, v)?)),
            Target::Type(rt, q) if crate::audit_view::is_audit_event(rt.as_str()) => {
                let pairs = query::decode_pairs(q.as_deref().unwrap_or(""));
                let q = crate::audit_view::parse(&pairs)?;
                let limit = q.count.unwrap_or(DEFAULT_COUNT).min(MAX_COUNT);
                Ok(EntryOutcome::Searched(
                    self.audit_event_search(who, &q, limit)?,
                ))
            }
            Target::Type(rt, q) => {
                let pairs = query::decode_pairs(q.as_deref().unwrap_or(""));
                let q = query::parse(&[rt.as_str().to_string()], &pairs, false, None)?;
                let limit = q.count.unwrap_or(DEFAULT_COUNT).min(MAX_COUNT);
                Ok(EntryOutcome::Searched(self.search(who, &q, limit)?))
            }
        }
    }

    /// A transaction Bundle from inside records, storing `also` in the same commit (the
    /// inbound message it came from).
    pub(crate) fn transaction_with(
        &self,
        who: &Caller,
        bundle: Value,
        also: crate::Also,
    ) -> Result<Vec<EntryOutcome>, RecordsError> {
        let Value::Object(mut b) = bundle else {
            return Err(RecordsError::Internal(
                "a mapped bundle is not an object".into(),
            ));
        };
        let raw_entries = match b.remove("entry") {
            Some(Value::Array(e)) => e,
            _ => Vec::new(),
        };
        if raw_entries.len() > self.config.max_bundle_entries {
            return Err(RecordsError::invalid_at(
                IssueCode::TooLong,
                format!(
                    "the message has more than {} entries",
                    self.config.max_bundle_entries
                ),
                "Bundle.entry",
            ));
        }
        let entries = raw_entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| parse_entry(i, e))
            .collect::<Result<Vec<_>, _>>()?;
        self.transaction(who, entries, Some(also))
    }

    fn transaction(
        &self,
        who: &Caller,
        entries: Vec<Entry>,
        also: Option<crate::Also>,
    ) -> Result<Vec<EntryOutcome>, RecordsError> {
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| (entries[i].verb, i));
        let mut outcomes =
            self.with_retries(|| self.transaction_once(who, &entries, &order, also.clone()))?;
        // Reads run last and see the transaction's writes. The writes are committed by
        // now, so a read that fails (an unknown id, say) is reported in its own entry
        // rather than failing a transaction that can no longer be undone.
        for &i in &order {
            if entries[i].verb == Verb::Get {
                let outcome = self
                    .get_entry(who, entries[i].target.clone())
                    .unwrap_or_else(EntryOutcome::Failed);
                outcomes[i] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| RecordsError::Internal("entry without outcome".into())))
            .collect()
    }

    fn transaction_once(
        &self,
        who: &Caller,
        entries: &[Entry],
        order: &[usize],
        also: Option<crate::Also>,
    ) -> Result<Vec<Option<EntryOutcome>>, RecordsError> {
        let now = time_fmt::now_micros();
        // No read connection is held across this plan: the conditional matches below take
        // their own from the pool, and a plan holding one while it waits for another
        // deadlocks once as many transactions as the pool has readers do it at once. The
        // commit re-checks every version the plan read.
        let mut outcomes: Vec<Option<EntryOutcome>> = (0..entries.len()).map(|_| None).collect();
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut guards = Vec::new();
        let mut plan = PlanAccess::default();
        // Pass 1: decide the id each entry writes to.
        let mut planned: Vec<(usize, ResourceType, ResourceId)> = Vec::new();
        // The current version of an entry's target where pass 1 already knows it: the
        // one resource a conditional update matched, or none for a new server-assigned
        // id. Pass 2 looks up the others.
        let mut known: HashMap<usize, Option<StoredResource>> = HashMap::new();
        for &i in order {
            let e = &entries[i];
            let (rt, id) = match (e.verb, &e.target) {
                (Verb::Get, _) => continue,
                (Verb::Post, Target::Type(rt, None)) => {
                    if let Some(cond) = &e.if_none_exist {
                        let q = query::parse_query_string(rt, query::strip_type(cond, rt))?;
                        let found = self.find_planned(who, &mut plan, &q, 2)?;
                        match found.len() {
                            0 => guards.push(Guard {
                                query: q,
                                ids: vec![],
                            }),
                            1 => {
                                let existing = found.into_iter().next().ok_or_else(|| {
                                    RecordsError::Internal("match vanished".into())
                                })?;
                                self.check_read(who, &existing)
                                    .map_err(|err| at_entry(i, err))?;
                                if let Some(fu) = &e.full_url {
                                    ids.insert(fu.clone(), format!("{rt}/{}", existing.id));
                                }
                                outcomes[i] = Some(EntryOutcome::Existing(existing));
                                continue;
                            }
                            _ => {
                                return Err(at_entry(
                                    i,
                                    RecordsError::PreconditionFailed(
                                        "ifNoneExist matches more than one resource".into(),
                                    ),
                                ))
                            }
                        }
                    }
                    (rt.clone(), new_id())
                }
                (Verb::Put, Target::Instance(rt, id))
                | (Verb::Patch, Target::Instance(rt, id))
                | (Verb::Delete, Target::Instance(rt, id)) => (rt.clone(), id.clone()),
                (Verb::Put, Target::Type(rt, Some(cond)))
                | (Verb::Delete, Target::Type(rt, Some(cond))) => {
                    let q = query::parse_query_string(rt, cond)?;
                    let mut found = self.find_planned(who, &mut plan, &q, 2)?;
                    guards.push(Guard {
                        query: q,
                        ids: found.iter().map(|r| r.id.clone()).collect(),
                    });
                    match found.len() {
                        0 if e.verb == Verb::Delete => {
                            outcomes[i] = Some(EntryOutcome::Deleted(None));
                            continue;
                        }
                        0 => match body_id(e)? {
                            Some(id) => (rt.clone(), id),
                            None => {
                                known.insert(i, None);
                                (rt.clone(), new_id())
                            }
                        },
                        1 => {
                            let one = found.remove(0);
                            let id = one.id.clone();
                            known.insert(i, Some(one));
                            (rt.clone(), id)
                        }
                        _ => {
                            return Err(at_entry(
                                i,
                                RecordsError::PreconditionFailed(
                                    "the condition matches more than one resource".into(),
                                ),
                            ))
                        }
                    }
                }
                _ => {
                    return Err(at_entry(
                        i,
                        RecordsError::Unsupported(
                            "this method and URL combination in a transaction".into(),
                        ),
                    ))
                }
            };
            if let Some(fu) = &e.full_url {
                ids.insert(fu.clone(), format!("{rt}/{id}"));
            }
            planned.push((i, rt, id));
        }
        // Pass 2: rewrite references, then prepare each version.
        let mut seen = HashSet::new();
        let mut cond_refs = HashMap::new();
        let mut versions: Vec<NewVersion> = Vec::with_capacity(planned.len());
        let mut results: Vec<(usize, bool)> = Vec::with_capacity(planned.len());
        for (i, rt, id) in planned {
            let e = &entries[i];
            if !seen.insert(format!("{rt}/{id}")) {
                return Err(at_entry(
                    i,
                    RecordsError::invalid(
                        IssueCode::Duplicate,
                        "the transaction writes the same resource twice",
                    ),
                ));
            }
            // A POST writes a new, server-assigned id: there is no current version to
            // look up (and a clash would make the put conflict).
            let current = match known.remove(&i) {
                Some(current) => current,
                None if e.verb == Verb::Post => None,
                None => self.reader()?.current(&rt, &id)?,
            };
            if e.verb == Verb::Delete {
                match current {
                    Some(c) if !c.is_deleted() => {
                        versions.push(Records::prepare_delete(&rt, &id, c.version.next(), now));
                        results.push((i, false));
                    }
                    _ => outcomes[i] = Some(EntryOutcome::Deleted(None)),
                }
                continue;
            }
            if e.if_match.is_some() {
                let ok = matches!((&current, e.if_match), (Some(c), Some(v)) if c.version == v && !c.is_deleted());
                if !ok {
                    return Err(at_entry(
                        i,
                        RecordsError::PreconditionFailed(
                            "ifMatch does not name the current version".into(),
                        ),
                    ));
                }
            }
            let mut body = match (&e.patch, &current) {
                // The current version, patched: what a caller may not see is not found,
                // so the patch's `test` operations cannot probe it.
                (Some(patch), Some(c)) if !c.is_deleted() => {
                    self.check_may_patch(who, c)
                        .map_err(|err| at_entry(i, err))?;
                    let mut doc = crate::interactions::parse_body(c)?;
                    crate::patch::apply_patch(&mut doc, patch, self.config.max_resource_bytes)
                        .map_err(|err| at_entry(i, err))?;
                    doc
                }
                (Some(_), _) => {
                    return Err(at_entry(
                        i,
                        RecordsError::NotFound(format!("{rt}/{id} does not exist to patch")),
                    ))
                }
                (None, _) => e.resource.clone().ok_or_else(|| missing_resource(i))?,
            };
            rewrite_references(&mut body, &ids);
            self.resolve_conditional_references(who, &mut plan, &mut body, &mut cond_refs, i)?;
            let incoming = Incoming::new(body, Some(&rt)).map_err(|err| at_entry(i, err))?;
            if matches!(e.verb, Verb::Put | Verb::Patch) {
                if let Some(bid) = incoming.body_id()? {
                    if bid != id {
                        return Err(at_entry(
                            i,
                            RecordsError::invalid(
                                IssueCode::Invalid,
                                "the resource id does not match the entry's request URL",
                            ),
                        ));
                    }
                }
            }
            let (version, method, created) = match (&current, e.verb) {
                (_, Verb::Post) => (VersionId(1), Method::Create, true),
                (None, _) => (VersionId(1), Method::Create, true),
                (Some(c), Verb::Patch) => (c.version.next(), Method::Patch, false),
                (Some(c), _) => (c.version.next(), Method::Update, c.is_deleted()),
            };
            let v = self
                .prepare(incoming, &id, version, method, now)
                .map_err(|err| at_entry(i, err))?;
            versions.push(v);
            results.push((i, created));
        }
        let stored: Vec<StoredResource> = versions.iter().map(|v| v.resource.clone()).collect();
        self.commit_vouched(who, guards, versions, Vec::new(), also)?;
        for ((i, created), r) in results.into_iter().zip(stored) {
            outcomes[i] = Some(match (entries[i].verb, created) {
                (Verb::Delete, _) => EntryOutcome::Deleted(Some(r)),
                (_, true) => EntryOutcome::Created(r),
                (_, false) => EntryOutcome::Updated(r),
            });
        }
        Ok(outcomes)
    }

    /// Replaces every conditional reference (`Type?query`) with the one resource it
    /// matches among those `who` may see; none or several fail the entry (a hidden match
    /// counts as none, so the answer does not tell whether it exists).
    fn resolve_conditional_references(
        &self,
        who: &Caller,
        plan: &mut PlanAccess,
        value: &mut Value,
        cache: &mut HashMap<String, String>,
        entry: usize,
    ) -> Result<(), RecordsError> {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get_mut("reference") {
                    if let Some((ty, q)) = r.split_once('?') {
                        if let Some(resolved) = cache.get(r.as_str()) {
                            *r = resolved.clone();
                        } else {
                            let rt = ResourceType::parse(ty).ok_or_else(|| {
                                at_entry(
                                    entry,
                                    RecordsError::invalid(
                                        IssueCode::Invalid,
                                        "a conditional reference names an unknown type",
                                    ),
                                )
                            })?;
                            let search = query::parse_query_string(&rt, q)
                                .map_err(|e| at_entry(entry, e))?;
                            let found = self.find_planned(who, plan, &search, 2)?;
                            let [one] = found.as_slice() else {
                                return Err(at_entry(
                                    entry,
                                    RecordsError::PreconditionFailed(format!(
                                        "a conditional reference to {rt} matches {} resources, not one",
                                        found.len()
                                    )),
                                ));
                            };
                            let resolved = format!("{rt}/{}", one.id);
                            cache.insert(r.clone(), resolved.clone());
                            *r = resolved;
                        }
                    }
                }
                for v in map.values_mut() {
                    self.resolve_conditional_references(who, plan, v, cache, entry)?;
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.resolve_conditional_references(who, plan, v, cache, entry)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The Bundle itself is valid, like any resource, before its entries are processed: its
/// own elements against the definitions (each entry's resource is validated when it is
/// prepared, so it is left out here), and bdl-7: a `fullUrl` is unique in the Bundle,
/// unless the entries with it carry different `meta.versionId`s.
fn check_bundle(b: &serde_json::Map<String, Value>, entries: &[Value]) -> Result<(), RecordsError> {
    let mut shell = b.clone();
    let shells: Vec<Value> = entries
        .iter()
        .map(|e| match e {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| k.as_str() != "resource")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            other => other.clone(),
        })
        .collect();
    if !shells.is_empty() {
        shell.insert("entry".into(), Value::Array(shells));
    }
    let issues: Vec<_> = oxehr_fhir::validate::validate(&Value::Object(shell))
        .into_iter()
        .filter(|i| i.is_error())
        // An entry that held only its resource is an empty object without it (and is
        // refused for its missing request when it is parsed).
        .filter(|i| {
            !i.expression.iter().any(|x| {
                x.strip_prefix("Bundle.entry[")
                    .and_then(|r| r.strip_suffix(']'))
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .collect();
    if !issues.is_empty() {
        return Err(RecordsError::Invalid(issues));
    }
    let mut seen = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let Some(full_url) = e.get("fullUrl").and_then(Value::as_str) else {
            continue;
        };
        let version = e
            .pointer("/resource/meta/versionId")
            .and_then(Value::as_str);
        if !seen.insert((full_url, version)) {
            return Err(RecordsError::invalid_at(
                IssueCode::Invariant,
                "bdl-7: a fullUrl must be unique in a Bundle (this one is repeated)",
                &format!("Bundle.entry[{i}].fullUrl"),
            ));
        }
    }
    Ok(())
}

/// Rewrites `reference` strings that name another entry's `fullUrl`.
fn rewrite_references(value: &mut Value, ids: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s) if k == "reference" => {
                        if let Some(new) = ids.get(s.as_str()) {
                            *s = new.clone();
                        }
                    }
                    _ => rewrite_references(v, ids),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_references(v, ids)),
        _ => {}
    }
}

fn parse_entry(index: usize, entry: Value) -> Result<Entry, RecordsError> {
    let at = |what: &str| format!("Bundle.entry[{index}]{what}");
    let Value::Object(mut e) = entry else {
        return Err(RecordsError::invalid_at(
            IssueCode::Structure,
            "an entry must be an object",
            &at(""),
        ));
    };
    let request = e.get("request").and_then(Value::as_object).ok_or_else(|| {
        RecordsError::invalid_at(
            IssueCode::Required,
            "the entry has no request",
            &at(".request"),
        )
    })?;
    let verb = match request.get("method").and_then(Value::as_str) {
        Some("GET") | Some("HEAD") => Verb::Get,
        Some("POST") => Verb::Post,
        Some("PUT") => Verb::Put,
        Some("PATCH") => Verb::Patch,
        Some("DELETE") => Verb::Delete,
        _ => {
            return Err(RecordsError::invalid_at(
                IssueCode::Required,
                "request.method must be GET, HEAD, POST, PUT, PATCH or DELETE",
                &at(".request.method"),
            ))
        }
    };
    let url = request.get("url").and_then(Value::as_str).ok_or_else(|| {
        RecordsError::invalid_at(
            IssueCode::Required,
            "the entry has no request.url",
            &at(".request.url"),
        )
    })?;
    let target = parse_target(url).ok_or_else(|| {
        RecordsError::invalid_at(
            IssueCode::Invalid,
            "request.url is not [Type][/id][/_history/vid][?query]",
            &at(".request.url"),
        )
    })?;
    let if_none_exist = request
        .get("ifNoneExist")
        .and_then(Value::as_str)
        .map(str::to_string);
    let if_match = match request.get("ifMatch").and_then(Value::as_str) {
        Some(etag) => Some(parse_etag(etag).ok_or_else(|| {
            RecordsError::invalid_at(
                IssueCode::Invalid,
                "ifMatch is not an ETag W/\"n\"",
                &at(".request.ifMatch"),
            )
        })?),
        None => None,
    };
    if verb != Verb::Get {
        let rtype = match &target {
            Target::Type(rt, _) | Target::Instance(rt, _) | Target::Version(rt, _, _) => rt,
        };
        crate::audit_view::refuse_write(rtype.as_str()).map_err(|e| at_entry(index, e))?;
    }
    let patch = if verb == Verb::Patch {
        if !matches!(target, Target::Instance(..)) {
            return Err(RecordsError::invalid_at(
                IssueCode::NotSupported,
                "a PATCH entry names one resource: Type/id",
                &at(".request.url"),
            ));
        }
        let resource = e.get("resource").ok_or_else(|| missing_resource(index))?;
        Some(crate::patch::patch_of_binary(resource).map_err(|err| at_entry(index, err))?)
    } else {
        None
    };
    Ok(Entry {
        index,
        full_url: e.get("fullUrl").and_then(Value::as_str).map(str::to_string),
        verb,
        target,
        resource: e.remove("resource"),
        if_none_exist,
        if_match,
        patch,
    })
}

fn parse_target(url: &str) -> Option<Target> {
    let url = url.trim_start_matches('/');
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (url, None),
    };
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rt = ResourceType::parse(parts.first()?)?;
    match parts.as_slice() {
        [_] => Some(Target::Type(rt, query)),
        [_, id] if query.is_none() => Some(Target::Instance(rt, ResourceId::parse(id)?)),
        [_, id, "_history", v] if query.is_none() => Some(Target::Version(
            rt,
            ResourceId::parse(id)?,
            VersionId::parse(v)?,
        )),
        _ => None,
    }
}

/// `W/"3"` or `"3"` or `3` → version 3.
pub fn parse_etag(etag: &str) -> Option<VersionId> {
    let e = etag.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    VersionId::parse(e.trim_matches('"'))
}

fn body_id(e: &Entry) -> Result<Option<ResourceId>, RecordsError> {
    match e.resource.as_ref().and_then(|r| r.get("id")) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(ResourceId::parse(s)),
        Some(_) => Err(at_entry(
            e.index,
            RecordsError::invalid(IssueCode::Value, "id must be a string"),
        )),
    }
}

fn missing_resource(i: usize) -> RecordsError {
    RecordsError::invalid_at(
        IssueCode::Required,
        "the entry needs a resource",
        &format!("Bundle.entry[{i}].resource"),
    )
}

/// Points an entry's error at the entry: issue locations become `Bundle.entry[i].resource…`.
fn at_entry(i: usize, e: RecordsError) -> RecordsError {
    match e {
        RecordsError::Invalid(mut issues) => {
            for issue in &mut issues {
                if issue.expression.is_empty() {
                    issue.expression.push(format!("Bundle.entry[{i}]"));
                } else {
                    for x in &mut issue.expression {
                        // `Patient.name[0]` inside entry i is `Bundle.entry[i].resource.name[0]`.
                        *x = match x.split_once('.') {
                            Some((_, rest)) => format!("Bundle.entry[{i}].resource.{rest}"),
                            None => format!("Bundle.entry[{i}].resource"),
                        };
                    }
                }
            }
            RecordsError::Invalid(issues)
        }
        RecordsError::PreconditionFailed(m) => {
            RecordsError::PreconditionFailed(format!("Bundle.entry[{i}]: {m}"))
        }
        RecordsError::Unsupported(m) => {
            RecordsError::Unsupported(format!("Bundle.entry[{i}]: {m}"))
        }
        RecordsError::NotAllowed(m) => RecordsError::NotAllowed(format!("Bundle.entry[{i}]: {m}")),
        other => other,
    }
}
