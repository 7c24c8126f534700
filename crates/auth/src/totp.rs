//! Time-based one-time passwords (RFC 6238) for multi-factor sign-in.
//!
//! The parameters are the ones every authenticator app understands: HMAC-SHA-1, 30-second
//! steps, 6 digits, and a 160-bit secret (RFC 4226 §4 recommends 160 bits and requires at
//! least 128). The code arithmetic is `totp-rs`; this module adds what RFC 6238 §5.2 leaves
//! to the verifier: a window of one step either side for clock skew, and refusing a step that
//! was already used, so an observed code cannot be replayed.
//!
//! Time is passed in as Unix seconds; nothing here reads the clock.

use std::fmt;

use totp_rs::{Algorithm, Builder, Totp};

use crate::AuthError;

/// Seconds per TOTP step.
pub const STEP_SECS: u64 = 30;

/// Digits in a code.
pub const DIGITS: usize = 6;

/// Bytes in a generated secret (160 bits).
pub const SECRET_BYTES: usize = 20;

// RFC 4226 §4: "The length of the shared secret MUST be at least 128 bits."
const MIN_SECRET_BYTES: usize = 16;
// HMAC-SHA-1 hashes longer keys down to 20 bytes anyway; anything this long is not a TOTP seed.
const MAX_SECRET_BYTES: usize = 64;

/// A user's TOTP shared secret.
///
/// `Debug` prints no part of the secret. Store it with [`TotpSecret::to_base32`] (encrypted at
/// rest, as it lets anyone mint codes) and load it with [`TotpSecret::from_base32`].
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret {
    // The secret bytes live inside the `Totp`, whose equality is constant-time. Skew is 0:
    // `verify` walks the window itself so that it can skip used steps.
    totp: Totp,
}

impl TotpSecret {
    /// A new random 160-bit secret from the OS random number generator.
    ///
    /// # Panics
    ///
    /// If the OS random number generator fails, which on supported systems it does not once
    /// the system has booted; this is the same contract as `rand`'s thread RNG.
    pub fn generate() -> TotpSecret {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        TotpSecret::with_bytes(bytes.to_vec())
    }

