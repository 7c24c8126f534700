//! Unit tests per rule, built from each guideline's own thresholds: age edges, intervals
//! just inside and just outside, exclusions, sex. Each table cites the guideline section
//! its numbers come from. The expectations are written from the guideline, not read off
//! the rule files.

use serde_json::{json, Value};
use time::macros::date;
use time::Date;

use super::*;
use crate::Record;

mod care;
mod screening;

pub(super) const TODAY: Date = date!(2026 - 12 - 05);

pub(super) fn rules() -> RuleSet {
    RuleSet::builtin().expect("built-in rules parse")
}

/// Born on this day `years` years before `TODAY`: exactly `years` old.
pub(super) fn born(years: i32) -> String {
    let d = TODAY.replace_year(TODAY.year() - years).expect("valid");
    d.to_string()
}

pub(super) fn patient(birth: &str, gender: &str) -> Value {
    json!({"resourceType": "Patient", "id": "p", "birthDate": birth, "gender": gender})
}

pub(super) fn coding(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": code}]})
}

pub(super) fn procedure(id: &str, system: &str, code: &str, when: Date) -> Value {
    json!({"resourceType": "Procedure", "id": id, "status": "completed",
           "code": coding(system, code), "performedDateTime": when.to_string()})
}

pub(super) fn observation(id: &str, code: &str, when: Date, value: Option<(f64, &str)>) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": coding("http://loinc.org", code), "effectiveDateTime": when.to_string()});
    if let Some((v, unit)) = value {
        o["valueQuantity"] = json!({"value": v, "unit": unit, "code": unit});
    }
    o
}

pub(super) fn immunization(id: &str, cvx: &str, when: Date) -> Value {
    json!({"resourceType": "Immunization", "id": id, "status": "completed",
           "vaccineCode": coding("http://hl7.org/fhir/sid/cvx", cvx),
           "occurrenceDateTime": when.to_string()})
}

pub(super) fn condition(id: &str, code: &str, onset: Date, abated: Option<Date>) -> Value {
    let mut c = json!({"resourceType": "Condition", "id": id,
        "clinicalStatus": {"coding": [{"code": if abated.is_some() {"resolved"} else {"active"}}]},
        "code": coding("http://snomed.info/sct", code), "onsetDateTime": onset.to_string()});
    if let Some(a) = abated {
        c["abatementDateTime"] = json!(a.to_string());
    }
    c
}

pub(super) fn statin_request(id: &str, rxnorm: &str, when: Date, status: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "status": status, "intent": "order",
           "medicationCodeableConcept": coding("http://www.nlm.nih.gov/research/umls/rxnorm", rxnorm),
           "authoredOn": when.to_string()})
}

pub(super) fn bp(id: &str, when: Date, systolic: f64, diastolic: f64) -> Value {
    let comp = |code: &str, v: f64| json!({"code": coding("http://loinc.org", code), "valueQuantity": {"value": v, "unit": "mm[Hg]", "code": "mm[Hg]"}});
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": coding("http://loinc.org", "85354-9"), "effectiveDateTime": when.to_string(),
           "component": [comp("8480-6", systolic), comp("8462-4", diastolic)]})
}

