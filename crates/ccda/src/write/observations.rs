//! Observations in the CCD: Results (with Result Organizers), Vital Signs (with Vital
//! Signs Organizers) and Social History.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

use super::dt::{self, cd, display, ids, ivl, s, start, ts};
use super::sections::{date_text, has_category, ref_id, section, Def};
use super::xml::W;

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
pub(crate) fn results(w: &mut W, reports: &[&Value], observations: &[&Value]) {
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
pub(crate) fn vitals(w: &mut W, observations: &[&Value]) {
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
pub(crate) fn social(w: &mut W, observations: &[&Value]) {
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
