//! The search interaction: one page of matches of a parsed [`Query`], in its sort order,
//! with the total, the resources `_include`/`_revinclude` bring, and opaque positions
//! of the next and previous pages.
//!
//! A page token is the position of the last (or first) row of a page: its sort key
//! values and resource key, base64url-encoded JSON. The next page is the rows after
//! that position, read fresh: nothing is cached, so a page never shows a resource as it
//! was before a later write, and rows that stay in place are neither skipped nor
//! repeated while others write.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oxehr_auth::scope::Perm;
use oxehr_auth::Caller;
use oxehr_fhir::IssueCode;
use oxehr_search::query::{Include, Query, Total};
use oxehr_store::access::Access;
use oxehr_store::search::{self as engine, Hit, Position, SqlValue};
use oxehr_store::{ReadTx, StoredResource};
use serde_json::Value;

use crate::{Records, RecordsError};

/// Most resources `_include`/`_revinclude` add to one page.
pub const MAX_INCLUDED: usize = 1000;
/// Rounds of `:iterate` includes.
const MAX_ITERATIONS: usize = 4;

/// Up to this many matches, every search's `total` is exact; above it, a search that did
/// not ask for `_total=accurate` gets an estimate (see `estimated_total`).
pub const EXACT_TOTAL_UP_TO: u64 = 1000;

#[derive(Debug, Clone)]
pub struct SearchPage {
    pub matches: Vec<StoredResource>,
    /// Resources added by `_include` / `_revinclude` (not counted in `total`).
    pub included: Vec<StoredResource>,
    /// `None` with `_total=none`.
    pub total: Option<u64>,
    /// Token of the next page, if there is one.
    pub next: Option<String>,
    /// Token of the previous page, if there is one.
    pub previous: Option<String>,
    /// Unknown parameters ignored under lenient handling.
    pub ignored: Vec<String>,
    /// Whether the includes were cut at [`MAX_INCLUDED`].
    pub includes_truncated: bool,
}

fn bad_token() -> RecordsError {
    RecordsError::invalid(
        IssueCode::Invalid,
        "_page: not a page of this search (follow the links of a search result)",
    )
}

