//! The ACC/AHA pooled cohort equations: 10-year risk of a first hard atherosclerotic
//! cardiovascular disease event (non-fatal myocardial infarction, coronary death, fatal or
//! non-fatal stroke) for people aged 40 to 79 without clinical ASCVD.
//!
//! Goff DC Jr, Lloyd-Jones DM, Bennett G, et al. 2013 ACC/AHA Guideline on the Assessment
//! of Cardiovascular Risk. *Circulation* 2014;129(25 Suppl 2):S49–S73. Appendix 7,
//! Table A gives the coefficients below, each group's mean of the sum and 10-year
//! baseline survival, and a worked example for each race and sex group.
//!
//! The guideline derived equations for non-Hispanic white and African-American men and
//! women, and says to use the white equations for other groups (they may over- or
//! under-estimate risk there). So a patient whose US Core race extension carries the OMB
//! category 2054-5 (Black or African American) gets the African-American equations;
//! everyone else, including a patient with no race recorded, the white equations — and
//! the result's inputs say which were used and why.
//!
//! Risk categories (plain words in the result) are those of the 2018 AHA/ACC cholesterol
//! guideline (Grundy SM et al., *Circulation* 2019;139:e1082–e1143): low under 5%,
//! borderline 5% to 7.4%, intermediate 7.5% to 19.9%, high 20% or more.

use serde_json::Value;
use time::Date;

use super::value_sets::{self, CLINICAL_ASCVD, DIABETES};
use super::{
    condition_input, fmt_date, fmt_num, if_deceased, latest_reading, missing_reading,
    observation_sources, patient_input, round_to, sex_of, unit_is, years_before, Outcome, Score,
    ScoreKind, Sex,
};
use crate::record::{systems, Code, Quantity, Record};
use crate::Input;

const EQUATION: &str = "10-year risk = 1 − S10^exp(sum − mean), where sum adds the race- and \
sex-specific coefficients times ln(age), ln(total cholesterol), ln(HDL cholesterol), \
ln(systolic blood pressure, treated or untreated), the interactions of ln(age) with these \
and with current smoking, and diabetes; mean is the group's mean of that sum and S10 its \
10-year baseline survival (Goff 2013, Appendix 7 Table A).";

const CITATION: &str = "Goff DC Jr, Lloyd-Jones DM, Bennett G, et al. 2013 ACC/AHA Guideline \
on the Assessment of Cardiovascular Risk. Circulation. 2014;129(25 Suppl 2):S49-S73, \
Appendix 7, Table A. Risk categories: Grundy SM, et al. 2018 AHA/ACC Guideline on the \
Management of Blood Cholesterol. Circulation. 2019;139:e1082-e1143.";

/// The four race and sex groups of Table A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PceGroup {
    WhiteWomen,
    AfricanAmericanWomen,
    WhiteMen,
    AfricanAmericanMen,
}

impl PceGroup {
    pub fn new(sex: Sex, african_american: bool) -> PceGroup {
        match (sex, african_american) {
            (Sex::Female, false) => PceGroup::WhiteWomen,
            (Sex::Female, true) => PceGroup::AfricanAmericanWomen,
            (Sex::Male, false) => PceGroup::WhiteMen,
            (Sex::Male, true) => PceGroup::AfricanAmericanMen,
        }
    }

    /// `white women`, as Table A heads its columns.
    pub fn words(self) -> &'static str {
        match self {
            PceGroup::WhiteWomen => "white women",
            PceGroup::AfricanAmericanWomen => "African-American women",
            PceGroup::WhiteMen => "white men",
            PceGroup::AfricanAmericanMen => "African-American men",
        }
    }

    fn coefficients(self) -> &'static Coefficients {
        match self {
            PceGroup::WhiteWomen => &WHITE_WOMEN,
            PceGroup::AfricanAmericanWomen => &AFRICAN_AMERICAN_WOMEN,
            PceGroup::WhiteMen => &WHITE_MEN,
            PceGroup::AfricanAmericanMen => &AFRICAN_AMERICAN_MEN,
        }
    }
}

