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

pub mod budgets;
pub mod build;
mod carried;
pub mod changes;
mod create;
pub mod events;
mod exec;
mod files;
mod fork;
mod fs_pause;
pub mod gate;
mod gc;
pub mod hooks;
mod identity;
mod idle;
pub mod inbox;
mod lifetimes;
mod liveness;
mod locks;
mod logs;
pub mod memory;
pub mod meter;
mod network;
mod pause;
mod pool;
mod processes;
mod pty;
mod quotas;
mod raced;
pub mod reconcile;
mod record;
pub mod recordings;
mod rollback;
pub mod rules;
pub mod secrets;
mod snapshots;
mod standby;
mod start;
pub mod storage;
pub mod teardown;
mod template_gc;
mod template_snapshot;
mod tenancy;
pub mod timers;
mod traced;
mod unrecorded;
mod usage;
pub mod volume_content;
pub mod volumes;
pub mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Map;
use warren_audit::Outcome;
use warren_core::{SandboxId, SandboxState, Transition, WarrenError};
use warren_runtime::Runtime;
use warren_snapshot::SnapshotStore;
use warren_store::{SandboxRecord, Store, StoreError};
use warren_template::TemplateStore;

use crate::agents::Agents;
use crate::audit::Action;
use crate::audit::{Audit, AuditActor};

pub use carried::to_completion;
pub use create::{CreateParams, Dispatcher, deadline};
pub use exec::ExecStream;
pub use fork::MAX_FORK;
pub use hooks::Hooks;
pub use identity::{SandboxIdentity, TOKEN_FILE};
pub use network::{DENY_AUDIT_EVERY, Network};
pub use pool::{MAX_POOL_SIZE, PoolChange, PoolView};
pub use pty::{PtyEvents, PtySession};
pub use quotas::{QuotaChange, TeamQuota};
pub use secrets::Secrets;
pub use snapshots::SnapshotView;
pub use standby::Standby;
pub use teardown::Teardown;
pub use tenancy::{KeyRequest, MintedKey, Tenancy};

/// A template version's identity for warm pools and template snapshots:
/// what was made from one version is never used for another.
pub fn template_key(t: &warren_template::Template) -> String {
    t.reference()
}

/// Longest lifetime a sandbox can be given, in seconds.
pub const MAX_TIMEOUT_S: u64 = warren_core::Persistence::MAX_TIMEOUT_S;
/// Lifetime when the caller names none, in seconds.
pub const DEFAULT_TIMEOUT_S: u64 = warren_core::Persistence::DEFAULT_TIMEOUT_S;

/// What the sandbox service is built from (`crate::assemble`).
pub(crate) struct SandboxDeps {
    pub store: Arc<dyn Store>,
    /// The metered runtime (`meter::MeteredRuntime`).
    pub runtime: Arc<dyn Runtime>,
    pub meter: Arc<meter::Meter>,
    pub templates: Arc<TemplateStore>,
    pub agents: Agents,
    pub agent_binary: PathBuf,
    pub teardown: Teardown,
    pub identity: SandboxIdentity,
    pub audit: Audit,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub standby: Standby,
    pub network: Arc<Network>,
    pub disk: storage::DiskReserve,
    pub memory: memory::MemoryReserve,
    /// Turns to start sandboxes (creates, forks).
    pub gate: gate::CreateGate,
    /// Limits of sandboxes created without their own (the disk's from
    /// `--default-disk-mb`).
    pub default_limits: warren_core::Limits,
    /// The Warren CA certificate (PEM) every agent installs at init.
    pub ca_certificate: String,
    /// Decides lifetimes, idleness and retention.
    pub clock: crate::clock::Clock,
    /// Lifecycle webhooks out: every audited lifecycle act is tapped.
    pub webhooks: Arc<webhooks::Webhooks>,
    /// Where team volumes live (`<data>/volumes`).
    pub volumes: volumes::VolumeDirs,
    /// Where terminal recordings live (`<data>/recordings`).
    pub recordings: recordings::Recordings,
}

