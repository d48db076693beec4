//! Credentials and permissions.
//!
//! - API keys read `wrn_<key id>_<secret>`: the id (12 chars) finds the row,
//!   the secret (32 random bytes, hex) is checked against the stored
//!   HMAC-SHA256(pepper, secret) in constant time. The pepper lives in the
//!   data directory, outside the database, so a leaked database alone does
//!   not allow offline guessing. A key belongs to a user of a team and has a
//!   role, optional scopes and an optional expiry ([`warren_core::authz`]).
//! - Sandbox tokens ([`token`]) let a sandbox call the API for its
//!   dispatcher, with at most the dispatcher's rights, on itself only.
//! - Access grants ([`grant`]) let a client reach one sandbox's agent or
//!   ports, for one key, until they expire.
//! - [`policy`] is the one table of which scope each route needs;
//!   [`authorize`] applies it, and the `SandboxPath` extractor answers 404
//!   for another team's (or, for a token, another) sandbox.

pub mod grant;
mod keys;
mod middleware;
pub mod policy;
pub mod token;

pub use grant::Grants;
pub use keys::{ApiKey, KeyError, Pepper};
pub use middleware::{
    Authenticator, Caller, Credentials, Rules, SandboxSources, authenticate, authorize,
};
pub use token::TokenIssuer;