/// One column of Table A. A term the group's equation lacks ("N/A" in the table) is 0.
struct Coefficients {
    ln_age: f64,
    ln_age_squared: f64,
    ln_total_cholesterol: f64,
    ln_age_x_ln_total_cholesterol: f64,
    ln_hdl: f64,
    ln_age_x_ln_hdl: f64,
    ln_treated_sbp: f64,
    ln_age_x_ln_treated_sbp: f64,
    ln_untreated_sbp: f64,
    ln_age_x_ln_untreated_sbp: f64,
    current_smoker: f64,
    ln_age_x_current_smoker: f64,
    diabetes: f64,
    /// "Mean (Coefficient × Value)".
    mean: f64,
    /// "Baseline Survival" at 10 years.
    baseline_survival: f64,
}

const WHITE_WOMEN: Coefficients = Coefficients {
    ln_age: -29.799,
    ln_age_squared: 4.884,
    ln_total_cholesterol: 13.540,
    ln_age_x_ln_total_cholesterol: -3.114,
    ln_hdl: -13.578,
    ln_age_x_ln_hdl: 3.149,
    ln_treated_sbp: 2.019,
    ln_age_x_ln_treated_sbp: 0.0,
    ln_untreated_sbp: 1.957,
    ln_age_x_ln_untreated_sbp: 0.0,
    current_smoker: 7.574,
    ln_age_x_current_smoker: -1.665,
    diabetes: 0.661,
    mean: -29.18,
    baseline_survival: 0.9665,
};

const AFRICAN_AMERICAN_WOMEN: Coefficients = Coefficients {
    ln_age: 17.114,
    ln_age_squared: 0.0,
    ln_total_cholesterol: 0.940,
    ln_age_x_ln_total_cholesterol: 0.0,
    ln_hdl: -18.920,
    ln_age_x_ln_hdl: 4.475,
    ln_treated_sbp: 29.291,
    ln_age_x_ln_treated_sbp: -6.432,
    ln_untreated_sbp: 27.820,
    ln_age_x_ln_untreated_sbp: -6.087,
    current_smoker: 0.691,
    ln_age_x_current_smoker: 0.0,
    diabetes: 0.874,
    mean: 86.61,
    baseline_survival: 0.9533,
};

const WHITE_MEN: Coefficients = Coefficients {
    ln_age: 12.344,
    ln_age_squared: 0.0,
    ln_total_cholesterol: 11.853,
    ln_age_x_ln_total_cholesterol: -2.664,
    ln_hdl: -7.990,
    ln_age_x_ln_hdl: 1.769,
    ln_treated_sbp: 1.797,
    ln_age_x_ln_treated_sbp: 0.0,
    ln_untreated_sbp: 1.764,
    ln_age_x_ln_untreated_sbp: 0.0,
    current_smoker: 7.837,
    ln_age_x_current_smoker: -1.795,
    diabetes: 0.658,
    mean: 61.18,
    baseline_survival: 0.9144,
};

const AFRICAN_AMERICAN_MEN: Coefficients = Coefficients {
    ln_age: 2.469,
    ln_age_squared: 0.0,
    ln_total_cholesterol: 0.302,
    ln_age_x_ln_total_cholesterol: 0.0,
    ln_hdl: -0.307,
    ln_age_x_ln_hdl: 0.0,
    ln_treated_sbp: 1.916,
    ln_age_x_ln_treated_sbp: 0.0,
    ln_untreated_sbp: 1.809,
    ln_age_x_ln_untreated_sbp: 0.0,
    current_smoker: 0.549,
    ln_age_x_current_smoker: 0.0,
    diabetes: 0.645,
    mean: 19.54,
    baseline_survival: 0.8954,
};

