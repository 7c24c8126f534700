//! SMART on FHIR OAuth scopes (SMART App Launch 2.x, "Scopes and Launch Context").
//!
//! A resource scope is `context/Type.permissions[?query]`:
//!
//! - context: `patient` (the patient in the launch context), `user` (whatever the signed-in
//!   user may see) or `system` (a backend service, no user);
//! - type: a FHIR resource type or `*`;
//! - permissions, v2 syntax: a subsequence of `cruds` in that order (create, read, update,
//!   delete, search), e.g. `rs`, `cud`, `cruds`; v1 syntax, still accepted: `read` (= `rs`),
//!   `write` (= `cud`) and `*` (= `cruds`);
//! - query (v2 only): `?name=value&...`, search parameters that narrow the grant, e.g.
//!   `patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory`.
//!
//! Other scopes ask for launch context (`launch`, `launch/patient`, `launch/encounter`) or
//! identity (`openid`, `fhirUser`) or set the refresh-token lifetime (`offline_access`,
//! `online_access`). Tokens without a `/` that mean nothing to SMART (`profile`, `email`, a
//! vendor's own) are kept as [`Scope::Other`] so the authorization server can ignore them, as
//! OAuth allows; a token with an unknown `context/` prefix is refused, because it is almost
//! always a misspelt resource scope that would otherwise be silently dropped.
//!
//! [`Display`](std::fmt::Display) renders the canonical v2 form, so `patient/*.read` comes
//! back as `patient/*.rs`.
//!
//! Parsing does not check the resource type against the FHIR type list, and a scope does not
//! grant anything by itself: the access policy intersects it with the user's own rights.

use std::fmt;
use std::str::FromStr;

use oxehr_search::query::{Condition, Filter};

use crate::AuthError;

/// Whose data a resource scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// The patient chosen at launch (`patient/`).
    Patient,
    /// Whatever the signed-in user may access (`user/`).
    User,
    /// A backend service acting without a user (`system/`).
    System,
}

impl Context {
    /// The scope prefix: `patient`, `user` or `system`.
    pub fn code(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }

    /// The context with this exact prefix, if any.
    pub fn parse(s: &str) -> Option<Context> {
        [Context::Patient, Context::User, Context::System]
            .into_iter()
            .find(|context| context.code() == s)
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One of the five SMART v2 permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Perm {
    /// `c`: create (POST, conditional create).
    Create,
    /// `r`: read (read, vread, history of one instance).
    Read,
    /// `u`: update (PUT, PATCH).
    Update,
    /// `d`: delete.
    Delete,
    /// `s`: search (search, history of a type).
    Search,
}

impl Perm {
    /// In the order the letters must appear in a scope.
    const ORDER: [Perm; 5] = [
        Perm::Create,
        Perm::Read,
        Perm::Update,
        Perm::Delete,
        Perm::Search,
    ];

    /// The permission's letter in v2 syntax.
    pub fn letter(self) -> char {
        match self {
            Perm::Create => 'c',
            Perm::Read => 'r',
            Perm::Update => 'u',
            Perm::Delete => 'd',
            Perm::Search => 's',
        }
    }
}

/// The set of permissions a resource scope grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions {
    /// `c`
    pub create: bool,
    /// `r`
    pub read: bool,
    /// `u`
    pub update: bool,
    /// `d`
    pub delete: bool,
    /// `s`
    pub search: bool,
}

impl Permissions {
    /// All five (`cruds`, v1 `*`).
    pub const ALL: Permissions = Permissions {
        create: true,
        read: true,
        update: true,
        delete: true,
        search: true,
    };
    /// v1 `read`: read and search (`rs`).
    pub const V1_READ: Permissions = Permissions {
        create: false,
        read: true,
        update: false,
        delete: false,
        search: true,
    };
    /// v1 `write`: create, update and delete (`cud`).
    pub const V1_WRITE: Permissions = Permissions {
        create: true,
        read: false,
        update: true,
        delete: true,
        search: false,
    };

