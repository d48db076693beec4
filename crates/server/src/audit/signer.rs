//! The signer: publishes a signed tree head at least every second while the
//! log grows.
//!
//! Every [`SIGN_INTERVAL`] it compares the last committed size (from the
//! writer) with the size it last signed; if the log grew it signs
//! `(size, timestamp, root)` with Ed25519 and stores the head. At start it
//! knows the largest stored head, so a tail left unsigned by a crash is
//! signed at the first tick; at shutdown it signs once more. A head that
//! fails to store is retried at the next tick.

use std::time::Duration;

use tokio::sync::watch;
use warren_audit::{SigningKey, TreeHead};
use warren_store::SqliteAudit;

use super::now_ms;
use super::writer::Committed;

/// How often the signer looks for growth.
pub const SIGN_INTERVAL: Duration = Duration::from_millis(500);

/// Signs until `shutdown` fires, then signs what is committed and returns.
pub(crate) async fn run(
    store: SqliteAudit,
    key: SigningKey,
    mut signed: u64,
    committed: watch::Receiver<Committed>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SIGN_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = shutdown.changed() => true,
        };
        let (size, root_hash) = *committed.borrow();
        if size > signed {
            let head = TreeHead {
                size,
                root_hash,
                timestamp_ms: now_ms(),
            };
            match store.insert_head(&head.sign(&key)).await {
                Ok(()) => signed = size,
                Err(e) => {
                    tracing::warn!(error = %warren_core::error::chain(&e), size, "cannot store a signed tree head; retrying")
                }
            }
        }
        if stopping {
            return;
        }
    }
}
