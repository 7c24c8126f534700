//! What the chart shows, read through `oxehr-records` as the signed-in person: the
//! patient list, the chart summary and its sections. Every read is the records layer's
//! (its access policy, its audit records); a record the person may not see is not shown,
//! and a patient outside their care leads to the break-the-glass form instead of data.
//!
//! Each entry says where it came from: the organization of its Provenance if one names
//! it, else the `serviceProvider` of its encounter, else its `meta.source`.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use oxehr_auth::Caller;
use oxehr_records::StoredResource;
use oxehr_records::{Category, Records, RecordsError, SearchPage};

use crate::display;

/// How many entries a section of the summary shows before "show all".
pub const SUMMARY_ROWS: usize = 8;
/// The most a section's own page lists (it says so when there are more).
pub const SECTION_ROWS: usize = 200;
/// The most patients the list shows at once.
pub const LIST_ROWS: usize = 50;

/// One search as `who`: `rtype?pairs`, at most `limit` matches, with the exact total:
/// the pages show it to people ("12 more", "40 patients"), where the search API's
/// estimate above 1,000 matches would mislead.
pub fn search(
    records: &Records,
    who: &Caller,
    rtype: &str,
    pairs: &[(&str, String)],
    limit: usize,
) -> Result<SearchPage, RecordsError> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .chain([
            ("_count".to_owned(), limit.to_string()),
            ("_total".to_owned(), "accurate".to_owned()),
        ])
        .collect();
    let q = oxehr_records::query::parse(&[rtype.to_owned()], &pairs, false, None)?;
    records.search(who, &q, limit)
}

/// A row of the patient list.
#[derive(Debug, Clone)]
pub struct PatientRow {
    pub id: String,
    pub name: String,
    pub birth_date: String,
    pub gender: String,
    pub identifier: String,
}

