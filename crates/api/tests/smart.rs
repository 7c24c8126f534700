//! The SMART App Launch / OAuth 2.0 authorization server over real HTTP, on both
//! backends: the standalone launch with PKCE (sign-in and consent pages posted like a
//! browser, the redirect followed to a local callback server), the token endpoint's
//! errors, refresh token rotation, revocation and introspection, sign-in throttling and
//! TOTP, and backend services with ES384-signed client assertions.
//!
//! Expected values come from the specifications: the PKCE pair is RFC 7636 Appendix B's,
//! the error codes RFC 6749 §5.2's, assertions are signed here with the `p384` crate
//! directly, and the time is moved with the server's adjustable clock rather than slept.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use common::{Backend, TestServer};
use oxehr_api::ApiConfig;
use oxehr_auth::{Clock, IdentityConfig, ThrottlePolicy};
use oxehr_store::oauth::ClientRow;

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

const APP: &str = "growth-chart";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const PATIENT_USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

/// Failed sign-ins before a lock-out in these tests, and its length.
const FREE_FAILURES: u32 = 3;
const LOCK_SECS: u64 = 60;

struct Env {
    s: TestServer,
    /// Seconds the server's clock runs ahead of the system's.
    ahead: Arc<AtomicU64>,
    /// A client that does not follow redirects (the app reads `Location` itself).
    http: reqwest::Client,
    /// Alice's Patient id and another patient's.
    alice: String,
    bob: String,
    /// The key the server seals authenticator secrets with.
    secrets_key: oxehr_auth::SecretKey,
}

async fn start(backend: Backend) -> Option<Env> {
    let ahead = Arc::new(AtomicU64::new(0));
    let secrets_key = oxehr_auth::SecretKey::generate();
    let rules = IdentityConfig {
        secrets_key: secrets_key.clone(),
        clock: Clock::ahead_by(ahead.clone()),
        login_throttle: ThrottlePolicy {
            free_failures: FREE_FAILURES,
            base_delay_secs: LOCK_SECS,
            max_delay_secs: LOCK_SECS,
            forget_after_secs: 3600,
        },
        ..IdentityConfig::default()
    };
    let s = common::start_with_identity(backend, ApiConfig::default(), rules).await?;
    let alice = create(
        &s,
        json!({"resourceType": "Patient", "name": [{"family": "Liddell", "given": ["Alice"]}]}),
    )
    .await;
    let bob = create(
        &s,
        json!({"resourceType": "Patient", "name": [{"family": "Builder"}]}),
    )
    .await;
    for (patient, code) in [(&alice, "8867-4"), (&alice, "8310-5"), (&bob, "8867-4")] {
        create(
            &s,
            json!({
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": format!("Patient/{patient}")},
            }),
        )
        .await;
    }
    add_account(&s, PATIENT_USER, &format!("Patient/{alice}")).await;
    register(&s, public_client(APP, &[REDIRECT])).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Some(Env {
        s,
        ahead,
        http,
        alice,
        bob,
        secrets_key,
    })
}

