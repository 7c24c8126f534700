//! What booking needs to know about a Schedule, worked out from the Schedule and the
//! directory resources it names: the organizations its actors belong to (whose care
//! team it is, whose staff confirm its appointments), what a page shows of it, whether
//! it needs staff confirmation, and the actors an Appointment names as its staff.
//!
//! The same description serves both paths: the free-slot search reads the resources as
//! the search's includes, a booking operation reads them from its own snapshot
//! ([`Lookup`]).

use std::collections::HashMap;

use serde_json::Value;

use oxehr_fhir::{ResourceId, ResourceType};
use oxehr_store::ReadTx;

use super::{ScheduleSummary, REQUIRES_CONFIRMATION_URL};
use crate::RecordsError;

/// Actors of one Schedule (or participants of one Appointment) that are looked at; a
/// Schedule names a handful, so more is not real data.
pub(super) const MAX_ACTORS: usize = 10;

/// Actor types an Appointment copies from its Schedule as the staff side. A Schedule of
/// a Patient or RelatedPerson is someone's own calendar: booking never names them.
const STAFF_ACTORS: &[&str] = &[
    "PractitionerRole",
    "Practitioner",
    "HealthcareService",
    "Location",
    "Device",
];

/// Resources by type and id, however they were read.
pub(super) trait Lookup {
    /// The current, not deleted, resource, if there is one.
    fn get(&mut self, rtype: &str, id: &str) -> Result<Option<Value>, RecordsError>;
}

/// Resources already in hand (a search's matches and includes), by `Type/id`.
impl Lookup for HashMap<String, Value> {
    fn get(&mut self, rtype: &str, id: &str) -> Result<Option<Value>, RecordsError> {
        Ok(HashMap::get(self, &format!("{rtype}/{id}")).cloned())
    }
}

/// Resources read from one snapshot, each once.
pub(super) struct ReadLookup<'a> {
    tx: &'a mut dyn ReadTx,
    seen: HashMap<String, Option<Value>>,
}

impl<'a> ReadLookup<'a> {
    pub(super) fn new(tx: &'a mut dyn ReadTx) -> Self {
        ReadLookup {
            tx,
            seen: HashMap::new(),
        }
    }

    pub(super) fn tx(&mut self) -> &mut dyn ReadTx {
        &mut *self.tx
    }
}

impl Lookup for ReadLookup<'_> {
    fn get(&mut self, rtype: &str, id: &str) -> Result<Option<Value>, RecordsError> {
        let key = format!("{rtype}/{id}");
        if let Some(v) = self.seen.get(&key) {
            return Ok(v.clone());
        }
        let value = match (ResourceType::parse(rtype), ResourceId::parse(id)) {
            (Some(t), Some(i)) => match self.tx.current(&t, &i)? {
                Some(r) if !r.is_deleted() => Some(crate::interactions::parse_body(&r)?),
                _ => None,
            },
            _ => None,
        };
        self.seen.insert(key, value.clone());
        Ok(value)
    }
}

/// A Schedule as booking sees it.
#[derive(Debug, Clone)]
pub(super) struct ScheduleInfo {
    /// `active` is not false.
    pub active: bool,
    pub requires_confirmation: bool,
    /// The staff actors as the Schedule names them (`reference`, `display`), for an
    /// Appointment's participants.
    pub staff_actors: Vec<Value>,
    /// The Organization ids its actors belong to, sorted.
    pub orgs: Vec<String>,
    pub summary: ScheduleSummary,
}

/// `Type/id` of a local reference (`Type/id` or `Type/id/_history/n`); `None` for an
/// absolute URL, a contained or a logical reference.
pub(super) fn local_ref(reference: &Value) -> Option<(String, String)> {
    let r = reference.get("reference")?.as_str()?;
    let mut parts = r.split('/');
    let (t, id) = (parts.next()?, parts.next()?);
    match parts.next() {
        None | Some("_history") => {}
        Some(_) => return None,
    }
    let t = ResourceType::parse(t)?;
    let id = ResourceId::parse(id)?;
    Some((t.as_str().to_owned(), id.as_str().to_owned()))
}

/// The Organization an actor acts for: a PractitionerRole's `organization`, a
/// HealthcareService's `providedBy`, a Location's `managingOrganization`.
fn organization_of(rtype: &str, actor: &Value) -> Option<String> {
    let field = match rtype {
        "PractitionerRole" => "organization",
        "HealthcareService" => "providedBy",
        "Location" => "managingOrganization",
        _ => return None,
    };
    match local_ref(actor.get(field)?)? {
        (t, id) if t == "Organization" => Some(id),
        _ => None,
    }
}

