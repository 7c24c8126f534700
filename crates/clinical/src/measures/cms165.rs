//! CMS165v12, Controlling High Blood Pressure, 2024 performance period (NCQA;
//! <https://ecqi.healthit.gov/ecqm/ec/2024/cms0165v12>).
//!
//! - **Initial population**: 18–85 years old at the end of the period, essential
//!   hypertension whose prevalence period overlaps the first six months of the period
//!   ("starting before and continuing into, or starting during the first six months"),
//!   and a qualifying encounter in the period.
//! - **Denominator**: the initial population.
//! - **Denominator exclusions**: hospice; pregnancy or end-stage renal disease overlapping
//!   the period; 66–80 with frailty and advanced illness, or 81 or older with frailty;
//!   66 or older living long term in a nursing home; palliative care.
//! - **Numerator**: on the most recent day in the period with both a systolic and a
//!   diastolic reading, the lowest systolic is < 140 mmHg and the lowest diastolic
//!   < 90 mmHg. No reading means not controlled. Readings taken in an emergency or
//!   inpatient encounter (class EMER, IMP, ACUTE, NONAC, PRENC, SS) do not count.
//!
//! Readings are the systolic (8480-6) and diastolic (8462-4) components of a blood
//! pressure panel (85354-9, or Synthea's older 55284-4: any Observation carrying those
//! components), or Observations coded 8480-6 / 8462-4 themselves.
//!
//! *Not implemented*: the renal exclusions whose value sets we could not check (CKD
//! stage 5, kidney transplant recipient, dialysis and transplant procedures, ESRD monthly
//! outpatient services), and the guidance (not in the logic) to ignore readings taken on
//! the day of a test or procedure that changes diet or medication. Values are read as
//! mmHg whatever unit they carry.

use std::collections::HashMap;

use serde_json::Value;
use time::Date;

use super::events::{self, Period};
use super::exclusions::{self, FrailtyRule};
use super::value_sets::{self as vs, ValueSet};
use super::{age_in, nest, number, qualifying_encounter, Membership};
use crate::record::{reference_of, Record};
use crate::Input;

const INPATIENT_OR_EMERGENCY: [&str; 6] = ["EMER", "IMP", "ACUTE", "NONAC", "PRENC", "SS"];

pub(super) fn evaluate(record: &Record, period: Period) -> Membership {
    let mut evidence = Vec::new();
    let age = age_in(record, period, 18, 85, &mut evidence);
    let initial_population = age.is_some()
        && hypertension(record, period, &mut evidence)
        && qualifying_encounter(record, period, &mut evidence);
    nest(
        initial_population,
        evidence,
        |ev| {
            let (start, end) = period;
            let renal_or_pregnant = [&vs::PREGNANCY, &vs::END_STAGE_RENAL_DISEASE]
                .iter()
                .flat_map(|set| events::conditions(record, set))
                .find(|e| e.overlaps(start, end));
            if let Some(e) = renal_or_pregnant {
                ev.push(e.input("Pregnancy or end-stage renal disease in the measurement period"));
                return true;
            }
            let age = age.unwrap_or_default();
            exclusions::shared(
                record,
                period,
                age,
                FrailtyRule::AdvancedIllnessTo80FrailtyFrom81,
                ev,
            )
        },
        |ev| controlled(record, period, ev),
    )
}

fn hypertension(record: &Record, (start, _): Period, evidence: &mut Vec<Input>) -> bool {
    // Overlaps the half-open interval [start, start + 6 months).
    let six_months = events::months_after(start, 6);
    let found = events::conditions(record, &vs::ESSENTIAL_HYPERTENSION)
        .into_iter()
        .find(|e| e.start < six_months && e.end >= start);
    match found {
        Some(e) => {
            evidence.push(e.input("Essential hypertension in the first six months"));
            true
        }
        None => {
            evidence.push(Input {
                name: "Essential hypertension in the first six months".into(),
                value: format!("none from {start} to before {six_months}"),
                source: None,
            });
            false
        }
    }
}

/// One systolic or diastolic reading.
struct Reading<'a> {
    day: Date,
    value: f64,
    resource: &'a Value,
}

