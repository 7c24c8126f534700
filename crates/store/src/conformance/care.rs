//! The care table follows every write that can change it.

use std::collections::BTreeSet;

use super::build::*;
use crate::{care, NewVersion, Store};

fn write_care(store: &dyn Store, versions: Vec<NewVersion>) {
    if let Err(e) = store.write(Box::new(move |tx| {
        care::store_versions(tx, &versions)?;
        Ok(Box::new(()))
    })) {
        panic!("write failed: {e}");
    }
}

fn with(mut v: NewVersion, patients: &[&str]) -> NewVersion {
    v.compartments = patients.iter().map(|p| id(p)).collect();
    v
}

fn consent(rid: &str, v: u64, patient: &str, kind: &str, org: &str, status: &str) -> NewVersion {
    with(
        version(
            "Consent",
            rid,
            v,
            v as i64,
            vec![
                entry("Consent", "status", token(None, status)),
                entry(
                    "Consent",
                    &format!("oxehr-{kind}-actor"),
                    reference("Organization", org),
                ),
                entry("Consent", "patient", reference("Patient", patient)),
            ],
        ),
        &[patient],
    )
}

/// Checks the table against the pairs the rule gives (written from the rule, not read
/// from the store), and against a rebuild from the whole index.
fn expect(store: &dyn Store, step: &str, pairs: &[(&str, &str)]) {
    let mut r = store.read().expect("read snapshot");
    let rows: BTreeSet<(String, String)> = care::rows(&mut *r)
        .expect("care rows")
        .into_iter()
        .collect();
    let want: BTreeSet<(String, String)> = pairs
        .iter()
        .map(|(o, p)| ((*o).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(rows, want, "{step}");
    let rebuilt: BTreeSet<(String, String)> = care::expected_rows(&mut *r)
        .expect("rebuild")
        .into_iter()
        .collect();
    assert_eq!(rebuilt, want, "{step}: a rebuild from the index");
    // Each patient's care team, as booking reads it.
    for (_, patient) in &want {
        let team: Vec<String> = want
            .iter()
            .filter(|(_, p)| p == patient)
            .map(|(o, _)| o.clone())
            .collect();
        let read = care::orgs_caring_for(&mut *r, patient, 100).expect("care team");
        assert_eq!(read, team, "{step}: the care team of {patient}");
        let first = care::orgs_caring_for(&mut *r, patient, 1).expect("care team");
        assert_eq!(first, team[..1].to_vec(), "{step}: limited to one");
    }
}

pub fn care_follows_every_write(store: &dyn Store) {
    let org = |o: &str| reference("Organization", o);
    write_care(
        store,
        vec![with(
            version(
                "Patient",
                "p1",
                1,
                1,
                vec![entry("Patient", "organization", org("org-a"))],
            ),
            &["p1"],
        )],
    );
    expect(store, "managing organization", &[("org-a", "p1")]);

    let encounter = |v: u64, patient: &str| {
        with(
            version(
                "Encounter",
                "e1",
                v,
                v as i64,
                vec![
                    entry("Encounter", "service-provider", org("org-b")),
                    entry("Encounter", "subject", reference("Patient", patient)),
                ],
            ),
            &[patient],
        )
    };
    write_care(store, vec![encounter(1, "p2")]);
    expect(store, "an encounter", &[("org-a", "p1"), ("org-b", "p2")]);
    write_care(store, vec![encounter(2, "p3")]);
    expect(
        store,
        "the encounter moved to another patient",
        &[("org-a", "p1"), ("org-b", "p3")],
    );

    let role = |v: u64, o: &str| {
        version(
            "PractitionerRole",
            "r1",
            v,
            v as i64,
            vec![entry("PractitionerRole", "organization", org(o))],
        )
    };
    write_care(store, vec![role(1, "org-c")]);
    write_care(
        store,
        vec![with(
            version(
                "Appointment",
                "a1",
                1,
                1,
                vec![
                    entry("Appointment", "actor", reference("PractitionerRole", "r1")),
                    entry("Appointment", "actor", reference("Patient", "p4")),
                ],
            ),
            &["p4"],
        )],
    );
    let before_move = [("org-a", "p1"), ("org-b", "p3"), ("org-c", "p4")];
    expect(store, "an appointment with a role", &before_move);
    write_care(store, vec![role(2, "org-d")]);
    expect(
        store,
        "the role moved to another organization",
        &[("org-a", "p1"), ("org-b", "p3"), ("org-d", "p4")],
    );

    write_care(
        store,
        vec![consent("c1", 1, "p1", "deny", "org-a", "active")],
    );
    expect(
        store,
        "a consent denies",
        &[("org-b", "p3"), ("org-d", "p4")],
    );
    write_care(
        store,
        vec![consent("c1", 2, "p1", "deny", "org-a", "inactive")],
    );
    expect(
        store,
        "the denial withdrawn",
        &[("org-a", "p1"), ("org-b", "p3"), ("org-d", "p4")],
    );
    write_care(
        store,
        vec![consent("c2", 1, "p5", "permit", "org-e", "active")],
    );
    expect(
        store,
        "a consent permits",
        &[
            ("org-a", "p1"),
            ("org-b", "p3"),
            ("org-d", "p4"),
            ("org-e", "p5"),
        ],
    );
    // A consent that denies what another permits: deny wins.
    write_care(
        store,
        vec![consent("c3", 1, "p5", "deny", "org-e", "active")],
    );
    expect(
        store,
        "deny wins over permit",
        &[("org-a", "p1"), ("org-b", "p3"), ("org-d", "p4")],
    );

    write_care(
        store,
        vec![
            deletion("Encounter", "e1", 3, 3),
            deletion("PractitionerRole", "r1", 3, 3),
        ],
    );
    expect(store, "deletions", &[("org-a", "p1")]);

    // New orders: one that only repeats a relationship the table holds (which the
    // store may take as known), one that brings a new one, a later version that takes
    // it away again, and one whose relationship an active Consent denies.
    let order = |rid: &str, v: u64, patient: &str, refs: &[(&str, &str)]| {
        with(
            version(
                "ServiceRequest",
                rid,
                v,
                v as i64,
                refs.iter()
                    .map(|(code, o)| entry("ServiceRequest", code, org(o)))
                    .collect(),
            ),
            &[patient],
        )
    };
    write_care(store, vec![order("s1", 1, "p1", &[("performer", "org-a")])]);
    expect(
        store,
        "an order of a known relationship",
        &[("org-a", "p1")],
    );
    write_care(store, vec![order("s2", 1, "p1", &[("requester", "org-f")])]);
    expect(
        store,
        "an order of a new relationship",
        &[("org-a", "p1"), ("org-f", "p1")],
    );
    write_care(store, vec![order("s2", 2, "p1", &[])]);
    expect(store, "the order no longer names it", &[("org-a", "p1")]);
    write_care(store, vec![order("s3", 1, "p5", &[("performer", "org-e")])]);
    expect(
        store,
        "an order of a denied relationship",
        &[("org-a", "p1")],
    );
}
