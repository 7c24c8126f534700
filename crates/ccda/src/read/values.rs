//! CDA data types to FHIR: CD/CE → CodeableConcept (translations as extra codings, text
//! from originalText with its narrative reference resolved), PQ → Quantity, IVL_TS →
//! dateTime or Period, ANY-typed observation values → `value[x]` (C-CDA on FHIR, "CDA ↔
//! FHIR Data Types").

use serde_json::{json, Map, Value};
use std::collections::HashMap;

use super::dom::{self, child, children, is_null, location, xsi_type, N};
use crate::codes;
use crate::error::CcdaError;
use crate::time;

/// The narrative of a document by `ID`, to resolve `originalText/reference/@value`.
pub(crate) struct Refs<'a> {
    by_id: HashMap<&'a str, N<'a>>,
}

impl<'a> Refs<'a> {
    pub(crate) fn new(root: N<'a>) -> Self {
        let by_id = root
            .descendants()
            .filter_map(|d| d.attribute("ID").map(|id| (id, d)))
            .collect();
        Refs { by_id }
    }

    /// The narrative text a `reference` (`#id`) points at.
    pub(crate) fn resolve(&self, r: &str) -> Option<String> {
        let id = r.strip_prefix('#')?;
        let t = dom::text(*self.by_id.get(id)?);
        (!t.is_empty()).then_some(t)
    }

    /// `originalText` (or `text`) of an element: its own text, else the narrative it
    /// references.
    pub(crate) fn original_text(&self, n: N<'_>) -> Option<String> {
        let own = dom::text(n);
        if let Some(r) = child(n, "reference").and_then(|r| r.attribute("value")) {
            if let Some(t) = self.resolve(r) {
                return Some(t);
            }
        }
        (!own.is_empty()).then_some(own)
    }
}

fn coding(n: N<'_>) -> Option<Value> {
    let code = n.attribute("code").filter(|c| !c.trim().is_empty())?;
    let mut c = Map::new();
    if let Some(s) = n.attribute("codeSystem") {
        c.insert("system".into(), json!(codes::system_uri(s)));
    }
    c.insert("code".into(), json!(code.trim()));
    if let Some(d) = n.attribute("displayName").filter(|d| !d.trim().is_empty()) {
        c.insert("display".into(), json!(d.trim()));
    }
    Some(Value::Object(c))
}

/// A CD/CE/CV as a CodeableConcept, or `None` when it says nothing (nullFlavor, no text).
pub(crate) fn concept(n: N<'_>, refs: &Refs<'_>) -> Option<Value> {
    let mut codings: Vec<Value> = Vec::new();
    if !is_null(n) {
        codings.extend(coding(n));
    }
    codings.extend(children(n, "translation").filter_map(coding));
    let text = child(n, "originalText")
        .and_then(|o| refs.original_text(o))
        .or_else(|| n.attribute("displayName").map(|d| d.trim().to_string()))
        .filter(|t| !t.is_empty());
    if codings.is_empty() && text.is_none() {
        return None;
    }
    let mut cc = Map::new();
    if !codings.is_empty() {
        cc.insert("coding".into(), Value::Array(codings));
    }
    if let Some(t) = text {
        cc.insert("text".into(), json!(t));
    }
    Some(Value::Object(cc))
}

/// For a required concept the document left empty: `data-absent-reason#unknown`.
pub(crate) fn unknown() -> Value {
    json!({ "coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
        "code": "unknown", "display": "Unknown" }] })
}

/// The (system, code) of a concept's first coding: the fact's code.
pub(crate) fn first_code(cc: &Value) -> Option<(String, String)> {
    let c = cc.get("coding")?.get(0)?;
    Some((
        c.get("system")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        c.get("code")?.as_str()?.to_string(),
    ))
}

/// A TS attribute `value` as FHIR dateTime; `None` for nullFlavor, absent, or a value
/// that is not a TS: real documents carry such dates (`200130212`), and a date nobody can
/// read is unknown, not a reason to refuse the document.
pub(crate) fn ts(n: N<'_>) -> Result<Option<String>, CcdaError> {
    Ok(n.attribute("value").and_then(time::to_fhir))
}

/// An `effectiveTime` (TS or IVL_TS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum When {
    At(String),
    Period(Option<String>, Option<String>),
}

impl When {
    /// The date a fact is known by: the point, or the start.
    pub(crate) fn start(&self) -> Option<String> {
        match self {
            When::At(t) => Some(t.clone()),
            When::Period(s, _) => s.clone(),
        }
    }
    pub(crate) fn end(&self) -> Option<String> {
        match self {
            When::At(_) => None,
            When::Period(_, e) => e.clone(),
        }
    }
    /// As a FHIR Period (a point becomes its start).
    pub(crate) fn period(&self) -> Value {
        let mut p = Map::new();
        if let Some(s) = self.start() {
            p.insert("start".into(), json!(s));
        }
        if let Some(e) = self.end() {
            p.insert("end".into(), json!(e));
        }
        Value::Object(p)
    }
    /// As `{prefix}DateTime` or `{prefix}Period` members of a resource.
    pub(crate) fn put(&self, r: &mut Value, prefix: &str) {
        match self {
            When::At(t) => r[format!("{prefix}DateTime")] = json!(t),
            When::Period(s, e) => {
                let mut p = Map::new();
                if let Some(s) = s {
                    p.insert("start".into(), json!(s));
                }
                if let Some(e) = e {
                    p.insert("end".into(), json!(e));
                }
                r[format!("{prefix}Period")] = Value::Object(p);
            }
        }
    }
}

