//! The patient portal: a patient's own record (or one a proxy acts for) at
//! `/portal/{id}/…`. The record's summary, sections, notes and trends are the chart's
//! pages in the portal's frame ([`crate::pages::View::Portal`]); this module adds what
//! only the patient's side does: the home page, refill requests, messages with the care
//! team and "who looked at my record". Every read and write goes through `oxehr-records`
//! as the signed-in person (its rules, in `oxehr_records::requests`, decide what a
//! request or a message may be); a record that is not theirs answers "not allowed".

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use oxehr_auth::Caller;
use oxehr_records::audit_view::{AuditFilter, StoredAudit, BREAK_THE_GLASS};
use oxehr_records::requests::{self, reference_id, OPEN_TASK_STATUSES};
use oxehr_records::{Records, RecordsError};

use crate::chart;
use crate::display;
use crate::pages::{blocking, error_page, record_read, view_form, Frame, Nav, Page, View};
use crate::session::{field, Signed};
use crate::WebState;

/// Rows of the access log a page shows.
pub const ACCESS_LOG_ROWS: usize = 50;
/// Threads a messages page lists.
pub const THREAD_ROWS: usize = 50;

type Params = Query<HashMap<String, String>>;

/// The signed-in person, the patient's Patient resource and what `read` finds, as a
/// portal page (patients and proxies only).
async fn portal_read<T: Send + 'static>(
    state: &WebState,
    headers: &HeaderMap,
    id: &str,
    read: impl FnOnce(Records, Arc<Caller>) -> Result<T, RecordsError> + Send + 'static,
) -> Result<(Signed, Value, T), Response> {
    let pid = id.to_owned();
    let (s, (p, t)) = record_read(state, headers, id, View::Portal, move |records, who| {
        let p = chart::patient(&records, &who, &pid)?;
        let t = read(records, who)?;
        Ok((p, t))
    })
    .await?;
    Ok((s, p, t))
}

/// `rtype?pairs` as `who`: the bodies of the matches and the total.
fn find(
    records: &Records,
    who: &Caller,
    rtype: &str,
    pairs: &[(&str, String)],
    limit: usize,
) -> Result<(Vec<Value>, usize), RecordsError> {
    let page = chart::search(records, who, rtype, pairs, limit)?;
    let bodies: Vec<Value> = page.matches.iter().filter_map(chart::body).collect();
    let total = page.total.map_or(bodies.len(), |t| t as usize);
    Ok((bodies, total))
}

/// What a refill request's status means to the patient.
fn request_status(t: &Value) -> (&'static str, &'static str) {
    match t["status"].as_str().unwrap_or("") {
        "requested" | "received" => ("Waiting for your care team", "waiting"),
        "accepted" | "in-progress" | "ready" => ("Being handled", "waiting"),
        "completed" => ("Approved: a new prescription was written", "done"),
        "rejected" => ("Not approved", "refused"),
        "cancelled" => ("Cancelled", "refused"),
        _ => ("Sent", "waiting"),
    }
}

/// A request as the portal lists it.
pub(crate) struct RequestRow {
    pub what: String,
    pub status: &'static str,
    /// `waiting`, `done` or `refused` (the badge's look).
    pub tone: &'static str,
    pub asked: String,
    /// The care team's reason when they did not approve.
    pub answer: String,
}

