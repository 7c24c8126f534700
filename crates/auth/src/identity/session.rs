//! Browser sessions: a random id the browser keeps (in a cookie) and the table keeps
//! only the SHA-256 of. A session stands for its account with everything the account's
//! role may do. It ends after it has been idle for the configured time, when it is
//! ended, or when the account is disabled. A request that may change data with a
//! session must also show that it did not come from a cross-site form (the adapter
//! says whether it did, e.g. by an `X-Requested-With` header).

use oxehr_store::sessions::{self, SessionRow};

use super::{account_caller, secs, Identity, SignedIn, Unavailable};
use crate::{oauth, Caller};

/// Why a session was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// No such session, or it was idle too long (it is removed), or its account is
    /// disabled.
    Expired,
    /// A request that may change data without the adapter's cross-site guard.
    NoCsrfHeader,
    /// The store failed.
    Unavailable,
}

impl Identity {
    /// Starts a session for an account that has just signed in; the session id to hand
    /// to the browser. Sessions idle too long are swept at the same time.
    pub fn start_session(&self, account: &SignedIn) -> Result<String, Unavailable> {
        let id = oauth::new_secret();
        let now = secs(self.now());
        let row = SessionRow {
            id_hash: oauth::secret_hash(&id),
            account: account.name.clone(),
            created: now,
            last_seen: now,
        };
        let idle = secs(self.config().session_idle_secs);
        self.write(move |tx| {
            sessions::delete_idle(tx, now.saturating_sub(idle))?;
            sessions::insert(tx, &row)
        })
        .map_err(Unavailable::from_store)?;
        Ok(id)
    }

    /// The caller a session id stands for, for a request with HTTP `method`
    /// (`csrf_guard`: whether the request carries the cross-site guard). Only GET and
    /// HEAD go without the guard. The session is marked used (at most once a minute).
    pub fn identify_session(
        &self,
        id: &str,
        method: &str,
        csrf_guard: bool,
    ) -> Result<Caller, SessionRefusal> {
        if !matches!(method, "GET" | "HEAD") && !csrf_guard {
            return Err(SessionRefusal::NoCsrfHeader);
        }
        let unavailable = |e| {
            Unavailable::from_store(e);
            SessionRefusal::Unavailable
        };
        let hash = oauth::secret_hash(id);
        let now = secs(self.now());
        let idle = secs(self.config().session_idle_secs);
        let (row, account) = {
            let mut tx = self.store().read().map_err(unavailable)?;
            let row = sessions::get(tx.as_mut(), &hash).map_err(unavailable)?;
            let account = match &row {
                Some(r) => {
                    oxehr_store::accounts::get(tx.as_mut(), &r.account).map_err(unavailable)?
                }
                None => None,
            };
            (row.ok_or(SessionRefusal::Expired)?, account)
        };
        if now.saturating_sub(row.last_seen) > idle {
            let h = hash.clone();
            let _ = self.write(move |tx| sessions::delete(tx, &h));
            return Err(SessionRefusal::Expired);
        }
        // Written at most once a minute: a busy page does not write on every request.
        if now - row.last_seen >= 60 {
            let h = hash.clone();
            self.write(move |tx| sessions::touch(tx, &h, now))
                .map_err(unavailable)?;
        }
        account
            .filter(|a| !a.disabled)
            .as_ref()
            .and_then(account_caller)
            .ok_or(SessionRefusal::Expired)
    }

    /// Ends the session `id` names (nothing when there is none).
    pub fn end_session(&self, id: &str) -> Result<(), Unavailable> {
        let hash = oauth::secret_hash(id);
        self.write(move |tx| sessions::delete(tx, &hash))
            .map(|_| ())
            .map_err(Unavailable::from_store)
    }
}

/// The session cookie's name, the same for the FHIR API and the pages.
pub const SESSION_COOKIE: &str = "oxehr_session";

/// A cookie's value among a request's `Cookie` header values (empty counts as absent).
pub fn cookie_value<'a>(
    cookie_headers: impl IntoIterator<Item = &'a str>,
    name: &str,
) -> Option<String> {
    cookie_headers
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value for a session or form cookie: `HttpOnly`, `SameSite=Strict`,
/// `Path=/`, `Secure` when the server is reached over https; `max_age` 0 removes it.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> String {
    let secure = if secure { "; Secure" } else { "" };
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/{secure}{age}")
}

#[cfg(test)]
mod cookie_tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_headers_and_set_strictly() {
        let headers = ["a=1; oxehr_session=abc", "b=2"];
        assert_eq!(
            cookie_value(headers, SESSION_COOKIE).as_deref(),
            Some("abc")
        );
        assert_eq!(cookie_value(headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie_value(["oxehr_session="], SESSION_COOKIE), None);
        assert_eq!(cookie_value(["x_oxehr_session=1"], SESSION_COOKIE), None);
        assert_eq!(
            set_cookie("c", "v", true, Some(0)),
            "c=v; HttpOnly; SameSite=Strict; Path=/; Secure; Max-Age=0"
        );
        assert_eq!(
            set_cookie("c", "v", false, None),
            "c=v; HttpOnly; SameSite=Strict; Path=/"
        );
    }
}
