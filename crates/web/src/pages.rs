//! The pages: one askama template a page, inside `base.html`, and the handlers that read
//! what they show through `oxehr-records` as the signed-in person.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use oxehr_auth::{Caller, Role};
use std::sync::Arc;

use oxehr_records::{Records, RecordsError};

use crate::chart::{self, PatientRow, PatientSearch, Section};
use crate::document::{self, Part};
use crate::session::{self, field, signed_in, NotSignedIn, Signed};
use crate::{csrf, display, forms, WebState};

/// A rendered page with its status.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub html: String,
}

impl Page {
    pub fn render<T: Template>(status: StatusCode, t: &T) -> Page {
        match t.render() {
            Ok(html) => Page { status, html },
            Err(e) => {
                tracing::error!(error = %e, "a page template failed to render");
                Page {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    html: "<!doctype html><html lang=\"en\"><title>Error</title><p>This page could not be shown.</p></html>"
                        .into(),
                }
            }
        }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (self.status, Html(self.html)).into_response()
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    title: &'a str,
    text: &'a str,
}

/// A page that only says something.
pub fn message(status: StatusCode, title: &str, text: &str) -> Page {
    Page::render(status, &Message { title, text })
}

/// The sign-in form (its action is `/sign-in`).
#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignIn<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub hidden: Vec<(&'a str, &'a str)>,
    pub username: &'a str,
    pub message: Option<&'a str>,
}

/// The sign-in page with a fresh double-submit token (cookie and field).
pub fn sign_in(
    state: &WebState,
    status: StatusCode,
    username: &str,
    message: Option<&str>,
) -> Response {
    let token = csrf::new_token();
    let mut resp = Page::render(
        status,
        &SignIn {
            action: "/sign-in",
            csrf: &token,
            hidden: vec![],
            username,
            message,
        },
    )
    .into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(state, csrf::COOKIE, &token, None),
    );
    resp
}

/// What the page header shows: who is signed in, the session's form token, and which
/// links: the chart's (clinicians and nurses) or the portal's for one patient.
pub(crate) struct Nav {
    pub user: String,
    pub csrf: String,
    pub staff_chart: bool,
    /// Whether "Incoming records" is theirs to review.
    pub review: bool,
    /// The portal pages' base (`/portal/{patient id}`) and whose record it is
    /// (`None` for a patient's own: "My record").
    pub portal: Option<PortalNav>,
}

pub(crate) struct PortalNav {
    pub base: String,
    /// The first name of the patient a proxy acts for; empty for a patient's own pages.
    pub whose: String,
}

impl Nav {
    pub(crate) fn of(s: &Signed) -> Nav {
        Nav {
            user: s.caller.user.clone(),
            csrf: s.csrf.clone(),
            staff_chart: uses_chart(&s.caller),
            review: crate::review::may_review(&s.caller),
            portal: s.caller.patient.as_ref().map(|p| PortalNav {
                base: format!("/portal/{p}"),
                whose: String::new(),
            }),
        }
    }

    /// The header of a portal page about patient `pid` (`whose`: their first name when
    /// the person signed in acts for them).
    pub(crate) fn portal(s: &Signed, pid: &str, whose: &str) -> Nav {
        Nav {
            portal: Some(PortalNav {
                base: format!("/portal/{pid}"),
                whose: whose.to_owned(),
            }),
            ..Nav::of(s)
        }
    }
}

/// The roles this chart is for.
fn uses_chart(c: &Caller) -> bool {
    matches!(c.role, Role::Clinician | Role::Nurse)
}

fn role_text(role: Role) -> &'static str {
    match role {
        Role::Patient => "Your own record in the browser (the patient portal) is coming. Until then, apps you connect with SMART on FHIR can show it to you.",
        Role::FrontDesk => "Front-desk pages (registration and scheduling) are coming. Your account can already use the FHIR API for the patients in your organization's care.",
        Role::OrgAdmin => "Administration pages are coming. Your account can already read your organization's audit trail through the FHIR API.",
        Role::SystemAdmin => "Administration pages are coming. Manage accounts and apps with the oxehr command (oxehr user, oxehr client) and read the audit trail through the FHIR API.",
        Role::Clinician | Role::Nurse => "Open the patient list to see the charts of the patients in your care.",
        Role::Proxy => "Pages for the records you look after are coming. Until then, apps you connect with SMART on FHIR can show them to you.",
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home<'a> {
    nav: Nav,
    role_text: &'a str,
    /// Care due in the organization: (rule id, title, patients due).
    due: Vec<(String, String, i64)>,
}

