//! API keys and the request authenticator.
//!
//! A key reads `wrn_<key id>_<secret>`: the id (12 chars) finds the row, the
//! secret (32 random bytes, hex) is checked against the stored
//! HMAC-SHA256(pepper, secret) in constant time. The pepper lives in the data
//! directory, outside the database, so a leaked database alone does not allow
//! offline guessing.

mod keys;
mod middleware;

pub use keys::{ApiKey, KeyError, Pepper, write_private};
pub use middleware::{Authenticator, Caller, require_key};
