//! The answers that are not pages: redirects back to the app (with a code or an OAuth
//! error), the error page of a request that cannot go on, and the Content-Security-Policy
//! of pages whose form ends in a redirect to the app.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Urls;
use crate::pages;

/// The crate's Content-Security-Policy with `form-action` widened to the origin of this
/// endpoint's configured URL (the form's action, in case the browser reached the page
/// by another name for the server) and of the app's redirect URI: Chromium and Safari
/// apply `form-action` to the redirects that answer a form submission too
/// (w3c/webappsec-csp#8), and these forms end in a redirect to the app. The origin
/// comes from the redirect URI of this request, already checked against the client's
/// registration. A URI with no expressible origin (an IPv6 literal, which CSP's host
/// grammar lacks) adds nothing.
pub(super) fn policy(authorize: &str, redirect_uri: &str) -> String {
    let mut sources = vec!["'self'".to_owned()];
    for uri in [authorize, redirect_uri] {
        if let Some(s) = csp_source(uri).filter(|s| !sources.contains(s)) {
            sources.push(s);
        }
    }
    crate::CONTENT_SECURITY_POLICY.replacen(
        "form-action 'self'",
        &format!("form-action {}", sources.join(" ")),
        1,
    )
}

/// A URI's origin as a CSP source expression: `scheme://host[:port]` for a URI with an
/// authority, `scheme:` for a private-use scheme (`com.example.app:/callback`, RFC
/// 8252 §7.1). `None` for anything else, or anything with a character that could end
/// the expression or the directive.
fn csp_source(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'));
    if !scheme_ok {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let Some(after) = rest.strip_prefix("//") else {
        // A scheme alone would allow every http(s) URL: only for private-use schemes.
        return (!matches!(scheme.as_str(), "http" | "https")).then(|| format!("{scheme}:"));
    };
    let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (host_ok && port_ok).then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

pub(super) fn set_no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// `redirect_uri` with `params` added to its query.
pub(super) fn redirect(
    redirect_uri: &str,
    params: &[(&str, &str)],
    status: StatusCode,
) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{sep}{}", query.finish());
    let Ok(location) = HeaderValue::from_str(&location) else {
        return error_page(StatusCode::BAD_REQUEST, "the redirect URI is unusable");
    };
    let mut resp = status.into_response();
    resp.headers_mut().insert(header::LOCATION, location);
    set_no_store(resp.headers_mut());
    resp
}

/// An error sent back to the app (RFC 6749 §4.1.2.1), with `state` and `iss`.
pub(super) fn redirect_error(
    urls: &Urls,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
    status: StatusCode,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(st) = state {
        params.push(("state", st));
    }
    params.push(("iss", urls.fhir_base.as_str()));
    redirect(redirect_uri, &params, status)
}

/// The page of an authorization request that cannot go on (it redirects nowhere).
pub(super) fn error_page(status: StatusCode, message: &str) -> Response {
    let mut resp = pages::message(status, "Cannot continue", message).into_response();
    set_no_store(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_the_registered_query() {
        let cases = [
            (
                "https://app.example/cb",
                "https://app.example/cb?code=a%2Bb&state=s+1",
            ),
            (
                "https://app.example/cb?x=1",
                "https://app.example/cb?x=1&code=a%2Bb&state=s+1",
            ),
        ];
        for (uri, expected) in cases {
            let r = redirect(uri, &[("code", "a+b"), ("state", "s 1")], StatusCode::FOUND);
            assert_eq!(r.headers()[header::LOCATION], expected);
        }
    }

    #[test]
    fn form_action_names_the_redirect_origin() {
        let cases = [
            ("https://app.example/cb?x=1", Some("https://app.example")),
            (
                "https://App.Example:8443/cb",
                Some("https://app.example:8443"),
            ),
            ("http://127.0.0.1:9/callback", Some("http://127.0.0.1:9")),
            ("http://localhost/cb", Some("http://localhost")),
            ("com.example.app:/callback", Some("com.example.app:")),
            // CSP's host grammar has no IPv6 literal.
            ("http://[::1]:8000/cb", None),
            // Nothing that could end the source or the directive.
            ("https://a.example;script-src/cb", None),
            ("https://a.example,b/cb", None),
            ("https://user@a.example/cb", None),
            ("https://a.example:80x/cb", None),
            // A bare http(s) scheme would allow every site.
            ("https:/cb", None),
            ("not a uri", None),
        ];
        for (uri, expected) in cases {
            assert_eq!(csp_source(uri).as_deref(), expected, "{uri}");
        }
        let p = policy(
            "http://127.0.0.1:8080/auth/authorize",
            "https://app.example/cb",
        );
        assert!(
            p.contains(
                "; form-action 'self' http://127.0.0.1:8080 https://app.example; frame-ancestors 'none';"
            ),
            "{p}"
        );
        assert!(
            p.starts_with("default-src 'none'; style-src 'self';"),
            "{p}"
        );
        let p = policy("/auth/authorize", "http://[::1]/cb");
        assert_eq!(p, crate::CONTENT_SECURITY_POLICY);
    }
}
