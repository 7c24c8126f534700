//! The crate's one error type.
//!
//! Messages are meant to be shown to the person who caused them (a rejected password, a
//! malformed scope), so they never contain a secret: not the password, not the TOTP seed.

/// What went wrong, by the category a caller acts on.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The input was refused: a password that breaks the policy, a malformed scope or TOTP
    /// secret. The caller reports it as a client error.
    #[error("{0}")]
    Invalid(String),
    /// Something failed that the caller could not have prevented (the OS random number
    /// generator, the hashing library). The caller reports it as a server error.
    #[error("{0}")]
    Internal(String),
    /// The account (or other thing) named does not exist.
    #[error("{0}")]
    NotFound(String),
}
