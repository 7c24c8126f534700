//! The rule files: their TOML shape (see the module doc of [`crate::gaps`]), and their
//! compiled form, in which every code list becomes a numbered *group* and every code points
//! at the groups it belongs to, so a record is indexed in one pass (see `index`).

use std::collections::HashMap;

use serde::Deserialize;
use time::Month;

use super::words::Interval;
use crate::record::systems;

/// The built-in rule files, one per guideline.
const BUILTIN: &[(&str, &str)] = &[
    (
        "colorectal-cancer-screening.toml",
        include_str!("../../rules/colorectal-cancer-screening.toml"),
    ),
    (
        "breast-cancer-screening.toml",
        include_str!("../../rules/breast-cancer-screening.toml"),
    ),
    (
        "cervical-cancer-screening.toml",
        include_str!("../../rules/cervical-cancer-screening.toml"),
    ),
    (
        "diabetes-hba1c.toml",
        include_str!("../../rules/diabetes-hba1c.toml"),
    ),
    (
        "blood-pressure-follow-up.toml",
        include_str!("../../rules/blood-pressure-follow-up.toml"),
    ),
    (
        "influenza-vaccine.toml",
        include_str!("../../rules/influenza-vaccine.toml"),
    ),
    (
        "childhood-immunizations.toml",
        include_str!("../../rules/childhood-immunizations.toml"),
    ),
    (
        "statin-primary-prevention.toml",
        include_str!("../../rules/statin-primary-prevention.toml"),
    ),
];

/// A rule file that does not parse or does not make sense. Category: invalid.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("rule file {file}: {message}")]
    Parse { file: String, message: String },
    #[error("rule {rule}: {message}")]
    Invalid { rule: String, message: String },
}

/// The FHIR resource types a rule reads, named as the spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum ResourceKind {
    Observation,
    Procedure,
    Immunization,
    DiagnosticReport,
    MedicationRequest,
    Condition,
}

impl ResourceKind {
    pub(crate) fn from_type(t: &str) -> Option<ResourceKind> {
        Some(match t {
            "Observation" => ResourceKind::Observation,
            "Procedure" => ResourceKind::Procedure,
            "Immunization" => ResourceKind::Immunization,
            "DiagnosticReport" => ResourceKind::DiagnosticReport,
            "MedicationRequest" => ResourceKind::MedicationRequest,
            "Condition" => ResourceKind::Condition,
            _ => return None,
        })
    }

    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// `Patient.gender` a rule is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Sex {
    Female,
    Male,
}

impl Sex {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
        }
    }
}

