//! Patient matching: how likely two FHIR Patient resources are the same person, for the
//! `Patient/$match` operation and a review list of likely duplicates. Pure: no I/O.
//!
//! [`compare`] scores a pair; [`candidate_queries`] gives the few store searches ("blocking
//! keys") that find the candidates worth scoring for a query Patient.
//!
//! # Method
//!
//! Fellegi–Sunter record linkage. Each field is compared on its own and reaches one of
//! agree, partial, disagree or missing ([`Agreement`]). An outcome adds `log2(m / u)` bits,
//! where `m` is the probability of that outcome when the two records are one person and
//! `u` when they are two people drawn at random. A field that either record lacks adds
//! nothing. The total `W` turns into the score as a posterior probability with prior odds
//! of one in 2^20 (a pair drawn from a store of about a million patients):
//! `score = 1 / (1 + 2^-(W - 20))`.
//!
//! | field | agree when | m / u (agree) | bits | partial when | m / u | bits | disagree m / u | bits |
//! | --- | --- | --- | ---: | --- | --- | ---: | --- | ---: |
//! | identifier | a (system, value) in common | 0.999 / 1e-6 | +19.93 | one system agrees, another conflicts | — | +9.96 (sum) | 0.001 / 0.999999 | −9.97 |
//! | name: family | Jaro–Winkler ≥ 0.94 | 0.90 / 0.01 | +6.49 | JW ≥ 0.80 | 0.06 / 0.04 | +0.58 | 0.04 / 0.95 | −4.57 |
//! | name: given | JW ≥ 0.94 on the first given name | 0.88 / 0.015 | +5.87 | JW ≥ 0.80, nickname, initial, middle name | 0.09 / 0.06 | +0.58 | 0.03 / 0.925 | −4.95 |
//! | birthDate | same date | 0.95 / 5e-5 | +14.21 | one edit | 0.03 / 0.001 | +4.91 | 0.02 / 0.99895 | −5.64 |
//! | gender | same code | 0.98 / 0.5 | +0.97 | — | | | 0.02 / 0.5 | −4.64 |
//! | address | same line, same ZIP or city | 0.65 / 0.002 | +8.34 | same ZIP (or city), other line | 0.10 / 0.03 | +1.74 | 0.25 / 0.968 | −1.95 |
//! | phone | last 10 digits | 0.70 / 0.002 | +8.45 | — | | | 0.30 / 0.998 | −1.73 |
//! | email | same address | 0.60 / 0.0005 | +10.23 | — | | | 0.40 / 0.9995 | −1.32 |
//!
//! The name field's weight is the family and given weights added; a reading with given and
//! family swapped is also tried, two bits less. Why each m and u is what it is is written
//! beside the number in `weights.rs`; in short, `u` is how often two strangers agree in a US
//! population, `m` how often one person's two records agree given typos, moves and new
//! numbers, and address and phone `u` are raised for households, whose members share both
//! (independence would otherwise count that twice).
//!
//! # Grades
//!
//! | grade | score | total W | and |
//! | --- | --- | --- | --- |
//! | `certain` | ≥ [`CERTAIN`] = 0.999 | ≥ 29.96 | see the rules below |
//! | `probable` | ≥ [`PROBABLE`] = 0.5 | ≥ 20 | more likely the same person than not |
//! | `possible` | ≥ [`POSSIBLE`] = 0.001 | ≥ 10.04 | worth a human look |
//! | `certainly-not` | below | | |
//!
//! Rules on top of the score, because a sum of independent weights misjudges a few cases:
//! 1. **A shared identifier is certain** (deterministic matching), unless birth date and
//!    gender both disagree: then the pair is `possible` and flagged for review (the shared
//!    number may be a keying error or a reused number).
//! 2. **A shared identifier beside a conflicting one** (same MRN, different SSN) is at most
//!    `probable` and at least `possible`: one of them is wrong, and a person should decide.
//! 3. **A conflicting identifier** of one system with none shared caps the pair at
//!    `probable`: demographics alone do not overrule two different SSNs.
//! 4. **Without a shared identifier, `certain` needs the name and birth date**: the birth
//!    date must agree and neither the family nor the given name may disagree. Twins (same
//!    family, birth date, address and phone; different given names) and a parent and child
//!    of one name otherwise reach `certain` on weight alone.
//! 5. **Without a shared identifier, a birth date that disagrees (more than one slip apart)
//!    caps the pair at `possible`.** A parent and child of one name at one address and phone
//!    (a "Senior" and "Junior") add up to about 24.5 bits, and siblings to about 13.7: the
//!    address and phone weights assume independence that a household does not have. A true
//!    match with a badly wrong birth date goes to a person for review, which is where it
//!    belongs.
//!
//! When a rule moves the grade, the score is moved into that grade's band, so sorting by
//! score and filtering by grade agree, and the field that triggered the rule carries a
//! [`FieldResult::note`].

