//! String parameters: default starts-with ignoring case and accents, `:exact`, `:contains`,
//! `name` over every part of a HumanName, `address` over every part of an Address, and
//! `,` (or) and repeated parameters (and).

use std::collections::BTreeSet;

use serde_json::Value;

use super::data::{at, strs, Data};
use super::pick;
use super::run::{enc, Case};
use super::value::{contains, starts};

/// Every string part of the HumanNames (or Addresses) at `path`.
pub fn parts<'a>(r: &'a Value, path: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    for n in at(r, path) {
        for k in [
            "family",
            "given",
            "prefix",
            "suffix",
            "text",
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
        ] {
            out.extend(strs(n, k));
        }
    }
    out
}

fn on(d: &Data, path: &str, f: impl Fn(&str) -> bool) -> BTreeSet<String> {
    d.select("Patient", |p| strs(p, path).iter().any(|v| f(v)))
}

fn plain(s: &str) -> bool {
    s.chars().all(|c| c.is_alphanumeric() || c == ' ')
}

pub fn cases(d: &Data) -> Vec<Case> {
    let mut out = Vec::new();
    let n = d.count("Patient");

    // family: a three-letter prefix, sent in upper case.
    let families: BTreeSet<String> = d
        .of("Patient")
        .flat_map(|(_, p)| strs(p, "name.family"))
        .filter(|f| plain(f))
        .map(str::to_string)
        .collect();
    let prefixes: BTreeSet<String> = families
        .iter()
        .map(|f| f.chars().take(3).collect())
        .collect();
    let fam = |q: String| on(d, "name.family", |v| starts(v, &q));
    let prefix = pick::between(prefixes.iter(), 2, n / 3, |p| fam((*p).clone()).len());
    out.push(Case::set(
        "string_family_prefix_ignores_case",
        format!("Patient?family={}", enc(&prefix.to_uppercase())),
        fam(prefix.clone()),
    ));

    // given: a name with an accent, searched without it.
    let accented = d
        .of("Patient")
        .flat_map(|(_, p)| strs(p, "name.given"))
        .find(|g| !g.is_ascii() && plain(g))
        .expect("an accented given name")
        .to_string();
    let unaccented = super::value::norm(&accented);
    let giv = |q: String| on(d, "name.given", |v| starts(v, &q));
    out.push(Case::set(
        "string_given_ignores_accents",
        format!("Patient?given={}", enc(&unaccented)),
        giv(unaccented.clone()),
    ));
    out.push(Case::set(
        "string_given_accented_query_upper_case",
        format!("Patient?given={}", enc(&accented.to_uppercase())),
        giv(accented.clone()),
    ));

    // :exact and :contains.
    let exact_family = pick::between(families.iter(), 1, n / 4, |f| {
        on(d, "name.family", |v| v == f.as_str()).len()
    })
    .clone();
    let ef = exact_family.clone();
    out.push(Case::set(
        "string_family_exact",
        format!("Patient?family:exact={}", enc(&exact_family)),
        on(d, "name.family", |v| v == ef),
    ));
    let lower = exact_family.to_lowercase();
    let lf = lower.clone();
    out.push(
        Case::set(
            "string_family_exact_is_case_sensitive",
            format!("Patient?family:exact={}", enc(&lower)),
            on(d, "name.family", |v| v == lf),
        )
        .trivial(),
    );
    let middles: BTreeSet<String> = families
        .iter()
        .filter(|f| f.chars().count() >= 6)
        .map(|f| f.chars().skip(2).take(3).collect())
        .collect();
    let middle = pick::between(middles.iter(), 2, n / 3, |m| {
        let m = (*m).clone();
        on(d, "name.family", |v| contains(v, &m)).len()
    })
    .clone();
    let mc = middle.clone();
    out.push(Case::set(
        "string_family_contains",
        format!("Patient?family:contains={}", enc(&middle.to_uppercase())),
        on(d, "name.family", |v| contains(v, &mc)),
    ));

    // name: matches family, given, prefix, suffix or text.
    let name_match =
        |q: &str| d.select("Patient", |p| parts(p, "name").iter().any(|v| starts(v, q)));
    let titles: BTreeSet<String> = d
        .of("Patient")
        .flat_map(|(_, p)| strs(p, "name.prefix"))
        .map(|t| t.trim_end_matches('.').to_lowercase())
        .filter(|t| plain(t))
        .collect();
    let title = pick::between(titles.iter(), 1, n * 2 / 3, |t| name_match(t).len()).clone();
    out.push(Case::set(
        "string_name_matches_prefix_part",
        format!("Patient?name={}", enc(&title)),
        name_match(&title),
    ));
    let givens: BTreeSet<String> = d
        .of("Patient")
        .flat_map(|(_, p)| strs(p, "name.given"))
        .filter(|g| g.is_ascii() && plain(g) && g.len() >= 5)
        .map(|g| g[..4].to_lowercase())
        .collect();
    let given4 = pick::between(givens.iter(), 1, n / 4, |g| name_match(g).len()).clone();
    out.push(Case::set(
        "string_name_matches_given_part",
        format!("Patient?name={}", enc(&given4)),
        name_match(&given4),
    ));

    // address-city and address.
    let cities: BTreeSet<String> = d
        .of("Patient")
        .flat_map(|(_, p)| strs(p, "address.city"))
        .filter(|c| plain(c) && c.len() >= 5)
        .map(|c| c[..5].to_lowercase())
        .collect();
    let city_match = |q: &str| {
        d.select("Patient", |p| {
            strs(p, "address.city").iter().any(|v| starts(v, q))
        })
    };
    let city = pick::between(cities.iter(), 2, n / 3, |c| city_match(c).len()).clone();
    out.push(Case::set(
        "string_address_city",
        format!("Patient?address-city={}", enc(&city)),
        city_match(&city),
    ));
    let addr_match = |q: &str| {
        d.select("Patient", |p| {
            parts(p, "address").iter().any(|v| starts(v, q))
        })
    };
    let postal: BTreeSet<String> = d
        .of("Patient")
        .flat_map(|(_, p)| strs(p, "address.postalCode"))
        .filter(|c| c.len() >= 4 && plain(c))
        .map(|c| c[..4].to_string())
        .collect();
    let code = pick::between(postal.iter(), 1, n / 3, |c| addr_match(c).len()).clone();
    out.push(Case::set(
        "string_address_matches_postal_code_part",
        format!("Patient?address={}", enc(&code)),
        addr_match(&code),
    ));

    // Organization.name (or alias).
    let org_names: BTreeSet<String> = d
        .of("Organization")
        .flat_map(|(_, o)| strs(o, "name"))
        .filter(|s| s.len() >= 8 && plain(s))
        .map(|s| s[..8].to_lowercase())
        .collect();
    let org_match = |q: &str| {
        d.select("Organization", |o| {
            strs(o, "name")
                .into_iter()
                .chain(strs(o, "alias"))
                .any(|v| starts(v, q))
        })
    };
    let oname = pick::between(org_names.iter(), 2, d.count("Organization") / 4, |s| {
        org_match(s).len()
    })
    .clone();
    out.push(Case::set(
        "string_organization_name",
        format!("Organization?name={}", enc(&oname)),
        org_match(&oname),
    ));

    // , is or; a repeated parameter is and.
    let mut two = families.iter().filter(|f| f.len() >= 4);
    let (f1, f2) = (
        two.next().expect("family").clone(),
        two.nth(5).expect("family").clone(),
    );
    let (g1, g2) = (f1.clone(), f2.clone());
    out.push(Case::set(
        "string_comma_is_or",
        format!("Patient?family={},{}", enc(&f1), enc(&f2)),
        on(d, "name.family", |v| starts(v, &g1) || starts(v, &g2)),
    ));
    let (_, pat) = d
        .of("Patient")
        .find(|(_, p)| {
            strs(p, "name.given")
                .iter()
                .any(|g| g.is_ascii() && plain(g))
        })
        .expect("patient");
    let given = strs(pat, "name.given")[0].to_string();
    let family = strs(pat, "name.family")[0].to_string();
    let both = d.select("Patient", |p| {
        parts(p, "name").iter().any(|v| starts(v, &given))
            && parts(p, "name").iter().any(|v| starts(v, &family))
    });
    out.push(Case::set(
        "string_repeated_parameter_is_and",
        format!("Patient?name={}&name={}", enc(&given), enc(&family)),
        both,
    ));
    out
}
