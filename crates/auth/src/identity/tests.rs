//! Tests of `identity` over a real SQLite store: the refusals of bearer tokens and
//! sessions, and the sign-in's throttle and audit records. Expected values are the
//! rules as documented (RFC 7519 claims, the session idle time, the throttle policy),
//! not this code's output. The HTTP flows are tested in `oxehr-api`'s `smart` tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use oxehr_store::accounts::AccountRow;
use oxehr_store::oauth::{AccessRow, ClientRow};
use oxehr_store::Store;

use super::*;
use crate::token::{self, Claims, SigningKey};

const ISSUER: &str = "https://ehr.example/fhir";

struct Env {
    identity: Identity,
    store: Arc<dyn Store>,
    key: SigningKey,
    ahead: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

fn env_with(config: IdentityConfig) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        oxehr_store_sqlite::SqliteStore::open(&dir.path().join("t.sqlite"), Default::default())
            .expect("open"),
    );
    let ahead = Arc::new(AtomicU64::new(0));
    let key = SigningKey::generate();
    let config = IdentityConfig {
        clock: Clock::ahead_by(ahead.clone()),
        ..config
    };
    Env {
        identity: Identity::new(store.clone(), key.clone(), ISSUER, config),
        store,
        key,
        ahead,
        _dir: dir,
    }
}

fn env() -> Env {
    env_with(IdentityConfig::default())
}

fn account(name: &str, role: Role, password_hash: &str) -> AccountRow {
    AccountRow {
        name: name.into(),
        role: role.code().into(),
        organization: None,
        person: None,
        password_hash: password_hash.into(),
        totp_secret: None,
        totp_last_step: None,
        mfa_required: false,
        disabled: false,
        created: 0,
        updated: 0,
    }
}

impl Env {
    fn put_account(&self, row: AccountRow) {
        self.identity
            .write(move |tx| {
                if !oxehr_store::accounts::insert(tx, &row)? {
                    oxehr_store::accounts::update(tx, &row)?;
                }
                Ok(())
            })
            .expect("account");
    }

    fn put_client(&self, id: &str, kind: &str, disabled: bool) {
        let row = ClientRow {
            client_id: id.into(),
            name: id.into(),
            kind: kind.into(),
            redirect_uris: "[]".into(),
            jwks: None,
            scope: String::new(),
            disabled,
            created: 0,
        };
        self.identity
            .write(move |tx| oxehr_store::oauth::insert_client(tx, &row))
            .expect("client");
    }

    fn revoke(&self, jti: &str) {
        let row = AccessRow {
            jti: jti.into(),
            grant_id: None,
            client_id: "app".into(),
            subject: "ann".into(),
            expires: i64::MAX,
            revoked: false,
        };
        self.identity
            .write(move |tx| {
                oxehr_store::oauth::insert_access(tx, &row)?;
                oxehr_store::oauth::revoke_access(tx, &row.jti)
            })
            .expect("revoke");
    }

    fn login_records(&self) -> Vec<(Option<String>, String, String, Option<String>)> {
        let mut tx = self.store.read().expect("read");
        oxehr_store::audit::list(tx.as_mut(), 0, 1000)
            .expect("audit")
            .into_iter()
            .map(|a| {
                (
                    a.record.user,
                    a.record.action,
                    a.record.outcome,
                    a.record.detail,
                )
            })
            .collect()
    }
}

/// Claims for `sub` that verify: issued now for an hour, issuer and audience ours.
fn claims(sub: &str, role: Role, scope: &str) -> Claims {
    let now = system_now();
    Claims {
        iss: ISSUER.into(),
        sub: sub.into(),
        aud: ISSUER.into(),
        iat: now,
        exp: now + 3600,
        jti: token::new_token_id(),
        scope: scope.into(),
        role: role.code().into(),
        org: None,
        fhir_user: None,
        patient: None,
    }
}

