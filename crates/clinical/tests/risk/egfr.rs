//! CKD-EPI 2021 — Inker LA et al., NEJM 2021;385:1737–1749:
//! eGFR = 142 × min(Scr/κ,1)^α × max(Scr/κ,1)^−1.200 × 0.9938^age × 1.012 [female],
//! κ 0.7 (F) / 0.9 (M), α −0.241 (F) / −0.302 (M).

use oxehr_clinical::risk::{ckd_epi_2021_creatinine, egfr_ckd_epi_2021, Outcome, ScoreKind, Sex};
use oxehr_clinical::Record;

use crate::fhir::*;

#[test]
fn ckd_epi_2021_by_hand_and_the_nkf_calculator() {
    // (sex, age, creatinine, unit, expected eGFR, shown)
    let cases = [
        // NKF eGFR calculator (kidney.org/professionals/kdoqi/gfr_calculator), as quoted
        // in the examples of JMLuther/tabletools calculate_egfr_ckdepi: woman 70,
        // creatinine 0.8 → 79.2. By hand: 0.8/0.7 = 1.142857 > 1, so
        // 142 × 1.142857^−1.2 (= 0.851941) × 0.9938^70 (= 0.647038) × 1.012 = 79.215.
        ("female", 70, 0.8, "mg/dL", 79.215_103, "79"),
        // Same source: man 70, creatinine 0.8 → 95.2. 0.8/0.9 = 0.888889 < 1, so
        // 142 × 0.888889^−0.302 (= 1.036211) × 0.647038 = 95.206.
        ("male", 70, 0.8, "mg/dL", 95.206_341, "95"),
        // At the knot Scr = κ both power terms are 1: 142 × 0.9938^50 (= 0.732740)
        // × 1.012 = 105.298.
        ("female", 50, 0.7, "mg/dL", 105.297_601, "105"),
        // 159.12 µmol/L ÷ 88.4 = 1.8 mg/dL; 1.8/0.9 = 2: 142 × 2^−1.2 (= 0.435275)
        // × 0.9938^40 (= 0.779758) = 48.196.
        ("male", 40, 159.12, "umol/L", 48.196_117, "48"),
        // 0.45/0.9 = 0.5: 142 × 0.5^−0.302 (= 1.232852) × 0.9938^30 (= 0.829793)
        // = 145.268.
        ("male", 30, 0.45, "mg/dL", 145.267_738, "145"),
        // 1.5/0.7 = 2.142857: 142 × 2.142857^−1.2 (= 0.400690) × 0.9938^80 (= 0.608022)
        // × 1.012 = 35.010.
        ("female", 80, 1.5, "mg/dL", 35.010_345, "35"),
    ];
    for (gender, age, creatinine, unit, expected, shown) in cases {
        let p = patient(gender, age, None);
        let resources = vec![quantity("cr", "2160-0", creatinine, unit, "2024-05-01")];
        let score = computed(egfr_ckd_epi_2021(&Record::new(&p, &resources), ON));
        close(
            score.value,
            expected,
            1e-5,
            &format!("{gender} {age} {creatinine} {unit}"),
        );
        assert_eq!(score.display, format!("{shown} mL/min/1.73 m²"));
        assert_eq!(score.unit, "mL/min/{1.73_m2}");
        assert_eq!(score.derived_from, ["Observation/cr"]);
    }
    // The bare equation agrees.
    close(
        ckd_epi_2021_creatinine(0.8, 70.0, Sex::Female),
        79.215_103,
        1e-5,
        "bare",
    );
}

#[test]
fn ckd_epi_2021_uses_the_age_on_the_day_of_the_sample() {
    // Born 15 Jan 1954: 69 on 1 Dec 2023 (the sample), 70 on ON. Man, 0.8 mg/dL:
    // 142 × 1.036211 × 0.9938^69 (= 0.651074) = 95.800.
    let p = patient("male", 70, None);
    let resources = vec![quantity("cr", "38483-4", 0.8, "mg/dL", "2023-12-01")];
    let score = computed(egfr_ckd_epi_2021(&Record::new(&p, &resources), ON));
    close(score.value, 95.800_303, 1e-5, "age 69");
    assert!(score
        .inputs
        .iter()
        .any(|i| i.name.starts_with("Age") && i.value == "69 years"));
}

#[test]
fn ckd_epi_2021_needs_an_adult_and_a_recent_creatinine() {
    let p = patient("female", 16, None);
    let resources = vec![quantity("cr", "2160-0", 0.6, "mg/dL", "2024-05-01")];
    assert!(matches!(
        egfr_ckd_epi_2021(&Record::new(&p, &resources), ON),
        Outcome::NotApplicable { .. }
    ));
    let p = patient("female", 50, None);
    let old = vec![quantity("cr", "2160-0", 0.6, "mg/dL", "2023-05-01")];
    assert_eq!(
        egfr_ckd_epi_2021(&Record::new(&p, &old), ON),
        Outcome::Missing {
            score: ScoreKind::EgfrCkdEpi2021,
            missing: vec![
                "serum creatinine in the last year (the last on record, 0.6 mg/dL on 1 May 2023, \
                 is too old)"
                    .to_owned()
            ]
        }
    );
}