/// The organizations of `actors` (references), sorted, each once.
pub(super) fn organizations_of(
    actors: &[Value],
    lookup: &mut dyn Lookup,
) -> Result<Vec<String>, RecordsError> {
    let mut orgs = Vec::new();
    for actor in actors.iter().take(MAX_ACTORS) {
        if let Some((t, id)) = local_ref(actor) {
            if let Some(resource) = lookup.get(&t, &id)? {
                orgs.extend(organization_of(&t, &resource));
            }
        }
    }
    orgs.sort();
    orgs.dedup();
    Ok(orgs)
}

/// Describes `schedule` (a Schedule's JSON), reading what it names through `lookup`.
pub(super) fn describe(
    id: &str,
    schedule: &Value,
    lookup: &mut dyn Lookup,
) -> Result<ScheduleInfo, RecordsError> {
    let actors: Vec<Value> = schedule
        .get("actor")
        .and_then(Value::as_array)
        .map(|a| a.iter().take(MAX_ACTORS).cloned().collect())
        .unwrap_or_default();
    let orgs = organizations_of(&actors, lookup)?;
    let mut summary = ScheduleSummary {
        id: id.to_owned(),
        practitioner: None,
        service: None,
        location: None,
        organization: None,
        requires_confirmation: requires_confirmation(schedule),
    };
    let mut staff_actors = Vec::new();
    for actor in &actors {
        let Some((t, actor_id)) = local_ref(actor) else {
            continue;
        };
        if !STAFF_ACTORS.contains(&t.as_str()) {
            continue;
        }
        let mut participant = serde_json::Map::new();
        participant.insert("reference".into(), Value::String(format!("{t}/{actor_id}")));
        if let Some(d) = actor.get("display").and_then(Value::as_str) {
            participant.insert("display".into(), Value::String(d.to_owned()));
        }
        staff_actors.push(Value::Object(participant));
        let resource = lookup.get(&t, &actor_id)?;
        let shown = display_of(actor);
        // The first actor that names each thing wins.
        match t.as_str() {
            "Practitioner" if summary.practitioner.is_none() => {
                summary.practitioner = resource.as_ref().and_then(person_name).or(shown);
            }
            "PractitionerRole" => {
                let Some(role) = resource else { continue };
                if summary.practitioner.is_none() {
                    summary.practitioner =
                        named(lookup, role.get("practitioner"), person_name)?.or(shown);
                }
                if summary.location.is_none() {
                    let first = role
                        .get("location")
                        .and_then(Value::as_array)
                        .and_then(|l| l.first());
                    summary.location = named(lookup, first, plain_name)?;
                }
            }
            "HealthcareService" if summary.service.is_none() => {
                summary.service = resource.as_ref().and_then(plain_name).or(shown);
            }
            "Location" if summary.location.is_none() => {
                summary.location = resource.as_ref().and_then(plain_name).or(shown);
            }
            _ => {}
        }
    }
    if summary.service.is_none() {
        summary.service = schedule
            .get("serviceType")
            .and_then(Value::as_array)
            .and_then(|s| s.first())
            .and_then(concept_text);
    }
    if let Some(org) = orgs.first() {
        summary.organization = lookup
            .get("Organization", org)?
            .as_ref()
            .and_then(plain_name);
    }
    Ok(ScheduleInfo {
        active: schedule.get("active").and_then(Value::as_bool) != Some(false),
        requires_confirmation: summary.requires_confirmation,
        staff_actors,
        orgs,
        summary,
    })
}

/// Whether the Schedule carries oxehr's extension asking staff to confirm each booking.
pub(super) fn requires_confirmation(schedule: &Value) -> bool {
    schedule
        .get("extension")
        .and_then(Value::as_array)
        .is_some_and(|exts| {
            exts.iter().any(|e| {
                e.get("url").and_then(Value::as_str) == Some(REQUIRES_CONFIRMATION_URL)
                    && e.get("valueBoolean").and_then(Value::as_bool) == Some(true)
            })
        })
}

/// The name of what `reference` points to (by `name`), else its `display`.
fn named(
    lookup: &mut dyn Lookup,
    reference: Option<&Value>,
    name: fn(&Value) -> Option<String>,
) -> Result<Option<String>, RecordsError> {
    let Some(reference) = reference else {
        return Ok(None);
    };
    let found = match local_ref(reference) {
        Some((t, id)) => lookup.get(&t, &id)?.as_ref().and_then(name),
        None => None,
    };
    Ok(found.or_else(|| display_of(reference)))
}

