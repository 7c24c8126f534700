//! Tests of the authorization server's rules, with expected values from RFC 7636
//! (PKCE), FIPS 180-2 (SHA-256) and assertions signed here with the RustCrypto `p384` and
//! `rsa` crates directly, not through the JWT library under test.

use super::*;
use crate::parse_scopes;

/// RFC 7636 Appendix B: the example verifier and its S256 challenge.
const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[test]
fn pkce_s256_matches_rfc_7636_appendix_b() {
    assert_eq!(s256_challenge(RFC_VERIFIER), RFC_CHALLENGE);
    assert!(is_s256_challenge(RFC_CHALLENGE));
    assert!(pkce_verifies(RFC_VERIFIER, RFC_CHALLENGE));
    let cases = [
        // (verifier, challenge, verifies)
        (
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            RFC_CHALLENGE,
            false,
        ),
        (
            RFC_VERIFIER,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN",
            false,
        ),
        // `plain`: the verifier itself as the challenge is refused.
        (RFC_VERIFIER, RFC_VERIFIER, false),
        // Too short (42), too long (129), a character outside the unreserved set.
        (&RFC_VERIFIER[..42], "", false),
        (&"a".repeat(129), "", false),
        ("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX+", "", false),
    ];
    for (verifier, challenge, ok) in cases {
        let challenge = if challenge.is_empty() {
            s256_challenge(verifier)
        } else {
            challenge.to_owned()
        };
        assert_eq!(pkce_verifies(verifier, &challenge), ok, "{verifier}");
    }
    for bad in [
        "",
        "abc",
        &format!("{RFC_CHALLENGE}="),
        &RFC_CHALLENGE.replace('-', "+"),
    ] {
        assert!(!is_s256_challenge(bad), "{bad}");
    }
}

