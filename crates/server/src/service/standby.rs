//! Standby: the fast tier of paused sandboxes.
//!
//! A pause always commits the complete image to the snapshot store first;
//! only then, instead of being stopped, the instance is frozen in place
//! (every task suspended, no CPU used, memory kept) for the standby window.
//! A resume within the window thaws it (milliseconds) instead of restoring
//! the image; after the window the instance is stopped and its memory
//! released, and a resume restores from the image as before. Either way
//! the sandbox is paused from the moment the pause returns.
//!
//! Invariants: only a sandbox whose row is `paused` has a frozen instance;
//! an instance is stopped only once its image is persisted (flushed to
//! disk: see `warren_snapshot`), so until then the sandbox's state has two
//! copies, and a power loss before the flush loses no more than it would
//! of a running sandbox. The registry is memory only, so after a daemon
//! restart reconcile stops every frozen instance (the images are intact)
//! and resumes restore. A thaw that fails falls back to restoring the
//! image.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OwnedMutexGuard;
use warren_core::{SandboxId, SandboxState, SnapshotId, WarrenError};
use warren_runtime::Runtime;
use warren_snapshot::{SnapshotError, SnapshotStore};
use warren_store::SandboxRecord;

use super::Sandboxes;

/// A frozen instance: since when, and the image its pause committed.
struct Frozen {
    since: Instant,
    image: SnapshotId,
}

/// The frozen instances and how long they may stay.
#[derive(Clone)]
pub struct Standby {
    window: Duration,
    frozen: Arc<Mutex<HashMap<SandboxId, Frozen>>>,
}

impl Standby {
    /// Instances stay frozen for `window`; zero turns standby off.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            frozen: Arc::default(),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SandboxId, Frozen>> {
        self.frozen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes `id`; its image if it was frozen.
    fn take(&self, id: &SandboxId) -> Option<SnapshotId> {
        self.map().remove(id).map(|f| f.image)
    }

    /// The sandboxes frozen for longer than the window.
    fn expired(&self) -> Vec<SandboxId> {
        let now = Instant::now();
        self.map()
            .iter()
            .filter(|(_, f)| now.duration_since(f.since) >= self.window)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Releases the instance of a sandbox whose pause committed `image`:
    /// frozen if standby is on (its lifecycle `lock` is let go at once, so
    /// a resume can thaw it while the image is flushed), otherwise stopped
    /// once the image is on disk, `lock` held throughout.
    async fn release(
        &self,
        runtime: &dyn Runtime,
        snapshots: &dyn SnapshotStore,
        id: &SandboxId,
        image: SnapshotId,
        lock: OwnedMutexGuard<()>,
    ) {
        if !self.window.is_zero() {
            match runtime.freeze(id).await {
                Ok(()) => {
                    let since = Instant::now();
                    self.map().insert(
                        id.clone(),
                        Frozen {
                            since,
                            image: image.clone(),
                        },
                    );
                    drop(lock);
                    persisted(snapshots, &image).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(sandbox = %id, error = %e, "could not freeze a paused sandbox; stopping it");
                }
            }
        }
        if persisted(snapshots, &image).await
            && let Err(e) = runtime.stop(id).await
        {
            tracing::warn!(sandbox = %id, error = %e, "could not stop a paused sandbox's instance");
        }
        drop(lock);
    }
}

/// Whether `e` says the image was deleted (a thawed sandbox moved on and
/// its pause image was collected): nothing is left to protect.
fn gone(e: &SnapshotError) -> bool {
    match e {
        SnapshotError::NotFound(_) => true,
        SnapshotError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        SnapshotError::AlreadyExists(_) => false,
    }
}

/// Flushes `image` to disk; whether it is there (or deleted meanwhile). A failure is logged: the
/// instance then stays (frozen or running) rather than being the last copy
/// lost.
pub(super) async fn persisted(snapshots: &dyn SnapshotStore, image: &SnapshotId) -> bool {
    let t = Instant::now();
    match snapshots.persist(image).await {
        Ok(()) => {
            tracing::debug!(snapshot = %image, elapsed_ms = t.elapsed().as_millis() as u64, "image persisted");
            true
        }
        Err(e) if gone(&e) => {
            tracing::debug!(snapshot = %image, "image deleted before it was flushed");
            true
        }
        Err(e) => {
            tracing::error!(snapshot = %image, error = %e, "could not flush a snapshot image to disk");
            false
        }
    }
}

impl Sandboxes {
    /// Releases the instance of a sandbox whose pause committed (see
    /// [`Standby::release`]) after the pause has returned: the sandbox is
    /// durably paused already, and `lock` (its lifecycle lock) is held
    /// until the release is over, so a resume or any other lifecycle call
    /// waits for it.
    pub(super) fn release_paused(
        &self,
        id: &SandboxId,
        image: SnapshotId,
        lock: OwnedMutexGuard<()>,
    ) {
        let (runtime, snapshots, standby, id) = (
            self.runtime.clone(),
            self.snapshots.clone(),
            self.standby.clone(),
            id.clone(),
        );
        tokio::spawn(async move {
            standby
                .release(runtime.as_ref(), snapshots.as_ref(), &id, image, lock)
                .await;
        });
    }

    /// Resumes `rec` (paused, its lock held, already `resuming`) from its
    /// frozen instance. `false` if it has none or thawing failed; the
    /// caller then restores the image.
    pub(super) async fn thaw_standby(&self, rec: &SandboxRecord) -> bool {
        if self.standby.take(&rec.id).is_none() {
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
            let Some(image) = self.standby.take(&id) else {
                continue;
            };
            // Only a paused sandbox's instance is frozen; anything else
            // replaced it meanwhile and owns the instance now.
            let paused = matches!(
                self.store.get_sandbox(&id).await,
                Ok(Some(rec)) if rec.state == SandboxState::Paused
            );
            if !paused {
                continue;
            }
            if !persisted(self.snapshots.as_ref(), &image).await {
                // Kept frozen, and tried again after another window.
                let since = Instant::now();
                self.standby.map().insert(id, Frozen { since, image });
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