    /// The secret made of these raw bytes (16 to 64 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<TotpSecret, AuthError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(AuthError::Invalid(format!(
                "TOTP secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes long"
            )));
        }
        Ok(TotpSecret::with_bytes(bytes.to_vec()))
    }

    /// Parses RFC 4648 base32, as shown to people and stored. Case, spaces and trailing `=`
    /// padding are ignored, since people copy secrets by hand.
    pub fn from_base32(encoded: &str) -> Result<TotpSecret, AuthError> {
        let normalized: String = encoded
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .trim_end_matches('=')
            .to_ascii_uppercase();
        if normalized.is_empty()
            || !normalized
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        {
            return Err(AuthError::Invalid(
                "TOTP secret is not valid base32".to_owned(),
            ));
        }
        let secret = totp_rs::Secret::try_from_base32(&normalized)
            .map_err(|_| AuthError::Invalid("TOTP secret is not valid base32".to_owned()))?;
        TotpSecret::from_bytes(secret.as_bytes())
    }

    fn with_bytes(bytes: Vec<u8>) -> TotpSecret {
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_step_duration(STEP_SECS)
            .with_skew(0)
            .with_secret(bytes)
            // The length is checked by the callers and the other settings are constants that
            // `build` would accept; `build_noncompliant` just spares an impossible error path.
            .build_noncompliant();
        TotpSecret { totp }
    }

    /// The raw secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.totp.secret().as_bytes()
    }

    /// The secret in RFC 4648 base32 without padding, as authenticator apps expect.
    pub fn to_base32(&self) -> String {
        self.totp.secret().to_base32()
    }

    /// The `otpauth://` URI (Google Authenticator key-URI format) to show as a QR code:
    /// `otpauth://totp/Issuer:account?secret=…&issuer=…`, with the issuer and account
    /// percent-encoded. The defaults (SHA1, 6 digits, 30 s) are left implicit, as the format
    /// recommends for the widest app support.
    ///
    /// Fails if the issuer or account is empty or contains a colon, since the label uses the
    /// colon as the separator between the two and apps split on it even when encoded.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<String, AuthError> {
        for (what, value) in [("issuer", issuer), ("account name", account)] {
            if value.is_empty() || value.contains(':') {
                return Err(AuthError::Invalid(format!(
                    "TOTP {what} must be non-empty and must not contain ':'"
                )));
            }
        }
        let issuer = oxehr_fhir::url::encode_component(issuer);
        Ok(format!(
            "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}",
            account = oxehr_fhir::url::encode_component(account),
            secret = self.to_base32(),
        ))
    }

    /// The 6-digit code for the step containing `unix_seconds`.
    pub fn code_at(&self, unix_seconds: u64) -> String {
        self.totp.generate(unix_seconds).to_string()
    }

    /// Checks `code` against the step containing `unix_seconds` and the steps just before and
    /// after it. Returns the matched step, which the caller stores and passes back as
    /// `last_used_step` next time: steps at or before it are refused, so each code works once
    /// and an older one never works after a newer one has.
    ///
    /// Anything but exactly six ASCII digits is refused without computing a code.
    pub fn verify(
        &self,
        code: &str,
        unix_seconds: u64,
        last_used_step: Option<u64>,
    ) -> Option<u64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = unix_seconds / STEP_SECS;
        (current.saturating_sub(1)..=current.saturating_add(1))
            .filter(|&step| last_used_step.is_none_or(|used| step > used))
            .find(|&step| {
                step.checked_mul(STEP_SECS)
                    // `check` compares in constant time; skew 0 means only this step.
                    .is_some_and(|start| self.totp.check(code, start).is_some())
            })
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
    const RFC_SEED: &[u8] = b"12345678901234567890";

    /// RFC 6238 Appendix B, SHA-1 rows: (Unix time, 8-digit TOTP).
    const RFC_VECTORS: [(u64, &str); 6] = [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ];

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(RFC_SEED).unwrap()
    }

    #[test]
    fn rfc6238_sha1_vectors_give_the_last_six_digits() {
        // Truncation is value mod 10^digits, so the 6-digit code is the 8-digit one mod 10^6.
        let secret = rfc_secret();
        for (time, eight) in RFC_VECTORS {
            assert_eq!(secret.code_at(time), eight[2..], "t={time}");
        }
    }

    #[test]
    fn rfc6238_sha1_vectors_with_eight_digits_match_the_library() {
        // Guards the premise of the test above: the library reproduces the RFC's own digits.
        let totp = Builder::new()
            .with_digits(8)
            .with_secret(RFC_SEED.to_vec())
            .build()
            .unwrap();
        for (time, eight) in RFC_VECTORS {
            assert_eq!(totp.generate(time).to_string(), eight, "t={time}");
        }
    }

    #[test]
    fn rfc6238_codes_verify_at_their_time() {
        let secret = rfc_secret();
        for (time, eight) in RFC_VECTORS {
            assert_eq!(
                secret.verify(&eight[2..], time, None),
                Some(time / STEP_SECS),
                "t={time}"
            );
        }
    }

    #[test]
    fn verify_accepts_one_step_of_skew_either_way_and_no_more() {
        let secret = rfc_secret();
        let now = 1111111111; // step 37037037
        let step = now / STEP_SECS;
        let cases = [
            (step - 2, None),
            (step - 1, Some(step - 1)),
            (step, Some(step)),
            (step + 1, Some(step + 1)),
            (step + 2, None),
        ];
        for (code_step, expected) in cases {
            let code = secret.code_at(code_step * STEP_SECS);
            assert_eq!(
                secret.verify(&code, now, None),
                expected,
                "step {code_step}"
            );
        }
    }

    #[test]
    fn verify_refuses_a_replayed_or_older_step() {
        let secret = rfc_secret();
        let now = 1234567890;
        let step = now / STEP_SECS;
        let code = secret.code_at(now);

        let used = secret.verify(&code, now, None).unwrap();
        assert_eq!(used, step);
        // The same code again, even a second later within the same step: refused.
        assert_eq!(secret.verify(&code, now + 1, Some(used)), None);
        // The previous step's code after the current one was used: refused.
        let previous = secret.code_at(now - STEP_SECS);
        assert_eq!(secret.verify(&previous, now, Some(used)), None);
        // The next step's code is still fine.
        let next = secret.code_at(now + STEP_SECS);
        assert_eq!(secret.verify(&next, now, Some(used)), Some(step + 1));
        // A last-used step far in the past does not get in the way.
        assert_eq!(secret.verify(&code, now, Some(step - 5)), Some(step));
    }

    #[test]
    fn verify_refuses_codes_that_are_not_six_ascii_digits() {
        let secret = rfc_secret();
        let now = 1111111109;
        let good = secret.code_at(now);
        assert_eq!(good, "081804");
        for bad in [
            "",
            "08180",
            "0818044",
            "07081804",
            "+81804",
            "-81804",
            " 81804",
            "081804 ",
            "08 1804",
            "08180a",
            "０８１８０４", // full-width digits
            "٠٨١٨٠٤",       // Arabic-Indic digits
        ] {
            assert_eq!(secret.verify(bad, now, None), None, "{bad:?}");
        }
        assert!(secret.verify(&good, now, None).is_some());
    }

    #[test]
    fn verify_near_time_zero_does_not_underflow() {
        let secret = rfc_secret();
        let code = secret.code_at(0);
        assert_eq!(secret.verify(&code, 0, None), Some(0));
        assert_eq!(secret.verify(&code, 0, Some(0)), None);
    }

    #[test]
    fn base32_round_trips_and_matches_rfc4648() {
        let secret = rfc_secret();
        // RFC 4648 base32 of "12345678901234567890", computed by hand / Python base64.b32encode.
        assert_eq!(secret.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let again = TotpSecret::from_base32(&secret.to_base32()).unwrap();
        assert_eq!(again, secret);
        assert_eq!(again.as_bytes(), RFC_SEED);

        let generated = TotpSecret::generate();
        let encoded = generated.to_base32();
        assert_eq!(encoded.len(), 32); // 160 bits / 5 bits per character, no padding
        assert!(!encoded.contains('='));
        assert_eq!(TotpSecret::from_base32(&encoded).unwrap(), generated);
    }

    #[test]
    fn from_base32_forgives_case_spaces_and_padding() {
        let expected = rfc_secret();
        for input in [
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ====",
        ] {
            assert_eq!(
                TotpSecret::from_base32(input).unwrap(),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn from_base32_rejects_bad_input_without_echoing_it() {
        for input in [
            "",
            "====",
            "GEZDGNBVGY3TQOJ1", // '1' is not in the alphabet
            "GEZDGNBVGY3TQOJ8",
            "GEZD-GNBV",
            "GEZDGNBVGY3TQOJQ", // 10 bytes: below the 128-bit minimum
        ] {
            let err = TotpSecret::from_base32(input).unwrap_err().to_string();
            if !input.trim_matches('=').is_empty() {
                assert!(!err.contains(input), "{err}");
            }
        }
    }

    #[test]
    fn from_bytes_enforces_the_length_bounds() {
        assert!(TotpSecret::from_bytes(&[7; 15]).is_err());
        assert!(TotpSecret::from_bytes(&[7; 16]).is_ok());
        assert!(TotpSecret::from_bytes(&[7; 64]).is_ok());
        assert!(TotpSecret::from_bytes(&[7; 65]).is_err());
    }

    #[test]
    fn generated_secrets_are_160_bits_and_distinct() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a, b);
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let secret = rfc_secret();
        let debug = format!("{secret:?}");
        assert!(!debug.contains(&secret.to_base32()), "{debug}");
        assert!(!debug.contains("1234567890"), "{debug}");
        assert!(!debug.contains("GEZD"), "{debug}");
        assert!(!debug.contains("3132333435"), "{debug}"); // hex of the seed
    }

    #[test]
    fn otpauth_uri_has_the_key_uri_format() {
        let secret = rfc_secret();
        assert_eq!(
            secret.otpauth_uri("oxehr", "alice@example.org").unwrap(),
            "otpauth://totp/oxehr:alice%40example.org\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=oxehr"
        );
        assert_eq!(
            secret.otpauth_uri("St. Mary's Clinic", "dr smith").unwrap(),
            "otpauth://totp/St.%20Mary%27s%20Clinic:dr%20smith\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=St.%20Mary%27s%20Clinic"
        );
        assert_eq!(
            secret.otpauth_uri("Klinik Zürich", "a&b=c?").unwrap(),
            "otpauth://totp/Klinik%20Z%C3%BCrich:a%26b%3Dc%3F\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Klinik%20Z%C3%BCrich"
        );
    }

    #[test]
    fn otpauth_uri_refuses_colons_and_empty_parts() {
        let secret = rfc_secret();
        for (issuer, account) in [
            ("a:b", "alice"),
            ("oxehr", "al:ice"),
            ("", "alice"),
            ("oxehr", ""),
        ] {
            assert!(
                secret.otpauth_uri(issuer, account).is_err(),
                "{issuer:?} {account:?}"
            );
        }
    }
}
