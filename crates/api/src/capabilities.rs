//! `capabilities`: the CapabilityStatement at `/metadata`, built from what this server
//! really implements and from the core definitions (every resource type, its search
//! parameters from the registry).

use serde_json::{json, Value};

use oxehr_fhir::Definitions;
use oxehr_search::{ParamKind, Registry, SearchParam};

/// The CapabilityStatement. `backend` names the storage in the software description.
pub fn capability_statement(base_url: &str, backend: &str, date: &str) -> Value {
    let defs = Definitions::r4();
    let registry = Registry::r4();
    let resources: Vec<Value> = defs
        .resource_types()
        .into_iter()
        .map(|rt| {
            if oxehr_records::audit_view::is_audit_event(rt) {
                return audit_event();
            }
            let params: Vec<Value> = registry
                .params(rt)
                .iter()
                // `_query` names a named query, of which this server has none.
                .filter(|p| p.kind != ParamKind::Special && p.code != "_query")
                .map(|p| {
                    json!({
                        "name": p.code,
                        "definition": p.url,
                        "type": kind_code(&p.kind),
                        "documentation": documentation(p),
                    })
                })
                .collect();
            let includes: Vec<Value> = registry
                .params(rt)
                .iter()
                .filter(|p| p.kind == ParamKind::Reference)
                .map(|p| json!(format!("{rt}:{}", p.code)))
                .chain(std::iter::once(json!("*")))
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
                "searchInclude": includes,
                "searchRevInclude": ["*:* (any Type:parameter whose targets include this type)"],
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
            "security": crate::smart::capability_security(base_url),
            "resource": resources,
            "interaction": [
                {"code": "transaction"}, {"code": "batch"}, {"code": "history-system"},
                {"code": "search-system"}
            ],
            "operation": crate::bulk::capability_operations(),
            "searchParam": [
                {"name": "_id", "type": "token"},
                {"name": "_lastUpdated", "type": "date"},
                {"name": "_type", "type": "token", "documentation": "the resource types searched; other parameters must exist on every type listed"}
            ],
        }],
    })
}

/// AuditEvent: the server's audit trail, read-only (`oxehr_records::audit_view`).
fn audit_event() -> Value {
    let param =
        |name: &str, ty: &str, doc: &str| json!({"name": name, "type": ty, "documentation": doc});
    json!({
        "type": oxehr_records::audit_view::AUDIT_EVENT,
        "documentation": "the server's audit trail, written by the server only: administrators see it, a patient the accesses to their own record",
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "conditionalCreate": false,
        "conditionalUpdate": false,
        "conditionalDelete": "not-supported",
        "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "search-type"}],
        "searchParam": [
            param("patient", "reference", "the patient whose record was touched"),
            param("agent", "token", "the user name (also altid)"),
            param("date", "date", "eq, ge, gt, le, lt on a day or an instant"),
            param("action", "token", "C, R, U, D, E"),
            param("subtype", "token", "oxehr's action: read, search, create, break-the-glass, login, …"),
        ],
    })
}

/// What a parameter of this type supports, for the CapabilityStatement.
fn documentation(p: &SearchParam) -> &'static str {
    if matches!(p.code.as_str(), "_text" | "_content") {
        return "full text: every word must start a word of the text";
    }
    match &p.kind {
        ParamKind::String => "starts-with ignoring case and accents; :exact, :contains, :missing",
        ParamKind::Token => "code, system|code, |code, system|; :not, :text, :of-type (identifiers), :missing",
        ParamKind::Date => "prefixes eq ne gt lt ge le sa eb ap with the implicit range of each precision; :missing",
        ParamKind::Number => "prefixes eq ne gt lt ge le sa eb ap, implicit precision range; :missing",
        ParamKind::Quantity => "prefixes; value|system|code and value||code, UCUM canonical comparison for common units; :missing",
        ParamKind::Reference => "Type/id, id, absolute URL; :Type, :identifier, :missing; chaining and _has",
        ParamKind::Uri => "exact; :below, :above, :missing",
        ParamKind::Composite => "first part a token, joined by $ to the second",
        ParamKind::Special => "not searchable",
    }
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
