//! Findings B6–B11 and C12–C16: hostile or careless input gets a clear 4xx answer with an
//! OperationOutcome, never a 5xx, a hang or a blown-up server, and the server keeps
//! serving.

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::common::TestServer;

/// A GET with the path sent exactly as written (clients normalize `..` away); the status
/// and the body.
async fn raw_get(s: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let authority = s
        .base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host")
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // A chunked body: the JSON is between the first chunk size line and the end.
    let json_text = body
        .find('{')
        .and_then(|start| body.rfind('}').map(|end| &body[start..=end]))
        .unwrap_or("");
    (
        status,
        serde_json::from_str(json_text).unwrap_or(Value::Null),
    )
}

fn assert_client_error(what: &str, status: u16, body: &Value) {
    assert!(
        (400..500).contains(&status),
        "{what}: {status} (a client error was expected) {body}"
    );
    assert_eq!(body["resourceType"], "OperationOutcome", "{what}: {body}");
}

/// The server answers a plain read after a hostile request.
async fn still_serving(s: &TestServer) {
    let (status, cs, _) = s.get("metadata").await;
    assert_eq!(status, 200);
    assert_eq!(cs["resourceType"], "CapabilityStatement");
}

/// B6: `metadata` below a type or an instance is not the CapabilityStatement; it is a
/// client error with an OperationOutcome, never a 500.
pub async fn metadata_under_a_type_is_a_client_error(s: &TestServer) {
    let token = issue_token(
        &s.key,
        "test-admin",
        "system-admin",
        "system/*.cruds",
        None,
        None,
        None,
    );
    for path in [
        "/fhir/Patient/metadata",
        "/fhir/Patient/x/metadata",
        "/fhir/x/y/metadata",
        "/fhir/Patient/../metadata",
        "/fhir/Patient/x/_history/metadata",
    ] {
        for (who, t) in [("anonymous", None), ("admin", Some(token.as_str()))] {
            let (status, body) = raw_get(s, path, t).await;
            assert_client_error(&format!("{who} GET {path}"), status, &body);
        }
    }
    let (status, body) = raw_get(s, "/fhir/metadata", None).await;
    assert_eq!(
        (status, &body["resourceType"]),
        (200, &json!("CapabilityStatement"))
    );
}

/// The documented limits (docs/search.md, `oxehr_search::query`).
fn search_limit(name: &str) -> usize {
    use oxehr_search::query as q;
    match name {
        "parameters" => q::MAX_PARAMETERS,
        "values" => q::MAX_VALUES_PER_PARAMETER,
        "total values" => q::MAX_VALUES,
        "sort keys" => q::MAX_SORT_KEYS,
        "includes" => q::MAX_INCLUDES,
        "chain depth" => q::MAX_CHAIN_DEPTH,
        other => panic!("no limit {other}"),
    }
}

