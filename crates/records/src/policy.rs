//! The access policy (`oxehr_auth::policy`) applied to the record: every interaction
//! checks the caller's rights on the resource types it touches (including the types a
//! chain or `_has` reads and the types `_include` adds), and reads only what the caller's
//! [`Access`] lets it see: searches through the SQL the engine adds to every resource it
//! reads, single resources (read, vread, history entries) by their own compartments,
//! writes inside the job that commits them.
//!
//! A proxy's [`Access`] is worked out on every call from the RelatedPersons that name it
//! (`oxehr_store::access::proxy_grants`, `oxehr_auth::policy::proxy_access`), so a
//! grant or a revocation applies to the next request. A single resource the adolescent
//! rule hides from it (labelled confidential, in a restricted patient's record) is
//! answered as absent (not found), as a search leaves it out: a refusal would tell the
//! proxy that a confidential record exists.

use oxehr_auth::policy::TypeGrant;
use oxehr_auth::scope::Perm;
use oxehr_auth::Caller;
use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::query::{Condition, Filter, Query};
use oxehr_store::access::{self, Access};
use oxehr_store::audit::{self, AuditRecord};
use oxehr_store::{Method, NewVersion, ReadTx, StoreError, StoredResource, Tx};

use crate::{time_fmt, Records, RecordsError};

pub(crate) fn forbidden(what: impl Into<String>) -> RecordsError {
    RecordsError::Forbidden(what.into())
}

/// `perm` on every `rtype` resource (the caller can see), or 403. A grant narrowed by a
/// SMART v2 scope's query does not pass: the paths that honour such grants ask
/// [`scope_filters`] instead.
pub(crate) fn check_type(who: &Caller, rtype: &str, perm: Perm) -> Result<(), RecordsError> {
    if who.allows(rtype, perm) {
        Ok(())
    } else {
        Err(type_forbidden(rtype, perm))
    }
}

fn type_forbidden(rtype: &str, perm: Perm) -> RecordsError {
    forbidden(format!(
        "this account or token may not {} {rtype} resources",
        perm_verb(perm)
    ))
}

/// The filters a resource of `rtype` must pass for `who` to do `perm` on it: none when
/// the caller's grant covers the whole type; when SMART v2 scopes narrow it by queries
/// (`patient/Observation.rs?category=…`), the one scope's filters, or one filter that
/// any one scope's set satisfies; 403 when nothing grants it.
///
/// The paths that honour narrowed grants are a search of one type (its own matches and
/// total, and `_include`/`_revinclude` of the type), and a read. Everything else (vread,
/// history, several types at once, chains, `$everything`, exports, views, writes) keeps
/// [`check_type`], which a narrowed grant does not pass: refused, rather than served
/// without the narrowing.
pub(crate) fn scope_filters(
    who: &Caller,
    rtype: &str,
    perm: Perm,
) -> Result<Vec<Filter>, RecordsError> {
    let scopes = match who.grant(rtype, perm) {
        TypeGrant::Whole => return Ok(Vec::new()),
        TypeGrant::Nothing => return Err(type_forbidden(rtype, perm)),
        TypeGrant::Narrowed(scopes) => scopes,
    };
    let mut sets: Vec<Vec<Filter>> = Vec::new();
    for set in scopes.iter().filter_map(|s| s.narrowing().ok()) {
        if !sets.contains(&set) {
            sets.push(set);
        }
    }
    match sets.len() {
        0 => Err(type_forbidden(rtype, perm)),
        1 => Ok(sets.remove(0)),
        _ => Ok(vec![Filter {
            negated: false,
            any_of: sets.into_iter().map(Condition::All).collect(),
        }]),
    }
}

