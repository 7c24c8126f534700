//! "Patients due for care": the population worklist on the clinician's side. One care
//! rule at a time (colorectal screening, HbA1c, …), the patients of the person's
//! organization whose gap is open, earliest due first, each linking to the chart, paged.
//! The list is `records`'s ([`oxehr_records::Records::worklist`]): the access policy
//! decides who is on it, and every name shown is an audited read.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use oxehr_records::clinical::rule_titles;

use crate::pages::{self, Page};
use crate::session::signed_in;
use crate::{display, WebState};

/// Patients per page.
pub const PAGE_ROWS: usize = 50;

/// One patient due.
#[derive(Debug, Clone)]
pub struct Row {
    pub patient_id: String,
    pub name: String,
    pub born: String,
    pub when: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "worklist.html")]
struct WorklistPage {
    nav: crate::pages::Nav,
    rules: Vec<(String, String)>,
    rule: String,
    title: String,
    rows: Vec<Row>,
    next: Option<String>,
    pending: usize,
}

#[derive(Debug, serde::Deserialize)]
pub struct Params {
    rule: Option<String>,
    after: Option<String>,
}

/// `GET /care-due[?rule=…][&after=…]`.
pub async fn worklist(
    State(state): State<WebState>,
    Query(q): Query<Params>,
    headers: HeaderMap,
) -> Response {
    let s = match signed_in(&state, &headers, None).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if let Some(r) = pages::only_chart_users(&s) {
        return r;
    }
    let rules = rule_titles();
    let rule = q
        .rule
        .filter(|r| rules.iter().any(|(id, _)| id == r))
        .or_else(|| rules.first().map(|(id, _)| id.clone()))
        .unwrap_or_default();
    let title = rules
        .iter()
        .find(|(id, _)| *id == rule)
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let (records, who, r, after) = (
        state.records.clone(),
        s.caller.clone(),
        rule.clone(),
        q.after,
    );
    let today = pages::today();
    let day = today.clone();
    let found = pages::blocking(move || {
        let page = records.worklist(
            &who,
            &r,
            "open",
            after.as_deref(),
            PAGE_ROWS,
            time::OffsetDateTime::now_utc().date(),
        )?;
        let ids: Vec<String> = page.rows.iter().map(|r| r.patient.clone()).collect();
        let named: Vec<Value> = records
            .patients_named(&who, &ids)?
            .iter()
            .filter_map(crate::chart::body)
            .collect();
        let mut rows = Vec::new();
        for row in &page.rows {
            let p = named
                .iter()
                .find(|p| p["id"] == row.patient.as_str())
                .cloned()
                .unwrap_or(Value::Null);
            let born = p["birthDate"]
                .as_str()
                .map(|b| {
                    let age = display::age(b, &day)
                        .map(|a| format!(" (age {a})"))
                        .unwrap_or_default();
                    format!("{}{age}", display::date(b))
                })
                .unwrap_or_default();
            rows.push(Row {
                patient_id: row.patient.clone(),
                name: if p.is_null() {
                    "A patient".to_owned()
                } else {
                    display::person_name(&p)
                },
                born,
                when: crate::findings::when(&row.gap, &day),
                reason: crate::findings::why(&row.gap.reason),
            });
        }
        Ok((rows, page.next, page.pending))
    })
    .await;
    let (rows, next, pending) = match found {
        Ok(x) => x,
        Err(e) => return pages::error_page(&e),
    };
    Page::render(
        StatusCode::OK,
        &WorklistPage {
            nav: crate::pages::Nav::of(&s),
            rules,
            rule,
            title,
            rows,
            next,
            pending,
        },
    )
    .into_response()
}
