//! Conformance: history per instance, type and system, newest first, with
//! since/at/count/offset.

use crate::{HistoryQuery, HistoryScope, Method, Store};

use super::build::*;

fn history_fixture(store: &dyn Store) {
    write_ok(store, vec![version("Patient", "a", 1, 10, Vec::new())]);
    write_ok(store, vec![version("Observation", "o", 1, 20, Vec::new())]);
    write_ok(store, vec![version("Patient", "a", 2, 30, Vec::new())]);
    write_ok(store, vec![version("Patient", "b", 1, 40, Vec::new())]);
    write_ok(store, vec![deletion("Observation", "o", 2, 50)]);
}

/// Keys of the rows of one history page, and the total count.
type Page = (Vec<String>, u64);
/// The keys and count a history query should give.
type Expected = (Vec<&'static str>, u64);

pub(super) fn history(
    store: &dyn Store,
    scope: HistoryScope,
    since: Option<i64>,
    at: Option<i64>,
    count: usize,
    offset: usize,
) -> Page {
    let q = HistoryQuery {
        scope,
        since: since.map(|t| T0 + t),
        at: at.map(|t| T0 + t),
        count,
        offset,
        access: crate::access::Access::All,
    };
    let mut r = store.read().expect("read");
    let rows = r.history(&q).expect("history");
    (keys(&rows), r.history_count(&q).expect("history_count"))
}

pub fn history_is_newest_first_per_scope(store: &dyn Store) {
    history_fixture(store);
    let cases: Vec<(HistoryScope, Vec<&str>)> = vec![
        (
            HistoryScope::Instance(rt("Patient"), id("a")),
            vec!["Patient/a/2", "Patient/a/1"],
        ),
        (
            HistoryScope::Type(rt("Patient")),
            vec!["Patient/b/1", "Patient/a/2", "Patient/a/1"],
        ),
        (
            HistoryScope::System,
            vec![
                "Observation/o/2",
                "Patient/b/1",
                "Patient/a/2",
                "Observation/o/1",
                "Patient/a/1",
            ],
        ),
        (HistoryScope::Instance(rt("Patient"), id("zz")), vec![]),
    ];
    for (scope, expected) in cases {
        let (got, n) = history(store, scope.clone(), None, None, 100, 0);
        assert_eq!(got, expected, "history of {scope:?}");
        assert_eq!(n, expected.len() as u64, "history_count of {scope:?}");
    }
    let mut r = store.read().expect("read");
    let q = HistoryQuery {
        scope: HistoryScope::Instance(rt("Observation"), id("o")),
        since: None,
        at: None,
        count: 1,
        offset: 0,
        access: crate::access::Access::All,
    };
    let del = r.history(&q).expect("history");
    assert_eq!(del.len(), 1);
    assert!(del[0].body.is_none(), "a deleted version has no body");
    assert_eq!(del[0].method, Method::Delete);
}

pub fn history_filters_since_at_count_offset(store: &dyn Store) {
    history_fixture(store);
    let s = || HistoryScope::System;
    let cases: Vec<(&str, Page, Expected)> = vec![
        (
            "since 30",
            history(store, s(), Some(30), None, 100, 0),
            (vec!["Observation/o/2", "Patient/b/1", "Patient/a/2"], 3),
        ),
        (
            "at 30",
            history(store, s(), None, Some(30), 100, 0),
            (vec!["Patient/a/2", "Observation/o/1", "Patient/a/1"], 3),
        ),
        (
            "since 20 at 40",
            history(store, s(), Some(20), Some(40), 100, 0),
            (vec!["Patient/b/1", "Patient/a/2", "Observation/o/1"], 3),
        ),
        (
            "count 2 offset 1",
            history(store, s(), None, None, 2, 1),
            (vec!["Patient/b/1", "Patient/a/2"], 5),
        ),
        (
            "offset past the end",
            history(store, s(), None, None, 10, 10),
            (vec![], 5),
        ),
        (
            "type since 30 count 1",
            history(
                store,
                HistoryScope::Type(rt("Patient")),
                Some(30),
                None,
                1,
                0,
            ),
            (vec!["Patient/b/1"], 2),
        ),
    ];
    for (what, got, (rows, n)) in cases {
        assert_eq!(got.0, rows, "history {what}");
        assert_eq!(got.1, n, "history_count {what}");
    }
}