/// The equation's inputs, in the guideline's units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PooledCohortInputs {
    pub group: PceGroup,
    /// Years.
    pub age: f64,
    /// mg/dL.
    pub total_cholesterol: f64,
    /// mg/dL.
    pub hdl_cholesterol: f64,
    /// mm Hg.
    pub systolic_bp: f64,
    /// On treatment for high blood pressure.
    pub treated: bool,
    pub current_smoker: bool,
    pub diabetes: bool,
}

/// The equation's intermediate values, named as Table A names them, and the risk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PooledCohortResult {
    /// "Individual Sum" of coefficient × value.
    pub individual_sum: f64,
    /// "Mean (Coefficient × Value)" of the group.
    pub mean: f64,
    /// "Baseline Survival" of the group.
    pub baseline_survival: f64,
    /// 10-year risk in percent, unrounded.
    pub risk_percent: f64,
}

/// The pooled cohort equation for one person.
pub fn pooled_cohort(x: &PooledCohortInputs) -> PooledCohortResult {
    let c = x.group.coefficients();
    let ln_age = x.age.ln();
    let ln_tc = x.total_cholesterol.ln();
    let ln_hdl = x.hdl_cholesterol.ln();
    let ln_sbp = x.systolic_bp.ln();
    let (sbp, age_x_sbp) = if x.treated {
        (c.ln_treated_sbp, c.ln_age_x_ln_treated_sbp)
    } else {
        (c.ln_untreated_sbp, c.ln_age_x_ln_untreated_sbp)
    };
    let smoker = if x.current_smoker { 1.0 } else { 0.0 };
    let diabetes = if x.diabetes { 1.0 } else { 0.0 };
    let sum = c.ln_age * ln_age
        + c.ln_age_squared * ln_age * ln_age
        + c.ln_total_cholesterol * ln_tc
        + c.ln_age_x_ln_total_cholesterol * ln_age * ln_tc
        + c.ln_hdl * ln_hdl
        + c.ln_age_x_ln_hdl * ln_age * ln_hdl
        + sbp * ln_sbp
        + age_x_sbp * ln_age * ln_sbp
        + c.current_smoker * smoker
        + c.ln_age_x_current_smoker * ln_age * smoker
        + c.diabetes * diabetes;
    PooledCohortResult {
        individual_sum: sum,
        mean: c.mean,
        baseline_survival: c.baseline_survival,
        risk_percent: 100.0 * (1.0 - c.baseline_survival.powf((sum - c.mean).exp())),
    }
}

