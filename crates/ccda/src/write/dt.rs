//! FHIR data types written as CDA data types: CodeableConcept → CD (the first coding whose
//! system has an OID as the code, the others as translations, text as originalText),
//! Identifier → II, dateTime/Period → TS/IVL_TS, value[x] → ANY with its xsi:type.

use serde_json::Value;

use super::xml::W;
use crate::codes;
use crate::time;

/// A coding as CD attributes (code, codeSystem, displayName), when its system has an OID.
fn coding_attrs(c: &Value) -> Option<Vec<(&'static str, String)>> {
    let code = c.get("code")?.as_str()?.trim();
    if code.is_empty() || code.chars().any(char::is_whitespace) {
        return None;
    }
    let oid = codes::system_oid(c.get("system")?.as_str()?)?;
    let mut a = vec![("code", code.to_string()), ("codeSystem", oid)];
    if let Some(d) = c.get("display").and_then(Value::as_str) {
        a.push(("displayName", d.to_string()));
    }
    Some(a)
}

fn as_refs<'a>(a: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    a.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Writes a CodeableConcept as `tag` (CD). `extra` attributes come first (e.g. xsi:type);
/// `more` are translations to add (e.g. an encounter's class). A concept with no coding
/// we can name by OID is `nullFlavor="OTH"` with its text; none at all is `UNK`.
pub(crate) fn cd(w: &mut W, tag: &str, cc: Option<&Value>, extra: &[(&str, &str)], more: &[Value]) {
    let codings: Vec<Vec<(&'static str, String)>> = cc
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(coding_attrs).collect())
        .unwrap_or_default();
    let mut trans: Vec<Vec<(&'static str, String)>> = codings.iter().skip(1).cloned().collect();
    trans.extend(more.iter().filter_map(coding_attrs));
    let text = cc
        .and_then(|c| c.get("text"))
        .and_then(Value::as_str)
        .or_else(|| {
            cc.and_then(|c| c.pointer("/coding/0/display"))
                .and_then(Value::as_str)
        });
    let mut attrs: Vec<(&str, &str)> = extra.to_vec();
    let main;
    match codings.first() {
        Some(c) => {
            main = as_refs(c);
            attrs.extend(main.iter().copied());
        }
        None if text.is_some() || !trans.is_empty() => attrs.push(("nullFlavor", "OTH")),
        None => attrs.push(("nullFlavor", "UNK")),
    }
    if text.is_none() && trans.is_empty() {
        w.empty(tag, &attrs);
        return;
    }
    w.open(tag, &attrs);
    if let Some(t) = text {
        w.leaf("originalText", &[], t);
    }
    for t in &trans {
        w.empty("translation", &as_refs(t));
    }
    w.close(tag);
}

/// A concept as text for the narrative: its text, else its first display, else its code.
pub(crate) fn display(cc: Option<&Value>) -> String {
    cc.and_then(|c| {
        c.get("text")
            .and_then(Value::as_str)
            .or_else(|| c.pointer("/coding/0/display").and_then(Value::as_str))
            .or_else(|| c.pointer("/coding/0/code").and_then(Value::as_str))
    })
    .unwrap_or("")
    .to_string()
}

/// A resource's ids: its identifiers that are IIs, else its logical id when that is a
/// UUID, else `nullFlavor="NI"` (every entry template requires an id).
pub(crate) fn ids(w: &mut W, r: &Value) {
    let mut n = 0;
    if let Some(list) = r.get("identifier").and_then(Value::as_array) {
        for i in list {
            let (Some(s), Some(v)) = (
                i.get("system").and_then(Value::as_str),
                i.get("value").and_then(Value::as_str),
            ) else {
                continue;
            };
            let ii = if s == crate::FACT_SYSTEM {
                Some((crate::codes::FACT_ROOT.to_string(), Some(v.to_string())))
            } else {
                codes::ii(s, v)
            };
            if let Some((root, ext)) = ii {
                match &ext {
                    Some(e) => w.empty("id", &[("root", &root), ("extension", e)]),
                    None => w.empty("id", &[("root", &root)]),
                }
                n += 1;
            }
        }
    }
    if n == 0 {
        match r
            .get("id")
            .and_then(Value::as_str)
            .filter(|i| codes::is_uuid(i))
        {
            Some(id) => w.empty("id", &[("root", id)]),
            None => w.empty("id", &[("nullFlavor", "NI")]),
        }
    }
}

/// A TS element: `<tag value/>`, or `nullFlavor="UNK"` when the time is unknown.
pub(crate) fn ts(w: &mut W, tag: &str, dt: Option<&str>) {
    match dt.and_then(time::from_fhir) {
        Some(v) => w.empty(tag, &[("value", &v)]),
        None => w.empty(tag, &[("nullFlavor", "UNK")]),
    }
}

/// An IVL_TS with low (and high when known).
pub(crate) fn ivl(
    w: &mut W,
    tag: &str,
    low: Option<&str>,
    high: Option<&str>,
    extra: &[(&str, &str)],
) {
    w.open(tag, extra);
    ts(w, "low", low);
    if high.is_some() {
        ts(w, "high", high);
    }
    w.close(tag);
}

pub(crate) fn s<'a>(r: &'a Value, ptr: &str) -> Option<&'a str> {
    r.pointer(ptr).and_then(Value::as_str)
}