async fn create(s: &TestServer, resource: Value) -> String {
    let rtype = resource["resourceType"].as_str().expect("type").to_owned();
    let (status, body, _) = s.post(&rtype, &resource).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

async fn add_account(s: &TestServer, name: &str, person: &str) {
    let store = s.records.store().clone();
    let (name, person) = (name.to_owned(), person.to_owned());
    tokio::task::spawn_blocking(move || {
        oxehr_auth::accounts::add(
            &store,
            oxehr_auth::accounts::NewAccount {
                name,
                role: oxehr_auth::Role::Patient,
                organization: None,
                person: Some(person),
                password: PASSWORD.into(),
                mfa_required: Some(false),
            },
        )
    })
    .await
    .expect("join")
    .expect("account");
}

fn public_client(id: &str, redirects: &[&str]) -> ClientRow {
    ClientRow {
        client_id: id.into(),
        name: format!("{id} app"),
        kind: "public".into(),
        redirect_uris: serde_json::to_string(redirects).expect("json"),
        jwks: None,
        scope: String::new(),
        disabled: false,
        created: 0,
    }
}

async fn register(s: &TestServer, client: ClientRow) {
    let store = s.records.store().clone();
    let added = tokio::task::spawn_blocking(move || {
        store.write(Box::new(move |tx| {
            Ok(Box::new(oxehr_store::oauth::insert_client(tx, &client)?))
        }))
    })
    .await
    .expect("join")
    .expect("write");
    assert_eq!(added.downcast::<bool>().ok().map(|b| *b), Some(true));
}

impl Env {
    fn root(&self) -> String {
        self.s.base.trim_end_matches("/fhir").to_owned()
    }

    fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", APP),
            ("redirect_uri", REDIRECT),
            (
                "scope",
                "launch/patient patient/*.read openid fhirUser offline_access",
            ),
            ("state", "st-123"),
            ("aud", &self.s.base),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            params.retain(|(name, _)| name != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        reqwest::Url::parse_with_params(&format!("{}/auth/authorize", self.root()), &params)
            .expect("url")
            .to_string()
    }

    /// The sign-in page for `url`: (status, its handle).
    async fn login_page(&self, url: &str) -> (u16, Option<String>) {
        let resp = self.http.get(url).send().await.expect("GET authorize");
        let status = resp.status().as_u16();
        (status, handle_of(&resp.text().await.expect("html")))
    }

    /// Posts the sign-in form: (status, the consent page's handle, the page).
    async fn sign_in(
        &self,
        handle: &str,
        user: &str,
        password: &str,
        totp: &str,
    ) -> (u16, Option<String>, String) {
        let resp = self
            .http
            .post(format!("{}/auth/authorize", self.root()))
            .form(&[
                ("handle", handle),
                ("username", user),
                ("password", password),
                ("totp", totp),
                ("action", "login"),
            ])
            .send()
            .await
            .expect("POST login");
        let status = resp.status().as_u16();
        let page = resp.text().await.expect("html");
        let consent = page
            .contains("value=\"approve\"")
            .then(|| handle_of(&page))
            .flatten();
        (status, consent, page)
    }

    /// Posts the consent form: the redirect's status and query parameters.
    async fn consent(&self, handle: &str, action: &str) -> (u16, Vec<(String, String)>) {
        let resp = self
            .http
            .post(format!("{}/auth/authorize", self.root()))
            .form(&[("handle", handle), ("action", action)])
            .send()
            .await
            .expect("POST consent");
        (resp.status().as_u16(), location_query(&resp))
    }

    /// A code from the whole flow as `PATIENT_USER`.
    async fn code(&self, extra: &[(&str, &str)]) -> String {
        let (status, handle) = self.login_page(&self.authorize_url(extra)).await;
        assert_eq!(status, 200);
        let (status, consent, page) = self
            .sign_in(&handle.expect("handle"), PATIENT_USER, PASSWORD, "")
            .await;
        assert_eq!(status, 200, "{page}");
        let (status, query) = self.consent(&consent.expect("consent"), "approve").await;
        assert_eq!(status, 303);
        param(&query, "code").expect("code")
    }

    async fn token(&self, form: &[(&str, &str)]) -> (u16, Value, reqwest::header::HeaderMap) {
        let resp = self
            .http
            .post(format!("{}/auth/token", self.root()))
            .form(form)
            .send()
            .await
            .expect("POST token");
        common::split(resp).await
    }

    async fn exchange(&self, code: &str) -> (u16, Value) {
        let (status, body, _) = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("client_id", APP),
                ("code_verifier", VERIFIER),
            ])
            .await;
        (status, body)
    }

    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let (status, body, _) = self
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", APP),
            ])
            .await;
        (status, body)
    }

    async fn fhir_status(&self, token: &str, path: &str) -> u16 {
        common::client_with(token)
            .get(self.s.url(path))
            .send()
            .await
            .expect("GET")
            .status()
            .as_u16()
    }

    async fn post_auth(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let resp = self
            .s
            .client
            .post(format!("{}/auth/{path}", self.root()))
            .form(form)
            .send()
            .await
            .expect("POST");
        let (status, body, _) = common::split(resp).await;
        (status, body)
    }

    fn advance(&self, secs: u64) {
        self.ahead.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Request parameters to change: (name, value), an empty value removing the parameter.
type Params<'a> = &'a [(&'a str, &'a str)];

fn handle_of(html: &str) -> Option<String> {
    let start = html.find("name=\"handle\" value=\"")? + "name=\"handle\" value=\"".len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

fn location_query(resp: &reqwest::Response) -> Vec<(String, String)> {
    let Some(loc) = resp.headers().get("location").and_then(|l| l.to_str().ok()) else {
        return Vec::new();
    };
    reqwest::Url::parse(loc)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn param(query: &[(String, String)], name: &str) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

/// A local "app" that receives the redirect: every query it is called with.
async fn callback_server() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |uri: axum::http::Uri| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(uri.query().unwrap_or("").to_owned());
                "signed in; you may close this window"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/callback"), rx)
}

// ---- the tests ----

/// The standalone launch as a browser and an app do it: the authorize URL, the sign-in
/// and consent forms, the redirect followed to the app's callback, the code exchanged
/// with the PKCE verifier, and the patient's Observations read with the token.
async fn standalone_launch_reads_only_the_patients_own_observations(e: &Env) {
    let (callback, mut received) = callback_server().await;
    register(&e.s, public_client("callback-app", &[&callback])).await;
    let url = e.authorize_url(&[("client_id", "callback-app"), ("redirect_uri", &callback)]);
    let (status, handle) = e.login_page(&url).await;
    assert_eq!(status, 200);
    let (status, consent, page) = e
        .sign_in(&handle.expect("handle"), PATIENT_USER, PASSWORD, "")
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Alice Liddell"),
        "the consent page names the patient"
    );
    assert!(page.contains("patient/*.read"), "{page}");
    // A browser follows the redirect to the app.
    let browser = reqwest::Client::new();
    let resp = browser
        .post(format!("{}/auth/authorize", e.root()))
        .form(&[
            ("handle", consent.expect("consent").as_str()),
            ("action", "approve"),
        ])
        .send()
        .await
        .expect("POST consent");
    assert_eq!(resp.status().as_u16(), 200, "the callback answered");
    let query = received.recv().await.expect("the callback was called");
    let query: Vec<(String, String)> = form_pairs(&query);
    assert_eq!(param(&query, "state").as_deref(), Some("st-123"));
    assert_eq!(param(&query, "iss").as_deref(), Some(e.s.base.as_str()));
    let code = param(&query, "code").expect("code");

    let (status, body, headers) = e
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &callback),
            ("client_id", "callback-app"),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["patient"].as_str(), Some(e.alice.as_str()));
    // openid and fhirUser are not granted (no id_token); the rest is.
    assert_eq!(
        body["scope"],
        "launch/patient patient/*.read offline_access"
    );
    assert!(body["refresh_token"]
        .as_str()
        .is_some_and(|r| r.len() >= 43));

    let token = body["access_token"].as_str().expect("access token");
    let app = common::client_with(token);
    for path in [
        format!("Observation?patient={}", e.alice),
        "Observation".to_string(),
    ] {
        let resp = app.get(e.s.url(&path)).send().await.expect("GET");
        let (status, bundle, _) = common::split(resp).await;
        assert_eq!(status, 200, "{bundle}");
        let subjects: Vec<&str> = bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|x| x["resource"]["subject"]["reference"].as_str().unwrap_or(""))
            .collect();
        let alice = format!("Patient/{}", e.alice);
        assert_eq!(subjects, [alice.as_str(), alice.as_str()], "{path}");
    }
    let resp = app
        .get(e.s.url(&format!("Observation?patient={}", e.bob)))
        .send()
        .await
        .expect("GET");
    let (_, bundle, _) = common::split(resp).await;
    assert_eq!(
        bundle["entry"].as_array().map_or(0, Vec::len),
        0,
        "not Bob's"
    );
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// Bad authorization requests: an unknown client or redirect URI shows an error page
/// and redirects nowhere; the rest go back to the app with `error` and `state`.
async fn bad_authorization_requests_are_refused(e: &Env) {
    for extra in [
        ("client_id", "no-such-app"),
        ("redirect_uri", "http://127.0.0.1:9/other"),
        ("redirect_uri", ""),
    ] {
        let resp = e
            .http
            .get(e.authorize_url(&[extra]))
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status().as_u16(), 400, "{extra:?}");
        assert!(resp.headers().get("location").is_none(), "{extra:?}");
    }
    let cases: [(Params, &str); 6] = [
        (
            &[
                ("code_challenge_method", "plain"),
                ("code_challenge", VERIFIER),
            ],
            "invalid_request",
        ),
        (
            &[("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (&[("code_challenge_method", "")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("aud", "https://other.example/fhir")], "invalid_request"),
        (&[("scope", "launch/patient bogus/*.rs")], "invalid_scope"),
    ];
    for (extra, error) in cases {
        let resp = e
            .http
            .get(e.authorize_url(extra))
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status().as_u16(), 302, "{extra:?}");
        let q = location_query(&resp);
        assert_eq!(param(&q, "error").as_deref(), Some(error), "{extra:?}");
        assert_eq!(param(&q, "state").as_deref(), Some("st-123"), "{extra:?}");
        assert!(param(&q, "code").is_none());
    }
    // Denying consent.
    let (_, handle) = e.login_page(&e.authorize_url(&[])).await;
    let (_, consent, _) = e
        .sign_in(&handle.expect("handle"), PATIENT_USER, PASSWORD, "")
        .await;
    let consent = consent.expect("consent");
    let (status, q) = e.consent(&consent, "deny").await;
    assert_eq!(status, 303);
    assert_eq!(param(&q, "error").as_deref(), Some("access_denied"));
    // A consent handle works once; an altered one not at all.
    let (status, _) = e.consent(&consent, "approve").await;
    assert_eq!(status, 303, "the deny did not spend it");
    let (status, q) = e.consent(&consent, "approve").await;
    assert_eq!((status, param(&q, "code")), (400, None), "replayed consent");
    let (status, _) = e.consent(&format!("{consent}x"), "approve").await;
    assert_eq!(status, 400, "altered handle");
}

/// RFC 6749 §4.1.3 and RFC 7636 §4.6: the code is single-use, expires, and is bound to
/// the client, redirect URI and PKCE challenge.
async fn authorization_code_errors(e: &Env) {
    let cases: [(Params, u16, &str); 5] = [
        (
            &[(
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            )],
            400,
            "invalid_grant",
        ),
        (&[("code_verifier", CHALLENGE)], 400, "invalid_grant"),
        (
            &[("redirect_uri", "http://127.0.0.1:9/other")],
            400,
            "invalid_grant",
        ),
        (&[("client_id", "no-such-app")], 401, "invalid_client"),
        (&[("code_verifier", "")], 400, "invalid_request"),
    ];
    for (change, status, error) in cases {
        let code = e.code(&[]).await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", APP),
            ("code_verifier", VERIFIER),
        ];
        for (k, v) in change {
            form.retain(|(name, _)| name != k);
            if !v.is_empty() {
                form.push((k, v));
            }
        }
        let (got, body, headers) = e.token(&form).await;
        assert_eq!(
            (got, error_of(&body)),
            (status, error),
            "{change:?}: {body}"
        );
        assert_eq!(headers["cache-control"], "no-store");
    }
    // Issued to another registered client.
    register(&e.s, public_client("other-app", &[REDIRECT])).await;
    let code = e.code(&[]).await;
    let (status, body, _) = e
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "other-app"),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));

    // Used twice: refused, and the token it gave is revoked (RFC 6749 §4.1.2).
    let code = e.code(&[]).await;
    let (status, first) = e.exchange(&code).await;
    assert_eq!(status, 200, "{first}");
    let token = first["access_token"].as_str().expect("token");
    assert_eq!(e.fhir_status(token, "Observation").await, 200);
    let (status, body) = e.exchange(&code).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    assert_eq!(e.fhir_status(token, "Observation").await, 401);
    let refresh = first["refresh_token"].as_str().expect("refresh");
    assert_eq!(error_of(&e.refresh(refresh).await.1), "invalid_grant");

    // Expired: codes live 60 s.
    let code = e.code(&[]).await;
    e.advance(61);
    let (status, body) = e.exchange(&code).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));

    // Other grant types and malformed requests.
    let (status, body, _) = e.token(&[("grant_type", "password")]).await;
    assert_eq!((status, error_of(&body)), (400, "unsupported_grant_type"));
    let (status, body, _) = e.token(&[("code", "x")]).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_request"));
    let resp = e
        .http
        .post(format!("{}/auth/token", e.root()))
        .body("grant_type=authorization_code&grant_type=refresh_token")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .expect("POST");
    let (status, body, _) = common::split(resp).await;
    assert_eq!(
        (status, error_of(&body)),
        (400, "invalid_request"),
        "repeated parameter"
    );
}

