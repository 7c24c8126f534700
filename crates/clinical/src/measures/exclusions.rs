//! Denominator exclusions the four measures share, as the 2024 libraries define them
//! (`Hospice` 6.12, `PalliativeCare` 1.11, `AdvancedIllnessandFrailty` 1.16):
//!
//! - **Hospice** any part of the period: an inpatient encounter ending in the period with
//!   a hospice discharge disposition; a hospice encounter, or an ambulatory hospice
//!   procedure, overlapping the period; a hospice order authored in it; the MDS hospice
//!   assessment answered Yes. *Not implemented*: the Hospice Diagnosis value set (its
//!   members could not be checked).
//! - **Palliative care** any part of the period: the FACIT-Pal assessment, a palliative
//!   care encounter or intervention. *Not implemented*: Palliative Care Diagnosis.
//! - **Frailty** any part of the period: a frailty device ordered in it, or recorded as
//!   "Medical equipment used"; a frailty diagnosis overlapping it. *Not implemented*:
//!   Frailty Encounter and Frailty Symptom.
//! - **Advanced illness** in the period or the year before. *Simplified*: the spec asks
//!   for two outpatient encounters (or one inpatient encounter) with an advanced illness
//!   diagnosis; we count an Advanced Illness condition whose prevalence overlaps that
//!   window, whatever encounters record it. A dementia medication ordered in the window
//!   (or still active) also counts, as in the spec (whose medication period we reduce to
//!   the order's `authoredOn`).
//! - **Long-term nursing home**: the latest Housing status assessment on or before the
//!   period's end is "Lives in a nursing home".
//!
//! The frailty and nursing home exclusions apply from age 66 at the period's end.

use super::events::{self, Period};
use super::value_sets as vs;
use crate::record::Record;
use crate::Input;

/// How a measure combines age, frailty and advanced illness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrailtyRule {
    /// 66 or older, frail, with advanced illness (CMS122, CMS125, CMS130).
    From66WithAdvancedIllness,
    /// 66 to 80, frail, with advanced illness; or 81 or older and frail (CMS165).
    AdvancedIllnessTo80FrailtyFrom81,
}

/// The exclusions every measure has: hospice, advanced illness and frailty, long-term
/// nursing home, palliative care. Pushes the evidence of the first that holds.
pub fn shared(
    record: &Record,
    period: Period,
    age: i32,
    rule: FrailtyRule,
    evidence: &mut Vec<Input>,
) -> bool {
    if let Some(found) = hospice(record, period) {
        evidence.push(found);
        return true;
    }
    if let Some(found) = advanced_illness_and_frailty(record, period, age, rule) {
        evidence.extend(found);
        return true;
    }
    if age >= 66 {
        if let Some(found) = nursing_home(record, period) {
            evidence.push(found);
            return true;
        }
    }
    if let Some(found) = palliative_care(record, period) {
        evidence.push(found);
        return true;
    }
    false
}

/// Library Hospice, "Has Hospice Services".
pub fn hospice(record: &Record, (start, end): Period) -> Option<Input> {
    const NAME: &str = "Hospice care in the measurement period";
    let discharged = events::encounters(record, &[&vs::ENCOUNTER_INPATIENT])
        .into_iter()
        .find(|e| {
            e.ends_within(start, end)
                && vs::HOSPICE_DISCHARGE
                    .find(
                        e.resource
                            .get("hospitalization")
                            .and_then(|h| h.get("dischargeDisposition")),
                    )
                    .is_some()
        });
    if let Some(e) = discharged {
        return Some(e.input("Discharged to hospice care"));
    }
    let overlapping = |found: Vec<events::Event<'_>>| {
        found
            .into_iter()
            .find(|e| e.overlaps(start, end))
            .map(|e| e.input(NAME))
    };
    overlapping(events::encounters(record, &[&vs::HOSPICE_ENCOUNTER]))
        .or_else(|| {
            events::observations(record, &vs::HOSPICE_CARE_MDS)
                .into_iter()
                .find(|e| {
                    e.overlaps(start, end)
                        && vs::YES
                            .find(e.resource.get("valueCodeableConcept"))
                            .is_some()
                })
                .map(|e| e.input(NAME))
        })
        .or_else(|| {
            events::orders(
                record,
                "ServiceRequest",
                "code",
                &vs::HOSPICE_CARE_AMBULATORY,
            )
            .into_iter()
            .find(|e| e.within(start, end))
            .map(|e| e.input("Hospice care ordered in the measurement period"))
        })
        .or_else(|| overlapping(events::procedures(record, &vs::HOSPICE_CARE_AMBULATORY)))
}

