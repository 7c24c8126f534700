//! "Incoming records": what arrived from other organizations' systems and needs a
//! person. Two lists, each under the signed-in person's rights (`oxehr_records`):
//! - **possible duplicate patients** (clinicians, nurses and system administrators who
//!   may see both records): a record that arrived for someone the practice may already
//!   know, shown side by side with what agrees and what differs; merge them, or say
//!   they are two people;
//! - **messages that could not be filed** (system administrators: the interface
//!   triage queue): why, and "try again" after a fix, or "set aside".

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use oxehr_auth::{Caller, Role};
use oxehr_records::{Decision, RecordsError};
use serde_json::Value;

use crate::display;
use crate::pages::{blocking, error_page, message, signed_form, Nav, Page};
use crate::portal::Names;
use crate::session::{field, signed_in};
use crate::WebState;

/// The most pairs and messages the page lists at once.
pub const REVIEW_ROWS: usize = 50;

/// Who the page is for: clinicians, nurses and system administrators.
pub(crate) fn may_review(c: &Caller) -> bool {
    matches!(c.role, Role::Clinician | Role::Nurse | Role::SystemAdmin)
}

/// One side of a pair, as a person compares them.
struct Person {
    id: String,
    name: String,
    born: String,
    sex: String,
    numbers: String,
    address: String,
    registered_by: String,
}

struct Pair {
    id: String,
    how_sure: &'static str,
    agree: String,
    differ: String,
    arrived: String,
    /// The record that arrived, then the one already in the record.
    sides: Vec<(&'static str, Person)>,
    known_name: String,
}

struct Held {
    id: String,
    received: String,
    from: String,
    kind: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    nav: Nav,
    pairs: Vec<Pair>,
    held: Option<Vec<Held>>,
    done: Option<String>,
}

/// `text` with its first letter in upper case, to open a line.
fn capitalized(text: &str) -> String {
    let mut c = text.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn grade_words(grade: &str) -> &'static str {
    match grade {
        "certain" => "Almost certainly the same person",
        "probable" => "Probably the same person",
        _ => "Possibly the same person",
    }
}

fn field_words(field: &str) -> &'static str {
    match field {
        "identifier" => "ID number",
        "name" => "name",
        "birthDate" => "date of birth",
        "gender" => "sex",
        "address" => "address",
        "phone" => "phone",
        "email" => "email",
        _ => "other details",
    }
}

fn person(p: &Value, names: &mut Names<'_>) -> Person {
    let numbers = p["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            let value = i["value"].as_str()?;
            let kind = i["type"]["text"]
                .as_str()
                .or_else(|| i["type"]["coding"][0]["display"].as_str())
                .unwrap_or("Number");
            Some(format!("{kind} {value}"))
        })
        .take(3)
        .collect::<Vec<_>>()
        .join(", ");
    let address = p["address"][0]
        .as_object()
        .map(|a| {
            let mut parts: Vec<String> = a
                .get("line")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect();
            for k in ["city", "state", "postalCode"] {
                if let Some(v) = a.get(k).and_then(Value::as_str) {
                    parts.push(v.to_owned());
                }
            }
            parts.join(", ")
        })
        .unwrap_or_default();
    Person {
        id: p["id"].as_str().unwrap_or_default().to_owned(),
        name: display::person_name(p),
        born: p["birthDate"]
            .as_str()
            .map(display::date)
            .unwrap_or_default(),
        sex: match p["gender"].as_str() {
            Some("female") => "Female".into(),
            Some("male") => "Male".into(),
            Some("other") => "Other".into(),
            _ => "Not recorded".into(),
        },
        numbers: if numbers.is_empty() {
            "None recorded".into()
        } else {
            numbers
        },
        address: if address.is_empty() {
            "Not recorded".into()
        } else {
            address
        },
        registered_by: if p["managingOrganization"].is_object() {
            names.of(&p["managingOrganization"])
        } else {
            "Not recorded".into()
        },
    }
}

