//! The Fellegi–Sunter m/u probabilities for each field and outcome, and the log2 weights
//! they give. The values and the reasoning behind each are in the crate doc and in
//! `README.md`; this module is the one place the numbers live.
//!
//! `m` is the probability of the outcome when the two records are the same person, `u`
//! the probability when they are two different people drawn at random. The weight of an
//! outcome is `log2(m / u)`: positive when the outcome is more typical of a match.

use crate::Agreement;

/// The m and u probabilities of one outcome of one field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mu {
    pub m: f64,
    pub u: f64,
}

impl Mu {
    /// `log2(m / u)`, in bits of evidence.
    pub fn weight(self) -> f64 {
        (self.m / self.u).log2()
    }
}

/// The outcomes a field comparator can reach, with their m/u. Fields without a middle level
/// (gender, phone, email) have `partial: None`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldMu {
    pub agree: Mu,
    pub partial: Option<Mu>,
    pub disagree: Mu,
}

impl FieldMu {
    /// The weight of `outcome`; a missing field (or a level the field does not have) is no
    /// evidence either way.
    pub fn weight(self, outcome: Agreement) -> f64 {
        match outcome {
            Agreement::Agree => self.agree.weight(),
            Agreement::Partial => self.partial.map_or(0.0, Mu::weight),
            Agreement::Disagree => self.disagree.weight(),
            Agreement::Missing => 0.0,
        }
    }
}

/// A shared identifier of a non-trivial system. `u`: two different people share a value in
/// the same assigning system about once in a million pairs (keying errors, reused numbers);
/// `m`: a person's two records carry different values of one system once in a thousand.
pub(crate) const IDENTIFIER: FieldMu = FieldMu {
    agree: Mu { m: 0.999, u: 1e-6 },
    partial: None,
    disagree: Mu {
        m: 0.001,
        u: 0.999_999,
    },
};

/// Family name. Agree: Jaro–Winkler ≥ [`crate::name::AGREE_JW`]; partial: ≥
/// [`crate::name::PARTIAL_JW`]. Surnames change (marriage) and are mistyped, so m(agree) is
/// 0.90; about one random pair in a hundred shares a surname in a US population.
pub(crate) const FAMILY: FieldMu = FieldMu {
    agree: Mu { m: 0.90, u: 0.01 },
    partial: Some(Mu { m: 0.06, u: 0.04 }),
    disagree: Mu { m: 0.04, u: 0.95 },
};

/// First given name. Partial also covers a known nickname, an initial, and a first name that
/// is the other record's middle name. The commonest US first names each cover 1–3 % of
/// people, so u(agree) is 0.015.
pub(crate) const GIVEN: FieldMu = FieldMu {
    agree: Mu { m: 0.88, u: 0.015 },
    partial: Some(Mu { m: 0.09, u: 0.06 }),
    disagree: Mu { m: 0.03, u: 0.925 },
};

/// Birth date. u(agree) is about one in 20 000: 365 days over some 55 birth years that carry
/// most of the weight of a patient population. Partial is one edit (transposed day and
/// month, one digit off, two adjacent digits swapped, year off by one), which a random pair
/// reaches about once in a thousand.
pub(crate) const BIRTH_DATE: FieldMu = FieldMu {
    agree: Mu { m: 0.95, u: 5e-5 },
    partial: Some(Mu { m: 0.03, u: 1e-3 }),
    disagree: Mu {
        m: 0.02,
        u: 0.998_95,
    },
};

/// Administrative gender: half of random pairs agree; recording errors (and changes) make a
/// person's two records differ about once in fifty.
pub(crate) const GENDER: FieldMu = FieldMu {
    agree: Mu { m: 0.98, u: 0.5 },
    partial: None,
    disagree: Mu { m: 0.02, u: 0.5 },
};

/// Address. Agree: the same street line (same house and unit numbers, street within
/// Jaro–Winkler 0.92) in the same postal code or city. Partial: the same postal code (or city
/// when no postal code is given) on a different line. People move, so m(agree) is only
/// 0.65; u(agree) is set at 0.002 rather than a population's one in 10 000 because people
/// who share a household share an address, and independence would overcount that.
pub(crate) const ADDRESS: FieldMu = FieldMu {
    agree: Mu { m: 0.65, u: 0.002 },
    partial: Some(Mu { m: 0.10, u: 0.03 }),
    disagree: Mu { m: 0.25, u: 0.968 },
};

/// Phone: the last ten digits of any phone number agree. Numbers change (m 0.70); u is set
/// for shared household lines, as for the address.
pub(crate) const PHONE: FieldMu = FieldMu {
    agree: Mu { m: 0.70, u: 0.002 },
    partial: None,
    disagree: Mu { m: 0.30, u: 0.998 },
};

/// Email: any address agrees, case-insensitively. Rarely shared (u 0.0005); often changed or
/// recorded only once (m 0.60).
pub(crate) const EMAIL: FieldMu = FieldMu {
    agree: Mu { m: 0.60, u: 5e-4 },
    partial: None,
    disagree: Mu {
        m: 0.40,
        u: 0.999_5,
    },
};

/// Bits taken off a name read with given and family swapped: a clerk swapping the two is
/// taken to be a quarter as likely as entering them in order.
pub(crate) const SWAP_PENALTY: f64 = 2.0;

/// The log2 prior odds that two records are the same person before any field is compared:
/// one in 2^20 (about a million), the odds for a pair drawn from a store of a million
/// patients. The score is the posterior probability under this prior.
pub(crate) const PRIOR_LOG2_ODDS: f64 = -20.0;

#[cfg(test)]
mod tests {
    use super::*;

    fn total(f: FieldMu, p: impl Fn(Mu) -> f64) -> f64 {
        p(f.agree) + f.partial.map_or(0.0, &p) + p(f.disagree)
    }

    #[test]
    fn every_field_has_m_and_u_that_are_distributions() {
        for (name, f) in [
            ("identifier", IDENTIFIER),
            ("family", FAMILY),
            ("given", GIVEN),
            ("birthDate", BIRTH_DATE),
            ("gender", GENDER),
            ("address", ADDRESS),
            ("phone", PHONE),
            ("email", EMAIL),
        ] {
            assert!((total(f, |x| x.m) - 1.0).abs() < 1e-9, "{name} m");
            assert!((total(f, |x| x.u) - 1.0).abs() < 1e-9, "{name} u");
            assert!(f.agree.weight() > 0.0, "{name} agree is evidence for");
            assert!(
                f.disagree.weight() < 0.0,
                "{name} disagree is evidence against"
            );
        }
    }

    #[test]
    fn weights_are_log2_of_m_over_u() {
        // log2(0.95 / 5e-5) = log2(19000) = 14.2137...
        assert!((BIRTH_DATE.agree.weight() - 14.2137).abs() < 1e-3);
        // log2(0.98 / 0.5) = log2(1.96) = 0.9709...
        assert!((GENDER.agree.weight() - 0.9709).abs() < 1e-3);
        // log2(0.02 / 0.5) = log2(0.04) = -4.6439...
        assert!((GENDER.disagree.weight() + 4.6439).abs() < 1e-3);
    }
}
