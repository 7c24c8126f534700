//! The access policy: who may do what to which resource types, and whose records they
//! may see. One place; `oxehr-records` applies it to every interaction (reads, searches
//! with everything they reveal, history, writes), and the HTTP layer only builds the
//! [`Caller`] from a verified token.
//!
//! Two questions, both of which must say yes:
//! 1. **May this caller do `perm` on this resource type?** The role's rights
//!    ([`role_allows`]) intersected with the token's SMART scopes. A SMART v2 scope
//!    narrowed by a query (`patient/Observation.rs?category=…`) grants the type only
//!    partly ([`TypeGrant::Narrowed`]): reads and searches of the resources matching
//!    it, which `oxehr-records` enforces where it honours such grants and refuses
//!    elsewhere.
//! 2. **May this caller see this patient's record?** [`Caller::access`]: a patient sees
//!    their own compartment; clinicians, nurses and front-desk staff see patients their
//!    organization has a care relationship with, unless the patient's Consent denies the
//!    organization (the rule is in `oxehr_store::access`, where it runs as SQL), plus
//!    patients they broke the glass for; a proxy sees the patients RelatedPersons name it
//!    for ([`proxy_access`], with the adolescent rule); organization administrators see
//!    no patient's record; system administrators and backend services see everything.

use oxehr_store::access::{Access, ProxyGrant};
use time::{Date, Month, OffsetDateTime};

use crate::scope::{Context, Perm, ResourceScope, Scope};
use crate::Role;

/// How long a break-the-glass grant lasts, in seconds.
pub const BREAK_THE_GLASS_SECS: i64 = 3600;

/// What a caller may do on one resource type ([`Caller::grant`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeGrant<'a> {
    /// Every resource of the type that the caller can see.
    Whole,
    /// Only those matching the query of one of these scopes (SMART v2 granular scopes,
    /// `patient/Observation.rs?category=…`); each scope's
    /// [`narrowing`](ResourceScope::narrowing) is known to parse.
    Narrowed(Vec<&'a ResourceScope>),
    /// None.
    Nothing,
}

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
/// appointment and refill requests, questionnaire answers, and the RelatedPersons that
/// grant (or, set inactive, revoke) a proxy's access to their record.
const PATIENT_WRITABLE: &[&str] = &[
    "Consent",
    "Communication",
    "CommunicationRequest",
    "Appointment",
    "Task",
    "QuestionnaireResponse",
    "RelatedPerson",
];

/// The one type a patient writes and their proxy does not: who else acts for the
/// patient is the patient's (or the staff's) decision, not another proxy's.
const NOT_PROXY_WRITABLE: &str = "RelatedPerson";

/// The age from which a proxy no longer sees a patient's confidential records.
pub const ADOLESCENT_FROM: i32 = 12;
/// The age from which a proxy's access ends, unless the adult patient grants it again.
pub const ADULT_FROM: i32 = 18;

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
        Role::Proxy => {
            read || (PATIENT_WRITABLE.contains(&resource_type)
                && resource_type != NOT_PROXY_WRITABLE)
        }
    }
}

/// A person's age in whole years on `day`, born on `birth`: a year is added on the
/// birthday (29 February's, in a year without one, on 1 March).
pub fn age_on(birth: Date, day: Date) -> i32 {
    let years = day.year() - birth.year();
    let before_birthday =
        (u8::from(day.month()), day.day()) < (u8::from(birth.month()), birth.day());
    years - i32::from(before_birthday)
}

/// The first day on which someone born on `birth` is `years` old.
pub fn birthday(birth: Date, years: i32) -> Date {
    let year = birth.year() + years;
    Date::from_calendar_date(year, birth.month(), birth.day())
        // 29 February in a year without one: the age is reached on 1 March.
        .or_else(|_| Date::from_calendar_date(year, Month::March, 1))
        .unwrap_or(Date::MAX)
}

/// The UTC day of an instant in microseconds since the Unix epoch (`None` out of range).
pub fn day_of(micros: i64) -> Option<Date> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .ok()
        .map(|t| t.date())
}