    /// Whether `perm` is in the set.
    pub fn allows(self, perm: Perm) -> bool {
        match perm {
            Perm::Create => self.create,
            Perm::Read => self.read,
            Perm::Update => self.update,
            Perm::Delete => self.delete,
            Perm::Search => self.search,
        }
    }

    /// Whether the set is empty (no scope parses to one).
    pub fn is_empty(self) -> bool {
        Perm::ORDER.into_iter().all(|perm| !self.allows(perm))
    }

    fn set(&mut self, perm: Perm) {
        match perm {
            Perm::Create => self.create = true,
            Perm::Read => self.read = true,
            Perm::Update => self.update = true,
            Perm::Delete => self.delete = true,
            Perm::Search => self.search = true,
        }
    }

    /// Parses v2 letters: a non-empty subsequence of `cruds`, each letter at most once and in
    /// that order.
    fn parse_v2(letters: &str) -> Option<Permissions> {
        if letters.is_empty() {
            return None;
        }
        let mut permissions = Permissions::default();
        let mut order = Perm::ORDER.into_iter();
        for letter in letters.chars() {
            // Advancing past earlier letters is what rejects "sr" and "rr".
            let perm = order.by_ref().find(|perm| perm.letter() == letter)?;
            permissions.set(perm);
        }
        Some(permissions)
    }
}

impl fmt::Display for Permissions {
    /// The v2 letters, e.g. `rs`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for perm in Perm::ORDER {
            if self.allows(perm) {
                write!(f, "{}", perm.letter())?;
            }
        }
        Ok(())
    }
}

/// A scope granting access to FHIR resources, e.g. `patient/Observation.rs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceScope {
    /// Whose data.
    pub context: Context,
    /// The resource type; `None` is the wildcard `*`.
    pub resource_type: Option<String>,
    /// What may be done.
    pub permissions: Permissions,
    /// v2 search parameters narrowing the grant, in the order given, values as written.
    pub query: Vec<(String, String)>,
}

impl ResourceScope {
    /// Whether this scope covers `perm` on resources of `resource_type`.
    ///
    /// This looks at the type and the permission only. The context says whose records are
    /// reachable, and a non-empty [`query`](Self::query) limits the grant to resources that
    /// match it; both are for the caller to enforce.
    pub fn permits(&self, resource_type: &str, perm: Perm) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|own| own == resource_type)
            && self.permissions.allows(perm)
    }

    /// Whether a query narrows this scope (`patient/Observation.rs?category=…`).
    pub fn is_narrowed(&self) -> bool {
        !self.query.is_empty()
    }

    /// The search filters of this scope's query, which every resource it grants must
    /// pass, or why this server cannot honour the query (it then grants nothing).
    ///
    /// What can be honoured: a query on one named type (`Observation`, not `*`), of the
    /// type's own search parameters with their modifiers and prefixes, values
    /// percent-decoded as in a URL. Chains, `_has` and `_list` are refused, since they
    /// would reach resources of other types, and so are the parameters that shape a
    /// result (`_count`, `_sort`, `_include`, …), which select nothing.
    pub fn narrowing(&self) -> Result<Vec<Filter>, String> {
        let Some(rtype) = self.resource_type.as_deref() else {
            return Err("a query needs one resource type, not `*`".into());
        };
        if !oxehr_fhir::Definitions::r4().is_resource_type(rtype) {
            return Err(format!("{rtype} is not a FHIR resource type"));
        }
        let mut pairs = Vec::with_capacity(self.query.len());
        for (name, value) in &self.query {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| format!("{name}: not UTF-8 once decoded"))
            };
            let (name, value) = (decode(name)?, decode(value)?);
            if !oxehr_search::query::is_filter(&name, &value) {
                return Err(format!("{name} does not select resources"));
            }
            pairs.push((name, value));
        }
        let now_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let opts = oxehr_search::query::ParseOptions {
            lenient: false,
            base_url: None,
            now_micros,
        };
        let q = oxehr_search::query::parse(&[rtype.to_owned()], &pairs, &opts)
            .map_err(|e| e.to_string())?;
        let reaches_other_types = q.filters.iter().flat_map(|f| &f.any_of).any(|c| {
            matches!(
                c,
                Condition::Chain { .. }
                    | Condition::Has { .. }
                    | Condition::InList(_)
                    | Condition::InPatientCompartment(_)
                    | Condition::All(_)
            )
        });
        if reaches_other_types {
            return Err("chains, _has and _list are not honoured in a scope".into());
        }
        if q.filters.is_empty() {
            return Err("the query selects nothing".into());
        }
        Ok(q.filters)
    }
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resource_type = self.resource_type.as_deref().unwrap_or("*");
        write!(f, "{}/{resource_type}.{}", self.context, self.permissions)?;
        for (i, (name, value)) in self.query.iter().enumerate() {
            let separator = if i == 0 { '?' } else { '&' };
            write!(f, "{separator}{name}={value}")?;
        }
        Ok(())
    }
}

