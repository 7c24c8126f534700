//! The four measures over every Synthea patient in ../shared/data/synthea, for calendar
//! 2019 (the year the data is densest in: most encounters, and the only recent year in
//! which all four initial populations are non-empty).
//!
//! The expected counts come from this file's own reading of the specifications
//! (CMS122v12, CMS165v12, CMS125v12, CMS130v12), written plainly over the JSON with
//! dates compared as ISO strings; it shares no code with `oxehr_clinical::measures`.
//! It hard-codes the thresholds and the codes: the value-set codes that occur in the data
//! or that the specification's examples name, and the local Synthea codes the module
//! documents (visit types, 38341003 for hypertension). Any count that differs fails.

use std::collections::HashMap;
use std::path::PathBuf;

use oxehr_clinical::measures::{evaluate, Counts, MeasureId};
use oxehr_clinical::Record;
use serde_json::Value;
use time::macros::date;

const START: &str = "2019-01-01";
const END: &str = "2019-12-31";
const YEAR: i32 = 2019;

const SCT: &str = "http://snomed.info/sct";
const LOINC: &str = "http://loinc.org";
const CPT: &str = "http://www.ama-assn.org/go/cpt";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

// Qualifying encounters (Office Visit, Annual Wellness Visit, Preventive Care 18 and up,
// Home Healthcare Services), and Synthea's visit types accepted on ambulatory classes.
const VISITS: &[(&str, &str)] = &[
    (CPT, "99202"),
    (CPT, "99203"),
    (CPT, "99204"),
    (CPT, "99205"),
    (CPT, "99212"),
    (CPT, "99213"),
    (CPT, "99214"),
    (CPT, "99215"),
    (CPT, "99385"),
    (CPT, "99386"),
    (CPT, "99387"),
    (CPT, "99395"),
    (CPT, "99396"),
    (CPT, "99397"),
    (SCT, "185463005"),
    (SCT, "185464004"),
    (SCT, "185465003"),
    (SCT, "3391000175108"),
    (SCT, "439740005"),
    (SCT, "444971000124105"),
    (SCT, "456201000124103"),
    (SCT, "439708006"),
];
const SYNTHEA_VISITS: &[&str] = &[
    "185349003",
    "185345009",
    "185347001",
    "162673000",
    "308335008",
    "390906007",
    "698314001",
    "270427003",
    "394701000",
    "316744009",
];
const DIABETES: &[&str] = &["44054006", "46635009", "313435000", "313436004", "81531005"];
const HYPERTENSION: &[&str] = &["59621000", "1201005", "371125006", "38341003"];
const HBA1C: &[&str] = &["4548-4", "17855-8", "17856-6", "4549-2", "96595-4"];
const PREGNANCY: &[&str] = &["72892002", "77386006"];
const ESRD: &[&str] = &["46177005", "236434000", "236435004", "236436003"];
const COLON_CANCER: &[&str] = &["93761005", "363406005", "94260004"];
const COLECTOMY: &[&str] = &["26390003", "456004", "307666008"];
const MASTECTOMY: &[&str] = &["27865001", "52314009", "22418005"];
const COLONOSCOPY: &[&str] = &["73761001", "444783004", "367535003"];
const SIGMOIDOSCOPY: &[&str] = &["44441009", "396226005"];
const FOBT: &[&str] = &["57905-2", "2335-8", "29771-3", "80372-6"];
const SDNA: &[&str] = &["77353-1", "77354-9"];
const CT_COLONOGRAPHY: &[&str] = &["60515-4", "79101-2"];
const MAMMOGRAPHY: &[&str] = &["24606-6", "26175-0", "24604-1", "24605-8", "39153-2"];
const HOSPICE: &[&str] = &[
    "385763009",
    "183919006",
    "183920000",
    "305336008",
    "385765002",
];
const PALLIATIVE: &[&str] = &["103735009", "713281006", "305284002", "395669003"];
const FRAILTY: &[&str] = &["217082002", "428484005", "52702003"];
const ADVANCED_ILLNESS: &[&str] = &["94260004", "94297009"];
const DEMENTIA_DRUGS: &[&str] = &["997223", "997229", "996561", "310436", "1100184"];

struct Patient {
    patient: Value,
    resources: Vec<Value>,
}

