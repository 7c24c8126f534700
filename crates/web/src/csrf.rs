//! Cross-site request forgery: every form carries a token a forged cross-site request
//! cannot know, on top of the `SameSite=Strict` cookies.
//!
//! - Signed in, the token is bound to the session: the SHA-256 of a fixed label and the
//!   session id. The id is only in an `HttpOnly` cookie, so another site can neither read
//!   it nor compute the token; a new session gets a new token.
//! - Before sign-in (the sign-in form itself, against login CSRF) it is a random value
//!   sent both as a cookie and as a hidden field ("double submit"): another site can
//!   make the browser send the cookie, but cannot read it to put it in the form.
//!
//! Comparisons take the same time whatever the first difference.

use sha2::{Digest, Sha256};

/// The cookie of the double-submit token used before sign-in.
pub const COOKIE: &str = "oxehr_csrf";
/// The form field every form carries.
pub const FIELD: &str = "csrf";

/// The token of forms shown in the session `session_id`.
pub fn session_token(session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"oxehr form token\0");
    h.update(session_id.as_bytes());
    hex(&h.finalize())
}

/// Whether `sent` (the form's field) is the session's token.
pub fn session_token_matches(session_id: &str, sent: Option<&str>) -> bool {
    sent.is_some_and(|s| same(s.as_bytes(), session_token(session_id).as_bytes()))
}

/// A fresh random token for a form shown before sign-in.
pub fn new_token() -> String {
    oxehr_auth::oauth::new_secret()
}

/// Whether a double-submitted token is present in both places and the same.
pub fn double_submit_matches(cookie: Option<&str>, sent: Option<&str>) -> bool {
    match (cookie, sent) {
        (Some(c), Some(s)) if c.len() >= 16 => same(c.as_bytes(), s.as_bytes()),
        _ => false,
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_token_is_the_sha256_of_the_label_and_the_session() {
        // printf 'oxehr form token\0abc' | sha256sum
        let expected = {
            let mut h = Sha256::new();
            h.update([b"oxehr form token".as_slice(), &[0], b"abc"].concat());
            h.finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(session_token("abc"), expected);
        assert_eq!(expected.len(), 64);
        assert!(session_token_matches("abc", Some(&expected)));
        assert!(!session_token_matches("abd", Some(&expected)));
        assert!(!session_token_matches("abc", None));
        assert!(!session_token_matches("abc", Some("")));
    }

    #[test]
    fn double_submit_needs_both_halves_and_equality() {
        let t = new_token();
        assert!(t.len() >= 32, "{t}");
        assert_ne!(t, new_token());
        assert!(double_submit_matches(Some(&t), Some(&t)));
        assert!(!double_submit_matches(Some(&t), None));
        assert!(!double_submit_matches(None, Some(&t)));
        assert!(!double_submit_matches(Some(&t), Some(&new_token())));
        // An empty or short cookie is no token.
        assert!(!double_submit_matches(Some(""), Some("")));
        assert!(!double_submit_matches(Some("abc"), Some("abc")));
    }
}