#[test]
fn identify_bearer_accepts_a_current_token_and_refuses_the_rest() {
    let e = env();
    e.put_account(account("ann", Role::SystemAdmin, "x"));
    e.put_account(account("off", Role::SystemAdmin, "x"));
    e.put_account(AccountRow {
        disabled: true,
        ..account("off", Role::SystemAdmin, "x")
    });
    e.put_client("svc", "backend", false);
    e.put_client("svc-off", "backend", true);
    e.put_client("app", "public", false);
    let revoked = claims("ann", Role::SystemAdmin, "system/*.rs");
    e.revoke(&revoked.jti);
    let other_key = SigningKey::generate();
    let now = system_now();

    type Case = (
        &'static str,
        Claims,
        Option<&'static SigningKey>,
        Result<(), BearerRefusal>,
    );
    let invalid = Err(BearerRefusal::Invalid(String::new()));
    let cases: Vec<Case> = vec![
        (
            "current account token",
            claims("ann", Role::SystemAdmin, "system/*.rs"),
            None,
            Ok(()),
        ),
        (
            "backend service token",
            claims("client:svc", Role::SystemAdmin, "system/*.rs"),
            None,
            Ok(()),
        ),
        (
            "signed with another key",
            claims("ann", Role::SystemAdmin, "system/*.rs"),
            Some(Box::leak(Box::new(other_key))),
            invalid.clone(),
        ),
        (
            "another issuer",
            Claims {
                iss: "https://other.example/fhir".into(),
                ..claims("ann", Role::SystemAdmin, "")
            },
            None,
            invalid.clone(),
        ),
        (
            "another audience",
            Claims {
                aud: "https://other.example/fhir".into(),
                ..claims("ann", Role::SystemAdmin, "")
            },
            None,
            invalid.clone(),
        ),
        (
            // Past the clock-skew leeway of 30 s.
            "expired",
            Claims {
                iat: now - 7200,
                exp: now - 3600,
                ..claims("ann", Role::SystemAdmin, "")
            },
            None,
            invalid.clone(),
        ),
        (
            "unknown role",
            Claims {
                role: "wizard".into(),
                ..claims("ann", Role::SystemAdmin, "")
            },
            None,
            Err(BearerRefusal::UnknownRole),
        ),
        (
            "malformed scope",
            claims("ann", Role::SystemAdmin, "patient/"),
            None,
            Err(BearerRefusal::MalformedScopes),
        ),
        (
            "no such account",
            claims("nobody", Role::SystemAdmin, ""),
            None,
            Err(BearerRefusal::NotCurrent),
        ),
        (
            "disabled account",
            claims("off", Role::SystemAdmin, ""),
            None,
            Err(BearerRefusal::NotCurrent),
        ),
        (
            "role changed since issue",
            claims("ann", Role::Clinician, ""),
            None,
            Err(BearerRefusal::NotCurrent),
        ),
        ("revoked", revoked, None, Err(BearerRefusal::NotCurrent)),
        (
            "unregistered client",
            claims("client:ghost", Role::SystemAdmin, ""),
            None,
            Err(BearerRefusal::NotCurrent),
        ),
        (
            "disabled client",
            claims("client:svc-off", Role::SystemAdmin, ""),
            None,
            Err(BearerRefusal::NotCurrent),
        ),
        (
            "public client as subject",
            claims("client:app", Role::SystemAdmin, ""),
            None,
            Err(BearerRefusal::NotCurrent),
        ),
        (
            "backend client with a user role",
            claims("client:svc", Role::Clinician, ""),
            None,
            Err(BearerRefusal::NotCurrent),
        ),
    ];
    for (name, c, key, expected) in cases {
        let signed = token::issue(key.unwrap_or(&e.key), &c).expect("sign");
        let got = e.identity.identify_bearer(&signed);
        match (&got, &expected) {
            (Ok(caller), Ok(())) => {
                assert_eq!(caller.user, c.sub, "{name}");
                assert_eq!(caller.role.code(), c.role, "{name}");
            }
            (Err(BearerRefusal::Invalid(_)), Err(BearerRefusal::Invalid(_))) => {}
            (Err(g), Err(w)) => assert_eq!(g, w, "{name}"),
            _ => panic!("{name}: got {got:?}, expected {expected:?}"),
        }
    }
    assert!(
        matches!(
            e.identity.identify_bearer("not-a-jwt"),
            Err(BearerRefusal::Invalid(_))
        ),
        "garbage"
    );
}

