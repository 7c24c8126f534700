//! What a patient asks of their care team, and how the team answers: refill requests
//! (a `Task` whose focus is the `MedicationRequest`, owned by the prescriber's
//! organization) and messages (`Communication` threads). Every adapter — the portal and
//! the inbox pages now, the FHIR API's clients through plain REST — meets the same rules,
//! because they are here and in the access policy, not in a page:
//!
//! - A refill is asked for an *active* medication of a record the asker may see; while
//!   one is open (requested, received, accepted or in progress) asking again returns it
//!   instead of making a second (a double-clicked button, two tabs).
//! - A refill request is owned by the organization of the prescription's encounter (its
//!   `serviceProvider`), else of the prescriber's `PractitionerRole`. Only staff of that
//!   organization answer it: a clinician approves (a new `MedicationRequest` whose
//!   `priorPrescription` is the old one, and the Task completed with it as its output,
//!   in one transaction); a clinician or nurse denies with a reason the patient sees.
//! - A message thread is its first `Communication` (the root); every reply has
//!   `partOf` = the root and `inResponseTo` = the message it answers. A patient's (or
//!   their proxy's) messages go to one organization of their care team; staff replies go
//!   to the patient. A message is unread while its `received` is empty; opening a thread
//!   sets `received` on the messages addressed to the opener's side.
//!
//! Everything is read and written as the signed-in person through the ordinary
//! interactions, so the access policy and the audit trail apply unchanged.

use serde_json::{json, Value};

use oxehr_auth::{Caller, Role};
use oxehr_fhir::{IssueCode, ResourceId, ResourceType, VersionId};

use crate::interactions::parse_body;
use crate::{format_instant, now_micros, query, Records, RecordsError, StoredResource};

/// The statuses of a Task that is still waiting for an answer.
pub const OPEN_TASK_STATUSES: &str = "requested,received,accepted,in-progress";
/// The `Task.code` of a refill request: "fulfill the focal request".
pub const REFILL_CODE_SYSTEM: &str = "http://hl7.org/fhir/CodeSystem/task-code";
pub const REFILL_CODE: &str = "fulfill";
/// The longest message or reason kept, in characters.
pub const MAX_TEXT: usize = 4000;
/// The longest subject line of a thread, in characters.
pub const MAX_TOPIC: usize = 120;
/// The most organizations a care team lists.
pub const MAX_CARE_TEAM: usize = 100;

/// How a clinician answers a refill request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefillAnswer {
    Approve,
    Deny { reason: String },
}

fn rtype(t: &str) -> Result<ResourceType, RecordsError> {
    ResourceType::parse(t).ok_or_else(|| RecordsError::Internal(format!("type {t}")))
}

fn rid(id: &str, what: &str) -> Result<ResourceId, RecordsError> {
    ResourceId::parse(id).ok_or_else(|| RecordsError::NotFound(format!("{what}/{id}")))
}

fn invalid(text: &str) -> RecordsError {
    RecordsError::invalid(IssueCode::Invalid, text)
}

/// `text` trimmed and cut to `max` characters; an error when nothing is left.
fn clean(text: &str, max: usize, what: &str) -> Result<String, RecordsError> {
    let t: String = text.trim().chars().take(max).collect();
    if t.is_empty() {
        return Err(invalid(&format!("{what} is empty")));
    }
    Ok(t)
}