// ---- The TOML shape -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    title: String,
    citation: String,
    url: Option<String>,
    applies: AppliesFile,
    #[serde(default)]
    exclusion: Vec<CriterionFile>,
    risk: Option<RiskFile>,
    #[serde(default)]
    satisfied_by: Vec<SatisfierFile>,
    season: Option<SeasonFile>,
    follow_up: Option<FollowUpFile>,
    #[serde(default)]
    series: Vec<SeriesFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppliesFile {
    age_years: Option<[u32; 2]>,
    age_months: Option<[u32; 2]>,
    sex: Option<Sex>,
    #[serde(default)]
    requires: Vec<CriterionFile>,
    #[serde(default)]
    any_of: Vec<CriterionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeFile {
    system: String,
    code: String,
    #[allow(dead_code)] // documentation for the reader of the rule file
    display: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CriterionFile {
    name: String,
    resource: Vec<ResourceKind>,
    #[allow(dead_code)] // provenance for the reader of the rule file
    value_set: Option<String>,
    codes: Vec<CodeFile>,
    /// Conditions only: `active` on the day (default) or `ever` recorded.
    when: Option<When>,
    latest: Option<ValueTestFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueTestFile {
    above: Option<f64>,
    below: Option<f64>,
    at_least: Option<f64>,
    unit: Option<String>,
    #[serde(default)]
    in_codes: Vec<CodeFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RiskFile {
    id: String,
    name: String,
    at_least_percent: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SatisfierFile {
    name: String,
    resource: Vec<ResourceKind>,
    #[allow(dead_code)] // provenance for the reader of the rule file
    value_set: Option<String>,
    codes: Vec<CodeFile>,
    every: Option<String>,
    #[serde(default)]
    active: bool,
    age_at_event: Option<[u32; 2]>,
    sooner_if: Option<SoonerFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoonerFile {
    at_least: f64,
    unit: Option<String>,
    every: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeasonFile {
    starts: String,
    due_by: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowUpFile {
    reading: String,
    resource: Vec<ResourceKind>,
    measure: Vec<MeasureFile>,
    tier: Vec<TierFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeasureFile {
    name: String,
    unit: Option<String>,
    codes: Vec<CodeFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    name: String,
    within: String,
    at_least: HashMap<String, f64>,
    risk: Option<RiskFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesFile {
    id: String,
    name: String,
    #[allow(dead_code)] // provenance for the reader of the rule file
    value_set: Option<String>,
    codes: Vec<CodeFile>,
    until_months: Option<u32>,
    dose: Vec<DoseFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DoseFile {
    due_months: u32,
    #[serde(default)]
    not_needed_if_all_doses_are: Vec<CodeFile>,
}

// ---- The compiled form ----------------------------------------------------------------

pub(crate) type GroupId = usize;

/// Conditions: active on the day, or recorded at any time (a history excludes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum When {
    Active,
    Ever,
}

/// A test on the newest value of a criterion's observations.
#[derive(Debug, Clone)]
pub(crate) struct ValueTest {
    pub above: Option<f64>,
    pub below: Option<f64>,
    pub at_least: Option<f64>,
    pub unit: Option<String>,
    pub in_codes: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Criterion {
    pub name: String,
    pub group: GroupId,
    pub when: When,
    pub latest: Option<ValueTest>,
}

#[derive(Debug, Clone)]
pub(crate) struct RiskRequirement {
    pub id: String,
    pub name: String,
    pub at_least_percent: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Sooner {
    pub at_least: f64,
    pub unit: Option<String>,
    pub every: Interval,
}

/// One way of meeting a rule: a test that lasts `every`, or (for a treatment) an active
/// prescription, or (seasonal) a dose in the season.
#[derive(Debug, Clone)]
pub(crate) struct Satisfier {
    pub name: String,
    pub group: GroupId,
    pub every: Option<Interval>,
    pub age_at_event: Option<(u32, u32)>,
    pub sooner_if: Option<Sooner>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Season {
    pub starts: (Month, u8),
    pub due_by: (Month, u8),
}

#[derive(Debug, Clone)]
pub(crate) struct Measure {
    pub name: String,
    pub unit: Option<String>,
    pub group: GroupId,
}

#[derive(Debug, Clone)]
pub(crate) struct Tier {
    pub name: String,
    pub within: Interval,
    /// `(measure index, threshold)`: the tier holds when any measure is at least its value.
    pub at_least: Vec<(usize, f64)>,
    pub risk: Option<RiskRequirement>,
}

#[derive(Debug, Clone)]
pub(crate) struct FollowUp {
    pub reading: String,
    pub measures: Vec<Measure>,
    pub tiers: Vec<Tier>,
}

#[derive(Debug, Clone)]
pub(crate) struct Dose {
    pub due_months: u32,
    pub not_needed_if_all_doses_are: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub id: String,
    pub name: String,
    pub group: GroupId,
    pub until_months: Option<u32>,
    pub doses: Vec<Dose>,
}

#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// Repeat a test within its interval (screenings, HbA1c).
    Recurring(Vec<Satisfier>),
    /// Once per season (influenza).
    Seasonal(Season, Vec<Satisfier>),
    /// An active prescription (statin).
    Treatment(Vec<Satisfier>),
    /// Recheck within an interval after a reading above a threshold (blood pressure).
    FollowUp(FollowUp),
    /// Doses due by age (childhood immunizations): one gap per series.
    Series(Vec<Series>),
}

#[derive(Debug, Clone)]
pub(crate) struct Applies {
    pub age_years: Option<(u32, u32)>,
    pub age_months: Option<(u32, u32)>,
    pub sex: Option<Sex>,
    pub requires: Vec<Criterion>,
    pub any_of: Vec<Criterion>,
}

/// One care-gap rule, compiled from its file.
#[derive(Debug, Clone)]
pub struct Rule {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) citation: String,
    pub(crate) url: Option<String>,
    pub(crate) applies: Applies,
    pub(crate) exclusions: Vec<Criterion>,
    pub(crate) risk: Option<RiskRequirement>,
    pub(crate) body: Body,
}

impl Rule {
    /// `colorectal-cancer-screening`.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// `Colorectal cancer screening`.
    pub fn title(&self) -> &str {
        &self.title
    }
    /// The guideline, version and year the rule follows.
    pub fn citation(&self) -> &str {
        &self.citation
    }
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }
}

/// A code list of one rule, and the resource types it is looked for in.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    resources: u8,
}

impl Group {
    pub(crate) fn reads(&self, kind: ResourceKind) -> bool {
        self.resources & kind.bit() != 0
    }
}

/// A set of compiled rules with their code index.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    pub(crate) groups: Vec<Group>,
    /// system → code → the groups holding that code.
    pub(crate) codes: HashMap<String, HashMap<String, Vec<GroupId>>>,
    /// Resource types any group reads (the index skips the others).
    pub(crate) kinds: u8,
}

impl RuleSet {
    /// The rule files shipped in `crates/clinical/rules/`.
    pub fn builtin() -> Result<RuleSet, RuleError> {
        RuleSet::from_toml(BUILTIN)
    }

    /// Rules from `(file name, TOML text)` pairs. Unknown keys, unknown code systems,
    /// malformed intervals and duplicate ids are errors.
    pub fn from_toml(files: &[(&str, &str)]) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet {
            rules: Vec::new(),
            groups: Vec::new(),
            codes: HashMap::new(),
            kinds: 0,
        };
        for (name, text) in files {
            let file: RuleFile = toml::from_str(text).map_err(|e| RuleError::Parse {
                file: (*name).to_owned(),
                message: e.to_string(),
            })?;
            if set.rules.iter().any(|r| r.id == file.id) {
                return Err(RuleError::Invalid {
                    rule: file.id,
                    message: "duplicate id".into(),
                });
            }
            let rule = set.compile(file)?;
            set.rules.push(rule);
        }
        Ok(set)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    fn compile(&mut self, f: RuleFile) -> Result<Rule, RuleError> {
        let id = f.id.clone();
        let invalid = |message: String| RuleError::Invalid {
            rule: id.clone(),
            message,
        };
        let range = |r: Option<[u32; 2]>, what: &str| -> Result<Option<(u32, u32)>, RuleError> {
            match r {
                Some([lo, hi]) if lo > hi => Err(invalid(format!("{what}: {lo} > {hi}"))),
                Some([lo, hi]) => Ok(Some((lo, hi))),
                None => Ok(None),
            }
        };
        let applies = Applies {
            age_years: range(f.applies.age_years, "age_years")?,
            age_months: range(f.applies.age_months, "age_months")?,
            sex: f.applies.sex,
            requires: self.criteria(&id, f.applies.requires)?,
            any_of: self.criteria(&id, f.applies.any_of)?,
        };
        let exclusions = self.criteria(&id, f.exclusion)?;
        let risk = f.risk.map(risk_requirement);

        let sections = usize::from(!f.satisfied_by.is_empty())
            + usize::from(f.follow_up.is_some())
            + usize::from(!f.series.is_empty());
        if sections != 1 {
            return Err(invalid(
                "give exactly one of satisfied_by, follow_up or series".into(),
            ));
        }
        let body = if let Some(fu) = f.follow_up {
            Body::FollowUp(self.follow_up(&id, fu)?)
        } else if !f.series.is_empty() {
            let mut out = Vec::new();
            for s in f.series {
                out.push(self.series(&id, s)?);
            }
            Body::Series(out)
        } else {
            let mut options = Vec::new();
            for s in f.satisfied_by {
                options.push(self.satisfier(&id, s)?);
            }
            let timed = options.iter().filter(|o| o.every.is_some()).count();
            match f.season {
                Some(season) if timed == 0 => Body::Seasonal(
                    Season {
                        starts: month_day(&season.starts).ok_or_else(|| {
                            invalid(format!("season starts {:?}: want MM-DD", season.starts))
                        })?,
                        due_by: month_day(&season.due_by).ok_or_else(|| {
                            invalid(format!("season due_by {:?}: want MM-DD", season.due_by))
                        })?,
                    },
                    options,
                ),
                Some(_) => return Err(invalid("a seasonal rule's options take no `every`".into())),
                None if timed == options.len() => Body::Recurring(options),
                None if timed == 0 => Body::Treatment(options),
                None => {
                    return Err(invalid(
                        "options are either all `every` (a test) or all `active` (a treatment)"
                            .into(),
                    ))
                }
            }
        };
        Ok(Rule {
            id: f.id,
            title: f.title,
            citation: f.citation,
            url: f.url,
            applies,
            exclusions,
            risk,
            body,
        })
    }

    fn criteria(
        &mut self,
        rule: &str,
        list: Vec<CriterionFile>,
    ) -> Result<Vec<Criterion>, RuleError> {
        let mut out = Vec::new();
        for c in list {
            let group = self.group(rule, &c.name, &c.resource, &c.codes)?;
            let latest = match c.latest {
                Some(t) => Some(ValueTest {
                    above: t.above,
                    below: t.below,
                    at_least: t.at_least,
                    unit: t.unit,
                    in_codes: codes(rule, &t.in_codes)?,
                }),
                None => None,
            };
            out.push(Criterion {
                name: c.name,
                group,
                when: c.when.unwrap_or(When::Active),
                latest,
            });
        }
        Ok(out)
    }

    fn satisfier(&mut self, rule: &str, s: SatisfierFile) -> Result<Satisfier, RuleError> {
        let invalid = |message: String| RuleError::Invalid {
            rule: rule.to_owned(),
            message,
        };
        let group = self.group(rule, &s.name, &s.resource, &s.codes)?;
        let every = match s.every.as_deref() {
            Some(e) => Some(interval(rule, e)?),
            None => None,
        };
        if every.is_some() && s.active {
            return Err(invalid(format!(
                "{}: `every` and `active` exclude each other",
                s.name
            )));
        }
        if s.active && s.resource != [ResourceKind::MedicationRequest] {
            return Err(invalid(format!(
                "{}: `active` is for MedicationRequest",
                s.name
            )));
        }
        let sooner_if = match s.sooner_if {
            Some(x) => Some(Sooner {
                at_least: x.at_least,
                unit: x.unit,
                every: interval(rule, &x.every)?,
            }),
            None => None,
        };
        Ok(Satisfier {
            name: s.name,
            group,
            every,
            age_at_event: s.age_at_event.map(|[a, b]| (a, b)),
            sooner_if,
        })
    }

    fn follow_up(&mut self, rule: &str, f: FollowUpFile) -> Result<FollowUp, RuleError> {
        let mut measures = Vec::new();
        for m in f.measure {
            let group = self.group(rule, &m.name, &f.resource, &m.codes)?;
            measures.push(Measure {
                name: m.name,
                unit: m.unit,
                group,
            });
        }
        let mut tiers = Vec::new();
        for t in f.tier {
            let mut at_least = Vec::new();
            for (name, v) in t.at_least {
                let i = measures
                    .iter()
                    .position(|m| m.name == name)
                    .ok_or_else(|| RuleError::Invalid {
                        rule: rule.to_owned(),
                        message: format!("tier {}: no measure named {name}", t.name),
                    })?;
                at_least.push((i, v));
            }
            at_least.sort_by_key(|(i, _)| *i);
            tiers.push(Tier {
                name: t.name,
                within: interval(rule, &t.within)?,
                at_least,
                risk: t.risk.map(risk_requirement),
            });
        }
        Ok(FollowUp {
            reading: f.reading,
            measures,
            tiers,
        })
    }

    fn series(&mut self, rule: &str, s: SeriesFile) -> Result<Series, RuleError> {
        let group = self.group(rule, &s.name, &[ResourceKind::Immunization], &s.codes)?;
        let mut doses = Vec::new();
        for d in s.dose {
            doses.push(Dose {
                due_months: d.due_months,
                not_needed_if_all_doses_are: codes(rule, &d.not_needed_if_all_doses_are)?,
            });
        }
        if doses.windows(2).any(|w| w[0].due_months > w[1].due_months) {
            return Err(RuleError::Invalid {
                rule: rule.to_owned(),
                message: format!("series {}: doses out of order", s.id),
            });
        }
        Ok(Series {
            id: s.id,
            name: s.name,
            group,
            until_months: s.until_months,
            doses,
        })
    }

    /// A new group for one code list; every code points at it.
    fn group(
        &mut self,
        rule: &str,
        name: &str,
        resources: &[ResourceKind],
        list: &[CodeFile],
    ) -> Result<GroupId, RuleError> {
        if list.is_empty() || resources.is_empty() {
            return Err(RuleError::Invalid {
                rule: rule.to_owned(),
                message: format!("{name}: no codes or no resource"),
            });
        }
        let id = self.groups.len();
        let mut bits = 0;
        for r in resources {
            bits |= r.bit();
        }
        self.kinds |= bits;
        self.groups.push(Group { resources: bits });
        for (system, code) in codes(rule, list)? {
            let ids = self
                .codes
                .entry(system)
                .or_default()
                .entry(code)
                .or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(id)
    }
}

fn risk_requirement(r: RiskFile) -> RiskRequirement {
    RiskRequirement {
        id: r.id,
        name: r.name,
        at_least_percent: r.at_least_percent,
    }
}

fn interval(rule: &str, s: &str) -> Result<Interval, RuleError> {
    Interval::parse(s).ok_or_else(|| RuleError::Invalid {
        rule: rule.to_owned(),
        message: format!("interval {s:?}: want `<n> years|months|weeks|days`"),
    })
}

/// Code systems by short name (`loinc`) or by URI.
fn system_uri(rule: &str, s: &str) -> Result<String, RuleError> {
    Ok(match s {
        "loinc" => systems::LOINC,
        "snomed" => systems::SNOMED,
        "cvx" => systems::CVX,
        "rxnorm" => systems::RXNORM,
        "icd10cm" => systems::ICD10CM,
        "cpt" => systems::CPT,
        uri if uri.starts_with("http://")
            || uri.starts_with("https://")
            || uri.starts_with("urn:") =>
        {
            uri
        }
        other => {
            return Err(RuleError::Invalid {
                rule: rule.to_owned(),
                message: format!("unknown code system {other:?}"),
            })
        }
    }
    .to_owned())
}

fn codes(rule: &str, list: &[CodeFile]) -> Result<Vec<(String, String)>, RuleError> {
    list.iter()
        .map(|c| Ok((system_uri(rule, &c.system)?, c.code.clone())))
        .collect()
}

/// `08-01` → (August, 1).
fn month_day(s: &str) -> Option<(Month, u8)> {
    let (m, d) = s.split_once('-')?;
    let m = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let d: u8 = d.parse().ok()?;
    // Checked against a leap year so 02-29 is accepted and clamped when used.
    (d >= 1 && d <= m.length(2024)).then_some((m, d))
}