fn controlled(record: &Record, (start, end): Period, evidence: &mut Vec<Input>) -> bool {
    let mut systolic = Vec::new();
    let mut diastolic = Vec::new();
    // Encounter classes by id, built once: readings look theirs up.
    let mut classes: Option<HashMap<&str, &str>> = None;
    for obs in record.of_type("Observation") {
        if !matches!(
            obs.get("status").and_then(Value::as_str),
            Some("final" | "amended" | "corrected")
        ) {
            continue;
        }
        let Some((_, day)) = events::effective(obs) else {
            continue;
        };
        if day < start || day > end {
            continue;
        }
        let sys = reading(obs, &vs::SYSTOLIC_BP);
        let dia = reading(obs, &vs::DIASTOLIC_BP);
        if sys.is_none() && dia.is_none() {
            continue;
        }
        let classes = classes.get_or_insert_with(|| {
            record
                .of_type("Encounter")
                .filter_map(|e| {
                    let id = e.get("id")?.as_str()?;
                    let class = e.get("class")?.get("code")?.as_str()?;
                    Some((id, class))
                })
                .collect()
        });
        let class = events::encounter_id(obs).and_then(|id| classes.get(id));
        if class.is_some_and(|c| INPATIENT_OR_EMERGENCY.contains(c)) {
            continue;
        }
        if let Some(value) = sys {
            systolic.push(Reading {
                day,
                value,
                resource: obs,
            });
        }
        if let Some(value) = dia {
            diastolic.push(Reading {
                day,
                value,
                resource: obs,
            });
        }
    }
    let most_recent_day = systolic
        .iter()
        .map(|r| r.day)
        .filter(|d| diastolic.iter().any(|r| r.day == *d))
        .max();
    let Some(day) = most_recent_day else {
        evidence.push(Input {
            name: "Blood pressure in the measurement period".into(),
            value: "none with both systolic and diastolic (not controlled)".into(),
            source: None,
        });
        return false;
    };
    let lowest = |readings: &[Reading<'_>]| {
        readings
            .iter()
            .filter(|r| r.day == day)
            .min_by(|a, b| a.value.total_cmp(&b.value))
            .map(|r| (r.value, reference_of(r.resource)))
    };
    let (Some((sys, sys_source)), Some((dia, dia_source))) =
        (lowest(&systolic), lowest(&diastolic))
    else {
        return false;
    };
    evidence.push(Input {
        name: "Lowest systolic on the most recent blood pressure day".into(),
        value: format!(
            "{} mmHg on {day} ({} 140)",
            number(sys),
            if sys < 140.0 { "<" } else { "≥" }
        ),
        source: Some(sys_source),
    });
    evidence.push(Input {
        name: "Lowest diastolic on the most recent blood pressure day".into(),
        value: format!(
            "{} mmHg on {day} ({} 90)",
            number(dia),
            if dia < 90.0 { "<" } else { "≥" }
        ),
        source: Some(dia_source),
    });
    sys < 140.0 && dia < 90.0
}

/// The value of `code` in an Observation: its own value if coded so, else a component's.
fn reading(obs: &Value, code: &ValueSet) -> Option<f64> {
    let value = |v: &Value| v.get("valueQuantity")?.get("value")?.as_f64();
    if code.find(obs.get("code")).is_some() {
        if let Some(v) = value(obs) {
            return Some(v);
        }
    }
    obs.get("component")?
        .as_array()?
        .iter()
        .find(|c| code.find(c.get("code")).is_some())
        .and_then(value)
}

#[cfg(test)]
mod tests {
    //! Cases from CMS165v12's population criteria, over calendar 2024.
    use super::super::fixture::*;
    use super::*;
    use serde_json::json;

    fn hypertensive() -> Fixture {
        Fixture::patient("1960-04-20", "male")
            .with(condition("htn", "59621000", "2012-01-01", None))
            .with(office_visit("2024-03-04"))
    }

    fn run(f: &Fixture) -> (bool, bool, bool) {
        let m = evaluate(&f.record(), PERIOD);
        (m.initial_population, m.denominator_exclusion, m.numerator)
    }

    #[test]
    fn initial_population_ages_18_to_85_at_period_end() {
        let cases = [
            ("2006-12-31", true),
            ("2007-01-01", false),
            ("1939-01-01", true), // 85 all year
            ("1938-12-31", false),
        ];
        for (born, expected) in cases {
            let mut f = hypertensive();
            f.patient["birthDate"] = json!(born);
            assert_eq!(run(&f).0, expected, "born {born}");
        }
    }

    #[test]
    fn hypertension_must_overlap_the_first_six_months() {
        // "starting before and continuing into, or starting during the first six months".
        let cases = [
            (condition("h", "59621000", "2024-06-30", None), true),
            (condition("h", "59621000", "2024-07-01", None), false),
            (
                condition("h", "59621000", "2020-01-01", Some("2024-01-01")),
                true,
            ),
            (
                condition("h", "59621000", "2020-01-01", Some("2023-12-31")),
                false,
            ),
            // Synthea's "Hypertension" (38341003) is a local code for the same concept.
            (condition("h", "38341003", "2010-01-01", None), true),
        ];
        for (c, expected) in cases {
            let f = Fixture::patient("1960-04-20", "male")
                .with(c.clone())
                .with(office_visit("2024-09-01"));
            assert_eq!(run(&f).0, expected, "{c}");
        }
    }