impl PatientRow {
    pub fn of(p: &Value) -> PatientRow {
        PatientRow {
            id: p["id"].as_str().unwrap_or_default().to_owned(),
            name: display::person_name(p),
            birth_date: p["birthDate"]
                .as_str()
                .map(display::date)
                .unwrap_or_default(),
            gender: p["gender"].as_str().map(capitalize).unwrap_or_default(),
            identifier: medical_record_number(p).unwrap_or_default(),
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The patient's medical record number: the identifier typed `MR`, else the first.
pub fn medical_record_number(p: &Value) -> Option<String> {
    let ids = p["identifier"].as_array()?;
    let is_mr = |i: &&Value| {
        i["type"]["coding"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["code"] == "MR"))
    };
    ids.iter()
        .find(is_mr)
        .or_else(|| ids.first())
        .and_then(|i| i["value"].as_str())
        .map(str::to_owned)
}

/// What a patient search form asks (POST, so nothing of it is in a URL).
#[derive(Debug, Default, Clone)]
pub struct PatientSearch {
    pub name: String,
    pub birth_date: String,
    pub identifier: String,
}

impl PatientSearch {
    pub fn is_empty(&self) -> bool {
        self.name.trim().is_empty()
            && self.birth_date.trim().is_empty()
            && self.identifier.trim().is_empty()
    }

    /// The search parameters: every word of the name must match a name (`name` matches
    /// the start of any part), the birth date exactly, the identifier's value exactly.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut p: Vec<(&'static str, String)> = self
            .name
            .split_whitespace()
            .take(4)
            .map(|w| ("name", w.to_owned()))
            .collect();
        if !self.birth_date.trim().is_empty() {
            p.push(("birthdate", self.birth_date.trim().to_owned()));
        }
        if !self.identifier.trim().is_empty() {
            // A bare value matches in any system; `|` in it is taken literally.
            p.push(("identifier", self.identifier.trim().replace('|', "\\|")));
        }
        p
    }
}

/// One line of a chart section.
#[derive(Debug, Clone)]
pub struct Entry {
    pub what: String,
    pub detail: String,
    pub date: String,
    pub from: String,
    /// A trend to open, for results and vital signs (`system|code`).
    pub trend: Option<String>,
    /// A note or report to open: its id.
    pub open: Option<String>,
}

/// A section of the summary: its entries, and how many there are in all.
#[derive(Debug, Clone)]
pub struct Section {
    pub key: &'static str,
    pub title: &'static str,
    pub empty: &'static str,
    pub entries: Vec<Entry>,
    pub total: usize,
}

impl Section {
    pub fn more(&self) -> usize {
        self.total.saturating_sub(self.entries.len())
    }
}

/// The sections of a chart, in the order the summary shows them.
pub struct SectionSpec {
    pub key: &'static str,
    pub title: &'static str,
    pub empty: &'static str,
    rtype: &'static str,
    filter: &'static [(&'static str, &'static str)],
    sort: &'static str,
    /// Results and vital signs: the newest of each kind.
    latest_per_code: bool,
}

pub const SECTIONS: &[SectionSpec] = &[
    SectionSpec {
        key: "problems",
        title: "Active problems",
        empty: "No active problems recorded.",
        rtype: "Condition",
        filter: &[("clinical-status", "active,recurrence,relapse")],
        sort: "-onset-date",
        latest_per_code: false,
    },
    SectionSpec {
        key: "medications",
        title: "Active medications",
        empty: "No active medications recorded.",
        rtype: "MedicationRequest",
        filter: &[("status", "active,on-hold")],
        sort: "-authoredon",
        latest_per_code: false,
    },
    SectionSpec {
        key: "allergies",
        title: "Allergies",
        empty: "No allergies recorded.",
        rtype: "AllergyIntolerance",
        filter: &[],
        sort: "-date",
        latest_per_code: false,
    },
    SectionSpec {
        key: "immunizations",
        title: "Immunizations",
        empty: "No immunizations recorded.",
        rtype: "Immunization",
        filter: &[],
        sort: "-date",
        latest_per_code: false,
    },
    SectionSpec {
        key: "encounters",
        title: "Recent encounters",
        empty: "No encounters recorded.",
        rtype: "Encounter",
        filter: &[],
        sort: "-date",
        latest_per_code: false,
    },
    SectionSpec {
        key: "results",
        title: "Latest results",
        empty: "No laboratory results recorded.",
        rtype: "Observation",
        filter: &[("category", "laboratory")],
        sort: "-date",
        latest_per_code: true,
    },
    SectionSpec {
        key: "vitals",
        title: "Vital signs",
        empty: "No vital signs recorded.",
        rtype: "Observation",
        filter: &[("category", "vital-signs")],
        sort: "-date",
        latest_per_code: true,
    },
    SectionSpec {
        key: "reports",
        title: "Reports",
        empty: "No reports recorded.",
        rtype: "DiagnosticReport",
        filter: &[],
        sort: "-date",
        latest_per_code: false,
    },
    SectionSpec {
        key: "documents",
        title: "Notes",
        empty: "No notes recorded.",
        rtype: "DocumentReference",
        filter: &[],
        sort: "-date",
        latest_per_code: false,
    },
];

pub fn section_spec(key: &str) -> Option<&'static SectionSpec> {
    SECTIONS.iter().find(|s| s.key == key)
}

/// The patient's own record, or why it cannot be shown.
pub fn patient(records: &Records, who: &Caller, id: &str) -> Result<Value, RecordsError> {
    let rtype = oxehr_fhir::ResourceType::parse("Patient")
        .ok_or_else(|| RecordsError::Internal("Patient type".into()))?;
    let rid = oxehr_fhir::ResourceId::parse(id)
        .ok_or_else(|| RecordsError::NotFound(format!("Patient/{id}")))?;
    let r = records.read(who, &rtype, &rid)?;
    body(&r).ok_or_else(|| RecordsError::Internal("stored body".into()))
}

pub fn body(r: &StoredResource) -> Option<Value> {
    serde_json::from_str(r.body.as_deref()?).ok()
}

/// One section of `patient`'s chart: at most `rows` entries (for a latest-per-code
/// section, `rows` kinds), and how many there are in all.
pub fn section(
    records: &Records,
    who: &Caller,
    patient: &str,
    spec: &SectionSpec,
    rows: usize,
) -> Result<Section, RecordsError> {
    sections(records, who, patient, &[spec], rows)?
        .pop()
        .ok_or_else(|| RecordsError::Internal("no section".into()))
}

