//! The pure pieces of the OAuth 2.0 authorization server (SMART App Launch 2.x): which
//! scopes a role may hold and which a grant gets, PKCE (RFC 7636, S256 only), the secrets
//! handed to clients (codes, refresh tokens) and their stored hashes, redirect-URI and
//! key-set rules for registered clients, and the verification of a backend service's
//! signed client assertion (RFC 7523, SMART Backend Services).
//!
//! No I/O and no clock: the caller passes the time in and keeps codes, tokens and seen
//! assertion ids in the database (`oxehr_store::oauth`). Error messages never repeat a
//! secret, a code, a verifier or an assertion.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::scope::{Context, Permissions, ResourceScope, Scope};
use crate::token::SigningKey;
use crate::{parse_scope, AuthError, Role};

/// `client_assertion_type` of a signed JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest lifetime of a client assertion SMART allows (`exp` at most five minutes
/// ahead).
pub const MAX_ASSERTION_LIFETIME_SECS: u64 = 300;

/// Whether an account of `role` may hold the resource scope at all: a patient or a
/// proxy only `patient/` scopes, staff anything but `system/`, a system administrator
/// anything. `oxehr token issue` and the authorization server both apply this rule.
pub fn role_may_hold(role: Role, scope: &ResourceScope) -> bool {
    match (role, scope.context) {
        (Role::Patient | Role::Proxy, Context::Patient) => true,
        (Role::Patient | Role::Proxy, _) => false,
        (Role::SystemAdmin, _) => true,
        (_, Context::System) => false,
        _ => true,
    }
}

/// One requested scope: the token as the client wrote it and what it means. The grant
/// answers with the client's own spelling (`patient/*.read` stays v1 for a v1 app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub token: String,
    pub scope: Scope,
}

/// Parses a space-separated `scope` parameter, keeping each token's spelling. Repeated
/// tokens are kept once.
pub fn parse_requested(space_separated: &str) -> Result<Vec<Requested>, AuthError> {
    let mut out: Vec<Requested> = Vec::new();
    for token in space_separated.split(' ').filter(|t| !t.is_empty()) {
        if out.iter().any(|r| r.token == token) {
            continue;
        }
        out.push(Requested {
            token: token.to_owned(),
            scope: parse_scope(token)?,
        });
    }
    Ok(out)
}

/// What a signed-in user's authorization grants an app.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserGrant {
    /// The granted scopes, in the client's spelling.
    pub scopes: Vec<String>,
    /// Whether the app gets a patient in context (`launch/patient` was granted).
    pub patient_context: bool,
    /// Whether a refresh token goes with the access token (`offline_access` or
    /// `online_access` was granted).
    pub refresh: Option<RefreshKind>,
}

impl UserGrant {
    /// Whether any resource scope was granted (without one the token reads nothing).
    pub fn grants_resources(&self) -> bool {
        self.scopes
            .iter()
            .any(|s| matches!(parse_scope(s), Ok(Scope::Resource(_))))
    }

    /// The granted scopes, space-separated.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
}

/// The kind of refresh token granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshKind {
    /// `offline_access`: outlives the user's session.
    Offline,
    /// `online_access`: meant for while the user is signed in (shorter-lived here).
    Online,
}