/// 10-year ASCVD risk for the patient on `on`.
pub fn ascvd_10_year(record: &Record<'_>, on: Date) -> Outcome {
    const KIND: ScoreKind = ScoreKind::Ascvd10Year;
    if let Some(o) = if_deceased(record, on, KIND) {
        return o;
    }
    let age = record.age_on(on);
    if let Some(age) = age.filter(|a| !(40..=79).contains(a)) {
        return Outcome::NotApplicable {
            score: KIND,
            reason: format!("age {age}: the pooled cohort equations are for ages 40 to 79"),
        };
    }
    if let Some(c) = CLINICAL_ASCVD.active(record, on).first() {
        let words = value_sets::concept_words(c.resource.get("code"))
            .unwrap_or_else(|| CLINICAL_ASCVD.name.to_owned());
        return Outcome::NotApplicable {
            score: KIND,
            reason: format!(
                "clinical atherosclerotic cardiovascular disease is on the record ({words}, \
                 {}): the equations estimate the risk of a first event",
                c.source
            ),
        };
    }

    let labs_since = years_before(on, 5);
    let vitals_since = years_before(on, 2);
    let sex = sex_of(record);
    let total = latest_reading(
        record,
        &[Code::new(systems::LOINC, "2093-3")],
        on,
        labs_since,
        cholesterol_mg_dl,
    );
    let hdl = latest_reading(
        record,
        &[Code::new(systems::LOINC, "2085-9")],
        on,
        labs_since,
        cholesterol_mg_dl,
    );
    let systolic = latest_reading(
        record,
        &[Code::new(systems::LOINC, "8480-6")],
        on,
        vitals_since,
        mm_hg,
    );
    let smoking = smoking_status(record, on, vitals_since);

    let mut missing = Vec::new();
    if age.is_none() {
        missing.push("age (birth date)".to_owned());
    }
    if sex.is_none() {
        missing.push("sex (male or female)".to_owned());
    }
    if total.is_none() {
        missing.push(missing_reading(
            record,
            &[Code::new(systems::LOINC, "2093-3")],
            on,
            cholesterol_mg_dl,
            "total cholesterol in the last 5 years",
        ));
    }
    if hdl.is_none() {
        missing.push(missing_reading(
            record,
            &[Code::new(systems::LOINC, "2085-9")],
            on,
            cholesterol_mg_dl,
            "HDL cholesterol in the last 5 years",
        ));
    }
    if systolic.is_none() {
        missing.push(missing_reading(
            record,
            &[Code::new(systems::LOINC, "8480-6")],
            on,
            mm_hg,
            "systolic blood pressure in the last 2 years",
        ));
    }
    if smoking.is_none() {
        missing.push("smoking status in the last 2 years".to_owned());
    }
    let (Some(age), Some(sex), Some(total), Some(hdl), Some(systolic), Some(smoking)) =
        (age, sex, total, hdl, systolic, smoking)
    else {
        return Outcome::Missing {
            score: KIND,
            missing,
        };
    };

    let race = race_of(record);
    let treatment = value_sets::active_antihypertensive(record, on);
    let diabetes = DIABETES.active(record, on);
    let group = PceGroup::new(sex, race.african_american);
    let result = pooled_cohort(&PooledCohortInputs {
        group,
        age: f64::from(age),
        total_cholesterol: total.value,
        hdl_cholesterol: hdl.value,
        systolic_bp: systolic.value,
        treated: treatment.is_some(),
        current_smoker: smoking.current,
        diabetes: !diabetes.is_empty(),
    });

    let inputs = vec![
        patient_input("Age", format!("{age} years")),
        patient_input(
            "Sex",
            match sex {
                Sex::Female => "female".to_owned(),
                Sex::Male => "male".to_owned(),
            },
        ),
        patient_input(
            "Race (chooses the equations)",
            format!("{}: equations for {}", race.words, group.words()),
        ),
        total.input("Total cholesterol", "mg/dL", 0),
        hdl.input("HDL cholesterol", "mg/dL", 0),
        systolic.input("Systolic blood pressure", "mmHg", 0),
        treatment_input(treatment),
        Input {
            name: "Current smoker".to_owned(),
            value: format!(
                "{}: {} on {}",
                if smoking.current { "yes" } else { "no" },
                smoking.words,
                fmt_date(smoking.date)
            ),
            source: Some(smoking.source),
        },
        condition_input("Diabetes", diabetes.first(), None),
    ];
    let shown = round_to(result.risk_percent, KIND.decimals());
    Outcome::Computed(Score {
        kind: KIND,
        value: result.risk_percent,
        unit: KIND.ucum(),
        display: format!("{}%", fmt_num(shown, KIND.decimals())),
        interpretation: Some(category(shown).to_owned()),
        derived_from: observation_sources(&inputs),
        inputs,
        equation: EQUATION,
        citation: CITATION,
    })
}

/// The 2018 AHA/ACC risk category of a (rounded) percentage.
fn category(percent: f64) -> &'static str {
    if percent < 5.0 {
        "Low risk (under 5%)"
    } else if percent < 7.5 {
        "Borderline risk (5% to 7.4%)"
    } else if percent < 20.0 {
        "Intermediate risk (7.5% to 19.9%)"
    } else {
        "High risk (20% or more)"
    }
}

