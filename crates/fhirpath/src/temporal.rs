//! Partial-precision dates, dateTimes and times (FHIRPath `Date`, `DateTime`, `Time`):
//! parsing from FHIR/FHIRPath text, comparison with the spec's precision rules, calendar
//! arithmetic, and the implicit instant range a value covers (used by date search).

use std::cmp::Ordering;
use std::fmt;

/// How much of a value is known. Seconds and milliseconds compare as one precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

/// A date, dateTime or time with the precision it was written with. For a time, the date
/// fields are unused. `tz` is the zone offset in minutes when one was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Temporal {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Fraction of the second, in microseconds.
    pub micros: u32,
    /// Digits written after the decimal point of the seconds (for display).
    pub frac_digits: u8,
    pub precision: Precision,
    pub tz: Option<i16>,
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

impl Temporal {
    fn blank(precision: Precision) -> Temporal {
        Temporal {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
            frac_digits: 0,
            precision,
            tz: None,
        }
    }

    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub fn parse_date(s: &str) -> Option<Temporal> {
        let (t, rest) = parse_date_part(s)?;
        rest.is_empty().then_some(t)
    }

    /// A date with an optional `T` time and zone (`2013-01-14T10:00:00+01:00`, `2015T`,
    /// `2015-02`). FHIR `dateTime` and `instant` values parse with this.
    pub fn parse_datetime(s: &str) -> Option<Temporal> {
        let (mut t, rest) = parse_date_part(s)?;
        let Some(rest) = rest.strip_prefix('T') else {
            return rest.is_empty().then_some(t);
        };
        let rest = parse_time_part(rest, &mut t)?;
        let rest = parse_zone(rest, &mut t)?;
        rest.is_empty().then_some(t)
    }

    /// `hh`, `hh:mm`, `hh:mm:ss(.fff)` (no zone).
    pub fn parse_time(s: &str) -> Option<Temporal> {
        let mut t = Temporal::blank(Precision::Hour);
        let rest = parse_time_part(s, &mut t)?;
        rest.is_empty().then_some(t)
    }

