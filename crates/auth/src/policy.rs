//! The access policy: who may do what to which resource types, and whose records they
//! may see. One place; `oxehr-records` applies it to every interaction (reads, searches
//! with everything they reveal, history, writes), and the HTTP layer only builds the
//! [`Caller`] from a verified token.
//!
//! Two questions, both of which must say yes:
//! 1. **May this caller do `perm` on this resource type?** The role's rights
//!    ([`role_allows`]) intersected with the token's SMART scopes.
//! 2. **May this caller see this patient's record?** [`Caller::access`]: a patient sees
//!    their own compartment; clinicians, nurses and front-desk staff see patients their
//!    organization has a care relationship with, unless the patient's Consent denies the
//!    organization (the rule is in `oxehr_store::access`, where it runs as SQL), plus
//!    patients they broke the glass for; organization administrators see no patient's
//!    record; system administrators and backend services see everything.

use oxehr_store::access::Access;

use crate::scope::{Context, Perm, ResourceScope, Scope};
use crate::Role;

/// How long a break-the-glass grant lasts, in seconds.
pub const BREAK_THE_GLASS_SECS: i64 = 3600;

/// Who is asking, as a verified token (or the server itself) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account name (`oxehr` for the server's own work: import, demo data).
    pub user: String,
    pub role: Role,
    /// The Organization id the account belongs to.
    pub organization: Option<String>,
    /// The resource the account stands for (`Patient/…`, `Practitioner/…`).
    pub person: Option<String>,
    /// The patient in context: a patient's own id.
    pub patient: Option<String>,
    /// The resource scopes the token grants.
    pub scopes: Vec<ResourceScope>,
    /// The client's network address, for the audit trail.
    pub client: Option<String>,
    /// The server itself (import, demo data): its reads are not audited, and its writes
    /// are audited once per job rather than per resource.
    pub internal: bool,
    /// Patients this request has already found visible under the full rule (care,
    /// consent, break-the-glass): `records` sets it ([`Caller::confirmed_visible`]) for
    /// the rest of one request about one patient, so that each statement need not work
    /// out the organization's whole care set again. Empty everywhere else.
    pub confirmed: Vec<String>,
}

/// Types describing the organization itself rather than a patient, which its
/// administrators and front desk maintain.
const DIRECTORY_TYPES: &[&str] = &[
    "Organization",
    "OrganizationAffiliation",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "HealthcareService",
    "Endpoint",
];

/// What reception works with: registration, scheduling, coverage.
const FRONT_DESK_TYPES: &[&str] = &[
    "Patient",
    "RelatedPerson",
    "Appointment",
    "AppointmentResponse",
    "Schedule",
    "Slot",
    "Coverage",
];

/// What a patient may write about themselves through the portal: consents, messages,
/// appointment and refill requests, questionnaire answers.
const PATIENT_WRITABLE: &[&str] = &[
    "Consent",
    "Communication",
    "CommunicationRequest",
    "Appointment",
    "Task",
    "QuestionnaireResponse",
];

/// Whether `role` may do `perm` on `resource_type` at all (before scopes and before
/// whose record it is).
pub fn role_allows(role: Role, resource_type: &str, perm: Perm) -> bool {
    let read = matches!(perm, Perm::Read | Perm::Search);
    match role {
        Role::SystemAdmin | Role::Clinician | Role::Nurse => true,
        Role::FrontDesk => {
            FRONT_DESK_TYPES.contains(&resource_type)
                || DIRECTORY_TYPES.contains(&resource_type)
                || (read && resource_type == "Encounter")
        }
        Role::OrgAdmin => DIRECTORY_TYPES.contains(&resource_type),
        Role::Patient => read || PATIENT_WRITABLE.contains(&resource_type),
    }
}

impl Caller {
    /// The server itself (import, demo data, set-up): everything.
    pub fn server() -> Caller {
        Caller {
            user: "oxehr".into(),
            role: Role::SystemAdmin,
            organization: None,
            person: None,
            patient: None,
            scopes: vec![ResourceScope {
                context: Context::System,
                resource_type: None,
                permissions: crate::scope::Permissions::ALL,
                query: Vec::new(),
            }],
            client: None,
            internal: true,
            confirmed: Vec::new(),
        }
    }

    /// A caller from its token's fields. Scopes the role could never use are dropped
    /// (a patient's `user/` or `system/` scope, a staff member's `system/` scope), and
    /// so are scopes narrowed by a query, which this server does not enforce yet.
    pub fn new(
        user: String,
        role: Role,
        organization: Option<String>,
        person: Option<String>,
        patient: Option<String>,
        scopes: &[Scope],
    ) -> Caller {
        let scopes = scopes
            .iter()
            .filter_map(Scope::as_resource)
            .filter(|s| s.query.is_empty())
            .filter(|s| crate::oauth::role_may_hold(role, s))
            .cloned()
            .collect();
        Caller {
            user,
            role,
            organization,
            person,
            patient,
            scopes,
            client: None,
            internal: false,
            confirmed: Vec::new(),
        }
    }