#[test]
fn secrets_are_random_and_stored_as_sha256() {
    let a = new_secret();
    assert_eq!(a.len(), 43, "256 bits in base64url");
    assert_ne!(a, new_secret());
    // SHA-256("abc"), FIPS 180-2 Appendix B.1.
    assert_eq!(
        secret_hash("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn sealed_values_open_only_with_the_same_key_and_purpose() {
    let key = SigningKey::generate();
    let v = serde_json::json!({"client_id": "app", "exp": 5});
    let sealed = seal(&key, "login", &v).unwrap();
    assert_eq!(
        unseal::<serde_json::Value>(&key, "login", &sealed),
        Some(v.clone())
    );
    assert_eq!(unseal::<serde_json::Value>(&key, "consent", &sealed), None);
    assert_eq!(
        unseal::<serde_json::Value>(&SigningKey::generate(), "login", &sealed),
        None
    );
    let mut tampered = sealed.clone();
    tampered.insert(sealed.len() / 2, 'A');
    assert_eq!(unseal::<serde_json::Value>(&key, "login", &tampered), None);
    // Not an access token either.
    assert!(crate::token::verify(&key, &sealed, "i", "i", 1).is_err());
}

#[test]
fn which_role_may_hold_which_context() {
    let s = |t: &str| parse_scopes(t).unwrap()[0].as_resource().cloned().unwrap();
    let cases = [
        (Role::Patient, "patient/*.rs", true),
        (Role::Patient, "user/*.rs", false),
        (Role::Patient, "system/*.rs", false),
        (Role::Clinician, "user/*.cruds", true),
        (Role::Clinician, "patient/*.rs", true),
        (Role::Clinician, "system/*.rs", false),
        (Role::FrontDesk, "system/Patient.rs", false),
        (Role::SystemAdmin, "system/*.cruds", true),
        (Role::SystemAdmin, "user/*.rs", true),
        (Role::Proxy, "patient/*.rs", true),
        (Role::Proxy, "user/*.rs", false),
        (Role::Proxy, "system/*.rs", false),
    ];
    for (role, scope, ok) in cases {
        assert_eq!(role_may_hold(role, &s(scope)), ok, "{role} {scope}");
    }
}

fn user_grant(role: Role, requested: &str, allowed: &str) -> UserGrant {
    grant_user_scopes(
        role,
        &parse_requested(requested).unwrap(),
        &parse_scopes(allowed).unwrap(),
    )
}

#[test]
fn a_user_grants_what_the_role_and_the_client_allow() {
    let cases = [
        // (role, requested, client allowed, granted scope, patient context)
        (
            Role::Patient,
            "launch/patient patient/*.read openid fhirUser offline_access",
            "",
            "launch/patient patient/*.read offline_access",
            true,
        ),
        (
            Role::Patient,
            "user/*.rs system/*.rs patient/Observation.rs",
            "",
            "patient/Observation.rs",
            false,
        ),
        // Staff: no patient picker, so no patient/ scopes and no patient context.
        (
            Role::Clinician,
            "launch/patient patient/*.rs user/*.cruds system/*.rs",
            "",
            "user/*.cruds",
            false,
        ),
        // The client's registration narrows the grant.
        (
            Role::Clinician,
            "user/*.cruds online_access",
            "user/Observation.rs user/Patient.r",
            "user/Observation.rs online_access",
            false,
        ),
        (
            Role::SystemAdmin,
            "system/*.cruds user/*.rs",
            "",
            "user/*.rs",
            false,
        ),
        // Query-narrowed scopes are granted when their query can be honoured, with
        // read and search only; duplicates are kept once.
        (
            Role::Patient,
            "patient/Observation.rs?category=laboratory patient/*.rs patient/*.rs",
            "",
            "patient/Observation.rs?category=laboratory patient/*.rs",
            false,
        ),
        (
            Role::Patient,
            "patient/Observation.cruds?category=http://loinc.org|x&code=8867-4 \
             patient/Condition.cud?category=problem-list-item",
            "",
            "patient/Observation.rs?category=http://loinc.org|x&code=8867-4",
            false,
        ),
        // Not honoured, so not granted: a query on `*`, an unknown parameter, one that
        // selects nothing, a chain to another type, `_has`, a malformed value.
        (
            Role::Patient,
            "patient/*.rs?category=laboratory patient/Observation.rs?colour=red \
             patient/Observation.rs?_count=5 patient/Observation.rs?subject:Patient.name=x \
             patient/Patient.rs?_has:Observation:patient:code=1 \
             patient/Observation.rs?date=yesterday",
            "",
            "",
            false,
        ),
        // A client registered for a narrowed scope narrows the wider one asked for.
        (
            Role::Patient,
            "patient/Observation.rs",
            "patient/Observation.rs?category=vital-signs",
            "patient/Observation.rs?category=vital-signs",
            false,
        ),
        (
            Role::Patient,
            "online_access offline_access patient/*.rs",
            "",
            "patient/*.rs offline_access",
            false,
        ),
        // A proxy: patient/ scopes, reaching the patients it acts for, with no one
        // patient in context.
        (
            Role::Proxy,
            "launch/patient patient/*.rs user/*.rs system/*.rs offline_access",
            "",
            "patient/*.rs offline_access",
            false,
        ),
    ];
    for (role, requested, allowed, scope, patient) in cases {
        let g = user_grant(role, requested, allowed);
        assert_eq!(g.scope(), scope, "{role} asking {requested}");
        assert_eq!(g.patient_context, patient, "{role} asking {requested}");
    }
    let g = user_grant(Role::Patient, "patient/*.rs offline_access", "");
    assert_eq!(g.refresh, Some(RefreshKind::Offline));
    assert!(g.grants_resources());
    assert!(!user_grant(Role::Patient, "openid fhirUser", "").grants_resources());
}

#[test]
fn a_backend_service_gets_only_its_registered_system_scopes() {
    let allowed = parse_scopes("system/Observation.rs system/Patient.cruds").unwrap();
    let cases = [
        ("system/Observation.rs", "system/Observation.rs"),
        ("system/*.rs", "system/Patient.rs"),
        ("system/Observation.read", "system/Observation.read"),
        ("system/Observation.cruds", "system/Observation.rs"),
        ("system/Encounter.rs user/*.rs patient/*.rs", ""),
        ("", "system/Observation.rs system/Patient.cruds"),
        (
            "system/Observation.rs?category=laboratory system/Patient.cruds?gender=female",
            "system/Observation.rs?category=laboratory system/Patient.rs?gender=female",
        ),
        ("system/Observation.rs?colour=red", ""),
    ];
    for (requested, granted) in cases {
        let got = grant_system_scopes(&parse_requested(requested).unwrap(), &allowed);
        assert_eq!(got.join(" "), granted, "{requested}");
    }
}

#[test]
fn scope_intersections() {
    let s = |t: &str| parse_scopes(t).unwrap()[0].as_resource().cloned().unwrap();
    let cases = [
        (
            "user/*.cruds",
            "user/Observation.rs",
            Some("user/Observation.rs"),
        ),
        (
            "user/Observation.cr",
            "user/*.rs",
            Some("user/Observation.r"),
        ),
        ("user/Observation.rs", "user/Patient.rs", None),
        ("user/*.rs", "patient/*.rs", None),
        ("user/*.c", "user/*.rs", None),
        (
            "user/Observation.rs?category=vital-signs",
            "user/*.r",
            Some("user/Observation.r?category=vital-signs"),
        ),
    ];
    for (a, b, expected) in cases {
        let got = intersect(&s(a), &s(b)).map(|r| r.to_string());
        assert_eq!(got.as_deref(), expected, "{a} ∩ {b}");
        let back = intersect(&s(b), &s(a)).map(|r| r.to_string());
        assert_eq!(back, got, "symmetric");
    }
}

#[test]
fn redirect_uris_that_may_be_registered() {
    let cases = [
        ("https://app.example.org/callback", true),
        ("https://app.example.org:8443/cb?x=1", true),
        ("http://127.0.0.1:5000/callback", true),
        ("http://localhost/cb", true),
        ("http://[::1]:8080/cb", true),
        ("com.example.app:/oauth2redirect", true),
        ("http://app.example.org/callback", false),
        ("http://127.0.0.1.evil.example/cb", false),
        ("http://user@127.0.0.1/cb", false),
        ("https://app.example.org/cb#frag", false),
        ("https:///cb", false),
        ("/relative/callback", false),
        ("javascript:alert(1)", false),
        ("https://app.example.org/a b", false),
    ];
    for (uri, ok) in cases {
        assert_eq!(check_redirect_uri(uri).is_ok(), ok, "{uri}");
    }
    for (id, ok) in [
        ("my-app.v2", true),
        ("", false),
        ("a b", false),
        ("é", false),
    ] {
        assert_eq!(check_client_id(id).is_ok(), ok, "{id}");
    }
}

// ---- client assertions, signed here with the RustCrypto p384 and rsa crates
// directly (not through the JWT library under test) ----

const CLIENT: &str = "backend-1";
const TOKEN_URL: &str = "https://ehr.example/auth/token";
const NOW: u64 = 1_764_633_600;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

struct EcKey(p384::ecdsa::SigningKey);

impl EcKey {
    fn generate() -> EcKey {
        loop {
            let mut bytes = [0u8; 48];
            getrandom::fill(&mut bytes).unwrap();
            if let Ok(k) = p384::ecdsa::SigningKey::from_slice(&bytes) {
                return EcKey(k);
            }
        }
    }

    fn jwk(&self, kid: &str) -> serde_json::Value {
        let point = self.0.verifying_key().to_encoded_point(false);
        serde_json::json!({
            "kty": "EC", "crv": "P-384", "kid": kid, "alg": "ES384", "use": "sig",
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        })
    }

    fn sign(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        use p384::ecdsa::signature::Signer;
        let input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(header).unwrap()),
            b64(&serde_json::to_vec(claims).unwrap())
        );
        let sig: p384::ecdsa::Signature = self.0.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    }
}

