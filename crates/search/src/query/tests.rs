use super::*;

mod characters;
mod limits;

/// `a=1&b=2` as pairs, as decoded.
fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn q(rtype: &str, query: &str) -> Result<Query, QueryError> {
    parse(
        &[rtype.to_string()],
        &pairs(query),
        &ParseOptions {
            lenient: false,
            base_url: Some("http://h/fhir"),
            now_micros: 1_700_000_000_000_000,
        },
    )
}

fn only_test(query: &Query) -> &ValueTest {
    match &query.filters[0].any_of[0] {
        Condition::Value { test, .. } => test,
        other => panic!("not a value condition: {other:?}"),
    }
}

#[test]
fn string_modifiers_normalize_except_exact() {
    let t = q("Patient", "family=Ñúñez").expect("parses");
    assert_eq!(only_test(&t), &ValueTest::StringStartsWith("nunez".into()));
    let t = q("Patient", "family:exact=Ñúñez").expect("parses");
    assert_eq!(only_test(&t), &ValueTest::StringExact("Ñúñez".into()));
    let t = q("Patient", "family:contains=ÚÑ").expect("parses");
    assert_eq!(only_test(&t), &ValueTest::StringContains("un".into()));
}

#[test]
fn token_forms() {
    let cases = [
        ("code=1234", None, Some("1234")),
        (
            "code=http://loinc.org|1234",
            Some(Some("http://loinc.org")),
            Some("1234"),
        ),
        ("code=|1234", Some(None), Some("1234")),
        (
            "code=http://loinc.org|",
            Some(Some("http://loinc.org")),
            None,
        ),
    ];
    for (query, system, code) in cases {
        let t = q("Observation", query).expect(query);
        assert_eq!(
            only_test(&t),
            &ValueTest::Token {
                system: system.map(|s| s.map(str::to_string)),
                code: code.map(str::to_string),
            },
            "{query}"
        );
    }
    let t = q("Observation", "code:not=1234").expect("parses");
    assert!(t.filters[0].negated);
    let t = q(
        "Patient",
        "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053",
    )
    .expect("parses");
    assert_eq!(
        t.filters[0].any_of[0],
        Condition::Value {
            params: vec![ParamKey::of("Patient", "identifier:of-type")],
            test: ValueTest::OfType {
                type_system: "http://terminology.hl7.org/CodeSystem/v2-0203".into(),
                type_code: "MR".into(),
                value: "446053".into(),
            },
        }
    );
}

#[test]
fn comma_is_or_and_repetition_is_and() {
    let t = q("Patient", "gender=male,female&gender=other").expect("parses");
    assert_eq!(t.filters.len(), 2);
    assert_eq!(t.filters[0].any_of.len(), 2);
    assert_eq!(t.filters[1].any_of.len(), 1);
    // An escaped comma is part of the value.
    let t = q("Patient", r"family=a\,b").expect("parses");
    assert_eq!(only_test(&t), &ValueTest::StringStartsWith("a,b".into()));
}

#[test]
fn date_prefixes_and_precision() {
    // 2013-01-01T00:00:00Z = 1356998400 s; 2014-01-01 = 1388534400 s.
    let t = q("Patient", "birthdate=ge2013").expect("parses");
    let ValueTest::Date(d) = only_test(&t) else {
        panic!("date")
    };
    assert_eq!(d.prefix, Prefix::Ge);
    assert_eq!(
        (d.low, d.high),
        (1_356_998_400_000_000, 1_388_534_400_000_000 - 1)
    );
    // An unencoded `+` arrives as a space.
    let t = q("Observation", "date=lt2013-01-14T11:00:00 01:00").expect("parses");
    let ValueTest::Date(d) = only_test(&t) else {
        panic!("date")
    };
    assert_eq!(d.low, 1_358_157_600_000_000);
    for bad in [
        "birthdate=xx2013",
        "birthdate=1970-13",
        "birthdate=2013-02-30",
        "birthdate=ge",
    ] {
        assert!(
            matches!(q("Patient", bad), Err(QueryError::Invalid { .. })),
            "{bad}"
        );
    }
}