/// Refresh tokens rotate: each works once and brings a new one; presenting a used one
/// revokes the grant — its refresh tokens and access tokens (OAuth security BCP §4.14).
async fn refresh_tokens_rotate_and_reuse_revokes_the_grant(e: &Env) {
    let (_, first) = e.exchange(&e.code(&[]).await).await;
    let r1 = first["refresh_token"].as_str().expect("refresh").to_owned();
    let (status, second) = e.refresh(&r1).await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    assert_ne!(r1, r2);
    assert_eq!(second["patient"].as_str(), Some(e.alice.as_str()));
    assert_eq!(second["scope"], first["scope"]);
    let a2 = second["access_token"].as_str().expect("access").to_owned();
    assert_eq!(e.fhir_status(&a2, "Observation").await, 200);
    // A narrower scope for the access token only.
    let (status, third, _) = e
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r2),
            ("client_id", APP),
            ("scope", "patient/*.read launch/patient"),
        ])
        .await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(third["scope"], "patient/*.read launch/patient");
    let r3 = third["refresh_token"].as_str().expect("rotated").to_owned();
    let (status, body, _) = e
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r3),
            ("client_id", APP),
            ("scope", "patient/*.cruds"),
        ])
        .await;
    assert_eq!((status, error_of(&body)), (400, "invalid_scope"));

    // r1 again: refused, and everything from this grant stops working.
    let (_, fresh) = e.exchange(&e.code(&[]).await).await;
    let (status, body) = e.refresh(&r1).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    assert_eq!(e.fhir_status(&a2, "Observation").await, 401);
    assert_eq!(error_of(&e.refresh(&r3).await.1), "invalid_grant");
    // Another grant of the same user is untouched.
    let other = fresh["access_token"].as_str().expect("access");
    assert_eq!(e.fhir_status(other, "Observation").await, 200);
    // Unknown refresh tokens and another client's.
    assert_eq!(error_of(&e.refresh("not-a-token").await.1), "invalid_grant");
}

