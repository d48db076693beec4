//! Background teardown. `runsc delete` and namespace removal take seconds, so
//! they never run on a request path: killed sandboxes are queued here and a
//! worker destroys them a few at a time. `Runtime::destroy` is idempotent, so
//! a sandbox queued twice (or again after a restart) is harmless.
//!
//! Only a confirmed teardown releases the sandbox's network slot in the
//! store, after its firewall chain is gone: until then no new sandbox can
//! get the addresses its veth may still hold, and a restarted daemon finds
//! it in `unreleased_sandboxes` and tries again.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use warren_core::SandboxId;
use warren_runtime::Runtime;
use warren_store::{Store, StoreError};

/// How many sandboxes are destroyed at once.
const PARALLEL: usize = 4;

/// Handle to the teardown queue.
#[derive(Clone)]
pub struct Teardown {
    tx: mpsc::UnboundedSender<SandboxId>,
}

impl Teardown {
    /// Starts the worker; it runs until every handle is dropped and the queue
    /// is drained, and the returned join handle completes then.
    pub fn start(
        runtime: Arc<dyn Runtime>,
        store: Arc<dyn Store>,
        network: Arc<super::Network>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<SandboxId>();
        let worker = tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(PARALLEL));
            let mut running = JoinSet::new();
            while let Some(id) = rx.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let runtime = runtime.clone();
                let store = store.clone();
                let network = network.clone();
                running.spawn(async move {
                    destroy(runtime.as_ref(), store.as_ref(), &network, &id).await;
                    drop(permit);
                });
                while running.try_join_next().is_some() {}
            }
            while running.join_next().await.is_some() {}
        });
        (Self { tx }, worker)
    }

    pub fn enqueue(&self, id: SandboxId) {
        // The worker lives as long as any handle, so this cannot fail while
        // `self` exists.
        let _ = self.tx.send(id);
    }
}

/// Destroys the sandbox's instance, then removes its firewall chain, then
/// releases its slot: in that order, so neither its veth nor its chain is
/// left when the slot's next sandbox comes up.
async fn destroy(
    runtime: &dyn Runtime,
    store: &dyn Store,
    network: &super::Network,
    id: &SandboxId,
) {
    if let Err(e) = runtime.destroy(id).await {
        tracing::warn!(sandbox = %id, error = %e, "teardown failed; it is retried at the next start");
        return;
    }
    network.forget(id).await;
    match store.release_slot(id).await {
        // Not in the store: an instance reconciliation found and removed.
        Ok(()) | Err(StoreError::NotFound(_)) => {
            tracing::debug!(sandbox = %id, "sandbox torn down");
        }
        Err(e) => tracing::warn!(sandbox = %id, error = %e, "could not release the network slot"),
    }
}
