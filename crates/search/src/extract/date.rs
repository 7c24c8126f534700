//! Date parameters: date, dateTime, instant, Period and Timing values as the inclusive
//! range of instants they cover (µs since the Unix epoch).

use oxehr_fhirpath::Temporal;
use serde_json::Value;

use super::Input;
use crate::index::IndexValue;

/// The implicit range of a FHIR date/dateTime/instant text; `None` if it does not parse.
pub fn range(text: &str) -> Option<(i64, i64)> {
    Temporal::parse_datetime(text.trim()).map(|t| t.range_micros())
}

pub(super) fn values(v: &Input<'_>, out: &mut Vec<IndexValue>) {
    match (v.ty.unwrap_or(""), v.json) {
        (_, Value::String(s)) => {
            if let Some((low, high)) = range(s) {
                out.push(IndexValue::Date { low, high });
            }
        }
        ("Period", Value::Object(o)) => {
            let start = o.get("start").and_then(Value::as_str).and_then(range);
            let end = o.get("end").and_then(Value::as_str).and_then(range);
            if start.is_none() && end.is_none() {
                return;
            }
            out.push(IndexValue::Date {
                low: start.map_or(i64::MIN, |r| r.0),
                high: end.map_or(i64::MAX, |r| r.1),
            });
        }
        ("Timing", Value::Object(o)) => {
            for e in o
                .get("event")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some((low, high)) = e.as_str().and_then(range) {
                    out.push(IndexValue::Date { low, high });
                }
            }
        }
        _ => {}
    }
}
