//! The MLLP listener over a real socket, on a real store: every sample message in
//! `../shared/data/hl7v2` is either stored (with the resources this test works out from
//! the message text itself) or answered AE/AR with a reason and kept in triage; a
//! message sent again gets the same acknowledgement and stores nothing new; an
//! unregistered sender or address is refused and audited.

mod support;

use oxehr_records::Caller;
use support::*;

/// What each sample is answered with, and why.
const SAMPLES: &[(&str, &str)] = &[
    ("ADT-A01-01.hl7", "AA"),
    ("ADT-A01-02.hl7", "AA"),
    ("ADT-A02-01.hl7", "AA"),
    ("ADT-A03-01.hl7", "AA"),
    ("ADT-A04-01.hl7", "AA"),
    ("ADT-A04-02.hl7", "AA"),
    ("ADT-A05-01.hl7", "AA"),
    ("ADT-A08-01.hl7", "AA"),
    ("ADT-A08-02.hl7", "AA"),
    ("ADT-A11-01.hl7", "AA"),
    ("ADT-A13-01.hl7", "AA"),
    ("ADT-A28-01.hl7", "AA"),
    ("ADT-A31-01.hl7", "AA"),
    // A merge of two patients the record does not hold (with both registered it is
    // stored: `a40_merges_two_registered_patients`).
    ("ADT-A40-01.hl7", "AE"),
    // Two merges in one message: one per message is accepted.
    ("ADT-A40-02.hl7", "AR"),
    // An allergy update: not mapped.
    ("ADT-A60-01.hl7", "AR"),
    ("ADT01-23.hl7", "AA"),
    ("ADT01-28.hl7", "AA"),
    ("ADT04-23.hl7", "AA"),
    ("ADT04-251.hl7", "AA"),
    ("ADT04-28.hl7", "AA"),
    // Billing, financial, orders, referrals, problems: not mapped.
    ("BAR-P01-01.hl7", "AR"),
    ("DFT-P03-01.hl7", "AR"),
    // An immunization without a visit, for a patient the sender has no care
    // relationship with: the record refuses it.
    ("IZ_1_1.1_Admin_Child_Max_Message.hl7", "AE"),
    ("LAB-ORM-1.hl7", "AR"),
    ("LAB-ORU-1.hl7", "AA"),
    ("LAB-ORU-2.hl7", "AA"),
    ("LRI_2.0-NG_CBC_Typ_Message.hl7", "AA"),
    ("MDHHS-OML-O21-1.hl7", "AR"),
    ("MDM-T02-01.hl7", "AA"),
    // Named MDM but an ADT^A01 by its header.
    ("MDM_01.hl7", "AA"),
    ("OML-O21-01.hl7", "AR"),
    ("ORM-O01-01.hl7", "AR"),
    // Its second OBX has no observation identifier (OBX-3, required).
    ("ORU-R01-01.hl7", "AE"),
    ("ORU-R01-RMGEAD.hl7", "AA"),
    ("OUL-R22-01.hl7", "AR"),
    // No sending application or facility at all: no interface can be registered for it.
    ("PC1-Problem-Add-v2.3.1.hl7", "AR"),
    ("RDE-O11-01.hl7", "AR"),
    ("REF-I12-01.hl7", "AR"),
    ("SIU-S12-01.hl7", "AA"),
    ("VXU-V04-01.hl7", "AA"),
    ("VXU.hl7", "AE"),
];

