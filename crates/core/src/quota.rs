//! Per-team quotas: how much of the host one team's sandboxes may hold at
//! once, and the one decision whether an operation fits.
//!
//! What counts:
//! - live sandboxes (creating, running, pausing, resuming) count against
//!   the sandbox, vCPU, memory and disk limits with their `cpus`,
//!   `memory_mb` and `disk_mb` (the size their writable layer may reach,
//!   not what it holds now);
//! - a paused sandbox holds no CPU, memory or disk: it counts only through
//!   its pause image, against the snapshot limit;
//! - every snapshot image not yet deleted (pause, named, fork) counts its
//!   size against the snapshot limit;
//! - the branch limit caps one fork call, not a total.
//!
//! A team without a quota of its own gets [`Quota::DEFAULT`].

use crate::error::{ErrorKind, WarrenError};
use crate::spec::Limits;

const GIB_MB: u64 = 1024;
const GIB: u64 = 1024 * 1024 * 1024;

/// One team's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Live sandboxes (creating, running, pausing, resuming).
    pub max_sandboxes: u32,
    /// Sum of live sandboxes' `cpus`.
    pub max_vcpus: u32,
    /// Sum of live sandboxes' `memory_mb`.
    pub max_memory_mb: u64,
    /// Sum of live sandboxes' `disk_mb`.
    pub max_disk_mb: u64,
    /// Sum of the sizes of snapshot images not deleted.
    pub max_snapshot_bytes: u64,
    /// Branches one fork call may make.
    pub max_branches: u32,
}

impl Quota {
    /// Most branches a quota may allow per fork: the fork's own hard limit.
    pub const MAX_BRANCHES: u32 = 16;

    /// For a team with no quota of its own: one host's fair share for a
    /// team that is not alone on it. 50 sandboxes and 32 vCPUs (`cpus` is
    /// a cap on shared cores, so the sum may exceed the host's cores), 64
    /// GiB of memory (sandboxes rarely touch all they may), 500 GiB of disk
    /// (50 sandboxes of the default 10 GiB; their images are sparse, so
    /// this is what they may write, not what they take), 100 GiB of
    /// snapshot images, and the fork's own maximum of 16 branches.
    pub const DEFAULT: Quota = Quota {
        max_sandboxes: 50,
        max_vcpus: 32,
        max_memory_mb: 64 * GIB_MB,
        max_disk_mb: 500 * GIB_MB,
        max_snapshot_bytes: 100 * GIB,
        max_branches: Self::MAX_BRANCHES,
    };

    /// `max_branches` must be 1..=[`Self::MAX_BRANCHES`]; other limits may
    /// be anything, 0 included (the team may then hold none of it).
    pub fn validate(&self) -> Result<(), WarrenError> {
        if !(1..=Self::MAX_BRANCHES).contains(&self.max_branches) {
            return Err(WarrenError::invalid(format!(
                "max_branches must be between 1 and {}, got {}",
                Self::MAX_BRANCHES,
                self.max_branches
            )));
        }
        Ok(())
    }
}

impl Default for Quota {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a team holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Live sandboxes.
    pub sandboxes: u32,
    pub vcpus: u64,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub snapshot_bytes: u64,
}

/// What an operation would add to a team's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// New live sandboxes.
    pub sandboxes: u32,
    pub vcpus: u64,
    pub memory_mb: u64,
    pub disk_mb: u64,
    /// Whether it stores a new snapshot image (its size is known only once
    /// taken, so it needs the team to be below its snapshot limit).
    pub snapshot: bool,
}

impl Demand {
    /// `count` new live sandboxes of `limits` each.
    pub fn sandboxes(count: u32, limits: &Limits) -> Self {
        Self {
            sandboxes: count,
            vcpus: u64::from(count) * u64::from(limits.cpus),
            memory_mb: u64::from(count) * u64::from(limits.memory_mb),
            disk_mb: u64::from(count) * u64::from(limits.disk_mb),
            snapshot: false,
        }
    }

    /// A new snapshot image.
    pub fn snapshot() -> Self {
        Self {
            snapshot: true,
            ..Self::default()
        }
    }
}

fn exceeded(message: String) -> WarrenError {
    WarrenError::new(ErrorKind::QuotaExceeded, message)
}

/// Whether `demand` fits `team`'s quota on top of `usage`; the error names
/// the first limit it would pass and the team's usage of it.
pub fn check(team: &str, quota: &Quota, usage: &Usage, demand: &Demand) -> Result<(), WarrenError> {
    let limits = [
        (
            u64::from(usage.sandboxes),
            u64::from(demand.sandboxes),
            u64::from(quota.max_sandboxes),
            "running sandboxes",
        ),
        (
            usage.vcpus,
            demand.vcpus,
            u64::from(quota.max_vcpus),
            "vCPUs",
        ),
        (
            usage.memory_mb,
            demand.memory_mb,
            quota.max_memory_mb,
            "MiB of memory",
        ),
        (
            usage.disk_mb,
            demand.disk_mb,
            quota.max_disk_mb,
            "MiB of disk",
        ),
    ];
    for (used, more, max, what) in limits {
        if more > 0 && used.saturating_add(more) > max {
            let need = if more == 1 && what == "running sandboxes" {
                String::new()
            } else {
                format!("; this needs {more} more")
            };
            return Err(exceeded(format!(
                "team {team} is at {used} of {max} {what}{need} (quota max_{})",
                quota_field(what)
            )));
        }
    }
    if demand.snapshot && usage.snapshot_bytes >= quota.max_snapshot_bytes {
        return Err(exceeded(format!(
            "team {team} is at {} of {} bytes of snapshots (quota max_snapshot_bytes): delete snapshots or paused sandboxes first",
            usage.snapshot_bytes, quota.max_snapshot_bytes
        )));
    }
    Ok(())
}

