//! The CCD body: one section per kind of fact, each with a narrative table a person can
//! read and the C-CDA R2.1 entries a machine can (templates named at each writer).

use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

use super::dt::{self, cd, display, end, ids, ivl, s, start, ts};
use super::xml::W;
use crate::time;

fn rt(r: &Value) -> &str {
    s(r, "/resourceType").unwrap_or("")
}

fn has_category(r: &Value, code: &str) -> bool {
    r.get("category")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| {
            c.get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .any(|c| s(c, "/code") == Some(code))
}

/// The id a reference names (`urn:uuid:X`, `Type/X`).
fn ref_id(reference: &str) -> &str {
    reference.rsplit([':', '/']).next().unwrap_or(reference)
}

/// The earliest date in the record, for the serviceEvent's low.
pub(crate) fn earliest(resources: &[Value]) -> Option<String> {
    resources
        .iter()
        .filter_map(|r| {
            start(r, "onset")
                .or_else(|| start(r, "effective"))
                .or_else(|| start(r, "performed"))
                .or_else(|| start(r, "occurrence"))
                .or_else(|| s(r, "/period/start"))
                .or_else(|| s(r, "/authoredOn"))
        })
        .filter_map(|d| time::from_fhir(d).map(|ts| (ts, d.to_string())))
        .min()
        .map(|(_, d)| d)
}

struct Def {
    tpl: &'static str,
    ext: &'static str,
    code: &'static str,
    display: &'static str,
    title: &'static str,
    required: bool,
    columns: &'static [&'static str],
}

fn section(w: &mut W, d: &Def, rows: &[Vec<String>], entries: impl FnOnce(&mut W)) {
    if rows.is_empty() && !d.required {
        return;
    }
    w.open("component", &[]);
    if rows.is_empty() {
        w.open("section", &[("nullFlavor", "NI")]);
    } else {
        w.open("section", &[]);
    }
    w.template(d.tpl, Some(d.ext));
    w.empty(
        "code",
        &[
            ("code", d.code),
            ("codeSystem", "2.16.840.1.113883.6.1"),
            ("codeSystemName", "LOINC"),
            ("displayName", d.display),
        ],
    );
    w.leaf("title", &[], d.title);
    if rows.is_empty() {
        w.leaf("text", &[], "No information");
        w.close("section");
        w.close("component");
        return;
    }
    w.open("text", &[]);
    w.open("table", &[("border", "1"), ("width", "100%")]);
    w.open("thead", &[]);
    w.open("tr", &[]);
    for c in d.columns {
        w.leaf("th", &[], c);
    }
    w.close("tr");
    w.close("thead");
    w.open("tbody", &[]);
    for row in rows {
        w.open("tr", &[]);
        for cell in row {
            w.leaf("td", &[], cell);
        }
        w.close("tr");
    }
    w.close("tbody");
    w.close("table");
    w.close("text");
    entries(w);
    w.close("section");
    w.close("component");
}

fn date_text(d: Option<&str>) -> String {
    d.unwrap_or("unknown").to_string()
}

fn status_code<'a>(r: &'a Value, path: &str) -> Option<&'a str> {
    s(r, path)
}

/// Writes every section, in the order the CCD lists them.
pub(crate) fn all(w: &mut W, resources: &[Value]) {
    let of = |t: &str| -> Vec<&Value> { resources.iter().filter(|r| rt(r) == t).collect() };
    allergies(w, &of("AllergyIntolerance"));
    let mut meds = of("MedicationRequest");
    meds.extend(of("MedicationStatement"));
    medications(w, &meds, resources);
    problems(w, &of("Condition"));
    let observations = of("Observation");
    results(w, &of("DiagnosticReport"), &observations);
    social(w, &observations);
    vitals(w, &observations);
    immunizations(w, &of("Immunization"));
    procedures(w, &of("Procedure"));
    encounters(w, &of("Encounter"));
    notes(w, &of("DocumentReference"));
}

