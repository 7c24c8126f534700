//! Precision and recall of `oxehr_matching::compare` on perturbed Synthea patients, per
//! perturbation and per grade threshold, and the recall of `candidate_queries` as blocking.
//!
//! `cargo run -p oxehr-matching --release --example match_quality`

#[path = "../tests/support/perturb.rs"]
mod perturb;

use std::collections::BTreeMap;

use oxehr_matching::compare;
use oxehr_matching::{candidate_queries, Grade};
use perturb::{
    at_least, blocking_hit, combinations, copies, copies_of, grade_all, patients_or_skip,
    relatives, without_identifiers, Confusion, Kind, Perturbed, Rng, KINDS, RELATIVES, SEED,
};
use serde_json::Value;

const THRESHOLDS: [Grade; 3] = [Grade::Certain, Grade::Probable, Grade::Possible];

fn main() {
    let Some(patients) = patients_or_skip() else {
        return;
    };
    let set = copies(&patients, SEED);
    let mut rng = Rng::new(SEED ^ 0xD00D);
    let demographic: Vec<Perturbed> = set
        .iter()
        .filter_map(|c| without_identifiers(c, &mut rng))
        .collect();
    println!(
        "{} patients; {} perturbed copies ({} more with identifiers replaced); every copy is compared with every original",
        patients.len(),
        set.len(),
        demographic.len()
    );
    report(
        "As perturbed (identifiers kept unless the perturbation replaces them)",
        &set,
        &patients,
        false,
    );
    report(
        "Demographics only (every copy's identifiers replaced by a new MRN)",
        &demographic,
        &patients,
        true,
    );
    // Stress: three demographic perturbations at once, identifiers replaced.
    let demographic_kinds: Vec<Kind> = KINDS
        .iter()
        .copied()
        .filter(|k| *k != Kind::NewIdentifiers)
        .collect();
    let triples: Vec<Vec<Kind>> = combinations(&demographic_kinds, 3)
        .into_iter()
        .map(|mut s| {
            s.push(Kind::NewIdentifiers);
            s
        })
        .collect();
    let stress = copies_of(&patients, &triples, SEED ^ 0x3);
    report(
        "Stress: three demographic perturbations, identifiers replaced",
        &stress,
        &patients,
        true,
    );
    household(&patients);
    blocking(&set, &patients, "as perturbed");
    blocking(&demographic, &patients, "demographics only");
    blocking(&stress, &patients, "stress");
}

/// The grade of each patient's relatives against the patient: non-matches that share a
/// household, the hardest for any demographic matcher.
fn household(patients: &[Value]) {
    let rel = relatives(patients, SEED ^ 0x4E1);
    println!(
        "\n## Hard non-matches: a relative in the same household, compared with the patient\n"
    );
    println!("| relative | pairs | certain | probable | possible | certainly-not |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for kind in RELATIVES {
        let mut counts = [0usize; 4];
        for (of, _, r) in rel.iter().filter(|(_, k, _)| *k == kind) {
            let g = compare(r, &patients[*of]).grade;
            counts[match g {
                Grade::Certain => 0,
                Grade::Probable => 1,
                Grade::Possible => 2,
                Grade::CertainlyNot => 3,
            }] += 1;
        }
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            kind.label(),
            counts.iter().sum::<usize>(),
            counts[0],
            counts[1],
            counts[2],
            counts[3]
        );
    }
}

/// The row a copy counts in; in the demographics-only sections the replaced identifiers
/// are left out of the label (the title says so).
fn group(c: &Perturbed, demographic: bool) -> String {
    let kinds: Vec<&str> = c
        .kinds
        .iter()
        .filter(|k| !(demographic && **k == Kind::NewIdentifiers))
        .map(|k| k.label())
        .collect();
    match kinds.len() {
        0 if demographic => "new identifiers only".to_string(),
        0 => "exact copy".to_string(),
        1 => kinds[0].to_string(),
        n => format!("{n} kinds: {}", kinds.join(" + ")),
    }
}

fn report(title: &str, set: &[Perturbed], originals: &[Value], demographic: bool) {
    let started = std::time::Instant::now();
    let grades = grade_all(set, originals);
    let elapsed = started.elapsed();
    let mut rows: BTreeMap<String, [Confusion; 3]> = BTreeMap::new();
    let mut overall = [Confusion::default(); 3];
    let mut truth_grades: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (c, row) in set.iter().zip(&grades) {
        let key = group(c, demographic);
        let singles = key
            .split_once(" kinds: ")
            .map(|(n, _)| format!("all {n}-kind copies"));
        for (o, g) in row.iter().enumerate() {
            let same = o == c.of;
            if same {
                *truth_grades.entry(g.code()).or_default() += 1;
            }
            for (t, at) in THRESHOLDS.iter().enumerate() {
                let predicted = at_least(*g, *at);
                rows.entry(key.clone()).or_default()[t].add(same, predicted);
                if let Some(k) = &singles {
                    rows.entry(k.clone()).or_default()[t].add(same, predicted);
                }
                overall[t].add(same, predicted);
            }
        }
    }
    println!("\n## {title}\n");
    println!("| perturbation | copies | pairs | P ≥certain | R ≥certain | P ≥probable | R ≥probable | P ≥possible | R ≥possible |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut keys: Vec<&String> = rows.keys().collect();
    // Exact copy and single kinds first, then the aggregate of combinations, then each.
    keys.sort_by_key(|k| {
        let rank = if k.starts_with("exact") || k.starts_with("new identifiers only") {
            0
        } else if k.starts_with("all ") {
            2
        } else if k.contains(" kinds: ") {
            3
        } else {
            1
        };
        (rank, k.to_string())
    });
    let line = |name: &str, c: &[Confusion; 3]| {
        println!(
            "| {name} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |",
            c[1].tp + c[1].fn_,
            c[1].pairs(),
            c[0].precision(),
            c[0].recall(),
            c[1].precision(),
            c[1].recall(),
            c[2].precision(),
            c[2].recall()
        );
    };
    for k in keys {
        line(k, &rows[k]);
    }
    line("**all**", &overall);
    let c = overall[1];
    println!(
        "\nAt ≥probable: TP {} FN {} FP {} TN {}. Grades of the true pairs: {}",
        c.tp,
        c.fn_,
        c.fp,
        c.tn,
        truth_grades
            .iter()
            .map(|(g, n)| format!("{g} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "Compared {} pairs in {:.0} ms ({:.2} µs a pair, each record read once)",
        overall[1].pairs(),
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / overall[1].pairs() as f64
    );
}

/// Runs each copy's blocking keys against the originals and counts how often the copy's own original is among the candidates.
fn blocking(set: &[Perturbed], originals: &[Value], title: &str) {
    let mut found = 0;
    let mut candidates = 0;
    let mut keys = 0;
    for c in set {
        let queries = candidate_queries(&c.patient);
        keys += queries.len();
        let hits: Vec<usize> = (0..originals.len())
            .filter(|&o| {
                queries
                    .iter()
                    .any(|(n, v)| blocking_hit(&originals[o], n, v))
            })
            .collect();
        candidates += hits.len();
        found += usize::from(hits.contains(&c.of));
    }
    println!(
        "\nBlocking ({title}): {found} of {} copies find their original ({:.4}); {:.2} keys and {:.2} candidates per query over {} patients",
        set.len(),
        found as f64 / set.len() as f64,
        keys as f64 / set.len() as f64,
        candidates as f64 / set.len() as f64,
        originals.len()
    );
}
