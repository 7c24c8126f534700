//! Shared by the tests: where the data and the checking tools are, and facts computed
//! from FHIR resources independently of the crate's code.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared test data (`../shared/data` beside the checkout, or `$OXEHR_SHARED_DATA`);
/// a test reading it starts with `oxehr_testdata::require!()`, which skips it outside CI
/// when the data is absent and fails it under CI.
pub fn data_dir() -> PathBuf {
    oxehr_testdata::path("")
}

pub fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/ccda-check")
}

fn have(cmd: &str) -> bool {
    Command::new(cmd).arg("--version").output().is_ok()
}

/// Whether xmllint and xsltproc can run: under CI they are installed when missing
/// (tools/ccda-check/install.sh); outside CI a missing tool skips the check (one line).
pub fn tools() -> bool {
    // Once per test process: two tests installing at once would fight over apt's lock.
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(install_tools)
}

fn install_tools() -> bool {
    if have("xmllint") && have("xsltproc") {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        let st = Command::new("sh")
            .arg(tools_dir().join("install.sh"))
            .status();
        assert!(
            st.is_ok_and(|s| s.success()),
            "tools/ccda-check/install.sh failed"
        );
        assert!(
            have("xmllint") && have("xsltproc"),
            "xmllint/xsltproc still missing after install.sh"
        );
        return true;
    }
    println!("skipped: xmllint/xsltproc not installed (run tools/ccda-check/install.sh)");
    false
}

pub fn ccda_documents(data: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["ccda/hl7-c-cda-examples", "ccda/ms-fhir-converter"] {
        if let Ok(rd) = std::fs::read_dir(data.join(sub)) {
            v.extend(rd.filter_map(Result::ok).map(|e| e.path()));
        }
    }
    v.sort();
    v
}

pub fn synthea_bundles(data: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["synthea/smart-on-fhir-r4", "synthea/synthea-v3"] {
        if let Ok(rd) = std::fs::read_dir(data.join(sub)) {
            v.extend(rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                n.ends_with(".json")
                    && !n.starts_with("hospitalInformation")
                    && !n.starts_with("practitionerInformation")
            }));
        }
    }
    v.sort();
    v
}

