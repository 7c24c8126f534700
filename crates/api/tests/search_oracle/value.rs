//! The oracle's matching rules, written from the R4 search page
//! (http://hl7.org/fhir/R4/search.html), independently of `oxehr-search`:
//! - string: starts-with (or `:contains`, `:exact`), ignoring case and accents;
//! - token: `[code]`, `[system]|[code]`, `|[code]`, `[system]|`;
//! - date: the search value and the target each stand for a range; prefixes compare ranges
//!   as the prefix table says (values without a zone are taken as UTC);
//! - number/quantity: `eq`/`ne`/`ap` use the implicit range of the value's precision, the
//!   other prefixes compare to the value itself.

use serde_json::Value;

const ACCENTED: &str = "ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿ";
const PLAIN: &str = "AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyy";

/// Lower case without accents: what "case- and accent-insensitive" compares.
pub fn norm(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|c| match ACCENTED.chars().position(|a| a == c) {
            Some(i) => PLAIN.chars().nth(i).unwrap_or(c),
            None => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

pub fn starts(hay: &str, q: &str) -> bool {
    norm(hay).starts_with(&norm(q))
}

pub fn contains(hay: &str, q: &str) -> bool {
    norm(hay).contains(&norm(q))
}

/// The words (letters only, normalized) of a text.
pub fn words(s: &str) -> Vec<String> {
    norm(s)
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The text of an XHTML fragment without its tags.
pub fn strip_tags(div: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in div.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// A token search value against one (system, code) pair.
pub fn token(q: &str, system: Option<&str>, code: Option<&str>) -> bool {
    match q.split_once('|') {
        None => code == Some(q),
        Some(("", c)) => system.is_none() && code == Some(c),
        Some((s, "")) => system == Some(s),
        Some((s, c)) => system == Some(s) && code == Some(c),
    }
}

/// The (system, code) pairs of a CodeableConcept, Coding or Identifier value.
pub fn pairs(v: &Value) -> Vec<(Option<&str>, Option<&str>)> {
    if let Some(cs) = v.get("coding").and_then(Value::as_array) {
        return cs
            .iter()
            .map(|c| (c["system"].as_str(), c["code"].as_str()))
            .collect();
    }
    if v.get("code").is_some() {
        return vec![(v["system"].as_str(), v["code"].as_str())];
    }
    if v.get("value").is_some() {
        return vec![(v["system"].as_str(), v["value"].as_str())];
    }
    if let Some(s) = v.as_str() {
        return vec![(None, Some(s))];
    }
    vec![]
}

/// A token search value against a CodeableConcept, Coding, Identifier or code value.
pub fn token_any(q: &str, v: &Value) -> bool {
    pairs(v).into_iter().any(|(s, c)| token(q, s, c))
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = (if z >= 0 { z } else { z - 146_096 }) / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub const DAY: i64 = 86_400_000;
pub const HOUR: i64 = 3_600_000;

/// A range of instants in ms since the epoch, `lo` inclusive, `hi` exclusive.
pub type Range = (i64, i64);

/// The range a FHIR date, dateTime or instant stands for (UTC where no zone is given).
pub fn date_range(s: &str) -> Option<Range> {
    let num = |t: &str| t.parse::<i64>().ok();
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let y = num(parts.first()?)?;
    if parts[0].len() != 4 {
        return None;
    }
    match (parts.len(), time) {
        (1, None) => {
            return Some((
                days_from_civil(y, 1, 1) * DAY,
                days_from_civil(y + 1, 1, 1) * DAY,
            ))
        }
        (2, None) => {
            let m = num(parts[1])?;
            if !(1..=12).contains(&m) {
                return None;
            }
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            return Some((
                days_from_civil(y, m, 1) * DAY,
                days_from_civil(ny, nm, 1) * DAY,
            ));
        }
        (3, _) => {}
        _ => return None,
    }
    let (m, d) = (num(parts[1])?, num(parts[2])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let day = days_from_civil(y, m, d) * DAY;
    let Some(time) = time else {
        return Some((day, day + DAY));
    };
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, z) = time.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (h, mi) = z[1..].split_once(':')?;
        (c, sign * (num(h)? * HOUR + num(mi)? * 60_000))
    } else {
        (time, 0)
    };
    let hms: Vec<&str> = clock.split(':').collect();
    let (h, mi) = (num(hms.first()?)?, num(hms.get(1)?)?);
    let (sec, width) = match hms.get(2) {
        None => (0, 60_000),
        Some(sx) => match sx.split_once('.') {
            None => (num(sx)? * 1000, 1000),
            Some((whole, frac)) => {
                let digits = frac.len().min(3) as u32;
                let f = num(&frac[..digits as usize])? * 10_i64.pow(3 - digits);
                (num(whole)? * 1000 + f, 10_i64.pow(3 - digits))
            }
        },
    };
    let lo = day + h * HOUR + mi * 60_000 + sec - offset;
    Some((lo, lo + width))
}

/// `YYYY-MM-DDThh:mm:ssZ` for ms since the epoch.
pub fn format_instant(ms: i64) -> String {
    let days = ms.div_euclid(DAY);
    let rest = ms.rem_euclid(DAY) / 1000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// `hh:mm:ss` in the zone `offset_h` hours from UTC, with the zone written out.
pub fn format_in_zone(ms: i64, offset_h: i64) -> String {
    let local = format_instant(ms + offset_h * HOUR);
    let zone = format!(
        "{}{:02}:00",
        if offset_h < 0 { '-' } else { '+' },
        offset_h.abs()
    );
    format!("{}{zone}", local.trim_end_matches('Z'))
}

/// The date part (`YYYY-MM-DD`) of an instant in UTC.
pub fn format_day(ms: i64) -> String {
    format_instant(ms)[..10].to_string()
}

/// The range of a Period (open ends are unbounded).
pub fn period_range(p: &Value) -> Option<Range> {
    let lo = p["start"].as_str().map(date_range);
    let hi = p["end"].as_str().map(date_range);
    match (lo, hi) {
        (None, None) => None,
        (lo, hi) => Some((
            lo.flatten().map_or(i64::MIN, |r| r.0),
            hi.flatten().map_or(i64::MAX, |r| r.1),
        )),
    }
}

/// The R4 prefix table for ranges (`ap` is decided by the caller: see `date_ap`).
pub fn range_match(prefix: &str, s: Range, t: Range) -> bool {
    let eq = s.0 <= t.0 && t.1 <= s.1;
    match prefix {
        "eq" => eq,
        "ne" => !eq,
        "gt" => t.1 > s.1,
        "lt" => t.0 < s.0,
        "ge" => t.1 > s.1 || eq,
        "le" => t.0 < s.0 || eq,
        "sa" => t.0 >= s.1,
        "eb" => t.1 <= s.0,
        other => panic!("prefix {other}"),
    }
}

/// `ap` on dates: `(certainly, possibly)` matching. Certainly: the target lies inside the
/// search range. Possibly: it overlaps the range widened by 10% of the gap between now and
/// the search value, plus a day (the spec leaves the tolerance to the server).
pub fn date_ap(s: Range, t: Range, now: i64) -> (bool, bool) {
    let tol = (now - s.0).abs() / 10 + DAY;
    let certainly = s.0 <= t.0 && t.1 <= s.1;
    let possibly = t.0 < s.1 + tol && t.1 > s.0 - tol;
    (certainly, possibly)
}

/// Digits after the decimal point of a decimal as written.
pub fn decimals(text: &str) -> usize {
    text.split_once('.').map_or(0, |(_, f)| f.len())
}

/// A number search value (`prefix` already split off, precision from its text) against a
/// target value. `ap` is handled by `number_ap`.
pub fn number_match(prefix: &str, text: &str, t: f64) -> bool {
    let v: f64 = text.parse().expect("number");
    let half = 0.5 * 10f64.powi(-(decimals(text) as i32));
    let eq = t >= v - half && t < v + half;
    match prefix {
        "eq" => eq,
        "ne" => !eq,
        "gt" | "sa" => t > v,
        "lt" | "eb" => t < v,
        "ge" => t >= v,
        "le" => t <= v,
        other => panic!("prefix {other}"),
    }
}

/// `ap` on numbers: `(certainly, possibly)`: certainly within the implicit range,
/// possibly within 10% of the value.
pub fn number_ap(text: &str, t: f64) -> (bool, bool) {
    let v: f64 = text.parse().expect("number");
    let tol = v.abs() * 0.1 + 0.5 * 10f64.powi(-(decimals(text) as i32));
    (number_match("eq", text, t), (t - v).abs() <= tol)
}

/// The decimal as written in the source JSON (serde_json keeps the shortest round-trip
/// form, which is what the bundle said for the values Synthea writes).
pub fn num_text(v: &Value) -> Option<String> {
    v.as_f64()?;
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let d = date_range("2015-03-01").expect("day");
        assert_eq!(d.1 - d.0, DAY);
        assert_eq!(format_instant(d.0), "2015-03-01T00:00:00Z");
        let z = date_range("2015-03-01T10:00:00+02:00").expect("dt");
        assert_eq!(format_instant(z.0), "2015-03-01T08:00:00Z");
        assert_eq!(z.1 - z.0, 1000);
        let y = date_range("2016").expect("year");
        assert_eq!((y.1 - y.0) / DAY, 366);
        assert!(date_range("1970-13").is_none());
        assert_eq!(norm("José MARÍA"), "jose maria");
    }
}
