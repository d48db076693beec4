//! The host's disk as new sandboxes need it: each sandbox's writable layer
//! and its snapshots live in the data directory's filesystem. A create, a
//! create from a snapshot or a fork is refused with `507
//! insufficient_storage` while that filesystem has less free space than
//! the operator's reserve (`warren serve --disk-reserve-mb`), so a full
//! disk never takes down the sandboxes already running or the daemon's own
//! database.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use warren_core::{ErrorKind, WarrenError};

/// Free space the data directory's filesystem keeps by default, in MiB.
pub const DEFAULT_RESERVE_MB: u64 = 2048;

/// The reserve, and where it is measured.
#[derive(Debug, Clone)]
pub struct DiskReserve {
    dir: PathBuf,
    reserve_bytes: u64,
}

impl DiskReserve {
    pub fn new(dir: PathBuf, reserve_mb: u64) -> Self {
        Self {
            dir,
            reserve_bytes: reserve_mb.saturating_mul(1024 * 1024),
        }
    }

    /// `507` when the filesystem has less free space than the reserve.
    pub fn check(&self) -> Result<(), WarrenError> {
        let free = free_bytes(&self.dir).map_err(|e| {
            WarrenError::internal(format!(
                "cannot measure the free space of {}: {e}",
                self.dir.display()
            ))
        })?;
        if free >= self.reserve_bytes {
            return Ok(());
        }
        Err(WarrenError::new(
            ErrorKind::InsufficientStorage,
            format!(
                "the host's disk is nearly full ({} MiB free, {} MiB kept in reserve): no new sandbox until space is freed (kill sandboxes, delete snapshots)",
                free / (1024 * 1024),
                self.reserve_bytes / (1024 * 1024)
            ),
        ))
    }
}

/// Below this much free space the disk is taken as full: no image fits.
const FULL_BELOW_BYTES: u64 = 64 * 1024 * 1024;

impl DiskReserve {
    /// Whether the filesystem is all but full, so that a write that just
    /// failed most likely failed for want of space, whatever its error
    /// said (runsc has crashed instead of saying `ENOSPC`).
    pub fn nearly_full(&self) -> bool {
        free_bytes(&self.dir).is_ok_and(|free| free < FULL_BELOW_BYTES)
    }
}

/// Bytes an unprivileged writer may still use on `dir`'s filesystem.
fn free_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    let path = CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: a zeroed statvfs is a valid out-parameter; `path` is a valid
    // NUL-terminated string for the duration of the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_above_the_free_space_refuses_with_507s_kind() {
        let dir = std::env::temp_dir();
        assert!(DiskReserve::new(dir.clone(), 0).check().is_ok());
        let err = DiskReserve::new(dir, u64::MAX / (1024 * 1024))
            .check()
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientStorage);
        assert!(err.message.contains("MiB free"), "{}", err.message);
    }
}
