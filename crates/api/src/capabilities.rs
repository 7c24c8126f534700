//! `capabilities`: the CapabilityStatement at `/metadata`, built from what this server
//! really implements and from the core definitions (every resource type, its search
//! parameters from the registry).

use serde_json::{json, Value};

use oxehr_fhir::Definitions;
use oxehr_search::{ParamKind, Registry};

/// The CapabilityStatement. `backend` names the storage in the software description.
pub fn capability_statement(base_url: &str, backend: &str, date: &str) -> Value {
    let defs = Definitions::r4();
    let registry = Registry::r4();
    let resources: Vec<Value> = defs
        .resource_types()
        .into_iter()
        .map(|rt| {
            let params: Vec<Value> = registry
                .params(rt)
                .iter()
                .filter(|p| !matches!(p.kind, ParamKind::Composite | ParamKind::Special))
                .map(|p| {
                    json!({
                        "name": p.code,
                        "type": kind_code(&p.kind),
                        "documentation": "plain equality (no modifiers, prefixes other than eq, or chains yet)",
                    })
                })
                .collect();
            json!({
                "type": rt,
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "interaction": [
                    {"code": "read"}, {"code": "vread"}, {"code": "update"}, {"code": "patch"},
                    {"code": "delete"}, {"code": "history-instance"}, {"code": "history-type"},
                    {"code": "create"}, {"code": "search-type"}
                ],
                "searchParam": params,
                "operation": [{"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}],
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "kind": "instance",
        "software": {"name": "oxehr", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": format!("oxehr FHIR R4 server ({backend} storage)"), "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
        }],
    })
}

fn kind_code(k: &ParamKind) -> &'static str {
    match k {
        ParamKind::String => "string",
        ParamKind::Token => "token",
        ParamKind::Date => "date",
        ParamKind::Number => "number",
        ParamKind::Quantity => "quantity",
        ParamKind::Reference => "reference",
        ParamKind::Uri => "uri",
        ParamKind::Composite => "composite",
        ParamKind::Special => "special",
    }
}