/// One OAuth scope as SMART understands it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Access to FHIR resources: `patient/…`, `user/…`, `system/…`.
    Resource(ResourceScope),
    /// `openid`: an OpenID Connect id_token.
    Openid,
    /// `fhirUser`: the id_token names the user's FHIR resource (Practitioner, Patient, …).
    FhirUser,
    /// `launch`: an EHR launch; the `launch` parameter carries the context.
    Launch,
    /// `launch/patient`: a standalone launch asks for a patient to be chosen.
    LaunchPatient,
    /// `launch/encounter`: a standalone launch asks for an encounter to be chosen.
    LaunchEncounter,
    /// `offline_access`: a refresh token that outlives the session.
    OfflineAccess,
    /// `online_access`: a refresh token valid while the user stays signed in.
    OnlineAccess,
    /// A well-formed token SMART does not define (`profile`, `launch/other`, a vendor's own).
    Other(String),
}

impl Scope {
    /// The resource scope inside, if this is one.
    pub fn as_resource(&self) -> Option<&ResourceScope> {
        match self {
            Scope::Resource(resource) => Some(resource),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Resource(resource) => fmt::Display::fmt(resource, f),
            Scope::Openid => f.write_str("openid"),
            Scope::FhirUser => f.write_str("fhirUser"),
            Scope::Launch => f.write_str("launch"),
            Scope::LaunchPatient => f.write_str("launch/patient"),
            Scope::LaunchEncounter => f.write_str("launch/encounter"),
            Scope::OfflineAccess => f.write_str("offline_access"),
            Scope::OnlineAccess => f.write_str("online_access"),
            Scope::Other(other) => f.write_str(other),
        }
    }
}

impl FromStr for Scope {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Scope, AuthError> {
        parse_scope(s)
    }
}

/// Parses one scope token.
pub fn parse_scope(s: &str) -> Result<Scope, AuthError> {
    if s.is_empty() {
        return Err(AuthError::Invalid("scope is empty".to_owned()));
    }
    // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
    if !s
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    {
        return Err(invalid(
            s,
            "contains a character OAuth scopes may not contain",
        ));
    }
    let scope = match s {
        "openid" => Scope::Openid,
        "fhirUser" => Scope::FhirUser,
        "launch" => Scope::Launch,
        "launch/patient" => Scope::LaunchPatient,
        "launch/encounter" => Scope::LaunchEncounter,
        "offline_access" => Scope::OfflineAccess,
        "online_access" => Scope::OnlineAccess,
        _ => match s.split_once('/') {
            None => Scope::Other(s.to_owned()),
            Some(("launch", _)) => Scope::Other(s.to_owned()),
            Some((prefix, rest)) => match Context::parse(prefix) {
                Some(context) => Scope::Resource(parse_resource_scope(s, context, rest)?),
                None => {
                    return Err(invalid(
                        s,
                        "has an unknown context (expected patient/, user/ or system/)",
                    ))
                }
            },
        },
    };
    Ok(scope)
}

