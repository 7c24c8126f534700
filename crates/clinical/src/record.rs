//! A read-only view of one patient's record (the Patient and the resources of their
//! compartment) with the lookups rules and equations need: age and sex, the observations
//! of a code (top-level or as a component, as blood pressure panels carry them), active
//! conditions, completed immunizations and procedures, medications.
//!
//! Dates are calendar dates (`time::Date`): a FHIR `dateTime` is cut to its date, a
//! partial date (`2020-05`, `2020`) counts as its first day.

use serde_json::Value;
use time::{Date, Month};

/// A coded concept: system URI and code (`http://loinc.org`, `4548-4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code<'a> {
    pub system: &'a str,
    pub code: &'a str,
}

impl<'a> Code<'a> {
    pub const fn new(system: &'a str, code: &'a str) -> Code<'a> {
        Code { system, code }
    }
}

/// Well-known code systems.
pub mod systems {
    pub const LOINC: &str = "http://loinc.org";
    pub const SNOMED: &str = "http://snomed.info/sct";
    pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";
    pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
    pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
    pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
}

/// Something found in the record, with the date it applies to and the resource it came
/// from (`Observation/123`), so a result can say where its inputs came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Dated<'a, T> {
    pub date: Date,
    pub value: T,
    pub source: String,
    pub resource: &'a Value,
}

/// One patient's record.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub patient: &'a Value,
    pub resources: &'a [Value],
}