/// Library PalliativeCare, "Has Palliative Care in the Measurement Period".
pub fn palliative_care(record: &Record, (start, end): Period) -> Option<Input> {
    const NAME: &str = "Palliative care in the measurement period";
    let first = |found: Vec<events::Event<'_>>| {
        found
            .into_iter()
            .find(|e| e.overlaps(start, end))
            .map(|e| e.input(NAME))
    };
    first(events::observations(record, &vs::FACIT_PAL))
        .or_else(|| {
            first(events::encounters(
                record,
                &[&vs::PALLIATIVE_CARE_ENCOUNTER],
            ))
        })
        .or_else(|| {
            first(events::procedures(
                record,
                &vs::PALLIATIVE_CARE_INTERVENTION,
            ))
        })
}

/// Library AdvancedIllnessandFrailty, "Has Criteria Indicating Frailty".
pub fn frailty(record: &Record, (start, end): Period) -> Option<Input> {
    const NAME: &str = "Frailty in the measurement period";
    if let Some(e) = events::orders(
        record,
        "DeviceRequest",
        "codeCodeableConcept",
        &vs::FRAILTY_DEVICE,
    )
    .into_iter()
    .find(|e| e.within(start, end))
    {
        return Some(e.input("Frailty device ordered in the measurement period"));
    }
    if let Some(e) = events::observations(record, &vs::MEDICAL_EQUIPMENT_USED)
        .into_iter()
        .find(|e| {
            e.ends_within(start, end)
                && vs::FRAILTY_DEVICE
                    .find(e.resource.get("valueCodeableConcept"))
                    .is_some()
        })
    {
        return Some(e.input("Frailty device in use"));
    }
    events::conditions(record, &vs::FRAILTY_DIAGNOSIS)
        .into_iter()
        .find(|e| e.overlaps(start, end))
        .map(|e| e.input(NAME))
}

/// Advanced illness or dementia medication in the period or the year before it.
pub fn advanced_illness(record: &Record, (start, end): Period) -> Option<Input> {
    let from = events::years_before(start, 1);
    if let Some(e) = events::conditions(record, &vs::ADVANCED_ILLNESS)
        .into_iter()
        .find(|e| e.overlaps(from, end))
    {
        return Some(e.input("Advanced illness in the period or the year before"));
    }
    events::orders(
        record,
        "MedicationRequest",
        "medicationCodeableConcept",
        &vs::DEMENTIA_MEDICATIONS,
    )
    .into_iter()
    .find(|e| {
        e.start <= end
            && (e.start >= from
                || e.resource.get("status").and_then(|s| s.as_str()) == Some("active"))
    })
    .map(|e| e.input("Dementia medication in the period or the year before"))
}

/// The advanced illness and frailty exclusion under `rule`, with its evidence.
pub fn advanced_illness_and_frailty(
    record: &Record,
    period: Period,
    age: i32,
    rule: FrailtyRule,
) -> Option<Vec<Input>> {
    if age < 66 {
        return None;
    }
    let frail = frailty(record, period)?;
    if rule == FrailtyRule::AdvancedIllnessTo80FrailtyFrom81 && age >= 81 {
        return Some(vec![frail]);
    }
    let ill = advanced_illness(record, period)?;
    Some(vec![frail, ill])
}

/// Library AdvancedIllnessandFrailty, "Living Long Term in a Nursing Home" (without the
/// age test, which the caller makes).
pub fn nursing_home(record: &Record, (_, end): Period) -> Option<Input> {
    let latest = events::observations(record, &vs::HOUSING_STATUS)
        .into_iter()
        .filter(|e| e.end <= end)
        .max_by_key(|e| (e.end, latest_instant(e.resource)))?;
    vs::LIVES_IN_NURSING_HOME
        .find(latest.resource.get("valueCodeableConcept"))
        .map(|_| latest.input("Latest housing status: lives in a nursing home"))
}

/// The raw effective timestamp, to order two events of the same day as the data does.
pub fn latest_instant(r: &serde_json::Value) -> &str {
    ["effectiveDateTime", "effectiveInstant"]
        .iter()
        .find_map(|f| r.get(*f).and_then(|v| v.as_str()))
        .or_else(|| {
            r.get("effectivePeriod")
                .and_then(|p| p.get("end").or_else(|| p.get("start")))
                .and_then(|v| v.as_str())
        })
        .unwrap_or_default()
}