/// RFC 7009 revocation and RFC 7662 introspection.
async fn revocation_and_introspection(e: &Env) {
    let (_, t) = e.exchange(&e.code(&[]).await).await;
    let access = t["access_token"].as_str().expect("access").to_owned();
    let refresh = t["refresh_token"].as_str().expect("refresh").to_owned();

    // Introspection needs a bearer token; the administrator's may look at any token.
    let resp = e
        .http
        .post(format!("{}/auth/introspect", e.root()))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 401);
    let (status, info) = e.post_auth("introspect", &[("token", &access)]).await;
    assert_eq!(status, 200);
    assert_eq!(info["active"], true);
    assert_eq!(
        info["scope"],
        "launch/patient patient/*.read offline_access"
    );
    assert_eq!(info["client_id"], APP);
    assert_eq!(info["username"], PATIENT_USER);
    assert_eq!(info["sub"], PATIENT_USER);
    assert_eq!(info["patient"].as_str(), Some(e.alice.as_str()));
    assert_eq!(info["fhirUser"], format!("Patient/{}", e.alice));
    assert!(info["exp"].as_u64().is_some());
    let (_, info) = e.post_auth("introspect", &[("token", &refresh)]).await;
    assert_eq!(
        (info["active"].as_bool(), info["client_id"].as_str()),
        (Some(true), Some(APP))
    );
    // The patient may introspect their own token.
    let own = common::client_with(&access)
        .post(format!("{}/auth/introspect", e.root()))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(common::split(own).await.1["active"], true);

    // Revoking the access token stops it at once; the refresh token still works.
    let revoke = |token: String, client: &'static str| {
        let http = e.http.clone();
        let url = format!("{}/auth/revoke", e.root());
        async move {
            let resp = http
                .post(url)
                .form(&[("token", token.as_str()), ("client_id", client)])
                .send()
                .await
                .expect("POST revoke");
            resp.status().as_u16()
        }
    };
    register(&e.s, public_client("other-app", &[REDIRECT])).await;
    assert_eq!(
        revoke(access.clone(), "other-app").await,
        400,
        "not its token"
    );
    assert_eq!(e.fhir_status(&access, "Observation").await, 200);
    assert_eq!(revoke(access.clone(), APP).await, 200);
    assert_eq!(e.fhir_status(&access, "Observation").await, 401);
    let (_, info) = e.post_auth("introspect", &[("token", &access)]).await;
    assert_eq!(info, json!({"active": false}));
    let (status, renewed) = e.refresh(&refresh).await;
    assert_eq!(status, 200, "{renewed}");

    // Revoking a refresh token revokes its grant: the refresh and access tokens.
    let refresh2 = renewed["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let access2 = renewed["access_token"].as_str().expect("access").to_owned();
    assert_eq!(revoke(refresh2.clone(), APP).await, 200);
    assert_eq!(error_of(&e.refresh(&refresh2).await.1), "invalid_grant");
    assert_eq!(e.fhir_status(&access2, "Observation").await, 401);
    let (_, info) = e.post_auth("introspect", &[("token", &refresh2)]).await;
    assert_eq!(info, json!({"active": false}));
    // Unknown tokens: 200 all the same (RFC 7009 §2.2).
    assert_eq!(revoke("no-such-token".into(), APP).await, 200);
    let (_, info) = e
        .post_auth("introspect", &[("token", "no-such-token")])
        .await;
    assert_eq!(info, json!({"active": false}));
}