pub fn resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .map(|a| a.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

fn st<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

fn code_of(cc: Option<&Value>) -> (String, String) {
    let c = cc.and_then(|c| c.pointer("/coding/0"));
    (
        c.and_then(|c| st(c, "/system")).unwrap_or("").to_string(),
        c.and_then(|c| st(c, "/code")).unwrap_or("").to_string(),
    )
}

fn day(d: Option<&str>) -> String {
    d.map(|d| d.chars().take(10).collect()).unwrap_or_default()
}

fn has_cat(r: &Value, code: &str) -> bool {
    r["category"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["coding"].as_array().into_iter().flatten())
        .any(|c| c["code"] == code)
}

pub type Facts = BTreeMap<&'static str, BTreeSet<(String, String, String)>>;

/// The facts of a record, per CCD section: (code system, code, day). Written from the
/// FHIR specification, not from the crate: an Observation with components and no value
/// (a blood-pressure panel) is its components; vital signs are the measured ones
/// (valueQuantity); a medication is its code or its Medication's code.
pub fn facts(resources: &[Value]) -> Facts {
    let mut f: Facts = BTreeMap::new();
    let mut add = |k: &'static str, code: (String, String), d: Option<&str>| {
        f.entry(k).or_default().insert((code.0, code.1, day(d)));
    };
    let start = |r: &Value, p: &str| -> Option<String> {
        r.get(format!("{p}DateTime"))
            .and_then(Value::as_str)
            .or_else(|| {
                r.pointer(&format!("/{p}Period/start"))
                    .and_then(Value::as_str)
            })
            .map(str::to_string)
    };
    for r in resources {
        match st(r, "/resourceType").unwrap_or("") {
            "Condition" => add(
                "problems",
                code_of(r.get("code")),
                start(r, "onset").as_deref(),
            ),
            "AllergyIntolerance" => add(
                "allergies",
                code_of(r.get("code")),
                st(r, "/onsetDateTime").or(st(r, "/recordedDate")),
            ),
            "MedicationRequest" | "MedicationStatement" => {
                let med = r.get("medicationCodeableConcept").or_else(|| {
                    let id = st(r, "/medicationReference/reference")?
                        .rsplit([':', '/'])
                        .next()?;
                    resources
                        .iter()
                        .find(|m| m["resourceType"] == "Medication" && m["id"] == id)
                        .and_then(|m| m.get("code"))
                });
                let d = st(r, "/authoredOn")
                    .map(str::to_string)
                    .or_else(|| start(r, "effective"));
                add("medications", code_of(med), d.as_deref());
            }
            "Observation" => {
                let key = if has_cat(r, "laboratory") {
                    "results"
                } else if has_cat(r, "vital-signs") {
                    "vitals"
                } else if has_cat(r, "social-history") {
                    "social"
                } else {
                    continue;
                };
                let d = start(r, "effective");
                let has_value = r
                    .as_object()
                    .is_some_and(|m| m.keys().any(|k| k.starts_with("value")));
                let parts: Vec<&Value> = match r["component"].as_array() {
                    Some(c) if !has_value && !c.is_empty() => c.iter().collect(),
                    _ => vec![r],
                };
                for p in parts {
                    if key == "vitals" && p.pointer("/valueQuantity/value").is_none() {
                        continue;
                    }
                    add(key, code_of(p.get("code")), d.as_deref());
                }
            }
            "Immunization" => add(
                "immunizations",
                code_of(r.get("vaccineCode")),
                st(r, "/occurrenceDateTime"),
            ),
            "Procedure" => add(
                "procedures",
                code_of(r.get("code")),
                start(r, "performed").as_deref(),
            ),
            "Encounter" => add(
                "encounters",
                code_of(r.pointer("/type/0")),
                st(r, "/period/start"),
            ),
            "DocumentReference" => add(
                "notes",
                code_of(r.get("type")),
                st(r, "/context/period/start").or(st(r, "/date")),
            ),
            _ => {}
        }
    }
    f
}

/// Runs xmllint against the CDA schema over many files at once; returns the failures.
pub fn xsd_invalid(data: &Path, files: &[PathBuf]) -> Vec<String> {
    let xsd = data.join("ccda/schema/cda-sdtc/infrastructure/cda/CDA_SDTC.xsd");
    let mut bad = Vec::new();
    for chunk in files.chunks(50) {
        let out = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .args(chunk)
            .output()
            .expect("xmllint runs");
        let err = String::from_utf8_lossy(&out.stderr);
        bad.extend(
            err.lines()
                .filter(|l| !l.ends_with(" validates"))
                .map(str::to_string),
        );
    }
    bad
}

/// The Schematron (errors phase) compiled to XSLT 1.0 once per test run.
pub fn schematron_xsl(data: &Path, out_dir: &Path) -> PathBuf {
    let xsl = out_dir.join("ccda-errors.xsl");
    let out = Command::new("xsltproc")
        .arg("--output")
        .arg(&xsl)
        .arg(tools_dir().join("sch2xslt.xsl"))
        .arg(data.join("ccda/schematron/ccda-2.1.sch"))
        .output()
        .expect("xsltproc runs");
    assert!(
        out.status.success(),
        "sch2xslt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    xsl
}

/// The failed Schematron asserts of a document: `FAILED<TAB>id<TAB>location<TAB>message`.
pub fn schematron_errors(xsl: &Path, file: &Path) -> Vec<String> {
    let out = Command::new("xsltproc")
        .arg(xsl)
        .arg(file)
        .output()
        .expect("xsltproc runs");
    assert!(
        out.status.success(),
        "xsltproc failed on {}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("FAILED"))
        .map(str::to_string)
        .collect()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("oxehr-ccda-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