/// The scopes a signed-in user of `role` grants an app that asked for `requested` and
/// may be given at most `client_allowed` (empty: no limit from the client):
///
/// - resource scopes the role may hold ([`role_may_hold`]), but never `system/` (those are
///   for backend services) and `patient/` only with a patient in context — a patient's
///   own record; staff get no patient picker here, so their `patient/` scopes are
///   dropped rather than widened to everything they may see. A proxy's `patient/`
///   scopes are granted without a patient in context: they reach the records of the
///   patients it acts for (several, possibly), as the record layer reads them on each
///   request;
/// - a scope narrowed by a query (`patient/Observation.rs?category=…`) only with its
///   read and search permissions, and only when its query can be honoured
///   ([`ResourceScope::narrowing`]); it is dropped otherwise;
/// - `launch/patient` for a patient account (the patient is themselves);
/// - `offline_access` or `online_access` (offline wins if both are asked);
/// - nothing else: no `openid`/`fhirUser` (no id_token is issued), no EHR `launch`.
pub fn grant_user_scopes(
    role: Role,
    requested: &[Requested],
    client_allowed: &[Scope],
) -> UserGrant {
    let mut grant = UserGrant::default();
    let patient_context = role == Role::Patient;
    let patient_scopes = patient_context || role == Role::Proxy;
    for r in requested {
        match &r.scope {
            Scope::Resource(asked) => {
                let ok = asked.context != Context::System
                    && role_may_hold(role, asked)
                    && (asked.context != Context::Patient || patient_scopes);
                let Some(s) = ok.then(|| honourable(asked)).flatten() else {
                    continue;
                };
                match limit_to(&s, client_allowed).and_then(|l| honourable(&l)) {
                    Some(limited) if limited == *asked => grant.scopes.push(r.token.clone()),
                    Some(limited) => grant.scopes.push(limited.to_string()),
                    None => {}
                }
            }
            Scope::LaunchPatient if patient_context => {
                grant.patient_context = true;
                grant.scopes.push(r.token.clone());
            }
            Scope::OfflineAccess => grant.refresh = Some(RefreshKind::Offline),
            Scope::OnlineAccess if grant.refresh.is_none() => {
                grant.refresh = Some(RefreshKind::Online);
            }
            _ => {}
        }
    }
    match grant.refresh {
        Some(RefreshKind::Offline) => grant.scopes.push("offline_access".into()),
        Some(RefreshKind::Online) => grant.scopes.push("online_access".into()),
        None => {}
    }
    dedup(&mut grant.scopes);
    grant
}

/// The `system/` scopes a backend service gets: each requested one intersected with the
/// client's registered scopes; everything else is dropped. An empty request asks for
/// everything registered (RFC 6749 §3.3 lets the server choose a default).
pub fn grant_system_scopes(requested: &[Requested], client_allowed: &[Scope]) -> Vec<String> {
    let mut out = Vec::new();
    if requested.is_empty() {
        for a in client_allowed {
            if let Scope::Resource(s) = a {
                if s.context == Context::System {
                    if let Some(s) = honourable(s) {
                        out.push(s.to_string());
                    }
                }
            }
        }
    }
    for r in requested {
        if let Scope::Resource(asked) = &r.scope {
            if asked.context != Context::System {
                continue;
            }
            let Some(s) = honourable(asked) else {
                continue;
            };
            match limit_to(&s, client_allowed).and_then(|l| honourable(&l)) {
                Some(limited) if limited == *asked => out.push(r.token.clone()),
                Some(limited) => out.push(limited.to_string()),
                None => {}
            }
        }
    }
    dedup(&mut out);
    out
}

/// `s` as this server can grant it: whole when no query narrows it; narrowed, with only
/// its read and search permissions, when its query can be honoured
/// ([`ResourceScope::narrowing`]); `None` otherwise.
fn honourable(s: &ResourceScope) -> Option<ResourceScope> {
    if !s.is_narrowed() {
        return Some(s.clone());
    }
    let s = read_and_search_only(s)?;
    s.narrowing().is_ok().then_some(s)
}

/// A narrowed scope with its create, update and delete permissions taken away (`None`
/// when nothing is left). Records enforce a query on what is read and searched; a
/// write would have to prove the resource it leaves matches, which this server does
/// not do, so it grants none.
pub fn read_and_search_only(s: &ResourceScope) -> Option<ResourceScope> {
    let permissions = Permissions {
        create: false,
        read: s.permissions.read,
        update: false,
        delete: false,
        search: s.permissions.search,
    };
    (!permissions.is_empty()).then(|| ResourceScope {
        permissions,
        ..s.clone()
    })
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
}

