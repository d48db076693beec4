//! Metering rows: the meter's sums per sandbox and minute, and where the
//! meter stood for each sandbox it measures (see `warren_core::metering`).
//!
//! Sums are only ever added to, in the same transaction as the marks they
//! advance, so a daemon killed between two samples neither loses nor
//! double-counts a sum it wrote. A report joins the sums with the
//! sandboxes' rows for attribution (team, dispatching user, key,
//! template, metadata) and counts only minutes from a sandbox's creation
//! on: a pooled sandbox's time before its claim (which makes its creation
//! time the claim's) belongs to the pool, not to the claiming team.

use time::OffsetDateTime;
use warren_core::metering::{GroupBy, Usage};
use warren_core::{KeyId, SandboxId, TeamId, UserId};

/// Usage to add to a sandbox's sums for one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSample {
    pub sandbox: SandboxId,
    /// Unix minute.
    pub minute: i64,
    pub usage: Usage,
}

/// Where the meter stands for one sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterMark {
    pub sandbox: SandboxId,
    /// The CPU counter of its current instance at the last sample.
    pub cpu_ns: u64,
    /// Wall time, memory, disk and snapshots are counted up to here.
    pub counted_to: OffsetDateTime,
}

/// What a usage report sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub group_by: GroupBy,
    /// Only this team's sandboxes; `None` for every team (operators).
    pub team: Option<TeamId>,
    /// Only this sandbox.
    pub sandbox: Option<SandboxId>,
    /// Only sandboxes this user dispatched.
    pub owner: Option<UserId>,
    /// Only sandboxes this key created.
    pub key: Option<KeyId>,
    /// Minutes from `since` (inclusive) to `until` (exclusive).
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
}

/// One group of a usage report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageGroup {
    /// The group's value; `None` for sandboxes without the metadata key.
    pub key: Option<String>,
    /// Sandboxes that used something in the interval.
    pub sandboxes: u64,
    pub usage: Usage,
}