/// `GET /`: the sign-in page, or the home page of the signed-in person's role.
pub async fn home(State(state): State<WebState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers, None).await {
        Ok(s) if s.caller.role == Role::Proxy => crate::portal::proxy_home(&state, &s).await,
        Ok(s) if s.caller.role == Role::Patient && s.caller.patient.is_some() => {
            let pid = s.caller.patient.clone().unwrap_or_default();
            crate::portal::home_page(&state, &headers, &pid).await
        }
        Ok(s) => {
            let nav = Nav::of(&s);
            // The population worklist at a glance, for the staff who open charts.
            let due = if nav.staff_chart {
                let (records, who) = (state.records.clone(), s.caller.clone());
                blocking(move || {
                    records.worklist_summary(&who, time::OffsetDateTime::now_utc().date())
                })
                .await
                .unwrap_or_default()
            } else {
                Vec::new()
            };
            Page::render(
                StatusCode::OK,
                &Home {
                    nav,
                    role_text: role_text(s.caller.role),
                    due,
                },
            )
            .into_response()
        }
        Err(NotSignedIn::Anonymous) => sign_in(&state, StatusCode::OK, "", None),
        Err(e) => e.into_response(),
    }
}

/// A form post's fields and the signed-in person, once its token matched the session
/// (else the answer: sign-in, "session ended", or "this form has expired").
pub(crate) async fn signed_form(
    state: &WebState,
    req: Request,
) -> Result<(Signed, Vec<(String, String)>), Response> {
    let (headers, fields) = session::read_form(req).await?;
    let s = signed_in(state, &headers, Some(field(&fields, csrf::FIELD)))
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((s, fields))
}

/// Runs a records call for a page on a blocking thread.
pub(crate) async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, RecordsError> + Send + 'static,
) -> Result<R, RecordsError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(RecordsError::Internal("worker failed".into())))
}

/// A records error as a page: never a detail about a record the person may not see.
pub(crate) fn error_page(e: &RecordsError) -> Response {
    use oxehr_records::Category as C;
    let (status, title, text) = match e.category() {
        C::NotFound | C::Gone => (
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such record.",
        ),
        C::Forbidden | C::NotAllowed | C::Unauthorized => (
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Your account may not see this.",
        ),
        C::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "oxehr is busy right now. Try again in a moment.",
        ),
        C::Invalid => (
            StatusCode::BAD_REQUEST,
            "Cannot do that",
            "The request could not be understood.",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "This page could not be shown. The problem was logged.",
        ),
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(category = ?e.category(), "a page failed");
    }
    message(status, title, text).into_response()
}

pub(crate) fn only_chart_users(s: &Signed) -> Option<Response> {
    (!uses_chart(&s.caller)).then(|| {
        message(
            StatusCode::FORBIDDEN,
            "Not for your role",
            "The chart is for clinicians and nurses.",
        )
        .into_response()
    })
}

#[derive(Template)]
#[template(path = "patients.html")]
struct Patients<'a> {
    nav: Nav,
    search: PatientSearch,
    searched: bool,
    heading: &'a str,
    empty: &'a str,
    count_text: String,
    rows: Vec<PatientRow>,
    error: Option<String>,
}

async fn patient_list(state: &WebState, s: &Signed, search: PatientSearch) -> Response {
    let searched = !search.is_empty();
    let (records, who) = (state.records.clone(), s.caller.clone());
    let mut pairs = search.pairs();
    pairs.push(("_sort", "family,given".to_owned()));
    let found =
        blocking(move || chart::search(&records, &who, "Patient", &pairs, chart::LIST_ROWS)).await;
    let nav = Nav::of(s);
    let (rows, total, error) = match found {
        Ok(page) => {
            let rows: Vec<PatientRow> = page
                .matches
                .iter()
                .filter_map(chart::body)
                .map(|p| PatientRow::of(&p))
                .collect();
            let total = page.total.map_or(rows.len(), |t| t as usize);
            (rows, total, None)
        }
        Err(e) if e.category() == oxehr_records::Category::Invalid => (
            vec![],
            0,
            Some(
                "Check the search: a birth date is a full date, and a name is letters.".to_owned(),
            ),
        ),
        Err(e) => return error_page(&e),
    };
    let count_text = if total > rows.len() {
        format!(
            "Showing the first {} of {total} (by family name). Search to narrow the list.",
            rows.len()
        )
    } else if total == 1 {
        "1 patient.".to_owned()
    } else {
        format!("{total} patients.")
    };
    Page::render(
        StatusCode::OK,
        &Patients {
            nav,
            search,
            searched,
            heading: if searched {
                "Search results"
            } else {
                "Patients in your organization's care"
            },
            empty: if searched {
                "No patient you may see matches. A patient outside your organization's care is found only by opening their record with a reason."
            } else {
                "No patients are in your organization's care yet."
            },
            count_text,
            rows,
            error,
        },
    )
    .into_response()
}

