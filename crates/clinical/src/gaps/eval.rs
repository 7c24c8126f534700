//! Evaluating one compiled rule against an indexed record: who the rule applies to, then
//! one of the five kinds of rule body. Every sentence a gap carries is written here.

use std::collections::BTreeMap;

use time::{Date, Month};

use super::index::{coded_value_in, concept_in, Event, Index};
use super::rules::{Body, Criterion, FollowUp, Rule, Satisfier, Season, Series, Sex, When};
use super::words::{self, add_months, Interval};
use super::{Gap, GapStatus, RiskInput};
use crate::record::{reference_of, Record};
use crate::Input;

pub(crate) struct Ctx<'a, 'r> {
    pub record: &'r Record<'a>,
    pub today: Date,
    pub risk: &'r [RiskInput<'r>],
    pub index: Index<'a>,
    pub patient: String,
}

/// What the applicability checks found: the evidence, and the names of the `any_of`
/// criteria that held (the risk factors a statin reason names).
struct Found {
    evidence: Vec<Input>,
    factors: Vec<String>,
}

enum Applicability {
    Applies(Found),
    NotApplicable,
    Undetermined(String, Vec<Input>),
}

pub(crate) fn rule(ctx: &Ctx<'_, '_>, rule: &Rule) -> Vec<Gap> {
    let mut found = match applicability(ctx, rule) {
        Applicability::Applies(f) => f,
        Applicability::NotApplicable => return Vec::new(),
        Applicability::Undetermined(reason, evidence) => {
            return vec![gap(
                rule,
                GapStatus::Undetermined,
                None,
                None,
                reason,
                evidence,
            )]
        }
    };
    if let Some(req) = &rule.risk {
        match ctx.risk.iter().find(|r| r.id == req.id) {
            None => {
                let factors = if found.factors.is_empty() {
                    String::new()
                } else {
                    format!(" (risk factors on record: {})", found.factors.join(", "))
                };
                let reason = format!(
                    "Cannot decide: the {} was not given. {} is recommended when it is {}% or more{factors}.",
                    req.name,
                    rule.title,
                    words::number(req.at_least_percent),
                );
                return vec![gap(
                    rule,
                    GapStatus::Undetermined,
                    None,
                    None,
                    reason,
                    found.evidence,
                )];
            }
            Some(r) => {
                if r.value_percent < req.at_least_percent {
                    return Vec::new();
                }
                found.evidence.push(Input {
                    name: capitalized(&req.name),
                    value: format!("{}%", words::number(r.value_percent)),
                    source: r.source.clone(),
                });
            }
        }
    }
    match &rule.body {
        Body::Recurring(options) => vec![recurring(ctx, rule, options, found.evidence)],
        Body::Seasonal(season, options) => {
            vec![seasonal(ctx, rule, *season, options, found.evidence)]
        }
        Body::Treatment(options) => vec![treatment(ctx, rule, options, found)],
        Body::FollowUp(f) => follow_up(ctx, rule, f, found.evidence)
            .into_iter()
            .collect(),
        Body::Series(series) => series
            .iter()
            .filter_map(|s| dose_series(ctx, rule, s, &found.evidence))
            .collect(),
    }
}

fn gap(
    rule: &Rule,
    status: GapStatus,
    due: Option<Date>,
    last_done: Option<(Date, String)>,
    reason: String,
    evidence: Vec<Input>,
) -> Gap {
    Gap {
        rule: rule.id.clone(),
        title: rule.title.clone(),
        status,
        due,
        last_done,
        reason,
        evidence,
        citation: rule.citation.clone(),
    }
}

