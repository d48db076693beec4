//! Template snapshots: a template with a start command (its recipe's
//! `StartCommand`) is booted once, checkpointed once the command's port
//! answers, and creates from the template restore that image, so the
//! command's server (the code interpreter's kernel) already runs at create.
//!
//! Making one: a sandbox of the template is booted for no team (its team id
//! is a fresh one no key holds, its owner and key likewise), the start
//! command run and waited for as a cold create does, the instance
//! checkpointed into the snapshot store, the image recorded in
//! `template_snapshots` (one per template, under [`template_key`]) and the
//! maker killed. It is made in the background: at daemon start for every
//! ready template with a start command, and when a create finds none for
//! the template's current identity. Creates meanwhile boot cold; they never
//! wait for it. A make that fails is not tried again for the same identity
//! for [`RETRY_AFTER`].
//!
//! A daemon that dies while making one leaves the maker `creating`
//! (start-up reconciliation fails it and tears it down) and perhaps an
//! image no row names (the snapshot store's start-up sweep deletes it).
//!
//! Dropping one: a template that is gone, or whose identity changed (it
//! was rebuilt), loses its row and image, when a create notices or at the
//! next sweep (every [`SWEEP_EVERY`] and at start). The images are no
//! team's snapshots: no row of `snapshots` names them, so no listing shows
//! them and no create by snapshot id finds them.
//!
//! Creating from one (`Sandboxes::create_from_template_snapshot`): only
//! when the caller's limits are the ones the image was made with (the
//! daemon's defaults); otherwise cold. The sandbox's row is the one a cold
//! create writes (team, owner, key, env, metadata, network policy, timeout,
//! inbox, no `source_snapshot`); the image is restored under the new id in
//! its own network slot, and the agent re-initialised as after any restore
//! (`Sandboxes::init_agent`): the maker's access token opens it once, then
//! it takes the new sandbox's environment, access token, clock and sandbox
//! token. The audit's `sandbox.create` entry says `from_template_snapshot`.
//! A restore that fails is logged, its instance destroyed, the image
//! dropped (and a new one asked for), and the same sandbox booted cold.
//!
//! What a restored sandbox shares with its siblings: the memory of the
//! processes the start command left (the server and its kernel), as the
//! maker had it. Their environment is the template's (not the caller's: a
//! cold create starts the command with the caller's environment), their
//! PIDs, and any random state they drew before the checkpoint (Python's
//! `random` seed, `PYTHONHASHSEED`, the Jupyter connection key, all held
//! inside the sandbox). gVisor serves `getrandom` and `/dev/urandom` from
//! the host at every call, so what they draw after the restore differs per
//! sandbox; the realtime clock is the host's, the monotonic one continues.
//! Everything Warren hands a sandbox (tokens, environment, identity) is
//! handed again at the restore; the maker's sandbox token in the image is
//! replaced and dead with the maker.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Map;
use tokio::sync::mpsc;
use warren_core::laps::Laps;
use warren_core::{KeyId, Persistence, SandboxId, SnapshotId, TeamId, UserId, WarrenError};
use warren_store::{
    NewSandbox, SandboxRecord, SnapshotKind, SnapshotRecord, TemplateSnapshotRecord,
};
use warren_template::{Template, TemplateError};

use warren_runtime::RootFs;

use super::create::{CreateParams, deadline};
use super::{Sandboxes, template_key};
use crate::audit::{Action, AuditActor};

/// How often stale template snapshots are looked for.
pub const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// A make that failed is not tried again for the same identity sooner.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);
/// The maker's lifetime, should the daemon die while it runs.
const MAKER_TIMEOUT_S: u64 = 600;
/// The audit actor of everything done to makers.
const ACTOR: &str = "template-snapshot";

