//! Plain words for dates, intervals and coded things, so a reason reads as a sentence a
//! patient could follow ("last colonoscopy was 12 years ago (3 Mar 2014)").

use serde_json::Value;
use time::{Date, Month};

/// A calendar interval as the guidelines state them: "every 10 years", "within 1 month".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Years(u32),
    Months(u32),
    Weeks(u32),
    Days(u32),
}

impl Interval {
    /// `10 years`, `1 year`, `6 months`, `2 weeks`, `30 days`.
    pub fn parse(s: &str) -> Option<Interval> {
        let (n, unit) = s.trim().split_once(' ')?;
        let n: u32 = n.parse().ok()?;
        if n == 0 {
            return None;
        }
        match unit.trim() {
            "year" | "years" => Some(Interval::Years(n)),
            "month" | "months" => Some(Interval::Months(n)),
            "week" | "weeks" => Some(Interval::Weeks(n)),
            "day" | "days" => Some(Interval::Days(n)),
            _ => None,
        }
    }

    /// `date` plus the interval; a day the target month lacks falls back to its last day
    /// (29 Feb + 1 year = 28 Feb).
    pub fn after(self, date: Date) -> Date {
        match self {
            Interval::Years(n) => add_months(date, n.saturating_mul(12)),
            Interval::Months(n) => add_months(date, n),
            Interval::Weeks(n) => date.saturating_add(time::Duration::weeks(i64::from(n))),
            Interval::Days(n) => date.saturating_add(time::Duration::days(i64::from(n))),
        }
    }

    /// `10 years`, `1 year`, `6 months`.
    pub fn words(self) -> String {
        let (n, one, many) = match self {
            Interval::Years(n) => (n, "year", "years"),
            Interval::Months(n) => (n, "month", "months"),
            Interval::Weeks(n) => (n, "week", "weeks"),
            Interval::Days(n) => (n, "day", "days"),
        };
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    }

    /// `every 10 years`, `every year`, `every 6 months`.
    pub fn every(self) -> String {
        match self {
            Interval::Years(1) => "every year".to_owned(),
            Interval::Months(1) => "every month".to_owned(),
            Interval::Weeks(1) => "every week".to_owned(),
            Interval::Days(1) => "every day".to_owned(),
            other => format!("every {}", other.words()),
        }
    }
}

/// `date` plus `months` calendar months, clamped to the month's last day.
pub fn add_months(date: Date, months: u32) -> Date {
    let total = date.year() as i64 * 12 + (date.month() as i64 - 1) + i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).unwrap_or(i32::MAX);
    let month = u8::try_from(total.rem_euclid(12) + 1).unwrap_or(12);
    let month = Month::try_from(month).unwrap_or(Month::December);
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).unwrap_or(Date::MAX)
}

/// `3 Mar 2014`.
pub fn date(d: Date) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {}",
        d.day(),
        MONTHS[usize::from(d.month() as u8 - 1)],
        d.year()
    )
}

/// How long before `now` `then` was, in the largest whole unit: `12 years ago`,
/// `1 year ago`, `5 months ago`, `3 days ago`, `today`.
pub fn ago(then: Date, now: Date) -> String {
    let months = whole_months(then, now);
    let (n, one, many) = if months >= 12 {
        (months / 12, "year", "years")
    } else if months >= 1 {
        (months, "month", "months")
    } else {
        let days = (now - then).whole_days();
        if days <= 0 {
            return "today".to_owned();
        }
        (u32::try_from(days).unwrap_or(u32::MAX), "day", "days")
    };
    if n == 1 {
        format!("1 {one} ago")
    } else {
        format!("{n} {many} ago")
    }
}

/// Whole calendar months from `from` to `to` (0 when `to` is not after `from`).
pub fn whole_months(from: Date, to: Date) -> u32 {
    let mut m = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32;
    if to.day() < from.day() {
        m -= 1;
    }
    u32::try_from(m).unwrap_or(0)
}

/// The words a resource uses for its code: the concept's text, else its first coding's
/// display, else its first code.
pub fn concept(resource: &Value, field: &str) -> Option<String> {
    let c = resource.get(field)?;
    if let Some(t) = c.get("text").and_then(Value::as_str) {
        return Some(t.to_owned());
    }
    let first = c.get("coding")?.as_array()?.first()?;
    first
        .get("display")
        .or_else(|| first.get("code"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A number as a person writes it: `7`, `7.5`, `12.3` (at most one decimal).
pub fn number(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// A value with its unit: `8.1%`, `140 mmHg`, `12 ng/mL`, `3`.
pub fn amount(v: f64, u: Option<&str>) -> String {
    match unit(u) {
        "" => number(v),
        "%" => format!("{}%", number(v)),
        u => format!("{} {u}", number(v)),
    }
}

/// A UCUM unit as people write it: `mm[Hg]` → `mmHg`; others as they are.
pub fn unit(u: Option<&str>) -> &str {
    match u {
        Some("mm[Hg]") => "mmHg",
        Some(u) => u,
        None => "",
    }
}

/// `a`, `a or b`, `a, b or c`.
pub fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn intervals_parse_add_and_read() {
        let cases = [
            (
                "10 years",
                date!(2014 - 03 - 03),
                date!(2024 - 03 - 03),
                "every 10 years",
            ),
            (
                "1 year",
                date!(2020 - 02 - 29),
                date!(2021 - 02 - 28),
                "every year",
            ),
            (
                "6 months",
                date!(2024 - 08 - 31),
                date!(2025 - 02 - 28),
                "every 6 months",
            ),
            (
                "1 month",
                date!(2024 - 12 - 15),
                date!(2025 - 01 - 15),
                "every month",
            ),
            (
                "2 weeks",
                date!(2024 - 12 - 25),
                date!(2025 - 01 - 08),
                "every 2 weeks",
            ),
        ];
        for (text, from, to, every) in cases {
            let i = Interval::parse(text).expect(text);
            assert_eq!(i.after(from), to, "{text}");
            assert_eq!(i.every(), every);
        }
        assert_eq!(Interval::parse("0 years"), None);
        assert_eq!(Interval::parse("ten years"), None);
        assert_eq!(Interval::parse("3 fortnights"), None);
    }

    #[test]
    fn dates_and_ages_read_plainly() {
        assert_eq!(date(date!(2014 - 03 - 03)), "3 Mar 2014");
        let now = date!(2026 - 12 - 05);
        assert_eq!(ago(date!(2014 - 03 - 03), now), "12 years ago");
        assert_eq!(ago(date!(2025 - 12 - 05), now), "1 year ago");
        assert_eq!(ago(date!(2025 - 12 - 06), now), "11 months ago");
        assert_eq!(ago(date!(2026 - 12 - 02), now), "3 days ago");
        assert_eq!(ago(now, now), "today");
        assert_eq!(number(7.0), "7");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(or_list(&["a".into(), "b".into(), "c".into()]), "a, b or c");
    }
}