#[test]
fn quantities_parse_units_and_canonical_forms() {
    let t = q(
        "Observation",
        "value-quantity=gt5.4|http://unitsofmeasure.org|mg",
    )
    .expect("q");
    let ValueTest::Quantity(qt) = only_test(&t) else {
        panic!("quantity")
    };
    assert_eq!(qt.number.prefix, Prefix::Gt);
    assert_eq!(qt.system.as_deref(), Some("http://unitsofmeasure.org"));
    assert_eq!(qt.code.as_deref(), Some("mg"));
    let (canon, unit) = qt.canonical.as_ref().expect("mg has a canonical form");
    assert_eq!(unit, "g");
    assert!((canon.value - 0.0054).abs() < 1e-12);
    // `100` means [99.5, 100.5).
    let t = q("Observation", "value-quantity=100||kg").expect("q");
    let ValueTest::Quantity(qt) = only_test(&t) else {
        panic!("quantity")
    };
    assert_eq!((qt.number.low, qt.number.high), (99.5, 100.5));
    assert_eq!(qt.system, None);
}

#[test]
fn composite_values() {
    let t = q(
        "Observation",
        "code-value-quantity=http://loinc.org|8480-6$gt140",
    )
    .expect("parses");
    let ValueTest::Composite {
        system1,
        code1,
        second,
    } = only_test(&t)
    else {
        panic!("composite")
    };
    assert_eq!(system1, &Some(Some("http://loinc.org".to_string())));
    assert_eq!(code1.as_deref(), Some("8480-6"));
    assert!(matches!(**second, ValueTest::Quantity(ref x) if x.number.prefix == Prefix::Gt));
    assert!(q("Observation", "code-value-quantity=8480-6").is_err());
}

#[test]
fn references_by_id_type_url_and_identifier() {
    let t = q("Observation", "subject=Patient/123").expect("parses");
    assert_eq!(
        only_test(&t),
        &ValueTest::Reference {
            target_type: Some("Patient".into()),
            id: "123".into()
        }
    );
    // Our own base URL is searched as the relative reference.
    let t = q("Observation", "subject=http://h/fhir/Patient/123").expect("parses");
    assert!(matches!(
        only_test(&t),
        ValueTest::Reference { target_type: Some(t), .. } if t == "Patient"
    ));
    let t = q("Observation", "subject=http://other/fhir/Patient/123").expect("parses");
    assert!(matches!(only_test(&t), ValueTest::ReferenceUrl { .. }));
    let t = q("Observation", "subject:Patient=123").expect("parses");
    assert_eq!(
        only_test(&t),
        &ValueTest::Reference {
            target_type: Some("Patient".into()),
            id: "123".into()
        }
    );
    assert!(q("Observation", "subject:Medication=123").is_err());
    let t = q("Observation", "subject:identifier=urn:x|42").expect("parses");
    assert!(matches!(
        only_test(&t),
        ValueTest::ReferenceIdentifier { .. }
    ));
}

#[test]
fn chains_and_reverse_chains() {
    let t = q("Observation", "subject:Patient.name=peter").expect("parses");
    let Condition::Chain { target_types, .. } = &t.filters[0].any_of[0] else {
        panic!("chain")
    };
    assert_eq!(target_types.len(), 1);
    assert_eq!(target_types[0].target_type, "Patient");
    // Without a type: every target type with a `name` parameter.
    let t = q("Observation", "subject.name=peter").expect("parses");
    let Condition::Chain { target_types, .. } = &t.filters[0].any_of[0] else {
        panic!("chain")
    };
    let names: Vec<&str> = target_types
        .iter()
        .map(|c| c.target_type.as_str())
        .collect();
    assert_eq!(names, vec!["Patient", "Location"]);
    assert!(!names.contains(&"Device"), "Device has no name parameter");
    let t = q("Encounter", "patient.organization.name=acme").expect("two levels");
    assert_eq!(t.filters.len(), 1);
    let t = q("Patient", "_has:Observation:patient:code=1234-5").expect("parses");
    assert!(matches!(
        &t.filters[0].any_of[0],
        Condition::Has { source_type, .. } if source_type == "Observation"
    ));
    assert!(
        q("Patient", "_has:Observation:code:code=1").is_err(),
        "not a reference"
    );
    assert!(
        q("Patient", "_has:Observation:patient=1").is_err(),
        "incomplete"
    );
    // Five levels is one too many.
    let deep = "general-practitioner:Practitioner.\
        _has:PractitionerRole:practitioner:organization.partof.partof.partof.name=x";
    assert!(q("Patient", deep).is_err());
}