/// B7: a search beyond any of its documented limits is refused with 400 and an
/// OperationOutcome, on every path (GET, POST `_search`, a Bundle's GET entry, a
/// conditional write); a search at the limits is answered.
pub async fn searches_beyond_the_limits_get_400_and_at_the_limits_work(s: &TestServer) {
    for n in 0..3 {
        let (status, _, _) = s
            .post(
                "Patient",
                &json!({"resourceType": "Patient", "name": [{"family": format!("Limitfamily{n}"), "given": ["Ann"]}],
                    "birthDate": "1980-01-01", "gender": "female"}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let repeat = |pair: &str, n: usize| vec![pair; n].join("&");
    let values = |n: usize| {
        (0..n)
            .map(|i| format!("Nobody{i}"))
            .chain(["Limitfamily1".to_owned()])
            .skip(1)
            .collect::<Vec<_>>()
            .join(",")
    };
    let sort_keys = |n: usize| {
        [
            "family",
            "given",
            "birthdate",
            "gender",
            "_id",
            "_lastUpdated",
            "address",
            "phone",
            "email",
            "name",
        ]
        .iter()
        .cycle()
        .take(n)
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(",")
    };
    let includes = |n: usize| repeat("_revinclude=Observation:subject", n);
    let chain = |depth: usize| {
        // Observation?subject:Patient.organization.partof.partof…name=x
        let mut p = "subject:Patient.organization".to_owned();
        for _ in 2..depth {
            p.push_str(".partof");
        }
        format!("Observation?{p}.name=x")
    };
    let over: Vec<(String, String)> = vec![
        (
            "1,000 repeated parameters".into(),
            format!("Patient?{}", repeat("family=Limit", 1000)),
        ),
        (
            "1,000 OR'd values".into(),
            format!("Patient?family={}", values(1000)),
        ),
        (
            "1,000 sort keys".into(),
            format!("Patient?_sort={}", sort_keys(1000)),
        ),
        (
            "1,000 includes".into(),
            format!("Patient?{}", includes(1000)),
        ),
        (
            "parameters + 1".into(),
            format!(
                "Patient?{}",
                repeat("family=Limit", search_limit("parameters") + 1)
            ),
        ),
        (
            "values + 1".into(),
            format!("Patient?family={}", values(search_limit("values") + 1)),
        ),
        (
            "sort keys + 1".into(),
            format!("Patient?_sort={}", sort_keys(search_limit("sort keys") + 1)),
        ),
        (
            "includes + 1".into(),
            format!("Patient?{}", includes(search_limit("includes") + 1)),
        ),
        (
            "chain depth + 1".into(),
            chain(search_limit("chain depth") + 1),
        ),
    ];
    for (what, path) in &over {
        let (status, oo, _) = s.get(path).await;
        assert_eq!(status, 400, "{what}: {oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome", "{what}");
        let (ty, query) = path.split_once('?').expect("query");
        let (status, _) = post_search(s, &s.client, ty, query).await;
        assert_eq!(status, 400, "POST _search, {what}");
        for kind in ["batch", "transaction"] {
            let b = bundle(
                kind,
                vec![json!({"request": {"method": "GET", "url": path}})],
            );
            let (status, resp, _) = s.post("", &b).await;
            assert_eq!(status, 200, "{kind}, {what}: {resp}");
            assert!(
                resp["entry"][0]["response"]["status"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("400"),
                "{kind} GET entry, {what}: {resp}"
            );
        }
    }
    // A conditional create with an over-long condition.
    let (status, oo, _) = s
        .send(
            Method::POST,
            "Patient",
            &json!({"resourceType": "Patient"}),
            &[("if-none-exist", &format!("family={}", values(1000)))],
        )
        .await;
    assert_eq!(status, 400, "If-None-Exist: {oo}");
    // At the limits, on both backends: answered, and right.
    let limit_values = search_limit("values");
    let per_param = search_limit("total values") / limit_values;
    let at: Vec<(String, String, Option<u64>)> = vec![
        (
            "parameters".into(),
            format!(
                "Patient?{}&_total=accurate",
                repeat("family=Limitfamily", search_limit("parameters"))
            ),
            Some(3),
        ),
        (
            "values".into(),
            format!("Patient?family={}&_total=accurate", values(limit_values)),
            Some(1),
        ),
        (
            "total values".into(),
            format!(
                "Patient?{}&_total=accurate",
                repeat(&format!("family={}", values(limit_values)), per_param)
            ),
            Some(1),
        ),
        (
            "sort keys".into(),
            format!(
                "Patient?_sort={}&_count=1&_total=accurate",
                sort_keys(search_limit("sort keys"))
            ),
            Some(3),
        ),
        (
            "includes".into(),
            format!(
                "Patient?{}&_total=accurate",
                includes(search_limit("includes"))
            ),
            Some(3),
        ),
        (
            "chain depth".into(),
            format!("{}&_total=accurate", chain(search_limit("chain depth"))),
            Some(0),
        ),
    ];
    for (what, path, total) in &at {
        let (status, b, _) = s.get(path).await;
        assert_eq!(status, 200, "at the limit of {what}: {b}");
        assert_eq!(b["total"].as_u64(), *total, "at the limit of {what}");
    }
    // Paging on the sort-key limit works (keyset positions over eight keys).
    let (_, first, _) = s.get(&at[3].1).await;
    let next = next_link(&first).expect("next page");
    let (status, second, _) =
        crate::common::split(s.client.get(&next).send().await.expect("next")).await;
    assert_eq!(status, 200, "{second}");
    still_serving(s).await;
}

/// B8: JSON Patch operations that copy a part of the resource onto itself grow it
/// exponentially; the patched document is bounded while the patch is applied, and the
/// resource is left as it was.
pub async fn json_patch_cannot_grow_a_resource_without_bound(s: &TestServer) {
    let (status, p, _) = s
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "name": [{"family": "Patchfamily", "given": ["Bomb", "Test"]}]}),
        )
        .await;
    assert_eq!(status, 201);
    let id = p["id"].as_str().expect("id");
    let ops: Vec<Value> = (0..21)
        .map(|_| json!({"op": "copy", "from": "/name", "path": "/name/-"}))
        .collect();
    let resp = s
        .client
        .patch(s.url(&format!("Patient/{id}")))
        .header("content-type", "application/json-patch+json")
        .body(Value::Array(ops).to_string())
        .send()
        .await
        .expect("patch");
    let (status, oo, _) = crate::common::split(resp).await;
    assert!(status == 400 || status == 422, "{status} {oo}");
    // Refused for its size while it was applied (before, the document grew to ~2 GB
    // and then failed validation).
    assert!(diagnostics(&oo).contains("larger than"), "{oo}");
    let (status, now, _) = s.get(&format!("Patient/{id}")).await;
    assert_eq!((status, &now["meta"]["versionId"]), (200, &json!("1")));
    still_serving(s).await;
}

/// B9 and C12: FHIR strings hold no control characters but tab, CR and LF. A resource
/// carrying one is refused (naming the element) on both backends alike, and so is a
/// search value, instead of a 500 or a truncated pattern.
pub async fn control_characters_are_refused_in_resources_and_searches(s: &TestServer) {
    for family in ["Injtestone", "Injtesttwo"] {
        let (status, _, _) = s
            .post(
                "Patient",
                &json!({"resourceType": "Patient", "name": [{"family": family}]}),
            )
            .await;
        assert_eq!(status, 201);
    }
    for bad in ["Nul\u{0}name", "Bell\u{7}name", "Esc\u{1b}name"] {
        let p = json!({"resourceType": "Patient", "name": [{"family": bad}]});
        let (status, oo, _) = s.post("Patient", &p).await;
        assert_eq!(status, 400, "create: {oo}");
        assert_eq!(expression(&oo), "Patient.name[0].family", "{oo}");
        let t = bundle(
            "transaction",
            vec![json!({"request": {"method": "POST", "url": "Patient"}, "resource": p})],
        );
        let (status, oo, _) = s.post("", &t).await;
        assert_eq!(status, 400, "transaction: {oo}");
        let (status, oo, _) = s.post("Patient/$validate", &p).await;
        assert_eq!(status, 400, "$validate: {oo}");
    }
    // Tab, CR and LF are allowed.
    let (status, oo, _) = s
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "name": [{"text": "Line one\r\nLine\ttwo"}]}),
        )
        .await;
    assert_eq!(status, 201, "{oo}");
    for path in [
        "Patient?family=Injtest%00zzz",
        "Patient?family:contains=Injtest%00zzz",
        "Patient?family:exact=Injtest%00",
        "Patient?identifier=a%00b",
        "Patient?_id=a%00",
        "Patient?birthdate=2020%00",
        "Patient?organization=Organization/a%00",
        "Observation?subject:Patient.family=a%00",
        "Patient?_has:Observation:subject:code=a%00",
        "Patient?fam%00ily=a",
    ] {
        let (status, oo, _) = s.get(path).await;
        assert_eq!(status, 400, "{path}: {oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome");
        assert!(
            !diagnostics(&oo).contains('\u{0}'),
            "{path}: echoes the NUL"
        );
    }
    let (status, oo, _) = s
        .send(
            Method::POST,
            "Patient",
            &json!({"resourceType": "Patient"}),
            &[("if-none-exist", "family=Injtest%00zzz")],
        )
        .await;
    assert_eq!(status, 400, "If-None-Exist: {oo}");
    still_serving(s).await;
}

