//! Fork and create-from-snapshot: new sandboxes restored from one image.
//!
//! A fork checkpoints the parent (which keeps running) into a fork image,
//! then restores that image concurrently under `count` new ids, each with
//! its own network slot (the restore takes the new namespace's address),
//! cgroup and token; the branches share nothing afterwards. Creating a
//! sandbox from a named snapshot is the same with one branch.
//!
//! Lifetime: a branch expires when its parent does (never later), however
//! the fork was asked for; a sandbox forking itself with its token so
//! gets no more time than it had. Only an API key extends a lifetime
//! (`POST /v1/sandboxes/{id}/timeout`), which a sandbox token cannot call.
//!
//! Ownership: a branch belongs to its parent's team and acts for whoever
//! asked for it (a sandbox forking itself with its token acts for its own
//! dispatcher); a snapshot is visible to its sandbox's team only; the
//! snapshot row records who took it. Each branch gets its own sandbox
//! token at restore, never its parent's. Lineage: each
//! branch records the snapshot it came from (`source_snapshot`), and the
//! snapshot the sandbox it was taken from came from (`parent_snapshot`),
//! so the tree of branches can be walked both ways.
//!
//! Inbox: a branch starts with its parent's inbox as it stood when the
//! fork image was taken (numbering, acknowledgement, wake policy, handler
//! and the events not yet acknowledged), so its processes, which remember
//! where they were, read on from there; events sent to the parent or a
//! branch afterwards reach only that sandbox. A sandbox created from a
//! named snapshot starts with an empty inbox of its own.
//!
//! The fork image is deleted once every branch is up; a crash in between
//! leaves it to garbage collection (it is unreferenced as soon as no
//! branch is still being created).

use std::collections::BTreeMap;

use futures::future::join_all;
use time::OffsetDateTime;
use warren_audit::Outcome;
use warren_core::inbox::InboxSettings;
use warren_core::{SandboxId, SnapshotId, WarrenError};
use warren_store::{NewSandbox, SandboxRecord, SnapshotKind, SnapshotRecord};

use super::record::details;
use super::traced::{op_span, traced};
use super::{CreateParams, Dispatcher, Sandboxes};
use crate::audit::Action;
use crate::audit::AuditActor;

/// Most branches one fork may make.
pub const MAX_FORK: u32 = 16;

/// What a branch gets besides the snapshot's state.
struct Branch {
    metadata: BTreeMap<String, String>,
    /// Added to the snapshot's environment.
    env: BTreeMap<String, String>,
    persistence: warren_core::Persistence,
    /// Who the branch acts for: whoever asked for it.
    dispatcher: Dispatcher,
    /// Its network policy; `None` takes the snapshot's.
    network: Option<warren_core::network::NetworkPolicy>,
    /// The latest it may expire: a fork's branches never outlive their
    /// parent (only an API key extends a lifetime, by setting a timeout).
    expires_by: Option<OffsetDateTime>,
    /// Where its inbox comes from.
    inbox: BranchInbox,
}

/// A branch's inbox.
#[derive(Clone)]
enum BranchInbox {
    /// A new one with these settings.
    New(InboxSettings),
    /// The parent's, as it stood at event `upto`.
    Forked { parent: SandboxId, upto: u64 },
}

impl Sandboxes {
    /// Forks a running sandbox into `count` new ones; returns the fork
    /// image's id and the branches. The fork runs to its end should the
    /// caller go away (`carried`): a sandbox forking itself loses its own
    /// connection at the checkpoint.
    pub async fn fork(
        &self,
        id: &SandboxId,
        count: u32,
        dispatcher: &Dispatcher,
        actor: &AuditActor,
    ) -> Result<(SnapshotId, Vec<SandboxRecord>), WarrenError> {
        let span = op_span!(
            "sandbox.fork",
            dispatcher.team,
            count,
            branches = tracing::field::Empty
        );
        span.record("sandbox.id", id.as_str());
        let (id, dispatcher, actor) = (id.clone(), dispatcher.clone(), actor.clone());
        let work =
            self.carried(
                move |s| async move { s.fork_untraced(&id, count, &dispatcher, &actor).await },
            );
        let forked = traced(&span, work).await;
        if let Ok((_, branches)) = &forked {
            let ids: Vec<&str> = branches.iter().map(|b| b.id.as_str()).collect();
            span.record("branches", ids.join(",").as_str());
        }
        forked
    }