/// After `FREE_FAILURES` wrong passwords the next failure locks the name; while locked
/// even the right password is refused; once the lock passes it works.
/// Sign-ins in the audit trail: (user, action, outcome) of every login record.
async fn sign_ins(e: &Env) -> Vec<(String, String, String)> {
    let store = e.s.records.store().clone();
    tokio::task::spawn_blocking(move || {
        let mut tx = store.read().expect("read");
        oxehr_store::audit::list(tx.as_mut(), 0, 100_000).expect("audit")
    })
    .await
    .expect("join")
    .into_iter()
    .filter(|a| a.record.action.starts_with("login"))
    .map(|a| {
        (
            a.record.user.unwrap_or_default(),
            a.record.action,
            a.record.outcome,
        )
    })
    .collect()
}

async fn sign_in_is_throttled(e: &Env) {
    let before = sign_ins(e).await.len();
    let (_, handle) = e.login_page(&e.authorize_url(&[])).await;
    let handle = handle.expect("handle");
    for i in 0..=FREE_FAILURES {
        let (status, consent, page) = e
            .sign_in(&handle, PATIENT_USER, "wrong password!", "")
            .await;
        assert_eq!((status, consent), (401, None), "failure {i}");
        assert!(
            !page.contains("wrong password!"),
            "the page repeats the password"
        );
    }
    let (status, consent, page) = e.sign_in(&handle, PATIENT_USER, PASSWORD, "").await;
    assert_eq!((status, consent), (429, None), "locked");
    assert!(page.contains("Try again in"));
    // Half-way through the lock (real seconds also pass: each check hashes a password
    // and writes the audit trail, slow in a debug build on a busy machine).
    e.advance(LOCK_SECS / 2);
    assert_eq!(e.sign_in(&handle, PATIENT_USER, PASSWORD, "").await.0, 429);
    e.advance(LOCK_SECS / 2 + 2);
    let (status, consent, _) = e.sign_in(&handle, PATIENT_USER, PASSWORD, "").await;
    assert_eq!(status, 200);
    assert!(consent.is_some());
    // An unknown user name fails like a wrong password.
    assert_eq!(e.sign_in(&handle, "nobody", PASSWORD, "").await.0, 401);
    // Each failed check and the success are in the audit trail (refusals while locked
    // check nothing and are not).
    let failed = (
        PATIENT_USER.to_string(),
        "login-failed".to_string(),
        "failure".to_string(),
    );
    let mut want = vec![failed; FREE_FAILURES as usize + 1];
    want.push((PATIENT_USER.to_string(), "login".into(), "success".into()));
    want.push(("nobody".into(), "login-failed".into(), "failure".into()));
    assert_eq!(sign_ins(e).await[before..], want[..]);
}

