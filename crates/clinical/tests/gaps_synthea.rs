//! Care gaps over every Synthea patient in `../shared/data/synthea`, checked against
//! expectations this test computes itself, straight from the guidelines, with its own small
//! code tables and date arithmetic: it reads neither the rule files nor the evaluator.
//!
//! Two fixed days: 5 Dec 2026 (years after the data ends, so mostly overdue) and
//! 15 Jan 2021 (inside the data, so screenings, flu shots and doses are met). The statin
//! rule is run without a risk value (it must say it cannot decide) and with a 12% 10-year
//! risk for everyone (then open or closed by the prescriptions).
//!
//! Conventions shared with the module because the guidelines leave them open: ties on one
//! day go to the later resource in the record; a range's end is the due date; doses on one
//! day count once; the newest blood-pressure day is averaged.
//!
//! `cargo test -p oxehr-clinical --test gaps_synthea -- --nocapture` prints how many
//! patients each rule found open, closed or undetermined.

use std::collections::BTreeMap;

use oxehr_clinical::gaps::{evaluate, GapStatus, RiskInput, RuleSet};
use oxehr_clinical::Record;
use serde_json::Value;
use time::macros::date;
use time::{Date, Month};

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const CVX: &str = "http://hl7.org/fhir/sid/cvx";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

struct Patient {
    name: String,
    patient: Value,
    resources: Vec<Value>,
}

fn load() -> Vec<Patient> {
    let root = oxehr_testdata::path("synthea");
    let mut out = Vec::new();
    let mut listed = 0;
    for dir in ["synthea-v3", "smart-on-fhir-r4"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("synthea directory")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().expect("name").to_string_lossy().into_owned();
            // Synthea writes the organisations and practitioners in files of their own.
            if !name.starts_with("hospitalInformation")
                && !name.starts_with("practitionerInformation")
            {
                listed += 1;
            }
            let bundle: Value =
                serde_json::from_str(&std::fs::read_to_string(&f).expect("read")).expect("json");
            let resources: Vec<Value> = bundle["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["resource"].clone())
                .collect();
            if let Some(patient) = resources
                .iter()
                .find(|r| r["resourceType"] == "Patient")
                .cloned()
            {
                out.push(Patient {
                    name,
                    patient,
                    resources,
                });
            }
        }
    }
    assert_eq!(out.len(), listed, "one patient per patient file");
    // 5 + 89 patient bundles (the brief that asked for this test said 95; the directories
    // hold 94, plus 3 organisation/practitioner files).
    assert_eq!(out.len(), 94);
    out
}

// ---- Dates ----------------------------------------------------------------------------

fn day(s: &str) -> Option<Date> {
    let s = s.get(..10.min(s.len()))?;
    let mut it = s.split('-');
    let y: i32 = it.next()?.parse().ok()?;
    let m: u8 = it.next().unwrap_or("1").parse().ok()?;
    let d: u8 = it.next().unwrap_or("1").parse().ok()?;
    Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
}

fn plus_months(d: Date, n: i32) -> Date {
    let idx = d.year() * 12 + d.month() as i32 - 1 + n;
    let (y, m) = (
        idx.div_euclid(12),
        Month::try_from((idx.rem_euclid(12) + 1) as u8).expect("month"),
    );
    let last = m.length(y);
    Date::from_calendar_date(y, m, d.day().min(last)).expect("date")
}

fn years_between(birth: Date, on: Date) -> i32 {
    let mut y = on.year() - birth.year();
    if (on.month() as u8, on.day()) < (birth.month() as u8, birth.day()) {
        y -= 1;
    }
    y
}

fn months_between(birth: Date, on: Date) -> i32 {
    let mut m = (on.year() - birth.year()) * 12 + on.month() as i32 - birth.month() as i32;
    if on.day() < birth.day() {
        m -= 1;
    }
    m
}

// ---- Reading the bundle -----------------------------------------------------------------

fn has(concept: &Value, system: &str, codes: &[&str]) -> bool {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["system"] == system && codes.iter().any(|k| c["code"] == *k))
}

fn kind<'a>(p: &'a Patient, t: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    p.resources.iter().filter(move |r| r["resourceType"] == t)
}

