//! Services own sandbox lifecycles: they validate intent, drive the state
//! machine through the store (compare-and-set), and call the runtime and the
//! agents. Handlers only decode requests and encode responses.
//!
//! Invariants:
//! - The store is the source of truth for state; it is updated before a
//!   change is acknowledged.
//! - Slow teardown (runsc delete, namespaces) never runs on a request path:
//!   it goes to the [`teardown`] queue.
//! - After a restart, [`reconcile`] makes the store and the runtime agree.

mod agents;
mod create;
mod exec;
mod files;
mod fork;
mod gc;
mod idle;
mod lifetimes;
mod locks;
mod pause;
mod pty;
pub mod reconcile;
mod snapshots;
pub mod teardown;

use std::path::PathBuf;
use std::sync::Arc;

use warren_core::{SandboxId, SandboxState, Transition, WarrenError};
use warren_runtime::Runtime;
use warren_snapshot::SnapshotStore;
use warren_store::{SandboxRecord, Store, StoreError};
use warren_template::TemplateStore;

pub use agents::Agents;
pub use create::CreateParams;
pub use exec::ExecStream;
pub use fork::MAX_FORK;
pub use pty::{PtyEvents, PtySession};
pub use snapshots::SnapshotView;
pub use teardown::Teardown;

/// Longest lifetime a sandbox can be given, in seconds.
pub const MAX_TIMEOUT_S: u64 = warren_core::Persistence::MAX_TIMEOUT_S;
/// Lifetime when the caller names none, in seconds.
pub const DEFAULT_TIMEOUT_S: u64 = warren_core::Persistence::DEFAULT_TIMEOUT_S;

/// The sandbox service.
pub struct Sandboxes {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) templates: Arc<TemplateStore>,
    pub(crate) agents: Agents,
    pub(crate) agent_binary: PathBuf,
    pub(crate) teardown: Teardown,
    pub(crate) snapshots: Arc<dyn SnapshotStore>,
    pub(crate) locks: locks::Locks,
}

impl Sandboxes {
    pub fn new(
        store: Arc<dyn Store>,
        runtime: Arc<dyn Runtime>,
        templates: Arc<TemplateStore>,
        agents: Agents,
        agent_binary: PathBuf,
        teardown: Teardown,
        snapshots: Arc<dyn SnapshotStore>,
    ) -> Self {
        Self {
            store,
            runtime,
            templates,
            agents,
            agent_binary,
            teardown,
            snapshots,
            locks: locks::Locks::default(),
        }
    }

    pub fn runtime_name(&self) -> &'static str {
        self.runtime.name()
    }

    /// The sandbox, or NotFound (also for killed sandboxes, which are history).
    pub async fn get(&self, id: &SandboxId) -> Result<SandboxRecord, WarrenError> {
        match self.store.get_sandbox(id).await? {
            Some(rec) if rec.state != SandboxState::Killed => Ok(rec),
            _ => Err(WarrenError::not_found(format!("sandbox {id} not found"))),
        }
    }

    /// The sandbox once it is running: a paused (or pausing, or resuming)
    /// sandbox with `auto_resume` is resumed first; anything else is a
    /// precise error. Counts as API activity on the sandbox.
    pub(crate) async fn get_running(&self, id: &SandboxId) -> Result<SandboxRecord, WarrenError> {
        let rec = self.get(id).await?;
        self.note_activity(&rec).await;
        match rec.state {
            SandboxState::Running => Ok(rec),
            SandboxState::Paused | SandboxState::Pausing | SandboxState::Resuming
                if rec.persistence.auto_resume =>
            {
                self.resume(id).await
            }
            SandboxState::Paused => Err(WarrenError::precondition(format!(
                "sandbox {id} is paused and does not resume by itself (auto_resume is off): resume it first"
            ))),
            state => Err(WarrenError::precondition(format!(
                "sandbox {id} is {state}, not running"
            ))),
        }
    }

    /// Applies `t` to the sandbox's current state with compare-and-set,
    /// retrying if another writer moved it in between.
    pub(crate) async fn transition(
        &self,
        id: &SandboxId,
        t: Transition,
    ) -> Result<SandboxRecord, WarrenError> {
        loop {
            let rec = self
                .store
                .get_sandbox(id)
                .await?
                .ok_or_else(|| WarrenError::not_found(format!("sandbox {id} not found")))?;
            let next = rec.state.apply(t)?;
            match self.store.transition(id, rec.state, next).await {
                Ok(rec) => return Ok(rec),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Kills the sandbox: the state change is durable at once, the teardown
    /// happens in the background.
    pub async fn kill(&self, id: &SandboxId) -> Result<(), WarrenError> {
        let rec = self.get(id).await?;
        if rec.state == SandboxState::Killed {
            return Ok(());
        }
        self.transition(id, Transition::Kill).await?;
        self.agents.remove(id);
        self.locks.forget(id);
        self.teardown.enqueue(id.clone());
        tracing::info!(sandbox = %id, "sandbox killed");
        Ok(())
    }
}

impl Sandboxes {
    pub async fn list(
        &self,
        filter: &warren_store::SandboxFilter,
    ) -> Result<Vec<SandboxRecord>, WarrenError> {
        Ok(self.store.list_sandboxes(filter).await?)
    }
}
