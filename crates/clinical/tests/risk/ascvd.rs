//! Pooled cohort equations — Goff DC Jr et al., Circulation 2014;129(25 Suppl 2):S49–S73,
//! Appendix 7, Table A, whose example profile is the same for each race and sex group:
//! 55 years of age, total cholesterol 213 mg/dL, HDL-C 50 mg/dL, untreated systolic BP
//! 120 mm Hg, not a current smoker, no diabetes.

use oxehr_clinical::risk::{
    ascvd_10_year, pooled_cohort, Outcome, PceGroup, PooledCohortInputs, ScoreKind,
};
use oxehr_clinical::Record;
use serde_json::json;

use crate::fhir::*;

struct TableA {
    gender: &'static str,
    race: Option<(&'static str, &'static str)>,
    group: PceGroup,
    /// Table A "Individual Sum", printed to 2 decimals.
    individual_sum: f64,
    /// Table A "Mean (Coefficient × Value)".
    mean: f64,
    /// Table A "Baseline Survival".
    baseline_survival: f64,
    /// Table A "Estimated 10-y Risk of Hard ASCVD", printed to 1 decimal.
    table_risk: f64,
    /// The same risk from the equation in full precision (Python).
    exact_risk: f64,
    display: &'static str,
}

pub const BLACK: (&str, &str) = ("2054-5", "Black or African American");
pub const WHITE: (&str, &str) = ("2106-3", "White");

fn table_a() -> [TableA; 4] {
    [
        TableA {
            gender: "female",
            race: Some(WHITE),
            group: PceGroup::WhiteWomen,
            individual_sum: -29.67,
            mean: -29.18,
            baseline_survival: 0.9665,
            table_risk: 2.1,
            exact_risk: 2.052_229_820_249_485,
            display: "2.1%",
        },
        TableA {
            gender: "female",
            race: Some(BLACK),
            group: PceGroup::AfricanAmericanWomen,
            individual_sum: 86.16,
            mean: 86.61,
            baseline_survival: 0.9533,
            table_risk: 3.0,
            exact_risk: 3.026_329_344_319_256,
            display: "3.0%",
        },
        TableA {
            gender: "male",
            race: Some(WHITE),
            group: PceGroup::WhiteMen,
            individual_sum: 60.69,
            mean: 61.18,
            baseline_survival: 0.9144,
            // Table A prints 5.3%; the full-precision equation gives 5.38%, shown 5.4% —
            // see `table_a_white_men_5_3_percent_is_its_rounded_sum`.
            table_risk: 5.3,
            exact_risk: 5.384_421_997_908_707,
            display: "5.4%",
        },
        TableA {
            gender: "male",
            race: Some(BLACK),
            group: PceGroup::AfricanAmericanMen,
            individual_sum: 18.97,
            mean: 19.54,
            baseline_survival: 0.8954,
            table_risk: 6.1,
            exact_risk: 6.073_437_294_492_523,
            display: "6.1%",
        },
    ]
}

#[test]
fn pooled_cohort_reproduces_table_a_for_all_four_groups() {
    for case in table_a() {
        let p = patient(case.gender, 55, case.race);
        let mut resources = table_a_measurements();
        resources.push(never_smoker());
        let record = Record::new(&p, &resources);
        let score = computed(ascvd_10_year(&record, ON));
        let what = case.group.words();

        // The figures Table A prints, from the same inputs through the bare equation.
        let r = pooled_cohort(&PooledCohortInputs {
            group: case.group,
            age: 55.0,
            total_cholesterol: 213.0,
            hdl_cholesterol: 50.0,
            systolic_bp: 120.0,
            treated: false,
            current_smoker: false,
            diabetes: false,
        });
        // Table A sums coefficient × value products it rounded to 2 decimals, so its sum
        // is within 0.01 of the exact one.
        close(r.individual_sum, case.individual_sum, 0.01, what);
        assert_eq!(r.mean, case.mean, "{what}: mean");
        assert_eq!(r.baseline_survival, case.baseline_survival, "{what}: S10");
        close(r.risk_percent, case.exact_risk, 1e-9, what);

        // Through the record: the same risk, and within 0.1 point of Table A's figure.
        close(score.value, case.exact_risk, 1e-9, what);
        close(score.value, case.table_risk, 0.1, what);
        assert_eq!(score.display, case.display, "{what}");
        assert_eq!(score.unit, "%");
        let race_input = score
            .inputs
            .iter()
            .find(|i| i.name.starts_with("Race"))
            .unwrap();
        assert!(race_input.value.ends_with(what), "{}", race_input.value);
    }
}