/// The facility an interface is registered for: MSH-4's first component, or MSH-3's
/// when MSH-4 is empty.
fn facility_of(raw: &str) -> String {
    let segs = segments(raw);
    let sep = component_sep(raw);
    let first = |n| {
        field(&segs, "MSH", n)
            .unwrap_or("")
            .split(sep)
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let f = first(4);
    if f.is_empty() {
        first(3)
    } else {
        f
    }
}

#[test]
fn the_table_lists_every_sample() {
    oxehr_testdata::require!();
    let mut files: Vec<String> = std::fs::read_dir(samples_dir())
        .expect("samples")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".hl7"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = SAMPLES.iter().map(|(f, _)| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed);
    assert_eq!(files.len(), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_is_stored_or_answered_with_a_reason() {
    oxehr_testdata::require!();
    // Each sample on a server of its own (several samples share a sender and control
    // id); every failure is reported, not only the first.
    let mut failed = Vec::new();
    for (file, expected) in SAMPLES {
        if let Err(e) = tokio::spawn(one_sample(file, expected)).await {
            failed.push(format!("{file}: {e}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} samples failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

async fn one_sample(file: &'static str, expected: &'static str) {
    {
        let raw = std::fs::read(samples_dir().join(file)).expect("sample");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let segs = segments(&text);
        let server = start(Backend::Sqlite).await.expect("sqlite");
        let facility = facility_of(&text);
        if !facility.is_empty() {
            register(&server.records, "feed", &facility, None).await;
        }
        let ack = send(server.addr, &raw).await;
        let (code, acked_id, has_err) = msa(&ack);
        assert_eq!(code, expected, "{file}: {ack}");
        assert_eq!(acked_id, field(&segs, "MSH", 10).unwrap_or(""), "{file}");
        assert_eq!(has_err, code != "AA", "{file}: ERR with AE/AR only: {ack}");
        let held = {
            let r = server.records.clone();
            tokio::task::spawn_blocking(move || r.triage(&Caller::server(), 100).expect("triage"))
                .await
                .expect("join")
        };
        if code == "AA" {
            assert!(held.is_empty(), "{file}: nothing held");
            check_stored(file, &text, &server).await;
        } else if !facility.is_empty() {
            assert_eq!(held.len(), 1, "{file}: kept in triage");
            assert!(held[0].reason.as_deref().is_some_and(|r| !r.is_empty()));
            assert_eq!(held[0].message, text, "{file}: kept as received");
        }
        // Sent again: the same answer, nothing new.
        let before = search(&server.records, "Provenance", &[]).await.len();
        let again = send(server.addr, &raw).await;
        if !facility.is_empty() {
            assert_eq!(again, ack, "{file}: a resend is answered as the first time");
        }
        assert_eq!(
            search(&server.records, "Provenance", &[]).await.len(),
            before
        );
        server.shut_down().await;
    }
}

/// The resources a stored sample must have left, worked out from its text.
async fn check_stored(file: &str, text: &str, server: &Server) {
    let segs = segments(text);
    let sep = component_sep(text);
    let comp = |f: &str, n: usize| f.split(sep).nth(n).unwrap_or("").to_owned();
    let pid3 = field(&segs, "PID", 3).expect("PID-3");
    let first_id = comp(pid3.split('~').next().unwrap_or(""), 0);
    let patients = search(&server.records, "Patient", &[("identifier", &first_id)]).await;
    assert_eq!(patients.len(), 1, "{file}: one patient with identifier");
    let patient = &patients[0];
    let pid = patient["id"].as_str().expect("id").to_owned();
    let family = comp(
        &comp(
            field(&segs, "PID", 5)
                .unwrap_or("")
                .split('~')
                .next()
                .unwrap_or(""),
            0,
        ),
        0,
    );
    let family = family.split('&').next().unwrap_or("").to_owned();
    if !family.is_empty() {
        let names: Vec<&str> = patient["name"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["family"].as_str())
            .collect();
        assert!(names.contains(&family.as_str()), "{file}: family name");
    }
    let subject = format!("Patient/{pid}");
    let of_patient = |t: &'static str| {
        let subject = subject.clone();
        async move { search(&server.records, t, &[("patient", &subject)]).await }
    };
    let kind = comp(field(&segs, "MSH", 9).unwrap_or(""), 0);
    match kind.as_str() {
        "ORU" => {
            let observations = of_patient("Observation").await;
            assert_eq!(
                observations.len(),
                count(&segs, "OBX"),
                "{file}: an Observation per OBX"
            );
            assert_eq!(
                of_patient("DiagnosticReport").await.len(),
                count(&segs, "OBR"),
                "{file}"
            );
        }
        "VXU" => {
            let immunizations = of_patient("Immunization").await;
            assert_eq!(immunizations.len(), count(&segs, "RXA"), "{file}");
            let cvx = comp(field(&segs, "RXA", 5).unwrap_or(""), 0);
            assert!(
                immunizations.iter().any(|i| i["vaccineCode"]["coding"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["code"] == cvx.as_str())),
                "{file}: vaccine code {cvx}"
            );
        }
        "SIU" => {
            assert_eq!(of_patient("Appointment").await.len(), 1, "{file}");
        }
        "MDM" => {
            assert_eq!(of_patient("DocumentReference").await.len(), 1, "{file}");
        }
        _ => {}
    }
    if kind == "ADT" && count(&segs, "PV1") > 0 {
        let encounters = of_patient("Encounter").await;
        assert_eq!(encounters.len(), 1, "{file}: the visit");
        assert_eq!(
            encounters[0]["serviceProvider"]["reference"], "Organization/sender",
            "{file}: the sender's visit"
        );
    }
    // The source: a Provenance naming the sending organization and the message.
    let provenance = search(&server.records, "Provenance", &[("target", &subject)]).await;
    assert_eq!(provenance.len(), 1, "{file}: one Provenance");
    let p = &provenance[0];
    assert_eq!(p["agent"][0]["who"]["reference"], "Organization/sender");
    let key = format!(
        "{}|{}|{}",
        field(&segs, "MSH", 3).unwrap_or(""),
        field(&segs, "MSH", 4).unwrap_or(""),
        field(&segs, "MSH", 10).unwrap_or("")
    );
    assert_eq!(
        p["entity"][0]["what"]["identifier"]["value"],
        key.as_str(),
        "{file}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_facility_or_address_is_refused_and_audited() {
    oxehr_testdata::require!();
    let server = start(Backend::Sqlite).await.expect("sqlite");
    let raw = std::fs::read(samples_dir().join("ORU-R01-RMGEAD.hl7")).expect("sample");
    // Nobody registered.
    let (code, _, err) = msa(&send(server.addr, &raw).await);
    assert_eq!((code.as_str(), err), ("AR", true));
    // Registered for another network only.
    register(&server.records, "lab", "ELAB-3", Some("10.0.0.0/8")).await;
    let (code, _, _) = msa(&send(server.addr, &raw).await);
    assert_eq!(code, "AR");
    let r = server.records.clone();
    let refused = tokio::task::spawn_blocking(move || {
        r.flush_audit().expect("flush");
        r.audit_events(
            &Caller::server(),
            oxehr_store::audit::AuditFilter::default(),
            100,
        )
        .expect("audit")
        .into_iter()
        .filter(|a| a.record.action == "hl7v2-receive" && a.record.outcome == "denied")
        .count()
    })
    .await
    .expect("join");
    assert_eq!(refused, 2, "each refusal is in the audit trail");
    assert!(search(&server.records, "Observation", &[]).await.is_empty());
    server.shut_down().await;
}

/// Two connections send the same new message at once: one stores it, both get the same
/// acknowledgement, and its resources exist once.
async fn racing_resends(backend: Backend) {
    let Some(server) = start(backend).await else {
        return;
    };
    register(&server.records, "lab", "ELAB-3", None).await;
    let raw = std::fs::read(samples_dir().join("ORU-R01-RMGEAD.hl7")).expect("sample");
    let obx = count(&segments(&String::from_utf8_lossy(&raw)), "OBX");
    let (a, b) = tokio::join!(send(server.addr, &raw), send(server.addr, &raw));
    assert_eq!(msa(&a).0, "AA");
    assert_eq!(a, b, "both connections are answered alike");
    assert_eq!(search(&server.records, "Observation", &[]).await.len(), obx);
    assert_eq!(search(&server.records, "Provenance", &[]).await.len(), 1);
    server.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_twice_at_once_is_stored_once_sqlite() {
    oxehr_testdata::require!();
    racing_resends(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_twice_at_once_is_stored_once_postgres() {
    oxehr_testdata::require!();
    racing_resends(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_control_id_is_refused_and_garbage_is_answered() {
    oxehr_testdata::require!();
    let server = start(Backend::Sqlite).await.expect("sqlite");
    register(&server.records, "lab", "ELAB-3", None).await;
    let raw =
        String::from_utf8(std::fs::read(samples_dir().join("ORU-R01-RMGEAD.hl7")).expect("sample"))
            .expect("utf-8");
    assert_eq!(msa(&send(server.addr, raw.as_bytes()).await).0, "AA");
    // The same control id on another message (a note added).
    let changed = format!("{}\rNTE|1||a note\r", raw.trim_end());
    let (code, _, err) = msa(&send(server.addr, changed.as_bytes()).await);
    assert_eq!((code.as_str(), err), ("AR", true));
    // Not HL7 at all: an AR, and the connection still serves.
    let mut c = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let garbage = send_on(&mut c, b"hello, this is not a message").await;
    assert_eq!(msa(&garbage).0, "AR");
    let fine = send_on(&mut c, raw.as_bytes()).await;
    assert_eq!(
        msa(&fine).0,
        "AA",
        "the same message again, on the same connection"
    );
    server.shut_down().await;
}

/// ADT^A40 merges: the sample `ADT-A40-01.hl7` names patient 56789 (MRG-1) to be merged
/// into 12345 (PID-3). With both registered first by the same clinic, it is stored (AA):
/// the merged record is inactive and points at the survivor, whose search gives the
/// merged record's visit too; a resend changes nothing; and a later message naming the
/// merged record's number is filed on the survivor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a40_merges_two_registered_patients() {
    oxehr_testdata::require!();
    let raw = std::fs::read_to_string(samples_dir().join("ADT-A40-01.hl7")).expect("sample");
    let server = start(Backend::Sqlite).await.expect("sqlite");
    register(&server.records, "clinic", "Ntierprise Clinic", None).await;
    // Both registrations as the clinic sends them (ADT^A04 with a visit), by the
    // identifiers the merge message names.
    let registration = |control: &str, id: &str, family: &str, visit: &str| {
        format!(
            "MSH|^~\\&|Ntierprise|Ntierprise Clinic|Healthmatics EHR|Healthmatics Clinic|20190423140000||ADT^A04^ADT_A01|{control}|P|2.8\r\
             EVN|A04|20190423140000\r\
             PID|1||{id}^^^BCBS^MR||{family}^Test^A||20180205|F\r\
             PV1|1|O|||||||||||||||||{visit}\r"
        )
    };
    for (control, id, family, visit) in [
        ("reg-1", "12345", "Test", "V-1"),
        ("reg-2", "56789", "Tset", "V-2"),
    ] {
        let ack = send(
            server.addr,
            registration(control, id, family, visit).as_bytes(),
        )
        .await;
        assert_eq!(msa(&ack).0, "AA", "{ack}");
    }
    let survivor = search(&server.records, "Patient", &[("identifier", "12345")]).await;
    let merged = search(&server.records, "Patient", &[("identifier", "56789")]).await;
    assert_eq!((survivor.len(), merged.len()), (1, 1));
    let (a, b) = (
        survivor[0]["id"].as_str().expect("id").to_owned(),
        merged[0]["id"].as_str().expect("id").to_owned(),
    );
    assert_eq!(
        search(&server.records, "Encounter", &[("patient", &a)])
            .await
            .len(),
        1
    );

    let ack = send(server.addr, raw.as_bytes()).await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    let merged = search(&server.records, "Patient", &[("_id", &b)]).await;
    assert_eq!(merged[0]["active"], false);
    assert_eq!(merged[0]["link"][0]["type"], "replaced-by");
    assert_eq!(
        merged[0]["link"][0]["other"]["reference"],
        format!("Patient/{a}")
    );
    let visits = |p: String| {
        let records = server.records.clone();
        async move {
            search(&records, "Encounter", &[("patient", &p)])
                .await
                .len()
        }
    };
    assert_eq!(visits(a.clone()).await, 2);
    assert_eq!(visits(b.clone()).await, 0);
    // Sent again: the same answer; still one merge.
    let before = search(&server.records, "Provenance", &[]).await.len();
    assert_eq!(send(server.addr, raw.as_bytes()).await, ack);
    assert_eq!(
        search(&server.records, "Provenance", &[]).await.len(),
        before
    );
    // A later visit under the merged-away number lands on the survivor.
    let ack = send(
        server.addr,
        registration("reg-3", "56789", "Tset", "V-3").as_bytes(),
    )
    .await;
    assert_eq!(msa(&ack).0, "AA", "{ack}");
    assert_eq!(visits(a).await, 3);
    assert_eq!(visits(b).await, 0);
    server.shut_down().await;
}
