//! Pauses that keep only the filesystem ([`PauseMode::Filesystem`]).
//!
//! A sandbox's writable filesystem lives in gVisor's overlay, in the
//! sandbox's memory, so only a checkpoint captures it. Such a pause
//! therefore asks the agent to end every other process first (SIGTERM, a
//! short grace, SIGKILL: `POST /quiesce`), then takes the usual pause
//! checkpoint (`service::pause`): the image holds the agent and the files
//! alone, and is small. The pause mode is committed with the image, in
//! the same transaction.
//!
//! Its resume (from standby or from the image) finds no process but the
//! agent, and boots the sandbox again as a create does: the template's
//! start command, if any, runs again and is waited for. A start command
//! that fails then is logged and recorded, and the sandbox runs on with
//! its files: a sandbox its own files keep from starting its server would
//! otherwise never be resumed again, and its files would be lost.
//!
//! Crash-safety is the pause protocol's: a daemon killed between the
//! quiesce and the commit leaves a running sandbox (reconciliation moves
//! `pausing` back to running) whose processes were ended, as asked; its
//! start command is not started again until a later filesystem pause is
//! resumed. A failed checkpoint after the quiesce boots the sandbox again
//! in place (its start command runs), so it runs as after a resume.

use std::time::Duration;

use warren_audit::Outcome;
use warren_core::{PauseMode, SandboxId, WarrenError};
use warren_store::SandboxRecord;

use super::Sandboxes;
use crate::audit::{Action, AuditActor, Event};

/// Longest wait for the agent to end every process (it gives them a few
/// seconds itself).
const QUIESCE_TIMEOUT: Duration = Duration::from_secs(20);

impl Sandboxes {
    /// Ends every process of the running sandbox `id` but its agent.
    pub(super) async fn quiesce(&self, id: &SandboxId) -> Result<(), WarrenError> {
        let client = self.agents.client(id, None).await?;
        match tokio::time::timeout(QUIESCE_TIMEOUT, client.quiesce()).await {
            Ok(result) => result.map_err(crate::agent_error),
            Err(_) => Err(WarrenError::unavailable(format!(
                "the agent of sandbox {id} did not end its processes within {}s",
                QUIESCE_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Boots `rec` again after a filesystem-only pause (its instance runs,
    /// its agent is initialised, no other process runs): starts the
    /// template's start command, if any, and waits for it. A failure is
    /// logged and recorded, not returned (see the module doc).
    pub(super) async fn boot_again(&self, rec: &SandboxRecord) {
        let Some(start) = self.template_of(rec).ok().and_then(|t| t.start()) else {
            return;
        };
        let result = match self.agents.address(&rec.id).await {
            Some(ip) => self.run_start_command(rec, ip, &start).await,
            None => Err(WarrenError::unavailable(format!(
                "sandbox {} has no agent",
                rec.id
            ))),
        };
        if let Err(e) = result {
            tracing::warn!(sandbox = %rec.id, error = %e.message, "the start command did not come up again after a filesystem-only pause");
            let event = Event::sandbox(Action::ProcessExec, &rec.id, Outcome::Error)
                .with("argv", start.cmd.clone())
                .with("via", "template-start")
                .with("error", e.message.as_str());
            self.audit
                .record_done(&AuditActor::system("template-start"), event)
                .await;
        }
    }
}

/// Whether `rec`, paused, resumes by booting again.
pub(super) fn boots_again(rec: &SandboxRecord) -> bool {
    rec.pause_mode == Some(PauseMode::Filesystem)
}