/// Sections of `patient`'s chart, each as [`section`] gives it, with one look-up of
/// where all their entries came from (rather than one a section).
pub fn sections(
    records: &Records,
    who: &Caller,
    patient: &str,
    specs: &[&SectionSpec],
    rows: usize,
) -> Result<Vec<Section>, RecordsError> {
    let shown = specs
        .iter()
        .map(|spec| shown(records, who, patient, spec, rows))
        .collect::<Result<Vec<_>, _>>()?;
    let sources = Sources::of(records, who, shown.iter().flat_map(|(rs, _)| rs))?;
    Ok(specs
        .iter()
        .zip(shown)
        .map(|(spec, (resources, total))| Section {
            key: spec.key,
            title: spec.title,
            empty: spec.empty,
            entries: resources.iter().map(|r| entry(spec, r, &sources)).collect(),
            total,
        })
        .collect())
}

/// What a section shows (at most `rows` resources, newest first) and how many there are
/// in all.
fn shown(
    records: &Records,
    who: &Caller,
    patient: &str,
    spec: &SectionSpec,
    rows: usize,
) -> Result<(Vec<Value>, usize), RecordsError> {
    let mut pairs: Vec<(&str, String)> = vec![
        ("patient", patient.to_owned()),
        ("_sort", spec.sort.to_owned()),
    ];
    pairs.extend(spec.filter.iter().map(|(k, v)| (*k, (*v).to_owned())));
    // Latest per code: read the newest observations and keep the first of each code.
    let fetch = if spec.latest_per_code {
        SECTION_ROWS
    } else {
        rows
    };
    let page = search(records, who, spec.rtype, &pairs, fetch)?;
    let resources: Vec<Value> = page.matches.iter().filter_map(body).collect();
    if spec.latest_per_code {
        // Newest first, as read.
        let mut seen = BTreeSet::new();
        let kinds: Vec<Value> = resources
            .into_iter()
            .filter(|r| seen.insert(code_key(&r["code"])))
            .collect();
        let total = kinds.len();
        Ok((kinds.into_iter().take(rows).collect(), total))
    } else {
        let total = page
            .total
            .and_then(|t| usize::try_from(t).ok())
            .unwrap_or(resources.len());
        Ok((resources.into_iter().take(rows).collect(), total))
    }
}

/// Codes that name the same measurement: the blood pressure panel is LOINC 85354-9 in
/// the FHIR vital signs profile and 55284-4 in much recorded data (Synthea's among
/// them). The first of each list is the key the chart uses.
const SAME_MEASUREMENT: &[&[&str]] = &[&["http://loinc.org|85354-9", "http://loinc.org|55284-4"]];

/// Every code of the measurement `key` names (itself alone for most).
pub fn same_measurement(key: &str) -> Vec<String> {
    SAME_MEASUREMENT
        .iter()
        .find(|codes| codes.contains(&key))
        .map(|codes| codes.iter().map(|c| (*c).to_owned()).collect())
        .unwrap_or_else(|| vec![key.to_owned()])
}

/// `system|code` of a CodeableConcept's first coding (or its text); codes of the same
/// measurement share the first one's key.
pub fn code_key(c: &Value) -> String {
    let key = raw_code_key(c);
    SAME_MEASUREMENT
        .iter()
        .find(|codes| codes.contains(&key.as_str()))
        .map_or(key, |codes| codes[0].to_owned())
}