fn load() -> Vec<Patient> {
    let root = oxehr_testdata::path("synthea");
    let mut files: Vec<PathBuf> = ["synthea-v3", "smart-on-fhir-r4"]
        .iter()
        .filter_map(|d| std::fs::read_dir(root.join(d)).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let bundle: Value =
            serde_json::from_str(&std::fs::read_to_string(&f).expect("read")).expect("bundle JSON");
        let mut patient = None;
        let mut resources = Vec::new();
        for e in bundle["entry"].as_array().into_iter().flatten() {
            let r = e["resource"].clone();
            if r["resourceType"] == "Patient" {
                patient = Some(r);
            } else {
                resources.push(r);
            }
        }
        // hospitalInformation / practitionerInformation bundles hold no patient.
        if let Some(patient) = patient {
            out.push(Patient { patient, resources });
        }
    }
    out
}

// ---- Reading the JSON, plainly ----

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn day(v: &Value) -> String {
    s(v).chars().take(10).collect()
}

fn has(concept: &Value, system: &str, codes: &[&str]) -> bool {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| s(&c["system"]) == system && codes.contains(&s(&c["code"])))
}

fn of<'a>(p: &'a Patient, t: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    p.resources.iter().filter(move |r| r["resourceType"] == t)
}

/// Whole years on 31 December: every birthday of the year has passed by then.
fn age_at_end(p: &Patient) -> i32 {
    let born: i32 = day(&p.patient["birthDate"])[..4]
        .parse()
        .expect("birth year");
    YEAR - born
}

fn final_obs(o: &Value) -> bool {
    matches!(s(&o["status"]), "final" | "amended" | "corrected")
}

/// (first day, last day) of a condition: onset to abatement; resolved without a date
/// counts on its onset day; active stays open ("9999").
fn prevalence(c: &Value) -> (String, String) {
    let onset = if c["onsetDateTime"].is_string() {
        day(&c["onsetDateTime"])
    } else {
        day(&c["recordedDate"])
    };
    let end = if c["abatementDateTime"].is_string() {
        day(&c["abatementDateTime"])
    } else if matches!(
        s(&c["clinicalStatus"]["coding"][0]["code"]),
        "resolved" | "inactive" | "remission"
    ) {
        onset.clone()
    } else {
        "9999-12-31".into()
    };
    (onset, end)
}

fn condition_overlapping(p: &Patient, codes: &[&str], from: &str, to: &str) -> bool {
    of(p, "Condition").any(|c| {
        let (a, b) = prevalence(c);
        has(&c["code"], SCT, codes) && a.as_str() <= to && b.as_str() >= from
    })
}

fn procedure_day(pr: &Value) -> String {
    if pr["performedDateTime"].is_string() {
        day(&pr["performedDateTime"])
    } else if pr["performedPeriod"]["end"].is_string() {
        day(&pr["performedPeriod"]["end"])
    } else {
        day(&pr["performedPeriod"]["start"])
    }
}

fn procedure_between(p: &Patient, codes: &[&str], from: &str, to: &str) -> bool {
    of(p, "Procedure").any(|pr| {
        let d = procedure_day(pr);
        s(&pr["status"]) == "completed"
            && has(&pr["code"], SCT, codes)
            && d.as_str() >= from
            && d.as_str() <= to
    })
}

fn obs_day(o: &Value) -> String {
    if o["effectiveDateTime"].is_string() {
        day(&o["effectiveDateTime"])
    } else if o["effectivePeriod"]["end"].is_string() {
        day(&o["effectivePeriod"]["end"])
    } else {
        day(&o["effectivePeriod"]["start"])
    }
}

fn qualifying_visit(p: &Patient) -> bool {
    of(p, "Encounter").any(|e| {
        if s(&e["status"]) != "finished" {
            return false;
        }
        let types = e["type"].as_array().cloned().unwrap_or_default();
        let vsac = types
            .iter()
            .any(|t| VISITS.iter().any(|(sys, code)| has(t, sys, &[code])));
        let synthea = types.iter().any(|t| has(t, SCT, SYNTHEA_VISITS))
            && matches!(s(&e["class"]["code"]), "AMB" | "VR" | "HH");
        let start = day(&e["period"]["start"]);
        let end = if e["period"]["end"].is_string() {
            day(&e["period"]["end"])
        } else {
            start.clone()
        };
        (vsac || synthea) && start.as_str() >= START && end.as_str() <= END
    })
}

