//! Searches within one patient's record: FHIR's compartment search
//! (`Patient/[id]/[type]`) and `Patient/[id]/$everything`.
//!
//! Which types belong to a patient's record is the Patient CompartmentDefinition's
//! answer (from the definitions, as data), with one exception of ours: the audit trail
//! (AuditEvent, a member in R4) is not part of the record `$everything` returns; it is
//! searched on its own (`crate::audit_view`). The search itself is an ordinary
//! [`Records::search`] of those types with one more condition, membership of the
//! patient's compartment, so the access policy, paging, includes and audit records are
//! the same as for any search.

use oxehr_auth::Caller;
use oxehr_fhir::{Definitions, IssueCode, ResourceId, ResourceType};
use oxehr_search::query::{Condition, Filter, Query};

use crate::{audit_view, query, Records, RecordsError, SearchPage};

/// Which resources of a patient's compartment a search reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompartmentScope {
    /// One type, which must be a member of the Patient compartment (the compartment
    /// search `Patient/[id]/[type]`).
    Type(ResourceType),
    /// `$everything`: the listed types (its `_type`), each the Patient itself or a member
    /// of the compartment other than AuditEvent; none listed: all of those.
    Everything(Vec<ResourceType>),
}

/// A search of one patient's compartment, parsed and checked by
/// [`CompartmentSearch::parse`] (the only way to make one), run by
/// [`Records::search_compartment`].
#[derive(Debug, Clone)]
pub struct CompartmentSearch {
    query: Query,
}

/// The member types of the Patient compartment, as the definitions list them.
fn is_member(rtype: &str) -> bool {
    Definitions::r4()
        .compartment("Patient")
        .is_some_and(|c| c.contains_key(rtype))
}

fn not_a_member(rtype: &str) -> RecordsError {
    RecordsError::invalid(
        IssueCode::Invalid,
        format!("{rtype} is not in the Patient compartment"),
    )
}