/// What the service remembers about template snapshots in memory.
pub struct TemplateSnapshots {
    /// Set once the worker runs; until then creates never look.
    enabled: AtomicBool,
    /// Templates queued or being made.
    pending: Mutex<HashSet<String>>,
    /// Identities whose make failed, and when.
    failed: Mutex<HashMap<String, Instant>>,
    queue: mpsc::UnboundedSender<String>,
    requests: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

impl Default for TemplateSnapshots {
    fn default() -> Self {
        let (queue, requests) = mpsc::unbounded_channel();
        Self {
            enabled: AtomicBool::new(false),
            pending: Mutex::default(),
            failed: Mutex::default(),
            queue,
            requests: Mutex::new(Some(requests)),
        }
    }
}

impl TemplateSnapshots {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn failed(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.failed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the worker to make `template`'s image unless it is queued or
    /// being made already, or failed lately for `key`.
    fn request(&self, template: &str, key: &str) {
        if self
            .failed()
            .get(key)
            .is_some_and(|at| at.elapsed() < RETRY_AFTER)
        {
            return;
        }
        if self.pending().insert(template.to_owned()) {
            let _ = self.queue.send(template.to_owned());
        }
    }
}

impl Sandboxes {
    /// Makes and sweeps template snapshots until `shutdown` fires; creates
    /// use them only while this runs.
    pub async fn run_template_snapshots(
        self: std::sync::Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let state = &self.template_snapshots;
        let Some(mut requests) = state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        state.enabled.store(true, Ordering::SeqCst);
        self.sweep_template_snapshots().await;
        match self.templates.list() {
            Ok(templates) => {
                for t in templates {
                    let startable = t.is_ready() && t.start().is_some();
                    if startable {
                        state.request(&t.name, &template_key(&t));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list templates to snapshot"),
        }
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => self.sweep_template_snapshots().await,
                Some(name) = requests.recv() => {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = self.make_if_needed(&name) => {}
                    }
                    state.pending().remove(&name);
                }
            }
        }
    }

    /// A create from the template's snapshot, if it has one for its current
    /// identity and `p`'s limits; `None` leaves the create to the cold path
    /// (and asks for the image to be made when it is missing).
    pub(super) async fn create_from_template_snapshot(
        &self,
        p: &CreateParams,
        actor: &AuditActor,
    ) -> Option<Result<SandboxRecord, WarrenError>> {
        if !self.template_snapshots.enabled.load(Ordering::SeqCst) {
            return None;
        }
        let template = self.templates.ready(&p.template).ok()?;
        let start = template.start();
        start.as_ref()?;
        let key = template_key(&template);
        let row = match self.store.template_snapshot(&template.name).await {
            Ok(row) => row,
            Err(e) => {
                tracing::warn!(template = %template.name, error = %e, "could not look up the template's snapshot; creating cold");
                return None;
            }
        };
        let row = match row {
            Some(row) if row.template_key == key => row,
            stale => {
                if let Some(stale) = stale {
                    self.drop_template_snapshot(&stale, "the template was rebuilt")
                        .await;
                }
                self.template_snapshots.request(&template.name, &key);
                return None;
            }
        };
        if row.limits != p.limits {
            tracing::debug!(template = %template.name, "limits differ from the template snapshot's; creating cold");
            return None;
        }
        Some(self.restore_template(p, &template, &row, actor).await)
    }

