//! Sources of events as the store keeps them: inbound webhook hooks with
//! their subscriptions, and timers (see
//! `migrations/sqlite/0012_hooks_timers.sql`).

use time::OffsetDateTime;
use warren_core::{KeyId, SandboxId, TeamId};

/// Which signatures a hook's deliveries carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// GitHub's `X-Hub-Signature-256`.
    Github,
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`).
    Standard,
}

impl HookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Standard => "standard",
        }
    }
}

impl std::str::FromStr for HookKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "github" => Ok(Self::Github),
            "standard" => Ok(Self::Standard),
            other => Err(format!(
                "unknown hook kind '{}' (expected github or standard)",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// Where a hook sends the deliveries that match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Its number within the hook, from 0; never reused while the hook
    /// lives (a removed one leaves a gap).
    pub id: u32,
    pub sandbox: SandboxId,
    /// `owner/name` (GitHub hooks).
    pub repository: Option<String>,
    /// Only deliveries about this pull request.
    pub pull_request: Option<u64>,
    /// Only deliveries about this branch.
    pub branch: Option<String>,
    /// Event types; empty is every type.
    pub events: Vec<String>,
}

/// One hook row with its subscriptions, in order.
#[derive(Clone, PartialEq, Eq)]
pub struct HookRecord {
    pub id: String,
    pub team: TeamId,
    pub kind: HookKind,
    /// AEAD ciphertext of the secret, with its tag.
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub created_by: KeyId,
    pub created_at: OffsetDateTime,
    /// Deliveries accepted (replays not counted).
    pub accepted: u64,
    /// Deliveries refused: bad or missing signature, stale, too large.
    pub rejected: u64,
    pub last_delivery_at: Option<OffsetDateTime>,
    pub subscriptions: Vec<Subscription>,
}

impl std::fmt::Debug for HookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookRecord")
            .field("id", &self.id)
            .field("team", &self.team)
            .field("kind", &self.kind)
            .field("accepted", &self.accepted)
            .field("rejected", &self.rejected)
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

/// A timer: an event to send to its sandbox at `fires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerRecord {
    pub id: String,
    pub sandbox: SandboxId,
    pub fires_at: OffsetDateTime,
    pub kind: String,
    pub source: String,
    /// The JSON payload.
    pub data: String,
    pub created_by: KeyId,
    pub created_at: OffsetDateTime,
}