/// Allergies and Intolerances Section (entries required) (V3)
/// 2.16.840.1.113883.10.20.22.2.6.1:2015-08-01, with Allergy Concern Act (V3)
/// 2.16.840.1.113883.10.20.22.4.30:2015-08-01 around Allergy - Intolerance Observation
/// (V2) 2.16.840.1.113883.10.20.22.4.7:2014-06-09 and Reaction Observation (V2)
/// 2.16.840.1.113883.10.20.22.4.9:2014-06-09 (C-CDA on FHIR "CF-allergies", reversed).
fn allergies(w: &mut W, list: &[&Value]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let reactions: Vec<String> = r
                .get("reaction")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|x| {
                    x.get("manifestation")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                })
                .map(|m| display(Some(m)))
                .collect();
            vec![
                display(r.get("code")),
                reactions.join(", "),
                s(r, "/clinicalStatus/coding/0/code")
                    .unwrap_or("")
                    .to_string(),
                date_text(s(r, "/onsetDateTime").or(s(r, "/recordedDate"))),
            ]
        })
        .collect();
    let def = Def {
        tpl: "2.16.840.1.113883.10.20.22.2.6.1",
        ext: "2015-08-01",
        code: "48765-2",
        display: "Allergies and adverse reactions Document",
        title: "Allergies and Intolerances",
        required: true,
        columns: &["Substance", "Reaction", "Status", "Onset"],
    };
    section(w, &def, &rows, |w| {
        for r in list {
            let active = matches!(s(r, "/clinicalStatus/coding/0/code"), Some("active") | None);
            let onset = s(r, "/onsetDateTime").or(s(r, "/recordedDate"));
            w.open("entry", &[("typeCode", "DRIV")]);
            w.open("act", &[("classCode", "ACT"), ("moodCode", "EVN")]);
            w.template("2.16.840.1.113883.10.20.22.4.30", Some("2015-08-01"));
            w.empty("id", &[("nullFlavor", "NI")]);
            w.empty(
                "code",
                &[
                    ("code", "CONC"),
                    ("codeSystem", "2.16.840.1.113883.5.6"),
                    ("displayName", "Concern"),
                ],
            );
            w.empty(
                "statusCode",
                &[("code", if active { "active" } else { "completed" })],
            );
            ivl(
                w,
                "effectiveTime",
                onset,
                if active { None } else { Some("") },
                &[],
            );
            w.open("entryRelationship", &[("typeCode", "SUBJ")]);
            w.open("observation", &[("classCode", "OBS"), ("moodCode", "EVN")]);
            w.template("2.16.840.1.113883.10.20.22.4.7", Some("2014-06-09"));
            ids(w, r);
            w.empty(
                "code",
                &[
                    ("code", "ASSERTION"),
                    ("codeSystem", "2.16.840.1.113883.5.4"),
                ],
            );
            w.empty("statusCode", &[("code", "completed")]);
            ivl(w, "effectiveTime", onset, None, &[]);
            let category = r.pointer("/category/0").and_then(Value::as_str);
            let (code, disp) = match (s(r, "/type"), category) {
                (Some("intolerance"), Some("medication")) => {
                    ("59037007", "Drug intolerance (disorder)")
                }
                (Some("intolerance"), Some("food")) => ("235719002", "Food intolerance (disorder)"),
                (_, Some("medication")) => ("416098002", "Allergy to drug (disorder)"),
                (_, Some("food")) => ("414285001", "Allergy to food (disorder)"),
                _ => ("419199007", "Allergy to substance (disorder)"),
            };
            w.empty(
                "value",
                &[
                    ("xsi:type", "CD"),
                    ("code", code),
                    ("codeSystem", "2.16.840.1.113883.6.96"),
                    ("displayName", disp),
                ],
            );
            w.open("participant", &[("typeCode", "CSM")]);
            w.open("participantRole", &[("classCode", "MANU")]);
            w.open("playingEntity", &[("classCode", "MMAT")]);
            cd(w, "code", r.get("code"), &[], &[]);
            w.close("playingEntity");
            w.close("participantRole");
            w.close("participant");
            for m in r
                .get("reaction")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|x| {
                    x.get("manifestation")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                })
            {
                w.open(
                    "entryRelationship",
                    &[("typeCode", "MFST"), ("inversionInd", "true")],
                );
                w.open("observation", &[("classCode", "OBS"), ("moodCode", "EVN")]);
                w.template("2.16.840.1.113883.10.20.22.4.9", Some("2014-06-09"));
                w.empty("id", &[("nullFlavor", "NI")]);
                w.empty(
                    "code",
                    &[
                        ("code", "ASSERTION"),
                        ("codeSystem", "2.16.840.1.113883.5.4"),
                    ],
                );
                w.empty("statusCode", &[("code", "completed")]);
                cd(w, "value", Some(m), &[("xsi:type", "CD")], &[]);
                w.close("observation");
                w.close("entryRelationship");
            }
            w.close("observation");
            w.close("entryRelationship");
            w.close("act");
            w.close("entry");
        }
    });
}