/// A string of `n` letters that does not compress (a linear congruential sequence), so a
/// database cannot squeeze it under an index's size limit.
fn letters(n: usize, seed: u64) -> String {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect()
}

/// B10: valid long strings are stored on both backends, and found exactly: two
/// identifiers of 4,000 characters that differ only in the last one each find their own
/// patient (under a 3,000-character system), and a 2,800-character family name is found
/// by a prefix and by `:exact`.
pub async fn long_strings_are_stored_and_found_exactly(s: &TestServer) {
    let family = format!("Longfamily{}", letters(2790, 1));
    let stem = letters(3999, 2);
    let (id1, id2) = (format!("{stem}a"), format!("{stem}b"));
    let system = format!("urn:oid:1.2.3.{}", "4".repeat(3000));
    let mut ids = Vec::new();
    for (value, fam) in [(&id1, family.as_str()), (&id2, "Shortfamily")] {
        let p = json!({"resourceType": "Patient",
            "identifier": [{"system": system, "value": value}],
            "name": [{"family": fam}]});
        let (status, body, _) = s.post("Patient", &p).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().expect("id").to_owned());
    }
    let search = |q: String| async move {
        let (status, b) = post_search(s, &s.client, "Patient", &q).await;
        assert_eq!(status, 200, "{}…: {b}", &q[..q.len().min(30)]);
        entry_keys(&b)
    };
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let one = |i: usize| vec![format!("Patient/{}", ids[i])];
    assert_eq!(
        search(format!("identifier={}|{}", enc(&system), enc(&id1))).await,
        one(0)
    );
    assert_eq!(
        search(format!("identifier={}|{}", enc(&system), enc(&id2))).await,
        one(1)
    );
    assert_eq!(search(format!("identifier={}", enc(&id2))).await, one(1));
    assert!(search(format!("identifier={}", enc(&format!("{stem}c"))))
        .await
        .is_empty());
    assert_eq!(
        search(format!("family={}", enc(&family[..40]))).await,
        one(0)
    );
    // A prefix as long as the index keeps whole finds it; a longer one is refused with a
    // pointer to :exact (docs/search.md).
    let longest = oxehr_search::index::KEY_MAX_BYTES;
    assert_eq!(
        search(format!("family={}", enc(&family[..longest]))).await,
        one(0)
    );
    let (status, oo) = post_search(
        s,
        &s.client,
        "Patient",
        &format!("family={}", enc(&family[..longest + 1])),
    )
    .await;
    assert_eq!(status, 400, "{oo}");
    assert!(diagnostics(&oo).contains(":exact"), "{oo}");
    assert_eq!(
        search(format!("family:exact={}", enc(&family))).await,
        one(0)
    );
    let mut other = family.clone();
    other.pop();
    other.push('!');
    assert!(search(format!("family:exact={}", enc(&other)))
        .await
        .is_empty());
    // Read back whole.
    let (status, p, _) = s.get(&format!("Patient/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert_eq!(p["name"][0]["family"], json!(family));
    assert_eq!(p["identifier"][0]["value"], json!(id1));
}

/// B11: a string SHALL NOT exceed 1 MB (1024 × 1024 characters): one of that size is
/// stored on both backends, one character more is refused, by writes and `$validate`.
pub async fn strings_over_one_megabyte_are_refused(s: &TestServer) {
    let limit = 1024 * 1024;
    let at = json!({"resourceType": "Patient", "name": [{"family": letters(limit, 3)}]});
    let (status, oo, _) = s.post("Patient", &at).await;
    assert_eq!(status, 201, "{}", diagnostics(&oo));
    let over = json!({"resourceType": "Patient", "name": [{"family": letters(limit + 1, 3)}]});
    let (status, oo, _) = s.post("Patient", &over).await;
    assert_eq!(status, 400, "{}", diagnostics(&oo));
    assert_eq!(expression(&oo), "Patient.name[0].family");
    let (status, oo, _) = s.post("Patient/$validate", &over).await;
    assert_eq!(status, 400, "$validate: {}", diagnostics(&oo));
    still_serving(s).await;
}

/// C13: a decimal the index cannot hold (beyond a 64-bit float) is refused, as is such a
/// search value; values the index holds are found.
pub async fn decimals_are_stored_only_when_they_can_be_searched(s: &TestServer) {
    let obs = |value: &str| {
        let text = format!(
            r#"{{"resourceType": "Observation", "status": "final",
                "code": {{"coding": [{{"system": "http://loinc.org", "code": "29463-7"}}]}},
                "valueQuantity": {{"value": {value}, "system": "http://unitsofmeasure.org", "code": "kg", "unit": "kg"}}}}"#
        );
        serde_json::from_str::<Value>(&text).expect("json")
    };
    for bad in ["1e400", "-1e400", "1e-400"] {
        let (status, oo, _) = s.post("Observation", &obs(bad)).await;
        assert_eq!(status, 400, "{bad}: {oo}");
        assert_eq!(
            expression(&oo),
            "Observation.value.ofType(Quantity).value",
            "{oo}"
        );
    }
    let (status, oo, _) = s.post("Observation", &obs("1e301")).await;
    assert_eq!(status, 201, "{oo}");
    let (_, found, _) = s
        .get("Observation?value-quantity=gt1e300&_total=accurate")
        .await;
    assert_eq!(found["total"], 1, "{found}");
    for bad in ["gt1e400", "1e-400", "lt-1e999"] {
        let (status, oo, _) = s.get(&format!("Observation?value-quantity={bad}")).await;
        assert_eq!(status, 400, "{bad}: {oo}");
    }
}

