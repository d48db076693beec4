//! Rollback: a sandbox put back into the state of one of its named
//! snapshots, in place (same id, address and token); everything after the
//! snapshot (files, processes, memory) is gone.
//!
//! Protocol (with the sandbox's lifecycle lock held, run to its end
//! should the caller go away, see `carried`):
//! 1. the snapshot is one of the sandbox's live named ones;
//! 2. its image is opened before anything changes: an image gone from the
//!    snapshot store refuses the rollback (404) with the sandbox
//!    untouched, and the snapshot is marked unavailable, as the store no
//!    longer holds it;
//! 3. running or paused → resuming; the grants that opened the sandbox
//!    are withdrawn; a running instance is stopped (from here on, a
//!    running sandbox's state before the rollback is gone);
//! 4. the image is restored under the same id and its agent answers;
//!    resuming → running.
//!
//! A restore that fails at step 4 never leaves the sandbox claiming a
//! state nothing backs:
//! - a paused sandbox goes back to `paused`: its pause image was never
//!   touched, so a resume brings it back as it was before the rollback;
//!   the attempt is recorded (`sandbox.rollback`, outcome error, reason);
//! - a running sandbox is `failed`: its instance is stopped and what it
//!   held was never captured, so there is nothing to put back. The
//!   `sandbox.fail` audit entry carries the error, its resources are
//!   released like any failed sandbox's.
//!
//! Either way the caller gets the restore's error kind (an internal one's
//! detail goes to the log and the audit entry only), with a message that
//! says which state the sandbox was left in.
//!
//! Putting a running sandbox back instead would take a checkpoint before
//! every rollback (seconds, and its memory's size on disk) against a
//! failure step 2 already makes rare: a restore of a complete image fails
//! only when the host does (runsc, a corrupt file, a full disk).

use std::sync::Arc;

use warren_audit::Outcome;
use warren_core::{ErrorKind, SandboxId, SandboxState, SnapshotId, Transition, WarrenError};
use warren_store::{SandboxRecord, SnapshotRecord};

use super::Sandboxes;
use super::record::details;
use crate::audit::Action;
use crate::audit::AuditActor;

/// Why a rollback did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The snapshot's image is gone from the snapshot store.
    #[error(
        "snapshot {snapshot} of sandbox {sandbox} has lost its image, so it cannot be rolled back to; the sandbox is unchanged and the snapshot is no longer available"
    )]
    ImageGone {
        sandbox: SandboxId,
        snapshot: SnapshotId,
    },
    /// The restore failed; the paused sandbox stays paused as it was.
    #[error(
        "rolling sandbox {sandbox} back to snapshot {snapshot} failed: {reason}; the sandbox stays paused as it was"
    )]
    StillPaused {
        sandbox: SandboxId,
        snapshot: SnapshotId,
        reason: String,
        kind: ErrorKind,
    },
    /// The restore failed after the running instance was stopped.
    #[error(
        "rolling sandbox {sandbox} back to snapshot {snapshot} failed: {reason}; its instance was already stopped, so the sandbox is now failed"
    )]
    Failed {
        sandbox: SandboxId,
        snapshot: SnapshotId,
        reason: String,
        kind: ErrorKind,
    },
}

impl From<RollbackError> for WarrenError {
    fn from(e: RollbackError) -> Self {
        let kind = match &e {
            RollbackError::ImageGone { .. } => ErrorKind::NotFound,
            RollbackError::StillPaused { kind, .. } | RollbackError::Failed { kind, .. } => *kind,
        };
        WarrenError::new(kind, e.to_string())
    }
}

impl Sandboxes {
    /// Puts the sandbox back into the state of one of its named snapshots
    /// (by name or id); see the module docs.
    pub async fn rollback(
        &self,
        id: &SandboxId,
        which: &str,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let (id, which, actor) = (id.clone(), which.to_owned(), actor.clone());
        self.carried(|s| s.rollback_carried(id, which, actor)).await
    }