/// `GET /patients`: the patients in the organization's care.
pub async fn patients(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let s = match signed_in(&state, &headers, None).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if let Some(r) = only_chart_users(&s) {
        return r;
    }
    patient_list(&state, &s, PatientSearch::default()).await
}

/// `POST /patients`: a search by name, birth date or identifier (in the body, never the
/// URL).
pub async fn patients_search(State(state): State<WebState>, req: Request) -> Response {
    let (s, fields) = match view_form(&state, req, View::Chart).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let get = |k: &str| {
        field(&fields, k)
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>()
    };
    let search = PatientSearch {
        name: get("name"),
        birth_date: get("birthdate"),
        identifier: get("identifier"),
    };
    patient_list(&state, &s, search).await
}

/// Who a page of the record is for: the clinician's chart (`/patients/{id}`), or the
/// patient portal (`/portal/{id}`: a patient's own record, or one a proxy acts for).
/// Both read the same way through records as the signed-in person; the links, the
/// header and what can be done from the page differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Chart,
    Portal,
}

impl View {
    /// The URL of the record's summary, under which its other pages are.
    pub(crate) fn base(self, id: &str) -> String {
        match self {
            View::Chart => format!("/patients/{id}"),
            View::Portal => format!("/portal/{id}"),
        }
    }
}

impl View {
    /// The refusal for a signed-in person these pages are not for (`None`: they are).
    pub(crate) fn refuse(self, s: &Signed) -> Option<Response> {
        match self {
            View::Chart => only_chart_users(s),
            View::Portal => only_portal_users(s),
        }
    }
}

/// A form post of `view`'s pages: the signed-in person and the form's fields, once its
/// token matched the session and the person is one the pages are for.
pub(crate) async fn view_form(
    state: &WebState,
    req: Request,
    view: View,
) -> Result<(Signed, Vec<(String, String)>), Response> {
    let (s, fields) = signed_form(state, req).await?;
    match view.refuse(&s) {
        Some(r) => Err(r),
        None => Ok((s, fields)),
    }
}

/// What frames a page of one patient's record: the header, the record's base URL, and
/// the words of the link back to its summary.
pub(crate) struct Frame {
    pub nav: Nav,
    pub base: String,
    pub back: String,
    /// The trend page (`?code=` picks the measurement).
    pub trend: String,
}

impl Frame {
    pub(crate) fn of(s: &Signed, view: View, id: &str, patient: &serde_json::Value) -> Frame {
        let name = display::person_name(patient);
        match view {
            View::Chart => Frame {
                nav: Nav::of(s),
                base: view.base(id),
                back: format!("Back to {name}'s chart"),
                trend: format!("{}/trend", view.base(id)),
            },
            View::Portal => {
                let own = s.caller.patient.as_deref() == Some(id);
                let first = display::first_name(patient).unwrap_or(name);
                Frame {
                    nav: Nav::portal(s, id, if own { "" } else { &first }),
                    base: view.base(id),
                    back: if own {
                        "Back to my record".to_owned()
                    } else {
                        format!("Back to {first}'s record")
                    },
                    trend: format!("{}/trend", view.base(id)),
                }
            }
        }
    }
}

pub(crate) fn only_portal_users(s: &Signed) -> Option<Response> {
    s.caller.role.is_staff().then(|| {
        message(
            StatusCode::FORBIDDEN,
            "Not for your role",
            "These pages are for patients and the people who act for them. Staff open a patient's chart from the patient list.",
        )
        .into_response()
    })
}

/// The signed-in person, and what `read` finds as them about patient `id` (on a
/// blocking thread). In the chart (clinicians and nurses) a patient outside their care
/// gives the break-the-glass form instead; in the portal (patients and proxies) a record
/// that is not theirs gives "not allowed", as any other refusal gives its page.
pub(crate) async fn record_read<T: Send + 'static>(
    state: &WebState,
    headers: &HeaderMap,
    id: &str,
    view: View,
    read: impl FnOnce(Records, Arc<Caller>) -> Result<T, RecordsError> + Send + 'static,
) -> Result<(Signed, T), Response> {
    let s = signed_in(state, headers, None)
        .await
        .map_err(IntoResponse::into_response)?;
    if let Some(r) = view.refuse(&s) {
        return Err(r);
    }
    let (records, who, pid) = (state.records.clone(), s.caller.clone(), id.to_owned());
    // Whether the patient is visible is worked out once; the page's other statements
    // then skip the organization's care set.
    let confirmed = move || {
        let who = Arc::new(records.confirm_patient(&who, &pid)?);
        read(records, who)
    };
    match blocking(confirmed).await {
        Ok(x) => Ok((s, x)),
        Err(e) if view == View::Chart && chart::is_forbidden(&e) => {
            Err(glass(&s, id, "", None, StatusCode::FORBIDDEN))
        }
        Err(e) => Err(error_page(&e)),
    }
}

