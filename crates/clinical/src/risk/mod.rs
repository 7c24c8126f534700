//! Explainable risk scores, each computed with its published equation from one patient's
//! record, and each saying which inputs it used (with the resources they came from), the
//! equation in words and its citation — or, when it cannot be computed, which inputs are
//! missing or why it does not apply. It never guesses an input.
//!
//! | Score | Function | Source |
//! |---|---|---|
//! | 10-year ASCVD risk, pooled cohort equations | [`ascvd_10_year`] | Goff DC Jr et al., 2013 ACC/AHA Guideline on the Assessment of Cardiovascular Risk, *Circulation* 2014;129(25 Suppl 2):S49–S73, Appendix 7 Table A |
//! | CHA₂DS₂-VASc | [`cha2ds2_vasc`] | Lip GYH et al., *Chest* 2010;137(2):263–272 |
//! | eGFR, CKD-EPI 2021 creatinine equation (no race term) | [`egfr_ckd_epi_2021`] | Inker LA et al., *N Engl J Med* 2021;385:1737–1749 |
//! | Body mass index with WHO categories | [`bmi`] | WHO Technical Report Series 894 (2000) |
//!
//! [`all`] gives the four in that order; [`to_observation`] writes a computed score as a
//! FHIR R4 Observation whose `derivedFrom` lists the Observations it used.
//!
//! ## Look-back: how old an input may be
//!
//! An input older than its look-back counts as missing (the result says so), because a
//! score from stale values describes a different patient:
//!
//! | Input | Look-back before the date asked about |
//! |---|---|
//! | Total and HDL cholesterol | 5 years |
//! | Systolic blood pressure | 2 years |
//! | Smoking status | 2 years |
//! | Serum creatinine | 1 year (kidney function changes) |
//! | Body weight | 1 year |
//! | Body height | 5 years; 1 year under age 20 (still growing) |
//!
//! Conditions and medicines count when active on the date ([`crate::Record::active_conditions`];
//! a MedicationRequest with status `active`). A criterion that is not on the record
//! counts as absent — a score built from conditions is only as complete as the problem
//! list, and each result lists what it found.
//!
//! Quantities are read in the units they carry (UCUM code, else unit text) and converted
//! when the unit is one we know (cholesterol mmol/L × 38.67, creatinine µmol/L ÷ 88.4,
//! pounds, inches); a value without a known unit is not used.
//!
//! The codes each criterion looks for are listed, with reasons, in `value_sets.rs`.

mod ascvd;
mod bmi;
mod cha2ds2_vasc;
mod egfr;
mod observation;
mod value_sets;

pub use ascvd::{ascvd_10_year, pooled_cohort, PceGroup, PooledCohortInputs, PooledCohortResult};
pub use bmi::{bmi, bmi_value, who_bmi_category};
pub use cha2ds2_vasc::{cha2ds2_vasc, cha2ds2_vasc_points, Cha2ds2VascCriteria};
pub use egfr::{ckd_epi_2021_creatinine, egfr_ckd_epi_2021, kdigo_gfr_category};
pub use observation::to_observation;

use time::Date;

use crate::record::{Code, Quantity, Record};
use crate::Input;

/// The code system for scores LOINC has no code for. Codes: `cha2ds2-vasc`.
pub const RISK_SCORE_SYSTEM: &str = "https://oxehr.org/fhir/CodeSystem/risk-score";

/// Which score a result is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScoreKind {
    /// 10-year risk of a first hard ASCVD event (heart attack, coronary death, stroke).
    Ascvd10Year,
    /// Stroke and thromboembolism risk in atrial fibrillation.
    Cha2ds2Vasc,
    /// Estimated glomerular filtration rate, CKD-EPI 2021 creatinine equation.
    EgfrCkdEpi2021,
    /// Body mass index.
    Bmi,
}

/// A coding: system, code and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreCode {
    pub system: &'static str,
    pub code: &'static str,
    pub display: &'static str,
}