fn observation_ok(r: &Value) -> bool {
    !matches!(
        r["status"].as_str(),
        Some("entered-in-error" | "cancelled" | "preliminary" | "registered")
    )
}

fn obs_date(r: &Value) -> Option<Date> {
    r["effectiveDateTime"]
        .as_str()
        .or(r["effectivePeriod"]["start"].as_str())
        .or(r["issued"].as_str())
        .and_then(day)
}

/// Newest dated event (later resource wins a tie) on or before `today`.
fn newest<'a>(
    events: impl Iterator<Item = (Date, &'a Value)>,
    today: Date,
) -> Option<(Date, &'a Value)> {
    let mut best: Option<(Date, &Value)> = None;
    for (d, r) in events {
        if d <= today && best.is_none_or(|(b, _)| d >= b) {
            best = Some((d, r));
        }
    }
    best
}

fn procedures<'a>(
    p: &'a Patient,
    codes: &'a [&'a str],
) -> impl Iterator<Item = (Date, &'a Value)> + 'a {
    kind(p, "Procedure")
        .filter(|r| r["status"] == "completed" && has(&r["code"], SNOMED, codes))
        .filter_map(|r| {
            let d = r["performedDateTime"]
                .as_str()
                .or(r["performedPeriod"]["start"].as_str())?;
            Some((day(d)?, r))
        })
}

fn observations<'a>(
    p: &'a Patient,
    codes: &'a [&'a str],
) -> impl Iterator<Item = (Date, &'a Value)> + 'a {
    kind(p, "Observation")
        .filter(|r| observation_ok(r) && has(&r["code"], LOINC, codes))
        .filter_map(|r| Some((obs_date(r)?, r)))
}

fn immunizations<'a>(
    p: &'a Patient,
    codes: &'a [&'a str],
) -> impl Iterator<Item = (Date, &'a Value)> + 'a {
    kind(p, "Immunization")
        .filter(|r| r["status"] == "completed" && has(&r["vaccineCode"], CVX, codes))
        .filter_map(|r| Some((day(r["occurrenceDateTime"].as_str()?)?, r)))
}

/// A condition with any of `codes` recorded by `today`; `active` also wants it unabated and
/// not resolved on `today`.
fn condition(p: &Patient, codes: &[&str], today: Date, active: bool) -> bool {
    kind(p, "Condition").any(|c| {
        if !has(&c["code"], SNOMED, codes) {
            return false;
        }
        let onset = c["onsetDateTime"]
            .as_str()
            .or(c["recordedDate"].as_str())
            .and_then(day);
        if onset.is_none_or(|d| d > today) {
            return false;
        }
        if !active {
            return true;
        }
        match c["abatementDateTime"].as_str().and_then(day) {
            Some(a) => a > today,
            None => !matches!(
                c["clinicalStatus"]["coding"][0]["code"].as_str(),
                Some("resolved" | "inactive" | "remission")
            ),
        }
    })
}

fn value(r: &Value) -> Option<f64> {
    r["valueQuantity"]["value"].as_f64()
}

// ---- Expectations, from the guidelines ----------------------------------------------------

/// (status, due, date last done)
type Expect = (GapStatus, Option<Date>, Option<Date>);

/// A recurring screening: the option lasting longest decides.
fn screening(options: Vec<(Option<Date>, i32)>, today: Date) -> Expect {
    let best = options
        .into_iter()
        .filter_map(|(d, months)| d.map(|d| (plus_months(d, months), d)))
        .fold(None, |b: Option<(Date, Date)>, x| {
            if b.is_none_or(|b| x.0 > b.0) {
                Some(x)
            } else {
                b
            }
        });
    match best {
        None => (GapStatus::Open, None, None),
        Some((until, done)) if until > today => (GapStatus::Closed, Some(until), Some(done)),
        Some((until, done)) => (GapStatus::Open, Some(until), Some(done)),
    }
}

fn expected(p: &Patient, today: Date, risk_percent: Option<f64>) -> BTreeMap<String, Expect> {
    let mut out = BTreeMap::new();
    if p.patient["deceasedDateTime"]
        .as_str()
        .and_then(day)
        .is_some_and(|d| d <= today)
    {
        return out;
    }
    let birth = day(p.patient["birthDate"].as_str().expect("birthDate")).expect("date");
    let age = years_between(birth, today);
    let female = p.patient["gender"] == "female";
    let last = |events: Vec<(Date, &Value)>| newest(events.into_iter(), today).map(|(d, _)| d);

    // USPSTF 2021: 45–75; colonoscopy 10 y, CT colonography 5, sigmoidoscopy 5, sDNA-FIT 3,
    // FIT/gFOBT 1; not after colorectal cancer or total colectomy.
    let crc = ["363406005", "93761005", "94260004", "109838007"];
    let colectomy = ["26390003", "307666008", "456004"];
    if (45..=75).contains(&age)
        && !condition(p, &crc, today, false)
        && procedures(p, &colectomy).all(|(d, _)| d > today)
    {
        let fobt: Vec<_> = observations(p, &["57905-2", "2335-8", "29771-3", "58453-2"])
            .chain(procedures(p, &["1015401000000102"]))
            .collect();
        let options = vec![
            (
                last(procedures(p, &["73761001", "367535003", "444783004"]).collect()),
                120,
            ),
            (last(observations(p, &["79101-2", "60515-4"]).collect()), 60),
            (
                last(procedures(p, &["44441009", "396226005"]).collect()),
                60,
            ),
            (last(observations(p, &["77353-1", "77354-9"]).collect()), 36),
            (last(fobt), 12),
        ];
        out.insert(
            "colorectal-cancer-screening".into(),
            screening(options, today),
        );
    }
    // USPSTF 2024: women 40–74, mammography every 2 years.
    if female
        && (40..=74).contains(&age)
        && procedures(p, &["27865001", "22418005"]).all(|(d, _)| d > today)
    {
        let mg = last(
            observations(p, &["24606-6", "26175-0", "26346-7", "42174-3", "72142-3"]).collect(),
        );
        out.insert(
            "breast-cancer-screening".into(),
            screening(vec![(mg, 24)], today),
        );
    }
    // USPSTF 2018: women 21–65, cytology every 3 years, hrHPV from 30 every 5.
    if female
        && (21..=65).contains(&age)
        && procedures(p, &["116140006", "116143008", "236888001"]).all(|(d, _)| d > today)
    {
        let pap = last(observations(p, &["10524-7", "47527-7", "47528-5", "33717-0"]).collect());
        let hpv = last(
            observations(p, &["59420-0", "21440-3", "30167-1", "77379-6"])
                .filter(|(d, _)| years_between(birth, *d) >= 30)
                .collect(),
        );
        out.insert(
            "cervical-cancer-screening".into(),
            screening(vec![(pap, 36), (hpv, 60)], today),
        );
    }
    // ADA 2025, 6.1/6.2: A1C twice a year; quarterly when not at goal (7% or more here).
    if condition(p, &["44054006", "46635009", "73211009"], today, true) {
        let a1c = newest(observations(p, &["4548-4", "17856-6"]), today);
        let months = |r: &Value| {
            if value(r).is_some_and(|v| v >= 7.0) {
                3
            } else {
                6
            }
        };
        let options = vec![(a1c.map(|(d, _)| d), a1c.map_or(6, |(_, r)| months(r)))];
        out.insert("diabetes-hba1c".into(), screening(options, today));
    }
    // ACC/AHA 2017, Figure 4: adults; the newest day's readings, averaged.
    if age >= 18 {
        if let Some(e) = blood_pressure(p, today, risk_percent) {
            out.insert("blood-pressure-follow-up".into(), e);
        }
    }
    // ACIP 2024–25: everyone from 6 months, once a season (from 1 August), by 31 October.
    if months_between(birth, today) >= 6 {
        let flu = [
            "88", "111", "135", "140", "141", "144", "149", "150", "153", "155", "158", "161",
            "166", "168", "171", "185", "186", "197", "205",
        ];
        let start_year = if (today.month() as u8) >= 8 {
            today.year()
        } else {
            today.year() - 1
        };
        let start = Date::from_calendar_date(start_year, Month::August, 1).expect("date");
        let due = Date::from_calendar_date(start_year, Month::October, 31).expect("date");
        let dose = last(immunizations(p, &flu).collect());
        let e = match dose {
            Some(d) if d >= start => (GapStatus::Closed, Some(plus_months(due, 12)), Some(d)),
            other => (GapStatus::Open, Some(due), other),
        };
        out.insert("influenza-vaccine".into(), e);
    }
    // CDC 2025 child schedule, Table 1: ages 0–18.
    if (0..=18).contains(&age) {
        for (id, e) in childhood(p, birth, today) {
            out.insert(format!("childhood-immunizations/{id}"), e);
        }
    }
    // USPSTF 2022: 40–75 with a risk factor; statin when the 10-year risk is 10% or more.
    if (40..=75).contains(&age) {
        if let Some(e) = statin(p, today, risk_percent) {
            out.insert("statin-primary-prevention".into(), e);
        }
    }
    out
}

fn blood_pressure(p: &Patient, today: Date, risk_percent: Option<f64>) -> Option<Expect> {
    // (day, systolic values, diastolic values)
    let mut days: BTreeMap<Date, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for o in kind(p, "Observation").filter(|r| observation_ok(r)) {
        let Some(d) = obs_date(o).filter(|d| *d <= today) else {
            continue;
        };
        let mut parts = vec![o];
        parts.extend(o["component"].as_array().into_iter().flatten());
        for part in parts {
            let Some(v) = value(part).filter(|_| part["valueQuantity"]["code"] == "mm[Hg]") else {
                continue;
            };
            if has(&part["code"], LOINC, &["8480-6"]) {
                days.entry(d).or_default().0.push(v);
            } else if has(&part["code"], LOINC, &["8462-4"]) {
                days.entry(d).or_default().1.push(v);
            }
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    // Months to recheck within, if the day's readings call for one.
    let recheck = |(s, d): &(Vec<f64>, Vec<f64>)| -> Option<i32> {
        let (s, d) = (mean(s).unwrap_or(0.0), mean(d).unwrap_or(0.0));
        if s >= 140.0 || d >= 90.0 {
            Some(1)
        } else if s >= 130.0 || d >= 80.0 {
            Some(if risk_percent.is_some_and(|r| r >= 10.0) {
                1
            } else {
                6
            })
        } else if s >= 120.0 {
            Some(6)
        } else {
            None
        }
    };
    let (&last_day, readings) = days.iter().next_back()?;
    if let Some(months) = recheck(readings) {
        return Some((
            GapStatus::Open,
            Some(plus_months(last_day, months)),
            Some(last_day),
        ));
    }
    days.iter()
        .rev()
        .skip(1)
        .any(|(_, r)| recheck(r).is_some())
        .then_some((GapStatus::Closed, None, Some(last_day)))
}

fn childhood(p: &Patient, birth: Date, today: Date) -> Vec<(&'static str, Expect)> {
    // (id, CVX codes, due months, until months, codes after which the third dose is not needed)
    type Series = (
        &'static str,
        &'static [&'static str],
        &'static [i32],
        Option<i32>,
        &'static [&'static str],
    );
    const SCHEDULE: &[Series] = &[
        (
            "hepb",
            &["08", "44", "45", "51", "110", "146", "198"],
            &[0, 2, 18],
            None,
            &[],
        ),
        (
            "rotavirus",
            &["116", "119", "122"],
            &[2, 4, 6],
            Some(8),
            &["119"],
        ),
        (
            "dtap",
            &["20", "50", "106", "107", "110", "120", "146", "198"],
            &[2, 4, 6, 18, 72],
            Some(84),
            &[],
        ),
        (
            "hib",
            &["17", "48", "49", "50", "51", "120", "146", "148"],
            &[2, 4, 6, 15],
            Some(60),
            &["49", "51"],
        ),
        (
            "pcv",
            &["109", "133", "152", "215", "216"],
            &[2, 4, 6, 15],
            Some(60),
            &[],
        ),
        (
            "ipv",
            &["10", "89", "110", "120", "146"],
            &[2, 4, 18, 72],
            None,
            &[],
        ),
        ("mmr", &["03", "94"], &[15, 72], None, &[]),
        ("varicella", &["21", "94"], &[15, 72], None, &[]),
        ("hepa", &["31", "83", "85"], &[23, 23], None, &[]),
    ];
    let age = months_between(birth, today);
    let mut out = Vec::new();
    for &(id, codes, due, until, short) in SCHEDULE {
        if until.is_some_and(|u| age >= u) {
            continue;
        }
        let mut doses: Vec<(Date, &Value)> = immunizations(p, codes)
            .filter(|(d, _)| *d <= today)
            .collect();
        doses.sort_by_key(|(d, _)| *d);
        doses.dedup_by_key(|(d, _)| *d);
        let short_schedule = !short.is_empty()
            && !doses.is_empty()
            && doses
                .iter()
                .all(|(_, r)| has(&r["vaccineCode"], CVX, short));
        let required: Vec<i32> = due
            .iter()
            .enumerate()
            .filter(|&(i, _)| !(short_schedule && i == 2))
            .map(|(_, m)| *m)
            .collect();
        let done = doses.last().map(|(d, _)| *d);
        let e = match required.get(doses.len()) {
            None => (GapStatus::Closed, None, done),
            Some(&m) if age >= m => (GapStatus::Open, Some(plus_months(birth, m)), done),
            Some(&m) => (GapStatus::Closed, Some(plus_months(birth, m)), done),
        };
        out.push((id, e));
    }
    out
}

fn statin(p: &Patient, today: Date, risk_percent: Option<f64>) -> Option<Expect> {
    let ldl = newest(observations(p, &["18262-6", "13457-7", "2089-1"]), today)
        .and_then(|(_, r)| value(r));
    let hdl = newest(observations(p, &["2085-9"]), today).and_then(|(_, r)| value(r));
    let smoker = newest(observations(p, &["72166-2"]), today).is_some_and(|(_, r)| {
        has(
            &r["valueCodeableConcept"],
            SNOMED,
            &["449868002", "428041000124106", "77176002"],
        )
    });
    let factor = condition(p, &["38341003", "59621000"], today, true)
        || condition(p, &["44054006", "46635009", "73211009"], today, true)
        || condition(p, &["55822004", "13644009", "370992007"], today, true)
        || ldl.is_some_and(|v| v > 130.0)
        || hdl.is_some_and(|v| v < 40.0)
        || smoker;
    let cvd = condition(
        p,
        &[
            "22298006",
            "399211009",
            "401303003",
            "401314000",
            "53741008",
            "414545008",
            "230690007",
        ],
        today,
        false,
    );
    if !factor || cvd || ldl.is_some_and(|v| v > 190.0) {
        return None;
    }
    let Some(risk) = risk_percent else {
        return Some((GapStatus::Undetermined, None, None));
    };
    if risk < 10.0 {
        return None;
    }
    let statins = [
        "83367", "36567", "301542", "42463", "6472", "41127", "861634", "259255", "312961",
        "316672",
    ];
    let medication = |r: &Value| -> bool {
        if has(&r["medicationCodeableConcept"], RXNORM, &statins) {
            return true;
        }
        let Some(reference) = r["medicationReference"]["reference"].as_str() else {
            return false;
        };
        let id = reference.rsplit([':', '/']).next().unwrap_or_default();
        kind(p, "Medication").any(|m| m["id"] == id && has(&m["code"], RXNORM, &statins))
    };
    let requests: Vec<(Date, &Value)> = kind(p, "MedicationRequest")
        .filter(|r| {
            !matches!(
                r["status"].as_str(),
                Some("entered-in-error" | "cancelled" | "draft")
            ) && medication(r)
        })
        .filter_map(|r| Some((day(r["authoredOn"].as_str()?)?, r)))
        .filter(|(d, _)| *d <= today)
        .collect();
    let active = newest(
        requests
            .iter()
            .copied()
            .filter(|(_, r)| r["status"] == "active"),
        today,
    );
    let last = newest(requests.iter().copied(), today);
    Some(match active {
        Some((d, _)) => (GapStatus::Closed, None, Some(d)),
        None => (GapStatus::Open, None, last.map(|(d, _)| d)),
    })
}

// ---- The comparison -----------------------------------------------------------------------

#[test]
fn synthea_gaps_match_the_guidelines() {
    oxehr_testdata::require!();
    let rules = RuleSet::builtin().expect("rules");
    let patients = load();
    let mut mismatches = Vec::new();
    // (day, risk) → rule → [open, closed, undetermined]
    let mut counts: BTreeMap<(String, String), [usize; 3]> = BTreeMap::new();
    for today in [date!(2026 - 12 - 05), date!(2021 - 01 - 15)] {
        for risk in [None, Some(12.0)] {
            let run = format!(
                "{today}{}",
                risk.map_or(" without risk".into(), |r| format!(" with risk {r}%"))
            );
            for p in &patients {
                let inputs: Vec<RiskInput<'_>> = risk
                    .map(|v| RiskInput {
                        id: "ascvd-10y",
                        value_percent: v,
                        source: None,
                    })
                    .into_iter()
                    .collect();
                let record = Record::new(&p.patient, &p.resources);
                let actual: BTreeMap<String, Expect> = evaluate(&rules, &record, today, &inputs)
                    .into_iter()
                    .map(|g| {
                        if let Some((d, source)) = &g.last_done {
                            let (t, id) = source.split_once('/').expect("Type/id");
                            assert!(
                                p.resources
                                    .iter()
                                    .any(|r| r["resourceType"] == t && r["id"] == id),
                                "{}: {} points at a resource not in the record",
                                p.name,
                                g.rule
                            );
                            let _ = d;
                        }
                        assert!(!g.reason.is_empty() && !g.citation.is_empty());
                        (g.rule, (g.status, g.due, g.last_done.map(|(d, _)| d)))
                    })
                    .collect();
                let expect = expected(p, today, risk);
                for (rule, e) in &expect {
                    let key = (
                        run.clone(),
                        rule.split('/').next().unwrap_or(rule).to_owned(),
                    );
                    let c = counts.entry(key).or_default();
                    c[match e.0 {
                        GapStatus::Open => 0,
                        GapStatus::Closed => 1,
                        GapStatus::Undetermined => 2,
                    }] += 1;
                }
                if actual != expect {
                    mismatches.push(format!(
                        "{} on {run}:\n  expected {expect:?}\n  actual   {actual:?}",
                        p.name
                    ));
                }
            }
        }
    }
    eprintln!("patients: {}", patients.len());
    eprintln!(
        "{:<38} {:<30} {:>5} {:>6} {:>12}",
        "run", "rule", "open", "closed", "undetermined"
    );
    for ((run, rule), [o, c, u]) in &counts {
        eprintln!("{run:<38} {rule:<30} {o:>5} {c:>6} {u:>12}");
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    // Every rule meets real patients somewhere in the data (breast and cervical only open:
    // no mammogram, cytology or HPV test is in these bundles).
    let applicable = |rule: &str| {
        counts
            .iter()
            .filter(|((_, r), _)| r == rule)
            .map(|(_, c)| c.iter().sum::<usize>())
            .sum::<usize>()
    };
    for rule in [
        "colorectal-cancer-screening",
        "breast-cancer-screening",
        "cervical-cancer-screening",
        "diabetes-hba1c",
        "blood-pressure-follow-up",
        "influenza-vaccine",
        "childhood-immunizations",
        "statin-primary-prevention",
    ] {
        assert!(applicable(rule) > 0, "{rule} applies to nobody in the data");
    }
    let status_seen = |rule: &str, i: usize| counts.iter().any(|((_, r), c)| r == rule && c[i] > 0);
    for rule in [
        "colorectal-cancer-screening",
        "influenza-vaccine",
        "childhood-immunizations",
        "blood-pressure-follow-up",
        "statin-primary-prevention",
    ] {
        assert!(
            status_seen(rule, 0) && status_seen(rule, 1),
            "{rule}: want both open and closed cases"
        );
    }
    assert!(
        status_seen("statin-primary-prevention", 2),
        "statin: want undetermined cases"
    );
}