#[derive(Template)]
#[template(path = "chart.html")]
struct ChartPage {
    nav: Nav,
    base: String,
    trend_url: String,
    name: String,
    facts: Vec<(&'static str, String)>,
    sections: Vec<Section>,
    saved: Option<&'static str>,
    forms: &'static [forms::FormSpec],
    /// This record was merged into another: that one's page, where its entries now are.
    merged_into: Option<String>,
    /// Care due (the chart: all, with why; the portal: in plain words).
    gaps: Vec<crate::findings::GapCard>,
    /// Risk scores with why (the chart only).
    scores: Vec<crate::findings::ScoreCard>,
    portal: bool,
}

#[derive(Template)]
#[template(path = "glass.html")]
struct Glass<'a> {
    nav: Nav,
    patient_id: &'a str,
    can_break: bool,
    reason: &'a str,
    error: Option<&'a str>,
}

fn glass(s: &Signed, id: &str, reason: &str, error: Option<&str>, status: StatusCode) -> Response {
    let nav = Nav::of(s);
    Page::render(
        status,
        &Glass {
            nav,
            patient_id: id,
            can_break: s.caller.may_break_the_glass(),
            reason,
            error,
        },
    )
    .into_response()
}

pub(crate) fn facts(p: &serde_json::Value, today: &str) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    if let Some(b) = p["birthDate"].as_str() {
        let age = display::age(b, today)
            .map(|a| format!(" (age {a})"))
            .unwrap_or_default();
        f.push(("Born", format!("{}{age}", display::date(b))));
    }
    if let Some(g) = p["gender"].as_str() {
        f.push(("Sex", g.to_owned()));
    }
    if let Some(mrn) = chart::medical_record_number(p) {
        f.push(("Record number", mrn));
    }
    if let Some(d) = p["deceasedDateTime"].as_str() {
        f.push(("Died", display::date(d)));
    }
    if let Some(a) = p["address"][0].as_object() {
        let parts: Vec<&str> = ["city", "state"]
            .iter()
            .filter_map(|k| a.get(*k).and_then(|v| v.as_str()))
            .collect();
        if !parts.is_empty() {
            f.push(("Lives in", parts.join(", ")));
        }
    }
    if let Some(t) = p["telecom"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["system"] == "phone"))
        .and_then(|t| t["value"].as_str())
    {
        f.push(("Phone", t.to_owned()));
    }
    if let Some(l) = p["communication"][0]["language"].as_object() {
        if let Some(t) = display::concept(&serde_json::Value::Object(l.clone())) {
            f.push(("Language", t));
        }
    }
    f
}

pub fn today() -> String {
    oxehr_records::format_instant(oxehr_records::now_micros())
        .chars()
        .take(10)
        .collect()
}

/// `GET /patients/{id}`: the chart summary, or the break-the-glass form for a patient
/// outside the person's care.
pub async fn chart_summary(
    State(state): State<WebState>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    summary(View::Chart, state, id, q, headers).await
}

/// `GET /portal/{id}`: the record's summary in the portal ("My record").
pub async fn portal_summary(
    State(state): State<WebState>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    summary(View::Portal, state, id, q, headers).await
}

