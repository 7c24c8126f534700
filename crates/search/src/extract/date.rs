//! Date parameters: date, dateTime, instant, Period and Timing values as the inclusive
//! range of instants they cover (µs since the Unix epoch).

use oxehr_fhirpath::Temporal;
use serde_json::Value;

use super::Input;
use crate::index::IndexValue;

/// The implicit range of a FHIR date/dateTime/instant text; `None` if it does not parse
/// or its zone offset is outside the FHIR `dateTime` regex.
pub fn range(text: &str) -> Option<(i64, i64)> {
    let text = text.trim();
    let t = Temporal::parse_datetime(text)?;
    zone_in_range(text).then(|| t.range_micros())
}

/// Whether the zone offset of a text `Temporal::parse_datetime` accepted is one the FHIR
/// `dateTime` regex allows: `(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)` (or `Z`, or none).
/// The parser checks only the form `±hh:mm` (it took `+99:00`), and its offset in
/// minutes cannot tell `+13:60` from `+14:00`, so the digits are checked here. Hours,
/// minutes and seconds of the time the parser already holds to 23, 59 and 60 (the regex
/// admits a leap second). Indexing shares this function: stored resources have passed
/// the same regex in validation, so nothing stored is lost.
fn zone_in_range(text: &str) -> bool {
    let Some((_, time)) = text.split_once('T') else {
        return true;
    };
    let Some(sign) = time.find(['+', '-']) else {
        return true;
    };
    let digits = |s: Option<&str>| s.and_then(|d| d.parse::<u32>().ok());
    let zone = &time[sign + 1..];
    match (digits(zone.get(..2)), digits(zone.get(3..5))) {
        (Some(h), Some(m)) => (h <= 13 && m <= 59) || (h == 14 && m == 0),
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn zones_hours_and_minutes_follow_the_fhir_datetime_regex() {
        // 2020-01-01T00:00:00Z is 1577836800 s after the epoch.
        let midnight = 1_577_836_800_000_000_i64;
        let hour = 3_600_000_000_i64;
        let second = 1_000_000_i64;
        let good = [
            ("2020-01-01T00:00:00Z", midnight),
            ("2020-01-01T00:00:00+14:00", midnight - 14 * hour),
            ("2020-01-01T00:00:00-14:00", midnight + 14 * hour),
            ("2020-01-01T00:00:00-12:00", midnight + 12 * hour),
            (
                "2020-01-01T00:00:00+13:59",
                midnight - 13 * hour - 59 * 60 * second,
            ),
            ("2020-01-01T00:00:00-00:00", midnight),
            ("2020-01-01T23:59:60Z", midnight + 24 * hour),
        ];
        for (text, low) in good {
            assert_eq!(range(text).map(|r| r.0), Some(low), "{text}");
        }
        for bad in [
            "2020-01-01T00:00:00+14:01",
            "2020-01-01T00:00:00-14:01",
            "2020-01-01T00:00:00+15:00",
            "2020-01-01T00:00:00+99:00",
            "2020-01-01T00:00:00+13:60",
            "2020-01-01T00:00:00-05:99",
            "2020-01-01T00:00+99:00",
            "2020-01-01T00+99:00",
            "2020T+99:00",
            "2020-01-01T24:00:00Z",
            "2020-01-01T23:60:00Z",
            "2020-01-01T23:59:61Z",
        ] {
            assert_eq!(range(bad), None, "{bad}");
        }
    }
}
