//! The two pages a person sees: signing in, and approving what the app asks for, with
//! the scopes in words.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use oxehr_auth::identity::Client;
use oxehr_auth::oauth::UserGrant;
use oxehr_auth::scope::{Context, Scope};

use super::answers::{policy, set_no_store};
use super::handle::Handle;
use super::Urls;
use crate::pages::Page;

/// An app's sign-in page: the request's handle is posted back to `action`.
#[derive(Template)]
#[template(path = "authorize_sign_in.html")]
struct SignInPage<'a> {
    client_name: &'a str,
    action: &'a str,
    handle: &'a str,
    username: &'a str,
    message: Option<&'a str>,
}

/// The consent page: who signed in, what the app asks for in words, the patient.
#[derive(Template)]
#[template(path = "authorize_consent.html")]
struct ConsentPage<'a> {
    account: &'a str,
    client_name: &'a str,
    scopes: Vec<ScopeLine>,
    patient: Option<&'a str>,
    action: &'a str,
    handle: &'a str,
}

/// A granted scope, as the consent page lists it.
struct ScopeLine {
    token: String,
    /// The scope in words; empty when there are none for it.
    words: String,
}

fn scope_lines(grant: &UserGrant) -> Vec<ScopeLine> {
    grant
        .scopes
        .iter()
        .map(|token| ScopeLine {
            words: oxehr_auth::parse_scope(token)
                .map(|s| describe(&s))
                .unwrap_or_default(),
            token: token.clone(),
        })
        .collect()
}

/// A scope in words, for the consent page.
fn describe(scope: &Scope) -> String {
    match scope {
        Scope::Resource(r) => {
            let p = r.permissions;
            let verbs: Vec<&str> = [
                (p.create, "create"),
                (p.read, "read"),
                (p.update, "update"),
                (p.delete, "delete"),
                (p.search, "search"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, v)| *v)
            .collect();
            let what = match (r.resource_type.as_deref(), r.context) {
                (Some("Patient"), Context::Patient) => "your details".to_owned(),
                (Some("Patient"), _) => "patients' details".to_owned(),
                (Some(t), _) => crate::display::type_words(t),
                (None, _) => "all kinds of data".to_owned(),
            };
            let whose = match r.context {
                // "your details" says whose already.
                Context::Patient if r.resource_type.as_deref() == Some("Patient") => "",
                Context::Patient => "in your record",
                Context::User => "you have access to",
                Context::System => "on this server",
            };
            let only = if r.query.is_empty() {
                String::new()
            } else {
                format!(", only those with {}", narrowing_in_words(&r.query))
            };
            let sentence = format!("{} {what} {whose}", verbs.join(", "));
            format!("{}{only}", sentence.trim_end())
        }
        Scope::LaunchPatient => "know whose record is open".into(),
        Scope::OfflineAccess => "keep access after you sign out, until you revoke it".into(),
        Scope::OnlineAccess => "keep access for a few hours without asking again".into(),
        _ => String::new(),
    }
}

/// A scope's query in words: `category=http://…|laboratory&code=…|8867-4` reads
/// "category laboratory and code 8867-4" (the codes without their systems, alternatives
/// joined by "or").
fn narrowing_in_words(query: &[(String, String)]) -> String {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .iter()
        .map(|(name, value)| {
            let name = decode(name);
            let name = name.split(':').next().unwrap_or_default();
            let values: Vec<String> = decode(value)
                .split(',')
                .map(|v| v.rsplit('|').next().unwrap_or(v).to_owned())
                .collect();
            format!("{} {}", name.trim_start_matches('_'), values.join(" or "))
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

pub(super) fn sign_in_page(
    urls: &Urls,
    client: &Client,
    handle: &Handle,
    sealed: &str,
    username: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let page = Page::render(
        status,
        &SignInPage {
            client_name: &client.name,
            action: &urls.authorize,
            handle: sealed,
            username,
            message,
        },
    );
    form_page(page, urls, &handle.redirect_uri)
}

/// The consent page of `account` for `client`'s `grant`, with the patient's name when
/// the token will carry one.
pub(super) fn consent_page(
    urls: &Urls,
    account: &str,
    client: &Client,
    grant: &UserGrant,
    patient: Option<&str>,
    handle: &Handle,
    sealed: &str,
) -> Response {
    let page = Page::render(
        StatusCode::OK,
        &ConsentPage {
            account,
            client_name: &client.name,
            scopes: scope_lines(grant),
            patient,
            action: &urls.authorize,
            handle: sealed,
        },
    );
    form_page(page, urls, &handle.redirect_uri)
}

/// A page whose form may end in a redirect to the app: not cached, and with the policy
/// that lets that redirect through.
fn form_page(page: Page, urls: &Urls, redirect_uri: &str) -> Response {
    let mut resp = page.into_response();
    let h = resp.headers_mut();
    set_no_store(h);
    if let Ok(v) = HeaderValue::from_str(&policy(&urls.authorize, redirect_uri)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_in_plain_words() {
        let cases = [
            (
                "patient/*.read",
                "read, search all kinds of data in your record",
            ),
            (
                "patient/Observation.rs",
                "read, search results and measurements in your record",
            ),
            (
                "user/Patient.cruds",
                "create, read, update, delete, search patients' details you have access to",
            ),
            (
                "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
                "read, search results and measurements in your record, only those with category laboratory",
            ),
            (
                "patient/Observation.rs?category=vital-signs,social-history&code%3Atext=blood%20pressure",
                "read, search results and measurements in your record, only those with category \
                 vital-signs or social-history and code blood pressure",
            ),
            ("patient/Patient.r", "read your details"),
            (
                "patient/MedicationRequest.rs",
                "read, search medications in your record",
            ),
            (
                "user/ServiceRequest.rs",
                "read, search service request records you have access to",
            ),
            ("launch/patient", "know whose record is open"),
            (
                "offline_access",
                "keep access after you sign out, until you revoke it",
            ),
            (
                "online_access",
                "keep access for a few hours without asking again",
            ),
        ];
        for (token, words) in cases {
            let scope = oxehr_auth::parse_scope(token).expect(token);
            assert_eq!(describe(&scope), words, "{token}");
        }
    }

    #[test]
    fn the_consent_page_escapes_what_it_shows() {
        let html = ConsentPage {
            account: "alice",
            client_name: "<script>alert(1)</script>",
            scopes: vec![ScopeLine {
                token: "patient/*.read".into(),
                words: "read, search all kinds of data in your record".into(),
            }],
            patient: Some("Bobby\" onmouseover=\"x (Patient/1)"),
            action: "http://127.0.0.1:8080/auth/authorize",
            handle: "abc.def",
        }
        .render()
        .expect("render");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("\" onmouseover"), "{html}");
        assert!(html.contains("read, search all kinds of data in your record"));
        assert!(html.contains("<code>patient/*.read</code>"), "{html}");
        assert!(
            html.contains(r#"<form method="post" action="http://127.0.0.1:8080/auth/authorize">"#),
            "{html}"
        );
        assert!(html.contains(r#"name="handle" value="abc.def""#), "{html}");
        assert!(html.contains(r#"value="approve""#) && html.contains(r#"value="deny""#));
        // No chart navigation and no sign-out form on the authorization pages.
        assert!(
            !html.contains("/sign-out") && !html.contains("/patients"),
            "{html}"
        );
    }
}