/// The start of a dateTime-or-Period element `{prefix}DateTime` / `{prefix}Period`.
pub(crate) fn start<'a>(r: &'a Value, prefix: &str) -> Option<&'a str> {
    r.get(format!("{prefix}DateTime"))
        .and_then(Value::as_str)
        .or_else(|| {
            r.get(format!("{prefix}Period"))
                .and_then(|p| p.get("start"))
                .and_then(Value::as_str)
        })
        .or_else(|| r.get(format!("{prefix}Instant")).and_then(Value::as_str))
}

pub(crate) fn end<'a>(r: &'a Value, prefix: &str) -> Option<&'a str> {
    r.get(format!("{prefix}Period"))
        .and_then(|p| p.get("end"))
        .and_then(Value::as_str)
}

fn number(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A Quantity as PQ attributes (value, unit), when it has a value and a unit a `cs` can
/// hold.
pub(crate) fn pq(q: &Value) -> Option<(String, String)> {
    let v = number(q.get("value")?)?;
    let unit = q
        .get("code")
        .or_else(|| q.get("unit"))
        .and_then(Value::as_str)
        .unwrap_or("1")
        .to_string();
    (!unit.is_empty() && !unit.chars().any(char::is_whitespace)).then_some((v, unit))
}

/// An observation's value[x] as `<value xsi:type=…>`; `nullFlavor="NI"` when absent.
pub(crate) fn value(w: &mut W, r: &Value) {
    if let Some(q) = r.get("valueQuantity") {
        if let Some((v, u)) = pq(q) {
            w.empty("value", &[("xsi:type", "PQ"), ("value", &v), ("unit", &u)]);
            return;
        }
        if let Some(v) = q.get("value").and_then(number) {
            let unit = q.get("unit").and_then(Value::as_str).unwrap_or("");
            w.leaf("value", &[("xsi:type", "ST")], format!("{v} {unit}").trim());
            return;
        }
    }
    if let Some(cc) = r.get("valueCodeableConcept") {
        cd(w, "value", Some(cc), &[("xsi:type", "CD")], &[]);
    } else if let Some(t) = r.get("valueString").and_then(Value::as_str) {
        w.leaf("value", &[("xsi:type", "ST")], t);
    } else if let Some(i) = r.get("valueInteger").and_then(number) {
        w.empty("value", &[("xsi:type", "INT"), ("value", &i)]);
    } else if let Some(b) = r.get("valueBoolean").and_then(Value::as_bool) {
        w.empty(
            "value",
            &[
                ("xsi:type", "BL"),
                ("value", if b { "true" } else { "false" }),
            ],
        );
    } else if let Some(t) = r
        .get("valueDateTime")
        .and_then(Value::as_str)
        .and_then(time::from_fhir)
    {
        w.empty("value", &[("xsi:type", "TS"), ("value", &t)]);
    } else if let Some(rg) = r.get("valueRange") {
        w.open("value", &[("xsi:type", "IVL_PQ")]);
        for end in ["low", "high"] {
            match rg.get(end).and_then(pq) {
                Some((v, u)) => w.empty(end, &[("value", &v), ("unit", &u)]),
                None => w.empty(end, &[("nullFlavor", "NI")]),
            }
        }
        w.close("value");
    } else {
        w.empty("value", &[("xsi:type", "CD"), ("nullFlavor", "NI")]);
    }
}

/// The value[x] of an observation as text for the narrative.
pub(crate) fn value_text(r: &Value) -> String {
    if let Some(q) = r.get("valueQuantity") {
        let v = q.get("value").and_then(number).unwrap_or_default();
        let u = q
            .get("unit")
            .or_else(|| q.get("code"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return format!("{v} {u}").trim().to_string();
    }
    if let Some(cc) = r.get("valueCodeableConcept") {
        return display(Some(cc));
    }
    for k in ["valueString", "valueDateTime"] {
        if let Some(t) = r.get(k).and_then(Value::as_str) {
            return t.to_string();
        }
    }
    if let Some(i) = r.get("valueInteger").and_then(number) {
        return i;
    }
    if let Some(b) = r.get("valueBoolean").and_then(Value::as_bool) {
        return b.to_string();
    }
    String::new()
}