fn applicability(ctx: &Ctx<'_, '_>, rule: &Rule) -> Applicability {
    let a = &rule.applies;
    let mut evidence = Vec::new();
    let patient = Some(ctx.patient.clone());
    if a.age_years.is_some() || a.age_months.is_some() {
        let (Some(years), Some(months)) = (
            ctx.record.age_on(ctx.today),
            ctx.record.age_months_on(ctx.today),
        ) else {
            if ctx.record.birth_date().is_some() {
                return Applicability::NotApplicable; // born after `today`
            }
            return Applicability::Undetermined(
                "Cannot decide: no birth date on record.".into(),
                evidence,
            );
        };
        let (years, months) = (years.unsigned_abs(), months.unsigned_abs());
        if a.age_years.is_some_and(|(lo, hi)| years < lo || years > hi)
            || a.age_months
                .is_some_and(|(lo, hi)| months < lo || months > hi)
        {
            return Applicability::NotApplicable;
        }
        let value = if years < 2 {
            format!("{months} months")
        } else {
            format!("{years} years")
        };
        evidence.push(Input {
            name: "Age".into(),
            value,
            source: patient.clone(),
        });
    }
    if let Some(sex) = a.sex {
        match ctx.record.gender() {
            Some(g) if g == sex.as_str() => evidence.push(Input {
                name: "Sex".into(),
                value: g.to_owned(),
                source: patient.clone(),
            }),
            Some("male" | "female") => return Applicability::NotApplicable,
            other => {
                let who = match sex {
                    Sex::Female => "women",
                    Sex::Male => "men",
                };
                let recorded = other.map_or("no sex".to_owned(), |g| format!("sex {g:?}"));
                return Applicability::Undetermined(
                    format!("Cannot decide: this is for {who}, and the record has {recorded}."),
                    evidence,
                );
            }
        }
    }
    for c in &a.requires {
        match criterion(ctx, c) {
            Some(input) => evidence.push(input),
            None => return Applicability::NotApplicable,
        }
    }
    let mut factors = Vec::new();
    if !a.any_of.is_empty() {
        for c in &a.any_of {
            if let Some(input) = criterion(ctx, c) {
                factors.push(c.name.clone());
                evidence.push(input);
            }
        }
        if factors.is_empty() {
            return Applicability::NotApplicable;
        }
    }
    if rule.exclusions.iter().any(|c| criterion(ctx, c).is_some()) {
        return Applicability::NotApplicable;
    }
    Applicability::Applies(Found { evidence, factors })
}

/// Whether a criterion holds; the input it rests on when it does.
fn criterion(ctx: &Ctx<'_, '_>, c: &Criterion) -> Option<Input> {
    let events = ctx.index.events(c.group);
    let Some(test) = &c.latest else {
        // Presence: the earliest active (or ever recorded) one, as "since <onset>".
        let e = events
            .iter()
            .filter(|e| c.when == When::Ever || e.active)
            .min_by_key(|e| e.date)?;
        let what = words::concept(e.resource, "code").unwrap_or_else(|| c.name.clone());
        let value = if c.when == When::Active {
            format!("{what}, since {}", words::date(e.date))
        } else {
            format!("{what}, {}", words::date(e.date))
        };
        return Some(Input {
            name: capitalized(&c.name),
            value,
            source: Some(reference_of(e.resource)),
        });
    };
    let e = latest(events)?;
    let value = if !test.in_codes.is_empty() {
        if !coded_value_in(e.resource, &test.in_codes) {
            return None;
        }
        words::concept(e.resource, "valueCodeableConcept").unwrap_or_default()
    } else {
        let q = e.quantity?;
        if !unit_matches(test.unit.as_deref(), q.unit) {
            return None;
        }
        let holds = test.above.is_none_or(|t| q.value > t)
            && test.below.is_none_or(|t| q.value < t)
            && test.at_least.is_none_or(|t| q.value >= t);
        if !holds {
            return None;
        }
        words::amount(q.value, q.unit)
    };
    Some(Input {
        name: capitalized(&c.name),
        value: format!("{value} on {}", words::date(e.date)),
        source: Some(reference_of(e.resource)),
    })
}

/// The newest event (the last of equals, so the record's order breaks ties).
fn latest<'e, 'a>(events: impl IntoIterator<Item = &'e Event<'a>>) -> Option<&'e Event<'a>>
where
    'a: 'e,
{
    events.into_iter().max_by_key(|e| e.date)
}

