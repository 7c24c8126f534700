//! The transaction Bundle being built: one conditional create per fact, keyed on the
//! entry's own `id` when that id identifies one entry of the document, otherwise on a
//! hash of (patient, kind, code, date) in [`crate::FACT_SYSTEM`].
//!
//! Many real documents reuse one `id` on several entries (copied templates), so an id that
//! occurs on more than one mapped entry of the document is not trusted as a key. Two
//! entries with the same key are one fact: the later one is dropped and references to it
//! point at the first.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

use crate::FACT_SYSTEM;

/// What makes a fact the same fact: its kind (resource type, plus category where one type
/// holds several), its main code and its date, for one patient.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fact {
    pub kind: String,
    pub code: Option<(String, String)>,
    pub date: Option<String>,
}

struct Pending {
    full_url: String,
    resource: Value,
    own_ids: Vec<(String, String)>,
    fact: Fact,
}

pub(crate) struct Builder {
    seed: String,
    patient_key: String,
    pending: Vec<Pending>,
    urls: usize,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha(input: &str) -> [u8; 32] {
    Sha256::digest(input.as_bytes()).into()
}

/// A v4-shaped UUID from a hash, so the Bundle is the same for the same input.
pub(crate) fn uuid_from(input: &str) -> String {
    let h = sha(input);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// `ifNoneExist` wants a search query: escape what would break `identifier=system|value`.
fn query_escape(s: &str) -> String {
    // Unreserved characters, and `:` and `/` of OID and URL systems, stay as they are.
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b':')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(s, KEEP).to_string()
}

impl Builder {
    pub(crate) fn new(seed: &str, patient_key: &str) -> Self {
        Builder {
            seed: seed.to_string(),
            patient_key: patient_key.to_string(),
            pending: Vec::new(),
            urls: 0,
        }
    }

    /// A fresh `urn:uuid:` fullUrl, deterministic for this document.
    pub(crate) fn next_url(&mut self) -> String {
        self.urls += 1;
        format!(
            "urn:uuid:{}",
            uuid_from(&format!("{}#{}", self.seed, self.urls))
        )
    }

    /// Adds a resource; returns its fullUrl (for references from later entries).
    pub(crate) fn add(
        &mut self,
        resource: Value,
        own_ids: Vec<(String, String)>,
        fact: Fact,
    ) -> String {
        let full_url = self.next_url();
        self.pending.push(Pending {
            full_url: full_url.clone(),
            resource,
            own_ids,
            fact,
        });
        full_url
    }

    /// The fact identifier value for a fact of this patient.
    pub(crate) fn fact_value(&self, f: &Fact) -> String {
        let code = f
            .code
            .as_ref()
            .map(|(s, c)| format!("{s}|{c}"))
            .unwrap_or_default();
        let input = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.patient_key,
            f.kind,
            code,
            f.date.as_deref().unwrap_or("")
        );
        hex(&sha(&input)[..16])
    }

    /// The transaction Bundle: `patient` first (conditional on its first identifier), then
    /// every distinct fact.
    pub(crate) fn finish(self, patient: (String, Value)) -> Value {
        let mut id_uses: HashMap<(String, String), usize> = HashMap::new();
        for p in &self.pending {
            for id in p.own_ids.iter().collect::<HashSet<_>>() {
                *id_uses.entry(id.clone()).or_default() += 1;
            }
        }
        let mut seen: HashMap<(String, String), String> = HashMap::new();
        let mut moved: HashMap<String, String> = HashMap::new();
        let mut entries = Vec::new();
        let (patient_url, patient_res) = patient;
        let patient_key = patient_res["identifier"][0].clone();
        let mut pentry = json!({ "fullUrl": patient_url, "resource": patient_res,
            "request": { "method": "POST", "url": "Patient" } });
        if let (Some(s), Some(v)) = (
            patient_key["system"].as_str(),
            patient_key["value"].as_str(),
        ) {
            pentry["request"]["ifNoneExist"] = json!(format!(
                "identifier={}|{}",
                query_escape(s),
                query_escape(v)
            ));
        }
        entries.push(pentry);
        for p in self.pending {
            let key = match p.own_ids.iter().find(|id| id_uses.get(*id) == Some(&1)) {
                Some(id) => id.clone(),
                None => (
                    FACT_SYSTEM.to_string(),
                    self_fact(&self.patient_key, &p.fact),
                ),
            };
            if let Some(first) = seen.get(&key) {
                moved.insert(p.full_url, first.clone());
                continue;
            }
            seen.insert(key.clone(), p.full_url.clone());
            let mut resource = p.resource;
            let rt = resource["resourceType"].as_str().unwrap_or("").to_string();
            let mut ids: Vec<Value> = p
                .own_ids
                .iter()
                .map(|(s, v)| json!({ "system": s, "value": v }))
                .collect();
            if key.0 == FACT_SYSTEM && !p.own_ids.contains(&key) {
                ids.push(json!({ "system": key.0, "value": key.1 }));
            }
            if let Some(obj) = resource.as_object_mut() {
                // identifier goes right after resourceType for readability
                let mut out = serde_json::Map::new();
                for (k, v) in std::mem::take(obj) {
                    out.insert(k.clone(), v);
                    if k == "resourceType" {
                        out.insert("identifier".into(), Value::Array(ids.clone()));
                    }
                }
                *obj = out;
            }
            entries.push(json!({
                "fullUrl": p.full_url,
                "resource": resource,
                "request": {
                    "method": "POST",
                    "url": rt,
                    "ifNoneExist": format!("identifier={}|{}", query_escape(&key.0), query_escape(&key.1)),
                },
            }));
        }
        if !moved.is_empty() {
            for e in &mut entries {
                repoint(&mut e["resource"], &moved);
            }
        }
        json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries })
    }
}

fn self_fact(patient_key: &str, f: &Fact) -> String {
    Builder::new("", patient_key).fact_value(f)
}

/// Points references at dropped duplicates to the entry kept instead; a list of
/// references that now names one entry twice keeps it once.
fn repoint(v: &mut Value, moved: &HashMap<String, String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("reference") {
                if let Some(to) = moved.get(r.as_str()) {
                    *r = to.clone();
                }
            }
            for (_, x) in m.iter_mut() {
                repoint(x, moved);
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                repoint(x, moved);
            }
            let mut seen = HashSet::new();
            a.retain(|x| match x.get("reference").and_then(Value::as_str) {
                Some(r) => seen.insert(r.to_string()),
                None => true,
            });
        }
        _ => {}
    }
}