impl ScoreKind {
    /// A stable id for the score (`ascvd-10y`), for APIs and stored findings.
    pub fn id(self) -> &'static str {
        match self {
            ScoreKind::Ascvd10Year => "ascvd-10y",
            ScoreKind::Cha2ds2Vasc => "cha2ds2-vasc",
            ScoreKind::EgfrCkdEpi2021 => "egfr-ckd-epi-2021",
            ScoreKind::Bmi => "bmi",
        }
    }

    /// The score's name in plain words.
    pub fn title(self) -> &'static str {
        match self {
            ScoreKind::Ascvd10Year => "10-year risk of heart attack or stroke (ASCVD)",
            ScoreKind::Cha2ds2Vasc => "Stroke risk in atrial fibrillation (CHA₂DS₂-VASc)",
            ScoreKind::EgfrCkdEpi2021 => "Kidney function (eGFR, CKD-EPI 2021)",
            ScoreKind::Bmi => "Body mass index (BMI)",
        }
    }

    /// The Observation code: LOINC where LOINC has one, else [`RISK_SCORE_SYSTEM`].
    pub fn code(self) -> ScoreCode {
        const LOINC: &str = crate::record::systems::LOINC;
        match self {
            ScoreKind::Ascvd10Year => ScoreCode {
                system: LOINC,
                code: "79423-0",
                display: "Cardiovascular disease 10Y risk [Likelihood] ACC-AHA Pooled Cohort by Goff 2013",
            },
            // No LOINC term for CHA2DS2-VASc was found when this was written; the code is ours.
            ScoreKind::Cha2ds2Vasc => ScoreCode {
                system: RISK_SCORE_SYSTEM,
                code: "cha2ds2-vasc",
                display: "CHA2DS2-VASc score",
            },
            ScoreKind::EgfrCkdEpi2021 => ScoreCode {
                system: LOINC,
                code: "98979-8",
                display: "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI 2021)",
            },
            ScoreKind::Bmi => ScoreCode {
                system: LOINC,
                code: "39156-5",
                display: "Body mass index (BMI) [Ratio]",
            },
        }
    }

    /// The UCUM code of the value.
    pub fn ucum(self) -> &'static str {
        match self {
            ScoreKind::Ascvd10Year => "%",
            ScoreKind::Cha2ds2Vasc => "{score}",
            ScoreKind::EgfrCkdEpi2021 => "mL/min/{1.73_m2}",
            ScoreKind::Bmi => "kg/m2",
        }
    }

    /// The unit as a person writes it.
    pub fn unit_words(self) -> &'static str {
        match self {
            ScoreKind::Ascvd10Year => "%",
            ScoreKind::Cha2ds2Vasc => "points",
            ScoreKind::EgfrCkdEpi2021 => "mL/min/1.73 m²",
            ScoreKind::Bmi => "kg/m²",
        }
    }

    /// Decimals the value is shown and stored with.
    pub fn decimals(self) -> u8 {
        match self {
            ScoreKind::Ascvd10Year | ScoreKind::Bmi => 1,
            ScoreKind::Cha2ds2Vasc | ScoreKind::EgfrCkdEpi2021 => 0,
        }
    }

    /// The Observation category (`observation-category` code). The two risk scores are
    /// assessment instruments (`survey`, whose definition names Apgar as an example);
    /// eGFR is a laboratory result computed from one; BMI is a vital sign (the R4
    /// vital-signs profile lists 39156-5).
    pub fn category(self) -> &'static str {
        match self {
            ScoreKind::Ascvd10Year | ScoreKind::Cha2ds2Vasc => "survey",
            ScoreKind::EgfrCkdEpi2021 => "laboratory",
            ScoreKind::Bmi => "vital-signs",
        }
    }

    /// The method, named (Observation.method text).
    pub fn method(self) -> &'static str {
        match self {
            ScoreKind::Ascvd10Year => "ACC/AHA pooled cohort equations (Goff 2013)",
            ScoreKind::Cha2ds2Vasc => "CHA2DS2-VASc point score (Lip 2010)",
            ScoreKind::EgfrCkdEpi2021 => {
                "CKD-EPI 2021 creatinine equation, without race (Inker 2021)"
            }
            ScoreKind::Bmi => "Body mass index: weight (kg) / height (m)²",
        }
    }
}

