//! Conformance: search by each `Match` kind, OR within and AND across criteria,
//! paging, and never a deleted or replaced entry.

use std::collections::BTreeSet;

use oxehr_search::IndexValue;

use oxehr_search::query::{
    Condition, DateTest, Filter, NumberTest, Prefix, QuantityTest, Query, Total, UriTest, ValueTest,
};

use crate::search::Position;
use crate::Store;

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

/// The test DSL: one parameter occurrence (an OR of conditions) on Observation.
#[derive(Debug, Clone)]
pub(super) struct Criterion(Filter);

/// What the old plain search called a match; each maps onto one query condition.
#[derive(Debug, Clone)]
pub(super) enum Match {
    StringPrefix(String),
    Token {
        system: Option<Option<String>>,
        code: Option<String>,
    },
    Reference {
        target_type: Option<String>,
        target_id: String,
    },
    ReferenceUrl(String),
    Uri(String),
    DateWithin {
        low: i64,
        high: i64,
    },
    /// `eq` on a number written as this text (its precision gives the range).
    Number(&'static str),
    Id(String),
}

pub(super) fn crit(code: &str, any_of: Vec<Match>) -> Criterion {
    Criterion::on("Observation", code, any_of)
}

impl Criterion {
    pub(super) fn on(rtype: &str, code: &str, any_of: Vec<Match>) -> Criterion {
        let params = vec![param(rtype, code)];
        let any_of = any_of
            .into_iter()
            .map(|m| {
                let test = match m {
                    Match::StringPrefix(s) => ValueTest::StringStartsWith(s),
                    Match::Token { system, code } => ValueTest::Token { system, code },
                    Match::Reference {
                        target_type,
                        target_id,
                    } => ValueTest::Reference {
                        target_type,
                        id: target_id,
                    },
                    Match::ReferenceUrl(url) => ValueTest::ReferenceUrl {
                        url,
                        version: None,
                        target_type: None,
                    },
                    Match::Uri(u) => ValueTest::Uri(UriTest::Equals(u)),
                    Match::DateWithin { low, high } => ValueTest::Date(DateTest {
                        prefix: Prefix::Eq,
                        low,
                        high,
                        ap_margin: 0,
                    }),
                    Match::Number(text) => {
                        let (value, low, high) =
                            oxehr_search::extract::quantity::number_range(text).expect("number");
                        let n = NumberTest {
                            prefix: Prefix::Eq,
                            value,
                            low,
                            high,
                        };
                        if code == "value-quantity" {
                            ValueTest::Quantity(QuantityTest {
                                number: n,
                                system: None,
                                code: None,
                                canonical: None,
                            })
                        } else {
                            ValueTest::Number(n)
                        }
                    }
                    Match::Id(id) => return Condition::Id(id),
                };
                Condition::Value {
                    params: params.clone(),
                    test,
                }
            })
            .collect();
        Criterion(Filter {
            negated: false,
            any_of,
        })
    }
}

/// A search of Patients.
pub(super) fn patients(criteria: Vec<Criterion>) -> Query {
    Query {
        types: vec!["Patient".into()],
        ..query(criteria)
    }
}

pub(super) fn query(criteria: Vec<Criterion>) -> Query {
    Query {
        types: vec!["Observation".into()],
        filters: criteria.into_iter().map(|c| c.0).collect(),
        sort: Vec::new(),
        include: Vec::new(),
        revinclude: Vec::new(),
        count: None,
        total: Total::Accurate,
        ignored: Vec::new(),
        page: None,
    }
}

/// Every match of `q`, fetched `page_size` at a time by position.
pub(super) fn all_pages(store: &dyn Store, q: &Query, page_size: usize) -> Vec<Vec<String>> {
    let mut r = store.read().expect("read");
    let mut pages = Vec::new();
    let mut pos = Position::First;
    loop {
        let hits = crate::search::page(&mut *r, &crate::access::Access::All, q, &pos, page_size)
            .expect("search");
        for h in &hits {
            assert!(h.resource.body.is_some(), "search returns bodies");
        }
        let Some(last) = hits.last() else { break };
        pos = Position::After(last.keys.clone(), last.rid);
        let full = hits.len() == page_size;
        pages.push(
            hits.iter()
                .map(|h| h.resource.id.as_str().to_owned())
                .collect(),
        );
        if !full {
            break;
        }
    }
    pages
}

pub(super) fn search_set(store: &dyn Store, criteria: Vec<Criterion>) -> (BTreeSet<String>, u64) {
    let q = query(criteria);
    let n = crate::search::count(
        &mut *store.read().expect("read"),
        &crate::access::Access::All,
        &q,
    )
    .expect("count");
    (all_pages(store, &q, 1000).concat().into_iter().collect(), n)
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
    let near = Match::Number;
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
            ("number 10", one("probability", near("10")), vec!["o1"]),
            (
                "number 10.4 is not 10 at that precision",
                one("probability", near("10.4")),
                vec![],
            ),
            ("number 1e1", one("probability", near("1e1")), vec!["o1"]),
            ("number 11", one("probability", near("11")), vec![]),
            ("quantity 5", one("value-quantity", near("5")), vec!["o1"]),
            ("quantity 7", one("value-quantity", near("7")), vec!["o2"]),
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

pub fn search_pages_by_position(store: &dyn Store) {
    let vs = (0..7)
        .map(|i| {
            let e = vec![entry("Observation", "code", token(Some("urn:s"), "c"))];
            version("Observation", &format!("o{i}"), 1, 10 + i, e)
        })
        .collect();
    write_ok(store, vs);
    let q = query(vec![crit("code", vec![tok(None, Some("c"))])]);
    let all = all_pages(store, &q, 100).concat();
    assert_eq!(all.len(), 7, "all seven match");
    assert_eq!(
        all,
        all_pages(store, &q, 100).concat(),
        "the order is stable"
    );
    let pages = all_pages(store, &q, 3);
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1],
        "page sizes"
    );
    assert_eq!(pages.concat(), all, "pages partition the result in order");
    // Backwards from the last page's first row gives the page before it.
    let mut r = store.read().expect("read");
    let forward = crate::search::page(
        &mut *r,
        &crate::access::Access::All,
        &q,
        &Position::First,
        6,
    )
    .expect("page");
    let before = crate::search::page(
        &mut *r,
        &crate::access::Access::All,
        &q,
        &Position::Before(forward[3].keys.clone(), forward[3].rid),
        3,
    )
    .expect("page");
    let ids = |h: &[crate::search::Hit]| {
        h.iter()
            .map(|h| h.resource.id.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&before), ids(&forward[..3]), "previous page, in order");
    let n = crate::search::count(&mut *r, &crate::access::Access::All, &q).expect("count");
    assert_eq!(n, 7, "the count ignores paging");
}

