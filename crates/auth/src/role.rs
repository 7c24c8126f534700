//! The roles an account can hold.
//!
//! A role says what kind of person an account belongs to; what each role may do is decided
//! by the access policy, which is not in this module. The codes are the stable spelling
//! stored in the database and shown in configuration.

use std::fmt;

/// The kind of person an account belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A patient using the portal to see their own record.
    Patient,
    /// A physician or other licensed prescriber.
    Clinician,
    /// A nurse.
    Nurse,
    /// Reception and scheduling staff.
    FrontDesk,
    /// Administers one organisation's users and settings.
    OrgAdmin,
    /// Administers the whole server.
    SystemAdmin,
    /// A parent, guardian or other person acting for patients: sees and writes what a
    /// patient would in the records of the patients it acts for (RelatedPerson
    /// resources name them; see `oxehr_store::access`). Not staff.
    Proxy,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 7] = [
        Role::Patient,
        Role::Clinician,
        Role::Nurse,
        Role::FrontDesk,
        Role::OrgAdmin,
        Role::SystemAdmin,
        Role::Proxy,
    ];

    /// The role's stable code, e.g. `"front-desk"`.
    pub fn code(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Clinician => "clinician",
            Role::Nurse => "nurse",
            Role::FrontDesk => "front-desk",
            Role::OrgAdmin => "org-admin",
            Role::SystemAdmin => "system-admin",
            Role::Proxy => "proxy",
        }
    }

    /// The role with this exact code (case-sensitive), if any.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.code() == s)
    }

    /// Whether the role belongs to the organisation's staff, i.e. anyone but a patient
    /// or a patient's proxy.
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Patient | Role::Proxy)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_spellings() {
        let cases = [
            (Role::Patient, "patient", false),
            (Role::Clinician, "clinician", true),
            (Role::Nurse, "nurse", true),
            (Role::FrontDesk, "front-desk", true),
            (Role::OrgAdmin, "org-admin", true),
            (Role::SystemAdmin, "system-admin", true),
            (Role::Proxy, "proxy", false),
        ];
        assert_eq!(cases.len(), Role::ALL.len());
        for (role, code, staff) in cases {
            assert_eq!(role.code(), code);
            assert_eq!(role.to_string(), code);
            assert_eq!(Role::parse(code), Some(role));
            assert_eq!(role.is_staff(), staff, "{role}");
        }
    }

    #[test]
    fn all_lists_each_role_once() {
        for (i, a) in Role::ALL.iter().enumerate() {
            for b in &Role::ALL[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn parse_rejects_unknown_and_differently_spelled_codes() {
        for input in [
            "",
            "Patient",
            "PATIENT",
            "front_desk",
            "frontdesk",
            " nurse",
            "nurse ",
            "admin",
            "doctor",
        ] {
            assert_eq!(Role::parse(input), None, "{input:?}");
        }
    }
}