/// Hospice, palliative care, and (66 and over) frailty with advanced illness or a
/// nursing home, as the shared exclusion libraries read.
fn shared_exclusion(p: &Patient, frail_alone_from_81: bool) -> bool {
    let year_before = format!("{}{}", YEAR - 1, &START[4..]);
    let coded_encounter_overlapping = |codes: &[&str]| {
        of(p, "Encounter").any(|e| {
            e["type"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| has(t, SCT, codes))
                && s(&e["status"]) == "finished"
                && day(&e["period"]["start"]).as_str() <= END
                && day(&e["period"]["end"]).as_str() >= START
        })
    };
    let hospice = procedure_between(p, HOSPICE, START, END) || coded_encounter_overlapping(HOSPICE);
    let palliative =
        procedure_between(p, PALLIATIVE, START, END) || coded_encounter_overlapping(PALLIATIVE);
    let age = age_at_end(p);
    let frail = condition_overlapping(p, FRAILTY, START, END);
    let ill = condition_overlapping(p, ADVANCED_ILLNESS, &year_before, END)
        || of(p, "MedicationRequest").any(|m| {
            let authored = day(&m["authoredOn"]);
            has(&m["medicationCodeableConcept"], RXNORM, DEMENTIA_DRUGS)
                && matches!(s(&m["status"]), "active" | "completed")
                && authored.as_str() <= END
                && (authored.as_str() >= year_before.as_str() || s(&m["status"]) == "active")
        });
    let frailty = if frail_alone_from_81 {
        (66..=80).contains(&age) && frail && ill || age >= 81 && frail
    } else {
        age >= 66 && frail && ill
    };
    let nursing_home = age >= 66 && {
        let mut housing: Vec<&Value> = of(p, "Observation")
            .filter(|o| final_obs(o) && has(&o["code"], LOINC, &["71802-3"]))
            .filter(|o| obs_day(o).as_str() <= END)
            .collect();
        housing.sort_by_key(|o| s(&o["effectiveDateTime"]).to_string());
        housing
            .last()
            .is_some_and(|o| has(&o["valueCodeableConcept"], SCT, &["160734000"]))
    };
    hospice || palliative || frailty || nursing_home
}

/// A population criterion evaluated only when the populations above it hold.
type Later<'a> = Box<dyn Fn() -> bool + 'a>;

/// (initial population, exclusion, numerator) for one patient by the specification.
fn expected(m: MeasureId, p: &Patient) -> (bool, bool, bool) {
    let age = age_at_end(p);
    let (ip, excluded, numerator): (bool, Later, Later) = match m {
        MeasureId::Cms122 => (
            (18..=75).contains(&age)
                && condition_overlapping(p, DIABETES, START, END)
                && qualifying_visit(p),
            Box::new(|| shared_exclusion(p, false)),
            Box::new(|| {
                let mut tests: Vec<&Value> = of(p, "Observation")
                    .filter(|o| final_obs(o) && has(&o["code"], LOINC, HBA1C))
                    .filter(|o| obs_day(o).as_str() >= START && obs_day(o).as_str() <= END)
                    .collect();
                tests.sort_by_key(|o| (obs_day(o), s(&o["effectiveDateTime"]).to_string()));
                match tests.last() {
                    None => true,
                    Some(o) => match o["valueQuantity"]["value"].as_f64() {
                        None => true,
                        Some(v) => {
                            let unit = o["valueQuantity"]["code"]
                                .as_str()
                                .or(o["valueQuantity"]["unit"].as_str());
                            matches!(unit, None | Some("%")) && v > 9.0
                        }
                    },
                }
            }),
        ),
        MeasureId::Cms165 => (
            (18..=85).contains(&age)
                && of(p, "Condition").any(|c| {
                    let (a, b) = prevalence(c);
                    // Overlaps 1 January to 30 June.
                    has(&c["code"], SCT, HYPERTENSION)
                        && a.as_str() <= "2019-06-30"
                        && b.as_str() >= START
                })
                && qualifying_visit(p),
            Box::new(|| {
                condition_overlapping(p, PREGNANCY, START, END)
                    || condition_overlapping(p, ESRD, START, END)
                    || shared_exclusion(p, true)
            }),
            Box::new(|| {
                let encounter_class: HashMap<&str, &str> = of(p, "Encounter")
                    .map(|e| (s(&e["id"]), s(&e["class"]["code"])))
                    .collect();
                let mut sys: Vec<(String, f64)> = Vec::new();
                let mut dia: Vec<(String, f64)> = Vec::new();
                for o in of(p, "Observation").filter(|o| final_obs(o)) {
                    let d = obs_day(o);
                    if d.as_str() < START || d.as_str() > END {
                        continue;
                    }
                    let enc = s(&o["encounter"]["reference"]);
                    let enc_id = enc.rsplit(['/', ':']).next().unwrap_or("");
                    if matches!(
                        encounter_class.get(enc_id).copied(),
                        Some("EMER" | "IMP" | "ACUTE" | "NONAC" | "PRENC" | "SS")
                    ) {
                        continue;
                    }
                    let value_of = |code: &str| {
                        if has(&o["code"], LOINC, &[code]) {
                            if let Some(v) = o["valueQuantity"]["value"].as_f64() {
                                return Some(v);
                            }
                        }
                        o["component"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|c| has(&c["code"], LOINC, &[code]))
                            .and_then(|c| c["valueQuantity"]["value"].as_f64())
                    };
                    if let Some(v) = value_of("8480-6") {
                        sys.push((d.clone(), v));
                    }
                    if let Some(v) = value_of("8462-4") {
                        dia.push((d.clone(), v));
                    }
                }
                let last_day = sys
                    .iter()
                    .map(|(d, _)| d.clone())
                    .filter(|d| dia.iter().any(|(x, _)| x == d))
                    .max();
                let Some(last_day) = last_day else {
                    return false;
                };
                let low = |v: &[(String, f64)]| {
                    v.iter()
                        .filter(|(d, _)| *d == last_day)
                        .map(|(_, x)| *x)
                        .fold(f64::INFINITY, f64::min)
                };
                low(&sys) < 140.0 && low(&dia) < 90.0
            }),
        ),
        MeasureId::Cms125 => (
            s(&p.patient["gender"]) == "female" && (52..=74).contains(&age) && qualifying_visit(p),
            Box::new(|| {
                procedure_between(p, MASTECTOMY, "0000", END) || shared_exclusion(p, false)
            }),
            Box::new(|| {
                ["Observation", "DiagnosticReport"].iter().any(|t| {
                    of(p, t).any(|o| {
                        let d = obs_day(o);
                        matches!(
                            s(&o["status"]),
                            "final" | "amended" | "corrected" | "appended"
                        ) && has(&o["code"], LOINC, MAMMOGRAPHY)
                            && d.as_str() >= "2017-10-01"
                            && d.as_str() <= END
                    })
                })
            }),
        ),
        MeasureId::Cms130 => (
            (46..=75).contains(&age) && qualifying_visit(p),
            Box::new(|| {
                of(p, "Condition")
                    .any(|c| has(&c["code"], SCT, COLON_CANCER) && prevalence(c).0.as_str() <= END)
                    || procedure_between(p, COLECTOMY, "0000", END)
                    || shared_exclusion(p, false)
            }),
            Box::new(|| {
                let obs_between = |codes: &[&str], from: &str, with_value: bool| {
                    of(p, "Observation").any(|o| {
                        let d = obs_day(o);
                        final_obs(o)
                            && has(&o["code"], LOINC, codes)
                            && (!with_value
                                || o.as_object()
                                    .is_some_and(|m| m.keys().any(|k| k.starts_with("value"))))
                            && d.as_str() >= from
                            && d.as_str() <= END
                    })
                };
                obs_between(FOBT, START, true)
                    || obs_between(SDNA, "2017-01-01", true)
                    || procedure_between(p, SIGMOIDOSCOPY, "2015-01-01", END)
                    || obs_between(CT_COLONOGRAPHY, "2015-01-01", false)
                    || procedure_between(p, COLONOSCOPY, "2010-01-01", END)
            }),
        ),
    };
    let excluded = ip && excluded();
    (ip, excluded, ip && !excluded && numerator())
}