/// The medication a request or statement names: its concept, or the code of the
/// Medication resource it references.
fn medication<'a>(r: &'a Value, all: &'a [Value]) -> Option<&'a Value> {
    if let Some(c) = r.get("medicationCodeableConcept") {
        return Some(c);
    }
    let id = ref_id(s(r, "/medicationReference/reference")?);
    all.iter()
        .find(|m| rt(m) == "Medication" && s(m, "/id") == Some(id))
        .and_then(|m| m.get("code"))
}

fn med_start(r: &Value) -> Option<&str> {
    start(r, "effective").or_else(|| s(r, "/authoredOn"))
}

/// Medications Section (entries required) (V2) 2.16.840.1.113883.10.20.22.2.1.1:2014-06-09
/// with Medication Activity (V2) 2.16.840.1.113883.10.20.22.4.16:2014-06-09 and Medication
/// Information (V2) 2.16.840.1.113883.10.20.22.4.23:2014-06-09, from MedicationRequest
/// (authoredOn as the start) and MedicationStatement.
fn medications(w: &mut W, list: &[&Value], all: &[Value]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                display(medication(r, all)),
                s(r, "/status").unwrap_or("").to_string(),
                date_text(med_start(r)),
                s(r, "/dosageInstruction/0/text")
                    .or(s(r, "/dosage/0/text"))
                    .unwrap_or("")
                    .to_string(),
            ]
        })
        .collect();
    let def = Def {
        tpl: "2.16.840.1.113883.10.20.22.2.1.1",
        ext: "2014-06-09",
        code: "10160-0",
        display: "History of Medication use Narrative",
        title: "Medications",
        required: true,
        columns: &["Medication", "Status", "Start", "Directions"],
    };
    section(w, &def, &rows, |w| {
        for r in list {
            let status = match status_code(r, "/status") {
                Some("active") => "active",
                Some("on-hold") => "suspended",
                Some("stopped") => "aborted",
                Some("cancelled" | "not-taken") => "cancelled",
                Some("entered-in-error") => "nullified",
                Some("intended" | "draft") => "new",
                _ => "completed",
            };
            w.open("entry", &[("typeCode", "DRIV")]);
            w.open(
                "substanceAdministration",
                &[("classCode", "SBADM"), ("moodCode", "EVN")],
            );
            w.template("2.16.840.1.113883.10.20.22.4.16", Some("2014-06-09"));
            ids(w, r);
            w.empty("statusCode", &[("code", status)]);
            ivl(
                w,
                "effectiveTime",
                med_start(r),
                end(r, "effective"),
                &[("xsi:type", "IVL_TS")],
            );
            let dosage = r
                .pointer("/dosage/0")
                .or_else(|| r.pointer("/dosageInstruction/0"));
            if let Some(route) = dosage.and_then(|d| d.get("route")) {
                cd(w, "routeCode", Some(route), &[], &[]);
            }
            // Medication Activity requires a doseQuantity (CONF:1098-7516): unknown when none.
            match dosage
                .and_then(|d| d.pointer("/doseAndRate/0/doseQuantity"))
                .and_then(dt::pq)
            {
                Some((v, u)) => w.empty("doseQuantity", &[("value", &v), ("unit", &u)]),
                None => w.empty("doseQuantity", &[("nullFlavor", "UNK")]),
            }
            w.open("consumable", &[]);
            w.open("manufacturedProduct", &[("classCode", "MANU")]);
            w.template("2.16.840.1.113883.10.20.22.4.23", Some("2014-06-09"));
            w.open("manufacturedMaterial", &[]);
            cd(w, "code", medication(r, all), &[], &[]);
            w.close("manufacturedMaterial");
            w.close("manufacturedProduct");
            w.close("consumable");
            w.close("substanceAdministration");
            w.close("entry");
        }
    });
}

