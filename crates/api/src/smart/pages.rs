//! The authorization server's HTML pages, as plain functions from what a page shows to
//! the page's HTML (the handlers add status and headers): sign-in and consent for an
//! app, the browser session's sign-in, signed-in and signed-out pages, and the error
//! page. Plain HTML without JavaScript; every value is escaped.

use oxehr_auth::oauth::UserGrant;
use oxehr_auth::scope::{Context, Scope};

/// `s` with HTML's special characters escaped (text and attribute values).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` (escaped here) and `body` (HTML already).
pub(crate) fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · oxehr</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.4}}\
         label{{display:block;margin:.8rem 0}}input{{display:block;width:100%;padding:.4rem;box-sizing:border-box}}\
         button{{padding:.5rem 1.2rem;margin:.8rem .5rem 0 0}}.error{{color:#a00;font-weight:bold}}\
         </style></head><body><main>\n<h1>{}</h1>\n{body}\n</main></body></html>\n",
        escape(title),
        escape(title)
    )
}

/// The page of an authorization request that cannot go on.
pub(crate) fn error(message: &str) -> String {
    document(
        "Cannot continue",
        &format!("<p class=\"error\">{}</p>", escape(message)),
    )
}

/// An app's sign-in page: `handle` is the sealed request, posted back to `action`.
pub(crate) fn app_sign_in(
    client_name: &str,
    action: &str,
    handle: &str,
    message: Option<&str>,
) -> String {
    let message = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(m)))
        .unwrap_or_default();
    let body = format!(
        "<p><strong>{}</strong> asks to access health records on this server. Sign in to continue.</p>\n\
         {message}<form method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"handle\" value=\"{}\">\n\
         <label>User name <input name=\"username\" autocomplete=\"username\" required></label>\n\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\n\
         <label>Authenticator code (if your account has one) <input name=\"totp\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"6\"></label>\n\
         <button type=\"submit\" name=\"action\" value=\"login\">Sign in</button>\n</form>",
        escape(client_name),
        escape(action),
        escape(handle),
    );
    document("Sign in", &body)
}

/// The consent page: who signed in, what the app asks for in words, the patient.
pub(crate) fn consent(
    account: &str,
    client_name: &str,
    grant: &UserGrant,
    patient: Option<&str>,
    action: &str,
    handle: &str,
) -> String {
    let items: String = grant
        .scopes
        .iter()
        .map(|token| {
            let words = oxehr_auth::parse_scope(token)
                .map(|s| describe(&s))
                .unwrap_or_default();
            format!(
                "<li><code>{}</code>: {}</li>\n",
                escape(token),
                escape(&words)
            )
        })
        .collect();
    let patient = patient
        .map(|p| format!("<p>Patient: <strong>{}</strong></p>\n", escape(p)))
        .unwrap_or_default();
    let body = format!(
        "<p>Signed in as <strong>{}</strong>.</p>\n\
         <p><strong>{}</strong> asks to:</p>\n<ul>\n{items}</ul>\n{patient}\
         <form method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"handle\" value=\"{}\">\n\
         <button type=\"submit\" name=\"action\" value=\"approve\">Allow</button>\n\
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\n</form>",
        escape(account),
        escape(client_name),
        escape(action),
        escape(handle),
    );
    document("Allow access?", &body)
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
            let what = match &r.resource_type {
                Some(t) => format!("{t} resources"),
                None => "all kinds of data".to_owned(),
            };
            let whose = match r.context {
                Context::Patient => "in your record",
                Context::User => "you have access to",
                Context::System => "on this server",
            };
            format!("{} {what} {whose}", verbs.join(", "))
        }
        Scope::LaunchPatient => "know whose record is open".into(),
        Scope::OfflineAccess => "keep access after you sign out, until you revoke it".into(),
        Scope::OnlineAccess => "keep access for a few hours without asking again".into(),
        _ => String::new(),
    }
}

/// The browser session's sign-in page (`/auth/login`).
pub(crate) fn session_sign_in(message: Option<&str>) -> String {
    let error = message
        .map(|m| format!("<p class=\"error\">{}</p>", escape(m)))
        .unwrap_or_default();
    document(
        "Sign in",
        &format!(
            "{error}<form method=\"post\" action=\"/auth/login\">\
             <label>User name <input name=\"username\" autocomplete=\"username\" required></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <label>Authenticator code (if you have one) <input name=\"totp\" inputmode=\"numeric\" autocomplete=\"one-time-code\"></label>\
             <button type=\"submit\">Sign in</button></form>"
        ),
    )
}

/// A session has started.
pub(crate) fn signed_in(account: &str, idle_minutes: u64) -> String {
    document(
        "Signed in",
        &format!(
            "<p>Signed in as {}. The session ends after {} minutes without use.</p>\
             <form method=\"post\" action=\"/auth/logout\"><button type=\"submit\">Sign out</button></form>",
            escape(account),
            idle_minutes
        ),
    )
}

/// A session has ended.
pub(crate) fn signed_out() -> String {
    document("Signed out", "<p>You are signed out.</p>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