#[test]
fn synthea_counts_match_an_independent_reading_of_the_specifications() {
    oxehr_testdata::require!();
    let patients = load();
    assert_eq!(
        patients.len(),
        94,
        "90 smart-on-fhir + 5 synthea-v3 files, one without a patient"
    );
    let period = (date!(2019 - 01 - 01), date!(2019 - 12 - 31));
    let mut failures = Vec::new();
    for m in MeasureId::all() {
        let mut got = Counts::default();
        let mut want = Counts::default();
        for p in &patients {
            let record = Record::new(&p.patient, &p.resources);
            let membership = evaluate(m, &record, period);
            got.add(&membership);
            let (ip, ex, num) = expected(m, p);
            want.initial_population += usize::from(ip);
            want.denominator += usize::from(ip);
            want.denominator_exclusion += usize::from(ex);
            want.numerator += usize::from(num);
            let actual = (
                membership.initial_population,
                membership.denominator_exclusion,
                membership.numerator,
            );
            if actual != (ip, ex, num) {
                failures.push(format!(
                    "{} {}: module {actual:?}, expected {:?}; evidence {:?}",
                    m.id(),
                    s(&p.patient["id"]),
                    (ip, ex, num),
                    membership.evidence
                ));
            }
        }
        println!(
            "{} 2019: initial population {}, denominator {}, exclusions {}, numerator {}, score {:?}",
            m.version(),
            got.initial_population,
            got.denominator,
            got.denominator_exclusion,
            got.numerator,
            oxehr_clinical::measures::score(&got)
        );
        assert_eq!(got, want, "{} counts", m.id());
        // Every measure has patients in its initial population in this data.
        assert!(
            got.initial_population > 0,
            "{} has an empty initial population",
            m.id()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
