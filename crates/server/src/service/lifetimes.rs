//! Lifetimes: every sandbox has an expiry; the reaper kills sandboxes past
//! it, or pauses them when their `on_idle` is `pause`, then runs idle
//! handling, paused retention and snapshot garbage collection (`idle`).

use std::sync::Arc;
use std::time::Duration;

use warren_core::{SandboxId, WarrenError};
use warren_store::SandboxRecord;

use super::Sandboxes;
use super::create::deadline;
use crate::audit::Action;
use crate::audit::AuditActor;

/// How often the reaper looks for expired sandboxes.
const REAP_INTERVAL: Duration = Duration::from_millis(500);

impl Sandboxes {
    /// Sets the sandbox to expire `timeout_s` seconds from now, on `actor`'s
    /// request (recorded as `sandbox.timeout`).
    pub async fn set_timeout(
        &self,
        id: &SandboxId,
        timeout_s: u64,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let at = deadline(self.clock.now(), timeout_s)?;
        self.expire_at(id, at, timeout_s, actor).await
    }

    /// Makes the sandbox expire now (E2B's timeout of 0): the reaper then
    /// does what its expiry does (a kill, or a pause) within
    /// [`REAP_INTERVAL`]. Recorded as `sandbox.timeout` with `timeout_s` 0.
    pub async fn expire_now(
        &self,
        id: &SandboxId,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        self.expire_at(id, self.clock.now(), 0, actor).await
    }

    async fn expire_at(
        &self,
        id: &SandboxId,
        at: time::OffsetDateTime,
        timeout_s: u64,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let rec = self.get(id).await?;
        if rec.state.is_terminal() {
            return Err(WarrenError::precondition(format!(
                "sandbox {id} is {}: its timeout cannot change",
                rec.state
            )));
        }
        let rec = self.store.set_expiry(id, at).await?;
        let mut details = serde_json::Map::new();
        details.insert("timeout_s".into(), timeout_s.into());
        details.insert(
            "expires_at".into(),
            warren_core::rfc3339(rec.expires_at).into(),
        );
        self.record_lifecycle(
            actor,
            id,
            Action::SandboxTimeout,
            warren_audit::Outcome::Ok,
            details,
        )
        .await;
        Ok(rec)
    }

    /// Kills expired sandboxes until `shutdown` fires.
    pub async fn run_reaper(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(REAP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let expired = match self.store.expired_sandboxes(self.clock.now()).await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::warn!(error = %e, "reaper could not list expired sandboxes");
                    continue;
                }
            };
            for id in expired {
                tracing::info!(sandbox = %id, "sandbox reached its timeout");
                let on_idle = match self.store.get_sandbox(&id).await {
                    Ok(Some(rec)) if rec.state == warren_core::SandboxState::Running => {
                        rec.persistence.on_idle
                    }
                    _ => warren_core::OnIdle::Kill,
                };
                self.settle_idle(&id, on_idle).await;
            }
            self.keep_idle().await;
        }
    }
}
