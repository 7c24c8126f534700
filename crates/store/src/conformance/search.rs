//! Conformance: search by each `Match` kind, OR within and AND across criteria,
//! paging, and never a deleted or replaced entry.

use std::collections::BTreeSet;

use oxehr_search::IndexValue;

use crate::{Criterion, Match, SimpleSearch, Store};

use super::build::*;

fn search_fixture(store: &dyn Store) {
    let o = "Observation";
    let o1 = vec![
        entry(o, "name", string("Smith")),
        entry(o, "code", token(Some("http://loinc.org"), "1234-5")),
        entry(o, "subject", reference("Patient", "p1")),
        entry(
            o,
            "url",
            IndexValue::Uri {
                value: "http://a.org/x".into(),
            },
        ),
        entry(
            o,
            "date",
            IndexValue::Date {
                low: T0 + 100,
                high: T0 + 200,
            },
        ),
        entry(
            o,
            "probability",
            IndexValue::Number {
                value: 10.0,
                low: 9.5,
                high: 10.5,
            },
        ),
        entry(o, "value-quantity", quantity(5.0, "mg")),
        entry(
            o,
            "instantiates",
            IndexValue::Reference {
                target_type: None,
                target_id: None,
                version: None,
                url: Some("http://example.org/Q/1".into()),
                identifier_system: None,
                identifier_value: None,
            },
        ),
    ];
    let o2 = vec![
        entry(o, "name", string("Smyth")),
        entry(o, "code", token(Some("http://snomed.info/sct"), "1234-5")),
        entry(o, "code", token(None, "abc")),
        entry(o, "subject", reference("Patient", "p2")),
        entry(
            o,
            "date",
            IndexValue::Date {
                low: T0 + 300,
                high: T0 + 400,
            },
        ),
        entry(o, "value-quantity", quantity(7.0, "mg")),
    ];
    let o3 = vec![
        entry(o, "name", string("Jones")),
        entry(o, "code", token(Some("http://loinc.org"), "999")),
        entry(o, "subject", reference("Group", "p1")),
        entry(
            o,
            "url",
            IndexValue::Uri {
                value: "http://b.org".into(),
            },
        ),
    ];
    // A Patient with the same values must never show up in an Observation search.
    let p = vec![
        entry(o, "name", string("Smith")),
        entry(o, "code", token(Some("http://loinc.org"), "1234-5")),
    ];
    write_ok(
        store,
        vec![
            version(o, "o1", 1, 10, o1),
            version(o, "o2", 1, 20, o2),
            version(o, "o3", 1, 30, o3),
            version("Patient", "px", 1, 40, p),
        ],
    );
}

pub(super) fn crit(code: &str, any_of: Vec<Match>) -> Criterion {
    Criterion {
        param: param("Observation", code),
        any_of,
    }
}

fn search_ids(
    store: &dyn Store,
    criteria: Vec<Criterion>,
    count: usize,
    offset: usize,
) -> Vec<String> {
    let q = SimpleSearch {
        rtype: rt("Observation"),
        criteria,
        count,
        offset,
    };
    let mut r = store.read().expect("read");
    let rows = r.search(&q).expect("search");
    for row in &rows {
        assert!(row.body.is_some(), "search returns bodies");
    }
    rows.iter().map(|r| r.id.as_str().to_owned()).collect()
}

pub(super) fn search_set(store: &dyn Store, criteria: Vec<Criterion>) -> (BTreeSet<String>, u64) {
    let q = SimpleSearch {
        rtype: rt("Observation"),
        criteria: criteria.clone(),
        count: 1000,
        offset: 0,
    };
    let n = store
        .read()
        .expect("read")
        .search_count(&q)
        .expect("search_count");
    (
        search_ids(store, criteria, 1000, 0).into_iter().collect(),
        n,
    )
}

fn tok(system: Option<Option<&str>>, code: Option<&str>) -> Match {
    Match::Token {
        system: system.map(|s| s.map(str::to_owned)),
        code: code.map(str::to_owned),
    }
}

fn check_cases(store: &dyn Store, cases: Vec<(&str, Vec<Criterion>, Vec<&str>)>) {
    for (what, criteria, expected) in cases {
        let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        let (got, n) = search_set(store, criteria);
        assert_eq!(got, expected, "search {what}");
        assert_eq!(n, expected.len() as u64, "search_count {what}");
    }
}

