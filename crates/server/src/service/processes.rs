//! The commands running in a sandbox, as its agent knows them (execs,
//! terminals, the template's start command), and ending one.
//!
//! A listing never shows a command's environment. Ending one sends SIGKILL
//! to its process group through the agent and is recorded as
//! `process.kill`; a pid the agent does not run is "not found", whether it
//! never existed or already ended.

use warren_api_types::ProcessSummary;
use warren_audit::Outcome;
use warren_core::{SandboxId, WarrenError};
use warren_envd::process::{ProcessSelector, Signal};

use super::Sandboxes;
use crate::audit::{Action, AuditActor, Event};

impl Sandboxes {
    /// The commands running in sandbox `id`, by pid.
    pub async fn processes(&self, id: &SandboxId) -> Result<Vec<ProcessSummary>, WarrenError> {
        self.get_running(id).await?;
        let client = self.agents.client(id, None).await?;
        let mut list: Vec<ProcessSummary> = client
            .list()
            .await
            .map_err(crate::agent_error)?
            .into_iter()
            .map(|p| {
                let config = p.config.unwrap_or_default();
                ProcessSummary {
                    pid: p.pid,
                    cmd: config.cmd,
                    args: config.args,
                    cwd: config.cwd,
                    tag: p.tag,
                }
            })
            .collect();
        list.sort_by_key(|p| p.pid);
        Ok(list)
    }

    /// Ends command `pid` of sandbox `id` (its whole process group).
    pub async fn kill_process(
        &self,
        id: &SandboxId,
        pid: u32,
        actor: &AuditActor,
    ) -> Result<(), WarrenError> {
        self.get_running(id).await?;
        let client = self.agents.client(id, None).await?;
        let result = client
            .send_signal(ProcessSelector::Pid(pid), Signal::Sigkill)
            .await
            .map_err(crate::agent_error);
        let mut event = Event::sandbox(Action::ProcessKill, id, Outcome::Ok).with("pid", pid);
        if let Err(e) = &result {
            event.outcome = Outcome::Error;
            event = event.with("error", e.message.clone());
        }
        self.audit.record_done(actor, event).await;
        result
    }
}
