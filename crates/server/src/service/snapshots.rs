//! Named snapshots (rollback to one is `rollback`).
//!
//! A named snapshot is a checkpoint taken while the sandbox keeps running
//! (its connections are reset, its processes go on). Taking one runs to
//! its end should the caller go away (`carried`): the image is committed
//! and its row written, or the image is discarded; a snapshot the caller
//! never heard of shows in the list.
//!
//! Snapshots belong to the sandbox they were taken from: they are deleted
//! with it (killed, or past its paused retention). Rows stay for lineage.

use std::sync::Arc;

use warren_core::spec::validate_template_name;
use warren_core::{KeyId, SandboxId, SnapshotId, WarrenError};
use warren_store::{SnapshotKind, SnapshotRecord};

use warren_audit::Outcome;

use super::Sandboxes;
use super::record::details;
use crate::audit::Action;
use crate::audit::AuditActor;

/// A snapshot with the sandboxes started from it (lineage).
#[derive(Debug, Clone)]
pub struct SnapshotView {
    pub snapshot: SnapshotRecord,
    pub children: Vec<SandboxId>,
}

/// Snapshot names follow the template name rules.
fn validate_name(name: &str) -> Result<(), WarrenError> {
    validate_template_name(name)
        .map_err(|e| WarrenError::invalid(e.message.replacen("template name", "snapshot name", 1)))
}

impl Sandboxes {
    /// Takes a named snapshot of a running sandbox, which keeps running.
    pub async fn take_snapshot(
        &self,
        id: &SandboxId,
        name: &str,
        by: &KeyId,
        actor: &AuditActor,
    ) -> Result<SnapshotView, WarrenError> {
        validate_name(name)?;
        let (id, name, by, actor) = (id.clone(), name.to_owned(), by.clone(), actor.clone());
        self.carried(|s| s.take_snapshot_carried(id, name, by, actor))
            .await
    }

    async fn take_snapshot_carried(
        self: Arc<Self>,
        id: SandboxId,
        name: String,
        by: KeyId,
        actor: AuditActor,
    ) -> Result<SnapshotView, WarrenError> {
        let (id, name, by, actor) = (&id, name.as_str(), &by, &actor);
        let rec = self.get_running(id).await?;
        self.refuse_with_volumes(id, "be snapshotted").await?;
        let _lock = self.locks.lock(id).await;
        let rec = self.still_running(&rec.id).await?;
        if self.find_named(id, name).await?.is_some() {
            return Err(WarrenError::new(
                warren_core::ErrorKind::AlreadyExists,
                format!(
                    "sandbox {id} already has a snapshot named '{name}': delete it or pick another name"
                ),
            ));
        }
        self.admit_snapshot(&rec).await?;
        let snapshot = SnapshotId::generate();
        let size = self.capture(id, &snapshot).await?;
        let row = self.new_snapshot(
            &rec,
            snapshot.clone(),
            SnapshotKind::Named,
            Some(name.to_owned()),
            size,
            by,
        );
        let inserted = match self.store.insert_snapshot(row).await {
            // A kill committed before the row wins (`raced`).
            Ok(snapshot) => match self.outlived_by_kill(id, "snapshotted").await {
                Ok(()) => Ok(snapshot),
                Err(e) => {
                    if let Err(e) = self.store.mark_snapshot_deleted(&snapshot.id).await {
                        tracing::warn!(snapshot = %snapshot.id, error = %e, "could not mark a lost snapshot deleted");
                    }
                    Err(WarrenError::from(e))
                }
            },
            Err(e) => Err(WarrenError::from(e)),
        };
        match inserted {
            Ok(snapshot) => {
                tracing::info!(sandbox = %id, snapshot = %snapshot.id, name, size, "snapshot taken");
                let details = details([
                    ("snapshot", snapshot.id.to_string().into()),
                    ("name", name.into()),
                    ("size_bytes", size.into()),
                ]);
                self.record_lifecycle(actor, id, Action::SnapshotCreate, Outcome::Ok, details)
                    .await;
                Ok(SnapshotView {
                    snapshot,
                    children: Vec::new(),
                })
            }
            Err(e) => {
                self.discard_image(&snapshot).await;
                Err(e)
            }
        }
    }

    /// The sandbox's named and fork snapshots with their lineage, oldest
    /// first, and the bytes of their images still stored.
    pub async fn list_snapshots(
        &self,
        id: &SandboxId,
    ) -> Result<(Vec<SnapshotView>, u64), WarrenError> {
        self.get(id).await?;
        let mut views = Vec::new();
        let mut total = 0;
        for snapshot in self.store.list_snapshots(id).await? {
            if snapshot.deleted_at.is_none() {
                total += snapshot.size_bytes;
            }
            if snapshot.kind == SnapshotKind::Pause {
                continue;
            }
            let children = self.store.sandboxes_from_snapshot(&snapshot.id).await?;
            views.push(SnapshotView { snapshot, children });
        }
        Ok((views, total))
    }

    /// Deletes one of the sandbox's named snapshots (by name or id).
    pub async fn delete_snapshot(
        &self,
        id: &SandboxId,
        which: &str,
        actor: &AuditActor,
    ) -> Result<(), WarrenError> {
        self.get(id).await?;
        let snapshot = self.named(id, which).await?;
        self.store.mark_snapshot_deleted(&snapshot.id).await?;
        self.discard_image(&snapshot.id).await;
        tracing::info!(sandbox = %id, snapshot = %snapshot.id, "snapshot deleted");
        let details = details([("snapshot", snapshot.id.to_string().into())]);
        self.record_lifecycle(actor, id, Action::SnapshotDelete, Outcome::Ok, details)
            .await;
        Ok(())
    }

    /// A live snapshot any sandbox may be started from.
    pub(super) async fn live_snapshot(
        &self,
        id: &SnapshotId,
    ) -> Result<SnapshotRecord, WarrenError> {
        self.store
            .get_snapshot(id)
            .await?
            .filter(|s| s.deleted_at.is_none() && s.kind != SnapshotKind::Pause)
            .ok_or_else(|| WarrenError::not_found(format!("snapshot {id} not found")))
    }

    async fn find_named(
        &self,
        id: &SandboxId,
        name: &str,
    ) -> Result<Option<SnapshotRecord>, WarrenError> {
        Ok(self.store.list_snapshots(id).await?.into_iter().find(|s| {
            s.kind == SnapshotKind::Named
                && s.deleted_at.is_none()
                && (s.name.as_deref() == Some(name) || s.id.as_str() == name)
        }))
    }

    /// One of the sandbox's live named snapshots, by name or id.
    pub(super) async fn named(
        &self,
        id: &SandboxId,
        which: &str,
    ) -> Result<SnapshotRecord, WarrenError> {
        self.find_named(id, which).await?.ok_or_else(|| {
            WarrenError::not_found(format!(
                "sandbox {id} has no snapshot '{}'; list them with GET /v1/sandboxes/{id}/snapshots",
                which.chars().take(64).collect::<String>()
            ))
        })
    }
}
