//! Writing into the chart: vital signs, a problem, an allergy, a clinical note and a
//! prescription, each a form that becomes FHIR resources written through `records` as
//! the signed-in person, in one transaction (all of a form, or nothing).
//!
//! This module has no rule about the data of its own. It turns fields into resources as
//! they were typed (a number that is not one stays text), and shows what `records`
//! refuses (its OperationOutcome) in plain words next to the field the issue's
//! expression names. The only checks made here are the form's own: a field the form
//! needs is filled, a text is not longer than its box.

use base64::Engine;
use serde_json::{json, Map, Value};

use oxehr_auth::Caller;
use oxehr_fhir::IssueCode;
use oxehr_records::{EntryOutcome, Records, RecordsError};

use crate::{chart, display};

/// What a field holds, and so how it is typed and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A line of text.
    Text,
    /// A paragraph.
    LongText,
    /// A number (a FHIR decimal), typed as text so that `records` judges it.
    Number,
    /// A whole number (a FHIR integer or unsignedInt), typed as text likewise.
    WholeNumber,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// One of the listed options (or none, when not required).
    Choice(&'static [(&'static str, &'static str)]),
    /// A medication from the patient's own record.
    Medication,
}

/// One field of a form.
#[derive(Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// The unit a number is recorded in, shown after the box.
    pub unit: &'static str,
    pub max_chars: usize,
    /// Fields in the same group share a fieldset (blood pressure's two numbers).
    pub group: Option<&'static str>,
}

const fn field(name: &'static str, label: &'static str, kind: Kind) -> FieldSpec {
    FieldSpec {
        name,
        label,
        hint: "",
        kind,
        required: false,
        unit: "",
        max_chars: 200,
        group: None,
    }
}

const fn number(name: &'static str, label: &'static str, unit: &'static str) -> FieldSpec {
    FieldSpec {
        unit,
        max_chars: 20,
        ..field(name, label, Kind::Number)
    }
}

/// A form of the chart.
#[derive(Debug)]
pub struct FormSpec {
    /// Its URL segment: `/patients/{id}/add/{key}`.
    pub key: &'static str,
    /// The link to it, the page's heading, and what the chart says once it is saved.
    pub title: &'static str,
    pub intro: &'static str,
    pub button: &'static str,
    pub saved: &'static str,
    pub fields: &'static [FieldSpec],
}

const CATEGORY: &[(&str, &str)] = &[
    ("medication", "Medication"),
    ("food", "Food"),
    ("environment", "Environment (pollen, dust, animals…)"),
    ("biologic", "Biologic (vaccines, blood products…)"),
];
const CRITICALITY: &[(&str, &str)] = &[
    ("low", "Low risk"),
    ("high", "High risk (life-threatening)"),
    ("unable-to-assess", "Unable to assess"),
];
const SEVERITY: &[(&str, &str)] = &[
    ("mild", "Mild"),
    ("moderate", "Moderate"),
    ("severe", "Severe"),
];
/// The kinds of clinical note (LOINC document types).
const NOTE_TYPES: &[(&str, &str)] = &[
    ("11506-3", "Progress note"),
    ("11488-4", "Consult note"),
    ("34109-9", "Note"),
    ("34748-4", "Telephone encounter note"),
    ("18842-5", "Discharge summary"),
];

