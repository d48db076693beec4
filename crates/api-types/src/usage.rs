//! Metering (`GET /v1/usage`, a sandbox's `usage`): what sandboxes used,
//! measured, and its cost under the operator's price table.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Usage over an interval, and its cost.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct UsageTotals {
    /// CPU time used.
    pub cpu_seconds: f64,
    /// Memory in use, integrated over time.
    pub memory_gib_seconds: f64,
    /// The memory limit, integrated over the time an instance ran.
    pub memory_limit_gib_seconds: f64,
    /// Writable-layer disk held, integrated over time.
    pub disk_gib_hours: f64,
    /// Snapshots (pause images included) stored, integrated over time.
    pub snapshot_gib_hours: f64,
    /// Bytes sent to destinations beyond the host.
    pub egress_bytes: u64,
    /// Bytes received from them.
    pub ingress_bytes: u64,
    /// Wall time running.
    pub running_seconds: f64,
    /// Wall time paused with the instance kept in memory.
    pub standby_seconds: f64,
    /// Wall time paused on disk only.
    pub paused_seconds: f64,
    pub cost: Cost,
}

/// A price, by what was used.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Cost {
    /// ISO currency code of the price table, e.g. `USD`.
    pub currency: String,
    pub cpu: f64,
    pub memory: f64,
    pub disk: f64,
    pub snapshots: f64,
    pub egress: f64,
    pub total: f64,
}

/// One group of a usage report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct UsageGroup {
    /// The group's value (a team, user or key id, a sandbox id, a template
    /// name, a metadata value); `null` for sandboxes without the metadata
    /// key grouped by.
    pub key: Option<String>,
    /// Sandboxes that used something in the interval.
    pub sandboxes: u64,
    pub usage: UsageTotals,
}

/// `GET /v1/usage`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct UsageReport {
    /// `team`, `user`, `key`, `sandbox`, `template` or `metadata.KEY`.
    pub group_by: String,
    /// RFC 3339, to the minute: the first minute counted.
    pub since: String,
    /// RFC 3339, to the minute: the last minute counted.
    pub until: String,
    /// Largest CPU time first.
    pub groups: Vec<UsageGroup>,
    /// Every group summed.
    pub total: UsageTotals,
}

/// One metered minute of a sandbox: averages over the minute.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct MetricMinute {
    /// The minute's start, RFC 3339.
    pub minute: String,
    /// CPU cores in use on average (1.0 = one core the whole minute).
    pub cpu_cores: f64,
    /// Memory in use on average while it ran.
    pub memory_mib: f64,
    /// Its memory limit while it ran.
    pub memory_limit_mib: f64,
    /// Bytes sent beyond the host, and received from there.
    pub egress_bytes: u64,
    pub ingress_bytes: u64,
    /// Seconds of the minute it was running.
    pub running_s: f64,
}

/// `GET /v1/sandboxes/{id}/metrics`: the sandbox's metered minutes, oldest
/// first; a minute with nothing metered (before it existed, or the meter
/// had not reached it yet) is absent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SandboxMetrics {
    pub minutes: Vec<MetricMinute>,
}
