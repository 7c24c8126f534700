//! The handle each page carries instead of a server-side session: the authorization
//! request's parameters (and, on the consent page, who signed in and what they grant),
//! sealed with a key derived from the token signing key, of one kind, valid for minutes.

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::answers::error_page;
use crate::WebState;

/// The authorization request, as validated, carried from page to page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Handle {
    /// `login` or `consent`.
    pub(super) kind: String,
    pub(super) exp: u64,
    pub(super) jti: String,
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) state: Option<String>,
    /// The requested scopes.
    pub(super) scope: String,
    pub(super) code_challenge: String,
    /// Consent only: who signed in, what they grant, the patient in the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) granted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) patient: Option<String>,
}

/// The handle sealed for a page, or the error page.
pub(super) fn seal(state: &WebState, handle: &Handle) -> Result<String, Box<Response>> {
    state.identity.seal(&handle.kind, handle).map_err(|_| {
        Box::new(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
        ))
    })
}

/// The handle of a form, if it is genuine, of `kind`, and not expired.
pub(super) fn open(state: &WebState, kind: &str, value: &str) -> Option<Handle> {
    let h: Handle = state.identity.unseal(kind, value)?;
    (h.kind == kind && h.exp > state.identity.now()).then_some(h)
}
