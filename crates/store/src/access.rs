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
//! The relationships are read from the search index at each statement (uncorrelated
//! subqueries, evaluated once per statement), so a new Encounter or Consent takes effect
//! on the next request.

use oxehr_search::ParamKey;

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

/// Reference parameters whose target Organization has a care relationship with the
/// patients of the referring resource's compartment.
const CARE_PARAMS: &[(&str, &str)] = &[
    ("Patient", "organization"),
    ("Encounter", "service-provider"),
    ("EpisodeOfCare", "organization"),
    ("ServiceRequest", "performer"),
    ("ServiceRequest", "requester"),
];

/// Who takes part in an Appointment on the organization's behalf.
const MEMBER_PARAMS: &[(&str, &str)] = &[
    ("PractitionerRole", "organization"),
    ("Location", "organization"),
    ("HealthcareService", "organization"),
];

fn key(t: &str, code: &str) -> SqlArg {
    SqlArg::Int4(ParamKey::of(t, code).0)
}

fn keys(out: &mut Sql, col: &str, params: &[(&str, &str)]) {
    out.s(col).s(" IN (");
    for (i, (t, c)) in params.iter().enumerate() {
        if i > 0 {
            out.s(", ");
        }
        out.arg(key(t, c));
    }
    out.s(")");
}

/// ` AND EXISTS (…)`: the Consent row `rid_col` is active.
fn consent_active(out: &mut Sql, rid_col: &str, n: &str) {
    out.s(&format!(
        " AND EXISTS (SELECT 1 FROM idx_token st{n} WHERE st{n}.rid = {rid_col} AND st{n}.param = "
    ))
    .arg(key("Consent", "status"))
    .s(&format!(" AND st{n}.code = 'active')"));
}

/// The patients with a care relationship with `org`, or whose active Consent permits it.
fn related_patients(out: &mut Sql, org: &str, n: &str) {
    out.s(&format!(
        "SELECT c{n}a.patient_id FROM idx_reference x{n}a JOIN compartment c{n}a ON c{n}a.rid = x{n}a.rid WHERE "
    ));
    keys(out, &format!("x{n}a.param"), CARE_PARAMS);
    out.s(&format!(" AND x{n}a.target_id = "))
        .text_arg(org)
        .s(&format!(" AND x{n}a.target_type = 'Organization'"));
    out.s(&format!(
        " UNION SELECT c{n}b.patient_id FROM idx_reference x{n}b JOIN compartment c{n}b ON c{n}b.rid = x{n}b.rid WHERE x{n}b.param = "
    ))
    .arg(key("Appointment", "actor"))
    .s(&format!(
        " AND x{n}b.target_id IN (SELECT y{n}.id FROM idx_reference m{n} JOIN resource y{n} ON y{n}.rid = m{n}.rid WHERE "
    ));
    keys(out, &format!("m{n}.param"), MEMBER_PARAMS);
    out.s(&format!(" AND m{n}.target_id = "))
        .text_arg(org)
        .s(&format!(
            " AND m{n}.target_type = 'Organization' AND y{n}.rtype = x{n}b.target_type)"
        ));
    out.s(&format!(
        " UNION SELECT c{n}c.patient_id FROM idx_reference x{n}c JOIN compartment c{n}c ON c{n}c.rid = x{n}c.rid WHERE x{n}c.param = "
    ))
    .arg(key("Consent", "oxehr-permit-actor"))
    .s(&format!(" AND x{n}c.target_id = "))
    .text_arg(org)
    .s(&format!(" AND x{n}c.target_type = 'Organization'"));
    consent_active(out, &format!("x{n}c.rid"), &format!("{n}c"));
}

/// The patients whose active Consent denies `org`.
fn denying_patients(out: &mut Sql, org: &str, n: &str) {
    out.s(&format!(
        "SELECT c{n}d.patient_id FROM idx_reference x{n}d JOIN compartment c{n}d ON c{n}d.rid = x{n}d.rid WHERE x{n}d.param = "
    ))
    .arg(key("Consent", "oxehr-deny-actor"))
    .s(&format!(" AND x{n}d.target_id = "))
    .text_arg(org)
    .s(&format!(" AND x{n}d.target_type = 'Organization'"));
    consent_active(out, &format!("x{n}d.rid"), &format!("{n}d"));
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
                out.s(&format!(" AND ({n}.patient_id NOT IN ("));
                related_patients(out, org, &n);
                out.s(&format!(") OR {n}.patient_id IN ("));
                denying_patients(out, org, &n);
                out.s(")))");
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
                sql.s("SELECT p.id FROM resource p WHERE p.rtype = 'Patient' AND p.id IN (");
                text_list(&mut sql, &rest);
                sql.s(") AND p.id IN (");
                related_patients(&mut sql, org, "q");
                sql.s(") AND p.id NOT IN (");
                denying_patients(&mut sql, org, "q");
                sql.s(")");
                let mut seen = granted;
                for row in tx.query(&sql.text, &sql.args)? {
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
        for row in tx.query(&sql.text, &sql.args)? {
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
