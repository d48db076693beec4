//! Interactive terminals: a process started with a PTY in the sandbox,
//! bridged to a client by the API layer.

use futures::StreamExt;
use futures::stream::BoxStream;
use warren_core::{SandboxId, WarrenError};
use warren_envd::EnvdClient;
use warren_envd::process::{
    ProcessConfig, ProcessEvent, ProcessInput, ProcessSelector, Pty, PtySize, Signal, StartRequest,
};

use super::Sandboxes;
use crate::audit::Action;
use crate::audit::{AuditActor, Event};

/// A started PTY process.
pub struct PtySession {
    pub pid: u32,
    client: EnvdClient,
}

/// Everything the agent reports about the PTY process after `start`.
pub type PtyEvents = BoxStream<'static, Result<ProcessEvent, warren_envd::ClientError>>;

impl PtySession {
    fn selector(&self) -> ProcessSelector {
        ProcessSelector::Pid(self.pid)
    }

    pub async fn input(&self, bytes: Vec<u8>) -> Result<(), WarrenError> {
        self.client
            .send_input(self.selector(), ProcessInput::Pty(bytes))
            .await
            .map_err(crate::agent_error)
    }

    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), WarrenError> {
        self.client
            .resize(
                self.selector(),
                PtySize {
                    cols: cols.into(),
                    rows: rows.into(),
                },
            )
            .await
            .map_err(crate::agent_error)
    }

    /// Ends the process (the client went away).
    pub async fn hang_up(&self) {
        let _ = self
            .client
            .send_signal(self.selector(), Signal::Sigkill)
            .await;
    }
}

impl Sandboxes {
    pub async fn open_pty(
        &self,
        id: &SandboxId,
        cmd: Option<String>,
        user: Option<&str>,
        cols: u16,
        rows: u16,
        actor: &AuditActor,
    ) -> Result<(PtySession, PtyEvents), WarrenError> {
        if cols == 0 || rows == 0 {
            return Err(WarrenError::invalid("cols and rows must be at least 1"));
        }
        self.get_running(id).await?;
        let client = self.agents.client(id, user).await?;
        let opened = Event::sandbox(Action::PtyOpen, id, warren_audit::Outcome::Ok)
            .with("cmd", cmd.clone())
            .with("user", user.unwrap_or("user"))
            .with("cols", cols)
            .with("rows", rows);
        let (cmd, args) = match cmd {
            Some(c) if !c.is_empty() => (c, Vec::new()),
            _ => ("/bin/bash".to_owned(), vec!["-l".to_owned()]),
        };
        let start = StartRequest {
            process: Some(ProcessConfig {
                cmd,
                args,
                envs: [("TERM".to_owned(), "xterm-256color".to_owned())].into(),
                cwd: None,
            }),
            pty: Some(Pty {
                size: Some(PtySize {
                    cols: cols.into(),
                    rows: rows.into(),
                }),
            }),
            tag: None,
            stdin: Some(true),
        };
        let mut events = client
            .start(&start, None)
            .await
            .map_err(crate::agent_error)?;
        let pid = match events.next().await {
            Some(Ok(ProcessEvent::Start(s))) => s.pid,
            Some(Err(e)) => return Err(crate::agent_error(e)),
            _ => {
                return Err(WarrenError::unavailable(
                    "the sandbox agent did not start the terminal",
                ));
            }
        };
        self.audit.record_done(actor, opened.with("pid", pid)).await;
        Ok((PtySession { pid, client }, events.boxed()))
    }
}
