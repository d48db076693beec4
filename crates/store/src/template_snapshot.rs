//! Template snapshots as the store keeps them (see
//! `migrations/sqlite/0016_template_snapshots.sql`).

use time::OffsetDateTime;
use warren_core::{Limits, SandboxId, SnapshotId};

/// The image a template's creates restore, one per template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSnapshotRecord {
    pub template: String,
    /// The template's identity when the image was made.
    pub template_key: String,
    /// Its image in the snapshot store.
    pub snapshot: SnapshotId,
    /// The sandbox it was taken from.
    pub maker: SandboxId,
    /// The limits it was made with.
    pub limits: Limits,
    pub size_bytes: u64,
    pub created_at: OffsetDateTime,
}
