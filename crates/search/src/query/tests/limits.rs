//! The size limits of a query (the `MAX_*` constants of `query`): at each limit a query
//! parses; one over is refused as invalid, naming the parameter and the limit.

use super::*;

/// A search of `types` (several for a system search).
fn parse_types(types: &[&str], query: &str) -> Result<Query, QueryError> {
    let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    parse(
        &types,
        &pairs(query),
        &ParseOptions {
            lenient: false,
            base_url: Some("http://h/fhir"),
            now_micros: 1_700_000_000_000_000,
        },
    )
}

/// `name=value&name=value…`, `n` occurrences.
fn repeated(name: &str, value: &str, n: usize) -> String {
    vec![format!("{name}={value}"); n].join("&")
}

/// `v0,v1,…`, `n` values joined by `sep`.
fn list(prefix: &str, n: usize, sep: &str) -> String {
    (0..n)
        .map(|i| format!("{prefix}{i}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// One behaviour: a query of `types` parses (`refused: None`) or is refused as invalid
/// naming `param`, with `reason` in the message.
struct Case {
    behaviour: &'static str,
    types: &'static [&'static str],
    query: String,
    refused: Option<(&'static str, &'static str)>,
}

fn parses(behaviour: &'static str, types: &'static [&'static str], query: String) -> Case {
    Case {
        behaviour,
        types,
        query,
        refused: None,
    }
}

fn refused(
    behaviour: &'static str,
    types: &'static [&'static str],
    query: String,
    param: &'static str,
    reason: &'static str,
) -> Case {
    Case {
        behaviour,
        types,
        query,
        refused: Some((param, reason)),
    }
}

fn check(cases: Vec<Case>) {
    for c in cases {
        let got = parse_types(c.types, &c.query);
        match (c.refused, &got) {
            (None, Ok(_)) => {}
            (
                Some((param, reason)),
                Err(QueryError::Invalid {
                    param: p,
                    reason: r,
                }),
            ) if p == param && r.contains(reason) => {}
            (expected, _) => panic!(
                "{}: expected {:?}, got {:?}",
                c.behaviour,
                expected.map_or("to parse".to_string(), |e| format!("{e:?}")),
                got.map(|_| "parsed")
            ),
        }
    }
}

const PATIENT: &[&str] = &["Patient"];
const OBSERVATION: &[&str] = &["Observation"];

#[test]
fn at_most_50_parameters_counting_chain_links_and_target_types() {
    let chain = "subject:Patient.family";
    check(vec![
        parses("50 parameters", PATIENT, repeated("family", "a", 50)),
        refused(
            "51 parameters",
            PATIENT,
            repeated("family", "a", 51),
            "family",
            "at most 50 search parameters",
        ),
        // A chain is two parameters: the reference and the chained one.
        parses("25 chains", OBSERVATION, repeated(chain, "a", 25)),
        refused(
            "25 chains and one more",
            OBSERVATION,
            format!("{}&code=1", repeated(chain, "a", 25)),
            "code",
            "at most 50 search parameters",
        ),
        parses(
            "25 _has",
            PATIENT,
            repeated("_has:Observation:patient:code", "1", 25),
        ),
        refused(
            "26 _has",
            PATIENT,
            repeated("_has:Observation:patient:code", "1", 26),
            "_has:Observation:patient:code",
            "at most 50 search parameters",
        ),
        // Without a type, `subject.name` is searched on Patient and Location: three.
        parses(
            "16 untyped chains",
            OBSERVATION,
            repeated("subject.name", "a", 16),
        ),
        refused(
            "17 untyped chains",
            OBSERVATION,
            repeated("subject.name", "a", 17),
            "subject.name",
            "at most 50 search parameters",
        ),
        // Blank values select nothing and result parameters select nothing: not counted.
        parses(
            "blank and result parameters are not counted",
            PATIENT,
            format!(
                "{}&{}&{}",
                repeated("family", "a", 50),
                repeated("given", "", 10),
                repeated("_count", "10", 10)
            ),
        ),
    ]);
}

#[test]
fn at_most_100_values_per_parameter() {
    check(vec![
        parses(
            "100 values",
            PATIENT,
            format!("family={}", list("v", 100, ",")),
        ),
        refused(
            "101 values",
            PATIENT,
            format!("family={}", list("v", 101, ",")),
            "family",
            "at most 100 values separated by commas",
        ),
        parses(
            "an escaped comma does not separate",
            PATIENT,
            format!(r"family={},a\,b", list("v", 99, ",")),
        ),
        refused(
            "101 values of a chained parameter",
            OBSERVATION,
            format!("subject:Patient.family={}", list("v", 101, ",")),
            "subject:Patient.family",
            "at most 100 values separated by commas",
        ),
    ]);
}

/// 15 comma values of 32 words, then one of `last` words.
fn words_in_values(last: usize) -> String {
    let mut values = vec![list("w", 32, " "); 15];
    values.push(list("w", last, " "));
    values.join(",")
}

#[test]
fn at_most_500_values_in_a_query_counting_each_type_searched() {
    let hundred = |name: &str| format!("{name}={}", list("v", 100, ","));
    let five_hundred = (0..5)
        .map(|_| hundred("family"))
        .collect::<Vec<_>>()
        .join("&");
    let untyped = format!(
        "{}&{}&{}",
        hundred("subject.name"),
        hundred("subject.name"),
        hundred("code")
    );
    check(vec![
        parses("500 values", PATIENT, five_hundred.clone()),
        refused(
            "501 values",
            PATIENT,
            format!("{five_hundred}&gender=male"),
            "gender",
            "at most 500 values in the whole query",
        ),
        // `subject.name` searches each value on Patient and on Location.
        parses("500 values through chains", OBSERVATION, untyped.clone()),
        refused(
            "501 values through chains",
            OBSERVATION,
            format!("{untyped}&status=final"),
            "status",
            "at most 500 values in the whole query",
        ),
        // A system search over two types searches each value on both.
        parses(
            "500 values on two types",
            &["Patient", "Observation"],
            format!(
                "{}&{}&_profile={}",
                hundred("_tag"),
                hundred("_security"),
                list("v", 50, ",")
            ),
        ),
        refused(
            "501 values on two types",
            &["Patient", "Observation"],
            format!(
                "{}&{}&_profile={}",
                hundred("_tag"),
                hundred("_security"),
                list("v", 51, ",")
            ),
            "_profile",
            "at most 500 values in the whole query",
        ),
        // Each word of `_content` is a test of its own: 15 values of 32 words and one
        // of 20 (or 21).
        parses(
            "500 words",
            PATIENT,
            format!("_content={}", words_in_values(20)),
        ),
        refused(
            "501 words",
            PATIENT,
            format!("_content={}", words_in_values(21)),
            "_content",
            "at most 500 values in the whole query",
        ),
        // On two types, a value of 32 words is one per type and one per further word:
        // 33; 15 of them and 5 ids make 500.
        parses(
            "500 values of words on two types",
            &["Patient", "Observation"],
            format!(
                "_content={}&_id={}",
                vec![list("w", 32, " "); 15].join(","),
                list("v", 5, ",")
            ),
        ),
        refused(
            "501 values of words on two types",
            &["Patient", "Observation"],
            format!(
                "_content={}&_id={}",
                vec![list("w", 32, " "); 15].join(","),
                list("v", 6, ",")
            ),
            "_id",
            "at most 500 values in the whole query",
        ),
        // `:above` tests the uri and each of its path prefixes.
        parses(
            "500 uri prefixes",
            &["ValueSet"],
            format!("url:above=http://h{}", "/s".repeat(499)),
        ),
        refused(
            "501 uri prefixes",
            &["ValueSet"],
            format!("url:above=http://h{}", "/s".repeat(500)),
            "url:above",
            "at most 500 values in the whole query",
        ),
    ]);
}

#[test]
fn duplicate_types_of_a_system_search_count_once() {
    let many = vec!["Patient".to_string(); 1_000];
    let q = parse(
        &many,
        &pairs("_tag=a"),
        &ParseOptions {
            lenient: false,
            base_url: None,
            now_micros: 0,
        },
    )
    .expect("the same type named 1,000 times is one type");
    assert_eq!(q.types, vec!["Patient".to_string()]);
    let q = parse_types(&["Patient", "Observation", "Patient"], "").expect("parses");
    assert_eq!(
        q.types,
        vec!["Patient".to_string(), "Observation".to_string()]
    );
}

#[test]
fn at_most_32_words_in_a_text_value() {
    check(vec![
        parses(
            "32 words",
            PATIENT,
            format!("_content={}", list("w", 32, " ")),
        ),
        refused(
            "33 words",
            PATIENT,
            format!("_content={}", list("w", 33, " ")),
            "_content",
            "at most 32 words",
        ),
        refused(
            "33 words in the second value of _text",
            PATIENT,
            format!("_text=a,{}", list("w", 33, " ")),
            "_text",
            "at most 32 words",
        ),
        refused(
            "33 words through a chain",
            OBSERVATION,
            format!("subject:Patient._content={}", list("w", 33, " ")),
            "subject:Patient._content",
            "at most 32 words",
        ),
    ]);
}

#[test]
fn at_most_8_sort_keys_over_every_sort_parameter() {
    let eight = "family,given,birthdate,gender,address-city,address-state,-_lastUpdated,_id";
    check(vec![
        parses("8 keys", PATIENT, format!("_sort={eight}")),
        refused(
            "9 keys",
            PATIENT,
            format!("_sort={eight},name"),
            "_sort",
            "at most 8 sort keys",
        ),
        refused(
            "9 keys in two _sort parameters",
            PATIENT,
            "_sort=family,given,birthdate,gender,address-city\
             &_sort=address-state,-_lastUpdated,_id,name"
                .to_string(),
            "_sort",
            "at most 8 sort keys",
        ),
    ]);
}

#[test]
fn at_most_20_include_and_revinclude_entries() {
    let includes = |n: usize| vec!["Observation:subject"; n].join(",");
    let revincludes = |n: usize| vec!["Provenance:target"; n].join(",");
    check(vec![
        parses(
            "20 entries",
            OBSERVATION,
            format!("_include={}", includes(20)),
        ),
        parses(
            "20 entries of both kinds",
            OBSERVATION,
            format!(
                "_include={}&_revinclude={}&_include:iterate=Patient:organization",
                includes(10),
                revincludes(9)
            ),
        ),
        refused(
            "21 entries",
            OBSERVATION,
            format!("_include={}", includes(21)),
            "_include",
            "at most 20 _include and _revinclude entries",
        ),
        refused(
            "21 entries of both kinds",
            OBSERVATION,
            format!("_include={}&_revinclude={}", includes(10), revincludes(11)),
            "_revinclude",
            "at most 20 _include and _revinclude entries",
        ),
    ]);
}

#[test]
fn values_are_at_most_8_kib() {
    check(vec![
        parses(
            "8,192 bytes (an exact string: a prefix may be at most 1,000)",
            PATIENT,
            format!("family:exact={}", "a".repeat(8_192)),
        ),
        refused(
            "8,193 bytes",
            PATIENT,
            format!("family={}", "a".repeat(8_193)),
            "family",
            "at most 8192 bytes",
        ),
        refused(
            "8,193 bytes in the second value",
            PATIENT,
            format!("family=a,{}", "a".repeat(8_193)),
            "family",
            "at most 8192 bytes",
        ),
        parses(
            "a 4,000-character identifier",
            PATIENT,
            format!("identifier=urn:x|{}", "9".repeat(4_000)),
        ),
        // A page position carries the sort values of a row, which can be long.
        parses(
            "a long page position",
            PATIENT,
            format!("_page={}", "A".repeat(20_000)),
        ),
    ]);
}

#[test]
fn chains_nest_at_most_4_levels() {
    let chain = |partofs: usize| {
        format!(
            "general-practitioner:Practitioner._has:PractitionerRole:practitioner:\
             organization.{}name",
            "partof.".repeat(partofs)
        )
    };
    check(vec![
        parses("4 levels", PATIENT, format!("{}=x", chain(1))),
        refused(
            "5 levels",
            PATIENT,
            format!("{}=x", chain(2)),
            "general-practitioner:Practitioner._has:PractitionerRole:practitioner:\
             organization.partof.partof.name",
            "chains and _has nest at most 4 levels",
        ),
    ]);
    // A name of 10,000 links is refused without following them.
    let deep = format!("{}name=x", "link.".repeat(10_000));
    assert!(matches!(
        q("Patient", &deep),
        Err(QueryError::Invalid { reason, .. }) if reason.contains("at most 4 levels")
    ));
}

#[test]
fn a_thousand_of_anything_is_refused_by_counting_before_parsing() {
    check(vec![
        refused(
            "1,000 repetitions",
            PATIENT,
            repeated("family", "a", 1_000),
            "family",
            "at most 50 search parameters",
        ),
        // Were the values parsed first, the first malformed date would be the error.
        refused(
            "1,000 repetitions of a malformed value",
            PATIENT,
            repeated("birthdate", "not-a-date", 1_000),
            "birthdate",
            "at most 50 search parameters",
        ),
        refused(
            "1,000 values",
            PATIENT,
            format!("family={}", list("v", 1_000, ",")),
            "family",
            "at most 100 values separated by commas",
        ),
        refused(
            "1,000 malformed values",
            PATIENT,
            format!("birthdate={}", list("x", 1_000, ",")),
            "birthdate",
            "at most 100 values separated by commas",
        ),
        refused(
            "1,000 sort keys",
            PATIENT,
            format!("_sort={}", vec!["nonsense"; 1_000].join(",")),
            "_sort",
            "at most 8 sort keys",
        ),
        refused(
            "1,000 includes",
            OBSERVATION,
            format!("_include={}", vec!["Nonsense:x"; 1_000].join(",")),
            "_include",
            "at most 20 _include and _revinclude entries",
        ),
    ]);
}
