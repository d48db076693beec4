//! The snapshot store: where checkpoint images live between a pause and a
//! resume, and where named snapshots and fork images are kept.
//!
//! One trait, [`SnapshotStore`], over complete image directories; the
//! runtime writes an image into a directory the store hands out
//! ([`SnapshotStore::stage`]) and reads one back from a directory the store
//! provides ([`SnapshotStore::open`]). [`LocalDirStore`] keeps images in a
//! directory on this host. A shared directory works the same way; an object
//! store would upload in `commit` and download (into a local cache) in
//! `open`, which is why the trait speaks of staging and opening rather than
//! of paths: a paused sandbox can then resume on another host.
//!
//! Protocol and invariants:
//! - An image is written under a staging name and becomes visible under its
//!   final name only in [`SnapshotStore::commit`], after its files are on
//!   disk: an image listed by [`SnapshotStore::list`] is always complete.
//! - Staged images left by a crash are never resumed from; the daemon
//!   removes them at start-up ([`SnapshotStore::discard_staged`]).
//! - Images are immutable once committed: restoring never writes to them,
//!   so one image can be restored many times at once (fork).
//! - The store knows nothing of sandboxes or rows; the daemon records each
//!   committed image in its metadata store (warren-store) in the
//!   same step that makes it reachable, and deletes images no row names.

mod error;
mod local;

use std::path::PathBuf;

use async_trait::async_trait;
use warren_core::SnapshotId;

pub use error::SnapshotError;
pub use local::LocalDirStore;

/// Keeps complete checkpoint images. See the module docs for the protocol.
#[async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    /// Short name, e.g. `local`.
    fn name(&self) -> &'static str;

    /// A fresh, empty local directory to write `id`'s image into; a staged
    /// image of the same id left from before is removed first.
    async fn stage(&self, id: &SnapshotId) -> Result<PathBuf, SnapshotError>;

    /// Makes the staged image of `id` complete and visible: its files are
    /// flushed to disk, then it is moved to its final name. Returns its size
    /// in bytes. `AlreadyExists` if `id` is committed already.
    async fn commit(&self, id: &SnapshotId) -> Result<u64, SnapshotError>;

    /// Drops the staged image of `id` (a failed checkpoint). Idempotent.
    async fn abort(&self, id: &SnapshotId) -> Result<(), SnapshotError>;

    /// A local directory holding `id`'s complete image, to restore from;
    /// `NotFound` if there is no such image.
    async fn open(&self, id: &SnapshotId) -> Result<PathBuf, SnapshotError>;

    /// Removes `id`'s image. Idempotent.
    async fn delete(&self, id: &SnapshotId) -> Result<(), SnapshotError>;

    /// Ids of every complete image.
    async fn list(&self) -> Result<Vec<SnapshotId>, SnapshotError>;

    /// Removes every staged (never committed) image; returns how many.
    async fn discard_staged(&self) -> Result<usize, SnapshotError>;
}
