//! Four electronic clinical quality measures (eCQMs) of the 2024 performance period,
//! evaluated for one patient over a measurement period:
//!
//! | measure | version | scoring |
//! | --- | --- | --- |
//! | Diabetes: Hemoglobin A1c (HbA1c) Poor Control (> 9%) | CMS122v12 | inverse: lower is better |
//! | Controlling High Blood Pressure | CMS165v12 | higher is better |
//! | Breast Cancer Screening | CMS125v12 | higher is better |
//! | Colorectal Cancer Screening | CMS130v12 | higher is better |
//!
//! All four are NCQA-stewarded, patient-based proportion measures published on the eCQI
//! Resource Center (<https://ecqi.healthit.gov>). The population criteria follow the
//! measures' descriptions there and their 2024 CQL (QI-Core edition,
//! `cqframework/ecqm-content-qicore-2024`); value sets are by VSAC OID with a checked
//! subset of codes (see [`value_sets`]). What each measure simplifies is in its module.
//!
//! **How the populations nest** (proportion measure, eCQM): the denominator equals the
//! initial population; denominator exclusions are looked for only among the denominator;
//! the numerator only among the denominator minus the exclusions, so an excluded patient
//! is never in the numerator. The score is numerator / (denominator − exclusions).
//!
//! The measurement period is two calendar days, both included (a year: 1 January to 31
//! December). Ages are whole years at the period's last day.

mod cms122;
mod cms125;
mod cms130;
mod cms165;
mod events;
mod exclusions;
#[cfg(test)]
mod fixture;
pub mod value_sets;

use time::Date;

use crate::record::Record;
use crate::Input;
use events::Period;

/// A measure this module evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum MeasureId {
    Cms122,
    Cms165,
    Cms125,
    Cms130,
}

impl MeasureId {
    /// Every measure, in CMS number order of the task (`CMS122`, `CMS165`, `CMS125`,
    /// `CMS130`).
    pub fn all() -> [MeasureId; 4] {
        [
            MeasureId::Cms122,
            MeasureId::Cms165,
            MeasureId::Cms125,
            MeasureId::Cms130,
        ]
    }

    /// The CMS identifier without version: `CMS122`.
    pub fn id(self) -> &'static str {
        match self {
            MeasureId::Cms122 => "CMS122",
            MeasureId::Cms165 => "CMS165",
            MeasureId::Cms125 => "CMS125",
            MeasureId::Cms130 => "CMS130",
        }
    }

    /// The measure's title as CMS publishes it.
    pub fn title(self) -> &'static str {
        match self {
            MeasureId::Cms122 => "Diabetes: Hemoglobin A1c (HbA1c) Poor Control (> 9%)",
            MeasureId::Cms165 => "Controlling High Blood Pressure",
            MeasureId::Cms125 => "Breast Cancer Screening",
            MeasureId::Cms130 => "Colorectal Cancer Screening",
        }
    }

    /// The specification version implemented: `CMS122v12` (2024 performance period).
    pub fn version(self) -> &'static str {
        match self {
            MeasureId::Cms122 => "CMS122v12",
            MeasureId::Cms165 => "CMS165v12",
            MeasureId::Cms125 => "CMS125v12",
            MeasureId::Cms130 => "CMS130v12",
        }
    }

    /// Where the specification is published.
    pub fn citation(self) -> &'static str {
        match self {
            MeasureId::Cms122 => {
                "CMS122v12, Diabetes: Hemoglobin A1c (HbA1c) Poor Control (> 9%), 2024 \
                 performance period, NCQA; eCQI Resource Center, \
                 https://ecqi.healthit.gov/ecqm/ec/2024/cms0122v12"
            }
            MeasureId::Cms165 => {
                "CMS165v12, Controlling High Blood Pressure, 2024 performance period, NCQA; \
                 eCQI Resource Center, https://ecqi.healthit.gov/ecqm/ec/2024/cms0165v12"
            }
            MeasureId::Cms125 => {
                "CMS125v12, Breast Cancer Screening, 2024 performance period, NCQA; eCQI \
                 Resource Center, https://ecqi.healthit.gov/ecqm/ec/2024/cms0125v12"
            }
            MeasureId::Cms130 => {
                "CMS130v12, Colorectal Cancer Screening, 2024 performance period, NCQA; eCQI \
                 Resource Center, https://ecqi.healthit.gov/ecqm/ec/2024/cms0130v12"
            }
        }
    }

    /// `decrease` when a lower score is better (CMS122 counts poor control), else
    /// `increase`, as the FHIR Measure `improvementNotation` codes.
    pub fn improvement_notation(self) -> &'static str {
        match self {
            MeasureId::Cms122 => "decrease",
            _ => "increase",
        }
    }
}

/// Where one patient falls in a measure's populations, and what decided it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Membership {
    pub initial_population: bool,
    /// Equals the initial population in all four measures.
    pub denominator: bool,
    /// Only ever true within the denominator.
    pub denominator_exclusion: bool,
    /// Only ever true within the denominator minus its exclusions.
    pub numerator: bool,
    /// The inputs that decided each population, in the order they were decided, each
    /// with the resource it came from.
    pub evidence: Vec<Input>,
}

/// Evaluates `measure` for the patient of `record` over `period` (first and last day).
pub fn evaluate(measure: MeasureId, record: &Record, period: (Date, Date)) -> Membership {
    match measure {
        MeasureId::Cms122 => cms122::evaluate(record, period),
        MeasureId::Cms165 => cms165::evaluate(record, period),
        MeasureId::Cms125 => cms125::evaluate(record, period),
        MeasureId::Cms130 => cms130::evaluate(record, period),
    }
}

