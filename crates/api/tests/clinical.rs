//! Care gaps, risk scores and `$lastn` over the FHIR API, on both backends.
//!
//! - A care gap closes within the request that writes its closing result: the HbA1c
//!   gap of a patient with diabetes (ADA Standards of Care, section 6: HbA1c at least
//!   twice a year, so at most 6 months apart) is open with the last test 8 months ago,
//!   and closed in the answer to the request right after the new result is posted.
//! - The population worklist lists the practice's patients who are due, and nobody
//!   else's; a patient account may not read it.
//! - The ASCVD risk of Goff et al. 2013 (Table A's white man: 55, total cholesterol
//!   213, HDL 50, untreated systolic 120, non-smoker, no diabetes: 5.3%; 5.38% from the
//!   unrounded sum) is stored as an
//!   Observation whose `derivedFrom` names the three measurements, and a missing input is
//!   named rather than guessed.
//! - `$lastn` groups by code and keeps the most recent `max` of each.
//!
//! Expected values come from the guideline, the paper and the test's own data.

mod common;

use common::{add_account, Backend, TestServer};
use serde_json::{json, Value};
use time::{Date, Duration, OffsetDateTime};

fn day(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// `years` whole years before today (29 Feb becomes 28 Feb).
fn years_ago(years: i32) -> Date {
    let t = today();
    Date::from_calendar_date(t.year() - years, t.month(), t.day().min(28)).expect("date")
}

async fn get(s: &TestServer, client: &reqwest::Client, path: &str) -> (u16, Value) {
    let resp = client.get(s.url(path)).send().await.expect("get");
    let (st, b, _) = common::split(resp).await;
    (st, b)
}

async fn post(s: &TestServer, client: &reqwest::Client, path: &str, body: &Value) -> (u16, Value) {
    let resp = client
        .post(s.url(path))
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .expect("post");
    let (st, b, _) = common::split(resp).await;
    (st, b)
}

async fn put(s: &TestServer, r: Value) {
    let path = format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap_or(""),
        r["id"].as_str().unwrap_or("")
    );
    let (st, b, _) = s.put(&path, &r).await;
    assert!(st == 200 || st == 201, "{path}: {st} {b}");
}

fn loinc(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display})
}

fn lab(patient: &str, code: &str, display: &str, value: f64, unit: &str, when: Date) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": loinc(code, display),
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": day(when),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    })
}

