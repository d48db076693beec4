//! Pause and resume: the whole sandbox (memory, processes, open files, root
//! filesystem writes) goes into the snapshot store and its CPU and memory
//! are released; a resume restores it exactly under the same id, address
//! and token.
//!
//! Pause protocol (crash-safe at every step):
//! 1. compare-and-set running → pausing;
//! 2. checkpoint into a staged image, leaving the sandbox running;
//! 3. commit the image (flushed, renamed to its final name), then keep
//!    the agent's log lines, asked for before step 2, in it (`logs`);
//! 4. one store transaction: the snapshot row, pausing → paused;
//! 5. answer, and release the instance in the background with the
//!    sandbox's lifecycle lock held (so the next pause, resume, fork … of
//!    it waits): frozen in standby, or stopped (CPU and memory released;
//!    the rest deleted in the background or reused by the next restore).
//!
//! A daemon killed before step 4 leaves a running sandbox in `pausing`,
//! which start-up reconciliation moves back to running (the image, staged
//! or orphaned, is deleted); killed after step 4, it leaves a paused
//! sandbox with a complete image, whose instance reconciliation stops.
//! The sandbox is never without both. Checkpointing with the sandbox left
//! running costs nothing extra in runsc, and it is what makes step 2 safe:
//! the image is complete before anything is lost.
//!
//! A failed checkpoint (step 2 or 3) puts the sandbox back to running. A
//! failed restore puts it back to paused: the image is still there.
//!
//! A pause may keep the filesystem alone ([`PauseMode::Filesystem`]):
//! every process but the agent is ended between steps 1 and 2, and the
//! resume boots the sandbox again (`service::fs_pause`).

use warren_audit::Outcome;
use warren_core::laps::Laps;
use warren_core::{
    ErrorKind, PauseMode, SandboxId, SandboxState, SnapshotId, Transition, WarrenError,
};
use warren_store::{NewSnapshot, SandboxRecord, SnapshotKind, SnapshotRecord, StoreError};

use super::Sandboxes;
use super::record::details;
use super::traced::{op_span, traced};
use crate::audit::Action;
use crate::audit::AuditActor;

/// API activity is recorded at most this often per sandbox, so a stream of
/// calls does not turn into a stream of store writes.
const ACTIVITY_GRANULARITY: time::Duration = time::Duration::seconds(1);

/// Restores of one image before a resume gives up (see `restore_instance`).
const RESTORE_ATTEMPTS: u32 = 3;

impl Sandboxes {
    /// Pauses a running sandbox, keeping what `mode` says; returns it
    /// paused. The pause runs to its end should the caller go away
    /// (`carried`).
    pub async fn pause(
        &self,
        id: &SandboxId,
        mode: PauseMode,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let span = op_span!("sandbox.pause", actor.team);
        span.record("sandbox.id", id.as_str());
        let (id, actor) = (id.clone(), actor.clone());
        let work = self.carried(|s| async move { s.pause_untraced(&id, mode, &actor).await });
        traced(&span, work).await
    }

    async fn pause_untraced(
        &self,
        id: &SandboxId,
        mode: PauseMode,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let lock = self.locks.lock(id).await;
        let rec = self.get(id).await?;
        if rec.state == SandboxState::Paused {
            return Err(WarrenError::precondition(format!(
                "sandbox {id} is already paused"
            )));
        }
        self.refuse_with_volumes(id, "be paused").await?;
        let mut laps = Laps::start();
        let rec = self.transition(id, Transition::BeginPause).await?;
        laps.lap("begin");
        let snapshot = SnapshotId::generate();
        let quiesced = match mode {
            PauseMode::Full => Ok(()),
            PauseMode::Filesystem => self.quiesce(id).await,
        };
        laps.lap("quiesce");
        let logs = self.logs_to_keep(id).await;
        // Whether the processes were ended (a failure from here on starts
        // the start command again; a failed quiesce leaves them be).
        let ended = mode == PauseMode::Filesystem && quiesced.is_ok();
        let captured = match quiesced {
            Ok(()) => self.capture(id, &snapshot).await,
            Err(e) => Err(e),
        };
        let size = match captured {
            Ok(size) => size,
            Err(e) => {
                tracing::warn!(sandbox = %id, error = %e.message, "pause failed; the sandbox keeps running");
                if let Err(e) = self.transition(id, Transition::Started).await {
                    tracing::warn!(sandbox = %id, error = %e.message, "could not mark the sandbox running again");
                } else if ended {
                    // Its processes are gone: it runs as after a resume.
                    self.boot_again(&rec).await;
                }
                return Err(e);
            }
        };
        let row = self.new_snapshot(
            &rec,
            snapshot.clone(),
            SnapshotKind::Pause,
            None,
            size,
            &rec.created_by,
        );
        if let Some(lines) = logs {
            self.keep_logs(&snapshot, lines).await;
        }
        laps.lap("capture");
        let paused = match self.store.commit_pause(id, row, mode).await {
            Ok(paused) => {
                self.changes.publish(&paused);
                paused
            }
            Err(e) => {
                // Killed meanwhile (or the store failed): the image is
                // nobody's; the sandbox's fate is whatever its row says.
                self.discard_image(&snapshot).await;
                self.agents.reconnect(id)?;
                return Err(e.into());
            }
        };
        laps.lap("commit");
        self.agents.remove(id);
        self.release_paused(id, lock);
        tracing::info!(sandbox = %id, snapshot = %snapshot, size, %mode, %laps, "sandbox paused");
        let details = details([
            ("snapshot", snapshot.to_string().into()),
            ("size_bytes", size.into()),
            ("mode", mode.as_str().into()),
        ]);
        self.record_lifecycle(actor, id, Action::SandboxPause, Outcome::Ok, details)
            .await;
        Ok(paused)
    }