#[test]
fn unknown_parameters_and_modifiers_are_named() {
    match q("Patient", "nonsense=1") {
        Err(QueryError::UnknownParameter { param, .. }) => assert_eq!(param, "nonsense"),
        other => panic!("{other:?}"),
    }
    match q("Patient", "family:foo=x") {
        Err(QueryError::Invalid { param, .. }) => assert_eq!(param, "family:foo"),
        other => panic!("{other:?}"),
    }
    let lenient = parse(
        &["Patient".to_string()],
        &[("nonsense".into(), "1".into())],
        &ParseOptions {
            lenient: true,
            base_url: None,
            now_micros: 0,
        },
    )
    .expect("lenient");
    assert_eq!(lenient.ignored, vec!["nonsense".to_string()]);
}

#[test]
fn result_parameters() {
    let t = q(
        "Observation",
        "_sort=-date,code,_id&_count=10&_total=none&_include=Observation:subject:Patient\
         &_revinclude:iterate=Provenance:target&_include=Observation:*",
    )
    .expect("parses");
    assert_eq!(t.sort.len(), 3);
    assert!(t.sort[0].descending && !t.sort[1].descending);
    assert_eq!(t.sort[2].by, SortBy::Id);
    assert_eq!(t.count, Some(10));
    assert_eq!(t.total, Total::None);
    assert_eq!(t.include.len(), 2);
    assert_eq!(t.include[0].target_type.as_deref(), Some("Patient"));
    assert!(t.include[1].params.len() > 5, "every reference parameter");
    assert!(t.revinclude[0].iterate);
    assert!(q("Observation", "_include=Patient:organization").is_err());
    assert!(q("Observation", "_sort=nonsense").is_err());
    assert!(q("Observation", "_count=-1").is_err());
    assert!(q("Observation", "_total=maybe").is_err());
}

#[test]
fn uri_above_and_below() {
    let t = q("ValueSet", "url:below=http://acme.org/fhir").expect("parses");
    assert_eq!(
        only_test(&t),
        &ValueTest::Uri(UriTest::Below("http://acme.org/fhir".into()))
    );
    let t = q("ValueSet", "url:above=http://acme.org/fhir/ValueSet/1").expect("parses");
    assert!(matches!(only_test(&t), ValueTest::Uri(UriTest::Above(v)) if v.len() == 4));
}

#[test]
fn date_offsets_hours_and_minutes_outside_the_fhir_regex_are_refused() {
    // The FHIR dateTime zone: `Z` or `(+|-)` `00:00`..`13:59` or `14:00`; hours 00-23,
    // minutes 00-59, seconds 00-60 (the regex admits a leap second).
    let good = [
        "2020-01-01T10:00:00+14:00",
        "2020-01-01T10:00:00-14:00",
        "2020-01-01T10:00:00-12:00",
        "2020-01-01T10:00:00+13:59",
        "2020-01-01T10:00:00+05:30",
        "2020-01-01T10:00:00+00:00",
        "2020-01-01T10:00:00-00:00",
        "2020-01-01T10:00:00Z",
        "2020-01-01T10:00:00.123+01:00",
        "2020-01-01T23:59:60Z",
        "2020-01-01T10:00+01:00",
        "2020-01-01",
    ];
    let bad = [
        "2020-01-01T10:00:00+14:01",
        "2020-01-01T10:00:00-14:30",
        "2020-01-01T10:00:00+15:00",
        "2020-01-01T10:00:00+99:00",
        "2020-01-01T10:00:00-99:99",
        "2020-01-01T10:00:00+13:60",
        "2020-01-01T10:00:00+05:99",
        "2020-01-01T10:00+14:01",
        "2020-01-01T24:00:00Z",
        "2020-01-01T23:60:00Z",
        "2020-01-01T23:59:61Z",
        "2020-01-01T10:00:00+1:00",
        "2020-01-01T10:00:00+0100",
    ];
    for prefix in ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"] {
        for v in good {
            let query = format!("birthdate={prefix}{v}");
            assert!(q("Patient", &query).is_ok(), "{query}");
        }
        for v in bad {
            let query = format!("birthdate={prefix}{v}");
            assert!(
                matches!(q("Patient", &query), Err(QueryError::Invalid { .. })),
                "{query}"
            );
            let query = format!("_lastUpdated={prefix}{v}");
            assert!(
                matches!(q("Patient", &query), Err(QueryError::Invalid { .. })),
                "{query}"
            );
        }
    }
}

