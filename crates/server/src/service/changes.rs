//! Sandbox changes as they happen, for live views (`GET
//! /v1/sandboxes/watch`).
//!
//! Protocol: every place that writes a sandbox's row (a create or fork
//! inserting it, a state transition, a pause or resume committing, a
//! lifecycle entry being recorded) publishes a [`Change`] naming the
//! sandbox and its team, after the write. A change carries no state: a
//! watcher reads the row again, so it always shows what the store holds,
//! and a change published twice is harmless.
//!
//! Invariants: a watcher subscribes before it reads the list it starts
//! from, so no change between the two is missed; a watcher that falls
//! more than [`CAPACITY`] changes behind is told so (`Lagged`) and reads
//! the whole list again. Publishing never blocks and never fails.

use tokio::sync::broadcast;
use warren_core::{SandboxId, TeamId};
use warren_store::SandboxRecord;

/// Changes a slow watcher may fall behind by before it must re-read.
pub const CAPACITY: usize = 1024;

/// Sandbox `id` of `team` was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub team: TeamId,
    pub id: SandboxId,
}

/// The channel changes go through.
#[derive(Debug, Clone)]
pub struct Changes {
    tx: broadcast::Sender<Change>,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Changes {
    /// Tells every watcher that `rec` was written.
    pub fn publish(&self, rec: &SandboxRecord) {
        // No watcher is not an error.
        let _ = self.tx.send(Change {
            team: rec.team.clone(),
            id: rec.id.clone(),
        });
    }

    /// Changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}