/// The sandbox service. Its parts are its own; the routers and proxies
/// use its methods.
pub struct Sandboxes {
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
    meter: Arc<meter::Meter>,
    templates: Arc<TemplateStore>,
    agents: Agents,
    agent_binary: PathBuf,
    teardown: Teardown,
    identity: SandboxIdentity,
    audit: Audit,
    snapshots: Arc<dyn SnapshotStore>,
    locks: locks::Locks,
    standby: Standby,
    network: Arc<Network>,
    disk: storage::DiskReserve,
    memory: memory::MemoryReserve,
    gate: gate::CreateGate,
    default_limits: warren_core::Limits,
    /// The Warren CA certificate (PEM) every agent installs at init.
    ca_certificate: String,
    /// Decides lifetimes, idleness and retention.
    clock: crate::clock::Clock,
    /// Long-poll signals and the inbox worker's queue.
    inbox_work: inbox::InboxWork,
    webhooks: Arc<webhooks::Webhooks>,
    template_gc: template_gc::UnusedSince,
    /// Images of templates with a start command (`template_snapshot`).
    template_snapshots: template_snapshot::TemplateSnapshots,
    /// Warm pools of ready sandboxes (`pool`).
    pools: pool::PoolState,
    /// Team volumes' host directories (`volumes`).
    volumes: volumes::VolumeDirs,
    /// Terminal recordings (`recordings`).
    recordings: recordings::Recordings,
    /// How long each anomaly rule's condition has held (`rules`).
    rule_state: rules::RuleState,
    /// Counters for `/metrics`.
    signals: crate::signals::Signals,
    /// Its own handle, for the work it carries to its end (`carried`).
    itself: carried::Itself,
    /// Rows written, for live views (`changes`).
    changes: changes::Changes,
}