impl<'a> Record<'a> {
    pub fn new(patient: &'a Value, resources: &'a [Value]) -> Record<'a> {
        Record { patient, resources }
    }

    /// `Patient/ID`.
    pub fn patient_reference(&self) -> String {
        reference_of(self.patient)
    }

    pub fn birth_date(&self) -> Option<Date> {
        self.patient.get("birthDate")?.as_str().and_then(parse_date)
    }

    /// Whole years of age on `on` (the birthday counts from its own day).
    pub fn age_on(&self, on: Date) -> Option<i32> {
        let born = self.birth_date()?;
        let mut years = on.year() - born.year();
        if (on.month() as u8, on.day()) < (born.month() as u8, born.day()) {
            years -= 1;
        }
        (years >= 0).then_some(years)
    }

    /// Whole months of age on `on` (for childhood schedules).
    pub fn age_months_on(&self, on: Date) -> Option<i32> {
        let born = self.birth_date()?;
        let mut months = (on.year() - born.year()) * 12 + on.month() as i32 - born.month() as i32;
        if on.day() < born.day() {
            months -= 1;
        }
        (months >= 0).then_some(months)
    }

    /// `Patient.gender` (`male`, `female`, `other`, `unknown`).
    pub fn gender(&self) -> Option<&'a str> {
        self.patient.get("gender")?.as_str()
    }

    /// Whether the patient has died on or before `on`.
    pub fn deceased_on(&self, on: Date) -> bool {
        match self.patient.get("deceasedDateTime").and_then(Value::as_str) {
            Some(d) => parse_date(d).is_some_and(|d| d <= on),
            None => self
                .patient
                .get("deceasedBoolean")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// The resources of one type.
    pub fn of_type(&self, resource_type: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.resources
            .iter()
            .filter(move |r| r.get("resourceType").and_then(Value::as_str) == Some(resource_type))
    }

    /// Numeric values of observations carrying any of `codes`, either as the
    /// Observation's code (with `valueQuantity`) or as a component's code (with its
    /// `valueQuantity`), effective on or before `on`, newest first. Observations whose
    /// status is `entered-in-error`, `cancelled` or `preliminary` are left out.
    pub fn quantities(&self, codes: &[Code<'_>], on: Date) -> Vec<Dated<'a, Quantity<'a>>> {
        let mut out = Vec::new();
        for obs in self.of_type("Observation") {
            if !final_status(obs) {
                continue;
            }
            let Some(date) = effective_date(obs) else {
                continue;
            };
            if date > on {
                continue;
            }
            if has_code(obs.get("code"), codes) {
                if let Some(q) = quantity(obs.get("valueQuantity")) {
                    out.push(Dated {
                        date,
                        value: q,
                        source: reference_of(obs),
                        resource: obs,
                    });
                }
            }
            for comp in obs
                .get("component")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if has_code(comp.get("code"), codes) {
                    if let Some(q) = quantity(comp.get("valueQuantity")) {
                        out.push(Dated {
                            date,
                            value: q,
                            source: reference_of(obs),
                            resource: obs,
                        });
                    }
                }
            }
        }
        out.sort_by_key(|d| std::cmp::Reverse(d.date));
        out
    }

    /// The newest numeric value for `codes` on or before `on`.
    pub fn latest_quantity(&self, codes: &[Code<'_>], on: Date) -> Option<Dated<'a, Quantity<'a>>> {
        self.quantities(codes, on).into_iter().next()
    }

    /// Observations carrying any of `codes` (as the Observation's code), effective on or
    /// before `on`, newest first, whatever their value (coded answers such as smoking
    /// status). Statuses as for [`Record::quantities`].
    pub fn observations(&self, codes: &[Code<'_>], on: Date) -> Vec<Dated<'a, &'a Value>> {
        let mut out: Vec<_> = self
            .of_type("Observation")
            .filter(|o| final_status(o) && has_code(o.get("code"), codes))
            .filter_map(|o| {
                let date = effective_date(o)?;
                (date <= on).then(|| Dated {
                    date,
                    value: o,
                    source: reference_of(o),
                    resource: o,
                })
            })
            .collect();
        out.sort_by_key(|d| std::cmp::Reverse(d.date));
        out
    }

    /// Conditions with any of `codes` that are active on `on`: recorded (onset, or
    /// recordedDate) on or before `on`, not abated by then, clinical status not
    /// inactive/resolved/remission, verification status not refuted/entered-in-error.
    /// The date is the onset (or recorded) date. Oldest first.
    pub fn active_conditions(&self, codes: &[Code<'_>], on: Date) -> Vec<Dated<'a, &'a Value>> {
        let mut out: Vec<_> = self
            .of_type("Condition")
            .filter(|c| has_code(c.get("code"), codes))
            .filter(|c| condition_active(c, on))
            .filter_map(|c| {
                let date = date_of(c, &["onsetDateTime", "onsetPeriod.start", "recordedDate"])?;
                (date <= on).then(|| Dated {
                    date,
                    value: c,
                    source: reference_of(c),
                    resource: c,
                })
            })
            .collect();
        out.sort_by_key(|d| d.date);
        out
    }

    /// Completed immunizations with any of `codes` (`vaccineCode`) given on or before
    /// `on`, newest first.
    pub fn immunizations(&self, codes: &[Code<'_>], on: Date) -> Vec<Dated<'a, &'a Value>> {
        self.dated_events(
            "Immunization",
            "vaccineCode",
            &["occurrenceDateTime"],
            "completed",
            codes,
            on,
        )
    }

    /// Completed procedures with any of `codes` performed on or before `on`, newest first.
    pub fn procedures(&self, codes: &[Code<'_>], on: Date) -> Vec<Dated<'a, &'a Value>> {
        self.dated_events(
            "Procedure",
            "code",
            &["performedDateTime", "performedPeriod.start"],
            "completed",
            codes,
            on,
        )
    }

    /// Diagnostic reports with any of `codes` issued or effective on or before `on`
    /// (status final, amended, corrected or appended), newest first.
    pub fn reports(&self, codes: &[Code<'_>], on: Date) -> Vec<Dated<'a, &'a Value>> {
        let mut out: Vec<_> = self
            .of_type("DiagnosticReport")
            .filter(|r| final_status(r) && has_code(r.get("code"), codes))
            .filter_map(|r| {
                let date = effective_date(r).or_else(|| date_of(r, &["issued"]))?;
                (date <= on).then(|| Dated {
                    date,
                    value: r,
                    source: reference_of(r),
                    resource: r,
                })
            })
            .collect();
        out.sort_by_key(|d| std::cmp::Reverse(d.date));
        out
    }

    /// Medication requests for any of `codes` (RxNorm in `medicationCodeableConcept`)
    /// that are active on `on` (status active, or completed with authoredOn on or before
    /// `on` counts as "was prescribed"), newest first by authoredOn.
    pub fn medication_requests(&self, codes: &[Code<'_>], on: Date) -> Vec<Dated<'a, &'a Value>> {
        let mut out: Vec<_> = self
            .of_type("MedicationRequest")
            .filter(|m| {
                matches!(
                    m.get("status").and_then(Value::as_str),
                    Some("active" | "completed" | "on-hold")
                ) && has_code(m.get("medicationCodeableConcept"), codes)
            })
            .filter_map(|m| {
                let date = date_of(m, &["authoredOn"])?;
                (date <= on).then(|| Dated {
                    date,
                    value: m,
                    source: reference_of(m),
                    resource: m,
                })
            })
            .collect();
        out.sort_by_key(|d| std::cmp::Reverse(d.date));
        out
    }

    fn dated_events(
        &self,
        resource_type: &'a str,
        code_field: &str,
        date_fields: &[&str],
        status: &str,
        codes: &[Code<'_>],
        on: Date,
    ) -> Vec<Dated<'a, &'a Value>> {
        let mut out: Vec<_> = self
            .of_type(resource_type)
            .filter(|r| r.get("status").and_then(Value::as_str) == Some(status))
            .filter(|r| has_code(r.get(code_field), codes))
            .filter_map(|r| {
                let date = date_of(r, date_fields)?;
                (date <= on).then(|| Dated {
                    date,
                    value: r,
                    source: reference_of(r),
                    resource: r,
                })
            })
            .collect();
        out.sort_by_key(|d| std::cmp::Reverse(d.date));
        out
    }
}

/// A numeric value with its UCUM code (or unit text when no code is given).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity<'a> {
    pub value: f64,
    pub unit: Option<&'a str>,
}

fn quantity(v: Option<&Value>) -> Option<Quantity<'_>> {
    let v = v?;
    let value = v.get("value")?.as_f64()?;
    let unit = v
        .get("code")
        .or_else(|| v.get("unit"))
        .and_then(Value::as_str);
    Some(Quantity { value, unit })
}

/// Whether a CodeableConcept has a coding with any of `codes`.
pub fn has_code(concept: Option<&Value>, codes: &[Code<'_>]) -> bool {
    let Some(codings) = concept
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
    else {
        return false;
    };
    codings.iter().any(|c| {
        let system = c.get("system").and_then(Value::as_str);
        let code = c.get("code").and_then(Value::as_str);
        codes
            .iter()
            .any(|k| Some(k.system) == system && Some(k.code) == code)
    })
}

fn final_status(r: &Value) -> bool {
    !matches!(
        r.get("status").and_then(Value::as_str),
        Some("entered-in-error" | "cancelled" | "preliminary" | "registered")
    )
}

fn condition_active(c: &Value, on: Date) -> bool {
    let status = |field: &str| {
        c.get(field)
            .and_then(|s| s.get("coding"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|c| c.get("code"))
            .and_then(Value::as_str)
    };
    if matches!(
        status("verificationStatus"),
        Some("refuted" | "entered-in-error")
    ) {
        return false;
    }
    if let Some(abated) = date_of(c, &["abatementDateTime", "abatementPeriod.end"]) {
        if abated <= on {
            return false;
        }
    } else if matches!(
        status("clinicalStatus"),
        Some("inactive" | "resolved" | "remission")
    ) {
        return false;
    }
    true
}

/// `Observation.effective[x]` (dateTime, Period start, instant) as a date.
pub fn effective_date(r: &Value) -> Option<Date> {
    date_of(
        r,
        &[
            "effectiveDateTime",
            "effectivePeriod.start",
            "effectiveInstant",
        ],
    )
}

/// The first of `fields` (dotted for one level: `performedPeriod.start`) holding a date.
pub fn date_of(r: &Value, fields: &[&str]) -> Option<Date> {
    fields.iter().find_map(|f| {
        let v = match f.split_once('.') {
            Some((a, b)) => r.get(a)?.get(b)?,
            None => r.get(*f)?,
        };
        v.as_str().and_then(parse_date)
    })
}

/// `Type/id` of a resource.
pub fn reference_of(r: &Value) -> String {
    format!(
        "{}/{}",
        r.get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        r.get("id").and_then(Value::as_str).unwrap_or_default()
    )
}

/// The date part of a FHIR date or dateTime (`2020`, `2020-05`, `2020-05-17`,
/// `2020-05-17T10:00:00+02:00`); a partial date counts as its first day.
pub fn parse_date(s: &str) -> Option<Date> {
    let date = s.get(..10.min(s.len()))?;
    let mut parts = date.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next().map_or(Ok(1), str::parse).ok()?;
    let day: u8 = parts.next().map_or(Ok(1), str::parse).ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    #[test]
    fn partial_and_full_dates() {
        assert_eq!(parse_date("2020"), Some(date!(2020 - 01 - 01)));
        assert_eq!(parse_date("2020-05"), Some(date!(2020 - 05 - 01)));
        assert_eq!(
            parse_date("2020-05-17T23:10:00-05:00"),
            Some(date!(2020 - 05 - 17))
        );
        assert_eq!(parse_date("2020-13-01"), None);
        assert_eq!(parse_date("x"), None);
    }

    #[test]
    fn age_counts_whole_years_and_months() {
        let p = json!({"resourceType": "Patient", "id": "p", "birthDate": "1970-06-15"});
        let r = Record::new(&p, &[]);
        assert_eq!(r.age_on(date!(2025 - 06 - 14)), Some(54));
        assert_eq!(r.age_on(date!(2025 - 06 - 15)), Some(55));
        assert_eq!(r.age_months_on(date!(1971 - 06 - 14)), Some(11));
        assert_eq!(r.age_months_on(date!(1971 - 06 - 15)), Some(12));
        assert_eq!(r.age_on(date!(1960 - 01 - 01)), None);
    }

    #[test]
    fn quantities_come_from_codes_and_components_newest_first() {
        let p = json!({"resourceType": "Patient", "id": "p"});
        let bp = |id: &str, when: &str, sys: f64| {
            json!({"resourceType": "Observation", "id": id, "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                "effectiveDateTime": when,
                "component": [
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                     "valueQuantity": {"value": sys, "code": "mm[Hg]"}},
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                     "valueQuantity": {"value": 80, "code": "mm[Hg]"}}]})
        };
        let mut wrong = bp("x", "2024-03-01", 200.0);
        wrong["status"] = json!("entered-in-error");
        let res = vec![
            bp("a", "2023-01-01T10:00:00Z", 150.0),
            bp("b", "2024-01-01", 130.0),
            bp("c", "2030-01-01", 110.0),
            wrong,
        ];
        let r = Record::new(&p, &res);
        let systolic = [Code::new(systems::LOINC, "8480-6")];
        let found = r.quantities(&systolic, date!(2025 - 01 - 01));
        let values: Vec<_> = found
            .iter()
            .map(|d| (d.source.as_str(), d.value.value))
            .collect();
        assert_eq!(values, [("Observation/b", 130.0), ("Observation/a", 150.0)]);
        assert_eq!(found[0].value.unit, Some("mm[Hg]"));
    }

    #[test]
    fn conditions_active_until_abated_or_resolved() {
        let p = json!({"resourceType": "Patient", "id": "p"});
        let dm = json!({"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]});
        let res = vec![
            json!({"resourceType": "Condition", "id": "a", "code": dm, "onsetDateTime": "2010-01-01"}),
            json!({"resourceType": "Condition", "id": "b", "code": dm, "onsetDateTime": "2011-01-01",
                   "abatementDateTime": "2012-01-01"}),
            json!({"resourceType": "Condition", "id": "c", "code": dm, "onsetDateTime": "2011-01-01",
                   "clinicalStatus": {"coding": [{"code": "resolved"}]}}),
        ];
        let r = Record::new(&p, &res);
        let codes = [Code::new(systems::SNOMED, "44054006")];
        let at = |d| -> Vec<String> {
            r.active_conditions(&codes, d)
                .into_iter()
                .map(|c| c.source)
                .collect()
        };
        assert_eq!(at(date!(2011 - 06 - 01)), ["Condition/a", "Condition/b"]);
        assert_eq!(at(date!(2013 - 01 - 01)), ["Condition/a"]);
        assert_eq!(at(date!(2009 - 01 - 01)), Vec::<String>::new());
    }
}
