//! Conformance: a proxy's access. Which RelatedPersons make an account a proxy of which
//! patients ([`access::proxy_grants`]), and what [`Access::Proxy`] lets a statement see:
//! exactly its patients' records, and for a restricted (adolescent) patient not the
//! resources labelled confidential — in a search, its total, an include and history.

use std::collections::BTreeSet;

use oxehr_search::query::{Condition, Filter, Query, Total};
use oxehr_search::{IndexEntry, IndexValue};

use crate::access::{self, Access, ProxyGrant};
use crate::search::{self, Position};
use crate::{HistoryQuery, HistoryScope, NewVersion, Store};

use super::build::*;

const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

fn with(mut v: NewVersion, patients: &[&str]) -> NewVersion {
    v.compartments = patients.iter().map(|p| id(p)).collect();
    v
}

/// An Observation of `patients` with these `meta.security` labels (system, code).
fn observation(rid: &str, patients: &[&str], labels: &[(&str, &str)]) -> NewVersion {
    let mut index: Vec<IndexEntry> = patients
        .iter()
        .map(|p| entry("Observation", "subject", reference("Patient", p)))
        .collect();
    for (system, code) in labels {
        index.push(entry("Observation", "_security", token(Some(system), code)));
    }
    with(version("Observation", rid, 1, 1, index), patients)
}

fn matches(store: &dyn Store, access: &Access, q: &Query) -> (BTreeSet<String>, u64) {
    let mut r = store.read().expect("read");
    let (hits, total) =
        search::page_and_total(&mut *r, access, q, &Position::First, 100).expect("search");
    let count = search::count(&mut *r, access, q).expect("count");
    assert_eq!(total, count, "the page's total and the count agree");
    (
        hits.into_iter()
            .map(|h| h.resource.id.as_str().to_owned())
            .collect(),
        total,
    )
}

