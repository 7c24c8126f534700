//! Quality measures over the record: `oxehr-clinical`'s eCQMs (CMS122, CMS165, CMS125,
//! CMS130) evaluated for one patient or for the population the caller looks after, over
//! a measurement period.
//!
//! - **Who is in the population.** A system administrator's (or backend service's)
//!   population is every patient; a staff member's is their organization's care (the
//!   same rule that decides which charts they may open); patients and the people who act
//!   for them may evaluate only a patient they may read, one at a time.
//! - **Audit.** An individual report is a read of that patient's record; a population
//!   report records, per patient, that the measure looked at their record (the
//!   subject lists name them).
//! - **Cost.** Each patient's record is read once, only the types the measures read
//!   ([`oxehr_clinical::MEASURE_READS`]), on two threads; [`MAX_SYNC_PATIENTS`] bounds what
//!   one request may evaluate without being a background job (the API's concern).

use std::sync::atomic::{AtomicUsize, Ordering};

use oxehr_auth::Caller;
use oxehr_clinical::measures::{self, Counts, MeasureId, Membership};
use oxehr_clinical::Record;
use oxehr_fhir::{IssueCode, ResourceId, ResourceType};
use serde_json::Value;
use time::Date;

use crate::{Records, RecordsError};

/// The largest population evaluated within one request; larger ones run as background
/// jobs.
pub const MAX_SYNC_PATIENTS: usize = 1_000;
/// The most resources of one patient's record a measure reads.
const MAX_RECORD: usize = 20_000;
/// The largest population one evaluation covers.
pub const MAX_POPULATION: usize = 200_000;

/// One patient's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectResult {
    pub patient: String,
    pub membership: Membership,
}

/// A measure's result over a population.
#[derive(Debug, Clone, PartialEq)]
pub struct PopulationResult {
    pub measure: MeasureId,
    pub period: (Date, Date),
    pub counts: Counts,
    pub score: Option<f64>,
    /// Every patient evaluated, in id order, with where they fell.
    pub subjects: Vec<SubjectResult>,
}

/// Looks a measure up by its CMS id (`CMS122`, case-insensitive, with or without a
/// version suffix such as `CMS122v12`).
pub fn measure_by_id(id: &str) -> Option<MeasureId> {
    let base = id
        .to_ascii_uppercase()
        .split('V')
        .next()
        .unwrap_or_default()
        .to_owned();
    MeasureId::all().into_iter().find(|m| m.id() == base)
}

fn types() -> Vec<ResourceType> {
    oxehr_clinical::MEASURE_READS
        .iter()
        .filter_map(|t| ResourceType::parse(t))
        .collect()
}

impl Records {
    /// One patient's membership in `measure` over `period`, as `who` may see their
    /// record (the read is audited as any read of the Patient).
    pub fn evaluate_measure_for(
        &self,
        who: &Caller,
        measure: MeasureId,
        period: (Date, Date),
        patient: &ResourceId,
    ) -> Result<SubjectResult, RecordsError> {
        let patient_type = ResourceType::parse("Patient")
            .ok_or_else(|| RecordsError::Internal("Patient type".into()))?;
        self.read(who, &patient_type, patient)?;
        let (resources, _) = self.compartment_resources(who, patient, types(), MAX_RECORD)?;
        Ok(SubjectResult {
            patient: patient.as_str().to_owned(),
            membership: evaluate_loaded(measure, patient.as_str(), &resources, period),
        })
    }

    /// The patients `who`'s population holds (see the module doc), in id order.
    pub fn measure_population(&self, who: &Caller) -> Result<Vec<String>, RecordsError> {
        let org = self.population_org(
            who,
            "population measures are for a practice's staff; ask for one patient with subject",
        )?;
        let mut out = Vec::new();
        loop {
            let page = {
                let mut reader = self.reader()?;
                oxehr_store::clinical::patients(
                    &mut *reader,
                    org.as_deref(),
                    out.last().map(String::as_str),
                    5_000,
                )?
            };
            let done = page.len() < 5_000;
            out.extend(page);
            if out.len() > MAX_POPULATION {
                return Err(RecordsError::invalid(
                    IssueCode::TooCostly,
                    format!("the population holds more than {MAX_POPULATION} patients"),
                ));
            }
            if done {
                return self.population_visible(who, out);
            }
        }
    }

    /// `measure` over `period` for `patients` (from [`Records::measure_population`]),
    /// counting each population and keeping who fell where. `progress` is told how many
    /// patients are done. Audited per patient.
    pub fn evaluate_measure_population(
        &self,
        who: &Caller,
        measure: MeasureId,
        period: (Date, Date),
        patients: &[String],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<PopulationResult, RecordsError> {
        let server = Caller::server();
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let work = || -> Result<Vec<SubjectResult>, RecordsError> {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = patients.get(i) else {
                    return Ok(out);
                };
                let id = ResourceId::parse(p)
                    .ok_or_else(|| RecordsError::Internal("patient id".into()))?;
                // The population was taken under `who`'s access rule; the records are
                // read as the server so that each statement need not check it again.
                let (resources, _) =
                    self.compartment_resources(&server, &id, types(), MAX_RECORD)?;
                out.push(SubjectResult {
                    patient: p.clone(),
                    membership: evaluate_loaded(measure, p, &resources, period),
                });
                progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            }
        };
        let mut subjects = std::thread::scope(|s| {
            let a = s.spawn(work);
            let b = work();
            let a = a
                .join()
                .unwrap_or_else(|_| Err(RecordsError::Internal("measure worker failed".into())));
            let mut all = a?;
            all.extend(b?);
            Ok::<_, RecordsError>(all)
        })?;
        subjects.sort_by(|x, y| x.patient.cmp(&y.patient));
        let counts: Counts = subjects.iter().map(|s| &s.membership).collect();
        let audit = crate::audit::per_patient(
            who,
            "evaluate-measure",
            "success",
            Some(format!("Measure/{}", measure.id())),
            subjects.iter().map(|s| s.patient.clone()).collect(),
        );
        self.auditor.record(audit)?;
        Ok(PopulationResult {
            measure,
            period,
            score: measures::score(&counts),
            counts,
            subjects,
        })
    }
}

fn evaluate_loaded(
    measure: MeasureId,
    patient: &str,
    resources: &[Value],
    period: (Date, Date),
) -> Membership {
    let empty = Value::Null;
    let p = resources
        .iter()
        .find(|r| r["resourceType"] == "Patient" && r["id"] == patient)
        .unwrap_or(&empty);
    measures::evaluate(measure, &Record::new(p, resources), period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_are_found_by_cms_id() {
        assert_eq!(measure_by_id("CMS122"), Some(MeasureId::Cms122));
        assert_eq!(measure_by_id("cms130v12"), Some(MeasureId::Cms130));
        assert_eq!(measure_by_id("CMS999"), None);
        assert_eq!(measure_by_id(""), None);
    }
}