/// Whose records a proxy sees on `today` (UTC), from the RelatedPersons that name it
/// (`oxehr_store::access::proxy_grants`). For each patient, by age on `today`:
///
/// - under [`ADOLESCENT_FROM`]: the whole record;
/// - from [`ADOLESCENT_FROM`] to [`ADULT_FROM`] − 1, or of unknown age (no birth
///   date): the record but the resources labelled confidential (the patient is
///   `restricted`);
/// - from [`ADULT_FROM`]: nothing, unless a grant was written (created or updated) on
///   or after the 18th birthday: the adult's own grant, which gives the whole record.
///
/// A partial birth date counts from its first day (the oldest the patient can be), so
/// the adolescent's protections start no later than they should.
pub fn proxy_access(grants: &[ProxyGrant], today: Date) -> Access {
    let mut patients: Vec<String> = Vec::new();
    let mut restricted: Vec<String> = Vec::new();
    for g in grants {
        let birth = g.birth.and_then(day_of);
        let (counts, restrict) = match birth {
            None => (true, true),
            Some(b) => match age_on(b, today) {
                age if age < ADOLESCENT_FROM => (true, false),
                age if age < ADULT_FROM => (true, true),
                _ => (
                    day_of(g.granted).is_some_and(|d| d >= birthday(b, ADULT_FROM)),
                    false,
                ),
            },
        };
        if counts {
            patients.push(g.patient.clone());
            if restrict {
                restricted.push(g.patient.clone());
            }
        }
    }
    patients.sort();
    patients.dedup();
    restricted.sort();
    restricted.dedup();
    Access::Proxy {
        patients,
        restricted,
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
    /// (a patient's `user/` or `system/` scope, a staff member's `system/` scope). A
    /// scope narrowed by a query keeps only its read and search permissions, and only
    /// when this server can honour its query ([`ResourceScope::narrowing`]); otherwise
    /// it grants nothing. A proxy has no patient of its own: `patient` is ignored (whose
    /// records it sees is read from the record on every request).
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
            .filter(|s| crate::oauth::role_may_hold(role, s))
            .filter_map(|s| {
                if !s.is_narrowed() {
                    return Some(s.clone());
                }
                let read_search = crate::oauth::read_and_search_only(s)?;
                read_search.narrowing().is_ok().then_some(read_search)
            })
            .collect();
        let patient = if role == Role::Proxy { None } else { patient };
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

    /// Whether the caller may do `perm` on every resource of `resource_type` (that it
    /// can see): the role allows it and a scope not narrowed by a query grants it.
    pub fn allows(&self, resource_type: &str, perm: Perm) -> bool {
        matches!(self.grant(resource_type, perm), TypeGrant::Whole)
    }

    /// How far the caller may do `perm` on `resource_type`: on the whole type, only on
    /// resources matching the queries of its narrowed scopes (any one of them), or not
    /// at all. Whole wins: a narrowed scope adds nothing beside an un-narrowed one.
    pub fn grant(&self, resource_type: &str, perm: Perm) -> TypeGrant<'_> {
        if !role_allows(self.role, resource_type, perm) {
            return TypeGrant::Nothing;
        }
        let mut narrowed = Vec::new();
        for s in self
            .scopes
            .iter()
            .filter(|s| s.permits(resource_type, perm))
        {
            if !s.is_narrowed() {
                return TypeGrant::Whole;
            }
            narrowed.push(s);
        }
        if narrowed.is_empty() {
            TypeGrant::Nothing
        } else {
            TypeGrant::Narrowed(narrowed)
        }
    }

    /// Whose records the caller may see; `grants` are the patients the caller broke the
    /// glass for (read from the audit log by the caller of this function). A proxy's
    /// access is [`proxy_access`] of its grants; here it sees no patient's record.
    pub fn access(&self, grants: Vec<String>) -> Access {
        match self.role {
            Role::SystemAdmin => Access::All,
            Role::Patient => Access::Patients(self.patient.iter().cloned().collect()),
            Role::OrgAdmin | Role::Proxy => Access::Patients(Vec::new()),
            Role::Clinician | Role::Nurse | Role::FrontDesk => match &self.organization {
                Some(org) => Access::Staff {
                    org: org.clone(),
                    // Worked out by the record layer, which reads the Consents.
                    rules: Default::default(),
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

    /// Whether a resource a write stores must lie in the records the caller sees (a
    /// patient writes only about themselves, a proxy only in the records of the patients
    /// it acts for, never a resource outside any compartment).
    pub fn writes_only_own_record(&self) -> bool {
        matches!(self.role, Role::Patient | Role::Proxy)
    }

    /// Whether the caller acts for patients named by RelatedPersons (its access is
    /// [`proxy_access`] of its grants).
    pub fn is_proxy(&self) -> bool {
        self.role == Role::Proxy
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
                grants: vec!["p9".into()],
                rules: Default::default(),
            }
        );
    }

    #[test]
    fn a_scope_narrowed_by_a_query_grants_reads_and_searches_of_what_matches() {
        let lab = "user/Observation.cruds?category=laboratory";
        let narrowed = caller(Role::Clinician, lab);
        assert_eq!(
            narrowed
                .scopes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["user/Observation.rs?category=laboratory"],
            "create, update and delete are taken away"
        );
        assert!(
            !narrowed.allows("Observation", Perm::Read),
            "not the whole type"
        );
        match narrowed.grant("Observation", Perm::Search) {
            TypeGrant::Narrowed(scopes) => {
                assert_eq!(scopes.len(), 1);
                let filters = scopes[0].narrowing().unwrap();
                assert_eq!(filters.len(), 1, "one parameter, one filter");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            narrowed.grant("Observation", Perm::Create),
            TypeGrant::Nothing
        );
        assert_eq!(narrowed.grant("Condition", Perm::Read), TypeGrant::Nothing);
        // Whole wins over narrowed.
        let both = caller(Role::Clinician, &format!("{lab} user/Observation.r"));
        assert_eq!(both.grant("Observation", Perm::Read), TypeGrant::Whole);
        assert!(matches!(
            both.grant("Observation", Perm::Search),
            TypeGrant::Narrowed(_)
        ));
        // The role still bounds it, and a query this server cannot honour grants nothing.
        let front = caller(Role::FrontDesk, "user/Observation.rs?category=laboratory");
        assert_eq!(front.grant("Observation", Perm::Read), TypeGrant::Nothing);
        for unhonoured in [
            "user/Observation.rs?colour=red",
            "user/*.rs?category=laboratory",
            "user/Observation.rs?subject:Patient.name=x",
        ] {
            assert!(
                caller(Role::Clinician, unhonoured).scopes.is_empty(),
                "{unhonoured}"
            );
        }
    }

    #[test]
    fn a_proxy_reads_like_a_patient_and_writes_what_a_patient_writes_but_related_persons() {
        let p = Caller::new(
            "mum".into(),
            Role::Proxy,
            None,
            None,
            Some("someone".into()),
            &parse_scopes("patient/*.cruds user/*.cruds system/*.rs").unwrap(),
        );
        assert_eq!(
            p.patient, None,
            "a proxy's token names no patient of its own"
        );
        assert_eq!(p.scopes.len(), 1, "only patient/ scopes");
        assert_eq!(
            p.access(vec!["x".into()]),
            Access::Patients(vec![]),
            "outside proxy_access, nothing"
        );
        assert!(p.writes_only_own_record() && p.is_proxy() && !p.uses_grants());
        // (type, permission, patient allowed, proxy allowed)
        let cases = [
            ("Observation", Perm::Read, true, true),
            ("Observation", Perm::Search, true, true),
            ("Observation", Perm::Create, false, false),
            ("Patient", Perm::Update, false, false),
            ("Consent", Perm::Create, true, true),
            ("Communication", Perm::Create, true, true),
            ("Appointment", Perm::Update, true, true),
            ("QuestionnaireResponse", Perm::Create, true, true),
            ("RelatedPerson", Perm::Read, true, true),
            ("RelatedPerson", Perm::Create, true, false),
            ("RelatedPerson", Perm::Update, true, false),
            ("RelatedPerson", Perm::Delete, true, false),
        ];
        for (t, perm, patient, proxy) in cases {
            assert_eq!(
                role_allows(Role::Patient, t, perm),
                patient,
                "patient {t} {perm:?}"
            );
            assert_eq!(
                role_allows(Role::Proxy, t, perm),
                proxy,
                "proxy {t} {perm:?}"
            );
        }
    }

    /// The day `years` before `today`, same month and day (28 February for a 29th that
    /// year lacks): the birth date of someone whose birthday it is, or just was.
    fn years_before(today: Date, years: i32) -> Date {
        let year = today.year() - years;
        Date::from_calendar_date(year, today.month(), today.day())
            .or_else(|_| Date::from_calendar_date(year, Month::February, 28))
            .expect("a date")
    }

    fn micros(d: Date) -> i64 {
        (d.midnight().assume_utc().unix_timestamp_nanos() / 1_000) as i64
    }

    #[test]
    fn ages_turn_on_the_birthday() {
        let today = OffsetDateTime::now_utc().date();
        let next = |d: Date| d.next_day().expect("a next day");
        // (born, age today)
        let cases = [
            (
                next(years_before(today, 12)),
                11,
                "the day before the 12th birthday",
            ),
            (years_before(today, 12), 12, "the 12th birthday"),
            (
                next(years_before(today, 18)),
                17,
                "the day before the 18th birthday",
            ),
            (years_before(today, 18), 18, "the 18th birthday"),
            (today, 0, "born today"),
        ];
        for (born, age, what) in cases {
            assert_eq!(
                age_on(born, today),
                age,
                "{what}: born {born}, today {today}"
            );
        }
        // 29 February: a year older on 1 March in a year without one.
        let leap = Date::from_calendar_date(2008, Month::February, 29).unwrap();
        let on = |y, m, d| Date::from_calendar_date(y, m, d).unwrap();
        assert_eq!(age_on(leap, on(2026, Month::February, 28)), 17);
        assert_eq!(age_on(leap, on(2026, Month::March, 1)), 18);
        assert_eq!(age_on(leap, on(2028, Month::February, 29)), 20);
        assert_eq!(birthday(leap, 18), on(2026, Month::March, 1));
        assert_eq!(birthday(leap, 20), on(2028, Month::February, 29));
    }

    #[test]
    fn proxy_access_follows_the_patients_ages() {
        let today = OffsetDateTime::now_utc().date();
        let next = |d: Date| d.next_day().expect("a next day");
        let previous = |d: Date| d.previous_day().expect("a previous day");
        let grant = |patient: &str, born: Option<Date>, granted: Date| ProxyGrant {
            patient: patient.into(),
            birth: born.map(micros),
            granted: micros(granted) + 3_600_000_000,
        };
        let long_ago = years_before(today, 30);
        let turned_18 = years_before(today, 18);
        let grants = [
            grant("almost-12", Some(next(years_before(today, 12))), long_ago),
            grant("just-12", Some(years_before(today, 12)), long_ago),
            grant("almost-18", Some(next(turned_18)), long_ago),
            // 18 today: the parent's grant from childhood has ended...
            grant("adult-old-grant", Some(turned_18), previous(today)),
            // ...but a grant written on the 18th birthday is the adult's own.
            grant("adult-regranted", Some(turned_18), today),
            grant("unknown-age", None, long_ago),
            // Two grants for one patient count once.
            grant("just-12", Some(years_before(today, 12)), today),
        ];
        assert_eq!(
            proxy_access(&grants, today),
            Access::Proxy {
                patients: [
                    "adult-regranted",
                    "almost-12",
                    "almost-18",
                    "just-12",
                    "unknown-age"
                ]
                .map(String::from)
                .to_vec(),
                restricted: ["almost-18", "just-12", "unknown-age"]
                    .map(String::from)
                    .to_vec(),
            }
        );
        assert_eq!(
            proxy_access(&[], today),
            Access::Proxy {
                patients: vec![],
                restricted: vec![]
            }
        );
    }
}