fn unit_matches(want: Option<&str>, got: Option<&str>) -> bool {
    match (want, got) {
        (Some(w), Some(g)) => w.eq_ignore_ascii_case(g),
        _ => true,
    }
}

fn recurring(
    ctx: &Ctx<'_, '_>,
    rule: &Rule,
    options: &[Satisfier],
    mut evidence: Vec<Input>,
) -> Gap {
    // (valid until, event, option, interval used, whether the shorter interval applied)
    let mut best: Option<(Date, &Event<'_>, &Satisfier, Interval, bool)> = None;
    for opt in options {
        let Some(every) = opt.every else { continue };
        let e = latest(ctx.index.events(opt.group).iter().filter(|e| {
            opt.age_at_event.is_none_or(|(lo, hi)| {
                ctx.record
                    .age_on(e.date)
                    .is_some_and(|a| a >= 0 && (lo..=hi).contains(&a.unsigned_abs()))
            })
        }));
        let Some(e) = e else { continue };
        let (interval, sooner) = match (&opt.sooner_if, e.quantity) {
            (Some(s), Some(q))
                if q.value >= s.at_least && unit_matches(s.unit.as_deref(), q.unit) =>
            {
                (s.every, true)
            }
            _ => (every, false),
        };
        let until = interval.after(e.date);
        evidence.push(Input {
            name: format!("Last {}", opt.name),
            value: event_words(e),
            source: Some(reference_of(e.resource)),
        });
        if best.as_ref().is_none_or(|b| until > b.0) {
            best = Some((until, e, opt, interval, sooner));
        }
    }
    let Some((until, e, opt, interval, sooner)) = best else {
        let reason = format!(
            "Due: no {} on record; {}.",
            lower_first(&rule.title),
            options_words(options)
        );
        return gap(rule, GapStatus::Open, None, None, reason, evidence);
    };
    let repeat = match (&opt.sooner_if, sooner) {
        (Some(s), true) => format!(
            "{} when it is {} or more",
            interval.every(),
            words::amount(s.at_least, s.unit.as_deref())
        ),
        _ => interval.every(),
    };
    let value = e
        .quantity
        .map(|q| format!(" ({})", words::amount(q.value, q.unit)))
        .unwrap_or_default();
    let last_done = Some((e.date, reference_of(e.resource)));
    if until > ctx.today {
        let reason = format!(
            "Up to date: {} on {}{value}; next due by {} (repeat {repeat}).",
            opt.name,
            words::date(e.date),
            words::date(until)
        );
        gap(
            rule,
            GapStatus::Closed,
            Some(until),
            last_done,
            reason,
            evidence,
        )
    } else {
        let reason = format!(
            "Due: last {} was {} ({}){value}; repeat {repeat}.",
            opt.name,
            words::ago(e.date, ctx.today),
            words::date(e.date)
        );
        gap(
            rule,
            GapStatus::Open,
            Some(until),
            last_done,
            reason,
            evidence,
        )
    }
}

fn options_words(options: &[Satisfier]) -> String {
    let items: Vec<String> = options
        .iter()
        .filter_map(|o| {
            let every = o.every?.every();
            Some(match o.age_at_event {
                Some((lo, _)) if lo > 0 => format!("{} {every} from age {lo}", o.name),
                _ => format!("{} {every}", o.name),
            })
        })
        .collect();
    words::or_list(&items)
}

fn event_words(e: &Event<'_>) -> String {
    match e.quantity {
        Some(q) => format!(
            "{} on {}",
            words::amount(q.value, q.unit),
            words::date(e.date)
        ),
        None => words::date(e.date),
    }
}

/// The first day of the season `today` falls in.
pub(crate) fn season_start(today: Date, (month, day): (Month, u8)) -> Date {
    let on = |year: i32| {
        let d = day.min(month.length(year));
        Date::from_calendar_date(year, month, d).unwrap_or(today)
    };
    let this_year = on(today.year());
    if this_year <= today {
        this_year
    } else {
        on(today.year() - 1)
    }
}

/// The day a season starting on `start` wants its dose by.
pub(crate) fn season_due(start: Date, (month, day): (Month, u8)) -> Date {
    let on = |year: i32| {
        let d = day.min(month.length(year));
        Date::from_calendar_date(year, month, d).unwrap_or(start)
    };
    let same = on(start.year());
    if same >= start {
        same
    } else {
        on(start.year() + 1)
    }
}

fn seasonal(
    ctx: &Ctx<'_, '_>,
    rule: &Rule,
    season: Season,
    options: &[Satisfier],
    mut evidence: Vec<Input>,
) -> Gap {
    let start = season_start(ctx.today, season.starts);
    let due = season_due(start, season.due_by);
    let all = options
        .iter()
        .flat_map(|o| ctx.index.events(o.group).iter().map(move |e| (o, e)));
    let last = all.max_by_key(|(_, e)| e.date);
    let name = options.first().map_or("dose", |o| o.name.as_str());
    if let Some((o, e)) = last {
        evidence.push(Input {
            name: format!("Last {}", o.name),
            value: words::date(e.date),
            source: Some(reference_of(e.resource)),
        });
    }
    let last_done = last.map(|(_, e)| (e.date, reference_of(e.resource)));
    match last {
        Some((o, e)) if e.date >= start => {
            let next = season_due(add_months(start, 12), season.due_by);
            let reason = format!(
                "Up to date: {} on {}, this season (since {}); next one due by {}.",
                o.name,
                words::date(e.date),
                words::date(start),
                words::date(next)
            );
            gap(
                rule,
                GapStatus::Closed,
                Some(next),
                last_done,
                reason,
                evidence,
            )
        }
        _ => {
            let before = last.map_or(String::new(), |(_, e)| {
                format!("; last one {}", words::date(e.date))
            });
            let reason = if ctx.today <= due {
                format!(
                    "Due by {}: no {name} yet this season (since {}{before}); one every season.",
                    words::date(due),
                    words::date(start)
                )
            } else {
                format!(
                    "Due: no {name} this season (since {}{before}); it was due by {}.",
                    words::date(start),
                    words::date(due)
                )
            };
            gap(
                rule,
                GapStatus::Open,
                Some(due),
                last_done,
                reason,
                evidence,
            )
        }
    }
}

fn treatment(ctx: &Ctx<'_, '_>, rule: &Rule, options: &[Satisfier], found: Found) -> Gap {
    let mut evidence = found.evidence;
    let events = || {
        options
            .iter()
            .flat_map(|o| ctx.index.events(o.group).iter())
    };
    let active = latest(events().filter(|e| e.active));
    let last = latest(events());
    let what = |e: &Event<'_>| {
        words::concept(e.resource, "medicationCodeableConcept")
            .unwrap_or_else(|| options.first().map_or(String::new(), |o| o.name.clone()))
    };
    if let Some(e) = last {
        evidence.push(Input {
            name: format!(
                "Last {}",
                options.first().map_or("prescription", |o| &o.name)
            ),
            value: format!(
                "{}, {} ({})",
                what(e),
                words::date(e.date),
                e.resource
                    .get("status")
                    .and_then(|s| s.as_str())
                    .unwrap_or("unknown status")
            ),
            source: Some(reference_of(e.resource)),
        });
    }
    if let Some(e) = active {
        let reason = format!(
            "Up to date: {} prescribed {} is active.",
            what(e),
            words::date(e.date)
        );
        let done = Some((e.date, reference_of(e.resource)));
        return gap(rule, GapStatus::Closed, None, done, reason, evidence);
    }
    let mut because = Vec::new();
    if let Some(req) = &rule.risk {
        if let Some(r) = ctx.risk.iter().find(|r| r.id == req.id) {
            because.push(format!(
                "a {} of {}% ({}% or more)",
                req.name,
                words::number(r.value_percent),
                words::number(req.at_least_percent)
            ));
        }
    }
    because.extend(found.factors.iter().cloned());
    let because = match because.as_slice() {
        [] => String::new(),
        [one] => format!("with {one}, "),
        [init @ .., last] => format!("with {} and {last}, ", init.join(", ")),
    };
    let stopped = last.map_or(String::new(), |e| {
        format!(
            " (last prescribed {}, no longer active)",
            words::date(e.date)
        )
    });
    let name = options.first().map_or("treatment", |o| o.name.as_str());
    let reason = format!("Due: {because}a {name} is recommended; none is active{stopped}.");
    let done = last.map(|e| (e.date, reference_of(e.resource)));
    gap(rule, GapStatus::Open, None, done, reason, evidence)
}