/// An account with an authenticator needs a valid, unused TOTP code (RFC 6238).
async fn an_authenticator_is_required_when_enrolled(e: &Env) {
    add_account(&e.s, "carol", &format!("Patient/{}", e.bob)).await;
    let secret = oxehr_auth::TotpSecret::generate();
    let (store, b32) = (e.s.records.store().clone(), secret.to_base32());
    tokio::task::spawn_blocking(move || {
        store.write(Box::new(move |tx| {
            let mut row = oxehr_store::accounts::get(tx, "carol")?.expect("carol");
            row.totp_secret = Some(b32.clone());
            Ok(Box::new(oxehr_store::accounts::update(tx, &row)?))
        }))
    })
    .await
    .expect("join")
    .expect("enrol");
    let (_, handle) = e.login_page(&e.authorize_url(&[])).await;
    let handle = handle.expect("handle");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + e.ahead.load(Ordering::Relaxed);
    let code = secret.code_at(now);
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().expect("digits") + 1) % 1_000_000
    );
    // Three failures: the throttle's free ones in these tests.
    for totp in ["", wrong.as_str(), "12345"] {
        let (status, consent, _) = e.sign_in(&handle, "carol", PASSWORD, totp).await;
        assert_eq!((status, consent), (401, None), "code {totp:?}");
    }
    let (status, consent, page) = e.sign_in(&handle, "carol", PASSWORD, &code).await;
    assert_eq!(status, 200, "{page}");
    assert!(consent.is_some());
    // The secret was stored in plain text (as before sealing): the sign-in sealed it.
    let stored = stored_secret(e, "carol").await;
    assert!(oxehr_auth::SecretKey::is_sealed(&stored), "{stored}");
    assert!(!stored.contains(&secret.to_base32()));
    assert_eq!(
        e.secrets_key.open(&stored, "carol").expect("opens"),
        secret.to_base32()
    );
    // The same code cannot be used again.
    assert_eq!(e.sign_in(&handle, "carol", PASSWORD, &code).await.0, 401);

    // Staff must have an authenticator (the default): without one, the right password
    // is refused until they enrol; then a code is needed.
    let store = e.s.records.store().clone();
    tokio::task::spawn_blocking(move || {
        oxehr_auth::accounts::add(
            &store,
            oxehr_auth::accounts::NewAccount {
                name: "dr-dave".into(),
                role: oxehr_auth::Role::Clinician,
                organization: None,
                person: None,
                password: PASSWORD.into(),
                mfa_required: None,
            },
        )
    })
    .await
    .expect("join")
    .expect_err("a clinician needs an organization");
    let org = create(
        &e.s,
        json!({"resourceType": "Organization", "name": "Clinic"}),
    )
    .await;
    let store = e.s.records.store().clone();
    let secret = tokio::task::spawn_blocking(move || {
        oxehr_auth::accounts::add(
            &store,
            oxehr_auth::accounts::NewAccount {
                name: "dr-dave".into(),
                role: oxehr_auth::Role::Clinician,
                organization: Some(org),
                person: None,
                password: PASSWORD.into(),
                mfa_required: None,
            },
        )
        .expect("account");
        store
    })
    .await
    .expect("join");
    // The failures above count against this client address too: let that lock pass.
    e.advance(LOCK_SECS + 1);
    let (_, handle) = e
        .login_page(&e.authorize_url(&[("scope", "user/Patient.rs")]))
        .await;
    let handle = handle.expect("handle");
    let (status, consent, page) = e.sign_in(&handle, "dr-dave", PASSWORD, "").await;
    assert_eq!((status, consent), (403, None), "not enrolled");
    assert!(page.contains("enrol"), "{page}");
    let key = e.secrets_key.clone();
    let (_, totp) = tokio::task::spawn_blocking(move || {
        oxehr_auth::accounts::enrol_mfa(&secret, "dr-dave", &key)
    })
    .await
    .expect("join")
    .expect("enrol");
    // Stored sealed, never in plain text.
    let stored = stored_secret(e, "dr-dave").await;
    assert!(oxehr_auth::SecretKey::is_sealed(&stored), "{stored}");
    assert!(!stored.contains(&totp.to_base32()));
    assert_eq!(
        e.sign_in(&handle, "dr-dave", PASSWORD, "").await.0,
        401,
        "now a code is needed"
    );
    e.advance(LOCK_SECS + 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + e.ahead.load(Ordering::Relaxed);
    let (status, consent, _) = e
        .sign_in(&handle, "dr-dave", PASSWORD, &totp.code_at(now))
        .await;
    assert_eq!(status, 200);
    assert!(consent.is_some());
}

/// The authenticator secret as the database holds it.
async fn stored_secret(e: &Env, name: &str) -> String {
    let (store, name) = (e.s.records.store().clone(), name.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut tx = store.read().expect("read");
        oxehr_store::accounts::get(tx.as_mut(), &name)
            .expect("account")
            .and_then(|a| a.totp_secret)
            .expect("a secret")
    })
    .await
    .expect("join")
}

#[path = "smart/backend.rs"]
mod backend;
use backend::backend_services_use_signed_assertions;