    /// Whether the caller may do `perm` on `resource_type`: the role allows it and a
    /// scope grants it.
    pub fn allows(&self, resource_type: &str, perm: Perm) -> bool {
        role_allows(self.role, resource_type, perm)
            && self.scopes.iter().any(|s| s.permits(resource_type, perm))
    }

    /// Whose records the caller may see; `grants` are the patients the caller broke the
    /// glass for (read from the audit log by the caller of this function).
    pub fn access(&self, grants: Vec<String>) -> Access {
        match self.role {
            Role::SystemAdmin => Access::All,
            Role::Patient => Access::Patients(self.patient.iter().cloned().collect()),
            Role::OrgAdmin => Access::Patients(Vec::new()),
            Role::Clinician | Role::Nurse | Role::FrontDesk => match &self.organization {
                Some(org) => Access::Staff {
                    org: org.clone(),
                    // A confirmed patient is visible as a granted one is (the check was
                    // made with these same grants, care and consents).
                    grants: grants
                        .into_iter()
                        .chain(self.confirmed.iter().cloned())
                        .collect(),
                },
                None => Access::Patients(Vec::new()),
            },
        }
    }

    /// This caller, with `patient` confirmed visible. Only `records` calls it, after
    /// checking; the result is for the rest of the one request that checked.
    pub fn confirmed_visible(&self, patient: &str) -> Caller {
        let mut c = self.clone();
        if !c.confirmed.iter().any(|p| p == patient) {
            c.confirmed.push(patient.to_owned());
        }
        c
    }

    /// Whether the caller's access depends on break-the-glass grants (staff who see
    /// records by care relationship).
    pub fn uses_grants(&self) -> bool {
        matches!(self.role, Role::Clinician | Role::Nurse | Role::FrontDesk)
            && self.organization.is_some()
    }

    /// Whether the caller may break the glass: clinicians and nurses.
    pub fn may_break_the_glass(&self) -> bool {
        matches!(self.role, Role::Clinician | Role::Nurse) && self.organization.is_some()
    }

    /// Whether a resource a write stores must lie in the caller's own record (a patient
    /// writes only about themselves, never a resource outside any compartment).
    pub fn writes_only_own_record(&self) -> bool {
        self.role == Role::Patient
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_scopes;

    fn caller(role: Role, scopes: &str) -> Caller {
        Caller::new(
            "u".into(),
            role,
            Some("org1".into()),
            None,
            (role == Role::Patient).then(|| "p1".to_string()),
            &parse_scopes(scopes).unwrap(),
        )
    }

    #[test]
    fn role_and_scope_must_both_allow() {
        let c = caller(Role::Clinician, "user/Observation.rs");
        assert!(c.allows("Observation", Perm::Read));
        assert!(c.allows("Observation", Perm::Search));
        assert!(!c.allows("Observation", Perm::Create), "scope lacks c");
        assert!(!c.allows("Patient", Perm::Read), "scope lacks the type");
        let f = caller(Role::FrontDesk, "user/*.cruds");
        assert!(f.allows("Appointment", Perm::Create));
        assert!(f.allows("Encounter", Perm::Read));
        assert!(!f.allows("Encounter", Perm::Create));
        assert!(
            !f.allows("Observation", Perm::Read),
            "role lacks clinical types"
        );
        let a = caller(Role::OrgAdmin, "user/*.cruds");
        assert!(a.allows("Practitioner", Perm::Update));
        assert!(!a.allows("Condition", Perm::Read));
    }

    #[test]
    fn patients_keep_only_patient_scopes_and_write_only_portal_types() {
        let p = caller(Role::Patient, "patient/*.cruds user/*.cruds system/*.rs");
        assert_eq!(p.scopes.len(), 1);
        assert!(p.allows("Observation", Perm::Read));
        assert!(p.allows("Consent", Perm::Create));
        assert!(!p.allows("Observation", Perm::Create));
        assert_eq!(p.access(vec![]), Access::Patients(vec!["p1".into()]));
        let s = caller(Role::Nurse, "system/*.rs");
        assert!(s.scopes.is_empty(), "staff get no system/ scopes");
        assert!(!s.allows("Observation", Perm::Read));
    }

    #[test]
    fn access_by_role() {
        assert_eq!(
            caller(Role::SystemAdmin, "system/*.rs").access(vec![]),
            Access::All
        );
        assert_eq!(
            caller(Role::OrgAdmin, "user/*.rs").access(vec![]),
            Access::Patients(vec![])
        );
        assert_eq!(
            caller(Role::Clinician, "user/*.rs").access(vec!["p9".into()]),
            Access::Staff {
                org: "org1".into(),
                grants: vec!["p9".into()]
            }
        );
        let narrowed = caller(Role::Clinician, "user/Observation.rs?category=laboratory");
        assert!(
            narrowed.scopes.is_empty(),
            "query-narrowed scopes are not honoured yet"
        );
    }
}