fn follow_up(
    ctx: &Ctx<'_, '_>,
    rule: &Rule,
    f: &FollowUp,
    mut evidence: Vec<Input>,
) -> Option<Gap> {
    // Readings by day, in one pass: per measure, the sum and count of that day's values in
    // the measure's unit, and the first resource read that day.
    let n = f.measures.len();
    let mut days: BTreeMap<Date, (Vec<f64>, Vec<u32>, &serde_json::Value)> = BTreeMap::new();
    for (i, m) in f.measures.iter().enumerate() {
        for e in ctx.index.events(m.group) {
            let Some(q) = e
                .quantity
                .filter(|q| unit_matches(m.unit.as_deref(), q.unit))
            else {
                continue;
            };
            let day = days
                .entry(e.date)
                .or_insert_with(|| (vec![0.0; n], vec![0; n], e.resource));
            day.0[i] += q.value;
            day.1[i] += 1;
        }
    }
    let mean = |(sums, counts, _): &(Vec<f64>, Vec<u32>, &serde_json::Value)| -> Vec<Option<f64>> {
        sums.iter()
            .zip(counts)
            .map(|(s, &c)| (c > 0).then(|| s / f64::from(c)))
            .collect()
    };
    let tier_of = |values: &[Option<f64>]| {
        f.tiers.iter().find(|t| {
            let above = t
                .at_least
                .iter()
                .any(|&(i, v)| values.get(i).copied().flatten().is_some_and(|x| x >= v));
            let risk_ok = t.risk.as_ref().is_none_or(|req| {
                ctx.risk
                    .iter()
                    .any(|r| r.id == req.id && r.value_percent >= req.at_least_percent)
            });
            above && risk_ok
        })
    };
    let reading_words = |values: &[Option<f64>]| -> String {
        let parts: Vec<String> = values
            .iter()
            .map(|v| v.map_or("?".into(), words::number))
            .collect();
        let unit = words::unit(f.measures.first().and_then(|m| m.unit.as_deref()));
        format!("{} {unit}", parts.join("/")).trim_end().to_owned()
    };
    let (&last_day, last) = days.iter().next_back()?;
    let values = mean(last);
    let source = reference_of(last.2);
    evidence.push(Input {
        name: format!("Last {}", f.reading),
        value: format!("{} on {}", reading_words(&values), words::date(last_day)),
        source: Some(source.clone()),
    });
    if let Some(t) = tier_of(&values) {
        let due = t.within.after(last_day);
        let reason = format!(
            "{}: {} was {} on {} ({}); recheck within {}.",
            if due > ctx.today {
                format!("Due by {}", words::date(due))
            } else {
                "Due".to_owned()
            },
            f.reading,
            reading_words(&values),
            words::date(last_day),
            t.name,
            t.within.words()
        );
        return Some(gap(
            rule,
            GapStatus::Open,
            Some(due),
            Some((last_day, source)),
            reason,
            evidence,
        ));
    }
    // Not raised now: closed if it follows a raised reading, else nothing to follow up.
    let (day, earlier, t) = days.iter().rev().skip(1).find_map(|(&d, readings)| {
        let values = mean(readings);
        tier_of(&values).map(|t| (d, values, t))
    })?;
    let reason = format!(
        "Followed up: {} was {} on {}, after {} on {} ({}).",
        f.reading,
        reading_words(&values),
        words::date(last_day),
        reading_words(&earlier),
        words::date(day),
        t.name
    );
    Some(gap(
        rule,
        GapStatus::Closed,
        None,
        Some((last_day, source)),
        reason,
        evidence,
    ))
}

