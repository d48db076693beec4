//! Metering: what a sandbox used, and what that cost.
//!
//! The daemon's meter measures every sandbox (its cgroup's CPU time and
//! memory in use, its disk image's allocated bytes, the stored bytes of its
//! snapshots, its traffic with the world beyond the host) and its wall time
//! by state, and keeps the sums per sandbox and minute. Memory, disk and
//! snapshots are kept as integrals over time (MiB·ms), so an interval's
//! GiB-seconds, GiB-hours or average follow by division and never depend on
//! how often the meter sampled. [`Prices`] turns a [`Usage`] into a
//! [`Cost`]: CPU on CPU time used, memory on memory in use (not the
//! limit), disk and snapshots on bytes held over time, egress on bytes
//! sent.

use serde::{Deserialize, Serialize};

use crate::WarrenError;

const MIB: f64 = 1024.0 * 1024.0;
const MS_PER_S: f64 = 1000.0;
const MS_PER_H: f64 = 3_600_000.0;

/// Sums the meter kept over some interval and set of sandboxes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time used, from cgroup accounting.
    pub cpu_ns: u64,
    /// Memory in use, integrated over time.
    pub memory_mib_ms: u64,
    /// The memory limit, integrated over the time an instance ran.
    pub memory_limit_mib_ms: u64,
    /// Allocated bytes of the writable layer's disk, integrated over time.
    pub disk_mib_ms: u64,
    /// Stored bytes of the sandbox's snapshots (pause images included),
    /// integrated over time.
    pub snapshot_mib_ms: u64,
    /// Bytes the sandbox sent to destinations beyond the host.
    pub egress_bytes: u64,
    /// Bytes the sandbox received from them.
    pub ingress_bytes: u64,
    /// Wall time by state: running, paused but kept in memory (standby),
    /// paused on disk only.
    pub running_ms: u64,
    pub standby_ms: u64,
    pub paused_ms: u64,
}

impl Usage {
    /// Adds `other` to `self`, saturating.
    pub fn add(&mut self, other: &Usage) {
        self.cpu_ns = self.cpu_ns.saturating_add(other.cpu_ns);
        self.memory_mib_ms = self.memory_mib_ms.saturating_add(other.memory_mib_ms);
        self.memory_limit_mib_ms = self
            .memory_limit_mib_ms
            .saturating_add(other.memory_limit_mib_ms);
        self.disk_mib_ms = self.disk_mib_ms.saturating_add(other.disk_mib_ms);
        self.snapshot_mib_ms = self.snapshot_mib_ms.saturating_add(other.snapshot_mib_ms);
        self.egress_bytes = self.egress_bytes.saturating_add(other.egress_bytes);
        self.ingress_bytes = self.ingress_bytes.saturating_add(other.ingress_bytes);
        self.running_ms = self.running_ms.saturating_add(other.running_ms);
        self.standby_ms = self.standby_ms.saturating_add(other.standby_ms);
        self.paused_ms = self.paused_ms.saturating_add(other.paused_ms);
    }

    pub fn is_zero(&self) -> bool {
        *self == Usage::default()
    }

    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_ns as f64 / 1e9
    }

    pub fn memory_gib_seconds(&self) -> f64 {
        self.memory_mib_ms as f64 / 1024.0 / MS_PER_S
    }

    pub fn memory_limit_gib_seconds(&self) -> f64 {
        self.memory_limit_mib_ms as f64 / 1024.0 / MS_PER_S
    }

    pub fn disk_gib_hours(&self) -> f64 {
        self.disk_mib_ms as f64 / 1024.0 / MS_PER_H
    }

    pub fn snapshot_gib_hours(&self) -> f64 {
        self.snapshot_mib_ms as f64 / 1024.0 / MS_PER_H
    }
}

/// `bytes` held for `ms` milliseconds, as MiB·ms (rounded to nearest).
pub fn mib_ms(bytes: u64, ms: u64) -> u64 {
    let v = bytes as f64 / MIB * ms as f64;
    if v >= u64::MAX as f64 {
        u64::MAX
    } else {
        v.round() as u64
    }
}

/// The operator's price table, in one currency (US dollars by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prices {
    pub currency: String,
    /// Per second of CPU time used.
    pub vcpu_second: f64,
    /// Per GiB of memory in use for a second.
    pub memory_gib_second: f64,
    /// Per GiB of writable-layer disk held for an hour.
    pub disk_gib_hour: f64,
    /// Per GiB of snapshots stored for an hour.
    pub snapshot_gib_hour: f64,
    /// Per GB (10^9 bytes) sent beyond the host.
    pub egress_gb: f64,
}

impl Default for Prices {
    /// Close to public list prices of sandbox clouds in 2026 (compute) and
    /// of object storage and cloud egress (storage, traffic).
    fn default() -> Self {
        Self {
            currency: "USD".to_owned(),
            vcpu_second: 0.000_014,
            memory_gib_second: 0.000_004_5,
            disk_gib_hour: 0.000_14,
            snapshot_gib_hour: 0.000_14,
            egress_gb: 0.09,
        }
    }
}