/// Parses a space-separated scope list, as in an OAuth `scope` parameter. Extra spaces are
/// tolerated; an empty list gives no scopes.
pub fn parse_scopes(space_separated: &str) -> Result<Vec<Scope>, AuthError> {
    space_separated
        .split(' ')
        .filter(|token| !token.is_empty())
        .map(parse_scope)
        .collect()
}

fn parse_resource_scope(
    whole: &str,
    context: Context,
    rest: &str,
) -> Result<ResourceScope, AuthError> {
    let (body, query) = match rest.split_once('?') {
        Some((body, query)) => (body, Some(query)),
        None => (rest, None),
    };
    let Some((resource_type, letters)) = body.split_once('.') else {
        return Err(invalid(whole, "has no permissions (e.g. `.rs`)"));
    };

    let resource_type = match resource_type {
        "*" => None,
        name if is_resource_type_name(name) => Some(name.to_owned()),
        _ => {
            return Err(invalid(
                whole,
                "has an invalid resource type (expected `*` or a name such as `Observation`)",
            ))
        }
    };

    let (permissions, v1) = match letters {
        "read" => (Permissions::V1_READ, true),
        "write" => (Permissions::V1_WRITE, true),
        "*" => (Permissions::ALL, true),
        v2 => match Permissions::parse_v2(v2) {
            Some(permissions) => (permissions, false),
            None => {
                return Err(invalid(
                    whole,
                    "has invalid permissions (expected letters of `cruds` in that order, \
                     or `read`, `write`, `*`)",
                ))
            }
        },
    };

    let query = match query {
        None => Vec::new(),
        Some(_) if v1 => {
            return Err(invalid(
                whole,
                "combines v1 permissions with a query, which only v2 scopes allow",
            ))
        }
        Some(query) => parse_query(whole, query)?,
    };

    Ok(ResourceScope {
        context,
        resource_type,
        permissions,
        query,
    })
}

fn parse_query(whole: &str, query: &str) -> Result<Vec<(String, String)>, AuthError> {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() && !value.is_empty() => {
                Ok((name.to_owned(), value.to_owned()))
            }
            _ => Err(invalid(
                whole,
                "has a malformed query (expected `?name=value&...`)",
            )),
        })
        .collect()
}

/// `*` aside, a FHIR resource type is an uppercase ASCII letter followed by ASCII letters.
fn is_resource_type_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase()) && bytes.all(|b| b.is_ascii_alphabetic())
}