/// Writes `n` Observations `{prefix}{i:03}` of patient p2 with code `code`, those `i` for which
/// `dated(i)` also with a date in [T0+100, T0+200] (see [`and_dated`]), in one job.
fn coded_observations(
    store: &dyn Store,
    prefix: &str,
    code: &str,
    n: usize,
    dated: fn(usize) -> bool,
) {
    let vs = (0..n)
        .map(|i| {
            let mut e = vec![entry("Observation", "code", token(Some("urn:s"), code))];
            if dated(i) {
                e.push(entry(
                    "Observation",
                    "date",
                    IndexValue::Date {
                        low: T0 + 100,
                        high: T0 + 200,
                    },
                ));
            }
            let mut v = version("Observation", &format!("{prefix}{i:03}"), 1, 10, e);
            v.compartments = vec![id("p2")];
            v
        })
        .collect();
    write_ok(store, vs);
}

/// `q` and a date within [T0+100, T0+200].
fn and_dated(mut q: Query) -> Query {
    q.filters.push(
        crit(
            "date",
            vec![Match::DateWithin {
                low: T0 + 100,
                high: T0 + 200,
            }],
        )
        .0,
    );
    q
}

/// A count that stops at a cap, and an estimate from the driving condition's index rows
/// alone: never fewer than the matches, blind to the other conditions, and refused to a
/// caller who may not see everything.
pub fn search_counts_up_to_a_cap_and_estimates_from_the_index(store: &dyn Store) {
    // Seven Observations with code c, the first three of them also dated.
    coded_observations(store, "o", "c", 7, |i| i < 3);
    let all = crate::access::Access::All;
    let by_code = query(vec![crit("code", vec![tok(None, Some("c"))])]);
    let mut r = store.read().expect("read");
    let up_to = |r: &mut dyn crate::ReadTx, q: &Query, cap: u64| {
        crate::search::count_up_to(r, &all, q, cap).expect("count up to")
    };
    assert_eq!(
        up_to(&mut *r, &by_code, 3),
        4,
        "more than the cap reads as cap + 1"
    );
    assert_eq!(up_to(&mut *r, &by_code, 7), 7, "a cap the matches reach");
    assert_eq!(up_to(&mut *r, &by_code, 100), 7, "a cap above the matches");
    assert_eq!(
        crate::search::estimate(&mut *r, &all, &by_code).expect("estimate"),
        Some(7),
        "one condition: its rows are the matches"
    );
    // The code drives (a date range is less selective); the date leaves three.
    let dated = and_dated(by_code.clone());
    assert_eq!(up_to(&mut *r, &dated, 100), 3, "both conditions");
    assert_eq!(
        crate::search::estimate(&mut *r, &all, &dated).expect("estimate"),
        Some(7),
        "the estimate reads the driving condition's rows only"
    );
    let hidden = crate::access::Access::Patients(vec!["p1".into()]);
    assert_eq!(
        crate::search::estimate(&mut *r, &hidden, &by_code).expect("estimate"),
        None,
        "no estimate for a caller who may not see everything"
    );
    assert_eq!(
        crate::search::count_up_to(&mut *r, &hidden, &by_code, 100).expect("count"),
        0,
        "another patient's records are not counted, though the index holds their rows"
    );
    drop(r);
    write_ok(store, vec![deletion("Observation", "o006", 2, 30)]);
    let mut r = store.read().expect("read");
    assert_eq!(
        up_to(&mut *r, &by_code, 100),
        6,
        "a deleted resource is not counted"
    );
    assert_eq!(
        crate::search::estimate(&mut *r, &all, &by_code).expect("estimate"),
        Some(6),
        "a deleted resource leaves the index"
    );
}