mod address;
mod birth_date;
mod blocking;
mod demographics;
mod identifier;
mod name;
mod nicknames;
mod telecom;
mod text;
mod weights;

use serde_json::Value;

pub use blocking::candidate_queries;
pub use demographics::Demographics;

/// Score at or above which a pair is [`Grade::Certain`] (total weight ≥ 29.96 bits).
pub const CERTAIN: f64 = 0.999;
/// Score at or above which a pair is [`Grade::Probable`] (total weight ≥ 20 bits).
pub const PROBABLE: f64 = 0.5;
/// Score at or above which a pair is [`Grade::Possible`] (total weight ≥ 10.04 bits).
pub const POSSIBLE: f64 = 0.001;

/// FHIR's match-grade codes (`http://terminology.hl7.org/CodeSystem/match-grade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grade {
    Certain,
    Probable,
    Possible,
    CertainlyNot,
}

impl Grade {
    /// The code as FHIR writes it in the `match-grade` extension.
    pub fn code(&self) -> &'static str {
        match self {
            Grade::Certain => "certain",
            Grade::Probable => "probable",
            Grade::Possible => "possible",
            Grade::CertainlyNot => "certainly-not",
        }
    }

    /// The grade a score falls in, before any rule.
    pub fn from_score(score: f64) -> Grade {
        if score >= CERTAIN {
            Grade::Certain
        } else if score >= PROBABLE {
            Grade::Probable
        } else if score >= POSSIBLE {
            Grade::Possible
        } else {
            Grade::CertainlyNot
        }
    }

    /// 3 for certain down to 0 for certainly-not.
    fn rank(self) -> u8 {
        match self {
            Grade::Certain => 3,
            Grade::Probable => 2,
            Grade::Possible => 1,
            Grade::CertainlyNot => 0,
        }
    }

    /// The scores of this grade: `lo..hi` (`hi` included only for certain).
    fn band(self) -> (f64, f64) {
        match self {
            Grade::Certain => (CERTAIN, 1.0),
            Grade::Probable => (PROBABLE, CERTAIN.next_down()),
            Grade::Possible => (POSSIBLE, PROBABLE.next_down()),
            Grade::CertainlyNot => (0.0, POSSIBLE.next_down()),
        }
    }
}

/// How one field of two records compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Agreement {
    Agree,
    Partial,
    Disagree,
    /// Absent (or unusable) in either record: no evidence either way.
    Missing,
}

impl Agreement {
    /// A lower-case code for reports: `agree`, `partial`, `disagree`, `missing`.
    pub fn code(&self) -> &'static str {
        match self {
            Agreement::Agree => "agree",
            Agreement::Partial => "partial",
            Agreement::Disagree => "disagree",
            Agreement::Missing => "missing",
        }
    }
}

/// One field's part in a [`Match`].
#[derive(Debug, Clone, PartialEq)]
pub struct FieldResult {
    /// `identifier`, `name`, `birthDate`, `gender`, `address`, `phone` or `email`.
    pub field: &'static str,
    pub outcome: Agreement,
    /// Bits of evidence this field adds to the total (negative: evidence against).
    pub weight: f64,
    /// Set when this field made a rule move the grade, or the outcome needs a word
    /// (a swapped name): why, for the reviewer. No patient data.
    pub note: Option<&'static str>,
}

/// The result of comparing two Patients.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Probability that the two are the same person, in `0..=1` (see the crate doc).
    pub score: f64,
    pub grade: Grade,
    /// One entry per field, always in the order identifier, name, birthDate, gender,
    /// address, phone, email.
    pub fields: Vec<FieldResult>,
}