async fn summary(
    view: View,
    state: WebState,
    id: String,
    q: std::collections::HashMap<String, String>,
    headers: HeaderMap,
) -> Response {
    // After a form was saved: what the chart says (only a known form's words).
    let saved = q
        .get("saved")
        .and_then(|k| forms::form_spec(k))
        .map(|f| f.saved)
        .filter(|_| view == View::Chart);
    let pid = id.clone();
    let (s, (p, sections)) = match record_read(&state, &headers, &id, view, move |records, who| {
        let p = chart::patient(&records, &who, &pid)?;
        let specs: Vec<&chart::SectionSpec> = chart::SECTIONS.iter().collect();
        let sections = chart::sections(&records, &who, &pid, &specs, chart::SUMMARY_ROWS)?;
        // A merged-away record has no care due of its own: its entries are elsewhere.
        let findings = match oxehr_records::patients::replaced_by(&p) {
            Some(_) => None,
            None => oxehr_fhir::ResourceId::parse(&pid)
                .map(|id| records.findings(&who, &id, time::OffsetDateTime::now_utc().date()))
                .transpose()?,
        };
        Ok((p, (sections, findings)))
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (sections, findings) = sections;
    let day = today();
    let gaps = findings
        .as_ref()
        .map(|f| crate::findings::gap_cards(f, &day))
        .unwrap_or_default();
    let scores = match (&findings, view) {
        (Some(f), View::Chart) => crate::findings::score_cards(f),
        _ => Vec::new(),
    };
    let frame = Frame::of(&s, view, &id, &p);
    Page::render(
        StatusCode::OK,
        &ChartPage {
            nav: frame.nav,
            base: frame.base,
            trend_url: frame.trend,
            name: display::person_name(&p),
            facts: facts(&p, &today()),
            merged_into: oxehr_records::patients::replaced_by(&p)
                .and_then(|r| r.strip_prefix("Patient/").map(|id| view.base(id))),
            sections,
            saved,
            gaps,
            scores,
            portal: view != View::Chart,
            forms: if view == View::Chart {
                forms::FORMS
            } else {
                &[]
            },
        },
    )
    .into_response()
}

#[derive(Template)]
#[template(path = "section.html")]
struct SectionPage {
    nav: Nav,
    base: String,
    back: String,
    name: String,
    section: Section,
}

/// `GET /patients/{id}/{section}`: one section of the chart in full (up to
/// [`chart::SECTION_ROWS`], saying how many there are).
pub async fn chart_section(
    State(state): State<WebState>,
    Path((id, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    section(View::Chart, state, id, key, headers).await
}

/// `GET /portal/{id}/{section}`: one section of the record in full, in the portal.
pub async fn portal_section(
    State(state): State<WebState>,
    Path((id, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    section(View::Portal, state, id, key, headers).await
}

async fn section(
    view: View,
    state: WebState,
    id: String,
    key: String,
    headers: HeaderMap,
) -> Response {
    let Some(spec) = chart::section_spec(&key) else {
        return message(StatusCode::NOT_FOUND, "Not found", "There is no such page.")
            .into_response();
    };
    let pid = id.clone();
    let (s, (p, section)) = match record_read(&state, &headers, &id, view, move |records, who| {
        let p = chart::patient(&records, &who, &pid)?;
        let section = chart::section(&records, &who, &pid, spec, chart::SECTION_ROWS)?;
        Ok((p, section))
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let frame = Frame::of(&s, view, &id, &p);
    Page::render(
        StatusCode::OK,
        &SectionPage {
            nav: frame.nav,
            base: frame.base,
            back: frame.back,
            name: display::person_name(&p),
            section,
        },
    )
    .into_response()
}

/// `POST /patients/{id}/break-the-glass`: opens a record outside the person's care with
/// a reason (records' operation: audited, time-limited).
pub async fn break_the_glass(
    State(state): State<WebState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (s, fields) = match signed_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let reason: String = field(&fields, "reason")
        .unwrap_or("")
        .chars()
        .take(1000)
        .collect();
    let Some(rid) = oxehr_fhir::ResourceId::parse(&id) else {
        return message(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such record.",
        )
        .into_response();
    };
    let (records, who, r) = (state.records.clone(), s.caller.clone(), reason.clone());
    match blocking(move || records.break_the_glass(&who, &rid, &r)).await {
        Ok(_) => Redirect::to(&format!("/patients/{id}")).into_response(),
        Err(e) if e.category() == oxehr_records::Category::Invalid => glass(
            &s,
            &id,
            &reason,
            Some("Give a reason of at least 10 characters."),
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => error_page(&e),
    }
}

#[derive(Template)]
#[template(path = "trend.html")]
struct TrendPage {
    nav: Nav,
    base: String,
    back: String,
    trend_url: String,
    name: String,
    trend_title: String,
    code: String,
    period: String,
    choices: Vec<(String, String)>,
    periods: Vec<(String, String)>,
    count: usize,
    summary: String,
    has_range: bool,
    svg: String,
    series: Vec<String>,
    rows: Vec<crate::trend::Point>,
}

const PERIODS: [(&str, &str); 4] = [
    ("1y", "Last year"),
    ("5y", "Last 5 years"),
    ("10y", "Last 10 years"),
    ("all", "All time"),
];

/// `GET /patients/{id}/trend?code=system|code&period=5y`: one measurement over time.
pub async fn trend(
    State(state): State<WebState>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    trend_page(View::Chart, state, id, q, headers).await
}

/// `GET /portal/{id}/trend?code=…&period=…`: the portal's trend of one result or
/// vital sign (the first kind when none is asked for).
pub async fn portal_trend(
    State(state): State<WebState>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    trend_page(View::Portal, state, id, q, headers).await
}

async fn trend_page(
    view: View,
    state: WebState,
    id: String,
    q: std::collections::HashMap<String, String>,
    headers: HeaderMap,
) -> Response {
    let period = q
        .get("period")
        .filter(|p| PERIODS.iter().any(|(k, _)| k == p))
        .cloned()
        .unwrap_or_else(|| "all".into());
    let wanted = q.get("code").cloned().unwrap_or_default();
    let (pid, per) = (id.clone(), period.clone());
    let (s, (p, choices, code, trend, total)) =
        match record_read(&state, &headers, &id, view, move |records, who| {
            let p = chart::patient(&records, &who, &pid)?;
            // The kinds of measurement this record has: the newest of each vital sign and
            // result, as the summary shows them.
            let mut choices = Vec::new();
            for key in ["vitals", "results"] {
                if let Some(spec) = chart::section_spec(key) {
                    choices.extend(chart::kinds(&records, &who, &pid, spec)?);
                }
            }
            let code = if choices.iter().any(|(k, _)| *k == wanted) {
                wanted
            } else {
                choices.first().map(|c| c.0.clone()).unwrap_or_default()
            };
            let mut pairs = vec![
                ("patient", pid.clone()),
                ("code", chart::same_measurement(&code).join(",")),
                ("_sort", "-date".to_owned()),
            ];
            let years = match per.as_str() {
                "1y" => Some(1),
                "5y" => Some(5),
                "10y" => Some(10),
                _ => None,
            };
            if let Some(y) = years {
                let today = today();
                let from = format!(
                    "{:04}{}",
                    today[..4].parse::<i32>().unwrap_or(2000) - y,
                    &today[4..]
                );
                pairs.push(("date", format!("ge{from}")));
            }
            let (obs, total) = if code.is_empty() {
                (vec![], 0)
            } else {
                let page = chart::search(
                    &records,
                    &who,
                    "Observation",
                    &pairs,
                    crate::trend::MAX_POINTS,
                )?;
                let total = page.total.map_or(page.matches.len(), |t| t as usize);
                (
                    page.matches
                        .iter()
                        .filter_map(chart::body)
                        .collect::<Vec<_>>(),
                    total,
                )
            };
            let sources = chart::Sources::of(&records, &who, &obs)?;
            let trend = crate::trend::build(&obs, &sources);
            Ok((p, choices, code, trend, total))
        })
        .await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    let frame = Frame::of(&s, view, &id, &p);
    let (trend_title, svg, series, rows, has_range) = match &trend {
        Some(t) => (
            t.title.clone(),
            crate::trend::svg(t),
            t.series.clone(),
            t.points.iter().rev().cloned().collect::<Vec<_>>(),
            t.range.is_some(),
        ),
        None => ("Trends".to_owned(), String::new(), vec![], vec![], false),
    };
    let count = rows.len();
    let summary = if total > count {
        format!("The newest {count} of {total} values, oldest on the left.")
    } else if count == 1 {
        "1 value.".to_owned()
    } else {
        format!("{count} values, oldest on the left.")
    };
    Page::render(
        StatusCode::OK,
        &TrendPage {
            nav: frame.nav,
            base: frame.base,
            back: frame.back,
            trend_url: frame.trend,
            name: display::person_name(&p),
            trend_title,
            code,
            period,
            choices,
            periods: PERIODS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            count,
            summary,
            has_range,
            svg,
            series,
            rows,
        },
    )
    .into_response()
}

/// A field of a chart form, as its template shows it.
struct FieldView {
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    unit: &'static str,
    required: bool,
    max_chars: usize,
    /// `input`, `textarea` or `select`.
    control: &'static str,
    input_type: &'static str,
    numeric: bool,
    value: String,
    options: Vec<(String, String, bool)>,
    error: Option<String>,
    /// The ids of the hint, error and unit that describe the field.
    described: String,
    /// The legend of a group this field opens, and whether it closes one.
    group_start: Option<&'static str>,
    group_end: bool,
}

fn field_views(
    spec: &forms::FormSpec,
    values: &forms::Values,
    problems: &[forms::Problem],
    medications: &[forms::Medication],
) -> Vec<FieldView> {
    let fields = spec.fields;
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let value = values.get(f.name).to_owned();
            let option = |k: &str, label: &str| (k.to_owned(), label.to_owned(), value == k);
            let (control, options) = match f.kind {
                forms::Kind::LongText => ("textarea", vec![]),
                forms::Kind::Choice(choices) => (
                    "select",
                    std::iter::once(option(
                        "",
                        if f.required {
                            "Choose…"
                        } else {
                            "Not recorded"
                        },
                    ))
                    .chain(choices.iter().map(|(k, l)| option(k, l)))
                    .collect(),
                ),
                forms::Kind::Medication => (
                    "select",
                    std::iter::once(option(
                        "",
                        if medications.is_empty() {
                            "None in this record"
                        } else {
                            "Choose…"
                        },
                    ))
                    .chain(medications.iter().map(|m| option(&m.key, &m.label)))
                    .collect(),
                ),
                _ => ("input", vec![]),
            };
            let error = problems
                .iter()
                .find(|p| p.field == Some(f.name))
                .map(|p| p.text.clone());
            let described = [
                (!f.hint.is_empty()).then(|| format!("h-{}", f.name)),
                error.as_ref().map(|_| format!("e-{}", f.name)),
                (!f.unit.is_empty()).then(|| format!("u-{}", f.name)),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            let prev = i.checked_sub(1).and_then(|j| fields[j].group);
            let next = fields.get(i + 1).and_then(|n| n.group);
            FieldView {
                name: f.name,
                label: f.label,
                hint: f.hint,
                unit: f.unit,
                required: f.required,
                max_chars: f.max_chars,
                control,
                input_type: if f.kind == forms::Kind::Date {
                    "date"
                } else {
                    "text"
                },
                numeric: f.kind == forms::Kind::Number,
                value,
                options,
                error,
                described,
                group_start: f.group.filter(|g| prev != Some(*g)),
                group_end: f.group.is_some() && next != f.group,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage<'a> {
    nav: Nav,
    patient_id: &'a str,
    name: String,
    spec: &'static forms::FormSpec,
    fields: Vec<FieldView>,
    /// The problems as the summary lists them: (field, text).
    problems: Vec<(Option<&'static str>, String)>,
}

fn form_page(
    s: &Signed,
    id: &str,
    name: String,
    spec: &'static forms::FormSpec,
    values: &forms::Values,
    problems: &[forms::Problem],
    medications: &[forms::Medication],
    status: StatusCode,
) -> Response {
    let nav = Nav::of(s);
    let label = |f: &str| {
        spec.fields
            .iter()
            .find(|x| x.name == f)
            .map_or("", |x| x.label)
    };
    Page::render(
        status,
        &FormPage {
            nav,
            patient_id: id,
            name,
            spec,
            fields: field_views(spec, values, problems, medications),
            problems: problems
                .iter()
                .map(|p| match p.field {
                    Some(f) => (Some(f), format!("{}: {}", label(f), p.text)),
                    None => (None, p.text.clone()),
                })
                .collect(),
        },
    )
    .into_response()
}

/// What a form page needs from the record: the patient, and for a prescription the
/// medications the record holds.
fn form_read(
    records: &Records,
    who: &Caller,
    id: &str,
    spec: &forms::FormSpec,
) -> Result<(serde_json::Value, Vec<forms::Medication>), RecordsError> {
    let p = chart::patient(records, who, id)?;
    let meds = if spec
        .fields
        .iter()
        .any(|f| f.kind == forms::Kind::Medication)
    {
        forms::record_medications(records, who, id)?
    } else {
        vec![]
    };
    Ok((p, meds))
}

fn no_such_form() -> Response {
    message(StatusCode::NOT_FOUND, "Not found", "There is no such page.").into_response()
}

/// `GET /patients/{id}/add/{form}`: a form to write into the chart.
pub async fn chart_form(
    State(state): State<WebState>,
    Path((id, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(spec) = forms::form_spec(&key) else {
        return no_such_form();
    };
    let pid = id.clone();
    let (s, (p, meds)) =
        match record_read(&state, &headers, &id, View::Chart, move |records, who| {
            form_read(&records, &who, &pid, spec)
        })
        .await
        {
            Ok(x) => x,
            Err(r) => return r,
        };
    form_page(
        &s,
        &id,
        display::person_name(&p),
        spec,
        &forms::Values::default(),
        &[],
        &meds,
        StatusCode::OK,
    )
}

/// `POST /patients/{id}/add/{form}`: writes the form's resources through `records` as
/// the signed-in person; back to the chart when saved, else the form with each refusal
/// next to its field.
pub async fn chart_form_submit(
    State(state): State<WebState>,
    Path((id, key)): Path<(String, String)>,
    req: Request,
) -> Response {
    let Some(spec) = forms::form_spec(&key) else {
        return no_such_form();
    };
    let (s, fields) = match view_form(&state, req, View::Chart).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let values = forms::Values::from_fields(spec, &fields);
    let (records, who, pid, v) = (
        state.records.clone(),
        s.caller.clone(),
        id.clone(),
        values.clone(),
    );
    // Read what the form needs (as the person: a patient outside their care is refused
    // here), plan the resources, and write them.
    let done = blocking(move || {
        let (p, meds) = form_read(&records, &who, &pid, spec)?;
        let ctx = forms::Context {
            patient: pid.clone(),
            author: who
                .person
                .clone()
                .filter(|r| r.starts_with("Practitioner/")),
            organization: who.organization.clone(),
            now: oxehr_records::format_instant(oxehr_records::now_micros()),
            medications: meds.clone(),
        };
        let (planned, mut problems) = forms::plan(spec, &v, &ctx);
        if let Some(e) = forms::content_issues(&records, &planned) {
            forms::merge(&mut problems, forms::explain(spec, &planned, &e));
        }
        let outcome = if !problems.is_empty() {
            Err(problems)
        } else {
            match forms::write(&records, &who, &planned, &ctx) {
                Ok(_) => Ok(()),
                Err(e) if chart::is_forbidden(&e) => return Err(e),
                Err(e) => {
                    if e.category() == oxehr_records::Category::Internal {
                        tracing::error!(form = spec.key, "a chart form could not be saved");
                    }
                    Err(forms::explain(spec, &planned, &e))
                }
            }
        };
        Ok((p, meds, outcome))
    })
    .await;
    match done {
        Ok((_, _, Ok(()))) => {
            Redirect::to(&format!("/patients/{id}?saved={}", spec.key)).into_response()
        }
        Ok((p, meds, Err(problems))) => form_page(
            &s,
            &id,
            display::person_name(&p),
            spec,
            &values,
            &problems,
            &meds,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) if chart::is_forbidden(&e) => glass(&s, &id, "", None, StatusCode::FORBIDDEN),
        Err(e) => error_page(&e),
    }
}

#[derive(Template)]
#[template(path = "document.html")]
struct DocumentPage {
    nav: Nav,
    base: String,
    back: String,
    name: String,
    doc: document::Document,
    kind: &'static str,
    from: String,
}

/// `GET /patients/{id}/{reports|documents}/{rid}`: one note or report in full, its
/// stored HTML through the sanitizer.
pub async fn chart_document(
    State(state): State<WebState>,
    Path((id, key, rid)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    document_page(View::Chart, state, id, key, rid, headers).await
}

/// `GET /portal/{id}/{reports|documents}/{rid}`: one note or report, in the portal.
pub async fn portal_document(
    State(state): State<WebState>,
    Path((id, key, rid)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    document_page(View::Portal, state, id, key, rid, headers).await
}

async fn document_page(
    view: View,
    state: WebState,
    id: String,
    key: String,
    rid: String,
    headers: HeaderMap,
) -> Response {
    let (rtype, kind) = match key.as_str() {
        "reports" => ("DiagnosticReport", "report"),
        "documents" => ("DocumentReference", "note"),
        _ => return no_such_form(),
    };
    let (Some(t), Some(r)) = (
        oxehr_fhir::ResourceType::parse(rtype),
        oxehr_fhir::ResourceId::parse(&rid),
    ) else {
        return no_such_form();
    };
    let pid = id.clone();
    let (s, found) = match record_read(&state, &headers, &id, view, move |records, who| {
        let p = chart::patient(&records, &who, &pid)?;
        let stored = records.read(&who, &t, &r)?;
        let body =
            chart::body(&stored).ok_or_else(|| RecordsError::Internal("stored body".into()))?;
        // Only this patient's: the URL names both.
        let subject = format!("Patient/{pid}");
        if body["subject"]["reference"].as_str() != Some(subject.as_str()) {
            return Ok(None);
        }
        let sources = chart::Sources::of(&records, &who, std::slice::from_ref(&body))?;
        let from = sources.from(&body);
        Ok(Some((p, body, from)))
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some((p, body, from)) = found else {
        return message(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such record.",
        )
        .into_response();
    };
    let frame = Frame::of(&s, view, &id, &p);
    Page::render(
        StatusCode::OK,
        &DocumentPage {
            nav: frame.nav,
            base: frame.base,
            back: frame.back,
            name: display::person_name(&p),
            doc: document::of(&body),
            kind,
            from,
        },
    )
    .into_response()
}
