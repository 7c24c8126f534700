//! Reference parameters in every written form (`Type/id`, `id`, absolute URL, `:Type`),
//! chains of one, two and three links, reverse chains (`_has`, nested), and compartment
//! search. No reference in the Synthea data carries `.identifier` (conditional references
//! are resolved to literal ones on import), so `:identifier` is tested on the examples.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::data::{at, strs, Data};
use super::pick;
use super::run::{enc, Case};
use super::token::moderate_code;
use super::value::{date_range, norm, range_match, token_any};

fn refers(d: &Data, r: &Value, path: &str, to: &str) -> bool {
    d.targets(r, path).iter().any(|t| t == to)
}

fn plain(s: &str) -> bool {
    s.chars().all(|c| c.is_alphanumeric() || c == ' ')
}

/// The resources of `ty` grouped by the targets of their References at `path`.
fn by_target(d: &Data, ty: &str, path: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (k, r) in d.of(ty) {
        for t in d.targets(r, path) {
            m.entry(t).or_default().insert(k.clone());
        }
    }
    m
}

/// Normalized names and aliases of an Organization.
fn org_names(o: &Value) -> Vec<String> {
    strs(o, "name")
        .into_iter()
        .chain(strs(o, "alias"))
        .map(norm)
        .collect()
}

