//! Screenings and tests: colorectal, breast, cervical, HbA1c.

use serde_json::Value;
use time::macros::date;

use super::*;
use crate::gaps::words::add_months;
use crate::gaps::GapStatus;

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
