//! Rendering: one askama template a page, inside `base.html`.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::csrf;

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
                    html: "<!doctype html><title>Error</title><p>This page could not be shown.</p>"
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

/// The sign-in form: the browser's own session (`action` `/auth/login`) or an app's
/// authorization request (`/auth/authorize`, with the request's fields carried hidden).
#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignIn<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub hidden: Vec<(&'a str, &'a str)>,
    pub username: &'a str,
    pub message: Option<&'a str>,
}

/// `GET /`: the sign-in page, with a fresh double-submit token.
pub(crate) async fn sign_in_page() -> Response {
    let token = csrf::new_token();
    let page = Page::render(
        StatusCode::OK,
        &SignIn {
            action: "/auth/login",
            csrf: &token,
            hidden: vec![],
            username: "",
            message: None,
        },
    );
    let mut resp = page.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}={token}; HttpOnly; SameSite=Strict; Path=/",
        csrf::COOKIE
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