#[test]
fn identify_bearer_uses_the_system_clock() {
    // Codes and lock-outs follow the configured clock; access tokens are checked in
    // real time, so moving the clock does not expire them.
    let e = env();
    e.put_account(account("ann", Role::SystemAdmin, "x"));
    let signed =
        token::issue(&e.key, &claims("ann", Role::SystemAdmin, "system/*.rs")).expect("sign");
    e.ahead.store(2 * 3600, Ordering::Relaxed);
    assert!(e.identity.identify_bearer(&signed).is_ok());
}

#[test]
fn sessions_need_the_guard_to_write_and_end_when_idle_ended_or_disabled() {
    let e = env_with(IdentityConfig {
        session_idle_secs: 600,
        ..IdentityConfig::default()
    });
    e.put_account(account("ann", Role::SystemAdmin, "x"));
    let signed_in = |name: &str| SignedIn::new(account(name, Role::SystemAdmin, "x"));
    let id = e.identity.start_session(&signed_in("ann")).expect("start");

    let cases = [
        ("GET", false, Ok("ann")),
        ("HEAD", false, Ok("ann")),
        ("POST", false, Err(SessionRefusal::NoCsrfHeader)),
        ("DELETE", false, Err(SessionRefusal::NoCsrfHeader)),
        ("POST", true, Ok("ann")),
    ];
    for (method, guard, expected) in cases {
        let got = e
            .identity
            .identify_session(&id, method, guard)
            .map(|c| c.user);
        assert_eq!(
            got.as_deref().map_err(|r| *r),
            expected,
            "{method} guard={guard}"
        );
    }
    let caller = e
        .identity
        .identify_session(&id, "GET", false)
        .expect("caller");
    assert_eq!(caller.role, Role::SystemAdmin);
    assert!(
        !caller.scopes.is_empty(),
        "a session acts with the role's scopes"
    );

    assert_eq!(
        e.identity
            .identify_session("no-such-session", "GET", false)
            .map(|c| c.user),
        Err(SessionRefusal::Expired)
    );

    // Used 9 minutes later: still on (and marked used); then 10 min 1 s idle: ended.
    e.ahead.store(9 * 60, Ordering::Relaxed);
    assert!(e.identity.identify_session(&id, "GET", false).is_ok());
    e.ahead.store(9 * 60 + 601, Ordering::Relaxed);
    assert_eq!(
        e.identity
            .identify_session(&id, "GET", false)
            .map(|c| c.user),
        Err(SessionRefusal::Expired)
    );

    // Ended by the user.
    let id = e.identity.start_session(&signed_in("ann")).expect("start");
    e.identity.end_session(&id).expect("end");
    assert_eq!(
        e.identity
            .identify_session(&id, "GET", false)
            .map(|c| c.user),
        Err(SessionRefusal::Expired)
    );

    // The account disabled.
    let id = e.identity.start_session(&signed_in("ann")).expect("start");
    e.put_account(AccountRow {
        disabled: true,
        ..account("ann", Role::SystemAdmin, "x")
    });
    assert_eq!(
        e.identity
            .identify_session(&id, "GET", false)
            .map(|c| c.user),
        Err(SessionRefusal::Expired)
    );
}

