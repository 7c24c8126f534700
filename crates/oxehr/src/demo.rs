//! The demo record: a handful of Synthea patients shipped in the repository (`demo/`,
//! Apache-2.0, see `demo/NOTICE`), compiled into the binary so `serve --demo` works from
//! any directory.

use anyhow::{Context, Result};

use oxehr_records::Records;

/// The demo bundles: (file name, transaction Bundle JSON).
pub const BUNDLES: &[(&str, &str)] = &[
    (
        "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../demo/Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"
        )),
    ),
    (
        "Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../demo/Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json"
        )),
    ),
    (
        "Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../demo/Luigi_Wiegand_e27d88b0-c5e5-4042-ad49-184f6a900ee3.json"
        )),
    ),
    (
        "Antonio_Castellanos_6d2eba67-5b4a-403f-a29f-e6da3f1ea963.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../demo/Antonio_Castellanos_6d2eba67-5b4a-403f-a29f-e6da3f1ea963.json"
        )),
    ),
    (
        "Stephen_McLaughlin_7735ab79-6ac8-4b81-9936-f7ddabd18751.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../demo/Stephen_McLaughlin_7735ab79-6ac8-4b81-9936-f7ddabd18751.json"
        )),
    ),
];

/// Loads the demo patients unless the record already holds a Patient.
pub fn load_if_empty(records: &Records) -> Result<()> {
    let q = oxehr_records::query::parse(&["Patient".to_string()], &[], false, None)?;
    if !records.search(&q, 1)?.matches.is_empty() {
        tracing::info!("the record already holds patients; demo data not loaded");
        return Ok(());
    }
    let mut resources = 0;
    for (name, json) in BUNDLES {
        let bundle: serde_json::Value =
            serde_json::from_str(json).with_context(|| format!("demo bundle {name}"))?;
        let (_, outcomes) = records
            .bundle(bundle)
            .map_err(|e| anyhow::anyhow!("demo bundle {name}: {e}"))?;
        resources += outcomes.len();
    }
    tracing::info!(
        bundles = BUNDLES.len(),
        resources,
        "loaded the demo patients"
    );
    Ok(())
}
