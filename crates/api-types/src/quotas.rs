//! Team quotas (`/v1/teams/{team}/quota`, operators only).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A team's limits. Sizes: memory and disk in MiB, snapshots in bytes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Live sandboxes (creating, running, pausing, resuming); paused ones
    /// count only through their image, against `max_snapshot_bytes`.
    pub max_sandboxes: u32,
    /// Sum of live sandboxes' `cpus`.
    pub max_vcpus: u32,
    /// Sum of live sandboxes' `memory_mb`.
    pub max_memory_mb: u64,
    /// Sum of live sandboxes' `disk_mb`.
    pub max_disk_mb: u64,
    /// Sum of the sizes of stored snapshot images (pause, named, fork).
    pub max_snapshot_bytes: u64,
    /// Branches per fork call (1-16).
    pub max_branches: u32,
}

/// What a team holds now.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct QuotaUsage {
    pub sandboxes: u32,
    pub vcpus: u64,
    pub memory_mb: u64,
    #[serde(default)]
    pub disk_mb: u64,
    pub snapshot_bytes: u64,
}

/// `GET`/`PUT /v1/teams/{team}/quota`: the team's quota and usage.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TeamQuota {
    pub team: String,
    pub team_name: String,
    /// Whether the team has the daemon's defaults (no quota of its own).
    pub default: bool,
    pub quota: QuotaLimits,
    pub usage: QuotaUsage,
}

/// `PUT /v1/teams/{team}/quota`: the limits to change; absent ones keep
/// their value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SetQuotaRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sandboxes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vcpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_disk_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_snapshot_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_branches: Option<u32>,
}