impl Prices {
    /// Every price finite and not negative; a currency of 1–8 letters.
    pub fn validate(&self) -> Result<(), WarrenError> {
        if self.currency.is_empty()
            || self.currency.len() > 8
            || !self.currency.chars().all(|c| c.is_ascii_alphabetic())
        {
            return Err(WarrenError::invalid(format!(
                "currency must be 1-8 letters, got '{}'",
                self.currency
            )));
        }
        for (name, value) in [
            ("vcpu_second", self.vcpu_second),
            ("memory_gib_second", self.memory_gib_second),
            ("disk_gib_hour", self.disk_gib_hour),
            ("snapshot_gib_hour", self.snapshot_gib_hour),
            ("egress_gb", self.egress_gb),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(WarrenError::invalid(format!(
                    "price {name} must be a number of at least 0, got {value}"
                )));
            }
        }
        Ok(())
    }

    /// What `usage` costs under these prices.
    pub fn cost(&self, usage: &Usage) -> Cost {
        let cpu = usage.cpu_seconds() * self.vcpu_second;
        let memory = usage.memory_gib_seconds() * self.memory_gib_second;
        let disk = usage.disk_gib_hours() * self.disk_gib_hour;
        let snapshots = usage.snapshot_gib_hours() * self.snapshot_gib_hour;
        let egress = usage.egress_bytes as f64 / 1e9 * self.egress_gb;
        Cost {
            currency: self.currency.clone(),
            cpu,
            memory,
            disk,
            snapshots,
            egress,
            total: cpu + memory + disk + snapshots + egress,
        }
    }
}

/// A usage's price, by what was used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub currency: String,
    pub cpu: f64,
    pub memory: f64,
    pub disk: f64,
    pub snapshots: f64,
    pub egress: f64,
    pub total: f64,
}

/// What usage is summed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    Team,
    /// The user who dispatched the sandbox.
    User,
    /// The key that created it.
    Key,
    Sandbox,
    Template,
    /// The value of one metadata key (sandboxes without it form one group).
    Metadata(String),
}

/// Longest metadata key `metadata.KEY` may name.
pub const MAX_METADATA_KEY: usize = 128;

impl GroupBy {
    /// Parses `team`, `user`, `key`, `sandbox`, `template` or
    /// `metadata.KEY`.
    pub fn parse(s: &str) -> Result<Self, WarrenError> {
        Ok(match s {
            "team" => Self::Team,
            "user" => Self::User,
            "key" => Self::Key,
            "sandbox" => Self::Sandbox,
            "template" => Self::Template,
            other => {
                let key = other.strip_prefix("metadata.").ok_or_else(|| {
                    WarrenError::invalid(format!(
                        "group_by must be team, user, key, sandbox, template or metadata.KEY, got '{other}'"
                    ))
                })?;
                if key.is_empty()
                    || key.len() > MAX_METADATA_KEY
                    || !key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
                {
                    return Err(WarrenError::invalid(format!(
                        "metadata key in group_by must be 1-{MAX_METADATA_KEY} letters, digits or _-.:, got '{key}'"
                    )));
                }
                Self::Metadata(key.to_owned())
            }
        })
    }

    /// The name `parse` takes.
    pub fn name(&self) -> String {
        match self {
            Self::Team => "team".into(),
            Self::User => "user".into(),
            Self::Key => "key".into(),
            Self::Sandbox => "sandbox".into(),
            Self::Template => "template".into(),
            Self::Metadata(k) => format!("metadata.{k}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_follows_the_price_table() {
        let usage = Usage {
            cpu_ns: 10_000_000_000,
            memory_mib_ms: 1024 * 1000 * 100,
            snapshot_mib_ms: 2 * 1024 * 3_600_000,
            egress_bytes: 2_000_000_000,
            ..Usage::default()
        };
        let prices = Prices {
            currency: "EUR".into(),
            vcpu_second: 1.0,
            memory_gib_second: 0.5,
            disk_gib_hour: 7.0,
            snapshot_gib_hour: 0.25,
            egress_gb: 3.0,
        };
        let cost = prices.cost(&usage);
        assert_eq!(cost.cpu, 10.0);
        assert_eq!(cost.memory, 50.0);
        assert_eq!(cost.disk, 0.0);
        assert_eq!(cost.snapshots, 0.5);
        assert_eq!(cost.egress, 6.0);
        assert_eq!(cost.total, 66.5);
        assert_eq!(cost.currency, "EUR");
    }

    #[test]
    fn integrals_do_not_depend_on_the_sampling() {
        let once = mib_ms(512 * 1024 * 1024, 60_000);
        let mut often = 0;
        for _ in 0..60 {
            often += mib_ms(512 * 1024 * 1024, 1000);
        }
        assert_eq!(once, often);
        assert_eq!(mib_ms(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn bad_prices_are_refused() {
        for bad in [
            Prices {
                vcpu_second: -1.0,
                ..Prices::default()
            },
            Prices {
                egress_gb: f64::NAN,
                ..Prices::default()
            },
            Prices {
                currency: "US$".into(),
                ..Prices::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        Prices::default().validate().unwrap();
    }

    #[test]
    fn group_by_parses_metadata_keys_and_refuses_the_rest() {
        assert_eq!(
            GroupBy::parse("metadata.task").unwrap(),
            GroupBy::Metadata("task".into())
        );
        assert_eq!(GroupBy::parse("team").unwrap(), GroupBy::Team);
        for bad in ["", "metadata.", "metadata.a'b", "owner", "metadata.$x"] {
            assert!(GroupBy::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(GroupBy::Metadata("task".into()).name(), "metadata.task");
    }
}