/// Total or HDL cholesterol in mg/dL (mmol/L × 38.67: cholesterol's molar mass is
/// 386.65 g/mol).
fn cholesterol_mg_dl(q: &Quantity<'_>) -> Option<f64> {
    if unit_is(q, &["mg/dL"]) {
        Some(q.value)
    } else if unit_is(q, &["mmol/L"]) {
        Some(q.value * 38.67)
    } else {
        None
    }
}

fn mm_hg(q: &Quantity<'_>) -> Option<f64> {
    unit_is(q, &["mm[Hg]", "mmHg", "mm Hg"]).then_some(q.value)
}

fn treatment_input(found: Option<(&Value, String)>) -> Input {
    match found {
        Some((request, words)) => Input {
            name: "Treated for high blood pressure".to_owned(),
            value: format!("yes: {words} (active prescription)"),
            source: Some(crate::record::reference_of(request)),
        },
        None => Input {
            name: "Treated for high blood pressure".to_owned(),
            value: "no active antihypertensive prescription".to_owned(),
            source: None,
        },
    }
}

struct Smoking {
    current: bool,
    words: String,
    date: Date,
    source: String,
}

/// The newest smoking status (LOINC 72166-2) from `since` to `on` whose answer says
/// whether the patient smokes now; an answer that does not (unknown) is passed over.
fn smoking_status(record: &Record<'_>, on: Date, since: Date) -> Option<Smoking> {
    record
        .observations(&[Code::new(systems::LOINC, value_sets::SMOKING_STATUS)], on)
        .into_iter()
        .take_while(|d| d.date >= since)
        .find_map(|d| {
            let answer = d.resource.get("valueCodeableConcept");
            let current = value_sets::codings(answer).find_map(|c| {
                if c.get("system").and_then(Value::as_str) != Some(systems::SNOMED) {
                    return None;
                }
                let code = c.get("code").and_then(Value::as_str)?;
                if value_sets::CURRENT_SMOKER.contains(&code) {
                    Some(true)
                } else if value_sets::NOT_CURRENT_SMOKER.contains(&code) {
                    Some(false)
                } else {
                    None
                }
            })?;
            Some(Smoking {
                current,
                words: value_sets::concept_words(answer).unwrap_or_default(),
                date: d.date,
                source: d.source,
            })
        })
}

struct Race {
    african_american: bool,
    /// `Black or African American`, `White`, `not recorded`.
    words: String,
}

/// The US Core race extension's OMB categories (or its text).
fn race_of(record: &Record<'_>) -> Race {
    let extension = record
        .patient
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(value_sets::US_CORE_RACE));
    let parts: Vec<&Value> = extension
        .and_then(|e| e.get("extension"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let categories: Vec<&Value> = parts
        .iter()
        .filter(|p| p.get("url").and_then(Value::as_str) == Some("ombCategory"))
        .filter_map(|p| p.get("valueCoding"))
        .collect();
    let african_american = categories.iter().any(|c| {
        c.get("code").and_then(Value::as_str) == Some(value_sets::BLACK_OR_AFRICAN_AMERICAN)
            && c.get("system")
                .and_then(Value::as_str)
                .is_none_or(|s| s == value_sets::CDC_RACE_SYSTEM)
    });
    let named: Vec<&str> = categories
        .iter()
        .filter_map(|c| {
            c.get("display")
                .or_else(|| c.get("code"))
                .and_then(Value::as_str)
        })
        .collect();
    let text = parts
        .iter()
        .find(|p| p.get("url").and_then(Value::as_str) == Some("text"))
        .and_then(|p| p.get("valueString"))
        .and_then(Value::as_str);
    let words = if !named.is_empty() {
        named.join(", ")
    } else if let Some(text) = text {
        text.to_owned()
    } else {
        "not recorded".to_owned()
    };
    let words = if african_american || words.eq_ignore_ascii_case("white") {
        words
    } else {
        // Say why: the guideline sends every group it has no equations for to the
        // white equations.
        format!("{words} (the guideline uses the white equations for groups other than African-American)")
    };
    Race {
        african_american,
        words,
    }
}