fn invalid(scope: &str, problem: &str) -> AuthError {
    // Only the part before any query is echoed: query values may identify a patient.
    let shown = scope.split('?').next().unwrap_or_default();
    AuthError::Invalid(format!("scope {shown:?} {problem}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn resource(
        context: Context,
        resource_type: Option<&str>,
        permissions: &str,
        query: &[(&str, &str)],
    ) -> Scope {
        Scope::Resource(ResourceScope {
            context,
            resource_type: resource_type.map(str::to_owned),
            permissions: Permissions::parse_v2(permissions).unwrap(),
            query: query
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        })
    }

    #[test]
    fn parses_the_specs_example_scopes() {
        use Context::*;
        const LAB: &str = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
        let lab_scope = format!("patient/Observation.rs?category={LAB}");
        // (input, expected, canonical rendering)
        let cases: Vec<(&str, Scope, String)> = vec![
            (
                "patient/Observation.rs",
                resource(Patient, Some("Observation"), "rs", &[]),
                "patient/Observation.rs".into(),
            ),
            (
                "user/*.cruds",
                resource(User, None, "cruds", &[]),
                "user/*.cruds".into(),
            ),
            (
                "patient/*.rs",
                resource(Patient, None, "rs", &[]),
                "patient/*.rs".into(),
            ),
            (
                "system/*.rs",
                resource(System, None, "rs", &[]),
                "system/*.rs".into(),
            ),
            (
                "user/Appointment.cu",
                resource(User, Some("Appointment"), "cu", &[]),
                "user/Appointment.cu".into(),
            ),
            (
                "patient/Condition.d",
                resource(Patient, Some("Condition"), "d", &[]),
                "patient/Condition.d".into(),
            ),
            (
                lab_scope.as_str(),
                resource(Patient, Some("Observation"), "rs", &[("category", LAB)]),
                lab_scope.clone(),
            ),
            (
                "patient/Condition.rs?category=http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern",
                resource(
                    Patient,
                    Some("Condition"),
                    "rs",
                    &[(
                        "category",
                        "http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern",
                    )],
                ),
                "patient/Condition.rs?category=http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern".into(),
            ),
            (
                "user/Observation.rs?category=vital-signs&code:in=http://example.org/vs",
                resource(
                    User,
                    Some("Observation"),
                    "rs",
                    &[("category", "vital-signs"), ("code:in", "http://example.org/vs")],
                ),
                "user/Observation.rs?category=vital-signs&code:in=http://example.org/vs".into(),
            ),
            // v1 forms, rendered in v2.
            (
                "patient/*.read",
                resource(Patient, None, "rs", &[]),
                "patient/*.rs".into(),
            ),
            (
                "user/Encounter.write",
                resource(User, Some("Encounter"), "cud", &[]),
                "user/Encounter.cud".into(),
            ),
            (
                "user/*.*",
                resource(User, None, "cruds", &[]),
                "user/*.cruds".into(),
            ),
            (
                "system/Patient.read",
                resource(System, Some("Patient"), "rs", &[]),
                "system/Patient.rs".into(),
            ),
            ("launch", Scope::Launch, "launch".into()),
            ("launch/patient", Scope::LaunchPatient, "launch/patient".into()),
            ("launch/encounter", Scope::LaunchEncounter, "launch/encounter".into()),
            ("openid", Scope::Openid, "openid".into()),
            ("fhirUser", Scope::FhirUser, "fhirUser".into()),
            ("offline_access", Scope::OfflineAccess, "offline_access".into()),
            ("online_access", Scope::OnlineAccess, "online_access".into()),
            ("profile", Scope::Other("profile".into()), "profile".into()),
            (
                "launch/location",
                Scope::Other("launch/location".into()),
                "launch/location".into(),
            ),
        ];
        for (input, expected, canonical) in cases {
            let scope = parse_scope(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(scope, expected, "{input}");
            assert_eq!(scope.to_string(), canonical, "{input}");
            // The canonical form parses back to the same scope.
            assert_eq!(parse_scope(&canonical).unwrap(), expected, "{canonical}");
            assert_eq!(input.parse::<Scope>().unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn v2_permission_letters_must_follow_cruds_order() {
        let good = [
            ("c", "c"),
            ("r", "r"),
            ("s", "s"),
            ("rs", "rs"),
            ("cud", "cud"),
            ("crs", "crs"),
            ("cruds", "cruds"),
            ("ruds", "ruds"),
        ];
        for (letters, rendered) in good {
            let scope = parse_scope(&format!("user/Patient.{letters}")).unwrap();
            let permissions = scope.as_resource().unwrap().permissions;
            assert_eq!(permissions.to_string(), rendered);
            for perm in Perm::ORDER {
                assert_eq!(
                    permissions.allows(perm),
                    letters.contains(perm.letter()),
                    "{letters} {perm:?}"
                );
            }
        }
        for letters in [
            "sr", "rr", "x", "", "dc", "crudss", "scrud", "RS", "r s", "rs*", "readx", "Read",
        ] {
            assert!(
                parse_scope(&format!("user/Patient.{letters}")).is_err(),
                "{letters:?}"
            );
        }
    }

    #[test]
    fn rejects_malformed_scopes() {
        let cases = [
            "",
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.x",
            "patient/observation.rs",
            "patient/Observation",
            "patient/Observation.",
            "patient/.rs",
            "patient/*",
            "patient/Obs-ervation.rs",
            "patient/Observation1.rs",
            "patient/Ob.servation.rs",
            "patient/**.rs",
            "foo/Observation.rs",
            "Patient/Observation.rs",
            "/Observation.rs",
            "patient/Observation.rs?",
            "patient/Observation.rs?category",
            "patient/Observation.rs?category=",
            "patient/Observation.rs?=laboratory",
            "patient/Observation.rs?category=a&&code=b",
            "patient/Observation.rs?category=a&",
            "patient/Observation.read?category=laboratory",
            "patient/Observation.rs extra",
            "open\"id",
            "back\\slash",
            "tab\tscope",
            "ünicode",
        ];
        for input in cases {
            assert!(parse_scope(input).is_err(), "{input:?} should be rejected");
        }
    }

    #[test]
    fn error_messages_name_the_scope_but_not_its_query() {
        let message = parse_scope("patient/Observation.sr")
            .unwrap_err()
            .to_string();
        assert!(message.contains("patient/Observation.sr"), "{message}");
        assert!(message.contains("permissions"), "{message}");

        let message = parse_scope("patient/Observation.rs?subject=Patient/123&")
            .unwrap_err()
            .to_string();
        assert!(!message.contains("123"), "{message}");
        assert!(message.contains("query"), "{message}");
    }

    #[test]
    fn parse_scopes_splits_on_spaces() {
        let scopes =
            parse_scopes("launch/patient  openid fhirUser offline_access patient/*.rs").unwrap();
        assert_eq!(
            scopes,
            vec![
                Scope::LaunchPatient,
                Scope::Openid,
                Scope::FhirUser,
                Scope::OfflineAccess,
                resource(Context::Patient, None, "rs", &[]),
            ]
        );
        assert_eq!(parse_scopes("").unwrap(), vec![]);
        assert_eq!(parse_scopes("   ").unwrap(), vec![]);
        assert!(parse_scopes("openid patient/Observation.sr").is_err());
    }

    #[test]
    fn permits_checks_type_and_permission() {
        use Perm::*;
        // (scope, resource type, permission, expected)
        let cases = [
            ("patient/Observation.rs", "Observation", Read, true),
            ("patient/Observation.rs", "Observation", Search, true),
            ("patient/Observation.rs", "Observation", Create, false),
            ("patient/Observation.rs", "Observation", Update, false),
            ("patient/Observation.rs", "Observation", Delete, false),
            ("patient/Observation.rs", "Condition", Read, false),
            ("patient/Observation.rs", "observation", Read, false),
            ("user/*.cruds", "Patient", Delete, true),
            ("user/*.cruds", "Anything", Create, true),
            ("user/*.read", "Encounter", Search, true),
            ("user/*.read", "Encounter", Update, false),
            ("user/Encounter.write", "Encounter", Update, true),
            ("user/Encounter.write", "Encounter", Read, false),
            ("system/*.s", "Patient", Search, true),
            ("system/*.s", "Patient", Read, false),
            (
                "patient/Observation.rs?category=laboratory",
                "Observation",
                Read,
                true,
            ),
        ];
        for (scope, resource_type, perm, expected) in cases {
            let parsed = parse_scope(scope).unwrap();
            let resource = parsed.as_resource().unwrap();
            assert_eq!(
                resource.permits(resource_type, perm),
                expected,
                "{scope} {resource_type} {perm:?}"
            );
        }
    }

    #[test]
    fn non_resource_scopes_have_no_resource_part() {
        for input in ["openid", "launch", "profile"] {
            assert!(parse_scope(input).unwrap().as_resource().is_none());
        }
    }

    #[test]
    fn context_codes_round_trip() {
        for context in [Context::Patient, Context::User, Context::System] {
            assert_eq!(Context::parse(context.code()), Some(context));
            assert_eq!(context.to_string(), context.code());
        }
        assert_eq!(Context::parse("Patient"), None);
        assert_eq!(Context::parse("launch"), None);
    }

    #[test]
    fn permission_constants_match_v1_meanings() {
        assert_eq!(Permissions::V1_READ.to_string(), "rs");
        assert_eq!(Permissions::V1_WRITE.to_string(), "cud");
        assert_eq!(Permissions::ALL.to_string(), "cruds");
        assert!(Permissions::default().is_empty());
        assert!(!Permissions::V1_READ.is_empty());
    }
}
