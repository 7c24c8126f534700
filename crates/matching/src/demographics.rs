//! What [`crate::compare`] reads from a Patient, normalised once. Comparing one record with
//! many (a `$match` candidate list, a duplicate scan over a whole store) prepares each
//! record once instead of once per pair.

use serde_json::Value;

use crate::address::{self, Address};
use crate::birth_date::{self, BirthDate};
use crate::identifier::{self, Identifier};
use crate::name::{self, Name};
use crate::telecom;

/// The comparable parts of one Patient. Built from any JSON: what is not a usable Patient
/// field is left empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Demographics {
    pub(crate) identifiers: Vec<Identifier>,
    pub(crate) names: Vec<Name>,
    pub(crate) birth_date: Option<BirthDate>,
    pub(crate) gender: Option<Gender>,
    pub(crate) addresses: Vec<Address>,
    pub(crate) phones: Vec<String>,
    pub(crate) emails: Vec<String>,
}

/// The administrative genders that compare; `unknown` (and anything else) is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gender {
    Male,
    Female,
    Other,
}

impl Demographics {
    /// Reads and normalises the compared fields of `patient`.
    pub fn of(patient: &Value) -> Demographics {
        Demographics {
            identifiers: identifier::identifiers(patient),
            names: name::names(patient),
            birth_date: birth_date::birth_date(patient),
            gender: match patient.get("gender").and_then(Value::as_str) {
                Some("male") => Some(Gender::Male),
                Some("female") => Some(Gender::Female),
                Some("other") => Some(Gender::Other),
                _ => None,
            },
            addresses: address::addresses(patient),
            phones: telecom::phones(patient),
            emails: telecom::emails(patient),
        }
    }
}
