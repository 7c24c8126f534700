//! Unit tests per rule, built from each guideline's own thresholds: age edges, intervals
//! just inside and just outside, exclusions, sex. Each table cites the guideline section
//! its numbers come from. The expectations are written from the guideline, not read off
//! the rule files.

use serde_json::{json, Value};
use time::macros::date;
use time::Date;

use super::words::add_months;
use super::*;
use crate::Record;

const TODAY: Date = date!(2026 - 12 - 05);

fn rules() -> RuleSet {
    RuleSet::builtin().expect("built-in rules parse")
}

/// Born on this day `years` years before `TODAY`: exactly `years` old.
fn born(years: i32) -> String {
    let d = TODAY.replace_year(TODAY.year() - years).expect("valid");
    d.to_string()
}

fn patient(birth: &str, gender: &str) -> Value {
    json!({"resourceType": "Patient", "id": "p", "birthDate": birth, "gender": gender})
}

fn coding(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": code}]})
}

fn procedure(id: &str, system: &str, code: &str, when: Date) -> Value {
    json!({"resourceType": "Procedure", "id": id, "status": "completed",
           "code": coding(system, code), "performedDateTime": when.to_string()})
}

fn observation(id: &str, code: &str, when: Date, value: Option<(f64, &str)>) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": coding("http://loinc.org", code), "effectiveDateTime": when.to_string()});
    if let Some((v, unit)) = value {
        o["valueQuantity"] = json!({"value": v, "unit": unit, "code": unit});
    }
    o
}

fn immunization(id: &str, cvx: &str, when: Date) -> Value {
    json!({"resourceType": "Immunization", "id": id, "status": "completed",
           "vaccineCode": coding("http://hl7.org/fhir/sid/cvx", cvx),
           "occurrenceDateTime": when.to_string()})
}

fn condition(id: &str, code: &str, onset: Date, abated: Option<Date>) -> Value {
    let mut c = json!({"resourceType": "Condition", "id": id,
        "clinicalStatus": {"coding": [{"code": if abated.is_some() {"resolved"} else {"active"}}]},
        "code": coding("http://snomed.info/sct", code), "onsetDateTime": onset.to_string()});
    if let Some(a) = abated {
        c["abatementDateTime"] = json!(a.to_string());
    }
    c
}

fn statin_request(id: &str, rxnorm: &str, when: Date, status: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "status": status, "intent": "order",
           "medicationCodeableConcept": coding("http://www.nlm.nih.gov/research/umls/rxnorm", rxnorm),
           "authoredOn": when.to_string()})
}

fn bp(id: &str, when: Date, systolic: f64, diastolic: f64) -> Value {
    let comp = |code: &str, v: f64| json!({"code": coding("http://loinc.org", code), "valueQuantity": {"value": v, "unit": "mm[Hg]", "code": "mm[Hg]"}});
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": coding("http://loinc.org", "85354-9"), "effectiveDateTime": when.to_string(),
           "component": [comp("8480-6", systolic), comp("8462-4", diastolic)]})
}

