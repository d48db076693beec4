//! Per-template build locks: `flock(2)` on `<templates_dir>/.<name>.lock`.
//!
//! The lock is held for a whole build or removal, by any process sharing the
//! templates directory; it dies with its holder, so a crashed daemon never
//! leaves a template "building". Lock files are never deleted: deleting one
//! while another process waits on it would let two holders in at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::TemplateError;
use crate::progress::Progress;

/// How often a waiting build retries the lock.
const POLL: Duration = Duration::from_millis(100);

pub(crate) fn path(templates_dir: &Path, name: &str) -> PathBuf {
    templates_dir.join(format!(".{name}.lock"))
}

/// An exclusive build lock; released on drop.
#[derive(Debug)]
pub(crate) struct BuildLock {
    _file: File,
}

/// Waits for the lock. Polls rather than blocking a thread, so a cancelled
/// build stops waiting at once.
pub(crate) async fn acquire(
    path: &Path,
    name: &str,
    progress: &Progress,
) -> Result<BuildLock, TemplateError> {
    let mut told = false;
    loop {
        match try_acquire(path)? {
            Some(lock) => return Ok(lock),
            None => {
                if !told {
                    told = true;
                    progress
                        .line(format!(
                            "another build of template '{name}' is running; waiting for it"
                        ))
                        .await;
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// The lock if nobody holds it right now, else `None`.
pub(crate) fn try_acquire(path: &Path) -> Result<Option<BuildLock>, TemplateError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(TemplateError::io("open lock file", path))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(BuildLock { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(TemplateError::io("lock", path)(e)),
    }
}

/// Whether some process holds the lock right now.
pub(crate) fn is_held(path: &Path) -> Result<bool, TemplateError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(TemplateError::io("open lock file", path)(e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(TemplateError::io("test lock", path)(e)),
    }
}
