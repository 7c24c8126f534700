//! A graceful shutdown drains requests: SIGTERM while a large transaction is being
//! written lets it finish and answer (200, every entry stored), then the server exits
//! cleanly and refuses new connections.

mod common;

use common::Server;

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(&["--data", data.path().to_str().expect("path")]);
    let entries: Vec<serde_json::Value> = (0..6000)
        .map(|i| {
            serde_json::json!({
                "fullUrl": format!("urn:uuid:6d3c4a10-0000-4000-8000-{i:012}"),
                "resource": {"resourceType": "Patient", "name": [{"family": format!("Drain{i}")}]},
                "request": {"method": "POST", "url": "Patient"}
            })
        })
        .collect();
    let bundle =
        serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let (client, url) = (server.client.clone(), server.base.clone());
    let in_flight = std::thread::spawn(move || {
        let resp = client
            .post(&url)
            .header("content-type", "application/fhir+json")
            .body(bundle.to_string())
            .send()
            .expect("the request in flight is answered");
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().expect("json");
        (
            status,
            body["entry"].as_array().map_or(0, Vec::len),
            std::time::Instant::now(),
        )
    });
    // The transaction is being received and written when the signal comes.
    std::thread::sleep(std::time::Duration::from_millis(150));
    let pid = server.child.id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let signalled = std::time::Instant::now();
    assert!(st.success());
    let (status, answered, at) = in_flight.join().expect("request thread");
    assert_eq!((status, answered), (200, 6000));
    // It was still in flight when the signal came.
    assert!(
        at > signalled,
        "the transaction was answered before the signal"
    );
    let exit = server.child.wait().expect("wait");
    assert!(exit.success(), "{exit:?}");
    // Gone: a new connection is refused.
    assert!(server
        .client
        .get(format!("{}/metadata", server.base))
        .send()
        .is_err());
    // Everything the answer said was stored is there: the store opens and holds them.
    let out = common::oxehr()
        .args(["audit", "verify", "--data"])
        .arg(data.path())
        .env("OXEHR_LOG", "warn")
        .output()
        .expect("verify");
    assert!(out.status.success(), "{out:?}");
}