/// Discovery: `.well-known/smart-configuration` at the root and under the FHIR base, and
/// the endpoints in the CapabilityStatement's `rest.security`.
async fn discovery(e: &Env) {
    for url in [
        format!("{}/.well-known/smart-configuration", e.root()),
        format!("{}/.well-known/smart-configuration", e.s.base),
    ] {
        let resp = reqwest::get(&url).await.expect("GET");
        let (status, c, _) = common::split(resp).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(c["token_endpoint"], format!("{}/auth/token", e.root()));
        assert_eq!(
            c["authorization_endpoint"],
            format!("{}/auth/authorize", e.root())
        );
        assert_eq!(c["code_challenge_methods_supported"], json!(["S256"]));
        for capability in [
            "launch-standalone",
            "client-public",
            "client-confidential-asymmetric",
            "permission-v2",
        ] {
            assert!(c["capabilities"]
                .as_array()
                .expect("capabilities")
                .contains(&json!(capability)));
        }
        assert!(!c["capabilities"]
            .as_array()
            .expect("capabilities")
            .contains(&json!("sso-openid-connect")));
        // Every scope advertised is one this server grants: a narrowed one's query can
        // be honoured.
        for scope in c["scopes_supported"].as_array().expect("scopes") {
            let scope = scope.as_str().expect("a string");
            let parsed = oxehr_auth::parse_scope(scope).expect(scope);
            if let Some(r) = parsed.as_resource() {
                assert!(r.narrowing().is_ok() || !r.is_narrowed(), "{scope}");
            }
        }
    }
    let resp = reqwest::get(e.s.url("metadata")).await.expect("GET");
    let (_, cs, _) = common::split(resp).await;
    let security = &cs["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    let uris = &security["extension"][0];
    assert_eq!(
        uris["url"],
        "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    );
    assert!(uris["extension"]
        .as_array()
        .expect("uris")
        .contains(&json!({"url": "token", "valueUri": format!("{}/auth/token", e.root())})));
}

/// A cookie's `name=value` from a response's `Set-Cookie` headers, with the header.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let pair = v.split(';').next().unwrap_or("").to_string();
            (pair, v.to_string())
        })
}

/// The value of the hidden field `name` of a page.
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let at = format!("name=\"{name}\" value=\"");
    let start = html.find(&at)? + at.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// Signs in through the pages as a browser does: `GET /` gives the sign-in form with
