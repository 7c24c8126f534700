//! CMS130v12, Colorectal Cancer Screening, 2024 performance period (NCQA;
//! <https://ecqi.healthit.gov/ecqm/ec/2024/cms0130v12>).
//!
//! - **Initial population**: 46–75 years old at the end of the period with a qualifying
//!   encounter in it.
//! - **Denominator**: the initial population.
//! - **Denominator exclusions**: colorectal cancer (value set Malignant Neoplasm of Colon)
//!   starting on or before the period's end; a total colectomy ending on or before it;
//!   hospice; 66 or older with frailty and advanced illness; 66 or older living long term
//!   in a nursing home; palliative care.
//! - **Numerator**, any of: a fecal occult blood test with a result in the period; a
//!   stool DNA with FIT test with a result in the period or the 2 years before; a flexible
//!   sigmoidoscopy or a CT colonography in the period or the 4 years before; a
//!   colonoscopy in the period or the 9 years before.
//!
//! The windows start on the same day of the year, n years before the period's start.
//! Stratification by age (46–49, 50–75) is not computed. Synthea's FOBT *procedure*
//! (SNOMED 1015401000000102, a UK extension code) is not in the LOINC value set; its
//! FOBT Observations (57905-2) are.

use time::Date;

use super::events::{self, Event, Period};
use super::exclusions::{self, FrailtyRule};
use super::value_sets as vs;
use super::{age_in, nest, qualifying_encounter, Membership};
use crate::record::Record;
use crate::Input;

pub(super) fn evaluate(record: &Record, period: Period) -> Membership {
    let (start, end) = period;
    let mut evidence = Vec::new();
    let age = age_in(record, period, 46, 75, &mut evidence);
    let initial_population = age.is_some() && qualifying_encounter(record, period, &mut evidence);
    nest(
        initial_population,
        evidence,
        |ev| {
            if let Some(e) = events::conditions(record, &vs::MALIGNANT_NEOPLASM_OF_COLON)
                .into_iter()
                .find(|e| e.start <= end)
            {
                ev.push(e.input("Colorectal cancer"));
                return true;
            }
            if let Some(e) = events::procedures(record, &vs::TOTAL_COLECTOMY)
                .into_iter()
                .find(|e| e.end <= end)
            {
                ev.push(e.input("Total colectomy"));
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
            let back = |years| events::years_before(start, years);
            let latest_in = |found, from| latest_within(found, from, end);
            let screening = latest_in(with_result(events::observations(record, &vs::FOBT)), start)
                .map(|e| e.input("Fecal occult blood test in the period"))
                .or_else(|| {
                    latest_in(
                        with_result(events::observations(record, &vs::SDNA_FIT_TEST)),
                        back(2),
                    )
                    .map(|e| e.input("Stool DNA with FIT test within 3 years"))
                })
                .or_else(|| {
                    latest_in(
                        events::procedures(record, &vs::FLEXIBLE_SIGMOIDOSCOPY),
                        back(4),
                    )
                    .map(|e| e.input("Flexible sigmoidoscopy within 5 years"))
                })
                .or_else(|| {
                    latest_in(events::observations(record, &vs::CT_COLONOGRAPHY), back(4))
                        .map(|e| e.input("CT colonography within 5 years"))
                })
                .or_else(|| {
                    latest_in(events::procedures(record, &vs::COLONOSCOPY), back(9))
                        .map(|e| e.input("Colonoscopy within 10 years"))
                });
            match screening {
                Some(found) => {
                    ev.push(found);
                    true
                }
                None => {
                    ev.push(Input {
                        name: "Colorectal cancer screening".into(),
                        value: "none in its window".into(),
                        source: None,
                    });
                    false
                }
            }
        },
    )
}

/// The latest event ending in `from..=to`.
fn latest_within(found: Vec<Event<'_>>, from: Date, to: Date) -> Option<Event<'_>> {
    found
        .into_iter()
        .filter(|e| e.ends_within(from, to))
        .max_by_key(|e| e.end)
}

/// The events whose Observation carries a result.
fn with_result(found: Vec<Event<'_>>) -> Vec<Event<'_>> {
    found
        .into_iter()
        .filter(|e| events::has_value(e.resource))
        .collect()
}

#[cfg(test)]
mod tests {
    //! Cases from CMS130v12's population criteria, over calendar 2024.
    use super::super::fixture::*;
    use super::*;
    use serde_json::json;

    fn adult() -> Fixture {
        Fixture::patient("1965-07-07", "male").with(office_visit("2024-04-04"))
    }

    fn run(f: &Fixture) -> (bool, bool, bool) {
        let m = evaluate(&f.record(), PERIOD);
        (m.initial_population, m.denominator_exclusion, m.numerator)
    }

    #[test]
    fn initial_population_ages_46_to_75_at_period_end() {
        let cases = [
            ("1978-12-31", true), // turns 46 on the last day
            ("1979-01-01", false),
            ("1949-01-01", true), // 75 all year
            ("1948-12-31", false),
        ];
        for (born, expected) in cases {
            let f = Fixture::patient(born, "female").with(office_visit("2024-04-04"));
            assert_eq!(run(&f).0, expected, "{born}");
        }
    }

    #[test]
    fn each_screening_counts_within_its_own_window() {
        let result = || Some(json!({"valueQuantity": {"value": 5, "unit": "ng/mL"}}));
        let cases = [
            (
                observation("fobt", LOINC, "57905-2", "2024-01-01", result()),
                true,
            ),
            (
                observation("fobt", LOINC, "57905-2", "2023-12-31", result()),
                false,
            ),
            (
                observation("fobt", LOINC, "57905-2", "2024-06-01", None),
                false,
            ), // no result
            (
                observation("dna", LOINC, "77354-9", "2022-01-01", result()),
                true,
            ),
            (
                observation("dna", LOINC, "77354-9", "2021-12-31", result()),
                false,
            ),
            (procedure("sig", SCT, "44441009", "2020-01-01"), true),
            (procedure("sig", SCT, "44441009", "2019-12-31"), false),
            (
                observation("ctc", LOINC, "60515-4", "2020-01-01", None),
                true,
            ),
            (
                observation("ctc", LOINC, "60515-4", "2019-12-31", None),
                false,
            ),
            (procedure("col", SCT, "73761001", "2015-01-01"), true),
            (procedure("col", SCT, "73761001", "2014-12-31"), false),
            (procedure("col", SCT, "73761001", "2025-01-01"), false),
        ];
        for (screening, expected) in cases {
            let f = adult().with(screening.clone());
            assert_eq!(run(&f).2, expected, "{screening}");
        }
    }

    #[test]
    fn colorectal_cancer_colectomy_and_shared_exclusions() {
        let cases = [
            (
                adult().with(condition(
                    "crc",
                    "93761005",
                    "2012-01-01",
                    Some("2013-01-01"),
                )),
                true,
            ),
            (
                adult().with(condition("crc", "93761005", "2025-01-01", None)),
                false,
            ),
            (
                adult().with(procedure("tc", SCT, "26390003", "2020-01-01")),
                true,
            ),
            (adult().with(palliative_encounter("2024-12-31")), true),
            (adult().with(hospice_procedure("2025-01-01")), false),
        ];
        for (f, excluded) in cases {
            let (ip, ex, _) = run(&f);
            assert!(ip);
            assert_eq!(ex, excluded, "{:?}", f.resources);
        }
    }
}