pub fn search_matches_each_kind(store: &dyn Store) {
    search_fixture(store);
    let loinc = "http://loinc.org";
    let one = |code: &str, m: Match| vec![crit(code, vec![m])];
    let near = Match::NumberNear;
    let within = |l: i64, h: i64| Match::DateWithin {
        low: T0 + l,
        high: T0 + h,
    };
    let refm = |t: Option<&str>, i: &str| Match::Reference {
        target_type: t.map(str::to_owned),
        target_id: i.into(),
    };
    check_cases(
        store,
        vec![
            (
                "string sm",
                one("name", Match::StringPrefix("sm".into())),
                vec!["o1", "o2"],
            ),
            (
                "string smi",
                one("name", Match::StringPrefix("smi".into())),
                vec!["o1"],
            ),
            (
                "string x",
                one("name", Match::StringPrefix("x".into())),
                vec![],
            ),
            (
                "string on other param",
                one("code", Match::StringPrefix("sm".into())),
                vec![],
            ),
            (
                "token sys|code",
                one("code", tok(Some(Some(loinc)), Some("1234-5"))),
                vec!["o1"],
            ),
            (
                "token code",
                one("code", tok(None, Some("1234-5"))),
                vec!["o1", "o2"],
            ),
            (
                "token |code",
                one("code", tok(Some(None), Some("abc"))),
                vec!["o2"],
            ),
            (
                "token |code with system",
                one("code", tok(Some(None), Some("1234-5"))),
                vec![],
            ),
            (
                "token sys|",
                one("code", tok(Some(Some(loinc)), None)),
                vec!["o1", "o3"],
            ),
            (
                "reference Patient/p1",
                one("subject", refm(Some("Patient"), "p1")),
                vec!["o1"],
            ),
            (
                "reference any/p1",
                one("subject", refm(None, "p1")),
                vec!["o1", "o3"],
            ),
            (
                "reference other id",
                one("subject", refm(None, "p9")),
                vec![],
            ),
            (
                "reference url",
                one(
                    "instantiates",
                    Match::ReferenceUrl("http://example.org/Q/1".into()),
                ),
                vec!["o1"],
            ),
            (
                "uri exact",
                one("url", Match::Uri("http://a.org/x".into())),
                vec!["o1"],
            ),
            (
                "uri is not a prefix",
                one("url", Match::Uri("http://a.org".into())),
                vec![],
            ),
            (
                "date within 0..250",
                one("date", within(0, 250)),
                vec!["o1"],
            ),
            (
                "date within 150..500",
                one("date", within(150, 500)),
                vec!["o2"],
            ),
            (
                "date within 0..1000",
                one("date", within(0, 1000)),
                vec!["o1", "o2"],
            ),
            (
                "date overlapping only",
                one("date", within(150, 350)),
                vec![],
            ),
            ("number 10", one("probability", near(10.0)), vec!["o1"]),
            (
                "number 10.4 in range",
                one("probability", near(10.4)),
                vec!["o1"],
            ),
            ("number 11", one("probability", near(11.0)), vec![]),
            ("quantity 5", one("value-quantity", near(5.0)), vec!["o1"]),
            ("quantity 7", one("value-quantity", near(7.0)), vec!["o2"]),
            ("_id", one("_id", Match::Id("o2".into())), vec!["o2"]),
            (
                "_id of a Patient",
                one("_id", Match::Id("px".into())),
                vec![],
            ),
        ],
    );
}

pub fn search_ors_within_and_ands_across_criteria(store: &dyn Store) {
    search_fixture(store);
    let loinc = Some(Some("http://loinc.org"));
    let snomed = Some(Some("http://snomed.info/sct"));
    let pre = |s: &str| Match::StringPrefix(s.into());
    check_cases(
        store,
        vec![
            (
                "no criteria: every Observation",
                vec![],
                vec!["o1", "o2", "o3"],
            ),
            (
                "OR of two tokens",
                vec![crit(
                    "code",
                    vec![tok(loinc, Some("999")), tok(snomed, Some("1234-5"))],
                )],
                vec!["o2", "o3"],
            ),
            (
                "AND of token and reference",
                vec![
                    crit("code", vec![tok(None, Some("1234-5"))]),
                    crit(
                        "subject",
                        vec![Match::Reference {
                            target_type: Some("Patient".into()),
                            target_id: "p2".into(),
                        }],
                    ),
                ],
                vec!["o2"],
            ),
            (
                "AND of two ORs",
                vec![
                    crit(
                        "code",
                        vec![tok(loinc, Some("1234-5")), tok(loinc, Some("999"))],
                    ),
                    crit("name", vec![pre("jo"), pre("sm")]),
                ],
                vec!["o1", "o3"],
            ),
            (
                "OR mixing _id and string",
                vec![crit("name", vec![pre("jon"), Match::Id("o1".into())])],
                vec!["o1", "o3"],
            ),
            (
                "AND with an unmatched criterion",
                vec![
                    crit("name", vec![pre("sm")]),
                    crit("url", vec![Match::Uri("http://b.org".into())]),
                ],
                vec![],
            ),
        ],
    );
}

pub fn search_pages_with_count_and_offset(store: &dyn Store) {
    let vs = (0..7)
        .map(|i| {
            let e = vec![entry("Observation", "code", token(Some("urn:s"), "c"))];
            version("Observation", &format!("o{i}"), 1, 10 + i, e)
        })
        .collect();
    write_ok(store, vs);
    let crits = || vec![crit("code", vec![tok(None, Some("c"))])];
    let all = search_ids(store, crits(), 100, 0);
    assert_eq!(all.len(), 7, "all seven match");
    assert_eq!(
        all,
        search_ids(store, crits(), 100, 0),
        "the order is stable"
    );
    let pages: Vec<Vec<String>> = [0, 3, 6, 9]
        .iter()
        .map(|off| search_ids(store, crits(), 3, *off))
        .collect();
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1, 0],
        "page sizes"
    );
    assert_eq!(pages.concat(), all, "pages partition the result in order");
    let (_, n) = search_set(store, crits());
    assert_eq!(n, 7, "search_count ignores count and offset");
}

pub fn search_never_matches_deleted_or_replaced_entries(store: &dyn Store) {
    let code = |c: &str| vec![entry("Observation", "code", token(Some("urn:s"), c))];
    write_ok(
        store,
        vec![
            version("Observation", "gone", 1, 10, code("a")),
            version("Observation", "moved", 1, 10, code("a")),
        ],
    );
    write_ok(
        store,
        vec![
            deletion("Observation", "gone", 2, 20),
            version("Observation", "moved", 2, 20, code("b")),
        ],
    );
    let by = |c: &str| vec![crit("code", vec![tok(None, Some(c))])];
    check_cases(
        store,
        vec![
            ("old value", by("a"), vec![]),
            ("new value", by("b"), vec!["moved"]),
            (
                "deleted by _id",
                vec![crit("_id", vec![Match::Id("gone".into())])],
                vec![],
            ),
            ("no criteria", vec![], vec!["moved"]),
        ],
    );
}
