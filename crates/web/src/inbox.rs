//! The clinician's inbox: what patients asked of the signed-in person's organization —
//! refill requests to approve or deny, unread messages to answer, and appointment
//! requests to confirm or decline. Read and written
//! through `oxehr-records` as the signed-in clinician or nurse, whose rules
//! (`oxehr_records::requests`) decide who may answer what; the lists are the
//! organization's own (`owner` / `recipient` is it) under the access policy.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use oxehr_records::requests::{reference_id, RefillAnswer, OPEN_TASK_STATUSES};
use oxehr_records::RecordsError;

use crate::chart;
use crate::display;
use crate::pages::{
    blocking, error_page, only_chart_users, record_read, view_form, Frame, Nav, Page, View,
};
use crate::portal::{read_thread, send_reply, Names, ThreadPage, ThreadRow};
use crate::session::{field, signed_in};
use crate::WebState;

/// The most requests and threads the inbox lists at once.
pub const INBOX_ROWS: usize = 100;

/// A refill request as the inbox lists it.
struct RefillRow {
    task: String,
    patient: String,
    patient_name: String,
    medication: String,
    asked: String,
    note: String,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    nav: Nav,
    refills: Vec<RefillRow>,
    threads: Vec<ThreadRow>,
    appointments: Vec<crate::appointments::RequestRow>,
    can_approve: bool,
    done: Option<&'static str>,
}

/// The patients' names among included resources, by id.
fn patient_names(included: &[Value]) -> HashMap<String, String> {
    included
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .filter_map(|p| Some((p["id"].as_str()?.to_owned(), display::person_name(p))))
        .collect()
}

/// `GET /inbox`: the organization's open refill requests and unread messages.
pub async fn inbox(
    State(state): State<WebState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let s = match signed_in(&state, &headers, None).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if let Some(r) = only_chart_users(&s) {
        return r;
    }
    let Some(org) = s.caller.organization.clone() else {
        return error_page(&RecordsError::Forbidden("no organization".into()));
    };
    let (records, who) = (state.records.clone(), s.caller.clone());
    let found = blocking(move || {
        let page = chart::search(
            &records,
            &who,
            "Task",
            &[
                ("owner", format!("Organization/{org}")),
                ("status", OPEN_TASK_STATUSES.to_owned()),
                ("_sort", "authored-on".to_owned()),
                ("_include", "Task:patient".to_owned()),
            ],
            INBOX_ROWS,
        )?;
        let tasks: Vec<Value> = page.matches.iter().filter_map(chart::body).collect();
        let included: Vec<Value> = page.included.iter().filter_map(chart::body).collect();
        let names = patient_names(&included);
        let refills = tasks
            .iter()
            .map(|t| {
                let patient = reference_id(&t["for"], "Patient")
                    .unwrap_or_default()
                    .to_owned();
                RefillRow {
                    task: t["id"].as_str().unwrap_or_default().to_owned(),
                    patient_name: names.get(&patient).cloned().unwrap_or_default(),
                    patient,
                    medication: t["focus"]["display"]
                        .as_str()
                        .or_else(|| t["description"].as_str())
                        .unwrap_or("A medication")
                        .to_owned(),
                    asked: t["authoredOn"]
                        .as_str()
                        .map(display::date_time)
                        .unwrap_or_default(),
                    note: t["note"][0]["text"].as_str().unwrap_or_default().to_owned(),
                }
            })
            .collect::<Vec<_>>();
        let page = chart::search(
            &records,
            &who,
            "Communication",
            &[
                ("recipient", format!("Organization/{org}")),
                ("received:missing", "true".to_owned()),
                ("_sort", "sent".to_owned()),
                ("_include", "Communication:subject".to_owned()),
            ],
            INBOX_ROWS,
        )?;
        let unread: Vec<Value> = page.matches.iter().filter_map(chart::body).collect();
        let included: Vec<Value> = page.included.iter().filter_map(chart::body).collect();
        let names = patient_names(&included);
        // One row a thread: the oldest unread message's, with the thread's count.
        let mut order: Vec<String> = Vec::new();
        let mut rows: HashMap<String, ThreadRow> = HashMap::new();
        let mut orgs = Names::new(&records, &who);
        for m in &unread {
            let root = m["partOf"]
                .as_array()
                .and_then(|a| a.iter().find_map(|r| reference_id(r, "Communication")))
                .or_else(|| m["id"].as_str())
                .unwrap_or_default()
                .to_owned();
            if let Some(r) = rows.get_mut(&root) {
                r.unread += 1;
                continue;
            }
            let patient = reference_id(&m["subject"], "Patient")
                .unwrap_or_default()
                .to_owned();
            order.push(root.clone());
            rows.insert(
                root.clone(),
                ThreadRow {
                    root,
                    topic: m["topic"]["text"]
                        .as_str()
                        .unwrap_or("(no subject)")
                        .to_owned(),
                    with: orgs.of(&m["sender"]),
                    started: m["sent"]
                        .as_str()
                        .map(display::date_time)
                        .unwrap_or_default(),
                    unread: 1,
                    patient_name: names.get(&patient).cloned().unwrap_or_default(),
                    patient,
                    assigned: String::new(),
                },
            );
        }
        // Whom each thread is assigned to: its first message's Practitioner recipient.
        let comm = oxehr_fhir::ResourceType::parse("Communication")
            .ok_or_else(|| RecordsError::Internal("type".into()))?;
        for (root, row) in rows.iter_mut() {
            let Some(id) = oxehr_fhir::ResourceId::parse(root) else {
                continue;
            };
            let first = records.read(&who, &comm, &id).ok();
            if let Some(p) = first
                .as_ref()
                .and_then(chart::body)
                .and_then(|f| oxehr_records::requests::assignee(&f))
            {
                row.assigned =
                    orgs.of(&serde_json::json!({ "reference": format!("Practitioner/{p}") }));
            }
        }
        let threads = order
            .into_iter()
            .filter_map(|r| rows.remove(&r))
            .collect::<Vec<_>>();
        let appointments = crate::appointments::requests(&records, &who)?;
        Ok((refills, threads, appointments))
    })
    .await;
    let (refills, threads, appointments) = match found {
        Ok(x) => x,
        Err(e) => return error_page(&e),
    };
    let done = match q.get("done").map(String::as_str) {
        Some("approved") => Some("Approved: the new prescription is in the patient's record."),
        Some("denied") => Some("Not approved: the patient sees your reason."),
        Some("confirmed") => Some("Confirmed: the appointment is booked."),
        Some("declined") => {
            Some("Declined: the time is free again, and the patient sees your reason.")
        }
        _ => None,
    };
    Page::render(
        StatusCode::OK,
        &InboxPage {
            can_approve: s.caller.role == oxehr_auth::Role::Clinician,
            nav: Nav::of(&s),
            refills,
            threads,
            appointments,
            done,
        },
    )
    .into_response()
}

