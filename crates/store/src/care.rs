//! The care table: which organizations' staff may see which patients' records, kept
//! with the records themselves so that the access rule is an index probe.
//!
//! A row `(org_id, patient_id)` says that the organization has a care relationship with
//! the patient and that no active Consent of the patient denies it (see [`crate::access`]
//! for the rule). The rows are derived from the index, never written by hand: every
//! write of a resource that can change them goes through [`store_versions`], which
//! stores the versions and then works the affected patients' rows out again from
//! scratch, in the same transaction. So the table holds exactly what the rule, read from
//! the index at that moment, would say; `care_matches_the_index` in the conformance suite
//! checks it.
//!
//! What can change a patient's rows:
//! - a version of a resource with a care parameter or a Consent (Patient, Encounter,
//!   EpisodeOfCare, ServiceRequest, Appointment, Consent), in the patient's compartment
//!   before or after the write;
//! - a version of a PractitionerRole, Location or HealthcareService that an Appointment
//!   of the patient names as participant (its organization may have changed).
//!
//! Concurrent writers (PostgreSQL, READ COMMITTED) take a transaction lock per affected
//! patient and per participant named, in one sorted order, before working the rows out;
//! each statement after the lock sees what the writer before it committed.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use oxehr_fhir::ResourceType;
use oxehr_search::{IndexEntry, IndexValue, ParamKey};

use crate::search::{Sql, SqlValue};
use crate::sql::SqlArg;
use crate::{NewVersion, StoreError, Tx};

