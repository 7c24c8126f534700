//! Secrets kept in the database sealed with a key of the server's: authenticated
//! encryption (ChaCha20-Poly1305, `ring`), each under a fresh random nonce and bound to
//! what it belongs to (an account's name), so a copy of the database alone — a backup,
//! a replica, a dump — does not hold a usable TOTP secret, and a sealed value copied to
//! another account does not open.
//!
//! Stored form: `sealed:v1:` then base64url (no padding) of the 12-byte nonce followed by
//! the ciphertext and its tag. A value without the prefix is an older plaintext one,
//! which [`SecretKey::open`] still reads so that a server started with sealing seals it
//! (`accounts::seal_secrets`).

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use crate::error::AuthError;

const PREFIX: &str = "sealed:v1:";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The server's key for secrets at rest: 32 random bytes (`<data>/secrets/secrets-key`).
#[derive(Clone)]
pub struct SecretKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> SecretKey {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        SecretKey { bytes }
    }

    /// A key from its 32 bytes (as stored).
    pub fn from_bytes(bytes: &[u8]) -> Result<SecretKey, AuthError> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| AuthError::Invalid("a secrets key is 32 bytes".into()))?;
        Ok(SecretKey { bytes })
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &self.bytes).expect("32-byte key"))
    }

    /// `plaintext` sealed for `owner` (for example the account's name).
    pub fn seal(&self, plaintext: &str, owner: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random source");
        let mut data = plaintext.as_bytes().to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.as_bytes()),
                &mut data,
            )
            .expect("sealing in memory");
        let mut out = nonce.to_vec();
        out.extend(data);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// The plaintext of a stored value sealed for `owner`; a value from before sealing
    /// (no prefix) is returned as it is. Fails for a value sealed with another key, for
    /// another owner, or altered.
    pub fn open(&self, stored: &str, owner: &str) -> Result<String, AuthError> {
        let Some(sealed) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let refused =
            || AuthError::Invalid("a sealed secret does not open with this server's key".into());
        let raw = B64.decode(sealed).map_err(|_| refused())?;
        if raw.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| refused())?;
        let mut data = data.to_vec();
        let plain = self
            .aead()
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.as_bytes()),
                &mut data,
            )
            .map_err(|_| refused())?;
        String::from_utf8(plain.to_vec()).map_err(|_| refused())
    }

    /// Whether a stored value is sealed (rather than an older plaintext one).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_owner_and_key() {
        let key = SecretKey::generate();
        let s = key.seal("JBSWY3DPEHPK3PXP", "alice");
        assert!(SecretKey::is_sealed(&s));
        // The plaintext is not in the stored form.
        assert!(!s.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(key.open(&s, "alice").expect("opens"), "JBSWY3DPEHPK3PXP");
        // A fresh nonce each time: the same secret seals differently.
        assert_ne!(s, key.seal("JBSWY3DPEHPK3PXP", "alice"));
        // Another owner, another key, or one changed character: refused.
        assert!(key.open(&s, "bob").is_err());
        assert!(SecretKey::generate().open(&s, "alice").is_err());
        let mut altered = s.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("ascii");
        assert!(key.open(&altered, "alice").is_err());
        assert!(key.open("sealed:v1:", "alice").is_err());
        assert!(key.open("sealed:v1:!!", "alice").is_err());
        // An older plaintext value reads as it is.
        assert_eq!(
            key.open("JBSWY3DPEHPK3PXP", "alice").expect("plain"),
            "JBSWY3DPEHPK3PXP"
        );
    }
}