    /// Days since 1970-01-01 of the date fields.
    fn epoch_days(&self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        )
    }

    /// Microseconds since the epoch of the first instant covered (zone applied; no zone
    /// means UTC).
    fn start_micros(&self) -> i64 {
        let day = self.epoch_days() * MICROS_PER_DAY;
        let tod =
            (i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second))
                * 1_000_000
                + i64::from(self.micros);
        let tz = if self.precision >= Precision::Hour {
            i64::from(self.tz.unwrap_or(0)) * 60_000_000
        } else {
            0
        };
        day + tod - tz
    }

    /// The inclusive range of instants (µs since the Unix epoch) the value covers, e.g.
    /// `2013` → all of 2013 UTC; `2013-01-14T10:00:00+01:00` → that second.
    pub fn range_micros(&self) -> (i64, i64) {
        let low = self.start_micros();
        let high = match self.precision {
            Precision::Year => {
                let next = Temporal {
                    year: self.year + 1,
                    ..*self
                };
                next.start_micros()
            }
            Precision::Month => {
                let (y, m) = if self.month >= 12 {
                    (self.year + 1, 1)
                } else {
                    (self.year, self.month + 1)
                };
                Temporal {
                    year: y,
                    month: m,
                    ..*self
                }
                .start_micros()
            }
            Precision::Day => low + MICROS_PER_DAY,
            Precision::Hour => low + 3_600_000_000,
            Precision::Minute => low + 60_000_000,
            Precision::Second => low + 1_000_000,
            Precision::Millisecond => {
                let unit = 10i64.pow(6u32.saturating_sub(u32::from(self.frac_digits.min(6))));
                low + unit
            }
        };
        (low, high - 1)
    }

    /// The same value expressed in UTC, when it has a time and a zone.
    fn normalized(&self) -> Temporal {
        match self.tz {
            Some(tz) if tz != 0 && self.precision >= Precision::Hour => {
                let total = self.start_micros();
                let mut t = from_micros(total, self.precision);
                t.micros = self.micros;
                t.frac_digits = self.frac_digits;
                t.tz = Some(0);
                t
            }
            _ => *self,
        }
    }

    fn fields(&self) -> [i64; 6] {
        [
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
            i64::from(self.hour),
            i64::from(self.minute),
            i64::from(self.second) * 1_000_000 + i64::from(self.micros),
        ]
    }

    /// True when both values were written to the same precision (seconds and
    /// milliseconds count as one).
    pub fn same_precision(&self, other: &Temporal) -> bool {
        let level = |p: Precision| p.min(Precision::Second);
        level(self.precision) == level(other.precision)
    }

    /// FHIRPath comparison: `None` when the values are equal up to the shorter precision
    /// but the precisions differ (the answer is unknown).
    pub fn compare(&self, other: &Temporal, is_time: bool) -> Option<Ordering> {
        if self.tz.is_some() != other.tz.is_some()
            && !is_time
            && self.precision >= Precision::Hour
            && other.precision >= Precision::Hour
        {
            // One has a zone, the other does not: the answer is known only when the
            // instants are further apart than any zone offset (14 h).
            let d = self.start_micros() - other.start_micros();
            return (d.abs() > 14 * 3_600_000_000).then(|| d.cmp(&0));
        }
        let (a, b) = (self.normalized(), other.normalized());
        let level = |p: Precision| match p {
            Precision::Millisecond => Precision::Second as usize,
            p => p as usize,
        };
        let (pa, pb) = (level(a.precision), level(b.precision));
        let (fa, fb) = (a.fields(), b.fields());
        let start = if is_time { Precision::Hour as usize } else { 0 };
        for i in start..=pa.min(pb) {
            match fa[i].cmp(&fb[i]) {
                Ordering::Equal => {}
                o => return Some(o),
            }
        }
        if pa == pb {
            Some(Ordering::Equal)
        } else {
            None
        }
    }

    /// Adds `amount` of a calendar unit (`year`, `month`, `week`, `day`, `hour`, `minute`,
    /// `second`, `millisecond`, or their UCUM codes). `None` for other units.
    pub fn add(&self, amount: f64, unit: &str, is_time: bool) -> Option<Temporal> {
        let unit = unit.trim_end_matches('s');
        let mut t = *self;
        let n = amount.trunc() as i64;
        match unit {
            "year" => {
                t.year = i32::try_from(i64::from(t.year) + n).ok()?;
                t.day = t.day.min(days_in_month(t.year, t.month));
                return Some(t);
            }
            "month" => {
                let m = i64::from(t.year) * 12 + i64::from(t.month) - 1 + n;
                t.year = i32::try_from(m.div_euclid(12)).ok()?;
                t.month = (m.rem_euclid(12) + 1) as u8;
                t.day = t.day.min(days_in_month(t.year, t.month));
                return Some(t);
            }
            _ => {}
        }
        let micros: i64 = match unit {
            "week" | "wk" => n * 7 * MICROS_PER_DAY,
            "day" | "d" => n * MICROS_PER_DAY,
            "hour" | "h" => n * 3_600_000_000,
            "minute" | "min" => n * 60_000_000,
            "second" | "" => (amount * 1e6).round() as i64,
            "millisecond" | "m" => (amount * 1e3).round() as i64,
            _ => return None,
        };
        let tz = t.tz;
        let base = Temporal { tz: None, ..t };
        let total = if is_time {
            let tod = base.start_micros() - base.epoch_days() * MICROS_PER_DAY;
            (tod + micros).rem_euclid(MICROS_PER_DAY) + base.epoch_days() * MICROS_PER_DAY
        } else {
            base.start_micros() + micros
        };
        let mut out = from_micros(total, t.precision);
        out.tz = tz;
        out.frac_digits = t.frac_digits.max(if out.micros != 0 { 3 } else { 0 });
        if t.precision < Precision::Millisecond {
            out.micros = 0;
        }
        Some(out)
    }

    /// Text in FHIR form (`2013-01-14`, `2013-01-14T10:00:00+01:00`, `10:00:00`).
    pub fn format(&self, kind: Kind) -> String {
        let mut s = String::new();
        use std::fmt::Write;
        if kind != Kind::Time {
            let _ = write!(s, "{:04}", self.year);
            if self.precision >= Precision::Month {
                let _ = write!(s, "-{:02}", self.month);
            }
            if self.precision >= Precision::Day {
                let _ = write!(s, "-{:02}", self.day);
            }
            if kind == Kind::Date || self.precision < Precision::Hour {
                return s;
            }
            s.push('T');
        }
        let _ = write!(s, "{:02}", self.hour);
        if self.precision >= Precision::Minute {
            let _ = write!(s, ":{:02}", self.minute);
        }
        if self.precision >= Precision::Second {
            let _ = write!(s, ":{:02}", self.second);
        }
        if self.precision >= Precision::Millisecond {
            let digits = usize::from(self.frac_digits.clamp(1, 6));
            let frac = format!("{:06}", self.micros);
            let _ = write!(s, ".{}", &frac[..digits.clamp(3, 6)]);
        }
        if kind == Kind::DateTime {
            match self.tz {
                Some(0) => s.push('Z'),
                Some(m) => {
                    let sign = if m < 0 { '-' } else { '+' };
                    let m = m.abs();
                    let _ = write!(s, "{sign}{:02}:{:02}", m / 60, m % 60);
                }
                None => {}
            }
        }
        s
    }
}

/// Which FHIRPath type a [`Temporal`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Date,
    DateTime,
    Time,
}

