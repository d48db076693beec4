//! Teams, users and API keys (`/v1/teams`, `/v1/users`, `/v1/keys`,
//! `/v1/whoami`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/teams` (operator admins): a team with its first admin.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreateTeamRequest {
    /// 1-63 characters of a-z, 0-9 and `-`, starting with a letter or digit.
    pub name: String,
    /// Name of the team's first user, who gets an admin key.
    pub admin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Team {
    pub id: String,
    pub name: String,
    /// The operator team's admins create teams.
    pub operator: bool,
    pub created_at: String,
}

/// The answer to `POST /v1/teams`; the key's secret is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TeamCreated {
    pub team: Team,
    pub admin: User,
    pub key: NewKey,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TeamList {
    pub teams: Vec<Team>,
}

/// `POST /v1/users` (team admins).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 1-128 characters of letters, digits and `. _ - @ +`; unique in the team.
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub team: String,
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct UserList {
    pub users: Vec<User>,
}

/// `POST /v1/keys` (team admins). The new key's role and scopes may not
/// exceed the caller's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// A label for people, e.g. `ci` or `laptop`.
    pub name: String,
    /// The user (id) the key acts for; default: the caller's user.
    #[serde(default)]
    pub user: Option<String>,
    /// `admin`, `member` or `viewer`; default `member`.
    #[serde(default)]
    pub role: Option<String>,
    /// Restricts the role, e.g. `["sandboxes:read", "audit:read"]`.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Seconds until the key stops working; default: never.
    #[serde(default)]
    pub expires_in_s: Option<u64>,
    /// Give the key's text in E2B's spelling, `e2b_` + lowercase hex, which
    /// E2B's SDKs insist on. It is the same key either way.
    #[serde(default)]
    pub e2b: bool,
}

/// A key as listings show it (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    pub name: String,
    pub team: String,
    pub user: String,
    pub role: String,
    /// `null`: the role's whole grant.
    pub scopes: Option<Vec<String>>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A freshly minted key; `secret` is the full key text, shown once
/// (`wrn_<id>_<secret>`, or `e2b_<hex>` when asked for E2B's spelling).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct NewKey {
    #[serde(flatten)]
    pub key: Key,
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct KeyList {
    pub keys: Vec<Key>,
}

/// `GET /v1/whoami`: the identity and rights behind the credential.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct WhoAmI {
    pub team: String,
    pub team_name: String,
    pub user: String,
    pub user_name: String,
    /// The key presented, or the key that dispatched the calling sandbox.
    pub key: String,
    pub role: String,
    /// Everything the caller may do.
    pub scopes: Vec<String>,
    /// The sandbox acting, for a sandbox token.
    pub sandbox: Option<String>,
}
