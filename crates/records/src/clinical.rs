//! Care gaps and risk scores, current on every read.
//!
//! The rules and equations are `oxehr-clinical`'s (pure); this module feeds them a
//! patient's record and keeps what they find in the store's `clinical_finding` table, so
//! that a worklist over a population is an index walk.
//!
//! **Always current, without a nightly batch.** Every write of a type the rules read
//! ([`oxehr_clinical::READS`]) marks the patients of its compartment in the write's own
//! transaction (`oxehr_store::clinical::mark`: one row, well under a millisecond). Before
//! anything is read about a patient — `$care-gaps`, a chart, a worklist row — a patient
//! marked since the findings were worked out, or worked out before today (gaps fall due
//! with time), is worked out again from the record as it stands. So the response to the
//! request after the write that closes a gap shows it closed, on both backends; the work
//! is done once per change, by whoever reads first (or by the server's background
//! refresher, [`Records::refresh_stale`]).
//!
//! **Risk scores are records.** A score that can be computed is stored as an Observation
//! (through the one write path, as the server) whose `derivedFrom` lists its inputs, when
//! its value or inputs differ from the newest one stored; a score that lacks an input says
//! which, and stores nothing.
//!
//! **Access.** Findings are worked out from the whole record by the server and shown to
//! whoever may read the Patient. The one exception is a proxy kept from some of the
//! record (confidential entries of a restricted patient): their findings are worked out
//! from what they may see, and not kept.

