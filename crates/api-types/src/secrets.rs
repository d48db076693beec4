//! Team secrets: set by name, listed by name, never read back.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/secrets`: create the secret, or replace its value.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SetSecretRequest {
    /// 1-63 letters, digits, `_`, `.` or `-`, starting with a letter or digit.
    pub name: String,
    /// At most 64 KiB, no control characters (it is sent in HTTP headers).
    pub value: String,
}

impl std::fmt::Debug for SetSecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetSecretRequest")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// A secret as the API shows it: never its value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    pub created_at: String,
    /// The key that created it.
    pub created_by: String,
    /// When its value was last set.
    pub updated_at: String,
    pub updated_by: String,
}

/// `GET /v1/secrets`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SecretList {
    pub secrets: Vec<Secret>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_is_never_printed() {
        let req = SetSecretRequest {
            name: "gh".into(),
            value: "ghp_hunter2".into(),
        };
        assert!(!format!("{req:?}").contains("hunter2"));
    }
}
