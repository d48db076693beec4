//! Dashboard sessions (`/v1/session`) and the live sandbox list
//! (`/v1/sandboxes/watch`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/session`: an API key to exchange for a session cookie.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// A `wrn_…` API key. The session acts with this key's role and
    /// scopes, and ends when the key is revoked or expires.
    pub api_key: String,
}

/// A dashboard session: the cookie `warren_session` carries its id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Session {
    /// Sent as `X-CSRF-Token` on every call made with the cookie (a GET
    /// may send it as the query parameter `csrf_token`).
    pub csrf_token: String,
    /// The id of the key the session acts with.
    pub key: String,
    /// RFC 3339; the cookie is refused from then on.
    pub expires_at: String,
}

/// An event of `GET /v1/sandboxes/watch` (`event: removed`): the sandbox
/// was killed or is gone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SandboxRemoved {
    pub id: String,
}
