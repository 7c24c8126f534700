//! `put_many` against a loop of `put`: the same jobs run on two fresh stores, one job
//! calling `put` for each version and the other `put_many` once, must answer the same
//! and leave the same rows (current, every version, index entries, compartments). The
//! trait's default `put_many` is that loop, so this checks the PostgreSQL override keeps
//! its exact semantics, conflicts included.

use oxehr_fhir::{ResourceId, ResourceType, VersionId};
use oxehr_search::{IndexEntry, IndexValue, ParamKey};
use oxehr_store::{
    HistoryQuery, HistoryScope, Method, NewVersion, Store, StoreError, StoredResource,
};

use super::fresh;

const T0: i64 = 1_700_000_000_000_000;

fn text(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// One index entry of every kind, varied by `n` so that versions differ.
fn entries(rtype: &str, n: u64) -> Vec<IndexEntry> {
    let p = |code: &str| ParamKey::of(rtype, code);
    let f = n as f64;
    let token = IndexValue::Token {
        system: text("http://loinc.org"),
        code: Some(format!("code-{n}")),
        text: None,
    };
    let quantity = IndexValue::Quantity {
        value: f,
        low: f - 0.5,
        high: f + 0.5,
        system: text("http://unitsofmeasure.org"),
        code: text("mm[Hg]"),
        unit: text("mmHg"),
        canonical_value: Some(f * 133.322),
        canonical_code: text("g.m-1.s-2"),
    };
    let values = vec![
        (
            "name",
            IndexValue::String {
                normalized: format!("name {n}"),
                exact: format!("Name {n}"),
            },
        ),
        ("code", token.clone()),
        (
            "status",
            IndexValue::Token {
                system: None,
                code: text("final"),
                text: text("final"),
            },
        ),
        (
            "date",
            IndexValue::Date {
                low: T0 + n as i64,
                high: T0 + n as i64 + 999,
            },
        ),
        (
            "probability",
            IndexValue::Number {
                value: f,
                low: f - 0.05,
                high: f + 0.05,
            },
        ),
        ("value-quantity", quantity.clone()),
        (
            "subject",
            IndexValue::Reference {
                target_type: text("Patient"),
                target_id: Some(format!("p{n}")),
                version: None,
                url: None,
                identifier_system: None,
                identifier_value: None,
            },
        ),
        (
            "based-on",
            IndexValue::Reference {
                target_type: None,
                target_id: None,
                version: None,
                url: None,
                identifier_system: text("urn:oid:1.2.3"),
                identifier_value: Some(n.to_string()),
            },
        ),
        (
            "url",
            IndexValue::Uri {
                value: format!("http://example.org/{n}"),
            },
        ),
        (
            "code-value-quantity",
            IndexValue::Composite {
                parts: vec![token, quantity],
            },
        ),
    ];
    values
        .into_iter()
        .map(|(code, value)| IndexEntry {
            param: p(code),
            value,
        })
        .collect()
}

/// Version `v` of `rtype/id`; `n` varies its content and the patients it belongs to.
fn version(rtype: &str, id: &str, v: u64, n: u64) -> NewVersion {
    let body =
        format!(r#"{{"resourceType":"{rtype}","id":"{id}","meta":{{"versionId":"{v}"}},"n":{n}}}"#);
    NewVersion {
        resource: StoredResource {
            rtype: ResourceType::parse(rtype).expect("type"),
            id: ResourceId::parse(id).expect("id"),
            version: VersionId(v),
            last_updated: T0 + (v * 1000 + n) as i64,
            method: if v == 1 {
                Method::Create
            } else {
                Method::Update
            },
            body: Some(body),
        },
        index: entries(rtype, n),
        // A repeated patient: membership is a set.
        compartments: ["p1", "p2", "p1"][..(n % 4) as usize]
            .iter()
            .map(|p| ResourceId::parse(p).expect("id"))
            .collect(),
    }
}

fn deletion(rtype: &str, id: &str, v: u64) -> NewVersion {
    let mut d = version(rtype, id, v, 0);
    d.resource.method = Method::Delete;
    d.resource.body = None;
    d.index.clear();
    d.compartments.clear();
    d
}

/// How a job stores its versions. With `ignore_errors` the job goes on after an error
/// of the put(s) and commits whatever they left stored.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Way {
    OneByOne { ignore_errors: bool },
    Many { ignore_errors: bool },
}

fn run(store: &dyn Store, way: Way, versions: Vec<NewVersion>) -> Result<(), String> {
    let out = store.write(Box::new(move |tx| {
        let (r, ignore) = match way {
            Way::OneByOne { ignore_errors } => {
                (versions.iter().try_for_each(|v| tx.put(v)), ignore_errors)
            }
            Way::Many { ignore_errors } => (tx.put_many(&versions), ignore_errors),
        };
        match r {
            Err(e) if ignore => Ok(Box::new(format!("job saw {e}"))),
            Err(e) => Err(e),
            Ok(()) => Ok(Box::new(String::from("job ok"))),
        }
    }));
    match out {
        Ok(o) => Ok(*o.downcast::<String>().expect("job output")),
        Err(StoreError::Conflict) => Err("Conflict".into()),
        Err(e) => Err(format!("other error: {e}")),
    }
    .and_then(|s| if s == "job ok" { Ok(()) } else { Err(s) })
}

/// Everything stored about the given resources, comparable across stores.
fn state(store: &dyn Store, keys: &[(&str, String)]) -> Vec<String> {
    let mut r = store.read().expect("read");
    let mut out = Vec::new();
    for (rtype, id) in keys {
        let (t, i) = (
            ResourceType::parse(rtype).expect("type"),
            ResourceId::parse(id).expect("id"),
        );
        out.push(format!("{:?}", r.current(&t, &i).expect("current")));
        let q = HistoryQuery {
            scope: HistoryScope::Instance(t.clone(), i.clone()),
            since: None,
            at: None,
            count: 100,
            offset: 0,
            access: oxehr_store::access::Access::All,
        };
        out.push(format!("{:?}", r.history(&q).expect("history")));
        let mut idx: Vec<String> = r
            .index_entries(&t, &i)
            .expect("index entries")
            .iter()
            .map(|e| format!("{e:?}"))
            .collect();
        idx.sort();
        out.push(idx.join("\n"));
        let mut comp = r.compartments(&t, &i).expect("compartments");
        comp.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        out.push(format!("{comp:?}"));
    }
    out
}

/// Runs `jobs` one by one on one store and with `put_many` on another, and compares
/// every answer and the final rows of `keys`.
fn same_as_one_by_one(ignore_errors: bool, jobs: Vec<Vec<NewVersion>>, keys: &[(&str, String)]) {
    let (Some(a), Some(b)) = (fresh(), fresh()) else {
        return;
    };
    for (n, job) in jobs.into_iter().enumerate() {
        let expected = run(&a, Way::OneByOne { ignore_errors }, job.clone());
        let got = run(&b, Way::Many { ignore_errors }, job);
        assert_eq!(
            got, expected,
            "answer of job {n} (ignore_errors: {ignore_errors})"
        );
    }
    let (sa, sb) = (state(&a, keys), state(&b, keys));
    for (x, y) in sa.iter().zip(&sb) {
        assert_eq!(y, x, "stored rows (ignore_errors: {ignore_errors})");
    }
}

fn obs(n: usize) -> (&'static str, String) {
    ("Observation", format!("o{n}"))
}

#[test]
fn put_many_stores_what_put_one_by_one_stores() {
    let o = |i: usize| format!("o{i}");
    // (name, jobs): each job is one put_many / one loop of puts.
    let cases: Vec<(&str, Vec<Vec<NewVersion>>)> = vec![
        (
            "creates",
            vec![(0..5)
                .map(|i| version("Observation", &o(i), 1, i as u64))
                .collect()],
        ),
        (
            "updates, a delete and a create in one batch",
            vec![
                (0..4)
                    .map(|i| version("Observation", &o(i), 1, i as u64))
                    .collect(),
                vec![
                    version("Observation", &o(0), 2, 10),
                    deletion("Observation", &o(1), 2),
                    version("Observation", &o(4), 1, 14),
                    version("Observation", &o(2), 2, 12),
                ],
                vec![
                    version("Observation", &o(1), 3, 21),
                    version("Observation", &o(0), 3, 20),
                ],
            ],
        ),
        (
            "one resource twice in a batch",
            vec![vec![
                version("Observation", &o(0), 1, 1),
                version("Observation", &o(1), 1, 2),
                version("Observation", &o(0), 2, 3),
                version("Observation", &o(0), 3, 4),
            ]],
        ),
        (
            "create of an existing resource conflicts",
            vec![
                vec![version("Observation", &o(2), 1, 1)],
                vec![
                    version("Observation", &o(0), 1, 2),
                    version("Observation", &o(1), 1, 3),
                    version("Observation", &o(2), 1, 4),
                    version("Observation", &o(3), 1, 5),
                ],
            ],
        ),
        (
            "a skipped version and version 2 of a new resource conflict",
            vec![
                (0..2)
                    .map(|i| version("Observation", &o(i), 1, i as u64))
                    .collect(),
                vec![
                    version("Observation", &o(0), 2, 6),
                    version("Observation", &o(1), 3, 7),
                ],
                vec![
                    version("Observation", &o(0), 2, 8),
                    version("Observation", &o(3), 2, 9),
                ],
            ],
        ),
        (
            "version 0 conflicts",
            vec![vec![
                version("Observation", &o(0), 1, 1),
                version("Observation", &o(1), 0, 1),
            ]],
        ),
        (
            "empty and single batches",
            vec![vec![], vec![version("Observation", &o(0), 1, 1)]],
        ),
    ];
    let keys: Vec<(&str, String)> = (0..6).map(obs).collect();
    for (name, jobs) in cases {
        for ignore_errors in [false, true] {
            eprintln!("case: {name} (ignore_errors: {ignore_errors})");
            same_as_one_by_one(ignore_errors, jobs.clone(), &keys);
        }
    }
}

#[test]
fn put_many_over_several_statements_is_one_transaction() {
    // More versions than one statement takes, then the same again with a conflict at
    // the very end: nothing of the second job may stay.
    let n = 2100;
    let first: Vec<NewVersion> = (0..n)
        .map(|i| version("Observation", &format!("o{i}"), 1, i as u64))
        .collect();
    let mut second: Vec<NewVersion> = (0..n)
        .map(|i| version("Observation", &format!("o{i}"), 2, i as u64 + 7))
        .collect();
    second.push(version("Observation", "new", 2, 1));
    let mut keys: Vec<(&str, String)> = [0, 999, 1000, 1001, 2099].into_iter().map(obs).collect();
    keys.push(("Observation", "new".into()));
    same_as_one_by_one(false, vec![first.clone(), second.clone()], &keys);
    same_as_one_by_one(true, vec![first, second], &keys);
}