/// Problem Section (entries required) (V3) 2.16.840.1.113883.10.20.22.2.5.1:2015-08-01
/// with Problem Concern Act (V3) 2.16.840.1.113883.10.20.22.4.3:2015-08-01 around Problem
/// Observation (V3) 2.16.840.1.113883.10.20.22.4.4:2015-08-01 (C-CDA on FHIR
/// "CF-problems", reversed).
fn problems(w: &mut W, list: &[&Value]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                display(r.get("code")),
                s(r, "/clinicalStatus/coding/0/code")
                    .unwrap_or("")
                    .to_string(),
                date_text(start(r, "onset")),
                s(r, "/abatementDateTime").unwrap_or("").to_string(),
            ]
        })
        .collect();
    let def = Def {
        tpl: "2.16.840.1.113883.10.20.22.2.5.1",
        ext: "2015-08-01",
        code: "11450-4",
        display: "Problem list - Reported",
        title: "Problems",
        required: true,
        columns: &["Problem", "Status", "Onset", "Resolved"],
    };
    section(w, &def, &rows, |w| {
        for r in list {
            let active = matches!(
                s(r, "/clinicalStatus/coding/0/code"),
                Some("active" | "recurrence" | "relapse") | None
            );
            let onset = start(r, "onset");
            let abated = s(r, "/abatementDateTime").or_else(|| end(r, "abatement"));
            w.open("entry", &[("typeCode", "DRIV")]);
            w.open("act", &[("classCode", "ACT"), ("moodCode", "EVN")]);
            w.template("2.16.840.1.113883.10.20.22.4.3", Some("2015-08-01"));
            w.empty("id", &[("nullFlavor", "NI")]);
            w.empty(
                "code",
                &[
                    ("code", "CONC"),
                    ("codeSystem", "2.16.840.1.113883.5.6"),
                    ("displayName", "Concern"),
                ],
            );
            w.empty(
                "statusCode",
                &[("code", if active { "active" } else { "completed" })],
            );
            ivl(
                w,
                "effectiveTime",
                onset,
                if active {
                    None
                } else {
                    Some(abated.unwrap_or(""))
                },
                &[],
            );
            w.open("entryRelationship", &[("typeCode", "SUBJ")]);
            let refuted = s(r, "/verificationStatus/coding/0/code") == Some("refuted");
            let mut attrs = vec![("classCode", "OBS"), ("moodCode", "EVN")];
            if refuted {
                attrs.push(("negationInd", "true"));
            }
            w.open("observation", &attrs);
            w.template("2.16.840.1.113883.10.20.22.4.4", Some("2015-08-01"));
            ids(w, r);
            w.open(
                "code",
                &[
                    ("code", "55607006"),
                    ("codeSystem", "2.16.840.1.113883.6.96"),
                    ("displayName", "Problem"),
                ],
            );
            w.empty(
                "translation",
                &[
                    ("code", "75326-9"),
                    ("codeSystem", "2.16.840.1.113883.6.1"),
                    ("displayName", "Problem"),
                ],
            );
            w.close("code");
            w.empty("statusCode", &[("code", "completed")]);
            ivl(w, "effectiveTime", onset, abated, &[]);
            cd(w, "value", r.get("code"), &[("xsi:type", "CD")], &[]);
            w.close("observation");
            w.close("entryRelationship");
            w.close("act");
            w.close("entry");
        }
    });
}

/// An Observation as the observations a CDA entry can carry: itself when it has a value
/// (or nothing else), else one per component (a blood pressure panel becomes its systolic
/// and diastolic readings), each with the panel's time.
fn flatten(o: &Value) -> Vec<Value> {
    let has_value = o
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k.starts_with("value")));
    let comps = o.get("component").and_then(Value::as_array);
    match comps {
        Some(c) if !has_value && !c.is_empty() => c
            .iter()
            .map(|comp| {
                let mut x = comp.clone();
                x["status"] = o.get("status").cloned().unwrap_or(Value::Null);
                if let Some(t) = start(o, "effective") {
                    x["effectiveDateTime"] = json!(t);
                }
                x
            })
            .collect(),
        _ => vec![o.clone()],
    }
}

/// A Result Observation (V3) 2.16.840.1.113883.10.20.22.4.2:2015-08-01 or Vital Sign
/// Observation (V2) 2.16.840.1.113883.10.20.22.4.27:2014-06-09.
fn observation(w: &mut W, o: &Value, tpl: &str, ext: &str) {
    w.open("component", &[]);
    w.open("observation", &[("classCode", "OBS"), ("moodCode", "EVN")]);
    w.template(tpl, Some(ext));
    ids(w, o);
    cd(w, "code", o.get("code"), &[], &[]);
    let status = match s(o, "/status") {
        Some("preliminary" | "registered") => "active",
        Some("cancelled") => "cancelled",
        _ => "completed",
    };
    w.empty("statusCode", &[("code", status)]);
    ts(w, "effectiveTime", start(o, "effective"));
    dt::value(w, o);
    for i in o
        .get("interpretation")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        cd(w, "interpretationCode", Some(i), &[], &[]);
    }
    for rr in o
        .get("referenceRange")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.open("referenceRange", &[]);
        w.open("observationRange", &[]);
        if let Some(t) = s(rr, "/text") {
            w.leaf("text", &[], t);
        }
        w.open("value", &[("xsi:type", "IVL_PQ")]);
        for e in ["low", "high"] {
            match rr.get(e).and_then(dt::pq) {
                Some((v, u)) => w.empty(e, &[("value", &v), ("unit", &u)]),
                None => w.empty(e, &[("nullFlavor", "NI")]),
            }
        }
        w.close("value");
        w.close("observationRange");
        w.close("referenceRange");
    }
    w.close("observation");
    w.close("component");
}

