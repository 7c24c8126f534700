//! Estimated glomerular filtration rate by the CKD-EPI 2021 creatinine equation, which
//! has no race term.
//!
//! Inker LA, Eneanya ND, Coresh J, et al. New creatinine- and cystatin C-based equations
//! to estimate GFR without race. *N Engl J Med* 2021;385:1737–1749:
//!
//! eGFR = 142 × min(Scr/κ, 1)^α × max(Scr/κ, 1)^−1.200 × 0.9938^age × 1.012 [if female]
//!
//! with Scr the serum creatinine in mg/dL, κ 0.7 (female) or 0.9 (male), α −0.241
//! (female) or −0.302 (male), age in years; the result is in mL/min/1.73 m².
//!
//! The creatinine is the newest serum/plasma creatinine (LOINC 2160-0, or 38483-4 for
//! blood) within a year; µmol/L is divided by 88.4. The age is the age on the day the
//! sample was taken, since the estimate describes that day's kidney. The equation is for
//! adults: under 18 the result is "not applicable" (children need a paediatric equation).
//!
//! Categories (plain words in the result) are the KDIGO GFR categories G1–G5 (KDIGO 2012
//! Clinical Practice Guideline for the Evaluation and Management of Chronic Kidney
//! Disease, *Kidney Int Suppl* 2013;3:1–150). One value is not a diagnosis: chronic
//! kidney disease needs a reduced GFR or kidney damage for more than 3 months.

use time::Date;

use super::{
    fmt_num, if_deceased, latest_reading, missing_reading, observation_sources, patient_input,
    round_to, sex_of, unit_is, years_before, Outcome, Score, ScoreKind, Sex,
};
use crate::record::{systems, Code, Quantity, Record};

const EQUATION: &str = "eGFR = 142 × min(Scr/κ, 1)^α × max(Scr/κ, 1)^−1.200 × 0.9938^age × \
1.012 if female; Scr serum creatinine in mg/dL, κ 0.7 for women and 0.9 for men, α −0.241 \
for women and −0.302 for men; mL/min/1.73 m².";

const CITATION: &str = "Inker LA, Eneanya ND, Coresh J, et al. New Creatinine- and Cystatin \
C-Based Equations to Estimate GFR without Race. N Engl J Med. 2021;385(19):1737-1749. \
Categories: KDIGO 2012 Clinical Practice Guideline for the Evaluation and Management of \
Chronic Kidney Disease. Kidney Int Suppl. 2013;3:1-150.";

/// The CKD-EPI 2021 creatinine equation: creatinine in mg/dL, age in years; mL/min/1.73 m².
pub fn ckd_epi_2021_creatinine(creatinine_mg_dl: f64, age: f64, sex: Sex) -> f64 {
    let (kappa, alpha, factor) = match sex {
        Sex::Female => (0.7, -0.241, 1.012),
        Sex::Male => (0.9, -0.302, 1.0),
    };
    let ratio = creatinine_mg_dl / kappa;
    142.0 * ratio.min(1.0).powf(alpha) * ratio.max(1.0).powf(-1.200) * 0.9938f64.powf(age) * factor
}

/// The KDIGO GFR category of an eGFR (rounded to a whole number first, as reported).
pub fn kdigo_gfr_category(egfr: f64) -> &'static str {
    let egfr = egfr.round();
    if egfr >= 90.0 {
        "G1: normal or high (90 or more)"
    } else if egfr >= 60.0 {
        "G2: mildly decreased (60 to 89)"
    } else if egfr >= 45.0 {
        "G3a: mildly to moderately decreased (45 to 59)"
    } else if egfr >= 30.0 {
        "G3b: moderately to severely decreased (30 to 44)"
    } else if egfr >= 15.0 {
        "G4: severely decreased (15 to 29)"
    } else {
        "G5: kidney failure range (under 15)"
    }
}

/// Creatinine in mg/dL (µmol/L ÷ 88.4).
fn creatinine_mg_dl(q: &Quantity<'_>) -> Option<f64> {
    if unit_is(q, &["mg/dL"]) {
        Some(q.value)
    } else if unit_is(q, &["umol/L", "µmol/L", "μmol/L", "micromol/L"]) {
        Some(q.value / 88.4)
    } else {
        None
    }
}

/// eGFR (CKD-EPI 2021) for the patient from the newest creatinine up to `on`.
pub fn egfr_ckd_epi_2021(record: &Record<'_>, on: Date) -> Outcome {
    const KIND: ScoreKind = ScoreKind::EgfrCkdEpi2021;
    if let Some(o) = if_deceased(record, on, KIND) {
        return o;
    }
    let creatinine = latest_reading(
        record,
        &[
            Code::new(systems::LOINC, "2160-0"),
            Code::new(systems::LOINC, "38483-4"),
        ],
        on,
        years_before(on, 1),
        creatinine_mg_dl,
    );
    let sex = sex_of(record);
    let age = match &creatinine {
        Some(c) => record.age_on(c.date),
        None => record.age_on(on),
    };
    if let Some(age) = age.filter(|a| *a < 18) {
        return Outcome::NotApplicable {
            score: KIND,
            reason: format!("age {age}: the CKD-EPI equation is for adults (18 and over)"),
        };
    }
    let mut missing = Vec::new();
    if creatinine.is_none() {
        missing.push(missing_reading(
            record,
            &[
                Code::new(systems::LOINC, "2160-0"),
                Code::new(systems::LOINC, "38483-4"),
            ],
            on,
            creatinine_mg_dl,
            "serum creatinine in the last year",
        ));
    }
    if age.is_none() {
        missing.push("age (birth date)".to_owned());
    }
    if sex.is_none() {
        missing.push("sex (male or female)".to_owned());
    }
    let (Some(creatinine), Some(age), Some(sex)) = (creatinine, age, sex) else {
        return Outcome::Missing {
            score: KIND,
            missing,
        };
    };

    let egfr = ckd_epi_2021_creatinine(creatinine.value, f64::from(age), sex);
    let inputs = vec![
        creatinine.input("Serum creatinine", "mg/dL", 2),
        patient_input("Age on the day of the sample", format!("{age} years")),
        patient_input(
            "Sex",
            match sex {
                Sex::Female => "female".to_owned(),
                Sex::Male => "male".to_owned(),
            },
        ),
    ];
    let shown = round_to(egfr, KIND.decimals());
    Outcome::Computed(Score {
        kind: KIND,
        value: egfr,
        unit: KIND.ucum(),
        display: format!("{} {}", fmt_num(shown, KIND.decimals()), KIND.unit_words()),
        interpretation: Some(kdigo_gfr_category(egfr).to_owned()),
        derived_from: observation_sources(&inputs),
        inputs,
        equation: EQUATION,
        citation: CITATION,
    })
}
