//! Account-security building blocks for oxehr.
//!
//! - [`role`]: the roles an account can hold (patient, clinician, nurse, front desk,
//!   organisation and system administrators).
//! - [`password`]: Argon2id password hashing and the password policy.
//! - [`totp`]: time-based one-time passwords (RFC 6238) for multi-factor sign-in.
//! - [`scope`]: parsing SMART on FHIR OAuth scopes such as `patient/Observation.rs`.
//! - [`throttle`]: exponential lock-out after repeated failed sign-ins.
//! - [`token`]: signed bearer access tokens (JWT, HS256) and their verification.
//! - [`oauth`]: the OAuth 2.0 / SMART authorization server's rules: scopes a grant gets,
//!   PKCE, client registration checks, backend services' signed client assertions.
//!
//! - [`identity`]: who is calling, over the store: sign-in (with the throttle and its
//!   audit record), browser sessions, bearer tokens and the OAuth grants, behind one
//!   [`Identity`] that every adapter uses.
//! - [`accounts`]: account management (add, list, disable, reset a password) over the
//!   storage port, with the rules: login names, roles tied to an existing Organization and
//!   Patient or Practitioner, the password policy, MFA for staff.
//! - [`clients`]: the registered OAuth clients over the storage port (register, list,
//!   disable).
//!
//! **Invariant:** the building blocks (`role`, `password`, `totp`, `scope`, `throttle`, `token`,
//! `oauth`)
//! are pure: no I/O, no clock; the caller passes the time in and keeps secrets and
//! throttle state where it likes. Their only contact with the outside is the OS random
//! number generator, for salts and TOTP secrets. `accounts` reads and writes through
//! `oxehr_store`'s traits (never a database driver) and reads the clock for the rows'
//! times; so does `identity`, which also writes the sign-in audit records and reads
//! the configured clock.
//!
//! Error messages never contain a password, a TOTP secret or a code.

pub mod accounts;
pub mod clients;
pub mod error;
pub mod identity;
pub mod oauth;
pub mod password;
pub mod policy;
pub mod role;
pub mod scope;
pub mod sealed;
pub mod throttle;
pub mod token;
pub mod totp;

pub use error::AuthError;
pub use identity::{Clock, Identity, IdentityConfig};
pub use password::{check_password_policy, hash_password, needs_rehash, verify_password};
pub use policy::Caller;
pub use role::Role;
pub use scope::{parse_scope, parse_scopes, Context, Perm, Permissions, ResourceScope, Scope};
pub use sealed::SecretKey;
pub use throttle::{Throttle, ThrottlePolicy};
pub use totp::TotpSecret;