    async fn fork_untraced(
        &self,
        id: &SandboxId,
        count: u32,
        dispatcher: &Dispatcher,
        actor: &AuditActor,
    ) -> Result<(SnapshotId, Vec<SandboxRecord>), WarrenError> {
        if count == 0 || count > MAX_FORK {
            return Err(WarrenError::invalid(format!(
                "count must be between 1 and {MAX_FORK}, got {count}"
            )));
        }
        let parent = self.get_running(id).await?;
        self.refuse_with_volumes(id, "be forked").await?;
        dispatcher.check_secret_use(&parent.network)?;
        self.disk.check()?;
        self.admit_spend(&dispatcher.team, &dispatcher.user, &dispatcher.key)
            .await?;
        self.admit_fork(&parent, count).await?;
        let _turn = self.admit_start().await?;
        let (snapshot, upto) = {
            let _lock = self.locks.lock(id).await;
            self.still_running(id).await?;
            let snapshot = SnapshotId::generate();
            let size = self.capture(&parent.id, &snapshot).await?;
            let inbox = self.store.inbox(&parent.id).await?;
            let by = &dispatcher.key;
            let row = self.new_snapshot(&parent, snapshot, SnapshotKind::Fork, None, size, by);
            match self.store.insert_snapshot(row.clone()).await {
                Ok(rec) => (rec, inbox.map_or(0, |i| i.last_seq)),
                Err(e) => {
                    self.discard_image(&row.id).await;
                    return Err(e.into());
                }
            }
        };
        // A kill of the parent committed before the fork image's row wins
        // (`raced`): no branch starts.
        if let Err(e) = self.outlived_by_kill(id, "forked").await {
            self.drop_fork_image(&snapshot.id).await;
            return Err(e.into());
        }
        let branches = join_all((0..count).map(|_| {
            self.spawn_branch(
                &snapshot,
                Branch {
                    metadata: parent.metadata.clone(),
                    env: BTreeMap::new(),
                    persistence: parent.persistence,
                    dispatcher: dispatcher.clone(),
                    network: Some(parent.network.clone()),
                    expires_by: Some(parent.expires_at),
                    inbox: BranchInbox::Forked {
                        parent: parent.id.clone(),
                        upto,
                    },
                },
                actor,
            )
        }))
        .await;
        self.drop_fork_image(&snapshot.id).await;
        let mut out = Vec::with_capacity(branches.len());
        for branch in branches {
            match branch {
                Ok(rec) => out.push(rec),
                Err(e) => {
                    // All or nothing: the branches that came up go again.
                    for rec in &out {
                        let _ = self.kill(&rec.id, actor).await;
                    }
                    return Err(e);
                }
            }
        }
        tracing::info!(sandbox = %id, snapshot = %snapshot.id, count, "sandbox forked");
        self.meter.activity().forked(id, u64::from(count));
        let branches: Vec<String> = out.iter().map(|b| b.id.to_string()).collect();
        let details = details([
            ("snapshot", snapshot.id.to_string().into()),
            ("branches", branches.into()),
        ]);
        self.record_lifecycle(actor, id, Action::SandboxFork, Outcome::Ok, details)
            .await;
        Ok((snapshot.id, out))
    }

    /// A new sandbox with the exact state of a named or fork snapshot.
    pub(super) async fn create_from_snapshot(
        &self,
        snapshot: &SnapshotId,
        p: CreateParams,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let snapshot = self.live_snapshot(snapshot).await?;
        if snapshot.team != p.dispatcher.team {
            return Err(WarrenError::not_found(format!(
                "snapshot {} not found",
                snapshot.id
            )));
        }
        p.dispatcher
            .check_secret_use(p.network.as_ref().unwrap_or(&snapshot.network))?;
        let _turn = self.admit_start().await?;
        self.spawn_branch(
            &snapshot,
            Branch {
                metadata: p.metadata,
                env: p.env,
                persistence: p.persistence,
                dispatcher: p.dispatcher,
                network: p.network,
                expires_by: None,
                inbox: BranchInbox::New(p.inbox),
            },
            actor,
        )
        .await
    }

    async fn spawn_branch(
        &self,
        snapshot: &SnapshotRecord,
        b: Branch,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let mut env = snapshot.env.clone();
        env.extend(b.env);
        let full = self.clock.now() + time::Duration::seconds(b.persistence.timeout_s as i64);
        let expires_at = b.expires_by.map_or(full, |by| by.min(full));
        let rec = self
            .store
            .create_sandbox_in_quota(NewSandbox {
                id: SandboxId::generate(),
                template: snapshot.template.clone(),
                template_version: snapshot.template_version.clone(),
                limits: snapshot.limits,
                env,
                metadata: b.metadata,
                team: b.dispatcher.team,
                owner: b.dispatcher.user,
                created_by: b.dispatcher.key,
                expires_at,
                persistence: b.persistence,
                source_snapshot: Some(snapshot.id.clone()),
                network: b.network.unwrap_or_else(|| snapshot.network.clone()),
                inbox: match &b.inbox {
                    BranchInbox::New(settings) => settings.clone(),
                    BranchInbox::Forked { .. } => InboxSettings::default(),
                },
            })
            .await?;
        self.changes.publish(&rec);
        if let BranchInbox::Forked { parent, upto } = &b.inbox
            && let Err(e) = self.store.fork_inbox(parent, &rec.id, *upto).await
        {
            let e = WarrenError::from(e);
            self.fail(&rec.id, actor, &e.message).await;
            return Err(e);
        }
        if let Err(e) = self.restore_instance(&rec, snapshot).await {
            tracing::warn!(sandbox = %rec.id, snapshot = %snapshot.id, error = %e.message, "branch failed to start");
            self.fail(&rec.id, actor, &e.message).await;
            return Err(e);
        }
        self.finish_create(&rec.id, actor).await
    }

    async fn drop_fork_image(&self, snapshot: &SnapshotId) {
        if let Err(e) = self.store.mark_snapshot_deleted(snapshot).await {
            tracing::warn!(snapshot = %snapshot, error = %e, "could not mark a fork image deleted");
            return;
        }
        self.discard_image(snapshot).await;
    }
}