/// A page read a window of driver keys at a time: when few keys pass the other
/// conditions, the next windows are read until the page is full or the keys run out, in
/// key order and without gaps or repeats.
pub fn search_pages_through_windows_of_driver_keys(store: &dyn Store) {
    // 300 Observations with code w; every tenth also dated: 30 matches of both.
    coded_observations(store, "w", "w", 300, |i| i % 10 == 0);
    let q = and_dated(query(vec![crit("code", vec![tok(None, Some("w"))])]));
    // Written in one job in this order, so key order is id order.
    let expected: Vec<String> = (0..300)
        .filter(|i| i % 10 == 0)
        .map(|i| format!("w{i:03}"))
        .collect();
    for size in [1, 7, 25, 30, 31, 100] {
        let pages = all_pages(store, &q, size);
        assert_eq!(pages.concat(), expected, "pages of {size}");
        assert!(
            pages.iter().rev().skip(1).all(|p| p.len() == size),
            "every page but the last is full ({size})"
        );
    }
    let mut r = store.read().expect("read");
    let all = crate::access::Access::All;
    for (cap, want) in [(10, 11), (29, 30), (30, 30), (1000, 30)] {
        assert_eq!(
            crate::search::count_up_to(&mut *r, &all, &q, cap).expect("count"),
            want,
            "count up to {cap}"
        );
    }
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

/// Every date and number prefix through the SQL, against the search page's definitions:
/// a date search value is a range, here [T0+100, T0+199]; rows are ranges too.
pub fn search_prefixes_follow_the_search_page(store: &dyn Store) {
    let o = "Observation";
    let dates = [
        ("inside", 120, 130),
        ("straddles", 50, 150),
        ("after", 250, 300),
        ("before", 10, 20),
    ];
    let numbers = [("n9", "9"), ("n10", "10"), ("n10.4", "10.4"), ("n11", "11")];
    let mut vs = Vec::new();
    for (i, (id, lo, hi)) in dates.iter().enumerate() {
        let e = vec![entry(
            o,
            "date",
            IndexValue::Date {
                low: T0 + lo,
                high: T0 + hi,
            },
        )];
        vs.push(version(o, id, 1, 10 + i as i64, e));
    }
    for (i, (id, text)) in numbers.iter().enumerate() {
        let (value, low, high) =
            oxehr_search::extract::quantity::number_range(text).expect("number");
        let e = vec![entry(
            o,
            "probability",
            IndexValue::Number { value, low, high },
        )];
        vs.push(version(o, id, 1, 20 + i as i64, e));
    }
    write_ok(store, vs);
    let run = |code: &str, test: ValueTest| {
        let c = Criterion(Filter {
            negated: false,
            any_of: vec![Condition::Value {
                params: vec![param(o, code)],
                test,
            }],
        });
        search_set(store, vec![c]).0
    };
    let set = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    let date_cases = [
        (Prefix::Eq, vec!["inside"]),
        (Prefix::Ne, vec!["straddles", "after", "before"]),
        (Prefix::Gt, vec!["after"]),
        (Prefix::Lt, vec!["straddles", "before"]),
        (Prefix::Ge, vec!["inside", "after"]),
        (Prefix::Le, vec!["inside", "straddles", "before"]),
        (Prefix::Sa, vec!["after"]),
        (Prefix::Eb, vec!["before"]),
        (Prefix::Ap, vec!["inside", "straddles"]),
    ];
    for (prefix, want) in date_cases {
        let test = ValueTest::Date(DateTest {
            prefix,
            low: T0 + 100,
            high: T0 + 199,
            ap_margin: 10,
        });
        assert_eq!(run("date", test), set(&want), "date {prefix:?}");
    }
    // 10 means [9.5, 10.5); ap accepts 10%.
    let number_cases = [
        (Prefix::Eq, vec!["n10", "n10.4"]),
        (Prefix::Ne, vec!["n9", "n11"]),
        (Prefix::Gt, vec!["n10.4", "n11"]),
        (Prefix::Lt, vec!["n9"]),
        (Prefix::Ge, vec!["n10", "n10.4", "n11"]),
        (Prefix::Le, vec!["n9", "n10"]),
        (Prefix::Sa, vec!["n10.4", "n11"]),
        (Prefix::Eb, vec!["n9"]),
        (Prefix::Ap, vec!["n9", "n10", "n10.4", "n11"]),
    ];
    for (prefix, want) in number_cases {
        let test = ValueTest::Number(NumberTest {
            prefix,
            value: 10.0,
            low: 9.5,
            high: 10.5,
        });
        assert_eq!(run("probability", test), set(&want), "number {prefix:?}");
    }
}