    async fn restore_template(
        &self,
        p: &CreateParams,
        template: &Template,
        row: &TemplateSnapshotRecord,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let mut laps = Laps::start();
        let expires_at = deadline(self.clock.now(), p.timeout_s)?;
        let mut env = template.default_env();
        env.extend(p.env.clone());
        let rec = self
            .store
            .create_sandbox_in_quota(NewSandbox {
                id: SandboxId::generate(),
                template: template.name.clone(),
                template_version: template.version.clone(),
                limits: p.limits,
                env,
                metadata: p.metadata.clone(),
                team: p.dispatcher.team.clone(),
                owner: p.dispatcher.user.clone(),
                created_by: p.dispatcher.key.clone(),
                expires_at,
                persistence: p.persistence,
                source_snapshot: None,
                network: p
                    .network
                    .clone()
                    .unwrap_or_else(|| self.network.default_policy().clone()),
                inbox: p.inbox.clone(),
            })
            .await?;
        laps.lap("row");
        let image = image_record(row, &rec);
        let mut extra = Map::new();
        let restored = self.restore_instance(&rec, &image).await;
        match restored {
            Ok(()) => {
                extra.insert("from_template_snapshot".into(), true.into());
                extra.insert("template_snapshot".into(), row.snapshot.to_string().into());
            }
            Err(e) => {
                tracing::warn!(sandbox = %rec.id, template = %rec.template, snapshot = %row.snapshot, error = %e.message, "restoring the template snapshot failed; booting cold");
                self.agents.remove(&rec.id);
                if let Err(e) = self.runtime.destroy(&rec.id).await {
                    tracing::warn!(sandbox = %rec.id, error = %e, "could not clear a failed restore");
                }
                self.drop_template_snapshot(row, "its restore failed").await;
                self.template_snapshots
                    .request(&template.name, &template_key(template));
                extra.insert("from_template_snapshot".into(), false.into());
                extra.insert("template_snapshot_error".into(), e.message.into());
                let start = template.start();
                let spec = self.runtime_spec(&rec, RootFs::TemplateDir(template.rootfs.clone()))?;
                if let Err(e) = self.boot(&spec, &rec, start.as_ref(), &mut laps).await {
                    tracing::warn!(sandbox = %rec.id, error = %e.message, "sandbox failed to start");
                    self.fail(&rec.id, actor, &e.message).await;
                    return Err(e);
                }
            }
        }
        laps.lap("up");
        let from_snapshot = extra.get("from_template_snapshot") == Some(&true.into());
        let done = self.finish_create_with(&rec.id, actor, extra).await;
        laps.lap("finish");
        tracing::debug!(sandbox = %rec.id, snapshot = %row.snapshot, from_snapshot, %laps, "sandbox created");
        done
    }

    /// Makes `name`'s image unless it has one for its current identity.
    async fn make_if_needed(&self, name: &str) {
        let template = match self.templates.ready(name) {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(template = name, error = %e, "not making a template snapshot");
                return;
            }
        };
        let key = template_key(&template);
        match self.store.template_snapshot(name).await {
            Ok(Some(row)) if row.template_key == key => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(template = name, error = %e, "could not look up the template's snapshot");
                return;
            }
        }
        let started = Instant::now();
        match self.make_template_snapshot(&template).await {
            Ok(row) => {
                tracing::info!(template = name, snapshot = %row.snapshot, size = row.size_bytes, ms = started.elapsed().as_millis() as u64, "template snapshot made");
            }
            Err(e) => {
                self.template_snapshots.failed().insert(key, Instant::now());
                tracing::warn!(template = name, error = %e.message, "could not make the template snapshot; creates boot cold");
            }
        }
    }