pub const FORMS: &[FormSpec] = &[
    FormSpec {
        key: "vital-signs",
        title: "Record vital signs",
        intro: "Fill in what you measured; leave the rest empty. They are recorded as taken now.",
        button: "Save vital signs",
        saved: "The vital signs were saved.",
        fields: &[
            FieldSpec {
                group: Some("Blood pressure"),
                ..number("systolic", "Systolic", "mmHg")
            },
            FieldSpec {
                group: Some("Blood pressure"),
                ..number("diastolic", "Diastolic", "mmHg")
            },
            number("heart_rate", "Heart rate", "beats per minute"),
            number("respiratory_rate", "Respiratory rate", "breaths per minute"),
            number("temperature", "Body temperature", "°C"),
            number("oxygen", "Oxygen saturation", "%"),
            number("weight", "Body weight", "kg"),
            number("height", "Body height", "cm"),
        ],
    },
    FormSpec {
        key: "problem",
        title: "Add a problem",
        intro: "The problem is added to the active problem list.",
        button: "Add the problem",
        saved: "The problem was added.",
        fields: &[
            FieldSpec {
                required: true,
                hint: "For example: Type 2 diabetes mellitus",
                ..field("problem", "Problem", Kind::Text)
            },
            FieldSpec {
                hint: "When it began, if known",
                ..field("onset", "Onset date", Kind::Date)
            },
            FieldSpec {
                max_chars: 2000,
                ..field("comment", "Comment", Kind::LongText)
            },
        ],
    },
    FormSpec {
        key: "allergy",
        title: "Add an allergy",
        intro: "The allergy or intolerance is added to the patient's active allergies.",
        button: "Add the allergy",
        saved: "The allergy was added.",
        fields: &[
            FieldSpec {
                required: true,
                hint: "For example: Penicillin, peanuts, latex",
                ..field("substance", "Substance", Kind::Text)
            },
            field("category", "Kind of substance", Kind::Choice(CATEGORY)),
            field(
                "criticality",
                "Risk of a severe reaction",
                Kind::Choice(CRITICALITY),
            ),
            FieldSpec {
                hint: "For example: Hives, wheezing",
                ..field("reaction", "Reaction", Kind::Text)
            },
            field(
                "severity",
                "Severity of the reaction",
                Kind::Choice(SEVERITY),
            ),
        ],
    },
    FormSpec {
        key: "note",
        title: "Write a note",
        intro: "The note is added to the patient's notes, signed by you.",
        button: "Save the note",
        saved: "The note was saved.",
        fields: &[
            FieldSpec {
                required: true,
                ..field("kind", "Kind of note", Kind::Choice(NOTE_TYPES))
            },
            field("title", "Title", Kind::Text),
            FieldSpec {
                required: true,
                max_chars: 20_000,
                ..field("text", "Note", Kind::LongText)
            },
        ],
    },
    FormSpec {
        key: "prescription",
        title: "Prescribe a medication",
        intro: "Choose a medication from this patient's record, or type one that is not there.",
        button: "Prescribe",
        saved: "The prescription was saved.",
        fields: &[
            field("medication", "Medication from the record", Kind::Medication),
            FieldSpec {
                hint: "Only when it is not in the list above",
                ..field("medication_text", "Or another medication", Kind::Text)
            },
            FieldSpec {
                required: true,
                hint: "For example: 1 tablet by mouth twice a day",
                max_chars: 1000,
                ..field("dosage", "Dosage instructions", Kind::Text)
            },
            FieldSpec {
                hint: "How many times it may be refilled",
                kind: Kind::WholeNumber,
                ..number("refills", "Refills", "")
            },
            field("reason", "Reason", Kind::Text),
        ],
    },
];

pub fn form_spec(key: &str) -> Option<&'static FormSpec> {
    FORMS.iter().find(|f| f.key == key)
}

/// A medication the record already holds: its concept, and how it reads.
#[derive(Debug, Clone)]
pub struct Medication {
    pub key: String,
    pub label: String,
    pub concept: Value,
}

/// The distinct medications of `patient`'s MedicationRequests (and MedicationStatements),
/// as `who` may see them, sorted by name.
pub fn record_medications(
    records: &Records,
    who: &Caller,
    patient: &str,
) -> Result<Vec<Medication>, RecordsError> {
    let mut found: std::collections::BTreeMap<String, Medication> = Default::default();
    for rtype in ["MedicationRequest", "MedicationStatement"] {
        let page = chart::search(
            records,
            who,
            rtype,
            &[("patient", patient.to_owned())],
            chart::SECTION_ROWS,
        )?;
        for r in page.matches.iter().filter_map(chart::body) {
            let concept = &r["medicationCodeableConcept"];
            let Some(label) = display::concept(concept) else {
                continue;
            };
            let key = chart::code_key(concept);
            found.entry(key.clone()).or_insert(Medication {
                key,
                label,
                concept: concept.clone(),
            });
        }
    }
    let mut meds: Vec<Medication> = found.into_values().collect();
    meds.sort_by_key(|m| m.label.to_lowercase());
    Ok(meds)
}

