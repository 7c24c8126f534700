//! Bearer access tokens: JSON Web Tokens (RFC 7519) signed with HMAC-SHA-256 by a key
//! only this server holds, carrying who the caller is (account, role, organization, the
//! FHIR resource the account stands for) and what it may do (SMART scopes).
//!
//! The server is both the issuer and the only audience of its access tokens, so a
//! symmetric key fits: nobody else needs to verify them (a SMART app treats the token as
//! opaque). Tokens that others must verify (OpenID Connect `id_token`s) will need an
//! asymmetric key published as a JWK Set.
//!
//! Pure: the caller passes the time in and keeps the key where it likes (the binary keeps
//! it in a 0600 file). Verification checks the signature and algorithm (only HS256 is
//! accepted, so `alg: none` or an algorithm switch is refused), the issuer, the audience,
//! and the expiry against the given time; revocation and a disabled account are checked
//! by the caller against the database.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::AuthError;

/// The 256-bit HMAC key that signs access tokens. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey([u8; 32]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// A fresh key from the OS random number generator (panics only if it fails).
    pub fn generate() -> SigningKey {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        SigningKey(bytes)
    }

    /// A key from its 32 bytes (as stored).
    pub fn from_bytes(bytes: &[u8]) -> Result<SigningKey, AuthError> {
        let b: [u8; 32] = bytes
            .try_into()
            .map_err(|_| AuthError::Invalid("a token signing key is 32 bytes".into()))?;
        Ok(SigningKey(b))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// What an access token says. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer: this server's base URL.
    pub iss: String,
    /// The account name.
    pub sub: String,
    /// The audience: the FHIR base URL the token is for.
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    /// A unique id, so a token can be revoked.
    pub jti: String,
    /// Space-separated SMART scopes.
    pub scope: String,
    /// The account's role code (`clinician`, `patient`, …).
    pub role: String,
    /// The account's Organization id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The resource the account stands for (`Practitioner/…`, `Patient/…`), as SMART's
    /// `fhirUser`.
    #[serde(rename = "fhirUser", default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The patient in context (a patient's own id, or the one an app was launched with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
}

/// A random token id (128 bits, hex).
pub fn new_token_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs `claims` into a compact JWT.
pub fn issue(key: &SigningKey, claims: &Claims) -> Result<String, AuthError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .map_err(|e| AuthError::Internal(format!("signing a token: {e}")))
}

/// Seconds of clock difference tolerated on expiry.
pub const LEEWAY_SECS: u64 = 30;

/// Checks a token's signature, algorithm, issuer, audience and expiry (at `now`) and
/// returns its claims. The error says which check failed but never repeats the token.
pub fn verify(
    key: &SigningKey,
    token: &str,
    issuer: &str,
    audience: &str,
    now: u64,
) -> Result<Claims, AuthError> {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    // Expiry is checked below against the caller's clock, which keeps this pure.
    v.validate_exp = false;
    v.required_spec_claims = ["exp", "iss", "aud", "sub"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key.as_bytes()), &v)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            let why = match e.kind() {
                K::InvalidSignature => "its signature is not valid",
                K::InvalidAlgorithm | K::InvalidAlgorithmName => "it is not signed with HS256",
                K::InvalidIssuer => "another server issued it",
                K::InvalidAudience => "it is for another server",
                K::MissingRequiredClaim(_) => "a required claim is missing",
                _ => "it is malformed",
            };
            AuthError::Invalid(format!("the access token is refused: {why}"))
        })?;
    let c = data.claims;
    if c.exp.saturating_add(LEEWAY_SECS) <= now {
        return Err(AuthError::Invalid(
            "the access token is refused: it has expired".into(),
        ));
    }
    if c.iat > now.saturating_add(LEEWAY_SECS) {
        return Err(AuthError::Invalid(
            "the access token is refused: it is issued in the future".into(),
        ));
    }
    Ok(c)
}