fn obs_row(o: &Value) -> Vec<String> {
    vec![
        display(o.get("code")),
        dt::value_text(o),
        date_text(start(o, "effective")),
    ]
}

/// Results Section (entries required) (V3) 2.16.840.1.113883.10.20.22.2.3.1:2015-08-01
/// with Result Organizer (V3) 2.16.840.1.113883.10.20.22.4.1:2015-08-01: a
/// DiagnosticReport with its laboratory results becomes an organizer; a laboratory
/// Observation no report holds gets an organizer of its own (the section has no other
/// place for it).
fn results(w: &mut W, reports: &[&Value], observations: &[&Value]) {
    let labs: Vec<&Value> = observations
        .iter()
        .copied()
        .filter(|o| has_category(o, "laboratory"))
        .collect();
    let by_id: HashMap<&str, &Value> = labs
        .iter()
        .filter_map(|o| Some((s(o, "/id")?, *o)))
        .collect();
    let mut used: HashSet<&str> = HashSet::new();
    let mut groups: Vec<(Option<&Value>, Vec<&Value>)> = Vec::new();
    for r in reports {
        let members: Vec<&Value> = r
            .get("result")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| s(x, "/reference"))
            .filter_map(|x| by_id.get(ref_id(x)).copied())
            .collect();
        if members.is_empty() {
            continue;
        }
        used.extend(members.iter().filter_map(|o| s(o, "/id")));
        groups.push((Some(*r), members));
    }
    for o in &labs {
        if !s(o, "/id").is_some_and(|i| used.contains(i)) {
            groups.push((None, vec![*o]));
        }
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .flat_map(|(_, m)| m.iter().flat_map(|o| flatten(o)))
        .map(|o| obs_row(&o))
        .collect();
    let def = Def {
        tpl: "2.16.840.1.113883.10.20.22.2.3.1",
        ext: "2015-08-01",
        code: "30954-2",
        display: "Relevant diagnostic tests/laboratory data Narrative",
        title: "Results",
        required: true,
        columns: &["Test", "Result", "Date"],
    };
    section(w, &def, &rows, |w| {
        for (report, members) in &groups {
            w.open("entry", &[("typeCode", "DRIV")]);
            w.open(
                "organizer",
                &[("classCode", "CLUSTER"), ("moodCode", "EVN")],
            );
            w.template("2.16.840.1.113883.10.20.22.4.1", Some("2015-08-01"));
            match report {
                Some(r) => ids(w, r),
                None => w.empty("id", &[("nullFlavor", "NI")]),
            }
            cd(
                w,
                "code",
                report
                    .and_then(|r| r.get("code"))
                    .or(members[0].get("code")),
                &[],
                &[],
            );
            w.empty("statusCode", &[("code", "completed")]);
            let t = report
                .and_then(|r| start(r, "effective"))
                .or_else(|| start(members[0], "effective"));
            ivl(w, "effectiveTime", t, t, &[]);
            for m in members {
                for o in flatten(m) {
                    observation(w, &o, "2.16.840.1.113883.10.20.22.4.2", "2015-08-01");
                }
            }
            w.close("organizer");
            w.close("entry");
        }
    });
}