#[test]
fn sign_in_throttles_and_audits() {
    let e = env_with(IdentityConfig {
        login_throttle: ThrottlePolicy {
            free_failures: 2,
            base_delay_secs: 60,
            max_delay_secs: 60,
            forget_after_secs: 3600,
        },
        ..IdentityConfig::default()
    });
    let password = "correct horse battery staple";
    e.put_account(account(
        "ann",
        Role::SystemAdmin,
        &crate::hash_password(password).expect("hash"),
    ));
    let attempt = |password: &'static str| SignInAttempt {
        user_name: "Ann",
        password,
        totp: "",
        client_address: Some("192.0.2.1"),
        via: "web session",
    };
    for _ in 0..2 {
        assert_eq!(
            e.identity.sign_in(&attempt("wrong")).map(|a| a.name),
            Err(SignInRefusal::Wrong)
        );
    }
    // Two failures are free; the third locks the name and address for 60 s.
    assert_eq!(
        e.identity.sign_in(&attempt("wrong")).map(|a| a.name),
        Err(SignInRefusal::Wrong)
    );
    // The lock is 60 s from the third failure (a second may have passed since).
    let locked = e.identity.sign_in(&attempt(password)).map(|a| a.name);
    assert!(
        matches!(locked, Err(SignInRefusal::Throttled { wait_secs: 58..=60 })),
        "{locked:?}"
    );
    e.ahead.store(61, Ordering::Relaxed);
    let signed = e.identity.sign_in(&attempt(password)).expect("signed in");
    assert_eq!(
        (signed.name.as_str(), signed.role),
        ("ann", Some(Role::SystemAdmin))
    );

    let failed = (
        Some("ann".to_string()),
        "login-failed".to_string(),
        "failure".to_string(),
        Some("web session".to_string()),
    );
    let ok = (
        Some("ann".to_string()),
        "login".to_string(),
        "success".to_string(),
        Some("web session".to_string()),
    );
    assert_eq!(
        e.login_records(),
        vec![failed.clone(), failed.clone(), failed, ok]
    );
}

/// Secrets stored in plain text before sealing are sealed by `accounts::seal_secrets`
/// (run when the server starts), bound to their accounts; sealed ones are left as they
/// are, and running it again seals nothing.
#[test]
fn plaintext_authenticator_secrets_are_sealed_at_start() {
    let e = env();
    let key = crate::SecretKey::generate();
    let plain = crate::TotpSecret::generate().to_base32();
    let mut ann = account("ann", Role::Clinician, "x");
    ann.totp_secret = Some(plain.clone());
    e.put_account(ann);
    let mut bea = account("bea", Role::Clinician, "x");
    let already = key.seal(&plain, "bea");
    bea.totp_secret = Some(already.clone());
    e.put_account(bea);
    e.put_account(account("cy", Role::Clinician, "x"));
    assert_eq!(
        crate::accounts::seal_secrets(&e.store, &key).expect("seal"),
        1
    );
    let stored = |name: &str| {
        crate::accounts::get(&e.store, name)
            .expect("read")
            .expect("account")
            .totp_secret
    };
    let ann = stored("ann").expect("a secret");
    assert!(crate::SecretKey::is_sealed(&ann) && !ann.contains(&plain));
    assert_eq!(key.open(&ann, "ann").expect("opens"), plain);
    assert_eq!(stored("bea"), Some(already));
    assert_eq!(stored("cy"), None);
    assert_eq!(
        crate::accounts::seal_secrets(&e.store, &key).expect("again"),
        0
    );
}

/// A token found current is taken as current for `token_check_secs` without reading the
/// store: disabling its account takes effect within that time (by the configured
/// clock), and at once when the time is 0.
#[test]
fn a_current_token_is_rechecked_within_the_configured_time() {
    for secs in [5u64, 0] {
        let e = env_with(IdentityConfig {
            token_check_secs: secs,
            ..IdentityConfig::default()
        });
        e.put_account(account("ann", Role::SystemAdmin, "x"));
        let signed =
            token::issue(&e.key, &claims("ann", Role::SystemAdmin, "system/*.rs")).expect("sign");
        assert!(e.identity.identify_bearer(&signed).is_ok());
        let fast = e.identity.identify_bearer_fast(&signed);
        assert_eq!(
            matches!(fast, Some(Ok(_))),
            secs > 0,
            "token_check_secs {secs}"
        );
        e.put_account(AccountRow {
            disabled: true,
            ..account("ann", Role::SystemAdmin, "x")
        });
        if secs > 0 {
            // Within the time: still taken as current, without the store.
            assert!(e.identity.identify_bearer(&signed).is_ok());
            e.ahead.store(secs, Ordering::Relaxed);
        }
        assert_eq!(
            e.identity.identify_bearer(&signed).map(|c| c.user),
            Err(BearerRefusal::NotCurrent),
            "token_check_secs {secs}"
        );
        assert!(e.identity.identify_bearer_fast(&signed).is_none());
        // A token that does not verify is refused without the store.
        assert!(matches!(
            e.identity.identify_bearer_fast("not-a-token"),
            Some(Err(BearerRefusal::Invalid(_)))
        ));
    }
}
