//! Name comparison: family and first given name compared separately with Jaro–Winkler after
//! normalisation, each reaching agree / partial / disagree with its own m/u; every name of
//! one record against every name of the other (so a maiden name is found), and each pair
//! also read with given and family swapped. The best reading counts.

use serde_json::Value;

use crate::nicknames;
use crate::text::{jaro_winkler, name_words};
use crate::weights::{FAMILY, GIVEN, SWAP_PENALTY};
use crate::Agreement;

/// Jaro–Winkler at or above which two name parts agree. Winkler's record-linkage work
/// treats ≥ 0.94 as "essentially the same" and 0.84–0.94 as a partial agreement; a single
/// typo in a name of five or more letters stays above 0.94 unless it hits the first letters.
pub(crate) const AGREE_JW: f64 = 0.94;
/// Jaro–Winkler at or above which two name parts partly agree.
pub(crate) const PARTIAL_JW: f64 = 0.80;

/// One HumanName reduced to what is compared.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Name {
    /// The family name's words joined ("de la Cruz" is "delacruz").
    family: String,
    /// The family name's words, for double surnames ("Garcia Lopez" against "Garcia").
    family_words: Vec<String>,
    /// Every given-name word in order; the first is the first name.
    given: Vec<String>,
}

/// The names of a Patient (every entry of `name`, whatever its `use`).
pub(crate) fn names(patient: &Value) -> Vec<Name> {
    let Some(list) = patient.get("name").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter().filter_map(name).collect()
}

fn name(v: &Value) -> Option<Name> {
    let mut family_words = v
        .get("family")
        .and_then(Value::as_str)
        .map(name_words)
        .unwrap_or_default();
    let mut given: Vec<String> = v
        .get("given")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .flat_map(name_words)
        .collect();
    if family_words.is_empty() && given.is_empty() {
        // Only `text`: take the last word as the family name, as Western order writes it.
        let mut words = v.get("text").and_then(Value::as_str).map(name_words)?;
        let last = words.pop()?;
        family_words = vec![last];
        given = words;
    }
    Some(Name {
        family: family_words.concat(),
        family_words,
        given,
    })
}

/// The outcome of comparing two records' names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NameResult {
    pub outcome: Agreement,
    pub weight: f64,
    /// Whether the family or the first given name disagreed in the reading that counted.
    pub part_disagrees: bool,
    /// Whether the reading that counted had given and family swapped.
    pub swapped: bool,
}

const MISSING: NameResult = NameResult {
    outcome: Agreement::Missing,
    weight: 0.0,
    part_disagrees: false,
    swapped: false,
};

/// Compares every name of `a` with every name of `b` and keeps the reading with the most
/// weight.
pub(crate) fn compare(a: &[Name], b: &[Name]) -> NameResult {
    let mut best: Option<NameResult> = None;
    for x in a {
        for y in b {
            for r in readings(x, y) {
                if best.is_none_or(|b| r.weight > b.weight) {
                    best = Some(r);
                }
            }
        }
    }
    best.unwrap_or(MISSING)
}

fn readings(x: &Name, y: &Name) -> Vec<NameResult> {
    let family = family_level(&x.family, &x.family_words, &y.family, &y.family_words);
    let given = given_level(&x.given, &y.given);
    let mut out = vec![combine(family, given, 0.0, false)];
    if let (Some(xg), Some(yg)) = (x.given.first(), y.given.first()) {
        if !x.family.is_empty() && !y.family.is_empty() {
            // x's family against y's first given, x's first given against y's family.
            let family = family_level(&x.family, &x.family_words, yg, std::slice::from_ref(yg));
            let given = given_level(std::slice::from_ref(xg), std::slice::from_ref(&y.family));
            out.push(combine(family, given, SWAP_PENALTY, true));
        }
    }
    out
}

fn combine(family: Agreement, given: Agreement, penalty: f64, swapped: bool) -> NameResult {
    use Agreement::*;
    let outcome = match (family, given) {
        (Missing, Missing) => Missing,
        (Agree | Missing, Agree | Missing) => Agree,
        (Disagree | Missing, Disagree | Missing) => Disagree,
        _ => Partial,
    };
    let weight = FAMILY.weight(family) + GIVEN.weight(given);
    NameResult {
        outcome,
        // A swapped reading pays its penalty only when it is evidence for a match; a swap
        // never makes a disagreement look worse than reading the name in order would.
        weight: if weight > 0.0 {
            (weight - penalty).max(0.0)
        } else {
            weight
        },
        part_disagrees: family == Disagree || given == Disagree,
        swapped,
    }
}

/// Family names: the joined words by Jaro–Winkler, or one word of a double surname equal to
/// the other whole surname.
pub(crate) fn family_level(a: &str, a_words: &[String], b: &str, b_words: &[String]) -> Agreement {
    if a.is_empty() || b.is_empty() {
        return Agreement::Missing;
    }
    let one_of = |word: &String, whole: &str| word.len() >= 2 && word == whole;
    if a == b
        || (a_words.len() > 1 && a_words.iter().any(|w| one_of(w, b)))
        || (b_words.len() > 1 && b_words.iter().any(|w| one_of(w, a)))
    {
        return Agreement::Agree;
    }
    level(jaro_winkler(a, b))
}