/// Encodes a position as a page token: `["a"|"b", rid, key…]`.
pub fn encode_position(before: bool, keys: &[SqlValue], rid: i64) -> String {
    let mut arr = vec![
        Value::from(if before { "b" } else { "a" }),
        Value::from(rid),
    ];
    arr.extend(keys.iter().map(|k| match k {
        SqlValue::Null => Value::Null,
        SqlValue::Int(i) => Value::from(*i),
        SqlValue::Real(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        SqlValue::Text(t) => Value::from(t.as_str()),
    }));
    URL_SAFE_NO_PAD.encode(Value::Array(arr).to_string())
}

/// Decodes a page token of a query with `n_keys` sort keys.
pub fn decode_position(token: &str, n_keys: usize) -> Result<Position, RecordsError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| bad_token())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad_token())?;
    let arr = v.as_array().ok_or_else(bad_token)?;
    if arr.len() != n_keys + 2 {
        return Err(bad_token());
    }
    let rid = arr[1].as_i64().ok_or_else(bad_token)?;
    let keys = arr[2..]
        .iter()
        .map(|k| match k {
            Value::Null => Ok(SqlValue::Null),
            Value::String(s) => Ok(SqlValue::Text(s.clone())),
            Value::Number(n) => match n.as_i64() {
                Some(i) if !n.to_string().contains(['.', 'e', 'E']) => Ok(SqlValue::Int(i)),
                _ => n.as_f64().map(SqlValue::Real).ok_or_else(bad_token),
            },
            _ => Err(bad_token()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    match arr[0].as_str() {
        Some("a") => Ok(Position::After(keys, rid)),
        Some("b") => Ok(Position::Before(keys, rid)),
        _ => Err(bad_token()),
    }
}

impl Records {
    /// One page of `q`: at most `limit` matches (0: only the total).
    ///
    /// Only what `who` may see: the caller's rights on every type the query reads, and
    /// its [`Access`] on every resource the statement reads (matches, total, chain
    /// targets, `_has` sources, includes).
    pub fn search(
        &self,
        who: &Caller,
        q: &Query,
        limit: usize,
    ) -> Result<SearchPage, RecordsError> {
        let what = if q.types.is_empty() {
            "*".to_owned()
        } else {
            q.types.join(",")
        };
        let res = self.search_inner(who, q, limit);
        self.audited(who, "search", what, res)
    }

    pub(crate) fn search_inner(
        &self,
        who: &Caller,
        q: &Query,
        limit: usize,
    ) -> Result<(SearchPage, Vec<String>), RecordsError> {
        if q.types.iter().any(|t| crate::audit_view::is_audit_event(t)) {
            return Err(RecordsError::invalid(
                IssueCode::NotSupported,
                "AuditEvent is the audit trail, searched on its own: AuditEvent?patient=…",
            ));
        }
        let q = &*crate::policy::authorized_query(who, q)?;
        let position = match &q.page {
            Some(t) => decode_position(t, q.sort.len())?,
            None => Position::First,
        };
        let mut reader = self.reader()?;
        let tx: &mut dyn ReadTx = &mut *reader;
        let access = self.access(who, tx)?;
        let access = &access;
        let want_total = q.total != Total::None;
        let (mut hits, mut next, mut previous, mut total) = (Vec::new(), None, None, None);
        if limit == 0 {
            if want_total {
                total = Some(engine::count(tx, access, q)?);
            }
        } else {
            match q.total {
                Total::Accurate => {
                    let (h, n) = engine::page_and_total(tx, access, q, &position, limit + 1)?;
                    (hits, total) = (h, Some(n));
                }
                Total::Estimate => {
                    hits = engine::page(tx, access, q, &position, limit + 1)?;
                    total = Some(estimated_total(
                        tx,
                        access,
                        q,
                        &position,
                        hits.len(),
                        limit,
                    )?);
                }
                Total::None => hits = engine::page(tx, access, q, &position, limit + 1)?,
            }
            let more = hits.len() > limit;
            match position {
                Position::Before(..) => {
                    if more {
                        hits.remove(0);
                    }
                    next = hits.last().map(|h| encode_position(false, &h.keys, h.rid));
                    if more {
                        previous = hits.first().map(|h| encode_position(true, &h.keys, h.rid));
                    }
                }
                Position::First | Position::After(..) => {
                    hits.truncate(limit);
                    if more {
                        next = hits.last().map(|h| encode_position(false, &h.keys, h.rid));
                    }
                    if position != Position::First {
                        previous = hits.first().map(|h| encode_position(true, &h.keys, h.rid));
                    }
                }
            }
        }
        let (included, included_rids, includes_truncated) = includes(tx, who, access, q, &hits)?;
        let patients = if who.internal {
            Vec::new()
        } else {
            let rids: Vec<i64> = hits.iter().map(|h| h.rid).chain(included_rids).collect();
            oxehr_store::access::patients_of(tx, &rids)?
        };
        let page = SearchPage {
            matches: hits.into_iter().map(|h| h.resource).collect(),
            included,
            total,
            next,
            previous,
            ignored: q.ignored.clone(),
            includes_truncated,
        };
        Ok((page, patients))
    }

    /// Up to `limit` current resources matching a conditional query (`If-None-Exist`,
    /// conditional update and delete, a conditional reference), among those `who` may
    /// see: the same rights on the types the query reads and the same visibility rule as
    /// a search, so a record the caller may not see is indistinguishable from no record.
    pub(crate) fn find(
        &self,
        who: &Caller,
        q: &Query,
        limit: usize,
    ) -> Result<Vec<StoredResource>, RecordsError> {
        self.find_planned(who, &mut PlanAccess::default(), q, limit)
    }

    /// [`find`](Self::find) for one of the matches of a plan, with the caller's access
    /// read at the plan's first match.
    pub(crate) fn find_planned(
        &self,
        who: &Caller,
        plan: &mut PlanAccess,
        q: &Query,
        limit: usize,
    ) -> Result<Vec<StoredResource>, RecordsError> {
        crate::policy::check_query(who, q)?;
        let mut reader = self.reader()?;
        let access = match plan.0 {
            Some(ref access) => access,
            None => plan.0.insert(self.access(who, &mut *reader)?),
        };
        Ok(
            engine::page(&mut *reader, access, q, &Position::First, limit)?
                .into_iter()
                .map(|h| h.resource)
                .collect(),
        )
    }
}

/// The `total` of a search that did not ask for an accurate one (`_total=estimate`, or no
/// `_total`): exact up to [`EXACT_TOTAL_UP_TO`] matches, which a first page that holds
/// every match already tells and a count that stops there tells otherwise; above it,
/// [`engine::estimate`]'s count of the driving condition's index rows (never fewer than
/// the matches), or, where that is not given (the caller's access hides records, no
/// condition drives), the exact count. `found` is the page's rows read with `limit + 1`.
fn estimated_total(
    tx: &mut dyn ReadTx,
    access: &Access,
    q: &Query,
    position: &Position,
    found: usize,
    limit: usize,
) -> Result<u64, RecordsError> {
    if *position == Position::First && found <= limit {
        return Ok(found as u64);
    }
    let counted = engine::count_up_to(tx, access, q, EXACT_TOTAL_UP_TO)?;
    if counted <= EXACT_TOTAL_UP_TO {
        return Ok(counted);
    }
    Ok(match engine::estimate(tx, access, q)? {
        Some(n) => n.max(counted),
        None => engine::count(tx, access, q)?,
    })
}

/// The caller's access as the matches of one plan see it (a transaction's conditional
/// entries and references): read once, at the first match, rather than at each. The
/// plan is advisory: the commit runs its matches again, as guards, with the access read
/// inside its own transaction.
#[derive(Default)]
pub(crate) struct PlanAccess(Option<Access>);

/// The resources `_include` and `_revinclude` add to a page, iterating where asked.
fn includes(
    tx: &mut dyn ReadTx,
    who: &Caller,
    access: &Access,
    q: &Query,
    hits: &[Hit],
) -> Result<(Vec<StoredResource>, Vec<i64>, bool), RecordsError> {
    if hits.is_empty() || (q.include.is_empty() && q.revinclude.is_empty()) {
        return Ok((Vec::new(), Vec::new(), false));
    }
    let mut rids = Vec::new();
    let mut seen: HashSet<i64> = hits.iter().map(|h| h.rid).collect();
    let mut out: Vec<StoredResource> = Vec::new();
    // The resources the current round starts from.
    let mut frontier: Vec<(i64, StoredResource)> =
        hits.iter().map(|h| (h.rid, h.resource.clone())).collect();
    for round in 0..=MAX_ITERATIONS {
        let active = |i: &&Include| round == 0 || i.iterate;
        let mut found: Vec<(i64, StoredResource)> = Vec::new();
        for inc in q.include.iter().filter(active) {
            let rids: Vec<i64> = frontier
                .iter()
                .filter(|(_, r)| r.rtype.as_str() == inc.source_type)
                .map(|(rid, _)| *rid)
                .collect();
            found.extend(engine::included(
                tx,
                access,
                &rids,
                &inc.params,
                inc.target_type.as_deref(),
            )?);
        }
        for inc in q.revinclude.iter().filter(active) {
            let targets: Vec<(String, String)> = frontier
                .iter()
                .filter(|(_, r)| {
                    inc.target_type
                        .as_deref()
                        .is_none_or(|t| r.rtype.as_str() == t)
                })
                .map(|(_, r)| (r.rtype.as_str().to_string(), r.id.as_str().to_string()))
                .collect();
            found.extend(engine::revincluded(tx, access, &targets, &inc.params)?);
        }
        frontier.clear();
        // A resource the caller may not read is left out (as if not referenced): of a
        // type it may not read, or not matching the scopes that narrow its type.
        let readable = readable_of(tx, who, access, &found)?;
        for (rid, r) in found {
            if !readable.contains(&(r.rtype.as_str().to_owned(), r.id.as_str().to_owned())) {
                continue;
            }
            if seen.insert(rid) {
                if out.len() >= MAX_INCLUDED {
                    return Ok((out, rids, true));
                }
                rids.push(rid);
                out.push(r.clone());
                frontier.push((rid, r));
            }
        }
        let iterating = q.include.iter().chain(&q.revinclude).any(|i| i.iterate);
        if frontier.is_empty() || !iterating {
            break;
        }
    }
    Ok((out, rids, false))
}

/// The (type, id) of the resources among `found` that `who` may read: of a type it
/// reads whole, or passing the scopes that narrow the type.
fn readable_of(
    tx: &mut dyn ReadTx,
    who: &Caller,
    access: &Access,
    found: &[(i64, StoredResource)],
) -> Result<HashSet<(String, String)>, RecordsError> {
    let mut types: Vec<&str> = found.iter().map(|(_, r)| r.rtype.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    let mut readable = HashSet::new();
    for rtype in types {
        let Ok(narrowing) = crate::policy::scope_filters(who, rtype, Perm::Read) else {
            continue;
        };
        let ids: Vec<&str> = found
            .iter()
            .filter(|(_, r)| r.rtype.as_str() == rtype)
            .map(|(_, r)| r.id.as_str())
            .collect();
        let passing = crate::policy::passing(tx, access, rtype, &ids, &narrowing)?;
        readable.extend(
            ids.into_iter()
                .filter(|id| passing.iter().any(|p| p == id))
                .map(|id| (rtype.to_owned(), id.to_owned())),
        );
    }
    Ok(readable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_every_key_type() {
        let keys = vec![
            SqlValue::Null,
            SqlValue::Int(-5),
            SqlValue::Real(2.5),
            SqlValue::Real(3.0),
            SqlValue::Text("smith".into()),
        ];
        let t = encode_position(false, &keys, 42);
        assert_eq!(
            decode_position(&t, 5).ok(),
            Some(Position::After(keys.clone(), 42))
        );
        let t = encode_position(true, &keys, 7);
        assert_eq!(decode_position(&t, 5).ok(), Some(Position::Before(keys, 7)));
    }

    #[test]
    fn foreign_or_tampered_tokens_are_refused() {
        let t = encode_position(false, &[SqlValue::Int(1)], 1);
        assert!(decode_position(&t, 2).is_err(), "wrong number of keys");
        for bad in [
            "",
            "!!",
            "bm90IGpzb24",
            &URL_SAFE_NO_PAD.encode(r#"["x",1]"#),
        ] {
            assert!(decode_position(bad, 0).is_err(), "{bad}");
        }
    }
}
