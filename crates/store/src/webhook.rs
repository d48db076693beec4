//! Lifecycle webhooks as the store keeps them (see
//! `migrations/sqlite/0013_webhooks.sql`).

use time::OffsetDateTime;
use warren_core::{KeyId, TeamId};

/// Whose payload and headers a registration gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookFlavor {
    /// Warren's payload, Standard Webhooks headers.
    Warren,
    /// E2B's payload and `e2b-signature` headers (registered through E2B's
    /// `/events/webhooks`).
    E2b,
}

impl WebhookFlavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warren => "warren",
            Self::E2b => "e2b",
        }
    }
}

impl std::str::FromStr for WebhookFlavor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "warren" => Ok(Self::Warren),
            "e2b" => Ok(Self::E2b),
            other => Err(format!("unknown webhook flavor '{other}'")),
        }
    }
}

/// One registration. The secret is sealed; only the daemon opens it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: String,
    pub team: TeamId,
    pub name: String,
    pub url: String,
    /// Event names, or `*`.
    pub events: Vec<String>,
    pub flavor: WebhookFlavor,
    pub enabled: bool,
    pub secret_ciphertext: Vec<u8>,
    pub secret_nonce: Vec<u8>,
    pub created_by: KeyId,
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("team", &self.team)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("flavor", &self.flavor)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl WebhookRecord {
    /// Whether the registration wants events of type `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.enabled && self.events.iter().any(|e| e == "*" || e == kind)
    }
}

/// One lifecycle event of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEventRecord {
    /// Random, unique; the `webhook-id` of every delivery of it.
    pub id: String,
    pub team: TeamId,
    pub sandbox: String,
    pub kind: String,
    /// JSON object: what the payload's `data` carries.
    pub data: String,
    pub at: OffsetDateTime,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up: no 2xx within the retry window.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown delivery state '{other}'")),
        }
    }
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// From 1.
    pub attempt: u32,
    pub at: OffsetDateTime,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why no answer counted (connect error, timeout, refused address).
    pub error: Option<String>,
    /// The start of the receiver's body, bounded.
    pub response: Option<String>,
}

/// One delivery of one event to one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub webhook: String,
    pub event: LifecycleEventRecord,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub first_attempt_at: Option<OffsetDateTime>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<OffsetDateTime>,
    /// Every attempt, first first (filled by the delivery log only).
    pub log: Vec<AttemptRecord>,
}

/// What an attempt decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptNext {
    Delivered,
    /// Try again at this time.
    Retry(OffsetDateTime),
    /// Give up.
    Failed,
}

/// Which of a sandbox's lifecycle events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPage {
    /// Events skipped first.
    pub offset: u32,
    pub limit: u32,
    /// Oldest first when true.
    pub ascending: bool,
    /// Only these types; empty for every type.
    pub types: Vec<String>,
}