/// Vital Signs Section (entries required) (V3) 2.16.840.1.113883.10.20.22.2.4.1:2015-08-01
/// with Vital Signs Organizer (V3) 2.16.840.1.113883.10.20.22.4.26:2015-08-01, one per
/// time of measurement; only measured values (PQ) are vital signs in C-CDA.
fn vitals(w: &mut W, observations: &[&Value]) {
    let mut by_time: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for o in observations
        .iter()
        .filter(|o| has_category(o, "vital-signs"))
    {
        for f in flatten(o) {
            if f.get("valueQuantity").and_then(dt::pq).is_some() {
                by_time
                    .entry(start(&f, "effective").unwrap_or("").to_string())
                    .or_default()
                    .push(f);
            }
        }
    }
    let rows: Vec<Vec<String>> = by_time.values().flatten().map(obs_row).collect();
    let def = Def {
        tpl: "2.16.840.1.113883.10.20.22.2.4.1",
        ext: "2015-08-01",
        code: "8716-3",
        display: "Vital signs",
        title: "Vital Signs",
        required: true,
        columns: &["Measurement", "Value", "Date"],
    };
    section(w, &def, &rows, |w| {
        for (t, list) in &by_time {
            let t = (!t.is_empty()).then_some(t.as_str());
            w.open("entry", &[("typeCode", "DRIV")]);
            w.open(
                "organizer",
                &[("classCode", "CLUSTER"), ("moodCode", "EVN")],
            );
            w.template("2.16.840.1.113883.10.20.22.4.26", Some("2015-08-01"));
            w.empty("id", &[("nullFlavor", "NI")]);
            w.open(
                "code",
                &[
                    ("code", "46680005"),
                    ("codeSystem", "2.16.840.1.113883.6.96"),
                    ("displayName", "Vital Signs"),
                ],
            );
            w.empty("translation", &[("code", "74728-7"), ("codeSystem", "2.16.840.1.113883.6.1"), ("displayName", "Vital signs, weight, height, head circumference, oximetry, BMI, and BSA panel - HL7.CCDAr1.1")]);
            w.close("code");
            w.empty("statusCode", &[("code", "completed")]);
            ivl(w, "effectiveTime", t, t, &[]);
            for o in list {
                observation(w, o, "2.16.840.1.113883.10.20.22.4.27", "2014-06-09");
            }
            w.close("organizer");
            w.close("entry");
        }
    });
}

/// Social History Section (V3) 2.16.840.1.113883.10.20.22.2.17:2015-08-01: smoking status
/// (LOINC 72166-2) as Smoking Status - Meaningful Use (V2)
/// 2.16.840.1.113883.10.20.22.4.78:2014-06-09, anything else as Social History
/// Observation (V3) 2.16.840.1.113883.10.20.22.4.38:2015-08-01.
fn social(w: &mut W, observations: &[&Value]) {
    let list: Vec<&Value> = observations
        .iter()
        .copied()
        .filter(|o| has_category(o, "social-history"))
        .collect();
    let rows: Vec<Vec<String>> = list.iter().map(|o| obs_row(o)).collect();
    let def = Def {
        tpl: "2.16.840.1.113883.10.20.22.2.17",
        ext: "2015-08-01",
        code: "29762-2",
        display: "Social history Narrative",
        title: "Social History",
        required: true,
        columns: &["Observation", "Value", "Date"],
    };
    section(w, &def, &rows, |w| {
        for o in &list {
            let smoking = s(o, "/code/coding/0/code") == Some("72166-2")
                && o.get("valueCodeableConcept").is_some();
            w.open("entry", &[("typeCode", "DRIV")]);
            w.open("observation", &[("classCode", "OBS"), ("moodCode", "EVN")]);
            let loinc = s(o, "/code/coding/0/system") == Some("http://loinc.org");
            let pregnant = s(o, "/code/coding/0/code") == Some("ASSERTION")
                && s(o, "/valueCodeableConcept/coding/0/code") == Some("77386006");
            if smoking {
                w.template("2.16.840.1.113883.10.20.22.4.78", Some("2014-06-09"));
            } else if pregnant {
                // Pregnancy Observation 2.16.840.1.113883.10.20.15.3.8
                w.template("2.16.840.1.113883.10.20.15.3.8", None);
            } else if loinc {
                w.template("2.16.840.1.113883.10.20.22.4.38", Some("2015-08-01"));
            }
            // else: an observation coded outside LOINC cannot be a Social History
            // Observation (CONF:1198-32951 wants a LOINC code or translation, which we do
            // not have); it is written as a plain observation in the section.
            ids(w, o);
            cd(w, "code", o.get("code"), &[], &[]);
            w.empty("statusCode", &[("code", "completed")]);
            ts(w, "effectiveTime", start(o, "effective"));
            dt::value(w, o);
            w.close("observation");
            w.close("entry");
        }
    });
}