/// its double-submit token (cookie and hidden field), `POST /sign-in` sends it back.
/// The response to the POST.
async fn sign_in_to_pages(e: &Env, user: &str, password: &str) -> reqwest::Response {
    let page = e
        .http
        .get(format!("{}/", e.root()))
        .send()
        .await
        .expect("GET /");
    assert_eq!(page.status().as_u16(), 200);
    let (csrf_cookie, _) = set_cookie(&page, "oxehr_csrf").expect("the sign-in form's cookie");
    let html = page.text().await.expect("html");
    let csrf = hidden_field(&html, "csrf").expect("the sign-in form's token");
    e.http
        .post(format!("{}/sign-in", e.root()))
        .header("cookie", csrf_cookie)
        .form(&[
            ("username", user),
            ("password", password),
            ("totp", ""),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("POST /sign-in")
}

/// Web sessions: sign in on the pages (`/`, `POST /sign-in`), and the session cookie
/// stands in for a token on FHIR requests; it ends after 15 minutes without use (each
/// use renews it), and at `POST /sign-out`; a write with the cookie needs
/// X-Requested-With.
async fn web_sessions_expire_when_idle(e: &Env) {
    let before = sign_ins(e).await.len();
    let resp = sign_in_to_pages(e, PATIENT_USER, "wrong password!").await;
    assert_eq!(resp.status().as_u16(), 401);
    assert!(set_cookie(&resp, "oxehr_session").is_none());
    let resp = sign_in_to_pages(e, PATIENT_USER, PASSWORD).await;
    assert_eq!(resp.status().as_u16(), 303);
    let (cookie, set) = set_cookie(&resp, "oxehr_session").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(cookie.len() > 40, "{cookie}");
    let get = |path: String| {
        let req = e.http.get(e.s.url(&path)).header("cookie", cookie.clone());
        async move { req.send().await.expect("GET").status().as_u16() }
    };
    let own = format!("Patient/{}", e.alice);
    assert_eq!(get(own.clone()).await, 200, "the session acts for alice");
    assert_eq!(
        get(format!("Patient/{}", e.bob)).await,
        403,
        "with alice's rights only"
    );
    let obs = json!({"resourceType": "Consent"});
    let write = e
        .http
        .post(e.s.url("Consent"))
        .header("cookie", cookie.clone())
        .header("content-type", "application/fhir+json")
        .body(obs.to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(
        write.status().as_u16(),
        403,
        "a cookie write needs X-Requested-With"
    );
    // Idle for 14 minutes: still on, and renewed; 14 more: still on; then 16: ended.
    e.advance(14 * 60);
    assert_eq!(get(own.clone()).await, 200);
    e.advance(14 * 60);
    assert_eq!(get(own.clone()).await, 200);
    e.advance(16 * 60);
    assert_eq!(get(own.clone()).await, 401, "idle for 16 minutes");
    assert_eq!(get(own.clone()).await, 401, "and gone");
    // Sign-out ends a session at once; only with the session's form token.
    let resp = sign_in_to_pages(e, PATIENT_USER, PASSWORD).await;
    let (cookie2, _) = set_cookie(&resp, "oxehr_session").expect("cookie");
    let read = |cookie: String| {
        let req = e.http.get(e.s.url(&own)).header("cookie", cookie);
        async move { req.send().await.expect("GET").status().as_u16() }
    };
    assert_eq!(read(cookie2.clone()).await, 200);
    let home = e
        .http
        .get(format!("{}/", e.root()))
        .header("cookie", cookie2.clone())
        .send()
        .await
        .expect("GET /");
    let html = home.text().await.expect("html");
    assert!(html.contains("action=\"/sign-out\""), "{html}");
    let token = hidden_field(&html, "csrf").expect("the sign-out form's token");
    let sign_out = |csrf: &str| {
        e.http
            .post(format!("{}/sign-out", e.root()))
            .header("cookie", cookie2.clone())
            .form(&[("csrf", csrf)])
            .send()
    };
    let forged = sign_out("").await.expect("POST /sign-out");
    assert_eq!(forged.status().as_u16(), 303);
    assert_eq!(
        read(cookie2.clone()).await,
        200,
        "a sign-out without the form's token ends nothing"
    );
    let out = sign_out(&token).await.expect("POST /sign-out");
    assert_eq!(out.status().as_u16(), 303);
    let (cleared, _) = set_cookie(&out, "oxehr_session").expect("the cookie is cleared");
    assert_eq!(cleared, "oxehr_session=");
    assert_eq!(read(cookie2).await, 401);
    // The sign-ins are audited like the app sign-ins.
    let failed = (
        PATIENT_USER.to_string(),
        "login-failed".to_string(),
        "failure".to_string(),
    );
    let ok = (
        PATIENT_USER.to_string(),
        "login".to_string(),
        "success".to_string(),
    );
    assert_eq!(sign_ins(e).await[before..], [failed, ok.clone(), ok][..]);
}

/// Whether `html` shows `text` with its `<` and `>` escaped (as `&lt;`/`&gt;` or as
/// numeric references).
fn shows_escaped(html: &str, text: &str) -> bool {
    ["&lt;", "&#60;"]
        .iter()
        .zip(["&gt;", "&#62;"])
        .any(|(lt, gt)| html.contains(&text.replace('<', lt).replace('>', gt)))
}

/// The authorization pages are the web crate's: no chart navigation, the scopes in
/// plain words, every value from a client's registration escaped, a policy that lets
/// the consent form end at the app; the API's old session sign-in page is gone.
async fn the_authorization_pages_are_plain_and_escaped(e: &Env) {
    let hostile = "<script>alert(1)</script>";
    let mut client = public_client("hostile-app", &[REDIRECT]);
    client.name = hostile.into();
    register(&e.s, client).await;
    let url = e.authorize_url(&[
        ("client_id", "hostile-app"),
        (
            "scope",
            "launch/patient patient/Observation.rs offline_access",
        ),
    ]);
    let resp = e.http.get(&url).send().await.expect("GET authorize");
    assert_eq!(resp.status().as_u16(), 200);
    let headers = resp.headers().clone();
    let page = resp.text().await.expect("html");
    assert!(!page.contains(hostile), "{page}");
    assert!(shows_escaped(&page, hostile), "{page}");
    assert_eq!(headers["cache-control"], "no-store");
    let csp = headers["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("form-action 'self'") && csp.contains(" http://127.0.0.1:9"),
        "the sign-in form may end at the app (its invalid_scope redirect): {csp}"
    );
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    let handle = handle_of(&page).expect("handle");
    let resp = e
        .http
        .post(format!("{}/auth/authorize", e.root()))
        .form(&[
            ("handle", handle.as_str()),
            ("username", PATIENT_USER),
            ("password", PASSWORD),
            ("action", "login"),
        ])
        .send()
        .await
        .expect("POST sign-in");
    assert_eq!(resp.status().as_u16(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains(" http://127.0.0.1:9"),
        "the consent form ends at the app: {csp}"
    );
    let page = resp.text().await.expect("html");
    assert!(page.contains("value=\"approve\""), "{page}");
    assert!(!page.contains(hostile), "{page}");
    assert!(shows_escaped(&page, hostile), "{page}");
    // The granted scopes in words, each with its code.
    for words in [
        "know whose record is open",
        "read, search results and measurements in your record",
        "keep access after you sign out, until you revoke it",
    ] {
        assert!(page.contains(words), "{words}: {page}");
    }
    assert!(
        page.contains("<code>patient/Observation.rs</code>"),
        "{page}"
    );
    assert!(page.contains("Alice Liddell"), "{page}");
    // No chart navigation or sign-out form: this is not a session of the pages.
    for nav in ["/patients", "/sign-out", "Sign out"] {
        assert!(!page.contains(nav), "{nav}: {page}");
    }
    // The old session pages of the API answer like any unknown URL.
    let root = e.root();
    for (method, path) in [
        (reqwest::Method::GET, "/auth/login"),
        (reqwest::Method::POST, "/auth/login"),
        (reqwest::Method::POST, "/auth/logout"),
    ] {
        let resp = e
            .http
            .request(method.clone(), format!("{root}{path}"))
            .form(&[("username", PATIENT_USER), ("password", PASSWORD)])
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 404, "{method} {path}");
        assert!(resp.headers().get("set-cookie").is_none());
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let e = super::start(super::Backend::Sqlite).await.expect("sqlite server");
                    super::$name(&e).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(e) = super::start(super::Backend::Postgres).await else { return };
                    super::$name(&e).await;
                }
            )*
        }
    };
}

on_both_backends!(
    standalone_launch_reads_only_the_patients_own_observations,
    bad_authorization_requests_are_refused,
    authorization_code_errors,
    refresh_tokens_rotate_and_reuse_revokes_the_grant,
    revocation_and_introspection,
    sign_in_is_throttled,
    an_authenticator_is_required_when_enrolled,
    backend_services_use_signed_assertions,
    discovery,
    web_sessions_expire_when_idle,
    the_authorization_pages_are_plain_and_escaped,
);
