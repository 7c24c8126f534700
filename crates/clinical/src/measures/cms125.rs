//! CMS125v12, Breast Cancer Screening, 2024 performance period (NCQA;
//! <https://ecqi.healthit.gov/ecqm/ec/2024/cms0125v12>).
//!
//! - **Initial population**: women 52–74 years old at the end of the period with a
//!   qualifying encounter in it.
//! - **Denominator**: the initial population.
//! - **Denominator exclusions**: a bilateral mastectomy on or before the end of the
//!   period; hospice; 66 or older with frailty and advanced illness; 66 or older living
//!   long term in a nursing home; palliative care.
//! - **Numerator**: a mammogram (value set Mammography) ending between 1 October two
//!   years before the period and the period's end (27 months for a calendar year).
//!
//! Sex is `Patient.gender` = `female`. A mammogram counts as an Observation (as the
//! QI-Core logic reads it) or a DiagnosticReport with a Mammography code (how many
//! systems record imaging results).
//!
//! *Not implemented*: the history-of-bilateral-mastectomy diagnosis and the left plus
//! right unilateral mastectomy evidence, whose value sets we could not check. Synthea
//! records mammograms, when it does, as SNOMED procedures outside the LOINC value set;
//! our test data has none.

use super::events::{self, Period};
use super::exclusions::{self, FrailtyRule};
use super::value_sets as vs;
use super::{age_in, nest, qualifying_encounter, Membership};
use crate::record::Record;
use crate::Input;

pub(super) fn evaluate(record: &Record, period: Period) -> Membership {
    let (start, end) = period;
    let mut evidence = Vec::new();
    let female = record.gender() == Some("female");
    evidence.push(Input {
        name: "Sex".into(),
        value: record.gender().unwrap_or("unknown").into(),
        source: Some(record.patient_reference()),
    });
    let age = if female {
        age_in(record, period, 52, 74, &mut evidence)
    } else {
        None
    };
    let initial_population = age.is_some() && qualifying_encounter(record, period, &mut evidence);
    nest(
        initial_population,
        evidence,
        |ev| {
            if let Some(e) = events::procedures(record, &vs::BILATERAL_MASTECTOMY)
                .into_iter()
                .find(|e| e.end <= end)
            {
                ev.push(e.input("Bilateral mastectomy"));
                return true;
            }
            let age = age.unwrap_or_default();
            exclusions::shared(
                record,
                period,
                age,
                FrailtyRule::From66WithAdvancedIllness,
                ev,
            )
        },
        |ev| {
            let from = events::october_first(start, 2);
            let mammogram = events::observations(record, &vs::MAMMOGRAPHY)
                .into_iter()
                .chain(events::reports(record, &vs::MAMMOGRAPHY))
                .filter(|e| e.ends_within(from, end))
                .max_by_key(|e| e.end);
            match mammogram {
                Some(e) => {
                    ev.push(e.input("Mammogram"));
                    true
                }
                None => {
                    ev.push(Input {
                        name: "Mammogram".into(),
                        value: format!("none from {from} to {end}"),
                        source: None,
                    });
                    false
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    //! Cases from CMS125v12's population criteria, over calendar 2024.
    use super::super::fixture::*;
    use super::*;
    use serde_json::json;

    fn woman(born: &str) -> Fixture {
        Fixture::patient(born, "female").with(office_visit("2024-04-04"))
    }

    fn run(f: &Fixture) -> (bool, bool, bool) {
        let m = evaluate(&f.record(), PERIOD);
        (m.initial_population, m.denominator_exclusion, m.numerator)
    }

    fn mammogram(day: &str) -> serde_json::Value {
        observation("mg", LOINC, "24606-6", day, None)
    }

    #[test]
    fn initial_population_is_women_52_to_74_at_period_end() {
        let cases = [
            ("1972-12-31", "female", true), // turns 52 on the last day
            ("1973-01-01", "female", false),
            ("1950-01-01", "female", true), // 74 all year
            ("1949-12-31", "female", false),
            ("1960-01-01", "male", false),
        ];
        for (born, sex, expected) in cases {
            let f = Fixture::patient(born, sex).with(office_visit("2024-04-04"));
            assert_eq!(run(&f).0, expected, "{born} {sex}");
        }
        assert!(
            !run(&Fixture::patient("1960-01-01", "female")).0,
            "no visit"
        );
    }

    #[test]
    fn mammogram_window_starts_october_first_two_years_before() {
        // Numerator: "one or more mammograms any time on or between October 1 two years
        // prior to the measurement period and the end of the measurement period".
        let cases = [
            ("2022-10-01", true),
            ("2022-09-30", false),
            ("2024-12-31", true),
            ("2025-01-01", false),
        ];
        for (day, expected) in cases {
            let f = woman("1960-01-01").with(mammogram(day));
            assert_eq!(run(&f).2, expected, "{day}");
        }
        let report = json!({"resourceType": "DiagnosticReport", "id": "r", "status": "final",
                            "code": concept(LOINC, "26175-0"), "effectiveDateTime": "2023-05-05"});
        assert!(run(&woman("1960-01-01").with(report)).2);
    }

    #[test]
    fn bilateral_mastectomy_and_shared_exclusions() {
        let cases = [
            (
                woman("1960-01-01").with(procedure("mx", SCT, "27865001", "2010-01-01")),
                true,
            ),
            (
                woman("1960-01-01").with(procedure("mx", SCT, "27865001", "2025-01-01")),
                false,
            ),
            (
                woman("1960-01-01").with(hospice_procedure("2024-02-02")),
                true,
            ),
            (
                woman("1955-01-01")
                    .with(frailty("2024-02-02"))
                    .with(dementia_medication("2024-02-02")),
                true,
            ),
            (
                woman("1960-01-01")
                    .with(frailty("2024-02-02"))
                    .with(dementia_medication("2024-02-02")),
                false,
            ),
        ];
        for (f, excluded) in cases {
            let f = f.with(mammogram("2024-03-03"));
            let (ip, ex, num) = run(&f);
            assert!(ip);
            assert_eq!((ex, num), (excluded, !excluded), "{:?}", f.resources);
        }
    }
}