fn quota_field(what: &str) -> &'static str {
    match what {
        "running sandboxes" => "sandboxes",
        "vCPUs" => "vcpus",
        "MiB of disk" => "disk_mb",
        _ => "memory_mb",
    }
}

/// Whether a fork of `count` branches fits the team's branch limit.
pub fn check_branches(team: &str, quota: &Quota, count: u32) -> Result<(), WarrenError> {
    if count > quota.max_branches {
        return Err(exceeded(format!(
            "team {team} may make at most {} branches per fork, asked for {count} (quota max_branches)",
            quota.max_branches
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Quota {
        Quota {
            max_sandboxes: 2,
            max_vcpus: 4,
            max_memory_mb: 2048,
            max_disk_mb: 30 * 1024,
            max_snapshot_bytes: 1000,
            max_branches: 3,
        }
    }

    fn one() -> Limits {
        Limits::default()
    }

    #[test]
    fn the_last_slot_fits_and_the_next_does_not() {
        let q = small();
        let usage = Usage {
            sandboxes: 1,
            vcpus: 1,
            memory_mb: 512,
            disk_mb: 10 * 1024,
            snapshot_bytes: 0,
        };
        assert!(check("acme", &q, &usage, &Demand::sandboxes(1, &one())).is_ok());
        let full = Usage {
            sandboxes: 2,
            ..usage
        };
        let err = check("acme", &q, &full, &Demand::sandboxes(1, &one())).unwrap_err();
        assert_eq!(err.kind, ErrorKind::QuotaExceeded);
        assert_eq!(
            err.message,
            "team acme is at 2 of 2 running sandboxes (quota max_sandboxes)"
        );
        // A fork of two branches does not fit one free slot.
        let err = check("acme", &q, &usage, &Demand::sandboxes(2, &one())).unwrap_err();
        assert!(
            err.message
                .contains("at 1 of 2 running sandboxes; this needs 2 more"),
            "{}",
            err.message
        );
    }

    #[test]
    fn cpu_memory_and_disk_are_summed() {
        let q = small();
        let usage = Usage {
            sandboxes: 0,
            vcpus: 3,
            memory_mb: 0,
            disk_mb: 0,
            snapshot_bytes: 0,
        };
        let big = Limits { cpus: 2, ..one() };
        let err = check("acme", &q, &usage, &Demand::sandboxes(1, &big)).unwrap_err();
        assert!(err.message.contains("3 of 4 vCPUs"), "{}", err.message);
        let usage = Usage {
            vcpus: 0,
            memory_mb: 1600,
            ..usage
        };
        let err = check("acme", &q, &usage, &Demand::sandboxes(1, &one())).unwrap_err();
        assert!(
            err.message.contains("1600 of 2048 MiB of memory"),
            "{}",
            err.message
        );
        let usage = Usage {
            memory_mb: 0,
            disk_mb: 25 * 1024,
            ..usage
        };
        let err = check("acme", &q, &usage, &Demand::sandboxes(1, &one())).unwrap_err();
        assert_eq!(
            err.message,
            "team acme is at 25600 of 30720 MiB of disk; this needs 10240 more (quota max_disk_mb)"
        );
        let small_disk = Limits {
            disk_mb: 5 * 1024,
            ..one()
        };
        assert!(check("acme", &q, &usage, &Demand::sandboxes(1, &small_disk)).is_ok());
    }

    #[test]
    fn snapshots_need_room_and_paused_sandboxes_hold_none_else() {
        let q = small();
        let mut usage = Usage {
            snapshot_bytes: 999,
            ..Usage::default()
        };
        assert!(check("acme", &q, &usage, &Demand::snapshot()).is_ok());
        usage.snapshot_bytes = 1000;
        let err = check("acme", &q, &usage, &Demand::snapshot()).unwrap_err();
        assert!(
            err.message.contains("1000 of 1000 bytes"),
            "{}",
            err.message
        );
        // Being over the snapshot limit does not stop a new sandbox.
        assert!(check("acme", &q, &usage, &Demand::sandboxes(1, &one())).is_ok());
    }

    #[test]
    fn a_zero_limit_refuses_everything_it_covers() {
        let q = Quota {
            max_sandboxes: 0,
            ..small()
        };
        assert!(check("acme", &q, &Usage::default(), &Demand::sandboxes(1, &one())).is_err());
        assert!(check("acme", &q, &Usage::default(), &Demand::snapshot()).is_ok());
    }

    #[test]
    fn branches_are_capped_per_call() {
        assert!(check_branches("acme", &small(), 3).is_ok());
        let err = check_branches("acme", &small(), 4).unwrap_err();
        assert!(
            err.message.contains("at most 3 branches"),
            "{}",
            err.message
        );
        assert!(Quota::DEFAULT.validate().is_ok());
        let bad = Quota {
            max_branches: 17,
            ..small()
        };
        assert!(bad.validate().unwrap_err().message.contains("max_branches"));
    }
}
