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
//!
//! A **proxy** (a parent, guardian or other person acting for patients) sees the
//! patients a RelatedPerson names it for ([`proxy_grants`]: read from the index on
//! every request, so a grant or a revocation takes effect on the next one), and for the
//! patients it is given as `restricted` (adolescents) not the resources labelled
//! confidential ([`is_confidential_label`]). Which grants count, and who is restricted,
//! is the policy's decision (`oxehr_auth::policy::proxy_access`); this module only
//! reads the grants and runs the rule as SQL.

use std::sync::OnceLock;

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

/// The identifier system of a RelatedPerson whose value is the name of the proxy
/// account it grants access to the patient's record.
pub const PROXY_ACCOUNT_SYSTEM: &str = "urn:oxehr:account";

/// HL7's confidentiality codes (`meta.security`); `R` (restricted) and `V` (very
/// restricted) are the confidential ones.
pub const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
/// Confidentiality codes that make a resource confidential.
pub const CONFIDENTIAL_CODES: &[&str] = &["R", "V"];
/// HL7's ActCode system, where the sensitivity codes live.
pub const SENSITIVITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// Sensitivity codes that make a resource confidential: ethnicity, gender identity, HIV,
/// psychiatry, sickle cell, sexual and domestic violence, sexuality and reproductive
/// health, sexually transmitted disease, taboo.
pub const SENSITIVE_CODES: &[&str] = &[
    "ETH", "GDIS", "HIV", "PSY", "SCA", "SDV", "SEX", "STD", "TBOO",
];

/// Whether a `meta.security` Coding makes its resource confidential, hidden from the
/// proxy of an adolescent.
pub fn is_confidential_label(system: Option<&str>, code: Option<&str>) -> bool {
    match (system, code) {
        (Some(CONFIDENTIALITY_SYSTEM), Some(c)) => CONFIDENTIAL_CODES.contains(&c),
        (Some(SENSITIVITY_SYSTEM), Some(c)) => SENSITIVE_CODES.contains(&c),
        _ => false,
    }
}

/// Whose records a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Everything (system administrators, backend services, the server itself).
    All,
    /// Resources in no compartment or only in these patients' compartments (a patient:
    /// their own id; empty: no patient's record at all).
    Patients(Vec<String>),
    /// Staff of organization `org` (see the module documentation), plus the patients in
    /// `grants` (break-the-glass), under the Consents `rules` says to read.
    Staff {
        org: String,
        grants: Vec<String>,
        rules: StaffRules,
    },
    /// A proxy: resources in no compartment or only in the compartments of `patients`,
    /// except that a resource in the compartment of a patient in `restricted` (each
    /// also in `patients`) is hidden when its `meta.security` carries a confidential
    /// label ([`is_confidential_label`]).
    Proxy {
        patients: Vec<String>,
        restricted: Vec<String>,
    },
}

