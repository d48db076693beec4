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

use std::collections::HashSet;

use warren_core::WarrenError;

use super::Sandboxes;

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
        if staged + orphans + collected > 0 {
            tracing::info!(staged, orphans, collected, "cleaned up the snapshot store");
        }
        Ok(())
    }
}