    async fn rollback_carried(
        self: Arc<Self>,
        id: SandboxId,
        which: String,
        actor: AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let (id, which, actor) = (&id, which.as_str(), &actor);
        let _lock = self.locks.lock(id).await;
        let snapshot = self.named(id, which).await?;
        let before = self.get(id).await?;
        self.check_image(id, &snapshot).await?;
        if before.state == SandboxState::Paused {
            // Rolling back a paused sandbox runs it again: as a resume.
            let resuming = self.store.begin_resume_in_quota(id).await?;
            self.changes.publish(&resuming);
        } else {
            self.transition(id, Transition::BeginRollback).await?;
        }
        self.note_activity(&before).await;
        self.agents.remove(id);
        // What opened the sandbox before opens it no more.
        self.withdraw_grants(id).await;
        if before.state == SandboxState::Running
            && let Err(e) = self.runtime.stop(id).await
        {
            tracing::warn!(sandbox = %id, error = %e, "could not stop the instance before a rollback");
        }
        if let Err(e) = self.restore_instance(&before, &snapshot).await {
            return Err(self
                .restore_failed(&before, &snapshot, e, actor)
                .await
                .into());
        }
        let rec = self.finish_restore(id).await?;
        tracing::info!(sandbox = %id, snapshot = %snapshot.id, "sandbox rolled back");
        let details = details([("snapshot", snapshot.id.to_string().into())]);
        self.record_lifecycle(actor, id, Action::SandboxRollback, Outcome::Ok, details)
            .await;
        Ok(rec)
    }

    /// Step 2: the image is still in the snapshot store.
    async fn check_image(
        &self,
        id: &SandboxId,
        snapshot: &SnapshotRecord,
    ) -> Result<(), RollbackError> {
        let Err(e) = self.snapshots.open(&snapshot.id).await else {
            return Ok(());
        };
        tracing::warn!(sandbox = %id, snapshot = %snapshot.id, error = %e, "a named snapshot's image is gone");
        if let Err(e) = self.store.mark_snapshot_deleted(&snapshot.id).await {
            tracing::warn!(snapshot = %snapshot.id, error = %e, "could not mark a snapshot without image unavailable");
        }
        Err(RollbackError::ImageGone {
            sandbox: id.clone(),
            snapshot: snapshot.id.clone(),
        })
    }

    /// A failed restore (step 4): back to paused, or failed and recorded.
    async fn restore_failed(
        &self,
        before: &SandboxRecord,
        snapshot: &SnapshotRecord,
        e: WarrenError,
        actor: &AuditActor,
    ) -> RollbackError {
        let id = &before.id;
        tracing::warn!(sandbox = %id, snapshot = %snapshot.id, error = %e.message, "rollback failed");
        self.agents.remove(id);
        let (sandbox, snapshot, reason, kind) =
            (id.clone(), snapshot.id.clone(), e.message, e.kind);
        if before.state == SandboxState::Paused {
            if let Err(e) = self.runtime.stop(id).await {
                tracing::debug!(sandbox = %id, error = %e, "stopping a failed restore");
            }
            if let Err(e) = self.transition(id, Transition::Paused).await {
                tracing::warn!(sandbox = %id, error = %e.message, "could not mark the sandbox paused again");
            }
            let mut details = details([("snapshot", snapshot.to_string().into())]);
            let paused = RollbackError::StillPaused {
                sandbox,
                snapshot,
                reason,
                kind,
            };
            // Recorded as a failed rollback: the sandbox's state is unchanged.
            details.insert("error".into(), paused.to_string().into());
            self.record_lifecycle(actor, id, Action::SandboxRollback, Outcome::Error, details)
                .await;
            return paused;
        }
        let failed = RollbackError::Failed {
            sandbox,
            snapshot,
            reason,
            kind,
        };
        // Marked failed, recorded with the error, then torn down.
        self.fail(id, actor, &failed.to_string()).await;
        failed
    }
}