/// `s` limited to what `allowed` grants (no limit when `allowed` is empty): the widest
/// intersection with one allowed scope of the same context, or `None`.
fn limit_to(s: &ResourceScope, allowed: &[Scope]) -> Option<ResourceScope> {
    if allowed.is_empty() {
        return Some(s.clone());
    }
    let candidates: Vec<ResourceScope> = allowed
        .iter()
        .filter_map(Scope::as_resource)
        .filter_map(|a| intersect(s, a))
        .collect();
    // Prefer one that keeps the whole request, else the one keeping most permissions.
    candidates.iter().find(|c| *c == s).cloned().or_else(|| {
        candidates
            .into_iter()
            .max_by_key(|c| permission_count(c.permissions))
    })
}

fn permission_count(p: Permissions) -> usize {
    [p.create, p.read, p.update, p.delete, p.search]
        .iter()
        .filter(|b| **b)
        .count()
}

/// The intersection of two resource scopes: same context, the narrower type, the common
/// permissions; `None` when that is empty. Scopes narrowed by a query intersect only
/// with an un-narrowed scope or the same query.
pub fn intersect(a: &ResourceScope, b: &ResourceScope) -> Option<ResourceScope> {
    if a.context != b.context {
        return None;
    }
    let resource_type = match (&a.resource_type, &b.resource_type) {
        (None, t) | (t, None) => t.clone(),
        (Some(x), Some(y)) if x == y => Some(x.clone()),
        _ => return None,
    };
    let query = match (a.query.is_empty(), b.query.is_empty()) {
        (true, _) => b.query.clone(),
        (_, true) => a.query.clone(),
        _ if a.query == b.query => a.query.clone(),
        _ => return None,
    };
    let (p, q) = (a.permissions, b.permissions);
    let permissions = Permissions {
        create: p.create && q.create,
        read: p.read && q.read,
        update: p.update && q.update,
        delete: p.delete && q.delete,
        search: p.search && q.search,
    };
    if permissions.is_empty() {
        return None;
    }
    Some(ResourceScope {
        context: a.context,
        resource_type,
        permissions,
        query,
    })
}

// ---- PKCE (RFC 7636) ----

/// Whether `challenge` is an S256 code challenge: BASE64URL (no padding) of a SHA-256
/// hash is exactly 43 characters of the base64url alphabet.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The S256 challenge of a verifier: `BASE64URL(SHA256(ASCII(verifier)))` (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is well-formed (43 to 128 unreserved characters, RFC 7636 §4.1)
/// and hashes to `challenge`. The comparison takes the same time wherever they differ.
pub fn pkce_verifies(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && constant_time_eq(s256_challenge(verifier).as_bytes(), challenge.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---- secrets handed to clients ----

/// A new 256-bit random secret (an authorization code, a refresh token), base64url.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How a secret is stored: lower-case hex SHA-256. The secrets are 256-bit random
/// values, so a slow password hash would add nothing.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Seals `value` for a round trip through a browser (the authorization pages' hidden
/// handles): a JWT signed HS256 with a key derived from the token signing key and
/// `purpose`, so a sealed value can never pass for an access token, nor one purpose's for
/// another's. Not encrypted: put nothing secret in it. Expiry is the caller's to check.
pub fn seal<T: serde::Serialize>(
    key: &SigningKey,
    purpose: &str,
    value: &T,
) -> Result<String, AuthError> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        value,
        &jsonwebtoken::EncodingKey::from_secret(&derived_key(key, purpose)),
    )
    .map_err(|e| AuthError::Internal(format!("sealing a value: {e}")))
}

/// Opens what [`seal`] made with the same key and purpose; `None` when it was altered or
/// made for another purpose.
pub fn unseal<T: serde::de::DeserializeOwned>(
    key: &SigningKey,
    purpose: &str,
    sealed: &str,
) -> Option<T> {
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let key = DecodingKey::from_secret(&derived_key(key, purpose));
    jsonwebtoken::decode::<T>(sealed, &key, &v)
        .ok()
        .map(|d| d.claims)
}

