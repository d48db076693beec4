//! Standby through the cgroup freezer: every process in the sandbox's
//! cgroup (the Sentry and its stub processes) stops where it is, its memory
//! kept, and goes on again in well under a millisecond — against ~20 ms
//! each for `runsc pause` and `runsc resume`, which start a runsc process
//! that asks the Sentry over its control socket.
//!
//! Interface:
//! - cgroup v2: `cgroup.freeze` (`1` / `0`) in the sandbox's cgroup; the
//!   change is complete once `cgroup.events` reads `frozen 1` / `frozen 0`;
//! - cgroup v1: `freezer.state` (`FROZEN` / `THAWED`) in the sandbox's
//!   directory of the `freezer` hierarchy; complete once it reads back what
//!   was written (`FREEZING` in between).
//!
//! Invariant: a frozen Sentry answers nothing, so runsc commands that talk
//! to it (`kill`, `delete`, `checkpoint`) would wait for ever. Whatever
//! stops or removes a sandbox [`thaw`]s it first, whatever its record says
//! (a daemon may have died between freezing and recording it); a thaw is
//! idempotent and does nothing to a sandbox without a freezer cgroup.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use warren_core::SandboxId;

use super::cgroup::{CGROUP_ROOT, leaf};
use crate::RuntimeError;

/// Longest wait for every task to stop (or go on).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Between two reads of the freezer's state (tokio's timer resolution).
const POLL: Duration = Duration::from_millis(1);

/// The sandbox's freezer: which interface, in which directory.
enum Freezer {
    V2(PathBuf),
    V1(PathBuf),
}

impl Freezer {
    fn of(id: &SandboxId) -> Option<Self> {
        let root = Path::new(CGROUP_ROOT);
        let leaf = leaf(id);
        let v2 = root.join(&leaf);
        if v2.join("cgroup.freeze").exists() {
            return Some(Self::V2(v2));
        }
        let v1 = root.join("freezer").join(&leaf);
        v1.join("freezer.state").exists().then_some(Self::V1(v1))
    }

    /// The file to write, what to write, and where to read progress.
    fn files(&self, frozen: bool) -> (PathBuf, &'static str, PathBuf) {
        match self {
            Self::V2(dir) => (
                dir.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
                dir.join("cgroup.events"),
            ),
            Self::V1(dir) => (
                dir.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
                dir.join("freezer.state"),
            ),
        }
    }

    /// Whether the freezer reports the change to `frozen` complete.
    fn settled(&self, frozen: bool, state: &str) -> bool {
        match self {
            Self::V2(_) => state
                .lines()
                .any(|l| l.trim() == if frozen { "frozen 1" } else { "frozen 0" }),
            Self::V1(_) => state.trim() == if frozen { "FROZEN" } else { "THAWED" },
        }
    }
}

/// Whether the sandbox has a freezer cgroup (otherwise `runsc pause`).
pub(super) fn available(id: &SandboxId) -> bool {
    Freezer::of(id).is_some()
}

/// Stops every task of the sandbox.
pub(super) async fn freeze(id: &SandboxId) -> Result<(), RuntimeError> {
    let Some(freezer) = Freezer::of(id) else {
        return Err(RuntimeError::Command {
            op: format!("freezing sandbox {id}"),
            detail: "it has no freezer cgroup".into(),
        });
    };
    if let Err(e) = set(&freezer, true).await {
        // Never leave a half-frozen sandbox behind.
        let _ = set(&freezer, false).await;
        return Err(e);
    }
    Ok(())
}

/// Lets every task of the sandbox go on; nothing to do without a freezer
/// cgroup.
pub(super) async fn thaw(id: &SandboxId) -> Result<(), RuntimeError> {
    match Freezer::of(id) {
        Some(freezer) => set(&freezer, false).await,
        None => Ok(()),
    }
}

async fn set(freezer: &Freezer, frozen: bool) -> Result<(), RuntimeError> {
    let (control, value, progress) = freezer.files(frozen);
    let io = |op: &str, path: &Path, source| RuntimeError::Io {
        op: format!("{op} {}", path.display()),
        source,
    };
    std::fs::write(&control, value).map_err(|e| io("writing", &control, e))?;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let state = std::fs::read_to_string(&progress).map_err(|e| io("reading", &progress, e))?;
        if freezer.settled(frozen, &state) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(RuntimeError::Command {
                op: format!("writing {value} to {}", control.display()),
                detail: format!(
                    "the sandbox's tasks did not settle within {}s (state: {})",
                    SETTLE_TIMEOUT.as_secs(),
                    state.trim()
                ),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_read_per_interface() {
        let v2 = Freezer::V2(PathBuf::from("/x"));
        assert!(v2.settled(true, "populated 1\nfrozen 1\n"));
        assert!(!v2.settled(true, "populated 1\nfrozen 0\n"));
        assert!(v2.settled(false, "populated 1\nfrozen 0\n"));
        let v1 = Freezer::V1(PathBuf::from("/x"));
        assert!(v1.settled(true, "FROZEN\n"));
        assert!(!v1.settled(true, "FREEZING\n"));
        assert!(v1.settled(false, "THAWED\n"));
        assert_eq!(v1.files(true).1, "FROZEN");
        assert_eq!(v2.files(false).1, "0");
    }
}
