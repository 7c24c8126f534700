//! A record's resources as the measure logic reads them: each one that carries a code of
//! a value set becomes an [`Event`], a closed interval of dates, following the QI-Core
//! 2024 libraries (`QICoreCommon.toInterval`, `prevalenceInterval`, `Status`):
//!
//! - Encounter: status `finished`; `period.start` to `period.end` (a missing end counts
//!   as the start day).
//! - Condition: the prevalence period, onset (or `recordedDate`) to abatement; with no
//!   abatement an active condition stays open, while one whose clinical status is
//!   inactive/resolved/remission counts on its onset day only (it ended, but we do not
//!   know when). Verification status refuted or entered-in-error drops it.
//! - Procedure: status `completed`; `performedDateTime`, or `performedPeriod`.
//! - Observation: status final, amended or corrected; `effective[x]`.
//! - DiagnosticReport: status final, amended, corrected or appended; `effective[x]`.
//! - ServiceRequest, DeviceRequest, MedicationRequest: status active or completed, not
//!   `doNotPerform`; the day of `authoredOn`.
//!
//! Dates are calendar days, as the measures compare ("during day of").

use serde_json::Value;
use time::{Date, Month};

use super::value_sets::{Member, ValueSet};
use crate::record::{date_of, reference_of, Record};
use crate::Input;

/// A measurement period: first and last day, both included.
pub type Period = (Date, Date);

/// One coded resource and the days it covers.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub resource: &'a Value,
    pub start: Date,
    /// `Date::MAX` while open (an active condition).
    pub end: Date,
    pub member: Member<'a>,
}

impl<'a> Event<'a> {
    /// Some day of the event falls in `from..=to`.
    pub fn overlaps(&self, from: Date, to: Date) -> bool {
        self.start <= to && self.end >= from
    }

    /// The event ends in `from..=to` (an open event never ends).
    pub fn ends_within(&self, from: Date, to: Date) -> bool {
        self.end >= from && self.end <= to
    }

    /// The whole event lies in `from..=to`.
    pub fn within(&self, from: Date, to: Date) -> bool {
        self.start >= from && self.end <= to
    }

    /// The event as evidence: `Colonoscopy (73761001) on 2015-03-02`, from `Procedure/…`.
    pub fn input(&self, name: &str) -> Input {
        let label = self.member.label();
        let value = if self.end == Date::MAX {
            format!("{label}, since {}", self.start)
        } else if self.start == self.end {
            format!("{label} on {}", self.start)
        } else {
            format!("{label}, {} to {}", self.start, self.end)
        };
        Input {
            name: name.to_string(),
            value,
            source: Some(reference_of(self.resource)),
        }
    }
}

fn status(r: &Value) -> Option<&str> {
    r.get("status").and_then(Value::as_str)
}

/// The code of the first coding of a CodeableConcept field (`clinicalStatus`).
fn first_code<'v>(r: &'v Value, field: &str) -> Option<&'v str> {
    r.get(field)?
        .get("coding")?
        .as_array()?
        .first()?
        .get("code")?
        .as_str()
}

/// Encounter classes of an ambulatory visit, required of encounters that qualify only
/// through a local (non-VSAC) code, since Synthea uses some of those codes for emergency
/// and inpatient encounters too.
const AMBULATORY_CLASSES: [&str; 3] = ["AMB", "VR", "HH"];

/// Finished encounters whose type is in any of `sets`, oldest first.
pub fn encounters<'a>(record: &Record<'a>, sets: &[&ValueSet]) -> Vec<Event<'a>> {
    let mut out: Vec<_> = record
        .of_type("Encounter")
        .filter(|e| status(e) == Some("finished"))
        .filter_map(|e| {
            let member = e
                .get("type")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find_map(|t| sets.iter().find_map(|vs| vs.find(Some(t))))?;
            if member.local {
                let class = e.get("class").and_then(|c| c.get("code"));
                if !class
                    .and_then(Value::as_str)
                    .is_some_and(|c| AMBULATORY_CLASSES.contains(&c))
                {
                    return None;
                }
            }
            let start = date_of(e, &["period.start"])?;
            let end = date_of(e, &["period.end"]).unwrap_or(start);
            Some(Event {
                resource: e,
                start,
                end: end.max(start),
                member,
            })
        })
        .collect();
    out.sort_by_key(|e| e.start);
    out
}

/// Conditions in `set` with their prevalence periods, oldest first.
pub fn conditions<'a>(record: &Record<'a>, set: &ValueSet) -> Vec<Event<'a>> {
    let mut out: Vec<_> = record
        .of_type("Condition")
        .filter(|c| {
            !matches!(
                first_code(c, "verificationStatus"),
                Some("refuted" | "entered-in-error")
            )
        })
        .filter_map(|c| {
            let member = set.find(c.get("code"))?;
            let start = date_of(c, &["onsetDateTime", "onsetPeriod.start", "recordedDate"])?;
            let end = match date_of(c, &["abatementDateTime", "abatementPeriod.end"]) {
                Some(d) => d.max(start),
                None => match first_code(c, "clinicalStatus") {
                    Some("inactive" | "resolved" | "remission") => start,
                    _ => Date::MAX,
                },
            };
            Some(Event {
                resource: c,
                start,
                end,
                member,
            })
        })
        .collect();
    out.sort_by_key(|e| e.start);
    out
}