fn derived_key(key: &SigningKey, purpose: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"oxehr sealed value v1\0");
    h.update(purpose.as_bytes());
    h.update(b"\0");
    h.update(key.as_bytes());
    h.finalize().into()
}

// ---- registered clients ----

/// A client id: 1 to 64 ASCII letters, digits, `.`, `_` or `-`.
pub fn check_client_id(id: &str) -> Result<(), AuthError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(
            "a client id is 1 to 64 letters, digits, '.', '_' or '-'".into(),
        ))
    }
}

/// A redirect URI a public client may register (OAuth 2.0 for native apps, RFC 8252, and
/// the security BCP): absolute, no fragment, and either `https://`, `http://` to the
/// loopback interface (`127.0.0.1`, `[::1]`, `localhost`), or a private-use scheme in
/// reverse-domain form (`com.example.app:/callback`).
pub fn check_redirect_uri(uri: &str) -> Result<(), AuthError> {
    let bad = |why: &str| Err(AuthError::Invalid(format!("redirect URI {uri:?}: {why}")));
    if uri.len() > 2000 || uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return bad("too long, or has spaces or control characters");
    }
    if uri.contains('#') {
        return bad("a redirect URI has no fragment");
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return bad("not an absolute URI");
    };
    let scheme = scheme.to_ascii_lowercase();
    let host = |rest: &str| -> Option<String> {
        let authority = rest.strip_prefix("//")?;
        let end = authority.find(['/', '?']).unwrap_or(authority.len());
        let authority = &authority[..end];
        if authority.contains('@') {
            return None;
        }
        let host = if authority.starts_with('[') {
            &authority[..authority.find(']')? + 1]
        } else {
            authority.split(':').next().unwrap_or("")
        };
        (!host.is_empty()).then(|| host.to_ascii_lowercase())
    };
    match scheme.as_str() {
        "https" => match host(rest) {
            Some(_) => Ok(()),
            None => bad("no host"),
        },
        "http" => match host(rest).as_deref() {
            Some("127.0.0.1" | "[::1]" | "localhost") => Ok(()),
            _ => bad("plain http is allowed only to the loopback interface; use https"),
        },
        s if s.contains('.')
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')) =>
        {
            Ok(())
        }
        _ => {
            bad("use https, http to the loopback interface, or a reverse-domain private-use scheme")
        }
    }
}

/// Member names that only a private (or symmetric) JSON Web Key has (RFC 7518 §6).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Checks a backend service's JSON Web Key Set before it is registered: a `keys` array
/// of public keys only, at least one of them usable here (RSA of at least 2048 bits for
/// RS384, or EC P-384 for ES384). Returns the number of usable keys.
pub fn check_client_jwks(jwks: &str) -> Result<usize, AuthError> {
    let value: serde_json::Value = serde_json::from_str(jwks)
        .map_err(|e| AuthError::Invalid(format!("the key set is not JSON: {e}")))?;
    let Some(keys) = value.get("keys").and_then(|k| k.as_array()) else {
        return Err(AuthError::Invalid(
            "a JSON Web Key Set is an object with a \"keys\" array".into(),
        ));
    };
    for k in keys {
        if PRIVATE_MEMBERS.iter().any(|m| k.get(m).is_some()) {
            return Err(AuthError::Invalid(
                "the key set holds a private or symmetric key; register public keys only".into(),
            ));
        }
    }
    let usable = usable_keys(&value).len();
    if usable == 0 {
        return Err(AuthError::Invalid(
            "the key set has no usable key (RSA of 2048 bits or more, or EC P-384)".into(),
        ));
    }
    Ok(usable)
}