fn display_of(reference: &Value) -> Option<String> {
    non_empty(reference.get("display")?.as_str()?)
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A resource's `name` as a string (Organization, Location, HealthcareService).
fn plain_name(resource: &Value) -> Option<String> {
    non_empty(resource.get("name")?.as_str()?)
}

/// A person's first HumanName: its `text`, else prefix, given and family names.
fn person_name(resource: &Value) -> Option<String> {
    let name = resource.get("name")?.as_array()?.first()?;
    if let Some(text) = name.get("text").and_then(Value::as_str).and_then(non_empty) {
        return Some(text);
    }
    let words = |field: &str| -> Vec<String> {
        name.get(field)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut parts = words("prefix");
    parts.extend(words("given"));
    if let Some(f) = name.get("family").and_then(Value::as_str) {
        parts.push(f.to_owned());
    }
    non_empty(&parts.join(" "))
}

/// A CodeableConcept's text, else its first coding's display.
pub(super) fn concept_text(concept: &Value) -> Option<String> {
    if let Some(t) = concept
        .get("text")
        .and_then(Value::as_str)
        .and_then(non_empty)
    {
        return Some(t);
    }
    concept
        .get("coding")?
        .as_array()?
        .iter()
        .find_map(|c| c.get("display").and_then(Value::as_str).and_then(non_empty))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn local_references_only() {
        let cases = [
            (
                json!({"reference": "PractitionerRole/r1"}),
                Some(("PractitionerRole", "r1")),
            ),
            (
                json!({"reference": "Location/l1/_history/3"}),
                Some(("Location", "l1")),
            ),
            (
                json!({"reference": "https://x.example/fhir/Location/l1"}),
                None,
            ),
            (json!({"reference": "#contained"}), None),
            (json!({"reference": "Nonsense/x"}), None),
            (json!({"display": "Dr Who"}), None),
        ];
        for (r, want) in cases {
            let got = local_ref(&r);
            let want = want.map(|(t, i)| (t.to_owned(), i.to_owned()));
            assert_eq!(got, want, "{r}");
        }
    }

    #[test]
    fn a_schedule_describes_its_team() {
        let mut found: HashMap<String, Value> = HashMap::new();
        let put = |m: &mut HashMap<String, Value>, v: Value| {
            let key = format!(
                "{}/{}",
                v["resourceType"].as_str().unwrap_or(""),
                v["id"].as_str().unwrap_or("")
            );
            m.insert(key, v);
        };
        put(
            &mut found,
            json!({"resourceType": "Organization", "id": "o1", "name": "Riverside Clinic"}),
        );
        put(
            &mut found,
            json!({"resourceType": "Practitioner", "id": "d1",
            "name": [{"prefix": ["Dr"], "given": ["Ada"], "family": "Lovelace"}]}),
        );
        put(
            &mut found,
            json!({"resourceType": "Location", "id": "l1", "name": "Room 4"}),
        );
        put(
            &mut found,
            json!({"resourceType": "PractitionerRole", "id": "r1",
            "practitioner": {"reference": "Practitioner/d1"},
            "organization": {"reference": "Organization/o1"},
            "location": [{"reference": "Location/l1"}]}),
        );
        let schedule = json!({"resourceType": "Schedule", "id": "s1",
            "extension": [{"url": REQUIRES_CONFIRMATION_URL, "valueBoolean": true}],
            "serviceType": [{"text": "General practice"}],
            "actor": [{"reference": "PractitionerRole/r1"}, {"reference": "Patient/p9"}]});
        let info = describe("s1", &schedule, &mut found).expect("describe");
        assert_eq!(info.orgs, vec!["o1".to_owned()]);
        assert!(info.active && info.requires_confirmation);
        assert_eq!(
            info.staff_actors,
            vec![json!({"reference": "PractitionerRole/r1"})]
        );
        assert_eq!(
            info.summary.practitioner.as_deref(),
            Some("Dr Ada Lovelace")
        );
        assert_eq!(info.summary.location.as_deref(), Some("Room 4"));
        assert_eq!(
            info.summary.organization.as_deref(),
            Some("Riverside Clinic")
        );
        assert_eq!(info.summary.service.as_deref(), Some("General practice"));
    }
}
