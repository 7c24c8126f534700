//! Password hashing and the password policy.
//!
//! Hashes are Argon2id PHC strings with the `argon2` crate's defaults (version 19, 19 MiB of
//! memory, 2 passes, 1 lane), which is OWASP's recommended Argon2id setting, and a 16-byte
//! salt from the OS random number generator. The PHC string carries its own parameters, so
//! raising the cost later keeps old hashes verifiable; [`needs_rehash`] tells the login flow
//! when to store a fresh hash.
//!
//! The policy follows NIST SP 800-63B: a minimum length and nothing else that annoys people
//! into worse passwords (no composition rules, no forced rotation). The upper bound is there
//! so a request cannot make the server hash megabytes.

use argon2::{Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier};

use crate::AuthError;

/// Fewest characters (Unicode scalar values, not bytes) a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Most bytes (UTF-8) a password may have.
pub const MAX_PASSWORD_BYTES: usize = 1024;

// Cost ceiling for hashes read back from storage. Ours use m=19456, t=2, p=1; a stored hash
// asking for far more is corrupt or planted, and verifying it could exhaust memory, so it is
// treated as malformed.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 8;

/// Hashes `password` with Argon2id and a fresh random salt, returning the PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) to store.
///
/// This does not apply the policy; call [`check_password_policy`] first when the password is
/// being chosen.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        // The error comes from the RNG or the parameters, never from the password's content,
        // so its text cannot leak the password.
        .map_err(|e| AuthError::Internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the stored PHC string `phc`.
///
/// Returns false, without panicking, for a malformed string, an algorithm other than Argon2,
/// or parameters above the cost ceiling. The comparison of the hash outputs is constant-time.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB
        || params.t_cost() > MAX_T_COST
        || params.p_cost() > MAX_P_COST
    {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

/// Whether a stored hash was made with other settings than [`hash_password`] uses now (or
/// cannot be read), so that after a successful login the password should be hashed again.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return true;
    };
    let current = Params::default();
    hash.algorithm.as_str() != argon2::ARGON2ID_IDENT.as_str()
        || hash.version != Some(argon2::Version::V0x13.into())
        || params.m_cost() != current.m_cost()
        || params.t_cost() != current.t_cost()
        || params.p_cost() != current.p_cost()
}