pub fn cases(d: &Data) -> Vec<Case> {
    let mut out = Vec::new();
    let n_pat = d.count("Patient");
    let obs_by_subject = by_target(d, "Observation", "subject");
    let obs_of = |p: &String| obs_by_subject.get(p).cloned().unwrap_or_default();

    // A patient with a middling number of Observations.
    let patients: Vec<String> = d.all("Patient").into_iter().collect();
    let pref = pick::middle(patients.iter(), 20, 120, |p| obs_of(p).len()).clone();
    let pid = pref.split_once('/').expect("Type/id").1.to_string();
    let theirs = obs_of(&pref);
    for (name, q) in [
        ("reference_type_and_id", format!("subject=Patient/{pid}")),
        ("reference_id_only", format!("subject={pid}")),
        (
            "reference_absolute_url",
            format!("subject={}", enc(&format!("{}/Patient/{pid}", d.base))),
        ),
        ("reference_type_modifier", format!("subject:Patient={pid}")),
        (
            "reference_patient_parameter",
            format!("patient=Patient/{pid}"),
        ),
        (
            "reference_patient_parameter_id_only",
            format!("patient={pid}"),
        ),
    ] {
        out.push(Case::set(
            name,
            format!("Observation?{q}&_count=50"),
            theirs.clone(),
        ));
    }
    out.push(
        Case::set(
            "reference_type_modifier_other_type_matches_nothing",
            format!("Observation?subject:Group={pid}"),
            BTreeSet::new(),
        )
        .trivial(),
    );
    out.push(
        Case::set(
            "reference_unknown_id_matches_nothing",
            "Observation?subject=Patient/no-such-patient",
            BTreeSet::new(),
        )
        .trivial(),
    );
    let enc_by_provider = by_target(d, "Encounter", "serviceProvider");
    let org = pick::middle(enc_by_provider.keys(), 5, 100, |o| {
        enc_by_provider[*o].len()
    })
    .clone();
    out.push(Case::set(
        "reference_service_provider",
        format!("Encounter?service-provider={org}&_count=50"),
        enc_by_provider[&org].clone(),
    ));

    // Chains: one link (with a type), one link to a date, two and three links.
    let families: BTreeMap<String, Vec<String>> = d
        .of("Patient")
        .map(|(k, p)| {
            (
                k.clone(),
                strs(p, "name.family").into_iter().map(norm).collect(),
            )
        })
        .collect();
    let chain_family = |f: &str| -> BTreeSet<String> {
        let f = norm(f);
        families
            .iter()
            .filter(|(_, fs)| fs.iter().any(|x| x.starts_with(&f)))
            .flat_map(|(p, _)| obs_of(p))
            .collect()
    };
    let names: BTreeSet<String> = d
        .of("Patient")
        .flat_map(|(_, p)| strs(p, "name.family"))
        .filter(|f| plain(f))
        .map(str::to_string)
        .collect();
    let fam = pick::middle(names.iter(), 20, 300, |f| chain_family(f).len()).clone();
    out.push(Case::set(
        "chain_subject_patient_family",
        format!(
            "Observation?subject:Patient.family={}&_count=100",
            enc(&fam)
        ),
        chain_family(&fam),
    ));
    let mut years: Vec<&str> = d
        .of("Patient")
        .filter_map(|(_, p)| p["birthDate"].as_str())
        .map(|b| &b[..4])
        .collect();
    years.sort();
    let year = years[years.len() / 3].to_string();
    let sy = date_range(&year).expect("year");
    out.push(Case::set(
        "chain_patient_birthdate",
        format!("Encounter?patient.birthdate=le{year}&_count=200"),
        d.select("Encounter", |e| {
            d.follow(e, "subject").iter().any(|p| {
                p["resourceType"] == "Patient"
                    && p["birthDate"]
                        .as_str()
                        .and_then(date_range)
                        .is_some_and(|t| range_match("le", sy, t))
            })
        }),
    ));
    // Observation → encounter → serviceProvider → names, computed once.
    let obs_orgs: BTreeMap<String, Vec<String>> = d
        .of("Observation")
        .map(|(k, o)| {
            let names = d
                .follow(o, "encounter")
                .into_iter()
                .flat_map(|e| d.follow(e, "serviceProvider"))
                .flat_map(org_names)
                .collect();
            (k.clone(), names)
        })
        .collect();
    let two_links = |q: &str| -> BTreeSet<String> {
        let q = norm(q);
        obs_orgs
            .iter()
            .filter(|(_, ns)| ns.iter().any(|n| n.starts_with(&q)))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let candidates: BTreeSet<String> = d
        .of("Organization")
        .flat_map(|(_, o)| strs(o, "name"))
        .filter(|s| plain(s) && s.len() >= 6)
        .map(|s| s.to_lowercase())
        .collect();
    let oname = pick::middle(candidates.iter(), 20, 400, |q| two_links(q).len()).clone();
    out.push(Case::set(
        "chain_two_links",
        format!(
            "Observation?encounter.service-provider.name={}&_count=100",
            enc(&oname)
        ),
        two_links(&oname),
    ));
    let dr_orgs: BTreeMap<String, Vec<String>> = d
        .of("DiagnosticReport")
        .map(|(k, r)| {
            let names = d
                .targets(r, "result")
                .iter()
                .filter_map(|o| obs_orgs.get(o))
                .flatten()
                .cloned()
                .collect();
            (k.clone(), names)
        })
        .collect();
    let three_links = |q: &str| -> BTreeSet<String> {
        let q = norm(q);
        dr_orgs
            .iter()
            .filter(|(_, ns)| ns.iter().any(|n| n.starts_with(&q)))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let oname3 = pick::middle(candidates.iter(), 3, 100, |q| three_links(q).len()).clone();
    out.push(Case::set(
        "chain_three_links",
        format!(
            "DiagnosticReport?result.encounter.service-provider.name={}&_count=50",
            enc(&oname3)
        ),
        three_links(&oname3),
    ));

    // Reverse chains.
    let mut per_code = BTreeMap::<String, BTreeSet<String>>::new();
    for (_, o) in d.of("Observation") {
        let subjects: Vec<String> = d
            .targets(o, "subject")
            .into_iter()
            .filter(|t| t.starts_with("Patient/"))
            .collect();
        for c in at(o, "code.coding") {
            if let Some(code) = c["code"].as_str() {
                per_code
                    .entry(code.to_string())
                    .or_default()
                    .extend(subjects.iter().cloned());
            }
        }
    }
    let code = per_code
        .iter()
        .find(|(_, ps)| ps.len() * 5 >= n_pat && ps.len() * 5 <= n_pat * 4)
        .map(|(c, _)| c.clone())
        .expect("a code some patients have");
    out.push(Case::set(
        "has_observation_code",
        format!("Patient?_has:Observation:patient:code={code}"),
        per_code[&code].clone(),
    ));
    let snomed = moderate_code(d, "Condition", "code", 10, 60);
    let encs_with_condition: BTreeSet<String> = d
        .of("Condition")
        .filter(|(_, c)| at(c, "code").iter().any(|v| token_any(&snomed, v)))
        .flat_map(|(_, c)| d.targets(c, "encounter"))
        .collect();
    let nested: BTreeSet<String> = enc_by_provider
        .iter()
        .filter(|(o, es)| o.starts_with("Organization/") && !es.is_disjoint(&encs_with_condition))
        .map(|(o, _)| o.clone())
        .collect();
    out.push(Case::set(
        "has_nested",
        format!(
            "Organization?_has:Encounter:service-provider:_has:Condition:encounter:code={snomed}"
        ),
        nested,
    ));

    // Compartment: Observations whose subject or performer is the patient.
    let in_compartment = d.select("Observation", |o| {
        (refers(d, o, "subject", &pref) || refers(d, o, "performer", &pref))
            && at(o, "code").iter().any(|c| token_any(&code, c))
    });
    out.push(Case::set(
        "compartment_patient_observations_with_code",
        format!("Patient/{pid}/Observation?code={code}"),
        in_compartment,
    ));
    let conditions = d.select("Condition", |c| {
        refers(d, c, "subject", &pref) || refers(d, c, "asserter", &pref)
    });
    out.push(Case::set(
        "compartment_patient_conditions",
        format!("Patient/{pid}/Condition"),
        conditions,
    ));
    out
}