/// What a form was sent with: its fields' values, trimmed, line breaks as `\n`.
#[derive(Debug, Clone, Default)]
pub struct Values(pub Vec<(String, String)>);

impl Values {
    pub fn from_fields(spec: &FormSpec, fields: &[(String, String)]) -> Values {
        Values(
            spec.fields
                .iter()
                .map(|f| {
                    let v = crate::session::field(fields, f.name).unwrap_or("").trim();
                    // Browsers send a text area's line breaks as CRLF.
                    (f.name.to_owned(), v.replace("\r\n", "\n"))
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A refusal, in plain words: next to a field (`field`), or about the whole form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: Option<&'static str>,
    pub text: String,
}

impl Problem {
    fn at(field: &'static str, text: impl Into<String>) -> Problem {
        Problem {
            field: Some(field),
            text: text.into(),
        }
    }
    fn form(text: impl Into<String>) -> Problem {
        Problem {
            field: None,
            text: text.into(),
        }
    }
}

/// Who is writing, for whom, and when.
#[derive(Debug, Clone)]
pub struct Context {
    pub patient: String,
    /// `Practitioner/…`, the person the account stands for.
    pub author: Option<String>,
    pub organization: Option<String>,
    /// Now, as a FHIR instant.
    pub now: String,
    pub medications: Vec<Medication>,
}

/// One resource to create, and which field each part of it came from.
#[derive(Debug)]
pub struct Planned {
    pub resource: Value,
    /// `(element, field)`: an issue at the resource's `element` (or inside it) belongs
    /// to `field`.
    pub parts: Vec<(&'static str, &'static str)>,
    /// The field of an issue at no listed element.
    pub field: &'static str,
}

/// The form's own checks: required fields filled, texts within their box.
fn completeness(spec: &FormSpec, values: &Values) -> Vec<Problem> {
    let mut problems = Vec::new();
    for f in spec.fields {
        let v = values.get(f.name);
        if f.required && v.is_empty() {
            let what = match f.kind {
                Kind::Choice(_) | Kind::Medication => "Choose",
                _ => "Enter",
            };
            problems.push(Problem::at(
                f.name,
                format!("{what} the {}.", f.label.to_lowercase()),
            ));
        } else if v.chars().count() > f.max_chars {
            problems.push(Problem::at(
                f.name,
                format!("Keep it under {} characters.", f.max_chars),
            ));
        }
    }
    problems
}

/// A typed number as FHIR JSON: a number when it reads as a FHIR decimal, else the text
/// as typed (which `records` refuses, naming the element).
fn number_value(s: &str) -> Value {
    let decimal = {
        let t = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        !int.is_empty()
            && int.chars().all(|c| c.is_ascii_digit())
            && (int == "0" || !int.starts_with('0'))
            && (!t.contains('.') || (!frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit())))
    };
    if decimal {
        if let Ok(n) = serde_json::from_str::<serde_json::Number>(s) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_owned())
}

fn reference(r: &str) -> Value {
    json!({ "reference": r })
}

fn loinc(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display})
}

fn quantity(value: &str, unit: &str, ucum: &str) -> Value {
    json!({"value": number_value(value), "unit": unit, "system": "http://unitsofmeasure.org", "code": ucum})
}

/// The resources `values` make, and the form's own problems with them (the resources
/// are planned even then, so that `records`' refusals of the other fields can be shown
/// at the same time).
pub fn plan(spec: &FormSpec, values: &Values, ctx: &Context) -> (Vec<Planned>, Vec<Problem>) {
    let mut problems = completeness(spec, values);
    let subject = reference(&format!("Patient/{}", ctx.patient));
    let author = ctx.author.as_deref().map(reference);
    let v = |n: &str| values.get(n);
    let mut planned = Vec::new();
    match spec.key {
        "vital-signs" => {
            let vital = |code: &str, display: &str, value: Value| {
                let mut o = json!({
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs", "display": "Vital Signs"}], "text": "Vital signs"}],
                    "code": loinc(code, display),
                    "subject": subject,
                    "effectiveDateTime": ctx.now,
                    "issued": ctx.now,
                });
                if let Some(a) = &author {
                    o["performer"] = json!([a]);
                }
                if let (Some(m), Value::Object(extra)) = (o.as_object_mut(), value) {
                    m.extend(extra);
                }
                o
            };
            let (sys, dia) = (v("systolic"), v("diastolic"));
            match (sys.is_empty(), dia.is_empty()) {
                (false, false) => planned.push(Planned {
                    resource: vital(
                        "85354-9",
                        "Blood pressure",
                        json!({"component": [
                            {"code": loinc("8480-6", "Systolic blood pressure"),
                             "valueQuantity": quantity(sys, "mmHg", "mm[Hg]")},
                            {"code": loinc("8462-4", "Diastolic blood pressure"),
                             "valueQuantity": quantity(dia, "mmHg", "mm[Hg]")},
                        ]}),
                    ),
                    parts: vec![("component[0]", "systolic"), ("component[1]", "diastolic")],
                    field: "systolic",
                }),
                (false, true) => problems.push(Problem::at(
                    "diastolic",
                    "Enter the diastolic pressure too (a blood pressure has both numbers).",
                )),
                (true, false) => problems.push(Problem::at(
                    "systolic",
                    "Enter the systolic pressure too (a blood pressure has both numbers).",
                )),
                (true, true) => {}
            }
            let singles: [(&'static str, &str, &str, &str, &str); 6] = [
                ("heart_rate", "8867-4", "Heart rate", "/min", "/min"),
                (
                    "respiratory_rate",
                    "9279-1",
                    "Respiratory rate",
                    "/min",
                    "/min",
                ),
                ("temperature", "8310-5", "Body temperature", "°C", "Cel"),
                (
                    "oxygen",
                    "2708-6",
                    "Oxygen saturation in Arterial blood",
                    "%",
                    "%",
                ),
                ("weight", "29463-7", "Body weight", "kg", "kg"),
                ("height", "8302-2", "Body height", "cm", "cm"),
            ];
            for (name, code, display, unit, ucum) in singles {
                if v(name).is_empty() {
                    continue;
                }
                planned.push(Planned {
                    resource: vital(
                        code,
                        display,
                        json!({"valueQuantity": quantity(v(name), unit, ucum)}),
                    ),
                    parts: vec![],
                    field: name,
                });
            }
            if planned.is_empty() && problems.is_empty() {
                problems.push(Problem::form("Enter at least one measurement."));
            }
        }
        "problem" => {
            let mut c = json!({
                "resourceType": "Condition",
                "clinicalStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active", "display": "Active"}]},
                "verificationStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed", "display": "Confirmed"}]},
                "category": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "problem-list-item", "display": "Problem List Item"}]}],
                "code": {"text": v("problem")},
                "subject": subject,
                "recordedDate": ctx.now,
            });
            if !v("onset").is_empty() {
                c["onsetDateTime"] = json!(v("onset"));
            }
            if !v("comment").is_empty() {
                c["note"] = json!([{"text": v("comment"), "time": ctx.now}]);
            }
            if let Some(a) = &author {
                c["recorder"] = a.clone();
            }
            planned.push(Planned {
                resource: c,
                parts: vec![("onset", "onset"), ("note", "comment")],
                field: "problem",
            });
        }
        "allergy" => {
            let mut a = json!({
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active", "display": "Active"}]},
                "verificationStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": "confirmed", "display": "Confirmed"}]},
                "code": {"text": v("substance")},
                "patient": subject,
                "recordedDate": ctx.now,
            });
            if !v("category").is_empty() {
                a["category"] = json!([v("category")]);
            }
            if !v("criticality").is_empty() {
                a["criticality"] = json!(v("criticality"));
            }
            if !v("reaction").is_empty() || !v("severity").is_empty() {
                let mut r = Map::new();
                if !v("reaction").is_empty() {
                    r.insert("manifestation".into(), json!([{"text": v("reaction")}]));
                }
                if !v("severity").is_empty() {
                    r.insert("severity".into(), json!(v("severity")));
                }
                a["reaction"] = json!([r]);
            }
            if let Some(au) = &author {
                a["recorder"] = au.clone();
            }
            planned.push(Planned {
                resource: a,
                parts: vec![
                    ("category", "category"),
                    ("criticality", "criticality"),
                    ("reaction[0].severity", "severity"),
                    ("reaction", "reaction"),
                ],
                field: "substance",
            });
        }
        "note" => {
            let kind = NOTE_TYPES
                .iter()
                .find(|(c, _)| *c == v("kind"))
                .map_or((v("kind"), v("kind")), |(c, d)| (*c, *d));
            let data = base64::engine::general_purpose::STANDARD.encode(v("text"));
            let title = if v("title").is_empty() {
                kind.1
            } else {
                v("title")
            };
            let mut d = json!({
                "resourceType": "DocumentReference",
                "status": "current",
                "docStatus": "final",
                "type": loinc(kind.0, kind.1),
                "category": [{"coding": [{
                    "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                    "code": "clinical-note", "display": "Clinical Note"}]}],
                "subject": subject,
                "date": ctx.now,
                "description": title,
                "content": [{"attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": data,
                    "title": title,
                    "creation": ctx.now,
                }}],
            });
            if let Some(a) = &author {
                d["author"] = json!([a]);
            }
            if let Some(o) = &ctx.organization {
                d["custodian"] = reference(&format!("Organization/{o}"));
            }
            planned.push(Planned {
                resource: d,
                parts: vec![("type", "kind"), ("description", "title")],
                field: "text",
            });
        }
        "prescription" => {
            let (chosen, typed) = (v("medication"), v("medication_text"));
            let concept = match (chosen.is_empty(), typed.is_empty()) {
                (false, false) => {
                    problems.push(Problem::at(
                        "medication_text",
                        "Choose from the list or type a medication, not both.",
                    ));
                    None
                }
                (true, true) => {
                    problems.push(Problem::at(
                        "medication",
                        "Choose a medication from the list, or type one below.",
                    ));
                    None
                }
                (false, true) => match ctx.medications.iter().find(|m| m.key == chosen) {
                    Some(m) => Some((m.concept.clone(), "medication")),
                    None => {
                        problems.push(Problem::at(
                            "medication",
                            "That medication is not in this patient's record; choose again.",
                        ));
                        None
                    }
                },
                (true, false) => Some((json!({"text": typed}), "medication_text")),
            };
            if let Some((concept, from)) = concept {
                let mut m = json!({
                    "resourceType": "MedicationRequest",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": concept,
                    "subject": subject,
                    "authoredOn": ctx.now,
                    "dosageInstruction": [{"text": v("dosage")}],
                });
                if !v("refills").is_empty() {
                    m["dispenseRequest"] =
                        json!({"numberOfRepeatsAllowed": number_value(v("refills"))});
                }
                if !v("reason").is_empty() {
                    m["reasonCode"] = json!([{"text": v("reason")}]);
                }
                if let Some(a) = &author {
                    m["requester"] = a.clone();
                }
                planned.push(Planned {
                    resource: m,
                    parts: vec![
                        ("medicationCodeableConcept", from),
                        ("dispenseRequest", "refills"),
                        ("reasonCode", "reason"),
                    ],
                    field: "dosage",
                });
            }
        }
        _ => problems.push(Problem::form("There is no such form.")),
    }
    (planned, problems)
}

/// `more` added to `problems`, at most one a field (the first stays: the form's own
/// words are plainer than a rule's).
pub fn merge(problems: &mut Vec<Problem>, more: Vec<Problem>) {
    for p in more {
        let known = problems
            .iter()
            .any(|q| q == &p || (p.field.is_some() && q.field == p.field));
        if !known {
            problems.push(p);
        }
    }
}

/// The planned resources as one transaction Bundle, with a Provenance saying who wrote
/// them for which organization (what the chart shows as where an entry came from).
pub fn transaction(planned: &[Planned], ctx: &Context) -> Value {
    let urls: Vec<String> = planned
        .iter()
        .map(|_| format!("urn:uuid:{}", uuid::Uuid::new_v4()))
        .collect();
    let mut entries: Vec<Value> = planned
        .iter()
        .zip(&urls)
        .map(|(p, url)| {
            json!({
                "fullUrl": url,
                "request": {"method": "POST", "url": p.resource["resourceType"]},
                "resource": p.resource,
            })
        })
        .collect();
    let organization = ctx
        .organization
        .as_deref()
        .map(|o| reference(&format!("Organization/{o}")));
    let who = ctx
        .author
        .as_deref()
        .map(reference)
        .or(organization.clone());
    if let (Some(who), false) = (who, planned.is_empty()) {
        let mut agent = json!({
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                "code": "author", "display": "Author"}]},
            "who": who,
        });
        if let (Some(o), true) = (organization, ctx.author.is_some()) {
            agent["onBehalfOf"] = o;
        }
        entries.push(json!({
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "request": {"method": "POST", "url": "Provenance"},
            "resource": {
                "resourceType": "Provenance",
                "target": urls.iter().map(|u| reference(u)).collect::<Vec<_>>(),
                "recorded": ctx.now,
                "activity": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "CREATE", "display": "create"}]},
                "agent": [agent],
            },
        }));
    }
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// Every content refusal `records` has for the planned resources, as it would name them
/// in a transaction (`Bundle.entry[i].resource.…`): all fields at once, where the
/// transaction itself stops at the first entry it refuses.
pub fn content_issues(records: &Records, planned: &[Planned]) -> Option<RecordsError> {
    let issues: Vec<oxehr_fhir::Issue> = planned
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            records
                .content_issues(&p.resource)
                .into_iter()
                .map(move |mut issue| {
                    issue.expression = issue
                        .expression
                        .iter()
                        .map(|x| match x.split_once('.') {
                            Some((_, rest)) => format!("Bundle.entry[{i}].resource.{rest}"),
                            None => format!("Bundle.entry[{i}].resource"),
                        })
                        .collect();
                    issue
                })
        })
        .collect();
    (!issues.is_empty()).then_some(RecordsError::Invalid(issues))
}

