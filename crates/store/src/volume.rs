//! Volumes: persistent per-team directories that outlive sandboxes.
//!
//! The store keeps their names and which sandbox mounts which volume
//! where; the daemon keeps their contents on disk. A volume belongs to
//! one team and is unique by name within it. A volume mounted by a live
//! sandbox (any state but killed or failed) cannot be deleted: the check
//! and the delete are one transaction, and mounts are recorded in one
//! transaction that fails if a volume is gone
//! ([`crate::Store::attach_volumes`]), so no live sandbox ever mounts a
//! deleted volume's directory.

use time::OffsetDateTime;
use warren_core::{KeyId, TeamId, VolumeId};

/// One volume row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRecord {
    pub id: VolumeId,
    pub team: TeamId,
    pub name: String,
    pub created_at: OffsetDateTime,
    /// The key that created it.
    pub created_by: KeyId,
}

/// A volume mounted into a sandbox at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMountRecord {
    pub volume: VolumeRecord,
    /// Absolute and normalised (the daemon validates it).
    pub path: String,
}
