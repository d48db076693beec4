//! Warm pools (`/v1/pools`, operators only): ready sandboxes per template
//! that creates claim instead of booting one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /v1/pools/{template}`: the pool's bounds and the size of its
/// sandboxes. A create is served from the pool only when it asks for
/// exactly this size; unset sizes are the daemon's defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SetPoolRequest {
    /// Ready sandboxes kept whatever the demand.
    pub min: u32,
    /// Ready sandboxes never exceeded (1-256).
    pub max: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_mb: Option<u32>,
    /// Keep ready sandboxes frozen (no CPU, memory kept) until a create
    /// claims one; a claim thaws it first.
    #[serde(default)]
    pub frozen: bool,
}

/// One pool: its settings and its state now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Pool {
    pub template: String,
    pub min: u32,
    pub max: u32,
    pub cpus: u32,
    pub memory_mb: u32,
    pub disk_mb: u32,
    /// Ready sandboxes are kept frozen until claimed.
    #[serde(default)]
    pub frozen: bool,
    /// Sandboxes ready to be claimed.
    pub ready: u32,
    /// Sandboxes being started for the pool.
    pub booting: u32,
    /// What the pool aims for now: demand-driven, within min and max.
    pub target: u32,
    /// Creates of the template served from the pool since the daemon
    /// started.
    pub hits: u64,
    /// Creates of the template the pool could not serve.
    pub misses: u64,
    /// Creates per second asking for the template (moving average).
    pub rate_per_s: f64,
    /// RFC 3339.
    pub updated_at: String,
}

/// `GET /v1/pools`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct PoolList {
    pub pools: Vec<Pool>,
}