/// The gaps of a `$care-gaps` answer: (title, gapStatus code, due).
fn gaps_of(parameters: &Value) -> Vec<(String, String, Option<String>, String)> {
    let bundle = &parameters["parameter"][0]["resource"];
    assert_eq!(bundle["type"], "document", "{parameters}");
    assert_eq!(
        bundle["entry"][0]["resource"]["resourceType"],
        "Composition"
    );
    assert_eq!(
        bundle["entry"][0]["resource"]["type"]["coding"][0]["code"],
        "96315-7"
    );
    let guidance: Vec<&Value> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "GuidanceResponse")
        .collect();
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "DetectedIssue")
        .map(|di| {
            assert_eq!(di["code"]["coding"][0]["code"], "CAREGAP");
            let gr_ref = di["evidence"][0]["detail"][0]["reference"]
                .as_str()
                .expect("evidence");
            let gr = guidance
                .iter()
                .find(|g| format!("urn:uuid:{}", g["id"].as_str().unwrap_or("")) == gr_ref)
                .expect("the evidence's GuidanceResponse is in the bundle");
            (
                di["code"]["text"].as_str().unwrap_or("").to_owned(),
                di["modifierExtension"][0]["valueCodeableConcept"]["coding"][0]["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                di["extension"][0]["valueDate"].as_str().map(str::to_owned),
                gr["moduleUri"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn worklist_patients(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["resource"]["resourceType"] == "DetectedIssue")
                .map(|e| {
                    e["resource"]["patient"]["reference"]
                        .as_str()
                        .unwrap_or("")
                        .trim_start_matches("Patient/")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn care_gap_closes_within_the_request(backend: Backend) {
    let Some(s) = common::start(backend).await else {
        return;
    };
    for (id, name) in [("clinic-a", "Practice A"), ("clinic-b", "Practice B")] {
        put(
            &s,
            json!({"resourceType": "Organization", "id": id, "name": name}),
        )
        .await;
    }
    let born = years_ago(56);
    put(
        &s,
        json!({"resourceType": "Patient", "id": "dm-1", "gender": "male",
        "birthDate": day(born), "name": [{"family": "Okafor", "given": ["Ben"]}],
        "managingOrganization": {"reference": "Organization/clinic-a"}}),
    )
    .await;
    let doc_a = add_account(&s, "gaps-doc-a", "clinician", Some("clinic-a"), None).await;
    let doc_b = add_account(&s, "gaps-doc-b", "clinician", Some("clinic-b"), None).await;
    let patient = add_account(&s, "gaps-pat", "patient", None, Some("Patient/dm-1")).await;
    let (st, b) = post(&s, &doc_a, "Condition", &json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes mellitus type 2"}]},
        "subject": {"reference": "Patient/dm-1"},
        "onsetDateTime": day(years_ago(6)),
    })).await;
    assert_eq!(st, 201, "{b}");
    let eight_months_ago = today() - Duration::days(243);
    let (st, b) = post(
        &s,
        &doc_a,
        "Observation",
        &lab(
            "dm-1",
            "4548-4",
            "Hemoglobin A1c",
            7.4,
            "%",
            eight_months_ago,
        ),
    )
    .await;
    assert_eq!(st, 201, "{b}");

    // Open: the last HbA1c was 8 months ago, more than 6.
    let (st, p) = get(&s, &doc_a, "Patient/dm-1/$care-gaps").await;
    assert_eq!(st, 200, "{p}");
    let gaps = gaps_of(&p);
    let a1c: Vec<_> = gaps
        .iter()
        .filter(|g| g.0.to_lowercase().contains("a1c"))
        .collect();
    assert_eq!(a1c.len(), 1, "one HbA1c gap: {gaps:?}");
    assert_eq!(a1c[0].1, "open-gap", "{gaps:?}");
    let rule = a1c[0].3.rsplit('/').next().expect("rule id").to_owned();

    // The worklist: the practice sees its patient; another practice sees nobody; a
    // patient may not read it.
    let (st, w) = get(&s, &doc_a, &format!("Patient/$care-gaps?rule={rule}")).await;
    assert_eq!(st, 200, "{w}");
    assert_eq!(worklist_patients(&w), ["dm-1"], "{w}");
    let included: Vec<&Value> = w["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .collect();
    assert_eq!(included.len(), 1);
    assert_eq!(included[0]["resource"]["name"][0]["family"], "Okafor");
    let (st, w) = get(&s, &doc_b, &format!("Patient/$care-gaps?rule={rule}")).await;
    assert_eq!(st, 200, "{w}");
    assert!(worklist_patients(&w).is_empty(), "{w}");
    let (st, _) = get(&s, &patient, &format!("Patient/$care-gaps?rule={rule}")).await;
    assert_eq!(st, 403);

    // A second patient due, older result: the list pages, earliest due first, with no
    // patient twice.
    put(
        &s,
        json!({"resourceType": "Patient", "id": "dm-2", "gender": "female",
        "birthDate": day(years_ago(61)), "name": [{"family": "Lindqvist", "given": ["Ana"]}],
        "managingOrganization": {"reference": "Organization/clinic-a"}}),
    )
    .await;
    let (st, b) = post(&s, &doc_a, "Condition", &json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
        "subject": {"reference": "Patient/dm-2"}, "onsetDateTime": day(years_ago(3)),
    })).await;
    assert_eq!(st, 201, "{b}");
    let (st, b) = post(
        &s,
        &doc_a,
        "Observation",
        &lab(
            "dm-2",
            "4548-4",
            "Hemoglobin A1c",
            6.5,
            "%",
            today() - Duration::days(400),
        ),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let (st, w) = get(
        &s,
        &doc_a,
        &format!("Patient/$care-gaps?rule={rule}&_count=1"),
    )
    .await;
    assert_eq!(st, 200, "{w}");
    assert_eq!(
        worklist_patients(&w),
        ["dm-2"],
        "the longest overdue first: {w}"
    );
    let next = w["link"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        .and_then(|l| l["url"].as_str())
        .expect("a next page")
        .to_owned();
    let resp = doc_a.get(&next).send().await.expect("next");
    let (st, w, _) = common::split(resp).await;
    assert_eq!(st, 200, "{w}");
    assert_eq!(worklist_patients(&w), ["dm-1"], "{w}");
    if let Some(next) = w["link"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        .and_then(|l| l["url"].as_str())
    {
        let resp = doc_a.get(next).send().await.expect("next");
        let (_, w, _) = common::split(resp).await;
        assert!(worklist_patients(&w).is_empty(), "{w}");
    }
    let (st, _) = get(&s, &doc_b, "Patient/dm-1/$care-gaps").await;
    assert!(
        st == 403 || st == 404,
        "another practice read the gaps: {st}"
    );
    let (st, w) = get(&s, &doc_a, "Patient/$care-gaps?rule=no-such-rule").await;
    assert_eq!(st, 400, "{w}");

    // The closing result, then the very next request.
    let (st, b) = post(
        &s,
        &doc_a,
        "Observation",
        &lab("dm-1", "4548-4", "Hemoglobin A1c", 6.9, "%", today()),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    // Eight readers at once find the patient marked and work the gaps out together:
    // every one gets the answer, none an error.
    let url = s.url("Patient/dm-1/$care-gaps");
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (c, u) = (doc_a.clone(), url.clone());
            tokio::spawn(async move {
                let resp = c.get(&u).send().await.expect("get");
                common::split(resp).await
            })
        })
        .collect();
    for r in readers {
        let (st, p, _) = r.await.expect("reader");
        assert_eq!(st, 200, "{p}");
        assert!(
            gaps_of(&p)
                .iter()
                .any(|g| g.0.to_lowercase().contains("a1c") && g.1 == "closed-gap"),
            "{p}"
        );
    }
    let (st, p) = get(&s, &patient, "Patient/dm-1/$care-gaps").await;
    assert_eq!(st, 200, "{p}");
    let gaps = gaps_of(&p);
    let a1c: Vec<_> = gaps
        .iter()
        .filter(|g| g.0.to_lowercase().contains("a1c"))
        .collect();
    assert_eq!(a1c[0].1, "closed-gap", "{gaps:?}");
    // Due again 6 months after today's test (ADA: twice a year); allow the month's end.
    let due = a1c[0]
        .2
        .clone()
        .expect("a closed gap says when it falls due");
    let six_months = today() + Duration::days(181);
    let lo = day(six_months - Duration::days(4));
    let hi = day(six_months + Duration::days(4));
    assert!(
        due >= lo && due <= hi,
        "due {due}, expected about {}",
        day(six_months)
    );
    let (_, w) = get(&s, &doc_a, &format!("Patient/$care-gaps?rule={rule}")).await;
    assert_eq!(worklist_patients(&w), ["dm-2"], "{w}");
    let (_, w) = get(
        &s,
        &doc_a,
        &format!("Patient/$care-gaps?rule={rule}&status=closed"),
    )
    .await;
    assert_eq!(worklist_patients(&w), ["dm-1"], "{w}");

    // Entered in error: the gap opens again at once.
    let id = b["id"].as_str().expect("id").to_owned();
    let mut wrong = b.clone();
    wrong["status"] = json!("entered-in-error");
    let (st, r, _) = s.put(&format!("Observation/{id}"), &wrong).await;
    assert_eq!(st, 200, "{r}");
    let (_, p) = get(&s, &doc_a, "Patient/dm-1/$care-gaps?status=open-gap").await;
    let gaps = gaps_of(&p);
    assert!(
        gaps.iter()
            .any(|g| g.0.to_lowercase().contains("a1c") && g.1 == "open-gap"),
        "{gaps:?}"
    );
    assert!(
        gaps.iter().all(|g| g.1 == "open-gap"),
        "the status filter: {gaps:?}"
    );
}

/// The parameter `name` of a score part list.
fn part<'a>(score: &'a Value, name: &str) -> Option<&'a Value> {
    score["part"].as_array()?.iter().find(|p| p["name"] == name)
}

fn score<'a>(parameters: &'a Value, id_contains: &str) -> &'a Value {
    parameters["parameter"]
        .as_array()
        .expect("scores")
        .iter()
        .find(|s| {
            part(s, "id")
                .and_then(|v| v["valueCode"].as_str())
                .is_some_and(|v| v.contains(id_contains))
        })
        .unwrap_or_else(|| panic!("no {id_contains} score in {parameters}"))
}

async fn risk_score_explains_itself(backend: Backend) {
    let Some(s) = common::start(backend).await else {
        return;
    };
    put(
        &s,
        json!({"resourceType": "Organization", "id": "clinic-a", "name": "Practice A"}),
    )
    .await;
    // Goff et al. 2013, Table A: a 55-year-old white man.
    put(&s, json!({"resourceType": "Patient", "id": "cv-1", "gender": "male",
        "birthDate": day(years_ago(55)),
        "extension": [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
            "extension": [{"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3", "display": "White"}},
                          {"url": "text", "valueString": "White"}]}],
        "managingOrganization": {"reference": "Organization/clinic-a"}}))
    .await;
    let doc = add_account(&s, "risk-doc", "clinician", Some("clinic-a"), None).await;
    let when = today() - Duration::days(10);
    let mut made = Vec::new();
    for body in [
        lab(
            "cv-1",
            "2093-3",
            "Cholesterol [Mass/volume] in Serum or Plasma",
            213.0,
            "mg/dL",
            when,
        ),
        json!({"resourceType": "Observation", "status": "final",
            "code": loinc("85354-9", "Blood pressure panel"),
            "subject": {"reference": "Patient/cv-1"}, "effectiveDateTime": day(when),
            "component": [
                {"code": loinc("8480-6", "Systolic blood pressure"), "valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": loinc("8462-4", "Diastolic blood pressure"), "valueQuantity": {"value": 78, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]}),
        json!({"resourceType": "Observation", "status": "final",
            "code": loinc("72166-2", "Tobacco smoking status"),
            "subject": {"reference": "Patient/cv-1"}, "effectiveDateTime": day(when),
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "266919005", "display": "Never smoked tobacco"}]}}),
    ] {
        let (st, b) = post(&s, &doc, "Observation", &body).await;
        assert_eq!(st, 201, "{b}");
        made.push(format!("Observation/{}", b["id"].as_str().expect("id")));
    }
    // Without HDL the score names the input it lacks.
    let (st, p) = get(&s, &doc, "Patient/cv-1/$risk-scores").await;
    assert_eq!(st, 200, "{p}");
    let ascvd = score(&p, "ascvd");
    assert_eq!(
        part(ascvd, "status").expect("status")["valueCode"],
        "missing",
        "{ascvd}"
    );
    let missing: Vec<String> = ascvd["part"]
        .as_array()
        .expect("parts")
        .iter()
        .filter(|p| p["name"] == "missing")
        .map(|p| p["valueString"].as_str().unwrap_or("").to_lowercase())
        .collect();
    assert!(missing.iter().any(|m| m.contains("hdl")), "{missing:?}");
    assert!(
        part(ascvd, "value").is_none(),
        "a value was guessed: {ascvd}"
    );

    let (st, b) = post(
        &s,
        &doc,
        "Observation",
        &lab("cv-1", "2085-9", "HDL Cholesterol", 50.0, "mg/dL", when),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    made.push(format!("Observation/{}", b["id"].as_str().expect("id")));
    let (st, p) = get(&s, &doc, "Patient/cv-1/$risk-scores").await;
    assert_eq!(st, 200, "{p}");
    let ascvd = score(&p, "ascvd");
    assert_eq!(
        part(ascvd, "status").expect("status")["valueCode"],
        "computed",
        "{ascvd}"
    );
    let value = part(ascvd, "value").expect("value")["valueDecimal"]
        .as_f64()
        .expect("number");
    // Table A prints 5.3%, worked from its sum printed to two decimals (60.69); the
    // equation's unrounded sum (60.6995) gives 5.38%, shown as 5.4%.
    assert!(
        (5.3..=5.4).contains(&value),
        "Table A gives 5.3% (5.38% unrounded), got {value}"
    );
    assert!(part(ascvd, "citation").expect("citation")["valueString"]
        .as_str()
        .unwrap_or("")
        .contains("Goff"));
    // Stored as an Observation whose derivedFrom names the measurements used.
    let stored = part(ascvd, "observation").expect("stored")["valueReference"]["reference"]
        .as_str()
        .expect("reference")
        .to_owned();
    let (st, obs) = get(&s, &doc, &stored).await;
    assert_eq!(st, 200, "{obs}");
    let mut derived: Vec<String> = obs["derivedFrom"]
        .as_array()
        .expect("derivedFrom")
        .iter()
        .filter_map(|r| r["reference"].as_str().map(str::to_owned))
        .collect();
    derived.sort();
    // Every measurement the equation read: cholesterol, blood pressure, smoking status
    // and HDL (sex and age come from the Patient, which derivedFrom cannot name).
    let mut expected = made.clone();
    expected.sort();
    assert_eq!(derived, expected);
    // Asking again stores nothing new.
    let (_, before) = get(&s, &doc, "Observation?patient=cv-1&_summary=count").await;
    let (_, _) = get(&s, &doc, "Patient/cv-1/$risk-scores").await;
    let (_, after) = get(&s, &doc, "Observation?patient=cv-1&_summary=count").await;
    assert_eq!(before["total"], after["total"]);
}