fn dose_series(ctx: &Ctx<'_, '_>, rule: &Rule, s: &Series, evidence: &[Input]) -> Option<Gap> {
    let birth = ctx.record.birth_date()?;
    let age = words::whole_months(birth, ctx.today);
    if s.until_months.is_some_and(|u| age >= u) {
        return None;
    }
    let mut doses: Vec<&Event<'_>> = ctx.index.events(s.group).iter().collect();
    doses.sort_by_key(|e| e.date);
    // Two records of the same series on one day are one dose.
    doses.dedup_by_key(|e| e.date);
    let required: Vec<_> = s
        .doses
        .iter()
        .filter(|d| {
            let skip = !d.not_needed_if_all_doses_are.is_empty()
                && !doses.is_empty()
                && doses
                    .iter()
                    .all(|e| concept_in(e.resource, "vaccineCode", &d.not_needed_if_all_doses_are));
            !skip
        })
        .collect();
    let mut evidence = evidence.to_vec();
    for (i, e) in doses.iter().enumerate() {
        evidence.push(Input {
            name: format!("{} dose {}", s.name, i + 1),
            value: words::date(e.date),
            source: Some(reference_of(e.resource)),
        });
    }
    let given = doses.len();
    let total = required.len();
    let last_done = doses.last().map(|e| (e.date, reference_of(e.resource)));
    let g = |status, due, reason| Gap {
        rule: format!("{}/{}", rule.id, s.id),
        title: format!("{}: {}", rule.title, s.name),
        status,
        due,
        last_done: last_done.clone(),
        reason,
        evidence: evidence.clone(),
        citation: rule.citation.clone(),
    };
    let Some(next) = required.get(given) else {
        let reason = format!("Complete: {given} of {total} {} doses on record.", s.name);
        return Some(g(GapStatus::Closed, None, reason));
    };
    let due = add_months(birth, next.due_months);
    let recorded = match given {
        0 => "none on record".to_owned(),
        1 => "1 dose on record".to_owned(),
        n => format!("{n} doses on record"),
    };
    if age >= next.due_months {
        let reason = format!(
            "Due: {} dose {} of {total} was due {} ({}); {recorded}.",
            s.name,
            given + 1,
            age_words(next.due_months),
            words::date(due)
        );
        Some(g(GapStatus::Open, Some(due), reason))
    } else {
        let reason = if given == 0 {
            format!(
                "Not yet due: {} dose 1 of {total} is due {} ({}).",
                s.name,
                age_words(next.due_months),
                words::date(due)
            )
        } else {
            format!(
                "Up to date: {given} of {total} {} doses on record; dose {} is due {} ({}).",
                s.name,
                given + 1,
                age_words(next.due_months),
                words::date(due)
            )
        };
        Some(g(GapStatus::Closed, Some(due), reason))
    }
}

/// `at birth`, `by age 2 months`, `by age 6 years`.
fn age_words(months: u32) -> String {
    if months == 0 {
        "at birth".to_owned()
    } else if months >= 24 && months.is_multiple_of(12) {
        format!("by age {} years", months / 12)
    } else if months == 1 {
        "by age 1 month".to_owned()
    } else {
        format!("by age {months} months")
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

/// `Colorectal cancer screening` → `colorectal cancer screening`; `HbA1c` stays.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match (c.next(), c.next()) {
        (Some(a), Some(b)) if b.is_lowercase() => {
            a.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s.to_owned(),
    }
}