fn claims(exp: u64) -> serde_json::Value {
    serde_json::json!({
        "iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": exp, "jti": "j-1",
    })
}

fn es384_header(kid: &str) -> serde_json::Value {
    serde_json::json!({"alg": "ES384", "typ": "JWT", "kid": kid})
}

#[test]
fn es384_client_assertions() {
    let key = EcKey::generate();
    let other = EcKey::generate();
    let jwks = serde_json::json!({"keys": [other.jwk("k0"), key.jwk("k1")]}).to_string();
    assert_eq!(check_client_jwks(&jwks).unwrap(), 2);
    let good = key.sign(&es384_header("k1"), &claims(NOW + 240));
    assert_eq!(assertion_client_id(&good).as_deref(), Some(CLIENT));
    assert_eq!(
        verify_client_assertion(&good, &jwks, CLIENT, TOKEN_URL, NOW).unwrap(),
        Assertion {
            jti: "j-1".into(),
            exp: NOW + 240
        }
    );
    // Without a kid every key of the algorithm is tried.
    let no_kid = key.sign(&serde_json::json!({"alg": "ES384"}), &claims(NOW + 60));
    assert!(verify_client_assertion(&no_kid, &jwks, CLIENT, TOKEN_URL, NOW).is_ok());

    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(NOW + 60);
        f(&mut c);
        key.sign(&es384_header("k1"), &c)
    };
    let refused = [
        (
            other.sign(&es384_header("k1"), &claims(NOW + 60)),
            "signature",
        ),
        (
            key.sign(&es384_header("k0"), &claims(NOW + 60)),
            "signature",
        ),
        (
            key.sign(&es384_header("k9"), &claims(NOW + 60)),
            "no registered key",
        ),
        (with(&|c| c["iss"] = "someone-else".into()), "iss and sub"),
        (with(&|c| c["sub"] = "someone-else".into()), "iss and sub"),
        (
            with(&|c| c["aud"] = "https://ehr.example/other".into()),
            "aud",
        ),
        (with(&|c| c["aud"] = serde_json::json!([TOKEN_URL])), ""),
        (key.sign(&es384_header("k1"), &claims(NOW)), "expired"),
        (
            key.sign(&es384_header("k1"), &claims(NOW + 301)),
            "five minutes",
        ),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            "jti",
        ),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "exp",
        ),
        ("not.a.jwt".to_owned(), "malformed"),
    ];
    for (assertion, why) in refused {
        match verify_client_assertion(&assertion, &jwks, CLIENT, TOKEN_URL, NOW) {
            Ok(_) if why.is_empty() => {}
            Ok(a) => panic!("accepted ({why}): {a:?}"),
            Err(e) => {
                let m = e.to_string();
                assert!(!why.is_empty() && m.contains(why), "{why}: {m}");
                assert!(!m.contains(&assertion), "the message repeats the assertion");
            }
        }
    }
    // Another algorithm in the header (HS256 keyed with the public x, or none).
    let parts: Vec<&str> = good.split('.').collect();
    for alg in ["HS256", "none", "ES256", "RS256"] {
        let forged = format!(
            "{}.{}.{}",
            b64(format!(r#"{{"alg":"{alg}","kid":"k1"}}"#).as_bytes()),
            parts[1],
            parts[2]
        );
        let e = verify_client_assertion(&forged, &jwks, CLIENT, TOKEN_URL, NOW).unwrap_err();
        assert!(
            e.to_string().contains("RS384 or ES384") || e.to_string().contains("malformed"),
            "{alg}: {e}"
        );
    }
}

#[test]
fn rs384_client_assertions() {
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let public = private.to_public_key();
    let jwk = serde_json::json!({
        "kty": "RSA", "kid": "r1", "alg": "RS384",
        "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be()),
    });
    let jwks = serde_json::json!({"keys": [jwk]}).to_string();
    assert_eq!(check_client_jwks(&jwks).unwrap(), 1);
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha384>::new(private);
    let sign = |header: serde_json::Value| {
        let input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(&header).unwrap()),
            b64(&serde_json::to_vec(&claims(NOW + 60)).unwrap())
        );
        format!("{input}.{}", b64(&signer.sign(input.as_bytes()).to_vec()))
    };
    let good = sign(serde_json::json!({"alg": "RS384", "kid": "r1", "typ": "JWT"}));
    assert!(verify_client_assertion(&good, &jwks, CLIENT, TOKEN_URL, NOW).is_ok());
    // The key is registered for RS384: an RS256 header is refused.
    let rs256 = sign(serde_json::json!({"alg": "RS256", "kid": "r1"}));
    assert!(verify_client_assertion(&rs256, &jwks, CLIENT, TOKEN_URL, NOW).is_err());
}

