//! Result parameters: `_include` (typed, `:iterate`, `*`), `_revinclude`, `_sort` on
//! several keys, `_count` with paging through every page and back, `_total`,
//! `_summary=count`, `_elements`; system-level and `POST _search` forms; and the errors a
//! malformed query must get.

use std::collections::BTreeSet;

use serde_json::Value;

use super::data::{at, Data};
use super::run::{enc, Case, Expect, Key, Method};
use super::token::moderate_code;
use super::value::{date_range, token_any};

fn with_code(d: &Data, ty: &str, code: &str) -> BTreeSet<String> {
    d.select(ty, |r| at(r, "code").iter().any(|c| token_any(code, c)))
}

fn targets_of(d: &Data, set: &BTreeSet<String>, paths: &[&str]) -> BTreeSet<String> {
    set.iter()
        .filter_map(|k| d.res.get(k))
        .flat_map(|r| paths.iter().flat_map(move |p| d.targets(r, p)))
        .filter(|t| d.res.contains_key(t))
        .collect()
}

fn date_key(v: Option<&str>) -> Option<Key> {
    v.and_then(date_range).map(|r| Key::T(r.0))
}

pub fn cases(d: &Data) -> Vec<Case> {
    let mut out = Vec::new();
    let loinc = moderate_code(d, "Observation", "code", 20, 60);
    let obs = with_code(d, "Observation", &loinc);

    // _include, _revinclude, :iterate, *.
    out.push(Case::new(
        "include_subject",
        format!("Observation?code={loinc}&_include=Observation:subject&_count=10"),
        Expect::Include {
            matches: obs.clone(),
            included: targets_of(d, &obs, &["subject"]),
        },
    ));
    let encounters = targets_of(d, &obs, &["encounter"]);
    out.push(Case::new(
        "include_typed",
        format!("Observation?code={loinc}&_include=Observation:encounter:Encounter&_count=10"),
        Expect::Include {
            matches: obs.clone(),
            included: encounters.clone(),
        },
    ));
    let mut iterated = encounters.clone();
    iterated.extend(targets_of(d, &encounters, &["serviceProvider"]));
    out.push(Case::new(
        "include_iterate",
        format!(
            "Observation?code={loinc}&_include=Observation:encounter&_include:iterate=Encounter:service-provider&_count=10"
        ),
        Expect::Include {
            matches: obs.clone(),
            included: iterated,
        },
    ));
    let snomed = moderate_code(d, "Condition", "code", 10, 60);
    let conds = with_code(d, "Condition", &snomed);
    // Condition's reference parameters: subject/patient, encounter, asserter, evidence-detail.
    let all_refs = targets_of(
        d,
        &conds,
        &["subject", "encounter", "asserter", "evidence.detail"],
    );
    for (name, inc) in [
        ("include_wildcard", "*"),
        ("include_type_wildcard", "Condition:*"),
    ] {
        out.push(Case::new(
            name,
            format!("Condition?code={snomed}&_include={inc}"),
            Expect::Include {
                matches: conds.clone(),
                included: all_refs.clone(),
            },
        ));
    }
    let family = d
        .of("Patient")
        .filter_map(|(_, p)| at(p, "name.family").first().and_then(|f| f.as_str()))
        .nth(10)
        .expect("a family")
        .to_string();
    let pats = d.select("Patient", |p| {
        at(p, "name.family")
            .iter()
            .filter_map(|f| f.as_str())
            .any(|f| super::value::starts(f, &family))
    });
    let rev = d.select("Observation", |o| {
        d.targets(o, "subject").iter().any(|t| pats.contains(t))
    });
    out.push(Case::new(
        "revinclude",
        format!(
            "Patient?family={}&_revinclude=Observation:subject",
            enc(&family)
        ),
        Expect::Include {
            matches: pats,
            included: rev,
        },
    ));

    // _sort.
    let birth = |p: &Value| date_key(p["birthDate"].as_str());
    out.push(
        Case::new(
            "sort_ascending",
            "Patient?_sort=birthdate&_count=7",
            Expect::Sorted {
                matches: d.all("Patient"),
                key: Box::new(move |p| vec![birth(p)]),
                desc: vec![false],
            },
        )
        .trivial(),
    );
    out.push(
        Case::new(
            "sort_descending",
            "Patient?_sort=-birthdate&_count=7",
            Expect::Sorted {
                matches: d.all("Patient"),
                key: Box::new(move |p| vec![birth(p)]),
                desc: vec![true],
            },
        )
        .trivial(),
    );
    out.push(
        Case::new(
            "sort_two_keys",
            "Patient?_sort=gender,-birthdate&_count=7",
            Expect::Sorted {
                matches: d.all("Patient"),
                key: Box::new(move |p| {
                    vec![p["gender"].as_str().map(|g| Key::S(g.into())), birth(p)]
                }),
                desc: vec![false, true],
            },
        )
        .trivial(),
    );
    // Some Conditions have abatement dates and some none; those without come last.
    for (name, sort, desc) in [
        ("sort_missing_values_last", "abatement-date", false),
        (
            "sort_descending_missing_values_last",
            "-abatement-date",
            true,
        ),
    ] {
        out.push(
            Case::new(
                name,
                format!("Condition?_sort={sort}&_count=50"),
                Expect::Sorted {
                    matches: d.all("Condition"),
                    key: Box::new(|c| vec![date_key(c["abatementDateTime"].as_str())]),
                    desc: vec![desc],
                },
            )
            .trivial(),
        );
    }
    out.push(Case::new(
        "sort_date_descending_with_code",
        format!("Observation?code={loinc}&_sort=-date&_count=9"),
        Expect::Sorted {
            matches: obs.clone(),
            key: Box::new(|o| vec![date_key(o["effectiveDateTime"].as_str())]),
            desc: vec![true],
        },
    ));

    // Paging, totals, summary, elements.
    out.push(Case::set(
        "paging_all_pages",
        format!("Observation?code={loinc}&_count=7"),
        obs.clone(),
    ));
    out.push(Case::set(
        "paging_count_one",
        "Condition?_count=1&code=".to_string() + &snomed,
        conds.clone(),
    ));
    out.push(Case::new(
        "paging_previous",
        "Patient?_count=7",
        Expect::Previous,
    ));
    out.push(Case::new(
        "total_none",
        format!("Observation?code={loinc}&_total=none&_count=20"),
        Expect::NoTotal(obs.clone()),
    ));
    out.push(Case::set(
        "total_accurate",
        format!("Observation?code={loinc}&_total=accurate&_count=20"),
        obs.clone(),
    ));
    out.push(Case::new(
        "summary_count",
        format!("Observation?code={loinc}&_summary=count"),
        Expect::CountOnly(obs.len()),
    ));
    out.push(Case::new(
        "elements",
        format!("Observation?code={loinc}&_elements=id,code&_count=20"),
        Expect::Elements {
            matches: obs.clone(),
            // status is mandatory: servers should return it even when not asked.
            allowed: vec!["code", "status"],
            required: vec!["code"],
        },
    ));

    // System level, POST, compartment of the system level.
    let p0 = d.all("Patient").into_iter().nth(7).expect("patient");
    let c0 = conds.iter().next().expect("condition").clone();
    let idof = |r: &str| r.split_once('/').expect("Type/id").1.to_string();
    out.push(Case::set(
        "system_search_type_and_id",
        format!("?_type=Patient,Condition&_id={},{}", idof(&p0), idof(&c0)),
        [p0.clone(), c0.clone()].into(),
    ));
    out.push(Case::set(
        "system_search_id_only",
        format!("?_id={}", idof(&p0)),
        [p0.clone()].into(),
    ));
    let subject = d.targets(&d.res[obs.iter().next().expect("obs")], "subject")[0].clone();
    let posted = d.select("Observation", |o| {
        at(o, "code").iter().any(|c| token_any(&loinc, c))
            && d.targets(o, "subject").contains(&subject)
    });
    out.push(
        Case::set(
            "post_search_form",
            format!("Observation?code={loinc}&subject={subject}"),
            posted,
        )
        .with(Method::Post),
    );
    out.extend(errors(d));
    out
}