/// Parses a lifetime such as `900`, `900s`, `15m`, `8h` or `30d` into seconds.
pub fn parse_ttl(s: &str) -> Result<u64, AuthError> {
    let bad = || AuthError::Invalid(format!("a lifetime is a number with s, m, h or d: {s:?}"));
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).ok_or_else(bad)?;
    if secs == 0 {
        return Err(AuthError::Invalid("a lifetime must be positive".into()));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn claims(now: u64) -> Claims {
        Claims {
            iss: "https://ehr.example/fhir".into(),
            sub: "dr.who".into(),
            aud: "https://ehr.example/fhir".into(),
            iat: now,
            exp: now + 3600,
            jti: new_token_id(),
            scope: "user/*.cruds openid fhirUser".into(),
            role: "clinician".into(),
            org: Some("hl7".into()),
            fhir_user: Some("Practitioner/example".into()),
            patient: None,
        }
    }

    const ISS: &str = "https://ehr.example/fhir";
    const NOW: u64 = 1_764_633_600;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn round_trip_and_wire_form() {
        let key = SigningKey::generate();
        let c = claims(NOW);
        let t = issue(&key, &c).expect("issue");
        assert_eq!(verify(&key, &t, ISS, ISS, NOW + 10).expect("verify"), c);
        // The header says HS256 and the payload uses SMART's claim names.
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |p: &str| -> serde_json::Value {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .expect("base64url");
            serde_json::from_slice(&bytes).expect("json")
        };
        assert_eq!(dec(parts[0])["alg"], "HS256");
        let payload = dec(parts[1]);
        assert_eq!(payload["fhirUser"], "Practitioner/example");
        assert_eq!(payload["scope"], "user/*.cruds openid fhirUser");
        assert!(payload.get("patient").is_none());
    }

    /// The signature is HMAC-SHA-256 over `header.payload` (RFC 7515 §5), computed here
    /// with the `hmac` crate independently of the JWT library.
    #[test]
    fn signature_is_hmac_sha256_of_the_signing_input() {
        use hmac::{Hmac, Mac};
        let key = SigningKey::from_bytes(&[7u8; 32]).expect("key");
        let t = issue(&key, &claims(NOW)).expect("issue");
        let (input, sig) = t.rsplit_once('.').expect("three parts");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&[7u8; 32]).expect("hmac");
        mac.update(input.as_bytes());
        assert_eq!(sig, b64(&mac.finalize().into_bytes()));
    }

    #[test]
    fn refuses_expired_future_foreign_and_tampered_tokens() {
        let key = SigningKey::generate();
        let t = issue(&key, &claims(NOW)).expect("issue");
        let refused = |r: Result<Claims, AuthError>, why: &str| match r {
            Err(AuthError::Invalid(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("expected a refusal ({why}), got {other:?}"),
        };
        // Within the leeway after expiry it still passes; past it, not.
        assert!(verify(&key, &t, ISS, ISS, NOW + 3600 + LEEWAY_SECS - 1).is_ok());
        refused(
            verify(&key, &t, ISS, ISS, NOW + 3600 + LEEWAY_SECS),
            "expired",
        );
        refused(
            verify(&key, &t, ISS, ISS, NOW - LEEWAY_SECS - 1),
            "in the future",
        );
        refused(
            verify(&SigningKey::generate(), &t, ISS, ISS, NOW),
            "signature",
        );
        refused(
            verify(&key, &t, "https://other.example/fhir", ISS, NOW),
            "another server issued",
        );
        refused(
            verify(&key, &t, ISS, "https://other.example/fhir", NOW),
            "for another server",
        );
        // A payload edited to claim another role, with the old signature.
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = claims(NOW);
        c.role = "system-admin".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_vec(&c).expect("json")),
            parts[2]
        );
        refused(verify(&key, &forged, ISS, ISS, NOW), "signature");
        // `alg: none` with no signature.
        let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        assert!(verify(&key, &none, ISS, ISS, NOW).is_err());
        refused(verify(&key, "not a token", ISS, ISS, NOW), "malformed");
        // Messages never repeat the token.
        if let Err(e) = verify(&SigningKey::generate(), &t, ISS, ISS, NOW) {
            assert!(!e.to_string().contains(parts[2]));
        }
    }

    #[test]
    fn keys_and_lifetimes() {
        assert!(SigningKey::from_bytes(&[1u8; 31]).is_err());
        let k = SigningKey::generate();
        assert_eq!(SigningKey::from_bytes(k.as_bytes()).expect("key"), k);
        assert_ne!(SigningKey::generate(), k);
        assert_eq!(format!("{k:?}"), "SigningKey(..)");
        assert_eq!(parse_ttl("900").expect("ttl"), 900);
        assert_eq!(parse_ttl("15m").expect("ttl"), 900);
        assert_eq!(parse_ttl("8h").expect("ttl"), 28_800);
        assert_eq!(parse_ttl("30d").expect("ttl"), 2_592_000);
        for bad in ["", "0", "h", "1w", "-5m", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
        let a = new_token_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_token_id());
    }
}
