//! Body mass index: weight (kg) divided by the square of height (m), from the newest body
//! weight (LOINC 29463-7, in kg, g or [lb_av]) within a year and the newest body height
//! (LOINC 8302-2, in cm, m or [in_i]) within 5 years (1 year under age 20, who are still
//! growing).
//!
//! Categories are the WHO adult classification (WHO Technical Report Series 894, Obesity:
//! preventing and managing the global epidemic, 2000): underweight under 18.5, normal
//! 18.5–24.9, pre-obese 25.0–29.9, obese class I 30.0–34.9, class II 35.0–39.9, class III
//! 40 or more. They are for adults; under 20 the value is given without a category
//! (children and adolescents are classified by BMI-for-age centiles).

use time::Date;

use super::{
    fmt_num, if_deceased, latest_reading, missing_reading, observation_sources, round_to, unit_is,
    years_before, Outcome, Score, ScoreKind,
};
use crate::record::{systems, Code, Quantity, Record};

const EQUATION: &str = "BMI = weight (kg) / height (m)².";

const CITATION: &str = "World Health Organization. Obesity: preventing and managing the global \
epidemic. Report of a WHO consultation. WHO Technical Report Series 894. Geneva: WHO; 2000.";

/// Weight (kg) / height (m)².
pub fn bmi_value(weight_kg: f64, height_m: f64) -> f64 {
    weight_kg / (height_m * height_m)
}

/// The WHO adult category of a BMI, judged on the value rounded to one decimal (the value
/// shown), so that a BMI shown as 25.0 is never called normal.
pub fn who_bmi_category(bmi: f64) -> &'static str {
    let bmi = round_to(bmi, 1);
    if bmi < 18.5 {
        "Underweight (under 18.5)"
    } else if bmi < 25.0 {
        "Normal weight (18.5 to 24.9)"
    } else if bmi < 30.0 {
        "Pre-obese, overweight (25.0 to 29.9)"
    } else if bmi < 35.0 {
        "Obese class I (30.0 to 34.9)"
    } else if bmi < 40.0 {
        "Obese class II (35.0 to 39.9)"
    } else {
        "Obese class III (40 or more)"
    }
}

fn kilograms(q: &Quantity<'_>) -> Option<f64> {
    if unit_is(q, &["kg"]) {
        Some(q.value)
    } else if unit_is(q, &["g"]) {
        Some(q.value / 1000.0)
    } else if unit_is(q, &["[lb_av]", "lb", "lbs"]) {
        Some(q.value * 0.453_592_37)
    } else {
        None
    }
}

fn metres(q: &Quantity<'_>) -> Option<f64> {
    if unit_is(q, &["cm"]) {
        Some(q.value / 100.0)
    } else if unit_is(q, &["m"]) {
        Some(q.value)
    } else if unit_is(q, &["[in_i]", "in"]) {
        Some(q.value * 0.0254)
    } else {
        None
    }
}

/// BMI for the patient on `on`.
pub fn bmi(record: &Record<'_>, on: Date) -> Outcome {
    const KIND: ScoreKind = ScoreKind::Bmi;
    if let Some(o) = if_deceased(record, on, KIND) {
        return o;
    }
    let age = record.age_on(on);
    let adult = age.is_some_and(|a| a >= 20);
    let weight = latest_reading(
        record,
        &[Code::new(systems::LOINC, "29463-7")],
        on,
        years_before(on, 1),
        kilograms,
    );
    let (height_years, height_missing) = if adult {
        (5, "body height in the last 5 years")
    } else {
        (1, "body height in the last year")
    };
    let height = latest_reading(
        record,
        &[Code::new(systems::LOINC, "8302-2")],
        on,
        years_before(on, height_years),
        metres,
    );
    let weight_codes = [Code::new(systems::LOINC, "29463-7")];
    let height_codes = [Code::new(systems::LOINC, "8302-2")];
    let mut missing = Vec::new();
    if weight.is_none() {
        missing.push(missing_reading(
            record,
            &weight_codes,
            on,
            kilograms,
            "body weight in the last year",
        ));
    }
    if height.is_none() {
        missing.push(missing_reading(
            record,
            &height_codes,
            on,
            metres,
            height_missing,
        ));
    }
    let (Some(weight), Some(height)) = (weight, height) else {
        return Outcome::Missing {
            score: KIND,
            missing,
        };
    };
    if height.value <= 0.0 {
        return Outcome::Missing {
            score: KIND,
            missing: vec![height_missing.to_owned()],
        };
    }

    let value = bmi_value(weight.value, height.value);
    let inputs = vec![
        weight.input("Body weight", "kg", 1),
        height.input("Body height", "m", 2),
    ];
    let interpretation = if adult {
        who_bmi_category(value).to_owned()
    } else {
        "No WHO adult category under age 20: use BMI-for-age centiles".to_owned()
    };
    let shown = round_to(value, KIND.decimals());
    Outcome::Computed(Score {
        kind: KIND,
        value,
        unit: KIND.ucum(),
        display: format!("{} {}", fmt_num(shown, KIND.decimals()), KIND.unit_words()),
        interpretation: Some(interpretation),
        derived_from: observation_sources(&inputs),
        inputs,
        equation: EQUATION,
        citation: CITATION,
    })
}
