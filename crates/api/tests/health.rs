//! `/healthz` (the process answers) and `/readyz` (the store answers a read and the audit
//! trail can be written), without credentials, on both backends.

mod common;

use common::TestServer;

async fn probes_answer_without_credentials(s: &TestServer) {
    let root = s.base.trim_end_matches("/fhir");
    for (path, want) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let resp = s
            .anonymous
            .get(format!("{root}{path}"))
            .send()
            .await
            .expect("probe");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert_eq!(resp.text().await.expect("text").trim(), want, "{path}");
    }
    // The FHIR API itself still needs a credential.
    let resp = s.anonymous.get(s.url("Patient")).send().await.expect("get");
    assert_eq!(resp.status().as_u16(), 401);
}

on_both_backends!(probes_answer_without_credentials);