/// Immunizations Section (entries required) (V3) 2.16.840.1.113883.10.20.22.2.2.1:2015-08-01
/// with Immunization Activity (V3) 2.16.840.1.113883.10.20.22.4.52:2015-08-01 and
/// Immunization Medication Information (V2) 2.16.840.1.113883.10.20.22.4.54:2014-06-09.
fn immunizations(w: &mut W, list: &[&Value]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                display(r.get("vaccineCode")),
                s(r, "/status").unwrap_or("").to_string(),
                date_text(s(r, "/occurrenceDateTime")),
            ]
        })
        .collect();
    let def = Def {
        tpl: "2.16.840.1.113883.10.20.22.2.2.1",
        ext: "2015-08-01",
        code: "11369-6",
        display: "History of Immunization Narrative",
        title: "Immunizations",
        required: false,
        columns: &["Vaccine", "Status", "Date"],
    };
    section(w, &def, &rows, |w| {
        for r in list {
            let negated = s(r, "/status") == Some("not-done");
            w.open("entry", &[("typeCode", "DRIV")]);
            w.open(
                "substanceAdministration",
                &[
                    ("classCode", "SBADM"),
                    ("moodCode", "EVN"),
                    ("negationInd", if negated { "true" } else { "false" }),
                ],
            );
            w.template("2.16.840.1.113883.10.20.22.4.52", Some("2015-08-01"));
            ids(w, r);
            w.empty("statusCode", &[("code", "completed")]);
            ts(w, "effectiveTime", s(r, "/occurrenceDateTime"));
            if let Some(route) = r.get("route") {
                cd(w, "routeCode", Some(route), &[], &[]);
            }
            if let Some((v, u)) = r.get("doseQuantity").and_then(dt::pq) {
                w.empty("doseQuantity", &[("value", &v), ("unit", &u)]);
            }
            w.open("consumable", &[]);
            w.open("manufacturedProduct", &[("classCode", "MANU")]);
            w.template("2.16.840.1.113883.10.20.22.4.54", Some("2014-06-09"));
            w.open("manufacturedMaterial", &[]);
            cd(w, "code", r.get("vaccineCode"), &[], &[]);
            if let Some(l) = s(r, "/lotNumber") {
                w.leaf("lotNumberText", &[], l);
            }
            w.close("manufacturedMaterial");
            w.close("manufacturedProduct");
            w.close("consumable");
            w.close("substanceAdministration");
            w.close("entry");
        }
    });
}

/// Procedures Section (entries optional) (V2) 2.16.840.1.113883.10.20.22.2.7.1:2014-06-09
/// with Procedure Activity Procedure (V2) 2.16.840.1.113883.10.20.22.4.14:2014-06-09.
fn procedures(w: &mut W, list: &[&Value]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                display(r.get("code")),
                s(r, "/status").unwrap_or("").to_string(),
                date_text(start(r, "performed")),
            ]
        })
        .collect();
    let def = Def {
        tpl: "2.16.840.1.113883.10.20.22.2.7.1",
        ext: "2014-06-09",
        code: "47519-4",
        display: "History of Procedures Document",
        title: "Procedures",
        required: false,
        columns: &["Procedure", "Status", "Date"],
    };
    section(w, &def, &rows, |w| {
        for r in list {
            let status = match s(r, "/status") {
                Some("in-progress" | "preparation" | "on-hold") => "active",
                Some("stopped") => "aborted",
                Some("not-done") => "cancelled",
                _ => "completed",
            };
            w.open("entry", &[("typeCode", "DRIV")]);
            w.open("procedure", &[("classCode", "PROC"), ("moodCode", "EVN")]);
            w.template("2.16.840.1.113883.10.20.22.4.14", Some("2014-06-09"));
            ids(w, r);
            cd(w, "code", r.get("code"), &[], &[]);
            w.empty("statusCode", &[("code", status)]);
            match (s(r, "/performedDateTime"), r.get("performedPeriod")) {
                (Some(t), _) => ts(w, "effectiveTime", Some(t)),
                (None, Some(_)) => ivl(
                    w,
                    "effectiveTime",
                    start(r, "performed"),
                    end(r, "performed"),
                    &[],
                ),
                (None, None) => ts(w, "effectiveTime", None),
            }
            for site in r
                .get("bodySite")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                cd(w, "targetSiteCode", Some(site), &[], &[]);
            }
            w.close("procedure");
            w.close("entry");
        }
    });
}

