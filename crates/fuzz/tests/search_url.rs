//! Search URLs under hostile input: queries built from the real R4 search parameters of
//! a few types, with modifiers, prefixes, chains, `_has`, `_include`, lists and escapes
//! (valid, invalid and odd), parsed as the API parses them and compiled to SQL for both
//! backends under every kind of caller access.
//!
//! For every query: no panic; and when it compiles, every value from the URL travels as
//! a bound argument — the SQLite text holds exactly one `?` per argument, and none of
//! the URL's values appears in the SQL text (no injection, whatever the value).

mod common;

use oxehr_search::registry::Registry;
use oxehr_store::access::Access;
use oxehr_store::search::{page_sql, Position};
use oxehr_store::sql::Dialect;
use proptest::prelude::*;

const TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Encounter",
    "Condition",
    "MedicationRequest",
];

const MODIFIERS: &[&str] = &[
    "",
    "",
    "",
    ":exact",
    ":contains",
    ":missing",
    ":not",
    ":text",
    ":above",
    ":below",
    ":in",
    ":not-in",
    ":of-type",
    ":identifier",
    ":Patient",
    ":iterate",
    ":x",
    ":",
    "::",
];
const PREFIXES: &[&str] = &[
    "", "", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "zz",
];
const PIECES: &[&str] = &[
    "2024",
    "2024-02-30",
    "2024-01-01T10:00:00Z",
    "2024-01-01T25:00",
    "1e400",
    "-0.0",
    "5.4|http://unitsofmeasure.org|mg",
    "http://loinc.org|",
    "|8867-4",
    "a|b|c|d",
    "Patient/1",
    "Patient/../../etc",
    "http://x/fhir/Patient/1",
    "%00",
    "%zz",
    "%25%32%35",
    "'; DROP TABLE resource; --",
    "\" OR 1=1 --",
    "?",
    "$1",
    "\\",
    ",",
    ",,",
    "*",
    "",
    "Ωmega",
    "\u{0}",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "true",
    "123456789012345678901234567890",
];
const SPECIAL: &[&str] = &[
    "_id",
    "_lastUpdated",
    "_count",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_has:Observation:subject:code",
    "_has:Observation:patient:_has:x",
    "_type",
    "_text",
    "_content",
    "_filter",
    "_query",
    "_list",
    "_page",
    "_format",
    "subject.name",
    "subject:Patient.identifier",
    "patient.general-practitioner.name",
];

/// One `name=value` pair of a query on `ty`.
fn pair(ty: &'static str) -> impl Strategy<Value = (String, String)> {
    let codes: Vec<String> = Registry::r4()
        .params(ty)
        .iter()
        .map(|p| p.code.clone())
        .chain(SPECIAL.iter().map(|s| s.to_string()))
        .collect();
    let name = (prop::sample::select(codes), prop::sample::select(MODIFIERS))
        .prop_map(|(c, m)| format!("{c}{m}"));
    let piece = prop_oneof![
        3 => prop::sample::select(PIECES).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ];
    let value = (
        prop::sample::select(PREFIXES),
        prop::collection::vec(piece, 1..4),
    )
        .prop_map(|(p, parts)| format!("{p}{}", parts.join(",")));
    (name, value)
}

fn query() -> impl Strategy<Value = (&'static str, Vec<(String, String)>)> {
    prop::sample::select(TYPES)
        .prop_flat_map(|ty| (Just(ty), prop::collection::vec(pair(ty), 0..6)))
}

fn accesses() -> Vec<Access> {
    vec![
        Access::All,
        Access::Patients(vec!["p1".into()]),
        Access::Staff {
            org: "org-1".into(),
            grants: vec!["p2".into()],
            rules: Default::default(),
        },
        Access::Staff {
            org: "org-1".into(),
            grants: vec![],
            rules: oxehr_store::access::StaffRules {
                actors: vec![
                    ("Organization".into(), "org-1".into()),
                    ("Practitioner".into(), "pr-1".into()),
                ],
                consents: true,
                labels: true,
                now: 1,
            },
        },
        Access::Proxy {
            patients: vec!["p1".into(), "p3".into()],
            restricted: vec!["p3".into()],
        },
    ]
}

proptest! {
    #![proptest_config(common::config())]

    #[test]
    fn queries_parse_and_compile_with_values_bound((ty, pairs) in query(), lenient in any::<bool>()) {
        // As the API reads a URL: the query string decoded, then parsed.
        let raw: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let decoded = oxehr_records::query::decode_pairs(&raw.join("&"));
        let parsed = oxehr_records::query::parse(&[ty.to_string()], &decoded, lenient, Some("http://x/fhir"));
        if let Ok(q) = parsed {
            for access in accesses() {
                for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                    let sql = page_sql(dialect, &access, &q, &Position::First, 50, true);
                    if dialect == Dialect::Sqlite {
                        prop_assert_eq!(sql.text.matches('?').count(), sql.args.len(), "{}", sql.text);
                    }
                    for (_, v) in &decoded {
                        for part in v.split([',', '|']) {
                            // Values of four characters or more that are not SQL words.
                            if part.len() >= 4 && part.chars().any(|c| !c.is_ascii_alphanumeric()) {
                                prop_assert!(!sql.text.contains(part), "value {:?} in SQL text: {}", part, sql.text);
                            }
                        }
                    }
                }
            }
        }
    }
}
