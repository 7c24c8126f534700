//! CHA₂DS₂-VASc — Lip GYH et al., Chest 2010;137(2):263–272, the point scheme (repeated
//! as Table 8(b) of the 2010 ESC AF guideline): C 1, H 1, A₂ (≥75) 2, D 1, S₂ 2, V 1,
//! A (65–74) 1, Sc (female) 1; maximum 9.

use oxehr_clinical::risk::{cha2ds2_vasc, cha2ds2_vasc_points, Cha2ds2VascCriteria, Outcome};
use oxehr_clinical::Record;
use serde_json::{json, Value};

use crate::fhir::*;

pub fn af() -> Value {
    sct_condition("af", "49436004")
}

#[test]
fn cha2ds2_vasc_scores_each_criterion_alone() {
    // (gender, age, extra conditions, points). A 50-year-old man with atrial fibrillation
    // and nothing else scores 0; each row adds one criterion.
    let cases: Vec<(&str, i32, Vec<Value>, u32)> = vec![
        ("male", 50, vec![], 0),
        ("female", 50, vec![], 1),                                   // Sc
        ("male", 64, vec![], 0),                                     // under 65
        ("male", 65, vec![], 1),                                     // A, 65–74
        ("male", 74, vec![], 1),                                     // A, 65–74
        ("male", 75, vec![], 2),                                     // A₂, ≥75
        ("male", 50, vec![sct_condition("chf", "88805009")], 1),     // C
        ("male", 50, vec![icd_condition("chf", "I50.22")], 1),       // C, ICD-10-CM
        ("male", 50, vec![sct_condition("htn", "59621000")], 1),     // H
        ("male", 50, vec![icd_condition("htn", "I10")], 1),          // H, ICD-10-CM
        ("male", 50, vec![sct_condition("dm", "44054006")], 1),      // D
        ("male", 50, vec![sct_condition("stroke", "230690007")], 2), // S₂
        ("male", 50, vec![icd_condition("tia", "G45.9")], 2),        // S₂ (TIA)
        ("male", 50, vec![icd_condition("amnesia", "G45.4")], 0),    // not a TIA
        ("male", 50, vec![sct_condition("mi", "22298006")], 1),      // V (MI)
        ("male", 50, vec![icd_condition("pad", "I73.9")], 1),        // V (PAD)
        ("male", 50, vec![sct_condition("chd", "53741008")], 0),     // CHD without MI
        (
            "male",
            50,
            vec![sct_condition("prediabetes", "15777000")],
            0,
        ), // not diabetes
    ];
    for (gender, age, extra, points) in cases {
        let p = patient(gender, age, None);
        let mut resources = vec![af()];
        resources.extend(extra.clone());
        let score = computed(cha2ds2_vasc(&Record::new(&p, &resources), ON));
        assert_eq!(
            score.value,
            f64::from(points),
            "{gender} {age} {extra:?}: {:?}",
            score.inputs
        );
    }
}

#[test]
fn cha2ds2_vasc_maximum_is_9() {
    // A woman of 75 or over with every condition: 1+1+2+1+2+1+0+1 = 9 (age counts once).
    let p = patient("female", 80, None);
    let resources = vec![
        af(),
        sct_condition("chf", "42343007"),
        sct_condition("htn", "38341003"),
        sct_condition("dm", "46635009"),
        sct_condition("stroke", "422504002"),
        sct_condition("mi", "401314000"),
    ];
    let score = computed(cha2ds2_vasc(&Record::new(&p, &resources), ON));
    assert_eq!(score.value, 9.0);
    assert_eq!(score.display, "9 points");
    assert_eq!(
        score.interpretation.as_deref(),
        Some("High risk of stroke and thromboembolism (9 points)")
    );
    let every = Cha2ds2VascCriteria {
        congestive_heart_failure: true,
        hypertension: true,
        age: 90,
        diabetes: true,
        stroke_tia_thromboembolism: true,
        vascular_disease: true,
        female: true,
    };
    assert_eq!(cha2ds2_vasc_points(&every), 9);
    assert_eq!(cha2ds2_vasc_points(&Cha2ds2VascCriteria::default()), 0);
}

#[test]
fn cha2ds2_vasc_applies_only_with_active_atrial_fibrillation() {
    let p = patient("female", 70, None);
    let mut resolved = af();
    resolved["abatementDateTime"] = json!("2020-01-01");
    for (resources, applies) in [
        (vec![], false),
        (vec![resolved], false),
        (vec![af()], true),
        (vec![icd_condition("af", "I48.91")], true),
        (vec![icd_condition("flutter", "I48.92")], false),
    ] {
        let outcome = cha2ds2_vasc(&Record::new(&p, &resources), ON);
        assert_eq!(
            matches!(outcome, Outcome::Computed(_)),
            applies,
            "{outcome:?}"
        );
    }
}