/// A computed score with everything needed to explain it.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub kind: ScoreKind,
    /// Unrounded; [`Score::display`] and [`to_observation`] round to
    /// [`ScoreKind::decimals`].
    pub value: f64,
    /// UCUM code of the value.
    pub unit: &'static str,
    /// The value as a person reads it: `5.4%`, `95 mL/min/1.73 m²`.
    pub display: String,
    /// What the value means, in plain words, where the source gives categories.
    pub interpretation: Option<String>,
    /// Every input used, present or absent (`Diabetes: none recorded`).
    pub inputs: Vec<Input>,
    /// The Observations used (`Observation/123`), for Observation.derivedFrom. Conditions
    /// and medication requests are named in `inputs`: R4 derivedFrom cannot point at them.
    pub derived_from: Vec<String>,
    /// The formula in words.
    pub equation: &'static str,
    pub citation: &'static str,
}

/// The result of one score for one patient on one date.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Computed(Score),
    /// Inputs the record lacks (or has only older than the look-back), in plain words:
    /// `total cholesterol in the last 5 years`.
    Missing {
        score: ScoreKind,
        missing: Vec<String>,
    },
    /// The score does not apply to this patient (`age 35: the equations are for ages 40
    /// to 79`).
    NotApplicable {
        score: ScoreKind,
        reason: String,
    },
}

impl Outcome {
    pub fn kind(&self) -> ScoreKind {
        match self {
            Outcome::Computed(s) => s.kind,
            Outcome::Missing { score, .. } | Outcome::NotApplicable { score, .. } => *score,
        }
    }

    /// The score, when computed.
    pub fn score(&self) -> Option<&Score> {
        match self {
            Outcome::Computed(s) => Some(s),
            _ => None,
        }
    }
}

/// Every score, in the order of the module table.
pub fn all(record: &Record<'_>, on: Date) -> Vec<Outcome> {
    vec![
        ascvd_10_year(record, on),
        cha2ds2_vasc(record, on),
        egfr_ckd_epi_2021(record, on),
        bmi(record, on),
    ]
}

/// Sex as the equations use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Female,
    Male,
}

/// `Patient.gender` as [`Sex`]; `other`, `unknown` or absent give `None`.
pub(crate) fn sex_of(record: &Record<'_>) -> Option<Sex> {
    match record.gender() {
        Some("female") => Some(Sex::Female),
        Some("male") => Some(Sex::Male),
        _ => None,
    }
}

/// A quantity found in the record, converted to the unit an equation wants.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    /// In the equation's unit.
    pub value: f64,
    /// As recorded.
    pub recorded_value: f64,
    pub recorded_unit: String,
    pub date: Date,
    pub source: String,
}

impl Reading {
    /// The reading as an [`Input`]: `213 mg/dL on 1 Mar 2024`, with the converted value
    /// too when conversion changed it (`80 umol/L (0.90 mg/dL) on …`).
    pub fn input(&self, name: &str, unit: &str, decimals: u8) -> Input {
        let recorded = format!(
            "{} {}",
            fmt_trim(self.recorded_value, 2),
            self.recorded_unit
        );
        let value = if (self.value - self.recorded_value).abs() > 1e-9 {
            format!("{recorded} ({} {unit})", fmt_num(self.value, decimals))
        } else {
            recorded
        };
        Input {
            name: name.to_owned(),
            value: format!("{value} on {}", fmt_date(self.date)),
            source: Some(self.source.clone()),
        }
    }
}