impl fmt::Display for Temporal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(Kind::DateTime))
    }
}

fn num(s: &str, n: usize) -> Option<(u32, &str)> {
    let d = s.get(..n)?;
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((d.parse().ok()?, &s[n..]))
}

fn parse_date_part(s: &str) -> Option<(Temporal, &str)> {
    let (y, mut rest) = num(s, 4)?;
    let mut t = Temporal::blank(Precision::Year);
    t.year = i32::try_from(y).ok()?;
    if let Some(r) = rest.strip_prefix('-') {
        let (m, r) = num(r, 2)?;
        if !(1..=12).contains(&m) {
            return None;
        }
        t.month = m as u8;
        t.precision = Precision::Month;
        rest = r;
        if let Some(r) = rest.strip_prefix('-') {
            let (d, r) = num(r, 2)?;
            if d < 1 || d > u32::from(days_in_month(t.year, t.month)) {
                return None;
            }
            t.day = d as u8;
            t.precision = Precision::Day;
            rest = r;
        }
    }
    Some((t, rest))
}

fn parse_time_part<'s>(s: &'s str, t: &mut Temporal) -> Option<&'s str> {
    if s.is_empty() || s.starts_with(['Z', '+', '-']) {
        // `2015T` and `2015-02-04T` are dateTimes without a time.
        return Some(s);
    }
    let (h, mut rest) = num(s, 2)?;
    if h > 23 {
        return None;
    }
    t.hour = h as u8;
    t.precision = Precision::Hour;
    if let Some(r) = rest.strip_prefix(':') {
        let (m, r) = num(r, 2)?;
        if m > 59 {
            return None;
        }
        t.minute = m as u8;
        t.precision = Precision::Minute;
        rest = r;
        if let Some(r) = rest.strip_prefix(':') {
            let (sec, r) = num(r, 2)?;
            if sec > 60 {
                return None;
            }
            t.second = sec as u8;
            t.precision = Precision::Second;
            rest = r;
            if let Some(r) = rest.strip_prefix('.') {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return None;
                }
                let digits = &r[..n.min(6)];
                let v: u32 = digits.parse().ok()?;
                t.micros = v * 10u32.pow(6 - digits.len() as u32);
                t.frac_digits = n.min(6) as u8;
                t.precision = Precision::Millisecond;
                rest = &r[n..];
            }
        }
    }
    Some(rest)
}

fn parse_zone<'s>(s: &'s str, t: &mut Temporal) -> Option<&'s str> {
    if let Some(r) = s.strip_prefix('Z') {
        t.tz = Some(0);
        return Some(r);
    }
    let sign = match s.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Some(s),
    };
    let (h, r) = num(&s[1..], 2)?;
    let r = r.strip_prefix(':')?;
    let (m, r) = num(r, 2)?;
    t.tz = Some(sign * (h * 60 + m) as i16);
    Some(r)
}

pub(crate) fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn from_micros(total: i64, precision: Precision) -> Temporal {
    let days = total.div_euclid(MICROS_PER_DAY);
    let tod = total.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = tod / 1_000_000;
    Temporal {
        year: y as i32,
        month: m as u8,
        day: d as u8,
        hour: (secs / 3600) as u8,
        minute: (secs / 60 % 60) as u8,
        second: (secs % 60) as u8,
        micros: (tod % 1_000_000) as u32,
        frac_digits: 0,
        precision,
        tz: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 18_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn ranges_follow_precision() {
        let y = Temporal::parse_datetime("2013").expect("year");
        // 2013-01-01T00:00:00Z = 1356998400 s; 2014-01-01 = 1388534400 s.
        assert_eq!(
            y.range_micros(),
            (1_356_998_400_000_000, 1_388_534_400_000_000 - 1)
        );
        let s = Temporal::parse_datetime("2013-01-14T10:00:00+01:00").expect("second");
        // 2013-01-14T09:00:00Z = 1358154000 s.
        assert_eq!(
            s.range_micros(),
            (1_358_154_000_000_000, 1_358_154_000_999_999)
        );
    }

    #[test]
    fn comparison_with_partial_precision_is_unknown() {
        let a = Temporal::parse_datetime("2012-04-15").expect("a");
        let b = Temporal::parse_datetime("2012-04-15T10:00").expect("b");
        assert_eq!(a.compare(&b, false), None);
        let c = Temporal::parse_datetime("2012-04-16T10:00").expect("c");
        assert_eq!(a.compare(&c, false), Some(Ordering::Less));
        let z1 = Temporal::parse_datetime("2017-11-05T01:30:00.0-04:00").expect("z1");
        let z2 = Temporal::parse_datetime("2017-11-05T01:15:00.0-05:00").expect("z2");
        assert_eq!(z1.compare(&z2, false), Some(Ordering::Less));
    }
}
