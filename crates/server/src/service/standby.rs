//! Standby: the fast tier of paused sandboxes.
//!
//! A pause always writes the complete image to the snapshot store first;
//! only then, instead of being stopped, the instance is frozen in place
//! (every task suspended, no CPU used, memory kept) for the standby window.
//! A resume within the window thaws it (milliseconds) instead of restoring
//! the image; after the window the instance is stopped and its memory
//! released, and a resume restores from the image as before. Either way
//! the sandbox is paused, durably, from the moment the pause returns.
//!
//! Invariants: only a sandbox whose row is `paused` has a frozen instance;
//! the registry is memory only, so after a daemon restart reconcile stops
//! every frozen instance (the images are intact) and resumes restore. A
//! thaw that fails falls back to restoring the image.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OwnedMutexGuard;
use warren_core::{SandboxId, SandboxState, WarrenError};
use warren_runtime::Runtime;
use warren_store::SandboxRecord;

use super::Sandboxes;

/// The frozen instances and how long they may stay.
#[derive(Clone)]
pub struct Standby {
    window: Duration,
    frozen: Arc<Mutex<HashMap<SandboxId, Instant>>>,
}

impl Standby {
    /// Instances stay frozen for `window`; zero turns standby off.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            frozen: Arc::default(),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SandboxId, Instant>> {
        self.frozen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `id`'s instance is frozen now (its memory still held).
    pub(super) fn holds(&self, id: &SandboxId) -> bool {
        self.map().contains_key(id)
    }

    /// Removes `id`; whether it was frozen.
    fn take(&self, id: &SandboxId) -> bool {
        self.map().remove(id).is_some()
    }

    /// The sandboxes frozen for longer than the window.
    fn expired(&self) -> Vec<SandboxId> {
        let now = Instant::now();
        self.map()
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= self.window)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Releases the instance of a sandbox whose pause committed: frozen
    /// if standby is on, stopped otherwise (or if freezing fails).
    async fn release(&self, runtime: &dyn Runtime, id: &SandboxId) {
        if !self.window.is_zero() {
            match runtime.freeze(id).await {
                Ok(()) => {
                    self.map().insert(id.clone(), Instant::now());
                    return;
                }
                Err(e) => {
                    tracing::warn!(sandbox = %id, error = %e, "could not freeze a paused sandbox; stopping it");
                }
            }
        }
        if let Err(e) = runtime.stop(id).await {
            tracing::warn!(sandbox = %id, error = %e, "could not stop a paused sandbox's instance");
        }
    }
}

impl Sandboxes {
    /// Releases the instance of a sandbox whose pause committed (see
    /// [`Standby::release`]) after the pause has returned: the sandbox is
    /// durably paused already, and `lock` (its lifecycle lock) is held
    /// until the release is over, so a resume or any other lifecycle call
    /// waits for it.
    pub(super) fn release_paused(&self, id: &SandboxId, lock: OwnedMutexGuard<()>) {
        let (runtime, standby, id) = (self.runtime.clone(), self.standby.clone(), id.clone());
        tokio::spawn(async move {
            standby.release(runtime.as_ref(), &id).await;
            drop(lock);
        });
    }

    /// Resumes `rec` (paused, its lock held, already `resuming`) from its
    /// frozen instance. `false` if it has none or thawing failed; the
    /// caller then restores the image.
    pub(super) async fn thaw_standby(&self, rec: &SandboxRecord) -> bool {
        if !self.standby.take(&rec.id) {
            return false;
        }
        let thawed: Result<(), WarrenError> = async {
            let instance = self.runtime.thaw(&rec.id).await?;
            self.init_agent(rec, &instance, None).await
        }
        .await;
        match thawed {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(sandbox = %rec.id, error = %e.message, "thawing from standby failed; restoring the image");
                self.agents.remove(&rec.id);
                if let Err(e) = self.runtime.stop(&rec.id).await {
                    tracing::debug!(sandbox = %rec.id, error = %e, "stopping a failed thaw");
                }
                false
            }
        }
    }

    /// Stops the frozen instances whose window passed (their sandboxes
    /// stay paused; a resume restores the image).
    pub(super) async fn evict_standby(&self) {
        for id in self.standby.expired() {
            let _lock = self.locks.lock(&id).await;
            if !self.standby.take(&id) {
                continue;
            }
            // Only a paused sandbox's instance is frozen; anything else
            // replaced it meanwhile and owns the instance now.
            let paused = matches!(
                self.store.get_sandbox(&id).await,
                Ok(Some(rec)) if rec.state == SandboxState::Paused
            );
            if !paused {
                continue;
            }
            if let Err(e) = self.runtime.stop(&id).await {
                tracing::warn!(sandbox = %id, error = %e, "could not stop a sandbox in standby");
            }
            tracing::debug!(sandbox = %id, "standby ended; memory released");
        }
    }

    /// Forgets `id`'s frozen instance (the sandbox is being torn down,
    /// which ends the instance).
    pub(super) fn forget_standby(&self, id: &SandboxId) {
        self.standby.take(id);
    }
}
