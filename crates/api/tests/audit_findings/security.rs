//! Findings A1–A3 and A5: forged AuditEvents, conditional writes revealing hidden
//! records, history pages counting hidden versions, active content in narratives.
//! (A4, the database file's permissions, is tested with the binary: `oxehr/tests`.)

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use super::*;
use crate::common::TestServer;

/// A forged AuditEvent that claims a read of `p-ours-1`.
fn forged_audit_event() -> Value {
    json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "urn:oxehr:audit-action", "code": "read"}],
        "action": "R",
        "recorded": "2026-01-01T00:00:00Z",
        "agent": [{"requestor": true, "who": {"display": "forger"}}],
        "source": {"observer": {"display": "forger"}},
        "entity": [{"what": {"reference": "Patient/p-ours-1"}}]
    })
}

/// The trail is written by the server only: no path of any caller stores an AuditEvent,
/// and nothing a refused request sent is stored.
pub async fn audit_events_are_written_by_the_server_only(s: &TestServer) {
    let clinician = fixture(s).await;
    let forged = forged_audit_event();
    let mut with_id = forged.clone();
    with_id["id"] = json!("forged");
    let entries: Vec<(&str, Value)> = vec![
        (
            "POST",
            json!({"request": {"method": "POST", "url": "AuditEvent"}, "resource": forged}),
        ),
        (
            "POST ifNoneExist",
            json!({"request": {"method": "POST", "url": "AuditEvent", "ifNoneExist": "action=R"}, "resource": forged}),
        ),
        (
            "PUT",
            json!({"request": {"method": "PUT", "url": "AuditEvent/forged"}, "resource": with_id}),
        ),
        (
            "conditional PUT",
            json!({"request": {"method": "PUT", "url": "AuditEvent?action=R"}, "resource": forged}),
        ),
        (
            "DELETE",
            json!({"request": {"method": "DELETE", "url": "AuditEvent/1"}}),
        ),
        (
            "conditional DELETE",
            json!({"request": {"method": "DELETE", "url": "AuditEvent?action=R"}}),
        ),
    ];
    for (who, client) in [("clinician", &clinician), ("system admin", &s.client)] {
        for (what, entry) in &entries {
            let (status, oo) = call(
                s,
                client,
                Method::POST,
                "",
                Some(&bundle("transaction", vec![entry.clone()])),
                &[],
            )
            .await;
            assert_eq!(status, 405, "{who}, transaction {what}: {oo}");
            assert!(
                diagnostics(&oo).contains("audit trail"),
                "{who}, transaction {what}: {oo}"
            );
            let (status, b) = call(
                s,
                client,
                Method::POST,
                "",
                Some(&bundle("batch", vec![entry.clone()])),
                &[],
            )
            .await;
            assert_eq!(status, 200, "{who}, batch {what}: {b}");
            let entry_status = b["entry"][0]["response"]["status"].as_str().unwrap_or("");
            assert!(entry_status.starts_with("405"), "{who}, batch {what}: {b}");
        }
        // The REST interactions.
        let patch = json!([{"op": "replace", "path": "/action", "value": "C"}]);
        let rest: Vec<(Method, &str, Option<&Value>)> = vec![
            (Method::POST, "AuditEvent", Some(&forged)),
            (Method::PUT, "AuditEvent/forged", Some(&with_id)),
            (Method::PUT, "AuditEvent?action=R", Some(&forged)),
            (Method::DELETE, "AuditEvent/1", None),
            (Method::DELETE, "AuditEvent?action=R", None),
        ];
        for (m, path, body) in rest {
            let (status, oo) = call(s, client, m.clone(), path, body, &[]).await;
            assert_eq!(status, 405, "{who}, {m} {path}: {oo}");
        }
        let resp = client
            .patch(s.url("AuditEvent/1"))
            .header("content-type", "application/json-patch+json")
            .body(patch.to_string())
            .send()
            .await
            .expect("patch");
        assert_eq!(resp.status().as_u16(), 405, "{who}, PATCH");
    }
    // The CapabilityStatement says so.
    let (_, cs) = call(s, &s.client, Method::GET, "metadata", None, &[]).await;
    let audit = cs["rest"][0]["resource"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["type"] == "AuditEvent"))
        .cloned()
        .expect("AuditEvent in the CapabilityStatement");
    let codes: Vec<&str> = audit["interaction"]
        .as_array()
        .expect("interactions")
        .iter()
        .filter_map(|i| i["code"].as_str())
        .collect();
    assert_eq!(codes, ["read", "vread", "search-type"]);
    // Nothing was stored: the system history holds no AuditEvent version.
    let all = pages(&s.client, &s.url("_history?_count=1000")).await;
    let stored: Vec<String> = all
        .iter()
        .flatten()
        .filter(|e| e["resource"]["resourceType"] == "AuditEvent")
        .map(|e| e["fullUrl"].to_string())
        .collect();
    assert!(stored.is_empty(), "stored AuditEvents: {stored:?}");
}