/// First given names: Jaro–Winkler, then a known variant ("Bill"/"William"), an initial
/// ("J"/"John"), or a first name that is the other's middle name count as partial.
pub(crate) fn given_level(a: &[String], b: &[String]) -> Agreement {
    let (Some(x), Some(y)) = (a.first(), b.first()) else {
        return Agreement::Missing;
    };
    if x == y {
        return Agreement::Agree;
    }
    let initial = |i: &str, whole: &str| i.chars().count() == 1 && whole.starts_with(i);
    if x.chars().count() == 1 || y.chars().count() == 1 {
        return if initial(x, y) || initial(y, x) {
            Agreement::Partial
        } else {
            Agreement::Disagree
        };
    }
    match level(jaro_winkler(x, y)) {
        Agreement::Disagree
            if nicknames::are_variants(x, y) || a[1..].contains(y) || b[1..].contains(x) =>
        {
            Agreement::Partial
        }
        Agreement::Agree if nicknames::are_variants(x, y) => Agreement::Partial,
        other => other,
    }
}

fn level(jw: f64) -> Agreement {
    if jw >= AGREE_JW {
        Agreement::Agree
    } else if jw >= PARTIAL_JW {
        Agreement::Partial
    } else {
        Agreement::Disagree
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(s: &str) -> Vec<String> {
        name_words(s)
    }

    fn family(a: &str, b: &str) -> Agreement {
        let (aw, bw) = (words(a), words(b));
        family_level(&aw.concat(), &aw, &bw.concat(), &bw)
    }

    #[test]
    fn family_names_agree_partly_agree_or_disagree_by_jaro_winkler() {
        use Agreement::*;
        let cases = [
            // Equal after normalisation.
            ("Jerde200", "Jerde", Agree),
            ("O'Connell", "OCONNELL", Agree),
            ("Müller", "Muller", Agree),
            ("de la Cruz", "Delacruz", Agree),
            // Double surname against one of its parts.
            ("Garcia Lopez", "Garcia", Agree),
            // Winkler's MARTHA/MARHTA: JW 0.961 ≥ 0.94.
            ("Martha", "Marhta", Agree),
            // DWAYNE/DUANE: JW 0.840, between 0.80 and 0.94.
            ("Dwayne", "Duane", Partial),
            // DIXON/DICKSONX: JW 0.813.
            ("Dixon", "Dicksonx", Partial),
            // KOEPP/SMITH share no letters: Jaro 0.
            ("Koepp", "Smith", Disagree),
            ("", "Smith", Missing),
        ];
        for (a, b, expected) in cases {
            assert_eq!(family(a, b), expected, "{a}/{b}");
        }
    }

    #[test]
    fn given_names_count_nicknames_initials_and_middle_names_as_partial() {
        use Agreement::*;
        let cases = [
            ("Alvin56", "Alvin", Agree),
            ("Agustín", "Agustin", Agree),
            ("William", "Bill", Partial),
            ("J", "John", Partial),
            ("John", "J.", Partial),
            ("K", "John", Disagree),
            // First name is the other record's middle name.
            ("Merrill", "Breana Merrill", Partial),
            // DWAYNE/DUANE 0.840.
            ("Dwayne", "Duane", Partial),
            ("Abdul", "Rosie", Disagree),
            ("", "Rosie", Missing),
        ];
        for (a, b, expected) in cases {
            assert_eq!(given_level(&words(a), &words(b)), expected, "{a}/{b}");
        }
    }

    fn patient(family: &str, given: &[&str]) -> Value {
        json!({"name": [{"family": family, "given": given}]})
    }

    #[test]
    fn exact_names_weigh_the_sum_of_both_agreements() {
        let a = names(&patient("Koepp", &["Abdul"]));
        let r = compare(&a, &a);
        assert_eq!(r.outcome, Agreement::Agree);
        // log2(0.90/0.01) + log2(0.88/0.015) = 6.4919 + 5.8745.
        assert!((r.weight - 12.3664).abs() < 1e-3, "{}", r.weight);
        assert!(!r.swapped);
    }

    #[test]
    fn swapped_given_and_family_agree_less_the_swap_penalty() {
        let a = names(&patient("Koepp", &["Abdul"]));
        let b = names(&patient("Abdul", &["Koepp"]));
        let r = compare(&a, &b);
        assert_eq!(r.outcome, Agreement::Agree);
        assert!(r.swapped);
        assert!((r.weight - (12.3664 - 2.0)).abs() < 1e-3, "{}", r.weight);
    }

    #[test]
    fn a_maiden_name_is_compared_too() {
        let a = json!({"name": [
            {"use": "official", "family": "Wyman", "given": ["Alfreda"]},
            {"use": "maiden", "family": "Deckow", "given": ["Alfreda"]}
        ]});
        let b = patient("Deckow", &["Alfreda"]);
        assert_eq!(compare(&names(&a), &names(&b)).outcome, Agreement::Agree);
    }

    #[test]
    fn different_names_disagree_on_both_parts() {
        let r = compare(
            &names(&patient("Koepp", &["Abdul"])),
            &names(&patient("Smith", &["Rosie"])),
        );
        assert_eq!(r.outcome, Agreement::Disagree);
        assert!(r.part_disagrees);
        // log2(0.04/0.95) + log2(0.03/0.925) = -4.5699 + -4.9465.
        assert!((r.weight + 9.5164).abs() < 1e-3, "{}", r.weight);
    }

    #[test]
    fn text_only_names_and_malformed_names_do_not_panic() {
        let t = names(&json!({"name": [{"text": "Abdul Koepp"}]}));
        assert_eq!(
            compare(&t, &names(&patient("Koepp", &["Abdul"]))).outcome,
            Agreement::Agree
        );
        for v in [
            json!(null),
            json!({"name": 3}),
            json!({"name": [1, "x", {"family": 2, "given": "Abdul"}]}),
            json!({"name": [{"given": [null, 4]}]}),
        ] {
            assert_eq!(compare(&names(&v), &t).outcome, Agreement::Missing, "{v}");
        }
    }
}