#[test]
fn table_a_white_men_5_3_percent_is_its_rounded_sum() {
    // Goff 2013 Appendix 7 text: "Using white men as an example: ... equates to a 5.3%
    // probability". With Table A's printed sum 60.69 and mean 61.18:
    // 1 − 0.9144^exp(60.69 − 61.18) = 1 − 0.9144^0.61263 = 5.335%, printed 5.3%.
    // The unrounded sum is 60.6995: 1 − 0.9144^exp(−0.4805) = 5.384%, which this crate
    // (like the ACC/AHA online estimator) shows as 5.4%.
    let from_table = 100.0 * (1.0 - 0.9144f64.powf((60.69f64 - 61.18).exp()));
    close(from_table, 5.3347, 1e-4, "Table A's rounded white-men sum");
    let exact = pooled_cohort(&PooledCohortInputs {
        group: PceGroup::WhiteMen,
        age: 55.0,
        total_cholesterol: 213.0,
        hdl_cholesterol: 50.0,
        systolic_bp: 120.0,
        treated: false,
        current_smoker: false,
        diabetes: false,
    });
    close(exact.individual_sum, 60.6995, 1e-4, "exact white-men sum");
}

#[test]
fn pooled_cohort_treated_smoking_and_diabetic_variants() {
    // Table A's person, changed one factor at a time, and a person with every factor
    // (age 60, total cholesterol 250, HDL 40, treated systolic 150, smoker, diabetic).
    // Expected: the Table A coefficients in Python. The treated and smoker figures,
    // rounded, also match bcjaeger/PooledCohort's tests (an independent R implementation
    // with the ACC estimator's unrounded coefficients): treated 2.8, 4.6, 6.3, 9.9;
    // smoker 5.0, 5.9, 10.0, 10.3.
    struct Case {
        age: i32,
        tc: f64,
        hdl: f64,
        sbp: f64,
        treated: bool,
        smoker: bool,
        diabetic: bool,
        expected: [f64; 4], // WW, AAW, WM, AAM
    }
    let cases = [
        Case {
            age: 55,
            tc: 213.0,
            hdl: 50.0,
            sbp: 120.0,
            treated: true,
            smoker: false,
            diabetic: false,
            expected: [2.751_601, 4.585_271, 6.276_473, 9.929_576],
        },
        Case {
            age: 55,
            tc: 213.0,
            hdl: 50.0,
            sbp: 120.0,
            treated: false,
            smoker: true,
            diabetic: false,
            expected: [4.980_993, 5.948_674, 10.000_858, 10.281_376],
        },
        Case {
            age: 60,
            tc: 250.0,
            hdl: 40.0,
            sbp: 150.0,
            treated: true,
            smoker: true,
            diabetic: true,
            expected: [31.761_034, 55.276_172, 47.556_670, 52.166_373],
        },
    ];
    let groups = [
        ("female", WHITE),
        ("female", BLACK),
        ("male", WHITE),
        ("male", BLACK),
    ];
    for case in &cases {
        for ((gender, race), expected) in groups.iter().zip(case.expected) {
            let p = patient(gender, case.age, Some(*race));
            let mut resources = vec![
                quantity("tc", "2093-3", case.tc, "mg/dL", "2024-05-01"),
                quantity("hdl", "2085-9", case.hdl, "mg/dL", "2024-05-01"),
                blood_pressure("bp", case.sbp, "2024-05-01"),
                if case.smoker {
                    current_smoker()
                } else {
                    never_smoker()
                },
            ];
            if case.treated {
                resources.push(medication(
                    "rx",
                    "314076",
                    "lisinopril 10 MG Oral Tablet",
                    "active",
                ));
            }
            if case.diabetic {
                resources.push(sct_condition("dm", "44054006"));
            }
            let record = Record::new(&p, &resources);
            let score = computed(ascvd_10_year(&record, ON));
            close(score.value, expected, 1e-5, &format!("{gender} {}", race.1));
        }
    }
}

#[test]
fn pooled_cohort_reads_cholesterol_in_mmol_per_litre() {
    // 213 mg/dL = 213 / 38.67 = 5.508 mmol/L; 50 mg/dL = 1.293 mmol/L. Recorded in
    // mmol/L the white-men example gives the same risk (to the rounding of the mmol/L).
    let p = patient("male", 55, Some(WHITE));
    let resources = vec![
        quantity("tc", "2093-3", 213.0 / 38.67, "mmol/L", "2024-05-01"),
        quantity("hdl", "2085-9", 50.0 / 38.67, "mmol/L", "2024-05-01"),
        blood_pressure("bp", 120.0, "2024-05-01"),
        never_smoker(),
    ];
    let score = computed(ascvd_10_year(&Record::new(&p, &resources), ON));
    close(score.value, 5.384_422, 1e-5, "mmol/L");
    let tc = score
        .inputs
        .iter()
        .find(|i| i.name == "Total cholesterol")
        .unwrap();
    assert_eq!(tc.value, "5.51 mmol/L (213 mg/dL) on 1 May 2024");
}

#[test]
fn race_other_than_african_american_or_unrecorded_uses_the_white_equations() {
    for race in [Some(("2028-9", "Asian")), None] {
        let p = patient("male", 55, race);
        let mut resources = table_a_measurements();
        resources.push(never_smoker());
        let score = computed(ascvd_10_year(&Record::new(&p, &resources), ON));
        close(score.value, 5.384_422, 1e-5, "white equations");
        let input = score
            .inputs
            .iter()
            .find(|i| i.name.starts_with("Race"))
            .unwrap();
        assert!(
            input.value.contains("guideline uses the white equations"),
            "{}",
            input.value
        );
    }
}