fn raw_code_key(c: &Value) -> String {
    c["coding"]
        .as_array()
        .and_then(|cs| cs.first())
        .map(|c| {
            format!(
                "{}|{}",
                c["system"].as_str().unwrap_or(""),
                c["code"].as_str().unwrap_or("")
            )
        })
        .or_else(|| c["text"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn entry(spec: &SectionSpec, r: &Value, sources: &Sources) -> Entry {
    let s = |p: &str| r.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let (what, detail, date) = match spec.rtype {
        "Condition" => (
            display::concept(&r["code"]),
            r["clinicalStatus"]["coding"][0]["code"]
                .as_str()
                .map(|c| format!("{}{}", c[..1].to_uppercase(), &c[1..])),
            s("/onsetDateTime").or_else(|| s("/recordedDate")),
        ),
        "MedicationRequest" => (
            display::concept(&r["medicationCodeableConcept"])
                .or_else(|| s("/medicationReference/display")),
            r["dosageInstruction"][0]["text"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| s("/status").map(|st| capitalize(&st))),
            s("/authoredOn"),
        ),
        "AllergyIntolerance" => (
            display::concept(&r["code"]),
            r["reaction"][0]["manifestation"][0]
                .as_object()
                .and_then(|_| display::concept(&r["reaction"][0]["manifestation"][0]))
                .or_else(|| s("/criticality").map(|c| format!("Criticality: {c}"))),
            s("/recordedDate").or_else(|| s("/onsetDateTime")),
        ),
        "Immunization" => (
            display::concept(&r["vaccineCode"]),
            s("/status").map(|st| capitalize(&st)),
            s("/occurrenceDateTime"),
        ),
        "Encounter" => (
            r["type"][0]
                .as_object()
                .and_then(|_| display::concept(&r["type"][0]))
                .or_else(|| s("/class/display"))
                .or_else(|| s("/class/code")),
            r["reasonCode"][0]
                .as_object()
                .and_then(|_| display::concept(&r["reasonCode"][0])),
            s("/period/start"),
        ),
        "Observation" => (
            display::concept(&r["code"]),
            observation_value(r),
            s("/effectiveDateTime")
                .or_else(|| s("/effectivePeriod/start"))
                .or_else(|| s("/issued")),
        ),
        "DiagnosticReport" => (
            display::concept(&r["code"]),
            s("/conclusion"),
            s("/effectiveDateTime").or_else(|| s("/issued")),
        ),
        // Its title when it has one, and what kind of note it is.
        "DocumentReference" => {
            let kind = r["type"]
                .as_object()
                .and_then(|_| display::concept(&r["type"]));
            match s("/description").filter(|d| !d.trim().is_empty()) {
                Some(title) => {
                    let detail = kind.filter(|k| *k != title);
                    (Some(title), detail, s("/date"))
                }
                None => (kind, None, s("/date")),
            }
        }
        _ => (None, None, None),
    };
    Entry {
        what: what.unwrap_or_else(|| "(not described)".to_owned()),
        detail: detail.unwrap_or_default(),
        date: date.as_deref().map(display::date).unwrap_or_default(),
        from: sources.from(r),
        trend: (spec.rtype == "Observation")
            .then(|| code_key(&r["code"]))
            .filter(|k| k.contains('|') && !k.ends_with('|')),
        open: matches!(spec.rtype, "DiagnosticReport" | "DocumentReference")
            .then(|| r["id"].as_str().map(str::to_owned))
            .flatten(),
    }
}

/// An Observation's value as a person reads it: "72 /min", "120/80 mm[Hg]", a coded
/// answer's text, or a string.
pub fn observation_value(r: &Value) -> Option<String> {
    if let Some(q) = display::quantity(&r["valueQuantity"]) {
        return Some(q);
    }
    if r["valueCodeableConcept"].is_object() {
        return display::concept(&r["valueCodeableConcept"]);
    }
    if let Some(s) = r["valueString"].as_str() {
        return Some(s.to_owned());
    }
    let comps = r["component"].as_array()?;
    // Blood pressure reads systolic over diastolic whatever the components' order.
    let systolic_first = |c: &Value| -> u8 {
        match c["code"]["coding"][0]["code"].as_str() {
            Some("8480-6") => 0,
            Some("8462-4") => 1,
            _ => 2,
        }
    };
    let mut values: Vec<(u8, String, Option<String>)> = comps
        .iter()
        .filter_map(|c| {
            let v = c["valueQuantity"]["value"].as_f64()?;
            let unit = c["valueQuantity"]["unit"]
                .as_str()
                .or_else(|| c["valueQuantity"]["code"].as_str())
                .map(display::unit)
                .filter(|u| !u.is_empty());
            Some((systolic_first(c), display::number(v), unit))
        })
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by_key(|v| v.0);
    let unit = values[0].2.clone();
    let same_unit = values.iter().all(|(_, _, u)| *u == unit);
    let joined = values
        .iter()
        .map(|(_, v, _)| v.as_str())
        .collect::<Vec<_>>()
        .join("/");
    Some(match (same_unit, unit) {
        (true, Some(u)) => format!("{joined} {u}"),
        _ => joined,
    })
}

/// Where entries came from: Provenance first, then the encounter's service provider,
/// then `meta.source`.
pub struct Sources {
    /// `Type/id` → organization name, from Provenance.
    provenance: HashMap<String, String>,
    /// `Type/id` → what it came in (a message, a document), from Provenance's source
    /// entity.
    via: HashMap<String, String>,
    /// Encounter id → its service provider's name.
    encounters: HashMap<String, String>,
}

impl Sources {
    pub fn of<'a>(
        records: &Records,
        who: &Caller,
        resources: impl IntoIterator<Item = &'a Value>,
    ) -> Result<Sources, RecordsError> {
        let resources: Vec<&Value> = resources.into_iter().collect();
        let mut out = Sources {
            provenance: HashMap::new(),
            via: HashMap::new(),
            encounters: HashMap::new(),
        };
        if resources.is_empty() {
            return Ok(out);
        }
        let keys: Vec<String> = resources
            .iter()
            .filter_map(|r| {
                Some(format!(
                    "{}/{}",
                    r["resourceType"].as_str()?,
                    r["id"].as_str()?
                ))
            })
            .collect();
        let mut org_refs: HashMap<String, String> = HashMap::new();
        let mut named: HashMap<String, String> = HashMap::new();
        for chunk in keys.chunks(50) {
            let page = search(
                records,
                who,
                "Provenance",
                &[("target", chunk.join(","))],
                200,
            )?;
            for p in page.matches.iter().filter_map(body) {
                let Some(org) = provenance_org(&p) else {
                    continue;
                };
                let via = p["entity"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["role"] == "source")
                    .and_then(|e| e["what"]["display"].as_str());
                for t in p["target"].as_array().into_iter().flatten() {
                    if let Some(t) = t["reference"].as_str() {
                        if let Some(via) = via {
                            out.via.insert(t.to_owned(), via.to_owned());
                        }
                        org_refs.insert(t.to_owned(), org.0.clone());
                        if let Some(d) = &org.1 {
                            named.insert(org.0.clone(), d.clone());
                        }
                    }
                }
            }
        }
        let mut encounter_orgs: HashMap<String, String> = HashMap::new();
        let mut service_provider = |e: &Value| {
            let (Some(id), Some(r)) =
                (e["id"].as_str(), e["serviceProvider"]["reference"].as_str())
            else {
                return;
            };
            encounter_orgs.insert(id.to_owned(), r.to_owned());
            if let Some(d) = e["serviceProvider"]["display"].as_str() {
                named.insert(r.to_owned(), d.to_owned());
            }
        };
        // Encounters among the resources name their own service provider; the others'
        // encounters are read.
        let mut in_hand = BTreeSet::new();
        for e in resources
            .iter()
            .filter(|r| r["resourceType"] == "Encounter")
        {
            in_hand.extend(e["id"].as_str());
            service_provider(e);
        }
        let encounter_ids: Vec<String> = resources
            .iter()
            .filter_map(|r| {
                r["encounter"]["reference"]
                    .as_str()
                    .and_then(|e| e.strip_prefix("Encounter/"))
                    .filter(|e| !in_hand.contains(e))
                    .map(str::to_owned)
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in encounter_ids.chunks(50) {
            let page = search(records, who, "Encounter", &[("_id", chunk.join(","))], 100)?;
            for e in page.matches.iter().filter_map(body) {
                service_provider(&e);
            }
        }
        // Names of organizations not named in the references, read as `who`.
        let unnamed: Vec<String> = org_refs
            .values()
            .chain(encounter_orgs.values())
            .filter(|r| !named.contains_key(*r))
            .filter_map(|r| r.strip_prefix("Organization/").map(str::to_owned))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in unnamed.chunks(50) {
            let page = search(
                records,
                who,
                "Organization",
                &[("_id", chunk.join(","))],
                100,
            )?;
            for o in page.matches.iter().filter_map(body) {
                if let (Some(id), Some(n)) = (o["id"].as_str(), o["name"].as_str()) {
                    named.insert(format!("Organization/{id}"), n.to_owned());
                }
            }
        }
        let name_of = |r: &String| {
            named
                .get(r)
                .cloned()
                .unwrap_or_else(|| "an organization".into())
        };
        out.provenance = org_refs
            .iter()
            .map(|(k, v)| (k.clone(), name_of(v)))
            .collect();
        out.encounters = encounter_orgs
            .iter()
            .map(|(k, v)| (k.clone(), name_of(v)))
            .collect();
        Ok(out)
    }

    /// The organization an entry came from, in words.
    pub fn from(&self, r: &Value) -> String {
        let key = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or("")
        );
        if let Some(o) = self.provenance.get(&key) {
            return match self.via.get(&key) {
                Some(via) => format!("{o}, by {via}"),
                None => o.clone(),
            };
        }
        let encounter = if r["resourceType"] == "Encounter" {
            r["id"].as_str()
        } else {
            r["encounter"]["reference"]
                .as_str()
                .and_then(|e| e.strip_prefix("Encounter/"))
        };
        if let Some(o) = encounter.and_then(|e| self.encounters.get(e)) {
            return o.clone();
        }
        r["meta"]["source"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| "Not recorded".to_owned())
    }
}

/// The organization a Provenance names: an agent that is an Organization, or the
/// organization an agent acted for. (`Organization/id`, its display if given.)
fn provenance_org(p: &Value) -> Option<(String, Option<String>)> {
    p["agent"].as_array()?.iter().find_map(|a| {
        [&a["who"], &a["onBehalfOf"]].into_iter().find_map(|r| {
            let reference = r["reference"].as_str()?;
            reference.starts_with("Organization/").then(|| {
                (
                    reference.to_owned(),
                    r["display"].as_str().map(str::to_owned),
                )
            })
        })
    })
}

/// Whether an error means "this person may not see the record".
pub fn is_forbidden(e: &RecordsError) -> bool {
    e.category() == Category::Forbidden
}

/// The kinds of measurement (`system|code`, its words) of a latest-per-code section.
pub fn kinds(
    records: &Records,
    who: &Caller,
    patient: &str,
    spec: &SectionSpec,
) -> Result<Vec<(String, String)>, RecordsError> {
    let mut pairs: Vec<(&str, String)> = vec![
        ("patient", patient.to_owned()),
        ("_sort", spec.sort.to_owned()),
    ];
    pairs.extend(spec.filter.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let page = search(records, who, spec.rtype, &pairs, SECTION_ROWS)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for r in page.matches.iter().filter_map(body) {
        let key = code_key(&r["code"]);
        if key.contains('|') && !key.ends_with('|') && seen.insert(key.clone()) {
            out.push((key, display::concept(&r["code"]).unwrap_or_default()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_blood_pressure_panels_are_one_measurement() {
        let synthea = json!({"coding": [{"system": "http://loinc.org", "code": "55284-4"}]});
        let profile = json!({"coding": [{"system": "http://loinc.org", "code": "85354-9"}]});
        assert_eq!(code_key(&synthea), code_key(&profile));
        assert_eq!(
            same_measurement(&code_key(&synthea)),
            ["http://loinc.org|85354-9", "http://loinc.org|55284-4"]
        );
        let weight = json!({"coding": [{"system": "http://loinc.org", "code": "29463-7"}]});
        assert_eq!(code_key(&weight), "http://loinc.org|29463-7");
        assert_eq!(
            same_measurement("http://loinc.org|29463-7"),
            ["http://loinc.org|29463-7"]
        );
    }
}