/// The keys of a set that can verify RS384 or ES384 signatures, with their algorithm.
fn usable_keys(set: &serde_json::Value) -> Vec<(Algorithm, Jwk)> {
    let keys = set.get("keys").and_then(|k| k.as_array());
    keys.into_iter()
        .flatten()
        .filter(|k| !PRIVATE_MEMBERS.iter().any(|m| k.get(m).is_some()))
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|jwk| {
            matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            )
        })
        .filter_map(|jwk| {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(p) => {
                    let n = URL_SAFE_NO_PAD.decode(p.n.trim_end_matches('=')).ok()?;
                    let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                    (bits >= 2048).then_some(Algorithm::RS384)?
                }
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => {
                    Algorithm::ES384
                }
                _ => return None,
            };
            // A key that names its algorithm is used with that one only.
            let named = jwk.common.key_algorithm.map(|a| format!("{a:?}"));
            match named {
                Some(n) if n != format!("{alg:?}") => None,
                _ => Some((alg, jwk)),
            }
        })
        .collect()
}

/// What a verified client assertion says that the caller still has to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// Its id, which must not have been seen before (the caller records it until `exp`).
    pub jti: String,
    pub exp: u64,
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
}

/// The client a client assertion claims to come from (its `sub`, else `iss`), read
/// without verifying anything, to find the keys to verify it with.
pub fn assertion_client_id(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: AssertionClaims = serde_json::from_slice(&bytes).ok()?;
    claims.sub.or(claims.iss)
}

/// Verifies a backend service's client assertion (SMART Backend Services, RFC 7523
/// §3): signed RS384 or ES384 by a key of `jwks` (the one its `kid` names, when it names
/// one), `iss` = `sub` = `client_id`, `aud` = the token endpoint URL, an `exp` in the
/// future and at most five minutes ahead, and a `jti`. Whether the `jti` was seen before
/// is the caller's to check. Error messages say which rule failed, never the assertion.
pub fn verify_client_assertion(
    assertion: &str,
    jwks: &str,
    client_id: &str,
    token_url: &str,
    now: u64,
) -> Result<Assertion, AuthError> {
    let refuse = |why: &str| AuthError::Invalid(format!("the client assertion is refused: {why}"));
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| refuse("it is malformed"))?;
    if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
        return Err(refuse("it must be signed with RS384 or ES384"));
    }
    let set: serde_json::Value =
        serde_json::from_str(jwks).map_err(|_| refuse("the client's key set is unreadable"))?;
    let keys: Vec<Jwk> = usable_keys(&set)
        .into_iter()
        .filter(|(alg, _)| *alg == header.alg)
        .map(|(_, jwk)| jwk)
        .filter(|jwk| match &header.kid {
            Some(kid) => jwk.common.key_id.as_deref() == Some(kid.as_str()),
            None => true,
        })
        .collect();
    if keys.is_empty() {
        return Err(refuse("no registered key matches its kid and algorithm"));
    }
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let claims = keys
        .iter()
        .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .find_map(|key| jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v).ok())
        .ok_or_else(|| refuse("its signature does not verify with the client's keys"))?
        .claims;
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str());
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err(refuse("iss and sub must both be the client id"));
    }
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a == token_url,
        Some(serde_json::Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(token_url)),
        _ => false,
    };
    if !aud_ok {
        return Err(refuse("aud must be the token endpoint's URL"));
    }
    let exp = claims
        .get("exp")
        .and_then(|e| e.as_u64())
        .ok_or_else(|| refuse("it has no exp"))?;
    if exp <= now {
        return Err(refuse("it has expired"));
    }
    if exp > now + MAX_ASSERTION_LIFETIME_SECS {
        return Err(refuse("exp is more than five minutes ahead"));
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| refuse("it has no jti"))?
        .to_owned();
    Ok(Assertion { jti, exp })
}

/// An OAuth request's parameters: the query of an authorization request, or the
/// `application/x-www-form-urlencoded` body of a form or a token request. A parameter
/// given twice is refused (RFC 6749 §3.1); an empty value counts as absent.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The parameters of `bytes`, or why they are refused.
    pub fn parse(bytes: &[u8]) -> Result<Params, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(bytes) {
            if pairs.iter().any(|(name, _)| *name == k) {
                return Err(format!("the parameter {k} is given more than once"));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params(pairs))
    }

    /// The value of `name`, unless it is absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