fn gaps_on(p: &Value, resources: &[Value], today: Date, risk: &[RiskInput<'_>]) -> Vec<Gap> {
    evaluate(&rules(), &Record::new(p, resources), today, risk)
}

fn gap_of(p: &Value, resources: &[Value], rule: &str) -> Option<Gap> {
    gaps_on(p, resources, TODAY, &[])
        .into_iter()
        .find(|g| g.rule == rule)
}

fn years_ago(n: u32) -> Date {
    TODAY.replace_year(TODAY.year() - n as i32).expect("valid")
}

/// `TODAY` less `n` calendar months (the 5th of the month, so no clamping).
fn months_ago(n: u32) -> Date {
    let total = TODAY.year() * 12 + TODAY.month() as i32 - 1 - n as i32;
    Date::from_calendar_date(
        total.div_euclid(12),
        time::Month::try_from((total.rem_euclid(12) + 1) as u8).expect("month"),
        TODAY.day(),
    )
    .expect("valid")
}

fn status(g: &Option<Gap>) -> Option<GapStatus> {
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

/// USPSTF 2021 colorectal cancer: adults 45 to 75 (Recommendation Summary).
#[test]
fn colorectal_applies_from_45_through_75() {
    let cases = [
        (44, None),
        (45, Some(GapStatus::Open)),
        (75, Some(GapStatus::Open)),
        (76, None),
    ];
    for (age, want) in cases {
        let p = patient(&born(age), "male");
        assert_eq!(
            status(&gap_of(&p, &[], "colorectal-cancer-screening")),
            want,
            "age {age}"
        );
    }
    // The day before the 45th birthday the patient is 44.
    let p = patient(
        &TODAY
            .replace_year(1981)
            .expect("valid")
            .next_day()
            .expect("d")
            .to_string(),
        "female",
    );
    assert_eq!(gap_of(&p, &[], "colorectal-cancer-screening"), None);
}

/// USPSTF 2021 colorectal cancer, screening strategies: colonoscopy every 10 years, CT
/// colonography and flexible sigmoidoscopy every 5, sDNA-FIT every 1 to 3 (3 here), FIT
/// or gFOBT every year.
#[test]
fn colorectal_intervals_inside_and_outside() {
    let colonoscopy = |d| procedure("c", "http://snomed.info/sct", "73761001", d);
    let sigmoidoscopy = |d| procedure("s", "http://snomed.info/sct", "44441009", d);
    let ct = |d| observation("ct", "79101-2", d, None);
    let sdna = |d| observation("dna", "77354-9", d, None);
    let fit = |d| observation("fit", "57905-2", d, Some((12.0, "ng/mL")));
    let cases: Vec<(&str, Value, GapStatus)> = vec![
        (
            "colonoscopy 10 y less a day",
            colonoscopy(years_ago(10).next_day().expect("d")),
            GapStatus::Closed,
        ),
        (
            "colonoscopy exactly 10 y",
            colonoscopy(years_ago(10)),
            GapStatus::Open,
        ),
        (
            "CT colonography 5 y less a day",
            ct(years_ago(5).next_day().expect("d")),
            GapStatus::Closed,
        ),
        ("CT colonography 5 y", ct(years_ago(5)), GapStatus::Open),
        (
            "sigmoidoscopy 5 y less a day",
            sigmoidoscopy(years_ago(5).next_day().expect("d")),
            GapStatus::Closed,
        ),
        (
            "sigmoidoscopy 5 y",
            sigmoidoscopy(years_ago(5)),
            GapStatus::Open,
        ),
        (
            "sDNA-FIT 3 y less a day",
            sdna(years_ago(3).next_day().expect("d")),
            GapStatus::Closed,
        ),
        ("sDNA-FIT 3 y", sdna(years_ago(3)), GapStatus::Open),
        ("FIT 11 months", fit(months_ago(11)), GapStatus::Closed),
        ("FIT 13 months", fit(months_ago(13)), GapStatus::Open),
    ];
    let p = patient(&born(60), "male");
    for (what, event, want) in cases {
        let g = gap_of(&p, &[event], "colorectal-cancer-screening").expect(what);
        assert_eq!(g.status, want, "{what}: {}", g.reason);
        assert!(g.last_done.is_some(), "{what}");
    }
}

#[test]
fn colorectal_reason_due_date_and_longest_lasting_option() {
    let p = patient(&born(60), "male");
    let old = procedure(
        "c",
        "http://snomed.info/sct",
        "73761001",
        date!(2014 - 03 - 03),
    );
    let g = gap_of(
        &p,
        std::slice::from_ref(&old),
        "colorectal-cancer-screening",
    )
    .expect("applies");
    assert_eq!(g.status, GapStatus::Open);
    assert_eq!(
        g.reason,
        "Due: last colonoscopy was 12 years ago (3 Mar 2014); repeat every 10 years."
    );
    assert_eq!(g.due, Some(date!(2024 - 03 - 03)));
    assert_eq!(
        g.last_done,
        Some((date!(2014 - 03 - 03), "Procedure/c".to_owned()))
    );
    assert!(g.citation.contains("JAMA. 2021"));
    // A FIT within the year closes it until a year after the FIT.
    let fit = observation("fit", "57905-2", date!(2026 - 06 - 01), None);
    let g = gap_of(&p, &[old, fit.clone()], "colorectal-cancer-screening").expect("applies");
    assert_eq!(
        (g.status, g.due),
        (GapStatus::Closed, Some(date!(2027 - 06 - 01)))
    );
    // A colonoscopy 3 years ago outlasts a FIT last month.
    let recent = procedure(
        "c2",
        "http://snomed.info/sct",
        "73761001",
        date!(2023 - 12 - 01),
    );
    let g = gap_of(&p, &[recent, fit], "colorectal-cancer-screening").expect("applies");
    assert_eq!(g.due, Some(date!(2033 - 12 - 01)));
    // Never screened: due now, without a date.
    let g = gap_of(&p, &[], "colorectal-cancer-screening").expect("applies");
    assert_eq!(
        (g.status, g.due, g.last_done),
        (GapStatus::Open, None, None)
    );
    assert!(
        g.reason.starts_with(
            "Due: no colorectal cancer screening on record; colonoscopy every 10 years"
        ),
        "{}",
        g.reason
    );
    assert_eq!(g.evidence[0].name, "Age");
    assert_eq!(g.evidence[0].source.as_deref(), Some("Patient/p"));
}

/// CMS130 denominator exclusions (colorectal cancer, total colectomy), which USPSTF 2021
/// leaves out of average-risk screening. A history counts even when resolved.
#[test]
fn colorectal_exclusions() {
    let p = patient(&born(60), "male");
    let cancer = condition(
        "k",
        "93761005",
        date!(2015 - 01 - 01),
        Some(date!(2016 - 01 - 01)),
    );
    assert_eq!(gap_of(&p, &[cancer], "colorectal-cancer-screening"), None);
    let colectomy = procedure(
        "x",
        "http://snomed.info/sct",
        "26390003",
        date!(2010 - 01 - 01),
    );
    assert_eq!(
        gap_of(&p, &[colectomy], "colorectal-cancer-screening"),
        None
    );
    let polyp = condition("y", "68496003", date!(2015 - 01 - 01), None);
    assert!(gap_of(&p, &[polyp], "colorectal-cancer-screening").is_some());
}

/// USPSTF 2024 breast cancer: biennial mammography for women 40 to 74 (Recommendation
/// Summary); bilateral mastectomy excludes (CMS125).
#[test]
fn breast_ages_sex_interval_exclusion() {
    for (age, gender, want) in [
        (39, "female", None),
        (40, "female", Some(GapStatus::Open)),
        (74, "female", Some(GapStatus::Open)),
        (75, "female", None),
        (50, "male", None),
        (50, "unknown", Some(GapStatus::Undetermined)),
    ] {
        let p = patient(&born(age), gender);
        assert_eq!(
            status(&gap_of(&p, &[], "breast-cancer-screening")),
            want,
            "{age} {gender}"
        );
    }
    let p = patient(&born(55), "female");
    let mg = |d| observation("m", "24606-6", d, None);
    let g = gap_of(&p, &[mg(months_ago(23))], "breast-cancer-screening").expect("applies");
    assert_eq!(g.status, GapStatus::Closed);
    assert_eq!(g.due, Some(add_months(months_ago(23), 24)));
    let g = gap_of(&p, &[mg(months_ago(25))], "breast-cancer-screening").expect("applies");
    assert_eq!(g.status, GapStatus::Open);
    let both = procedure(
        "b",
        "http://snomed.info/sct",
        "27865001",
        date!(2019 - 05 - 01),
    );
    assert_eq!(gap_of(&p, &[both], "breast-cancer-screening"), None);
}

/// USPSTF 2018 cervical cancer: women 21 to 65; cytology every 3 years from 21; from 30
/// hrHPV alone (or with cytology) every 5 years; not after hysterectomy with removal of
/// the cervix.
#[test]
fn cervical_ages_strategies_exclusion() {
    for (age, want) in [
        (20, None),
        (21, Some(GapStatus::Open)),
        (65, Some(GapStatus::Open)),
        (66, None),
    ] {
        let p = patient(&born(age), "female");
        assert_eq!(
            status(&gap_of(&p, &[], "cervical-cancer-screening")),
            want,
            "age {age}"
        );
    }
    let pap = |d| observation("pap", "10524-7", d, None);
    let hpv = |d| observation("hpv", "59420-0", d, None);
    let cases = [
        (
            "25, cytology 35 months ago",
            25,
            pap(months_ago(35)),
            GapStatus::Closed,
        ),
        (
            "25, cytology 37 months ago",
            25,
            pap(months_ago(37)),
            GapStatus::Open,
        ),
        (
            "40, HPV 4 years ago (at 36)",
            40,
            hpv(years_ago(4)),
            GapStatus::Closed,
        ),
        (
            "40, HPV 5 years ago",
            40,
            hpv(years_ago(5)),
            GapStatus::Open,
        ),
        (
            "40, cytology 4 years ago",
            40,
            pap(years_ago(4)),
            GapStatus::Open,
        ),
        (
            "30, HPV 2 years ago at 28 does not count",
            30,
            hpv(years_ago(2)),
            GapStatus::Open,
        ),
    ];
    for (what, age, event, want) in cases {
        let p = patient(&born(age), "female");
        let g = gap_of(&p, &[event], "cervical-cancer-screening").expect(what);
        assert_eq!(g.status, want, "{what}: {}", g.reason);
    }
    let p = patient(&born(40), "female");
    let hyst = procedure(
        "h",
        "http://snomed.info/sct",
        "116140006",
        date!(2012 - 01 - 01),
    );
    assert_eq!(gap_of(&p, &[hyst], "cervical-cancer-screening"), None);
}

/// ADA Standards of Care 2025, section 6, recommendations 6.1 (at least twice a year when
/// meeting goals) and 6.2 (quarterly when not).
#[test]
fn hba1c_every_six_months_or_three_when_high() {
    let p = patient(&born(58), "female");
    let dm = condition("dm", "44054006", date!(2010 - 01 - 01), None);
    let a1c = |d, v| observation("a", "4548-4", d, Some((v, "%")));
    assert_eq!(
        gap_of(&p, &[a1c(months_ago(9), 6.5)], "diabetes-hba1c"),
        None,
        "no diabetes"
    );
    let resolved = condition(
        "dm",
        "44054006",
        date!(2010 - 01 - 01),
        Some(date!(2012 - 01 - 01)),
    );
    assert_eq!(
        gap_of(&p, &[resolved], "diabetes-hba1c"),
        None,
        "resolved diabetes"
    );
    let cases = [
        (
            "6.5% 5 months ago",
            a1c(months_ago(5), 6.5),
            GapStatus::Closed,
        ),
        (
            "6.5% 7 months ago",
            a1c(months_ago(7), 6.5),
            GapStatus::Open,
        ),
        (
            "8.1% 2 months ago",
            a1c(months_ago(2), 8.1),
            GapStatus::Closed,
        ),
        (
            "8.1% 4 months ago",
            a1c(months_ago(4), 8.1),
            GapStatus::Open,
        ),
        (
            "7.0% 4 months ago",
            a1c(months_ago(4), 7.0),
            GapStatus::Open,
        ),
    ];
    for (what, event, want) in cases {
        let g = gap_of(&p, &[dm.clone(), event], "diabetes-hba1c").expect(what);
        assert_eq!(g.status, want, "{what}: {}", g.reason);
    }
    let g = gap_of(&p, &[dm.clone(), a1c(months_ago(4), 8.1)], "diabetes-hba1c").expect("applies");
    assert!(
        g.reason
            .contains("repeat every 3 months when it is 7% or more"),
        "{}",
        g.reason
    );
    let hplc = observation("h", "17856-6", months_ago(1), Some((6.0, "%")));
    assert_eq!(
        status(&gap_of(&p, &[dm.clone(), hplc], "diabetes-hba1c")),
        Some(GapStatus::Closed)
    );
    let g = gap_of(&p, &[dm], "diabetes-hba1c").expect("applies");
    assert_eq!((g.status, g.due), (GapStatus::Open, None));
    assert_eq!(g.evidence[0].name, "Diabetes");
}

/// ACC/AHA 2017, Figure 4: stage 2 (≥140/90) reassess in 1 month; stage 1 (130–139 or
/// 80–89) in 3–6 months, 1 month with 10-year risk ≥ 10%; elevated (120–129/<80) in 3–6.
#[test]
fn blood_pressure_follow_up_tiers() {
    let p = patient(&born(50), "male");
    let day = date!(2026 - 11 - 20);
    let cases = [
        ("stage 2 systolic", 145.0, 85.0, Some(date!(2026 - 12 - 20))),
        (
            "stage 2 diastolic",
            128.0,
            90.0,
            Some(date!(2026 - 12 - 20)),
        ),
        ("stage 1", 135.0, 70.0, Some(date!(2027 - 05 - 20))),
        (
            "stage 1 diastolic",
            118.0,
            80.0,
            Some(date!(2027 - 05 - 20)),
        ),
        ("elevated", 125.0, 75.0, Some(date!(2027 - 05 - 20))),
        ("normal", 119.0, 79.0, None),
    ];
    for (what, s, d, due) in cases {
        let g = gap_of(&p, &[bp("b", day, s, d)], "blood-pressure-follow-up");
        assert_eq!(g.as_ref().and_then(|g| g.due), due, "{what}");
        if due.is_some() {
            assert_eq!(status(&g), Some(GapStatus::Open), "{what}");
        }
    }
    let risk = [RiskInput {
        id: "ascvd-10y",
        value_percent: 12.0,
        source: None,
    }];
    let g = gaps_on(&p, &[bp("b", day, 135.0, 70.0)], TODAY, &risk)
        .into_iter()
        .find(|g| g.rule == "blood-pressure-follow-up")
        .expect("applies");
    assert_eq!(
        g.due,
        Some(date!(2026 - 12 - 20)),
        "stage 1 with risk ≥ 10%"
    );
    // Two readings the same day are averaged: 138 and 142 make 140, stage 2.
    let g = gap_of(
        &p,
        &[bp("a", day, 138.0, 70.0), bp("b", day, 142.0, 70.0)],
        "blood-pressure-follow-up",
    )
    .expect("applies");
    assert_eq!(g.due, Some(date!(2026 - 12 - 20)));
    // A normal reading after a raised one closes it.
    let g = gap_of(
        &p,
        &[
            bp("a", date!(2026 - 06 - 01), 150.0, 95.0),
            bp("b", day, 118.0, 76.0),
        ],
        "blood-pressure-follow-up",
    )
    .expect("applies");
    assert_eq!((g.status, g.due), (GapStatus::Closed, None));
    assert_eq!(g.last_done, Some((day, "Observation/b".to_owned())));
    assert!(
        g.reason.starts_with(
            "Followed up: blood pressure was 118/76 mmHg on 20 Nov 2026, after 150/95 mmHg"
        ),
        "{}",
        g.reason
    );
    // Overdue: a stage 2 reading five months ago never rechecked.
    let g = gap_of(
        &p,
        &[bp("a", date!(2026 - 07 - 01), 150.0, 95.0)],
        "blood-pressure-follow-up",
    )
    .expect("applies");
    assert!(
        g.reason
            .starts_with("Due: blood pressure was 150/95 mmHg on 1 Jul 2026"),
        "{}",
        g.reason
    );
    let child = patient(&born(17), "male");
    assert_eq!(
        gap_of(
            &child,
            &[bp("b", day, 150.0, 95.0)],
            "blood-pressure-follow-up"
        ),
        None
    );
}

/// ACIP 2024–25: annual vaccination for everyone aged 6 months or older, ideally by the
/// end of October. Season from 1 August here.
#[test]
fn influenza_once_per_season() {
    let flu = |d| immunization("f", "140", d);
    for (months, want) in [(5, None), (6, Some(GapStatus::Open))] {
        let p = patient(&months_ago(months).to_string(), "female");
        assert_eq!(
            status(&gap_of(&p, &[], "influenza-vaccine")),
            want,
            "{months} months"
        );
    }
    let p = patient(&born(30), "female");
    let g = gap_of(&p, &[flu(date!(2026 - 08 - 01))], "influenza-vaccine").expect("applies");
    assert_eq!(
        (g.status, g.due),
        (GapStatus::Closed, Some(date!(2027 - 10 - 31)))
    );
    let g = gap_of(&p, &[flu(date!(2026 - 07 - 31))], "influenza-vaccine").expect("applies");
    assert_eq!(
        (g.status, g.due),
        (GapStatus::Open, Some(date!(2026 - 10 - 31)))
    );
    assert_eq!(g.last_done.map(|d| d.0), Some(date!(2026 - 07 - 31)));
    // Early in the season: due by the end of October.
    let g = gaps_on(&p, &[], date!(2026 - 09 - 15), &[])
        .into_iter()
        .find(|g| g.rule == "influenza-vaccine")
        .expect("applies");
    assert!(g.reason.starts_with("Due by 31 Oct 2026"), "{}", g.reason);
    // In March the season began the August before.
    let g = gaps_on(
        &p,
        &[flu(date!(2026 - 10 - 02))],
        date!(2027 - 03 - 01),
        &[],
    )
    .into_iter()
    .find(|g| g.rule == "influenza-vaccine")
    .expect("applies");
    assert_eq!(g.status, GapStatus::Closed);
}

/// CDC 2025 child schedule, Table 1: doses due by the end of each recommended range.
#[test]
fn childhood_series_by_age() {
    let birth = date!(2025 - 01 - 10);
    let p = patient(&birth.to_string(), "female");
    let at = |m| add_months(birth, m);
    let series = |resources: &[Value], today: Date, id: &str| {
        gaps_on(&p, resources, today, &[])
            .into_iter()
            .find(|g| g.rule == format!("childhood-immunizations/{id}"))
    };
    // 3 months old with HepB at birth and 2 months, DTaP at 2 months.
    let given = [
        immunization("h1", "08", birth),
        immunization("h2", "08", at(2)),
        immunization("d1", "20", at(2)),
    ];
    let g = series(&given, at(3), "hepb").expect("hepb");
    assert_eq!((g.status, g.due), (GapStatus::Closed, Some(at(18))));
    let g = series(&given, at(3), "dtap").expect("dtap");
    assert_eq!((g.status, g.due), (GapStatus::Closed, Some(at(4))));
    let g = series(&given, at(4), "dtap").expect("dtap");
    assert_eq!((g.status, g.due), (GapStatus::Open, Some(at(4))));
    // MMR dose 1 is due by 15 months (range 12–15).
    assert_eq!(
        series(&[], at(14), "mmr").map(|g| g.status),
        Some(GapStatus::Closed)
    );
    assert_eq!(
        series(&[], at(15), "mmr").map(|g| g.status),
        Some(GapStatus::Open)
    );
    // Monovalent rotavirus: two doses complete the series; pentavalent needs three.
    let rv1 = [
        immunization("r1", "119", at(2)),
        immunization("r2", "119", at(4)),
    ];
    let g = series(&rv1, at(7), "rotavirus").expect("rv1");
    assert_eq!((g.status, g.due), (GapStatus::Closed, None));
    let rv5 = [
        immunization("r1", "116", at(2)),
        immunization("r2", "116", at(4)),
    ];
    let g = series(&rv5, at(7), "rotavirus").expect("rv5");
    assert_eq!((g.status, g.due), (GapStatus::Open, Some(at(6))));
    assert_eq!(
        series(&rv5, at(8), "rotavirus"),
        None,
        "not given from 8 months"
    );
    // PRP-OMP Hib: no 6-month dose; the booster is due by 15 months.
    let hib = [
        immunization("b1", "49", at(2)),
        immunization("b2", "49", at(4)),
    ];
    let g = series(&hib, at(10), "hib").expect("hib");
    assert_eq!((g.status, g.due), (GapStatus::Closed, Some(at(15))));
    // Two records on one day are one dose.
    let twice = [
        immunization("d1", "20", at(2)),
        immunization("d1b", "20", at(2)),
    ];
    let g = series(&twice, at(4), "dtap").expect("dtap");
    assert!(g.reason.contains("dose 2 of 5"), "{}", g.reason);
    // DTaP stops at 7 years; nothing past 18.
    assert_eq!(series(&[], at(84), "dtap"), None);
    assert!(series(&[], at(18 * 12 + 11), "mmr").is_some());
    assert_eq!(series(&[], at(19 * 12), "mmr"), None);
}

/// USPSTF 2022 statins: ages 40 to 75, at least one risk factor (dyslipidemia, diabetes,
/// hypertension, smoking) and 10-year risk ≥ 10%; not for known CVD or LDL > 190.
#[test]
fn statin_needs_risk_factor_and_risk() {
    let htn = condition("h", "59621000", date!(2015 - 01 - 01), None);
    let risk = |v| {
        [RiskInput {
            id: "ascvd-10y",
            value_percent: v,
            source: Some("RiskAssessment/1".into()),
        }]
    };
    let statin_gap = |age: i32, res: &[Value], r: &[RiskInput<'_>]| {
        let p = patient(&born(age), "male");
        gaps_on(&p, res, TODAY, r)
            .into_iter()
            .find(|g| g.rule == "statin-primary-prevention")
    };
    let g = statin_gap(55, std::slice::from_ref(&htn), &[]).expect("applies");
    assert_eq!(g.status, GapStatus::Undetermined);
    assert!(
        g.reason
            .starts_with("Cannot decide: the 10-year cardiovascular risk was not given."),
        "{}",
        g.reason
    );
    assert!(g.reason.contains("hypertension"), "{}", g.reason);
    assert_eq!(
        status(&statin_gap(55, std::slice::from_ref(&htn), &risk(12.0))),
        Some(GapStatus::Open)
    );
    assert_eq!(
        status(&statin_gap(55, std::slice::from_ref(&htn), &risk(10.0))),
        Some(GapStatus::Open)
    );
    assert_eq!(
        status(&statin_gap(55, std::slice::from_ref(&htn), &risk(9.9))),
        None
    );
    for age in [39, 76] {
        assert_eq!(
            status(&statin_gap(age, std::slice::from_ref(&htn), &risk(20.0))),
            None,
            "age {age}"
        );
    }
    assert_eq!(
        status(&statin_gap(40, std::slice::from_ref(&htn), &risk(20.0))),
        Some(GapStatus::Open)
    );
    assert_eq!(
        status(&statin_gap(75, std::slice::from_ref(&htn), &risk(20.0))),
        Some(GapStatus::Open)
    );
    assert_eq!(
        status(&statin_gap(55, &[], &risk(20.0))),
        None,
        "no risk factor"
    );
    let active = statin_request("m", "259255", date!(2026 - 01 - 10), "active");
    let g = statin_gap(55, &[htn.clone(), active], &risk(12.0)).expect("applies");
    assert_eq!((g.status, g.due), (GapStatus::Closed, None));
    let stopped = statin_request("m", "83367", date!(2024 - 01 - 10), "stopped");
    let g = statin_gap(55, &[htn.clone(), stopped], &risk(12.0)).expect("applies");
    assert_eq!(g.status, GapStatus::Open);
    assert!(
        g.reason.contains("last prescribed 10 Jan 2024"),
        "{}",
        g.reason
    );
    let mi = condition(
        "mi",
        "22298006",
        date!(2019 - 01 - 01),
        Some(date!(2019 - 02 - 01)),
    );
    assert_eq!(
        status(&statin_gap(55, &[htn.clone(), mi], &risk(20.0))),
        None,
        "known CVD"
    );
    let ldl = |v| observation("l", "18262-6", months_ago(2), Some((v, "mg/dL")));
    assert_eq!(
        status(&statin_gap(55, &[htn.clone(), ldl(200.0)], &risk(20.0))),
        None,
        "LDL > 190"
    );
    assert_eq!(
        status(&statin_gap(55, &[ldl(140.0)], &risk(20.0))),
        Some(GapStatus::Open),
        "LDL > 130"
    );
    assert_eq!(
        status(&statin_gap(55, &[ldl(130.0)], &risk(20.0))),
        None,
        "LDL 130 is not above 130"
    );
    let smoking = |code: &str| {
        let mut o = observation("s", "72166-2", months_ago(1), None);
        o["valueCodeableConcept"] = coding("http://snomed.info/sct", code);
        o
    };
    assert_eq!(
        status(&statin_gap(55, &[smoking("449868002")], &risk(20.0))),
        Some(GapStatus::Open)
    );
    assert_eq!(
        status(&statin_gap(55, &[smoking("8517006")], &risk(20.0))),
        None,
        "former smoker"
    );
}

#[test]
fn medication_reference_is_read_through_the_medication() {
    let p = patient(&born(55), "male");
    let htn = condition("h", "38341003", date!(2015 - 01 - 01), None);
    let med = json!({"resourceType": "Medication", "id": "m1",
        "code": coding("http://www.nlm.nih.gov/research/umls/rxnorm", "316672")});
    let req = json!({"resourceType": "MedicationRequest", "id": "r", "status": "active",
        "medicationReference": {"reference": "urn:uuid:m1"}, "authoredOn": "2026-02-01"});
    let risk = [RiskInput {
        id: "ascvd-10y",
        value_percent: 15.0,
        source: None,
    }];
    let g = gaps_on(&p, &[htn, med, req], TODAY, &risk)
        .into_iter()
        .find(|g| g.rule == "statin-primary-prevention")
        .expect("applies");
    assert_eq!(g.status, GapStatus::Closed);
    assert_eq!(
        g.last_done,
        Some((date!(2026 - 02 - 01), "MedicationRequest/r".to_owned()))
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