impl RequestRow {
    fn of(t: &Value) -> RequestRow {
        let (status, tone) = request_status(t);
        RequestRow {
            what: t["focus"]["display"]
                .as_str()
                .or_else(|| t["description"].as_str())
                .unwrap_or("A request")
                .to_owned(),
            status,
            tone,
            asked: t["authoredOn"]
                .as_str()
                .map(display::date)
                .unwrap_or_default(),
            answer: t["statusReason"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// An appointment as the portal lists it.
pub(crate) struct AppointmentRow {
    pub when: String,
    pub what: String,
    pub with: String,
    pub status: &'static str,
}

impl AppointmentRow {
    fn of(a: &Value) -> AppointmentRow {
        let with: Vec<String> = a["participant"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| {
                        !p["actor"]["reference"]
                            .as_str()
                            .is_some_and(|r| r.starts_with("Patient/"))
                    })
                    .filter_map(|p| p["actor"]["display"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        AppointmentRow {
            when: a["start"]
                .as_str()
                .map(display::date_time)
                .unwrap_or_default(),
            what: a["description"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| display::concept(&a["serviceType"][0]))
                .or_else(|| display::concept(&a["appointmentType"]))
                .unwrap_or_else(|| "Appointment".to_owned()),
            with: with.join(", "),
            status: match a["status"].as_str().unwrap_or("") {
                "proposed" | "pending" => "Waiting for confirmation",
                "booked" | "arrived" | "checked-in" => "Booked",
                _ => "",
            },
        }
    }
}

/// The root of the thread a message belongs to: its `partOf` message, else itself.
fn thread_root(m: &Value) -> Option<String> {
    m["partOf"]
        .as_array()
        .and_then(|a| a.iter().find_map(|r| reference_id(r, "Communication")))
        .or_else(|| m["id"].as_str())
        .map(str::to_owned)
}

/// Messages addressed to the patient's side that are unread, counted per thread.
fn unread_by_thread(
    records: &Records,
    who: &Caller,
    patient: &str,
) -> Result<HashMap<String, usize>, RecordsError> {
    let (unread, _) = find(
        records,
        who,
        "Communication",
        &[
            ("patient", patient.to_owned()),
            ("recipient", format!("Patient/{patient}")),
            ("received:missing", "true".to_owned()),
        ],
        200,
    )?;
    let mut out = HashMap::new();
    for m in &unread {
        if let Some(root) = thread_root(m) {
            *out.entry(root).or_insert(0) += 1;
        }
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "portal_home.html")]
struct HomePage {
    nav: Nav,
    base: String,
    name: String,
    first: String,
    own: bool,
    appointments: Vec<AppointmentRow>,
    unread: usize,
    requests: Vec<RequestRow>,
    open_requests: usize,
}

/// The portal's home for patient `id`: next appointments, unread messages, requests
/// and what needs the patient's attention.
pub(crate) async fn home_page(state: &WebState, headers: &HeaderMap, id: &str) -> Response {
    let pid = id.to_owned();
    let today = crate::pages::today();
    let (s, p, (appointments, unread, requests)) =
        match portal_read(state, headers, id, move |records, who| {
            let (appts, _) = find(
                &records,
                &who,
                "Appointment",
                &[
                    ("patient", pid.clone()),
                    ("date", format!("ge{today}")),
                    (
                        "status",
                        "proposed,pending,booked,arrived,checked-in".to_owned(),
                    ),
                    ("_sort", "date".to_owned()),
                ],
                5,
            )?;
            let unread: usize = unread_by_thread(&records, &who, &pid)?.values().sum();
            let (tasks, _) = find(
                &records,
                &who,
                "Task",
                &[
                    ("patient", pid.clone()),
                    ("_sort", "-authored-on".to_owned()),
                ],
                5,
            )?;
            Ok((appts, unread, tasks))
        })
        .await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    let frame = Frame::of(&s, View::Portal, id, &p);
    let own = s.caller.patient.as_deref() == Some(id);
    let requests: Vec<RequestRow> = requests.iter().map(RequestRow::of).collect();
    let open_requests = requests.iter().filter(|r| r.tone == "waiting").count();
    Page::render(
        StatusCode::OK,
        &HomePage {
            nav: frame.nav,
            base: frame.base,
            name: display::person_name(&p),
            first: display::first_name(&p).unwrap_or_else(|| display::person_name(&p)),
            own,
            appointments: appointments.iter().map(AppointmentRow::of).collect(),
            unread,
            requests,
            open_requests,
        },
    )
    .into_response()
}

/// `GET /portal/{id}/home`.
pub async fn home(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    home_page(&state, &headers, &id).await
}

/// An active medication and what can be asked about it.
struct MedicationRow {
    id: String,
    name: String,
    how: String,
    since: String,
    from: String,
    /// The open refill request's status, if one is waiting.
    pending: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "refills.html")]
struct RefillsPage {
    nav: Nav,
    back: String,
    base: String,
    name: String,
    medications: Vec<MedicationRow>,
    requests: Vec<RequestRow>,
    sent: bool,
}

async fn refills_page(state: &WebState, headers: &HeaderMap, id: &str, sent: bool) -> Response {
    let pid = id.to_owned();
    let (s, p, (meds, tasks, sources)) =
        match portal_read(state, headers, id, move |records, who| {
            let (meds, _) = find(
                &records,
                &who,
                "MedicationRequest",
                &[
                    ("patient", pid.clone()),
                    ("status", "active".to_owned()),
                    ("_sort", "-authoredon".to_owned()),
                ],
                100,
            )?;
            let (tasks, _) = find(
                &records,
                &who,
                "Task",
                &[
                    ("patient", pid.clone()),
                    (
                        "code",
                        format!("{}|{}", requests::REFILL_CODE_SYSTEM, requests::REFILL_CODE),
                    ),
                    ("_sort", "-authored-on".to_owned()),
                ],
                50,
            )?;
            let sources = chart::Sources::of(&records, &who, &meds)?;
            let from: Vec<String> = meds.iter().map(|m| sources.from(m)).collect();
            Ok((meds, tasks, from))
        })
        .await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    let frame = Frame::of(&s, View::Portal, id, &p);
    let open: HashMap<String, &'static str> = tasks
        .iter()
        .filter(|t| {
            OPEN_TASK_STATUSES
                .split(',')
                .any(|st| t["status"].as_str() == Some(st))
        })
        .filter_map(|t| {
            reference_id(&t["focus"], "MedicationRequest")
                .map(|m| (m.to_owned(), request_status(t).0))
        })
        .collect();
    let medications = meds
        .iter()
        .zip(sources)
        .map(|(m, from)| {
            let id = m["id"].as_str().unwrap_or_default().to_owned();
            MedicationRow {
                pending: open.get(&id).copied(),
                id,
                name: display::concept(&m["medicationCodeableConcept"])
                    .or_else(|| {
                        m["medicationReference"]["display"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| "A medication".to_owned()),
                how: m["dosageInstruction"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                since: m["authoredOn"]
                    .as_str()
                    .map(display::date)
                    .unwrap_or_default(),
                from,
            }
        })
        .collect();
    Page::render(
        StatusCode::OK,
        &RefillsPage {
            nav: frame.nav,
            back: frame.back,
            base: frame.base,
            name: display::person_name(&p),
            medications,
            requests: tasks.iter().map(RequestRow::of).collect(),
            sent,
        },
    )
    .into_response()
}

/// `GET /portal/{id}/refills`: the active medications, each with "Request a refill",
/// and the requests made and their answers.
pub async fn refills(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    refills_page(&state, &headers, &id, q.contains_key("sent")).await
}

/// `POST /portal/{id}/refills`: asks for a refill of one medication.
pub async fn request_refill(
    State(state): State<WebState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (s, fields) = match view_form(&state, req, View::Portal).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let medication = field(&fields, "medication").unwrap_or("").to_owned();
    let note: String = field(&fields, "note")
        .unwrap_or("")
        .chars()
        .take(requests::MAX_TEXT)
        .collect();
    let (records, who, pid) = (state.records.clone(), s.caller.clone(), id.clone());
    match blocking(move || records.request_refill(&who, &pid, &medication, &note)).await {
        Ok(_) => Redirect::to(&format!("/portal/{id}/refills?sent=1")).into_response(),
        Err(e) => refused_or_error(
            &e,
            "The refill request was not sent",
            &format!("/portal/{id}/refills"),
        ),
    }
}

#[derive(Template)]
#[template(path = "refused.html")]
struct Refused<'a> {
    title: &'a str,
    text: String,
    back: String,
}

/// A reason as a sentence: capitalised, ending in a full stop, at most 300 characters.
fn sentence(reason: &str) -> String {
    let mut text: String = reason.trim().chars().take(300).collect();
    if text.is_empty() {
        return "That could not be done.".to_owned();
    }
    if let Some(first) = text.get(..1) {
        text = first.to_uppercase() + &text[1..];
    }
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

/// A form refused for a reason the person can act on: the reason, and the way back to
/// the portal page of the form.
fn refused(id: &str, page: &str, title: &str, reason: &str) -> Response {
    refused_page(title, sentence(reason), format!("/portal/{id}/{page}"))
}

/// The page of a refused form: `title`, the reason in a sentence, a way `back`.
pub(crate) fn refused_page(title: &str, text: String, back: String) -> Response {
    Page::render(StatusCode::BAD_REQUEST, &Refused { title, text, back }).into_response()
}

/// The answer to a form whose records call failed: when the input was refused or the
/// record changed under it (a time just taken, a request already answered), the reason
/// in a sentence with the way `back`; any other failure as its page.
pub(crate) fn refused_or_error(e: &RecordsError, title: &str, back: &str) -> Response {
    let reason = match e {
        RecordsError::Conflict(t) => t.clone(),
        RecordsError::Invalid(issues) => issues
            .first()
            .map(|i| i.diagnostics.clone())
            .unwrap_or_default(),
        _ => return error_page(e),
    };
    refused_page(title, sentence(&reason), back.to_owned())
}

/// A thread as a list shows it.
pub(crate) struct ThreadRow {
    pub root: String,
    pub topic: String,
    pub with: String,
    pub started: String,
    pub unread: usize,
    /// The patient it is about (the inbox lists several).
    pub patient: String,
    pub patient_name: String,
    /// The colleague it is assigned to (the inbox), if any.
    pub assigned: String,
}

/// Names of the organizations and people messages name, read once each as `who`.
pub(crate) struct Names<'a> {
    records: &'a Records,
    who: &'a Caller,
    known: HashMap<String, String>,
}

impl<'a> Names<'a> {
    pub(crate) fn new(records: &'a Records, who: &'a Caller) -> Names<'a> {
        Names {
            records,
            who,
            known: HashMap::new(),
        }
    }

    /// The display of a reference: its `display`, else the name of what it points to
    /// (an Organization's `name`, a person's name), else "someone".
    pub(crate) fn of(&mut self, r: &Value) -> String {
        if let Some(d) = r["display"].as_str() {
            return d.to_owned();
        }
        let Some(reference) = r["reference"].as_str() else {
            return "Someone".to_owned();
        };
        if let Some(n) = self.known.get(reference) {
            return n.clone();
        }
        let name = reference
            .split_once('/')
            .and_then(|(t, id)| {
                let t = oxehr_fhir::ResourceType::parse(t)?;
                let id = oxehr_fhir::ResourceId::parse(id)?;
                let body = chart::body(&self.records.read(self.who, &t, &id).ok()?)?;
                Some(match body["name"].as_str() {
                    Some(n) => n.to_owned(),
                    None => display::person_name(&body),
                })
            })
            .unwrap_or_else(|| "Someone".to_owned());
        self.known.insert(reference.to_owned(), name.clone());
        name
    }
}

#[derive(Template)]
#[template(path = "messages.html")]
struct MessagesPage {
    nav: Nav,
    back: String,
    base: String,
    name: String,
    threads: Vec<ThreadRow>,
    care_team: Vec<(String, String)>,
    csrf: String,
}

/// `GET /portal/{id}/messages`: the threads with the care team, newest first, with
/// their unread counts, and a form to start one.
pub async fn messages(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let pid = id.clone();
    let (s, p, (threads, care_team)) =
        match portal_read(&state, &headers, &id, move |records, who| {
            let (roots, _) = find(
                &records,
                &who,
                "Communication",
                &[
                    ("patient", pid.clone()),
                    ("part-of:missing", "true".to_owned()),
                    ("_sort", "-sent".to_owned()),
                ],
                THREAD_ROWS,
            )?;
            let unread = unread_by_thread(&records, &who, &pid)?;
            let mut names = Names::new(&records, &who);
            let threads = roots
                .iter()
                .map(|m| {
                    let root = m["id"].as_str().unwrap_or_default().to_owned();
                    let org = requests::thread_organization(m)
                        .map(|o| {
                            names.of(
                                &serde_json::json!({ "reference": format!("Organization/{o}") }),
                            )
                        })
                        .unwrap_or_default();
                    ThreadRow {
                        unread: unread.get(&root).copied().unwrap_or(0),
                        root,
                        topic: m["topic"]["text"]
                            .as_str()
                            .unwrap_or("(no subject)")
                            .to_owned(),
                        with: org,
                        started: m["sent"]
                            .as_str()
                            .map(display::date_time)
                            .unwrap_or_default(),
                        patient: pid.clone(),
                        patient_name: String::new(),
                        assigned: String::new(),
                    }
                })
                .collect::<Vec<_>>();
            let care_team = records.care_team(&who, &pid)?;
            Ok((threads, care_team))
        })
        .await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    let frame = Frame::of(&s, View::Portal, &id, &p);
    Page::render(
        StatusCode::OK,
        &MessagesPage {
            csrf: s.csrf.clone(),
            nav: frame.nav,
            back: frame.back,
            base: frame.base,
            name: display::person_name(&p),
            threads,
            care_team,
        },
    )
    .into_response()
}

/// `POST /portal/{id}/messages`: starts a thread with one organization of the care team.
pub async fn new_message(
    State(state): State<WebState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (s, fields) = match view_form(&state, req, View::Portal).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let get = |k: &str| field(&fields, k).unwrap_or("").to_owned();
    let (to, topic, text) = (get("to"), get("topic"), get("text"));
    let (records, who, pid) = (state.records.clone(), s.caller.clone(), id.clone());
    let sent =
        blocking(move || records.send_message(&who, &pid, None, Some(&to), &topic, &text)).await;
    match sent {
        Ok(m) => Redirect::to(&format!("/portal/{id}/messages/{}", m.id)).into_response(),
        Err(e) => refused_or_error(
            &e,
            "The message was not sent",
            &format!("/portal/{id}/messages"),
        ),
    }
}

/// A message as a thread shows it.
pub(crate) struct MessageView {
    pub from: String,
    pub mine: bool,
    pub when: String,
    pub text: String,
}

/// A thread's messages as `who` reads them (marking those addressed to their side
/// read), and its subject and organization.
pub(crate) fn read_thread(
    records: &Records,
    who: &Caller,
    patient: &str,
    root: &str,
) -> Result<(String, String, Vec<MessageView>), RecordsError> {
    records.mark_thread_read(who, patient, root)?;
    let messages = records.thread(who, patient, root)?;
    let mut names = Names::new(records, who);
    let staff = who.role.is_staff();
    let topic = messages
        .first()
        .and_then(|m| m["topic"]["text"].as_str())
        .unwrap_or("(no subject)")
        .to_owned();
    let org = messages
        .first()
        .and_then(requests::thread_organization)
        .map(|o| names.of(&serde_json::json!({ "reference": format!("Organization/{o}") })))
        .unwrap_or_default();
    let views = messages
        .iter()
        .map(|m| {
            let from_patient_side = m["recipient"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| reference_id(x, "Organization").is_some()));
            let mine = from_patient_side != staff;
            let sender = &m["sender"];
            let from = if reference_id(sender, "Patient") == Some(patient)
                && who.patient.as_deref() == Some(patient)
            {
                "You".to_owned()
            } else {
                names.of(sender)
            };
            MessageView {
                from,
                mine,
                when: m["sent"]
                    .as_str()
                    .map(display::date_time)
                    .unwrap_or_default(),
                text: m["payload"][0]["contentString"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            }
        })
        .collect();
    Ok((topic, org, views))
}

#[derive(Template)]
#[template(path = "thread.html")]
pub(crate) struct ThreadPage {
    pub nav: Nav,
    pub back: String,
    pub back_url: String,
    pub name: String,
    pub topic: String,
    pub with: String,
    pub messages: Vec<MessageView>,
    pub reply_url: String,
    pub csrf: String,
    /// Staff: whom the thread is assigned to, and the form to change it.
    pub assign: Option<Assign>,
}

/// The thread's assignment, as staff see it.
pub(crate) struct Assign {
    pub url: String,
    /// (practitioner id, name, whether it is the current one)
    pub options: Vec<(String, String, bool)>,
    pub current: String,
}

/// `GET /portal/{id}/messages/{root}`: one thread, oldest first, with a reply form.
pub async fn thread(
    State(state): State<WebState>,
    Path((id, root)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (pid, r) = (id.clone(), root.clone());
    let (s, p, (topic, with, messages)) =
        match portal_read(&state, &headers, &id, move |records, who| {
            read_thread(&records, &who, &pid, &r)
        })
        .await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    let frame = Frame::of(&s, View::Portal, &id, &p);
    Page::render(
        StatusCode::OK,
        &ThreadPage {
            csrf: s.csrf.clone(),
            nav: frame.nav,
            back: "Back to messages".to_owned(),
            back_url: format!("{}/messages", frame.base),
            name: display::person_name(&p),
            topic,
            with,
            messages,
            reply_url: format!("/portal/{id}/messages/{root}"),
            assign: None,
        },
    )
    .into_response()
}

/// `POST /portal/{id}/messages/{root}`: a reply in the thread.
pub async fn reply(
    State(state): State<WebState>,
    Path((id, root)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (s, fields) = match view_form(&state, req, View::Portal).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    send_reply(
        &state,
        &s,
        &id,
        &root,
        field(&fields, "text").unwrap_or(""),
        &format!("/portal/{id}/messages/{root}"),
    )
    .await
}

/// Sends `text` as a reply in thread `root` of `patient`'s record, then shows the thread
/// again (`back`); an empty reply says so.
pub(crate) async fn send_reply(
    state: &WebState,
    s: &Signed,
    patient: &str,
    root: &str,
    text: &str,
    back: &str,
) -> Response {
    let (records, who, pid, r, t) = (
        state.records.clone(),
        s.caller.clone(),
        patient.to_owned(),
        root.to_owned(),
        text.to_owned(),
    );
    match blocking(move || records.send_message(&who, &pid, Some(&r), None, "", &t)).await {
        Ok(_) => Redirect::to(back).into_response(),
        Err(e) => refused_or_error(&e, "The reply was not sent", back),
    }
}

/// One line of "who looked at my record".
struct AccessRow {
    who: String,
    role: String,
    organization: String,
    when: String,
    what: String,
    /// A break-the-glass entry's reason (these are highlighted).
    emergency: Option<String>,
    refused: bool,
}

fn role_words(code: &str) -> &'static str {
    match code {
        "patient" => "Patient",
        "clinician" => "Clinician",
        "nurse" => "Nurse",
        "front-desk" => "Front desk",
        "org-admin" => "Administrator",
        "system-admin" => "System administrator",
        "proxy" => "Acting for the patient",
        _ => "",
    }
}

fn access_row(a: &StoredAudit, own_user: &str, names: &mut Names<'_>) -> AccessRow {
    let r = &a.record;
    let user = r
        .user
        .clone()
        .unwrap_or_else(|| "Someone not signed in".to_owned());
    let rtype = r
        .resource
        .as_deref()
        .and_then(|x| x.split('/').next())
        .unwrap_or("");
    let kind = display::kind_words(rtype);
    let what = match r.action.as_str() {
        "read" | "vread" => format!("Opened {kind}"),
        "search" => format!("Looked through {kind}"),
        "history" => format!("Looked at the history of {kind}"),
        "create" => format!("Added to {kind}"),
        "update" | "patch" => format!("Changed {kind}"),
        "delete" => format!("Removed from {kind}"),
        "everything" | "export" => "Downloaded the whole record".to_owned(),
        a if a == BREAK_THE_GLASS => "Opened your record in an emergency".to_owned(),
        other => format!("{other} ({kind})"),
    };
    AccessRow {
        who: if user == own_user {
            "You".to_owned()
        } else {
            user
        },
        role: role_words(r.role.as_deref().unwrap_or("")).to_owned(),
        organization: r
            .organization
            .as_deref()
            .map(|o| names.of(&serde_json::json!({ "reference": format!("Organization/{o}") })))
            .unwrap_or_default(),
        when: display::date_time(&oxehr_records::format_instant(r.time)),
        what,
        emergency: (r.action == BREAK_THE_GLASS).then(|| r.detail.clone().unwrap_or_default()),
        refused: r.outcome != "success",
    }
}

#[derive(Template)]
#[template(path = "access_log.html")]
struct AccessLogPage {
    nav: Nav,
    back: String,
    base: String,
    name: String,
    rows: Vec<AccessRow>,
    older: Option<i64>,
    paged: bool,
    /// Whether the signed-in person's own visits are shown too.
    mine: bool,
}

/// `GET /portal/{id}/access-log?before=seq`: who looked at the record, newest first,
/// [`ACCESS_LOG_ROWS`] a page; emergency ("break-the-glass") access is highlighted
/// with its reason.
pub async fn access_log(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    let before = q.get("before").and_then(|b| b.parse::<i64>().ok());
    let mine = q.get("mine").is_some_and(|m| m == "1");
    let pid = id.clone();
    let (s, p, (rows, older)) = match portal_read(&state, &headers, &id, move |records, who| {
        let filter = AuditFilter {
            patient: Some(pid),
            before,
            exclude_patients: !mine,
            ..AuditFilter::default()
        };
        let found = records.audit_events(&who, filter, ACCESS_LOG_ROWS + 1)?;
        let older = (found.len() > ACCESS_LOG_ROWS)
            .then(|| found.get(ACCESS_LOG_ROWS - 1).map(|a| a.seq))
            .flatten();
        let mut names = Names::new(&records, &who);
        let rows = found
            .iter()
            .take(ACCESS_LOG_ROWS)
            .map(|a| access_row(a, &who.user, &mut names))
            .collect::<Vec<_>>();
        Ok((rows, older))
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let frame = Frame::of(&s, View::Portal, &id, &p);
    Page::render(
        StatusCode::OK,
        &AccessLogPage {
            nav: frame.nav,
            back: frame.back,
            base: frame.base,
            name: display::person_name(&p),
            rows,
            older,
            paged: before.is_some(),
            mine,
        },
    )
    .into_response()
}

#[derive(Template)]
#[template(path = "sharing.html")]
struct SharingPage {
    nav: Nav,
    back: String,
    base: String,
    name: String,
    own: bool,
    rows: Vec<oxehr_records::SharingRow>,
    done: bool,
}

/// `GET /portal/{id}/sharing`: the organizations that can see the record and why, each
/// with the choice to allow or deny it.
pub async fn sharing(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    let pid = id.clone();
    let (s, p, rows) = match portal_read(&state, &headers, &id, move |records, who| {
        records.sharing(&who, &pid)
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let frame = Frame::of(&s, View::Portal, &id, &p);
    Page::render(
        StatusCode::OK,
        &SharingPage {
            own: s.caller.patient.as_deref() == Some(id.as_str()),
            nav: frame.nav,
            back: frame.back,
            base: frame.base,
            name: display::person_name(&p),
            rows,
            done: q.contains_key("saved"),
        },
    )
    .into_response()
}

/// `POST /portal/{id}/sharing`: `organization` and `choice` (`allow`, `deny`, or
/// `default`).
pub async fn set_sharing(
    State(state): State<WebState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (s, fields) = match view_form(&state, req, View::Portal).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let org = field(&fields, "organization").unwrap_or("").to_owned();
    let choice = match field(&fields, "choice") {
        Some("allow") => Some(true),
        Some("deny") => Some(false),
        Some("default") => None,
        _ => {
            return refused(
                &id,
                "sharing",
                "Nothing was changed",
                "choose allow or stop",
            )
        }
    };
    let (records, who, pid) = (state.records.clone(), s.caller.clone(), id.clone());
    match blocking(move || records.set_sharing(&who, &pid, &org, choice)).await {
        Ok(()) => Redirect::to(&format!("/portal/{id}/sharing?saved=1")).into_response(),
        Err(e) => error_page(&e),
    }
}

/// The most resources the JSON download holds; a larger record is cut there, and says
/// so (the FHIR API's `$everything` pages through any size).
pub const MAX_DOWNLOAD: usize = 20_000;

#[derive(Template)]
#[template(path = "download.html")]
struct DownloadPage {
    nav: Nav,
    back: String,
    base: String,
    name: String,
}

/// `GET /portal/{id}/download`: the ways to take the record away.
pub async fn download(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (s, p, ()) = match portal_read(&state, &headers, &id, |_, _| Ok(())).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let frame = Frame::of(&s, View::Portal, &id, &p);
    Page::render(
        StatusCode::OK,
        &DownloadPage {
            nav: frame.nav,
            back: frame.back,
            base: frame.base,
            name: display::person_name(&p),
        },
    )
    .into_response()
}

/// The patient's compartment as `who` may see it (what `$everything` gives), at most
/// [`MAX_DOWNLOAD`] resources; true when the record was cut there.
fn everything(
    records: &Records,
    who: &Caller,
    pid: &str,
) -> Result<(Vec<Value>, bool), RecordsError> {
    let patient = oxehr_fhir::ResourceId::parse(pid)
        .ok_or_else(|| RecordsError::NotFound(format!("Patient/{pid}")))?;
    records.patient_record(who, &patient, MAX_DOWNLOAD)
}

/// `GET /portal/{id}/download/record.xml`: the record as a C-CDA Continuity of Care
/// Document (the summary other doctors' systems import): problems, medications,
/// allergies, results, vital signs, immunizations, procedures, visits and social
/// history from what `$everything` gives the person, saved as a file.
pub async fn download_ccd(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let pid = id.clone();
    let (_, patient, (resources, _)) =
        match portal_read(&state, &headers, &id, move |records, who| {
            everything(&records, &who, &pid)
        })
        .await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    let now = oxehr_records::format_instant(oxehr_records::now_micros());
    let ctx = oxehr_ccda::ExportContext {
        author_organization: None,
        now: now.clone(),
        document_id: uuid::Uuid::new_v4().to_string(),
    };
    let xml = match oxehr_ccda::export_ccd(&patient, &resources, &ctx) {
        Ok(x) => x,
        Err(e) => {
            return error_page(&RecordsError::Internal(format!(
                "the summary document could not be written: {e}"
            )))
        }
    };
    let mut resp = (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/xml; charset=utf-8",
        )],
        xml,
    )
        .into_response();
    let file = format!("attachment; filename=\"health-summary-{}.xml\"", &now[..10]);
    if let Ok(v) = axum::http::HeaderValue::from_str(&file) {
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `GET /portal/{id}/download/record.json`: the whole record as the FHIR API's
/// `$everything` gives it (every resource of the patient's compartment the person may
/// see), as one FHIR Bundle of type `collection`, saved as a file.
pub async fn download_json(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let pid = id.clone();
    let (_, _, (resources, cut)) = match portal_read(&state, &headers, &id, move |records, who| {
        everything(&records, &who, &pid)
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = oxehr_records::format_instant(oxehr_records::now_micros());
    let bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": now,
        "total": resources.len(),
        "entry": resources
            .into_iter()
            .map(|r| serde_json::json!({ "resource": r }))
            .collect::<Vec<_>>(),
    });
    let mut resp = (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/fhir+json; charset=utf-8",
        )],
        bundle.to_string(),
    )
        .into_response();
    let file = format!("attachment; filename=\"health-record-{}.json\"", &now[..10]);
    if let Ok(v) = axum::http::HeaderValue::from_str(&file) {
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    if cut {
        if let Ok(v) = axum::http::HeaderValue::from_str(&MAX_DOWNLOAD.to_string()) {
            resp.headers_mut().insert("x-oxehr-cut-at", v);
        }
    }
    resp
}

#[derive(Template)]
#[template(path = "print.html")]
struct PrintPage {
    nav: Nav,
    base: String,
    name: String,
    facts: Vec<(&'static str, String)>,
    sections: Vec<chart::Section>,
    printed: String,
}

/// `GET /portal/{id}/print`: the whole record on one page made for paper (each
/// section in full, up to its page's limit, with where each entry came from).
pub async fn print(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let pid = id.clone();
    let (s, p, sections) = match portal_read(&state, &headers, &id, move |records, who| {
        let specs: Vec<&chart::SectionSpec> = chart::SECTIONS.iter().collect();
        chart::sections(&records, &who, &pid, &specs, chart::SECTION_ROWS)
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let frame = Frame::of(&s, View::Portal, &id, &p);
    let today = crate::pages::today();
    Page::render(
        StatusCode::OK,
        &PrintPage {
            nav: frame.nav,
            base: frame.base,
            name: display::person_name(&p),
            facts: crate::pages::facts(&p, &today),
            sections,
            printed: display::date(&today),
        },
    )
    .into_response()
}

/// A record a proxy looks after, as its home lists it.
struct CaredFor {
    id: String,
    name: String,
    born: String,
    restricted: bool,
}

#[derive(Template)]
#[template(path = "proxy_home.html")]
struct ProxyHome {
    nav: Nav,
    people: Vec<CaredFor>,
}

/// The home of a proxy (a parent, guardian or carer): the records it acts for.
pub(crate) async fn proxy_home(state: &WebState, s: &Signed) -> Response {
    let (records, who) = (state.records.clone(), s.caller.clone());
    let found = blocking(move || {
        let mut out = Vec::new();
        for p in records.proxy_patients(&who)? {
            let body = chart::patient(&records, &who, &p.id)?;
            out.push(CaredFor {
                name: display::person_name(&body),
                born: body["birthDate"]
                    .as_str()
                    .map(display::date)
                    .unwrap_or_default(),
                restricted: p.restricted,
                id: p.id,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    })
    .await;
    match found {
        Ok(people) => Page::render(
            StatusCode::OK,
            &ProxyHome {
                nav: Nav::of(s),
                people,
            },
        )
        .into_response(),
        Err(e) => error_page(&e),
    }
}

/// Someone who may act for the patient, as the patient's page lists them.
struct ProxyRow {
    id: String,
    account: String,
    name: String,
    relationship: String,
    since: String,
}

#[derive(Template)]
#[template(path = "proxies.html")]
struct ProxiesPage {
    nav: Nav,
    back: String,
    base: String,
    name: String,
    rows: Vec<ProxyRow>,
    done: Option<&'static str>,
    relationships: &'static [(&'static str, &'static str)],
}

const RELATIONSHIPS: [(&str, &str); 5] = [
    ("PRN", "Parent"),
    ("GUARD", "Guardian"),
    ("SPS", "Spouse or partner"),
    ("CHILD", "Adult child"),
    ("FRND", "Friend or carer"),
];

/// `GET /portal/{id}/proxies`: who may act for the patient, with grant and revoke.
pub async fn proxies(
    State(state): State<WebState>,
    Path(id): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    let pid = id.clone();
    let (s, p, people) = match portal_read(&state, &headers, &id, move |records, who| {
        let (found, _) = find(
            &records,
            &who,
            "RelatedPerson",
            &[
                ("patient", pid.clone()),
                ("active", "true".to_owned()),
                (
                    "identifier",
                    format!("{}|", oxehr_records::PROXY_ACCOUNT_SYSTEM),
                ),
            ],
            100,
        )?;
        Ok(found)
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let frame = Frame::of(&s, View::Portal, &id, &p);
    let rows = people
        .iter()
        .map(|r| ProxyRow {
            id: r["id"].as_str().unwrap_or_default().to_owned(),
            account: r["identifier"]
                .as_array()
                .and_then(|ids| {
                    ids.iter()
                        .find(|i| i["system"] == oxehr_records::PROXY_ACCOUNT_SYSTEM)
                })
                .and_then(|i| i["value"].as_str())
                .unwrap_or_default()
                .to_owned(),
            name: display::person_name(r),
            relationship: display::concept(&r["relationship"][0]).unwrap_or_default(),
            since: r["period"]["start"]
                .as_str()
                .map(display::date)
                .unwrap_or_default(),
        })
        .collect();
    let done = match q.get("done").map(String::as_str) {
        Some("granted") => {
            Some("Granted. They can see and act for this record from their next request.")
        }
        Some("revoked") => {
            Some("Revoked. From their next request they see nothing of this record.")
        }
        _ => None,
    };
    Page::render(
        StatusCode::OK,
        &ProxiesPage {
            nav: frame.nav,
            back: frame.back,
            base: frame.base,
            name: display::person_name(&p),
            rows,
            done,
            relationships: &RELATIONSHIPS,
        },
    )
    .into_response()
}

/// `POST /portal/{id}/proxies`: grant (`account`, `name`, `relationship`) or revoke
/// (`revoke` = the RelatedPerson's id). A grant is a RelatedPerson of the patient that
/// names the account (`oxehr_records::PROXY_ACCOUNT_SYSTEM`); a revocation makes it
/// inactive. Records decides who may write either (the patient in their own record, or
/// staff); a proxy may not.
pub async fn set_proxy(
    State(state): State<WebState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (s, fields) = match view_form(&state, req, View::Portal).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let get = |k: &str| field(&fields, k).unwrap_or("").trim().to_owned();
    let (records, who, pid) = (state.records.clone(), s.caller.clone(), id.clone());
    let rtype = oxehr_fhir::ResourceType::parse("RelatedPerson");
    let Some(rtype) = rtype else {
        return error_page(&RecordsError::Internal("type".into()));
    };
    let revoke = get("revoke");
    let result = if !revoke.is_empty() {
        blocking(move || {
            let rid = oxehr_fhir::ResourceId::parse(&revoke)
                .ok_or_else(|| RecordsError::NotFound(format!("RelatedPerson/{revoke}")))?;
            let stored = records.read(&who, &rtype, &rid)?;
            let mut body =
                chart::body(&stored).ok_or_else(|| RecordsError::Internal("stored body".into()))?;
            if reference_id(&body["patient"], "Patient") != Some(pid.as_str()) {
                return Err(RecordsError::NotFound(format!("RelatedPerson/{revoke}")));
            }
            body["active"] = Value::Bool(false);
            body["period"]["end"] =
                Value::String(oxehr_records::format_instant(oxehr_records::now_micros()));
            records.update(&who, &rtype, &rid, body, Some(stored.version))?;
            Ok("revoked")
        })
        .await
    } else {
        let (account, name, rel) = (
            get("account").to_lowercase(),
            get("name"),
            get("relationship"),
        );
        let Some((code, display)) = RELATIONSHIPS.iter().find(|(c, _)| *c == rel).copied() else {
            return refused(
                &id,
                "proxies",
                "Nobody was added",
                "choose how they are related",
            );
        };
        if account.is_empty() || name.is_empty() {
            return refused(
                &id,
                "proxies",
                "Nobody was added",
                "give their oxehr user name and their name",
            );
        }
        blocking(move || {
            let body = oxehr_records::requests::proxy_grant(
                &pid,
                &account,
                &name,
                (code, display),
                &oxehr_records::format_instant(oxehr_records::now_micros()),
            );
            records.create(&who, &rtype, body, None)?;
            Ok("granted")
        })
        .await
    };
    match result {
        Ok(done) => Redirect::to(&format!("/portal/{id}/proxies?done={done}")).into_response(),
        Err(e) => refused_or_error(&e, "Nothing was changed", &format!("/portal/{id}/proxies")),
    }
}