/// `q` as `who` may run it: [`check_query`], except that a search of one type that the
/// caller's scopes narrow by queries gets their [`scope_filters`], so its matches and
/// total count only what the scopes grant.
pub(crate) fn authorized_query<'q>(
    who: &Caller,
    q: &'q Query,
) -> Result<std::borrow::Cow<'q, Query>, RecordsError> {
    let [rtype] = q.types.as_slice() else {
        check_query(who, q)?;
        return Ok(std::borrow::Cow::Borrowed(q));
    };
    let narrowing = scope_filters(who, rtype, Perm::Search)?;
    for f in &q.filters {
        check_filter(who, f)?;
    }
    if narrowing.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(q));
    }
    let mut q = q.clone();
    q.filters.extend(narrowing);
    Ok(std::borrow::Cow::Owned(q))
}

/// A query of `rtype` resources passing `filters`, with nothing else asked.
fn query_of(rtype: &str, filters: Vec<Filter>) -> Query {
    Query {
        types: vec![rtype.to_owned()],
        filters,
        sort: Vec::new(),
        include: Vec::new(),
        revinclude: Vec::new(),
        count: None,
        total: oxehr_search::query::Total::None,
        ignored: Vec::new(),
        page: None,
    }
}

/// Which of the `ids` of current `rtype` resources pass `narrowing` (from
/// [`scope_filters`]; empty: all of them), among those `access` sees.
pub(crate) fn passing(
    tx: &mut dyn ReadTx,
    access: &Access,
    rtype: &str,
    ids: &[&str],
    narrowing: &[Filter],
) -> Result<Vec<String>, RecordsError> {
    if narrowing.is_empty() || ids.is_empty() {
        return Ok(ids.iter().map(|id| (*id).to_owned()).collect());
    }
    let mut filters = vec![Filter {
        negated: false,
        any_of: ids
            .iter()
            .map(|id| Condition::Id((*id).to_owned()))
            .collect(),
    }];
    filters.extend_from_slice(narrowing);
    let q = query_of(rtype, filters);
    Ok(oxehr_store::search::page(
        tx,
        access,
        &q,
        &oxehr_store::search::Position::First,
        ids.len(),
    )?
    .into_iter()
    .map(|h| h.resource.id.as_str().to_owned())
    .collect())
}

fn perm_verb(perm: Perm) -> &'static str {
    match perm {
        Perm::Create => "create",
        Perm::Read => "read",
        Perm::Update => "update",
        Perm::Delete => "delete",
        Perm::Search => "search",
    }
}

/// The permission a stored version needs.
fn perm_of(method: Method) -> Perm {
    match method {
        Method::Create => Perm::Create,
        Method::Update | Method::Patch => Perm::Update,
        Method::Delete => Perm::Delete,
    }
}

/// `perm` on every resource type (a system-level search or history without `_type`):
/// only a caller whose role and scopes cover `*`.
pub(crate) fn check_all_types(who: &Caller, perm: Perm) -> Result<(), RecordsError> {
    let all = who
        .scopes
        .iter()
        .any(|s| s.resource_type.is_none() && s.permissions.allows(perm))
        && oxehr_auth::policy::role_allows(who.role, "*", perm);
    if all {
        Ok(())
    } else {
        Err(forbidden(format!(
            "this account or token may not {} every resource type; name the types with _type",
            perm_verb(perm)
        )))
    }
}

/// Every resource type a query reads: its own, and those of chains and `_has`.
pub(crate) fn check_query(who: &Caller, q: &Query) -> Result<(), RecordsError> {
    if q.types.is_empty() {
        check_all_types(who, Perm::Search)?;
    }
    for t in &q.types {
        check_type(who, t, Perm::Search)?;
    }
    for f in &q.filters {
        check_filter(who, f)?;
    }
    Ok(())
}

