//! Token parameters: `code`, `system|code`, `|code`, `system|`, `:not`, `:text`,
//! `:of-type`, `:missing`, codes, booleans, identifiers and contact points.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::data::{at, strs, Data};
use super::pick;
use super::run::{enc, Case};
use super::value::{starts, token_any};

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// How many resources of `ty` carry each code at `path` (a CodeableConcept).
fn code_counts(d: &Data, ty: &str, path: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (_, r) in d.of(ty) {
        let codes: BTreeSet<&str> = at(r, &format!("{path}.coding"))
            .iter()
            .filter_map(|c| c["code"].as_str())
            .collect();
        for c in codes {
            *m.entry(c.to_string()).or_insert(0) += 1;
        }
    }
    m
}

/// A code of `ty` at `path` carried by between `lo` and `hi` resources.
pub fn moderate_code(d: &Data, ty: &str, path: &str, lo: usize, hi: usize) -> String {
    let counts = code_counts(d, ty, path);
    pick::middle(counts.keys(), lo, hi, |c| counts[c.as_str()]).clone()
}

fn with(d: &Data, ty: &str, path: &str, q: &str) -> BTreeSet<String> {
    d.select(ty, |r| at(r, path).iter().any(|v| token_any(q, v)))
}

pub fn cases(d: &Data) -> Vec<Case> {
    let mut out = Vec::new();
    let n_pat = d.count("Patient");

    let loinc = moderate_code(d, "Observation", "code", 50, 200);
    out.push(Case::set(
        "token_code_without_system",
        format!("Observation?code={loinc}&_count=50"),
        with(d, "Observation", "code", &loinc),
    ));
    out.push(Case::set(
        "token_system_and_code",
        format!("Observation?code={LOINC}|{loinc}&_count=50"),
        with(d, "Observation", "code", &format!("{LOINC}|{loinc}")),
    ));
    out.push(
        Case::set(
            "token_code_in_another_system_matches_nothing",
            format!("Observation?code={SNOMED}|{loinc}"),
            with(d, "Observation", "code", &format!("{SNOMED}|{loinc}")),
        )
        .trivial(),
    );
    // Every coding in the data has a system, so `|code` finds none: a server that ignored
    // the empty system would return the LOINC ones.
    out.push(
        Case::set(
            "token_empty_system_means_no_system",
            format!("Observation?code=|{loinc}"),
            with(d, "Observation", "code", &format!("|{loinc}")),
        )
        .trivial(),
    );

    // system| : any code (here: identifier value) in the system.
    let mut systems: BTreeMap<String, usize> = BTreeMap::new();
    for (_, p) in d.of("Patient") {
        let s: BTreeSet<&str> = strs(p, "identifier.system").into_iter().collect();
        s.into_iter()
            .for_each(|s| *systems.entry(s.to_string()).or_insert(0) += 1);
    }
    let system = pick::middle(systems.keys(), 2, n_pat - 2, |s| systems[s.as_str()]).clone();
    out.push(Case::set(
        "token_system_only",
        format!("Patient?identifier={}|", enc(&system)),
        with(d, "Patient", "identifier", &format!("{system}|")),
    ));

    let snomed = moderate_code(d, "Condition", "code", 10, 60);
    out.push(Case::set(
        "token_condition_snomed",
        format!("Condition?code={SNOMED}|{snomed}"),
        with(d, "Condition", "code", &format!("{SNOMED}|{snomed}")),
    ));
    let snomed2 = moderate_code(d, "Condition", "code", 3, 9);
    out.push(Case::set(
        "token_comma_is_or",
        format!("Condition?code={SNOMED}|{snomed},{SNOMED}|{snomed2}"),
        d.select("Condition", |r| {
            at(r, "code").iter().any(|v| {
                token_any(&format!("{SNOMED}|{snomed}"), v)
                    || token_any(&format!("{SNOMED}|{snomed2}"), v)
            })
        }),
    ));

    // :not — resources with no matching token, including those without the element.
    out.push(Case::set(
        "token_not_gender",
        "Patient?gender:not=male",
        d.select("Patient", |p| p["gender"] != "male"),
    ));
    out.push(Case::set(
        "token_not_code",
        format!("Condition?code:not={SNOMED}|{snomed}&_count=100"),
        d.select("Condition", |r| {
            !at(r, "code")
                .iter()
                .any(|v| token_any(&format!("{SNOMED}|{snomed}"), v))
        }),
    ));

    // :text — starts-with on CodeableConcept.text or Coding.display.
    let text_match = |q: &str| {
        d.select("Condition", |r| {
            strs(r, "code.text")
                .into_iter()
                .chain(strs(r, "code.coding.display"))
                .any(|t| starts(t, q))
        })
    };
    let words: BTreeSet<String> = d
        .of("Condition")
        .flat_map(|(_, r)| strs(r, "code.text"))
        .filter_map(|t| t.split(' ').next())
        .filter(|w| w.len() >= 5 && w.chars().all(char::is_alphabetic))
        .map(str::to_uppercase)
        .collect();
    let n_cond = d.count("Condition");
    let word = pick::middle(words.iter(), 5, n_cond / 4, |w| text_match(w).len()).clone();
    out.push(Case::set(
        "token_text_on_codeable_concept",
        format!("Condition?code:text={}", enc(&word)),
        text_match(&word),
    ));

    // :of-type — type-system|type-code|value on Identifier.
    let (_, pat) = d.of("Patient").nth(n_pat / 2).expect("patient");
    let of_type = |ty: &str, value: &str| {
        d.select("Patient", |p| {
            at(p, "identifier").iter().any(|i| {
                i["value"] == value
                    && at(i, "type.coding")
                        .iter()
                        .any(|c| c["system"] == V2_0203 && c["code"] == ty)
            })
        })
    };
    let mr = at(pat, "identifier")
        .into_iter()
        .find(|i| at(i, "type.coding").iter().any(|c| c["code"] == "MR"))
        .and_then(|i| i["value"].as_str())
        .expect("an MR identifier")
        .to_string();
    out.push(Case::set(
        "token_of_type_identifier",
        format!("Patient?identifier:of-type={V2_0203}|MR|{}", enc(&mr)),
        of_type("MR", &mr),
    ));
    out.push(
        Case::set(
            "token_of_type_wrong_type_matches_nothing",
            format!("Patient?identifier:of-type={V2_0203}|SS|{}", enc(&mr)),
            of_type("SS", &mr),
        )
        .trivial(),
    );
    let ssn_ident = at(pat, "identifier")
        .into_iter()
        .find(|i| i["system"] == "http://hl7.org/fhir/sid/us-ssn")
        .expect("an SSN");
    let ssn = ssn_ident["value"].as_str().expect("ssn").to_string();
    out.push(Case::set(
        "token_identifier_system_and_value",
        format!(
            "Patient?identifier=http://hl7.org/fhir/sid/us-ssn|{}",
            enc(&ssn)
        ),
        with(
            d,
            "Patient",
            "identifier",
            &format!("http://hl7.org/fhir/sid/us-ssn|{ssn}"),
        ),
    ));
    out.push(Case::set(
        "token_identifier_value_only",
        format!("Patient?identifier={}", enc(&ssn)),
        with(d, "Patient", "identifier", &ssn),
    ));

    // ContactPoint: phone is telecom.where(system='phone'), matched on value.
    let phone = strs(pat, "telecom.value")[0].to_string();
    out.push(Case::set(
        "token_phone",
        format!("Patient?phone={}", enc(&phone)),
        d.select("Patient", |p| {
            at(p, "telecom")
                .iter()
                .any(|t| t["system"] == "phone" && t["value"] == phone.as_str())
        }),
    ));

    // :missing on a token and on dates.
    let has = |ty: &str, key: &str| d.select(ty, |r| r.get(key).is_some());
    let hasnt = |ty: &str, key: &str| d.select(ty, |r| r.get(key).is_none());
    out.push(Case::set(
        "token_missing_true",
        "Encounter?reason-code:missing=true&_count=200",
        hasnt("Encounter", "reasonCode"),
    ));
    out.push(Case::set(
        "token_missing_false",
        "Encounter?reason-code:missing=false&_count=200",
        has("Encounter", "reasonCode"),
    ));
    out.push(Case::set(
        "date_missing_true",
        "Condition?abatement-date:missing=true&_count=100",
        hasnt("Condition", "abatementDateTime"),
    ));
    out.push(Case::set(
        "date_missing_false",
        "Condition?abatement-date:missing=false&_count=100",
        has("Condition", "abatementDateTime"),
    ));
    out.push(Case::set(
        "date_missing_false_death_date",
        "Patient?death-date:missing=false",
        has("Patient", "deceasedDateTime"),
    ));

    // code and boolean values.
    out.push(Case::set(
        "token_gender",
        "Patient?gender=female",
        d.select("Patient", |p| p["gender"] == "female"),
    ));
    out.push(Case::set(
        "token_gender_with_system",
        "Patient?gender=http://hl7.org/fhir/administrative-gender|male",
        d.select("Patient", |p| p["gender"] == "male"),
    ));
    // Every Synthea Organization is active: the boolean cases cannot tell much apart.
    out.push(
        Case::set(
            "token_boolean_true",
            "Organization?active=true&_count=100",
            d.select("Organization", |o| o["active"] == true),
        )
        .trivial(),
    );
    out.push(
        Case::set(
            "token_boolean_false",
            "Organization?active=false",
            d.select("Organization", |o| o["active"] == false),
        )
        .trivial(),
    );
    let deceased = |p: &Value| p.get("deceasedDateTime").is_some() || p["deceasedBoolean"] == true;
    out.push(Case::set(
        "token_computed_boolean_deceased",
        "Patient?deceased=true",
        d.select("Patient", deceased),
    ));
    out.push(Case::set(
        "token_computed_boolean_not_deceased",
        "Patient?deceased=false",
        d.select("Patient", |p| !deceased(p)),
    ));

    let concept = moderate_code(d, "Observation", "valueCodeableConcept", 10, 300);
    out.push(Case::set(
        "token_value_concept",
        format!("Observation?value-concept={SNOMED}|{concept}&_count=100"),
        with(
            d,
            "Observation",
            "valueCodeableConcept",
            &format!("{SNOMED}|{concept}"),
        ),
    ));
    out
}