async fn lastn_groups_by_code(backend: Backend) {
    let Some(s) = common::start(backend).await else {
        return;
    };
    put(&s, json!({"resourceType": "Patient", "id": "ln-1"})).await;
    put(&s, json!({"resourceType": "Patient", "id": "ln-2"})).await;
    let vital = |code: &str, display: &str, v: f64, d: i64, patient: &str| {
        json!({"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": loinc(code, display), "subject": {"reference": format!("Patient/{patient}")},
            "effectiveDateTime": day(today() - Duration::days(d)),
            "valueQuantity": {"value": v, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}})
    };
    // Weights on days 1..5 ago, heights on days 2 and 9 ago, one other patient's weight.
    let mut weights = Vec::new();
    for d in 1..=5 {
        let (st, b, _) = s
            .post(
                "Observation",
                &vital("29463-7", "Body weight", 80.0 + d as f64, d, "ln-1"),
            )
            .await;
        assert_eq!(st, 201, "{b}");
        weights.push((d, b["id"].as_str().expect("id").to_owned()));
    }
    let mut heights = Vec::new();
    for d in [2, 9] {
        let (st, b, _) = s
            .post(
                "Observation",
                &vital("8302-2", "Body height", 180.0, d, "ln-1"),
            )
            .await;
        assert_eq!(st, 201, "{b}");
        heights.push(b["id"].as_str().expect("id").to_owned());
    }
    let (st, _, _) = s
        .post(
            "Observation",
            &vital("29463-7", "Body weight", 60.0, 0, "ln-2"),
        )
        .await;
    assert_eq!(st, 201);

    let ids = |b: &Value| -> Vec<String> {
        let mut v: Vec<String> = b["entry"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|e| e["resource"]["id"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let (st, b, _) = s
        .get("Observation/$lastn?patient=ln-1&category=vital-signs")
        .await;
    assert_eq!(st, 200, "{b}");
    let mut expected = vec![weights[0].1.clone(), heights[0].clone()];
    expected.sort();
    assert_eq!(ids(&b), expected);
    let (st, b, _) = s
        .get("Observation/$lastn?patient=ln-1&category=vital-signs&max=3")
        .await;
    assert_eq!(st, 200, "{b}");
    let mut expected: Vec<String> = weights[..3]
        .iter()
        .map(|w| w.1.clone())
        .chain(heights.clone())
        .collect();
    expected.sort();
    assert_eq!(ids(&b), expected);
    let (st, b, _) = s
        .get("Observation/$lastn?patient=ln-1&code=http://loinc.org|8302-2&max=5")
        .await;
    assert_eq!(st, 200, "{b}");
    let mut expected = heights.clone();
    expected.sort();
    assert_eq!(ids(&b), expected);
    // What the operation requires.
    let (st, _, _) = s.get("Observation/$lastn?category=vital-signs").await;
    assert_eq!(st, 400);
    let (st, _, _) = s.get("Observation/$lastn?patient=ln-1").await;
    assert_eq!(st, 400);
    let (st, _, _) = s
        .get("Observation/$lastn?patient=ln-1&category=vital-signs&max=0")
        .await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn care_gap_closes_within_the_request_sqlite() {
    care_gap_closes_within_the_request(Backend::Sqlite).await;
}

#[tokio::test]
async fn care_gap_closes_within_the_request_postgres() {
    care_gap_closes_within_the_request(Backend::Postgres).await;
}

#[tokio::test]
async fn risk_score_explains_itself_sqlite() {
    risk_score_explains_itself(Backend::Sqlite).await;
}

#[tokio::test]
async fn risk_score_explains_itself_postgres() {
    risk_score_explains_itself(Backend::Postgres).await;
}

#[tokio::test]
async fn lastn_groups_by_code_sqlite() {
    lastn_groups_by_code(Backend::Sqlite).await;
}

#[tokio::test]
async fn lastn_groups_by_code_postgres() {
    lastn_groups_by_code(Backend::Postgres).await;
}
