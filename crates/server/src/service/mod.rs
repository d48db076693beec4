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
mod identity;
mod idle;
mod lifetimes;
mod liveness;
mod locks;
mod network;
mod pause;
mod pty;
mod quotas;
pub mod reconcile;
mod record;
pub mod secrets;
mod snapshots;
mod standby;
mod start;
pub mod storage;
pub mod teardown;
mod tenancy;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Map;
use warren_audit::Outcome;
use warren_core::{SandboxId, SandboxState, Transition, WarrenError};
use warren_runtime::Runtime;
use warren_snapshot::SnapshotStore;
use warren_store::{SandboxRecord, Store, StoreError};
use warren_template::TemplateStore;

use crate::audit::{Audit, AuditActor};

pub use agents::Agents;
pub use create::{CreateParams, Dispatcher, deadline};
pub use exec::ExecStream;
pub use fork::MAX_FORK;
pub use identity::{SandboxIdentity, TOKEN_FILE};
pub use network::{DENY_AUDIT_EVERY, Network};
pub use pty::{PtyEvents, PtySession};
pub use quotas::{QuotaChange, TeamQuota};
pub use secrets::Secrets;
pub use snapshots::SnapshotView;
pub use standby::Standby;
pub use teardown::Teardown;
pub use tenancy::{KeyRequest, MintedKey, Tenancy};

/// Longest lifetime a sandbox can be given, in seconds.
pub const MAX_TIMEOUT_S: u64 = warren_core::Persistence::MAX_TIMEOUT_S;
/// Lifetime when the caller names none, in seconds.
pub const DEFAULT_TIMEOUT_S: u64 = warren_core::Persistence::DEFAULT_TIMEOUT_S;

/// The sandbox service; the daemon builds it field by field at start-up.
pub struct Sandboxes {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) templates: Arc<TemplateStore>,
    pub(crate) agents: Agents,
    pub(crate) agent_binary: PathBuf,
    pub(crate) teardown: Teardown,
    pub(crate) identity: SandboxIdentity,
    pub(crate) audit: Audit,
    pub(crate) snapshots: Arc<dyn SnapshotStore>,
    pub(crate) locks: locks::Locks,
    pub(crate) standby: Standby,
    pub(crate) network: Arc<Network>,
    pub(crate) disk: storage::DiskReserve,
    /// Limits of sandboxes created without their own (the disk's from
    /// `--default-disk-mb`).
    pub(crate) default_limits: warren_core::Limits,
    /// The Warren CA certificate (PEM) every agent installs at init.
    pub(crate) ca_certificate: String,
}

impl Sandboxes {
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
                self.resume(id, &AuditActor::system("auto-resume")).await
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

    /// Kills the sandbox on `actor`'s request: the state change is durable
    /// at once, the teardown happens in the background.
    pub async fn kill(&self, id: &SandboxId, actor: &AuditActor) -> Result<(), WarrenError> {
        self.end(id, actor, "sandbox.kill").await
    }

    /// Kills the sandbox and records it as `action` (a kill or an expiry).
    pub(crate) async fn end(
        &self,
        id: &SandboxId,
        actor: &AuditActor,
        action: &'static str,
    ) -> Result<(), WarrenError> {
        let rec = self.get(id).await?;
        if rec.state == SandboxState::Killed {
            return Ok(());
        }
        let from = rec.state;
        self.transition(id, Transition::Kill).await?;
        self.agents.remove(id);
        self.forget_standby(id);
        self.identity.forget(id);
        self.locks.forget(id);
        self.teardown.enqueue(id.clone());
        tracing::info!(sandbox = %id, action, "sandbox killed");
        let mut details = Map::new();
        details.insert("from_state".into(), from.as_str().into());
        self.record_lifecycle(actor, id, action, Outcome::Ok, details)
            .await;
        Ok(())
    }
}

impl Sandboxes {
    /// `team`'s sandboxes matching `filter`.
    pub async fn list(
        &self,
        team: &warren_core::TeamId,
        filter: warren_store::SandboxFilter,
    ) -> Result<Vec<SandboxRecord>, WarrenError> {
        let filter = warren_store::SandboxFilter {
            team: Some(team.clone()),
            ..filter
        };
        Ok(self.store.list_sandboxes(&filter).await?)
    }
}
