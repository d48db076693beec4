//! Sandboxes' inboxes (`docs/events.md`): what is accepted, numbered and
//! recorded when an event is sent to a sandbox.
//!
//! An event is validated, committed to the store (which numbers it and
//! finds a retry by its dedupe key) and only then acknowledged. The audit
//! log records its type, source, size and SHA-256, never its payload. A
//! sandbox that is dead takes no events; a paused one keeps them for later.

use sha2::{Digest, Sha256};
use warren_audit::Outcome;
use warren_core::{SandboxId, SandboxState, WarrenError};
use warren_store::{AppendedEvent, EventRecord, NewEvent};

use super::Sandboxes;
use crate::audit::{Action, AuditActor, Event};

/// Largest payload, serialized.
pub const MAX_EVENT_DATA: usize = 256 * 1024;
/// Most events one inbox holds: a sender past it gets 429 until events
/// are taken out (retention comes with delivery).
pub const MAX_INBOX_EVENTS: u64 = 100_000;
/// Most events one listing returns.
pub const MAX_EVENT_PAGE: u32 = 1000;

/// What a sender asks to put in a sandbox's inbox.
pub struct SentEvent {
    pub kind: String,
    pub source: String,
    pub data: serde_json::Value,
    pub dedupe_key: Option<String>,
}

fn printable(what: &str, value: &str, max: usize) -> Result<(), WarrenError> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(WarrenError::invalid(format!(
            "{what} must be 1-{max} printable characters"
        )));
    }
    Ok(())
}

/// Checks `e` as a send would; its serialized payload.
pub(crate) fn validate(e: &SentEvent) -> Result<String, WarrenError> {
    let kind_ok = (1..=128).contains(&e.kind.len())
        && e.kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/-".contains(c));
    if !kind_ok {
        return Err(WarrenError::invalid(
            "type must be 1-128 of a-z A-Z 0-9 . _ : / -, e.g. ci.finished",
        ));
    }
    printable("source", &e.source, 256)?;
    if let Some(key) = &e.dedupe_key {
        printable("dedupe_key", key, 256)?;
    }
    let data = e.data.to_string();
    if data.len() > MAX_EVENT_DATA {
        return Err(WarrenError::invalid(format!(
            "data is {} bytes serialized; at most {MAX_EVENT_DATA} are accepted",
            data.len()
        )));
    }
    Ok(data)
}

impl Sandboxes {
    /// Puts `sent` in `id`'s inbox, durably, and records it.
    pub async fn send_event(
        &self,
        id: &SandboxId,
        sent: SentEvent,
        actor: &AuditActor,
    ) -> Result<AppendedEvent, WarrenError> {
        let data = validate(&sent)?;
        let rec = self.get(id).await?;
        if matches!(rec.state, SandboxState::Failed) {
            return Err(WarrenError::precondition(format!(
                "sandbox {id} has failed and takes no events"
            )));
        }
        let sha256 = hex::encode(Sha256::digest(data.as_bytes()));
        let appended = self
            .store
            .append_event(
                NewEvent {
                    sandbox: id.clone(),
                    kind: sent.kind,
                    source: sent.source,
                    data,
                    dedupe_key: sent.dedupe_key,
                    sha256,
                    received_at: self.clock.now(),
                },
                MAX_INBOX_EVENTS,
            )
            .await?;
        if appended.created {
            self.on_new_event(id, appended.event.seq, &appended.event.kind, rec.state)
                .await;
            let e = &appended.event;
            let event = Event::sandbox(Action::EventReceive, id, Outcome::Ok)
                .with("seq", e.seq)
                .with("type", e.kind.as_str())
                .with("source", e.source.as_str())
                .with("size", e.size)
                .with("sha256", e.sha256.as_str());
            self.audit.record_done(actor, event).await;
        }
        Ok(appended)
    }

    /// Up to `limit` events of `id`'s inbox after `after`, in order.
    pub async fn list_events(
        &self,
        id: &SandboxId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<EventRecord>, WarrenError> {
        if limit == 0 || limit > MAX_EVENT_PAGE {
            return Err(WarrenError::invalid(format!(
                "limit must be 1-{MAX_EVENT_PAGE}, got {limit}"
            )));
        }
        self.get(id).await?;
        Ok(self.store.list_events(id, after, limit).await?)
    }
}

/// An event as the API shows it, and as a handler reads it on stdin.
pub fn event_view(r: EventRecord) -> warren_api_types::Event {
    let delivery = match (r.acked_at, r.delivered_at) {
        (Some(_), _) => "acknowledged",
        (None, Some(_)) => "delivered",
        (None, None) => "pending",
    };
    warren_api_types::Event {
        seq: r.seq,
        kind: r.kind,
        source: r.source,
        data: serde_json::from_str(&r.data).unwrap_or(serde_json::Value::Null),
        dedupe_key: r.dedupe_key,
        received_at: warren_core::rfc3339(r.received_at),
        delivery: delivery.to_owned(),
        delivered_at: r.delivered_at.map(warren_core::rfc3339),
        acked_at: r.acked_at.map(warren_core::rfc3339),
    }
}