/// An effectiveTime (or any IVL_TS/TS), `None` when nothing is known.
pub(crate) fn when(n: Option<N<'_>>) -> Result<Option<When>, CcdaError> {
    let Some(n) = n else { return Ok(None) };
    if let Some(v) = ts(n)? {
        return Ok(Some(When::At(v)));
    }
    let low = child(n, "low").map(ts).transpose()?.flatten();
    let high = child(n, "high").map(ts).transpose()?.flatten();
    let center = child(n, "center").map(ts).transpose()?.flatten();
    Ok(match (low, high, center) {
        (None, None, Some(c)) => Some(When::At(c)),
        (None, None, None) => None,
        (l, h, _) => Some(When::Period(l, h)),
    })
}

/// The first effectiveTime that is a time or interval (Medication Activity also carries a
/// PIVL_TS/EIVL_TS frequency, which is not when it happened).
pub(crate) fn effective(n: N<'_>) -> Result<Option<When>, CcdaError> {
    let et = children(n, "effectiveTime")
        .find(|e| !matches!(xsi_type(*e), Some("PIVL_TS" | "EIVL_TS" | "SXPR_TS")));
    when(et)
}

fn decimal(n: N<'_>, v: &str) -> Result<serde_json::Number, CcdaError> {
    let t = v.trim();
    let t = if t.starts_with('.') {
        format!("0{t}")
    } else {
        t.to_string()
    };
    let t = t.strip_prefix('+').unwrap_or(&t);
    let t = t.strip_suffix('.').unwrap_or(t);
    t.parse::<serde_json::Number>()
        .map_err(|_| CcdaError::invalid(location(n), "@value is not a number"))
}

/// A PQ as a Quantity (UCUM units).
pub(crate) fn quantity(n: N<'_>) -> Result<Option<Value>, CcdaError> {
    let Some(v) = n.attribute("value").filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let mut q = Map::new();
    q.insert("value".into(), Value::Number(decimal(n, v)?));
    if let Some(u) = n.attribute("unit").filter(|u| !u.trim().is_empty()) {
        q.insert("unit".into(), json!(u));
        q.insert("system".into(), json!("http://unitsofmeasure.org"));
        q.insert("code".into(), json!(u));
    }
    Ok(Some(Value::Object(q)))
}

/// An observation `value` (ANY) as `value[x]`: (element name, value).
pub(crate) fn value(n: N<'_>, refs: &Refs<'_>) -> Result<Option<(&'static str, Value)>, CcdaError> {
    if is_null(n) && child(n, "translation").is_none() && child(n, "originalText").is_none() {
        return Ok(None);
    }
    Ok(match xsi_type(n).unwrap_or("") {
        "PQ" => quantity(n)?.map(|q| ("valueQuantity", q)),
        "INT" => match n.attribute("value").map(|v| v.trim().parse::<i64>()) {
            Some(Ok(i)) => Some(("valueInteger", json!(i))),
            Some(Err(_)) => {
                return Err(CcdaError::invalid(location(n), "@value is not an integer"))
            }
            None => None,
        },
        "REAL" | "MO" => quantity(n)?.map(|q| ("valueQuantity", q)),
        "BL" => match n.attribute("value") {
            Some("true") => Some(("valueBoolean", json!(true))),
            Some("false") => Some(("valueBoolean", json!(false))),
            _ => None,
        },
        "TS" => ts(n)?.map(|t| ("valueDateTime", json!(t))),
        "IVL_PQ" => {
            let mut r = Map::new();
            if let Some(l) = child(n, "low").map(quantity).transpose()?.flatten() {
                r.insert("low".into(), l);
            }
            if let Some(h) = child(n, "high").map(quantity).transpose()?.flatten() {
                r.insert("high".into(), h);
            }
            (!r.is_empty()).then(|| ("valueRange", Value::Object(r)))
        }
        "ST" | "ED" | "" => {
            let t = refs.original_text(n).unwrap_or_default();
            (!t.is_empty()).then(|| ("valueString", json!(t)))
        }
        // CD, CE, CV, CO, CS and anything coded
        _ => concept(n, refs).map(|c| ("valueCodeableConcept", c)),
    })
}

/// The entry's own ids as (system, value) pairs, nulls skipped.
pub(crate) fn ids(n: N<'_>) -> Vec<(String, String)> {
    children(n, "id")
        .filter(|i| !is_null(*i))
        .filter_map(|i| {
            let root = i.attribute("root").filter(|r| !r.trim().is_empty())?;
            Some(codes::identifier(
                root.trim(),
                i.attribute("extension").filter(|e| !e.is_empty()),
            ))
        })
        .collect()
}
