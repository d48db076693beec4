//! Noticing sandboxes that died by themselves: root inside killing the
//! agent (PID 1), the kernel OOM-killing the sandbox, or its runsc process
//! killed from outside. Such a sandbox must not stay listed as running.
//!
//! Every [`CHECK_INTERVAL`] the runtime is asked, for each sandbox whose
//! agent is attached, whether its instance has exited
//! ([`warren_runtime::Runtime::has_exited`], a cgroup read). A sandbox that
//! has is judged again under its lifecycle lock, and only if the store
//! still says `running`: a pause, resume or kill in progress owns the
//! sandbox and is left alone. Then it is marked `failed` with the reason,
//! recorded as `sandbox.fail` by `system:liveness` (so the audit log and
//! the timeline say why), and its resources are torn down.

use std::sync::Arc;
use std::time::Duration;

use warren_core::{SandboxId, SandboxState};

use super::Sandboxes;
use crate::audit::AuditActor;

/// How often live sandboxes are checked.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// What the audit entry says.
const REASON: &str = "the sandbox's processes ended by themselves (its init was killed, it ran out of memory, or its runtime process was killed)";

impl Sandboxes {
    /// Checks live sandboxes until `shutdown` turns true.
    pub async fn run_liveness(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            for (id, _) in self.agents.live() {
                if self.runtime.has_exited(&id).await.unwrap_or(false) {
                    tokio::spawn(self.clone().confirm_exit(id));
                }
            }
        }
    }

    async fn confirm_exit(self: Arc<Self>, id: SandboxId) {
        let _guard = self.locks.lock(&id).await;
        let running = matches!(
            self.store.get_sandbox(&id).await,
            Ok(Some(rec)) if rec.state == SandboxState::Running
        );
        if !running || !self.runtime.has_exited(&id).await.unwrap_or(false) {
            return;
        }
        tracing::warn!(sandbox = %id, "sandbox exited by itself; marking it failed");
        self.fail(&id, &AuditActor::system("liveness"), REASON)
            .await;
    }
}
