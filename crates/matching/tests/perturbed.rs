//! Match quality on perturbed Synthea patients: every copy of every patient against every
//! original patient, counted at the probable threshold (certain and probable are "match").
//! The set and its perturbations are in `support/perturb.rs`; the full table per
//! perturbation and threshold is printed by `examples/match_quality.rs`.

mod support {
    pub mod perturb;
}

use oxehr_matching::{candidate_queries, compare, Grade};
use serde_json::Value;
use support::perturb::{
    at_least, blocking_hit, copies, grade_all, relatives, shared_patients, without_identifiers,
    Confusion, Perturbed, Relative, Rng, SEED,
};

fn confusion(set: &[Perturbed], originals: &[Value]) -> Confusion {
    let mut c = Confusion::default();
    for (copy, row) in set.iter().zip(grade_all(set, originals)) {
        for (o, g) in row.into_iter().enumerate() {
            c.add(o == copy.of, at_least(g, Grade::Probable));
        }
    }
    c
}

fn demographic(set: &[Perturbed]) -> Vec<Perturbed> {
    let mut rng = Rng::new(SEED ^ 0xD00D);
    set.iter()
        .filter_map(|c| without_identifiers(c, &mut rng))
        .collect()
}

// Measured: precision 1.0 and recall 1.0 on both sets (0 false positives, 0 false
// negatives). The floors leave room for a 1 % loss of recall, never for a false positive.
#[test]
fn perturbed_copies_match_their_original_at_probable() {
    oxehr_testdata::require!();
    let Some(patients) = shared_patients() else {
        return;
    };
    let set = copies(patients, SEED);
    for (name, set) in [
        ("as perturbed", set.clone()),
        ("demographics only", demographic(&set)),
    ] {
        let c = confusion(&set, patients);
        println!(
            "{name}: {} pairs, TP {} FN {} FP {} TN {}, precision {:.4}, recall {:.4}",
            c.pairs(),
            c.tp,
            c.fn_,
            c.fp,
            c.tn,
            c.precision(),
            c.recall()
        );
        assert!(c.tp + c.fn_ > 1000, "{name}: too few true pairs: {c:?}");
        assert_eq!(c.fp, 0, "{name}: false positives: {c:?}");
        assert!(c.precision() >= 0.99, "{name}: {c:?}");
        assert!(
            c.recall() >= 0.99,
            "{name}: recall {:.4}: {c:?}",
            c.recall()
        );
    }
}

#[test]
fn every_exact_copy_with_its_identifiers_is_certain() {
    oxehr_testdata::require!();
    let Some(patients) = shared_patients() else {
        return;
    };
    for (i, p) in patients.iter().enumerate() {
        let m = compare(&p.clone(), p);
        assert_eq!(m.grade, Grade::Certain, "patient {i}: {m:?}");
    }
}

#[test]
fn no_two_different_originals_are_certain() {
    oxehr_testdata::require!();
    let Some(patients) = shared_patients() else {
        return;
    };
    for (i, a) in patients.iter().enumerate() {
        for (j, b) in patients.iter().enumerate().filter(|(j, _)| *j != i) {
            let m = compare(a, b);
            assert_ne!(m.grade, Grade::Certain, "patients {i} and {j}: {m:?}");
            assert_ne!(m.grade, Grade::Probable, "patients {i} and {j}: {m:?}");
        }
    }
}

/// Relatives in one household are the hardest non-matches: only a twin (same family, birth
/// date, gender, address and phone) may reach probable, and nobody certain.
#[test]
fn household_relatives_are_never_certain() {
    oxehr_testdata::require!();
    let Some(patients) = shared_patients() else {
        return;
    };
    for (of, kind, r) in relatives(patients, SEED ^ 0x4E1) {
        let grade = compare(&r, &patients[of]).grade;
        let ceiling = match kind {
            Relative::Twin => Grade::Probable,
            Relative::Spouse | Relative::Sibling | Relative::Parent => Grade::Possible,
        };
        assert!(
            !at_least(grade, ceiling) || grade == ceiling,
            "{} of patient {of} is {}",
            kind.label(),
            grade.code()
        );
    }
}

/// Each copy's blocking keys, run with the store's search semantics, find its original.
#[test]
fn candidate_queries_find_the_original_of_every_copy() {
    oxehr_testdata::require!();
    let Some(patients) = shared_patients() else {
        return;
    };
    let set = copies(patients, SEED);
    let demographic = demographic(&set);
    for c in set.iter().chain(&demographic) {
        let keys = candidate_queries(&c.patient);
        assert!(keys.len() <= 8, "{}: {keys:?}", c.label());
        assert!(
            keys.iter()
                .any(|(n, v)| blocking_hit(&patients[c.of], n, v)),
            "{} of patient {}: {keys:?}",
            c.label(),
            c.of
        );
    }
}