#[test]
fn key_sets_that_cannot_be_registered() {
    let ec = EcKey::generate();
    let mut private = ec.jwk("k");
    private["d"] = "AAAA".into();
    let p256 = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"});
    let small_rsa = serde_json::json!({"kty": "RSA", "n": b64(&[0xff; 128]), "e": "AQAB"});
    let enc = {
        let mut k = ec.jwk("k");
        k["use"] = "enc".into();
        k
    };
    let cases = [
        ("not json".to_owned(), "not JSON"),
        ("{}".to_owned(), "\"keys\" array"),
        (
            serde_json::json!({"keys": [private]}).to_string(),
            "private",
        ),
        (
            serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).to_string(),
            "private",
        ),
        (
            serde_json::json!({"keys": [p256, small_rsa, enc]}).to_string(),
            "no usable key",
        ),
    ];
    for (jwks, why) in cases {
        let e = check_client_jwks(&jwks).unwrap_err().to_string();
        assert!(e.contains(why), "{why}: {e}");
    }
}

#[test]
fn request_parameters_given_twice_are_refused_and_empty_ones_are_absent() {
    // RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
    let twice = Params::parse(b"client_id=a&scope=x&client_id=b");
    assert_eq!(
        twice.unwrap_err(),
        "the parameter client_id is given more than once"
    );
    // §3.1: "Parameters sent without a value MUST be treated as if they were omitted."
    let p = Params::parse(b"state=&scope=patient%2FObservation.rs+openid&x=a%26b").unwrap();
    assert_eq!(p.get("state"), None);
    assert_eq!(p.get("missing"), None);
    assert_eq!(p.get("scope"), Some("patient/Observation.rs openid"));
    assert_eq!(p.get("x"), Some("a&b"));
}
