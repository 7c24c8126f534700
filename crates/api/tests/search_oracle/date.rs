//! Date parameters: every prefix at year, month and day precision and on dateTimes with a
//! zone, against dates (Patient.birthDate), dateTimes (Observation.effective) and Periods
//! (Encounter.period), with the range semantics of the R4 prefix table.

use std::collections::BTreeSet;

use serde_json::Value;

use super::data::{str1, Data};
use super::run::{enc, Case, Expect};
use super::value::{
    date_ap, date_range, format_day, format_in_zone, period_range, range_match, Range,
};

const PREFIXES: [&str; 8] = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Cases for one parameter: each prefix on `value`, plus `ap`.
fn prefixed(
    d: &Data,
    label: &str,
    ty: &str,
    base_query: &str,
    param: &str,
    value: &str,
    target: &dyn Fn(&Value) -> Option<Range>,
    filter: &dyn Fn(&Value) -> bool,
) -> Vec<Case> {
    let s = date_range(value).expect("search date");
    let mut out = Vec::new();
    for p in PREFIXES {
        out.push(Case::set(
            format!("date_{label}_{p}"),
            format!("{base_query}{param}={p}{}", enc(value)),
            d.select(ty, |r| {
                filter(r) && target(r).is_some_and(|t| range_match(p, s, t))
            }),
        ));
    }
    let now = now_ms();
    let (mut must, mut may) = (BTreeSet::new(), BTreeSet::new());
    for (k, r) in d.of(ty) {
        if let (true, Some(t)) = (filter(r), target(r)) {
            match date_ap(s, t, now) {
                (true, _) => must.insert(k.clone()),
                (false, true) => may.insert(k.clone()),
                _ => false,
            };
        }
    }
    out.push(Case::new(
        format!("date_{label}_ap"),
        format!("{base_query}{param}=ap{}", enc(value)),
        Expect::Fuzzy { must, may },
    ));
    out
}

fn birth(p: &Value) -> Option<Range> {
    p["birthDate"].as_str().and_then(date_range)
}

fn effective(o: &Value) -> Option<Range> {
    o["effectiveDateTime"]
        .as_str()
        .or(o["effectiveInstant"].as_str())
        .and_then(date_range)
        .or_else(|| period_range(&o["effectivePeriod"]))
}

fn period(e: &Value) -> Option<Range> {
    period_range(&e["period"])
}

pub fn cases(d: &Data) -> Vec<Case> {
    let mut out = Vec::new();
    let all = |_: &Value| true;

    // Patient.birthDate (a date) at day, month and year precision.
    let mut births: Vec<&str> = d
        .of("Patient")
        .filter_map(|(_, p)| p["birthDate"].as_str())
        .collect();
    births.sort();
    let day = births[births.len() / 2].to_string();
    for (label, value) in [
        ("birthdate_day", day.clone()),
        ("birthdate_month", day[..7].to_string()),
        ("birthdate_year", day[..4].to_string()),
    ] {
        out.extend(prefixed(
            d,
            label,
            "Patient",
            "Patient?",
            "birthdate",
            &value,
            &birth,
            &all,
        ));
    }
    let s = date_range(&day).expect("day");
    out.push(Case::set(
        "date_birthdate_no_prefix_is_eq",
        format!("Patient?birthdate={day}"),
        d.select("Patient", |p| {
            birth(p).is_some_and(|t| range_match("eq", s, t))
        }),
    ));
    let (lo, hi) = (births[births.len() / 4], births[births.len() * 3 / 4]);
    let (slo, shi) = (
        date_range(&lo[..7]).expect("lo"),
        date_range(&hi[..7]).expect("hi"),
    );
    out.push(Case::set(
        "date_birthdate_ge_and_le_is_a_range",
        format!("Patient?birthdate=ge{}&birthdate=le{}", &lo[..7], &hi[..7]),
        d.select("Patient", |p| {
            birth(p).is_some_and(|t| range_match("ge", slo, t) && range_match("le", shi, t))
        }),
    ));

    // Observation.effectiveDateTime, within one code to keep the sets small.
    let code = "http://loinc.org|29463-7";
    let is_weight = |o: &Value| {
        super::data::at(o, "code.coding")
            .iter()
            .any(|c| c["system"] == "http://loinc.org" && c["code"] == "29463-7")
    };
    let mut times: Vec<(i64, String)> = d
        .of("Observation")
        .filter(|(_, o)| is_weight(o))
        .filter_map(|(_, o)| {
            let t = str1(o, "effectiveDateTime")?;
            Some((date_range(t)?.0, t.to_string()))
        })
        .collect();
    times.sort();
    let (mid, _) = times[times.len() / 2].clone();
    let base = format!("Observation?code={code}&_count=100&");
    for (label, value) in [
        ("observation_day", format_day(mid)),
        ("observation_month", format_day(mid)[..7].to_string()),
        ("observation_year", format_day(mid)[..4].to_string()),
        // The same instant as one Observation, written in another zone: ge must find it,
        // gt must not.
        ("observation_instant_plus_0200", format_in_zone(mid, 2)),
        ("observation_instant_minus_0500", format_in_zone(mid, -5)),
    ] {
        out.extend(prefixed(
            d,
            label,
            "Observation",
            &base,
            "date",
            &value,
            &effective,
            &is_weight,
        ));
    }

    // Encounter.period: a day on which a stay of several days began.
    let mut stays: Vec<i64> = d
        .of("Encounter")
        .filter_map(|(_, e)| period(e))
        .filter(|(lo, hi)| *hi != i64::MAX && hi - lo > 2 * super::value::DAY)
        .map(|(lo, _)| lo)
        .collect();
    stays.sort();
    let long = *stays
        .get(stays.len() / 2)
        .expect("an encounter of several days");
    out.extend(prefixed(
        d,
        "encounter_period_day",
        "Encounter",
        "Encounter?_count=200&",
        "date",
        &format_day(long),
        &period,
        &all,
    ));
    out
}