    #[test]
    fn numerator_uses_the_lowest_readings_of_the_most_recent_day() {
        let cases = [
            (vec![blood_pressure("a", "2024-11-02", 139.0, 89.0)], true),
            (vec![blood_pressure("a", "2024-11-02", 140.0, 80.0)], false),
            (vec![blood_pressure("a", "2024-11-02", 120.0, 90.0)], false),
            // Most recent reading decides, not the best one.
            (
                vec![
                    blood_pressure("a", "2024-02-01", 120.0, 70.0),
                    blood_pressure("b", "2024-10-01", 150.0, 95.0),
                ],
                false,
            ),
            // Two readings on the last day: lowest systolic and lowest diastolic, even
            // from different readings.
            (
                vec![
                    blood_pressure("a", "2024-10-01T09:00:00Z", 150.0, 85.0),
                    blood_pressure("b", "2024-10-01T10:00:00Z", 135.0, 92.0),
                ],
                true,
            ),
            // Readings outside the period do not count; none means not controlled.
            (vec![blood_pressure("a", "2025-01-01", 120.0, 70.0)], false),
            (vec![], false),
        ];
        for (readings, expected) in cases {
            let mut f = hypertensive();
            for r in readings.clone() {
                f = f.with(r);
            }
            assert_eq!(run(&f).2, expected, "{readings:?}");
        }
    }

    #[test]
    fn separate_systolic_and_diastolic_observations_count_on_shared_days() {
        let single = |id: &str, code: &str, day: &str, v: f64| {
            observation(
                id,
                LOINC,
                code,
                day,
                Some(json!({"valueQuantity": {"value": v}})),
            )
        };
        // The systolic alone on 1 Dec has no diastolic that day: 1 Nov is the day.
        let f = hypertensive()
            .with(single("s1", "8480-6", "2024-11-01", 130.0))
            .with(single("d1", "8462-4", "2024-11-01", 80.0))
            .with(single("s2", "8480-6", "2024-12-01", 180.0));
        assert_eq!(run(&f), (true, false, true));
    }

    #[test]
    fn emergency_and_inpatient_readings_are_ignored() {
        let mut in_er = blood_pressure("er", "2024-12-01", 190.0, 110.0);
        in_er["encounter"] = json!({"reference": "urn:uuid:er-visit"});
        let f = hypertensive()
            .with(encounter(
                "er-visit",
                SCT,
                "50849002",
                "EMER",
                "2024-12-01",
                "2024-12-01",
            ))
            .with(in_er)
            .with(blood_pressure("office", "2024-06-01", 128.0, 78.0));
        assert_eq!(run(&f), (true, false, true));
    }

    #[test]
    fn exclusions_of_the_measure() {
        let old = |born: &str| {
            Fixture::patient(born, "male")
                .with(condition("htn", "59621000", "2012-01-01", None))
                .with(office_visit("2024-03-04"))
        };
        let cases = [
            (
                Fixture::patient("1990-04-20", "female")
                    .with(condition("htn", "59621000", "2022-01-01", None))
                    .with(office_visit("2024-03-04"))
                    .with(condition(
                        "preg",
                        "72892002",
                        "2024-02-01",
                        Some("2024-10-01"),
                    )),
                true,
            ),
            (
                hypertensive().with(condition("esrd", "46177005", "2020-02-01", None)),
                true,
            ),
            (hypertensive().with(hospice_procedure("2024-05-05")), true),
            (
                hypertensive().with(palliative_encounter("2024-05-05")),
                true,
            ),
            // 81 or older: frailty alone excludes.
            (old("1943-01-01").with(frailty("2024-02-02")), true),
            // 66 to 80: frailty needs advanced illness too.
            (old("1950-01-01").with(frailty("2024-02-02")), false),
            (
                old("1950-01-01")
                    .with(frailty("2024-02-02"))
                    .with(dementia_medication("2023-03-03")),
                true,
            ),
            (old("1950-01-01").with(nursing_home("2022-01-01")), true),
        ];
        for (f, excluded) in cases {
            let (ip, ex, num) = run(&f);
            assert!(ip, "{:?}", f.resources);
            assert_eq!(ex, excluded, "{:?}", f.resources);
            assert!(!num);
        }
    }
}