/// The newest quantity for `codes` dated from `since` to `on` whose unit `convert`
/// understands (it returns the value in the wanted unit, or `None`).
pub(crate) fn latest_reading(
    record: &Record<'_>,
    codes: &[Code<'_>],
    on: Date,
    since: Date,
    convert: fn(&Quantity<'_>) -> Option<f64>,
) -> Option<Reading> {
    record
        .quantities(codes, on)
        .into_iter()
        .take_while(|d| d.date >= since)
        .find_map(|d| {
            Some(Reading {
                value: convert(&d.value)?,
                recorded_value: d.value.value,
                recorded_unit: d.value.unit.unwrap_or_default().to_owned(),
                date: d.date,
                source: d.source,
            })
        })
}

/// An input the look-back lacks, in words: `needed` ("body weight in the last year"),
/// with the newest reading the record has from before the look-back, if any ("the last
/// on record, 82 kg on 3 Mar 2024, is too old"), so a reader knows a measurement is due
/// rather than missing.
pub(crate) fn missing_reading(
    record: &Record<'_>,
    codes: &[Code<'_>],
    on: Date,
    convert: fn(&Quantity<'_>) -> Option<f64>,
    needed: &str,
) -> String {
    match latest_reading(record, codes, on, Date::MIN, convert) {
        Some(r) => format!(
            "{needed} (the last on record, {} {} on {}, is too old)",
            fmt_trim(r.recorded_value, 2),
            r.recorded_unit,
            fmt_date(r.date)
        ),
        None => needed.to_owned(),
    }
}

/// The unit of a quantity, compared without case (`mg/dL`, `mg/dl`).
pub(crate) fn unit_is(q: &Quantity<'_>, units: &[&str]) -> bool {
    q.unit
        .is_some_and(|u| units.iter().any(|w| u.trim().eq_ignore_ascii_case(w)))
}

/// The date `years` calendar years before `on` (29 February falls back to the 28th).
pub(crate) fn years_before(on: Date, years: i32) -> Date {
    let year = on.year() - years;
    Date::from_calendar_date(year, on.month(), on.day())
        .or_else(|_| Date::from_calendar_date(year, on.month(), on.day() - 1))
        .unwrap_or(Date::MIN)
}

/// `1 Mar 2024`.
pub(crate) fn fmt_date(d: Date) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS[usize::from(u8::from(d.month())) - 1];
    format!("{} {month} {}", d.day(), d.year())
}

/// A number with `decimals` decimals (none when 0).
pub(crate) fn fmt_num(v: f64, decimals: u8) -> String {
    format!("{:.*}", usize::from(decimals), v)
}

/// A number with at most `decimals` decimals, trailing zeros dropped (`213`, `0.8`).
pub(crate) fn fmt_trim(v: f64, decimals: u8) -> String {
    let s = fmt_num(v, decimals);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// `v` rounded to `decimals` decimals.
pub(crate) fn round_to(v: f64, decimals: u8) -> f64 {
    let f = 10f64.powi(i32::from(decimals));
    (v * f).round() / f
}

/// An input taken from the Patient resource (age, sex, race): no source reference, as
/// [`Input`] describes.
pub(crate) fn patient_input(name: &str, value: String) -> Input {
    Input {
        name: name.to_owned(),
        value,
        source: None,
    }
}

/// An input about a condition: found (with its onset and reference) or not recorded.
pub(crate) fn condition_input(
    name: &str,
    found: Option<&crate::Dated<'_, &serde_json::Value>>,
    points: Option<u32>,
) -> Input {
    match found {
        Some(c) => {
            let words = value_sets::concept_words(c.resource.get("code"))
                .unwrap_or_else(|| "recorded".to_owned());
            let points = points.map(|p| format!(" (+{p})")).unwrap_or_default();
            Input {
                name: name.to_owned(),
                value: format!("yes{points}: {words}, since {}", fmt_date(c.date)),
                source: Some(c.source.clone()),
            }
        }
        None => Input {
            name: name.to_owned(),
            value: "none recorded".to_owned(),
            source: None,
        },
    }
}

/// The Observation references among `inputs`, in order, once each.
pub(crate) fn observation_sources(inputs: &[Input]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in inputs.iter().filter_map(|i| i.source.as_ref()) {
        if s.starts_with("Observation/") && !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

/// The same outcome for any score when the patient has died by `on`.
pub(crate) fn if_deceased(record: &Record<'_>, on: Date, score: ScoreKind) -> Option<Outcome> {
    record.deceased_on(on).then(|| Outcome::NotApplicable {
        score,
        reason: "the patient died on or before this date".to_owned(),
    })
}