#[test]
fn only_an_active_antihypertensive_counts_as_treatment() {
    // (request, treated?) — treated white man: 6.276%; untreated: 5.384% (Python).
    let cases = [
        (
            medication("rx", "314076", "lisinopril 10 MG Oral Tablet", "stopped"),
            false,
        ),
        (
            medication(
                "rx",
                "310798",
                "Hydrochlorothiazide 25 MG Oral Tablet",
                "active",
            ),
            true,
        ),
        // A clinical drug code not in the list, known by its ingredient's name.
        (
            medication("rx", "999999", "amLODIPine 10 MG Oral Tablet", "active"),
            true,
        ),
        (
            medication("rx", "313782", "Acetaminophen 325 MG Oral Tablet", "active"),
            false,
        ),
    ];
    for (request, treated) in cases {
        let p = patient("male", 55, Some(WHITE));
        let mut resources = table_a_measurements();
        resources.push(never_smoker());
        resources.push(request.clone());
        let score = computed(ascvd_10_year(&Record::new(&p, &resources), ON));
        let expected = if treated { 6.276_473 } else { 5.384_422 };
        close(score.value, expected, 1e-5, &request.to_string());
        let input = score
            .inputs
            .iter()
            .find(|i| i.name.starts_with("Treated"))
            .unwrap();
        assert_eq!(input.source.is_some(), treated, "{input:?}");
    }
}

#[test]
fn pooled_cohort_says_which_inputs_are_missing() {
    let p = patient("female", 55, Some(WHITE));
    // Total cholesterol 6 years old, no HDL, blood pressure 3 years old, smoking status
    // only "unknown if ever smoked".
    let resources = vec![
        quantity("tc", "2093-3", 213.0, "mg/dL", "2018-05-01"),
        blood_pressure("bp", 120.0, "2021-05-01"),
        smoking("smoke", "266927001", "Unknown if ever smoked", "2024-05-01"),
    ];
    let outcome = ascvd_10_year(&Record::new(&p, &resources), ON);
    assert_eq!(
        outcome,
        Outcome::Missing {
            score: ScoreKind::Ascvd10Year,
            missing: vec![
                // The fixture's readings from before the look-back, named.
                "total cholesterol in the last 5 years (the last on record, 213 mg/dL on \
                 1 May 2018, is too old)"
                    .to_owned(),
                "HDL cholesterol in the last 5 years".to_owned(),
                "systolic blood pressure in the last 2 years (the last on record, 120 mm[Hg] \
                 on 1 May 2021, is too old)"
                    .to_owned(),
                "smoking status in the last 2 years".to_owned(),
            ]
        }
    );
    // Without a birth date or sex.
    let p = json!({"resourceType": "Patient", "id": "p1"});
    let mut resources = table_a_measurements();
    resources.push(never_smoker());
    let Outcome::Missing { missing, .. } = ascvd_10_year(&Record::new(&p, &resources), ON) else {
        panic!("expected missing")
    };
    assert_eq!(missing, ["age (birth date)", "sex (male or female)"]);
    // A cholesterol without a unit is not read as mg/dL.
    let p = patient("female", 55, Some(WHITE));
    let mut resources = table_a_measurements();
    resources[0]["valueQuantity"] = json!({"value": 213});
    resources.push(never_smoker());
    let Outcome::Missing { missing, .. } = ascvd_10_year(&Record::new(&p, &resources), ON) else {
        panic!("expected missing")
    };
    assert_eq!(missing, ["total cholesterol in the last 5 years"]);
}

#[test]
fn pooled_cohort_is_for_ages_40_to_79_without_clinical_ascvd() {
    let mut resources = table_a_measurements();
    resources.push(never_smoker());
    for (age, applies) in [(39, false), (40, true), (79, true), (80, false)] {
        let p = patient("male", age, Some(WHITE));
        let outcome = ascvd_10_year(&Record::new(&p, &resources), ON);
        assert_eq!(
            matches!(outcome, Outcome::Computed(_)),
            applies,
            "age {age}: {outcome:?}"
        );
    }
    // A prior myocardial infarction (SNOMED) or a coronary stent (ICD-10-CM Z95.5).
    for prior in [
        sct_condition("mi", "22298006"),
        icd_condition("stent", "Z95.5"),
    ] {
        let p = patient("male", 55, Some(WHITE));
        let mut with_prior = resources.clone();
        with_prior.push(prior);
        let outcome = ascvd_10_year(&Record::new(&p, &with_prior), ON);
        let Outcome::NotApplicable { reason, .. } = outcome else {
            panic!("expected not applicable, got {outcome:?}")
        };
        assert!(reason.contains("first event"), "{reason}");
    }
}