/// Writes the planned resources (and their Provenance) as `who`, all or none; what was
/// created.
pub fn write(
    records: &Records,
    who: &Caller,
    planned: &[Planned],
    ctx: &Context,
) -> Result<Vec<oxehr_records::StoredResource>, RecordsError> {
    let (_, outcomes) = records.bundle(who, transaction(planned, ctx))?;
    Ok(outcomes
        .into_iter()
        .filter_map(|o| match o {
            EntryOutcome::Created(r) => Some(r),
            _ => None,
        })
        .collect())
}

/// `records`' refusal of a form's resources in plain words, each next to the field its
/// expression names (`Bundle.entry[i].resource.<element>`), else about the form.
pub fn explain(spec: &FormSpec, planned: &[Planned], e: &RecordsError) -> Vec<Problem> {
    let RecordsError::Invalid(issues) = e else {
        return vec![Problem::form(match e.category() {
            oxehr_records::Category::Busy => {
                "oxehr is busy right now. Nothing was saved; try again in a moment."
            }
            _ => "This could not be saved. Nothing was saved; the problem was logged.",
        })];
    };
    let mut out: Vec<Problem> = Vec::new();
    for issue in issues {
        let field = issue.expression.iter().find_map(|x| field_of(planned, x));
        let problem = match field.and_then(|f| spec.fields.iter().find(|s| s.name == f)) {
            Some(f) => Problem::at(f.name, plain(f, issue.code)),
            None => Problem::form(format!("This could not be saved: {}", issue.diagnostics)),
        };
        if !out.contains(&problem) {
            out.push(problem);
        }
    }
    if out.is_empty() {
        out.push(Problem::form("This could not be saved."));
    }
    out
}

