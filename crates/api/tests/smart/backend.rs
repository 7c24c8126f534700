//! SMART Backend Services: `client_credentials` with a client assertion signed ES384
//! here with the `p384` crate directly (not through the JWT library under test).

use std::sync::atomic::Ordering;

use base64::Engine;
use serde_json::{json, Value};

use super::{common, error_of, register, Env};
use oxehr_store::oauth::ClientRow;

struct EcKey(p384::ecdsa::SigningKey);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl EcKey {
    fn generate() -> EcKey {
        loop {
            let bytes: [u8; 48] = std::array::from_fn(|_| rand_byte());
            if let Ok(k) = p384::ecdsa::SigningKey::from_slice(&bytes) {
                return EcKey(k);
            }
        }
    }

    fn jwks(&self, kid: &str) -> String {
        let point = self.0.verifying_key().to_encoded_point(false);
        json!({"keys": [{
            "kty": "EC", "crv": "P-384", "kid": kid, "alg": "ES384",
            "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y")),
        }]})
        .to_string()
    }

    fn assertion(&self, kid: &str, claims: &Value) -> String {
        use p384::ecdsa::signature::Signer;
        let header = json!({"alg": "ES384", "typ": "JWT", "kid": kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig: p384::ecdsa::Signature = self.0.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    }
}

/// A byte from the OS generator (through uuid's v4, a dependency already).
fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

/// SMART Backend Services: `client_credentials` with an ES384-signed assertion gives a
/// short-lived token with the registered `system/` scopes; a replayed `jti`, another
/// key, a wrong audience or a disabled client are refused.
pub async fn backend_services_use_signed_assertions(e: &Env) {
    let key = EcKey::generate();
    let client = ClientRow {
        client_id: "lab-sync".into(),
        name: "Lab sync".into(),
        kind: "backend".into(),
        redirect_uris: "[]".into(),
        jwks: Some(key.jwks("k1")),
        scope: "system/Observation.rs system/Patient.rs".into(),
        disabled: false,
        created: 0,
    };
    register(&e.s, client).await;
    let token_url = format!("{}/auth/token", e.root());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + e.ahead.load(Ordering::Relaxed);
    let claims = |jti: &str, aud: &str| json!({"iss": "lab-sync", "sub": "lab-sync", "aud": aud, "exp": now + 240, "jti": jti});
    let request = |assertion: String, scope: &'static str| async move {
        let (status, body, _) = e
            .token(&[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
                ("scope", scope),
            ])
            .await;
        (status, body)
    };
    let first = key.assertion("k1", &claims("jti-1", &token_url));
    let (status, body) = request(first.clone(), "system/Observation.rs system/Encounter.rs").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "system/Observation.rs");
    assert_eq!(body["expires_in"], 300);
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().expect("token").to_owned();
    let resp = common::client_with(&token)
        .get(e.s.url("Observation"))
        .send()
        .await
        .expect("GET");
    let (status, bundle, _) = common::split(resp).await;
    assert_eq!(status, 200);
    assert_eq!(
        bundle["entry"].as_array().map_or(0, Vec::len),
        3,
        "every patient's"
    );
    assert_eq!(
        e.fhir_status(&token, "Patient").await,
        403,
        "no Patient scope granted"
    );
    let write = common::client_with(&token)
        .post(e.s.url("Observation"))
        .header("content-type", "application/fhir+json")
        .body(
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
                .to_string(),
        )
        .send()
        .await
        .expect("POST");
    assert_eq!(write.status().as_u16(), 403, "read-only scope");
    let (_, info) = e.post_auth("introspect", &[("token", &token)]).await;
    assert_eq!(
        (info["active"].as_bool(), info["client_id"].as_str()),
        (Some(true), Some("lab-sync"))
    );

    let other = EcKey::generate();
    let refused = [
        (first, "system/Observation.rs", 401, "invalid_client"),
        (
            other.assertion("k1", &claims("jti-2", &token_url)),
            "system/Observation.rs",
            401,
            "invalid_client",
        ),
        (
            key.assertion("k1", &claims("jti-3", "https://other.example/token")),
            "system/Observation.rs",
            401,
            "invalid_client",
        ),
        (
            key.assertion("k1", &claims("jti-4", &token_url)),
            "user/*.rs patient/*.rs",
            400,
            "invalid_scope",
        ),
    ];
    for (assertion, scope, status, error) in refused {
        let (got, body) = request(assertion, scope).await;
        assert_eq!((got, error_of(&body)), (status, error), "{body}");
    }
    // Disabling the client stops its tokens at once.
    let store = e.s.records.store().clone();
    tokio::task::spawn_blocking(move || {
        store.write(Box::new(|tx| {
            Ok(Box::new(oxehr_store::oauth::set_client_disabled(
                tx, "lab-sync", true,
            )?))
        }))
    })
    .await
    .expect("join")
    .expect("disable");
    // Disabled outside the identity service (as another process would): the token stops
    // working once its check is due again (`token_check_secs`, 5 s by default).
    e.advance(oxehr_auth::IdentityConfig::default().token_check_secs);
    assert_eq!(e.fhir_status(&token, "Observation").await, 401);
}