impl Sandboxes {
    pub(crate) fn new(d: SandboxDeps) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            itself: carried::Itself::new(this),
            store: d.store,
            runtime: d.runtime,
            meter: d.meter,
            templates: d.templates,
            agents: d.agents,
            agent_binary: d.agent_binary,
            teardown: d.teardown,
            identity: d.identity,
            audit: d.audit,
            snapshots: d.snapshots,
            locks: locks::Locks::default(),
            template_gc: template_gc::UnusedSince::default(),
            standby: d.standby,
            network: d.network,
            disk: d.disk,
            memory: d.memory,
            gate: d.gate,
            default_limits: d.default_limits,
            ca_certificate: d.ca_certificate,
            clock: d.clock,
            inbox_work: inbox::InboxWork::default(),
            webhooks: d.webhooks,
            template_snapshots: template_snapshot::TemplateSnapshots::default(),
            pools: pool::PoolState::default(),
            volumes: d.volumes,
            recordings: d.recordings,
            rule_state: Default::default(),
            signals: Default::default(),
            changes: Default::default(),
        })
    }

    /// Sandbox rows as they are written, for live views.
    pub(crate) fn changes(&self) -> &changes::Changes {
        &self.changes
    }

    /// The counters this service keeps for `/metrics`.
    pub(crate) fn signals(&self) -> &crate::signals::Signals {
        &self.signals
    }

    /// Terminal recordings.
    pub(crate) fn recordings(&self) -> &recordings::Recordings {
        &self.recordings
    }

    /// The connections to the live sandboxes' agents.
    pub(crate) fn agents(&self) -> &Agents {
        &self.agents
    }

    /// How many sandboxes (of every team and the pools) are in each
    /// non-terminal state now.
    pub(crate) async fn count_by_state(&self) -> Result<Vec<(SandboxState, usize)>, WarrenError> {
        let all = self
            .store
            .list_sandboxes(&warren_store::SandboxFilter::default())
            .await?;
        Ok(SandboxState::ALL
            .iter()
            .map(|s| (*s, all.iter().filter(|r| r.state == *s).count()))
            .collect())
    }

    /// What the create gate holds now.
    pub(crate) fn create_gate_load(&self) -> gate::GateLoad {
        self.gate.load()
    }

    /// The network policy of sandboxes created without their own.
    pub(crate) fn default_network(&self) -> &warren_core::network::NetworkPolicy {
        self.network.default_policy()
    }

    /// Limits of sandboxes created without their own.
    pub(crate) fn default_limits(&self) -> &warren_core::Limits {
        &self.default_limits
    }

    /// Limits of sandboxes of `template` (a reference; `base` when none)
    /// created without their own: the daemon's, raised where the template
    /// needs more. An unknown template gets the daemon's (the create then
    /// says it is unknown).
    pub(crate) fn default_limits_for(&self, template: Option<&str>) -> warren_core::Limits {
        self.templates
            .ready(template.unwrap_or("base"))
            .map_or(self.default_limits, |t| {
                t.sandbox_defaults(&self.default_limits)
            })
    }

    /// The time lifetimes are decided against.
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// The sandbox's row whatever its state (killed ones too), for the
    /// callers that decide who may see it.
    pub(crate) async fn lookup(
        &self,
        id: &SandboxId,
    ) -> Result<Option<SandboxRecord>, WarrenError> {
        Ok(self.store.get_sandbox(id).await?)
    }

    /// The template version `rec` runs on (for rows older than template
    /// versions: the template's `latest`).
    pub(super) fn template_of(
        &self,
        rec: &SandboxRecord,
    ) -> Result<warren_template::Template, WarrenError> {
        Ok(match &rec.template_version {
            Some(v) => self.templates.version(&rec.template, v)?,
            None => self.templates.get(&rec.template)?,
        })
    }

    /// Whether a template called `name` exists (ready or not).
    pub(crate) fn has_template(&self, name: &str) -> bool {
        self.templates.get(name).is_ok()
    }

    /// The audit log the service records into.
    pub(crate) fn audit(&self) -> &Audit {
        &self.audit
    }

    /// The sandbox's network events, newest first, before `before`.
    pub(crate) async fn network_events(
        &self,
        id: &SandboxId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<warren_store::NetEventRecord>, WarrenError> {
        self.get(id).await?;
        Ok(self.store.network_events(id, before, limit).await?)
    }

    /// Resource usage of a live sandbox.
    pub(crate) async fn stats(&self, id: &SandboxId) -> Result<warren_runtime::Stats, WarrenError> {
        Ok(self.runtime.stats(id).await?)
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

    /// The sandbox if it is running now, for a caller holding its lock: a
    /// pause or kill may have taken the lock first, and nothing is resumed
    /// here (a resume takes the lock).
    pub(crate) async fn still_running(&self, id: &SandboxId) -> Result<SandboxRecord, WarrenError> {
        let rec = self.get(id).await?;
        if rec.state != SandboxState::Running {
            return Err(WarrenError::precondition(format!(
                "sandbox {id} is {}, not running",
                rec.state
            )));
        }
        Ok(rec)
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
                Ok(rec) => {
                    self.changes.publish(&rec);
                    return Ok(rec);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Kills the sandbox on `actor`'s request: the state change is durable
    /// at once, the teardown happens in the background.
    pub async fn kill(&self, id: &SandboxId, actor: &AuditActor) -> Result<(), WarrenError> {
        self.end(id, actor, Action::SandboxKill).await
    }

    /// Kills the sandbox and records it as `action` (a kill or an expiry).
    pub(crate) async fn end(
        &self,
        id: &SandboxId,
        actor: &AuditActor,
        action: Action,
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
        tracing::info!(sandbox = %id, %action, "sandbox killed");
        let mut details = Map::new();
        details.insert("from_state".into(), from.as_str().into());
        self.record_lifecycle(actor, id, action, Outcome::Ok, details)
            .await;
        // Only after the entry: a daemon that dies before it leaves the
        // slot unreleased, and the next start records the end (see
        // `unrecorded`).
        self.teardown.enqueue(id.clone());
        Ok(())
    }
}

impl Sandboxes {
    /// Deletes the grants that open `id` (at its rollback); a failure is
    /// logged, not fatal.
    pub(crate) async fn withdraw_grants(&self, id: &SandboxId) {
        if let Err(e) = self.store.delete_grants(id).await {
            tracing::warn!(sandbox = %id, error = %e, "could not withdraw the sandbox's grants");
        }
    }

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
