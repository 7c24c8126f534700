//! The parameters of every resource (`_id`, `_lastUpdated`, `_tag`, `_profile`,
//! `_security`, `_text`, `_content`) and uri modifiers (`:below`, `:above`). The data has
//! no `meta.security` and no `meta.source`, so `_security` can only find nothing and
//! `_source` is not tested.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::data::{at, strs, Loaded};
use super::run::{enc, Case};
use super::value::{strip_tags, words};

const US_CORE: &str = "http://hl7.org/fhir/us/core/StructureDefinition";

/// A word of the texts that `text_of` gives, found in between `lo` and `hi` resources of
/// `ty` and never inside a longer word of any of them (so "contains" and "has the word"
/// agree).
fn distinctive_word(
    l: &Loaded,
    ty: &str,
    lo: usize,
    hi: usize,
    text_of: &dyn Fn(&Value) -> Vec<String>,
) -> (String, BTreeSet<String>) {
    let d = &l.data;
    let mut per_word: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (k, r) in d.of(ty) {
        for t in text_of(r) {
            for w in words(&t) {
                per_word.entry(w).or_default().insert(k.clone());
            }
        }
    }
    let all_words: BTreeSet<&String> = per_word.keys().collect();
    let (w, set) = per_word
        .iter()
        .filter(|(w, s)| w.len() >= 6 && s.len() >= lo && s.len() <= hi)
        .find(|(w, _)| {
            !all_words
                .iter()
                .any(|o| o.len() > w.len() && o.contains(w.as_str()))
        })
        .expect("a distinctive word");
    (w.clone(), set.clone())
}

pub fn cases(l: &Loaded) -> Vec<Case> {
    let d = &l.data;
    let mut out = Vec::new();
    let patients: Vec<String> = d.all("Patient").into_iter().collect();
    let id = |r: &String| r.split_once('/').expect("Type/id").1.to_string();

    out.push(Case::set(
        "special_id_or",
        format!("Patient?_id={},{}", id(&patients[3]), id(&patients[40])),
        [patients[3].clone(), patients[40].clone()].into(),
    ));

    let v3_of = |ty: &str| -> BTreeSet<String> {
        d.all(ty).into_iter().filter(|k| l.v3.contains(k)).collect()
    };
    let smart_of = |ty: &str| -> BTreeSet<String> {
        d.all(ty)
            .into_iter()
            .filter(|k| !l.v3.contains(k))
            .collect()
    };
    out.push(
        Case::set(
            "special_last_updated_ge_before_load",
            format!("Patient?_lastUpdated=ge{}", enc(&l.before)),
            d.all("Patient"),
        )
        .trivial(),
    );
    out.push(
        Case::set(
            "special_last_updated_lt_before_load",
            format!("Patient?_lastUpdated=lt{}", enc(&l.before)),
            BTreeSet::new(),
        )
        .trivial(),
    );
    out.push(Case::set(
        "special_last_updated_gt_between_loads",
        format!("Patient?_lastUpdated=gt{}", enc(&l.between)),
        v3_of("Patient"),
    ));
    out.push(Case::set(
        "special_last_updated_lt_between_loads",
        format!("Patient?_lastUpdated=lt{}", enc(&l.between)),
        smart_of("Patient"),
    ));
    out.push(
        Case::set(
            "special_last_updated_day_precision_ge",
            format!("Condition?_lastUpdated=ge{}&_count=100", &l.before[..10]),
            d.all("Condition"),
        )
        .trivial(),
    );

    // _tag, and :not on it.
    let (tag_system, tag_code) = d
        .of("Patient")
        .flat_map(|(_, p)| at(p, "meta.tag"))
        .map(|t| {
            (
                t["system"].as_str().unwrap_or("").to_string(),
                t["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .next()
        .expect("a tag");
    let tagged = |ty: &str| {
        d.select(ty, |r| {
            at(r, "meta.tag")
                .iter()
                .any(|t| t["system"] == tag_system.as_str() && t["code"] == tag_code.as_str())
        })
    };
    out.push(Case::set(
        "special_tag",
        format!("Patient?_tag={tag_system}|{tag_code}"),
        tagged("Patient"),
    ));
    let untagged: BTreeSet<String> = d
        .all("Condition")
        .difference(&tagged("Condition"))
        .cloned()
        .collect();
    out.push(Case::set(
        "special_tag_not",
        format!("Condition?_tag:not={tag_system}|{tag_code}&_count=100"),
        untagged,
    ));
    out.push(
        Case::set(
            "special_security_absent_in_data",
            "Patient?_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
            d.select("Patient", |p| !at(p, "meta.security").is_empty()),
        )
        .trivial(),
    );

    // _profile, :below, :above.
    let profiled = |ty: &str, f: &dyn Fn(&str) -> bool| {
        d.select(ty, |r| strs(r, "meta.profile").into_iter().any(f))
    };
    let patient_profile = format!("{US_CORE}/us-core-patient");
    out.push(Case::set(
        "special_profile",
        format!("Patient?_profile={patient_profile}"),
        profiled("Patient", &|p| p == patient_profile),
    ));
    out.push(Case::set(
        "uri_below",
        format!("Observation?_profile:below={US_CORE}&_count=100"),
        profiled("Observation", &|p| p.starts_with(&format!("{US_CORE}/"))),
    ));
    let bp = format!("{US_CORE}/us-core-blood-pressure");
    let above = format!("{bp}/_history/5");
    out.push(Case::set(
        "uri_above",
        format!("Observation?_profile:above={above}"),
        profiled("Observation", &|p| {
            above == p || above.starts_with(&format!("{p}/"))
        }),
    ));

    // _text over the narrative, _content over every string.
    let n_care = d.count("CarePlan");
    let (tw, tset) = distinctive_word(l, "CarePlan", 2, n_care / 2, &|r| {
        strs(r, "text.div").into_iter().map(strip_tags).collect()
    });
    out.push(Case::set(
        "special_text_narrative",
        format!("CarePlan?_text={}", enc(&tw)),
        tset,
    ));
    let n_cond = d.count("Condition");
    // The server's documented choice: `_content` is the resource's human-readable text;
    // ids, references, URIs and dates are searched by their own parameters.
    let (cw, cset) = distinctive_word(l, "Condition", 3, n_cond / 4, &|r| {
        let mut v = Vec::new();
        readable_strings(r, &mut v);
        v
    });
    out.push(Case::set(
        "special_content",
        format!("Condition?_content={}&_count=100", enc(&cw)),
        cset,
    ));
    out
}

/// Every string of a resource a reader would read: not ids, `meta`, references, URIs,
/// systems, or dates.
fn readable_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let uri = ["http://", "https://", "urn:"]
                .iter()
                .any(|p| s.starts_with(p));
            let b = s.as_bytes();
            let date = b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
            if !uri && !date {
                out.push(s.clone());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| readable_strings(x, out)),
        Value::Object(m) => {
            for (k, x) in m {
                if !matches!(
                    k.as_str(),
                    "id" | "meta" | "reference" | "resourceType" | "url" | "system" | "fullUrl"
                ) {
                    readable_strings(x, out);
                }
            }
        }
        _ => {}
    }
}
