//! HL7 v3 TS (`20120806`, `201208061015-0500`, `20120806101500.123+0000`) to FHIR
//! date/dateTime/instant and back, keeping the precision the sender gave.
//!
//! FHIR allows a time of day only with seconds and a time zone, so a TS with a time but no
//! zone keeps its date only (the time cannot be placed on the timeline honestly), and a
//! TS with minutes but no seconds gets `:00` seconds (the one FHIR spelling of it).

/// A TS parsed into its parts; `None` fields were not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ts<'a> {
    year: &'a str,
    month: Option<&'a str>,
    day: Option<&'a str>,
    hour: Option<&'a str>,
    minute: Option<&'a str>,
    second: Option<&'a str>,
    fraction: Option<&'a str>,
    zone: Option<(char, &'a str, &'a str)>,
}

fn in_range(s: &str, lo: u32, hi: u32) -> bool {
    s.parse::<u32>().is_ok_and(|v| (lo..=hi).contains(&v))
}

fn parse(ts: &str) -> Option<Ts<'_>> {
    let ts = ts.trim();
    let (main, zone) = match ts.find(['+', '-']) {
        Some(i) => (&ts[..i], Some(&ts[i..])),
        None => (ts, None),
    };
    let (digits, fraction) = match main.split_once('.') {
        Some((d, f)) => (d, Some(f)),
        None => (main, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14)
    {
        return None;
    }
    if let Some(f) = fraction {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) || digits.len() != 14 {
            return None;
        }
    }
    let part = |a: usize, b: usize| digits.get(a..b);
    let t = Ts {
        year: part(0, 4)?,
        month: part(4, 6),
        day: part(6, 8),
        hour: part(8, 10),
        minute: part(10, 12),
        second: part(12, 14),
        fraction,
        zone: match zone {
            None => None,
            Some(z) => {
                let sign = z.chars().next()?;
                let rest = &z[1..];
                if rest.len() != 4 || !rest.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((sign, &rest[..2], &rest[2..]))
            }
        },
    };
    let ok = t.month.is_none_or(|m| in_range(m, 1, 12))
        && t.day.is_none_or(|d| in_range(d, 1, 31))
        && t.hour.is_none_or(|h| in_range(h, 0, 23))
        && t.minute.is_none_or(|m| in_range(m, 0, 59))
        && t.second.is_none_or(|s| in_range(s, 0, 60))
        && t.zone
            .is_none_or(|(_, h, m)| in_range(h, 0, 14) && in_range(m, 0, 59));
    ok.then_some(t)
}

/// A TS as a FHIR `dateTime` (or `date` when it has no time), or `None` when the text is
/// not a TS.
pub(crate) fn to_fhir(ts: &str) -> Option<String> {
    let t = parse(ts)?;
    let mut out = t.year.to_string();
    let (Some(month), Some(day)) = (t.month, t.day) else {
        if let Some(m) = t.month {
            out.push('-');
            out.push_str(m);
        }
        return Some(out);
    };
    out.push_str(&format!("-{month}-{day}"));
    // A time without a zone cannot be placed on the timeline: the date is what is known.
    if let (Some(h), Some((sign, zh, zm))) = (t.hour, t.zone) {
        let m = t.minute.unwrap_or("00");
        let s = t.second.unwrap_or("00");
        out.push_str(&format!("T{h}:{m}:{s}"));
        if let Some(f) = t.fraction {
            out.push('.');
            out.push_str(f);
        }
        out.push_str(&format!("{sign}{zh}:{zm}"));
    }
    Some(out)
}

/// A TS as a FHIR `date` (birth dates): the date part only.
pub(crate) fn to_fhir_date(ts: &str) -> Option<String> {
    to_fhir(ts).map(|s| s.chars().take(10).collect())
}

/// Whether a FHIR dateTime is precise enough to be an `instant`.
pub(crate) fn is_instant(dt: &str) -> bool {
    dt.len() >= 20 && dt.as_bytes().get(10) == Some(&b'T')
}

/// A FHIR date/dateTime/instant as a TS, or `None` when it is not one.
pub(crate) fn from_fhir(dt: &str) -> Option<String> {
    let dt = dt.trim();
    let (date, time) = match dt.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (dt, None),
    };
    let mut out: String = date.split('-').collect();
    if !matches!(out.len(), 4 | 6 | 8) || !out.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(time) = time {
        let (clock, zone) = if let Some(c) = time.strip_suffix('Z') {
            (c, "+0000".to_string())
        } else {
            let i = time.rfind(['+', '-'])?;
            (&time[..i], time[i..].replace(':', ""))
        };
        let (hms, frac) = match clock.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (clock, None),
        };
        let hms: String = hms.split(':').collect();
        if hms.len() != 6 || !hms.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        out.push_str(&hms);
        if let Some(f) = frac {
            out.push('.');
            out.push_str(f);
        }
        out.push_str(&zone);
    }
    parse(&out).is_some().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_to_fhir_keeps_precision() {
        let cases = [
            ("2012", Some("2012")),
            ("201208", Some("2012-08")),
            ("20120806", Some("2012-08-06")),
            ("201208061015-0500", Some("2012-08-06T10:15:00-05:00")),
            ("20120806101530+0530", Some("2012-08-06T10:15:30+05:30")),
            (
                "20120806101530.123+0000",
                Some("2012-08-06T10:15:30.123+00:00"),
            ),
            ("201208061015", Some("2012-08-06")),
            ("20121306", None),
            ("2012x", None),
            ("", None),
            ("20120806-05", None),
        ];
        for (ts, want) in cases {
            assert_eq!(to_fhir(ts).as_deref(), want, "{ts}");
        }
    }

    #[test]
    fn fhir_to_ts_round_trips() {
        for dt in [
            "2015-11-13T14:25:45+05:30",
            "2015-11-13",
            "2015-11",
            "1999",
            "2015-11-13T14:25:45.077-04:00",
        ] {
            let ts = from_fhir(dt).expect(dt);
            assert_eq!(to_fhir(&ts).as_deref(), Some(dt), "{dt} via {ts}");
        }
        assert_eq!(
            from_fhir("2015-11-13T14:25:45Z").as_deref(),
            Some("20151113142545+0000")
        );
        assert_eq!(from_fhir("yesterday"), None);
    }
}