    /// Boots a maker of `template`, checkpoints it and records the image.
    async fn make_template_snapshot(
        &self,
        template: &Template,
    ) -> Result<TemplateSnapshotRecord, WarrenError> {
        let start = template.start().ok_or_else(|| {
            WarrenError::invalid(format!("template {} has no start command", template.name))
        })?;
        self.disk.check()?;
        self.memory.check()?;
        let actor = AuditActor::system(ACTOR);
        let env = template.default_env();
        let maker = self
            .store
            .create_sandbox(NewSandbox {
                id: SandboxId::generate(),
                template: template.name.clone(),
                template_version: template.version.clone(),
                limits: template.sandbox_defaults(&self.default_limits),
                env,
                metadata: BTreeMap::new(),
                team: TeamId::generate(),
                owner: UserId::generate(),
                created_by: KeyId::generate(),
                expires_at: deadline(self.clock.now(), MAKER_TIMEOUT_S)?,
                persistence: Persistence::default(),
                source_snapshot: None,
                network: self.network.default_policy().clone(),
                inbox: Default::default(),
            })
            .await?;
        let made = async {
            let mut laps = Laps::start();
            let spec = self.runtime_spec(&maker, RootFs::TemplateDir(template.rootfs.clone()))?;
            self.boot(&spec, &maker, Some(&start), &mut laps).await?;
            let snapshot = SnapshotId::generate();
            let size = self.capture(&maker.id, &snapshot).await?;
            Ok::<_, WarrenError>((snapshot, size))
        }
        .await;
        if let Err(e) = self.end(&maker.id, &actor, Action::SandboxKill).await {
            tracing::warn!(sandbox = %maker.id, error = %e.message, "could not kill a template snapshot's maker");
        }
        let (snapshot, size) = made?;
        let row = TemplateSnapshotRecord {
            template: template.name.clone(),
            template_key: template_key(template),
            snapshot: snapshot.clone(),
            maker: maker.id.clone(),
            limits: maker.limits,
            size_bytes: size,
            created_at: self.clock.now(),
        };
        match self.store.put_template_snapshot(&row).await {
            Ok(Some(old)) if old.snapshot != snapshot => self.discard_image(&old.snapshot).await,
            Ok(_) => {}
            Err(e) => {
                self.discard_image(&snapshot).await;
                return Err(e.into());
            }
        }
        // Rebuilt while it was being made: the image is already stale.
        if !self
            .templates
            .ready(&template.name)
            .is_ok_and(|t| template_key(&t) == row.template_key)
        {
            self.drop_template_snapshot(&row, "the template changed while it was made")
                .await;
            return Err(WarrenError::precondition(format!(
                "template {} changed while its snapshot was made",
                template.name
            )));
        }
        Ok(row)
    }

    /// Drops the images of templates that are gone or were rebuilt.
    pub(super) async fn sweep_template_snapshots(&self) {
        let rows = match self.store.template_snapshots().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not list template snapshots");
                return;
            }
        };
        for row in rows {
            let why = match self.templates.get(&row.template) {
                Err(TemplateError::NotFound { .. }) => "the template is gone",
                Ok(t) if t.is_ready() && template_key(&t) != row.template_key => {
                    "the template was rebuilt"
                }
                Ok(t) if t.start().is_none() && t.is_ready() => "the template has no start command",
                _ => continue,
            };
            self.drop_template_snapshot(&row, why).await;
        }
    }

    /// Deletes `row` and then its image (unless a newer row replaced it).
    async fn drop_template_snapshot(&self, row: &TemplateSnapshotRecord, why: &str) {
        match self
            .store
            .delete_template_snapshot(&row.template, &row.snapshot)
            .await
        {
            Ok(true) => {
                self.discard_image(&row.snapshot).await;
                tracing::info!(template = %row.template, snapshot = %row.snapshot, why, "template snapshot dropped");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(template = %row.template, error = %e, "could not drop a template snapshot");
            }
        }
    }
}

/// The image of `row` as the snapshot record a restore of `rec` reads:
/// the id of the image and the sandbox whose agent token it holds.
fn image_record(row: &TemplateSnapshotRecord, rec: &SandboxRecord) -> SnapshotRecord {
    SnapshotRecord {
        id: row.snapshot.clone(),
        sandbox_id: row.maker.clone(),
        team: rec.team.clone(),
        kind: SnapshotKind::Fork,
        name: None,
        template: row.template.clone(),
        template_version: rec.template_version.clone(),
        limits: row.limits,
        env: BTreeMap::new(),
        parent_snapshot: None,
        size_bytes: row.size_bytes,
        created_by: rec.created_by.clone(),
        created_at: row.created_at,
        deleted_at: None,
        network: rec.network.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_queued_once_and_not_after_a_failure() {
        let state = TemplateSnapshots::default();
        let mut rx = state.requests.lock().unwrap().take().unwrap();
        state.request("ci", "ci@1");
        state.request("ci", "ci@1");
        assert_eq!(rx.try_recv().unwrap(), "ci");
        assert!(rx.try_recv().is_err());
        state.pending().remove("ci");
        state.failed().insert("ci@2".into(), Instant::now());
        state.request("ci", "ci@2");
        assert!(rx.try_recv().is_err());
        state.request("ci", "ci@3");
        assert_eq!(rx.try_recv().unwrap(), "ci");
    }
}
