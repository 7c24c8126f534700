//! CMS122v12, Diabetes: Hemoglobin A1c (HbA1c) Poor Control (> 9%), 2024 performance
//! period (NCQA; <https://ecqi.healthit.gov/ecqm/ec/2024/cms0122v12>). An inverse
//! measure: the numerator counts poor control, so a lower rate is better.
//!
//! - **Initial population**: 18–75 years old at the end of the period, a qualifying
//!   encounter in the period, and diabetes (value set Diabetes) whose prevalence period
//!   overlaps the period.
//! - **Denominator**: the initial population.
//! - **Denominator exclusions**: hospice; 66 or older with frailty and advanced illness;
//!   66 or older living long term in a nursing home; palliative care (see `exclusions`).
//! - **Numerator**: the most recent HbA1c test (value set HbA1c Laboratory Test) whose
//!   day falls in the period has a result above 9.0 %, or has no result, or there is no
//!   HbA1c test in the period at all.
//!
//! Choices: age is taken at the end of the period, as the published population
//! description says ("18-75 years of age by the end of the measurement period"); the
//! 2024 QI-Core draft CQL takes it at the start. A result whose unit is neither `%` nor
//! absent is not compared (CQL compares incompatible quantities to null), so it does not
//! count as poor control. Two tests on the same day are ordered by their timestamps.

use super::events::{self, Period};
use super::exclusions::{self, FrailtyRule};
use super::value_sets as vs;
use super::{age_in, nest, number, qualifying_encounter, Membership};
use crate::record::Record;
use crate::Input;

pub(super) fn evaluate(record: &Record, period: Period) -> Membership {
    let (start, end) = period;
    let mut evidence = Vec::new();
    let age = age_in(record, period, 18, 75, &mut evidence);
    let initial_population = age.is_some()
        && diabetes(record, period, &mut evidence)
        && qualifying_encounter(record, period, &mut evidence);
    nest(
        initial_population,
        evidence,
        |ev| {
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
            let latest = events::observations(record, &vs::HBA1C_LABORATORY_TEST)
                .into_iter()
                .filter(|e| e.ends_within(start, end))
                .max_by_key(|e| (e.end, exclusions::latest_instant(e.resource)));
            let Some(test) = latest else {
                ev.push(Input {
                    name: "HbA1c test in the measurement period".into(),
                    value: "none (counts as poor control)".into(),
                    source: None,
                });
                return true;
            };
            let mut found = test.input("Most recent HbA1c test in the measurement period");
            let quantity = test.resource.get("valueQuantity");
            let value = quantity
                .and_then(|q| q.get("value"))
                .and_then(|v| v.as_f64());
            let unit = quantity
                .and_then(|q| q.get("code").or_else(|| q.get("unit")))
                .and_then(|u| u.as_str());
            let poor = match value {
                None => {
                    found.value.push_str(": no result (counts as poor control)");
                    true
                }
                Some(v) => {
                    let percent = matches!(unit, None | Some("%"));
                    found.value = format!(
                        "{} {} on {}{}",
                        number(v),
                        unit.unwrap_or("%"),
                        test.end,
                        if !percent {
                            " (not in %, not compared)"
                        } else if v > 9.0 {
                            " (> 9 %)"
                        } else {
                            " (≤ 9 %)"
                        }
                    );
                    percent && v > 9.0
                }
            };
            ev.push(found);
            poor
        },
    )
}

fn diabetes(record: &Record, (start, end): Period, evidence: &mut Vec<Input>) -> bool {
    match events::conditions(record, &vs::DIABETES)
        .into_iter()
        .find(|e| e.overlaps(start, end))
    {
        Some(e) => {
            evidence.push(e.input("Diabetes during the measurement period"));
            true
        }
        None => {
            evidence.push(Input {
                name: "Diabetes during the measurement period".into(),
                value: "none".into(),
                source: None,
            });
            false
        }
    }
}