/// `POST /inbox/refills/{task}`: approve (`decision=approve`) or deny with a `reason`.
pub async fn answer_refill(
    State(state): State<WebState>,
    Path(task): Path<String>,
    req: Request,
) -> Response {
    let (s, fields) = match view_form(&state, req, View::Chart).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let answer = match field(&fields, "decision") {
        Some("approve") => RefillAnswer::Approve,
        Some("deny") => RefillAnswer::Deny {
            reason: field(&fields, "reason").unwrap_or("").to_owned(),
        },
        _ => {
            return crate::pages::message(
                StatusCode::BAD_REQUEST,
                "Choose an answer",
                "Approve the refill, or deny it with a reason.",
            )
            .into_response()
        }
    };
    let approved = answer == RefillAnswer::Approve;
    let (records, who) = (state.records.clone(), s.caller.clone());
    match blocking(move || records.answer_refill(&who, &task, answer)).await {
        Ok(_) => Redirect::to(if approved {
            "/inbox?done=approved"
        } else {
            "/inbox?done=denied"
        })
        .into_response(),
        Err(e) if e.category() == oxehr_records::Category::Invalid => crate::pages::message(
            StatusCode::BAD_REQUEST,
            "Not answered",
            "To deny a refill, give the patient a reason.",
        )
        .into_response(),
        Err(e) if e.category() == oxehr_records::Category::Conflict => crate::pages::message(
            StatusCode::CONFLICT,
            "Already answered",
            "Someone answered this request already. The inbox shows what is still open.",
        )
        .into_response(),
        Err(e) => error_page(&e),
    }
}

/// `GET /patients/{id}/messages/{root}`: a thread with a patient, in the chart.
pub async fn thread(
    State(state): State<WebState>,
    Path((id, root)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (pid, r) = (id.clone(), root.clone());
    let (s, (p, (topic, with, messages), (colleagues, current))) =
        match record_read(&state, &headers, &id, View::Chart, move |records, who| {
            let p = chart::patient(&records, &who, &pid)?;
            let read = read_thread(&records, &who, &pid, &r)?;
            let current = records
                .thread(&who, &pid, &r)?
                .first()
                .and_then(oxehr_records::requests::assignee);
            Ok((p, read, (records.colleagues(&who)?, current)))
        })
        .await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    let current_name = colleagues
        .iter()
        .find(|(c, _)| Some(c) == current.as_ref())
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    let assign = crate::portal::Assign {
        url: format!("/patients/{id}/messages/{root}/assign"),
        options: colleagues
            .into_iter()
            .map(|(c, n)| {
                let selected = Some(&c) == current.as_ref();
                (c, n, selected)
            })
            .collect(),
        current: current_name,
    };
    let frame = Frame::of(&s, View::Chart, &id, &p);
    Page::render(
        StatusCode::OK,
        &ThreadPage {
            csrf: s.csrf.clone(),
            nav: frame.nav,
            back: "Back to the inbox".to_owned(),
            back_url: "/inbox".to_owned(),
            name: display::person_name(&p),
            topic,
            with,
            messages,
            reply_url: format!("/patients/{id}/messages/{root}"),
            assign: Some(assign),
        },
    )
    .into_response()
}

/// `POST /patients/{id}/messages/{root}`: the clinician's reply to the patient.
pub async fn reply(
    State(state): State<WebState>,
    Path((id, root)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (s, fields) = match view_form(&state, req, View::Chart).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let back = format!("/patients/{id}/messages/{root}");
    send_reply(
        &state,
        &s,
        &id,
        &root,
        field(&fields, "text").unwrap_or(""),
        &back,
    )
    .await
}

/// `POST /patients/{id}/messages/{root}/assign`: assigns the thread to a colleague
/// (`practitioner`), or to nobody (empty).
pub async fn assign(
    State(state): State<WebState>,
    Path((id, root)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (s, fields) = match view_form(&state, req, View::Chart).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let practitioner = field(&fields, "practitioner")
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    let (records, who, pid, r) = (
        state.records.clone(),
        s.caller.clone(),
        id.clone(),
        root.clone(),
    );
    match blocking(move || records.assign_thread(&who, &pid, &r, practitioner.as_deref())).await {
        Ok(_) => Redirect::to(&format!("/patients/{id}/messages/{root}")).into_response(),
        Err(e) => error_page(&e),
    }
}