/// `GET /review`: the lists the signed-in person may work through.
pub async fn review(
    State(state): State<WebState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let s = match signed_in(&state, &headers, None).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if !may_review(&s.caller) {
        return message(
            StatusCode::FORBIDDEN,
            "Not for your role",
            "Incoming records are reviewed by clinicians, nurses and system administrators.",
        )
        .into_response();
    }
    let (records, who) = (state.records.clone(), s.caller.clone());
    let found = blocking(move || {
        let patient_type = oxehr_fhir::ResourceType::parse("Patient")
            .ok_or_else(|| RecordsError::Internal("type".into()))?;
        let mut names = Names::new(&records, &who);
        let mut pairs = Vec::new();
        for d in records.duplicates(&who, REVIEW_ROWS)? {
            let read = |id: &str| -> Result<Value, RecordsError> {
                let rid = oxehr_fhir::ResourceId::parse(id)
                    .ok_or_else(|| RecordsError::NotFound(id.to_owned()))?;
                let r = records.read(&who, &patient_type, &rid)?;
                crate::chart::body(&r).ok_or_else(|| RecordsError::Gone(id.to_owned()))
            };
            let (Ok(new), Ok(known)) = (read(&d.patient), read(&d.other)) else {
                continue;
            };
            let evidence: Vec<Value> = serde_json::from_str(&d.evidence).unwrap_or_default();
            let list = |outcome: &str| {
                let v: Vec<&str> = evidence
                    .iter()
                    .filter(|e| e["agreement"] == outcome)
                    .filter_map(|e| e["field"].as_str().map(field_words))
                    .collect();
                v.join(", ")
            };
            let (agree, partly, differ) = (list("agree"), list("partial"), list("disagree"));
            pairs.push(Pair {
                id: d.id.clone(),
                how_sure: grade_words(&d.grade),
                agree: if partly.is_empty() {
                    agree
                } else if agree.is_empty() {
                    format!("{partly} (nearly)")
                } else {
                    format!("{agree}; nearly: {partly}")
                },
                differ,
                arrived: display::date_time(&oxehr_records::format_instant(d.found)),
                known_name: display::person_name(&known),
                sides: vec![
                    ("Arrived", person(&new, &mut names)),
                    ("Already in the record", person(&known, &mut names)),
                ],
            });
        }
        let held = if who.role == Role::SystemAdmin {
            Some(
                records
                    .triage(&who, REVIEW_ROWS)?
                    .into_iter()
                    .map(|m| Held {
                        id: m.id,
                        received: display::date_time(&oxehr_records::format_instant(m.received)),
                        from: m.interface,
                        kind: capitalized(&oxehr_hl7v2::message_title(&m.kind)),
                        reason: m.reason.unwrap_or_default(),
                    })
                    .collect(),
            )
        } else {
            None
        };
        Ok((pairs, held))
    })
    .await;
    let (pairs, held) = match found {
        Ok(x) => x,
        Err(e) => return error_page(&e),
    };
    let done = q.get("done").map(|d| match d.as_str() {
        "merged" => "The two records are now one.".to_owned(),
        "distinct" => "Noted: they are two different people.".to_owned(),
        "dismissed" => "The message was set aside.".to_owned(),
        other => other.chars().take(200).collect(),
    });
    Page::render(
        StatusCode::OK,
        &ReviewPage {
            nav: Nav::of(&s),
            pairs,
            held,
            done,
        },
    )
    .into_response()
}

/// `POST /review/duplicates/{id}`: `decision=merge` (the newer record into the one the
/// practice knows) or `decision=distinct`.
pub async fn decide(
    State(state): State<WebState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (s, fields) = match signed_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !may_review(&s.caller) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let decision = match field(&fields, "decision") {
        Some("merge") => Decision::Merge,
        Some("distinct") => Decision::Distinct,
        _ => {
            return message(
                StatusCode::BAD_REQUEST,
                "Choose an answer",
                "Merge the records, or say they are two people.",
            )
            .into_response()
        }
    };
    let (records, who) = (state.records.clone(), s.caller.clone());
    match blocking(move || records.decide_duplicate(&who, &id, decision)).await {
        Ok(()) => Redirect::to(match decision {
            Decision::Merge => "/review?done=merged",
            Decision::Distinct => "/review?done=distinct",
        })
        .into_response(),
        Err(e) => error_page(&e),
    }
}

/// `POST /review/messages/{id}`: `decision=retry` or `decision=dismiss` (system
/// administrators).
pub async fn message_decision(
    State(state): State<WebState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (s, fields) = match signed_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let retry = match field(&fields, "decision") {
        Some("retry") => true,
        Some("dismiss") => false,
        _ => {
            return message(
                StatusCode::BAD_REQUEST,
                "Choose an answer",
                "Try the message again, or set it aside.",
            )
            .into_response()
        }
    };
    let (records, who) = (state.records.clone(), s.caller.clone());
    let done = blocking(move || {
        if retry {
            records.reprocess_held(&who, &id)
        } else {
            records.dismiss(&who, &id).map(|()| "dismissed".to_owned())
        }
    })
    .await;
    match done {
        Ok(text) => {
            let text = if text == "dismissed" {
                text
            } else {
                format!("The message was tried again: {text}.")
            };
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("done", &text)
                .finish();
            Redirect::to(&format!("/review?{q}")).into_response()
        }
        Err(e) => error_page(&e),
    }
}