/// Population counts of a measure over many patients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub initial_population: usize,
    pub denominator: usize,
    pub denominator_exclusion: usize,
    pub numerator: usize,
}

impl Counts {
    /// Counts one patient's membership.
    pub fn add(&mut self, m: &Membership) {
        self.initial_population += usize::from(m.initial_population);
        self.denominator += usize::from(m.denominator);
        self.denominator_exclusion += usize::from(m.denominator_exclusion);
        self.numerator += usize::from(m.numerator);
    }
}

impl<'m> FromIterator<&'m Membership> for Counts {
    fn from_iter<I: IntoIterator<Item = &'m Membership>>(iter: I) -> Counts {
        let mut c = Counts::default();
        for m in iter {
            c.add(m);
        }
        c
    }
}

/// The performance rate: numerator / (denominator − exclusions), or `None` when no
/// patient remains in the denominator.
pub fn score(c: &Counts) -> Option<f64> {
    let eligible = c.denominator.checked_sub(c.denominator_exclusion)?;
    (eligible > 0).then(|| c.numerator as f64 / eligible as f64)
}

/// Nests the populations as a proportion eCQM does: the exclusions are looked for only
/// in the denominator (= initial population), the numerator only among those not
/// excluded.
fn nest(
    initial_population: bool,
    mut evidence: Vec<Input>,
    exclusion: impl FnOnce(&mut Vec<Input>) -> bool,
    numerator: impl FnOnce(&mut Vec<Input>) -> bool,
) -> Membership {
    let denominator = initial_population;
    let denominator_exclusion = denominator && exclusion(&mut evidence);
    let numerator = denominator && !denominator_exclusion && numerator(&mut evidence);
    Membership {
        initial_population,
        denominator,
        denominator_exclusion,
        numerator,
        evidence,
    }
}

/// The patient's age at the period's end if it lies in `min..=max`, with the evidence.
fn age_in(
    record: &Record,
    (_, end): Period,
    min: i32,
    max: i32,
    evidence: &mut Vec<Input>,
) -> Option<i32> {
    let Some(age) = record.age_on(end) else {
        evidence.push(Input {
            name: "Age at end of measurement period".into(),
            value: "unknown (no birth date)".into(),
            source: Some(record.patient_reference()),
        });
        return None;
    };
    let inside = (min..=max).contains(&age);
    evidence.push(Input {
        name: "Age at end of measurement period".into(),
        value: format!(
            "{age} ({} {min}–{max})",
            if inside { "within" } else { "outside" }
        ),
        source: Some(record.patient_reference()),
    });
    inside.then_some(age)
}

/// Library AdultOutpatientEncounters, "Qualifying Encounters": a finished encounter of
/// a qualifying type lying within the period. Pushes the latest one, or its absence.
fn qualifying_encounter(record: &Record, (start, end): Period, evidence: &mut Vec<Input>) -> bool {
    let found = events::encounters(record, &value_sets::QUALIFYING_ENCOUNTERS)
        .into_iter()
        .rev()
        .find(|e| e.within(start, end));
    match found {
        Some(e) => {
            evidence.push(e.input("Qualifying encounter"));
            true
        }
        None => {
            evidence.push(Input {
                name: "Qualifying encounter".into(),
                value: format!("none from {start} to {end}"),
                source: None,
            });
            false
        }
    }
}

/// A measured value for evidence: at most two decimals, no trailing zeros (`157.2`).
fn number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_with_at_most_two_decimals() {
        let cases = [
            (157.19609, "157.2"),
            (110.0, "110"),
            (9.004, "9"),
            (9.05, "9.05"),
        ];
        for (v, expected) in cases {
            assert_eq!(number(v), expected);
        }
    }

    #[test]
    fn score_divides_by_denominator_less_exclusions() {
        let cases = [
            (Counts::default(), None),
            (
                Counts {
                    initial_population: 10,
                    denominator: 10,
                    denominator_exclusion: 2,
                    numerator: 4,
                },
                Some(0.5),
            ),
            (
                Counts {
                    initial_population: 3,
                    denominator: 3,
                    denominator_exclusion: 3,
                    numerator: 0,
                },
                None,
            ),
        ];
        for (counts, expected) in cases {
            assert_eq!(score(&counts), expected, "{counts:?}");
        }
    }

    #[test]
    fn identity_of_each_measure() {
        let rows: Vec<_> = MeasureId::all()
            .iter()
            .map(|m| (m.id(), m.version(), m.improvement_notation()))
            .collect();
        assert_eq!(
            rows,
            [
                ("CMS122", "CMS122v12", "decrease"),
                ("CMS165", "CMS165v12", "increase"),
                ("CMS125", "CMS125v12", "increase"),
                ("CMS130", "CMS130v12", "increase"),
            ]
        );
        for m in MeasureId::all() {
            assert!(m.citation().starts_with(m.version()));
            assert!(m.citation().contains("2024 performance period"));
        }
    }

    #[test]
    fn excluded_patients_are_never_in_the_numerator() {
        let m = nest(
            true,
            Vec::new(),
            |_| true,
            |_| panic!("numerator evaluated"),
        );
        assert!(m.denominator && m.denominator_exclusion && !m.numerator);
        let m = nest(
            false,
            Vec::new(),
            |_| panic!("exclusion evaluated"),
            |_| true,
        );
        assert!(!m.denominator && !m.denominator_exclusion && !m.numerator);
    }
}