#[cfg(test)]
mod tests {
    //! Cases from CMS122v12's population criteria (initial population, denominator
    //! exclusions, numerator), over calendar 2024.
    use super::super::fixture::*;
    use super::*;
    use serde_json::json;

    fn hba1c(id: &str, day: &str, percent: Option<f64>) -> serde_json::Value {
        observation(
            id,
            LOINC,
            "4548-4",
            day,
            percent.map(|v| json!({"valueQuantity": {"value": v, "unit": "%", "code": "%"}})),
        )
    }

    /// A 56-year-old with type 2 diabetes since 2015 and an office visit in 2024.
    fn diabetic() -> Fixture {
        Fixture::patient("1968-03-10", "female")
            .with(condition("dm", "44054006", "2015-06-01", None))
            .with(office_visit("2024-05-02"))
    }

    fn run(f: &Fixture) -> (bool, bool, bool) {
        let m = evaluate(&f.record(), PERIOD);
        assert_eq!(m.initial_population, m.denominator);
        (m.initial_population, m.denominator_exclusion, m.numerator)
    }

    #[test]
    fn initial_population_needs_age_18_to_75_at_period_end() {
        // Initial population: "Patients 18-75 years of age by the end of the measurement
        // period"; the birthdays fall on the period's last day or the day after.
        let cases = [
            ("2006-12-31", true),  // turns 18 on 31 Dec 2024
            ("2007-01-01", false), // still 17 at the period's end
            ("1949-01-01", true),  // 75 all year
            ("1948-12-31", false), // turns 76 on the last day
        ];
        for (born, expected) in cases {
            let mut f = diabetic();
            f.patient["birthDate"] = json!(born);
            assert_eq!(run(&f).0, expected, "born {born}");
        }
    }

    #[test]
    fn initial_population_needs_diabetes_overlapping_the_period() {
        let cases = [
            (condition("dm", "44054006", "2024-12-31", None), true),
            (
                condition("dm", "44054006", "2010-01-01", Some("2024-01-01")),
                true,
            ),
            (
                condition("dm", "44054006", "2010-01-01", Some("2023-12-31")),
                false,
            ),
            (condition("dm", "44054006", "2025-01-01", None), false),
            (condition("dm", "15777000", "2010-01-01", None), false), // prediabetes
        ];
        for (c, expected) in cases {
            let f = Fixture::patient("1968-03-10", "male")
                .with(c.clone())
                .with(office_visit("2024-05-02"));
            assert_eq!(run(&f).0, expected, "{c}");
        }
    }

    #[test]
    fn initial_population_needs_a_qualifying_encounter_within_the_period() {
        let sct_visit = |class: &str, day: &str| {
            encounter("e", SCT, "185349003", class, day, day) // Synthea check-up: local code
        };
        let cases = [
            (office_visit("2024-01-01"), true),
            (office_visit("2024-12-31"), true),
            (office_visit("2023-12-31"), false),
            (office_visit("2025-01-01"), false),
            (
                encounter("e", CPT, "99213", "AMB", "2024-12-31", "2025-01-01"),
                false,
            ),
            (sct_visit("AMB", "2024-03-01"), true),
            (sct_visit("EMER", "2024-03-01"), false),
            (
                encounter("e", SCT, "50849002", "EMER", "2024-03-01", "2024-03-01"),
                false,
            ),
        ];
        for (visit, expected) in cases {
            let f = Fixture::patient("1968-03-10", "male")
                .with(condition("dm", "44054006", "2015-06-01", None))
                .with(visit.clone());
            assert_eq!(run(&f).0, expected, "{visit}");
        }
    }

    #[test]
    fn no_hba1c_in_the_period_counts_as_poor_control() {
        // Numerator: "or is missing, or was not performed during the measurement period".
        let f = diabetic().with(hba1c("old", "2023-12-31", Some(12.0)));
        assert_eq!(run(&f), (true, false, true));
        let f = diabetic();
        assert_eq!(run(&f), (true, false, true));
    }