pub(super) fn gaps_on(
    p: &Value,
    resources: &[Value],
    today: Date,
    risk: &[RiskInput<'_>],
) -> Vec<Gap> {
    evaluate(&rules(), &Record::new(p, resources), today, risk)
}

pub(super) fn gap_of(p: &Value, resources: &[Value], rule: &str) -> Option<Gap> {
    gaps_on(p, resources, TODAY, &[])
        .into_iter()
        .find(|g| g.rule == rule)
}

pub(super) fn years_ago(n: u32) -> Date {
    TODAY.replace_year(TODAY.year() - n as i32).expect("valid")
}

/// `TODAY` less `n` calendar months (the 5th of the month, so no clamping).
pub(super) fn months_ago(n: u32) -> Date {
    let total = TODAY.year() * 12 + TODAY.month() as i32 - 1 - n as i32;
    Date::from_calendar_date(
        total.div_euclid(12),
        time::Month::try_from((total.rem_euclid(12) + 1) as u8).expect("month"),
        TODAY.day(),
    )
    .expect("valid")
}

pub(super) fn status(g: &Option<Gap>) -> Option<GapStatus> {
    g.as_ref().map(|g| g.status)
}

#[test]
fn builtin_rules_all_parse() {
    let set = rules();
    let ids: Vec<&str> = set.rules().iter().map(Rule::id).collect();
    assert_eq!(
        ids,
        [
            "colorectal-cancer-screening",
            "breast-cancer-screening",
            "cervical-cancer-screening",
            "diabetes-hba1c",
            "blood-pressure-follow-up",
            "influenza-vaccine",
            "childhood-immunizations",
            "statin-primary-prevention",
        ]
    );
    for r in set.rules() {
        assert!(
            !r.citation().is_empty() && !r.title().is_empty(),
            "{}",
            r.id()
        );
    }
}

#[test]
fn malformed_rule_files_are_refused() {
    let base = r#"id = "x"
title = "X"
citation = "c"
[applies]
age_years = [1, 2]
[[satisfied_by]]
name = "n"
resource = ["Procedure"]
every = "1 year"
codes = [{ system = "snomed", code = "1", display = "d" }]
"#;
    assert!(RuleSet::from_toml(&[("ok", base)]).is_ok());
    let cases = [
        ("unknown key", base.replace("[applies]", "colour = 1\n[applies]")),
        ("unknown system", base.replace("\"snomed\"", "\"snowmed\"")),
        ("bad interval", base.replace("1 year", "yearly")),
        ("bad age range", base.replace("[1, 2]", "[3, 2]")),
        ("unknown resource", base.replace("\"Procedure\"", "\"Encounter\"")),
        (
            "two bodies",
            format!("{base}[[series]]\nid = \"s\"\nname = \"s\"\ncodes = [{{ system = \"cvx\", code = \"1\", display = \"d\" }}]\ndose = [{{ due_months = 1 }}]\n"),
        ),
    ];
    for (what, text) in cases {
        assert!(RuleSet::from_toml(&[("f", &text)]).is_err(), "{what}");
    }
    assert!(
        RuleSet::from_toml(&[("a", base), ("b", base)]).is_err(),
        "duplicate id"
    );
}

#[test]
fn dead_patients_have_no_gaps_and_missing_birth_dates_are_undetermined() {
    let mut p = patient(&born(60), "female");
    p["deceasedDateTime"] = json!("2026-01-01");
    assert!(gaps_on(&p, &[], TODAY, &[]).is_empty());
    let p = json!({"resourceType": "Patient", "id": "p", "gender": "female"});
    let gaps = gaps_on(&p, &[], TODAY, &[]);
    assert!(!gaps.is_empty());
    for g in &gaps {
        assert_eq!(g.status, GapStatus::Undetermined, "{}", g.rule);
        assert_eq!(g.reason, "Cannot decide: no birth date on record.");
    }
}

#[test]
fn events_after_today_and_entered_in_error_do_not_count() {
    let p = patient(&born(60), "male");
    let future = procedure(
        "c",
        "http://snomed.info/sct",
        "73761001",
        date!(2027 - 01 - 01),
    );
    let mut wrong = observation("fit", "57905-2", months_ago(1), None);
    wrong["status"] = json!("entered-in-error");
    let g = gap_of(&p, &[future, wrong], "colorectal-cancer-screening").expect("applies");
    assert_eq!((g.status, g.last_done), (GapStatus::Open, None));
}

#[test]
fn gaps_serialize_with_iso_dates() {
    let p = patient(&born(60), "male");
    let old = procedure(
        "c",
        "http://snomed.info/sct",
        "73761001",
        date!(2014 - 03 - 03),
    );
    let g = gap_of(&p, &[old], "colorectal-cancer-screening").expect("applies");
    let v = serde_json::to_value(&g).expect("serializes");
    assert_eq!(v["status"], "open");
    assert_eq!(v["due"], "2024-03-03");
    assert_eq!(
        v["last_done"],
        json!({"date": "2014-03-03", "source": "Procedure/c"})
    );
}
