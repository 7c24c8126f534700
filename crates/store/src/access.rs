//! Which patients' records a caller may see, as SQL: the one predicate the search engine
//! adds to every resource it reads (matches, chain targets, `_has` sources, includes,
//! totals), and the same rule for one resource at a time (read, vread, history).
//!
//! The unit is the Patient compartment. A resource in no compartment (Organization,
//! Practitioner, Medication, …) is visible to every caller; a resource in one or more
//! compartments is visible only when **every** one of those patients is visible, so a
//! resource shared between a visible and a hidden patient stays hidden.
//!
//! Staff of an organization see a patient when
//! - the organization has a **care relationship** with the patient: the Patient's
//!   `managingOrganization`, an Encounter's `serviceProvider`, an EpisodeOfCare's
//!   `managingOrganization`, a ServiceRequest (referral) whose `performer` or
//!   `requester` is the organization, or an Appointment with a participant (a
//!   PractitionerRole, Location or HealthcareService) of the organization; or the
//!   patient's active Consent **permits** the organization;
//! - and no active Consent of the patient **denies** the organization (deny wins);
//! - or the user broke the glass for the patient within the grant's lifetime (recorded
//!   in the audit log, which is where grants are read from).
//!
//! The first two are kept in the care table ([`crate::care`]), which every write
//! brings up to date in its own transaction, so a new Encounter or Consent takes effect
//! on the next request and the rule costs one index probe per patient a statement
//! touches, however many patients the organization cares for.

use oxehr_search::ParamKey;

use crate::care::CARE_PARAMS;
use crate::search::{Sql, SqlValue};
use crate::sql::SqlArg;
use crate::{ReadTx, StoreError};

/// Migration 5 (both backends): break-the-glass grants are looked up by user and action.
pub const SCHEMA: &str = r#"
CREATE INDEX audit_log_user_action ON audit_log (user_name, action, time);
"#;

/// The audit action of a break-the-glass access; such a record is the grant.
pub const BREAK_THE_GLASS: &str = "break-the-glass";

/// Whose records a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Everything (system administrators, backend services, the server itself).
    All,
    /// Resources in no compartment or only in these patients' compartments (a patient:
    /// their own id; empty: no patient's record at all).
    Patients(Vec<String>),
    /// Staff of organization `org` (see the module documentation), plus the patients in
    /// `grants` (break-the-glass).
    Staff { org: String, grants: Vec<String> },
}

fn text_list(out: &mut Sql, items: &[String]) {
    for (i, p) in items.iter().enumerate() {
        if i > 0 {
            out.s(", ");
        }
        out.text_arg(p);
    }
}

impl Access {
    /// Whether nothing is hidden.
    pub fn is_all(&self) -> bool {
        matches!(self, Access::All)
    }

    /// ` AND <resource alias a is visible>`; nothing for [`Access::All`]. `n` makes the
    /// aliases unique within a statement.
    pub(crate) fn visible(&self, a: &str, n: usize, out: &mut Sql) {
        let n = format!("v{n}");
        match self {
            Access::All => {}
            Access::Patients(ids) => {
                out.s(&format!(
                    " AND NOT EXISTS (SELECT 1 FROM compartment {n} WHERE {n}.rid = {a}.rid"
                ));
                if !ids.is_empty() {
                    out.s(&format!(" AND {n}.patient_id NOT IN ("));
                    text_list(out, ids);
                    out.s(")");
                }
                out.s(")");
            }
            Access::Staff { org, grants } => {
                out.s(&format!(
                    " AND NOT EXISTS (SELECT 1 FROM compartment {n} WHERE {n}.rid = {a}.rid"
                ));
                if !grants.is_empty() {
                    out.s(&format!(" AND {n}.patient_id NOT IN ("));
                    text_list(out, grants);
                    out.s(")");
                }
                out.s(&format!(
                    " AND NOT EXISTS (SELECT 1 FROM care {n}k WHERE {n}k.org_id = "
                ))
                .text_arg(org)
                .s(&format!(" AND {n}k.patient_id = {n}.patient_id))"));
            }
        }
    }