/// A search of `types` with `filters`, counting every match.
fn query(types: &[&str], filters: Vec<Filter>) -> Query {
    Query {
        types: types.iter().map(|t| (*t).to_owned()).collect(),
        filters,
        sort: Vec::new(),
        include: Vec::new(),
        revinclude: Vec::new(),
        count: None,
        total: Total::Accurate,
        ignored: Vec::new(),
        page: None,
    }
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

/// A proxy of `child` (under 12) and `teen` (12 to 17, restricted) sees their records
/// and nothing of `other`'s; of the teen's, not what `meta.security` labels R, V or a
/// sensitivity code (in any search, total, include or history), but an unlabelled
/// resource, one labelled N (normal), a code R of another system, and a confidential
/// code under `_tag` rather than `_security`. The child's labelled resources stay
/// visible (the child is not restricted).
pub fn proxy_access_sees_its_patients_and_hides_an_adolescent_s_labelled_records(
    store: &dyn Store,
) {
    let mut versions = vec![
        with(version("Patient", "child", 1, 1, Vec::new()), &["child"]),
        with(version("Patient", "teen", 1, 1, Vec::new()), &["teen"]),
        with(version("Patient", "other", 1, 1, Vec::new()), &["other"]),
        version("Organization", "org", 1, 1, Vec::new()),
        observation("teen-plain", &["teen"], &[]),
        observation("teen-r", &["teen"], &[(CONFIDENTIALITY, "R")]),
        observation("teen-v", &["teen"], &[(CONFIDENTIALITY, "V")]),
        observation("teen-psy", &["teen"], &[(ACT_CODE, "PSY")]),
        observation("teen-hiv", &["teen"], &[(ACT_CODE, "HIV")]),
        observation("teen-n", &["teen"], &[(CONFIDENTIALITY, "N")]),
        observation("teen-r-elsewhere", &["teen"], &[("urn:other", "R")]),
        observation("child-r", &["child"], &[(CONFIDENTIALITY, "R")]),
        observation("child-plain", &["child"], &[]),
        observation("other-plain", &["other"], &[]),
        observation("child-and-other", &["child", "other"], &[]),
        observation(
            "child-and-teen-psy",
            &["child", "teen"],
            &[(ACT_CODE, "PSY")],
        ),
    ];
    let mut tagged = observation("teen-tag-r", &["teen"], &[]);
    tagged.index.push(entry(
        "Observation",
        "_tag",
        token(Some(CONFIDENTIALITY), "R"),
    ));
    versions.push(tagged);
    // A report of the teen's that refers to a labelled and an unlabelled result.
    versions.push(with(
        version(
            "DiagnosticReport",
            "teen-report",
            1,
            1,
            vec![
                entry("DiagnosticReport", "subject", reference("Patient", "teen")),
                entry(
                    "DiagnosticReport",
                    "result",
                    reference("Observation", "teen-r"),
                ),
                entry(
                    "DiagnosticReport",
                    "result",
                    reference("Observation", "teen-plain"),
                ),
            ],
        ),
        &["teen"],
    ));
    write_ok(store, versions);

    let proxy = Access::Proxy {
        patients: vec!["child".into(), "teen".into()],
        restricted: vec!["teen".into()],
    };
    let observations = query(&["Observation"], Vec::new());
    let visible = [
        "teen-plain",
        "teen-n",
        "teen-r-elsewhere",
        "teen-tag-r",
        "child-r",
        "child-plain",
    ];
    assert_eq!(
        matches(store, &proxy, &observations),
        (set(&visible), visible.len() as u64),
        "the proxy's Observations"
    );
    // The same proxy once the teen is not restricted (under 12, or an adult's grant).
    let unrestricted = Access::Proxy {
        patients: vec!["child".into(), "teen".into()],
        restricted: Vec::new(),
    };
    let all_theirs = [
        "teen-plain",
        "teen-r",
        "teen-v",
        "teen-psy",
        "teen-hiv",
        "teen-n",
        "teen-r-elsewhere",
        "teen-tag-r",
        "child-r",
        "child-plain",
        "child-and-teen-psy",
    ];
    assert_eq!(
        matches(store, &unrestricted, &observations),
        (set(&all_theirs), all_theirs.len() as u64),
        "without the restriction"
    );
    // The teen's own compartment ($everything, a compartment search).
    let teen_record = query(
        &["Observation", "DiagnosticReport"],
        vec![Filter {
            negated: false,
            any_of: vec![Condition::InPatientCompartment("teen".into())],
        }],
    );
    let teen_visible = [
        "teen-plain",
        "teen-n",
        "teen-r-elsewhere",
        "teen-tag-r",
        "teen-report",
    ];
    assert_eq!(
        matches(store, &proxy, &teen_record),
        (set(&teen_visible), teen_visible.len() as u64),
        "the teen's compartment"
    );
    // A search by the label itself finds nothing, and its count is 0.
    let by_label = query(
        &["Observation"],
        vec![Filter {
            negated: false,
            any_of: vec![Condition::Value {
                params: vec![param("Observation", "_security")],
                test: oxehr_search::query::ValueTest::Token {
                    system: Some(Some(CONFIDENTIALITY.into())),
                    code: Some("R".into()),
                },
            }],
        }],
    );
    assert_eq!(
        matches(store, &proxy, &by_label),
        (set(&["child-r"]), 1),
        "_security=R finds the child's only"
    );

    // _include of the report's results: the unlabelled one only.
    let mut r = store.read().expect("read");
    let report_rid = search::page(
        &mut *r,
        &proxy,
        &query(&["DiagnosticReport"], Vec::new()),
        &Position::First,
        10,
    )
    .expect("report")
    .first()
    .map(|h| h.rid)
    .expect("the report is visible");
    let included: BTreeSet<String> = search::included(
        &mut *r,
        &proxy,
        &[report_rid],
        &[param("DiagnosticReport", "result")],
        None,
    )
    .expect("included")
    .into_iter()
    .map(|(_, res)| res.id.as_str().to_owned())
    .collect();
    assert_eq!(included, set(&["teen-plain"]), "_include");
    let revincluded: BTreeSet<String> = search::revincluded(
        &mut *r,
        &proxy,
        &[
            ("Observation".into(), "teen-r".into()),
            ("Observation".into(), "teen-plain".into()),
        ],
        &[param("DiagnosticReport", "result")],
    )
    .expect("revincluded")
    .into_iter()
    .map(|(_, res)| res.id.as_str().to_owned())
    .collect();
    assert_eq!(revincluded, set(&["teen-report"]), "_revinclude");

    // Type history leaves the labelled resources out.
    let history = r
        .history(&HistoryQuery {
            scope: HistoryScope::Type(rt("Observation")),
            since: None,
            at: None,
            count: 100,
            offset: 0,
            access: proxy.clone(),
        })
        .expect("history");
    let in_history: BTreeSet<String> = history.iter().map(|v| v.id.as_str().to_owned()).collect();
    assert_eq!(in_history, set(&visible), "type history");

    // One resource at a time: the compartments (the labels are the record layer's to
    // read from the version it returns).
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    assert!(proxy.sees_all(&mut *r, &ids(&["teen"])).expect("sees"));
    assert!(proxy
        .sees_all(&mut *r, &ids(&["child", "teen"]))
        .expect("sees"));
    assert!(!proxy
        .sees_all(&mut *r, &ids(&["child", "other"]))
        .expect("sees"));
    assert!(proxy.hides_labelled(&ids(&["teen"])));
    assert!(proxy.hides_labelled(&ids(&["child", "teen"])));
    assert!(!proxy.hides_labelled(&ids(&["child"])));
    assert!(!unrestricted.hides_labelled(&ids(&["teen"])));
}

/// A RelatedPerson/`name`/`patient` version with an account identifier, and `active`
/// and a period (low, high) when given.
fn related(
    rid: &str,
    v: u64,
    at: i64,
    account: (&str, &str),
    patient: &str,
    active: Option<bool>,
    period: Option<(i64, i64)>,
) -> NewVersion {
    let t = "RelatedPerson";
    let mut index = vec![
        entry(t, "identifier", token(Some(account.0), account.1)),
        entry(t, "patient", reference("Patient", patient)),
    ];
    if let Some(a) = active {
        index.push(entry(t, "active", token(None, &a.to_string())));
    }
    if let Some((low, high)) = period {
        index.push(entry(t, "oxehr-period", IndexValue::Date { low, high }));
    }
    with(version(t, rid, v, at, index), &[patient])
}

fn patient(rid: &str, birth: Option<i64>) -> NewVersion {
    let index = birth
        .map(|low| {
            vec![entry(
                "Patient",
                "birthdate",
                IndexValue::Date {
                    low,
                    high: low + 86_400_000_000 - 1,
                },
            )]
        })
        .unwrap_or_default();
    with(version("Patient", rid, 1, 1, index), &[rid])
}

/// Which RelatedPersons make `mum` a proxy at `now`: one with her account identifier,
/// an existing patient, `active` not false and `now` inside its period, if any.
pub fn proxy_grants_are_the_account_s_active_related_persons(store: &dyn Store) {
    let mum = (access::PROXY_ACCOUNT_SYSTEM, "mum");
    let now = T0 + 1_000;
    let birth = T0 - 400_000_000_000_000;
    write_ok(
        store,
        vec![
            patient("p-plain", Some(birth)),
            patient("p-active", Some(birth)),
            patient("p-inactive", Some(birth)),
            patient("p-period", None),
            patient("p-open-start", None),
            patient("p-past", None),
            patient("p-future", None),
            patient("p-other-account", None),
            patient("p-other-system", None),
            patient("p-deleted-rp", None),
            patient("p-deleted", None),
            patient("p-revoked", None),
        ],
    );
    write_ok(
        store,
        vec![
            related("rp-plain", 1, 10, mum, "p-plain", None, None),
            related("rp-active", 1, 20, mum, "p-active", Some(true), None),
            related("rp-inactive", 1, 10, mum, "p-inactive", Some(false), None),
            related(
                "rp-period",
                1,
                30,
                mum,
                "p-period",
                None,
                Some((T0, now + 1)),
            ),
            related(
                "rp-open-start",
                1,
                10,
                mum,
                "p-open-start",
                None,
                Some((i64::MIN, now)),
            ),
            related("rp-past", 1, 10, mum, "p-past", None, Some((T0, now - 1))),
            related(
                "rp-future",
                1,
                10,
                mum,
                "p-future",
                None,
                Some((now + 1, i64::MAX)),
            ),
            related(
                "rp-other-account",
                1,
                10,
                (access::PROXY_ACCOUNT_SYSTEM, "dad"),
                "p-other-account",
                None,
                None,
            ),
            related(
                "rp-other-system",
                1,
                10,
                ("urn:other", "mum"),
                "p-other-system",
                None,
                None,
            ),
            related("rp-deleted-rp", 1, 10, mum, "p-deleted-rp", None, None),
            related("rp-deleted", 1, 10, mum, "p-deleted", None, None),
            related("rp-nobody", 1, 10, mum, "p-nobody", None, None),
            related("rp-revoked", 1, 10, mum, "p-revoked", None, None),
        ],
    );
    write_ok(
        store,
        vec![
            deletion("RelatedPerson", "rp-deleted-rp", 2, 40),
            deletion("Patient", "p-deleted", 2, 40),
            related("rp-revoked", 2, 50, mum, "p-revoked", Some(false), None),
        ],
    );
    let mut r = store.read().expect("read");
    let grants = access::proxy_grants(&mut *r, "mum", now).expect("grants");
    let grant = |p: &str, birth: Option<i64>, at: i64| ProxyGrant {
        patient: p.into(),
        birth,
        granted: T0 + at,
    };
    assert_eq!(
        grants,
        vec![
            grant("p-active", Some(birth), 20),
            grant("p-open-start", None, 10),
            grant("p-period", None, 30),
            grant("p-plain", Some(birth), 10),
        ]
    );
    assert_eq!(
        access::proxy_grants(&mut *r, "dad", now).expect("grants"),
        vec![grant("p-other-account", None, 10)]
    );
    assert_eq!(
        access::proxy_grants(&mut *r, "nobody", now).expect("grants"),
        Vec::new()
    );
}