/// `POST AuditEvent/_search` and a Bundle's `GET AuditEvent?…` reach the same audit view
/// as `GET AuditEvent?…`: the trail the server wrote, never stored resources.
pub async fn audit_event_search_by_post_and_in_bundles_reads_the_audit_trail(s: &TestServer) {
    let clinician = fixture(s).await;
    // An attempt to forge (refused or not, the searches below must not find it).
    let _ = call(
        s,
        &s.client,
        Method::POST,
        "",
        Some(&bundle(
            "transaction",
            vec![json!({"request": {"method": "POST", "url": "AuditEvent"}, "resource": forged_audit_event()})],
        )),
        &[],
    )
    .await;
    // The one read of p-ours-1 the trail must show.
    let (status, _) = call(s, &s.client, Method::GET, "Patient/p-ours-1", None, &[]).await;
    assert_eq!(status, 200);
    // Read records are appended in groups: wait until this one is in the trail.
    let records = s.records.clone();
    tokio::task::spawn_blocking(move || records.flush_audit())
        .await
        .expect("join")
        .expect("flush");
    let query = "patient=p-ours-1&subtype=read";
    let (status, by_get) = call(
        s,
        &s.client,
        Method::GET,
        &format!("AuditEvent?{query}"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{by_get}");
    let want = entry_keys(&by_get);
    assert_eq!(want.len(), 1, "one read of p-ours-1: {by_get}");
    let read = &by_get["entry"][0]["resource"];
    assert_eq!(read["agent"][0]["who"]["identifier"]["value"], "test-admin");
    assert_eq!(read["entity"][0]["what"]["reference"], "Patient/p-ours-1");

    let (status, by_post) = post_search(s, &s.client, "AuditEvent", query).await;
    assert_eq!(status, 200, "{by_post}");
    assert_eq!(entry_keys(&by_post), want, "POST _search: {by_post}");

    for kind in ["batch", "transaction"] {
        let b = bundle(
            kind,
            vec![json!({"request": {"method": "GET", "url": format!("AuditEvent?{query}")}})],
        );
        let (status, resp) = call(s, &s.client, Method::POST, "", Some(&b), &[]).await;
        assert_eq!(status, 200, "{kind}: {resp}");
        let inner = &resp["entry"][0]["resource"];
        assert_eq!(entry_keys(inner), want, "{kind} GET entry: {resp}");
    }

    // A clinician may not read the trail, whichever way they ask.
    let (get_status, _) = call(s, &clinician, Method::GET, "AuditEvent", None, &[]).await;
    assert_eq!(get_status, 403);
    let (status, _) = post_search(s, &clinician, "AuditEvent", "").await;
    assert_eq!(status, 403, "POST _search as a clinician");
}

/// The answers of every variant must be alike: same status, same diagnostics once the
/// ids of what was created are taken out.
fn masked(status: u16, body: &Value) -> (u16, String) {
    let text = if body["resourceType"] == "OperationOutcome" {
        diagnostics(body)
    } else {
        body["resourceType"].as_str().unwrap_or("").to_owned()
    };
    for (id, _) in HIDDEN_CONDITIONS {
        assert!(!text.contains(id), "names the hidden {id}: {text}");
    }
    (status, text)
}

/// If-None-Exist matching only hidden records behaves as matching nothing: the
/// sinusitis (two hidden matches), the pharyngitis (one) and the diabetes (none) get the
/// same answer.
pub async fn conditional_create_does_not_reveal_hidden_records(s: &TestServer) {
    let clinician = fixture(s).await;
    let (hidden, ours) = (Pt { ours: false, n: 1 }.id(), Pt { ours: true, n: 1 }.id());
    let (status, b) = call(
        s,
        &clinician,
        Method::GET,
        &format!("Condition?patient={hidden}&_total=accurate"),
        None,
        &[],
    )
    .await;
    assert_eq!((status, b["total"].as_u64()), (200, Some(0)), "{b}");
    let mut answers = Vec::new();
    for code in [SINUSITIS, PHARYNGITIS, DIABETES] {
        let cond = format!("patient={hidden}&code={code}");
        let (status, body) = call(
            s,
            &clinician,
            Method::POST,
            "Condition",
            Some(&condition(None, &ours, code)),
            &[("if-none-exist", &cond)],
        )
        .await;
        answers.push((code, masked(status, &body)));
        // The same in a transaction entry.
        let b = bundle(
            "transaction",
            vec![
                json!({"request": {"method": "POST", "url": "Condition", "ifNoneExist": cond},
                "resource": condition(None, &ours, code)}),
            ],
        );
        let (status, resp) = call(s, &clinician, Method::POST, "", Some(&b), &[]).await;
        assert_eq!(status, 200, "transaction, {code}: {resp}");
        assert_eq!(
            resp["entry"][0]["response"]["status"]
                .as_str()
                .map(|s| &s[..3]),
            Some("201"),
            "transaction, {code}: {resp}"
        );
    }
    for (code, answer) in &answers {
        assert_eq!(
            answer,
            &(201, "Condition".to_owned()),
            "If-None-Exist with code {code}"
        );
    }
    // A visible match still makes the create conditional.
    let cond = format!("patient={ours}&code={DIABETES}");
    let (status, body) = call(
        s,
        &clinician,
        Method::POST,
        "Condition",
        Some(&condition(None, &ours, DIABETES)),
        &[
            ("if-none-exist", &cond),
            ("prefer", "return=OperationOutcome"),
        ],
    )
    .await;
    assert_eq!(status, 412, "two visible diabetes conditions now: {body}");
}

/// Conditional update and delete matching only hidden records behave as matching
/// nothing: an update creates, a delete deletes nothing, and the hidden records stay.
pub async fn conditional_update_and_delete_do_not_reveal_hidden_records(s: &TestServer) {
    let clinician = fixture(s).await;
    let (hidden, ours) = (Pt { ours: false, n: 1 }.id(), Pt { ours: true, n: 1 }.id());
    let mut updates = Vec::new();
    let mut deletes = Vec::new();
    for code in [SINUSITIS, PHARYNGITIS, DIABETES] {
        let path = format!("Condition?patient={hidden}&code={code}");
        let (status, body) = call(
            s,
            &clinician,
            Method::PUT,
            &path,
            Some(&condition(None, &ours, code)),
            &[],
        )
        .await;
        updates.push((code, masked(status, &body)));
        let (status, body) = call(s, &clinician, Method::DELETE, &path, None, &[]).await;
        deletes.push((code, masked(status, &body)));
        for kind in ["transaction", "batch"] {
            let b = bundle(
                kind,
                vec![json!({"request": {"method": "DELETE", "url": path.clone()}})],
            );
            let (status, resp) = call(s, &clinician, Method::POST, "", Some(&b), &[]).await;
            assert_eq!(status, 200, "{kind} DELETE {code}: {resp}");
            assert_eq!(
                resp["entry"][0]["response"]["status"]
                    .as_str()
                    .map(|s| &s[..3]),
                Some("204"),
                "{kind} DELETE {code}: {resp}"
            );
        }
    }
    for (code, answer) in &updates {
        assert_eq!(
            answer,
            &(201, "Condition".to_owned()),
            "conditional update, {code}"
        );
    }
    for (code, answer) in &deletes {
        assert_eq!(answer.0, 204, "conditional delete, {code}: {answer:?}");
    }
    for (id, _) in HIDDEN_CONDITIONS {
        let (status, c) = call(
            s,
            &s.client,
            Method::GET,
            &format!("Condition/{id}"),
            None,
            &[],
        )
        .await;
        assert_eq!(status, 200, "{id} was not deleted: {c}");
        assert_eq!(c["meta"]["versionId"], "1", "{id} was not changed");
    }
}

/// A conditional reference that matches only a hidden patient is answered as one that
/// matches nobody: whether a name belongs to a patient anywhere on the server does not
/// show.
pub async fn conditional_references_do_not_reveal_hidden_patients(s: &TestServer) {
    let clinician = fixture(s).await;
    let obs = |subject: &str| {
        bundle(
            "transaction",
            vec![
                json!({"request": {"method": "POST", "url": "Observation"}, "resource": {
                    "resourceType": "Observation", "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": subject}
                }}),
            ],
        )
    };
    let hidden = format!("Patient?family={}", Pt { ours: false, n: 1 }.family());
    let nobody = "Patient?family=Nobodyhasthisname";
    let (hidden_status, hidden_oo) =
        call(s, &clinician, Method::POST, "", Some(&obs(&hidden)), &[]).await;
    let (nobody_status, nobody_oo) =
        call(s, &clinician, Method::POST, "", Some(&obs(nobody)), &[]).await;
    assert_eq!(nobody_status, 412, "{nobody_oo}");
    assert_eq!(hidden_status, nobody_status, "{hidden_oo}");
    assert_eq!(
        diagnostics(&hidden_oo).replace(&hidden, "?"),
        diagnostics(&nobody_oo).replace(nobody, "?")
    );
    // A patient the clinician sees is found.
    let ours = format!("Patient?family={}", Pt { ours: true, n: 1 }.family());
    let (status, resp) = call(s, &clinician, Method::POST, "", Some(&obs(&ours)), &[]).await;
    assert_eq!(status, 200, "{resp}");
}

/// Walks a history with `client`, `count` per page: every page but the last is full and
/// no page is empty (one empty page only when there is nothing at all). The entries as
/// `Type/id@etag`, in order.
async fn walk_history(
    client: &reqwest::Client,
    s: &TestServer,
    path: &str,
    count: usize,
) -> Vec<String> {
    let all = pages(client, &s.url(&format!("{path}?_count={count}"))).await;
    let sizes: Vec<usize> = all.iter().map(Vec::len).collect();
    for (i, n) in sizes.iter().enumerate() {
        let last = i + 1 == sizes.len();
        assert!(
            *n == count || (last && *n > 0) || sizes == [0],
            "{path}?_count={count}: page sizes {sizes:?}"
        );
    }
    let base = format!("{}/", s.base);
    all.iter()
        .flatten()
        .map(|e| {
            format!(
                "{}@{}",
                e["fullUrl"]
                    .as_str()
                    .unwrap_or("?")
                    .trim_start_matches(&base),
                e["response"]["etag"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn at_version(key: &str, v: u32) -> String {
    format!("{key}@W/\"{v}\"")
}

/// History pages are built from the versions the caller may see: a clinician walking
/// `Patient/_history?_count=1` over three visible and three hidden patients gets three
/// pages of one, and no empty page links onward. Deleted versions of hidden records stay
/// hidden too.
pub async fn history_pages_hold_only_visible_versions(s: &TestServer) {
    let clinician = fixture(s).await;
    // Newest first: the fixture created PATIENTS in order.
    let want: Vec<String> = PATIENTS
        .iter()
        .rev()
        .filter(|p| p.ours)
        .map(|p| at_version(&format!("Patient/{}", p.id()), 1))
        .collect();
    assert_eq!(want.len(), 3);
    for count in [1, 2, 3] {
        let got = walk_history(&clinician, s, "Patient/_history", count).await;
        assert_eq!(got, want, "Patient/_history?_count={count}");
    }
    // A visible and a hidden condition, each created and then deleted.
    let (ours, hidden) = (Pt { ours: true, n: 2 }.id(), Pt { ours: false, n: 2 }.id());
    put(s, &condition(Some("cond-ours-x"), &ours, DIABETES)).await;
    put(s, &condition(Some("cond-hidden-x"), &hidden, DIABETES)).await;
    for id in ["cond-ours-x", "cond-hidden-x"] {
        let (status, _) = call(
            s,
            &s.client,
            Method::DELETE,
            &format!("Condition/{id}"),
            None,
            &[],
        )
        .await;
        assert_eq!(status, 204);
    }
    let want = vec![
        at_version("Condition/cond-ours-x", 2),
        at_version("Condition/cond-ours-x", 1),
    ];
    for count in [1, 2] {
        let got = walk_history(&clinician, s, "Condition/_history", count).await;
        assert_eq!(got, want, "Condition/_history?_count={count}");
    }
    // The system history: every visible version (organizations, our patients, our
    // condition), nothing of the hidden records.
    let mut want: BTreeSet<String> = [ORG_A, ORG_B]
        .iter()
        .map(|o| at_version(&format!("Organization/{o}"), 1))
        .collect();
    want.extend(
        PATIENTS
            .iter()
            .filter(|p| p.ours)
            .map(|p| at_version(&format!("Patient/{}", p.id()), 1)),
    );
    want.insert(at_version("Condition/cond-ours-x", 1));
    want.insert(at_version("Condition/cond-ours-x", 2));
    let got = walk_history(&clinician, s, "_history", 2).await;
    assert_eq!(got.len(), want.len(), "{got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    // The administrator still sees every version, with the total.
    let (status, h) = call(s, &s.client, Method::GET, "Patient/_history", None, &[]).await;
    assert_eq!((status, h["total"].as_u64()), (200, Some(6)), "{h}");
}

/// A narrative with active content breaks txt-1 and is refused on every write path and by
/// `$validate`, with an OperationOutcome naming the element; a plain one is stored.
pub async fn narratives_with_active_content_are_refused_on_every_path(s: &TestServer) {
    let div = |inner: &str| format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{inner}</div>");
    let patient = |id: Option<&str>, inner: &str| {
        let mut p = json!({"resourceType": "Patient", "name": [{"family": "Narrativefamily"}],
            "text": {"status": "generated", "div": div(inner)}});
        if let Some(id) = id {
            p["id"] = json!(id);
        }
        p
    };
    let (status, good, _) = s
        .post("Patient", &patient(None, "<p>Seen in <b>clinic</b></p>"))
        .await;
    assert_eq!(status, 201, "{good}");
    let good_id = good["id"].as_str().expect("id").to_owned();
    let bad = [
        "<script>alert(1)</script><p>Hello</p>",
        "<p onclick=\"alert(1)\">Hello</p>",
        "<a href=\"javascript:alert(1)\">Hello</a>",
    ];
    for inner in bad {
        let (status, oo, _) = s.post("Patient", &patient(None, inner)).await;
        assert_eq!(status, 400, "create {inner}: {oo}");
        assert_eq!(expression(&oo), "Patient.text.div", "create {inner}: {oo}");
        let (status, oo, _) = s
            .put("Patient/narr-1", &patient(Some("narr-1"), inner))
            .await;
        assert_eq!(status, 400, "update {inner}: {oo}");
        let t = bundle(
            "transaction",
            vec![
                json!({"request": {"method": "POST", "url": "Patient"}, "resource": patient(None, inner)}),
            ],
        );
        let (status, oo, _) = s.post("", &t).await;
        assert_eq!(status, 400, "transaction {inner}: {oo}");
        assert_eq!(
            expression(&oo),
            "Bundle.entry[0].resource.text.div",
            "transaction {inner}: {oo}"
        );
        let b = bundle(
            "batch",
            vec![
                json!({"request": {"method": "POST", "url": "Patient"}, "resource": patient(None, inner)}),
            ],
        );
        let (status, resp, _) = s.post("", &b).await;
        assert_eq!(status, 200);
        assert!(
            resp["entry"][0]["response"]["status"]
                .as_str()
                .unwrap_or("")
                .starts_with("400"),
            "batch {inner}: {resp}"
        );
        let (status, oo, _) = s.post("Patient/$validate", &patient(None, inner)).await;
        assert_eq!(status, 400, "$validate {inner}: {oo}");
        assert_eq!(
            expression(&oo),
            "Patient.text.div",
            "$validate {inner}: {oo}"
        );
        let patch = json!([{"op": "replace", "path": "/text/div", "value": div(inner)}]);
        let resp = s
            .client
            .patch(s.url(&format!("Patient/{good_id}")))
            .header("content-type", "application/json-patch+json")
            .body(patch.to_string())
            .send()
            .await
            .expect("patch");
        assert_eq!(resp.status().as_u16(), 400, "patch {inner}");
    }
    // Only the plain narrative was stored, unchanged.
    let (_, found, _) = s
        .get("Patient?family=Narrativefamily&_total=accurate")
        .await;
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["entry"][0]["resource"]["meta"]["versionId"], "1");
}
