//! Follow-up, vaccines and treatment: blood pressure, influenza, childhood series, statin.

use serde_json::{json, Value};
use time::macros::date;
use time::Date;

use super::*;
use crate::gaps::words::add_months;
use crate::gaps::{GapStatus, RiskInput};

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