fn errors(d: &Data) -> Vec<Case> {
    let invalid = |name: &str, q: &str, mentions: &str| {
        Case::new(name, q, Expect::Invalid(mentions.to_string()))
    };
    vec![
        invalid("error_unknown_parameter", "Patient?foo=bar", "foo"),
        Case::set(
            "error_unknown_parameter_lenient",
            "Patient?foo=bar&_count=50",
            d.all("Patient"),
        )
        .trivial()
        .with(Method::Lenient),
        invalid("error_bad_date", "Patient?birthdate=1970-13", "birthdate"),
        invalid("error_bad_prefix", "Patient?birthdate=xx1970", "birthdate"),
        invalid("error_unknown_modifier", "Patient?family:foo=x", "foo"),
        invalid(
            "error_bad_number",
            "Observation?value-quantity=gtabc",
            "value-quantity",
        ),
        invalid("error_unknown_sort", "Patient?_sort=nope", "nope"),
        invalid(
            "error_chain_too_deep",
            "Encounter?service-provider.partof.partof.partof.partof.partof.name=x",
            "",
        ),
        Case::new(
            "error_sql_quote",
            format!("Patient?family={}", enc("x' OR '1'='1")),
            Expect::InvalidOrEmpty,
        ),
        Case::new(
            "error_sql_statement",
            format!("Patient?family={}", enc("x'); DROP TABLE resources; --")),
            Expect::InvalidOrEmpty,
        ),
        Case::new(
            "error_sql_in_token",
            format!("Patient?gender={}", enc("male' OR 1=1 --")),
            Expect::InvalidOrEmpty,
        ),
        Case::set(
            "after_injection_attempts_every_patient_is_there",
            "Patient?gender=male,female,other,unknown&_count=50",
            d.select("Patient", |p| p["gender"].is_string()),
        )
        .trivial(),
    ]
}