    #[test]
    fn the_most_recent_hba1c_in_the_period_decides() {
        let cases = [
            (
                vec![
                    hba1c("a", "2024-02-01", Some(10.0)),
                    hba1c("b", "2024-11-01", Some(7.0)),
                ],
                false,
            ),
            (
                vec![
                    hba1c("a", "2024-02-01", Some(7.0)),
                    hba1c("b", "2024-11-01", Some(9.5)),
                ],
                true,
            ),
            (vec![hba1c("a", "2024-06-01", Some(9.0))], false), // exactly 9.0 is not > 9
            (vec![hba1c("a", "2024-06-01", Some(9.1))], true),
            (vec![hba1c("a", "2024-06-01", None)], true), // no result counts as poor
            // A later test after the period does not count.
            (
                vec![
                    hba1c("a", "2024-06-01", Some(6.0)),
                    hba1c("b", "2025-01-01", Some(12.0)),
                ],
                false,
            ),
        ];
        for (tests, expected) in cases {
            let mut f = diabetic();
            for t in tests.clone() {
                f = f.with(t);
            }
            assert_eq!(run(&f).2, expected, "{tests:?}");
        }
    }

    #[test]
    fn exclusions_remove_patients_from_the_numerator() {
        // Denominator exclusions: hospice, palliative care, and from 66 frailty with
        // advanced illness or a nursing home. None of these patients has an HbA1c, so
        // each would otherwise be in the numerator.
        let old = || {
            Fixture::patient("1950-06-01", "male")
                .with(condition("dm", "44054006", "2015-06-01", None))
                .with(office_visit("2024-05-02"))
        };
        let cases = [
            (diabetic().with(hospice_procedure("2024-08-01")), true),
            (diabetic().with(hospice_procedure("2023-08-01")), false),
            (diabetic().with(palliative_encounter("2024-08-01")), true),
            (
                old()
                    .with(frailty("2024-03-01"))
                    .with(dementia_medication("2023-06-01")),
                true,
            ),
            (old().with(frailty("2024-03-01")), false), // frail, no advanced illness
            (old().with(dementia_medication("2024-03-01")), false), // not frail
            // Under 66, frailty and advanced illness do not exclude.
            (
                diabetic()
                    .with(frailty("2024-03-01"))
                    .with(dementia_medication("2024-01-01")),
                false,
            ),
            // Dementia medication: ordered in the year before the period, or still active.
            (
                old()
                    .with(frailty("2024-03-01"))
                    .with(dementia_medication("2023-01-01")),
                true,
            ),
            (
                old().with(frailty("2024-03-01")).with(medication_request(
                    "d",
                    "997223",
                    "2022-12-31",
                    "completed",
                )),
                false,
            ),
            (
                old().with(frailty("2024-03-01")).with(medication_request(
                    "d",
                    "997223",
                    "2020-05-01",
                    "active",
                )),
                true,
            ),
            (old().with(nursing_home("2023-05-01")), true),
            (diabetic().with(nursing_home("2023-05-01")), false),
        ];
        for (f, excluded) in cases {
            let (ip, ex, num) = run(&f);
            assert!(ip);
            assert_eq!((ex, num), (excluded, !excluded), "{:?}", f.resources);
        }
    }

    #[test]
    fn evidence_names_the_sources() {
        let f = diabetic().with(hba1c("a1c", "2024-06-01", Some(9.5)));
        let m = evaluate(&f.record(), PERIOD);
        let sources: Vec<_> = m
            .evidence
            .iter()
            .filter_map(|i| i.source.as_deref())
            .collect();
        assert_eq!(
            sources,
            [
                "Patient/p",
                "Condition/dm",
                "Encounter/visit-2024-05-02",
                "Observation/a1c"
            ]
        );
        assert!(
            m.evidence[3].value.starts_with("9.5 % on 2024-06-01"),
            "{:?}",
            m.evidence[3]
        );
    }
}
