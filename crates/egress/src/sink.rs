//! Where the resolver and the proxy send their [`NetEvent`]s: a bounded
//! channel the daemon drains into the store. Emitting never blocks the
//! traffic it describes; when the daemon falls behind, events are dropped
//! and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::egress::NetEvent;

/// The sending side; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: mpsc::Sender<NetEvent>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// A sink holding at most `capacity` undelivered events, and its
    /// receiving end.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<NetEvent>) {
        let (tx, rx) = mpsc::channel(capacity);
        let sink = Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (sink, rx)
    }

    pub fn emit(&self, event: NetEvent) {
        if self.tx.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "network events dropped: the daemon falls behind"
                );
            }
        }
    }

    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
