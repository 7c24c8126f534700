//! CHA₂DS₂-VASc: stroke and thromboembolism risk in atrial fibrillation.
//!
//! Lip GYH, Nieuwlaat R, Pisters R, Lane DA, Crijns HJGM. Refining clinical risk
//! stratification for predicting stroke and thromboembolism in atrial fibrillation using
//! a novel risk factor-based approach: the Euro Heart Survey on atrial fibrillation.
//! *Chest* 2010;137(2):263–272. The point scheme (the paper's scoring table, repeated as
//! Table 8(b) of the 2010 ESC atrial fibrillation guideline, Camm AJ et al., *Eur Heart J*
//! 2010;31:2369–2429):
//!
//! | Criterion | Points |
//! |---|---|
//! | **C**ongestive heart failure / left ventricular dysfunction | 1 |
//! | **H**ypertension | 1 |
//! | **A**ge ≥ 75 | 2 |
//! | **D**iabetes mellitus | 1 |
//! | **S**troke, TIA or thromboembolism | 2 |
//! | **V**ascular disease (prior myocardial infarction, peripheral artery disease, aortic plaque) | 1 |
//! | **A**ge 65–74 | 1 |
//! | **S**ex **c**ategory female | 1 |
//!
//! The maximum is 9, since age gives 0, 1 or 2. Categories as the paper uses them: 0 low
//! risk, 1 intermediate, 2 or more high. The score applies to patients with atrial
//! fibrillation; for anyone else the result is "not applicable". Which codes count for
//! each criterion is in `value_sets.rs`.

use time::Date;

use super::value_sets::{
    ATRIAL_FIBRILLATION, DIABETES, HEART_FAILURE, HYPERTENSION, STROKE_TIA_THROMBOEMBOLISM,
    VASCULAR_DISEASE,
};
use super::{condition_input, if_deceased, patient_input, sex_of, Outcome, Score, ScoreKind, Sex};
use crate::record::Record;

const EQUATION: &str = "Points: congestive heart failure 1, hypertension 1, age 75 or over 2, \
diabetes 1, prior stroke/TIA/thromboembolism 2, vascular disease (prior myocardial \
infarction, peripheral artery disease, aortic plaque) 1, age 65 to 74 1, female sex 1; \
maximum 9.";

const CITATION: &str = "Lip GYH, Nieuwlaat R, Pisters R, Lane DA, Crijns HJGM. Refining \
clinical risk stratification for predicting stroke and thromboembolism in atrial \
fibrillation using a novel risk factor-based approach: the Euro Heart Survey on atrial \
fibrillation. Chest. 2010;137(2):263-272.";

/// The criteria, as facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cha2ds2VascCriteria {
    pub congestive_heart_failure: bool,
    pub hypertension: bool,
    /// Whole years.
    pub age: i32,
    pub diabetes: bool,
    pub stroke_tia_thromboembolism: bool,
    pub vascular_disease: bool,
    pub female: bool,
}

/// Points for the age criteria: 2 at 75 and over, 1 from 65 to 74.
fn age_points(age: i32) -> u32 {
    match age {
        75.. => 2,
        65..=74 => 1,
        _ => 0,
    }
}

/// The CHA₂DS₂-VASc score of `c`.
pub fn cha2ds2_vasc_points(c: &Cha2ds2VascCriteria) -> u32 {
    u32::from(c.congestive_heart_failure)
        + u32::from(c.hypertension)
        + age_points(c.age)
        + u32::from(c.diabetes)
        + 2 * u32::from(c.stroke_tia_thromboembolism)
        + u32::from(c.vascular_disease)
        + u32::from(c.female)
}

/// CHA₂DS₂-VASc for the patient on `on`.
pub fn cha2ds2_vasc(record: &Record<'_>, on: Date) -> Outcome {
    const KIND: ScoreKind = ScoreKind::Cha2ds2Vasc;
    if let Some(o) = if_deceased(record, on, KIND) {
        return o;
    }
    let af = ATRIAL_FIBRILLATION.active(record, on);
    let Some(af) = af.first() else {
        return Outcome::NotApplicable {
            score: KIND,
            reason: "no active atrial fibrillation on the record: the score is for patients \
                     with atrial fibrillation"
                .to_owned(),
        };
    };
    let age = record.age_on(on);
    let sex = sex_of(record);
    let (Some(age), Some(sex)) = (age, sex) else {
        let mut missing = Vec::new();
        if age.is_none() {
            missing.push("age (birth date)".to_owned());
        }
        if sex.is_none() {
            missing.push("sex (male or female)".to_owned());
        }
        return Outcome::Missing {
            score: KIND,
            missing,
        };
    };

    let chf = HEART_FAILURE.active(record, on);
    let htn = HYPERTENSION.active(record, on);
    let dm = DIABETES.active(record, on);
    let stroke = STROKE_TIA_THROMBOEMBOLISM.active(record, on);
    let vascular = VASCULAR_DISEASE.active(record, on);
    let criteria = Cha2ds2VascCriteria {
        congestive_heart_failure: !chf.is_empty(),
        hypertension: !htn.is_empty(),
        age,
        diabetes: !dm.is_empty(),
        stroke_tia_thromboembolism: !stroke.is_empty(),
        vascular_disease: !vascular.is_empty(),
        female: sex == Sex::Female,
    };
    let points = cha2ds2_vasc_points(&criteria);

    let age_words = match age_points(age) {
        0 => format!("{age} years (under 65: 0)"),
        1 => format!("{age} years (65 to 74: +1)"),
        _ => format!("{age} years (75 or over: +2)"),
    };
    let inputs = vec![
        condition_input(ATRIAL_FIBRILLATION.name, Some(af), None),
        condition_input(HEART_FAILURE.name, chf.first(), Some(1)),
        condition_input(HYPERTENSION.name, htn.first(), Some(1)),
        patient_input("Age", age_words),
        condition_input(DIABETES.name, dm.first(), Some(1)),
        condition_input(STROKE_TIA_THROMBOEMBOLISM.name, stroke.first(), Some(2)),
        condition_input(VASCULAR_DISEASE.name, vascular.first(), Some(1)),
        patient_input(
            "Sex",
            match sex {
                Sex::Female => "female (+1)".to_owned(),
                Sex::Male => "male (0)".to_owned(),
            },
        ),
    ];
    let interpretation = match points {
        0 => "Low risk of stroke and thromboembolism (0 points)".to_owned(),
        1 if criteria.female => "1 point, for female sex alone: no other risk factor".to_owned(),
        1 => "Intermediate risk of stroke and thromboembolism (1 point)".to_owned(),
        n => format!("High risk of stroke and thromboembolism ({n} points)"),
    };
    Outcome::Computed(Score {
        kind: KIND,
        value: f64::from(points),
        unit: KIND.ucum(),
        display: format!("{points} {}", if points == 1 { "point" } else { "points" }),
        interpretation: Some(interpretation),
        // All inputs are Conditions and the Patient; derivedFrom holds Observations only.
        derived_from: Vec::new(),
        inputs,
        equation: EQUATION,
        citation: CITATION,
    })
}
