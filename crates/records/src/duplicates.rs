//! The review list of likely duplicate patients.
//!
//! When a record arrives for a patient the store did not know (an HL7 registration, an
//! imported document, a transferred record: the same person arriving from another
//! organization), the patients it may be — graded `possible` or better by
//! `oxehr-matching` — are listed (`oxehr_store::duplicates`) for a person to decide:
//! merge them ([`Records::merge_patients`]) or mark them two people. Listing happens
//! right after the arrival commits; a failure to list is logged and never fails the
//! arrival.

use oxehr_auth::{Caller, Role};
use oxehr_fhir::{IssueCode, ResourceId};
use oxehr_store::duplicates::{self, DuplicateRow};
use serde_json::json;

use crate::{EntryOutcome, Records, RecordsError};

/// The most candidates listed for one arrival.
const PER_ARRIVAL: usize = 5;

/// A person's decision on a listed pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// One person: the newer record is merged into the other.
    Merge,
    /// Two people: the pair leaves the list.
    Distinct,
}

impl Records {
    /// Lists the likely duplicates of every Patient `outcomes` created.
    pub(crate) fn note_duplicates(&self, outcomes: &[EntryOutcome]) {
        for o in outcomes {
            if let EntryOutcome::Created(r) = o {
                if r.rtype.as_str() == "Patient" {
                    if let Err(e) = self.note_duplicates_of(&r.id) {
                        tracing::warn!(error = %e, "likely duplicates could not be listed");
                    }
                }
            }
        }
    }

    fn note_duplicates_of(&self, id: &ResourceId) -> Result<(), RecordsError> {
        let patient = self.read(&Caller::server(), &crate::patients::patient_type()?, id)?;
        let body = crate::interactions::parse_body(&patient)?;
        if oxehr_matching::candidate_queries(&body).is_empty() {
            return Ok(());
        }
        let found = self.match_patients(&Caller::server(), &body, PER_ARRIVAL + 1, false)?;
        let rows: Vec<DuplicateRow> = found
            .into_iter()
            .filter(|m| m.patient.id != *id)
            .take(PER_ARRIVAL)
            .map(|m| DuplicateRow {
                id: uuid::Uuid::now_v7().to_string(),
                patient: id.as_str().to_owned(),
                other: m.patient.id.as_str().to_owned(),
                score: (m.result.score * 1e6).round() as i64,
                grade: m.result.grade.code().to_owned(),
                evidence: serde_json::to_string(
                    &m.result
                        .fields
                        .iter()
                        .map(|f| {
                            json!({ "field": f.field, "agreement": f.outcome.code(),
                                "weight": (f.weight * 100.0).round() / 100.0 })
                        })
                        .collect::<Vec<_>>(),
                )
                .unwrap_or_else(|_| "[]".into()),
                found: crate::time_fmt::now_micros(),
                state: "open".into(),
                decided_by: None,
                decided: None,
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.store
            .write(Box::new(move |tx| {
                for r in &rows {
                    duplicates::insert(tx, r)?;
                }
                Ok(Box::new(()))
            }))
            .map_err(RecordsError::from)?;
        Ok(())
    }

    /// The open pairs `who` may review, most likely first: those whose two patients
    /// `who` may both read. Staff and system administrators.
    pub fn duplicates(
        &self,
        who: &Caller,
        limit: usize,
    ) -> Result<Vec<DuplicateRow>, RecordsError> {
        crate::exchange::only_staff_or_admin(who, "the duplicates list is for a practice's staff")?;
        let rows = {
            let mut tx = self.reader()?;
            duplicates::in_state(&mut *tx, "open", limit.saturating_mul(4).max(limit))?
        };
        let mut out = Vec::new();
        for r in rows {
            if out.len() == limit {
                break;
            }
            if self.sees_both(who, &r)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Decides a listed pair as `who` (who must see both patients): merges it, or marks
    /// it two people.
    pub fn decide_duplicate(
        &self,
        who: &Caller,
        id: &str,
        decision: Decision,
    ) -> Result<(), RecordsError> {
        let row = {
            let mut tx = self.reader()?;
            duplicates::by_id(&mut *tx, id)?
        }
        .filter(|r| r.state == "open")
        .ok_or_else(|| RecordsError::NotFound(format!("no open pair {id}")))?;
        if !(who.uses_grants() || who.role == Role::SystemAdmin) || !self.sees_both(who, &row)? {
            return Err(RecordsError::NotFound(format!("no open pair {id}")));
        }
        if decision == Decision::Merge {
            let (source, target) = (
                ResourceId::parse(&row.patient),
                ResourceId::parse(&row.other),
            );
            let (Some(source), Some(target)) = (source, target) else {
                return Err(RecordsError::invalid(
                    IssueCode::Invalid,
                    "a listed pair's ids",
                ));
            };
            self.merge_patients(who, &source, &target)?;
        }
        let state = match decision {
            Decision::Merge => "merged",
            Decision::Distinct => "dismissed",
        };
        let (id, by, at) = (
            id.to_owned(),
            who.user.clone(),
            crate::time_fmt::now_micros(),
        );
        self.store
            .write(Box::new(move |tx| {
                duplicates::decide(tx, &id, state, &by, at)?;
                Ok(Box::new(()))
            }))
            .map_err(RecordsError::from)?;
        Ok(())
    }

    /// Whether `who` may read both patients of a pair (without auditing: the list shows
    /// names only after the page reads them, audited).
    fn sees_both(&self, who: &Caller, r: &DuplicateRow) -> Result<bool, RecordsError> {
        let q = crate::query::parse(
            &["Patient".to_owned()],
            &[("_id".to_owned(), format!("{},{}", r.patient, r.other))],
            false,
            None,
        )?;
        Ok(self.find(who, &q, 2)?.len() == 2)
    }
}