fn check_filter(who: &Caller, f: &Filter) -> Result<(), RecordsError> {
    for c in &f.any_of {
        match c {
            Condition::Chain { target_types, .. } => {
                for ch in target_types {
                    check_type(who, &ch.target_type, Perm::Search)?;
                    check_filter(who, &ch.filter)?;
                }
            }
            Condition::Has {
                source_type,
                filter,
                ..
            } => {
                check_type(who, source_type, Perm::Search)?;
                check_filter(who, filter)?;
            }
            Condition::InList(_) => check_type(who, "List", Perm::Read)?,
            Condition::All(filters) => {
                for f in filters {
                    check_filter(who, f)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The body whose compartments and labels decide who sees this version: its own, or for
/// a delete the version's before it (`None`: a delete with nothing before it).
fn judged_body(
    tx: &mut dyn ReadTx,
    r: &StoredResource,
) -> Result<Option<serde_json::Value>, RecordsError> {
    let body = match &r.body {
        Some(b) => b.clone(),
        None if r.version.0 > 1 => {
            match tx.version(&r.rtype, &r.id, VersionId(r.version.0 - 1))? {
                Some(prev) => match prev.body {
                    Some(b) => b,
                    None => return Ok(None),
                },
                None => return Ok(None),
            }
        }
        None => return Ok(None),
    };
    serde_json::from_str(&body)
        .map(Some)
        .map_err(|e| RecordsError::Internal(format!("stored body unreadable: {e}")))
}

/// The patients whose compartment holds `body`.
fn compartments_of(body: Option<&serde_json::Value>) -> Result<Vec<String>, RecordsError> {
    match body {
        Some(value) => oxehr_search::extract::patient_compartment(value)
            .map_err(|e| RecordsError::Internal(format!("stored body not indexable: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// Whether `body`'s `meta.security` carries a confidential label
/// ([`access::is_confidential_label`]: the same codes the search SQL reads).
pub(crate) fn labelled_confidential(body: &serde_json::Value) -> bool {
    body.pointer("/meta/security")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|labels| {
            labels.iter().any(|c| {
                access::is_confidential_label(
                    c.get("system").and_then(serde_json::Value::as_str),
                    c.get("code").and_then(serde_json::Value::as_str),
                )
            })
        })
}

/// Not found, when the adolescent rule hides `r` (in `patients`' records, judged by
/// `body`) from a proxy, or a Consent of one of `patients` denies a label `body` bears
/// to a staff member: as a search leaves it out, a refusal would tell that it exists.
fn hidden_by_label(
    access: &Access,
    tx: &mut dyn ReadTx,
    r: &StoredResource,
    patients: &[String],
    body: Option<&serde_json::Value>,
) -> Result<(), RecordsError> {
    let absent = || Err(RecordsError::NotFound(format!("{}/{}", r.rtype, r.id)));
    if access.hides_labelled(patients) && body.is_some_and(labelled_confidential) {
        return absent();
    }
    let Some(labels) = body.and_then(|b| b.pointer("/meta/security")?.as_array()) else {
        return Ok(());
    };
    let denied = access.denied_labels(tx, patients)?;
    let bears = |(system, code): &(Option<String>, String)| {
        labels.iter().any(|l| {
            l.get("code").and_then(|c| c.as_str()) == Some(code.as_str())
                && system
                    .as_deref()
                    .is_none_or(|s| l.get("system").and_then(|v| v.as_str()) == Some(s))
        })
    };
    if denied.iter().any(bears) {
        return absent();
    }
    Ok(())
}

/// `patients` when `access` sees all of them; 403 naming `r` otherwise.
fn visible_or_forbidden(
    access: &Access,
    tx: &mut dyn ReadTx,
    r: &StoredResource,
    patients: Vec<String>,
) -> Result<Vec<String>, RecordsError> {
    if access.is_all() || access.sees_all(tx, &patients)? {
        Ok(patients)
    } else {
        Err(forbidden(format!(
            "{}/{} belongs to a patient record this account may not see",
            r.rtype, r.id
        )))
    }
}

impl Records {
    /// `who`, with `patient` confirmed visible for the rest of one request (a chart page
    /// asks many questions about one patient). The full rule (care, consents,
    /// break-the-glass) is checked once here; later statements of the request then need
    /// not work out the organization's whole care set again. A patient `who` may not see,
    /// or that does not exist, gives the error (and audit) a read of it gives.
    pub fn confirm_patient(&self, who: &Caller, patient: &str) -> Result<Caller, RecordsError> {
        if !who.uses_grants() {
            // Only staff access depends on care; the others gain nothing.
            return Ok(who.clone());
        }
        let visible = {
            let mut reader = self.reader()?;
            let access = self.access(who, &mut *reader)?;
            access.visible_patients(&mut *reader, &[patient.to_owned()])?
        };
        if !visible.iter().any(|p| p == patient) {
            let rtype = oxehr_fhir::ResourceType::parse("Patient")
                .ok_or_else(|| RecordsError::Internal("Patient type".into()))?;
            let id = oxehr_fhir::ResourceId::parse(patient)
                .ok_or_else(|| RecordsError::NotFound(format!("Patient/{patient}")))?;
            self.read(who, &rtype, &id)?;
        }
        Ok(who.confirmed_visible(patient))
    }

    /// Whose records `who` may see, as of now (break-the-glass grants included).
    pub(crate) fn access(&self, who: &Caller, tx: &mut dyn ReadTx) -> Result<Access, RecordsError> {
        Ok(access_of(who, tx)?)
    }

    /// [`check_visible`](Self::check_visible) for the current version of a resource:
    /// its compartments are read from the index rather than computed from the body.
    pub(crate) fn check_visible_current(
        &self,
        access: &Access,
        tx: &mut dyn ReadTx,
        r: &StoredResource,
    ) -> Result<Vec<String>, RecordsError> {
        if r.is_deleted() {
            return self.check_visible(access, tx, r);
        }
        let patients: Vec<String> = tx
            .compartments(&r.rtype, &r.id)?
            .into_iter()
            .map(|p| p.as_str().to_owned())
            .collect();
        let patients = visible_or_forbidden(access, tx, r, patients)?;
        if access.hides_labelled(&patients) || access.denies_labels() {
            let body = judged_body(tx, r)?;
            hidden_by_label(access, tx, r, &patients, body.as_ref())?;
        }
        Ok(patients)
    }

    /// Whether `who` may see this version (403 when not; not found when the adolescent
    /// rule hides it from a proxy); the patients whose record it is in.
    pub(crate) fn check_visible(
        &self,
        access: &Access,
        tx: &mut dyn ReadTx,
        r: &StoredResource,
    ) -> Result<Vec<String>, RecordsError> {
        let body = judged_body(tx, r)?;
        let patients = compartments_of(body.as_ref())?;
        let patients = visible_or_forbidden(access, tx, r, patients)?;
        hidden_by_label(access, tx, r, &patients, body.as_ref())?;
        Ok(patients)
    }

    /// 403 unless `who` may update `r`'s type and see `r` (not found when the
    /// adolescent rule hides it from a proxy): what a patch needs before it is applied to
    /// the stored body. The commit checks again, against what its transaction sees. A
    /// refusal is audited as the commit's would be.
    pub(crate) fn check_may_patch(
        &self,
        who: &Caller,
        r: &StoredResource,
    ) -> Result<(), RecordsError> {
        let res = (|| {
            check_type(who, r.rtype.as_str(), Perm::Update)?;
            if who.role == oxehr_auth::Role::SystemAdmin {
                return Ok(());
            }
            let mut reader = self.reader()?;
            let access = self.access(who, &mut *reader)?;
            self.check_visible_current(&access, &mut *reader, r)
                .map(|_| ())
        })();
        match res {
            Err(e) if crate::audit::is_denial(&e) && !who.internal => {
                self.auditor.record(vec![crate::audit::record(
                    who,
                    "patch",
                    "denied",
                    Some(format!("{}/{}", r.rtype, r.id)),
                    None,
                )])?;
                Err(e)
            }
            other => other,
        }
    }

    /// The patients `who` acts for as a proxy now, sorted by id (empty for any other
    /// caller): for an adapter to offer them (`restricted`: the adolescent rule hides
    /// their confidential records). Not audited: it names no record's content, and
    /// each record read after it is audited.
    pub fn proxy_patients(&self, who: &Caller) -> Result<Vec<ProxyPatient>, RecordsError> {
        if !who.is_proxy() {
            return Ok(Vec::new());
        }
        let mut reader = self.reader()?;
        match access_of(who, &mut *reader)? {
            Access::Proxy {
                patients,
                restricted,
            } => Ok(patients
                .into_iter()
                .map(|id| ProxyPatient {
                    restricted: restricted.contains(&id),
                    id,
                })
                .collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// Break-the-glass: `who` opens `patient`'s record in an emergency, giving `reason`.
    /// Recorded in the audit log (the grant itself), flagged for the organization's
    /// administrators and the patient's access log; lasts
    /// [`BREAK_THE_GLASS_SECS`](oxehr_auth::policy::BREAK_THE_GLASS_SECS). Returns when
    /// the grant ends (microseconds).
    pub fn break_the_glass(
        &self,
        who: &Caller,
        patient: &ResourceId,
        reason: &str,
    ) -> Result<i64, RecordsError> {
        if !who.may_break_the_glass() {
            return Err(forbidden("only clinicians and nurses may break the glass"));
        }
        let reason = reason.trim();
        if reason.len() < 10 {
            return Err(RecordsError::invalid(
                oxehr_fhir::IssueCode::Required,
                "breaking the glass needs a reason of at least 10 characters",
            ));
        }
        let rtype = ResourceType::parse("Patient")
            .ok_or_else(|| RecordsError::Internal("Patient type".into()))?;
        match self.reader()?.current(&rtype, patient)? {
            Some(p) if !p.is_deleted() => {}
            _ => return Err(RecordsError::NotFound(format!("Patient/{patient}"))),
        }
        let now = time_fmt::now_micros();
        let record = AuditRecord {
            time: now,
            user: Some(who.user.clone()),
            role: Some(who.role.code().to_owned()),
            organization: who.organization.clone(),
            patient: Some(patient.as_str().to_owned()),
            resource: Some(format!("Patient/{patient}")),
            action: access::BREAK_THE_GLASS.to_owned(),
            outcome: "success".to_owned(),
            client: who.client.clone(),
            detail: Some(reason.to_owned()),
        };
        self.store
            .write(Box::new(move |tx| {
                audit::append(tx, std::slice::from_ref(&record))?;
                Ok(Box::new(()))
            }))
            .map_err(RecordsError::from)?;
        Ok(now + oxehr_auth::policy::BREAK_THE_GLASS_SECS * 1_000_000)
    }
}

/// One patient a proxy acts for ([`Records::proxy_patients`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPatient {
    /// The Patient's id.
    pub id: String,
    /// Whether the adolescent rule hides the patient's confidential records from the
    /// proxy (12 to 17 years old, or of unknown age).
    pub restricted: bool,
}

/// Whose records `who` may see in the snapshot `tx`, break-the-glass grants of the
/// last [`BREAK_THE_GLASS_SECS`](oxehr_auth::policy::BREAK_THE_GLASS_SECS) included; a
/// proxy's from the RelatedPersons that name it now, on today's date (UTC).
pub(crate) fn access_of(who: &Caller, tx: &mut dyn ReadTx) -> Result<Access, StoreError> {
    if who.is_proxy() {
        let now = time_fmt::now_micros();
        let grants = access::proxy_grants(tx, &who.user, now)?;
        let today = oxehr_auth::policy::day_of(now)
            .ok_or_else(|| StoreError::Backend("the clock is out of range".into()))?;
        return Ok(oxehr_auth::policy::proxy_access(&grants, today));
    }
    let now = time_fmt::now_micros();
    let grants = if who.uses_grants() {
        let since = now - oxehr_auth::policy::BREAK_THE_GLASS_SECS * 1_000_000;
        access::break_the_glass_grants(tx, &who.user, since)?
    } else {
        Vec::new()
    };
    let mut access = who.access(grants);
    if let Access::Staff { org, rules, .. } = &mut access {
        *rules = access::staff_rules(tx, org, who.person.as_deref(), now)?;
    }
    Ok(access)
}

/// Inside the write job: `who` may write each version (its type, the record it leaves
/// and the record it changes). A staff member may write into a record they cannot see
/// yet only when the write itself establishes their organization's care relationship
/// (registering a patient, opening an encounter); a patient writes only into their own,
/// a proxy only into the records of the patients it acts for (and changes no resource
/// the adolescent rule hides from it).
///
/// A `vouched` version (a Slot a booking operation changes, after checking the booking
/// rules: `booking.rs`) is exempt from these checks; it must be a Slot, so no other use
/// can slip a resource past them.
///
/// Returns the caller's access it judged by (`None` for a system administrator, who is
/// not judged by one), for the rest of the job to use rather than read it again.
pub(crate) fn check_writes(
    who: &Caller,
    tx: &mut dyn Tx,
    versions: &[NewVersion],
    vouched: &[crate::Vouched],
) -> Result<Option<Access>, StoreError> {
    let deny = |e: RecordsError| StoreError::Aborted(Box::new(e));
    if vouched.iter().any(|v| v.rtype.as_str() != "Slot") {
        return Err(deny(RecordsError::Internal(
            "only a Slot's booking status is written on a caller's behalf".into(),
        )));
    }
    let versions: Vec<&NewVersion> = versions
        .iter()
        .filter(|v| !vouched.iter().any(|w| w.covers(&v.resource)))
        .collect();
    for v in &versions {
        crate::audit_view::refuse_write(v.resource.rtype.as_str()).map_err(deny)?;
        check_type(who, v.resource.rtype.as_str(), perm_of(v.resource.method)).map_err(deny)?;
    }
    if who.role == oxehr_auth::Role::SystemAdmin {
        return Ok(None);
    }
    let access = access_of(who, tx)?;
    // The patients this write itself brings into the caller's organization's care (an
    // admission, an order it fills): the write's other versions may be about them too,
    // as a second write after this one could be.
    let brought_in: Vec<String> = match who.organization.as_deref() {
        Some(org) if !who.writes_only_own_record() => versions
            .iter()
            .filter(|v| access::establishes_care(&v.index, org))
            .flat_map(|v| v.compartments.iter().map(|p| p.as_str().to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    for v in versions {
        let r = &v.resource;
        let outside = |p: &String| !brought_in.contains(p);
        let before: Vec<String> = tx
            .compartments(&r.rtype, &r.id)?
            .into_iter()
            .map(|id| id.as_str().to_owned())
            .filter(outside)
            .collect();
        let after: Vec<String> = v
            .compartments
            .iter()
            .map(|id| id.as_str().to_owned())
            .filter(outside)
            .collect();
        let hidden = |what: &str| {
            deny(forbidden(format!(
                "{}/{}: {what} a patient record this account may not see",
                r.rtype, r.id
            )))
        };
        if !access.sees_all(tx, &before)? {
            return Err(hidden("changes"));
        }
        if access.hides_labelled(&before) || access.denies_labels() {
            let current = tx.current(&r.rtype, &r.id)?;
            let body = match current.as_ref().and_then(|c| c.body.as_deref()) {
                Some(b) => Some(
                    serde_json::from_str::<serde_json::Value>(b)
                        .map_err(|e| StoreError::Corrupt(format!("stored body unreadable: {e}")))?,
                ),
                None => None,
            };
            if let Some(current) = &current {
                if hidden_by_label(&access, tx, current, &before, body.as_ref()).is_err() {
                    return Err(hidden("changes"));
                }
            }
        }
        if who.writes_only_own_record() {
            // A patient's access is their own record, a proxy's the records it acts for.
            // A delete leaves no compartment: the record it leaves must be one of those.
            let kept = if r.method == Method::Delete {
                &before
            } else {
                &after
            };
            if kept.is_empty() || !access.sees_all(tx, kept)? {
                return Err(hidden(
                    "writes outside of the records this account acts for, into",
                ));
            }
            continue;
        }
        let establishes = who
            .organization
            .as_deref()
            .is_some_and(|org| access::establishes_care(&v.index, org));
        if !establishes && !access.sees_all(tx, &after)? {
            return Err(hidden("writes into"));
        }
    }
    Ok(Some(access))
}