    /// Resumes a paused sandbox (also one that is pausing or resuming: the
    /// call waits for that to finish); a running one is returned as is.
    /// The resume runs to its end should the caller go away (`carried`).
    pub async fn resume(
        &self,
        id: &SandboxId,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let span = op_span!("sandbox.resume", actor.team);
        span.record("sandbox.id", id.as_str());
        let (id, actor) = (id.clone(), actor.clone());
        let work = self.carried(|s| async move { s.resume_untraced(&id, &actor).await });
        traced(&span, work).await
    }

    async fn resume_untraced(
        &self,
        id: &SandboxId,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let _lock = self.locks.lock(id).await;
        let rec = self.get(id).await?;
        match rec.state {
            SandboxState::Running => return Ok(rec),
            SandboxState::Paused => {}
            state => {
                return Err(WarrenError::precondition(format!(
                    "sandbox {id} is {state}: only a paused sandbox can be resumed"
                )));
            }
        }
        self.admit_spend(&rec.team, &rec.owner, &rec.created_by)
            .await?;
        // A sandbox frozen in standby holds its memory still; one restored
        // from its image needs it again.
        if !self.standby.holds(id) {
            self.memory.check()?;
        }
        let mut laps = Laps::start();
        let snapshot = self.paused_image(&rec).await?;
        // Paused → resuming only if it fits its team's quota again.
        let resuming = self.store.begin_resume_in_quota(id).await?;
        self.changes.publish(&resuming);
        laps.lap("begin");
        let thawed = self.thaw_standby(&rec).await;
        let restored = match thawed {
            true => Ok(()),
            false => self.restore_instance(&rec, &snapshot).await,
        };
        laps.lap("restore");
        if let Err(e) = restored {
            tracing::warn!(sandbox = %id, error = %e.message, "resume failed; the sandbox stays paused");
            self.agents.remove(id);
            if let Err(e) = self.runtime.stop(id).await {
                tracing::debug!(sandbox = %id, error = %e, "stopping a failed restore");
            }
            if let Err(e) = self.transition(id, Transition::Paused).await {
                tracing::warn!(sandbox = %id, error = %e.message, "could not mark the sandbox paused again");
            }
            return Err(e);
        }
        let booted = super::fs_pause::boots_again(&rec);
        if booted {
            self.boot_again(&rec).await;
            laps.lap("boot");
        }
        let resumed = self.finish_restore(id).await?;
        laps.lap("finish");
        tracing::info!(sandbox = %id, from_standby = thawed, booted, %laps, "sandbox resumed");
        let details = details([
            ("snapshot", snapshot.id.to_string().into()),
            ("from_standby", thawed.into()),
            ("booted", booted.into()),
        ]);
        self.record_lifecycle(actor, id, Action::SandboxResume, Outcome::Ok, details)
            .await;
        Ok(resumed)
    }

