//! The host's memory as new sandboxes need it. A create, a create from a
//! snapshot, a fork and a resume from an image are refused with `503
//! unavailable` and a retry hint while the host has less memory available
//! (`MemAvailable` of `/proc/meminfo`: free memory plus what the kernel can
//! reclaim without swapping) than the operator's reserve (`warren serve
//! --memory-reserve-mb`). So a full host turns new sandboxes away instead
//! of letting the kernel's OOM killer pick a running one.
//!
//! What the reserve does not cover: sandboxes already running that grow
//! towards their own memory limits. The reserve is checked when a sandbox
//! is admitted; the sum of the limits may exceed the host's memory (most
//! sandboxes touch little of theirs). At most the creates in flight
//! (`service::gate`) pass the check together, so the reserve is overshot
//! by at most that many sandboxes' start-up footprint.

use std::path::PathBuf;

use warren_core::{ErrorKind, WarrenError};

/// Memory the host keeps available by default, in MiB.
pub const DEFAULT_RESERVE_MB: u64 = 1024;

/// How long a refused caller is told to wait: memory comes back when
/// sandboxes end or pause, which takes seconds.
const RETRY_AFTER_S: u32 = 10;

/// The reserve, and where the host's available memory is read.
#[derive(Debug, Clone)]
pub struct MemoryReserve {
    meminfo: PathBuf,
    reserve_bytes: u64,
}

impl MemoryReserve {
    pub fn new(reserve_mb: u64) -> Self {
        Self::reading(PathBuf::from("/proc/meminfo"), reserve_mb)
    }

    /// A reserve measured against `meminfo` (a file in `/proc/meminfo`'s
    /// format) instead of the host's.
    pub fn reading(meminfo: PathBuf, reserve_mb: u64) -> Self {
        Self {
            meminfo,
            reserve_bytes: reserve_mb.saturating_mul(1024 * 1024),
        }
    }

    /// `503` with a retry hint when less memory than the reserve is
    /// available. A reserve of 0 admits everything without reading.
    pub fn check(&self) -> Result<(), WarrenError> {
        if self.reserve_bytes == 0 {
            return Ok(());
        }
        let available = self.available_bytes()?;
        if available >= self.reserve_bytes {
            return Ok(());
        }
        Err(WarrenError::new(
            ErrorKind::Unavailable,
            format!(
                "the host is short of memory ({} MiB available, {} MiB kept in reserve): no new or resumed sandbox until memory is freed (kill or pause sandboxes)",
                available / (1024 * 1024),
                self.reserve_bytes / (1024 * 1024)
            ),
        )
        .retry_after(RETRY_AFTER_S))
    }

    fn available_bytes(&self) -> Result<u64, WarrenError> {
        let text = std::fs::read_to_string(&self.meminfo).map_err(|e| {
            WarrenError::internal(format!("cannot read {}: {e}", self.meminfo.display()))
        })?;
        mem_available(&text).ok_or_else(|| {
            WarrenError::internal(format!(
                "{} has no MemAvailable line",
                self.meminfo.display()
            ))
        })
    }
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kb: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kb.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_available_in_bytes() {
        let text = "MemTotal:       24590000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(mem_available(text), Some(2048 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
        assert_eq!(mem_available("MemAvailable: lots\n"), None);
    }

    #[test]
    fn a_reserve_above_the_available_memory_refuses_with_a_retry_hint() {
        let dir = tempfile::tempdir().unwrap();
        let meminfo = dir.path().join("meminfo");
        std::fs::write(&meminfo, "MemAvailable:    1048576 kB\n").unwrap();
        assert!(
            MemoryReserve::reading(meminfo.clone(), 1024)
                .check()
                .is_ok()
        );
        let err = MemoryReserve::reading(meminfo, 1025).check().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert_eq!(err.retry_after_s, Some(RETRY_AFTER_S));
        assert!(
            err.message.contains("1024 MiB available, 1025 MiB kept"),
            "{}",
            err.message
        );
    }

    #[test]
    fn the_hosts_own_meminfo_is_read() {
        assert!(MemoryReserve::new(1).check().is_ok());
        let err = MemoryReserve::new(u64::MAX / (1024 * 1024))
            .check()
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable);
    }

    #[test]
    fn an_unreadable_meminfo_is_an_internal_error() {
        let err = MemoryReserve::reading(PathBuf::from("/nonexistent/meminfo"), 1)
            .check()
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
    }
}