/// What a staff member's view of records depends on beyond the care table, worked out
/// for each request ([`staff_rules`]): the Consents that name the user rather than (only)
/// the organization, the Consents that hold for a period only, and the Consents that deny
/// resources by security label. With none of them in the database (the usual case) the
/// rule is the care table's alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StaffRules {
    /// The references a Consent's actor may use for this user, as (type, id): the
    /// organization, the user's Practitioner (or PractitionerRole), that Practitioner's
    /// PractitionerRoles, and the CareTeams any of them takes part in.
    pub actors: Vec<(String, String)>,
    /// Whether a Consent names one of `actors` other than the organization, or names the
    /// organization and has a period: visibility then reads those Consents (the care
    /// table holds only the organization's Consents without a period).
    pub consents: bool,
    /// Whether a Consent denies resources by security label (`provision.securityLabel`
    /// of a `deny` provision without actors).
    pub labels: bool,
    /// Now (µs since the epoch): whose periods hold.
    pub now: i64,
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

    /// Whether resources in the compartments of `patients` are hidden when labelled
    /// confidential (one of them is a restricted patient of a proxy).
    pub fn hides_labelled(&self, patients: &[String]) -> bool {
        match self {
            Access::Proxy { restricted, .. } => patients.iter().any(|p| restricted.contains(p)),
            _ => false,
        }
    }

    /// Whether any resource is hidden by its labels (a proxy with restricted patients).
    pub fn hides_any_labelled(&self) -> bool {
        matches!(self, Access::Proxy { restricted, .. } if !restricted.is_empty())
    }

    /// Whether a Consent may deny this staff member resources by their labels
    /// ([`denied_labels`](Self::denied_labels) tells which, for given patients).
    pub fn denies_labels(&self) -> bool {
        matches!(self, Access::Staff { rules, .. } if rules.labels)
    }

    /// ` AND <resource alias a is visible>`; nothing for [`Access::All`]. `n` makes the
    /// aliases unique within a statement.
    pub(crate) fn visible(&self, a: &str, n: usize, out: &mut Sql) {
        let n = format!("v{n}");
        match self {
            Access::All => {}
            Access::Patients(ids) => only_compartments(a, &n, ids, out),
            Access::Proxy {
                patients,
                restricted,
            } => {
                only_compartments(a, &n, patients, out);
                if !restricted.is_empty() {
                    // Not (in a restricted patient's compartment and labelled
                    // confidential): two probes of the resource's own rows by key.
                    out.s(&format!(
                        " AND NOT (EXISTS (SELECT 1 FROM compartment {n}r WHERE {n}r.rid = {a}.rid \
                         AND {n}r.patient_id IN ("
                    ));
                    text_list(out, restricted);
                    out.s(&format!(
                        ")) AND EXISTS (SELECT 1 FROM idx_token {n}s WHERE {n}s.rid = {a}.rid \
                         AND +{n}s.param IN ({}) AND {}))",
                        security_keys(),
                        confidential_condition(&format!("{n}s"))
                    ));
                }
            }
            Access::Staff { org, grants, rules } => {
                out.s(&format!(
                    " AND NOT EXISTS (SELECT 1 FROM compartment {n} WHERE {n}.rid = {a}.rid"
                ));
                not_granted(&format!("{n}.patient_id"), grants, out);
                let patient = format!("{n}.patient_id");
                out.s(" AND (");
                if rules.consents {
                    out.s("(");
                }
                out.s(&format!(
                    "NOT EXISTS (SELECT 1 FROM care {n}k WHERE {n}k.org_id = "
                ))
                .text_arg(org)
                .s(&format!(" AND {n}k.patient_id = {patient})"));
                if rules.consents {
                    out.s(" AND NOT ");
                    names(&patient, &format!("{n}g"), "permit", rules, out);
                    out.s(") OR ");
                    names(&patient, &format!("{n}d"), "deny", rules, out);
                }
                out.s("))");
                if rules.labels {
                    // Not (labelled as an applicable Consent of one of its patients
                    // denies): driven by the resource's own label rows, usually none.
                    out.s(&format!(
                        " AND NOT EXISTS (SELECT 1 FROM idx_token {n}ls \
                         JOIN compartment {n}lc ON {n}lc.rid = {n}ls.rid \
                         WHERE {n}ls.rid = {a}.rid AND +{n}ls.param IN ({})",
                        security_keys()
                    ));
                    not_granted(&format!("{n}lc.patient_id"), grants, out);
                    out.s(&format!(
                        " AND EXISTS (SELECT 1 FROM idx_token {n}ld \
                         JOIN compartment {n}lk ON {n}lk.rid = {n}ld.rid \
                         WHERE {n}ld.param = {} AND {n}ld.code = {n}ls.code \
                         AND ({n}ld.system = {n}ls.system OR {n}ld.system IS NULL) \
                         AND {n}lk.patient_id = {n}lc.patient_id",
                        consent_key("oxehr-deny-label")
                    ));
                    applicable(&format!("{n}ld.rid"), &format!("{n}la"), rules.now, out);
                    out.s("))");
                }
            }
        }
    }

    /// The security labels (system, code) that applicable Consents of `patients` deny to
    /// this staff member (none for other callers, and none for patients it broke the
    /// glass for): a resource of theirs bearing one is hidden as a search hides it.
    pub fn denied_labels(
        &self,
        tx: &mut dyn ReadTx,
        patients: &[String],
    ) -> Result<Vec<(Option<String>, String)>, StoreError> {
        let Access::Staff { grants, rules, .. } = self else {
            return Ok(Vec::new());
        };
        let patients: Vec<String> = patients
            .iter()
            .filter(|p| !grants.contains(p))
            .cloned()
            .collect();
        if !rules.labels || patients.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        sql.s(&format!(
            "SELECT DISTINCT d.system, d.code FROM idx_token d \
             JOIN compartment k ON k.rid = d.rid WHERE d.param = {} AND k.patient_id IN (",
            consent_key("oxehr-deny-label")
        ));
        text_list(&mut sql, &patients);
        sql.s(")");
        applicable("d.rid", "cq", rules.now, &mut sql);
        let mut out = Vec::new();
        for row in tx.query(&sql.text, &sql.args)? {
            let mut it = row.into_iter();
            let system = match it.next() {
                Some(SqlValue::Text(s)) => Some(s),
                _ => None,
            };
            if let Some(SqlValue::Text(code)) = it.next() {
                out.push((system, code));
            }
        }
        Ok(out)
    }

    /// Which of `patients` the caller may see (their records, but for a proxy's
    /// restricted patients, the resources labelled confidential: see
    /// [`hides_labelled`](Self::hides_labelled)).
    pub fn visible_patients(
        &self,
        tx: &mut dyn ReadTx,
        patients: &[String],
    ) -> Result<Vec<String>, StoreError> {
        match self {
            Access::All => Ok(patients.to_vec()),
            Access::Patients(ids) | Access::Proxy { patients: ids, .. } => Ok(patients
                .iter()
                .filter(|p| ids.contains(p))
                .cloned()
                .collect()),
            Access::Staff { org, grants, rules } => {
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
                let mut cared = patient_column(tx.query_shared_plan(&sql.text, &sql.args)?);
                if rules.consents {
                    cared.extend(consent_patients(tx, "permit", rules, &rest)?);
                    let denied = consent_patients(tx, "deny", rules, &rest)?;
                    cared.retain(|p| !denied.contains(p));
                }
                let mut seen = granted;
                seen.extend(cared);
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

/// The first column of `rows`, as text.
fn patient_column(rows: Vec<Vec<SqlValue>>) -> Vec<String> {
    rows.into_iter()
        .filter_map(|row| match row.into_iter().next() {
            Some(SqlValue::Text(id)) => Some(id),
            _ => None,
        })
        .collect()
}

/// ` AND <column> NOT IN (grants)`; nothing without grants.
fn not_granted(column: &str, grants: &[String], out: &mut Sql) {
    if !grants.is_empty() {
        out.s(&format!(" AND {column} NOT IN ("));
        text_list(out, grants);
        out.s(")");
    }
}

fn consent_key(code: &str) -> i32 {
    ParamKey::of("Consent", code).0
}

/// ` AND <Consent rid k is active, and its period, if it has one, holds at now>`. `n`
/// makes the aliases unique.
fn applicable(k: &str, n: &str, now: i64, out: &mut Sql) {
    out.s(&format!(
        " AND EXISTS (SELECT 1 FROM idx_token {n}s WHERE {n}s.rid = {k} \
         AND +{n}s.param = {} AND {n}s.code = 'active') \
         AND NOT EXISTS (SELECT 1 FROM idx_date {n}p WHERE {n}p.rid = {k} \
         AND +{n}p.param = {} AND ({n}p.low > ",
        consent_key("status"),
        consent_key("period"),
    ))
    .arg(SqlArg::Int8(now))
    .s(&format!(" OR {n}p.high < "))
    .arg(SqlArg::Int8(now))
    .s("))");
}

/// ` AND (<reference x names one of the actors>)`, the actor types (ours, a fixed set)
/// as literals.
fn actor_match(x: &str, actors: &[(String, String)], out: &mut Sql) {
    let mut types: Vec<&str> = actors.iter().map(|(t, _)| t.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    out.s(" AND (");
    if types.is_empty() {
        out.s("1 = 0");
    }
    for (i, t) in types.iter().enumerate() {
        if i > 0 {
            out.s(" OR ");
        }
        out.s(&format!("({x}.target_id IN ("));
        let ids: Vec<String> = actors
            .iter()
            .filter(|(at, _)| at == t)
            .map(|(_, id)| id.clone())
            .collect();
        text_list(out, &ids);
        out.s(&format!(") AND {x}.target_type = '{t}')"));
    }
    out.s(")");
}

/// `EXISTS (<an applicable Consent of the patient in column p names one of the rules'
/// actors in a provision of kind permit or deny>)`.
fn names(p: &str, n: &str, kind: &str, rules: &StaffRules, out: &mut Sql) {
    out.s(&format!(
        "EXISTS (SELECT 1 FROM idx_reference {n}x JOIN compartment {n}c ON {n}c.rid = {n}x.rid \
         WHERE {n}x.param = {} AND {n}c.patient_id = {p}",
        consent_key(&format!("oxehr-{kind}-actor"))
    ));
    actor_match(&format!("{n}x"), &rules.actors, out);
    applicable(&format!("{n}x.rid"), &format!("{n}a"), rules.now, out);
    out.s(")");
}

/// Which of `patients` have an applicable Consent naming one of the rules' actors in a
/// provision of kind permit or deny.
fn consent_patients(
    tx: &mut dyn ReadTx,
    kind: &str,
    rules: &StaffRules,
    patients: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut sql = Sql::default();
    sql.s(&format!(
        "SELECT DISTINCT c.patient_id FROM idx_reference x JOIN compartment c ON c.rid = x.rid \
         WHERE x.param = {} AND c.patient_id IN (",
        consent_key(&format!("oxehr-{kind}-actor"))
    ));
    text_list(&mut sql, patients);
    sql.s(")");
    actor_match("x", &rules.actors, &mut sql);
    applicable("x.rid", "cq", rules.now, &mut sql);
    Ok(patient_column(tx.query(&sql.text, &sql.args)?))
}

/// What a staff member of `org`, who is `person` (`Practitioner/…` or
/// `PractitionerRole/…`, if known), sees beyond the care table at `now` (µs): see
/// [`StaffRules`]. A handful of index probes.
pub fn staff_rules(
    tx: &mut dyn ReadTx,
    org: &str,
    person: Option<&str>,
    now: i64,
) -> Result<StaffRules, StoreError> {
    let key = |t: &str, c: &str| ParamKey::of(t, c).0;
    let not_deleted = match tx.dialect() {
        crate::sql::Dialect::Sqlite => "r.deleted = 0",
        crate::sql::Dialect::Postgres => "NOT r.deleted",
    };
    // Ids of current `rtype` resources whose `param` names one of `targets`.
    let naming = |tx: &mut dyn ReadTx,
                  rtype: &str,
                  param: &str,
                  targets: &[(String, String)]|
     -> Result<Vec<String>, StoreError> {
        let mut sql = Sql::default();
        sql.s(&format!(
            "SELECT DISTINCT r.id FROM idx_reference x JOIN resource r ON r.rid = x.rid \
             WHERE x.param = {} AND r.rtype = '{rtype}' AND {not_deleted}",
            key(rtype, param)
        ));
        actor_match("x", targets, &mut sql);
        Ok(patient_column(tx.query(&sql.text, &sql.args)?))
    };
    let consent_params = format!(
        "{}, {}",
        consent_key("oxehr-permit-actor"),
        consent_key("oxehr-deny-actor")
    );
    let org_ref = vec![("Organization".to_owned(), org.to_owned())];
    // One statement first: does any Consent name a person (anyone's Practitioner, role
    // or care team), does one name the organization with a period, does one deny a
    // label. Usually none does, and that is all a request pays.
    let mut sql = Sql::default();
    sql.s(&format!(
        "SELECT (SELECT 1 FROM idx_reference x WHERE x.param IN ({consent_params}) \
         AND x.target_type IN ('Practitioner', 'PractitionerRole', 'CareTeam') LIMIT 1), \
         (SELECT 1 FROM idx_reference x WHERE x.param IN ({consent_params})"
    ));
    actor_match("x", &org_ref, &mut sql);
    sql.s(&format!(
        " AND EXISTS (SELECT 1 FROM idx_date p WHERE p.rid = x.rid AND +p.param = {}) LIMIT 1), \
         (SELECT 1 FROM idx_token t WHERE t.param = {} LIMIT 1)",
        consent_key("period"),
        consent_key("oxehr-deny-label")
    ));
    let row = tx
        .query(&sql.text, &sql.args)?
        .into_iter()
        .next()
        .unwrap_or_default();
    let found = |i: usize| matches!(row.get(i), Some(SqlValue::Int(_)));
    let (people_named, timed, labels) = (found(0), found(1), found(2));
    // Then, only if some Consent names a person: who this user is, and whether one names
    // them.
    let mut people: Vec<(String, String)> = Vec::new();
    let mut names_me = false;
    if people_named {
        match person.and_then(|p| p.split_once('/')) {
            Some(("Practitioner", id)) => {
                people.push(("Practitioner".into(), id.into()));
                let me = people.clone();
                for role in naming(tx, "PractitionerRole", "practitioner", &me)? {
                    people.push(("PractitionerRole".into(), role));
                }
            }
            Some(("PractitionerRole", id)) => {
                people.push(("PractitionerRole".into(), id.into()));
            }
            _ => {}
        }
        if !people.is_empty() {
            for team in naming(tx, "CareTeam", "participant", &people)? {
                people.push(("CareTeam".into(), team));
            }
            let mut sql = Sql::default();
            sql.s(&format!(
                "SELECT 1 FROM idx_reference x WHERE x.param IN ({consent_params})"
            ));
            actor_match("x", &people, &mut sql);
            sql.s(" LIMIT 1");
            names_me = !tx.query(&sql.text, &sql.args)?.is_empty();
        }
    }
    let consents = names_me || timed;
    let mut actors = org_ref;
    actors.extend(people);
    Ok(StaffRules {
        actors,
        consents,
        labels,
        now,
    })
}

/// ` AND NOT EXISTS (<a compartment of alias a other than those of ids>)`.
fn only_compartments(a: &str, n: &str, ids: &[String], out: &mut Sql) {
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

/// The keys of `_security` (`meta.security`) of every resource type, as an SQL list
/// of literals. A resource-level parameter has a key per type, and the label rule
/// applies to any type.
fn security_keys() -> &'static str {
    static KEYS: OnceLock<String> = OnceLock::new();
    KEYS.get_or_init(|| {
        oxehr_fhir::Definitions::r4()
            .resource_types()
            .into_iter()
            .map(|t| ParamKey::of(t, "_security").0.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// `(<token row x is a confidential label>)`, with the codes as literals (they are
/// constants, and keep a statement's plan the same for every proxy).
fn confidential_condition(x: &str) -> String {
    let list = |codes: &[&str]| {
        codes
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "(({x}.system = '{CONFIDENTIALITY_SYSTEM}' AND {x}.code IN ({})) \
         OR ({x}.system = '{SENSITIVITY_SYSTEM}' AND {x}.code IN ({})))",
        list(CONFIDENTIAL_CODES),
        list(SENSITIVE_CODES)
    )
}

/// One RelatedPerson that names an account as proxy of a patient, as the index has it
/// now. Whether it counts (the patient's age, who granted it) is the policy's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyGrant {
    /// The patient (`RelatedPerson.patient`, an existing Patient's id).
    pub patient: String,
    /// The first instant of the patient's `birthDate` (µs, UTC), when it has one: the
    /// oldest the patient can be, for a partial date such as `2010`.
    pub birth: Option<i64>,
    /// When the RelatedPerson's current version was written (µs): a grant made or
    /// confirmed then.
    pub granted: i64,
}

/// The grants that name `account` as proxy at `now` (µs), sorted by patient: every
/// RelatedPerson with an `identifier` of system [`PROXY_ACCOUNT_SYSTEM`] and value
/// `account`, whose `patient` is an existing Patient, with `active` not false and, if
/// it has a `period`, `now` inside it. Deleted RelatedPersons have no index rows, so
/// a delete revokes as setting `active` to false does.
pub fn proxy_grants(
    tx: &mut dyn ReadTx,
    account: &str,
    now: i64,
) -> Result<Vec<ProxyGrant>, StoreError> {
    let key = |t: &str, c: &str| ParamKey::of(t, c).0;
    let not_deleted = match tx.dialect() {
        crate::sql::Dialect::Sqlite => "p.deleted = 0",
        crate::sql::Dialect::Postgres => "NOT p.deleted",
    };
    let sql = format!(
        "SELECT x.target_id, r.last_updated, \
         (SELECT min(b.low) FROM idx_date b WHERE b.rid = p.rid AND +b.param = {birthdate}) \
         FROM idx_token i \
         JOIN resource r ON r.rid = i.rid \
         JOIN idx_reference x ON x.rid = i.rid \
         JOIN resource p ON p.rtype = 'Patient' AND p.id = x.target_id \
         WHERE i.param = {identifier} AND i.code = ? AND i.system = ? \
         AND r.rtype = 'RelatedPerson' \
         AND +x.param = {patient} AND x.target_type = 'Patient' AND {not_deleted} \
         AND NOT EXISTS (SELECT 1 FROM idx_token a WHERE a.rid = i.rid \
         AND +a.param = {active} AND a.code = 'false') \
         AND NOT EXISTS (SELECT 1 FROM idx_date d WHERE d.rid = i.rid \
         AND +d.param = {period} AND (d.low > ? OR d.high < ?)) \
         ORDER BY x.target_id, r.last_updated",
        birthdate = key("Patient", "birthdate"),
        identifier = key("RelatedPerson", "identifier"),
        patient = key("RelatedPerson", "patient"),
        active = key("RelatedPerson", "active"),
        period = key("RelatedPerson", "oxehr-period"),
    );
    let args = [
        SqlArg::Text(account.to_owned()),
        SqlArg::Text(PROXY_ACCOUNT_SYSTEM.to_owned()),
        SqlArg::Int8(now),
        SqlArg::Int8(now),
    ];
    let bad = |what: &str| StoreError::Corrupt(format!("proxy grant: {what}"));
    let mut out = Vec::new();
    for row in tx.query(&sql, &args)? {
        let mut it = row.into_iter();
        let patient = match it.next() {
            Some(SqlValue::Text(p)) => p,
            _ => return Err(bad("patient")),
        };
        let granted = match it.next() {
            Some(SqlValue::Int(t)) => t,
            _ => return Err(bad("last_updated")),
        };
        let birth = match it.next() {
            Some(SqlValue::Int(b)) => Some(b),
            Some(SqlValue::Null) | None => None,
            _ => return Err(bad("birthdate")),
        };
        out.push(ProxyGrant {
            patient,
            birth,
            granted,
        });
    }
    Ok(out)
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
    crate::care::care_orgs(entries).any(|o| o == org)
}
