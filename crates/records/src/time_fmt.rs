//! Instants as FHIR writes them (`2024-05-01T12:30:00.123456Z`), stored as microseconds.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    let now = OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000) as i64
}

/// Formats microseconds since the epoch as a FHIR `instant` in UTC.
pub fn format_instant(micros: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.microsecond()
    )
}

/// Parses a FHIR instant or dateTime with time and zone (`_since`, `If-Modified-Since`).
pub fn parse_instant(s: &str) -> Option<i64> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some((dt.unix_timestamp_nanos() / 1_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_through_rfc3339() {
        let cases = [
            ("1970-01-01T00:00:00.000000Z", 0),
            ("2024-02-29T23:59:59.999999Z", 1_709_251_199_999_999),
        ];
        for (text, micros) in cases {
            assert_eq!(format_instant(micros), text);
            assert_eq!(parse_instant(text), Some(micros));
        }
        assert_eq!(
            parse_instant("2024-03-01T01:00:00+01:00"),
            Some(1_709_251_200_000_000)
        );
        assert_eq!(parse_instant("2024-03-01"), None);
    }
}
