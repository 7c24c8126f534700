//! The CCD body: one section per kind of fact, each with a narrative table a person can
//! read and the C-CDA R2.1 entries a machine can (templates named at each writer).

use serde_json::Value;

use super::dt::{self, cd, display, end, ids, ivl, s, start, ts};
use super::xml::W;
use crate::time;

pub(crate) fn rt(r: &Value) -> &str {
    s(r, "/resourceType").unwrap_or("")
}

pub(crate) fn has_category(r: &Value, code: &str) -> bool {
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
pub(crate) fn ref_id(reference: &str) -> &str {
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

pub(crate) struct Def {
    pub tpl: &'static str,
    pub ext: &'static str,
    pub code: &'static str,
    pub display: &'static str,
    pub title: &'static str,
    pub required: bool,
    pub columns: &'static [&'static str],
}

pub(crate) fn section(w: &mut W, d: &Def, rows: &[Vec<String>], entries: impl FnOnce(&mut W)) {
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

pub(crate) fn date_text(d: Option<&str>) -> String {
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
    super::observations::results(w, &of("DiagnosticReport"), &observations);
    super::observations::social(w, &observations);
    super::observations::vitals(w, &observations);
    immunizations(w, &of("Immunization"));
    procedures(w, &of("Procedure"));
    encounters(w, &of("Encounter"));
    super::notes::notes(w, &of("DocumentReference"));
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
