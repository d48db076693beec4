//! One lifecycle lock per sandbox. Pause, resume, snapshot, rollback and
//! fork of one sandbox take it, so within this daemon they run one at a
//! time and a call that finds a sandbox pausing or resuming waits for the
//! outcome instead of failing. Across processes the store's
//! compare-and-set still decides.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;
use warren_core::SandboxId;

#[derive(Default)]
pub struct Locks(Mutex<HashMap<SandboxId, Arc<tokio::sync::Mutex<()>>>>);

impl Locks {
    /// Waits for and takes the lock of `id`.
    pub async fn lock(&self, id: &SandboxId) -> OwnedMutexGuard<()> {
        let lock = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.clone())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// Forgets the lock of a sandbox that is gone.
    pub fn forget(&self, id: &SandboxId) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}
