//! Idle handling and paused retention, run from the reaper's loop.
//!
//! - A running sandbox whose last API activity is `idle_timeout_s` old, or
//!   whose running lifetime ran out, is paused if its `on_idle` is `pause`
//!   (keeping only its filesystem with `pause_filesystem`) and killed
//!   otherwise. (Sandboxes past their lifetime with `on_idle:
//!   kill` are the reaper's.)
//! - A sandbox paused for its `paused_ttl_s` is killed; its snapshots then
//!   have no referent and garbage collection deletes them.

use warren_core::{OnIdle, SandboxId};

use super::Sandboxes;
use crate::audit::Action;
use crate::audit::AuditActor;

impl Sandboxes {
    /// One round of idle handling, retention and garbage collection.
    pub(super) async fn keep_idle(&self) {
        let now = self.clock.now();
        match self.store.idle_sandboxes(now).await {
            Ok(idle) => {
                for rec in idle {
                    tracing::info!(sandbox = %rec.id, on_idle = %rec.persistence.on_idle, "sandbox is idle");
                    self.settle_idle(&rec.id, rec.persistence.on_idle).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list idle sandboxes"),
        }
        match self.store.expired_paused(now).await {
            Ok(ids) => {
                for id in ids {
                    tracing::info!(sandbox = %id, "paused sandbox reached its retention");
                    let reaper = AuditActor::system("reaper");
                    if let Err(e) = self.end(&id, &reaper, Action::SandboxExpire).await {
                        tracing::warn!(sandbox = %id, error = %e.message, "could not delete a paused sandbox");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list expired paused sandboxes"),
        }
        self.evict_standby().await;
        if let Err(e) = self.collect_garbage().await {
            tracing::warn!(error = %e.message, "snapshot garbage collection failed");
        }
        let expired = std::time::SystemTime::now() - super::recordings::RETENTION;
        self.recordings.collect(expired).await;
        if let Err(e) = self.collect_templates().await {
            tracing::warn!(error = %e.message, "template version collection failed");
        }
    }

    /// Pauses or kills a sandbox that is idle or past its lifetime.
    pub(super) async fn settle_idle(&self, id: &SandboxId, on_idle: OnIdle) {
        let reaper = AuditActor::system("reaper");
        let result = match on_idle.pause_mode() {
            Some(mode) => self.pause(id, mode, &reaper).await.map(drop),
            None => self.end(id, &reaper, Action::SandboxExpire).await,
        };
        if let Err(e) = result {
            tracing::warn!(sandbox = %id, error = %e.message, "could not {on_idle} an idle sandbox");
        }
    }
}
