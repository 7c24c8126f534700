//! Exports a CCD from a Synthea-style FHIR Bundle: `cargo run --example export -- bundle.json > ccd.xml`.
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: export BUNDLE.json");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let bundle: serde_json::Value = match serde_json::from_str(&text) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let resources: Vec<serde_json::Value> = bundle["entry"]
        .as_array()
        .map(|a| a.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default();
    let Some(patient) = resources.iter().find(|r| r["resourceType"] == "Patient") else {
        eprintln!("{path}: no Patient");
        std::process::exit(1);
    };
    let ctx = oxehr_ccda::ExportContext {
        author_organization: resources
            .iter()
            .find(|r| r["resourceType"] == "Organization")
            .cloned(),
        now: "2024-01-02T03:04:05Z".into(),
        document_id: "0b1e2f3a-4c5d-4e6f-8a9b-0c1d2e3f4a5b".into(),
    };
    match oxehr_ccda::export_ccd(patient, &resources, &ctx) {
        Ok(x) => print!("{x}"),
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    }
}