#[test]
fn numbers_an_f64_cannot_hold_are_refused() {
    // Values of number, quantity and composite parameters beyond f64: infinite, or
    // not zero but rounding to zero; `0e400` is zero with an infinite precision range;
    // a quantity in a unit whose canonical form overflows or underflows.
    let refused = [
        ("RiskAssessment", "probability=1e400"),
        ("RiskAssessment", "probability=-1e999"),
        ("RiskAssessment", "probability=1e-400"),
        ("RiskAssessment", "probability=gt-1e-400"),
        ("RiskAssessment", "probability=0.000e-99999999999"),
        ("RiskAssessment", "probability=0e400"),
        ("Observation", "value-quantity=1e400"),
        ("Observation", "value-quantity=lt-1e999"),
        ("Observation", "value-quantity=1e-400"),
        (
            "Observation",
            "value-quantity=1e-400|http://unitsofmeasure.org|mg",
        ),
        ("Observation", "value-quantity=1e308||kg"),
        (
            "Observation",
            "value-quantity=1e-320|http://unitsofmeasure.org|ng",
        ),
        (
            "Observation",
            "code-value-quantity=http://loinc.org|8480-6$1e400",
        ),
        ("Observation", "code-value-quantity=8480-6$ge1e-400"),
    ];
    for (rtype, query) in refused {
        assert!(
            matches!(q(rtype, query), Err(QueryError::Invalid { .. })),
            "{query}: {:?}",
            q(rtype, query)
        );
    }
    let accepted = [
        ("RiskAssessment", "probability=0"),
        ("RiskAssessment", "probability=-0.000"),
        ("RiskAssessment", "probability=0e-400"),
        ("RiskAssessment", "probability=1e-300"),
        ("Observation", "value-quantity=gt1e300"),
        ("Observation", "value-quantity=-1.5e300||kg"),
        ("Observation", "code-value-quantity=8480-6$le1e-300"),
    ];
    for (rtype, query) in accepted {
        assert!(q(rtype, query).is_ok(), "{query}: {:?}", q(rtype, query));
    }
}

/// A prefix or `:contains` pattern longer than the index keeps of a long value cannot be
/// matched exactly and is refused; `:exact` and token values of any length are fine.
#[test]
fn prefix_patterns_are_at_most_the_indexed_prefix() {
    use crate::index::KEY_MAX_BYTES;
    let at = "a".repeat(KEY_MAX_BYTES);
    let over = "a".repeat(KEY_MAX_BYTES + 1);
    let cases = [
        ("Patient", format!("family={at}"), true),
        ("Patient", format!("family={over}"), false),
        ("Patient", format!("family:contains={over}"), false),
        ("Patient", format!("family:exact={over}"), true),
        ("Patient", format!("identifier={over}"), true),
        ("ValueSet", format!("url:below=http://x/{over}"), false),
        ("ValueSet", format!("url=http://x/{over}"), true),
    ];
    for (rtype, query, ok) in cases {
        let r = q(rtype, &query);
        assert_eq!(r.is_ok(), ok, "{rtype}?{}…: {r:?}", &query[..20]);
    }
}