/// C14: a malformed date (an offset beyond ±14:00) is a 400, as docs/search.md says.
pub async fn malformed_date_offsets_get_400(s: &TestServer) {
    for bad in [
        "birthdate=2020-01-01T10:00:00%2B99:00",
        "birthdate=2020-01-01T10:00:00%2B14:01",
        "birthdate=2020-01-01T24:00:00Z",
        "_lastUpdated=gt2020-01-01T10:00:00-15:00",
    ] {
        let (status, oo, _) = s.get(&format!("Patient?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {oo}");
    }
    for good in [
        "birthdate=2020-01-01T10:00:00%2B14:00",
        "birthdate=2020-01-01T10:00:00-12:00",
        "birthdate=2020-01-01T10:00:00Z",
    ] {
        let (status, b, _) = s.get(&format!("Patient?{good}")).await;
        assert_eq!(status, 200, "{good}: {b}");
    }
}

/// C15 and C16: a Bundle is validated like any resource before its entries are
/// processed: an unknown element, or two entries with the same fullUrl (bdl-7), refuse
/// the whole Bundle and store nothing.
pub async fn bundles_are_validated_as_resources(s: &TestServer) {
    let entry = |full_url: &str, family: &str| {
        json!({"fullUrl": full_url, "request": {"method": "POST", "url": "Patient"},
            "resource": {"resourceType": "Patient", "name": [{"family": family}]}})
    };
    let same = "urn:uuid:0b7b6f4c-9a43-4d1e-9a52-1f0c5e2d1a01";
    for kind in ["transaction", "batch"] {
        let b = bundle(
            kind,
            vec![entry(same, "Bundlefamily"), entry(same, "Bundlefamily")],
        );
        let (status, oo, _) = s.post("", &b).await;
        assert_eq!(status, 400, "{kind} with a repeated fullUrl: {oo}");
        assert!(diagnostics(&oo).contains("bdl-7"), "{oo}");
        let mut b = bundle(kind, vec![entry(same, "Bundlefamily")]);
        b["unknownElement"] = json!(true);
        let (status, oo, _) = s.post("", &b).await;
        assert_eq!(status, 400, "{kind} with an unknown element: {oo}");
        assert_eq!(expression(&oo), "Bundle.unknownElement", "{oo}");
    }
    let (_, found, _) = s.get("Patient?family=Bundlefamily&_total=accurate").await;
    assert_eq!(found["total"], 0, "{found}");
    // Distinct fullUrls are fine.
    let b = bundle(
        "transaction",
        vec![
            entry(same, "Bundlefamily"),
            entry(
                "urn:uuid:0b7b6f4c-9a43-4d1e-9a52-1f0c5e2d1a02",
                "Bundlefamily",
            ),
        ],
    );
    let (status, oo, _) = s.post("", &b).await;
    assert_eq!(status, 200, "{oo}");
}

/// B7: a request's statements stop at the record layer's time limit: a read past it is
/// answered 503 with an OperationOutcome (here with a limit already passed, so that no
/// timing is involved; the store conformance suite stops real minute-long statements
/// at a deadline and on a stop, on both backends).
pub async fn reads_past_the_statement_time_limit_get_503(backend: crate::common::Backend) {
    let records = oxehr_records::RecordsConfig {
        statement_timeout: Some(std::time::Duration::ZERO),
        ..Default::default()
    };
    let Some(s) =
        crate::common::start_with_records(backend, oxehr_api::ApiConfig::default(), records).await
    else {
        return;
    };
    for path in ["Patient?family=a", "Patient/x", "_history", "AuditEvent"] {
        let (status, oo, _) = s.get(path).await;
        assert_eq!(status, 503, "{path}: {oo}");
        assert_eq!(oo["issue"][0]["code"], "timeout", "{path}: {oo}");
        assert!(diagnostics(&oo).contains("time limit"), "{path}: {oo}");
    }
}

/// The rules of B9, C13 and A5 protect the server and its readers, so they hold even
/// when full validation is turned off (`validate = false`), while what only validation
/// checks (an unknown element) then passes.
pub async fn safety_rules_hold_with_validation_off(backend: crate::common::Backend) {
    let records = oxehr_records::RecordsConfig {
        validate: false,
        ..Default::default()
    };
    let Some(s) =
        crate::common::start_with_records(backend, oxehr_api::ApiConfig::default(), records).await
    else {
        return;
    };
    let div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p onclick=\"x()\">Hi</p></div>";
    let refused = [
        (json!({"resourceType": "Patient", "name": [{"family": "Nul\u{0}name"}]}), "Patient.name[0].family"),
        (json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}}), "Patient.text.div"),
        (
            serde_json::from_str(r#"{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": 1e400}}"#)
                .expect("json"),
            "Observation.valueQuantity.value",
        ),
    ];
    for (resource, at) in refused {
        let ty = resource["resourceType"].as_str().expect("type").to_owned();
        let (status, oo, _) = s.post(&ty, &resource).await;
        assert_eq!(status, 400, "{resource}: {oo}");
        assert_eq!(expression(&oo), at, "{oo}");
    }
    let (status, oo, _) = s
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "nickname": "not an element"}),
        )
        .await;
    assert_eq!(status, 201, "validation is off: {oo}");
}
