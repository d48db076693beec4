//! The conformance suite: what every [`Runtime`] backend must do, checked
//! through the trait and the instance's agent only (feature `conformance`).
//!
//! Each check is an `async fn check_*(factory) -> Result<(), ConformanceError>`
//! that starts its own sandboxes, checks one group of invariants and destroys
//! what it made. A backend's test file calls every check that applies to it
//! as a test of its own (see `docs/runtime.md`, "Conformance"):
//!
//! ```ignore
//! #[tokio::test]
//! async fn sandbox_conformance_freeze_and_thaw() {
//!     conformance::check_freeze_and_thaw(&MyFactory::new(3)).await.unwrap();
//! }
//! ```
//!
//! A [`RuntimeFactory`] stands for one test's host: its own state, address
//! range and firewall, as one daemon has. [`RuntimeFactory::runtime`] may be
//! called more than once; every runtime it returns works over the same state,
//! as a daemon restarted over the same data directory does.
//!
//! What the checks need from an instance's root filesystem: the envd agent
//! at [`crate::Instance::agent_addr`] and, run by it as `root`, `echo`,
//! `cat`, `sleep`, `kill`, `sh` (for the pids check) and `wget` (for the
//! isolation check) on `PATH`, as busybox provides them.

mod agent;
mod isolation;
mod lifecycle;
mod resources;
mod snapshots;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use warren_core::{Limits, SandboxId};
use warren_envd::ClientError;

use crate::{Runtime, RuntimeError, RuntimeSpec};

pub use isolation::check_isolation_between_sandboxes;
pub use lifecycle::{
    check_create_start_and_agent_answers, check_destroy_is_idempotent_and_leaves_nothing,
    check_freeze_and_thaw, check_list_live_after_runtime_restart, check_stop,
    check_unknown_ids_are_errors,
};
pub use resources::{check_has_exited_after_processes_die, check_limits_reach_the_instance};
pub use snapshots::{
    check_checkpoint_leave_running, check_checkpoint_then_restore_same_id,
    check_restore_under_new_id,
};

/// One test's backend: fresh state, its own addresses and firewall.
#[async_trait]
pub trait RuntimeFactory: Send + Sync {
    type Runtime: Runtime;

    /// A runtime over this factory's state. A second call gives another
    /// runtime over the same state (a restarted daemon), which must find the
    /// first one's live instances.
    fn runtime(&self) -> Result<Self::Runtime, RuntimeError>;

    /// A spec for a new sandbox (fresh id) attached at network slot `slot`
    /// of this factory's address range, as the daemon's network layer
    /// gives it.
    fn spec(&self, slot: u32, limits: Limits) -> RuntimeSpec;

    /// A directory the checks may fill with checkpoint images; it must
    /// exist and outlive the check.
    fn scratch_dir(&self) -> PathBuf;

    /// What this backend still finds on the host for `id` (one line per
    /// trace: a namespace, a link, a cgroup, a directory…); empty when
    /// nothing is left.
    async fn leftovers(&self, id: &SandboxId) -> Vec<String>;

    /// How long a started or restored instance may take before its agent
    /// answers.
    fn boot_timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
}

/// Limits the checks give sandboxes unless they test limits.
pub fn default_limits() -> Limits {
    Limits {
        memory_mb: 256,
        ..Limits::default()
    }
}

/// Why a conformance check failed.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// A runtime call the check relies on failed.
    #[error("{step}: {source}")]
    Runtime {
        step: String,
        #[source]
        source: RuntimeError,
    },
    /// The instance's agent did not answer as the protocol says.
    #[error("{step}: {source}")]
    Agent {
        step: String,
        #[source]
        source: ClientError,
    },
    /// The backend broke an invariant of the trait.
    #[error("invariant broken: {0}")]
    Violated(String),
    /// The check could not be set up (a scratch directory, a timeout).
    #[error("harness: {0}")]
    Harness(String),
}

/// Names the step of a failed runtime or agent call.
pub(crate) trait Step<T> {
    fn step(self, step: impl Into<String>) -> Result<T, ConformanceError>;
}

impl<T> Step<T> for Result<T, RuntimeError> {
    fn step(self, step: impl Into<String>) -> Result<T, ConformanceError> {
        self.map_err(|source| ConformanceError::Runtime {
            step: step.into(),
            source,
        })
    }
}

impl<T> Step<T> for Result<T, ClientError> {
    fn step(self, step: impl Into<String>) -> Result<T, ConformanceError> {
        self.map_err(|source| ConformanceError::Agent {
            step: step.into(),
            source,
        })
    }
}

/// Fails with [`ConformanceError::Violated`] unless `ok`.
pub(crate) fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), ConformanceError> {
    if ok {
        Ok(())
    } else {
        Err(ConformanceError::Violated(what()))
    }
}

/// Destroys `ids` whatever happened in between, then returns `result`:
/// a failed check leaves no sandbox behind for the next one.
pub(crate) async fn finish<R: Runtime>(
    rt: &R,
    ids: &[&SandboxId],
    result: Result<(), ConformanceError>,
) -> Result<(), ConformanceError> {
    let mut cleanup = Ok(());
    for id in ids {
        if let Err(e) = rt.destroy(id).await {
            cleanup = Err(ConformanceError::Runtime {
                step: format!("destroying {id} after the check"),
                source: e,
            });
        }
    }
    result.and(cleanup)
}

/// Destroys `ids` and fails with `error` (a failed cleanup is not
/// reported over the failure that caused it).
pub(crate) async fn abandon<R: Runtime, T>(
    rt: &R,
    ids: &[&SandboxId],
    error: ConformanceError,
) -> Result<T, ConformanceError> {
    for id in ids {
        let _ = rt.destroy(id).await;
    }
    Err(error)
}

/// A new, empty directory under the factory's scratch directory.
pub(crate) fn image_dir(
    factory: &impl RuntimeFactory,
    name: &str,
) -> Result<PathBuf, ConformanceError> {
    let dir = factory
        .scratch_dir()
        .join(format!("{name}-{}", SandboxId::generate()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ConformanceError::Harness(format!("creating {}: {e}", dir.display())))?;
    Ok(dir)
}
