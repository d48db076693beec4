//! Garbage collection of snapshot images.
//!
//! - Periodically: images whose row nothing refers to any more (see
//!   `Store::unreferenced_snapshots`) are deleted, then their rows marked
//!   deleted — in that order, so a crash in between only repeats the work.
//! - At start-up, before anything else runs: staged images (a checkpoint a
//!   crash interrupted) and images no live row names (committed to the
//!   snapshot store, but the daemon died before the store transaction) are
//!   deleted. This sweep must not run while pauses are in flight: an image
//!   is renamed into place a moment before its row is written.
//! - At start-up, first: images committed but never flushed before the host
//!   went down (see `SnapshotStore::recover`) are gone; a sandbox paused
//!   on one is marked failed (lost, as a running sandbox would have been),
//!   and the snapshot rows are marked deleted.

use std::collections::HashSet;

use warren_core::{SandboxState, SnapshotId, WarrenError};

use super::Sandboxes;
use crate::audit::AuditActor;

impl Sandboxes {
    /// Deletes images nothing refers to; returns how many went.
    pub async fn collect_garbage(&self) -> Result<usize, WarrenError> {
        let unreferenced = self.store.unreferenced_snapshots().await?;
        for snapshot in &unreferenced {
            self.snapshots.delete(&snapshot.id).await?;
            self.store.mark_snapshot_deleted(&snapshot.id).await?;
            tracing::debug!(snapshot = %snapshot.id, sandbox = %snapshot.sandbox_id, "snapshot image collected");
        }
        Ok(unreferenced.len())
    }

    /// The start-up sweep; see the module docs.
    pub async fn sweep_snapshot_store(&self) -> Result<(), WarrenError> {
        let lost = self.snapshots.recover().await?;
        for id in &lost {
            self.forget_lost_image(id).await?;
        }
        let staged = self.snapshots.discard_staged().await?;
        let live: HashSet<_> = self.store.live_snapshot_ids().await?.into_iter().collect();
        let mut orphans = 0;
        for id in self.snapshots.list().await? {
            if !live.contains(&id) {
                self.snapshots.delete(&id).await?;
                orphans += 1;
            }
        }
        let collected = self.collect_garbage().await?;
        if lost.len() + staged + orphans + collected > 0 {
            let lost = lost.len();
            tracing::info!(
                lost,
                staged,
                orphans,
                collected,
                "cleaned up the snapshot store"
            );
        }
        Ok(())
    }

    /// An image the host lost before it reached disk: its snapshot row goes,
    /// and a sandbox paused on it fails.
    async fn forget_lost_image(&self, id: &SnapshotId) -> Result<(), WarrenError> {
        let Some(snapshot) = self.store.get_snapshot(id).await? else {
            return Ok(());
        };
        let paused_on_it = self
            .store
            .get_sandbox(&snapshot.sandbox_id)
            .await?
            .filter(|rec| {
                rec.state == SandboxState::Paused && rec.paused_snapshot.as_ref() == Some(id)
            });
        if let Some(rec) = paused_on_it {
            tracing::warn!(sandbox = %rec.id, snapshot = %id, "a paused sandbox's image had not reached disk when the host went down");
            let reconciler = AuditActor::system("reconcile");
            let reason = "its paused image had not reached disk when the host went down";
            self.fail(&rec.id, &reconciler, reason).await;
        }
        self.store.mark_snapshot_deleted(id).await?;
        Ok(())
    }
}
