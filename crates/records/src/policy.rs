//! The access policy (`oxehr_auth::policy`) applied to the record: every interaction
//! checks the caller's rights on the resource types it touches (including the types a
//! chain or `_has` reads and the types `_include` adds), and reads only what the caller's
//! [`Access`] lets it see: searches through the SQL the engine adds to every resource it
//! reads, single resources (read, vread, history entries) by their own compartments,
//! writes inside the job that commits them.

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

/// `perm` on `rtype`, or 403.
pub(crate) fn check_type(who: &Caller, rtype: &str, perm: Perm) -> Result<(), RecordsError> {
    if who.allows(rtype, perm) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "this account or token may not {} {rtype} resources",
            perm_verb(perm)
        )))
    }
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
            _ => {}
        }
    }
    Ok(())
}

/// The patients whose compartment holds this version (a delete: the version before it).
fn compartments_of(tx: &mut dyn ReadTx, r: &StoredResource) -> Result<Vec<String>, RecordsError> {
    let body = match &r.body {
        Some(b) => b.clone(),
        None if r.version.0 > 1 => {
            match tx.version(&r.rtype, &r.id, VersionId(r.version.0 - 1))? {
                Some(prev) => match prev.body {
                    Some(b) => b,
                    None => return Ok(Vec::new()),
                },
                None => return Ok(Vec::new()),
            }
        }
        None => return Ok(Vec::new()),
    };
    let value: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| RecordsError::Internal(format!("stored body unreadable: {e}")))?;
    oxehr_search::extract::patient_compartment(&value)
        .map_err(|e| RecordsError::Internal(format!("stored body not indexable: {e}")))
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
        visible_or_forbidden(access, tx, r, patients)
    }

    /// Whether `who` may see this version (403 when not); the patients whose record it
    /// is in.
    pub(crate) fn check_visible(
        &self,
        access: &Access,
        tx: &mut dyn ReadTx,
        r: &StoredResource,
    ) -> Result<Vec<String>, RecordsError> {
        let patients = compartments_of(tx, r)?;
        visible_or_forbidden(access, tx, r, patients)
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
                audit::append(tx, &[record])?;
                Ok(Box::new(()))
            }))
            .map_err(RecordsError::from)?;
        Ok(now + oxehr_auth::policy::BREAK_THE_GLASS_SECS * 1_000_000)
    }
}

/// Whose records `who` may see in the snapshot `tx`, break-the-glass grants of the
/// last [`BREAK_THE_GLASS_SECS`](oxehr_auth::policy::BREAK_THE_GLASS_SECS) included.
pub(crate) fn access_of(who: &Caller, tx: &mut dyn ReadTx) -> Result<Access, StoreError> {
    let grants = if who.uses_grants() {
        let since = time_fmt::now_micros() - oxehr_auth::policy::BREAK_THE_GLASS_SECS * 1_000_000;
        access::break_the_glass_grants(tx, &who.user, since)?
    } else {
        Vec::new()
    };
    Ok(who.access(grants))
}

/// Inside the write job: `who` may write each version (its type, the record it leaves
/// and the record it changes). A staff member may write into a record they cannot see
/// yet only when the write itself establishes their organization's care relationship
/// (registering a patient, opening an encounter); a patient writes only into their own.
///
/// A `vouched` version (a Slot a booking operation changes, after checking the booking
/// rules: `booking.rs`) is exempt from these checks; it must be a Slot, so no other use
/// can slip a resource past them.
pub(crate) fn check_writes(
    who: &Caller,
    tx: &mut dyn Tx,
    versions: &[NewVersion],
    vouched: &[crate::Vouched],
) -> Result<(), StoreError> {
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
        return Ok(());
    }
    let access = access_of(who, tx)?;
    for v in versions {
        let r = &v.resource;
        let before: Vec<String> = tx
            .compartments(&r.rtype, &r.id)?
            .into_iter()
            .map(|id| id.as_str().to_owned())
            .collect();
        let after: Vec<String> = v
            .compartments
            .iter()
            .map(|id| id.as_str().to_owned())
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
        if who.writes_only_own_record() {
            let own = who.patient.as_deref();
            if after.is_empty() || after.iter().any(|p| Some(p.as_str()) != own) {
                return Err(hidden("writes outside of the patient's own record, into"));
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
    Ok(())
}
