//! Sandboxes' inboxes as the store keeps them (see
//! `migrations/sqlite/0010_events.sql` and `0011_inbox_delivery.sql`).

use time::OffsetDateTime;
use warren_core::SandboxId;
use warren_core::inbox::InboxSettings;

/// An event about to be appended to a sandbox's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub sandbox: SandboxId,
    pub kind: String,
    pub source: String,
    /// The JSON payload as sent.
    pub data: String,
    pub dedupe_key: Option<String>,
    /// Lower-case hex SHA-256 of `data`.
    pub sha256: String,
    pub received_at: OffsetDateTime,
}

/// One event of an inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub sandbox: SandboxId,
    /// Its place in the sandbox's inbox, from 1.
    pub seq: u64,
    pub kind: String,
    pub source: String,
    pub data: String,
    pub dedupe_key: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub received_at: OffsetDateTime,
    /// When it was first handed to the sandbox.
    pub delivered_at: Option<OffsetDateTime>,
    pub acked_at: Option<OffsetDateTime>,
}

/// What appending gave: the event, and whether it is new (a retry with a
/// known `dedupe_key` finds the first one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendedEvent {
    pub event: EventRecord,
    pub created: bool,
}

/// A sandbox's inbox: where its numbering and acknowledgement stand, and
/// how it takes events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRecord {
    pub sandbox: SandboxId,
    /// The newest event's number (0 before the first).
    pub last_seq: u64,
    /// Every event up to this number is acknowledged.
    pub acked_seq: u64,
    pub settings: InboxSettings,
}

impl InboxRecord {
    /// Whether events wait for acknowledgement.
    pub fn has_pending(&self) -> bool {
        self.last_seq > self.acked_seq
    }
}
