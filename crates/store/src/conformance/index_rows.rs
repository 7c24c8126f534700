//! Conformance: index rows and compartment membership follow the current version.

use std::collections::BTreeSet;

use oxehr_search::{IndexEntry, IndexValue};

use crate::Store;

use super::build::*;

pub(super) fn every_kind() -> Vec<IndexEntry> {
    let o = "Observation";
    vec![
        entry(o, "name", string("Blood Pressure")),
        entry(o, "code", token(Some("http://loinc.org"), "85354-9")),
        entry(
            o,
            "code",
            IndexValue::Token {
                system: None,
                code: Some("bp".into()),
                text: Some("blood pressure".into()),
            },
        ),
        entry(
            o,
            "date",
            IndexValue::Date {
                low: T0,
                high: T0 + 999_999,
            },
        ),
        entry(
            o,
            "period",
            IndexValue::Date {
                low: i64::MIN,
                high: i64::MAX,
            },
        ),
        entry(
            o,
            "probability",
            IndexValue::Number {
                value: 0.25,
                low: 0.245,
                high: 0.255,
            },
        ),
        entry(
            o,
            "value-quantity",
            IndexValue::Quantity {
                value: 120.0,
                low: 119.5,
                high: 120.5,
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("mm[Hg]".into()),
                unit: Some("mmHg".into()),
                canonical_value: Some(15998.7),
                canonical_code: Some("g.m-1.s-2".into()),
            },
        ),
        entry(o, "subject", reference("Patient", "p1")),
        entry(
            o,
            "instantiates",
            IndexValue::Reference {
                target_type: None,
                target_id: None,
                version: Some("2".into()),
                url: Some("http://example.org/Questionnaire/q".into()),
                identifier_system: Some("urn:ids".into()),
                identifier_value: Some("42".into()),
            },
        ),
        entry(
            o,
            "url",
            IndexValue::Uri {
                value: "http://example.org/x".into(),
            },
        ),
        entry(
            o,
            "code-value-quantity",
            IndexValue::Composite {
                parts: vec![
                    token(Some("http://loinc.org"), "8480-6"),
                    quantity(120.0, "mm[Hg]"),
                ],
            },
        ),
        entry(
            o,
            "code-value-date",
            IndexValue::Composite {
                parts: vec![
                    token(None, "x"),
                    IndexValue::Date {
                        low: T0,
                        high: T0 + 1,
                    },
                ],
            },
        ),
        entry(
            o,
            "_text",
            IndexValue::Text {
                content: "blood pressure 120/80 mmhg".into(),
            },
        ),
        entry(
            o,
            "_content",
            IndexValue::Text {
                // Long text: rows are not limited by an index on it.
                content: "final blood pressure zoë ".repeat(400),
            },
        ),
        entry(
            o,
            "identifier:of-type",
            token(
                Some("http://terminology.hl7.org/CodeSystem/v2-0203"),
                "MR|12345",
            ),
        ),
    ]
}

pub fn index_entries_are_replaced_on_update_and_removed_on_delete(store: &dyn Store) {
    let other = vec![entry("Observation", "code", token(Some("s"), "other"))];
    write_ok(
        store,
        vec![
            version("Observation", "o1", 1, 10, every_kind()),
            version("Observation", "o2", 1, 10, other.clone()),
        ],
    );
    assert_eq!(
        index_of(store, "Observation", "o1"),
        sorted_entries(every_kind()),
        "every kind of entry reads back as written"
    );
    let v2 = vec![
        entry("Observation", "code", token(Some("s"), "v2")),
        entry("Observation", "name", string("Second")),
    ];
    write_ok(store, vec![version("Observation", "o1", 2, 20, v2.clone())]);
    assert_eq!(
        index_of(store, "Observation", "o1"),
        sorted_entries(v2),
        "update replaces the entries"
    );
    write_ok(store, vec![deletion("Observation", "o1", 3, 30)]);
    assert!(
        index_of(store, "Observation", "o1").is_empty(),
        "delete removes the entries"
    );
    assert_eq!(
        index_of(store, "Observation", "o2"),
        sorted_entries(other),
        "another resource's entries are untouched"
    );
    assert!(index_of(store, "Observation", "none").is_empty());
}

pub fn compartments_are_replaced_on_update_and_removed_on_delete(store: &dyn Store) {
    let with = |v: u64, ps: &[&str]| {
        let mut nv = version("Observation", "o1", v, 10 * v as i64, Vec::new());
        nv.compartments = ps.iter().map(|p| id(p)).collect();
        nv
    };
    let set = |ps: &[&str]| ps.iter().map(|p| (*p).to_owned()).collect::<BTreeSet<_>>();
    write_ok(store, vec![with(1, &["p1", "p2"])]);
    assert_eq!(
        compartments_of(store, "Observation", "o1"),
        set(&["p1", "p2"])
    );
    write_ok(store, vec![with(2, &["p3"])]);
    assert_eq!(compartments_of(store, "Observation", "o1"), set(&["p3"]));
    // The usual update keeps the same patient; a listed patient twice counts once.
    write_ok(store, vec![with(3, &["p3", "p3"])]);
    assert_eq!(compartments_of(store, "Observation", "o1"), set(&["p3"]));
    write_ok(store, vec![deletion("Observation", "o1", 4, 40)]);
    assert!(compartments_of(store, "Observation", "o1").is_empty());
}
