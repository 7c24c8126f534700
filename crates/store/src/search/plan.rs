//! Which condition drives a statement, and whether its plan may be shared: estimates
//! of selectivity by the kind of test, without statistics of our own.

use oxehr_search::query::{Condition, Filter, Prefix, Query, UriTest, ValueTest};

/// How a condition can narrow the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DriveBy {
    /// A list of resource keys (`alias.rid IN (…)`).
    Rid,
    /// A list of ids of the alias's type (`alias.id IN (…)`).
    Id,
}

/// The filter that drives the statement: the most selective one that can.
pub(super) fn driver(filters: &[Filter]) -> Option<usize> {
    filters
        .iter()
        .enumerate()
        .filter_map(|(i, f)| selectivity(f).map(|s| (i, s)))
        .max_by_key(|(_, s)| *s)
        .map(|(i, _)| i)
}

/// The driving filter when it drives by resource key (each of its conditions a list of
/// `rid`s): the one whose keys a page may read a window of, or count for an estimate.
pub(super) fn rid_driver(filters: &[Filter]) -> Option<usize> {
    driver(filters).filter(|&i| {
        filters[i]
            .any_of
            .iter()
            .all(|c| drive_kind(c) == DriveBy::Rid)
    })
}

/// Whether the best plan of `q`'s statements is the same whatever its values, so that
/// a backend may plan it once ([`ReadTx::query_shared_plan`]): it is driven by one id,
/// one reference (a patient's records: `patient=`, `subject=`) or one patient's
/// compartment, a handful of rows to start from whichever they are. A search driven by
/// a code or a date is not: one code is on every patient, another on none.
pub fn plan_is_shared(q: &Query) -> bool {
    driver(&q.filters).is_some_and(|i| match q.filters[i].any_of.as_slice() {
        [c] => matches!(
            c,
            Condition::Id(_)
                | Condition::InPatientCompartment(_)
                | Condition::Value {
                    test: ValueTest::Reference { .. },
                    ..
                }
        ),
        _ => false,
    })
}

/// How selective a filter is likely to be, higher is fewer rows; `None` when it cannot
/// drive (negated, `:missing=true`, `_lastUpdated`). Without statistics of our own, by
/// the kind of test: an id or a reference to one resource is a handful of rows, a code
/// a few thousand, a date range a large share of the type. Even the least selective
/// filter drives when it is the only one: the total needs every match anyway, and an
/// index range read once costs less than a probe of every resource of the type.
pub(super) fn selectivity(f: &Filter) -> Option<u32> {
    if f.negated || f.any_of.is_empty() {
        return None;
    }
    let kind = drive_kind(&f.any_of[0]);
    let mut worst = u32::MAX;
    for c in &f.any_of {
        if drive_kind(c) != kind {
            return None;
        }
        worst = worst.min(condition_selectivity(c)?);
    }
    Some(if f.any_of.len() > 1 {
        worst.saturating_sub(5)
    } else {
        worst
    })
}

pub(super) fn condition_selectivity(c: &Condition) -> Option<u32> {
    Some(match c {
        Condition::Id(_) => 100,
        Condition::InList(_) => 85,
        Condition::InPatientCompartment(_) => 88,
        Condition::Value { test, .. } => match test {
            ValueTest::Reference { .. } => 90,
            ValueTest::ReferenceUrl { .. } | ValueTest::OfType { .. } => 80,
            ValueTest::ReferenceIdentifier { value: Some(_), .. } => 75,
            ValueTest::Token { code: Some(_), .. } | ValueTest::StringExact(_) => 70,
            ValueTest::Uri(UriTest::Equals(_) | UriTest::Above(_)) => 70,
            ValueTest::Composite { code1: Some(_), .. } => 65,
            ValueTest::StringStartsWith(s) => 45 + s.chars().count().min(10) as u32,
            ValueTest::Uri(UriTest::Below(_)) => 40,
            ValueTest::Date(d) if d.prefix == Prefix::Eq && d.high - d.low < 86_400_000_000 => 40,
            ValueTest::TokenText(_) => 30,
            _ => 20,
        },
        Condition::Chain { target_types, .. } => {
            let inner = target_types
                .iter()
                .map(|c| selectivity(&c.filter))
                .collect::<Option<Vec<u32>>>()?;
            inner.into_iter().min()?.saturating_sub(5)
        }
        Condition::Has { filter, .. } => selectivity(filter)?.saturating_sub(10),
        Condition::Missing { missing: false, .. } => 5,
        Condition::Missing { missing: true, .. }
        | Condition::LastUpdated(_)
        | Condition::All(_) => return None,
    })
}

pub(super) fn drive_kind(c: &Condition) -> DriveBy {
    match c {
        Condition::Id(_) | Condition::InList(_) | Condition::Has { .. } => DriveBy::Id,
        _ => DriveBy::Rid,
    }
}
