//! Birth date comparison: the same date agrees; a date one keying slip away (day and month
//! transposed, one digit wrong, two adjacent digits swapped, the year off by one) partly
//! agrees; anything else disagrees.

use serde_json::Value;

use crate::Agreement;

/// A birth date as written: year, and month and day when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BirthDate {
    year: u16,
    month: Option<u8>,
    day: Option<u8>,
}

/// `birthDate` of a Patient, when it is a FHIR date (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`); a
/// dateTime's date part is taken too.
pub(crate) fn birth_date(patient: &Value) -> Option<BirthDate> {
    parse(patient.get("birthDate")?.as_str()?)
}

pub(crate) fn parse(s: &str) -> Option<BirthDate> {
    let number = |part: &str, len: usize| -> Option<u16> {
        (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    // A dateTime's date part, but nothing else after a full date.
    if s.len() > 10 && s.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let s = s.get(..10.min(s.len()))?;
    let mut parts = s.split('-');
    let year = number(parts.next()?, 4)?;
    let month = match parts.next() {
        Some(p) => Some(
            u8::try_from(number(p, 2)?)
                .ok()
                .filter(|m| (1..=12).contains(m))?,
        ),
        None => None,
    };
    let day = match parts.next() {
        Some(p) => Some(
            u8::try_from(number(p, 2)?)
                .ok()
                .filter(|d| (1..=31).contains(d))?,
        ),
        None => None,
    };
    if parts.next().is_some() || (day.is_some() && month.is_none()) {
        return None;
    }
    Some(BirthDate { year, month, day })
}

impl BirthDate {
    /// The full date as eight digits, `YYYYMMDD`.
    fn digits(self) -> Option<[u8; 8]> {
        let (m, d) = (self.month?, self.day?);
        let s = format!("{:04}{:02}{:02}", self.year, m, d);
        let mut out = [0u8; 8];
        out.copy_from_slice(s.as_bytes().get(..8)?);
        Some(out)
    }

    /// The date as `YYYY-MM-DD` when it is full.
    pub(crate) fn full(self) -> Option<String> {
        Some(format!(
            "{:04}-{:02}-{:02}",
            self.year, self.month?, self.day?
        ))
    }

    /// The date with day and month exchanged, when that is another valid date.
    pub(crate) fn transposed(self) -> Option<BirthDate> {
        let (m, d) = (self.month?, self.day?);
        (d != m && d <= 12).then_some(BirthDate {
            year: self.year,
            month: Some(d),
            day: Some(m),
        })
    }
}

/// Compares two birth dates. Dates of different precision are compared at the coarser one:
/// an agreeing year and month is partial, an agreeing year alone is no evidence (missing).
pub(crate) fn compare(a: Option<BirthDate>, b: Option<BirthDate>) -> Agreement {
    let (Some(a), Some(b)) = (a, b) else {
        return Agreement::Missing;
    };
    let (Some(x), Some(y)) = (a.digits(), b.digits()) else {
        return match (a.month.zip(b.month), a.year == b.year) {
            (_, false) => Agreement::Disagree,
            (Some((m, n)), true) if m == n => Agreement::Partial,
            (Some(_), true) => Agreement::Disagree,
            (None, true) => Agreement::Missing,
        };
    };
    if x == y {
        return Agreement::Agree;
    }
    let differing: Vec<usize> = (0..8).filter(|&i| x[i] != y[i]).collect();
    let one_digit = differing.len() == 1;
    let adjacent_swap =
        matches!(differing[..], [i, j] if j == i + 1 && x[i] == y[j] && x[j] == y[i]);
    let day_month_swap = a.transposed() == Some(b);
    let year_off_by_one = a.month == b.month && a.day == b.day && a.year.abs_diff(b.year) == 1;
    if one_digit || adjacent_swap || day_month_swap || year_off_by_one {
        Agreement::Partial
    } else {
        Agreement::Disagree
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_keying_slip_is_partial_and_more_is_disagreement() {
        use Agreement::*;
        let cases = [
            ("1956-08-03", "1956-08-03", Agree),
            // Day and month transposed.
            ("1956-08-03", "1956-03-08", Partial),
            // One digit wrong (day 03 → 05).
            ("1956-08-03", "1956-08-05", Partial),
            // Adjacent digits swapped in the year (1956 → 1965).
            ("1956-08-03", "1965-08-03", Partial),
            // Year off by one across a decade: three digits differ.
            ("1999-08-03", "2000-08-03", Partial),
            // Two slips.
            ("1956-08-03", "1957-03-08", Disagree),
            ("1956-08-03", "1972-11-20", Disagree),
            // Coarser dates.
            ("1956-08", "1956-08-03", Partial),
            ("1956-07", "1956-08-03", Disagree),
            ("1956", "1956-08-03", Missing),
            ("1955", "1956-08-03", Disagree),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare(parse(a), parse(b)), expected, "{a}/{b}");
            assert_eq!(compare(parse(b), parse(a)), expected, "{b}/{a}");
        }
    }

    #[test]
    fn a_transposition_needs_a_day_that_can_be_a_month() {
        assert_eq!(parse("1956-08-13").and_then(BirthDate::transposed), None);
        assert_eq!(parse("1956-08-08").and_then(BirthDate::transposed), None);
        assert_eq!(
            parse("1956-08-03").and_then(BirthDate::transposed),
            parse("1956-03-08")
        );
    }

    #[test]
    fn malformed_dates_are_missing() {
        for s in [
            "",
            "56-08-03",
            "1956-13-01",
            "1956-08-32",
            "1956-8-3",
            "19x6",
            "1956--03",
            "1956-08-03-01",
            "１９５６",
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
        assert_eq!(
            parse("1956-08-03T10:00:00Z").and_then(BirthDate::full),
            Some("1956-08-03".to_string())
        );
        assert_eq!(
            compare(parse("garbage"), parse("1956-08-03")),
            Agreement::Missing
        );
    }
}
