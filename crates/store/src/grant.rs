//! Access grants as the store keeps them (see `migrations/sqlite/0008_grants.sql`).

use time::OffsetDateTime;
use warren_core::{KeyId, SandboxId};

/// What a grant opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantKind {
    /// The sandbox's agent (envd's port) and every other port.
    Envd,
    /// The sandbox's own servers: every port but the agent's.
    Traffic,
}

impl GrantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Envd => "envd",
            Self::Traffic => "traffic",
        }
    }
}

impl std::str::FromStr for GrantKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "envd" => Ok(Self::Envd),
            "traffic" => Ok(Self::Traffic),
            other => Err(format!("unknown grant kind '{other}'")),
        }
    }
}

/// One grant row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// Random, unique; the secret part of the grant's text is a MAC over it.
    pub id: String,
    pub sandbox: SandboxId,
    pub kind: GrantKind,
    /// The key it was handed to; the grant works only while the key does.
    pub key: KeyId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}