/// Encounters Section (entries optional) (V3) 2.16.840.1.113883.10.20.22.2.22.1:2015-08-01
/// with Encounter Activity (V3) 2.16.840.1.113883.10.20.22.4.49:2015-08-01: type → code,
/// class → a translation in ActCode.
fn encounters(w: &mut W, list: &[&Value]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                display(r.pointer("/type/0")),
                s(r, "/class/code").unwrap_or("").to_string(),
                date_text(s(r, "/period/start")),
                s(r, "/period/end").unwrap_or("").to_string(),
            ]
        })
        .collect();
    let def = Def {
        tpl: "2.16.840.1.113883.10.20.22.2.22.1",
        ext: "2015-08-01",
        code: "46240-8",
        display: "History of Hospitalizations+Outpatient visits Narrative",
        title: "Encounters",
        required: false,
        columns: &["Encounter", "Class", "Start", "End"],
    };
    section(w, &def, &rows, |w| {
        for r in list {
            w.open("entry", &[("typeCode", "DRIV")]);
            w.open("encounter", &[("classCode", "ENC"), ("moodCode", "EVN")]);
            w.template("2.16.840.1.113883.10.20.22.4.49", Some("2015-08-01"));
            ids(w, r);
            let class: Vec<Value> = r
                .get("class")
                .filter(|c| {
                    s(c, "/system") == Some("http://terminology.hl7.org/CodeSystem/v3-ActCode")
                })
                .cloned()
                .into_iter()
                .collect();
            cd(w, "code", r.pointer("/type/0"), &[], &class);
            ivl(
                w,
                "effectiveTime",
                s(r, "/period/start"),
                s(r, "/period/end"),
                &[],
            );
            w.close("encounter");
            w.close("entry");
        }
    });
}

/// Notes Section 2.16.840.1.113883.10.20.22.2.65:2016-11-01 with Note Activity
/// 2.16.840.1.113883.10.20.22.4.202:2016-11-01 (C-CDA R2.1 Companion Guide; C-CDA on FHIR
/// "CF-notes", reversed): type → a translation of LOINC 34109-9 "Note", the first
/// attachment → text (B64 with its media type), the note's text in the narrative when it
/// is plain text or HTML.
fn notes(w: &mut W, list: &[&Value]) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let when = |r: &Value| {
        s(r, "/context/period/start")
            .or(s(r, "/date"))
            .map(str::to_string)
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let att = r.pointer("/content/0/attachment");
            let text = att
                .filter(|a| s(a, "/contentType").is_some_and(|c| c.starts_with("text/")))
                .and_then(|a| s(a, "/data"))
                .and_then(|d| b64.decode(d).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .map(|t| {
                    if s(att.unwrap_or(&Value::Null), "/contentType")
                        .is_some_and(|c| c.starts_with("text/html"))
                    {
                        strip_tags(&t)
                    } else {
                        t
                    }
                })
                .unwrap_or_else(|| "(attachment)".into());
            vec![display(r.get("type")), date_text(when(r).as_deref()), text]
        })
        .collect();
    let def = Def {
        tpl: "2.16.840.1.113883.10.20.22.2.65",
        ext: "2016-11-01",
        code: "11488-4",
        display: "Consult note",
        title: "Notes",
        required: false,
        columns: &["Note", "Date", "Text"],
    };
    section(w, &def, &rows, |w| {
        for r in list {
            let t = when(r);
            w.open("entry", &[]);
            w.open("act", &[("classCode", "ACT"), ("moodCode", "EVN")]);
            w.empty(
                "templateId",
                &[
                    ("root", "2.16.840.1.113883.10.20.22.4.202"),
                    ("extension", "2016-11-01"),
                ],
            );
            ids(w, r);
            let translations: Vec<Value> = r
                .pointer("/type/coding")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let note = json!({ "coding": [{ "system": "http://loinc.org", "code": "34109-9", "display": "Note" }] });
            cd(w, "code", Some(&note), &[], &translations);
            let att = r.pointer("/content/0/attachment");
            match att.and_then(|a| s(a, "/data")) {
                Some(d) => {
                    let media = att
                        .and_then(|a| s(a, "/contentType"))
                        .unwrap_or("text/plain");
                    let media = media.split(';').next().unwrap_or(media).trim();
                    w.leaf(
                        "text",
                        &[("mediaType", media), ("representation", "B64")],
                        d,
                    );
                }
                None => match att.and_then(|a| s(a, "/url")) {
                    Some(u) => {
                        w.open("text", &[]);
                        w.empty("reference", &[("value", u)]);
                        w.close("text");
                    }
                    None => w.leaf("text", &[], ""),
                },
            }
            w.empty("statusCode", &[("code", "completed")]);
            ts(w, "effectiveTime", t.as_deref());
            w.open("author", &[]);
            w.empty(
                "templateId",
                &[("root", "2.16.840.1.113883.10.20.22.4.119")],
            );
            ts(w, "time", t.as_deref());
            w.open("assignedAuthor", &[]);
            w.empty("id", &[("nullFlavor", "NI")]);
            w.close("assignedAuthor");
            w.close("author");
            w.close("act");
            w.close("entry");
        }
    });
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}