/// Checks a newly chosen password against the policy: at least [`MIN_PASSWORD_CHARS`]
/// characters, at most [`MAX_PASSWORD_BYTES`] bytes, and not one character repeated.
///
/// The error says which rule failed and never repeats the password.
pub fn check_password_policy(password: &str) -> Result<(), AuthError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::Invalid(format!(
            "password is too long: at most {MAX_PASSWORD_BYTES} bytes are allowed"
        )));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::Invalid(format!(
            "password is too short: at least {MIN_PASSWORD_CHARS} characters are required"
        )));
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return Err(AuthError::Invalid(
                "password must not be a single character repeated".to_owned(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PASSWORD: &str = "correct horse battery staple";

    #[test]
    fn hash_then_verify_accepts_the_same_password() {
        let phc = hash_password(PASSWORD).unwrap();
        assert!(verify_password(PASSWORD, &phc));
    }

    #[test]
    fn verify_rejects_a_different_password() {
        let phc = hash_password(PASSWORD).unwrap();
        for wrong in [
            "",
            "correct horse battery stapl",
            "correct horse battery staple ",
            "Correct horse battery staple",
        ] {
            assert!(!verify_password(wrong, &phc), "{wrong:?}");
        }
    }

    #[test]
    fn hash_uses_argon2id_v19_with_owasp_parameters() {
        let phc = hash_password(PASSWORD).unwrap();
        assert!(
            phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "unexpected prefix: {phc}"
        );
        assert!(!phc.contains(PASSWORD));
        assert!(!needs_rehash(&phc));
    }

    #[test]
    fn two_hashes_of_the_same_password_differ_by_salt() {
        let a = hash_password(PASSWORD).unwrap();
        let b = hash_password(PASSWORD).unwrap();
        assert_ne!(a, b);
        assert!(verify_password(PASSWORD, &a));
        assert!(verify_password(PASSWORD, &b));
    }

    #[test]
    fn hash_and_verify_handle_non_ascii_passwords() {
        let password = "pässwörd-ñ-日本語-🔑";
        let phc = hash_password(password).unwrap();
        assert!(verify_password(password, &phc));
        assert!(!verify_password("passwörd-ñ-日本語-🔑", &phc));
    }

    #[test]
    fn verify_returns_false_for_malformed_or_unacceptable_hashes() {
        let phc = hash_password(PASSWORD).unwrap();
        let truncated = &phc[..phc.len() - 5];
        let cases = [
            "".to_owned(),
            "not a hash".to_owned(),
            "$argon2id$".to_owned(),
            "$argon2id$v=19$m=19456,t=2,p=1$".to_owned(),
            truncated.to_owned(),
            phc.replace("$argon2id$", "$scrypt$"),
            phc.replace("m=19456", "m=abc"),
            phc.replace("t=2", "t=0"),
            // Parameters above the cost ceiling: refused rather than run.
            phc.replace("m=19456", "m=4194304"),
            phc.replace("t=2", "t=1000"),
            phc.replace("p=1", "p=64"),
        ];
        for case in &cases {
            assert!(!verify_password(PASSWORD, case), "{case:?}");
        }
    }

    #[test]
    fn verify_accepts_hashes_from_the_reference_implementation() {
        // Computed with libargon2 (phc-winner-argon2, Debian's libargon2-1) through
        // argon2id_hash_encoded / argon2i_hash_encoded, password "password", salt "somesalt",
        // 32-byte output: independent of the crate under test.
        let cases = [
            (
                "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$PL01amPyeUuxG7H0vIr5X+qHkZvWnHmGBGXFYvh8z2E",
                false,
            ),
            (
                "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
                true,
            ),
            (
                "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$ZQtVoIvv4LCxG3PDoH8q01Z7lZKnNcPd0LDCITjwEmQ",
                true,
            ),
        ];
        for (phc, stale) in cases {
            assert!(verify_password("password", phc), "{phc}");
            assert!(!verify_password("Password", phc), "{phc}");
            assert_eq!(needs_rehash(phc), stale, "{phc}");
        }
    }

    #[test]
    fn needs_rehash_flags_other_settings_and_garbage() {
        let phc = hash_password(PASSWORD).unwrap();
        assert!(!needs_rehash(&phc));
        assert!(needs_rehash(&phc.replace("t=2", "t=3")));
        assert!(needs_rehash(&phc.replace("$argon2id$", "$argon2i$")));
        assert!(needs_rehash("garbage"));
    }

    #[test]
    fn policy_accepts_and_rejects_by_rule() {
        // (password, expected: None = accepted, Some(fragment of the message))
        let long = "x".repeat(1024) + "y";
        let max_bytes = "ab".repeat(512);
        let cases: Vec<(&str, Option<&str>)> = vec![
            ("correct horse battery staple", None),
            ("exactly12chr", None),
            ("ünïcödé-päss", None), // 12 chars, 18 bytes
            ("🔑🔒🔑🔒🔑🔒🔑🔒🔑🔒🔑🔒", None),
            (max_bytes.as_str(), None),
            ("", Some("too short")),
            ("short", Some("too short")),
            ("elevenchars", Some("too short")),
            ("ünïcödé-päs", Some("too short")), // 11 chars, 17 bytes
            (long.as_str(), Some("too long")),
            ("aaaaaaaaaaaa", Some("single character repeated")),
            ("            ", Some("single character repeated")),
            ("ééééééééééééééé", Some("single character repeated")),
        ];
        for (password, expected) in cases {
            let result = check_password_policy(password);
            match expected {
                None => assert!(result.is_ok(), "{password:?}: {result:?}"),
                Some(fragment) => {
                    let message = result.unwrap_err().to_string();
                    assert!(message.contains(fragment), "{password:?}: {message}");
                    // Tiny inputs such as "short" may coincide with a word of the message.
                    if password.chars().count() >= 8 {
                        assert!(!message.contains(password), "message leaks the password");
                    }
                }
            }
        }
    }

    #[test]
    fn policy_error_never_contains_the_password() {
        for password in ["hunter2", "zzzzzzzzzzzzzzzz", &"q".repeat(2000)] {
            let message = check_password_policy(password).unwrap_err().to_string();
            assert!(!message.contains(password), "{message}");
        }
    }
}