impl Match {
    /// The entry for `field`.
    pub fn field(&self, field: &str) -> Option<&FieldResult> {
        self.fields.iter().find(|f| f.field == field)
    }
}

/// Scores how likely `query` and `candidate` (FHIR Patient resources as JSON) are the same
/// person. Any JSON is accepted: what is not a usable Patient field counts as missing.
/// To compare one record with many, prepare each once with [`Demographics::of`] and use
/// [`compare_prepared`].
pub fn compare(query: &Value, candidate: &Value) -> Match {
    compare_prepared(&Demographics::of(query), &Demographics::of(candidate))
}

/// [`compare`] on records already read with [`Demographics::of`].
pub fn compare_prepared(query: &Demographics, candidate: &Demographics) -> Match {
    let identifier = identifier::compare(&query.identifiers, &candidate.identifiers);
    let name = name::compare(&query.names, &candidate.names);
    let birth = birth_date::compare(query.birth_date, candidate.birth_date);
    let gender = match (query.gender, candidate.gender) {
        (Some(x), Some(y)) if x == y => Agreement::Agree,
        (Some(_), Some(_)) => Agreement::Disagree,
        _ => Agreement::Missing,
    };
    let address = address::compare(&query.addresses, &candidate.addresses);
    let phone = telecom::compare(&query.phones, &candidate.phones);
    let email = telecom::compare(&query.emails, &candidate.emails);

    let identifier_weight = match identifier {
        Agreement::Partial => {
            weights::IDENTIFIER.agree.weight() + weights::IDENTIFIER.disagree.weight()
        }
        other => weights::IDENTIFIER.weight(other),
    };
    let field = |field, outcome, weight| FieldResult {
        field,
        outcome,
        weight,
        note: None,
    };
    let mut fields = vec![
        field("identifier", identifier, identifier_weight),
        FieldResult {
            note: name
                .swapped
                .then_some("given and family names match when swapped"),
            ..field("name", name.outcome, name.weight)
        },
        field("birthDate", birth, weights::BIRTH_DATE.weight(birth)),
        field("gender", gender, weights::GENDER.weight(gender)),
        field("address", address, weights::ADDRESS.weight(address)),
        field("phone", phone, weights::PHONE.weight(phone)),
        field("email", email, weights::EMAIL.weight(email)),
    ];
    let total: f64 = fields.iter().map(|f| f.weight).sum();
    let posterior = 1.0 / (1.0 + (-(total + weights::PRIOR_LOG2_ODDS)).exp2());
    let by_score = Grade::from_score(posterior);

    let dob_and_gender_disagree = birth == Agreement::Disagree && gender == Agreement::Disagree;
    let (grade, note_on) = match identifier {
        Agreement::Agree if dob_and_gender_disagree => (
            Grade::Possible,
            Some((
                0,
                "shared identifier, but birth date and gender both disagree: review",
            )),
        ),
        Agreement::Agree => (Grade::Certain, None),
        Agreement::Partial => {
            let grade = if by_score.rank() > Grade::Probable.rank() {
                Grade::Probable
            } else if by_score.rank() < Grade::Possible.rank() {
                Grade::Possible
            } else {
                by_score
            };
            (
                grade,
                Some((0, "one identifier shared and another in conflict: review")),
            )
        }
        _ if birth == Agreement::Disagree && by_score.rank() > Grade::Possible.rank() => (
            Grade::Possible,
            Some((
                2,
                "birth dates disagree: at most possible without a shared identifier",
            )),
        ),
        Agreement::Disagree if by_score == Grade::Certain => (
            Grade::Probable,
            Some((0, "conflicting identifier of one system: not certain")),
        ),
        _ if by_score == Grade::Certain && birth != Agreement::Agree => (
            Grade::Probable,
            Some((
                2,
                "certain needs an agreeing birth date or a shared identifier",
            )),
        ),
        _ if by_score == Grade::Certain && name.part_disagrees => (
            Grade::Probable,
            Some((
                1,
                "a name part disagrees: not certain without a shared identifier",
            )),
        ),
        _ => (by_score, None),
    };
    if let Some((i, note)) = note_on {
        fields[i].note = Some(note);
    }
    let (lo, hi) = grade.band();
    Match {
        score: posterior.clamp(lo, hi),
        grade,
        fields,
    }
}

#[cfg(test)]
mod tests;