    /// For traffic to a sandbox that is not reachable: resumes it if it is
    /// paused (or on its way) with `auto_resume`; whether it now runs.
    pub(crate) async fn resume_for_traffic(&self, id: &SandboxId) -> bool {
        let Ok(rec) = self.get(id).await else {
            return false;
        };
        let asleep = matches!(
            rec.state,
            SandboxState::Paused | SandboxState::Pausing | SandboxState::Resuming
        );
        if !asleep || !rec.persistence.auto_resume {
            return false;
        }
        match self.resume(id, &AuditActor::system("auto-resume")).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(sandbox = %id, error = %e.message, "traffic could not wake the sandbox");
                false
            }
        }
    }

    /// Resuming → running once the restored instance answers. A kill that
    /// landed meanwhile wins: the instance it never saw is torn down.
    pub(super) async fn finish_restore(
        &self,
        id: &SandboxId,
    ) -> Result<SandboxRecord, WarrenError> {
        match self.store.finish_resume(id).await {
            Ok(rec) => {
                self.changes.publish(&rec);
                self.drain_inbox(id);
                Ok(rec)
            }
            Err(StoreError::Conflict { actual, .. }) => {
                self.agents.remove(id);
                self.teardown.enqueue(id.clone());
                Err(WarrenError::precondition(format!(
                    "sandbox {id} became {actual} while it was being restored"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The image a paused sandbox resumes from.
    async fn paused_image(&self, rec: &SandboxRecord) -> Result<SnapshotRecord, WarrenError> {
        let missing = || {
            WarrenError::internal(format!(
                "paused sandbox {} has no snapshot image; kill it",
                rec.id
            ))
        };
        let id = rec.paused_snapshot.as_ref().ok_or_else(missing)?;
        self.store
            .get_snapshot(id)
            .await?
            .filter(|s| s.deleted_at.is_none())
            .ok_or_else(missing)
    }

    /// Checkpoints the running sandbox `id` into a new complete image
    /// `snapshot`, leaving it running; returns the image's size. The
    /// sandbox's connections (the daemon's to its agent too) are reset.
    pub(super) async fn capture(
        &self,
        id: &SandboxId,
        snapshot: &SnapshotId,
    ) -> Result<u64, WarrenError> {
        // Every image is taken here: none of a sandbox with volumes.
        self.refuse_with_volumes(id, "be checkpointed").await?;
        let dir = self.snapshots.stage(snapshot).await?;
        // No new connection may reach the sandbox until the image is taken
        // (the runtime resets the existing ones; see docs/runtime.md).
        let hold = self.agents.hold(id);
        let result = async {
            let mut laps = Laps::start();
            self.runtime.checkpoint(id, &dir, true).await?;
            laps.lap("checkpoint");
            let size = self.snapshots.commit(snapshot).await?;
            laps.lap("flush");
            tracing::debug!(sandbox = %id, snapshot = %snapshot, size, %laps, "image captured");
            Ok::<_, WarrenError>(size)
        }
        .await;
        if result.is_err()
            && let Err(e) = self.snapshots.abort(snapshot).await
        {
            tracing::warn!(snapshot = %snapshot, error = %e, "could not drop a failed checkpoint");
        }
        drop(hold);
        if result.is_err() {
            // A kill that tore the instance down wins (`raced`).
            self.outlived_by_kill(id, "checkpointed").await?;
        }
        match result {
            Err(e) if e.kind != ErrorKind::InsufficientStorage && self.disk.nearly_full() => {
                tracing::warn!(sandbox = %id, error = %e.message, "a checkpoint failed on a full disk");
                Err(warren_core::error::disk_full("the sandbox's image"))
            }
            other => other,
        }
    }

    /// The row for an image of `rec` taken by `by`.
    pub(super) fn new_snapshot(
        &self,
        rec: &SandboxRecord,
        id: SnapshotId,
        kind: SnapshotKind,
        name: Option<String>,
        size_bytes: u64,
        by: &warren_core::KeyId,
    ) -> NewSnapshot {
        NewSnapshot {
            id,
            sandbox_id: rec.id.clone(),
            team: rec.team.clone(),
            kind,
            name,
            template: rec.template.clone(),
            template_version: rec.template_version.clone(),
            limits: rec.limits,
            env: rec.env.clone(),
            parent_snapshot: rec.source_snapshot.clone(),
            size_bytes,
            created_by: by.clone(),
            network: rec.network.clone(),
        }
    }

    /// Restores `snapshot` as the instance of `rec` (same id or a new one)
    /// and initialises its agent.
    ///
    /// With runsc 20240729 a restored sandbox can accept TCP connections
    /// while its agent never answers; the runtime avoids the cause it was
    /// traced to (connections inside the image). Should it still happen,
    /// an agent that does not answer within a few seconds gets its
    /// instance restored again.
    pub(super) async fn restore_instance(
        &self,
        rec: &SandboxRecord,
        snapshot: &SnapshotRecord,
    ) -> Result<(), WarrenError> {
        // The restore replaces any instance of this id, a frozen one too.
        self.forget_standby(&rec.id);
        let template = self.template_of(rec)?;
        let image = self.snapshots.open(&snapshot.id).await?;
        let spec = self.runtime_spec(rec, warren_runtime::RootFs::TemplateDir(template.rootfs))?;
        let mut attempt = 1;
        loop {
            let instance = self.runtime.restore(&image, &spec).await?;
            let ready = self
                .init_agent(rec, &instance, Some(&snapshot.sandbox_id))
                .await;
            match ready {
                Err(e) if attempt < RESTORE_ATTEMPTS && e.kind == ErrorKind::Unavailable => {
                    tracing::warn!(sandbox = %rec.id, snapshot = %snapshot.id, error = %e.message, "restored agent does not answer; restoring again");
                    self.agents.remove(&rec.id);
                    self.runtime.stop(&rec.id).await?;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Deletes an image no row will name.
    pub(super) async fn discard_image(&self, snapshot: &SnapshotId) {
        if let Err(e) = self.snapshots.delete(snapshot).await {
            tracing::warn!(snapshot = %snapshot, error = %e, "could not delete an unused snapshot image");
        }
    }

    /// Records API activity on `rec` (at most once per granule).
    pub(super) async fn note_activity(&self, rec: &SandboxRecord) {
        let now = self.clock.now();
        if now - rec.last_activity < ACTIVITY_GRANULARITY {
            return;
        }
        if let Err(e) = self.store.touch_sandbox(&rec.id, now).await {
            tracing::debug!(sandbox = %rec.id, error = %e, "could not record activity");
        }
    }
}
