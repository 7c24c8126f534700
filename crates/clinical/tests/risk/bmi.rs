//! BMI — weight (kg) / height (m)², WHO TRS 894 (2000) adult categories.

use oxehr_clinical::risk::{bmi, who_bmi_category, Outcome, ScoreKind};
use oxehr_clinical::Record;
use serde_json::Value;
use time::Date;

use crate::fhir::*;

#[test]
fn bmi_from_weight_and_height_in_any_known_unit() {
    // (weight, unit, height, unit, expected, shown, category)
    let cases = [
        // 70 / 1.75² = 70 / 3.0625 = 22.857.
        (
            70.0,
            "kg",
            175.0,
            "cm",
            22.857_143,
            "22.9",
            "Normal weight (18.5 to 24.9)",
        ),
        // 200 lb × 0.45359237 = 90.718 kg; 70 in × 0.0254 = 1.778 m; 90.718 / 3.161284
        // = 28.697.
        (
            200.0,
            "[lb_av]",
            70.0,
            "[in_i]",
            28.696_718,
            "28.7",
            "Pre-obese, overweight (25.0 to 29.9)",
        ),
        // 50 / 1.8² = 15.432.
        (
            50.0,
            "kg",
            1.8,
            "m",
            15.432_099,
            "15.4",
            "Underweight (under 18.5)",
        ),
        // 130 / 1.6² = 50.781.
        (
            130.0,
            "kg",
            160.0,
            "cm",
            50.781_25,
            "50.8",
            "Obese class III (40 or more)",
        ),
    ];
    for (weight, wu, height, hu, expected, shown, category) in cases {
        let p = patient("female", 45, None);
        let resources = vec![
            quantity("w", "29463-7", weight, wu, "2024-05-01"),
            quantity("h", "8302-2", height, hu, "2022-05-01"),
        ];
        let score = computed(bmi(&Record::new(&p, &resources), ON));
        close(
            score.value,
            expected,
            1e-5,
            &format!("{weight} {wu} {height} {hu}"),
        );
        assert_eq!(score.display, format!("{shown} kg/m²"));
        assert_eq!(score.interpretation.as_deref(), Some(category));
        assert_eq!(score.derived_from, ["Observation/w", "Observation/h"]);
    }
}

#[test]
fn who_bmi_categories_are_judged_on_the_value_shown() {
    // 24.96 is shown as 25.0, so it is pre-obese; 18.46 is shown as 18.5, so normal.
    for (bmi, category) in [
        (24.94, "Normal weight (18.5 to 24.9)"),
        (24.96, "Pre-obese, overweight (25.0 to 29.9)"),
        (18.44, "Underweight (under 18.5)"),
        (18.46, "Normal weight (18.5 to 24.9)"),
        (30.0, "Obese class I (30.0 to 34.9)"),
        (39.94, "Obese class II (35.0 to 39.9)"),
        (40.0, "Obese class III (40 or more)"),
    ] {
        assert_eq!(who_bmi_category(bmi), category, "{bmi}");
    }
}

#[test]
fn bmi_under_20_has_no_adult_category_and_needs_a_recent_height() {
    let p = patient("male", 15, None);
    let resources = vec![
        quantity("w", "29463-7", 60.0, "kg", "2024-05-01"),
        quantity("h", "8302-2", 170.0, "cm", "2022-05-01"),
    ];
    assert_eq!(
        bmi(&Record::new(&p, &resources), ON),
        Outcome::Missing {
            score: ScoreKind::Bmi,
            missing: vec![
                "body height in the last year (the last on record, 170 cm on 1 May 2022, is too old)"
                    .to_owned()
            ]
        }
    );
    let resources = vec![
        quantity("w", "29463-7", 60.0, "kg", "2024-05-01"),
        quantity("h", "8302-2", 170.0, "cm", "2024-01-01"),
    ];
    let score = computed(bmi(&Record::new(&p, &resources), ON));
    assert!(score.interpretation.unwrap().contains("BMI-for-age"));
}

#[test]
fn bmi_matches_the_bmi_synthea_recorded_for_every_patient() {
    oxehr_testdata::require!();
    // Synthea records BMI (39156-5) computed from the same day's weight and height: an
    // independent computation to compare with, for every patient in shared/data.
    let dir = oxehr_testdata::path("synthea");
    let mut checked = 0;
    for set in std::fs::read_dir(&dir).unwrap() {
        for file in std::fs::read_dir(set.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bundle: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let resources: Vec<Value> = bundle["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["resource"].clone())
                .collect();
            let Some(patient) = resources.iter().find(|r| r["resourceType"] == "Patient") else {
                continue;
            };
            let record = Record::new(patient, &resources);
            for recorded in record.quantities(
                &[oxehr_clinical::Code::new("http://loinc.org", "39156-5")],
                Date::MAX,
            ) {
                // Only where that day has both a weight and a height (Synthea carries
                // height forward; a BMI without same-day inputs is not comparable).
                let same_day = |code| {
                    record
                        .quantities(
                            &[oxehr_clinical::Code::new("http://loinc.org", code)],
                            recorded.date,
                        )
                        .into_iter()
                        .next()
                        .filter(|q| q.date == recorded.date)
                };
                let (Some(_), Some(height)) = (same_day("29463-7"), same_day("8302-2")) else {
                    continue;
                };
                let Outcome::Computed(score) = bmi(&record, recorded.date) else {
                    continue;
                };
                // synthea-v3 writes weight and height to 1 decimal and BMI to 2, from
                // unrounded values: ±0.05 kg moves BMI by 0.05/h², ±0.05 cm by
                // 2·BMI·0.0005/h, and BMI's own rounding adds 0.005.
                let h = height.value.value / 100.0;
                let tolerance = 0.05 / (h * h) + 2.0 * score.value * 0.0005 / h + 0.005;
                close(
                    score.value,
                    recorded.value.value,
                    tolerance,
                    &format!("{} on {}", path.display(), recorded.date),
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} BMIs compared");
}