    /// Which of `patients` the caller may see.
    pub fn visible_patients(
        &self,
        tx: &mut dyn ReadTx,
        patients: &[String],
    ) -> Result<Vec<String>, StoreError> {
        match self {
            Access::All => Ok(patients.to_vec()),
            Access::Patients(ids) => Ok(patients
                .iter()
                .filter(|p| ids.contains(p))
                .cloned()
                .collect()),
            Access::Staff { org, grants } => {
                let (granted, rest): (Vec<String>, Vec<String>) =
                    patients.iter().cloned().partition(|p| grants.contains(p));
                if rest.is_empty() {
                    return Ok(granted);
                }
                let mut sql = Sql::default();
                sql.s("SELECT patient_id FROM care WHERE org_id = ")
                    .text_arg(org)
                    .s(" AND patient_id IN (");
                text_list(&mut sql, &rest);
                sql.s(")");
                let mut seen = granted;
                for row in tx.query_shared_plan(&sql.text, &sql.args)? {
                    if let Some(SqlValue::Text(id)) = row.into_iter().next() {
                        seen.push(id);
                    }
                }
                seen.sort();
                seen.dedup();
                Ok(seen)
            }
        }
    }

    /// Whether a resource in the compartments of `patients` is visible (every one of them
    /// must be; no compartment: visible).
    pub fn sees_all(&self, tx: &mut dyn ReadTx, patients: &[String]) -> Result<bool, StoreError> {
        if patients.is_empty() || self.is_all() {
            return Ok(true);
        }
        Ok(self.visible_patients(tx, patients)?.len() == patients.len())
    }
}

/// The patients whose compartments hold the resources `rids`, sorted.
pub fn patients_of(tx: &mut dyn ReadTx, rids: &[i64]) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for chunk in rids.chunks(500) {
        let mut sql = Sql::default();
        sql.s("SELECT DISTINCT patient_id FROM compartment WHERE rid IN (");
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                sql.s(", ");
            }
            sql.arg(SqlArg::Int8(*r));
        }
        sql.s(")");
        for row in tx.query_shared_plan(&sql.text, &sql.args)? {
            if let Some(SqlValue::Text(p)) = row.into_iter().next() {
                out.push(p);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The patients `user` broke the glass for at or after `since` (microseconds).
pub fn break_the_glass_grants(
    tx: &mut dyn ReadTx,
    user: &str,
    since: i64,
) -> Result<Vec<String>, StoreError> {
    let sql = "SELECT DISTINCT patient FROM audit_log WHERE user_name = ? AND action = ? \
               AND time >= ? AND outcome = 'success' AND patient IS NOT NULL";
    let args = [
        SqlArg::Text(user.to_owned()),
        SqlArg::Text(BREAK_THE_GLASS.to_owned()),
        SqlArg::Int8(since),
    ];
    let mut out = Vec::new();
    // Planned with its values, not shared: break-the-glass records are rare among a
    // user's audit records, which only the values show — a generic plan of this
    // statement took 38 ms on PostgreSQL where the plan with values takes 0.1 ms.
    for row in tx.query(sql, &args)? {
        if let Some(SqlValue::Text(p)) = row.into_iter().next() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a resource with these index entries gives `org` a care relationship with the
/// patients of its compartment (the same parameters the SQL reads; an Appointment's
/// participants count once their PractitionerRole or Location is stored).
pub fn establishes_care(entries: &[oxehr_search::IndexEntry], org: &str) -> bool {
    let keys: Vec<ParamKey> = CARE_PARAMS
        .iter()
        .map(|(t, c)| ParamKey::of(t, c))
        .collect();
    entries.iter().any(|e| {
        keys.contains(&e.param)
            && matches!(&e.value, oxehr_search::IndexValue::Reference {
                target_type: Some(t),
                target_id: Some(id),
                ..
            } if t == "Organization" && id == org)
    })
}