/// Completed procedures in `set`, oldest first.
pub fn procedures<'a>(record: &Record<'a>, set: &ValueSet) -> Vec<Event<'a>> {
    coded(record, "Procedure", set, |p| {
        if status(p) != Some("completed") {
            return None;
        }
        let start = date_of(p, &["performedDateTime", "performedPeriod.start"])?;
        let end = date_of(p, &["performedPeriod.end"]).unwrap_or(start);
        Some((start, end))
    })
}

/// Observations in `set` with a final (amended, corrected) status, oldest first.
pub fn observations<'a>(record: &Record<'a>, set: &ValueSet) -> Vec<Event<'a>> {
    coded(record, "Observation", set, |o| {
        matches!(status(o), Some("final" | "amended" | "corrected"))
            .then(|| effective(o))
            .flatten()
    })
}

/// Diagnostic reports in `set` with a final (amended, corrected, appended) status.
pub fn reports<'a>(record: &Record<'a>, set: &ValueSet) -> Vec<Event<'a>> {
    coded(record, "DiagnosticReport", set, |r| {
        matches!(
            status(r),
            Some("final" | "amended" | "corrected" | "appended")
        )
        .then(|| effective(r))
        .flatten()
    })
}

/// Orders (`ServiceRequest`, `DeviceRequest`, `MedicationRequest`) in `set`, read from
/// `code_field`, that are active or completed and not `doNotPerform`, on their
/// `authoredOn` day.
pub fn orders<'a>(
    record: &Record<'a>,
    resource_type: &'static str,
    code_field: &'static str,
    set: &ValueSet,
) -> Vec<Event<'a>> {
    let mut out: Vec<_> = record
        .of_type(resource_type)
        .filter(|r| matches!(status(r), Some("active" | "completed")))
        .filter(|r| r.get("doNotPerform").and_then(Value::as_bool) != Some(true))
        .filter_map(|r| {
            let member = set.find(r.get(code_field))?;
            let day = date_of(r, &["authoredOn"])?;
            Some(Event {
                resource: r,
                start: day,
                end: day,
                member,
            })
        })
        .collect();
    out.sort_by_key(|e| e.start);
    out
}

fn coded<'a>(
    record: &Record<'a>,
    resource_type: &'static str,
    set: &ValueSet,
    dates: impl Fn(&'a Value) -> Option<(Date, Date)>,
) -> Vec<Event<'a>> {
    let mut out: Vec<_> = record
        .of_type(resource_type)
        .filter_map(|r| {
            let member = set.find(r.get("code"))?;
            let (start, end) = dates(r)?;
            Some(Event {
                resource: r,
                start,
                end: end.max(start),
                member,
            })
        })
        .collect();
    out.sort_by_key(|e| e.start);
    out
}

/// `effective[x]` as days: a dateTime or instant is one day, a Period its two ends.
pub fn effective(r: &Value) -> Option<(Date, Date)> {
    if let Some(d) = date_of(r, &["effectiveDateTime", "effectiveInstant"]) {
        return Some((d, d));
    }
    let start = date_of(r, &["effectivePeriod.start"]);
    let end = date_of(r, &["effectivePeriod.end"]);
    match (start, end) {
        (Some(s), Some(e)) => Some((s, e.max(s))),
        (Some(d), None) | (None, Some(d)) => Some((d, d)),
        (None, None) => None,
    }
}

/// Whether an Observation carries a result (`value[x]`).
pub fn has_value(o: &Value) -> bool {
    o.as_object()
        .is_some_and(|m| m.keys().any(|k| k.starts_with("value")))
}

/// The id of the Encounter a resource's `encounter` reference points at (`Encounter/id`
/// or a bundle's `urn:uuid:id`).
pub fn encounter_id(r: &Value) -> Option<&str> {
    let reference = r.get("encounter")?.get("reference")?.as_str()?;
    Some(
        reference
            .rsplit_once('/')
            .or_else(|| reference.rsplit_once(':'))
            .map_or(reference, |(_, id)| id),
    )
}

/// The same day `n` years earlier (29 February becomes the 28th).
pub fn years_before(d: Date, n: i32) -> Date {
    let year = d.year() - n;
    Date::from_calendar_date(year, d.month(), d.day())
        .or_else(|_| Date::from_calendar_date(year, d.month(), d.day() - 1))
        .unwrap_or(d)
}

/// The same day `n` months later, clamped to the month's last day.
pub fn months_after(d: Date, n: u8) -> Date {
    let total = d.month() as i32 - 1 + i32::from(n);
    let year = d.year() + total / 12;
    let month = Month::try_from((total % 12 + 1) as u8).unwrap_or(Month::December);
    let last = month.length(year);
    Date::from_calendar_date(year, month, d.day().min(last)).unwrap_or(d)
}

/// `1 October` of the year `n` years before `d`'s year.
pub fn october_first(d: Date, n: i32) -> Date {
    Date::from_calendar_date(d.year() - n, Month::October, 1).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn date_arithmetic_handles_leap_days_and_month_ends() {
        assert_eq!(
            years_before(date!(2024 - 02 - 29), 1),
            date!(2023 - 02 - 28)
        );
        assert_eq!(
            years_before(date!(2019 - 01 - 01), 9),
            date!(2010 - 01 - 01)
        );
        assert_eq!(
            months_after(date!(2019 - 01 - 01), 6),
            date!(2019 - 07 - 01)
        );
        assert_eq!(
            months_after(date!(2019 - 08 - 31), 6),
            date!(2020 - 02 - 29)
        );
        assert_eq!(
            october_first(date!(2019 - 01 - 01), 2),
            date!(2017 - 10 - 01)
        );
    }
}