/// The types `$everything` reads: `listed` (each checked), or every member of the
/// compartment but the audit trail, and the Patient; sorted, without repeats.
fn everything_types(listed: &[ResourceType]) -> Result<Vec<String>, RecordsError> {
    // The audit trail is not part of the record.
    let members: Vec<String> = Definitions::r4()
        .compartment("Patient")
        .map(|c| {
            c.keys()
                .filter(|t| !audit_view::is_audit_event(t))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut types: Vec<String> = listed.iter().map(|t| t.as_str().to_owned()).collect();
    for t in &types {
        if t != "Patient" && !members.contains(t) {
            return Err(not_a_member(t));
        }
    }
    if types.is_empty() {
        types = members;
        types.push("Patient".into());
    }
    types.sort();
    types.dedup();
    Ok(types)
}

impl CompartmentSearch {
    /// The search of `scope` in `patient`'s compartment with the request's decoded
    /// parameters (`pairs`, as [`query::parse`] takes them; `_type` among them is
    /// ignored here: the caller passes its types in `scope`).
    ///
    /// Invalid (400) when a type is not in the compartment, or as the parameters are.
    pub fn parse(
        patient: &ResourceId,
        scope: &CompartmentScope,
        pairs: &[(String, String)],
        lenient: bool,
        base_url: Option<&str>,
    ) -> Result<CompartmentSearch, RecordsError> {
        let types = match scope {
            CompartmentScope::Type(rtype) => {
                if !is_member(rtype.as_str()) {
                    return Err(not_a_member(rtype.as_str()));
                }
                vec![rtype.as_str().to_owned()]
            }
            CompartmentScope::Everything(listed) => everything_types(listed)?,
        };
        let mut query = query::parse(&types, pairs, lenient, base_url)?;
        query.filters.push(Filter {
            negated: false,
            any_of: vec![Condition::InPatientCompartment(patient.as_str().to_owned())],
        });
        Ok(CompartmentSearch { query })
    }

    /// The query as parsed, with the compartment condition (its `count` is the page size
    /// the request asked for).
    pub fn query(&self) -> &Query {
        &self.query
    }
}

impl Records {
    /// One page of a search of a patient's compartment: at most `limit` matches (0: only
    /// the total). Like any [`Records::search`]: only what `who` may see, and audited.
    pub fn search_compartment(
        &self,
        who: &Caller,
        search: &CompartmentSearch,
        limit: usize,
    ) -> Result<SearchPage, RecordsError> {
        self.search(who, &search.query, limit)
    }

    /// The patient's record as `who` may see it, as `$everything` gives it: every
    /// resource of the compartment (the Patient first when visible), at most `max`; true
    /// when the record was cut there. For a whole-record document (a summary of care, a
    /// download); the FHIR API's `$everything` pages instead.
    pub fn patient_record(
        &self,
        who: &Caller,
        patient: &ResourceId,
        max: usize,
    ) -> Result<(Vec<serde_json::Value>, bool), RecordsError> {
        self.compartment_resources(who, patient, Vec::new(), max)
    }

    /// [`patient_record`](Self::patient_record), of the listed types only (none listed:
    /// all).
    pub(crate) fn compartment_resources(
        &self,
        who: &Caller,
        patient: &ResourceId,
        types: Vec<ResourceType>,
        max: usize,
    ) -> Result<(Vec<serde_json::Value>, bool), RecordsError> {
        const PAGE: usize = 1000;
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut pairs = vec![("_count".to_owned(), PAGE.to_string())];
            if let Some(t) = &page {
                pairs.push(("_page".to_owned(), t.clone()));
            }
            let search = CompartmentSearch::parse(
                patient,
                &CompartmentScope::Everything(types.clone()),
                &pairs,
                false,
                None,
            )?;
            let found = self.search_compartment(who, &search, PAGE)?;
            for m in &found.matches {
                if m.body.is_some() {
                    out.push(crate::interactions::parse_body(m)?);
                }
            }
            match found.next {
                Some(t) if out.len() < max => page = Some(t),
                Some(_) => return Ok((out, true)),
                None => return Ok((out, false)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The members of the Patient compartment in FHIR R4 (4.0.1): the resources of
    /// `CompartmentDefinition/patient` that list a `param`, copied from the spec.
    const R4_PATIENT_COMPARTMENT: [&str; 66] = [
        "Account",
        "AdverseEvent",
        "AllergyIntolerance",
        "Appointment",
        "AppointmentResponse",
        "AuditEvent",
        "Basic",
        "BodyStructure",
        "CarePlan",
        "CareTeam",
        "ChargeItem",
        "Claim",
        "ClaimResponse",
        "ClinicalImpression",
        "Communication",
        "CommunicationRequest",
        "Composition",
        "Condition",
        "Consent",
        "Coverage",
        "CoverageEligibilityRequest",
        "CoverageEligibilityResponse",
        "DetectedIssue",
        "DeviceRequest",
        "DeviceUseStatement",
        "DiagnosticReport",
        "DocumentManifest",
        "DocumentReference",
        "Encounter",
        "EnrollmentRequest",
        "EpisodeOfCare",
        "ExplanationOfBenefit",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "Group",
        "ImagingStudy",
        "Immunization",
        "ImmunizationEvaluation",
        "ImmunizationRecommendation",
        "Invoice",
        "List",
        "MeasureReport",
        "Media",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationRequest",
        "MedicationStatement",
        "MolecularSequence",
        "NutritionOrder",
        "Observation",
        "Patient",
        "Person",
        "Procedure",
        "Provenance",
        "QuestionnaireResponse",
        "RelatedPerson",
        "RequestGroup",
        "ResearchSubject",
        "RiskAssessment",
        "Schedule",
        "ServiceRequest",
        "Specimen",
        "SupplyDelivery",
        "SupplyRequest",
        "VisionPrescription",
    ];

    fn id(s: &str) -> ResourceId {
        ResourceId::parse(s).expect("id")
    }

    fn rt(s: &str) -> ResourceType {
        ResourceType::parse(s).expect("type")
    }

    fn parse(scope: CompartmentScope, pairs: &[(&str, &str)]) -> Result<Query, RecordsError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CompartmentSearch::parse(&id("p1"), &scope, &pairs, false, None).map(|s| s.query)
    }

    fn message(e: RecordsError) -> String {
        match e {
            RecordsError::Invalid(issues) => issues
                .iter()
                .map(|i| i.diagnostics.clone())
                .collect::<Vec<_>>()
                .join("; "),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn everything_reads_every_member_but_the_audit_trail() {
        let q = parse(CompartmentScope::Everything(vec![]), &[]).expect("query");
        // The spec's members and oxehr's one addition (Task, see
        // `oxehr_fhir::ADDED_TO_PATIENT_COMPARTMENT`), without the audit trail.
        let mut expected: Vec<&str> = R4_PATIENT_COMPARTMENT
            .iter()
            .copied()
            .chain(["Task"])
            .filter(|t| *t != "AuditEvent")
            .collect();
        expected.sort_unstable();
        assert_eq!(expected.len(), 66);
        assert_eq!(q.types, expected, "sorted, the Patient included once");
    }

    #[test]
    fn everything_with_type_reads_only_the_listed_types() {
        let cases: [(&[&str], &[&str]); 4] = [
            (&["Observation"], &["Observation"]),
            (&["Patient"], &["Patient"]),
            (
                &["Observation", "Condition", "Observation"],
                &["Condition", "Observation"],
            ),
            (&["Patient", "Encounter"], &["Encounter", "Patient"]),
        ];
        for (listed, expected) in cases {
            let scope = CompartmentScope::Everything(listed.iter().map(|t| rt(t)).collect());
            let q = parse(scope, &[]).expect("query");
            assert_eq!(q.types, expected, "{listed:?}");
        }
    }

    #[test]
    fn everything_refuses_types_outside_the_record() {
        // Not members of the Patient compartment in R4, and the audit trail.
        for t in ["Practitioner", "Organization", "Medication", "AuditEvent"] {
            let scope = CompartmentScope::Everything(vec![rt("Observation"), rt(t)]);
            let e = parse(scope, &[]).expect_err(t);
            assert_eq!(message(e), format!("{t} is not in the Patient compartment"));
        }
    }

    #[test]
    fn compartment_search_takes_members_only() {
        for t in R4_PATIENT_COMPARTMENT {
            let q = parse(CompartmentScope::Type(rt(t)), &[]).expect(t);
            assert_eq!(q.types, [t]);
        }
        for t in [
            "Practitioner",
            "Organization",
            "Medication",
            "Location",
            "Device",
        ] {
            let e = parse(CompartmentScope::Type(rt(t)), &[]).expect_err(t);
            assert_eq!(message(e), format!("{t} is not in the Patient compartment"));
        }
    }

    #[test]
    fn the_compartment_condition_is_added_to_the_request_s_own() {
        let q = parse(
            CompartmentScope::Type(rt("Observation")),
            &[("code", "http://loinc.org|8867-4"), ("_count", "5")],
        )
        .expect("query");
        assert_eq!(q.count, Some(5));
        assert_eq!(q.filters.len(), 2);
        assert_eq!(
            q.filters.last(),
            Some(&Filter {
                negated: false,
                any_of: vec![Condition::InPatientCompartment("p1".into())],
            })
        );
    }

    #[test]
    fn the_request_s_parameters_are_checked_after_the_types() {
        // A type outside the compartment is the answer even when a parameter is unknown.
        let e = parse(CompartmentScope::Type(rt("Practitioner")), &[("nope", "1")])
            .expect_err("refused");
        assert_eq!(message(e), "Practitioner is not in the Patient compartment");
        let e = parse(CompartmentScope::Type(rt("Observation")), &[("nope", "1")])
            .expect_err("refused");
        assert!(message(e).contains("nope"));
    }
}
