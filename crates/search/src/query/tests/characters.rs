//! The characters a search may carry: FHIR strings hold no character below U+0020 but
//! TAB, CR and LF, and neither does any name or value of a search.

use super::*;

#[test]
fn control_characters_are_refused_in_names_and_values_without_echoing_them() {
    // (resource type, query with a decoded `%00` or other control character).
    let cases = [
        ("Patient", "family=Injtest\0zzz"),
        ("Patient", "family:contains=Injtest\0zzz"),
        ("Patient", "family:exact=Injtest\0zzz"),
        ("Patient", "identifier=urn:x|Injtest\0zzz"),
        ("Observation", "code=http://loinc.org|Injtest\0zzz"),
        ("Observation", "subject=Patient/Injtest\0zzz"),
        ("Observation", "subject:identifier=urn:x|Injtest\0zzz"),
        ("ValueSet", "url=http://h/Injtest\0zzz"),
        ("ValueSet", "url:below=http://h/Injtest\0zzz"),
        ("Patient", "birthdate=2020\0"),
        ("Patient", "_lastUpdated=gt2020\0"),
        (
            "Observation",
            "value-quantity=5\0|http://unitsofmeasure.org|mg",
        ),
        ("Observation", "subject:Patient.family=Injtest\0zzz"),
        ("Observation", "subject.name=Injtest\0zzz"),
        ("Patient", "_has:Observation:patient:code=Injtest\0zzz"),
        ("Patient", "_id=Injtest\0zzz"),
        ("Patient", "_content=Injtest\0zzz"),
        ("Patient", "family=Injtest\x01zzz"),
        ("Patient", "family=Injtest\x1fzzz"),
        ("Patient", "family=a,Injtest\x1bzzz"),
        ("Patient", "_page=Injtest\0zzz"),
        ("Patient", "_sort=family\0"),
        ("Patient", "_count=1\0"),
        ("Patient", "_total=none\0"),
        ("Observation", "_include=Observation:subject\0"),
        ("Observation", "_revinclude=Provenance:target\0"),
        ("Patient", "_format=json\0"),
        ("Patient", "_elements=name\0"),
        // In names: the code, a modifier, a chain part, a `_has` part.
        ("Patient", "fam\0ily=a"),
        ("Patient", "family:cont\0ains=a"),
        ("Observation", "subject:Pat\0ient.family=a"),
        ("Observation", "subject:Patient.fam\0ily=a"),
        ("Patient", "_has:Obs\0ervation:patient:code=1"),
        ("Patient", "_so\0rt=family"),
        ("Patient", "\0=a"),
    ];
    for (rtype, query) in cases {
        let shown = query.escape_debug();
        match q(rtype, query) {
            Err(e @ QueryError::Invalid { .. }) => {
                let text = e.to_string();
                assert!(text.contains("control character"), "{shown}: {text}");
                assert!(
                    !text.contains("Injtest") && !text.contains("zzz"),
                    "{shown}: the value is echoed: {text}"
                );
                assert!(
                    !text.chars().any(|c| c < ' '),
                    "{shown}: a control character is echoed: {}",
                    text.escape_debug()
                );
            }
            other => panic!("{shown}: {other:?}"),
        }
    }
}

#[test]
fn tab_carriage_return_and_line_feed_are_allowed() {
    for query in [
        "family=a\tb",
        "family:exact=a\r\nb",
        "_content=a\nb",
        "name:contains=\ta",
    ] {
        assert!(q("Patient", query).is_ok(), "{}", query.escape_debug());
    }
}