/// The field an issue's expression points into.
fn field_of(planned: &[Planned], expression: &str) -> Option<&'static str> {
    let rest = expression.strip_prefix("Bundle.entry[")?;
    let (index, rest) = rest.split_once(']')?;
    let p = planned.get(index.parse::<usize>().ok()?)?;
    let element = rest
        .strip_prefix(".resource")
        .map(|r| r.strip_prefix('.').unwrap_or(r))
        .unwrap_or("");
    let inside = |prefix: &str| {
        element == prefix
            || element
                .strip_prefix(prefix)
                .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
    };
    Some(
        p.parts
            .iter()
            .find(|(prefix, _)| inside(prefix))
            .map_or(p.field, |(_, f)| *f),
    )
}

/// What a field's issue means to the person who typed it.
fn plain(f: &FieldSpec, code: IssueCode) -> String {
    match (code, f.kind) {
        (IssueCode::Required, _) => format!("Enter the {}.", f.label.to_lowercase()),
        (IssueCode::TooLong, _) => "This is too long to store.".to_owned(),
        (_, Kind::Number) => "Enter a number, such as 72 or 36.6.".to_owned(),
        (_, Kind::WholeNumber) => "Enter a whole number, such as 0 or 2.".to_owned(),
        (_, Kind::Date) => "Enter a date as year-month-day, such as 2024-03-15.".to_owned(),
        (_, Kind::Choice(_)) | (_, Kind::Medication) => {
            "Choose one of the options listed.".to_owned()
        }
        _ => "This cannot be stored as it is; check what you typed.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            patient: "p1".into(),
            author: Some("Practitioner/dr".into()),
            organization: Some("org".into()),
            now: "2026-12-06T10:00:00Z".into(),
            medications: vec![Medication {
                key: "http://www.nlm.nih.gov/research/umls/rxnorm|314076".into(),
                label: "lisinopril 10 MG Oral Tablet".into(),
                concept: json!({"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076", "display": "lisinopril 10 MG Oral Tablet"}]}),
            }],
        }
    }

    fn ok((planned, problems): (Vec<Planned>, Vec<Problem>)) -> Vec<Planned> {
        assert!(problems.is_empty(), "{problems:?}");
        planned
    }

    fn values(pairs: &[(&str, &str)]) -> Values {
        Values(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn numbers_are_numbers_only_when_they_read_as_fhir_decimals() {
        for ok in ["0", "72", "36.6", "-1.50", "120"] {
            assert!(number_value(ok).is_number(), "{ok}");
        }
        // FHIR decimals have no leading zeros, no bare point, no exponent-less words.
        for text in ["abc", "07", "1.", ".5", "1,5", "12 kg", "NaN", ""] {
            assert_eq!(number_value(text), Value::String(text.into()), "{text}");
        }
        // The digits as typed are kept (precision matters in FHIR decimals).
        assert_eq!(number_value("36.60").to_string(), "36.60");
    }

    #[test]
    fn blood_pressure_needs_both_numbers() {
        let spec = form_spec("vital-signs").unwrap();
        let err = plan(spec, &values(&[("systolic", "120")]), &ctx()).1;
        assert_eq!(err[0].field, Some("diastolic"));
        let err = plan(spec, &values(&[]), &ctx()).1;
        assert_eq!(err, vec![Problem::form("Enter at least one measurement.")]);
        let ok = ok(plan(
            spec,
            &values(&[("systolic", "120"), ("diastolic", "80"), ("weight", "70.5")]),
            &ctx(),
        ));
        assert_eq!(ok.len(), 2);
        let bp = &ok[0].resource;
        assert_eq!(bp["code"]["coding"][0]["code"], "85354-9");
        assert_eq!(bp["component"][0]["valueQuantity"]["value"], 120);
        assert_eq!(bp["component"][1]["valueQuantity"]["code"], "mm[Hg]");
        assert_eq!(ok[1].resource["valueQuantity"]["value"], 70.5);
        assert_eq!(ok[1].resource["subject"]["reference"], "Patient/p1");
        assert_eq!(
            ok[1].resource["performer"][0]["reference"],
            "Practitioner/dr"
        );
    }

    #[test]
    fn an_issue_lands_on_the_field_its_expression_names() {
        let spec = form_spec("vital-signs").unwrap();
        let planned = ok(plan(
            spec,
            &values(&[
                ("systolic", "120"),
                ("diastolic", "x"),
                ("heart_rate", "fast"),
            ]),
            &ctx(),
        ));
        let at = |x: &str| field_of(&planned, x);
        assert_eq!(
            at("Bundle.entry[0].resource.component[1].valueQuantity.value"),
            Some("diastolic")
        );
        assert_eq!(
            at("Bundle.entry[0].resource.component[0].valueQuantity.value"),
            Some("systolic")
        );
        assert_eq!(
            at("Bundle.entry[1].resource.valueQuantity.value"),
            Some("heart_rate")
        );
        assert_eq!(at("Bundle.entry[2].resource"), None);
        assert_eq!(at("Patient.name"), None);
        // A prefix matches whole elements only.
        let allergy = form_spec("allergy").unwrap();
        let planned = ok(plan(
            allergy,
            &values(&[("substance", "Peanut"), ("severity", "severe")]),
            &ctx(),
        ));
        assert_eq!(
            field_of(&planned, "Bundle.entry[0].resource.reaction[0].severity"),
            Some("severity")
        );
        assert_eq!(
            field_of(
                &planned,
                "Bundle.entry[0].resource.reaction[0].manifestation"
            ),
            Some("reaction")
        );
        assert_eq!(
            field_of(&planned, "Bundle.entry[0].resource.criticalityX"),
            Some("substance")
        );
    }

    #[test]
    fn a_prescription_is_coded_from_the_record_or_free_text() {
        let spec = form_spec("prescription").unwrap();
        let key = ctx().medications[0].key.clone();
        let coded = ok(plan(
            spec,
            &values(&[
                ("medication", &key),
                ("dosage", "1 tablet daily"),
                ("refills", "2"),
            ]),
            &ctx(),
        ));
        let m = &coded[0].resource;
        assert_eq!(
            m["medicationCodeableConcept"]["coding"][0]["code"],
            "314076"
        );
        assert_eq!(m["dispenseRequest"]["numberOfRepeatsAllowed"], 2);
        assert_eq!(m["requester"]["reference"], "Practitioner/dr");
        let free = ok(plan(
            spec,
            &values(&[("medication_text", "Amoxicillin 500 mg"), ("dosage", "tid")]),
            &ctx(),
        ));
        assert_eq!(
            free[0].resource["medicationCodeableConcept"],
            json!({"text": "Amoxicillin 500 mg"})
        );
        // A posted code that is not in the record is not taken on trust.
        let err = plan(
            spec,
            &values(&[("medication", "http://x|1"), ("dosage", "d")]),
            &ctx(),
        )
        .1;
        assert_eq!(err[0].field, Some("medication"));
        let err = plan(spec, &values(&[("dosage", "d")]), &ctx()).1;
        assert_eq!(err[0].field, Some("medication"));
    }

    #[test]
    fn required_and_long_fields_are_the_forms_own_checks() {
        let spec = form_spec("note").unwrap();
        let err = plan(spec, &values(&[("kind", "11506-3")]), &ctx()).1;
        assert_eq!(err, vec![Problem::at("text", "Enter the note.")]);
        let long = "x".repeat(201);
        let err = plan(
            form_spec("problem").unwrap(),
            &values(&[("problem", &long)]),
            &ctx(),
        )
        .1;
        assert_eq!(err[0].field, Some("problem"));
        let ok = ok(plan(
            spec,
            &values(&[("kind", "11506-3"), ("text", "Seen today. Doing well.")]),
            &ctx(),
        ));
        let d = &ok[0].resource;
        let data = d["content"][0]["attachment"]["data"].as_str().unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap(),
            b"Seen today. Doing well."
        );
        assert_eq!(d["custodian"]["reference"], "Organization/org");
        assert_eq!(d["description"], "Progress note");
    }
}