/// Reference parameters whose target Organization has a care relationship with the
/// patients of the referring resource's compartment.
pub(crate) const CARE_PARAMS: &[(&str, &str)] = &[
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

/// Types whose versions can change the care rows of the patients in their compartment.
const CARE_TYPES: &[&str] = &[
    "Patient",
    "Encounter",
    "EpisodeOfCare",
    "ServiceRequest",
    "Appointment",
    "Consent",
];

/// Migration 8 (both backends): the care table, filled from the index as it stands.
pub fn schema() -> String {
    format!(
        "CREATE TABLE care (\n    org_id TEXT NOT NULL, patient_id TEXT NOT NULL,\n    \
         PRIMARY KEY (org_id, patient_id)\n);\n\
         CREATE INDEX care_patient ON care (patient_id);\n\
         INSERT INTO care (org_id, patient_id) {};\n",
        pairs(None).text
    )
}

fn key(t: &str, code: &str) -> String {
    ParamKey::of(t, code).0.to_string()
}

fn keys(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(t, c)| key(t, c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `SELECT org_id, patient_id …`: every pair the rule allows (of `patients` only, when
/// given), each once. Parameter keys are literals, so that the migration needs no
/// arguments. `+x.param` keeps the planner from starting at the parameter's value index
/// (every Appointment or Consent of the database): a refresh starts at the patients'
/// compartments.
fn pairs(patients: Option<&[String]>) -> Sql {
    let mut out = Sql::default();
    // ` AND c.patient_id IN (…)` for each branch that names patients.
    let only = |out: &mut Sql, col: &str| {
        if let Some(ids) = patients {
            out.s(&format!(" AND {col} IN ("));
            for (i, p) in ids.iter().enumerate() {
                if i > 0 {
                    out.s(", ");
                }
                out.text_arg(p);
            }
            out.s(")");
        }
    };
    // Active, and for all time: a Consent with a period is read at each request
    // (`access::StaffRules`), since what it says changes with the date.
    let active = |consent_rid: &str, n: &str| {
        format!(
            " AND EXISTS (SELECT 1 FROM idx_token s{n} WHERE s{n}.rid = {consent_rid} \
             AND +s{n}.param = {} AND s{n}.code = 'active') \
             AND NOT EXISTS (SELECT 1 FROM idx_date t{n} WHERE t{n}.rid = {consent_rid} \
             AND +t{n}.param = {})",
            key("Consent", "status"),
            key("Consent", "period")
        )
    };
    out.s("SELECT r.org_id, r.patient_id FROM (");
    // A care parameter of a resource in the patient's compartment.
    out.s(&format!(
        "SELECT x.target_id AS org_id, c.patient_id AS patient_id FROM compartment c \
         JOIN idx_reference x ON x.rid = c.rid WHERE x.param IN ({}) \
         AND x.target_type = 'Organization' AND x.target_id IS NOT NULL",
        keys(CARE_PARAMS)
    ));
    only(&mut out, "c.patient_id");
    // An Appointment of the patient with a participant of the organization.
    out.s(&format!(
        " UNION SELECT m.target_id, c.patient_id FROM compartment c \
         JOIN idx_reference x ON x.rid = c.rid \
         JOIN resource y ON y.rtype = x.target_type AND y.id = x.target_id \
         JOIN idx_reference m ON m.rid = y.rid \
         WHERE +x.param = {} AND m.param IN ({}) \
         AND m.target_type = 'Organization' AND m.target_id IS NOT NULL",
        key("Appointment", "actor"),
        keys(MEMBER_PARAMS)
    ));
    only(&mut out, "c.patient_id");
    // The patient's active Consent permits the organization.
    out.s(&format!(
        " UNION SELECT x.target_id, c.patient_id FROM compartment c \
         JOIN idx_reference x ON x.rid = c.rid WHERE +x.param = {} \
         AND x.target_type = 'Organization' AND x.target_id IS NOT NULL{}",
        key("Consent", "oxehr-permit-actor"),
        active("x.rid", "p")
    ));
    only(&mut out, "c.patient_id");
    // Unless an active Consent of the patient denies it.
    out.s(&format!(
        ") r WHERE NOT EXISTS (SELECT 1 FROM compartment dc \
         JOIN idx_reference dx ON dx.rid = dc.rid WHERE dc.patient_id = r.patient_id \
         AND +dx.param = {} AND dx.target_type = 'Organization' AND dx.target_id = r.org_id{})",
        key("Consent", "oxehr-deny-actor"),
        active("dx.rid", "d")
    ));
    out
}

/// Migration 14 (both backends): the care table worked out again, now without the
/// Consents that hold for a period only.
pub fn without_timed_consents() -> String {
    format!(
        "DELETE FROM care;\nINSERT INTO care (org_id, patient_id) {};\n",
        pairs(None).text
    )
}

/// Works the whole table out again from the index (`oxehr reindex`, after the index
/// rows it derives from were rewritten).
pub fn rebuild(tx: &mut dyn Tx) -> Result<(), StoreError> {
    tx.execute("DELETE FROM care", &[])?;
    let sql = pairs(None);
    tx.execute(
        &format!("INSERT INTO care (org_id, patient_id) {}", sql.text),
        &sql.args,
    )?;
    Ok(())
}

/// Stores `versions` (as [`Tx::put_many`]) and brings the care rows of every patient
/// they affect up to date, in the caller's transaction. Every write of records goes
/// through here.
pub fn store_versions(tx: &mut dyn Tx, versions: &[NewVersion]) -> Result<(), StoreError> {
    let care_type = |t: &ResourceType| CARE_TYPES.contains(&t.as_str());
    let member_type = |t: &ResourceType| MEMBER_PARAMS.iter().any(|(m, _)| *m == t.as_str());
    let mut patients: BTreeSet<String> = BTreeSet::new();
    let mut members: BTreeSet<(String, String)> = BTreeSet::new();
    for v in versions.iter().filter(|v| care_type(&v.resource.rtype)) {
        let r = &v.resource;
        // The record it leaves (an update may move it; a delete has no new compartment).
        if r.version.0 > 1 {
            for p in tx.compartments(&r.rtype, &r.id)? {
                patients.insert(p.as_str().to_owned());
            }
        }
        patients.extend(v.compartments.iter().map(|p| p.as_str().to_owned()));
        if r.rtype.as_str() == "Appointment" {
            members.extend(actors(v));
        }
    }
    for v in versions.iter().filter(|v| member_type(&v.resource.rtype)) {
        let r = &v.resource;
        members.insert((r.rtype.as_str().to_owned(), r.id.as_str().to_owned()));
    }
    tx.put_many(versions)?;
    if patients.is_empty() && members.is_empty() {
        return Ok(());
    }
    for (t, id) in &members {
        tx.lock(&format!("care-member {t}/{id}"))?;
    }
    // The patients whose Appointments name a participant written here.
    for chunk in members
        .iter()
        .filter(|(t, _)| MEMBER_PARAMS.iter().any(|(m, _)| m == t))
        .collect::<Vec<_>>()
        .chunks(200)
    {
        let mut sql = Sql::default();
        sql.s(&format!(
            "SELECT DISTINCT c.patient_id FROM idx_reference x JOIN compartment c ON c.rid = x.rid \
             WHERE x.param = {} AND (",
            key("Appointment", "actor")
        ));
        any_pair(
            &mut sql,
            ("x.target_type", "x.target_id"),
            chunk.iter().map(|(t, id)| (t.as_str(), id.as_str())),
        );
        sql.s(")");
        for row in tx.query(&sql.text, &sql.args)? {
            if let Some(SqlValue::Text(p)) = row.into_iter().next() {
                patients.insert(p);
            }
        }
    }
    let patients: Vec<String> = patients.into_iter().collect();
    for p in &patients {
        tx.lock(&format!("care {p}"))?;
    }
    // After the locks: a write that changes these patients' rows concurrently has
    // committed by now, or waits for this one and then sees its versions.
    if members.is_empty() && adds_only_known_pairs(tx, versions)? {
        return Ok(());
    }
    refresh(tx, &patients)
}

/// The organizations a resource's care parameters name (`CARE_PARAMS`, references to
/// an Organization): each has a care relationship with the patients of its compartment.
pub(crate) fn care_orgs(entries: &[IndexEntry]) -> impl Iterator<Item = &str> {
    static KEYS: OnceLock<Vec<ParamKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        CARE_PARAMS
            .iter()
            .map(|(t, c)| ParamKey::of(t, c))
            .collect()
    });
    entries
        .iter()
        .filter(|e| keys.contains(&e.param))
        .filter_map(|e| match &e.value {
            IndexValue::Reference {
                target_type: Some(t),
                target_id: Some(id),
                ..
            } if t == "Organization" => Some(id.as_str()),
            _ => None,
        })
}

/// Whether storing `versions` leaves the care rows as they are, known without working
/// them out again: every version of a care type is the first version of a resource that
/// is neither a Consent nor an Appointment (so it takes no relationship away, and the
/// Consents that deny one are unchanged), and each `(organization, patient)` pair its
/// care parameters give is a row already. A relationship the table already holds is
/// not denied, so adding another cause for it changes nothing. This is the common
/// write (an order, an admission, a registration by an organization already caring for
/// the patient), and it spares the refresh's reading of the patients' whole records.
fn adds_only_known_pairs(tx: &mut dyn Tx, versions: &[NewVersion]) -> Result<bool, StoreError> {
    let mut pairs: BTreeSet<(&str, &str)> = BTreeSet::new();
    for v in versions {
        let r = &v.resource;
        if !CARE_TYPES.contains(&r.rtype.as_str()) {
            continue;
        }
        if r.version.0 != 1
            || r.is_deleted()
            || matches!(r.rtype.as_str(), "Consent" | "Appointment")
        {
            return Ok(false);
        }
        for org in care_orgs(&v.index) {
            pairs.extend(v.compartments.iter().map(|p| (org, p.as_str())));
        }
    }
    for chunk in pairs.iter().collect::<Vec<_>>().chunks(100) {
        let mut sql = Sql::default();
        sql.s("SELECT COUNT(*) FROM care WHERE ");
        any_pair(
            &mut sql,
            ("org_id", "patient_id"),
            chunk.iter().copied().copied(),
        );
        let found = tx
            .query(&sql.text, &sql.args)?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next());
        let found = found.as_ref().and_then(SqlValue::as_i64);
        if found.and_then(|n| usize::try_from(n).ok()) != Some(chunk.len()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `(a = ? AND b = ?) OR …`: the row's columns `cols` hold one of `pairs`.
fn any_pair<'p>(
    sql: &mut Sql,
    cols: (&str, &str),
    pairs: impl Iterator<Item = (&'p str, &'p str)>,
) {
    for (i, (a, b)) in pairs.enumerate() {
        if i > 0 {
            sql.s(" OR ");
        }
        sql.s(&format!("({} = ", cols.0))
            .text_arg(a)
            .s(&format!(" AND {} = ", cols.1))
            .text_arg(b)
            .s(")");
    }
}

/// The PractitionerRole, Location and HealthcareService participants an Appointment
/// version names (`Type`, `id`).
fn actors(v: &NewVersion) -> Vec<(String, String)> {
    let actor = ParamKey::of("Appointment", "actor");
    v.index
        .iter()
        .filter(|e| e.param == actor)
        .filter_map(|e| match &e.value {
            IndexValue::Reference {
                target_type: Some(t),
                target_id: Some(id),
                ..
            } if MEMBER_PARAMS.iter().any(|(m, _)| m == t) => Some((t.clone(), id.clone())),
            _ => None,
        })
        .collect()
}

/// Works the care rows of `patients` out again from the index.
fn refresh(tx: &mut dyn Tx, patients: &[String]) -> Result<(), StoreError> {
    for chunk in patients.chunks(200) {
        let mut delete = Sql::default();
        delete.s("DELETE FROM care WHERE patient_id IN (");
        for (i, p) in chunk.iter().enumerate() {
            if i > 0 {
                delete.s(", ");
            }
            delete.text_arg(p);
        }
        delete.s(")");
        tx.execute(&delete.text, &delete.args)?;
        let select = pairs(Some(chunk));
        let mut insert = Sql::default();
        insert
            .s("INSERT INTO care (org_id, patient_id) ")
            .append(select);
        tx.execute(&insert.text, &insert.args)?;
    }
    Ok(())
}

/// The organizations that have `patient` in care (the care table's rows of the patient),
/// by id, at most `limit` of them: who the patient's care team is, for booking.
pub fn orgs_caring_for(
    tx: &mut dyn crate::ReadTx,
    patient: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let sql = "SELECT org_id FROM care WHERE patient_id = ? ORDER BY org_id LIMIT ?";
    let args = [
        SqlArg::Text(patient.to_owned()),
        SqlArg::Int8(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    let mut out = Vec::new();
    for row in tx.query_shared_plan(sql, &args)? {
        if let Some(SqlValue::Text(org)) = row.into_iter().next() {
            out.push(org);
        }
    }
    Ok(out)
}

/// Every `(org_id, patient_id)` row of the care table, sorted (for tests).
pub fn rows(tx: &mut dyn crate::ReadTx) -> Result<Vec<(String, String)>, StoreError> {
    rows_of(
        tx,
        "SELECT org_id, patient_id FROM care ORDER BY org_id, patient_id",
        &[],
    )
}

/// What the care table should hold, worked out from the index as it stands, sorted (for
/// tests: compare with [`rows`]).
pub fn expected_rows(tx: &mut dyn crate::ReadTx) -> Result<Vec<(String, String)>, StoreError> {
    let sql = pairs(None);
    let mut out = rows_of(tx, &sql.text, &sql.args)?;
    out.sort();
    Ok(out)
}

fn rows_of(
    tx: &mut dyn crate::ReadTx,
    sql: &str,
    args: &[SqlArg],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    for row in tx.query(sql, args)? {
        let mut it = row.into_iter();
        if let (Some(SqlValue::Text(o)), Some(SqlValue::Text(p))) = (it.next(), it.next()) {
            out.push((o, p));
        }
    }
    Ok(out)
}