/// The id part of a reference `Type/id` of type `t`.
pub fn reference_id<'a>(v: &'a Value, t: &str) -> Option<&'a str> {
    v["reference"]
        .as_str()?
        .strip_prefix(t)?
        .strip_prefix('/')
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Who `who` is as the author of a request or message: their person (`Patient/…`,
/// `RelatedPerson/…`, `Practitioner/…`), else their organization, else the patient a
/// patient account stands for.
fn author(who: &Caller, patient: &str) -> Value {
    if let Some(p) = &who.person {
        return json!({ "reference": p });
    }
    if who.role == Role::Patient {
        return json!({ "reference": format!("Patient/{patient}") });
    }
    match &who.organization {
        Some(o) => json!({ "reference": format!("Organization/{o}") }),
        None => json!({ "display": who.user }),
    }
}

/// Whether `who` is the patient's side of a conversation (the patient or a proxy).
fn patient_side(who: &Caller) -> bool {
    !who.role.is_staff()
}

impl Records {
    fn search_json(
        &self,
        who: &Caller,
        t: &str,
        pairs: &[(&str, String)],
        limit: usize,
    ) -> Result<(Vec<StoredResource>, Option<u64>), RecordsError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .chain([("_count".to_owned(), limit.to_string())])
            .collect();
        let q = query::parse(&[t.to_owned()], &pairs, false, None)?;
        let page = self.search(who, &q, limit)?;
        Ok((page.matches, page.total))
    }

    /// The organization that answers a refill of `mr` (a MedicationRequest's body), as
    /// `who` may read it: its encounter's `serviceProvider`, else its requester's
    /// organization when the requester is a PractitionerRole, else the organization its
    /// Provenance says it was written for (a prescription written in the chart).
    fn prescribing_organization(
        &self,
        who: &Caller,
        mr: &Value,
    ) -> Result<Option<String>, RecordsError> {
        if let Some(eid) = reference_id(&mr["encounter"], "Encounter") {
            let enc = self.read(who, &rtype("Encounter")?, &rid(eid, "Encounter")?)?;
            let enc = parse_body(&enc)?;
            if let Some(org) = reference_id(&enc["serviceProvider"], "Organization") {
                return Ok(Some(org.to_owned()));
            }
        }
        if let Some(prid) = reference_id(&mr["requester"], "PractitionerRole") {
            let role = self.read(
                who,
                &rtype("PractitionerRole")?,
                &rid(prid, "PractitionerRole")?,
            )?;
            let role = parse_body(&role)?;
            if let Some(org) = reference_id(&role["organization"], "Organization") {
                return Ok(Some(org.to_owned()));
            }
        }
        if let Some(id) = mr["id"].as_str() {
            let (provenance, _) = self.search_json(
                who,
                "Provenance",
                &[("target", format!("MedicationRequest/{id}"))],
                10,
            )?;
            for p in provenance {
                let p = parse_body(&p)?;
                let org = p["agent"].as_array().and_then(|agents| {
                    agents.iter().find_map(|a| {
                        reference_id(&a["onBehalfOf"], "Organization")
                            .or_else(|| reference_id(&a["who"], "Organization"))
                            .map(str::to_owned)
                    })
                });
                if org.is_some() {
                    return Ok(org);
                }
            }
        }
        Ok(None)
    }

    /// Asks for a refill of the active MedicationRequest `medication_request` of
    /// `patient`'s record, as `who` (the patient or a proxy), with an optional note.
    /// Returns the Task: a new one, or the open request for that medication if there is
    /// one already.
    pub fn request_refill(
        &self,
        who: &Caller,
        patient: &str,
        medication_request: &str,
        note: &str,
    ) -> Result<StoredResource, RecordsError> {
        let mr_type = rtype("MedicationRequest")?;
        let stored = self.read(
            who,
            &mr_type,
            &rid(medication_request, "MedicationRequest")?,
        )?;
        let mr = parse_body(&stored)?;
        if reference_id(&mr["subject"], "Patient") != Some(patient) {
            return Err(RecordsError::NotFound(format!(
                "MedicationRequest/{medication_request}"
            )));
        }
        if mr["status"] != "active" {
            return Err(invalid(
                "only an active medication can be refilled; ask your care team in a message",
            ));
        }
        let focus = format!("MedicationRequest/{medication_request}");
        let (open, _) = self.search_json(
            who,
            "Task",
            &[
                ("patient", patient.to_owned()),
                ("focus", focus.clone()),
                ("status", OPEN_TASK_STATUSES.to_owned()),
            ],
            1,
        )?;
        if let Some(t) = open.into_iter().next() {
            return Ok(t);
        }
        let org = self.prescribing_organization(who, &mr)?.ok_or_else(|| {
            invalid(
                "no organization is named for this prescription; ask your care team in a message",
            )
        })?;
        let medication = mr["medicationCodeableConcept"]["text"]
            .as_str()
            .or_else(|| mr["medicationCodeableConcept"]["coding"][0]["display"].as_str())
            .or_else(|| mr["medicationReference"]["display"].as_str())
            .unwrap_or("a medication");
        let mut task = json!({
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "priority": "routine",
            "code": {
                "coding": [{ "system": REFILL_CODE_SYSTEM, "code": REFILL_CODE,
                             "display": "Fulfill the focal request" }],
                "text": "Refill request"
            },
            "description": format!("Refill of {medication}"),
            "focus": { "reference": focus, "display": medication },
            "for": { "reference": format!("Patient/{patient}") },
            "authoredOn": format_instant(now_micros()),
            "requester": author(who, patient),
            "owner": { "reference": format!("Organization/{org}") }
        });
        let note = note.trim();
        if !note.is_empty() {
            let note: String = note.chars().take(MAX_TEXT).collect();
            task["note"] = json!([{ "text": note }]);
        }
        Ok(self.create(who, &rtype("Task")?, task, None)?.resource)
    }

    /// Answers the refill request `task` as `who` (staff of the organization that owns
    /// it): approving writes the new prescription and completes the Task in one
    /// transaction; denying rejects it with the reason. Returns the Task as stored.
    pub fn answer_refill(
        &self,
        who: &Caller,
        task: &str,
        answer: RefillAnswer,
    ) -> Result<StoredResource, RecordsError> {
        let task_type = rtype("Task")?;
        let task_id = rid(task, "Task")?;
        let stored = self.read(who, &task_type, &task_id)?;
        let mut t = parse_body(&stored)?;
        let owner = reference_id(&t["owner"], "Organization");
        if owner.is_none() || owner != who.organization.as_deref() || !who.role.is_staff() {
            return Err(RecordsError::Forbidden(
                "a refill request is answered by staff of the organization it was sent to".into(),
            ));
        }
        if !OPEN_TASK_STATUSES.split(',').any(|s| t["status"] == s) {
            return Err(RecordsError::Conflict(
                "this request has already been answered".into(),
            ));
        }
        let now = format_instant(now_micros());
        let version = Some(stored.version);
        match answer {
            RefillAnswer::Deny { reason } => {
                if !matches!(who.role, Role::Clinician | Role::Nurse) {
                    return Err(RecordsError::Forbidden(
                        "refill requests are answered by clinicians and nurses".into(),
                    ));
                }
                let reason = clean(&reason, MAX_TEXT, "the reason")?;
                t["status"] = json!("rejected");
                t["statusReason"] = json!({ "text": reason });
                t["lastModified"] = json!(now);
                Ok(self.update(who, &task_type, &task_id, t, version)?.resource)
            }
            RefillAnswer::Approve => {
                if who.role != Role::Clinician {
                    return Err(RecordsError::Forbidden(
                        "a refill is approved by a clinician (a prescriber)".into(),
                    ));
                }
                let mr_id = reference_id(&t["focus"], "MedicationRequest")
                    .ok_or_else(|| invalid("the request names no prescription"))?
                    .to_owned();
                let old = self.read(
                    who,
                    &rtype("MedicationRequest")?,
                    &rid(&mr_id, "MedicationRequest")?,
                )?;
                let mut mr = parse_body(&old)?;
                if let Some(o) = mr.as_object_mut() {
                    for k in ["id", "meta", "text", "identifier", "encounter"] {
                        o.remove(k);
                    }
                }
                mr["status"] = json!("active");
                mr["authoredOn"] = json!(now);
                mr["priorPrescription"] =
                    json!({ "reference": format!("MedicationRequest/{mr_id}") });
                if let Some(p) = &who.person {
                    mr["requester"] = json!({ "reference": p });
                }
                let new_url = format!("urn:uuid:{}", crate::prepare::new_id());
                t["status"] = json!("completed");
                t["lastModified"] = json!(now);
                t["output"] = json!([{
                    "type": { "text": "New prescription" },
                    "valueReference": { "reference": new_url }
                }]);
                let bundle = json!({
                    "resourceType": "Bundle",
                    "type": "transaction",
                    "entry": [
                        { "fullUrl": new_url, "resource": mr,
                          "request": { "method": "POST", "url": "MedicationRequest" } },
                        { "resource": t,
                          "request": { "method": "PUT", "url": format!("Task/{task}"),
                                       "ifMatch": format!("W/\"{}\"", stored.version.0) } },
                        { "resource": provenance(who, &new_url, &now),
                          "request": { "method": "POST", "url": "Provenance" } }
                    ]
                });
                let (_, outcomes) = self.bundle(who, bundle)?;
                outcomes
                    .into_iter()
                    .find_map(|o| match o {
                        crate::EntryOutcome::Updated(r) if r.rtype.as_str() == "Task" => Some(r),
                        _ => None,
                    })
                    .ok_or_else(|| RecordsError::Internal("the Task was not updated".into()))
            }
        }
    }

    /// Sends a message about `patient`'s record as `who`. A new thread (`thread` None)
    /// from the patient's side goes to `to_organization` (required) with `topic`; from
    /// staff it goes to the patient. A reply (`thread` = its root's id) goes to the other
    /// side of the thread. Returns the stored Communication.
    pub fn send_message(
        &self,
        who: &Caller,
        patient: &str,
        thread: Option<&str>,
        to_organization: Option<&str>,
        topic: &str,
        text: &str,
    ) -> Result<StoredResource, RecordsError> {
        let text = clean(text, MAX_TEXT, "the message")?;
        let comm = rtype("Communication")?;
        let subject = format!("Patient/{patient}");
        let mut msg = json!({
            "resourceType": "Communication",
            "status": "completed",
            "subject": { "reference": subject },
            "sent": format_instant(now_micros()),
            "sender": author(who, patient),
            "payload": [{ "contentString": text }]
        });
        let staff_org = |who: &Caller| {
            who.organization
                .clone()
                .filter(|_| who.role.is_staff())
                .ok_or_else(|| {
                    RecordsError::Forbidden("staff messages come from an organization".into())
                })
        };
        match thread {
            None => {
                let topic = clean(topic, MAX_TOPIC, "the subject")?;
                msg["topic"] = json!({ "text": topic });
                if patient_side(who) {
                    let org =
                        to_organization.ok_or_else(|| invalid("choose who the message is for"))?;
                    let orgs = self.care_team(who, patient)?;
                    if !orgs.iter().any(|(id, _)| id == org) {
                        return Err(invalid(
                            "a message goes to an organization of the patient's care team",
                        ));
                    }
                    msg["recipient"] = json!([{ "reference": format!("Organization/{org}") }]);
                } else {
                    let org = staff_org(who)?;
                    msg["sender"] = author(who, patient);
                    msg["recipient"] = json!([{ "reference": subject }]);
                    msg["about"] = json!([{ "reference": format!("Organization/{org}") }]);
                }
            }
            Some(root_id) => {
                let messages = self.thread(who, patient, root_id)?;
                let root = messages
                    .first()
                    .ok_or_else(|| RecordsError::NotFound(format!("Communication/{root_id}")))?;
                let org = thread_organization(root)
                    .ok_or_else(|| invalid("this thread names no organization"))?;
                if !patient_side(who) && Some(org.as_str()) != who.organization.as_deref() {
                    return Err(RecordsError::Forbidden(
                        "a thread is answered by staff of the organization it is with".into(),
                    ));
                }
                let last = messages.last().unwrap_or(root);
                msg["partOf"] = json!([{ "reference": format!("Communication/{root_id}") }]);
                msg["inResponseTo"] = json!([{ "reference": format!("Communication/{}", last["id"].as_str().unwrap_or(root_id)) }]);
                if let Some(t) = root["topic"].as_object() {
                    msg["topic"] = Value::Object(t.clone());
                }
                msg["recipient"] = if patient_side(who) {
                    json!([{ "reference": format!("Organization/{org}") }])
                } else {
                    json!([{ "reference": subject }])
                };
                if !patient_side(who) {
                    msg["about"] = json!([{ "reference": format!("Organization/{org}") }]);
                }
            }
        }
        Ok(self.create(who, &comm, msg, None)?.resource)
    }

    /// A thread of `patient`'s record as `who` sees it: its root first, then the replies
    /// in the order they were sent (at most 200). Not found when the root is not a
    /// message of this patient's record.
    pub fn thread(
        &self,
        who: &Caller,
        patient: &str,
        root: &str,
    ) -> Result<Vec<Value>, RecordsError> {
        let stored = self.read(who, &rtype("Communication")?, &rid(root, "Communication")?)?;
        let first = parse_body(&stored)?;
        if reference_id(&first["subject"], "Patient") != Some(patient) || first["partOf"].is_array()
        {
            return Err(RecordsError::NotFound(format!("Communication/{root}")));
        }
        let (replies, _) = self.search_json(
            who,
            "Communication",
            &[
                ("part-of", format!("Communication/{root}")),
                ("_sort", "sent".to_owned()),
            ],
            200,
        )?;
        let mut out = vec![first];
        for r in &replies {
            let v = parse_body(r)?;
            if reference_id(&v["subject"], "Patient") == Some(patient) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Marks the messages of a thread addressed to `who`'s side as received (read).
    /// Returns how many were marked.
    pub fn mark_thread_read(
        &self,
        who: &Caller,
        patient: &str,
        root: &str,
    ) -> Result<usize, RecordsError> {
        let messages = self.thread(who, patient, root)?;
        let mine = |m: &Value| -> bool {
            let to = m["recipient"].as_array().cloned().unwrap_or_default();
            if patient_side(who) {
                to.iter()
                    .any(|r| reference_id(r, "Patient") == Some(patient))
            } else {
                let org = who.organization.as_deref();
                to.iter()
                    .any(|r| org.is_some() && reference_id(r, "Organization") == org)
            }
        };
        let comm = rtype("Communication")?;
        let now = format_instant(now_micros());
        let mut n = 0;
        for mut m in messages {
            if m["received"].is_string() || !mine(&m) {
                continue;
            }
            let Some(id) = m["id"].as_str().and_then(ResourceId::parse) else {
                continue;
            };
            let version = m["meta"]["versionId"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .map(VersionId);
            m["received"] = json!(now);
            match self.update(who, &comm, &id, m, version) {
                Ok(_) => n += 1,
                // Read by someone else of the same side meanwhile: already marked.
                Err(RecordsError::PreconditionFailed(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// The organizations that have `patient` in care (a care relationship or a
    /// permitting Consent, no denying one), as `who` sees them: (id, name), by name.
    /// The patient's side chooses among these whom a new message goes to.
    pub fn care_team(
        &self,
        who: &Caller,
        patient: &str,
    ) -> Result<Vec<(String, String)>, RecordsError> {
        // Only someone who may see the record learns who cares for the patient.
        self.read(who, &rtype("Patient")?, &rid(patient, "Patient")?)?;
        let ids = {
            let mut reader = self.reader()?;
            oxehr_store::care::orgs_caring_for(&mut *reader, patient, MAX_CARE_TEAM)?
        };
        let org_type = rtype("Organization")?;
        let mut out = Vec::new();
        for id in ids {
            let Some(rid) = ResourceId::parse(&id) else {
                continue;
            };
            let name = match self.read(who, &org_type, &rid) {
                Ok(r) => parse_body(&r)?["name"]
                    .as_str()
                    .unwrap_or("(an organization with no name)")
                    .to_owned(),
                Err(RecordsError::NotFound(_) | RecordsError::Gone(_)) => continue,
                Err(e) => return Err(e),
            };
            out.push((id, name));
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }
}

/// Who wrote `target` for which organization, as the chart's forms record it (what the
/// chart shows as where an entry came from).
fn provenance(who: &Caller, target: &str, now: &str) -> Value {
    let org = who
        .organization
        .as_ref()
        .map(|o| json!({ "reference": format!("Organization/{o}") }));
    let mut agent = json!({
        "type": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
            "code": "author", "display": "Author" }] },
        "who": who.person.as_ref().map(|p| json!({ "reference": p })).or(org.clone())
    });
    if let (Some(o), Some(_)) = (org, &who.person) {
        agent["onBehalfOf"] = o;
    }
    json!({
        "resourceType": "Provenance",
        "target": [{ "reference": target }],
        "recorded": now,
        "activity": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
            "code": "CREATE", "display": "create" }] },
        "agent": [agent]
    })
}

/// The organization a thread is with: the recipient organization of a message from the
/// patient's side, else the `about` organization of one from staff.
pub fn thread_organization(root: &Value) -> Option<String> {
    let from = |k: &str| {
        root[k]
            .as_array()
            .and_then(|a| a.iter().find_map(|r| reference_id(r, "Organization")))
            .map(str::to_owned)
    };
    from("recipient").or_else(|| from("about"))
}

impl Records {
    /// The practitioners of `who`'s organization (by its PractitionerRoles), as
    /// (id, name), by name: whom a thread can be assigned to.
    pub fn colleagues(&self, who: &Caller) -> Result<Vec<(String, String)>, RecordsError> {
        let Some(org) = who.organization.clone().filter(|_| who.role.is_staff()) else {
            return Ok(Vec::new());
        };
        let pairs: Vec<(String, String)> = [
            ("organization", format!("Organization/{org}")),
            ("active", "true".to_owned()),
            ("_include", "PractitionerRole:practitioner".to_owned()),
            ("_count", "200".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let q = query::parse(&["PractitionerRole".to_owned()], &pairs, false, None)?;
        let page = self.search(who, &q, 200)?;
        let mut out: Vec<(String, String)> = page
            .included
            .iter()
            .filter(|r| r.rtype.as_str() == "Practitioner")
            .filter_map(|r| {
                let v = parse_body(r).ok()?;
                let n = &v["name"][0];
                let name = n["text"].as_str().map(str::to_owned).unwrap_or_else(|| {
                    let parts: Vec<&str> = n["prefix"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain(n["given"].as_array().into_iter().flatten())
                        .filter_map(Value::as_str)
                        .chain(n["family"].as_str())
                        .collect();
                    parts.join(" ")
                });
                Some((r.id.as_str().to_owned(), name))
            })
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out.dedup();
        Ok(out)
    }

    /// Assigns thread `root` of `patient`'s record to a colleague (`practitioner`, one of
    /// [`colleagues`](Self::colleagues)), or to nobody (`None`): the first message's
    /// recipients become the organization's and that practitioner. Staff of the
    /// thread's organization only. Returns the first message as stored.
    pub fn assign_thread(
        &self,
        who: &Caller,
        patient: &str,
        root: &str,
        practitioner: Option<&str>,
    ) -> Result<StoredResource, RecordsError> {
        let messages = self.thread(who, patient, root)?;
        let first = messages
            .first()
            .ok_or_else(|| RecordsError::NotFound(format!("Communication/{root}")))?;
        let org = thread_organization(first);
        if !who.role.is_staff() || org.is_none() || org.as_deref() != who.organization.as_deref() {
            return Err(RecordsError::Forbidden(
                "a thread is assigned by staff of the organization it is with".into(),
            ));
        }
        if let Some(p) = practitioner {
            if !self.colleagues(who)?.iter().any(|(id, _)| id == p) {
                return Err(invalid(
                    "assign the thread to a colleague of your organization",
                ));
            }
        }
        let mut m = first.clone();
        let mut recipients: Vec<Value> = m["recipient"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| reference_id(r, "Practitioner").is_none())
            .collect();
        if let Some(p) = practitioner {
            recipients.push(json!({ "reference": format!("Practitioner/{p}") }));
        }
        m["recipient"] = Value::Array(recipients);
        let version = m["meta"]["versionId"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .map(VersionId);
        Ok(self
            .update(
                who,
                &rtype("Communication")?,
                &rid(root, "Communication")?,
                m,
                version,
            )?
            .resource)
    }
}

/// The practitioner a thread is assigned to (a Practitioner among its first message's
/// recipients), if any.
pub fn assignee(root: &Value) -> Option<String> {
    root["recipient"]
        .as_array()?
        .iter()
        .find_map(|r| reference_id(r, "Practitioner"))
        .map(str::to_owned)
}

/// A grant of proxy access to `patient`'s record: a RelatedPerson naming the proxy's
/// `account` ([`crate::PROXY_ACCOUNT_SYSTEM`]), active from `now`, with its relationship
/// (a v3 RoleCode: `PRN` parent, `GUARD` guardian, …) and the person's name. Records
/// decides who may write it and applies it on the next request.
pub fn proxy_grant(
    patient: &str,
    account: &str,
    name: &str,
    relationship: (&str, &str),
    now: &str,
) -> Value {
    let (code, display) = relationship;
    json!({
        "resourceType": "RelatedPerson",
        "active": true,
        "patient": { "reference": format!("Patient/{patient}") },
        "identifier": [{ "system": crate::PROXY_ACCOUNT_SYSTEM, "value": account }],
        "relationship": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
            "code": code, "display": display }], "text": display }],
        "name": [{ "text": name }],
        "period": { "start": now }
    })
}