use oxehr_auth::Caller;
pub use oxehr_clinical::Input;
use oxehr_clinical::{gaps, risk, Record};
use oxehr_fhir::{ResourceId, ResourceType};
use oxehr_store::access::Access;
use oxehr_store::clinical::{self as store_clinical, FindingRow};
use oxehr_store::{Method, NewVersion, StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::Date;

use crate::{Records, RecordsError};

/// Most resources read to work out one patient's findings. A record beyond it is cut
/// (newest kept by the search order), and the findings say so.
const MAX_RECORD: usize = 20_000;

/// Most stale patients a worklist request works out before answering; beyond it the
/// answer says how many are still being worked out.
pub const MAX_REFRESH_PER_REQUEST: usize = 2_000;

/// The patients whose findings a batch of versions can change: the compartments the
/// versions enter and, for updates and deletes, the ones they leave.
pub(crate) fn touched_patients(
    tx: &mut dyn Tx,
    versions: &[NewVersion],
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for v in versions {
        let r = &v.resource;
        if !oxehr_clinical::READS.contains(&r.rtype.as_str()) {
            continue;
        }
        out.extend(v.compartments.iter().map(|p| p.as_str().to_owned()));
        if r.rtype.as_str() == "Patient" {
            out.push(r.id.as_str().to_owned());
        }
        if r.method != Method::Create {
            out.extend(
                tx.compartments(&r.rtype, &r.id)?
                    .into_iter()
                    .map(|p| p.as_str().to_owned()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// One care gap, as records hands it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CareGap {
    /// The rule's id (`colorectal-cancer-screening`).
    pub rule: String,
    /// Plain words: "Colorectal cancer screening".
    pub title: String,
    /// `open` (due or overdue), `closed` (met until `due`) or `undetermined` (the record
    /// cannot settle it; `reason` says what is missing).
    pub status: String,
    /// The day it falls or fell due, `YYYY-MM-DD`.
    pub due: Option<String>,
    /// When it was last done, `YYYY-MM-DD`, and the resource that shows it.
    pub last_done: Option<String>,
    pub last_done_source: Option<String>,
    /// Plain words a patient could read.
    pub reason: String,
    /// What the decision used.
    pub evidence: Vec<Input>,
    /// The guideline.
    pub citation: String,
}

/// A score's outcome, as records hands it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskScore {
    /// The score's id (`ascvd-10y`).
    pub id: String,
    /// Plain words: "10-year risk of heart disease or stroke".
    pub title: String,
    /// `computed`, `missing` (an input) or `not-applicable`.
    pub status: String,
    pub value: Option<f64>,
    /// As a person reads it: "5.3%".
    pub display: Option<String>,
    pub interpretation: Option<String>,
    /// The inputs it lacks, in plain words (status `missing`), or why it does not apply.
    pub missing: Vec<String>,
    pub reason: Option<String>,
    pub inputs: Vec<Input>,
    pub equation: Option<String>,
    pub citation: Option<String>,
    /// The stored Observation that holds it (`Observation/…`).
    pub observation: Option<String>,
}

/// A patient's findings on one day.
#[derive(Debug, Clone, PartialEq)]
pub struct Findings {
    pub patient: String,
    /// The Patient resource as read for this request.
    pub patient_resource: Value,
    pub today: Date,
    pub gaps: Vec<CareGap>,
    pub scores: Vec<RiskScore>,
    /// True when the record was larger than the findings read.
    pub record_cut: bool,
}

/// One row of a worklist.
#[derive(Debug, Clone, PartialEq)]
pub struct WorklistRow {
    pub patient: String,
    pub gap: CareGap,
}

/// A page of a worklist.
#[derive(Debug, Clone, PartialEq)]
pub struct Worklist {
    pub rows: Vec<WorklistRow>,
    /// The cursor of the next page.
    pub next: Option<String>,
    /// Patients of the population whose findings were still being worked out when the
    /// page was read (0 unless more than [`MAX_REFRESH_PER_REQUEST`] were stale).
    pub pending: usize,
}

/// The rule set, parsed once. The rules are embedded and a test parses them; should
/// they ever fail to parse, no gaps are worked out and the error is logged.
fn rules() -> Option<&'static gaps::RuleSet> {
    static RULES: std::sync::OnceLock<Option<gaps::RuleSet>> = std::sync::OnceLock::new();
    RULES
        .get_or_init(|| match gaps::RuleSet::builtin() {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "the built-in care-gap rules do not parse");
                None
            }
        })
        .as_ref()
}

/// Every rule's id and title, for a worklist's choices.
pub fn rule_titles() -> Vec<(String, String)> {
    rules()
        .map(|r| {
            r.rules()
                .iter()
                .map(|r| (r.id().to_owned(), r.title().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// A date as FHIR writes it, `YYYY-MM-DD`.
pub fn format_day(d: Date) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    d.format(&f).unwrap_or_default()
}

/// Works the findings out from a record (pure).
fn evaluate(patient: &Value, resources: &[Value], today: Date) -> (Vec<CareGap>, Vec<Scored>) {
    let record = Record::new(patient, resources);
    let outcomes = risk::all(&record, today);
    let risk_inputs: Vec<gaps::RiskInput<'_>> = outcomes
        .iter()
        .filter_map(|o| match o {
            risk::Outcome::Computed(s) => Some(gaps::RiskInput {
                id: s.kind.id(),
                value_percent: s.value,
                source: s.derived_from.first().cloned(),
            }),
            _ => None,
        })
        .collect();
    let found = match rules() {
        Some(r) => gaps::evaluate(r, &record, today, &risk_inputs),
        None => Vec::new(),
    };
    let gaps = found.iter().map(gap_view).collect();
    let scores = outcomes.into_iter().map(Scored::from).collect();
    (gaps, scores)
}

fn gap_view(g: &gaps::Gap) -> CareGap {
    CareGap {
        rule: g.rule.clone(),
        title: g.title.clone(),
        status: match g.status {
            gaps::GapStatus::Open => "open",
            gaps::GapStatus::Closed => "closed",
            gaps::GapStatus::Undetermined => "undetermined",
        }
        .to_owned(),
        due: g.due.map(format_day),
        last_done: g.last_done.as_ref().map(|(d, _)| format_day(*d)),
        last_done_source: g.last_done.as_ref().map(|(_, s)| s.clone()),
        reason: g.reason.clone(),
        evidence: g.evidence.clone(),
        citation: g.citation.clone(),
    }
}

/// A score's outcome with, when computed, the Observation that would store it.
struct Scored {
    view: RiskScore,
    score: Option<risk::Score>,
}

impl RiskScore {
    /// A score's outcome with nothing worked out yet: its name and status.
    fn named(kind: risk::ScoreKind, status: &str) -> RiskScore {
        RiskScore {
            id: kind.id().to_owned(),
            title: kind.title().to_owned(),
            status: status.to_owned(),
            value: None,
            display: None,
            interpretation: None,
            missing: Vec::new(),
            reason: None,
            inputs: Vec::new(),
            equation: None,
            citation: None,
            observation: None,
        }
    }
}

impl From<risk::Outcome> for Scored {
    fn from(o: risk::Outcome) -> Self {
        match o {
            risk::Outcome::Computed(s) => Scored {
                view: RiskScore {
                    value: Some(s.value),
                    display: Some(s.display.clone()),
                    interpretation: s.interpretation.clone(),
                    inputs: s.inputs.clone(),
                    equation: Some(s.equation.to_owned()),
                    citation: Some(s.citation.to_owned()),
                    ..RiskScore::named(s.kind, "computed")
                },
                score: Some(s),
            },
            risk::Outcome::Missing { score, missing } => Scored {
                view: RiskScore {
                    missing,
                    ..RiskScore::named(score, "missing")
                },
                score: None,
            },
            risk::Outcome::NotApplicable { score, reason } => Scored {
                view: RiskScore {
                    reason: Some(reason),
                    ..RiskScore::named(score, "not-applicable")
                },
                score: None,
            },
        }
    }
}

/// The stored Observation that already holds a computed score, if any: the newest one
/// with the score's code, when it has the same value and either names the same inputs
/// (ours, from before) or names none and was taken on or after the newest input (the
/// source recorded the number itself, as Synthea records BMI): then nothing new is
/// stored.
fn stored_score(
    resources: &[Value],
    candidate: &Value,
    newest_input: Option<&str>,
) -> Option<String> {
    let code = candidate.pointer("/code/coding/0/code")?;
    let newest = resources
        .iter()
        .filter(|r| r["resourceType"] == "Observation")
        .filter(|r| r["status"] != "entered-in-error")
        .filter(|r| {
            r["code"]["coding"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["code"] == *code))
        })
        .max_by_key(|r| {
            (
                r["effectiveDateTime"]
                    .as_str()
                    .unwrap_or_default()
                    .get(..10)
                    .map(str::to_owned),
                r.pointer("/meta/lastUpdated")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        })?;
    let value = |r: &Value| r.pointer("/valueQuantity/value").and_then(Value::as_f64);
    let same_value = match (value(newest), value(candidate)) {
        (Some(a), Some(b)) => (a - b).abs() < 0.051,
        _ => false,
    };
    let ours = newest.get("derivedFrom") == candidate.get("derivedFrom");
    let theirs = newest.get("derivedFrom").is_none()
        && match (newest["effectiveDateTime"].as_str(), newest_input) {
            (Some(taken), Some(input)) => taken.get(..10) >= input.get(..10),
            _ => false,
        };
    (same_value && (ours || theirs))
        .then(|| format!("Observation/{}", newest["id"].as_str().unwrap_or_default()))
}

/// The date of the newest input a score names (`YYYY-MM-DD`), from the record.
fn newest_input_date(resources: &[Value], candidate: &Value) -> Option<String> {
    let refs: Vec<&str> = candidate["derivedFrom"]
        .as_array()?
        .iter()
        .filter_map(|r| r["reference"].as_str())
        .collect();
    resources
        .iter()
        .filter(|r| {
            refs.iter().any(|x| {
                x.split_once('/')
                    .is_some_and(|(t, id)| r["resourceType"] == t && r["id"] == id)
            })
        })
        .filter_map(oxehr_clinical::record::effective_date)
        .max()
        .map(format_day)
}

impl Records {
    /// The patient's care gaps and risk scores as of `today`, current with every write
    /// before this call. Under the access policy: `who` must be able to read the Patient
    /// (the read is audited like any other).
    pub fn findings(
        &self,
        who: &Caller,
        patient: &ResourceId,
        today: Date,
    ) -> Result<Findings, RecordsError> {
        let patient_type = ResourceType::parse("Patient")
            .ok_or_else(|| RecordsError::Internal("Patient type".into()))?;
        // The access check and the audit record of this look at the record.
        let stored = self.read(who, &patient_type, patient)?;
        let patient_resource = crate::interactions::parse_body(&stored)?;
        let restricted = {
            let mut reader = self.reader()?;
            match self.access(who, &mut *reader)? {
                Access::Proxy { restricted, .. } => {
                    restricted.iter().any(|p| p == patient.as_str())
                }
                _ => false,
            }
        };
        if restricted {
            // Only what this proxy may see, worked out now and not kept.
            let (resources, cut) =
                self.compartment_resources(who, patient, read_types(), MAX_RECORD)?;
            return Ok(from_resources(patient_resource, &resources, today, cut));
        }
        self.refresh(patient.as_str(), today, true)?;
        let mut reader = self.reader()?;
        let rows = store_clinical::findings(&mut *reader, patient.as_str())?;
        Ok(from_rows(patient_resource, today, &rows))
    }

    /// Works out one patient's findings again if a write marked them since, or they were
    /// worked out before `today`, and stores them. With `store_scores` (a person is about
    /// to see them), each computed score not yet in the record is stored as an
    /// Observation first; the background refresher leaves that to the first reader, so
    /// that it never adds to a record nobody looks at. Returns whether anything was
    /// worked out.
    pub fn refresh(
        &self,
        patient: &str,
        today: Date,
        store_scores: bool,
    ) -> Result<bool, RecordsError> {
        let server = Caller::server();
        let today_s = format_day(today);
        // Twice at most: a stored score marks the patient, and the second pass finds the
        // scores already stored.
        for _ in 0..3 {
            let state = {
                let mut reader = self.reader()?;
                store_clinical::state(&mut *reader, patient)?
            };
            let generation = match &state {
                Some(s) if s.current && s.computed_on.as_deref() == Some(today_s.as_str()) => {
                    if !store_scores || self.scores_stored(patient)? {
                        return Ok(false);
                    }
                    s.generation
                }
                Some(s) => s.generation,
                None => 0,
            };
            let id = ResourceId::parse(patient)
                .ok_or_else(|| RecordsError::Internal("patient id".into()))?;
            // Read after the generation: a write in between is in the record, and the
            // store below then refuses the rows as stale (the next read works them out).
            let (resources, cut) =
                self.compartment_resources(&server, &id, read_types(), MAX_RECORD)?;
            let Some(patient_resource) = resources
                .iter()
                .find(|r| r["resourceType"] == "Patient" && r["id"] == patient)
                .cloned()
            else {
                // No such patient (deleted): nothing to show.
                let written = self.store_rows(patient, generation, &today_s, Vec::new())?;
                return Ok(written);
            };
            let (gaps, mut scores) = evaluate(&patient_resource, &resources, today);
            let mut wrote = false;
            for s in &mut scores {
                let Some(score) = &s.score else { continue };
                let obs = risk::to_observation(score, &format!("Patient/{patient}"), today);
                let newest = newest_input_date(&resources, &obs);
                match stored_score(&resources, &obs, newest.as_deref()) {
                    Some(existing) => s.view.observation = Some(existing),
                    None if !store_scores => {}
                    None => {
                        let observation = ResourceType::parse("Observation")
                            .ok_or_else(|| RecordsError::Internal("Observation type".into()))?;
                        self.create(&server, &observation, obs, None)?;
                        wrote = true;
                    }
                }
            }
            if wrote {
                continue;
            }
            let mut rows: Vec<FindingRow> = gaps
                .iter()
                .map(|g| FindingRow {
                    patient: patient.to_owned(),
                    kind: format!("gap/{}", g.rule),
                    status: g.status.clone(),
                    due: g.due.clone(),
                    detail: serde_json::to_string(g).unwrap_or_default(),
                })
                .collect();
            rows.extend(scores.iter().map(|s| FindingRow {
                patient: patient.to_owned(),
                kind: format!("score/{}", s.view.id),
                status: s.view.status.clone(),
                due: None,
                detail: serde_json::to_string(&s.view).unwrap_or_default(),
            }));
            if cut {
                tracing::warn!(
                    patient_resources = MAX_RECORD,
                    "a record was cut for its findings"
                );
            }
            if self.store_rows(patient, generation, &today_s, rows)? {
                return Ok(true);
            }
        }
        // Written to all along: the next read works them out again.
        Ok(true)
    }

    /// Whether every computed score in the patient's stored findings names its
    /// Observation.
    fn scores_stored(&self, patient: &str) -> Result<bool, RecordsError> {
        let mut reader = self.reader()?;
        let rows = store_clinical::findings(&mut *reader, patient)?;
        Ok(rows
            .iter()
            .filter(|r| r.kind.starts_with("score/") && r.status == "computed")
            .all(|r| {
                serde_json::from_str::<RiskScore>(&r.detail).is_ok_and(|s| s.observation.is_some())
            }))
    }

    fn store_rows(
        &self,
        patient: &str,
        generation: i64,
        today: &str,
        rows: Vec<FindingRow>,
    ) -> Result<bool, RecordsError> {
        let (patient, today) = (patient.to_owned(), today.to_owned());
        let out = self.store().write(Box::new(move |tx| {
            let stored = store_clinical::store(tx, &patient, generation, &today, &rows)?;
            Ok(Box::new(stored))
        }))?;
        Ok(out.downcast::<bool>().map(|b| *b).unwrap_or(false))
    }

    /// Works out the findings of up to `limit` patients of `org`'s care (None: every
    /// patient) that are stale on `today`. Returns how many were worked out and whether
    /// more remain.
    pub fn refresh_stale(
        &self,
        org: Option<&str>,
        today: Date,
        limit: usize,
    ) -> Result<(usize, bool), RecordsError> {
        let stale = {
            let mut reader = self.reader()?;
            store_clinical::stale(&mut *reader, org, &format_day(today), limit + 1)?
        };
        let more = stale.len() > limit;
        let mut done = 0;
        for p in stale.into_iter().take(limit) {
            self.refresh(&p, today, false)?;
            done += 1;
        }
        Ok((done, more))
    }

    /// One page of the worklist of `rule`: the patients `who` looks after (their
    /// organization's care; everyone for system administrators) whose gap is in `status`
    /// (`open`: due or overdue), earliest due first, at most `limit`, after `cursor`.
    /// Patients and people who act for them get 403: a worklist is a practice's tool.
    pub fn worklist(
        &self,
        who: &Caller,
        rule: &str,
        status: &str,
        cursor: Option<&str>,
        limit: usize,
        today: Date,
    ) -> Result<Worklist, RecordsError> {
        if !rule_titles().iter().any(|(id, _)| id == rule) {
            return Err(RecordsError::invalid(
                oxehr_fhir::IssueCode::Value,
                format!("no care-gap rule is named {rule:?}"),
            ));
        }
        if !matches!(status, "open" | "closed") {
            return Err(RecordsError::invalid(
                oxehr_fhir::IssueCode::Value,
                "status must be open or closed",
            ));
        }
        let org = self.population_org(who, "worklists are for a practice's staff")?;
        let (_, more) = self.refresh_stale(org.as_deref(), today, MAX_REFRESH_PER_REQUEST)?;
        let pending = if more {
            let mut reader = self.reader()?;
            store_clinical::stale(&mut *reader, org.as_deref(), &format_day(today), usize::MAX)?
                .len()
        } else {
            0
        };
        let after = cursor.and_then(|c| {
            let mut parts = c.splitn(3, '|');
            Some((parts.next()?, parts.next()?, parts.next()?))
        });
        let limit = limit.clamp(1, 500);
        let mut rows = {
            let mut reader = self.reader()?;
            store_clinical::worklist(
                &mut *reader,
                &format!("gap/{rule}"),
                status,
                org.as_deref(),
                after,
                limit + 1,
            )?
        };
        let next = (rows.len() > limit).then(|| {
            rows.truncate(limit);
            rows.last()
                .map(|r| {
                    format!(
                        "{}|{}|{}",
                        r.due.as_deref().unwrap_or_default(),
                        r.patient,
                        r.kind
                    )
                })
                .unwrap_or_default()
        });
        let shown =
            self.population_visible(who, rows.iter().map(|r| r.patient.clone()).collect())?;
        let rows = rows
            .into_iter()
            .filter(|r| shown.contains(&r.patient))
            .filter_map(|r| {
                let gap: CareGap = serde_json::from_str(&r.detail).ok()?;
                Some(WorklistRow {
                    patient: r.patient,
                    gap,
                })
            })
            .collect();
        let mut record = crate::audit::record(who, "worklist", "success", None, None);
        record.detail = Some(format!("care gaps {rule} {status}"));
        self.auditor.record(vec![record])?;
        Ok(Worklist {
            rows,
            next,
            pending,
        })
    }
}

impl Records {
    /// Of `patients` (from the organization's care table), those `who` sees: Consents
    /// that name the user rather than the organization, or that hold for a period only,
    /// are not in that table. Unchanged when there are none (the usual case).
    pub(crate) fn population_visible(
        &self,
        who: &Caller,
        patients: Vec<String>,
    ) -> Result<Vec<String>, RecordsError> {
        let mut reader = self.reader()?;
        let access = self.access(who, &mut *reader)?;
        match &access {
            Access::Staff { rules, .. } if rules.consents => {
                let mut shown = Vec::with_capacity(patients.len());
                for chunk in patients.chunks(500) {
                    shown.extend(access.visible_patients(&mut *reader, chunk)?);
                }
                // In the order given (visible_patients sorts each chunk).
                let keep: std::collections::HashSet<String> = shown.into_iter().collect();
                Ok(patients.into_iter().filter(|p| keep.contains(p)).collect())
            }
            _ => Ok(patients),
        }
    }

    /// Whose patients a population tool (worklist, measure) covers for `who`: `None`
    /// for everyone (system administrators, backend services), their organization's
    /// care for staff; patients and the people who act for them are refused with
    /// `refusal`.
    pub(crate) fn population_org(
        &self,
        who: &Caller,
        refusal: &str,
    ) -> Result<Option<String>, RecordsError> {
        let mut reader = self.reader()?;
        match self.access(who, &mut *reader)? {
            Access::All => Ok(None),
            Access::Staff { org, .. } => Ok(Some(org)),
            Access::Patients(_) | Access::Proxy { .. } => {
                Err(RecordsError::Forbidden(refusal.to_owned()))
            }
        }
    }
}

fn read_types() -> Vec<ResourceType> {
    oxehr_clinical::READS
        .iter()
        .filter_map(|t| ResourceType::parse(t))
        .collect()
}

fn from_resources(patient: Value, resources: &[Value], today: Date, cut: bool) -> Findings {
    let (gaps, scores) = evaluate(&patient, resources, today);
    Findings {
        patient: patient["id"].as_str().unwrap_or_default().to_owned(),
        patient_resource: patient,
        today,
        gaps,
        scores: scores.into_iter().map(|s| s.view).collect(),
        record_cut: cut,
    }
}

fn from_rows(patient: Value, today: Date, rows: &[FindingRow]) -> Findings {
    let mut gaps = Vec::new();
    let mut scores = Vec::new();
    for r in rows {
        if r.kind.starts_with("gap/") {
            if let Ok(g) = serde_json::from_str::<CareGap>(&r.detail) {
                gaps.push(g);
            }
        } else if r.kind.starts_with("score/") {
            if let Ok(s) = serde_json::from_str::<RiskScore>(&r.detail) {
                scores.push(s);
            }
        }
    }
    Findings {
        patient: patient["id"].as_str().unwrap_or_default().to_owned(),
        patient_resource: patient,
        today,
        gaps,
        scores,
        record_cut: false,
    }
}

impl Records {
    /// Starts the background refresher: a thread that works out the findings of stale
    /// patients (marked by a write, or worked out before today) a batch at a time, so
    /// that reads seldom have to. Reads stay correct without it; it only moves the work
    /// off them. Errors are logged (no patient data) and retried on the next round.
    pub fn start_findings_refresher(&self) {
        const BATCH: usize = 50;
        let records = self.clone();
        let spawned = std::thread::Builder::new()
            .name("oxehr-findings".into())
            .spawn(move || loop {
                let today = time::OffsetDateTime::now_utc().date();
                let pause = match records.refresh_stale(None, today, BATCH) {
                    Ok((_, true)) => std::time::Duration::from_millis(200),
                    Ok((_, false)) => std::time::Duration::from_secs(5),
                    Err(e) => {
                        tracing::warn!(category = ?e.category(), "care-gap refresh failed; retrying");
                        std::time::Duration::from_secs(30)
                    }
                };
                std::thread::sleep(pause);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "the care-gap refresher could not start; reads work gaps out themselves");
        }
    }
}

impl Records {
    /// The Patients with these ids that `who` may see, in one search (audited as any
    /// search: one record per patient shown), for a list's names.
    pub fn patients_named(
        &self,
        who: &Caller,
        ids: &[String],
    ) -> Result<Vec<oxehr_store::StoredResource>, RecordsError> {
        let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let q = crate::query::parse(
            &["Patient".to_owned()],
            &[
                ("_id".to_owned(), ids.join(",")),
                ("_count".to_owned(), ids.len().to_string()),
                ("_total".to_owned(), "none".to_owned()),
            ],
            false,
            None,
        )?;
        Ok(self.search(who, &q, ids.len())?.matches)
    }
}

impl Records {
    /// For the home page: each rule with how many of `who`'s patients are due for it
    /// (their organization's care; everyone for administrators), after working out the
    /// stale ones (as [`Records::worklist`] does). Patients and people who act for them
    /// get 403.
    pub fn worklist_summary(
        &self,
        who: &Caller,
        today: Date,
    ) -> Result<Vec<(String, String, i64)>, RecordsError> {
        let org = self.population_org(who, "worklists are for a practice's staff")?;
        self.refresh_stale(org.as_deref(), today, MAX_REFRESH_PER_REQUEST)?;
        let mut reader = self.reader()?;
        rule_titles()
            .into_iter()
            .map(|(id, title)| {
                let n =
                    store_clinical::open_count(&mut *reader, org.as_deref(), &format!("gap/{id}"))?;
                Ok((id, title, n))
            })
            .collect()
    }
}
